"""Notifications: an in-app row in `crm_notification` per user, and an e-mail when the user has
an address.

`notify(inst, conn, user_ids, subject, body, link)` writes the rows inside the caller's
transaction; the e-mails go out once that transaction commits (a rolled-back change sends
nothing). The mail backend comes from the instance settings, then the environment:

| setting (`inst.settings`) | environment              | default     |
|---------------------------|--------------------------|-------------|
| `MAIL_BACKEND`            | `CRMFORGE_MAIL_BACKEND`  | `console`   |
| `MAIL_FROM`               | `CRMFORGE_MAIL_FROM`     | `crmforge@localhost` |
| `SMTP_HOST`, `SMTP_PORT`  | `CRMFORGE_SMTP_HOST`, .. | `localhost`, 25 |
| `SMTP_USER`, `SMTP_PASSWORD`, `SMTP_STARTTLS` | `CRMFORGE_SMTP_USER`, .. | none, none, off |

Backends: `console` logs each message (logger `crmforge.mail`), `smtp` sends it, `memory`
appends it to `inst.settings["MAIL_OUTBOX"]` (tests), `none` drops it.
"""

from __future__ import annotations

import logging
import os
import smtplib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection

from runtime.core.db import write_transaction
from runtime.core.instance import Instance

log = logging.getLogger("crmforge.mail")
SUBJECT_MAX = 255
_AFTER_COMMIT = "crmforge_after_commit"


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str
    sender: str


def notify(inst: Instance, conn: Connection, user_ids: Iterable[int | None], subject: str,
           body: str | None = None, link: str | None = None) -> list[int]:
    """Notify each user once (duplicates and None are dropped); returns the user ids notified.

    Inactive users get nothing. Rows are written with `conn`; e-mails leave after commit.
    """
    ids = sorted({int(u) for u in user_ids if u is not None})
    if not ids:
        return []
    users = inst.schema.table("user")
    rows = conn.execute(sa.select(users.c.id, users.c.email, users.c.active).where(
        users.c.id.in_(ids))).all()
    active = [(row.id, row.email) for row in rows if row.active is not False]
    if not active:
        return []
    subject = (subject or "").strip() or "Notification"
    subject = subject if len(subject) <= SUBJECT_MAX else subject[:SUBJECT_MAX - 1] + "…"
    now = inst.now()
    conn.execute(inst.schema.system("notification").insert(), [
        {"user_id": uid, "subject": subject, "body": body, "link": link, "created_at": now,
         "read_at": None} for uid, _ in active])
    sender = setting(inst, "MAIL_FROM", "crmforge@localhost")
    text = body or ""
    if link:
        base = setting(inst, "BASE_URL", "")
        text = f"{text}\n\n{base.rstrip('/')}{link}" if text else f"{base.rstrip('/')}{link}"
    mails = [Mail(email, subject, text, sender) for _uid, email in active if email]
    if mails:
        after_commit(conn, lambda: deliver(inst, mails))
    return [uid for uid, _ in active]


def unread(inst: Instance, conn: Connection, user_id: int, limit: int = 20
           ) -> list[dict[str, Any]]:
    """The user's unread notifications, newest first."""
    table = inst.schema.system("notification")
    rows = conn.execute(sa.select(table).where(
        table.c.user_id == user_id, table.c.read_at.is_(None)).order_by(
        table.c.id.desc()).limit(limit)).mappings().all()
    return [dict(row) for row in rows]


def unread_count(inst: Instance, conn: Connection, user_id: int) -> int:
    table = inst.schema.system("notification")
    return conn.execute(sa.select(sa.func.count()).select_from(table).where(
        table.c.user_id == user_id, table.c.read_at.is_(None))).scalar_one()


def mark_read(inst: Instance, conn: Connection, user_id: int,
              notification_ids: Iterable[int] | None = None) -> int:
    """Mark the user's notifications read (all of them when no ids are given)."""
    table = inst.schema.system("notification")
    query = table.update().where(table.c.user_id == user_id, table.c.read_at.is_(None))
    if notification_ids is not None:
        query = query.where(table.c.id.in_(list(notification_ids)))
    return conn.execute(query.values(read_at=inst.now())).rowcount


