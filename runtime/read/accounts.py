"""Reading people for the administration pages (docs/admin.md): users with their roles,
team, tokens and open sessions; teams with their members; the records a user owns that are
still open; the state of a user's one-time password links. `runtime.write.accounts` changes
all of this.

Every function takes the caller's connection: the pages call them through
`runtime.read.queries.reading`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from builder.model import BUILTIN_ROLES, Role
from runtime.core.instance import Instance

LANGUAGES = {"en": "English", "es": "Español", "zh": "中文"}
ACCOUNT = "@user"  # the audit "entity" of account events (runtime.write.accounts)
STATUSES = ("active", "inactive", "all")
MAX_USERS = 500  # a list longer than this asks for a search


@dataclass(frozen=True)
class Account:
    """A user as the admin pages show it: `roles` has `admin` when they are an admin."""

    id: int
    username: str
    full_name: str | None
    email: str | None
    active: bool
    roles: frozenset[str]
    team: int | None
    manager: int | None
    language: str | None
    version: int
    delegation: dict[str, Any] = field(default_factory=dict)  # delegate, away_from/until
    values: dict[str, Any] = field(default_factory=dict)  # every column of crm_user

    @property
    def name(self) -> str:
        return self.full_name or self.username


def all_roles(inst: Instance) -> dict[str, Role]:
    """The built-in roles, then the packs' roles, by name."""
    return {**BUILTIN_ROLES, **inst.model.roles}


def role_names(inst: Instance) -> set[str]:
    return set(all_roles(inst))


def _active(users: sa.Table) -> sa.ColumnElement:
    return sa.or_(users.c.active.is_(None), users.c.active == sa.true())


def _roles_by_user(inst: Instance, conn: Connection, ids: Iterable[int]) -> dict[int, set[str]]:
    granted = inst.schema.system("user_role")
    found: dict[int, set[str]] = {}
    for user_id, role in conn.execute(sa.select(granted.c.user_id, granted.c.role).where(
            granted.c.user_id.in_(sorted(set(ids))))):
        found.setdefault(user_id, set()).add(role)
    return found


def _account_of(row: Any, roles: set[str]) -> Account:
    values = dict(row._mapping)
    if values.get("is_admin"):
        roles = roles | {"admin"}
    return Account(
        id=values["id"], username=values["username"], full_name=values.get("full_name"),
        email=values.get("email"), active=values.get("active") is not False,
        roles=frozenset(roles), team=values.get("team"), manager=values.get("manager"),
        language=values.get("language"), version=values.get("version") or 1,
        delegation={k: values.get(k) for k in ("delegate", "away_from", "away_until")},
        values={k: v for k, v in values.items() if k != "password_hash"})


def account(inst: Instance, conn: Connection, user_id: int) -> Account | None:
    users = inst.schema.table("user")
    row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
    if row is None:
        return None
    return _account_of(row, _roles_by_user(inst, conn, [user_id]).get(user_id, set()))


def accounts(inst: Instance, conn: Connection, *, q: str = "", status: str = "active",
             limit: int = MAX_USERS) -> list[Account]:
    """Users by name: `q` matches username, full name or e-mail; `status` one of STATUSES."""
    users = inst.schema.table("user")
    query = sa.select(users).order_by(sa.func.lower(sa.func.coalesce(
        users.c.full_name, users.c.username)), users.c.id).limit(limit)
    if status == "active":
        query = query.where(_active(users))
    elif status == "inactive":
        query = query.where(users.c.active == sa.false())
    for word in q.split()[:5]:
        pattern = f"%{word.lower()[:64]}%"
        query = query.where(sa.or_(*(sa.func.lower(users.c[name]).like(pattern)
                                     for name in ("username", "full_name", "email"))))
    rows = conn.execute(query).all()
    roles = _roles_by_user(inst, conn, [r.id for r in rows])
    return [_account_of(r, roles.get(r.id, set())) for r in rows]


def user_id_of(inst: Instance, conn: Connection, username: str) -> int | None:
    users = inst.schema.table("user")
    return conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar()


def is_active(inst: Instance, conn: Connection, user_id: int) -> bool:
    users = inst.schema.table("user")
    return conn.execute(sa.select(users.c.id).where(
        users.c.id == user_id, _active(users))).first() is not None


def people(inst: Instance, conn: Connection) -> list[tuple[int, str]]:
    """(id, name) of every active user, by name: the choices of the user pickers."""
    users = inst.schema.table("user")
    rows = conn.execute(sa.select(users.c.id, users.c.username, users.c.full_name).where(
        _active(users))).all()
    return sorted(((r.id, r.full_name or r.username) for r in rows),
                  key=lambda pair: (pair[1].lower(), pair[0]))


