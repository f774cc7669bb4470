"""What every web page pays, kept small (issue #16), on SQLite and PostgreSQL: a model without
approvals asks no approval COUNT; whether the instance takes calls (the screen-pop poller) is
looked up at most once every `TAKES_CALLS_FOR` seconds per process, and never kept longer; a
list page formats each cell once and still shows it in full."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from record_packs import DEAL, DEAL_FLOW
from support import admin_actor, insert_user
from web_support import make_app, sign_in

from runtime.http import auth
from runtime.http.web import calls_pages, workflow_pages
from runtime.process import notifications, workflow
from runtime.write import records

BOUND = 5.0  # seconds: how stale a process's "does the instance take calls" may be at most

PACK = {"entities/deal.yaml": DEAL}


class Clock:
    """time.monotonic as calls_pages reads it, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def site(make_instance, pack, tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    inst = make_instance(pack(PACK))
    admin = admin_actor(inst)
    records.create(inst, admin, "deal", {"name": "Harbor deal", "amount": 1250})
    clock = Clock()
    monkeypatch.setattr(calls_pages.time, "monotonic", clock)
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, admin)
    return inst, admin, client, clock


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


def polls(client) -> bool:  # noqa: ANN001
    page = client.get("/e/deal")
    assert page.status_code == 200
    return 'id="call-pops"' in page.get_data(as_text=True)


def test_a_model_without_approvals_asks_no_approval_count(site) -> None:
    inst, _admin, client, _clock = site
    with statements(inst.engine) as seen:
        assert client.get("/e/deal").status_code == 200
    assert seen, "the page ran no statement at all: the listener is not counting"
    assert not [s for s in seen if "crm_approval_request" in s]


def test_taking_calls_is_looked_up_once_per_interval(site) -> None:
    inst, _admin, client, _clock = site
    polls(client)
    with statements(inst.engine) as seen:
        polls(client)
    assert not [s for s in seen if "crm_token" in s]


def test_a_new_token_starts_the_polling_within_the_bound(site) -> None:
    inst, admin, client, clock = site
    assert not polls(client)
    token = auth.create_token(inst, admin.user_id)
    clock.now += BOUND  # the bound has passed: looked up again
    assert polls(client)
    auth.revoke_token(inst, token)
    clock.now += BOUND
    assert not polls(client)  # never kept past the bound


def test_each_list_cell_is_shown_in_full(site) -> None:
    _inst, _admin, client, _clock = site
    html = client.get("/e/deal").get_data(as_text=True)
    assert 'title="Harbor deal"' in html and ">Harbor deal</a>" in html
    assert "1,250.00" in html


# -- the record page and the list page: each read once, in autocommit (issue #16) -------------

FLOW_PACK = {"roles.yaml": "roles:\n  rep: {label: Rep}\n", "entities/deal.yaml": DEAL_FLOW}
# what one page asks, counted on the tests' data: a change that reads more shows here
RECORD_PAGE_STATEMENTS = 13  # was 20: the record read 4 times, its approval requests 3
LIST_PAGE_STATEMENTS = 8  # was 9: the bell counted what its list already told


@pytest.fixture
def flow(make_instance, pack, tmp_path):  # noqa: ANN001, ANN201
    inst = make_instance(pack(FLOW_PACK))
    rep = insert_user(inst, "rita", roles=["rep"])
    deal = records.create(inst, rep, "deal", {"name": "Harbor deal", "amount": 1250})
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, rep)
    return inst, rep, deal, client


@contextmanager
def page_reads(engine: sa.Engine) -> Iterator[list[tuple[str, bool]]]:
    """(statement, whether it ran in a transaction the server saw: a BEGIN and a ROLLBACK
    more) of every statement run while the block runs; only PostgreSQL's can be in autocommit,
    SQLite's reads keep their transaction (no round trip there)."""
    seen: list[tuple[str, bool]] = []

    def note(conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        if statement == "BEGIN":  # SQLite's, which runs as a statement: not a read
            return
        driver = conn.connection.driver_connection
        seen.append((" ".join(statement.split()),
                     conn.dialect.name != "sqlite" and not driver.autocommit))

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


def shown(client, path: str) -> tuple[str, list[tuple[str, bool]]]:  # noqa: ANN001
    inst = client.application.extensions["crmforge"]
    with page_reads(inst.engine) as seen:
        answer = client.get(path)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    return answer.get_data(as_text=True), seen


def asked(seen: list[tuple[str, bool]], start: str) -> int:
    return sum(statement.startswith(start) for statement, _ in seen)


def test_the_record_page_reads_its_record_and_its_requests_once(flow) -> None:
    _inst, _rep, deal, client = flow
    client.get(f"/e/deal/{deal['id']}")  # caches warm
    html, seen = shown(client, f"/e/deal/{deal['id']}")
    assert "Harbor deal" in html and "Start" in html and "Open" in html
    assert asked(seen, "SELECT deal.") == 1
    assert asked(seen, "SELECT crm_approval_request.id") == 1
    assert len(seen) == RECORD_PAGE_STATEMENTS, [s[:80] for s, _ in seen]
    assert not [s for s, in_transaction in seen if in_transaction]  # no BEGIN, no ROLLBACK


def test_the_list_page_asks_its_pinned_number_of_statements(flow) -> None:
    _inst, _rep, _deal, client = flow
    client.get("/e/deal")
    html, seen = shown(client, "/e/deal")
    assert "Harbor deal" in html
    assert len(seen) == LIST_PAGE_STATEMENTS, [s[:80] for s, _ in seen]
    assert not [s for s, in_transaction in seen if in_transaction]


def test_a_pending_request_read_once_still_locks_the_record_page(flow) -> None:
    inst, rep, deal, client = flow
    workflow.fire(inst, rep, "deal", deal["id"], "start")
    assert "Pause" in shown(client, f"/e/deal/{deal['id']}")[0]
    workflow.fire(inst, rep, "deal", deal["id"], "close")  # opens the sign-off request
    html, seen = shown(client, f"/e/deal/{deal['id']}")
    assert "Waiting for approval" in html and "Working" in html
    assert "Pause" not in html  # no move while the request waits
    assert asked(seen, "SELECT crm_approval_request.id") == 1


@pytest.mark.parametrize(("unread", "counted"), [(0, False), (3, False),
                                                 (workflow_pages.BELL_LIMIT, True),
                                                 (workflow_pages.BELL_LIMIT + 4, True)])
def test_the_bell_counts_only_when_its_list_is_full(flow, unread, counted) -> None:
    inst, rep, _deal, client = flow
    with inst.engine.begin() as conn:
        for n in range(unread):
            notifications.notify(inst, conn, [rep.user_id], f"Note {n}")
    html, seen = shown(client, "/e/deal")
    assert bool(asked(seen, "SELECT count(*) AS count_1 FROM crm_notification")) is counted
    assert (f'class="bell-count">{unread}<' in html) is bool(unread)
