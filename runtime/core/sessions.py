"""Ending a user's web sessions on the server (`crm_session`), from any layer, and the hash
sessions and API tokens are kept as.

The web layer (`runtime.http.auth`) starts sessions and checks one on every request; what ends
all of a user's sessions lives here, below the write path, so that deactivating a user through
any door (a form, the API, an import) ends them in the same transaction: `after_write` is
registered on every instance by `runtime.process.setup.assemble`. `is_open` is the condition
of an open session, which the session check and the screen-pop's poll share.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runtime.core.hooks import WriteEvent

if TYPE_CHECKING:
    from runtime.core.instance import Actor, Instance


def hash_token(token: str) -> str:
    """How a session key or an API token is kept: its sha256, never the secret itself."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_open(sessions: sa.Table, key_hash: Any, opened_after: Any) -> sa.ColumnElement[bool]:
    """The session kept as `key_hash`, not revoked and opened after `opened_after` (values or
    bind parameters)."""
    return sa.and_(sessions.c.key_hash == key_hash, sessions.c.revoked_at.is_(None),
                   sessions.c.created_at > opened_after)


def revoke_all(inst: Instance, conn: Connection, user_id: int,
               now: datetime | None = None) -> int:
    """Mark every open session of `user_id` revoked; how many there were."""
    sessions = inst.schema.system("session")
    result = conn.execute(sessions.update().where(
        sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None)).values(
        revoked_at=now or inst.now()))
    return result.rowcount or 0


def after_write(inst: Instance, conn: Any, actor: Actor, event: WriteEvent) -> None:
    """A user made inactive loses every session at once, so that making them active again
    later does not bring an old (perhaps copied) cookie back to life."""
    if event.entity != "user" or event.record is None or event.old is None:
        return
    if _active(event.old) and not _active(event.record):
        revoke_all(inst, conn, event.record["id"])


def _active(user: dict[str, Any]) -> bool:
    """NULL counts as active: it is the field's default (as `http.auth` reads it)."""
    return user.get("active") is None or bool(user["active"])
