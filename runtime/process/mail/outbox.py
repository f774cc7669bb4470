"""The outbox (`crm_mail`): messages are queued inside the write that asks for them and sent
by the worker (`send_due`), each on its own, with retries and backoff.

A message is `queued`, then `sending` while a worker holds it, then `sent`; when the server
refuses it for now (4xx), times out or cannot be reached it is `retrying` (after 1, 5 and 30
minutes) and, after the fourth failed attempt, `failed` with the server's last answer. A
permanent refusal (5xx to RCPT or DATA) makes it `bounced` at once, never retried; so does a
bounce notice read later (`bounces`). A message may carry attachments of its record
(`files`). A message held by a worker that stopped is tried again ten minutes later. A
message that asks for consent is `cancelled` when the consent was withdrawn before it left.
Every change of status is an entry on the timeline of the record the message is about; a
record that follows the message (`status:` of the `email` action) has its status, sent time
and reason set too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from builder.expressions import render_template
from builder.model import Recipient
from runtime.core.context import eval_context
from runtime.core.db import write_transaction
from runtime.core.errors import RecordError
from runtime.core.instance import Actor, Instance
from runtime.process.mail.compose import Address, Composed, addresses, compose
from runtime.process.mail.consent import unsubscribe_url
from runtime.process.mail.files import attach_files
from runtime.process.mail.replies import message_id, reply_address
from runtime.process.mail.server import SendFailed, send, sender_of, server_of
from runtime.process.retry import RetrySchedule, claim, due_ids
from runtime.read.queries import load
from runtime.read.timeline import MAIL_STATUS
from runtime.write import records
from runtime.write.timeline import record_event

log = logging.getLogger("crmforge.mail")
SCHEDULE = RetrySchedule((timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30)))
SYSTEM = Actor.system_actor("mail")


@dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    bounced: int = 0
    cancelled: int = 0
    answers: list[str] = field(default_factory=list)


def send_from_page(inst: Instance, actor: Actor, entity: str, record: dict[str, Any],
                   template: str, recipient: Recipient, to: str) -> list[int]:
    """`email_record` in a transaction of its own: what a person sends from a record page."""
    with write_transaction(inst.engine) as conn:
        return email_record(inst, conn, entity, record, template, recipient, to=to,
                            actor=actor)


def email_record(inst: Instance, conn: Connection, entity: str, record: dict[str, Any],
                 template: str, recipient: Recipient | None, *, to: str | None = None,
                 once: str | None = None, follow: Mapping[str, str] | None = None,
                 actor: Actor | None = None, files: Sequence[int] = ()) -> list[int]:
    """Queue the message `template` about `record` to each address of `recipient`; the ids
    queued (none when `once` was queued before, or there is no address). `to` (an address
    a person typed on the Send e-mail page) replaces the recipient's address, keeping the
    consent the template asks of the recipient; `files` are attachments it carries."""
    message = inst.model.messages[template]
    composed = compose(inst, conn, message, record, actor)
    key = None
    if once:
        key = render_template(once, eval_context(inst, None, entity, record, conn=conn))[:255]
    found = addresses(inst, conn, entity, record, recipient, message.consent)
    if to is not None:
        found = [Address(to, found[0].consent if found else None)]
    return [mail_id for address in found
            if (mail_id := queue(inst, conn, entity, record["id"], address, composed,
                                 template=template, once_key=key, follow=follow,
                                 user_id=actor.user_id if actor else None,
                                 files=files)) is not None]


def queue(inst: Instance, conn: Connection, entity: str, record_id: int, address: Address,
          composed: Composed, *, template: str | None = None, once_key: str | None = None,
          follow: Mapping[str, str] | None = None, user_id: int | None = None,
          files: Sequence[int] = ()) -> int | None:
    """Queue one message (in the caller's transaction); None when `once_key` was queued
    before. `files`: ids of the record's attachments (`crm_attachment`) the message carries,
    read from the uploads folder each time it is sent."""
    table = inst.schema.system("mail")
    now = inst.now()
    try:
        with conn.begin_nested():
            mail_id = conn.execute(table.insert().values(
                entity=entity, record_id=record_id, template=template,
                to_address=address.email, subject=composed.subject, body_text=composed.text,
                body_html=composed.html, status="queued", attempts=0, next_attempt_at=now,
                once_key=once_key, follow=dict(follow) if follow else None,
                consent=address.consent, user_id=user_id, created_at=now,
                attachments=list(files) or None)
            ).inserted_primary_key[0]
    except IntegrityError:
        log.info("mail %s was queued before; not again", once_key)
        return None
    _event(inst, conn, entity, record_id, mail_id, "queued", composed.subject, address.email,
           user_id=user_id)
    return int(mail_id)


# -- sending ----------------------------------------------------------------------------------

def send_due(inst: Instance, limit: int = 200) -> SendReport:
    """Send the messages that are due now (the worker calls this every minute)."""
    report = SendReport()
    server = server_of(inst)
    if server is None:
        return report  # no server configured: messages wait
    table = inst.schema.system("mail")
    for mail_id in due_ids(inst, table, limit):
        row = claim(inst, table, mail_id, SCHEDULE)
        if row is None:
            continue  # another worker has it
        if not _consent_holds(inst, row):
            _finish(inst, row, "cancelled", "consent withdrawn before it was sent")
            report.cancelled += 1
            continue
        try:
            send(server, _email_message(inst, row))
        except SendFailed as exc:
            status = "bounced" if exc.permanent else \
                "failed" if SCHEDULE.gives_up(row["attempts"]) else "retrying"
            _finish(inst, row, status, exc.answer)
            report.answers.append(exc.answer)
            report.bounced += status == "bounced"
            report.failed += status == "failed"
            report.retrying += status == "retrying"
            continue
        _finish(inst, row, "sent", None)
        report.sent += 1
    return report


def _consent_holds(inst: Instance, row: Mapping[str, Any]) -> bool:
    consent = row["consent"]
    if not consent:
        return True
    with inst.engine.connect() as conn:
        record = load(inst, conn, consent["entity"], consent["id"])
    return record is not None and record.get(consent["field"]) is True


def _email_message(inst: Instance, row: Mapping[str, Any]) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender_of(inst), \
        row["to_address"], row["subject"]
    message["Message-ID"] = message_id(row["id"])
    text, html = row["body_text"], row["body_html"]
    with write_transaction(inst.engine) as conn:  # a reply comes back to the record's timeline
        message["Reply-To"] = reply_address(inst, conn, row["entity"], row["record_id"])
    if row["consent"]:
        with write_transaction(inst.engine) as conn:
            link = unsubscribe_url(inst, conn, row["consent"])
        message["List-Unsubscribe"] = f"<{link}>"
        text += f"\n\n--\nTo receive no more of these messages: {link}\n"
        if html is not None:
            html += (f'<hr><p style="font-size:small">To receive no more of these messages: '
                     f'<a href="{link}">unsubscribe</a>.</p>')
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    attach_files(inst, message, row["attachments"] or ())
    return message


def _finish(inst: Instance, row: Mapping[str, Any], status: str, answer: str | None) -> None:
    """Record the outcome of an attempt (`settle`) in a transaction of its own."""
    with write_transaction(inst.engine) as conn:
        settle(inst, conn, row, status, answer)


def settle(inst: Instance, conn: Connection, row: Mapping[str, Any], status: str,
           answer: str | None) -> None:
    """Record the outcome of an attempt, or a bounce reported later, in the caller's
    transaction: the row, the timeline, the record that follows."""
    table = inst.schema.system("mail")
    now = inst.now()
    values: dict[str, Any] = {"status": status, "last_error": answer}
    if status == "retrying":
        values["next_attempt_at"] = SCHEDULE.next_attempt(row["attempts"], now)
    if status == "sent":
        values["sent_at"] = now
    conn.execute(table.update().where(table.c.id == row["id"]).values(**values))
    _event(inst, conn, row["entity"], row["record_id"], row["id"], status, row["subject"],
           row["to_address"], answer=answer, attempt=row["attempts"],
           retry_at=values.get("next_attempt_at"))
    if status != "retrying" and row["follow"]:
        _follow(inst, conn, row, status, answer, now)
    log.info("mail %s to %s: %s%s", row["id"], row["to_address"], status,
             f" ({answer})" if answer else "")


def _follow(inst: Instance, conn: Connection, row: Mapping[str, Any], status: str,
            answer: str | None, now: datetime) -> None:
    """Set the record's status field (and sent time, reason) to follow the message."""
    record = load(inst, conn, row["entity"], row["record_id"])
    if record is None:
        return
    follow = row["follow"]
    options = inst.model.entity(row["entity"]).fields[follow["field"]].option_values
    # a choice without `bounced` (a pack from before bounces were told apart) says `failed`
    values: dict[str, Any] = {follow["field"]: status if not options or status in options
                              else "failed"}
    if status == "sent" and follow.get("sent_at"):
        values[follow["sent_at"]] = now
    if status != "sent" and follow.get("reason"):
        values[follow["reason"]] = (answer or "")[:200]
    try:
        with conn.begin_nested():
            records.update(inst, SYSTEM, row["entity"], row["record_id"], values,
                           version=record["version"], conn=conn)
    except RecordError as exc:  # the message's outcome stands even when the record refuses
        record_event(inst, conn, row["entity"], row["record_id"], "email",
                     f"The record could not be marked {status}: {exc.message}",
                     {"mail": row["id"]}, None, key="mail_not_marked",
                     params={"marked": status, "reason": exc.message})


def _event(inst: Instance, conn: Connection, entity: str, record_id: int, mail_id: int,
           status: str, subject: str, to: str, *, answer: str | None = None,
           attempt: int | None = None, retry_at: datetime | None = None,
           user_id: int | None = None) -> None:
    body = f"E-mail “{subject}” to {to}: {MAIL_STATUS[status]}"
    if retry_at is not None and status == "retrying":
        body += f" at {retry_at:%H:%M}"
    body += f" — the server answered: {answer}" if answer else "."
    record_event(inst, conn, entity, record_id, "email", body,
                 {"mail": mail_id, "status": status, "to": to, "answer": answer,
                  "attempt": attempt}, user_id, key="mail_status", params={
                     "subject": subject, "to": to, "status": status, "answer": answer,
                     "time": f"{retry_at:%H:%M}" if retry_at is not None else None})
