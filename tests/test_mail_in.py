"""Inbound e-mail (`crmforge mail-in`) against a real IMAP server on 127.0.0.1
(`imap_support`): a message to support@ becomes a ticket linked to its sender, with its
attachment kept; replies (by In-Reply-To to a message the outbox sent through a real SMTP
server, by References, by the signed reply address) go onto the record's timeline;
auto-replies and loops are dropped; a second run does nothing. Hostile messages are kept or
refused with a reason, never a crash. The `inbound/` rules are checked by `crmforge validate`.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from imap_support import imap_server
from mail_support import run_worker, smtp_server, timeline
from support import admin_actor, write_pack

from builder.diagnostics import DefinitionError
from builder.linker import build_model
from runtime.core.db import write_transaction
from runtime.ops.cli import main
from runtime.process.mail import outbox
from runtime.process.mail.imap import parse_url
from runtime.process.mail.inbound import read_mailbox
from runtime.process.mail.replies import reply_address
from runtime.write import records

CORE = Path(__file__).parent.parent / "verticals" / "core"


@pytest.fixture
def imap():
    with imap_server() as running:
        yield running


@pytest.fixture
def crm(make_instance, imap, tmp_path):
    inst = make_instance(CORE)
    inst.settings.update(MAIL_IN_URL=imap[1], MAIL_FROM="CRM <crm@crm.test>")
    admin = admin_actor(inst)
    acme = records.create(inst, admin, "account", {
        "name": "Acme", "website": "https://www.acme.example", "region": "london",
        "owner": admin.user_id})
    ada = records.create(inst, admin, "contact", {
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@acme.example",
        "account": acme["id"], "owner": admin.user_id})
    return {"inst": inst, "mailbox": imap[0], "uploads": tmp_path / "uploads", "acme": acme,
            "ada": ada, "admin": admin}


def message(*, sender="Ada Lovelace <ada@acme.example>", to="support@crm.test",
            subject="The printer is broken", body="It prints nothing at all.",
            headers=None, attach: bytes | None = None) -> bytes:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, to, subject
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(body)
    if attach is not None:
        mail.add_attachment(attach, maintype="application", subtype="pdf",
                            filename="invoice.pdf")
    if "Message-ID" not in mail:
        mail["Message-ID"] = f"<{abs(hash((subject, body, to)))}@acme.example>"
    return bytes(mail)


def run(crm) -> list[str]:
    return [o.outcome for o in read_mailbox(crm["inst"], crm["uploads"])]


def rows(inst, entity: str) -> list[dict]:
    table = inst.schema.table(entity) if entity != "attachment" else \
        inst.schema.system("attachment")
    with inst.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def test_support_mail_becomes_a_ticket_with_its_attachment_and_a_second_run_does_nothing(crm):
    inst, mailbox = crm["inst"], crm["mailbox"]
    pdf = b"%PDF-1.4 the invoice"
    raw = message(attach=pdf)
    uid = mailbox.add(raw)
    assert run(crm) == ["created"]
    [ticket] = rows(inst, "ticket")
    assert ticket["subject"] == "The printer is broken"
    assert ticket["description"] == "It prints nothing at all."
    assert ticket["channel"] == "email"
    assert (ticket["contact"], ticket["account"]) == (crm["ada"]["id"], crm["acme"]["id"])
    [attachment] = rows(inst, "attachment")
    assert (attachment["entity"], attachment["record_id"], attachment["filename"]) == \
        ("ticket", ticket["id"], "invoice.pdf")
    assert (crm["uploads"] / attachment["storage_key"]).read_bytes() == pdf
    assert any("Made from the e-mail from ada@acme.example" in body
               for body in timeline(inst, "ticket", ticket["id"]))
    assert uid in mailbox.seen

    assert run(crm) == []  # nothing unseen: a second run does nothing
    mailbox.add(raw)  # the same message again (a copy in the folder): read once only
    assert run(crm) == ["duplicate"]
    assert len(rows(inst, "ticket")) == 1 and len(rows(inst, "attachment")) == 1
    assert sorted(p.name for p in crm["uploads"].iterdir()) == [attachment["storage_key"]]


def test_replies_go_onto_the_record_they_answer(crm):
    inst, mailbox = crm["inst"], crm["mailbox"]
    ada = crm["ada"]
    with smtp_server() as (inbox, url):
        inst.settings["MAIL_URL"] = url
        with write_transaction(inst.engine) as conn:
            outbox.email_record(inst, conn, "contact", ada, "contact_hello", None,
                                to="ada@acme.example")
        run_worker(inst)
    [sent] = inbox.messages
    mailbox.add(message(subject="Re: Hello Ada", body="Thanks, talk soon.",
                        to="crm@crm.test", headers={"In-Reply-To": sent["Message-ID"]}))
    mailbox.add(message(subject="Re: the printer", body="It works again!", attach=b"%PDF-x",
                        to="someone@crm.test", headers={"References": "<first@acme.example>"}))
    mailbox.add(message(subject="The printer", headers={"Message-ID": "<first@acme.example>"}))
    # the second came before the message it answers, to an address no rule takes
    assert run(crm) == ["replied", "dropped", "created"]
    [ticket] = rows(inst, "ticket")
    assert any("E-mail from ada@acme.example: “Re: Hello Ada”\n\nThanks, talk soon." in body
               for body in timeline(inst, "contact", ada["id"]))

    mailbox.add(message(subject="Re: the printer", body="It works again!", attach=b"%PDF-x",
                        to="someone@crm.test", headers={"References": "<first@acme.example>",
                                                        "Message-ID": "<second@acme.example>"}))
    with inst.engine.begin() as conn:
        address = reply_address(inst, conn, "contact", ada["id"])
    assert address.startswith("reply+") and address.endswith("@crm.test")
    mailbox.add(message(subject="By the reply address", to=address))
    forged = address.replace("reply+", "reply+x")
    mailbox.add(message(subject="Forged token", to=forged))
    assert run(crm) == ["replied", "replied", "dropped"]
    assert any("It works again!" in body for body in timeline(inst, "ticket", ticket["id"]))
    assert any("By the reply address" in body for body in timeline(inst, "contact", ada["id"]))
    assert [(a["entity"], a["filename"]) for a in rows(inst, "attachment")] == \
        [("ticket", "invoice.pdf")]
    assert len(rows(inst, "ticket")) == 1


AUTOMATIC = [  # (headers, from): each is dropped
    ({"Auto-Submitted": "auto-replied"}, None), ({"X-Autoreply": "yes"}, None),
    ({"Precedence": "bulk"}, None), ({"Precedence": "auto_reply"}, None),
    ({}, "CRM <crm@crm.test>"), ({"Message-ID": "<1.2.3.crm-mail-7@crm.test>"}, None),
]


def test_auto_replies_and_loops_are_dropped(crm, caplog):
    caplog.set_level("INFO", logger="crmforge.mail_in")
    uids = [crm["mailbox"].add(message(subject=f"Automatic {index}", headers=headers,
                                       sender=sender or "Ada <ada@acme.example>"))
            for index, (headers, sender) in enumerate(AUTOMATIC)]
    assert run(crm) == ["dropped"] * len(AUTOMATIC)
    assert rows(crm["inst"], "ticket") == []
    assert set(uids) <= crm["mailbox"].seen
    assert caplog.text.count("an automatic message") == 4
    assert caplog.text.count("a message of our own came back (a mail loop)") == 2


def test_an_unknown_sender_is_linked_to_the_account_of_its_domain(crm):
    senders = {"Bo One <bo@acme.example>": crm["acme"]["id"], "Bo Two <bo@gmail.com>": None,
               "Bo Three <bo@other.example>": None}
    for sender in senders:
        crm["mailbox"].add(message(sender=sender, subject=sender))
    assert run(crm) == ["created"] * 3
    contacts = {c["id"]: c for c in rows(crm["inst"], "contact")}
    for ticket, (sender, account) in zip(rows(crm["inst"], "ticket"), senders.items(),
                                         strict=True):
        assert ticket["account"] == account
        bo = contacts[ticket["contact"]]  # new_sender: the sender's contact is made
        assert (bo["first_name"], bo["last_name"], bo["email"], bo["account"]) == \
            ("Bo", sender.split()[1], sender.split("<")[1][:-1], account)


def test_a_mail_to_sales_becomes_a_lead(crm):
    crm["mailbox"].add(message(sender="Bo Baker <bo@new.example>", to="Sales <sales@crm.test>",
                               subject="Prices?", body="What do your products cost?"))
    assert run(crm) == ["created"]
    [lead] = rows(crm["inst"], "lead")
    assert (lead["last_name"], lead["email"], lead["description"]) == \
        ("Bo Baker", "bo@new.example", "What do your products cost?")


MIME_HEAD = b"From: bo@acme.example\r\nTo: support@crm.test\r\nSubject: broken\r\n"


HOSTILE = [  # (raw message, the ticket's subject, its description)
    (MIME_HEAD + b"Message-ID: <m1@x>\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n"
     b"--zz\r\nContent-Type: text/plain\r\n\r\nhalf a tree", "broken", "half a tree"),
    (MIME_HEAD + b"Message-ID: <m2@x>\r\nContent-Type: multipart/mixed\r\n\r\nno boundary\r\n",
     "broken", "broken"),
    (MIME_HEAD + b"Message-ID: <m3@x>\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
     b"Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xe9 cr\xe8me\r\n", "broken", "Café crème"),
    (MIME_HEAD + b"Message-ID: <m4@x>\r\nContent-Type: text/plain; charset=x-no-such\r\n\r\n"
     b"Gr\xc3\xbc\xc3\x9fe \xff\r\n", "broken", "Grüße \ufffd"),
    (b"From: bo@acme.example\r\nTo: support@crm.test\r\nSubject: =?shift_jis?B?g2WDWINn?=\r\n"
     b"Content-Type: text/plain; charset=shift_jis\r\n\r\n\x83e\x83X\x83g\r\n", "テスト", "テスト"),
    (b"From: bo@acme.example\r\nTo: support@crm.test\r\nSubject: a\x00b\x01c\r\n"
     b"Message-ID: <m6@x>\r\n\r\nbody\x00 text\r\n", "abc", "body text"),
    (b"From: bo@acme.example\r\nTo: support@crm.test\r\nMessage-ID: <m7@x>\r\nSubject: "
     + b"x" * 100_000 + b"\r\n\r\nlong\r\n", "x" * 200, "long"),
]


def test_hostile_messages_are_kept_cleaned(crm):
    for raw, _, _ in HOSTILE:
        crm["mailbox"].add(raw)
    assert run(crm) == ["created"] * len(HOSTILE)
    tickets = rows(crm["inst"], "ticket")
    assert [(t["subject"], t["description"].strip()) for t in tickets] == \
        [(subject, text) for _, subject, text in HOSTILE]
    for raw, _, _ in HOSTILE:  # read again (with or without a Message-ID): routed once
        crm["mailbox"].add(raw)
    assert run(crm) == ["duplicate"] * len(HOSTILE)


def test_a_message_past_the_size_limit_is_refused_without_downloading_it(crm, caplog):
    caplog.set_level("INFO", logger="crmforge.mail_in")
    huge = message() + b"A" * (30 * 1024 * 1024)
    uid = crm["mailbox"].add(huge)
    assert run(crm) == ["refused"]
    assert "larger than the limit" in caplog.text and uid in crm["mailbox"].seen
    assert not any("PEEK" in c for c in crm["mailbox"].commands)
    assert rows(crm["inst"], "ticket") == []


def test_a_message_the_record_refuses_is_logged_and_not_retried(make_instance, tmp_path,
                                                                 imap):
    pack = write_pack(tmp_path, {"entities/note.yaml": """
        entity: note
        fields:
          title: {type: text, required: true, max_length: 20}
          score: {type: integer, required: true}
        """, "inbound/notes.yaml": """
        inbound:
          notes: {to: notes@crm.test, entity: note, fields: {title: subject, score: body}}
        """})
    inst = make_instance(pack)
    inst.settings["MAIL_IN_URL"] = imap[1]
    uid = imap[0].add(message(to="notes@crm.test", body="not a number"))
    [outcome] = read_mailbox(inst, tmp_path / "uploads")
    assert outcome.outcome == "refused" and "score" in outcome.reason
    assert uid in imap[0].seen


def test_the_mail_in_command_reads_the_mailbox(tmp_path, imap, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    assert main(["--database-url", url, "install", str(CORE)]) == 0
    monkeypatch.setenv("CRMFORGE_MAIL_IN_URL", "imap://nobody@127.0.0.1:1/INBOX")
    assert main(["--database-url", url, "mail-in"]) == 1
    assert "must name the user and password" in capsys.readouterr().err
    monkeypatch.setenv("CRMFORGE_MAIL_IN_URL", imap[1])
    imap[0].add(message(sender="Bo Baker <bo@new.example>", attach=b"%PDF-1"))
    imap[0].add(message(subject="Out of office", headers={"Auto-Submitted": "auto-replied"}))
    args = ["--database-url", url, "mail-in", "--instance-dir", str(tmp_path)]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == "read 2 message(s), 1 created, 1 dropped"
    assert len(list((tmp_path / "uploads").iterdir())) == 1
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == "read 0 message(s)"


@pytest.mark.parametrize(("url", "parts"), [
    ("imap://u:p%40ss@mail.example:1143/Support", ("mail.example", 1143, False, "p@ss",
                                                  "Support")),
    ("imaps://u:p@mail.example", ("mail.example", 993, True, "p", "INBOX")),
])
def test_mailbox_urls(url, parts):
    box = parse_url(url)
    assert (box.host, box.port, box.secure, box.password, box.folder) == parts


@pytest.mark.parametrize(("yaml", "code", "line"), [
    ("inbound:\n  a: {to: support@, entity: tickt}\n", "E202", 2),
    ("inbound:\n  a:\n    to: support@\n    entity: ticket\n    fields: {subjet: subject}\n",
     "E203", 5),
    ("inbound:\n  a:\n    to: support@\n    entity: ticket\n    sender: product\n", "E260", 5),
    ("inbound:\n  a: {to: support@, entity: ticket}\n  b: {to: SUPPORT@, entity: lead}\n",
     "E261", 3),
    ("inbound:\n  a: {to: 'not an address', entity: ticket}\n", "E105", 2),
    ("inbound:\n  a:\n    to: support@\n    entity: ticket\n    new_sender: {name: from}\n",
     "E262", 5),
])
def test_inbound_rules_are_checked(tmp_path, yaml, code, line):
    pack = write_pack(tmp_path, {"entities/ticket.yaml": """
        entity: ticket
        fields:
          subject: {type: text}
          product: {type: link, to: lead}
        """, "entities/lead.yaml": "entity: lead\nfields: {name: {type: text}}\n",
        "inbound/mail.yaml": yaml})
    with pytest.raises(DefinitionError) as failure:
        build_model([pack])
    found = [(d.code, d.line) for d in failure.value.diagnostics]
    assert (code, line) in found, found