def bell(inst: Instance, user_id: int, limit: int) -> dict[str, Any]:
    """The user's unread count and latest unread notifications (`limit` of them)."""
    with inst.engine.connect() as conn:
        return {"count": unread_count(inst, conn, user_id),
                "items": unread(inst, conn, user_id, limit)}


def latest(inst: Instance, user_id: int, limit: int) -> list[dict[str, Any]]:
    """The user's notifications, read or not, newest first."""
    table = inst.schema.system("notification")
    with inst.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).where(
            table.c.user_id == user_id).order_by(table.c.id.desc()).limit(limit)).mappings()]


def open_one(inst: Instance, user_id: int, notification_id: int) -> dict[str, Any] | None:
    """Mark the user's notification read and return it; None when there is no such
    notification of theirs."""
    table = inst.schema.system("notification")
    with write_transaction(inst.engine) as conn:
        row = conn.execute(sa.select(table).where(
            table.c.id == notification_id, table.c.user_id == user_id)).mappings().first()
        if row is None:
            return None
        mark_read(inst, conn, user_id, [notification_id])
    return dict(row)


def mark_all_read(inst: Instance, user_id: int) -> int:
    """Mark every unread notification of the user read; how many there were."""
    with write_transaction(inst.engine) as conn:
        return mark_read(inst, conn, user_id)


# -- delivery ---------------------------------------------------------------------------------

def setting(inst: Instance, name: str, default: Any = None) -> Any:
    """An instance setting, then $CRMFORGE_<NAME>, then the default."""
    if name in inst.settings:
        return inst.settings[name]
    return os.environ.get(f"CRMFORGE_{name}", default)


def deliver(inst: Instance, mails: list[Mail]) -> None:
    """Hand the messages to the configured backend; a failing mail server is logged, never
    raised: the change it reports is already saved."""
    backend = str(setting(inst, "MAIL_BACKEND", "console")).lower()
    try:
        BACKENDS.get(backend, _console)(inst, mails)
    except Exception:  # noqa: BLE001 - mail is best effort once the change is committed
        log.exception("could not send %d e-mail(s) with the %s backend", len(mails), backend)


def _console(inst: Instance, mails: list[Mail]) -> None:
    for mail in mails:
        log.info("mail to %s: %s\n%s", mail.to, mail.subject, mail.body)


def _memory(inst: Instance, mails: list[Mail]) -> None:
    inst.settings.setdefault("MAIL_OUTBOX", []).extend(mails)


def _none(inst: Instance, mails: list[Mail]) -> None:
    return None


def _smtp(inst: Instance, mails: list[Mail]) -> None:
    host = setting(inst, "SMTP_HOST", "localhost")
    port = int(setting(inst, "SMTP_PORT", 25))
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        if str(setting(inst, "SMTP_STARTTLS", "")).lower() in ("1", "true", "yes", "on"):
            smtp.starttls()
        user = setting(inst, "SMTP_USER")
        if user:
            smtp.login(user, setting(inst, "SMTP_PASSWORD", ""))
        for mail in mails:
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = mail.sender, mail.to, \
                mail.subject
            message.set_content(mail.body)
            smtp.send_message(message)


BACKENDS: dict[str, Callable[[Instance, list[Mail]], None]] = {
    "console": _console, "memory": _memory, "none": _none, "smtp": _smtp}


# -- after commit -----------------------------------------------------------------------------

def after_commit(conn: Connection, callback: Callable[[], None]) -> None:
    """Run `callback` when the transaction on `conn` commits; drop it on rollback.

    Without a transaction in progress the callback runs at once."""
    if not conn.in_transaction():
        callback()
        return
    conn.info.setdefault(_AFTER_COMMIT, []).append(callback)
    if not event.contains(conn, "commit", _on_commit):
        event.listen(conn, "commit", _on_commit)
        event.listen(conn, "rollback", _on_rollback)


def _on_commit(conn: Connection) -> None:
    for callback in conn.info.pop(_AFTER_COMMIT, []):
        callback()


def _on_rollback(conn: Connection) -> None:
    conn.info.pop(_AFTER_COMMIT, None)
