"""Approval processes (SPEC §5): requests, steps, approvers, decisions, escalation, delegation.

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
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from builder.expressions import evaluate_condition
from builder.model import Approval, Approvers, Step, Transition
from runtime.core.context import eval_context
from runtime.core.db import write_transaction
from runtime.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from runtime.core.instance import Actor, Instance
from runtime.process.approvals.requests import (
    APPROVED,
    PENDING,
    RECALLED,
    REJECTED,
    STATUSES,
    assignees_of,
    capacity,
    decisions_of,
    definition,
    delegators,
    is_away,
    may_decide,
    pending_request,
    request_dict,
    request_row,
    tables,
)
from runtime.process.notifications import notify
from runtime.process.workflow_support import (
    add_timeline,
    entity_of,
    load,
    move,
    record_link,
    record_title,
    resolve_users,
    usernames,
)
from runtime.read.queries import load as load_readable

__all__ = [
    "APPROVED", "PENDING", "RECALLED", "REJECTED", "STATUSES", "approve", "decide",
    "definition", "entry_holds", "escalate", "for_record", "get", "inbox", "is_away",
    "open_request", "pending_request", "recall", "reject", "rejecting", "request_dict"]

DECISIONS = ("approve", "reject")
MAX_ATTEMPTS = 4
REJECTING = "crmforge_approval_rejecting"


class _Lost(Exception):
    """Another decision changed the request first; start again from the new state."""


def get(inst: Instance, actor: Actor, request_id: Any) -> dict[str, Any]:
    """One request, for those involved in it (submitter, approvers, their delegates, those
    who decided) and those who may read its record; NotFound for everyone else."""

    with inst.engine.connect() as conn:
        request = request_row(inst, conn, request_id)
        _, assignees, decisions = tables(inst)
        me = actor.user_id
        involved = actor.all_powerful or me is not None and (
            me == request["submitted_by"]
            or conn.execute(sa.select(assignees.c.user_id).where(
                assignees.c.request_id == request["id"],
                assignees.c.user_id.in_([me, *delegators(inst, conn, me)]))).first()
            is not None
            or conn.execute(sa.select(decisions.c.id).where(
                decisions.c.request_id == request["id"], decisions.c.user_id == me)).first()
            is not None)
        if not involved and (request["entity"] not in inst.model.entities or load_readable(
                inst, conn, request["entity"], request["record_id"], actor=actor) is None):
            raise NotFound(f"There is no approval request {request_id}; check the id in your "
                           "approval inbox (GET /api/v1/approvals).")
        return request_dict(inst, conn, request, viewer=actor)


def for_record(inst: Instance, conn: Connection, entity: str, record_id: int,
               *, viewer: Actor | None = None) -> list[dict[str, Any]]:
    """The record's requests, newest first (the approval panel of the record page)."""
    requests, _, _ = tables(inst)
    rows = conn.execute(sa.select(requests).where(
        requests.c.entity == entity, requests.c.record_id == int(record_id)).order_by(
        requests.c.id.desc())).mappings().all()
    return [request_dict(inst, conn, row, viewer=viewer) for row in rows]


def inbox(inst: Instance, actor: Actor, status: str = PENDING,
          limit: int = 200) -> list[dict[str, Any]]:
    """`pending`: the requests the actor may decide now (as approver or as the delegate of an
    approver who is away). Another status: the requests with that status the actor submitted,
    was an approver of, or decided."""
    if status not in (*STATUSES, "all"):
        raise ValueError(status)
    requests, assignees, decisions = tables(inst)
    if actor.user_id is None:
        return []
    with inst.engine.connect() as conn:
        if status == PENDING:
            people = [actor.user_id, *delegators(inst, conn, actor.user_id)]
            query = sa.select(requests).join(assignees, sa.and_(
                assignees.c.request_id == requests.c.id,
                assignees.c.step_index == requests.c.step_index)).where(
                requests.c.status == PENDING, assignees.c.user_id.in_(people)).distinct()
            rows = conn.execute(query.order_by(requests.c.id).limit(limit)).mappings().all()
            result = []
            for row in rows:
                _ent, approval, _t = definition(inst, row)
                if may_decide(inst, conn, actor, row, approval) is not False:
                    result.append(request_dict(inst, conn, row, viewer=actor))
            return result
        mine = sa.or_(
            requests.c.submitted_by == actor.user_id,
            requests.c.id.in_(sa.select(assignees.c.request_id).where(
                assignees.c.user_id == actor.user_id)),
            requests.c.id.in_(sa.select(decisions.c.request_id).where(
                decisions.c.user_id == actor.user_id)))
        query = sa.select(requests).where(mine)
        if status != "all":
            query = query.where(requests.c.status == status)
        rows = conn.execute(query.order_by(requests.c.id.desc()).limit(limit)).mappings().all()
        return [request_dict(inst, conn, row, viewer=actor) for row in rows]


