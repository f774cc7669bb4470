"""`/e/<entity>/new` and `/e/<entity>/<id>/edit`: widgets by field type, inline errors with
the input kept, the link picker (htmx and JavaScript off), live `*_when` conditions checked
again on the server, defaults and prefills, and the optimistic-lock conflict."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import pytest
from web_support import make_app, seed, sign_in, token_of

from runtime.http.web.widgets import WIDGETS
from runtime.write import records

SUPPORT_PACK = {"entities/ticket.yaml": """
    entity: ticket
    label: Ticket
    title_field: subject
    search: [subject]
    fields:
      subject:  {type: text, required: true, max_length: 80}
      kind:     {type: choice, options: {question: Question, bug: Bug, other: Other}}
      detail:
        type: text
        visible_when: "kind == 'other'"
        required_when: "kind == 'other'"
      severity: {type: integer, min: 1, max: 5, readonly_when: "kind == 'question'"}
      urgent:   {type: boolean}
      tags:     {type: multichoice, options: [billing, login, mobile]}
      due_on:   {type: date}
      reported: {type: datetime}
      cost:     {type: money, currency: EUR}
      share:    {type: percent}
      site:     {type: url}
      mail:     {type: email}
      phone:    {type: phone}
      body:     {type: longtext}
      notes:    {type: richtext}
      parent:   {type: link, to: ticket}
      related:  {type: links, to: ticket}
      scan:     {type: file}
    views:
      form:
        sections:
          - {label: Ticket, columns: 2, fields: [subject, kind, detail, severity, urgent, tags]}
          - {label: More, fields: [due_on, reported, cost, share, site, mail, phone, body,
                                   notes, parent, related, scan]}
    """}


@pytest.fixture
def web(spec_instance, admin, tmp_path) -> dict[str, Any]:
    inst = spec_instance
    who = admin(inst)
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, who)
    return {"inst": inst, "client": client, "admin": who, "data": seed(inst, who)}


@pytest.fixture
def tickets(pack, make_instance, admin, tmp_path) -> dict[str, Any]:
    inst = make_instance(pack(SUPPORT_PACK, name="support"))
    who = admin(inst)
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, who)
    return {"inst": inst, "client": client, "admin": who}


def test_every_field_type_has_its_input(tickets) -> None:
    html = tickets["client"].get("/e/ticket/new").get_data(as_text=True)
    expectations = {
        "subject": 'type="text" id="f-subject" name="subject" required',
        "kind": '<select id="f-kind" name="kind"',
        "urgent": 'type="checkbox" id="f-urgent" name="urgent"',
        "tags": 'name="tags" value="billing"',
        "due_on": 'type="date" id="f-due_on"',
        "reported": 'type="datetime-local" id="f-reported"',
        "cost": 'inputmode="decimal" id="f-cost"',
        "site": 'type="url" id="f-site"',
        "mail": 'type="email" id="f-mail"',
        "phone": 'type="tel" id="f-phone"',
        "body": '<textarea id="f-body"',
        "parent": 'name="parent__q"',
        "related": '<select multiple id="f-related" name="related"',
        "scan": 'type="file" id="f-scan" name="scan"',
    }
    for name, needle in expectations.items():
        assert needle in html, name
    assert 'enctype="multipart/form-data"' in html
    assert 'class="form-grid cols-2"' in html
    assert re.search(r'id="field-detail"[^>]*hidden', html)  # visible_when is false for now
    assert set(WIDGETS) >= {"text", "link", "links", "file"}


def test_validation_errors_inline_with_input_kept_then_fixed(tickets) -> None:
    client, inst, who = tickets["client"], tickets["inst"], tickets["admin"]
    token = token_of(client, "/e/ticket/new")
    bad = client.post("/e/ticket/new", data={
        "csrf_token": token, "subject": "", "severity": "9", "mail": "not-an-email",
        "kind": "other", "detail": "", "body": "keep <me>"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "was not saved" in html
    assert 'class="field has-error" id="field-mail"' in html
    assert "Mail must be an e-mail address" in html
    assert 'value="not-an-email"' in html and "keep &lt;me&gt;</textarea>" in html
    assert 'aria-invalid="true"' in html
    rules = client.post("/e/ticket/new", data={
        "csrf_token": token, "subject": "", "severity": "9", "kind": "other", "detail": ""})
    assert rules.status_code == 422
    html = rules.get_data(as_text=True)
    for field in ("subject", "severity", "detail"):
        assert f'class="field has-error" id="field-{field}"' in html, field
    assert 'value="9"' in html
    assert records.count(inst, who, "ticket")[0] == 0
    good = client.post("/e/ticket/new", data={
        "csrf_token": token, "subject": "Printer on fire", "severity": "3", "kind": "other",
        "detail": "It is really on fire", "urgent": "true", "urgent__present": "1",
        "tags": ["billing", "mobile"], "tags__present": "1", "cost": "12.50",
        "due_on": "2026-03-09", "reported": "2026-03-02T08:15", "mail": "a@b.co"})
    assert good.status_code == 302
    record = records.get(inst, who, "ticket", int(good.headers["Location"].rsplit("/", 1)[1]))
    assert record["subject"] == "Printer on fire" and record["urgent"] is True
    assert record["tags"] == ["billing", "mobile"] and record["cost"] == "12.50"
    assert record["reported"].startswith("2026-03-02T08:15")
    page = client.get(good.headers["Location"]).get_data(as_text=True)
    assert "created." in page and "€12.50" in page


def test_conditions_round_trip_to_the_server(tickets) -> None:
    client = tickets["client"]
    token = token_of(client, "/e/ticket/new")

    def state(**values: str) -> dict:
        answer = client.post("/e/ticket/_state", data={"csrf_token": token, **values},
                             headers={"HX-Request": "true"})
        assert answer.status_code == 200
        raw = re.search(r'data-state="([^"]*)"', answer.get_data(as_text=True)).group(1)
        return json.loads(unescape(raw))

    assert state(kind="bug")["detail"] == {"visible": False, "required": False,
                                           "readonly": False}
    assert state(kind="other")["detail"] == {"visible": True, "required": True,
                                             "readonly": False}
    assert state(kind="question")["severity"]["readonly"] is True
    # the server holds the same rule on save (a hidden field is not required)
    answer = client.post("/e/ticket/new", data={"csrf_token": token, "subject": "Q",
                                                "kind": "question"})
    assert answer.status_code == 302


def test_link_picker_options_and_typed_text(web) -> None:
    client, data, inst, who = web["client"], web["data"], web["inst"], web["admin"]
    options = client.get("/e/contact/_options?q=schm&target=f-buyer",
                         headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f'data-id="{data["anna"]["id"]}"' in options and "Anna Schmidt" in options
    assert "Nothing matches" in client.get("/e/contact/_options?q=zzz").get_data(as_text=True)
    token = token_of(client, "/e/offer/new")
    # JavaScript off: the buyer is typed, not picked; one match is taken
    answer = client.post("/e/offer/new", data={
        "csrf_token": token, "property": str(data["loft"]["id"]), "property__q": "City loft",
        "property__shown": "City loft", "buyer": "", "buyer__q": "Okafor", "buyer__shown": "",
        "amount": "600000", "financing": "cash"})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:3000]
    offer = records.get(inst, who, "offer", int(answer.headers["Location"].rsplit("/", 1)[1]))
    assert offer["buyer"] == data["ben"]["id"]
    ambiguous = client.post("/e/offer/new", data={
        "csrf_token": token, "property": str(data["loft"]["id"]), "property__q": "City loft",
        "property__shown": "City loft", "buyer__q": "example.com", "amount": "1"})
    assert ambiguous.status_code == 422
    assert "no single contact matches" in ambiguous.get_data(as_text=True)


def test_new_form_defaults_and_prefill_from_a_related_list(web) -> None:
    client, data = web["client"], web["data"]
    html = client.get(f"/e/offer/new?property={data['villa']['id']}").get_data(as_text=True)
    assert 'value="Hillside villa with garden"' in html  # prefilled link shows its title
    valid = (web["inst"].today()).toordinal() + 7
    from datetime import date

    assert f'value="{date.fromordinal(valid).isoformat()}"' in html  # =today() + days(7)
    assert '<option value="cash" selected>' in html  # default: cash


def test_a_blank_field_with_a_computed_default_gets_it_on_save(web) -> None:
    """`valid_until: "=today() + days(7)"` left blank is worked out on save; `financing`
    (a literal default the form showed) cleared stays blank."""
    from datetime import timedelta

    client, data, inst, who = web["client"], web["data"], web["inst"], web["admin"]
    token = token_of(client, "/e/offer/new")
    answer = client.post("/e/offer/new", data={
        "csrf_token": token, "property": str(data["loft"]["id"]), "buyer": str(
            data["ben"]["id"]), "amount": "610000", "valid_until": "", "financing": ""})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:3000]
    offer = records.get(inst, who, "offer", int(answer.headers["Location"].rsplit("/", 1)[1]))
    assert offer["valid_until"] == (inst.today() + timedelta(days=7)).isoformat()
    assert offer["financing"] is None


def test_edit_saves_and_stale_version_shows_the_conflict(web) -> None:
    client, inst, who = web["client"], web["inst"], web["admin"]
    offer = web["data"]["offers"][0]
    page = client.get(f"/e/offer/{offer['id']}/edit").get_data(as_text=True)
    assert f'name="version" value="{offer["version"]}"' in page
    token = token_of(client, f"/e/offer/{offer['id']}/edit")
    # someone else saves first
    records.update(inst, who, "offer", offer["id"], {"notes": "Changed by Bob"},
                   version=offer["version"])
    answer = client.post(f"/e/offer/{offer['id']}/edit", data={
        "csrf_token": token, "version": str(offer["version"]), "notes": "Mine",
        "amount": "416000"})
    assert answer.status_code == 409
    html = answer.get_data(as_text=True)
    assert "Someone else saved this record" in html
    assert "Changed by Bob" in html and "Mine" in html
    assert f'name="version" value="{offer["version"] + 1}"' in html  # saving again overwrites
    again = client.post(f"/e/offer/{offer['id']}/edit", data={
        "csrf_token": token, "version": str(offer["version"] + 1), "notes": "Mine"})
    assert again.status_code == 302
    assert records.get(inst, who, "offer", offer["id"])["notes"] == "Mine"


def test_read_only_and_computed_fields_are_not_inputs(web) -> None:
    offer = web["data"]["offers"][0]
    html = web["client"].get(f"/e/offer/{offer['id']}/edit").get_data(as_text=True)
    assert 'name="discount_pct"' not in html and "Discount pct" in html
    assert 'name="reference"' not in html and "OFF-00001" in html


def test_user_without_update_rights_cannot_edit(spec_instance, admin, make_user,
                                                tmp_path) -> None:
    inst = spec_instance
    data = seed(inst, admin(inst))
    agent = make_user(inst, "agnes", roles=["agent"])
    lead = records.create(inst, admin(inst), "lead", {  # owner: admin, not routed
        "name": "Pool lead", "owner": admin(inst).user_id})
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, agent)
    assert client.get(f"/e/lead/{lead['id']}/edit").status_code == 404  # not readable
    del data


def test_duplicates_block_with_a_link_and_warn_after_saving(web) -> None:
    client, data = web["client"], web["data"]
    token = token_of(client, "/e/contact/new")
    blocked = client.post("/e/contact/new", data={
        "csrf_token": token, "first_name": "Anna", "last_name": "Other",
        "phone": "+44 20 7946-0958"})
    assert blocked.status_code == 422
    html = blocked.get_data(as_text=True)
    assert "already exists" in html
    assert f'href="/e/contact/{data["anna"]["id"]}">Open the existing record' in html
    warned = client.post("/e/contact/new", data={
        "csrf_token": token, "first_name": "Anna", "last_name": "Schmidt",
        "birth_date": "1986-04-12", "email": "anna2@example.com"}, follow_redirects=True)
    assert warned.status_code == 200
    assert "already exists" in warned.get_data(as_text=True)  # saved, with a warning
