"""The Send e-mail page of a record (`/e/<entity>/<id>/email`) through real HTTP: the picker
and preview (full page, htmx fragment, the Preview button), Send queues the message onto the
record's timeline and the worker delivers it to a real SMTP server (aiosmtpd); only those who
may update the record see and use it; hostile input is a 4xx on the form, never a 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from mail_support import queued_mail, run_worker, smtp_server, timeline
from support import admin_actor, insert_user
from web_support import csrf, make_app, sign_in

from runtime.write import records

CORE = Path(__file__).parent.parent / "verticals" / "core"


@pytest.fixture
def smtp():
    with smtp_server() as running:
        yield running


@pytest.fixture
def web(make_instance, tmp_path):
    inst = make_instance(CORE)
    admin = admin_actor(inst)
    ada = records.create(inst, admin, "contact", {
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
        "owner": admin.user_id})
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, admin)
    return {"inst": inst, "client": client, "admin": admin, "ada": ada,
            "page": f"/e/contact/{ada['id']}/email"}


def page_of(answer) -> str:
    return answer.get_data(as_text=True)


def test_pick_preview_send_and_deliver(web, smtp):
    inst, client, ada = web["inst"], web["client"], web["ada"]
    record = page_of(client.get(f"/e/contact/{ada['id']}"))
    assert f'href="{web["page"]}">Send e-mail</a>' in record
    page = client.get(web["page"])
    html = page_of(page)
    assert page.status_code == 200 and 'value="ada@example.com"' in html
    assert "Hello Ada" in html and "<strong>reply to this e-mail</strong>" in html
    token = csrf(html)
    fragment = client.post(web["page"], data={"csrf_token": token, "template": "contact_hello",
                                              "to": "ada@example.com"},
                           headers={"HX-Request": "true", "HX-Target": "preview"})
    assert fragment.status_code == 200 and page_of(fragment).lstrip().startswith(
        '<section id="preview"')
    preview = client.post(web["page"], data={"csrf_token": token, "template": "contact_hello",
                                             "to": "ada@example.com", "action": "preview"})
    assert preview.status_code == 200 and "Hello Ada" in page_of(preview)
    assert queued_mail(inst) == []

    sent = client.post(web["page"], data={"csrf_token": token, "template": "contact_hello",
                                          "to": " Ada.L@Example.com ", "action": "send"})
    assert sent.status_code == 302 and sent.headers["Location"].endswith(
        f"/e/contact/{ada['id']}#timeline")
    [row] = queued_mail(inst)
    assert (row["to_address"], row["status"], row["user_id"]) == (
        "ada.l@example.com", "queued", web["admin"].user_id)
    assert "“Hello Ada” to ada.l@example.com: queued." in page_of(
        client.get(f"/e/contact/{ada['id']}"))

    inbox, url = smtp
    inst.settings["MAIL_URL"] = url
    run_worker(inst)
    [mail] = inbox.messages
    assert (mail["To"], mail["Subject"]) == ("ada.l@example.com", "Hello Ada")
    assert "Dear Ada Lovelace" in mail.get_body(("plain",)).get_content()
    assert timeline(inst, "contact", ada["id"])[-1].endswith("to ada.l@example.com: sent.")


def test_a_ticket_writes_to_its_contact(web):
    inst, client, ada = web["inst"], web["client"], web["ada"]
    ticket = records.create(inst, web["admin"], "ticket", {
        "subject": "Printer jams", "description": "It jams.", "contact": ada["id"]})
    html = page_of(client.get(f"/e/ticket/{ticket['id']}/email"))
    assert 'value="ada@example.com"' in html and "Printer jams" in html


@pytest.mark.parametrize(("values", "message"), [
    ({"to": "not an address"}, "must be an e-mail address"),
    ({"to": "ada@example.com\r\nBcc: all@example.com"}, "must be on one line"),
    ({"to": "ada@example.com, eve@example.com"}, "must be an e-mail address"),
    ({"to": ""}, "Write the address to send to"),
    ({"to": "a" * 400 + "@example.com"}, "at most 320 characters"),
    ({"to": "a@example.com", "template": "no_such_template"}, "Pick a template from the list"),
    ({"to": "a@example.com", "template": "ticket_update"}, "Pick a template from the list"),
    ({"to": "ada\x00@example.com"}, "NUL"),
    ({"to": "a@example.com", "template": "contact_hello\x00"}, "NUL"),
])
def test_hostile_input_is_a_4xx_with_a_message(web, values, message):
    client = web["client"]
    token = csrf(page_of(client.get(web["page"])))
    answer = client.post(web["page"], data={"csrf_token": token, "template": "contact_hello",
                                            "action": "send", **values})
    assert 400 <= answer.status_code < 500 and message in page_of(answer)
    assert queued_mail(web["inst"]) == []


def test_without_the_csrf_token_nothing_is_sent(web):
    answer = web["client"].post(web["page"], data={"template": "contact_hello",
                                                   "to": "a@example.com", "action": "send"})
    assert answer.status_code == 400 and queued_mail(web["inst"]) == []


def test_only_those_who_may_update_the_record(web, make_instance, tmp_path):
    inst, ada = web["inst"], web["ada"]
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, insert_user(inst, "fay", roles=["finance"]))
    assert "Send e-mail" not in page_of(client.get(f"/e/contact/{ada['id']}"))
    assert client.get(web["page"]).status_code == 403
    rep = make_app(inst, tmp_path).test_client()
    sign_in(rep, inst, insert_user(inst, "rob", roles=["sales_rep"]))
    assert rep.get(web["page"]).status_code == 404  # not his contact: he cannot see it
    account = records.create(inst, web["admin"], "account", {"name": "Acme", "region": "london"})
    assert web["client"].get(f"/e/account/{account['id']}/email").status_code == 404
    assert "Send e-mail" not in page_of(web["client"].get(f"/e/account/{account['id']}"))


DEAL = """
entity: deal
title_field: name
fields:
  name: {type: text, required: true}
  secret: {type: text}
  client_email: {type: email}
permissions:
  rep: {read: true, create: true, update: true, delete: false, hidden: [secret]}
"""
NOTE = """
messages:
  note:
    entity: deal
    subject: "About {name}"
    body: "Between us: [{secret}]"
"""


def test_fields_hidden_from_the_sender_stay_empty(make_instance, pack, tmp_path):
    inst = make_instance(pack({"roles.yaml": "roles:\n  rep: {label: Rep}\n",
                               "entities/deal.yaml": DEAL, "messages/note.yaml": NOTE}))
    deal = records.create(inst, admin_actor(inst), "deal", {
        "name": "Mill", "secret": "floor price 90k", "client_email": "c@example.com"})
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, insert_user(inst, "rep", roles=["rep"]))
    page = f"/e/deal/{deal['id']}/email"
    html = page_of(client.get(page))
    assert "About Mill" in html and "Between us: []" in html and "90k" not in html
    client.post(page, data={"csrf_token": csrf(html), "template": "note",
                            "to": "c@example.com", "action": "send"})
    [row] = queued_mail(inst)
    assert "90k" not in row["body_text"] and "90k" not in row["body_html"]
