"""Who is acting: passwords, the web session, API tokens, and the Actor they turn into.

- The web signs in with a username and password (argon2, `runtime.core.passwords`) and keeps the
  user id in Flask's signed session cookie, with a fingerprint of the password hash so that
  changing a password ends the other sessions.
- The API sends `Authorization: Bearer <token>`; tokens are random, shown once, and stored only
  as their sha256 (`crm_token.token_hash`).
- An inactive user can do neither: their sessions and tokens stop working at once.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.engine import Connection, Row
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from runtime.core.db import write_transaction
from runtime.core.instance import Actor, Instance
from runtime.core.passwords import hash_password, verify_password
from runtime.http.current import get_instance
from runtime.http.error_handler import wants_json

TOKEN_PREFIX = "crmf_"
MAX_TOKEN_LENGTH = 256
TOUCH_EVERY = timedelta(minutes=5)  # how stale crm_token.last_used_at may get
LOGIN_ATTEMPTS = 5  # failed sign-ins of one username within LOGIN_WINDOW before a pause
LOGIN_WINDOW = timedelta(minutes=15)
SESSION_USER, SESSION_FINGERPRINT = "uid", "pwf"
BUILTIN_USER_COLUMNS = ("password_hash", "is_admin", "language", "away_from", "away_until",
                        "delegate")

F = TypeVar("F", bound=Callable[..., Any])
_dummy_hash: list[str] = []


# -- users ------------------------------------------------------------------------------------

class TooManyAttempts(Exception):
    """Sign-ins for this username failed LOGIN_ATTEMPTS times within LOGIN_WINDOW."""

    def __init__(self, retry_after: timedelta):
        minutes = max(1, -(-int(retry_after.total_seconds()) // 60))
        super().__init__(f"Too many failed sign-ins for this username: try again in "
                         f"{minutes} minute{'s' if minutes != 1 else ''}, or ask an "
                         "administrator to reset the password.")
        self.retry_after = retry_after


def authenticate(inst: Instance, username: str, password: str,
                 address: str | None = None) -> Actor | None:
    """The Actor of an active user whose password matches; None otherwise. After
    LOGIN_ATTEMPTS failures for a username within LOGIN_WINDOW, TooManyAttempts — without
    looking at the password — until the oldest of them is older than the window."""
    username = username.strip()[:255]
    users, failures = inst.schema.table("user"), inst.schema.system("login_failure")
    now = inst.now()
    with inst.engine.connect() as conn:
        recent = conn.execute(sa.select(failures.c.at).where(
            failures.c.username == username, failures.c.at > now - LOGIN_WINDOW)
            .order_by(failures.c.at.desc()).limit(LOGIN_ATTEMPTS)).scalars().all()
        if len(recent) >= LOGIN_ATTEMPTS:
            raise TooManyAttempts(recent[-1] + LOGIN_WINDOW - now)
        row = conn.execute(sa.select(users).where(users.c.username == username)).first()
        if row is None:
            verify_password(_timing_hash(), password)  # answer as slowly as for a real user
            ok = False
        else:
            ok = verify_password(row.password_hash, password) and not _inactive(row)
        actor = _actor_from_row(inst, conn, row) if ok else None
    with write_transaction(inst.engine) as conn:
        if actor is None:
            conn.execute(failures.insert().values(username=username, address=address, at=now))
        else:  # a success forgives the failures before it; old ones go in any case
            conn.execute(failures.delete().where(failures.c.username == username))
        conn.execute(failures.delete().where(failures.c.at < now - LOGIN_WINDOW * 4))
    return actor


def actor_for_user(inst: Instance, conn: Connection, user_id: int) -> Actor:
    """The Actor of user `user_id`: roles (from crm_user_role), team, admin flag, language and
    the user's other fields (`region`, ...) for expressions. LookupError when there is none."""
    users = inst.schema.table("user")
    row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
    if row is None:
        raise LookupError(f"there is no user with id {user_id}")
    return _actor_from_row(inst, conn, row)


def set_password(inst: Instance, user_id: int, password: str) -> None:
    """Store a new password hash; the user's other web sessions end with it."""
    users = inst.schema.table("user")
    with write_transaction(inst.engine) as conn:
        conn.execute(users.update().where(users.c.id == user_id).values(
            password_hash=hash_password(password)))


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
        language=values["language"] or "en", fields=tuple(extra),
        full_name=values.get("full_name"))


def _inactive(row: Row) -> bool:
    """`active` is false. NULL counts as active: it is the field's default."""
    return row.active is not None and not row.active


def _timing_hash() -> str:
    if not _dummy_hash:
        _dummy_hash.append(hash_password(secrets.token_hex(16)))
    return _dummy_hash[0]


# -- API tokens -------------------------------------------------------------------------------

def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(inst: Instance, user_id: int, label: str | None = None) -> str:
    """A new API token for `user_id`. The caller shows it once: only its hash is kept."""
    users, tokens = inst.schema.table("user"), inst.schema.system("token")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with write_transaction(inst.engine) as conn:
        if conn.execute(sa.select(users.c.id).where(users.c.id == user_id)).first() is None:
            raise LookupError(f"there is no user with id {user_id}")
        conn.execute(tokens.insert().values(user_id=user_id, token_hash=hash_token(token),
                                            label=label, created_at=inst.now()))
    return token


