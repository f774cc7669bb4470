"""The state of approval requests: reading them (rows, definitions, approvers, decisions, the
JSON shape of a request, a record's requests, a user's inbox) and gathering what the rules need
to say who may decide one now (`capacity`, `may_decide`) and whether a transition needs an
approval (`entry_holds`). The rules themselves are `rules.py`;
`runtime.process.approvals.actions` opens, decides, recalls and escalates requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from builder.model import Approval, Entity, Step, Transition
from runtime.core import rowcache
from runtime.core.context import eval_context
from runtime.core.db import is_sqlite
from runtime.core.errors import Conflict, Forbidden, NotFound
from runtime.core.instance import Actor, Instance
from runtime.process.approvals import rules
from runtime.process.approvals.rules import PENDING, STATUSES, is_away
from runtime.read.addresses import record_link
from runtime.read.people import usernames
from runtime.read.queries import entity_of, load
from runtime.read.titles import title

# -- reading ----------------------------------------------------------------------------------

def tables(inst: Instance) -> tuple[sa.Table, sa.Table, sa.Table]:
    return (inst.schema.system("approval_request"), inst.schema.system("approval_assignee"),
            inst.schema.system("approval_decision"))


def pending_request(inst: Instance, conn: Connection, entity: str,
                    record_id: int) -> dict[str, Any] | None:
    """The pending request of a record (the record is locked while there is one)."""
    requests, _, _ = tables(inst)
    if _none_pending(conn, requests, entity):
        return None
    row = conn.execute(sa.select(requests).where(
        requests.c.entity == entity, requests.c.record_id == int(record_id),
        requests.c.status == PENDING)).mappings().first()
    return dict(row) if row is not None else None


def _none_pending(conn: Connection, requests: sa.Table, entity: str) -> bool:
    """Whether no record of `entity` awaits approval, asked once in a bulk write on SQLite —
    whose write transaction holds the database — and kept on its connection until it writes
    a request (`rowcache`); False elsewhere: each record is asked about."""
    if rowcache.rows_of(conn) is None or not is_sqlite(conn):
        return False
    question = ("pending", entity)
    answer = rowcache.cached(conn, requests.name, question)
    if answer is rowcache.MISSING:
        found = conn.execute(sa.select(requests.c.id).where(
            requests.c.entity == entity, requests.c.status == PENDING).limit(1)).first()
        answer = None if found is None else {"id": found.id}
        rowcache.keep(conn, requests.name, question, answer)
    return answer is None


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


def _state_label(ent: Entity | None, state: str, language: str | None = None) -> str:
    found = ent.workflow.states.get(state) if ent is not None and ent.workflow else None
    return found.label.get(language) if found is not None else state


def request_dict(inst: Instance, conn: Connection, request: Mapping[str, Any],
                 *, viewer: Actor | None = None) -> dict[str, Any]:
    """A request as the API and the pages show it (labels in the viewer's language)."""
    lang = viewer.language if viewer is not None else None
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
        kinds = {d["decision"] for d in decisions if d["step_index"] == index}

        def applies(step: Step = step) -> bool:
            return record is None or rules.step_applies(step, eval_context(
                inst, None, request["entity"], record, conn=conn))

        state = rules.step_state(index, request, kinds, applies)
        steps.append({
            "index": index, "name": step.name, "label": step.label.get(lang), "mode": step.mode,
            "state": state,
            "approvers": [{"id": a["user_id"], "name": names.get(a["user_id"]),
                           "escalated": bool(a["escalated"])}
                          for a in assigned if a["step_index"] == index]})
    current = approval.steps[request["step_index"]] if (
        approval and request["status"] == PENDING
        and 0 <= request["step_index"] < len(approval.steps)) else None
    result = {
        "id": request["id"], "entity": request["entity"], "record_id": request["record_id"],
        "record_title": title(inst, request["entity"], record, conn=conn) if record else None,
        "link": record_link(request["entity"], request["record_id"]),
        "approval": request["approval"],
        "label": approval.label.get(lang) if approval else request["approval"],
        "transition": request["transition"],
        "transition_label": transition.label.get(lang) if transition else request["transition"],
        "from_state": request["from_state"], "to_state": transition.to if transition else None,
        "to_state_label": _state_label(ent, transition.to, lang) if transition else None,
        "status": request["status"], "step_index": request["step_index"],
        "step": current.name if current else None,
        "step_label": current.label.get(lang) if current else None,
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
        result["can_recall"] = request["status"] == PENDING and rules.may_recall(viewer,
                                                                                 request)
    return result


# -- who may decide ---------------------------------------------------------------------------

def delegators(inst: Instance, conn: Connection, user_id: int | None) -> list[int]:
    """Users who are away today and named `user_id` as their delegate."""
    if user_id is None:
        return []
    users = inst.schema.table("user")
    rows = conn.execute(sa.select(users.c.id, users.c.away_from, users.c.away_until).where(
        users.c.delegate == user_id)).mappings().all()
    return [row["id"] for row in rows if is_away(row, inst.today())]


def capacity(inst: Instance, conn: Connection, actor: Actor, request: Mapping[str, Any],
             approval: Approval | None) -> int | None:
    """None when the actor decides as themselves, the id of the away approver they stand in
    for; raises Forbidden or Conflict with the reason otherwise (`rules.capacity`)."""
    index = request["step_index"]
    assigned = assignees_of(inst, conn, request["id"], index)
    # whom the actor stands in for matters only when they are not an approver themselves
    away = [] if actor.user_id in assigned else delegators(inst, conn, actor.user_id)
    return rules.capacity(approval, request, actor.user_id, assigned,
                          decisions_of(inst, conn, request["id"], index), away)


def may_decide(inst: Instance, conn: Connection, actor: Actor,
               request: Mapping[str, Any], approval: Approval | None) -> int | None | bool:
    """Like capacity, but False instead of raising."""
    try:
        return capacity(inst, conn, actor, request, approval)
    except (Forbidden, Conflict):
        return False


def entry_holds(inst: Instance, conn: Connection, entity: str, approval: Approval,
                record: Mapping[str, Any], actor: Actor | None = None) -> bool:
    """Whether the transition needs this approval for this record (`rules.entry_holds`);
    `user` in the condition is the person taking the transition (none for the system)."""
    if approval.entry is None:
        return True
    user = actor if actor is not None and actor.user_id is not None else None
    return rules.entry_holds(approval, eval_context(inst, user, entity, record, conn=conn))


# -- a request, a record's requests, an inbox -------------------------------------------------

def get(inst: Instance, actor: Actor, request_id: Any) -> dict[str, Any]:
    """One request, for those involved in it (submitter, approvers, their delegates, those
    who decided) and those who may read its record; NotFound for everyone else."""

    with inst.primary_reader() as conn:
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
        if not involved and (request["entity"] not in inst.model.entities or load(
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
    with inst.primary_reader() as conn:  # the primary: the inbox after a decision shows it
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
