"""Bounces (issue 18): a real SMTP server (aiosmtpd on 127.0.0.1) that refuses a recipient or
a message for good (550 at RCPT or DATA) makes the message `bounced` at once, with the
server's answer on the record's timeline, and it is not tried again; a temporary refusal
(451) is retried and delivered later. A delivery-status notification (RFC 3464) read by
`crmforge mail-in` that returns a message we sent marks it bounced too, found by its
Message-ID or by the signed reply address it carried."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from mail_support import queued_mail, run_worker, smtp_server, timeline
from support import admin_actor

from builder.model import Recipient
from runtime.process.mail.inbound import receive
from runtime.process.mail.outbox import send_from_page
from runtime.write import records

CORE = Path(__file__).parent.parent / "verticals" / "core"


@pytest.fixture
def smtp():
    with smtp_server() as running:
        yield running


@pytest.fixture
def crm(make_instance, smtp):
    inst = make_instance(CORE)
    inst.settings.update(MAIL_URL=smtp[1], MAIL_FROM="CRM <crm@crm.test>",
                         BASE_URL="http://crm.test")
    admin = admin_actor(inst)
    ada = records.create(inst, admin, "contact", {
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
        "owner": admin.user_id})
    return {"inst": inst, "inbox": smtp[0], "admin": admin, "ada": ada}


def hello(crm) -> int:
    [mail_id] = send_from_page(crm["inst"], crm["admin"], "contact", crm["ada"],
                               "contact_hello", Recipient("field", "email"),
                               "ada@example.com")
    return mail_id


@pytest.mark.parametrize(("where", "answer"), [
    ("refuse_rcpt", "550 5.1.1 <ada@example.com>: Recipient address rejected"),
    ("refuse", "554 5.7.1 Message rejected as spam"),
])
def test_a_permanent_refusal_bounces_at_once_and_is_not_retried(crm, clock, where, answer):
    setattr(crm["inbox"], where, answer)
    hello(crm)
    run_worker(crm["inst"])
    [row] = queued_mail(crm["inst"])
    assert (row["status"], row["attempts"], row["last_error"]) == ("bounced", 1, answer)
    assert timeline(crm["inst"], "contact", crm["ada"]["id"])[-1] == (
        "E-mail “Hello Ada” to ada@example.com: bounced (refused for good, not tried "
        f"again) — the server answered: {answer}")
    setattr(crm["inbox"], where, None)
    clock.advance(minutes=60)
    run_worker(crm["inst"])
    assert queued_mail(crm["inst"])[0]["attempts"] == 1 and crm["inbox"].messages == []


@pytest.mark.parametrize("where", ["refuse_rcpt", "refuse"])
def test_a_temporary_refusal_is_retried_and_then_delivered(crm, clock, where):
    setattr(crm["inbox"], where, "451 4.7.1 Greylisted, try again in a minute")
    hello(crm)
    run_worker(crm["inst"])
    [row] = queued_mail(crm["inst"])
    assert row["status"] == "retrying" and row["last_error"].startswith("451 4.7.1")
    setattr(crm["inbox"], where, None)
    clock.advance(minutes=1)
    run_worker(crm["inst"])
    assert queued_mail(crm["inst"])[0]["status"] == "sent"
    assert [m["Subject"] for m in crm["inbox"].messages] == ["Hello Ada"]


def test_a_greeting_that_bounces_is_marked_bounced_on_the_outbox_message(make_instance,
                                                                          smtp, clock):
    inst = make_instance(CORE)
    inst.settings.update(MAIL_URL=smtp[1], BASE_URL="http://crm.test")
    smtp[0].refuse_rcpt = "550 5.1.1 No such user"
    today = inst.today()
    records.create(inst, admin_actor(inst), "contact", {
        "first_name": "Bo", "last_name": "Gone", "email": "bo@example.com",
        "birthday": date(1990, today.month, today.day), "marketing_consent": True,
        "consent_date": today})
    run_worker(inst)
    table = inst.schema.table("customer_message")
    with inst.engine.connect() as conn:
        [message] = conn.execute(table.select()).mappings().all()
    assert (message["delivery"], message["failure_reason"]) == ("bounced",
                                                                "550 5.1.1 No such user")


# -- delivery-status notifications read by mail-in ------------------------------------------

def dsn(*, returned: bytes, action: str = "failed", as_headers: bool = False,
        recipient: str = "ada@example.com") -> bytes:
    """A bounce as a receiving server writes it (RFC 3464)."""
    kind = b"text/rfc822-headers" if as_headers else b"message/rfc822"
    return (b"From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
            b"To: crm@crm.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            b"Auto-Submitted: auto-replied\r\n"
            b"Message-ID: <bounce-" + str(abs(hash((returned, action)))).encode() +
            b"@mx.example.com>\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
            b"\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
            b"This is the mail system. Your message could not be delivered.\r\n"
            b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
            b"Reporting-MTA: dns; mx.example.com\r\n\r\n"
            b"Final-Recipient: rfc822; " + recipient.encode() + b"\r\n"
            b"Action: " + action.encode() + b"\r\nStatus: 5.1.1\r\n"
            b"Diagnostic-Code: smtp; 550 5.1.1 <" + recipient.encode() +
            b">: mailbox unknown\r\n\r\n"
            b"--B\r\nContent-Type: " + kind + b"\r\n\r\n" + returned + b"\r\n--B--\r\n")


def sent_headers(crm) -> bytes:
    hello(crm)
    run_worker(crm["inst"])
    [mail] = crm["inbox"].messages
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in mail.items()) + b"\r\nHello\r\n"


def test_a_bounce_notice_by_message_id_marks_the_message_bounced(crm, tmp_path):
    returned = sent_headers(crm)
    outcome = receive(crm["inst"], dsn(returned=returned), tmp_path)
    assert (outcome.outcome, outcome.entity, outcome.record_id) == (
        "bounced", "contact", crm["ada"]["id"])
    [row] = queued_mail(crm["inst"])
    assert row["status"] == "bounced"
    assert row["last_error"] == "550 5.1.1 <ada@example.com>: mailbox unknown"
    assert timeline(crm["inst"], "contact", crm["ada"]["id"])[-1].endswith(
        "bounced (refused for good, not tried again) — the server answered: 550 5.1.1 "
        "<ada@example.com>: mailbox unknown")


def test_a_bounce_notice_by_reply_address_marks_the_message_bounced(crm, tmp_path):
    returned = b"\r\n".join(line for line in sent_headers(crm).split(b"\r\n")
                            if not line.lower().startswith(b"message-id"))
    outcome = receive(crm["inst"], dsn(returned=returned, as_headers=True), tmp_path)
    assert outcome.outcome == "bounced"
    assert queued_mail(crm["inst"])[0]["status"] == "bounced"


def test_delay_notices_and_strangers_bounces_change_nothing(crm, tmp_path):
    returned = sent_headers(crm)
    delayed = receive(crm["inst"], dsn(returned=returned, action="delayed"), tmp_path)
    assert (delayed.outcome, delayed.reason) == (
        "dropped", "a delivery notice (delayed), not a bounce")
    stranger = receive(crm["inst"], dsn(returned=b"Message-ID: <x@elsewhere>\r\n\r\nhi\r\n"),
                       tmp_path)
    assert (stranger.outcome, stranger.reason) == (
        "dropped", "a bounce of a message we did not send")
    assert queued_mail(crm["inst"])[0]["status"] == "sent"
