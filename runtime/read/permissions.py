"""Who may do what to which records (docs/permissions.md).

An entity's `permissions` map roles to rules. A user's roles are taken with everything they
inherit (`model.role_closure`); several roles combine to the most permissive answer: a record
is readable when ANY role's read rule holds, a field is hidden only when EVERY role that may
read hides it. A role not listed gets nothing. `admin` users and the system actor (automations,
imports, installs) may do everything.

The built-in `user` and `team` entities are readable by every signed-in user — only the
fields `username`, `full_name`, `email`, `team`, `manager`, `active` (users) and `name`,
`manager` (teams) — and writable (and annotated) by admins and by the built-in `user_admin`
role (`manages_people`), which sees and may change every field of theirs and nothing else.

`comment` is the right to add notes and log activities on a record's timeline
(`runtime.write.timeline.add_entry`); a role that does not give it has its `update` rule
(the linker copies it), so who may change a record may annotate it.

`assign` is the right to choose a record's owner: to give a new record another owner than
its creator, and to change the owner of an existing one (see `may_claim` for the exception).

`merge` is the right to merge duplicates (`runtime.write.merge`); a role that does not give it
has its `delete` rule (the linker copies it), as a merge deletes the records it absorbs.

`read` rules run in SQL (`read_filter`), so the row filter holds in lists, counts, search and
single-record reads alike; the other rules are evaluated in Python on the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from builder.expressions import evaluate_condition
from builder.fieldtypes import coerce
from builder.model import Entity, Permission
from runtime.core.context import eval_context, sql_context
from runtime.core.expressions import to_sql

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

Action = Literal["read", "create", "update", "delete", "comment", "assign", "merge"]
ACTIONS = ("read", "create", "update", "delete", "comment", "assign", "merge")
META_FIELDS = ("id", "created_at", "updated_at", "version")
PUBLIC_FIELDS: dict[str, tuple[str, ...]] = {
    "user": ("username", "full_name", "email", "team", "manager", "active"),
    "team": ("name", "manager"),
}
PEOPLE_ROLE = "user_admin"  # builder.model.BUILTIN_ROLES: manages users and teams


def manages_people(actor: Actor, entity: str | None = None) -> bool:
    """Whether the actor administers people (admin or `user_admin`); with `entity`, whether
    that entity is one of the people entities (`user`, `team`) too."""
    return (entity is None or entity in PUBLIC_FIELDS) and (
        actor.all_powerful or PEOPLE_ROLE in actor.roles)


def roles_of(inst: Instance, actor: Actor) -> frozenset[str]:
    """The actor's roles and every role they inherit."""
    return inst.model.role_closure(tuple(actor.roles))


def grants(inst: Instance, actor: Actor, entity: Entity) -> list[Permission]:
    """The permission entries of `entity` that apply to the actor (one per role held)."""
    roles = roles_of(inst, actor)
    return [perm for role, perm in entity.permissions.items() if role in roles]


