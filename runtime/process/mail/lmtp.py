"""Inbound mail delivered over LMTP (RFC 2033; `crmforge mail-in --lmtp HOST:PORT`, docs/mail.md
"Inbound mail"): the mail server (Postfix, Exim, Dovecot's LMTP proxy …) hands each message
over as it arrives instead of CRMForge polling a mailbox. Each message is routed by the same
function as the IMAP reader (`inbound.receive`).

Each recipient is answered on its own: at RCPT, an address no inbound rule takes (and that is
neither a signed reply address nor our own sender address, where bounces come back) is
refused with 550; after DATA, each accepted recipient gets the outcome of the routing — 250,
or 554 with the reason when the message is refused (a record that refuses the values, bytes
with no header section), or 451 (try again later) when the database cannot be reached. A
message past `MAIL_IN_MAX_BYTES` is refused with 552 by the listener itself, as it arrives.
"""

from __future__ import annotations

import asyncio
import logging
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from sqlalchemy.exc import SQLAlchemyError

from runtime.core.db import write_transaction
from runtime.core.instance import Instance
from runtime.process.mail.inbound import Outcome, max_bytes, receive, rule_for
from runtime.process.mail.replies import record_of_reply_address
from runtime.process.mail.server import sender_of

log = logging.getLogger("crmforge.mail_in")


def parse_listen(text: str) -> tuple[str, int]:
    """(host, port) of `HOST:PORT` (`[::1]:24` for IPv6); ValueError says what is wrong."""
    host, _, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--lmtp takes HOST:PORT, like 127.0.0.1:2424, not {text!r}")
    return host, int(port)


def accepts(inst: Instance, address: str) -> bool:
    """Whether inbound mail to `address` has somewhere to go (see the module's docstring)."""
    address = parseaddr(address)[1].lower()
    if rule_for(inst, (address,)) is not None or \
            address == parseaddr(sender_of(inst))[1].lower():
        return True
    with write_transaction(inst.engine) as conn:  # the signing key is made on first use
        return record_of_reply_address(inst, conn, (address,)) is not None


def deliver(inst: Instance, raw: bytes, recipients: list[str], upload_dir: Path) -> str:
    """Route one delivered message; the LMTP reply for each of its recipients."""
    if not raw.strip() or b":" not in raw.split(b"\n", 1)[0]:
        return _reply(Outcome("refused", "not an e-mail message: it has no header section"))
    stamped = b"".join(b"Delivered-To: " + r.encode("utf-8", "replace") + b"\r\n"
                       for r in recipients) + raw
    try:
        return _reply(receive(inst, stamped, upload_dir))
    except (SQLAlchemyError, OSError) as exc:
        log.warning("mail-in: a delivered message could not be stored: %s", exc)
        return f"451 4.3.0 cannot store the message now, try again later ({type(exc).__name__})"


def _reply(outcome: Outcome) -> str:
    reason = " ".join(outcome.reason.split())[:400]
    if outcome.outcome == "refused":
        return f"554 5.6.0 refused: {reason}"
    where = f" ({outcome.entity} {outcome.record_id})" if outcome.record_id else ""
    return f"250 2.0.0 {outcome.outcome}{where}" + (f": {reason}" if reason else "")


class Deliveries:
    """The aiosmtpd handler: the RCPT check and the routing of each message."""

    def __init__(self, inst: Instance, upload_dir: Path):
        self.inst = inst
        self.upload_dir = upload_dir

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        try:
            known = await asyncio.to_thread(accepts, self.inst, address)
        except SQLAlchemyError as exc:
            return f"451 4.3.0 cannot check the address now ({type(exc).__name__})"
        if not known:
            return f"550 5.1.1 <{address}>: no inbound rule takes this address"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        reply = await asyncio.to_thread(deliver, self.inst, raw, list(envelope.rcpt_tos),
                                        self.upload_dir)
        return "\r\n".join([reply] * len(envelope.rcpt_tos))  # LMTP: one reply a recipient


class _LMTPController(Controller):
    def factory(self) -> LMTP:
        return LMTP(self.handler, **self.SMTP_kwargs)


def listen(inst: Instance, upload_dir: Path, host: str, port: int) -> Controller:
    """Start the LMTP listener on host:port (in a thread of its own); `stop()` ends it."""
    controller = _LMTPController(Deliveries(inst, upload_dir), hostname=host, port=port,
                                 data_size_limit=max_bytes(inst), enable_SMTPUTF8=True)
    controller.start()
    return controller