# -- opening a request ------------------------------------------------------------------------

def entry_holds(inst: Instance, conn: Connection, entity: str, approval: Approval,
                record: Mapping[str, Any], actor: Actor | None = None) -> bool:
    """Whether the transition needs this approval for this record (no `entry`: always).
    `user` in the condition is the person taking the transition."""
    if approval.entry is None:
        return True
    user = actor if actor is not None and actor.user_id is not None else None
    return evaluate_condition(approval.entry, eval_context(inst, user, entity, record,
                                                           conn=conn))


def open_request(inst: Instance, conn: Connection, actor: Actor, entity: str,
                 record: Mapping[str, Any], transition: Transition, approval: Approval,
                 *, comment: str | None = None, depth: int = 0) -> dict[str, Any]:
    """Open a request for `transition` on `record` and start its first step that applies.

    When every step is skipped the transition passes at once (the request is `approved`).
    Returns the request as `request_dict` shows it, plus `record` (the record now)."""
    requests, _, _ = tables(inst)
    workflow = entity_of(inst, entity).workflow
    assert workflow is not None
    if pending_request(inst, conn, entity, record["id"]) is not None:
        raise Conflict("This record is already waiting for an approval; it can move once "
                       "that request is decided or recalled.", record_id=record["id"])
    now = inst.now()
    request_id = conn.execute(requests.insert().values(
        entity=entity, record_id=record["id"], approval=approval.name,
        transition=transition.name, from_state=record.get(workflow.field), status=PENDING,
        step_index=0, step_started_at=None, submitted_by=actor.user_id, submitted_at=now,
        comment=comment, version=1).returning(requests.c.id)).scalar_one()
    request = request_row(inst, conn, request_id)
    asked = f"Asked for approval “{approval.label.get()}” to {transition.label.get().lower()}"
    add_timeline(inst, conn, entity, record["id"], "approval",
                 asked + (f": {comment}" if comment else ""), {
        "event": "requested", "comment": comment, "request": request_id, "approval": approval.name,
        "label": approval.label.get(), "transition": transition.name}, actor.user_id)
    record_now: Mapping[str, Any] = record
    if not _start_step(inst, conn, request, approval, record, 0):
        record_now = _finish(inst, conn, request, approval, transition, record, APPROVED,
                             actor, None, depth=depth)
    result = request_dict(inst, conn, request_row(inst, conn, request_id), viewer=actor)
    result["record"] = dict(record_now)
    return result


def _approvers(inst: Instance, conn: Connection, entity: str, record: Mapping[str, Any],
               approvers: Approvers, request: Mapping[str, Any], approval: Approval,
               step: Step) -> list[int]:
    found = resolve_users(inst, conn, entity, record, approvers.kind, approvers.value)
    submitter = request["submitted_by"]
    if approval.allow_self_approval or submitter is None:
        return found
    return [u for u in found if u != submitter]


def _nobody(approvers: Approvers, step: Step, approval: Approval, excluded_self: bool) -> str:
    what = {"role": f"no active user has the role '{approvers.value}'",
            "user": f"the user '{approvers.value}' does not exist or is inactive",
            "field": f"the record's '{approvers.value}' names no active user"}[approvers.kind]
    if excluded_self:
        what = (f"the only possible approver is the person who asked ({what.split(' ', 1)[1]}"
                " otherwise), and this approval does not allow self-approval")
    return (f"Nobody can approve step '{step.label.get()}' of '{approval.label.get()}': {what}. "
            "Ask an administrator to give the role to someone else (or to fill in the "
            "approver), then try again.")


