"""Approvals (SPEC §5): steps, approvers, maker-checker, mode any/all, skipped steps, reject,
recall, escalation with the controllable clock, delegation, notifications, and concurrent
decisions on one request."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from mail_support import queued_mail
from workflow_pack import DEAL, deal_pack, new_deal, people

from runtime.core.errors import (
    AwaitingApproval,
    Conflict,
    Forbidden,
    RecordError,
    ValidationFailed,
)
from runtime.core.instance import Actor
from runtime.process import approvals, workflow
from runtime.read import timeline
from runtime.write import records


@pytest.fixture
def env(make_instance, pack):
    inst = make_instance(deal_pack(pack))
    return inst, people(inst)


def submit_win(inst, p, *, by=None, discount="15", **values):
    """A deal in review asking to be won; returns (deal, request)."""
    values.setdefault("reason", "good")
    deal = new_deal(inst, p, stage="review", discount=discount, **values)
    result = workflow.fire(inst, by or p.mia, "deal", deal["id"], "win", comment="please")
    assert result.status == 202, result
    return deal, result.approval


def stage(inst, p, deal) -> str:
    return records.get(inst, p.admin, "deal", deal["id"])["stage"]


def approver_ids(request, index=None) -> set[int]:
    step = request["steps"][request["step_index"] if index is None else index]
    return {a["id"] for a in step["approvers"]}


def set_user(inst, actor, **values):
    users = inst.schema.table("user")
    with inst.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == actor.user_id).values(**values))


# -- opening, approvers, maker-checker --------------------------------------------------------

def test_request_opens_on_the_first_step_with_its_approvers(env):
    inst, p = env
    deal, request = submit_win(inst, p, by=p.mia)
    assert request["status"] == "pending" and request["step"] == "manager"
    assert request["transition"] == "win" and request["from_state"] == "review"
    assert request["to_state"] == "won" and request["comment"] == "please"
    # managers (and no one who merely inherits less): max; mia submitted and is left out
    assert approver_ids(request) == {p.max.user_id}
    assert stage(inst, p, deal) == "review"
    assert [s["state"] for s in request["steps"]] == ["current", "skipped", "skipped"]


def test_the_submitter_cannot_approve(env):
    inst, p = env
    deal, request = submit_win(inst, p, by=p.mia)
    with pytest.raises(Forbidden, match="self-approval"):
        approvals.approve(inst, p.mia, request["id"])
    assert approvals.inbox(inst, p.mia) == []
    assert [r["id"] for r in approvals.inbox(inst, p.max)] == [request["id"]]


def test_nobody_left_to_approve_is_said_clearly(env):
    inst, p = env
    set_user(inst, p.max, active=False)
    deal = new_deal(inst, p, stage="review", discount="15", reason="x")
    with pytest.raises(ValidationFailed) as info:
        workflow.fire(inst, p.mia, "deal", deal["id"], "win")
    message = info.value.errors["_record"][0]
    assert "Nobody can approve step 'Manager'" in message and "self-approval" in message
    assert stage(inst, p, deal) == "review"
    assert approvals.inbox(inst, p.max) == []
    with inst.engine.connect() as conn:  # nothing was left behind
        assert approvals.pending_request(inst, conn, "deal", deal["id"]) is None


def test_someone_who_is_not_an_approver_cannot_decide(env):
    inst, p = env
    _deal, request = submit_win(inst, p)
    for outsider in (p.rita, p.fay, p.dan):
        with pytest.raises(Forbidden, match="not an approver"):
            approvals.approve(inst, outsider, request["id"])
    with pytest.raises(Forbidden):
        approvals.approve(inst, Actor.system_actor(), request["id"])


# -- mode any / all, skipped steps, the final move --------------------------------------------

@pytest.mark.parametrize("discount, steps", [
    ("15", ["current", "skipped", "skipped"]),
    ("25", ["current", "waiting", "skipped"]),
    ("35", ["current", "waiting", "waiting"]),
])
def test_steps_whose_condition_is_false_are_skipped(env, discount, steps):
    inst, p = env
    _deal, request = submit_win(inst, p, discount=discount, approver=p.vera.user_id)
    assert [s["state"] for s in request["steps"]] == steps


def test_one_step_any_approval_moves_the_record(env):
    inst, p = env
    deal, request = submit_win(inst, p)
    done = approvals.approve(inst, p.max, request["id"], comment="fine")
    assert done["status"] == "approved" and done["decided_at"] is not None
    assert stage(inst, p, deal) == "won"
    assert [s["state"] for s in done["steps"]] == ["approved", "skipped", "skipped"]
    assert [(d["decision"], d["step"], d["user_id"]) for d in done["decisions"]] == [
        ("approve", "manager", p.max.user_id), ("skipped", "finance", None),
        ("skipped", "named", None)]
    # the record is unlocked again
    records.update(inst, p.mia, "deal", deal["id"], {"notes": "after"},
                   version=records.get(inst, p.admin, "deal", deal["id"])["version"])


def test_mode_all_needs_every_approver(env):
    inst, p = env
    deal, request = submit_win(inst, p, discount="25")
    request = approvals.approve(inst, p.max, request["id"])
    assert request["step"] == "finance"
    assert approver_ids(request) == {p.fay.user_id, p.fred.user_id}
    request = approvals.approve(inst, p.fay, request["id"])
    assert request["status"] == "pending" and request["step"] == "finance"
    assert stage(inst, p, deal) == "review"
    with pytest.raises(Conflict, match="already decided"):
        approvals.approve(inst, p.fay, request["id"])
    assert approvals.inbox(inst, p.fay) == []
    request = approvals.approve(inst, p.fred, request["id"])
    assert request["status"] == "approved" and stage(inst, p, deal) == "won"


def test_field_approver_step(env):
    inst, p = env
    deal, request = submit_win(inst, p, discount="35", approver=p.vera.user_id)
    for approver in (p.max, p.fay, p.fred):
        request = approvals.approve(inst, approver, request["id"])
    assert request["step"] == "named" and approver_ids(request) == {p.vera.user_id}
    request = approvals.approve(inst, p.vera, request["id"])
    assert request["status"] == "approved" and stage(inst, p, deal) == "won"


def test_user_and_field_approvers_and_self_approval_allowed(env):
    inst, p = env
    deal = new_deal(inst, p, stage="review", owner=p.rita)
    result = workflow.fire(inst, p.rita, "deal", deal["id"], "cancel")  # no entry: always
    request = result.approval
    assert result.status == 202 and approver_ids(request) == {p.vera.user_id}
    request = approvals.approve(inst, p.vera, request["id"])
    assert request["step"] == "owner" and approver_ids(request) == {p.rita.user_id}
    request = approvals.approve(inst, p.rita, request["id"])  # allow_self_approval: true
    assert request["step"] == "boss" and approver_ids(request) == {p.mia.user_id}  # owner.manager
    request = approvals.approve(inst, p.mia, request["id"])
    assert request["status"] == "approved" and stage(inst, p, deal) == "lost"


def test_all_steps_skipped_passes_at_once(make_instance, pack):
    quiet = DEAL.replace("approvers: {role: manager}",
                          "approvers: {role: manager}\n        when: \"discount > 90\"")
    assert quiet != DEAL
    inst = make_instance(deal_pack(pack, {"entities/deal.yaml": quiet}))
    p = people(inst)
    deal = new_deal(inst, p, stage="review", discount="15", reason="x")
    result = workflow.fire(inst, p.mia, "deal", deal["id"], "win")
    assert result.status == 200 and result.record["stage"] == "won"
    assert result.approval["status"] == "approved"


# -- reject and recall ------------------------------------------------------------------------

def test_reject_requires_a_comment_and_returns_the_record(env):
    inst, p = env
    deal, request = submit_win(inst, p)
    with pytest.raises(ValidationFailed) as info:
        approvals.reject(inst, p.max, request["id"])
    assert "comment" in info.value.errors
    done = approvals.reject(inst, p.max, request["id"], comment="too cheap")
    assert done["status"] == "rejected"
    assert stage(inst, p, deal) == "draft"  # on_reject: {to: draft}
    assert done["decisions"][-1]["decision"] == "reject"
    assert done["decisions"][-1]["comment"] == "too cheap"
    moves = [e for e in timeline.entries(inst, p.admin, "deal", deal["id"])
             if e["kind"] == "transition"]
    assert moves[0]["data"]["to"] == "draft" and "too cheap" in moves[0]["body"]
    with pytest.raises(Conflict, match="already rejected"):
        approvals.approve(inst, p.max, request["id"])


def test_reject_without_on_reject_leaves_the_record_in_its_state(env):
    inst, p = env
    deal = new_deal(inst, p, stage="review")
    request = workflow.fire(inst, p.rita, "deal", deal["id"], "cancel").approval
    done = approvals.reject(inst, p.vera, request["id"])  # no comment required here
    assert done["status"] == "rejected" and stage(inst, p, deal) == "review"
    current = records.get(inst, p.admin, "deal", deal["id"])
    records.update(inst, p.mia, "deal", deal["id"], {"notes": "unlocked"},
                   version=current["version"])


def test_reject_uses_a_transition_to_the_target_when_there_is_one(make_instance, pack):
    with_back = DEAL.replace("    archive: {from: draft",
                             "    back: {from: review, to: draft, roles: [manager]}\n"
                             "    archive: {from: draft")
    assert with_back != DEAL
    inst = make_instance(deal_pack(pack, {"entities/deal.yaml": with_back}))
    p = people(inst)
    deal, request = submit_win(inst, p)
    approvals.reject(inst, p.max, request["id"], comment="no")
    assert stage(inst, p, deal) == "draft"
    moves = [e for e in timeline.entries(inst, p.admin, "deal", deal["id"])
             if e["kind"] == "transition"]
    assert moves[0]["data"]["transition"] == "back"


def test_recall_by_the_submitter(env):
    inst, p = env
    deal, request = submit_win(inst, p)
    with pytest.raises(Forbidden, match="Only the person who asked"):
        approvals.recall(inst, p.max, request["id"])
    done = approvals.recall(inst, p.mia, request["id"], comment="changed my mind")
    assert done["status"] == "recalled" and stage(inst, p, deal) == "review"
    assert approvals.inbox(inst, p.max) == []
    with pytest.raises(Conflict):
        approvals.approve(inst, p.max, request["id"])
    with pytest.raises(Conflict):
        approvals.recall(inst, p.mia, request["id"])
    # unlocked, and the transition may be asked for again
    again = workflow.fire(inst, p.mia, "deal", deal["id"], "win")
    assert again.status == 202 and again.approval["id"] != request["id"]


def test_admin_may_recall(env):
    inst, p = env
    _deal, request = submit_win(inst, p)
    assert approvals.recall(inst, p.admin, request["id"])["status"] == "recalled"


def test_a_locked_record_refuses_edits_and_deletes(env):
    inst, p = env
    deal, _request = submit_win(inst, p)
    current = records.get(inst, p.admin, "deal", deal["id"])
    with pytest.raises(AwaitingApproval):
        records.update(inst, p.admin, "deal", deal["id"], {"notes": "x"},
                       version=current["version"])
    with pytest.raises(AwaitingApproval):
        records.delete(inst, p.mia, "deal", deal["id"])


def test_stale_request_version_is_refused(env):
    inst, p = env
    _deal, request = submit_win(inst, p, discount="25")
    approvals.approve(inst, p.max, request["id"])
    with pytest.raises(Conflict, match="changed since you loaded it"):
        approvals.approve(inst, p.fay, request["id"], version=request["version"])


# -- escalation -------------------------------------------------------------------------------

def test_escalation_after_time_passes(env, clock):
    inst, p = env
    deal, request = submit_win(inst, p)
    clock.advance(hours=47, minutes=59)
    assert approvals.escalate(inst, clock()) == 0
    assert approvals.inbox(inst, p.dan) == []
    clock.advance(minutes=1)
    assert approvals.escalate(inst, clock()) == 1
    assert approvals.escalate(inst, clock()) == 0  # once per step
    clock.advance(hours=100)
    assert approvals.escalate(inst, clock()) == 0
    (mine,) = approvals.inbox(inst, p.dan)
    step = mine["steps"][0]
    assert {(a["id"], a["escalated"]) for a in step["approvers"]} == {
        (p.max.user_id, False), (p.dan.user_id, True)}
    assert any(d["decision"] == "escalated" for d in mine["decisions"])
    notes = inst.schema.system("notification")
    with inst.engine.connect() as conn:
        subjects = list(conn.execute(sa.select(notes.c.subject).where(
            notes.c.user_id == p.dan.user_id)).scalars())
    assert len(subjects) == 1 and subjects[0].startswith("Escalated to you")
    done = approvals.approve(inst, p.dan, request["id"])
    assert done["status"] == "approved" and stage(inst, p, deal) == "won"


def test_escalation_clock_restarts_with_each_step(env, clock):
    inst, p = env
    _deal, request = submit_win(inst, p, discount="25")
    clock.advance(hours=47)
    approvals.approve(inst, p.max, request["id"])  # the finance step starts now
    clock.advance(hours=10)
    assert approvals.escalate(inst, clock()) == 0  # the finance step has no escalate_after


def test_the_original_approver_may_still_decide_after_escalation(env, clock):
    inst, p = env
    deal, request = submit_win(inst, p)
    clock.advance(hours=49)
    approvals.escalate(inst, clock())
    assert approvals.approve(inst, p.max, request["id"])["status"] == "approved"
    assert approvals.inbox(inst, p.dan) == []


# -- delegation -------------------------------------------------------------------------------

def cancel_request(inst, p):
    deal = new_deal(inst, p, stage="review", owner=p.rita)
    return deal, workflow.fire(inst, p.rita, "deal", deal["id"], "cancel").approval


def test_a_delegate_decides_for_an_approver_who_is_away(env, clock):
    inst, p = env
    today = clock().date()
    set_user(inst, p.vera, away_from=today - timedelta(days=1),
             away_until=today + timedelta(days=3), delegate=p.walt.user_id)
    deal, request = cancel_request(inst, p)
    assert [r["id"] for r in approvals.inbox(inst, p.walt)] == [request["id"]]
    done = approvals.approve(inst, p.walt, request["id"], comment="for Vera")
    decision = done["decisions"][-1]
    assert decision["user_id"] == p.walt.user_id and decision["on_behalf_of"] == p.vera.user_id
    assert done["step"] == "owner"
    entries = [e for e in timeline.entries(inst, p.admin, "deal", deal["id"])
               if e["kind"] == "approval" and e.get("decision") == "approve"]
    assert entries[0]["on_behalf_of"] == p.vera.user_id
    # the delegate was told, on Vera's behalf
    notes = inst.schema.system("notification")
    with inst.engine.connect() as conn:
        subjects = list(conn.execute(sa.select(notes.c.subject).where(
            notes.c.user_id == p.walt.user_id)).scalars())
    assert subjects and subjects[0].startswith("On behalf of Vera")


@pytest.mark.parametrize("away_from, away_until", [
    (None, None), (date(2026, 3, 3), date(2026, 3, 9)), (date(2026, 2, 1), date(2026, 3, 1))])
def test_a_delegate_cannot_decide_when_the_approver_is_not_away(env, away_from, away_until):
    inst, p = env
    set_user(inst, p.vera, away_from=away_from, away_until=away_until,
             delegate=p.walt.user_id)
    _deal, request = cancel_request(inst, p)
    assert approvals.inbox(inst, p.walt) == []
    with pytest.raises(Forbidden):
        approvals.approve(inst, p.walt, request["id"])


def test_delegation_ends_when_the_period_does(env, clock):
    inst, p = env
    today = clock().date()
    set_user(inst, p.vera, away_from=today, away_until=today, delegate=p.walt.user_id)
    _deal, request = cancel_request(inst, p)
    assert approvals.inbox(inst, p.walt)
    clock.advance(days=1)
    assert approvals.inbox(inst, p.walt) == []


def test_the_submitter_cannot_approve_as_a_delegate(env, clock):
    inst, p = env
    today = clock().date()
    set_user(inst, p.max, away_from=today, away_until=today, delegate=p.mia.user_id)
    _deal, request = submit_win(inst, p, by=p.mia)
    with pytest.raises(Forbidden):
        approvals.approve(inst, p.mia, request["id"])


# -- notifications ----------------------------------------------------------------------------

def test_approvers_and_the_submitter_are_notified(env):
    inst, p = env
    set_user(inst, p.max, email="max@example.com")
    set_user(inst, p.mia, email="mia@example.com")
    deal, request = submit_win(inst, p)
    outbox = queued_mail(inst)
    assert [m["to_address"] for m in outbox] == ["max@example.com"]
    assert "Approval needed" in outbox[0]["subject"]
    assert f"/e/deal/{deal['id']}" in outbox[0]["body_text"]
    approvals.approve(inst, p.max, request["id"])
    last = queued_mail(inst)[-1]
    assert last["to_address"] == "mia@example.com" and "approved" in last["subject"]
    notes = inst.schema.system("notification")
    with inst.engine.connect() as conn:
        rows = conn.execute(sa.select(notes.c.user_id, notes.c.link)).all()
    assert {r.user_id for r in rows} == {p.max.user_id, p.mia.user_id}
    assert {r.link for r in rows} == {f"/e/deal/{deal['id']}"}


def test_no_mail_leaves_when_the_change_is_rolled_back(env):
    inst, p = env
    set_user(inst, p.max, email="max@example.com")
    deal = new_deal(inst, p, stage="review", discount="15")  # no reason: `requires` fails
    with pytest.raises(ValidationFailed):
        workflow.fire(inst, p.mia, "deal", deal["id"], "win")
    with pytest.raises(ValidationFailed):
        # the approval opens, then the values make the guard fail: all rolled back
        workflow.fire(inst, p.mia, "deal", deal["id"], "win", values={"reason": "x",
                                                                       "amount": "0"})
    assert queued_mail(inst) == []


# -- concurrency ------------------------------------------------------------------------------

def race(calls):
    """Run the calls at the same moment in threads; returns [result or exception]."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, fn):
        barrier.wait()
        try:
            results[index] = fn()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_concurrent_decisions_exactly_one_wins(env):
    inst, p = env
    set_user(inst, p.dan, active=True)
    users = inst.schema.system("user_role")
    with inst.engine.begin() as conn:  # a third manager, to have three people racing
        conn.execute(users.insert().values(user_id=p.dan.user_id, role="manager"))
    dan = Actor(p.dan.user_id, "dan", frozenset({"manager", "director"}))
    deal, request = submit_win(inst, p)
    results = race([
        lambda: approvals.approve(inst, p.max, request["id"]),
        lambda: approvals.reject(inst, dan, request["id"], comment="no"),
        lambda: approvals.approve(inst, p.max, request["id"]),
    ])
    wins = [r for r in results if isinstance(r, dict)]
    losses = [r for r in results if isinstance(r, Exception)]
    assert len(wins) == 1, results
    assert all(isinstance(e, RecordError) and e.status == 409 for e in losses), losses
    decisions = inst.schema.system("approval_decision")
    with inst.engine.connect() as conn:
        made = conn.execute(sa.select(decisions.c.decision).where(
            decisions.c.decision.in_(["approve", "reject"]))).scalars().all()
    assert len(made) == 1
    expected = "won" if made[0] == "approve" else "draft"
    assert stage(inst, p, deal) == expected


def test_concurrent_approvals_in_mode_all_both_count(env):
    inst, p = env
    deal, request = submit_win(inst, p, discount="25")
    approvals.approve(inst, p.max, request["id"])
    results = race([lambda: approvals.approve(inst, p.fay, request["id"]),
                    lambda: approvals.approve(inst, p.fred, request["id"])])
    assert all(isinstance(r, dict) for r in results), results
    assert stage(inst, p, deal) == "won"


def test_entry_sees_the_person_taking_the_transition(make_instance, pack):
    personal = DEAL.replace('entry: "discount > 10"',
                            "entry: \"discount > 10 and user.username != 'max'\"")
    assert personal != DEAL
    inst = make_instance(deal_pack(pack, {"entities/deal.yaml": personal}))
    p = people(inst)
    first = new_deal(inst, p, stage="review", discount="15", reason="x")
    assert workflow.fire(inst, p.mia, "deal", first["id"], "win").status == 202
    second = new_deal(inst, p, stage="review", discount="15", reason="x")
    assert workflow.fire(inst, p.max, "deal", second["id"], "win").status == 200
