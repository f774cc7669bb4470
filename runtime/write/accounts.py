"""Changing people's accounts (docs/admin.md): users with their roles and delegation, teams
and their members, deactivation, API tokens, one-time password links — and the audit rows of
what happens to an account (sign-ins, failed sign-ins, tokens, links).

User and team fields go through the one write path (`runtime.write.records`), which checks the
actor's rights (admins and `user_admin`, `runtime.read.permissions.manages_people`) and audits
them. What is kept beside the record — roles (`crm_user_role`, admin as `crm_user.is_admin`),
the delegation columns, tokens, the password — is written here and audited as a change of the
user (`field` "roles", "delegate", ...). Events that change no field are audit rows of the
pseudo-entity `@user` (`ACCOUNT`), which no record timeline shows; `/admin/audit` shows both.

Only an admin may make or unmake an admin, or change an admin's account: a user administrator
manages everyone else.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.engine import Connection

from runtime.core import sessions
from runtime.core.db import in_transaction
from runtime.core.errors import N_, BadRequest, Forbidden, NotFound, ValidationFailed
from runtime.core.instance import Actor, Instance
from runtime.core.passwords import hash_password
from runtime.core.values import json_value
from runtime.read import accounts as reading
from runtime.read.permissions import manages_people
from runtime.read.queries import reading as connected
from runtime.read.titles import zone_named
from runtime.write import records

ACCOUNT = reading.ACCOUNT  # the audit "entity" of account events
ADMIN = "admin"
TOKEN_PREFIX = "crmf_"
LINK_LIFETIME = timedelta(days=3)  # how long a one-time password link works
MIN_PASSWORD = 8
EVENTS = ("sign_in", "sign_in_failed", "password_link", "password_set", "token_create",
          "token_revoke", "deactivate")


# -- the audit of accounts --------------------------------------------------------------------

def record_event(inst: Instance, conn: Connection, actor_id: int | None, user_id: int | None,
                 kind: str, detail: Mapping[str, Any] | None = None) -> int:
    """An account event about `user_id` (0: no such user) done by `actor_id`; its audit id."""
    audit = inst.schema.system("audit")
    return int(conn.execute(audit.insert().values(
        entity=ACCOUNT, record_id=user_id or 0, action=kind, field=None, old_value=None,
        new_value=json.dumps(dict(detail)) if detail else None, user_id=actor_id,
        at=inst.now()).returning(audit.c.id)).scalar_one())


def _audit_change(inst: Instance, conn: Connection, actor: Actor, user_id: int, field: str,
                  old: Any, new: Any) -> None:
    """A change of what is kept beside the user record, as a change of the user."""
    if old == new:
        return
    conn.execute(inst.schema.system("audit").insert().values(
        entity="user", record_id=user_id, action="update", field=field,
        old_value=None if old is None else json.dumps(json_value(old)),
        new_value=None if new is None else json.dumps(json_value(new)),
        user_id=actor.user_id, at=inst.now()))


def record_sign_in(inst: Instance, username: str, user_id: int | None, ok: bool,
                   address: str) -> None:
    """A sign-in (`ok`) or a failed one, with the username typed and the client address."""
    def work(conn: Connection) -> None:
        known = user_id if ok else reading.user_id_of(inst, conn, username)
        record_event(inst, conn, user_id if ok else None, known,
                     "sign_in" if ok else "sign_in_failed",
                     {"username": username[:64], "address": address})
    in_transaction(inst.engine, None, work)


# -- who may change whom ----------------------------------------------------------------------

def _require_people_admin(actor: Actor) -> None:
    if not manages_people(actor):
        raise Forbidden(N_("Only administrators and user administrators manage people."))


def _guard_admin(actor: Actor, roles: Iterable[str], what: str) -> None:
    """Forbidden when a user administrator touches what only an admin may."""
    if ADMIN in roles and not actor.all_powerful:
        raise Forbidden(f"Only an administrator may {what}.")


def _known_roles(inst: Instance, roles: Iterable[str]) -> list[str]:
    """The roles, checked against the model's and the built-in ones."""
    wanted = list(dict.fromkeys(roles))
    unknown = [r for r in wanted if r not in reading.role_names(inst)]
    if unknown:
        raise ValidationFailed({"roles": [f"there is no role '{unknown[0][:63]}'"]})
    return wanted


# -- users ------------------------------------------------------------------------------------

