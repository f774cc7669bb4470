"""Approval processes (docs/approvals.md): requests, steps, approvers, decisions, escalation,
delegation.

A transition with an `approval` whose `entry` holds opens a request instead of moving the
record. The request walks the approval's steps in order:

- a step whose `when` is false is skipped (a `skipped` decision row says so);
- when a step starts, its approvers are resolved once (`crm_approval_assignee`): `{role: R}` is
  every active user holding R or a role that inherits it, `{user: NAME}` that user,
  `{field: F}` the user the record's link (or `owner.manager`) points to. With
  `allow_self_approval: false` the submitter is never among them; when nobody is left the
  transition (or the approval that would start the step) is refused with a message that says
  why and what to do;
- `mode: any` (default): the first approval completes the step; `mode: all`: every approver
  must approve. Any rejection rejects the whole request;
- the last approval moves the record to the transition's `to` (through `records.update`, as
  the system acting for the approver); a rejection moves it to `on_reject.to`, or leaves it
  in its `from` state. While the request is pending the record is locked (`records.py`
  refuses user edits) and no transition can be fired on it;
- the submitter (or an admin) may `recall` a pending request;
- `escalate(inst, now)` (run by the worker) hands a step that stayed undecided for
  `escalate_after` to `escalate_to`: those users join the step and any one of them decides it;
- a user who is away (`crm_user.away_from` .. `away_until`) with a `delegate` may be replaced
  by that delegate, and the decision records `on_behalf_of`.

Every decision is a row in `crm_approval_decision` and an entry on the record's timeline.
Concurrent decisions on one request are serialised by `crm_approval_request.version`
(`UPDATE ... WHERE version = :seen`): exactly one wins, the other is retried against the new
state and usually finds the step already decided.

This module is what happens (SQL, notifications, moves); what is decided — who may decide, when
a step is complete, who is nobody and why — is `rules.py`, and reading requests
(`get`, `inbox`, `for_record`) is `requests.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from builder.model import Approval, Approvers, Step, Transition
from runtime.core.context import eval_context
from runtime.core.db import write_transaction
from runtime.core.errors import (
    AwaitingApproval,
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from runtime.core.hooks import DecisionEvent
from runtime.core.instance import Actor, Instance
from runtime.process.approvals import rules
from runtime.process.approvals.requests import (
    assignees_of,
    capacity,
    decisions_of,
    definition,
    pending_request,
    request_dict,
    request_row,
    tables,
)
from runtime.process.approvals.rules import (
    APPROVED,
    DECISIONS,
    PENDING,
    RECALLED,
    REJECTED,
    WAITING,
)
from runtime.process.moves import move
from runtime.process.notifications import notify
from runtime.read.addresses import record_link
from runtime.read.people import resolve_users, usernames
from runtime.read.queries import entity_of, load
from runtime.read.titles import title
from runtime.write.timeline import record_event

MAX_ATTEMPTS = 4
REJECTING = "crmforge_approval_rejecting"


class _Lost(Exception):
    """Another decision changed the request first; start again from the new state."""


# -- opening a request ------------------------------------------------------------------------

def open_request(inst: Instance, conn: Connection, actor: Actor, entity: str,
                 record: Mapping[str, Any], transition: Transition, approval: Approval,
                 *, comment: str | None = None, depth: int = 0) -> dict[str, Any]:
    """Open a request for `transition` on `record` and start its first step that applies.

    When every step is skipped the transition passes at once (the request is `approved`).
    Returns the request as `request_dict` shows it, plus `record` (the record now)."""
    workflow = entity_of(inst, entity).workflow
    assert workflow is not None
    request_id = _insert_request(inst, conn, actor, entity, record, transition, approval,
                                 record.get(workflow.field), comment)
    request = request_row(inst, conn, request_id)
    asked = f"Asked for approval “{approval.label.get()}” to {transition.label.get().lower()}"
    record_event(inst, conn, entity, record["id"], "approval",
                 asked + (f": {comment}" if comment else ""), {
        "event": "requested", "comment": comment, "request": request_id, "approval": approval.name,
        "label": approval.label.get(), "transition": transition.name}, actor.user_id,
        key="approval_requested", params={"approval": approval.name,
                                          "transition": transition.name, "comment": comment})
    record_now: Mapping[str, Any] = record
    if not _start_step(inst, conn, request, approval, record, 0):
        record_now = _finish(inst, conn, request, approval, transition, record, APPROVED,
                             actor, None, depth=depth)
    result = request_dict(inst, conn, request_row(inst, conn, request_id), viewer=actor)
    result["record"] = dict(record_now)
    return result


def _insert_request(inst: Instance, conn: Connection, actor: Actor, entity: str,
                    record: Mapping[str, Any], transition: Transition, approval: Approval,
                    from_state: Any, comment: str | None) -> int:
    """The new request's id. The unique index over the pending requests of a record
    (`crm_approval_request`, schema.PENDING_APPROVAL_INDEX) refuses a second one, so two
    transitions racing past their checks still open one request: the loser gets the same
    409 as a transition fired on a record already waiting. The savepoint keeps the caller's
    transaction usable (PostgreSQL aborts a transaction on an error otherwise)."""
    requests, _, _ = tables(inst)
    try:
        with conn.begin_nested():
            return conn.execute(requests.insert().values(
                entity=entity, record_id=record["id"], approval=approval.name,
                transition=transition.name, from_state=from_state, status=PENDING,
                step_index=0, step_started_at=None, submitted_by=actor.user_id,
                submitted_at=inst.now(), comment=comment, version=1).returning(
                requests.c.id)).scalar_one()
    except IntegrityError:
        if pending_request(inst, conn, entity, record["id"]) is None:
            raise  # not the pending-request index: a real fault, not a race
        raise AwaitingApproval(WAITING, record_id=record["id"], entity=entity) from None


def _approvers(inst: Instance, conn: Connection, entity: str, record: Mapping[str, Any],
               approvers: Approvers, request: Mapping[str, Any], approval: Approval,
               step: Step) -> list[int]:
    found = resolve_users(inst, conn, entity, record, approvers.kind, approvers.value)
    return rules.without_submitter(found, request["submitted_by"], approval)


def _start_step(inst: Instance, conn: Connection, request: Mapping[str, Any],
                approval: Approval, record: Mapping[str, Any], start: int) -> bool:
    """Start the first step from `start` on whose `when` holds; False when none is left."""
    requests, assignees, decisions = tables(inst)
    entity = request["entity"]
    now = inst.now()
    for index in range(start, len(approval.steps)):
        step = approval.steps[index]
        ctx = eval_context(inst, None, entity, record, conn=conn)
        if not rules.step_applies(step, ctx):
            conn.execute(decisions.insert().values(
                request_id=request["id"], step_index=index, step=step.name, user_id=None,
                on_behalf_of=None, decision="skipped", comment=None, at=now))
            continue
        users = _approvers(inst, conn, entity, record, step.approvers, request, approval, step)
        if not users:
            everyone = resolve_users(inst, conn, entity, record, step.approvers.kind,
                                     step.approvers.value)
            raise ValidationFailed({"_record": [rules.nobody(step.approvers, step, approval,
                                                             bool(everyone))]})
        conn.execute(assignees.insert(), [
            {"request_id": request["id"], "step_index": index, "user_id": u,
             "escalated": False} for u in users])
        conn.execute(requests.update().where(requests.c.id == request["id"]).values(
            step_index=index, step_started_at=now))
        _notify_approvers(inst, conn, request, approval, step, record, users)
        return True
    return False


def _notify_approvers(inst: Instance, conn: Connection, request: Mapping[str, Any],
                      approval: Approval, step: Step, record: Mapping[str, Any],
                      users: list[int], escalated: bool = False) -> None:
    entity = request["entity"]
    name = title(inst, entity, record, conn=conn)
    ent = inst.model.entities[entity]
    transition = ent.workflow.transitions.get(request["transition"]) if ent.workflow else None
    who = usernames(inst, conn, [request["submitted_by"]]).get(request["submitted_by"],
                                                                "The system")
    action = transition.label.get() if transition else request["transition"]
    subject = f"Approval needed: {action} — {ent.label.get()} {name}"
    if escalated:
        subject = "Escalated to you — " + subject
    body = (f"{who} asks for approval to {action.lower()} {ent.label.get()} '{name}' "
            f"(step '{step.label.get()}' of '{approval.label.get()}'). Approve or reject it "
            "in your approval inbox.")
    notify(inst, conn, users, subject, body, record_link(entity, request["record_id"]))
    users_table = inst.schema.table("user")
    rows = conn.execute(sa.select(users_table.c.id, users_table.c.away_from,
                                  users_table.c.away_until, users_table.c.delegate).where(
        users_table.c.id.in_(users), users_table.c.delegate.is_not(None))).mappings().all()
    names = usernames(inst, conn, users)
    for row in rows:
        if rules.stands_in(row, inst.today(), approval, request["submitted_by"]):
            notify(inst, conn, [row["delegate"]], f"On behalf of {names.get(row['id'])}: "
                   + subject, body + f" You decide for {names.get(row['id'])}, who is away.",
                   record_link(entity, request["record_id"]))


# -- deciding ---------------------------------------------------------------------------------

def approve(inst: Instance, actor: Actor, request_id: Any, *, comment: str | None = None,
            version: int | None = None, conn: Connection | None = None) -> dict[str, Any]:
    return decide(inst, actor, request_id, "approve", comment=comment, version=version,
                  conn=conn)


def reject(inst: Instance, actor: Actor, request_id: Any, *, comment: str | None = None,
           version: int | None = None, conn: Connection | None = None) -> dict[str, Any]:
    return decide(inst, actor, request_id, "reject", comment=comment, version=version,
                  conn=conn)


def decide(inst: Instance, actor: Actor, request_id: Any, decision: str, *,
           comment: str | None = None, version: int | None = None,
           conn: Connection | None = None) -> dict[str, Any]:
    """Approve or reject the current step of a request as `actor`; returns the request.

    `version` (optional) is the request version the actor saw: a different one is a 409."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    comment = (comment or "").strip() or None
    if conn is not None:
        return _guarded(_decide, inst, conn, actor, request_id, decision, comment, version)
    return _retrying(_decide, inst, actor, request_id, decision, comment, version)


