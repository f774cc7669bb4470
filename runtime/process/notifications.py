"""Notifications: an in-app row in `crm_notification` per user and, by the user's choice, an
e-mail through the outbox (`process/mail/outbox.py`, the one way CRMForge sends mail).

`notify(inst, conn, user_ids, subject, body, link)` writes the rows inside the caller's
transaction and queues the e-mails in it too (a rolled-back change sends nothing). What a user
gets by e-mail is their `email_notifications` field (the core pack defines it on users):

- `each` (also when the field is empty or not defined): one e-mail per notification;
- `digest`: one e-mail a day listing the day's notifications (`queue_digests`, which the
  worker runs every tick: yesterday's digest is queued once, by its once key);
- `none`: no e-mail, the bell only.

The e-mails are about the user: their status is on the user's timeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runtime.core.db import write_transaction
from runtime.core.instance import Instance
from runtime.process.mail.compose import Address, Composed
from runtime.process.mail.outbox import queue
from runtime.process.mail.server import setting

SUBJECT_MAX = 255
CHOICE_FIELD = "email_notifications"
CHOICES = ("none", "each", "digest")
DEFAULT_CHOICE = "each"


def notify(inst: Instance, conn: Connection, user_ids: Iterable[int | None], subject: str,
           body: str | None = None, link: str | None = None) -> list[int]:
    """Notify each user once (duplicates and None are dropped); returns the user ids notified.

    Inactive users get nothing. Rows and e-mails are written with `conn`.
    """
    ids = sorted({int(u) for u in user_ids if u is not None})
    if not ids:
        return []
    active = [row for row in _recipients(inst, conn, ids) if row.active is not False]
    if not active:
        return []
    subject = (subject or "").strip() or "Notification"
    subject = subject if len(subject) <= SUBJECT_MAX else subject[:SUBJECT_MAX - 1] + "…"
    conn.execute(inst.schema.system("notification").insert(), [
        {"user_id": row.id, "subject": subject, "body": body, "link": link,
         "created_at": inst.now(), "read_at": None} for row in active])
    text = "\n\n".join(part for part in (body, _absolute(inst, link)) if part)
    for row in active:
        if row.email and _choice(row) == "each":
            queue(inst, conn, "user", row.id, Address(row.email), Composed(subject, text, None))
    return [row.id for row in active]


def queue_digests(inst: Instance, day: date | None = None) -> int:
    """Queue the digest of `day` (by default yesterday) for each user who chose `digest`
    and was notified that day; each digest is queued once. Returns how many were queued."""
    day = day or inst.today() - timedelta(days=1)
    start = datetime.combine(day, time())
    table, mail = inst.schema.system("notification"), inst.schema.system("mail")
    queued = 0
    with write_transaction(inst.engine) as conn:
        for user in _recipients(inst, conn, None, choice="digest"):
            key = f"digest:{user.id}:{day.isoformat()}"
            if not user.email or user.active is False or conn.execute(
                    sa.select(mail.c.id).where(mail.c.once_key == key)).first():
                continue
            items = conn.execute(sa.select(table.c.subject, table.c.link).where(
                table.c.user_id == user.id, table.c.created_at >= start,
                table.c.created_at < start + timedelta(days=1)).order_by(table.c.id)).all()
            if items:
                queued += queue(inst, conn, "user", user.id, Address(user.email),
                                _digest(inst, day, items), once_key=key) is not None
    return queued


def _digest(inst: Instance, day: date, items: list[Any]) -> Composed:
    lines = [f"- {item.subject}" + (f"\n  {_absolute(inst, item.link)}" if item.link else "")
             for item in items]
    count = f"{len(items)} notification{'s' if len(items) != 1 else ''}"
    return Composed(f"Your notifications of {day:%A, %B %-d}: {count}",
                    f"{count} on {day.isoformat()}:\n\n" + "\n".join(lines), None)


def _recipients(inst: Instance, conn: Connection, ids: list[int] | None, *,
                choice: str | None = None) -> list[Any]:
    """The users `ids` (every user when None): id, email, active and their choice."""
    users = inst.schema.table("user")
    chosen = users.c.get(CHOICE_FIELD)
    columns = [users.c.id, users.c.email, users.c.active]
    query = sa.select(*columns, (chosen if chosen is not None else sa.null()).label("choice"))
    if ids is not None:
        query = query.where(users.c.id.in_(ids))
    if choice is not None:
        if chosen is None:
            return []
        query = query.where(chosen == choice)
    return list(conn.execute(query).all())


def _choice(row: Any) -> str:
    return row.choice if row.choice in CHOICES else DEFAULT_CHOICE


def _absolute(inst: Instance, link: str | None) -> str | None:
    """A link of the app as an address a mail reader can open (setting `BASE_URL`)."""
    return f"{str(setting(inst, 'BASE_URL', '')).rstrip('/')}{link}" if link else None


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
    with inst.primary_reader() as conn:  # the primary: a page after "mark read" shows it
        items = unread(inst, conn, user_id, limit)
        # fewer than `limit` unread are all of them: no count to ask for
        count = len(items) if len(items) < limit else unread_count(inst, conn, user_id)
    return {"count": count, "items": items}


def latest(inst: Instance, user_id: int, limit: int) -> list[dict[str, Any]]:
    """The user's notifications, read or not, newest first."""
    table = inst.schema.system("notification")
    with inst.primary_reader() as conn:
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
