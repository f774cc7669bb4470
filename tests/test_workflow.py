"""Workflows (SPEC §4): which transitions are offered, and firing them — roles, guards,
required fields, final states, `editable_by` locks, the timeline, versions."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from workflow_pack import DEAL, deal_pack, new_deal, people

from runtime.core.errors import (
    AwaitingApproval,
    Conflict,
    Forbidden,
    NotFound,
    StaleVersion,
    ValidationFailed,
)
from runtime.core.instance import Actor
from runtime.process import workflow
from runtime.read import timeline
from runtime.write import records


@pytest.fixture
def env(make_instance, pack):
    inst = make_instance(deal_pack(pack))
    return inst, people(inst)


def codes(inst, actor, deal) -> dict[str, Any]:
    return {t["name"]: t["code"] for t in workflow.available(inst, actor, "deal", deal["id"])}


# -- what is offered --------------------------------------------------------------------------

@pytest.mark.parametrize("who, stage, values, expected", [
    # the owner (a rep) in draft: submit (may update), lose needs a reason, win wrong state
    ("rita", "draft", {}, {"submit": None, "win": "state", "lose": "requires",
                           "archive": "role", "cancel": "state"}),
    ("rita", "draft", {"reason": "budget"}, {"submit": None, "lose": None}),
    # another rep may not update rita's deal, so may not take a transition without roles
    ("ron", "draft", {}, {"submit": "role", "lose": "requires"}),
    # finance may only read
    ("fay", "draft", {"reason": "x"}, {"submit": "role", "lose": "role", "archive": "role"}),
    # in review: win is for managers (rita is a rep), the guard and `requires` follow
    ("rita", "review", {"reason": "x"}, {"submit": "state", "win": "role", "lose": None}),
    ("mia", "review", {}, {"win": "requires", "lose": "requires"}),
    ("mia", "review", {"reason": "x"}, {"win": None, "cancel": None}),
    ("mia", "review", {"reason": "x", "amount": "0"}, {"win": "guard"}),
    # admins pass role checks, but `roles: []` is for automations only
    ("admin", "draft", {"reason": "x"}, {"submit": None, "lose": None, "archive": "role"}),
    # final states offer nothing
    ("mia", "won", {"reason": "x"}, dict.fromkeys(
        ["submit", "win", "lose", "archive", "cancel"], "state")),
    ("admin", "lost", {"reason": "x"}, dict.fromkeys(
        ["submit", "win", "lose", "archive", "cancel"], "state")),
])
def test_available(env, who, stage, values, expected):
    inst, p = env
    deal = new_deal(inst, p, stage=stage, **values)
    got = codes(inst, getattr(p, who), deal)
    assert {name: got[name] for name in expected} == expected


def test_available_shape(env):
    inst, p = env
    deal = new_deal(inst, p)
    rows = workflow.available(inst, p.rita, "deal", deal["id"])
    assert [r["name"] for r in rows] == ["submit", "win", "lose", "archive", "cancel"]
    for row in rows:
        assert {"name", "label", "to", "allowed", "reason"} <= set(row)
        assert row["allowed"] == (row["reason"] is None)
    lose = rows[2]
    assert lose["missing"] == ["reason"] and "Reason" in lose["reason"]
    win = workflow.available(inst, p.mia, "deal", new_deal(
        inst, p, stage="review", reason="x", discount="15")["id"])[1]
    assert win["label"] == "Mark as won" and win["allowed"] and win["approval"] == "big_discount"


def test_available_says_when_an_approval_is_pending(env):
    inst, p = env
    deal = new_deal(inst, p, stage="review", reason="x", discount="15")
    workflow.fire(inst, p.mia, "deal", deal["id"], "win")
    assert set(codes(inst, p.max, deal).values()) == {"approval"}


# -- firing -----------------------------------------------------------------------------------

@pytest.mark.parametrize("who, stage, values, transition, fire_values, error, to", [
    ("rita", "draft", {}, "submit", None, None, "review"),
    ("ron", "draft", {}, "submit", None, Forbidden, None),  # may not update rita's deal
    ("fay", "draft", {}, "submit", None, Forbidden, None),
    ("admin", "draft", {}, "submit", None, None, "review"),
    ("rita", "review", {}, "submit", None, Conflict, None),  # wrong state
    ("rita", "review", {"reason": "x"}, "win", None, Forbidden, None),  # not a manager
    ("mia", "review", {"reason": "x"}, "win", None, None, "won"),
    ("mia", "review", {"reason": "x", "amount": "0"}, "win", None, ValidationFailed, None),
    ("mia", "review", {}, "win", None, ValidationFailed, None),  # requires reason
    ("mia", "review", {}, "win", {"reason": "filled now"}, None, "won"),
    ("mia", "review", {"reason": "x"}, "lose", None, None, "lost"),  # manager inherits rep
    ("rita", "draft", {}, "lose", {"reason": "no budget"}, None, "lost"),
    ("admin", "draft", {}, "archive", None, Forbidden, None),  # roles: [] — not even admin
    ("system", "draft", {}, "archive", None, None, "archived"),
    ("mia", "won", {"reason": "x"}, "lose", None, Conflict, None),  # final state
])
def test_fire(env, who, stage, values, transition, fire_values, error, to):
    inst, p = env
    deal = new_deal(inst, p, stage=stage, **values)
    actor = Actor.system_actor() if who == "system" else getattr(p, who)
    if error is not None:
        with pytest.raises(error) as info:
            workflow.fire(inst, actor, "deal", deal["id"], transition, values=fire_values)
        assert info.value.message
        assert records.get(inst, p.admin, "deal", deal["id"])["stage"] == stage
        return
    result = workflow.fire(inst, actor, "deal", deal["id"], transition, values=fire_values)
    assert result.status == 200 and result.approval is None
    assert result.record["stage"] == to
    assert records.get(inst, p.admin, "deal", deal["id"])["stage"] == to


@pytest.mark.parametrize("error, status", [(Conflict, 409), (Forbidden, 403),
                                           (ValidationFailed, 422), (NotFound, 404)])
def test_error_statuses(error, status):
    assert error.status == status


def test_requires_lists_every_missing_field(make_instance, pack):
    two = DEAL.replace("requires: [reason]\n      approval", "requires: [reason, notes]\n"
                       "      approval")
    assert two != DEAL
    inst = make_instance(deal_pack(pack, {"entities/deal.yaml": two}))
    p = people(inst)
    deal = new_deal(inst, p, stage="review")
    with pytest.raises(ValidationFailed) as info:
        workflow.fire(inst, p.mia, "deal", deal["id"], "win")
    assert set(info.value.errors) == {"reason", "notes"}


def test_values_are_saved_with_the_move_and_rolled_back_when_refused(env):
    inst, p = env
    deal = new_deal(inst, p, stage="review", amount="0")
    with pytest.raises(ValidationFailed):  # the guard amount > 0 still fails
        workflow.fire(inst, p.mia, "deal", deal["id"], "win", values={"reason": "good"})
    assert records.get(inst, p.admin, "deal", deal["id"])["reason"] is None
    result = workflow.fire(inst, p.mia, "deal", deal["id"], "win",
                           values={"reason": "good", "amount": "5"})
    assert result.record["stage"] == "won" and result.record["reason"] == "good"


def test_the_state_field_cannot_be_set_through_values(env):
    inst, p = env
    deal = new_deal(inst, p)
    result = workflow.fire(inst, p.rita, "deal", deal["id"], "submit",
                           values={"stage": "won", "notes": "n"})
    assert result.record["stage"] == "review" and result.record["notes"] == "n"


def test_transition_is_on_the_timeline(env, clock):
    inst, p = env
    deal = new_deal(inst, p)
    clock.advance(minutes=5)
    workflow.fire(inst, p.rita, "deal", deal["id"], "submit", comment="ready for review")
    entries = [e for e in timeline.entries(inst, p.admin, "deal", deal["id"])
               if e["kind"] == "transition"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["user_id"] == p.rita.user_id and entry["body"] == "ready for review"
    assert entry["data"] == {"transition": "submit", "from": "draft", "to": "review"}
    assert entry["at"] == "2026-03-02T09:05:00Z"


def test_stale_version_is_refused(env):
    inst, p = env
    deal = new_deal(inst, p)
    records.update(inst, p.rita, "deal", deal["id"], {"notes": "edited"},
                   version=deal["version"])
    with pytest.raises(StaleVersion):
        workflow.fire(inst, p.rita, "deal", deal["id"], "submit", version=deal["version"])
    result = workflow.fire(inst, p.rita, "deal", deal["id"], "submit",
                           version=deal["version"] + 1)
    assert result.record["stage"] == "review"


def test_unknown_transition_and_record(env):
    inst, p = env
    deal = new_deal(inst, p)
    with pytest.raises(NotFound, match="submit, win"):
        workflow.fire(inst, p.rita, "deal", deal["id"], "sumbit")
    with pytest.raises(NotFound):
        workflow.fire(inst, p.rita, "deal", 999, "submit")
    with pytest.raises(NotFound):
        workflow.available(inst, p.rita, "deal", 999)


def test_a_record_the_actor_cannot_read_is_not_found(make_instance, pack):
    private = DEAL.replace(
        'rep:     {read: true, create: true, update: "owner == user.id"',
        'rep:     {read: "owner == user.id", create: true, update: "owner == user.id"')
    assert private != DEAL
    inst = make_instance(deal_pack(pack, {"entities/deal.yaml": private}))
    p = people(inst)
    deal = new_deal(inst, p)
    with pytest.raises(NotFound):
        workflow.fire(inst, p.ron, "deal", deal["id"], "submit")


# -- editable_by ------------------------------------------------------------------------------

def test_editable_by_locks_edits_but_not_transitions(env):
    inst, p = env
    deal = new_deal(inst, p, stage="review", reason="x")
    with pytest.raises(Forbidden, match="manager"):
        records.update(inst, p.rita, "deal", deal["id"], {"notes": "n"},
                       version=deal["version"])
    changed = records.update(inst, p.mia, "deal", deal["id"], {"notes": "n"},
                             version=deal["version"])
    # a rep may still take `lose` (roles [rep]) out of the locked state
    result = workflow.fire(inst, p.rita, "deal", deal["id"], "lose",
                           version=changed["version"])
    assert result.record["stage"] == "lost"


def test_editable_by_refuses_values_in_the_same_call(env):
    inst, p = env
    deal = new_deal(inst, p, stage="review")
    with pytest.raises(Forbidden):
        workflow.fire(inst, p.rita, "deal", deal["id"], "lose", values={"reason": "x"})


# -- approvals hand-off -----------------------------------------------------------------------

def test_transition_with_approval_waits_and_locks(env):
    inst, p = env
    deal = new_deal(inst, p, stage="review", reason="x", discount="15")
    result = workflow.fire(inst, p.mia, "deal", deal["id"], "win", comment="please")
    assert result.status == 202 and not result.moved
    assert result.record["stage"] == "review"
    assert result.approval["status"] == "pending" and result.approval["step"] == "manager"
    with pytest.raises(AwaitingApproval):
        records.update(inst, p.mia, "deal", deal["id"], {"notes": "x"},
                       version=result.record["version"])
    with pytest.raises(AwaitingApproval):
        workflow.fire(inst, p.rita, "deal", deal["id"], "lose")
    with pytest.raises(AwaitingApproval):
        workflow.fire(inst, Actor.system_actor(), "deal", deal["id"], "lose")


def test_entry_false_passes_without_approval(env):
    inst, p = env
    deal = new_deal(inst, p, stage="review", reason="x", discount="5")
    result = workflow.fire(inst, p.mia, "deal", deal["id"], "win")
    assert result.status == 200 and result.record["stage"] == "won" and result.approval is None
    requests = inst.schema.system("approval_request")
    with inst.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(requests)).scalar() == 0