def create_user(inst: Instance, actor: Actor, values: Mapping[str, Any],
                roles: Iterable[str], language: str | None = None,
                time_zone: str | None = None) -> dict[str, Any]:
    """A new active user with `roles`, `language` and `time_zone` (and no password: give
    them `issue_password_link`)."""
    _require_people_admin(actor)
    wanted = _known_roles(inst, roles)
    _guard_admin(actor, wanted, "make someone an administrator")
    zone = checked_zone(time_zone)

    def work(conn: Connection) -> dict[str, Any]:
        user = records.create(inst, actor, "user", {**values, "active": True}, conn=conn)
        _write_roles(inst, conn, actor, user["id"], wanted)
        _write_setting(inst, conn, actor, user["id"], "language", None, language)
        _write_setting(inst, conn, actor, user["id"], "time_zone", None, zone)
        return user
    return in_transaction(inst.engine, None, work)


def update_user(inst: Instance, actor: Actor, user_id: int, values: Mapping[str, Any],
                roles: Iterable[str], language: str | None,
                version: int | None, time_zone: str | None = None) -> dict[str, Any]:
    """Change a user's fields, roles, language and time zone together."""
    _require_people_admin(actor)
    wanted = _known_roles(inst, roles)
    zone = checked_zone(time_zone)

    def work(conn: Connection) -> dict[str, Any]:
        current = _account(inst, conn, user_id)
        _guard_admin(actor, [*wanted, *current.roles], "change an administrator's roles")
        if user_id == actor.user_id and ADMIN in current.roles and ADMIN not in wanted:
            raise BadRequest(N_("You cannot take away your own admin role; ask another "
                                "administrator."))
        user = records.update(inst, actor, "user", user_id, values, version=version,
                              conn=conn)
        _write_roles(inst, conn, actor, user_id, wanted)
        _write_setting(inst, conn, actor, user_id, "language", current.language, language)
        _write_setting(inst, conn, actor, user_id, "time_zone",
                       current.values.get("time_zone"), zone)
        return user
    return in_transaction(inst.engine, None, work)


def _account(inst: Instance, conn: Connection, user_id: int) -> reading.Account:
    account = reading.account(inst, conn, user_id)
    if account is None:
        raise NotFound(f"There is no user with id {user_id}.")
    return account


def _write_roles(inst: Instance, conn: Connection, actor: Actor, user_id: int,
                 roles: list[str]) -> None:
    """Replace the user's roles (admin is the `is_admin` flag, as `crmforge user` keeps it)."""
    users, granted = inst.schema.table("user"), inst.schema.system("user_role")
    before = reading.account(inst, conn, user_id)
    conn.execute(granted.delete().where(granted.c.user_id == user_id))
    plain = [r for r in roles if r != ADMIN]
    if plain:
        conn.execute(granted.insert(), [{"user_id": user_id, "role": r} for r in plain])
    conn.execute(users.update().where(users.c.id == user_id).values(is_admin=ADMIN in roles))
    _audit_change(inst, conn, actor, user_id, "roles",
                  sorted(before.roles) if before else [], sorted(roles))


def set_own_language(inst: Instance, actor: Actor, language: str | None) -> None:
    """The signed-in user's own language; None follows the browser (docs/languages.md).
    Anyone may choose theirs."""
    if language is not None and language not in reading.LANGUAGES:
        raise BadRequest(N_("Pick a language from the list."))

    def work(conn: Connection) -> None:
        current = _account(inst, conn, actor.user_id)
        _write_setting(inst, conn, actor, actor.user_id, "language", current.language,
                       language)
    in_transaction(inst.engine, None, work)


def checked_zone(name: str | None) -> str | None:
    """`name` as a user's time zone: an IANA name ("Europe/Madrid"), or None for the
    instance's; ValidationFailed (on `time_zone`) for a name that is no zone."""
    text = (name or "").strip()
    if not text:
        return None
    if zone_named(text) is None:
        raise ValidationFailed({"time_zone": [N_(
            "is not a time zone: pick one from the list, such as Europe/Madrid or "
            "Asia/Shanghai")]})
    return text


def set_own_time_zone(inst: Instance, actor: Actor, name: str | None) -> str | None:
    """The signed-in user's own time zone (None: the instance's); anyone may choose theirs.
    Returns the zone stored."""
    zone = checked_zone(name)

    def work(conn: Connection) -> None:
        current = _account(inst, conn, actor.user_id)
        _write_setting(inst, conn, actor, actor.user_id, "time_zone",
                       current.values.get("time_zone"), zone)
    in_transaction(inst.engine, None, work)
    return zone


def _write_setting(inst: Instance, conn: Connection, actor: Actor, user_id: int,
                   column: str, old: str | None, new: str | None) -> None:
    """One of the user's own settings (`language`, `time_zone`), audited."""
    users = inst.schema.table("user")
    conn.execute(users.update().where(users.c.id == user_id).values({column: new}))
    _audit_change(inst, conn, actor, user_id, column, old, new)