def _start_step(inst: Instance, conn: Connection, request: Mapping[str, Any],
                approval: Approval, record: Mapping[str, Any], start: int) -> bool:
    """Start the first step from `start` on whose `when` holds; False when none is left."""
    requests, assignees, decisions = tables(inst)
    entity = request["entity"]
    now = inst.now()
    for index in range(start, len(approval.steps)):
        step = approval.steps[index]
        ctx = eval_context(inst, None, entity, record, conn=conn)
        if step.when is not None and not evaluate_condition(step.when, ctx):
            conn.execute(decisions.insert().values(
                request_id=request["id"], step_index=index, step=step.name, user_id=None,
                on_behalf_of=None, decision="skipped", comment=None, at=now))
            continue
        users = _approvers(inst, conn, entity, record, step.approvers, request, approval, step)
        if not users:
            everyone = resolve_users(inst, conn, entity, record, step.approvers.kind,
                                     step.approvers.value)
            raise ValidationFailed({"_record": [_nobody(step.approvers, step, approval,
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
    title = record_title(inst, conn, entity, record)
    ent = inst.model.entities[entity]
    transition = ent.workflow.transitions.get(request["transition"]) if ent.workflow else None
    who = usernames(inst, conn, [request["submitted_by"]]).get(request["submitted_by"],
                                                                "The system")
    action = transition.label.get() if transition else request["transition"]
    subject = f"Approval needed: {action} — {ent.label.get()} {title}"
    if escalated:
        subject = "Escalated to you — " + subject
    body = (f"{who} asks for approval to {action.lower()} {ent.label.get()} '{title}' "
            f"(step '{step.label.get()}' of '{approval.label.get()}'). Approve or reject it "
            "in your approval inbox.")
    notify(inst, conn, users, subject, body, record_link(entity, request["record_id"]))
    users_table = inst.schema.table("user")
    rows = conn.execute(sa.select(users_table.c.id, users_table.c.away_from,
                                  users_table.c.away_until, users_table.c.delegate).where(
        users_table.c.id.in_(users), users_table.c.delegate.is_not(None))).mappings().all()
    names = usernames(inst, conn, users)
    for row in rows:
        if is_away(row, inst.today()) and (approval.allow_self_approval
                                           or row["delegate"] != request["submitted_by"]):
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
    if decision == "reject" and approval.require_comment and not comment:
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
    elif _step_complete(inst, conn, request, step, actor, on_behalf_of):
        if not _start_step(inst, conn, request, approval, record, request["step_index"] + 1):
            _finish(inst, conn, request, approval, transition, record, APPROVED, actor, comment)
    return request_dict(inst, conn, request_row(inst, conn, request["id"]), viewer=actor)


def _step_complete(inst: Instance, conn: Connection, request: Mapping[str, Any], step: Step,
                   actor: Actor, on_behalf_of: int | None) -> bool:
    assigned = assignees_of(inst, conn, request["id"], request["step_index"])
    if step.mode != "all" or assigned.get(on_behalf_of or actor.user_id):
        return True  # `any`, or an escalation approver, who decides the step alone
    approved = {d["on_behalf_of"] or d["user_id"]
                for d in decisions_of(inst, conn, request["id"], request["step_index"])
                if d["decision"] == "approve"}
    return all(user in approved for user, escalated in assigned.items() if not escalated)


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
    if request["submitted_by"] is not None and request["submitted_by"] != actor.user_id:
        ent = inst.model.entities[entity]
        title = record_title(inst, conn, entity, record)
        verb = "approved" if status == APPROVED else "rejected"
        notify(inst, conn, [request["submitted_by"]],
               f"{transition.label.get()} {verb}: {ent.label.get()} {title}",
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
    if not (actor.all_powerful or (actor.user_id is not None
                                   and actor.user_id == request["submitted_by"])):
        raise Forbidden("Only the person who asked for this approval (or an admin) can "
                        "recall it.")
    _claim(inst, conn, request, status=RECALLED, decided_at=inst.now())
    _ent, approval, _transition = definition(inst, request)
    label = approval.label.get() if approval else request["approval"]
    body = f"Recalled the approval request “{label}”" + (f": {comment}" if comment else "")
    add_timeline(inst, conn, request["entity"], request["record_id"], "approval", body, {
        "event": "recalled", "comment": comment, "request": request["id"],
        "approval": request["approval"], "label": label}, actor.user_id)
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
        step = approval.steps[row["step_index"]]
        if not step.escalate_after or \
                row["step_started_at"] + timedelta(seconds=step.escalate_after) > now:
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
    names = usernames(inst, conn, users)
    hours = (step.escalate_after or 0) / 3600
    note = (f"Undecided after {hours:g}h; escalated to " + ", ".join(names.values())
            if users else f"Undecided after {hours:g}h; nobody to escalate to, reminded the "
            "approvers")
    conn.execute(decisions.insert().values(
        request_id=request_id, step_index=index, step=step.name, user_id=None,
        on_behalf_of=None, decision="escalated", comment=note, at=now))
    _notify_approvers(inst, conn, request, approval, step, record, users or list(current),
                      escalated=bool(users))
    return True
