"""Who is acting: passwords, the web session, API tokens, and the Actor they turn into.

- The web signs in with a username and password (argon2, `runtime.core.passwords`). Password
  guessing is throttled per username and client address (`crm_login_throttle`, below).
- A signed-in browser holds a random session key in Flask's signed cookie; the server keeps its
  sha256 in `crm_session` and checks it on every request, so a session ends on the server: sign
  out, sign out everywhere, a password change, the user made inactive (`runtime.core.sessions`).
- The API sends `Authorization: Bearer <token>`; tokens are random, shown once, and stored only
  as their sha256 (`crm_token.token_hash`).
- An inactive user can do neither: their sessions and tokens stop working at once.

The throttle, and why it is shaped so (docs/security.md says it for users):

- Every attempt is counted before its password is looked at, in one transaction of two
  UPSERT ... RETURNING statements: one counter for (username, client address), one for the
  username from every address (address ""). N parallel guesses are counted N times, so at most
  the allowed number of them reach the password check, on SQLite and PostgreSQL alike.
- (username, address): LOGIN_ATTEMPTS attempts per LOGIN_WINDOW. The next ones from that
  address are refused (429) until the window ends. Other addresses are not affected, so a
  stranger who types wrong passwords for a colleague's username blocks only themselves.
- The username from every address counts the attempts that were checked and failed. Past
  USERNAME_FAILURES in a window the username is under attack from several places: each address
  then gets ATTEMPTS_UNDER_ATTACK attempt per window instead of LOGIN_ATTEMPTS. That slows a
  distributed guesser to one guess per fresh address, and never locks out the owner: the right
  password from an address that has not failed in the window is always checked.
- A success forgives its address's failures and does not count against the username.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext, ngettext
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from runtime.core import caches, sessions
from runtime.core.db import in_transaction, write_transaction
from runtime.core.errors import N_
from runtime.core.instance import Actor, Instance
from runtime.core.passwords import hash_password, verify_password
from runtime.core.sessions import hash_token
from runtime.http import i18n
from runtime.http.current import get_instance
from runtime.http.error_handler import wants_json
from runtime.write import accounts

TOKEN_PREFIX = accounts.TOKEN_PREFIX
MAX_TOKEN_LENGTH = 256
TOUCH_EVERY = timedelta(minutes=5)  # how stale crm_token/crm_session last use may get
LOGIN_ATTEMPTS = 5  # sign-ins of one username from one address within LOGIN_WINDOW
LOGIN_WINDOW = timedelta(minutes=15)
USERNAME_FAILURES = 20  # failed checks of one username from anywhere: then it is under attack
ATTEMPTS_UNDER_ATTACK = 1  # sign-ins of such a username from one address within LOGIN_WINDOW
ANY_ADDRESS = ""  # the address of a username's counter over every address
UNKNOWN_ADDRESS = "unknown"
SESSION_KEY = "sid"
SESSION_LIFETIME = timedelta(days=31)  # a session ends this long after its sign-in
BUILTIN_USER_COLUMNS = ("password_hash", "is_admin", "language", "time_zone", "away_from",
                        "away_until", "delegate")

_dummy_hash: list[str] = []


# -- users ------------------------------------------------------------------------------------

class TooManyAttempts(Exception):
    """Too many sign-ins for this username from this address within LOGIN_WINDOW."""

    def __init__(self, retry_after: timedelta, under_attack: bool = False):
        minutes = max(1, -(-int(retry_after.total_seconds()) // 60))
        wait = f"try again in {minutes} minute{'s' if minutes != 1 else ''}"
        if under_attack:
            message = ("Sign-ins for this username are slowed down after many failed attempts "
                       f"from several places: {wait}.")
        else:
            message = f"Too many failed sign-ins for this username from your network: {wait}."
        super().__init__(message)
        self.retry_after = retry_after
        self.under_attack = under_attack


def authenticate(inst: Instance, username: str, password: str,
                 address: str | None = None) -> Actor | None:
    """The Actor of an active user whose password matches; None otherwise.

    The attempt is counted first (see the module's docstring); TooManyAttempts — without
    looking at the password — when this address has used up its attempts for the username.
    """
    username = username.strip()[:255]
    if not username:
        return None  # no user has an empty name: nothing to guess, nothing to count
    address = (address or UNKNOWN_ADDRESS)[:64]
    now = inst.now()
    refused = _count_attempt(inst, username, address, now)
    if refused is not None:
        raise refused
    actor = _check_password(inst, username, password)
    _settle(inst, username, address, actor is not None, now)
    accounts.record_sign_in(inst, username, actor.user_id if actor else None,
                            actor is not None, address)
    return actor


def set_password(inst: Instance, user_id: int, password: str) -> None:
    """Store a new password hash; every web session of the user ends with it."""
    with write_transaction(inst.engine) as conn:
        accounts.store_password(inst, conn, user_id, password)


def _check_password(inst: Instance, username: str, password: str) -> Actor | None:
    users = inst.schema.table("user")
    with inst.primary_reader() as conn:
        row = conn.execute(sa.select(users).where(users.c.username == username)).first()
        if row is None:
            verify_password(_timing_hash(), password)  # answer as slowly as for a real user
            return None
        if not verify_password(row.password_hash, password) or _inactive(row):
            return None
        return _actor_from_row(inst, conn, row)


def _actor_from_row(inst: Instance, conn: Connection | None, row: Row,
                    roles: frozenset[str] | None = None) -> Actor:
    """The Actor of a crm_user row; its roles are read with `conn` unless given."""
    values = row._mapping
    if roles is None:
        assert conn is not None
        role_table = inst.schema.system("user_role")
        roles = frozenset(conn.execute(sa.select(role_table.c.role).where(
            role_table.c.user_id == values["id"])).scalars())
    entity = inst.model.entity("user")
    extra = sorted((f.name, values[f.name]) for f in entity.user_fields
                   if f.name in values and f.name not in ("username", "team"))
    return Actor(
        user_id=values["id"], username=values["username"], roles=roles, team=values["team"],
        is_admin=bool(values["is_admin"]) or "admin" in roles,
        language=values["language"] or i18n.fallback_language(), fields=tuple(extra),
        full_name=values.get("full_name"), time_zone=values.get("time_zone"))


def _inactive(row: Row) -> bool:
    """`active` is false. NULL counts as active: it is the field's default."""
    return row.active is not None and not row.active


def _timing_hash() -> str:
    if not _dummy_hash:
        _dummy_hash.append(hash_password(secrets.token_hex(16)))
    return _dummy_hash[0]


# -- the sign-in throttle ---------------------------------------------------------------------

def _count_attempt(inst: Instance, username: str, address: str,
                   now: datetime) -> TooManyAttempts | None:
    """Count one attempt on both counters, atomically; the refusal when it is one too many."""
    table = inst.schema.system("login_throttle")
    bump = _bump_statement(table, inst.engine.dialect.name)
    times = {"_now": now, "_since": now - LOGIN_WINDOW}

    def work(conn: Connection) -> TooManyAttempts | None:
        # always the pair first, then the username's row: one lock order, no deadlock
        pair = conn.execute(bump, {**times, "_username": username, "_address": address}).one()
        anywhere = conn.execute(bump, {**times, "_username": username,
                                       "_address": ANY_ADDRESS}).one()
        under_attack = anywhere.attempts - 1 >= USERNAME_FAILURES
        allowed = ATTEMPTS_UNDER_ATTACK if under_attack else LOGIN_ATTEMPTS
        if pair.attempts <= allowed:
            return None
        _unbump(conn, table, username)  # the username's counter counts checked attempts
        return TooManyAttempts(pair.window_start + LOGIN_WINDOW - now, under_attack)

    return in_transaction(inst.engine, None, work)


def _settle(inst: Instance, username: str, address: str, ok: bool, now: datetime) -> None:
    """After the check: a success forgives its address and does not count for the username;
    counters whose window ended long ago go."""
    table = inst.schema.system("login_throttle")

    def work(conn: Connection) -> None:
        if ok:
            conn.execute(table.delete().where(table.c.username == username,
                                              table.c.address == address))
            _unbump(conn, table, username)
        conn.execute(table.delete().where(table.c.window_start < now - LOGIN_WINDOW * 2))

    in_transaction(inst.engine, None, work)


def _bump_statement(table: sa.Table, dialect: str) -> Any:
    """INSERT a counter at 1, or add 1 to it (1 again when its window has ended), RETURNING
    the count and the window's start: one statement, so that parallel attempts queue on the
    row instead of all reading the same old count."""
    def build() -> Any:
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
        new = insert.values(username=sa.bindparam("_username"),
                            address=sa.bindparam("_address"), attempts=1,
                            window_start=sa.bindparam("_now"))
        ended = table.c.window_start <= sa.bindparam("_since")
        return new.on_conflict_do_update(
            index_elements=[table.c.username, table.c.address],
            set_={"attempts": sa.case((ended, 1), else_=table.c.attempts + 1),
                  "window_start": sa.case((ended, new.excluded.window_start),
                                          else_=table.c.window_start)},
        ).returning(table.c.attempts, table.c.window_start)
    return caches.STATEMENTS.get(table, ("login_bump", dialect), build)


def _unbump(conn: Connection, table: sa.Table, username: str) -> None:
    conn.execute(table.update().where(
        table.c.username == username, table.c.address == ANY_ADDRESS, table.c.attempts > 0,
    ).values(attempts=table.c.attempts - 1))


def client_address() -> str:
    """The address sign-ins of this request are counted under: the peer's, or — with
    `TRUSTED_PROXIES` = N proxies in front — the Nth address from the right of
    X-Forwarded-For (the one the outermost trusted proxy saw; whatever the client wrote further
    left is ignored)."""
    raw = request.remote_addr or ""
    trusted = int(current_app.config.get("TRUSTED_PROXIES") or 0)
    if trusted > 0:
        hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")
                if hop.strip()]
        if len(hops) >= trusted:
            raw = hops[-trusted]
    return address_key(raw)