def set_delegation(inst: Instance, actor: Actor, user_id: int, delegate: int | None,
                   away_from: date | None, away_until: date | None) -> None:
    """Who approves for the user while they are away, from–to (both days included)."""
    _require_people_admin(actor)
    if delegate == user_id:
        raise ValidationFailed({"delegate": [N_("a user cannot stand in for themselves")]})
    if away_from and away_until and away_until < away_from:
        raise ValidationFailed({"away_until": [N_("the last day is before the first")]})
    if delegate is not None and (away_from is None or away_until is None):
        raise ValidationFailed({"away_from": [N_("give the first and last day away")]})

    def work(conn: Connection) -> None:
        current = _account(inst, conn, user_id)
        _guard_admin(actor, current.roles, "change an administrator's account")
        if delegate is not None and reading.account(inst, conn, delegate) is None:
            raise ValidationFailed({"delegate": [N_("there is no such user")]})
        new = {"delegate": delegate, "away_from": away_from, "away_until": away_until}
        users = inst.schema.table("user")
        conn.execute(users.update().where(users.c.id == user_id).values(**new))
        for name, value in new.items():
            _audit_change(inst, conn, actor, user_id, name, current.delegation[name], value)
    in_transaction(inst.engine, None, work)


@dataclass(frozen=True)
class Deactivated:
    sessions: int
    tokens: int
    handed_over: int


def deactivate(inst: Instance, actor: Actor, user_id: int,
               hand_to: int | None = None) -> Deactivated:
    """Make the user inactive: their sessions (the hook of `runtime.core.sessions`) and API
    tokens end in the same transaction; their records keep them as owner unless `hand_to`
    names an active user, who then owns their open records (`reading.open_records`), each
    changed through the write path. Handing over needs the right to assign them: admins."""
    _require_people_admin(actor)
    if user_id == actor.user_id:
        raise BadRequest(N_("You cannot deactivate yourself; ask another administrator."))
    if hand_to is not None and not actor.all_powerful:
        raise Forbidden(N_("Only an administrator may hand records over to someone else."))
    if hand_to == user_id:
        raise ValidationFailed({"hand_to": [N_("pick someone else to take the records")]})

    def work(conn: Connection) -> Deactivated:
        current = _account(inst, conn, user_id)
        _guard_admin(actor, current.roles, "deactivate an administrator")
        if hand_to is not None and not reading.is_active(inst, conn, hand_to):
            raise ValidationFailed({"hand_to": [N_("the new owner must be an active user")]})
        ended = reading.open_session_count(inst, conn, user_id)
        records.update(inst, actor, "user", user_id, {"active": False},
                       version=current.version, conn=conn)
        tokens = _revoke_tokens(inst, conn, user_id)
        moved = _hand_over(inst, conn, actor, user_id, hand_to) if hand_to else 0
        record_event(inst, conn, actor.user_id, user_id, "deactivate", {
            "sessions": ended, "tokens": tokens, "handed_over": moved, "to": hand_to})
        return Deactivated(ended, tokens, moved)
    return in_transaction(inst.engine, None, work)


def reactivate(inst: Instance, actor: Actor, user_id: int) -> None:
    _require_people_admin(actor)

    def work(conn: Connection) -> None:
        current = _account(inst, conn, user_id)
        _guard_admin(actor, current.roles, "reactivate an administrator")
        records.update(inst, actor, "user", user_id, {"active": True},
                       version=current.version, conn=conn)
    in_transaction(inst.engine, None, work)


def _hand_over(inst: Instance, conn: Connection, actor: Actor, user_id: int,
               hand_to: int) -> int:
    moved = 0
    for entity, ids in reading.open_records(inst, conn, user_id).items():
        for record_id, version in reading.versions(inst, conn, entity, ids).items():
            records.update(inst, actor, entity, record_id, {"owner": hand_to},
                           version=version, conn=conn)
            moved += 1
    return moved


def _revoke_tokens(inst: Instance, conn: Connection, user_id: int) -> int:
    tokens = inst.schema.system("token")
    return conn.execute(tokens.delete().where(tokens.c.user_id == user_id)).rowcount or 0


# -- API tokens -------------------------------------------------------------------------------

