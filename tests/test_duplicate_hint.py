"""Duplicates are warned about while typing (issue 13, item 15): a form whose entity has
duplicate rules asks `/e/<entity>/_duplicates` as the user types in a field a rule matches on
(e-mail, phone, name) and shows "A contact with this e-mail exists: <link>" — only for records
the user may read — and the warning after saving no longer promises a merge that does not
exist. Page tests with the Flask client, and a Playwright journey in Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from browser_support import VIEWPORTS, chromium, require_browser, served, shoot
from browser_support import sign_in as browser_sign_in
from web_support import PASSWORD, csrf, make_app, sign_in

from runtime.core.instance import Instance
from runtime.http.auth import set_password
from runtime.write import records

CONTACT = """\
entity: contact
title_field: full_name
fields:
  first_name: {type: text, required: true}
  last_name: {type: text, required: true}
  full_name: {type: text, formula: "first_name + ' ' + last_name"}
  email: {type: email, label: E-mail}
  phone: {type: phone}
  notes: {type: longtext}
duplicates:
  - {match: [email], action: warn}
  - {match: [phone], action: warn}
  - {match: [first_name, last_name], action: warn}
permissions:
  clerk: {read: "owner == user.id", create: true, update: "owner == user.id"}
"""
ROLES = "roles:\n  clerk: {label: Clerk}\n"
NOTE = """\
entity: note_only
fields:
  text: {type: text}
permissions:
  clerk: {read: true, create: true}
"""


@pytest.fixture
def contacts(make_instance: Callable[..., Instance], pack: Callable, admin: Callable
             ) -> dict[str, Any]:
    inst = make_instance(pack({"entities/contact.yaml": CONTACT,
                               "entities/note_only.yaml": NOTE, "roles.yaml": ROLES}))
    who = admin(inst)
    anna = records.create(inst, who, "contact", {
        "first_name": "Anna", "last_name": "Berg", "email": "anna@example.com",
        "phone": "+44 20 7946 0958"})
    return {"inst": inst, "admin": who, "anna": anna}


def ask(client, entity: str = "contact", **values: str) -> str:
    token = csrf(client.get(f"/e/{entity}/new").get_data(as_text=True))
    answer = client.post(f"/e/{entity}/_duplicates", data={"csrf_token": token, **values},
                         headers={"HX-Request": "true"})
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    return answer.get_data(as_text=True)


def test_the_form_asks_while_typing_in_the_fields_the_rules_cover(contacts, tmp_path) -> None:
    client = make_app(contacts["inst"], tmp_path).test_client()
    sign_in(client, contacts["inst"], contacts["admin"])
    html = client.get("/e/contact/new").get_data(as_text=True)
    trigger = re.search(r'id="duplicate-hint"[^>]*hx-trigger="([^"]+)"', html, re.S)
    assert trigger, "no duplicate hint on the form"
    for name in ("first_name", "last_name", "email", "phone"):
        assert f"from:[name={name}]" in trigger.group(1)
    assert "[name=notes]" not in trigger.group(1)
    # an entity without duplicate rules asks nothing
    assert 'id="duplicate-hint"' not in client.get("/e/note_only/new").get_data(as_text=True)


def test_the_hint_links_to_the_existing_record(contacts, tmp_path) -> None:
    client = make_app(contacts["inst"], tmp_path).test_client()
    sign_in(client, contacts["inst"], contacts["admin"])
    link = f'href="/e/contact/{contacts["anna"]["id"]}"'
    hint = ask(client, email="ANNA@example.com")  # e-mails compare without case
    assert "A contact with this e-mail exists" in hint and link in hint and "Anna Berg" in hint
    hint = ask(client, phone="+44 (0)20 7946-0958".replace("(0)", ""))  # phones by digits
    assert "with this phone exists" in hint and link in hint
    hint = ask(client, first_name="anna", last_name="BERG")
    assert "with this first name and last name exists" in hint and link in hint
    assert "merge" not in hint
    assert ask(client, email="ben@example.com").strip() == ""
    assert ask(client, first_name="Anna").strip() == ""  # a rule needs all its fields
    assert ask(client, email="not an e-mail").strip() == ""  # what does not parse yet: nothing
    # editing Anna herself is no duplicate of Anna
    assert ask(client, email="anna@example.com",
               _record_id=str(contacts["anna"]["id"])).strip() == ""


def test_no_hint_about_a_record_the_user_may_not_read(contacts, make_user, tmp_path) -> None:
    clerk = make_user(contacts["inst"], "clara", roles=["clerk"])
    client = make_app(contacts["inst"], tmp_path).test_client()
    sign_in(client, contacts["inst"], clerk)
    assert ask(client, email="anna@example.com").strip() == ""


def test_the_warning_after_saving_promises_no_merge(contacts, tmp_path) -> None:
    client = make_app(contacts["inst"], tmp_path).test_client()
    sign_in(client, contacts["inst"], contacts["admin"])
    token = csrf(client.get("/e/contact/new").get_data(as_text=True))
    answer = client.post("/e/contact/new", data={
        "csrf_token": token, "first_name": "Anne", "last_name": "Berg",
        "email": "anna@example.com"}, follow_redirects=True)
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "already exists" in text
    flashes = " ".join(re.findall(r'<div class="flash [^"]*">(.*?)</div>', text, re.S))
    assert "merge" not in flashes.lower()  # the record page offers Merge… (test_merge.py)
    assert "open it to check that this is not the same one" in flashes


# -- in a browser -------------------------------------------------------------------------------

@pytest.fixture
def server(contacts, tmp_path) -> Iterator[dict[str, Any]]:
    require_browser()
    set_password(contacts["inst"], contacts["admin"].user_id, PASSWORD)
    extra = {key: value for key, value in contacts.items() if key != "inst"}
    with served(contacts["inst"], tmp_path, dispose=False, **extra) as running:
        yield running


@pytest.mark.browser
@pytest.mark.parametrize("device, viewport", VIEWPORTS)
def test_typing_an_existing_email_shows_a_link_to_that_contact(server, device,
                                                               viewport) -> None:
    from playwright.sync_api import expect  # the browser extra

    with chromium() as browser:
        page = browser_sign_in(browser, server, "admin", viewport)
        page.goto(server["url"] + "/e/contact/new")
        page.fill("#f-first_name", "Annette")
        page.locator("#f-email").press_sequentially("anna@example.com", delay=10)
        hint = page.locator("#duplicate-hint .duplicate-hint")
        expect(hint).to_contain_text("A contact with this e-mail exists: Anna Berg")
        expect(hint.locator("a")).to_have_attribute(
            "href", f"/e/contact/{server['anna']['id']}")
        shoot(page, f"{device}-duplicate-hint")
        page.fill("#f-email", "annette@example.com")  # another e-mail: the hint goes
        expect(hint).to_have_count(0)
