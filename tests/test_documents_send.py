""""Send to customer" on a document (issue 18, item 4) through real HTTP and a real browser: the
quote is printed, kept among the record's attachments, and e-mailed with a message template
by the worker to a real SMTP server (aiosmtpd on 127.0.0.1) as a multipart message whose PDF
starts with %PDF; the timeline says so. The recipient defaults to the quote's contact; only
those who may update the record get the form; a form without its CSRF token sends nothing.
`CRMFORGE_SCREENSHOTS=1` saves the form at 1366 and 390 px to docs/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from axe_support import assert_accessible
from browser_support import browser_instance, expect, give_passwords, served, shoot_both, sign_in
from mail_support import queued_mail, run_worker, smtp_server, timeline
from support import admin_actor, insert_user, model_of
from web_support import csrf, make_app
from web_support import sign_in as web_sign_in

from runtime.core.instance import Actor, Instance
from runtime.write import records

CORE = Path(__file__).resolve().parent.parent / "verticals" / "core"


def make_quote(inst: Instance, owner: Actor) -> dict[str, Any]:
    """A quote for Harbour Foods addressed to Ada (whose account has an address of its own)."""
    admin = admin_actor(inst)
    account = records.create(inst, admin, "account", {
        "name": "Harbour Foods Ltd", "region": "london", "email": "office@harbour.example"})
    ada = records.create(inst, admin, "contact", {
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@harbour.example",
        "account": account["id"]})
    quote = records.create(inst, admin, "quote", {
        "account": account["id"], "contact": ada["id"], "owner": owner.user_id,
        "terms": "Delivery within 10 days."})
    product = records.create(inst, admin, "product", {
        "code": "CR-10", "name": "Cold room panel", "category": "hardware",
        "unit_price": "1250.00", "unit_cost": "40.00"})["id"]
    records.create(inst, admin, "quote_line", {"quote": quote["id"], "product": product,
                                               "quantity": "2", "unit_price": "1250.00"})
    return quote


def attachments_of(inst: Instance, entity: str, record_id: int) -> list[dict[str, Any]]:
    table = inst.schema.system("attachment")
    with inst.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).where(
            table.c.entity == entity, table.c.record_id == record_id)).mappings()]


@pytest.fixture
def smtp():
    with smtp_server() as running:
        yield running


@pytest.fixture
def web(make_instance, tmp_path, smtp):
    inst = make_instance(CORE)
    inst.settings.update(MAIL_URL=smtp[1], MAIL_FROM="CRM <crm@crm.test>",
                         UPLOAD_DIR=str(tmp_path / "uploads"))
    admin = admin_actor(inst)
    quote = make_quote(inst, admin)
    client = make_app(inst, tmp_path).test_client()
    web_sign_in(client, inst, admin)
    return {"inst": inst, "client": client, "admin": admin, "quote": quote,
            "inbox": smtp[0], "page": f"/e/quote/{quote['id']}/documents/quote/send"}


@pytest.mark.slow  # links every vertical
@pytest.mark.parametrize("pack", ["core", "finance", "hotel", "real_estate", "telecom"])
def test_every_shipped_document_can_be_sent_to_the_customer(pack: str) -> None:
    """A shipped document has a message template in every language to send it with."""
    paths = [CORE] if pack == "core" else [CORE, CORE.parent / pack]
    model = model_of(paths)
    for document in (d for d in model.documents.values() if d.pack == pack):
        messages = model.messages_for(document.entity)
        assert messages, f"{pack}: no message template sends {document.name}"
        for message in messages:
            for language in ("en", "zh", "es"):
                assert language in dict(message.subject.values), (message.name, language)


def test_send_a_quote_to_the_customer(web):
    inst, client, quote = web["inst"], web["client"], web["quote"]
    record = client.get(f"/e/quote/{quote['id']}").get_data(as_text=True)
    assert f'href="{web["page"]}"' in record and "Send to customer" in record
    form = client.get(web["page"])
    html = form.get_data(as_text=True)
    assert form.status_code == 200 and 'value="ada@harbour.example"' in html  # the contact
    assert "Our quote QUO-" in html and "quote-QUO-" in html  # the template, the PDF's name
    sent = client.post(web["page"], data={"csrf_token": csrf(html), "action": "send",
                                          "template": "quote_to_customer",
                                          "to": "ada@harbour.example"})
    assert sent.status_code == 302 and sent.headers["Location"].endswith(
        f"/e/quote/{quote['id']}#timeline")

    [kept] = attachments_of(inst, "quote", quote["id"])
    assert kept["filename"].startswith("quote-QUO-") and kept["content_type"] == \
        "application/pdf"
    [row] = queued_mail(inst)
    assert row["attachments"] == [kept["id"]] and row["to_address"] == "ada@harbour.example"
    assert any(e.startswith("Quote “quote-QUO-") and "attached and queued to go to "
               "ada@harbour.example" in e for e in timeline(inst, "quote", quote["id"]))

    run_worker(inst)
    [mail] = web["inbox"].messages
    assert mail.get_content_type() == "multipart/mixed"
    assert mail["Subject"].startswith("Our quote QUO-") and mail["To"] == "ada@harbour.example"
    assert "please find attached our quote" in mail.get_body(("plain",)).get_content()
    [pdf] = list(mail.iter_attachments())
    assert pdf.get_filename() == kept["filename"]
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_content().startswith(b"%PDF")
    assert timeline(inst, "quote", quote["id"])[-1].endswith("to ada@harbour.example: sent.")
    page = client.get(f"/e/quote/{quote['id']}").get_data(as_text=True)
    assert kept["filename"] in page


def test_a_missing_file_is_retried_with_a_reason(web, tmp_path):
    inst, client = web["inst"], web["client"]
    html = client.get(web["page"]).get_data(as_text=True)
    client.post(web["page"], data={"csrf_token": csrf(html), "action": "send",
                                   "template": "quote_to_customer", "to": "ada@harbour.example"})
    inst.settings["UPLOAD_DIR"] = str(tmp_path / "elsewhere")
    run_worker(inst)
    [row] = queued_mail(inst)
    assert row["status"] == "retrying" and "cannot be read from" in row["last_error"]
    assert web["inbox"].messages == []


@pytest.mark.parametrize(("values", "status", "message"), [
    ({"to": "ada at harbour", "template": "quote_to_customer"}, 400, "must be an e-mail"),
    ({"to": "", "template": "quote_to_customer"}, 400, "Write the address"),
    ({"to": "ada@harbour.example", "template": "contact_hello"}, 400, "Pick a template"),
])
def test_bad_input_is_answered_on_the_form(web, values, status, message):
    html = web["client"].get(web["page"]).get_data(as_text=True)
    answer = web["client"].post(web["page"], data={"csrf_token": csrf(html), "action": "send",
                                                   **values})
    assert answer.status_code == status and message in answer.get_data(as_text=True)
    assert queued_mail(web["inst"]) == [] and attachments_of(
        web["inst"], "quote", web["quote"]["id"]) == []


def test_without_the_csrf_token_nothing_is_sent(web):
    answer = web["client"].post(web["page"], data={"action": "send", "to": "a@b.example",
                                                   "template": "quote_to_customer"})
    assert answer.status_code == 400 and queued_mail(web["inst"]) == []


def test_only_those_who_may_update_the_record(web, tmp_path):
    inst = web["inst"]
    reader = insert_user(inst, "finance", roles=["finance"])  # may read quotes, not change them
    client = make_app(inst, tmp_path, WTF_CSRF_ENABLED=False).test_client()
    web_sign_in(client, inst, reader)
    record = client.get(f"/e/quote/{web['quote']['id']}").get_data(as_text=True)
    assert "Quote (PDF)" in record and "Send to customer" not in record
    assert client.get(web["page"]).status_code == 403
    assert client.post(web["page"], data={"action": "send", "to": "a@b.example",
                                          "template": "quote_to_customer"}).status_code == 403
    for path in (f"/e/quote/{web['quote']['id']}/documents/nothing/send",
                 f"/e/account/{web['quote']['account']}/documents/quote/send"):
        assert web["client"].get(path).status_code == 404, path
    assert queued_mail(inst) == []


# -- in a browser -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    inst, directory = browser_instance(tmp_path_factory, "documents-send")
    admin = admin_actor(inst)
    give_passwords(inst, admin)
    quote = make_quote(inst, admin)
    with smtp_server() as (inbox, url):
        inst.settings.update(MAIL_URL=url, MAIL_FROM="CRM <crm@crm.test>",
                             UPLOAD_DIR=str(directory / "uploads"))
        with served(inst, directory, quote=quote, inbox=inbox) as running:
            yield running


@pytest.mark.browser
def test_send_a_quote_from_the_documents_menu(browser, server) -> None:
    quote = server["quote"]
    path = f"/e/quote/{quote['id']}/documents/quote/send"
    shoot_both(browser, server, "admin", path, "document-send")
    shoot_both(browser, server, "admin", f"/e/quote/{quote['id']}", "document-send-menu",
               prepare=lambda shown: shown.locator("details.doc-menu > summary").click())
    page = sign_in(browser, server)
    page.goto(f"{server['url']}/e/quote/{quote['id']}")
    page.locator("details.doc-menu > summary").click()
    page.get_by_role("link", name="Send to customer").click()
    page.wait_for_url(server["url"] + path)
    expect(page.locator("#mail-to")).to_have_value("ada@harbour.example")
    expect(page.locator("#preview .mail-subject")).to_contain_text("Our quote QUO-")
    expect(page.locator("#preview .mail-attachment")).to_contain_text("quote-QUO-")
    assert_accessible(page)
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".flash-success")).to_contain_text("attached, and the e-mail to "
                                                           "ada@harbour.example queued")
    expect(page.locator(".timeline")).to_contain_text("attached and queued to go to "
                                                      "ada@harbour.example")
    run_worker(server["inst"])
    [mail] = server["inbox"].messages
    [pdf] = list(mail.iter_attachments())
    assert pdf.get_content().startswith(b"%PDF")
    page.close()