def create_token(inst: Instance, actor: Actor, user_id: int, label: str | None = None,
                 conn: Connection | None = None) -> str:
    """A new API token for `user_id`. The caller shows it once: only its hash is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)

    def work(conn: Connection) -> str:
        account = reading.account(inst, conn, user_id)
        if account is None:
            raise LookupError(f"there is no user with id {user_id}")
        _guard_admin(actor, account.roles, "create a token for an administrator")
        table = inst.schema.system("token")
        token_id = conn.execute(table.insert().values(
            user_id=user_id, token_hash=sessions.hash_token(token), label=label,
            created_at=inst.now()).returning(table.c.id)).scalar_one()
        record_event(inst, conn, actor.user_id, user_id, "token_create",
                     {"token": token_id, "label": label})
        return token
    return in_transaction(inst.engine, conn, work)


def revoke_token(inst: Instance, actor: Actor, user_id: int, token_id: int) -> bool:
    """Delete the user's token `token_id`; False when they have no such token."""
    _require_people_admin(actor)
    table = inst.schema.system("token")

    def work(conn: Connection) -> bool:
        _guard_admin(actor, _account(inst, conn, user_id).roles,
                     "revoke an administrator's token")
        done = conn.execute(table.delete().where(table.c.id == token_id,
                                                 table.c.user_id == user_id)).rowcount
        if done:
            record_event(inst, conn, actor.user_id, user_id, "token_revoke",
                         {"token": token_id})
        return bool(done)
    return in_transaction(inst.engine, None, work)


# -- passwords and one-time links -------------------------------------------------------------

class LinkError(BadRequest):
    """A password link that is forged, used, replaced by a newer one, or too old."""


def store_password(inst: Instance, conn: Connection, user_id: int, password: str) -> None:
    """A new password hash; every web session of the user ends with it."""
    users = inst.schema.table("user")
    conn.execute(users.update().where(users.c.id == user_id).values(
        password_hash=hash_password(password)))
    sessions.revoke_all(inst, conn, user_id)


def _signer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt="crmforge-set-password")


def issue_password_link(inst: Instance, actor: Actor, user_id: int, secret: str) -> str:
    """A token for `/set-password/<token>`: signed with the app's `secret`, valid for
    LINK_LIFETIME, once, and only while it is the user's newest link."""
    _require_people_admin(actor)

    def work(conn: Connection) -> str:
        account = _account(inst, conn, user_id)
        _guard_admin(actor, account.roles, "reset an administrator's password")
        if not account.active:
            raise BadRequest(N_("The user is inactive: reactivate them first."))
        link_id = record_event(inst, conn, actor.user_id, user_id, "password_link")
        return str(_signer(secret).dumps({"u": user_id, "l": link_id}))
    return in_transaction(inst.engine, None, work)


def check_password_link(inst: Instance, secret: str, token: str,
                        conn: Connection | None = None) -> reading.Account:
    """The account a link sets the password of; LinkError saying why it does not work."""
    try:
        data = _signer(secret).loads(token[:512])
        user_id, link_id = int(data["u"]), int(data["l"])
    except (BadSignature, KeyError, TypeError, ValueError):
        raise LinkError(N_("This link is not valid: copy the whole link, or ask your "
                           "administrator for a new one.")) from None
    with connected(inst, conn) as c:
        state = reading.password_link_state(inst, c, user_id)
        account = reading.account(inst, c, user_id)
    if account is None or not account.active or state.newest != link_id or state.used:
        raise LinkError(N_("This link has been used or replaced by a newer one; ask your "
                           "administrator for a new link."))
    if state.issued_at is None or inst.now() - state.issued_at > LINK_LIFETIME:
        raise LinkError(N_("This link has expired; ask your administrator for a new one."))
    return account


def use_password_link(inst: Instance, secret: str, token: str, password: str) -> int:
    """Set the password through a link, which then stops working; the user's id."""
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed({"password": [f"use at least {MIN_PASSWORD} characters"]})

    def work(conn: Connection) -> int:
        account = check_password_link(inst, secret, token, conn)
        store_password(inst, conn, account.id, password)
        record_event(inst, conn, account.id, account.id, "password_set")
        return account.id
    return in_transaction(inst.engine, None, work)



# -- teams ------------------------------------------------------------------------------------

def save_team(inst: Instance, actor: Actor, team_id: int | None, values: Mapping[str, Any],
              members: Iterable[int], version: int | None = None) -> dict[str, Any]:
    """Create (`team_id` None) or change a team, and make `members` exactly its members
    (each user's `team` changed through the write path)."""
    _require_people_admin(actor)
    wanted = set(members)

    def work(conn: Connection) -> dict[str, Any]:
        if team_id is None:
            team = records.create(inst, actor, "team", values, conn=conn)
        else:
            team = records.update(inst, actor, "team", team_id, values, version=version,
                                  conn=conn)
        current = set(reading.team_member_ids(inst, conn, team["id"]))
        moves = {**{u: team["id"] for u in wanted - current},
                 **{u: None for u in current - wanted}}
        read = reading.versions(inst, conn, "user", moves)
        if len(read) != len(moves):
            raise ValidationFailed({"members": [N_("pick members from the list")]})
        for user_id, user_version in sorted(read.items()):
            records.update(inst, actor, "user", user_id, {"team": moves[user_id]},
                           version=user_version, conn=conn)
        return team
    return in_transaction(inst.engine, None, work)