def names(inst: Instance, conn: Connection, ids: Iterable[int | None]) -> dict[int, str]:
    """{user id: full name, else username}, inactive users included."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    users = inst.schema.table("user")
    return {r.id: r.full_name or r.username for r in conn.execute(sa.select(
        users.c.id, users.c.username, users.c.full_name).where(users.c.id.in_(wanted)))}


def open_session_count(inst: Instance, conn: Connection, user_id: int) -> int:
    table = inst.schema.system("session")
    return int(conn.execute(sa.select(sa.func.count()).where(
        table.c.user_id == user_id, table.c.revoked_at.is_(None))).scalar_one())


@dataclass(frozen=True)
class Token:
    id: int
    label: str | None
    created_at: datetime
    last_used_at: datetime | None


def tokens(inst: Instance, conn: Connection, user_id: int) -> list[Token]:
    table = inst.schema.system("token")
    return [Token(r.id, r.label, r.created_at, r.last_used_at) for r in conn.execute(
        sa.select(table).where(table.c.user_id == user_id).order_by(table.c.id))]


def open_records(inst: Instance, conn: Connection, user_id: int) -> dict[str, list[int]]:
    """{entity: ids} of the records the user owns that are still open: every record of an
    entity without a workflow, and those not in a final state of one with it."""
    found: dict[str, list[int]] = {}
    for ent in inst.model.entities.values():
        if ent.system or "owner" not in ent.fields:
            continue
        table = inst.schema.table(ent.name)
        query = sa.select(table.c.id).where(table.c.owner == user_id).order_by(table.c.id)
        if ent.workflow is not None:
            final = [s.name for s in ent.workflow.states.values() if s.final]
            if final:
                state = table.c[ent.workflow.field]
                query = query.where(sa.or_(state.is_(None), state.not_in(final)))
        ids = list(conn.execute(query).scalars())
        if ids:
            found[ent.name] = ids
    return found


@dataclass(frozen=True)
class LinkState:
    newest: int | None  # the audit id of the user's newest password link
    issued_at: datetime | None
    used: bool  # a password was set through it (or any link) since


def password_link_state(inst: Instance, conn: Connection, user_id: int) -> LinkState:
    audit = inst.schema.system("audit")
    mine = sa.and_(audit.c.entity == ACCOUNT, audit.c.record_id == user_id)
    newest = conn.execute(sa.select(audit.c.id, audit.c.at).where(
        mine, audit.c.action == "password_link").order_by(audit.c.id.desc()).limit(1)).first()
    if newest is None:
        return LinkState(None, None, False)
    used = conn.execute(sa.select(audit.c.id).where(
        mine, audit.c.action == "password_set", audit.c.id > newest.id).limit(1)).first()
    return LinkState(newest.id, newest.at, used is not None)


# -- teams ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Team:
    id: int
    name: str
    manager: int | None
    version: int
    members: tuple[tuple[int, str], ...]  # (user id, name), active users, by name


def teams(inst: Instance, conn: Connection) -> list[Team]:
    table, users = inst.schema.table("team"), inst.schema.table("user")
    rows = conn.execute(sa.select(table).order_by(sa.func.lower(table.c.name))).all()
    members: dict[int, list[tuple[int, str]]] = {}
    for r in conn.execute(sa.select(users.c.id, users.c.team, users.c.username,
                                    users.c.full_name).where(
            users.c.team.is_not(None), _active(users))):
        members.setdefault(r.team, []).append((r.id, r.full_name or r.username))
    return [Team(r.id, r.name, r.manager, r.version or 1, tuple(sorted(
        members.get(r.id, []), key=lambda m: m[1].lower()))) for r in rows]


def team(inst: Instance, conn: Connection, team_id: int) -> Team | None:
    return next((t for t in teams(inst, conn) if t.id == team_id), None)


def team_member_ids(inst: Instance, conn: Connection, team_id: int) -> list[int]:
    users = inst.schema.table("user")
    return list(conn.execute(sa.select(users.c.id).where(users.c.team == team_id)).scalars())


def versions(inst: Instance, conn: Connection, entity: str, ids: Iterable[int]
             ) -> dict[int, int]:
    """{record id: version}: what a change through the write path must name as read."""
    table = inst.schema.table(entity)
    return dict(conn.execute(sa.select(table.c.id, table.c.version).where(
        table.c.id.in_(sorted(set(ids))))).all())


def team_names(inst: Instance, conn: Connection) -> dict[int, str]:
    table = inst.schema.table("team")
    return dict(conn.execute(sa.select(table.c.id, table.c.name)).all())


def day(value: Any) -> date | None:
    """A date column's value as a date (SQLite may hand back a string)."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
