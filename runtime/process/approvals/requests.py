"""The state of approval requests: reading them (rows, definitions, approvers, decisions, the
JSON shape of a request) and deciding who may decide one now (approvers, delegates of those who
are away, maker-checker). `runtime.process.approvals.actions` opens, decides, recalls and
escalates them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from builder.expressions import evaluate_condition
from builder.model import Approval, Entity, Transition
from runtime.core.context import eval_context
from runtime.core.errors import Conflict, Forbidden, NotFound
from runtime.core.instance import Actor, Instance
from runtime.process.workflow_support import entity_of, load, record_link, record_title, usernames

PENDING, APPROVED, REJECTED, RECALLED = "pending", "approved", "rejected", "recalled"
STATUSES = (PENDING, APPROVED, REJECTED, RECALLED)


# -- reading ----------------------------------------------------------------------------------

def tables(inst: Instance) -> tuple[sa.Table, sa.Table, sa.Table]:
    return (inst.schema.system("approval_request"), inst.schema.system("approval_assignee"),
            inst.schema.system("approval_decision"))


def pending_request(inst: Instance, conn: Connection, entity: str,
                    record_id: int) -> dict[str, Any] | None:
    """The pending request of a record (the record is locked while there is one)."""
    requests, _, _ = tables(inst)
    row = conn.execute(sa.select(requests).where(
        requests.c.entity == entity, requests.c.record_id == int(record_id),
        requests.c.status == PENDING)).mappings().first()
    return dict(row) if row is not None else None


def request_row(inst: Instance, conn: Connection, request_id: Any) -> dict[str, Any]:
    requests, _, _ = tables(inst)
    try:
        key = int(request_id)
    except (TypeError, ValueError):
        key = -1
    row = conn.execute(sa.select(requests).where(requests.c.id == key)).mappings().first()
    if row is None:
        raise NotFound(f"There is no approval request {request_id}; check the id in your "
                       "approval inbox (GET /api/v1/approvals).")
    return dict(row)


def definition(inst: Instance, request: Mapping[str, Any]
               ) -> tuple[Entity, Approval | None, Transition | None]:
    """The entity, approval and transition a request was opened for (None when the
    definitions no longer have them)."""
    ent = inst.model.entities.get(request["entity"])
    if ent is None or ent.workflow is None:
        return entity_of(inst, request["entity"]), None, None
    return ent, ent.approvals.get(request["approval"]), ent.workflow.transitions.get(
        request["transition"])


def assignees_of(inst: Instance, conn: Connection, request_id: int,
               step_index: int) -> dict[int, bool]:
    """user id -> escalated, for one step."""
    _, assignees, _ = tables(inst)
    rows = conn.execute(sa.select(assignees.c.user_id, assignees.c.escalated).where(
        assignees.c.request_id == request_id, assignees.c.step_index == step_index)).all()
    return {row.user_id: bool(row.escalated) for row in rows}


def decisions_of(inst: Instance, conn: Connection, request_id: int,
               step_index: int | None = None) -> list[dict[str, Any]]:
    _, _, decisions = tables(inst)
    query = sa.select(decisions).where(decisions.c.request_id == request_id)
    if step_index is not None:
        query = query.where(decisions.c.step_index == step_index)
    return [dict(r) for r in conn.execute(query.order_by(decisions.c.id)).mappings()]


def request_dict(inst: Instance, conn: Connection, request: Mapping[str, Any],
                 *, viewer: Actor | None = None) -> dict[str, Any]:
    """A request as the API and the pages show it."""
    ent, approval, transition = definition(inst, request)
    record = load(inst, conn, request["entity"], request["record_id"])
    decisions = decisions_of(inst, conn, request["id"])
    _, assignees, _ = tables(inst)
    assigned = conn.execute(sa.select(assignees).where(
        assignees.c.request_id == request["id"])).mappings().all()
    names = usernames(inst, conn, [request["submitted_by"],
                                   *(a["user_id"] for a in assigned),
                                   *(d["user_id"] for d in decisions),
                                   *(d["on_behalf_of"] for d in decisions)])
    steps = []
    for index, step in enumerate(approval.steps if approval else ()):
        rows = [d for d in decisions if d["step_index"] == index]
        kinds = {d["decision"] for d in rows}
        if "skipped" in kinds:
            state = "skipped"
        elif "reject" in kinds:
            state = "rejected"
        elif index < request["step_index"] or (request["status"] == APPROVED
                                               and index <= request["step_index"]):
            state = "approved"
        elif index == request["step_index"] and request["status"] == PENDING:
            state = "current"
        elif request["status"] != PENDING:
            state = "not reached"
        elif step.when is not None and record is not None and not evaluate_condition(
                step.when, eval_context(inst, None, request["entity"], record, conn=conn)):
            state = "skipped"  # the record is locked: it will still be false then
        else:
            state = "waiting"
        steps.append({
            "index": index, "name": step.name, "label": step.label.get(), "mode": step.mode,
            "state": state,
            "approvers": [{"id": a["user_id"], "name": names.get(a["user_id"]),
                           "escalated": bool(a["escalated"])}
                          for a in assigned if a["step_index"] == index]})
    current = approval.steps[request["step_index"]] if (
        approval and request["status"] == PENDING
        and 0 <= request["step_index"] < len(approval.steps)) else None
    result = {
        "id": request["id"], "entity": request["entity"], "record_id": request["record_id"],
        "record_title": record_title(inst, conn, request["entity"], record) if record else None,
        "link": record_link(request["entity"], request["record_id"]),
        "approval": request["approval"],
        "label": approval.label.get() if approval else request["approval"],
        "transition": request["transition"],
        "transition_label": transition.label.get() if transition else request["transition"],
        "from_state": request["from_state"], "to_state": transition.to if transition else None,
        "status": request["status"], "step_index": request["step_index"],
        "step": current.name if current else None,
        "step_label": current.label.get() if current else None,
        "steps": steps,
        "submitted_by": request["submitted_by"],
        "submitted_by_name": names.get(request["submitted_by"]) or "system",
        "submitted_at": request["submitted_at"], "step_started_at": request["step_started_at"],
        "decided_at": request["decided_at"], "comment": request["comment"],
        "version": request["version"],
        "decisions": [{
            "step_index": d["step_index"], "step": d["step"], "decision": d["decision"],
            "user_id": d["user_id"], "user_name": names.get(d["user_id"]),
            "on_behalf_of": d["on_behalf_of"], "on_behalf_of_name": names.get(d["on_behalf_of"]),
            "comment": d["comment"], "at": d["at"]} for d in decisions],
    }
    if viewer is not None:
        result["can_decide"] = request["status"] == PENDING and may_decide(
            inst, conn, viewer, request, approval) is not False
        result["can_recall"] = request["status"] == PENDING and (
            viewer.is_admin or (viewer.user_id is not None
                                and viewer.user_id == request["submitted_by"]))
    return result


# -- who may decide ---------------------------------------------------------------------------

def is_away(row: Mapping[str, Any], today: date) -> bool:
    """Whether a user row is away today (a period with at least one end given)."""
    start, end = row.get("away_from"), row.get("away_until")
    if start is None and end is None:
        return False
    return (start is None or start <= today) and (end is None or today <= end)


def delegators(inst: Instance, conn: Connection, user_id: int) -> list[int]:
    """Users who are away today and named `user_id` as their delegate."""
    users = inst.schema.table("user")
    rows = conn.execute(sa.select(users.c.id, users.c.away_from, users.c.away_until).where(
        users.c.delegate == user_id)).mappings().all()
    return [row["id"] for row in rows if is_away(row, inst.today())]


def capacity(inst: Instance, conn: Connection, actor: Actor, request: Mapping[str, Any],
              approval: Approval | None) -> int | None:
    """None when the actor decides as themselves, the id of the away approver they stand in
    for; raises Forbidden or Conflict with the reason otherwise."""
    if approval is None:
        raise Conflict(f"The approval '{request['approval']}' is no longer defined for "
                       f"{request['entity']}; the submitter (or an admin) should recall this "
                       "request.")
    if actor.user_id is None:
        raise Forbidden("Only a signed-in approver can decide an approval request.")
    if not approval.allow_self_approval and actor.user_id == request["submitted_by"]:
        raise Forbidden("You submitted this request, and this approval does not allow "
                        "self-approval: someone else must decide it.")
    step = approval.steps[request["step_index"]]
    assigned = assignees_of(inst, conn, request["id"], request["step_index"])
    decided = decisions_of(inst, conn, request["id"], request["step_index"])
    if any(d["user_id"] == actor.user_id for d in decided):
        raise Conflict(f"You already decided step '{step.label.get()}' of this request.")
    covered = {d["on_behalf_of"] or d["user_id"] for d in decided if d["user_id"]}
    if actor.user_id in assigned:
        return None
    for away in delegators(inst, conn, actor.user_id):
        if away in assigned and away not in covered and (
                approval.allow_self_approval or away != request["submitted_by"]):
            return away
    raise Forbidden(f"You are not an approver of step '{step.label.get()}' of this request "
                    "(nor the delegate of an approver who is away).")


def may_decide(inst: Instance, conn: Connection, actor: Actor,
                      request: Mapping[str, Any], approval: Approval | None) -> int | None | bool:
    """Like capacity, but False instead of raising."""
    try:
        return capacity(inst, conn, actor, request, approval)
    except (Forbidden, Conflict):
        return False