def address_key(raw: str) -> str:
    """A client address as the throttle counts it: IPv4 as it is, IPv6 as its /64 (one
    subscriber usually holds a whole /64, so single addresses would be free to change)."""
    try:
        ip = ipaddress.ip_address(raw.strip())
    except ValueError:
        return UNKNOWN_ADDRESS  # whatever it is, all such requests share one counter
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


# -- API tokens -------------------------------------------------------------------------------

def create_token(inst: Instance, user_id: int, label: str | None = None) -> str:
    """A new API token for `user_id` made by the command line (`crmforge token create`);
    the admin pages call `runtime.write.accounts.create_token` with the admin as actor."""
    return accounts.create_token(inst, Actor.system_actor("cli"), user_id, label)


def revoke_token(inst: Instance, token: str) -> bool:
    """Delete the token; False when it did not exist."""
    tokens = inst.schema.system("token")
    with write_transaction(inst.engine) as conn:
        result = conn.execute(tokens.delete().where(tokens.c.token_hash == hash_token(token)))
    return bool(result.rowcount)


def actor_for_token(inst: Instance, token: str) -> Actor | None:
    """The Actor behind an API token; None when the token is unknown or its user inactive.

    One query per request: the token, its user and the user's roles (one row per role).
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    tokens = inst.schema.system("token")
    with inst.primary_reader() as conn:
        rows = conn.execute(_token_query(inst), {"token_hash": hash_token(token)}).all()
    if not rows or _inactive(rows[0]):
        return None
    row = rows[0]
    actor = _actor_from_row(inst, None, row, frozenset(r._role for r in rows if r._role))
    now = inst.now()
    if row._token_used is None or now - row._token_used >= TOUCH_EVERY:
        with write_transaction(inst.engine) as conn:
            conn.execute(tokens.update().where(tokens.c.id == row._token_id).values(
                last_used_at=now))
    return actor


def actor_for_username(inst: Instance, username: str) -> Actor | None:
    """The Actor of the active user with this username (an agent named by a telephone
    system, `runtime.http.api.calls`); None when there is none."""
    users = inst.schema.table("user")
    with inst.primary_reader() as conn:
        row = conn.execute(sa.select(users).where(users.c.username == username)).first()
        if row is None or _inactive(row):
            return None
        return _actor_from_row(inst, conn, row)


def _token_query(inst: Instance) -> Any:
    """The token, its user and the user's roles, built once per schema (a statement, not a
    result: revocation is immediate)."""
    tokens = inst.schema.system("token")

    def build() -> Any:
        users, role_table = inst.schema.table("user"), inst.schema.system("user_role")
        return (sa.select(users, tokens.c.id.label("_token_id"),
                          tokens.c.last_used_at.label("_token_used"),
                          role_table.c.role.label("_role"))
                .join(tokens, tokens.c.user_id == users.c.id)
                .outerjoin(role_table, role_table.c.user_id == users.c.id)
                .where(tokens.c.token_hash == sa.bindparam("token_hash")))
    return caches.STATEMENTS.get(tokens, "actor_for_token", build)


def require_token() -> None:
    """`before_request` of the API: sets `g.actor` from the bearer token or answers 401."""

    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            N_("Send 'Authorization: Bearer <token>'; create a token with "
               "'crmforge token create USERNAME'."),
            www_authenticate=WWWAuthenticate("Bearer", {"realm": "crmforge"}))
    actor = actor_for_token(get_instance(), token.strip())
    if actor is None:
        raise Unauthorized(
            "The token is not valid: it is mistyped, revoked, or its user is inactive. "
            "Create a new one with 'crmforge token create USERNAME'.",
            www_authenticate=WWWAuthenticate("Bearer", {"realm": "crmforge",
                                                        "error": "invalid_token"}))
    g.actor = actor


# -- web sessions -----------------------------------------------------------------------------

def start_session(inst: Instance, user_id: int) -> str:
    """A new server-side session of `user_id`: the key for the cookie (only its sha256 is
    kept). Sessions older than SESSION_LIFETIME go at the same time."""
    users, table = inst.schema.table("user"), inst.schema.system("session")
    key = secrets.token_urlsafe(32)
    now = inst.now()
    with write_transaction(inst.engine) as conn:
        row = conn.execute(sa.select(users.c.password_hash).where(
            users.c.id == user_id)).first()
        if row is None:
            raise LookupError(f"there is no user with id {user_id}")
        conn.execute(table.insert().values(
            key_hash=hash_token(key), user_id=user_id, password_fp=_fingerprint(row[0]),
            created_at=now, last_seen_at=now))
        conn.execute(table.delete().where(table.c.created_at <= now - SESSION_LIFETIME))
    return key


def end_session(inst: Instance, key: str) -> bool:
    """Revoke the session with this cookie key; False when it was not open."""
    table = inst.schema.system("session")
    with write_transaction(inst.engine) as conn:
        result = conn.execute(table.update().where(
            table.c.key_hash == hash_token(key), table.c.revoked_at.is_(None)).values(
            revoked_at=inst.now()))
    return bool(result.rowcount)


def end_all_sessions(inst: Instance, user_id: int) -> int:
    """Revoke every open session of `user_id`; how many there were."""
    with write_transaction(inst.engine) as conn:
        return sessions.revoke_all(inst, conn, user_id)


def actor_for_session(inst: Instance, key: str) -> Actor | None:
    """The Actor of an open session: not revoked, younger than SESSION_LIFETIME, its user
    active and with the password it signed in with. One query, like a token's."""
    if not key or len(key) > MAX_TOKEN_LENGTH:
        return None
    table = inst.schema.system("session")
    now = inst.now()
    with inst.primary_reader() as conn:
        rows = conn.execute(_session_query(inst), {
            "key_hash": hash_token(key), "since": now - SESSION_LIFETIME}).all()
    if not rows or _inactive(rows[0]) or rows[0]._session_fp != _fingerprint(
            rows[0].password_hash):
        return None
    row = rows[0]
    actor = _actor_from_row(inst, None, row, frozenset(r._role for r in rows if r._role))
    if now - row._session_seen >= TOUCH_EVERY:
        with write_transaction(inst.engine) as conn:
            conn.execute(table.update().where(table.c.id == row._session_id).values(
                last_seen_at=now))
    return actor


