"""What workflows, approvals and automations share: reading a record inside a transaction,
finding users (by role, username, record field, team), timeline entries, record titles and the
one function that moves a record to another state (through `runtime.write.records.update`).

Nothing here decides whether something is allowed; `workflow.py` and `approvals.py` do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from builder.expressions import evaluate, parse, render_template
from builder.expressions.slots import format_value
from builder.model import Entity
from runtime.core.context import eval_context
from runtime.core.errors import NotFound
from runtime.core.instance import Actor, Instance
from runtime.core.values import to_json
from runtime.read import queries
from runtime.read.permissions import hidden_fields
from runtime.write import records

SYSTEM = Actor.system_actor()


def entity_of(inst: Instance, entity: str) -> Entity:
    ent = inst.model.entities.get(entity)
    if ent is None:
        raise NotFound(f"There is no entity '{entity}' in this instance; check the address.")
    return ent


def load(inst: Instance, conn: Connection, entity: str, record_id: Any) -> dict[str, Any] | None:
    """The stored record in the native shape (no permission check), or None."""
    try:
        key = int(record_id)
    except (TypeError, ValueError):
        return None
    return queries.load(inst, conn, entity, key)


def record_link(entity: str, record_id: Any) -> str:
    return f"/e/{entity}/{record_id}"


def record_title(inst: Instance, conn: Connection | None, entity: str,
                 record: Mapping[str, Any]) -> str:
    """The record's title (its `title` template or `title_field`), else "Offer #12"."""
    ent = inst.model.entities[entity]
    try:
        if ent.title:
            text = render_template(ent.title, eval_context(inst, None, entity, record,
                                                           conn=conn))
            if text.strip(" —-"):
                return text
        if ent.title_field and record.get(ent.title_field) not in (None, ""):
            return format_value(record.get(ent.title_field))
    except Exception:  # noqa: BLE001 - a title must never break the action it labels
        pass
    return f"{ent.label.get()} #{record.get('id')}"


# -- users ------------------------------------------------------------------------------------

def roles_including(inst: Instance, role: str) -> frozenset[str]:
    """`role` and every role that inherits it (a director is also a branch manager)."""
    return frozenset({role} | {name for name in inst.model.roles
                               if role in inst.model.role_closure((name,))})


def _active(users: sa.Table) -> sa.ColumnElement:
    return sa.or_(users.c.active.is_(None), users.c.active == sa.true())


def users_with_role(inst: Instance, conn: Connection, role: str) -> list[int]:
    """Active users holding `role` or a role that inherits it, by id."""
    users, user_role = inst.schema.table("user"), inst.schema.system("user_role")
    query = (sa.select(users.c.id).distinct()
             .join(user_role, user_role.c.user_id == users.c.id)
             .where(user_role.c.role.in_(sorted(roles_including(inst, role))), _active(users))
             .order_by(users.c.id))
    return list(conn.execute(query).scalars())


def user_by_username(inst: Instance, conn: Connection, username: str) -> list[int]:
    users = inst.schema.table("user")
    return list(conn.execute(sa.select(users.c.id).where(
        users.c.username == username, _active(users))).scalars())


def users_of_team(inst: Instance, conn: Connection, team: str) -> list[int]:
    """Active members of a team given by name (or by id)."""
    users, teams = inst.schema.table("user"), inst.schema.table("team")
    condition = teams.c.name == str(team)
    if str(team).isdigit():
        condition = sa.or_(condition, teams.c.id == int(team))
    team_ids = sa.select(teams.c.id).where(condition)
    return list(conn.execute(sa.select(users.c.id).where(
        users.c.team.in_(team_ids), _active(users)).order_by(users.c.id)).scalars())


@lru_cache(maxsize=256)
def _path(path: str):  # noqa: ANN202 - a parsed Expression
    return parse(path)


def user_in_field(inst: Instance, conn: Connection, entity: str, record: Mapping[str, Any],
                  path: str) -> list[int]:
    """The active user a record's link field (or a path like `owner.manager`) points to."""
    value = evaluate(_path(path), eval_context(inst, None, entity, record, conn=conn))
    if value is None:
        return []
    users = inst.schema.table("user")
    return list(conn.execute(sa.select(users.c.id).where(
        users.c.id == int(value), _active(users))).scalars())


def resolve_users(inst: Instance, conn: Connection, entity: str, record: Mapping[str, Any],
                  kind: str, value: str | None) -> list[int]:
    """The users named by `{role: R}`, `{user: NAME}`, `{field: F}`, `{team: T}` or the
    record's owner (`kind == "owner"`)."""
    if kind == "role":
        return users_with_role(inst, conn, str(value))
    if kind == "user":
        return user_by_username(inst, conn, str(value))
    if kind == "field":
        return user_in_field(inst, conn, entity, record, str(value))
    if kind == "team":
        return users_of_team(inst, conn, str(value))
    if kind == "owner":
        return user_in_field(inst, conn, entity, record, "owner")
    raise ValueError(f"unknown kind of recipient {kind!r}")


def usernames(inst: Instance, conn: Connection, user_ids: Iterable[int | None]) -> dict[int, str]:
    ids = sorted({u for u in user_ids if u is not None})
    if not ids:
        return {}
    users = inst.schema.table("user")
    rows = conn.execute(sa.select(users.c.id, users.c.username, users.c.full_name).where(
        users.c.id.in_(ids))).all()
    return {row.id: row.full_name or row.username for row in rows}


# -- timeline and moves -----------------------------------------------------------------------

def add_timeline(inst: Instance, conn: Connection, entity: str, record_id: int, kind: str,
                 body: str | None, data: Mapping[str, Any] | None,
                 user_id: int | None) -> None:
    """One entry on the record's timeline (kinds used here: transition, approval,
    automation)."""
    conn.execute(inst.schema.system("timeline").insert().values(
        entity=entity, record_id=int(record_id), kind=kind, body=body,
        data=dict(data or {}), user_id=user_id, created_at=inst.now()))


def move(inst: Instance, conn: Connection, actor: Actor, entity: str, record: Mapping[str, Any],
         transition: str, *, to: str | None = None, comment: str | None = None,
         depth: int = 0) -> dict[str, Any]:
    """Move a record through the one write path (`records.update(..., transition=NAME)`),
    which audits the change, puts it on the timeline with `comment` and runs the hooks.

    The move is made as the system acting for `actor`: the workflow (roles, guard, an
    approval) has authorised it, not the actor's update rule; `updated_by` and the audit
    still name the actor. `to` overrides the transition's target (an approval rejected to its
    `on_reject` state). Returns the record in the native shape."""

    workflow = inst.model.entities[entity].workflow
    assert workflow is not None
    values = {workflow.field: to} if to is not None else {}
    records.update(inst, dataclasses.replace(actor, system=True), entity, record["id"], values,
                   version=record["version"], conn=conn, transition=transition, depth=depth,
                   comment=comment)
    moved = load(inst, conn, entity, record["id"])
    return moved if moved is not None else dict(record)


def as_json(inst: Instance, actor: Actor, entity: str, record: Mapping[str, Any]
            ) -> dict[str, Any]:
    """A record (native shape) as JSON, without the fields `actor` may not see."""

    return to_json(inst.model.entities[entity], record, hidden_fields(inst, actor, entity))
