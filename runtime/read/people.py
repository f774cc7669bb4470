"""Finding people: the active users a role (inherited roles included), a username, a team or a
record's user link names — who approves a step, whom an automation notifies or assigns — and
the names to show for user ids.

Inactive users (`crm_user.active` false) are never found; a NULL `active` counts as active.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from builder.expressions import Expression, evaluate, parse
from runtime.core.context import eval_context
from runtime.core.instance import Instance

KINDS = ("role", "user", "field", "team", "owner")


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
    """The active user with this username (a list of one, or empty)."""
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


# A pure parse of a path string (no model in it), so a plain lru_cache: see core/caches.py.
@lru_cache(maxsize=256)
def _path(path: str) -> Expression:
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
    raise ValueError(f"unknown kind of recipient {kind!r}; one of {', '.join(KINDS)}")


def usernames(inst: Instance, conn: Connection, user_ids: Iterable[int | None]) -> dict[int, str]:
    """{user id: full name, else username} of the given users (None and unknown ids left
    out)."""
    ids = sorted({u for u in user_ids if u is not None})
    if not ids:
        return {}
    users = inst.schema.table("user")
    rows = conn.execute(sa.select(users.c.id, users.c.username, users.c.full_name).where(
        users.c.id.in_(ids))).all()
    return {row.id: row.full_name or row.username for row in rows}


def user_details(inst: Instance, conn: Connection, user_ids: Iterable[int],
                 language: str | None = None) -> dict[int, str]:
    """{user id: "Sales rep, Sales manager · North team"}: the role labels and team a user
    picker shows beside each name, so that two people of one name can be told apart."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    users, teams = inst.schema.table("user"), inst.schema.table("team")
    user_role = inst.schema.system("user_role")
    team_of = dict(conn.execute(sa.select(users.c.id, teams.c.name).join(
        teams, teams.c.id == users.c.team).where(users.c.id.in_(ids))).all())
    roles: dict[int, list[str]] = {}
    for user_id, role in conn.execute(sa.select(user_role.c.user_id, user_role.c.role).where(
            user_role.c.user_id.in_(ids)).order_by(user_role.c.role)):
        known = inst.model.roles.get(role)
        roles.setdefault(user_id, []).append(known.label.get(language) if known else role)
    admins = set(conn.execute(sa.select(users.c.id).where(
        users.c.id.in_(ids), users.c.is_admin == sa.true())).scalars())
    details = {}
    for user_id in ids:
        parts = [", ".join(roles.get(user_id) or (["Administrator"] if user_id in admins
                                                   else []))]
        parts.append(team_of.get(user_id) or "")
        details[user_id] = " · ".join(p for p in parts if p)
    return details
