"""Inbound e-mail (`crmforge mail-in`, docs/mail.md "Inbound mail"): each unseen message of the
mailbox goes onto the timeline of the record it answers, or makes a new record by the
`inbound/` rules of the definitions, or is dropped with a reason in the log.

A message answers a record when it was sent to that record's signed reply address
(`reply+<token>@…`, `replies.reply_address`) or its `In-Reply-To` / `References` name a
message the outbox sent about it (`crm_mail`) or one that was read into it before (`crm_mail_in`).
Auto-replies, bulk mail and our own messages coming back are dropped; a message past the size
limit is refused before it is downloaded. Every message read is kept in `crm_mail_in` by its
Message-ID (a hash of the message when it has none), so a message read twice is routed once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from builder.model import InboundRule
from runtime.core.db import write_transaction
from runtime.core.errors import RecordError
from runtime.core.instance import Actor, Instance
from runtime.process.mail import received
from runtime.process.mail.bounces import bounced
from runtime.process.mail.files import store
from runtime.process.mail.imap import MailboxError, mailbox_of, read_unseen
from runtime.process.mail.received import Received
from runtime.process.mail.replies import record_of_reply_address, sent_mail_id
from runtime.process.mail.server import sender_of, setting
from runtime.read.queries import load
from runtime.write import records
from runtime.write.timeline import record_event, touch_activity

log = logging.getLogger("crmforge.mail_in")
SYSTEM = Actor.system_actor("inbound e-mail")
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
# an address at these domains says nothing about the sender's company
FREE_MAIL = frozenset({"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com",
                       "yahoo.com", "icloud.com", "me.com", "aol.com", "gmx.net", "gmx.de",
                       "web.de", "qq.com", "163.com", "126.com", "proton.me", "protonmail.com"})


@dataclass(frozen=True)
class Outcome:
    """What became of one message: created, replied, bounced (a delivery report that
    returns a message we sent), dropped, refused or duplicate."""

    outcome: str
    reason: str = ""
    entity: str | None = None
    record_id: int | None = None


def max_bytes(inst: Instance) -> int:
    """The largest message read (setting `MAIL_IN_MAX_BYTES`, default 25 MB)."""
    return int(setting(inst, "MAIL_IN_MAX_BYTES", DEFAULT_MAX_BYTES))


def read_mailbox(inst: Instance, upload_dir: Path) -> list[Outcome]:
    """Read the unseen messages of the instance's mailbox once; what became of each."""
    box = mailbox_of(inst)
    if box is None:
        raise MailboxError("no mailbox to read: set CRMFORGE_MAIL_IN_URL "
                           "(imap://user:password@host:port/INBOX)")
    limit = max_bytes(inst)
    outcomes: list[Outcome] = []

    def handle(size: int, raw: bytes | None) -> None:
        outcomes.append(receive(inst, raw, upload_dir) if raw is not None
                        else _told(Outcome("refused", f"{size:,} bytes is larger than the "
                                           f"limit of {limit:,} (MAIL_IN_MAX_BYTES)")))

    read_unseen(box, limit, handle)
    return outcomes


def receive(inst: Instance, raw: bytes, upload_dir: Path) -> Outcome:
    """Route one message (its bytes as read from the mailbox)."""
    try:
        mail = received.read(raw)
    except Exception as exc:  # noqa: BLE001 - a message no parser can read is refused, not fatal
        return _told(Outcome("refused", f"the message cannot be read: {exc!r}"[:500]))
    with _files(upload_dir) as files, write_transaction(inst.engine) as conn:
        mail_in = inst.schema.system("mail_in")
        if conn.execute(sa.select(mail_in.c.id).where(
                mail_in.c.message_id == mail.message_id[:255])).first():
            return _told(Outcome("duplicate", "read before"), mail)
        outcome = _route(inst, conn, mail, files)
        conn.execute(mail_in.insert().values(
            message_id=mail.message_id[:255], outcome=outcome.outcome, reason=outcome.reason,
            entity=outcome.entity, record_id=outcome.record_id,
            from_address=mail.sender[:320], received_at=inst.now()))
        if outcome.outcome not in ("created", "replied"):
            files.discard()
    return _told(outcome, mail)


def _told(outcome: Outcome, mail: Received | None = None) -> Outcome:
    """Log what became of a message (one line) and give it back."""
    about = f"{mail.message_id} from {mail.sender or '(nobody)'}" if mail else "a message"
    where = f" -> {outcome.entity} {outcome.record_id}" if outcome.record_id else ""
    log.info("mail-in: %s: %s%s%s", about, outcome.outcome, where,
             f" ({outcome.reason})" if outcome.reason else "")
    return outcome


