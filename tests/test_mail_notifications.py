"""Staff notifications by e-mail, through the outbox and a real SMTP server (aiosmtpd on
127.0.0.1): each user's `email_notifications` decides — `each` one mail per notification,
`digest` one mail the next day listing the day's notifications (once), `none` nothing. A
pack without the field sends each one."""

from __future__ import annotations

from pathlib import Path

import pytest
from mail_support import queued_mail, run_worker, smtp_server, timeline
from support import insert_user

from runtime.core.db import write_transaction
from runtime.process.notifications import notify, unread_count

CORE = Path(__file__).parent.parent / "verticals" / "core"


@pytest.fixture
def smtp():
    with smtp_server() as running:
        yield running


@pytest.fixture
def core(make_instance, smtp):
    inst = make_instance(CORE)
    inst.settings.update(MAIL_URL=smtp[1], BASE_URL="http://crm.test")
    return inst


def staff(inst, name: str, choice: str | None):
    return insert_user(inst, name, email=f"{name}@example.com", email_notifications=choice)


def tell(inst, users, subject: str, link: str = "/e/lead/1") -> None:
    with write_transaction(inst.engine) as conn:
        notify(inst, conn, [u.user_id for u in users], subject, "Please look.", link)


def received(inbox, to: str) -> list:
    return [m for m in inbox.messages if m["To"] == to]


def test_each_digest_and_none(core, smtp, clock):
    inbox, _url = smtp
    each, digest, none = (staff(core, "eve", "each"), staff(core, "dan", "digest"),
                          staff(core, "nia", "none"))
    tell(core, [each, digest, none], "Approval needed: deal 7")
    tell(core, [each, digest, none], "Lead assigned to you")
    run_worker(core)
    assert [m["Subject"] for m in received(inbox, "eve@example.com")] == [
        "Approval needed: deal 7", "Lead assigned to you"]
    body = received(inbox, "eve@example.com")[0].get_body(("plain",)).get_content()
    assert "Please look." in body and "http://crm.test/e/lead/1" in body
    assert received(inbox, "dan@example.com") == [] and received(inbox, "nia@example.com") == []
    with core.engine.connect() as conn:  # the bell has them all
        assert [unread_count(core, conn, u.user_id) for u in (each, digest, none)] == [2, 2, 2]
    assert any("to eve@example.com: sent." in e for e in timeline(core, "user", each.user_id))

    clock.advance(days=1)
    tell(core, [digest], "Today's news, for tomorrow's digest")
    run_worker(core)
    run_worker(core)  # the digest of a day goes once
    [mail] = received(inbox, "dan@example.com")
    assert mail["Subject"] == "Your notifications of Monday, March 2: 2 notifications"
    text = mail.get_body(("plain",)).get_content()
    assert "- Approval needed: deal 7" in text and "- Lead assigned to you" in text
    assert "Today's news" not in text and "http://crm.test/e/lead/1" in text
    assert received(inbox, "nia@example.com") == []
    assert len(received(inbox, "eve@example.com")) == 2


def test_no_choice_means_each_and_inactive_users_get_nothing(core, smtp):
    inbox, _url = smtp
    unset = staff(core, "una", None)
    gone = staff(core, "old", "each")
    users = core.schema.table("user")
    with core.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == gone.user_id).values(active=False))
    tell(core, [unset, gone], "Hello")
    run_worker(core)
    assert [m["To"] for m in inbox.messages] == ["una@example.com"]


def test_a_notification_rolled_back_queues_no_mail(core):
    who = staff(core, "eve", "each")
    with pytest.raises(RuntimeError), write_transaction(core.engine) as conn:
        notify(core, conn, [who.user_id], "Never")
        raise RuntimeError("the change fails")
    assert queued_mail(core) == []