def _retrying(fn: Any, inst: Instance, *args: Any) -> dict[str, Any]:
    for _attempt in range(MAX_ATTEMPTS):
        try:
            with write_transaction(inst.engine) as conn:
                return _guarded(fn, inst, conn, *args)
        except _Lost:
            continue
    raise Conflict("Others kept deciding this request at the same moment; reload it and "
                   "try again.")


def _guarded(fn: Any, inst: Instance, conn: Connection, *args: Any) -> dict[str, Any]:
    try:
        return fn(inst, conn, *args)
    except IntegrityError as exc:  # the same person deciding twice at once
        raise _Lost() from exc


def _claim(inst: Instance, conn: Connection, request: Mapping[str, Any],
           **values: Any) -> None:
    """Compare-and-set on the request's version: the one place concurrent decisions meet."""
    requests, _, _ = tables(inst)
    done = conn.execute(requests.update().where(
        requests.c.id == request["id"], requests.c.version == request["version"]).values(
        version=request["version"] + 1, **values)).rowcount
    if done != 1:
        raise _Lost()


def _decide(inst: Instance, conn: Connection, actor: Actor, request_id: Any, decision: str,
            comment: str | None, version: int | None) -> dict[str, Any]:
    _, _, decisions = tables(inst)
    request = request_row(inst, conn, request_id)
    if request["status"] != PENDING:
        raise Conflict(f"This request was already {request['status']}; there is nothing left "
                       "to decide.")
    if version is not None and int(version) != request["version"]:
        raise Conflict(f"This request changed since you loaded it (it is now at version "
                       f"{request['version']}); reload it and decide again.")
    _ent, approval, transition = definition(inst, request)
    on_behalf_of = capacity(inst, conn, actor, request, approval)
    assert approval is not None
    if transition is None:
        raise Conflict(f"The transition '{request['transition']}' is no longer defined; "
                       "recall this request.")
    step = approval.steps[request["step_index"]]
    if rules.comment_missing(approval, decision, comment):
        raise ValidationFailed({"comment": ["Say why you reject it: this approval requires a "
                                            "comment on rejection."]})
    _claim(inst, conn, request)
    request = {**request, "version": request["version"] + 1}
    now = inst.now()
    conn.execute(decisions.insert().values(
        request_id=request["id"], step_index=request["step_index"], step=step.name,
        user_id=actor.user_id, on_behalf_of=on_behalf_of, decision=decision, comment=comment,
        at=now))
    entity = request["entity"]
    record = load(inst, conn, entity, request["record_id"])
    if record is None:
        raise NotFound("The record of this request no longer exists.")
    if decision == "reject":
        _finish(inst, conn, request, approval, transition, record, REJECTED, actor, comment)
    elif rules.step_complete(step, assignees_of(inst, conn, request["id"], request["step_index"]),
                             decisions_of(inst, conn, request["id"], request["step_index"]),
                             on_behalf_of or actor.user_id):
        if not _start_step(inst, conn, request, approval, record, request["step_index"] + 1):
            _finish(inst, conn, request, approval, transition, record, APPROVED, actor, comment)
    return request_dict(inst, conn, request_row(inst, conn, request["id"]), viewer=actor)


