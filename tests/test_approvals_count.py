"""The approvals badge (`pending.pending_count`, `layout.approvals_count`): one COUNT query that
counts exactly what the pending inbox lists — approvers of the current step, delegates of
approvers who are away, maker-checker, decisions already made, escalation, recall — on SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from flask import g
from web_support import make_app
from workflow_pack import deal_pack, new_deal, people

from runtime.http.auth import login_user
from runtime.http.web.layout import approvals_count
from runtime.process import workflow
from runtime.process.approvals import approve, escalate, inbox, recall
from runtime.process.approvals.pending import pending_count


@pytest.fixture
def env(make_instance, pack):
    inst = make_instance(deal_pack(pack))
    return inst, people(inst)


def counts(inst, p) -> dict[str, int]:  # noqa: ANN001
    """Everyone's badge, after checking that it is the length of their pending inbox."""
    found = {}
    for name, who in vars(p).items():
        expected = len(inbox(inst, who))
        assert pending_count(inst, who) == expected, name
        found[name] = expected
    return found


def waiting(inst, p) -> dict[str, int]:  # noqa: ANN001
    return {name: n for name, n in counts(inst, p).items() if n}


def submit_win(inst, p, *, by=None, discount="15"):  # noqa: ANN001, ANN201
    deal = new_deal(inst, p, stage="review", discount=discount, reason="good")
    result = workflow.fire(inst, by or p.mia, "deal", deal["id"], "win")
    assert result.status == 202
    return result.approval


def cancel_request(inst, p):  # noqa: ANN001, ANN201
    deal = new_deal(inst, p, stage="review", owner=p.rita)
    return workflow.fire(inst, p.rita, "deal", deal["id"], "cancel").approval


def set_user(inst, actor, **values) -> None:  # noqa: ANN001, ANN003
    users = inst.schema.table("user")
    with inst.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == actor.user_id).values(**values))


def test_maker_checker_and_mode_all(env) -> None:
    inst, p = env
    assert waiting(inst, p) == {}
    request = submit_win(inst, p, discount="25")  # mia asks: max decides, not mia
    submit_win(inst, p, by=p.max)  # max asks: mia decides
    assert waiting(inst, p) == {"max": 1, "mia": 1}
    approve(inst, p.max, request["id"])  # the finance step: fay and fred, both
    assert waiting(inst, p) == {"mia": 1, "fay": 1, "fred": 1}
    approve(inst, p.fay, request["id"])
    assert waiting(inst, p) == {"mia": 1, "fred": 1}


def test_escalation_and_recall(env, clock) -> None:
    inst, p = env
    request = submit_win(inst, p)
    clock.advance(hours=49)
    assert escalate(inst, clock()) == 1
    assert waiting(inst, p) == {"max": 1, "dan": 1}
    recall(inst, p.mia, request["id"])
    assert waiting(inst, p) == {}


def test_a_delegate_counts_while_the_approver_is_away(env, clock) -> None:
    inst, p = env
    today = clock().date()
    set_user(inst, p.vera, away_from=today, away_until=today, delegate=p.walt.user_id)
    request = cancel_request(inst, p)
    assert waiting(inst, p) == {"vera": 1, "walt": 1}
    clock.advance(days=1)  # vera is back
    assert waiting(inst, p) == {"vera": 1}
    clock.advance(days=-1)
    approve(inst, p.walt, request["id"])  # for vera; the owner step follows
    assert waiting(inst, p) == {"rita": 1}


@pytest.mark.parametrize("away_from, away_until", [
    (None, None), (date(2026, 3, 3), None), (None, date(2026, 3, 1))])
def test_no_delegate_when_the_approver_is_not_away(env, away_from, away_until) -> None:
    inst, p = env
    set_user(inst, p.vera, away_from=away_from, away_until=away_until,
             delegate=p.walt.user_id)
    cancel_request(inst, p)
    assert waiting(inst, p) == {"vera": 1}


def test_a_decision_covers_the_away_approver(env, clock) -> None:
    inst, p = env
    today = clock().date()
    set_user(inst, p.fay, away_from=today - timedelta(days=1), delegate=p.walt.user_id)
    request = submit_win(inst, p, discount="25")
    approve(inst, p.max, request["id"])
    assert waiting(inst, p) == {"fay": 1, "fred": 1, "walt": 1}
    approve(inst, p.fay, request["id"])  # fay decided herself: walt has nothing left
    assert waiting(inst, p) == {"fred": 1}


def test_maker_checker_binds_delegates_too(env, clock) -> None:
    inst, p = env
    today = clock().date()
    set_user(inst, p.max, away_from=today, away_until=today, delegate=p.mia.user_id)
    submit_win(inst, p, by=p.mia)  # mia may not approve her own request for max
    assert waiting(inst, p) == {"max": 1}
    set_user(inst, p.vera, away_from=today, delegate=p.rita.user_id)
    cancel_request(inst, p)  # by_people allows self-approval: rita stands in for vera
    assert waiting(inst, p) == {"max": 1, "vera": 1, "rita": 1}


def test_a_request_of_an_approval_no_longer_defined_is_not_counted(env) -> None:
    inst, p = env
    request = submit_win(inst, p)
    requests = inst.schema.system("approval_request")
    with inst.engine.begin() as conn:
        conn.execute(requests.update().where(requests.c.id == request["id"]).values(
            approval="retired"))
    assert waiting(inst, p) == {}


def test_the_badge_is_one_query(env, tmp_path) -> None:
    inst, p = env
    submit_win(inst, p)
    submit_win(inst, p, discount="12")
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if statement.split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            statements.append(statement)  # SQLite's driver sends its own BEGIN

    with make_app(inst, tmp_path).test_request_context("/"):
        login_user(inst, p.max)
        sa.event.listen(inst.engine, "before_cursor_execute", record)
        try:
            assert approvals_count() == 2 == len(inbox(inst, p.max))
            statements.clear()
            g.pop("web_approvals")  # as a new request would
            assert approvals_count() == 2
            assert len(statements) == 1, statements
            assert approvals_count() == 2 and len(statements) == 1  # once a request
        finally:
            sa.event.remove(inst.engine, "before_cursor_execute", record)