def can(inst: Instance, actor: Actor, entity: str, action: Action,
        record: Mapping[str, Any] | None = None, *, conn: Connection | None = None) -> bool:
    """Whether the actor may do `action` to `record` of `entity`.

    Without a record the answer is whether the actor may do it to SOME record (a rule that is
    an expression counts as "maybe": the page offers the action, the write checks again).
    `record` may hold JSON values (ISO dates, decimal strings) or Python values.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    if actor.all_powerful:
        return True
    ent = inst.model.entities.get(entity)
    if ent is None:
        return False
    if ent.system:
        return (action == "read" and actor.user_id is not None) or manages_people(actor, entity)
    rules = [getattr(perm, action) for perm in grants(inst, actor, ent)]
    if any(rule is True for rule in rules):
        return True
    conditions = [rule for rule in rules if rule is not False and rule is not True]
    if not conditions:
        return False
    if record is None:
        return True
    ctx = eval_context(inst, actor, entity, native(ent, record), conn=conn)
    return any(evaluate_condition(rule, ctx) for rule in conditions)


def may_claim(inst: Instance, actor: Actor, entity: str, record: Mapping[str, Any]) -> bool:
    """Whether the actor may claim the record: it has an `owner` field and no owner yet, and
    the actor is a user who may read it (the caller read it through their row filter)."""
    ent = inst.model.entities.get(entity)
    return (ent is not None and "owner" in ent.fields and record.get("owner") is None
            and actor.user_id is not None and not actor.system
            and can(inst, actor, entity, "read", record))


def read_filter(inst: Instance, actor: Actor, entity: str,
                table: sa.Table | sa.Alias | None = None) -> ColumnElement | None:
    """The SQL row filter of the records the actor may read; None when they may read all.

    `table` is the table (or an alias of it) the filter is written over; default the
    entity's table. A user with no role granting read gets `false()`.
    """
    if actor.all_powerful:
        return None
    ent = inst.model.entities.get(entity)
    if ent is None or actor.user_id is None:
        return sa.false()
    if ent.system:
        return None
    rules = [perm.read for perm in grants(inst, actor, ent)]
    if any(rule is True for rule in rules):
        return None
    conditions = [rule for rule in rules if rule is not False and rule is not True]
    if not conditions:
        return sa.false()
    base = table if table is not None else inst.schema.table(entity)
    ctx = sql_context(inst, actor, entity)
    clauses = [to_sql(rule, ctx, base=base, condition=True) for rule in conditions]
    return clauses[0] if len(clauses) == 1 else sa.or_(*clauses)


def hidden_fields(inst: Instance, actor: Actor, entity: str) -> frozenset[str]:
    """Fields the actor may not see: hidden for every role of theirs that may read."""
    if manages_people(actor, entity) or actor.all_powerful:
        return frozenset()
    ent = inst.model.entity(entity)
    if ent.system:
        visible = set(PUBLIC_FIELDS.get(entity, ())) | set(META_FIELDS)
        return frozenset(name for name in ent.fields if name not in visible)
    readers = [perm for perm in grants(inst, actor, ent) if perm.read is not False]
    if not readers:  # they see no record at all; the bare record metadata is no secret
        return frozenset(name for name in ent.fields if name not in META_FIELDS)
    hidden = set(readers[0].hidden)
    for perm in readers[1:]:
        hidden &= set(perm.hidden)
    return frozenset(hidden)


def readonly_fields(inst: Instance, actor: Actor, entity: str,
                    action: Literal["create", "update"] = "update") -> frozenset[str]:
    """Fields the actor may not change: read-only (or hidden) for every role of theirs that
    may `action` the entity. Fields that are read-only for everyone (formulas, rollups,
    system fields, the workflow state) are the write path's business, not listed here."""
    if manages_people(actor, entity) or actor.all_powerful:
        return frozenset()
    ent = inst.model.entity(entity)
    if ent.system:
        return frozenset(ent.fields)
    writers = [perm for perm in grants(inst, actor, ent) if getattr(perm, action) is not False]
    if not writers:
        return frozenset(ent.fields)
    readonly = set(writers[0].readonly) | set(writers[0].hidden)
    for perm in writers[1:]:
        readonly &= set(perm.readonly) | set(perm.hidden)
    return frozenset(readonly | hidden_fields(inst, actor, entity))


def state_lock(inst: Instance, actor: Actor, entity: str,
               record: Mapping[str, Any]) -> str | None:
    """Why the record's workflow state keeps the actor from editing it, or None.

    A state with `editable_by: [roles]` may be changed only by users holding one of them.
    """
    if actor.all_powerful:
        return None
    ent = inst.model.entity(entity)
    workflow = ent.workflow
    if workflow is None:
        return None
    state = workflow.states.get(record.get(workflow.field))
    if state is None or state.editable_by is None:
        return None
    if roles_of(inst, actor) & set(state.editable_by):
        return None
    who = ", ".join(state.editable_by) or "nobody (only automations)"
    return (f"Records in state '{state.name}' can be changed only by: {who}. Move the record "
            f"to another state first, or ask someone with one of those roles.")


def native(entity: Entity, record: Mapping[str, Any]) -> dict[str, Any]:
    """Record values as expressions need them: ISO strings become dates, numbers Decimals."""
    result: dict[str, Any] = {}
    for name, value in record.items():
        field = entity.fields.get(name)
        if field is not None and isinstance(value, str) and field.type in (
                "date", "datetime", "decimal", "money", "percent", "integer", "link"):
            try:
                value = coerce(field, value)
            except ValueError:
                pass
        result[name] = value
    return result
