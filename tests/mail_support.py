"""What the mail tests share: a real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it
receives, one run of the worker, and the outbox and timeline as rows.

    @pytest.fixture
    def smtp():
        with smtp_server() as running:   # (inbox, "smtp://127.0.0.1:PORT?timeout=5")
            yield running
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from typing import Any

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from huey import MemoryHuey

from runtime.core.instance import Instance
from runtime.ops.worker import Worker


class Inbox:
    """An aiosmtpd handler that keeps what it receives, or refuses the message with `refuse`
    (at DATA) or each recipient with `refuse_rcpt` (at RCPT)."""

    def __init__(self, refuse: str | None = None, refuse_rcpt: str | None = None):
        self.messages: list = []
        self.refuse = refuse
        self.refuse_rcpt = refuse_rcpt

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        if self.refuse:
            return self.refuse
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, str]]:
    """(inbox, url) of a real SMTP server on a free port of 127.0.0.1, until the block ends."""
    inbox = Inbox()
    with socket.socket() as probe:  # aiosmtpd checks the port it is given: find a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, f"smtp://127.0.0.1:{port}?timeout=5"
    finally:
        controller.stop()


def run_worker(inst: Instance) -> int:
    """What `crmforge worker --once` does, for `inst`."""
    return Worker(MemoryHuey("test"), lambda: inst).run_once()


def queued_mail(inst: Instance) -> list[dict[str, Any]]:
    """The rows of the outbox (`crm_mail`), oldest first."""
    table = inst.schema.system("mail")
    with inst.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def timeline(inst: Instance, entity: str, record_id: int) -> list[str]:
    """The bodies of a record's timeline entries, oldest first."""
    table = inst.schema.system("timeline")
    with inst.engine.connect() as conn:
        return list(conn.execute(sa.select(table.c.body).where(
            table.c.entity == entity, table.c.record_id == record_id).order_by(table.c.id))
            .scalars())
