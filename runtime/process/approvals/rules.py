"""What an approval decides, as functions of plain data: request and user rows as mappings,
user ids, decisions, and the model's `Approval` and `Step`. No SQL, no writes and no clock
(`today` and `now` are arguments), so every rule is tested with a table of cases
(tests/test_approval_rules.py).

- who is away, and whose delegate stands in for them (`is_away`, `stands_in`);
- who approves a step and who is 'nobody' and why (`without_submitter`, `nobody`);
- whether the approval applies, whether a step applies (`entry_holds`, `step_applies`);
- in what capacity a user decides, if at all: as an approver, as the delegate of an approver
  who is away, or not (maker-checker, already decided) (`capacity`); who may recall
  (`may_recall`); whether a rejection lacks its comment (`comment_missing`);
- whether a step is complete given its mode (`any`/`all`) and decisions (`step_complete`),
  what state each step shows (`step_state`), whether a step is due to escalate
  (`escalation_due`) and what the escalation says (`escalation_note`).

`requests.py` reads the data these need; `actions.py` does what follows from them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from builder.expressions import EvalContext, evaluate_condition
from builder.model import Approval, Approvers, Step
from runtime.core.errors import N_, Conflict, Forbidden
from runtime.core.instance import Actor

PENDING, APPROVED, REJECTED, RECALLED = "pending", "approved", "rejected", "recalled"
STATUSES = (PENDING, APPROVED, REJECTED, RECALLED)
DECISIONS = ("approve", "reject")
# the 409 of a transition (or a second submission racing the first) on a record whose
# approval request is pending: one record has at most one
WAITING = N_("This record is waiting for an approval; it can move once the request is decided "
             "or recalled.")


# -- away and delegates -----------------------------------------------------------------------

def is_away(row: Mapping[str, Any], today: date) -> bool:
    """Whether a user row is away today (a period with at least one end given)."""
    start, end = row.get("away_from"), row.get("away_until")
    if start is None and end is None:
        return False
    return (start is None or start <= today) and (end is None or today <= end)


def stands_in(row: Mapping[str, Any], today: date, approval: Approval,
              submitter: int | None) -> bool:
    """Whether the `delegate` of an approver (a user row) decides for them today: the approver
    is away, and the delegate is not the submitter unless self-approval is allowed."""
    return row.get("delegate") is not None and is_away(row, today) and (
        approval.allow_self_approval or row["delegate"] != submitter)


# -- who approves -----------------------------------------------------------------------------

def without_submitter(users: Iterable[int], submitter: int | None,
                      approval: Approval) -> list[int]:
    """The approvers of a step: the users its `approvers` name, less the submitter when the
    approval does not allow self-approval (maker-checker)."""
    found = list(users)
    if approval.allow_self_approval or submitter is None:
        return found
    return [u for u in found if u != submitter]


def nobody(approvers: Approvers, step: Step, approval: Approval, excluded_self: bool) -> str:
    """Why nobody can approve a step, and what to do; `excluded_self` when the submitter was
    the only one and maker-checker left them out."""
    kind, value = approvers.kind, approvers.value
    if excluded_self:
        who = {"role": f"the only active user with the role '{value}'",
               "user": f"the user '{value}'", "field": f"the record's '{value}'"}.get(
            kind, f"the {kind} '{value}'")
        what = (f"the only possible approver is the person who asked ({who}), and this "
                "approval does not allow self-approval")
    else:
        what = {"role": f"no active user has the role '{value}'",
                "user": f"the user '{value}' does not exist or is inactive",
                "field": f"the record's '{value}' names no active user"}.get(
            kind, f"the {kind} '{value}' names no active user")
    return (f"Nobody can approve step '{step.label.get()}' of '{approval.label.get()}': {what}. "
            "Ask an administrator to give the role to someone else (or to fill in the "
            "approver), then try again.")


# -- conditions -------------------------------------------------------------------------------

def entry_holds(approval: Approval, ctx: EvalContext) -> bool:
    """Whether a transition needs this approval for the record of `ctx` (no `entry`:
    always). The caller's context has `user` the person taking the transition."""
    return approval.entry is None or evaluate_condition(approval.entry, ctx)


def step_applies(step: Step, ctx: EvalContext) -> bool:
    """Whether a step is taken for the record of `ctx` (no `when`: always)."""
    return step.when is None or evaluate_condition(step.when, ctx)


