"""`crmforge mail-in --lmtp HOST:PORT` (issue 18, item 3): a real LMTP listener on 127.0.0.1
(aiosmtpd's LMTP) talked to with `smtplib.LMTP`. Each message is routed as the IMAP reader
routes it (a ticket from support@, a bounce of a message we sent); each recipient gets an
answer of its own (an address no rule takes is refused at RCPT); a 30 MB message and bytes
that are no e-mail are refused with a 5xx reason, and the listener goes on serving."""

from __future__ import annotations

import smtplib
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from mail_support import queued_mail, run_worker, smtp_server
from support import admin_actor
from test_mail_bounces import dsn

from builder.model import Recipient
from runtime.ops.cli import main
from runtime.process.mail.lmtp import listen, parse_listen
from runtime.process.mail.outbox import send_from_page
from runtime.write import records

CORE = Path(__file__).parent.parent / "verticals" / "core"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def lmtp(make_instance, tmp_path):
    inst = make_instance(CORE)
    inst.settings.update(MAIL_FROM="CRM <crm@crm.test>")
    port = free_port()
    controller = listen(inst, tmp_path / "uploads", "127.0.0.1", port)
    try:
        yield {"inst": inst, "port": port}
    finally:
        controller.stop()


def client(lmtp) -> smtplib.LMTP:
    connection = smtplib.LMTP("127.0.0.1", lmtp["port"], timeout=30)
    connection.ehlo_or_helo_if_needed()
    return connection


def message(*, to="support@crm.test", subject="The printer is broken", extra=b"") -> bytes:
    return (f"From: Ada Lovelace <ada@acme.example>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{abs(hash((to, subject, extra)))}@acme.example>\r\n\r\n"
            "It prints nothing at all.\r\n").encode() + extra


def tickets(inst) -> list[dict]:
    table = inst.schema.table("ticket")
    with inst.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def test_a_delivered_message_becomes_a_ticket(lmtp):
    with client(lmtp) as connection:
        assert connection.sendmail("ada@acme.example", ["support@crm.test"], message()) == {}
    [ticket] = tickets(lmtp["inst"])
    assert ticket["subject"] == "The printer is broken"


def test_each_recipient_is_answered(lmtp):
    with client(lmtp) as connection:
        connection.mail("ada@acme.example")
        assert connection.rcpt("support@crm.test")[0] == 250
        code, text = connection.rcpt("nobody@crm.test")
        assert code == 550 and b"no inbound rule takes this address" in text
        assert connection.rcpt("sales@crm.test")[0] == 250
        first = connection.data(message(to="support@crm.test, sales@crm.test"))
        second = connection.getreply()
    assert first[0] == second[0] == 250
    assert first[1].startswith(b"2.0.0 created (ticket ") and second[1] == first[1]
    assert len(tickets(lmtp["inst"])) == 1  # one message, routed once


def test_a_30_mb_message_is_refused_and_the_listener_goes_on(lmtp):
    huge = message(extra=(b"A" * 998 + b"\r\n") * (30 * 1024 * 1024 // 1000))
    with client(lmtp) as connection:
        connection.mail("ada@acme.example")
        connection.rcpt("support@crm.test")
        code, text = connection.data(huge)
    assert code == 552 and b"Too much mail data" in text
    with client(lmtp) as connection:
        assert connection.sendmail("ada@acme.example", ["support@crm.test"],
                                   message(subject="Still here")) == {}
    assert [t["subject"] for t in tickets(lmtp["inst"])] == ["Still here"]


def test_malformed_messages_are_refused_with_a_reason_or_kept_cleaned(lmtp):
    with client(lmtp) as connection:
        connection.mail("ada@acme.example")
        connection.rcpt("support@crm.test")
        code, text = connection.data(b"\x00\xff\xfe not a message at all")
        assert code == 554 and b"no header section" in text
        broken = (b"From: bo@acme.example\r\nTo: support@crm.test\r\nSubject: broken\r\n"
                  b"Message-ID: <broken@x>\r\nMIME-Version: 1.0\r\n"
                  b'Content-Type: multipart/mixed; boundary="never"\r\n\r\nno parts here\r\n')
        connection.rset()
        connection.mail("bo@acme.example")
        connection.rcpt("support@crm.test")
        code, text = connection.data(broken)  # as the IMAP reader: kept, cleaned
        assert code == 250 and text.startswith(b"2.0.0 created")
    assert [t["subject"] for t in tickets(lmtp["inst"])] == ["broken"]


def test_a_bounce_delivered_over_lmtp_marks_the_message_bounced(lmtp):
    inst = lmtp["inst"]
    admin = admin_actor(inst)
    ada = records.create(inst, admin, "contact", {
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"})
    with smtp_server() as (inbox, url):
        inst.settings["MAIL_URL"] = url
        send_from_page(inst, admin, "contact", ada, "contact_hello",
                       Recipient("field", "email"), "ada@example.com")
        run_worker(inst)
    [mail] = inbox.messages
    returned = b"".join(f"{k}: {v}\r\n".encode() for k, v in mail.items()) + b"\r\nHi\r\n"
    with client(lmtp) as connection:
        connection.mail("")
        assert connection.rcpt("crm@crm.test")[0] == 250  # our own address: bounces come back
        code, text = connection.data(dsn(returned=returned))
    assert code == 250 and text.startswith(b"2.0.0 bounced (contact ")
    assert queued_mail(inst)[0]["status"] == "bounced"


@pytest.mark.parametrize("text", ["nonsense", "127.0.0.1:", "127.0.0.1:99999", ":25"])
def test_bad_listen_addresses(text):
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(text)


def test_the_command_refuses_a_bad_address(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    assert main(["--database-url", url, "install", str(CORE)]) == 0
    assert main(["--database-url", url, "mail-in", "--lmtp", "localhost"]) == 1
    assert "--lmtp takes HOST:PORT" in capsys.readouterr().err
