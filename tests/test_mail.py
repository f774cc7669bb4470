"""Outgoing e-mail against a real SMTP server (aiosmtpd on 127.0.0.1): the core pack's
greetings arrive with an unsubscribe link that withdraws consent without signing in, go once
per contact and occasion, and a server that refuses or never answers is retried and
reported on the record's timeline. Message templates are checked by `crmforge validate`."""

from __future__ import annotations

import re
import socket
import threading
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from mail_support import run_worker, smtp_server, timeline
from support import admin_actor, write_pack
from web_support import csrf, make_app

from builder.diagnostics import DefinitionError
from builder.linker import build_model
from runtime.process.mail.server import parse_url
from runtime.write import records

CORE = Path(__file__).parent.parent / "verticals" / "core"
LINK = re.compile(r"http://crm\.test(/unsubscribe/[A-Za-z0-9_.\-]+)")


@pytest.fixture
def smtp():
    with smtp_server() as running:
        yield running


@pytest.fixture
def core(make_instance, clock):
    inst = make_instance(CORE)
    inst.settings["BASE_URL"] = "http://crm.test"
    return inst


def birthday_contact(inst, **values):
    today = inst.today()
    return records.create(inst, admin_actor(inst), "contact", {
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
        "birthday": date(1990, today.month, today.day), "marketing_consent": True,
        "consent_date": today, **values})


def outbox(inst) -> list[dict]:
    table = inst.schema.table("customer_message")
    with inst.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id))
                .mappings()]


def test_a_birthday_greeting_arrives_once_and_its_link_unsubscribes(core, smtp, tmp_path):
    inbox, url = smtp
    core.settings["MAIL_URL"] = url
    ada = birthday_contact(core)
    birthday_contact(core, first_name="Bob", email="bob@example.com", do_not_contact=True)
    birthday_contact(core, first_name="Cy", email="cy@example.com", marketing_consent=False,
                     consent_date=None)
    run_worker(core)
    assert [m["To"] for m in inbox.messages] == ["ada@example.com"]
    mail = inbox.messages[0]
    assert mail["Subject"] == "Happy birthday, Ada!"
    text = mail.get_body(("plain",)).get_content()
    assert "Dear Ada" in text
    path = LINK.search(text).group(1)
    assert mail["List-Unsubscribe"] == f"<http://crm.test{path}>"
    assert mail["Reply-To"].startswith("reply+")  # an answer comes back to the record
    [message] = outbox(core)
    assert message["delivery"] == "sent" and message["sent_at"] is not None
    assert any("to ada@example.com: sent" in body for body in
               timeline(core, "customer_message", message["id"]))

    run_worker(core)  # a second run sends nothing
    assert len(inbox.messages) == 1

    client = make_app(core, tmp_path).test_client()
    page = client.get(path)
    assert page.status_code == 200 and "ada@example.com" in page.get_data(as_text=True)
    assert records.get(core, admin_actor(core), "contact", ada["id"])["marketing_consent"]
    done = client.post(path, data={"csrf_token": csrf(page.get_data(as_text=True))})
    assert done.status_code == 200 and "unsubscribed" in done.get_data(as_text=True)
    assert records.get(core, admin_actor(core), "contact", ada["id"])[
        "marketing_consent"] is False
    assert any("withdrawn through the unsubscribe link on 2026-03-02" in body
               for body in timeline(core, "contact", ada["id"]))
    assert client.get("/unsubscribe/not-a-token").status_code == 404


def test_the_same_occasion_is_not_sent_twice(core, smtp):
    inbox, url = smtp
    core.settings["MAIL_URL"] = url
    ada = birthday_contact(core)
    values = {"contact": ada["id"], "channel": "email", "purpose": "birthday",
              "subject": "Happy birthday", "body": "Dear Ada"}
    records.create(core, admin_actor(core), "customer_message", values)
    records.create(core, admin_actor(core), "customer_message", values)
    run_worker(core)
    assert len(inbox.messages) == 1


def test_consent_withdrawn_before_sending_cancels_the_message(core, smtp):
    inbox, url = smtp
    ada = birthday_contact(core)
    run_worker(core)  # no MAIL_URL yet: the message waits in the queue
    assert inbox.messages == [] and outbox(core)[0]["delivery"] == "queued"
    contact = records.get(core, admin_actor(core), "contact", ada["id"])
    records.update(core, admin_actor(core), "contact", ada["id"],
                   {"marketing_consent": False}, version=contact["version"])
    core.settings["MAIL_URL"] = url
    run_worker(core)
    assert inbox.messages == []
    assert outbox(core)[0]["delivery"] == "cancelled"


