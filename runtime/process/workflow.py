"""Workflows (docs/workflows.md): which transitions a user may take, and taking one.

`available(inst, actor, entity, record)` lists every transition of the entity's workflow with
whether the actor may take it now and, when not, why. `fire(...)` takes one: the checks run in
this order, each with its HTTP answer —

- `version` given and not the record's: 409 (`StaleVersion`, `current` the record without the
  actor's hidden fields);
- the record is waiting for an approval: 409 (`AwaitingApproval`). The record's row is locked
  (SELECT ... FOR UPDATE) while the checks run, and the database holds at most one pending
  request per record, so of several submissions at once one opens the request and the others
  get this 409;
- the record is not in one of the transition's `from` states: 409;
- `roles: [..]` and the actor holds none of them (inherited roles count, admins pass), or
  `roles: []` and the actor is not the system (automations): 403;
- no `roles` key and the actor may not update the record: 403;
- the `when` guard is false: 422;
- a field in `requires` is empty (`values` may fill it in the same call): 422, listing every
  missing field.

Then either the record moves (through `runtime.write.records.update(..., transition=NAME)`, the one
write path, which audits the change and runs the after-write hooks) and the transition goes on
the record's timeline with its comment, or — when the transition has an `approval` whose
`entry` holds — an approval request opens (`runtime.process.approvals`) and the record stays
where it is, locked, until the request is decided (HTTP 202). The move itself is
`runtime.process.moves.move`, which approvals use too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from builder.expressions import evaluate_condition
from builder.guard_words import Voice, describe
from builder.model import Entity, Transition, Workflow
from runtime.core.catalogs import say_in
from runtime.core.context import eval_context
from runtime.core.db import write_transaction
from runtime.core.errors import (
    N_,
    AwaitingApproval,
    Conflict,
    Forbidden,
    NotFound,
    StaleVersion,
    ValidationFailed,
)
from runtime.core.instance import Actor, Instance
from runtime.core.values import to_json
from runtime.process import approvals
from runtime.process.moves import move
from runtime.read.permissions import can, hidden_fields, read_filter, roles_of
from runtime.read.queries import entity_of, load, record_id_of
from runtime.read.titles import number_text
from runtime.write import records


@dataclass
class Result:
    """What firing a transition did: `status` 200 (moved) or 202 (waiting for approval)."""

    status: int
    record: dict[str, Any]
    approval: dict[str, Any] | None = None
    transition: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def moved(self) -> bool:
        return self.status == 200


def workflow_of(inst: Instance, entity: str) -> tuple[Entity, Workflow]:
    ent = entity_of(inst, entity)
    if ent.workflow is None:
        raise NotFound(f"{ent.label.get()} has no workflow, so it has no transitions.")
    return ent, ent.workflow


def transition_of(inst: Instance, entity: str, name: str) -> tuple[Entity, Workflow, Transition]:
    ent, workflow = workflow_of(inst, entity)
    transition = workflow.transitions.get(name)
    if transition is None:
        raise NotFound(f"{ent.label.get()} has no transition '{name}'; it has: "
                       f"{', '.join(workflow.transitions) or 'none'}.")
    return ent, workflow, transition


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def state_label(workflow: Workflow, state: Any, language: str | None = None) -> str:
    found = workflow.states.get(state)
    return found.label.get(language) if found else str(state)


@dataclass(frozen=True)
class Check:
    """Why a transition may not be taken: `code` (state, role, guard, requires, approval) and
    the message for a person; `status` is the HTTP answer `fire` gives."""

    code: str
    status: int
    message: str
    missing: tuple[str, ...] = ()


def check(inst: Instance, conn: Connection, actor: Actor, ent: Entity, transition: Transition,
          record: Mapping[str, Any], *, values: Mapping[str, Any] | None = None,
          waiting: bool | None = None) -> Check | None:
    """The first reason `actor` may not take `transition` on `record` now, or None.

    `waiting`: whether the record has a pending approval request, when the caller has read
    it already (None: read it here)."""
    workflow = ent.workflow
    assert workflow is not None
    language = actor.language
    say = say_in(language)
    if waiting is None:
        waiting = _waiting(inst, conn, ent.name, record)
    if waiting:
        return Check("approval", 409, say(approvals.WAITING))
    state = record.get(workflow.field)
    if state not in transition.from_states:
        allowed = say(N_(" or ")).join(f"'{state_label(workflow, s, language)}'"
                                       for s in transition.from_states)
        return Check("state", 409, say(
            N_("'%(transition)s' can be taken only from %(states)s; this %(thing)s is "
               "'%(state)s'."), transition=transition.label.get(language), states=allowed,
            thing=ent.label.get(language).lower(), state=state_label(workflow, state, language)))
    problem = _role_problem(inst, conn, actor, ent, transition, record)
    if problem:
        return Check("role", 403, problem)
    merged = {**record, **dict(values or {})}
    if transition.when is not None and not evaluate_condition(
            transition.when, eval_context(inst, actor, ent.name, merged, conn=conn)):
        return Check("guard", 422, guard_message(inst, ent, transition, actor.language))
    missing = tuple(name for name in transition.requires if _empty(merged.get(name)))
    if missing:
        labels = say(N_(", ")).join(ent.fields[n].label.get(language) if n in ent.fields else n
                                   for n in missing)
        return Check("requires", 422, say(N_("Fill in %(fields)s before '%(transition)s'."),
                                          fields=labels,
                                          transition=transition.label.get(language)), missing)
    return None


def guard_message(inst: Instance, ent: Entity, transition: Transition,
                  language: str | None = None) -> str:
    """Why the `when` guard refuses, for a person: the transition's `message`, else the guard
    in words built from labels ("Submit for approval needs: Total greater than 0")."""
    if transition.message is not None:
        return transition.message.get(language)
    assert transition.when is not None
    entities = inst.model.entities
    say = say_in(language)
    words = describe(transition.when, lambda name: entities[name].fields
                     if name in entities else None, ent.name, language,
                     Voice(say, lambda value: number_text(value, language=language)))
    return say(N_("%(transition)s needs: %(conditions)s."),
               transition=transition.label.get(language), conditions=words)


def _role_problem(inst: Instance, conn: Connection, actor: Actor, ent: Entity,
                  transition: Transition, record: Mapping[str, Any]) -> str | None:
    language = actor.language
    say, label = say_in(language), transition.label.get(language)
    if transition.roles == ():
        if actor.system:
            return None
        return say(N_("'%(transition)s' is taken only by automations, never by hand."),
                   transition=label)
    if transition.roles is not None:
        if actor.all_powerful or roles_of(inst, actor) & set(transition.roles):
            return None
        who = say(N_(", ")).join(inst.model.roles[r].label.get(language)
                                 if r in inst.model.roles else r for r in transition.roles)
        return say(N_("Only %(roles)s may '%(transition)s'; ask someone with one of those "
                      "roles."), roles=who, transition=label)
    if can(inst, actor, ent.name, "update", record, conn=conn):
        return None
    return say(N_("You may not change this %(thing)s, so you cannot '%(transition)s' it."),
               thing=ent.label.get(language).lower(), transition=label)


def _waiting(inst: Instance, conn: Connection, entity: str, record: Mapping[str, Any]) -> bool:
    """Whether the record has a pending approval request (then no transition is taken)."""
    return approvals.pending_request(inst, conn, entity, record["id"]) is not None


def available(inst: Instance, actor: Actor, entity: str, record: Mapping[str, Any] | int,
              *, conn: Connection | None = None,
              waiting: bool | None = None) -> list[dict[str, Any]]:
    """Every transition of the workflow: `{name, label, to, allowed, reason}` (plus `code`,
    `missing`, `approval`, `from`, `to_label`); `reason` is None when allowed.

    `record` is the record (as stored) or its id; `waiting` as `check` takes it (read once
    here when None, not once per transition)."""
    if conn is None:
        with inst.primary_reader() as own:
            return available(inst, actor, entity, record, conn=own, waiting=waiting)
    ent, workflow = workflow_of(inst, entity)
    if not isinstance(record, Mapping):
        found = load(inst, conn, entity, record_id_of(ent, record))
        if found is not None and not (actor.all_powerful
                                      or _readable(inst, actor, entity, found, conn)):
            found = None
        if found is None:
            raise NotFound(f"There is no {ent.label.get().lower()} {record}.")
        record = found
    if waiting is None:
        waiting = _waiting(inst, conn, entity, record)
    result = []
    for transition in workflow.transitions.values():
        problem = check(inst, conn, actor, ent, transition, record, waiting=waiting)
        needs = None
        if transition.approval and (problem is None or problem.code == "requires"):
            approval = ent.approvals.get(transition.approval)
            if approval is not None and approvals.entry_holds(inst, conn, entity, approval,
                                                              record, actor):
                needs = approval.name
        result.append({
            "name": transition.name, "label": transition.label.get(actor.language),
            "to": transition.to, "to_label": state_label(workflow, transition.to, actor.language),
            "from": list(transition.from_states), "allowed": problem is None,
            "reason": problem.message if problem else None,
            "code": problem.code if problem else None,
            "missing": list(problem.missing) if problem else [], "approval": needs})
    return result


def fire(inst: Instance, actor: Actor, entity: str, record_id: int, transition: str, *,
         comment: str | None = None, values: Mapping[str, Any] | None = None,
         version: int | None = None, conn: Connection | None = None,
         depth: int = 0) -> Result:
    """Take `transition` on a record as `actor` (see the module doc for the checks).

    `values` are saved with the move (e.g. a `requires` field the user fills in the same
    step); `version` (optional) is the version the actor saw — a different one is a 409.
    Runs in `conn` when given (automations), otherwise in a transaction of its own."""
    if conn is None:
        with write_transaction(inst.engine) as own:
            return fire(inst, actor, entity, record_id, transition, comment=comment,
                        values=values, version=version, conn=own, depth=depth)
    ent, workflow, t = transition_of(inst, entity, transition)
    # The row stays locked until the transaction ends (PostgreSQL; SQLite's write transaction
    # holds the whole database): two submissions of one record are checked one after the
    # other, so the second sees the first one's approval request or move.
    record = load(inst, conn, entity, record_id_of(ent, record_id), for_update=True)
    if record is None or not (actor.all_powerful or _readable(inst, actor, entity, record,
                                                               conn)):
        raise NotFound(f"There is no {ent.label.get().lower()} {record_id} (or you may not "
                       "see it).")
    if version is not None and int(version) != record["version"]:
        raise StaleVersion(_as_json(inst, actor, ent, record), entity=entity)
    comment = (comment or "").strip() or None
    values = {k: v for k, v in dict(values or {}).items() if k != workflow.field}
    problem = check(inst, conn, actor, ent, t, record)
    if problem is not None and (problem.code in ("approval", "state", "role") or not values):
        _raise(problem, record)
    if values:

        # Save the values first, as the actor, so that the guard, `requires` and the
        # approval's `entry` see them exactly as stored (formulas included); a refusal below
        # rolls them back with everything else.
        records.update(inst, actor, entity, record["id"], values, version=record["version"],
                       conn=conn, depth=depth)
        record = load(inst, conn, entity, record["id"]) or record
        problem = check(inst, conn, actor, ent, t, record)
        if problem is not None:
            _raise(problem, record)
    approval = ent.approvals.get(t.approval) if t.approval else None
    if approval is not None and approvals.entry_holds(inst, conn, entity, approval, record,
                                                      actor):
        request = approvals.open_request(inst, conn, actor, entity, record, t, approval,
                                         comment=comment, depth=depth)
        moved = request.pop("record")
        status = 200 if request["status"] == approvals.APPROVED else 202
        return Result(status, _as_json(inst, actor, ent, moved), request, t.name)
    moved = move(inst, conn, actor, entity, record, t.name, comment=comment, depth=depth)
    return Result(200, _as_json(inst, actor, ent, moved), None, t.name)


def _as_json(inst: Instance, actor: Actor, ent: Entity, record: Mapping[str, Any]
             ) -> dict[str, Any]:
    """A record as the actor may see it (without their hidden fields): every record `fire`
    puts into an answer or an error goes through here."""
    return to_json(ent, record, hidden_fields(inst, actor, ent.name))


def _readable(inst: Instance, actor: Actor, entity: str, record: Mapping[str, Any],
              conn: Connection) -> bool:
    condition = read_filter(inst, actor, entity)
    if condition is None:
        return True
    table = inst.schema.table(entity)
    return conn.execute(sa.select(table.c.id).where(table.c.id == record["id"],
                                                    condition)).first() is not None


def _raise(problem: Check, record: Mapping[str, Any]) -> None:
    if problem.code == "approval":
        raise AwaitingApproval(problem.message, record_id=record.get("id"))
    if problem.status == 409:
        raise Conflict(problem.message, record_id=record.get("id"))
    if problem.status == 403:
        raise Forbidden(problem.message)
    if problem.code == "requires":
        raise ValidationFailed({name: [f"Required for this step: {problem.message}"]
                                for name in problem.missing})
    raise ValidationFailed({"_record": [problem.message]})