def _session_query(inst: Instance) -> Any:
    table = inst.schema.system("session")

    def build() -> Any:
        users, role_table = inst.schema.table("user"), inst.schema.system("user_role")
        return (sa.select(users, table.c.id.label("_session_id"),
                          table.c.last_seen_at.label("_session_seen"),
                          table.c.password_fp.label("_session_fp"),
                          role_table.c.role.label("_role"))
                .join(table, table.c.user_id == users.c.id)
                .outerjoin(role_table, role_table.c.user_id == users.c.id)
                .where(sessions.is_open(table, sa.bindparam("key_hash"),
                                        sa.bindparam("since"))))
    return caches.STATEMENTS.get(table, "actor_for_session", build)


def current_actor() -> Actor | None:
    """Who makes this request: the API token's user, the signed-in user, or None."""
    if "actor" not in g:
        g.actor = _session_actor()
    return g.actor


def request_language() -> str:
    """The request's language: the user's preference, else `Accept-Language`, else the
    instance default (runtime.http.i18n)."""
    who = current_actor()
    return who.language if who is not None else i18n.fallback_language()


def login_user(inst: Instance, actor: Actor) -> None:
    key = start_session(inst, actor.user_id)
    previous = session.get(SESSION_KEY)
    if isinstance(previous, str):
        end_session(inst, previous)  # signing in again (perhaps as someone else) ends it
    session.clear()  # nothing from before the sign-in survives it
    session[SESSION_KEY] = key
    g.actor = actor