def test_a_refusing_server_is_retried_then_reported_failed(core, smtp, clock):
    inbox, url = smtp
    inbox.refuse = "451 4.7.1 Try again later"  # a 5xx bounces at once (test_mail_bounces)
    core.settings["MAIL_URL"] = url
    birthday_contact(core)
    run_worker(core)
    [message] = outbox(core)
    assert message["delivery"] == "queued"
    for minutes in (1, 5, 30):
        clock.advance(minutes=minutes)
        run_worker(core)
    [message] = outbox(core)
    assert message["delivery"] == "failed"
    assert message["failure_reason"] == "451 4.7.1 Try again later"
    entries = timeline(core, "customer_message", message["id"])
    assert sum("trying again" in e for e in entries) == 3
    assert any(e.endswith(": failed — the server answered: 451 4.7.1 Try again later")
               for e in entries)


@pytest.fixture
def silent_server():
    """A socket that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"smtp://127.0.0.1:{listener.getsockname()[1]}?timeout=0.5"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_server_that_never_answers_is_retried(core, silent_server, clock):
    core.settings["MAIL_URL"] = silent_server
    birthday_contact(core)
    run_worker(core)
    [message] = outbox(core)
    entries = timeline(core, "customer_message", message["id"])
    assert "trying again at 09:01 — the server answered: no answer from 127.0.0.1" in \
        entries[-1]
    assert message["delivery"] == "queued"


DEAL = """
entity: deal
title_field: name
fields:
  name: {type: text, required: true}
  client_email: {type: email}
automations:
  welcome:
    on: create
    do:
      - email: {to: {field: client_email}, template: welcome}
"""
WELCOME = """
messages:
  welcome:
    entity: deal
    subject: "About {name}"
    body: |
      Hello, this is about **{name}** <b>and more</b>.
"""


def test_an_automation_email_sends_markdown_with_values_escaped(make_instance, pack, smtp):
    inbox, url = smtp
    inst = make_instance(pack({"entities/deal.yaml": DEAL, "messages/welcome.yaml": WELCOME}))
    inst.settings["MAIL_URL"] = url
    deal = records.create(inst, admin_actor(inst), "deal",
                          {"name": "<i>Mill</i>", "client_email": "c@example.com"})
    run_worker(inst)
    [mail] = inbox.messages
    assert mail["Subject"] == "About <i>Mill</i>"
    html = mail.get_body(("html",)).get_content()
    assert "<strong>&lt;i&gt;Mill&lt;/i&gt;</strong>" in html
    assert "**<i>Mill</i>**" in mail.get_body(("plain",)).get_content()
    assert any(": sent." in e for e in timeline(inst, "deal", deal["id"]))


def test_a_template_with_an_unknown_field_is_a_validate_error(tmp_path):
    root = write_pack(tmp_path / "p", {"entities/deal.yaml": DEAL,
                                       "messages/welcome.yaml": WELCOME.replace(
                                           "{name}**", "{nmae}**")})
    with pytest.raises(DefinitionError) as caught:
        build_model([root])
    text = str(caught.value)
    assert re.search(r"messages/welcome\.yaml:\d+:\d+: error E310 message 'welcome': body: "
                     r"unknown field 'nmae'", text), text


def test_an_unknown_template_in_an_email_action_is_e230(tmp_path):
    root = write_pack(tmp_path / "p", {"entities/deal.yaml": DEAL.replace(
        "template: welcome", "template: welcom"), "messages/welcome.yaml": WELCOME})
    with pytest.raises(DefinitionError) as caught:
        build_model([root])
    assert "error E230" in str(caught.value) and "did you mean 'welcome'" in \
        str(caught.value)


@pytest.mark.parametrize(("url", "expected"), [
    ("smtp://mail.example.com", ("mail.example.com", 25, False, "auto", None)),
    ("smtp://u%40x:p%3Aw@h:2525?starttls=always", ("h", 2525, False, "always", "u@x")),
    ("smtps://h", ("h", 465, True, "never", None)),
])
def test_mail_urls(url, expected):
    server = parse_url(url)
    assert (server.host, server.port, server.secure, server.starttls, server.user) == expected


@pytest.mark.parametrize("url", ["http://h", "smtp://", "smtp://h?starttls=maybe"])
def test_bad_mail_urls(url):
    with pytest.raises(ValueError):
        parse_url(url)