# -- deciding ---------------------------------------------------------------------------------

def capacity(approval: Approval | None, request: Mapping[str, Any], user_id: int | None,
             assigned: Mapping[int, bool], decided: Sequence[Mapping[str, Any]],
             away: Sequence[int]) -> int | None:
    """In what capacity `user_id` decides the current step of `request`: None as one of its
    approvers, else the id of the away approver they stand in for. `assigned` is the step's
    {approver: escalated}, `decided` its decisions, `away` the users who are away today and
    named `user_id` their delegate. Raises Forbidden or Conflict with the reason otherwise."""
    if approval is None:
        raise Conflict(f"The approval '{request['approval']}' is no longer defined for "
                       f"{request['entity']}; the submitter (or an admin) should recall this "
                       "request.")
    if user_id is None:
        raise Forbidden("Only a signed-in approver can decide an approval request.")
    if not approval.allow_self_approval and user_id == request["submitted_by"]:
        raise Forbidden("You submitted this request, and this approval does not allow "
                        "self-approval: someone else must decide it.")
    step = approval.steps[request["step_index"]]
    if any(d["user_id"] == user_id for d in decided):
        raise Conflict(f"You already decided step '{step.label.get()}' of this request.")
    if user_id in assigned:
        return None
    covered = {d["on_behalf_of"] or d["user_id"] for d in decided if d["user_id"]}
    for absent in away:
        if absent in assigned and absent not in covered and (
                approval.allow_self_approval or absent != request["submitted_by"]):
            return absent
    raise Forbidden(f"You are not an approver of step '{step.label.get()}' of this request "
                    "(nor the delegate of an approver who is away).")


def may_recall(actor: Actor, request: Mapping[str, Any]) -> bool:
    """Whether `actor` may withdraw the request: its submitter, an admin or the system."""
    return actor.all_powerful or (actor.user_id is not None
                                  and actor.user_id == request["submitted_by"])


def comment_missing(approval: Approval, decision: str, comment: str | None) -> bool:
    """Whether a rejection lacks the comment the approval requires."""
    return decision == "reject" and approval.require_comment and not comment


def step_complete(step: Step, assigned: Mapping[int, bool],
                  decisions: Iterable[Mapping[str, Any]], decider: int | None) -> bool:
    """Whether the step is complete after an approval by `decider` (the approver decided
    for: themselves, or the away approver a delegate stands in for). `mode: any`: at once;
    `mode: all`: once every approver who was not added by an escalation approved — an
    escalation approver decides the step alone."""
    if step.mode != "all" or assigned.get(decider):  # type: ignore[arg-type]
        return True
    approved = {d["on_behalf_of"] or d["user_id"] for d in decisions
                if d["decision"] == "approve"}
    return all(user in approved for user, escalated in assigned.items() if not escalated)


def step_state(index: int, request: Mapping[str, Any], kinds: set[str],
               applies: Callable[[], bool]) -> str:
    """What step `index` of a request shows: skipped, rejected, approved, current,
    not reached or waiting. `kinds` are the decisions made on it; `applies()` says whether
    its `when` holds (asked only of a step still to come: the record is locked, so what it
    says now it will say then)."""
    status, current = request["status"], request["step_index"]
    if "skipped" in kinds:
        return "skipped"
    if "reject" in kinds:
        return "rejected"
    if index < current or (status == APPROVED and index <= current):
        return "approved"
    if index == current and status == PENDING:
        return "current"
    if status != PENDING:
        return "not reached"
    return "waiting" if applies() else "skipped"


def escalation_due(step: Step, started_at: datetime | None, now: datetime) -> bool:
    """Whether a step that started at `started_at` has waited past its `escalate_after`."""
    return bool(step.escalate_after) and started_at is not None and \
        started_at + timedelta(seconds=step.escalate_after or 0) <= now


def escalation_note(step: Step, names: Sequence[str]) -> str:
    """The decision row's comment when a step escalates to `names` (none: the approvers are
    reminded)."""
    hours = (step.escalate_after or 0) / 3600
    if names:
        return f"Undecided after {hours:g}h; escalated to " + ", ".join(names)
    return f"Undecided after {hours:g}h; nobody to escalate to, reminded the approvers"