def logout_user() -> None:
    key = session.get(SESSION_KEY)
    if isinstance(key, str):
        end_session(get_instance(), key)
    session.clear()
    g.actor = None


def require_login() -> ResponseReturnValue | None:
    """A `before_request` for blueprints whose every page needs a signed-in user."""
    if current_actor() is not None:
        return None

    if wants_json():
        raise Unauthorized("Sign in first at /login.")
    return redirect(url_for("auth.login",
                            next=request.script_root + request.full_path.rstrip("?")))


def _session_actor() -> Actor | None:
    key = session.get(SESSION_KEY)
    if not isinstance(key, str):
        return None
    actor = actor_for_session(get_instance(), key)
    if actor is None:
        session.clear()  # the browser forgets a cookie the server has ended
    return actor


def _fingerprint(password_hash: str | None) -> str:
    """Which password a session signed in with: a password set by any means (not only
    set_password) ends the sessions opened with the old one."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def safe_next(target: str | None) -> str | None:
    """`target` when it is a path on this site; None for anything that could leave it.

    The one check of every `next` / `back` a page redirects to. Browsers drop tabs and
    newlines from a URL and read a backslash as `/`, so `/%09/evil.example` (a tab) or
    `/\\evil.example` would lead to another site: control characters and backslashes are
    refused outright, and so is a target that leaves the site once percent-decoded
    (`/%2F/evil.example`)."""
    if not target or not target.startswith("/"):
        return None
    for text in (target, unquote(target)):
        if text.startswith("//") or "\\" in text or _has_control(text):
            return None
        parts = urlsplit(text)
        if parts.scheme or parts.netloc:
            return None
    return target


def _has_control(text: str) -> bool:
    """C0 and C1 control characters (tab and newline included) and DEL."""
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


# -- the /login and /logout pages -------------------------------------------------------------

def create_blueprint() -> Blueprint:
    bp = Blueprint("auth", __name__)
    bp.add_url_rule("/login", "login", login_page, methods=["GET", "POST"])
    bp.add_url_rule("/logout", "logout", logout_page, methods=["GET", "POST"])
    bp.add_url_rule("/logout/everywhere", "logout_everywhere", logout_everywhere_page,
                    methods=["POST"])
    return bp


def login_page() -> ResponseReturnValue:

    next_url = safe_next(request.values.get("next"))
    error = None
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        try:
            actor = authenticate(get_instance(), username, request.form.get("password", ""),
                                 client_address())
        except TooManyAttempts as exc:
            seconds = str(max(1, int(exc.retry_after.total_seconds())))
            return render_template("login.html", error=str(exc), username=username,
                                   next=next_url, actor=current_actor()), 429, {
                "Retry-After": seconds}
        if actor is not None:
            login_user(get_instance(), actor)
            return redirect(next_url or request.script_root + "/")
        error = gettext("Wrong username or password, or the account is disabled.")
    elif current_actor() is not None and next_url:
        return redirect(next_url)
    return render_template("login.html", error=error, username=username, next=next_url,
                           actor=current_actor()), (200 if error is None else 401)


def logout_page() -> ResponseReturnValue:
    if request.method == "POST":
        logout_user()
        return redirect(url_for("auth.login"))
    return render_template("logout.html", actor=current_actor())


def logout_everywhere_page() -> ResponseReturnValue:
    """End every session of the signed-in user, this one included (a lost phone, a shared
    computer, a cookie that may have been copied)."""
    actor = current_actor()
    if actor is not None:
        count = end_all_sessions(get_instance(), actor.user_id)
        logout_user()
        flash(ngettext("Signed out everywhere: %(num)d session ended.",
                       "Signed out everywhere: %(num)d sessions ended.", count),
              "success")
    return redirect(url_for("auth.login"))