def _route(inst: Instance, conn: Connection, mail: Received, files: _Files) -> Outcome:
    if mail.report is not None:  # a bounce: before the loop check, it comes from a machine
        return Outcome(*bounced(inst, conn, mail.report, mail))
    why = _not_for_us(inst, mail)
    if why:
        return Outcome("dropped", why)
    answered = _answered(inst, conn, mail)
    if answered is not None:
        _add_to_timeline(inst, conn, *answered, mail, files)
        return Outcome("replied", "", *answered)
    rule = rule_for(inst, mail.recipients)
    if rule is None:
        return Outcome("dropped", "no inbound rule takes "
                       + (", ".join(mail.recipients) or "a message without recipients"))
    return _create(inst, conn, rule, mail, files)


def _not_for_us(inst: Instance, mail: Received) -> str | None:
    """Why the message is not a person writing to us: an automatic one, or our own back."""
    if mail.auto:
        return f"an automatic message ({mail.auto})"
    ours = parseaddr(sender_of(inst))[1].lower()
    if sent_mail_id(mail.message_id) is not None or (mail.sender and mail.sender == ours):
        return "a message of our own came back (a mail loop)"
    return None


# -- answers: the record a message replies to ----------------------------------------------

def _answered(inst: Instance, conn: Connection, mail: Received) -> tuple[str, int] | None:
    """(entity, id) of the existing record the message answers, or None."""
    found = (record_of_reply_address(inst, conn, mail.recipients)
             or _by_message_ids(inst, conn, mail.answers))
    if found and found[0] in inst.model.entities and load(inst, conn, *found) is not None:
        return found
    return None


def _by_message_ids(inst: Instance, conn: Connection, ids: tuple[str, ...]
                    ) -> tuple[str, int] | None:
    """The record of the newest message named (sent by the outbox, or read in before)."""
    for message_id in reversed(ids):
        sent = sent_mail_id(message_id)
        if sent is not None:
            table = inst.schema.system("mail")
            condition = table.c.id == sent
        else:
            table = inst.schema.system("mail_in")
            condition = sa.and_(table.c.message_id == message_id[:255],
                                table.c.record_id.is_not(None))
        row = conn.execute(sa.select(table.c.entity, table.c.record_id).where(condition)).first()
        if row is not None:
            return str(row.entity), int(row.record_id)
    return None


def _add_to_timeline(inst: Instance, conn: Connection, entity: str, record_id: int,
                     mail: Received, files: _Files) -> None:
    kept = files.keep(inst, conn, entity, record_id, mail)
    body = f"E-mail from {mail.sender or 'an unknown sender'}: “{mail.subject}”\n\n{mail.text}"
    record_event(inst, conn, entity, record_id, "email", body[:received.MAX_TEXT],
                 {"direction": "in", "message_id": mail.message_id, "from": mail.sender,
                  "attachments": kept}, None, key="mail_in",
                 params={"sender": mail.sender, "subject": mail.subject})
    touch_activity(inst, conn, entity, record_id, inst.now())


# -- new records ------------------------------------------------------------------------------

def rule_for(inst: Instance, recipients: tuple[str, ...]) -> InboundRule | None:
    """The inbound rule that takes one of `recipients`: a whole address before a local part."""
    rules = inst.model.inbound.values()
    addresses = [address.lower() for address in recipients]
    for address in addresses:
        for rule in rules:
            if rule.address == address:
                return rule
    for address in addresses:
        local = address.partition("@")[0] + "@"
        for rule in rules:
            if rule.address == local:
                return rule
    return None


def _create(inst: Instance, conn: Connection, rule: InboundRule, mail: Received,
            files: _Files) -> Outcome:
    values = {**rule.values, **_filled(inst, rule.entity, rule.fields, mail),
              **_links(inst, conn, rule, mail)}
    try:
        with conn.begin_nested():
            record = records.create(inst, SYSTEM, rule.entity, values, conn=conn)
            files.keep(inst, conn, rule.entity, record["id"], mail)
            record_event(inst, conn, rule.entity, record["id"], "email",
                         f"Made from the e-mail from {mail.sender or 'an unknown sender'}: "
                         f"“{mail.subject}” (rule {rule.name}).",
                         {"direction": "in", "message_id": mail.message_id,
                          "from": mail.sender}, None, key="mail_in_created",
                         params={"sender": mail.sender, "subject": mail.subject,
                                 "rule": rule.name})
    except RecordError as exc:
        files.discard()
        return Outcome("refused", f"{rule.entity} not made: {exc.message} "
                       f"{getattr(exc, 'errors', '')}".strip()[:1000])
    return Outcome("created", f"rule {rule.name}", rule.entity, int(record["id"]))


