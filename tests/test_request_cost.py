"""What every web page pays, kept small (issue #16), on SQLite and PostgreSQL: a model without
approvals asks no approval COUNT; whether the instance takes calls (the screen-pop poller) is
looked up at most once every `TAKES_CALLS_FOR` seconds per process, and never kept longer; a
list page formats each cell once and still shows it in full."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from support import admin_actor
from web_support import make_app, sign_in

from runtime.http import auth
from runtime.http.web import calls_pages
from runtime.write import records

BOUND = 5.0  # seconds: how stale a process's "does the instance take calls" may be at most

PACK = {
    "entities/deal.yaml": """
        entity: deal
        title: "{name}"
        fields:
          name: {type: text, required: true}
          amount: {type: money}
    """,
}


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
