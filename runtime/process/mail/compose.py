"""A message template rendered over a record, and the addresses a message goes to.

Slots are filled by the one title renderer (`read.titles.TitleReader.fill`): a `{field}` or
`{link.field}` reads as it does on a page, and nothing else of the record can be reached. In
Markdown and HTML bodies every value is HTML-escaped before the body is turned into HTML, so
a value can never add markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import escape
from sqlalchemy.engine import Connection

from builder.fieldtypes import coerce_email
from builder.model import Message, Recipient
from runtime.core.instance import Actor, Instance
from runtime.read.people import resolve_users
from runtime.read.permissions import hidden_fields
from runtime.read.queries import load
from runtime.read.titles import TitleReader

_MARKDOWN = MarkdownIt("commonmark", {"html": True})  # values are escaped before parsing
_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Composed:
    subject: str
    text: str
    html: str | None


@dataclass(frozen=True)
class Address:
    """Where a message goes, and the record whose consent it asks (None: no consent)."""

    email: str
    consent: dict[str, Any] | None = None


def compose(inst: Instance, conn: Connection, message: Message, record: dict[str, Any],
            actor: Actor | None = None) -> Composed:
    """`message` over `record` in the actor's language (the system: the default); the
    fields hidden from the actor read as empty, as on their pages."""
    reader = TitleReader(inst, conn, actor)
    if actor is not None:
        hidden = hidden_fields(inst, actor, message.entity)
        record = {k: v for k, v in record.items() if k not in hidden}
    language = actor.language if actor is not None else None
    subject = " ".join(reader.fill(message.entity, record,
                                   message.subject.get(language)).split())[:255]
    body = message.body.get(language)
    if message.format == "text":
        return Composed(subject, reader.fill(message.entity, record, body), None)
    html = reader.fill(message.entity, record, body, quote=lambda v: str(escape(v)))
    if message.format == "markdown":
        return Composed(subject, unescape(reader.fill(message.entity, record, body)),
                        _MARKDOWN.render(html))
    return Composed(subject, unescape(_TAGS.sub("", html)).strip(), html)


def addresses(inst: Instance, conn: Connection, entity: str, record: dict[str, Any],
              recipient: Recipient | None, consent: str | None = None) -> list[Address]:
    """The addresses of an `email` action's `to` (see docs/mail.md); with `consent` a field
    recipient carries the record whose yes/no field that is."""
    kind, value = (recipient.kind, recipient.value) if recipient else ("owner", None)
    if kind != "field":
        return _user_addresses(inst, conn, resolve_users(inst, conn, entity, record, kind,
                                                         value))
    target_entity, target = _field_target(inst, conn, entity, record, str(value))
    if target is None:
        return []
    if target_entity == "user":
        return _user_addresses(inst, conn, [target["id"]])
    email = target.get(inst.model.entity(target_entity).email_field() or "")
    if not email:
        return []
    asked = {"entity": target_entity, "id": target["id"], "field": consent} if consent \
        else None
    return [Address(str(email), asked)]


def templates_for(inst: Instance, entity: str) -> list[Message]:
    """The message templates about records of `entity`, in definition order."""
    return [m for m in inst.model.messages.values() if m.entity == entity]


def recipient_fields(inst: Instance, entity: str) -> list[str]:
    """Whom a message about a record of `entity` may go to when a person sends it: the
    record's e-mail field, then its links to records that have one (a ticket's account and
    contact; users are staff, not customers), in definition order."""
    ent = inst.model.entity(entity)
    own = [ent.email_field()] if ent.email_field() else []
    return own + [f.name for f in ent.fields.values()
                  if f.type == "link" and f.to not in (None, "user")
                  and inst.model.entity(f.to).email_field()]


def checked_address(inst: Instance, entity: str, text: str) -> str:
    """`text` as an address to write to about a record of `entity`, checked as the e-mail
    field of its recipient checks its values; ValueError says what is wrong."""
    names = recipient_fields(inst, entity)
    if not names:
        raise ValueError(f"there is no one to e-mail about a {entity}")
    target = inst.model.entity(inst.model.entity(entity).fields[names[0]].to or entity)
    return coerce_email(text, target.fields[target.email_field() or names[0]])


def _field_target(inst: Instance, conn: Connection, entity: str, record: dict[str, Any],
                  path: str) -> tuple[str, dict[str, Any] | None]:
    """The record a field path ends on: the linked record for a link, else the record that
    holds the (e-mail) field."""
    current_entity, current = entity, record
    for name in path.split("."):
        f = inst.model.entity(current_entity).fields[name]
        if f.type != "link" or not f.to:
            return current_entity, current
        if current.get(name) is None:
            return f.to, None
        current_entity, current = f.to, load(inst, conn, f.to, current[name])
        if current is None:
            return current_entity, None
    return current_entity, current


def _user_addresses(inst: Instance, conn: Connection, user_ids: list[int]) -> list[Address]:
    users = [load(inst, conn, "user", uid) for uid in sorted(set(user_ids))]
    return [Address(str(u["email"])) for u in users
            if u and u.get("email") and u.get("active") is not False]