def _filled(inst: Instance, entity: str, parts_of: Mapping[str, str], mail: Received
            ) -> dict[str, Any]:
    """The fields of `entity` filled from the message's parts (`parts_of`: field -> part),
    each cut to the field's length."""
    first, _, last = mail.sender_name.rpartition(" ")
    parts = {"subject": mail.subject, "body": mail.text or mail.subject, "from": mail.sender,
             "from_name": mail.sender_name, "from_first_name": first or last,
             "from_last_name": last, "received_at": inst.now()}
    fields = inst.model.entity(entity).fields
    values = {}
    for name, part in parts_of.items():
        value = parts[part]
        if isinstance(value, str) and fields[name].max_length:
            value = value[:fields[name].max_length]
        values[name] = value
    return values


def _links(inst: Instance, conn: Connection, rule: InboundRule, mail: Received
           ) -> dict[str, int]:
    """The rule's `sender` and `account` links: the contact with the sender's address, and
    that contact's account, else the account of the sender's domain."""
    fields = inst.model.entity(rule.entity).fields
    people = fields[rule.sender].to or "" if rule.sender else ""
    companies = fields[rule.account].to or "" if rule.account else ""
    contact = _by_email(inst, conn, people, mail.sender) if people and mail.sender else None
    account = (_linked(inst, contact, people, companies)
               or _by_domain(inst, conn, companies, mail.sender.rpartition("@")[2])
               if companies else None)
    if contact is None and rule.new_sender and mail.sender:
        contact = _new_sender(inst, conn, rule, mail, people, companies, account)
    found = {rule.sender: contact["id"]} if rule.sender and contact else {}
    return found | ({rule.account: account} if rule.account and account else {})


def _new_sender(inst: Instance, conn: Connection, rule: InboundRule, mail: Received,
                people: str, companies: str, account: int | None) -> dict[str, Any] | None:
    """A new record of the sender (rule `new_sender`), linked to their account when one was
    found; None when the record refuses the values (the message goes on without it)."""
    values = _filled(inst, people, rule.new_sender, mail)
    link = next((f.name for f in inst.model.entity(people).fields.values()
                 if f.type == "link" and f.to == companies), None)
    if link and account:
        values[link] = account
    try:
        with conn.begin_nested():
            return records.create(inst, SYSTEM, people, values, conn=conn)
    except RecordError as exc:
        log.info("mail-in: no new %s for %s: %s", people, mail.sender, exc.message)
        return None


def _by_email(inst: Instance, conn: Connection, entity: str, address: str
              ) -> dict[str, Any] | None:
    table = inst.schema.table(entity)
    row = conn.execute(sa.select(table).where(sa.func.lower(table.c.email) == address)
                       .order_by(table.c.id).limit(1)).mappings().first()
    return dict(row) if row else None


def _linked(inst: Instance, record: dict[str, Any] | None, entity: str, target: str
            ) -> int | None:
    """The id `record` (of `entity`) links to in `target`, through its first such link."""
    if record is None:
        return None
    for f in inst.model.entity(entity).fields.values():
        if f.type == "link" and f.to == target and record.get(f.name):
            return int(record[f.name])
    return None


def _by_domain(inst: Instance, conn: Connection, entity: str, domain: str) -> int | None:
    """The first record of `entity` whose e-mail or website is at `domain`."""
    if not domain or domain in FREE_MAIL:
        return None
    table = inst.schema.table(entity)
    checks = [(sa.func.lower(table.c[name]).contains(domain, autoescape=True), name)
              for name in ("email", "website") if name in table.c]
    rows = conn.execute(sa.select(table.c.id, *(table.c[n] for _, n in checks))
                        .where(sa.or_(*(c for c, _ in checks))).order_by(table.c.id).limit(50))
    for row in rows.mappings():
        if any(_host(str(row[n] or ""), n) in (domain, f"www.{domain}") for _, n in checks):
            return int(row["id"])
    return None


def _host(value: str, kind: str) -> str:
    if kind == "email":
        return value.rpartition("@")[2].lower()
    return (urlsplit(value if "//" in value else f"//{value}").hostname or "").lower()


# -- attachments -------------------------------------------------------------------------------

class _Files:
    """The attachments written for one message: stored as uploads are, and removed again
    when the message's transaction does not keep them."""

    def __init__(self, upload_dir: Path):
        self.upload_dir = upload_dir
        self.paths: list[Path] = []

    def keep(self, inst: Instance, conn: Connection, entity: str, record_id: int,
             mail: Received) -> list[str]:
        """Store the message's attachments for the record; their file names."""
        for item in mail.attachments:
            self.paths.append(store(inst, conn, SYSTEM, self.upload_dir, entity, record_id,
                                    filename=item.filename, content_type=item.content_type,
                                    data=item.data)[1])
        return [item.filename for item in mail.attachments]

    def discard(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)
        self.paths.clear()


@contextmanager
def _files(upload_dir: Path) -> Iterator[_Files]:
    files = _Files(upload_dir)
    try:
        yield files
    except BaseException:
        files.discard()
        raise