def _finish(inst: Instance, conn: Connection, request: Mapping[str, Any], approval: Approval,
            transition: Transition, record: Mapping[str, Any], status: str, actor: Actor,
            comment: str | None, *, depth: int = 0) -> Mapping[str, Any]:
    """Close the request and move the record: to `to` when approved, to `on_reject.to` (if
    any) when rejected. The move runs as the system acting for the decider: the approval,
    not the decider's edit rights, authorises it."""
    requests, _, _ = tables(inst)
    entity = request["entity"]
    conn.execute(requests.update().where(requests.c.id == request["id"]).values(
        status=status, decided_at=inst.now()))
    workflow = inst.model.entities[entity].workflow
    assert workflow is not None
    label = approval.label.get()
    if status == APPROVED:
        note = f"Approved ({label})" + (f": {comment}" if comment else "")
        record = move(inst, conn, actor, entity, record, transition.name, comment=note,
                      depth=depth)
    elif approval.reject_to and approval.reject_to != record.get(workflow.field):
        note = f"Rejected ({label})" + (f": {comment}" if comment else "")
        record = _move_back(inst, conn, actor, entity, record, transition, approval.reject_to,
                            note, depth)
    inst.hooks.decided(inst, conn, actor, DecisionEvent(entity, record["id"], approval.name,
                                                        status, comment))
    if request["submitted_by"] is not None and request["submitted_by"] != actor.user_id:
        ent = inst.model.entities[entity]
        name = title(inst, entity, record, conn=conn)
        verb = "approved" if status == APPROVED else "rejected"
        notify(inst, conn, [request["submitted_by"]],
               f"{transition.label.get()} {verb}: {ent.label.get()} {name}",
               f"'{approval.label.get()}' was {verb}" + (f": {comment}" if comment else "."),
               record_link(entity, record["id"]))
    return record


