"""One inbound message read into plain values (`Received`), whatever it holds: a malformed MIME
tree, an unknown charset, NUL bytes or a 100 KB subject give cleaned text, never an exception.

`routing` (`runtime.process.mail.inbound`) decides what becomes of it.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from werkzeug.utils import secure_filename

MAX_SUBJECT = 998  # the longest line RFC 5322 allows; a field's own max_length cuts further
MAX_TEXT = 100_000  # the timeline's longest body
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.S | re.I)
AUTO_PRECEDENCE = ("bulk", "auto_reply", "junk", "list")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class DeliveryReport:
    """A delivery-status notification (RFC 3464 `multipart/report`): what happened to the
    message it returns (`action`: failed, delayed, delivered …), to whom, the remote
    server's answer, and the Message-IDs and reply addresses of the returned message."""

    action: str
    recipients: tuple[str, ...]
    answer: str
    message_ids: tuple[str, ...]
    reply_addresses: tuple[str, ...]


@dataclass(frozen=True)
class Received:
    message_id: str
    sender: str  # the From address, lower case ("" when there is none)
    sender_name: str
    recipients: tuple[str, ...]  # To, Cc, Delivered-To, X-Original-To (a reply token's case)
    subject: str
    text: str
    answers: tuple[str, ...]  # the Message-IDs of In-Reply-To and References
    auto: str | None  # why it is an automatic message (an auto-reply, a bulk mailing)
    attachments: tuple[Attachment, ...] = field(default=())
    defects: int = 0
    report: DeliveryReport | None = None  # a bounce or other delivery notice


def read(raw: bytes) -> Received:
    """The message `raw` as plain, cleaned values."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    sender_name, sender = parseaddr(_header(message, "From"))
    ids = _MESSAGE_ID.findall(_header(message, "Message-ID"))
    return Received(
        message_id=ids[0] if ids else f"<{hashlib.sha256(raw).hexdigest()}@no-message-id>",
        sender=clean(sender, 320).lower(),
        sender_name=clean(sender_name, 200) or clean(sender.split("@")[0], 200),
        recipients=_recipients(message),
        subject=clean(_header(message, "Subject"), MAX_SUBJECT) or "(no subject)",
        text=clean(_body_text(message), MAX_TEXT, lines=True),
        answers=tuple(_MESSAGE_ID.findall(_header(message, "In-Reply-To") + " "
                                          + _header(message, "References"))),
        auto=_automatic(message), attachments=tuple(_attachments(message)),
        defects=len(message.defects), report=delivery_report(message))


def clean(text: str, limit: int, *, lines: bool = False) -> str:
    """`text` without NUL and other control characters, cut to `limit` characters; one line
    unless `lines`."""
    text = _CONTROLS.sub("", text.replace("\r\n", "\n"))
    if not lines:
        text = " ".join(text.split())
    return text.strip()[:limit]


def _header(message: Message, name: str) -> str:
    """A header as text; "" when it is missing or cannot be read at all."""
    try:
        values = message.get_all(name) or []
        return " ".join(str(v) for v in values)
    except Exception:  # noqa: BLE001 - the header parser may fail on any hostile header
        return " ".join(str(v) for k, v in message.raw_items() if k.lower() == name.lower())


def _recipients(message: Message) -> tuple[str, ...]:
    values = [_header(message, name) for name in ("To", "Cc", "Delivered-To", "X-Original-To")]
    return tuple(dict.fromkeys(clean(address, 320) for _, address in getaddresses(values)
                               if "@" in address))


def _automatic(message: Message) -> str | None:
    """Why `message` was sent by a machine (RFC 3834 and the usual headers); None for a
    person's message."""
    submitted = _header(message, "Auto-Submitted").strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"):
        if _header(message, name).strip():
            return f"{name} header"
    precedence = _header(message, "Precedence").strip().lower()
    return f"Precedence: {precedence}" if precedence in AUTO_PRECEDENCE else None