def revoke_token(inst: Instance, token: str) -> bool:
    """Delete the token; False when it did not exist."""
    tokens = inst.schema.system("token")
    with write_transaction(inst.engine) as conn:
        result = conn.execute(tokens.delete().where(tokens.c.token_hash == hash_token(token)))
    return bool(result.rowcount)


# the token query, built once per schema (a statement, not a result: revocation is immediate)
_TOKEN_QUERIES: dict[int, tuple[Any, Any]] = {}


def actor_for_token(inst: Instance, token: str) -> Actor | None:
    """The Actor behind an API token; None when the token is unknown or its user inactive.

    One query per request: the token, its user and the user's roles (one row per role).
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    tokens = inst.schema.system("token")
    query = _TOKEN_QUERIES.get(id(inst.schema))
    if query is None or query[0] is not inst.schema:
        users, role_table = inst.schema.table("user"), inst.schema.system("user_role")
        query = _TOKEN_QUERIES[id(inst.schema)] = (inst.schema, (
            sa.select(users, tokens.c.id.label("_token_id"),
                      tokens.c.last_used_at.label("_token_used"),
                      role_table.c.role.label("_role"))
            .join(tokens, tokens.c.user_id == users.c.id)
            .outerjoin(role_table, role_table.c.user_id == users.c.id)
            .where(tokens.c.token_hash == sa.bindparam("token_hash"))))
    with inst.engine.connect() as conn:
        rows = conn.execute(query[1], {"token_hash": hash_token(token)}).all()
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


def require_token() -> None:
    """`before_request` of the API: sets `g.actor` from the bearer token or answers 401."""

    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "Send 'Authorization: Bearer <token>'; create a token with "
            "'crmforge token create USERNAME'.",
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

def current_actor() -> Actor | None:
    """Who makes this request: the API token's user, the signed-in user, or None."""
    if "actor" not in g:
        g.actor = _session_actor()
    return g.actor


def login_user(inst: Instance, actor: Actor) -> None:
    users = inst.schema.table("user")
    with inst.engine.connect() as conn:
        password_hash = conn.execute(sa.select(users.c.password_hash).where(
            users.c.id == actor.user_id)).scalar()
    session.clear()  # nothing from before the sign-in survives it
    session[SESSION_USER] = actor.user_id
    session[SESSION_FINGERPRINT] = _fingerprint(password_hash)
    g.actor = actor


def logout_user() -> None:
    session.clear()
    g.actor = None


def require_login() -> ResponseReturnValue | None:
    """A `before_request` for blueprints whose every page needs a signed-in user."""
    if current_actor() is not None:
        return None

    if wants_json():
        raise Unauthorized("Sign in first at /login.")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def login_required(view: F) -> F:
    """Decorator for a web page that needs a signed-in user (else: to /login and back)."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        answer = require_login()
        return answer if answer is not None else view(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def _session_actor() -> Actor | None:
    user_id = session.get(SESSION_USER)
    if not isinstance(user_id, int):
        return None

    inst = get_instance()
    users = inst.schema.table("user")
    with inst.engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
        if (row is None or _inactive(row)
                or session.get(SESSION_FINGERPRINT) != _fingerprint(row.password_hash)):
            session.clear()
            return None
        return _actor_from_row(inst, conn, row)


def _fingerprint(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def safe_next(target: str | None) -> str | None:
    """`target` when it is a path on this site; None for anything that could leave it."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


# -- the /login and /logout pages -------------------------------------------------------------

def create_blueprint() -> Blueprint:
    bp = Blueprint("auth", __name__)
    bp.add_url_rule("/login", "login", login_page, methods=["GET", "POST"])
    bp.add_url_rule("/logout", "logout", logout_page, methods=["GET", "POST"])
    return bp


def login_page() -> ResponseReturnValue:

    next_url = safe_next(request.values.get("next"))
    error = None
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        try:
            actor = authenticate(get_instance(), username, request.form.get("password", ""),
                                 request.remote_addr)
        except TooManyAttempts as exc:
            seconds = str(max(1, int(exc.retry_after.total_seconds())))
            return render_template("login.html", error=str(exc), username=username,
                                   next=next_url, actor=current_actor()), 429, {
                "Retry-After": seconds}
        if actor is not None:
            login_user(get_instance(), actor)
            return redirect(next_url or request.script_root + "/")
        error = "Wrong username or password, or the account is disabled."
    elif current_actor() is not None and next_url:
        return redirect(next_url)
    return render_template("login.html", error=error, username=username, next=next_url,
                           actor=current_actor()), (200 if error is None else 401)


def logout_page() -> ResponseReturnValue:
    if request.method == "POST":
        logout_user()
        return redirect(url_for("auth.login"))
    return render_template("logout.html", actor=current_actor())