def _move_back(inst: Instance, conn: Connection, actor: Actor, entity: str,
               record: Mapping[str, Any], transition: Transition, to: str, note: str,
               depth: int) -> dict[str, Any]:
    """Move a rejected record to `on_reject.to`. A transition of the workflow that goes there
    from the record's state is used when there is one (its automations run: the record did
    go that way); otherwise the move carries the approval's own transition name, flagged so
    that automations `on: {transition: NAME}` do not take it for that transition."""
    workflow = inst.model.entities[entity].workflow
    assert workflow is not None
    state = record.get(workflow.field)
    for candidate in workflow.transitions.values():
        if state in candidate.from_states and candidate.to == to:
            return move(inst, conn, actor, entity, record, candidate.name, comment=note,
                        depth=depth)
    key = (entity, record["id"])
    conn.info.setdefault(REJECTING, set()).add(key)
    try:
        return move(inst, conn, actor, entity, record, transition.name, to=to, comment=note,
                    depth=depth)
    finally:
        conn.info.get(REJECTING, set()).discard(key)


def rejecting(conn: Connection, entity: str, record_id: int) -> bool:
    """Whether the write on `conn` to this record is an approval sending it back (not the
    transition its event names)."""
    return (entity, record_id) in conn.info.get(REJECTING, set())