def _body_text(message: Message) -> str:
    """The plain text of the message (its HTML without tags when there is no plain text)."""
    try:
        part = message.get_body(preferencelist=("plain", "html")) \
            if isinstance(message, EmailMessage) else None
    except Exception:  # noqa: BLE001 - a malformed MIME tree: no body rather than no message
        part = None
    if part is None:
        return ""
    text = _decoded(part)
    if part.get_content_type() == "text/html":
        text = html.unescape(_TAGS.sub(" ", text))
    return text


def _decoded(part: Message) -> str:
    """A text part's content; an unknown or lying charset is read as UTF-8 with replacement."""
    try:
        content = part.get_content()
        if isinstance(content, str):
            return content
    except Exception:  # noqa: BLE001 - LookupError, UnicodeError, or a broken encoding
        pass
    payload = part.get_payload(decode=True)
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _attachments(message: Message) -> list[Attachment]:
    if not isinstance(message, EmailMessage):
        return []
    found = []
    try:
        for part in message.iter_attachments():
            data = part.get_payload(decode=True)
            if isinstance(data, bytes) and data:
                name = secure_filename(clean(part.get_filename() or "", 200)) or "attachment"
                found.append(Attachment(name, clean(part.get_content_type(), 100), data))
    except Exception:  # noqa: BLE001 - a malformed MIME tree keeps the attachments read so far
        pass
    return found


# -- delivery-status notifications (RFC 3464) ------------------------------------------------

FAILED_ACTION = "failed"


def delivery_report(message: Message) -> DeliveryReport | None:
    """The delivery-status notification `message` is, or None (not one, or unreadable)."""
    if message.get_content_type() != "multipart/report" or \
            str(message.get_param("report-type", "")).lower() != "delivery-status":
        return None
    try:
        parts = list(message.iter_parts()) if isinstance(message, EmailMessage) else []
        status = next(p for p in parts if p.get_content_type() == "message/delivery-status")
        blocks = [b for b in status.get_payload() if isinstance(b, Message)]
    except Exception:  # noqa: BLE001 - a report without a readable status part is no report
        return None
    per_recipient = [b for b in blocks if b.get("Action")]
    failed = [b for b in per_recipient
              if str(b.get("Action", "")).strip().lower() == FAILED_ACTION]
    chosen = failed or per_recipient
    if not chosen:
        return None
    returned = _returned_headers(parts)
    return DeliveryReport(
        action=FAILED_ACTION if failed else clean(str(chosen[0]["Action"]), 20).lower(),
        recipients=tuple(_typed_address(b.get("Final-Recipient") or
                                        b.get("Original-Recipient") or "") for b in chosen),
        answer=clean(" ".join(_diagnosis(b) for b in chosen), 1000),
        message_ids=tuple(_MESSAGE_ID.findall(_header(returned, "Message-ID")))
        if returned else (),
        reply_addresses=tuple(a for _, a in getaddresses(
            [_header(returned, n) for n in ("Reply-To", "From")]) if "@" in a)
        if returned else ())


def _returned_headers(parts: list[Message]) -> Message | None:
    """The headers of the returned message (`message/rfc822` or `text/rfc822-headers`)."""
    for part in parts:
        kind = part.get_content_type()
        try:
            if kind in ("message/rfc822", "message/global"):
                inner = part.get_payload()
                return inner[0] if isinstance(inner, list) and inner else None
            if kind == "text/rfc822-headers":
                text = part.get_payload(decode=True) or b""
                return BytesParser(policy=policy.default).parsebytes(text, headersonly=True)
        except Exception:  # noqa: BLE001 - a broken returned message names nothing
            return None
    return None


def _typed_address(value: str) -> str:
    """`rfc822; anna@example.com` -> `anna@example.com`."""
    return clean(str(value).rpartition(";")[2], 320).strip("<>").lower()


def _diagnosis(block: Message) -> str:
    """The remote server's answer for one recipient: its Diagnostic-Code, else its Status."""
    code = str(block.get("Diagnostic-Code") or "").partition(";")[2].strip()
    return code or f"status {clean(str(block.get('Status') or ''), 20)}".strip()