def recall(inst: Instance, actor: Actor, request_id: Any, *, comment: str | None = None,
           conn: Connection | None = None) -> dict[str, Any]:
    """Withdraw a pending request (its submitter, or an admin); the record stays in its
    `from` state and is unlocked."""
    comment = (comment or "").strip() or None
    if conn is not None:
        return _guarded(_recall, inst, conn, actor, request_id, comment)
    return _retrying(_recall, inst, actor, request_id, comment)


def _recall(inst: Instance, conn: Connection, actor: Actor, request_id: Any,
            comment: str | None) -> dict[str, Any]:
    request = request_row(inst, conn, request_id)
    if request["status"] != PENDING:
        raise Conflict(f"This request was already {request['status']}; it cannot be recalled.")
    if not rules.may_recall(actor, request):
        raise Forbidden("Only the person who asked for this approval (or an admin) can "
                        "recall it.")
    _claim(inst, conn, request, status=RECALLED, decided_at=inst.now())
    _ent, approval, _transition = definition(inst, request)
    label = approval.label.get() if approval else request["approval"]
    body = f"Recalled the approval request “{label}”" + (f": {comment}" if comment else "")
    record_event(inst, conn, request["entity"], request["record_id"], "approval", body, {
        "event": "recalled", "comment": comment, "request": request["id"],
        "approval": request["approval"], "label": label}, actor.user_id,
        key="approval_recalled", params={"approval": request["approval"], "comment": comment})
    waiting = [u for u in assignees_of(inst, conn, request["id"], request["step_index"])
               if u != actor.user_id]
    if waiting:
        notify(inst, conn, waiting, f"Approval request recalled: {request['entity']} "
               f"#{request['record_id']}", "You no longer need to decide it.",
               record_link(request["entity"], request["record_id"]))
    return request_dict(inst, conn, request_row(inst, conn, request["id"]), viewer=actor)


# -- escalation -------------------------------------------------------------------------------

def escalate(inst: Instance, now: datetime | None = None) -> int:
    """Hand each step that has waited past its `escalate_after` to its `escalate_to`
    (once per step); returns how many steps were escalated. Idempotent: the worker calls it
    every minute."""
    requests, _, decisions = tables(inst)
    now = now or inst.now()
    with inst.engine.connect() as conn:
        rows = conn.execute(sa.select(requests).where(
            requests.c.status == PENDING, requests.c.step_started_at.is_not(None)).order_by(
            requests.c.id)).mappings().all()
    count = 0
    for row in rows:
        _ent, approval, _t = definition(inst, row)
        if approval is None or row["step_index"] >= len(approval.steps):
            continue
        if not rules.escalation_due(approval.steps[row["step_index"]], row["step_started_at"],
                                    now):
            continue
        try:
            with write_transaction(inst.engine) as conn:
                if _escalate_one(inst, conn, row["id"], now):
                    count += 1
        except _Lost:
            continue
    return count


def _escalate_one(inst: Instance, conn: Connection, request_id: int, now: datetime) -> bool:
    requests, assignees, decisions = tables(inst)
    request = request_row(inst, conn, request_id)
    if request["status"] != PENDING:
        return False
    _ent, approval, _t = definition(inst, request)
    assert approval is not None
    index = request["step_index"]
    step = approval.steps[index]
    done = conn.execute(sa.select(sa.func.count()).select_from(decisions).where(
        decisions.c.request_id == request_id, decisions.c.step_index == index,
        decisions.c.decision == "escalated")).scalar_one()
    if done:
        return False
    _claim(inst, conn, request)
    record = load(inst, conn, request["entity"], request["record_id"]) or {}
    current = assignees_of(inst, conn, request_id, index)
    users: list[int] = []
    if step.escalate_to is not None:
        users = [u for u in _approvers(inst, conn, request["entity"], record, step.escalate_to,
                                       request, approval, step) if u not in current]
    if users:
        conn.execute(assignees.insert(), [
            {"request_id": request_id, "step_index": index, "user_id": u, "escalated": True}
            for u in users])
    note = rules.escalation_note(step, list(usernames(inst, conn, users).values()))
    conn.execute(decisions.insert().values(
        request_id=request_id, step_index=index, step=step.name, user_id=None,
        on_behalf_of=None, decision="escalated", comment=note, at=now))
    _notify_approvers(inst, conn, request, approval, step, record, users or list(current),
                      escalated=bool(users))
    return True
