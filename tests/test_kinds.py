"""Record kinds (`kinds:`): the builder works out what each kind shows and reports mistakes
with coded diagnostics; the write path fills the kind, asks only for the kind's required
fields and keeps its options; forms, record pages and the API honour the kind; the shipped
verticals keep their sections to their own kinds."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from api_support import bearer, user_with_token
from support import admin_actor, insert_user, write_pack
from web_support import csrf, make_app, sign_in

from builder.linker import build_model, check_paths
from builder.model import AppModel
from runtime.core.errors import ValidationFailed
from runtime.write import records

VERTICALS = Path(__file__).resolve().parent.parent / "verticals"

BASE = {
    "roles.yaml": """
        roles:
          clerk: {label: Clerk}
          viewer: {label: Viewer}
    """,
    "entities/person.yaml": """
        entity: person
        label: Person
        plural: People
        title: "{first_name} {last_name}"
        fields:
          first_name: {type: text, required: true}
          last_name: {type: text, required: true}
          email: {type: email}
          channel: {type: choice, options: {email: E-mail, phone: Phone, post: Post}}
          job_title: {type: text, required: true}
          notes: {type: longtext}
        views:
          form:
            sections:
              - {label: Person, columns: 2, fields: [first_name, last_name, email, channel]}
              - {label: Work, fields: [job_title]}
              - {name: remarks, label: Notes, fields: [notes]}
          related: [deal, visit]
        kinds:
          business:
            label: Business contact
            description: Someone at a company you sell to.
            default: true
            sections: [work]
            related: [deal]
        permissions:
          clerk: {read: true, create: true, update: true, delete: true}
          viewer: {read: true, create: false, update: false, delete: false}
    """,
    "entities/deal.yaml": """
        entity: deal
        title_field: name
        fields:
          name: {type: text, required: true}
          person: {type: link, to: person}
        permissions:
          clerk: {read: true, create: true, update: true, delete: true}
    """,
    "entities/visit.yaml": """
        entity: visit
        title_field: subject
        fields:
          subject: {type: text, required: true}
          person: {type: link, to: person}
        permissions:
          clerk: {read: true, create: true, update: true, delete: true}
    """,
}
HOTEL = {
    "entities/guest.yaml": """
        extends: person
        fields:
          guest: {type: boolean, label: Hotel guest, default: false}
          room:
            type: choice
            label: Room wish
            required: true
            options: {quiet: Quiet, high: High floor}
          passport: {type: text}
        views:
          form:
            sections:
              - {label: Guest profile, columns: 2, fields: [guest, room, passport]}
          related: [stay]
        kinds:
          guest:
            label: Hotel guest
            description: A guest of the hotel.
            when: "guest == true"
            sections: [guest_profile]
            hide: [notes]
            related: [stay]
            options: {channel: [email, phone]}
    """,
    "entities/stay.yaml": """
        entity: stay
        title_field: room_number
        fields:
          room_number: {type: text, required: true}
          person: {type: link, to: person}
        permissions:
          clerk: {read: true, create: true, update: true, delete: true}
    """,
}
LOYALTY = {
    "entities/loyalty.yaml": """
        extends: person
        fields:
          loyalty_number: {type: text, label: Loyalty number}
        views:
          form:
            sections:
              - {label: Loyalty, fields: [loyalty_number]}
        kinds:
          guest: {sections: [loyalty]}
    """,
}


def packs(tmp_path: Path, base: dict | None = None, hotel: dict | None = None,
          loyalty: dict | None = None) -> list[Path]:
    return [write_pack(tmp_path, {**BASE, **(base or {})}, name="base"),
            write_pack(tmp_path, {**HOTEL, **(hotel or {})}, name="hotel", requires=("base",)),
            write_pack(tmp_path, {**LOYALTY, **(loyalty or {})}, name="loyalty",
                       requires=("hotel",))]


# -- the builder ------------------------------------------------------------------------------

def test_each_kind_shows_the_common_sections_and_its_own(tmp_path):
    person = build_model(packs(tmp_path)).entity("person")
    business, guest = person.kinds["business"], person.kinds["guest"]
    assert list(person.kinds) == ["business", "guest"] and person.default_kind == "business"
    assert business.fields == {"first_name", "last_name", "email", "channel", "job_title",
                               "notes"}
    # the guest: the common Person section, its own two sections, less what it hides
    assert guest.fields == {"first_name", "last_name", "email", "channel", "guest", "room",
                            "passport", "loyalty_number"}
    assert business.related == {("deal", "person"), ("visit", "person")}
    assert guest.related == {("visit", "person"), ("stay", "person")}
    assert [o.value for o in guest.offers("channel", person.fields["channel"].options)] == [
        "email", "phone"]
    kind = person.fields["kind"]
    assert [(o.value, str(o.label)) for o in kind.options] == [
        ("business", "Business contact"), ("guest", "Hotel guest")]
    assert kind.type == "choice" and kind.default is not None
    assert "kind" not in {n for s in person.views.form for n in s.fields}


def test_an_entity_without_kinds_shows_everything(tmp_path):
    deal = build_model(packs(tmp_path)).entity("deal")
    assert deal.kind_field is None and not deal.kinds and "kind" not in deal.fields
    assert deal.kind_of({"kind": "guest"}) is None and deal.shows({}, "name")


BROKEN = [
    ("unknown_section", "base", "sections: [work]", "sections: [wrok]", "E220",
     "kind 'business': unknown section 'wrok'"),
    ("unknown_field", "base", "sections: [work]", "fields: [job_titel]", "E203",
     "kind 'business': fields: unknown field 'job_titel'"),
    ("unknown_hidden_field", "hotel", "hide: [notes]", "hide: [nots]", "E203",
     "kind 'guest': hide: unknown field 'nots'"),
    ("unknown_option", "hotel", "options: {channel: [email, phone]}",
     "options: {channel: [email, fax]}", "E221", "kind 'guest': options: 'channel' has no "
     "option 'fax'"),
    ("options_of_text", "hotel", "options: {channel: [email, phone]}",
     "options: {passport: [x]}", "E221", "kind 'guest': options: 'passport' is text"),
    ("duplicate_kind", "hotel", "  guest:\n", "  business:\n            label: Business\n"
     "          guest:\n", "E222", "kind 'business' is already defined"),
    ("two_defaults", "hotel", "description: A guest of the hotel.",
     "description: A guest.\n            default: true", "E222",
     "kinds 'business' and 'guest' are both the default"),
    ("unknown_related", "hotel", "hide: [notes]\n            related: [stay]",
     "hide: [notes]\n            related: [stays]", "E224",
     "kind 'guest': related: 'stays' is not a related list"),
    ("bad_when", "hotel", 'when: "guest == true"', 'when: "gust == true"', "E310",
     "kind 'guest': when: unknown field 'gust'"),
    ("unknown_key", "hotel", "hide: [notes]", "hidden: [notes]", "E101", None),
]


@pytest.mark.parametrize(("pack", "old", "new", "code", "message"),
                         [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_a_wrong_kind_is_reported_with_its_code(tmp_path, pack, old, new, code, message):
    edits = {"base": BASE, "hotel": HOTEL}[pack]
    name = "entities/person.yaml" if pack == "base" else "entities/guest.yaml"
    text = edits[name]
    assert text.count(old) == 1
    changed = {name: text.replace(old, new, 1)}
    model, diags = check_paths(packs(tmp_path, **{pack: changed}))
    assert model is None
    found = [(d.code, d.message) for d in diags.errors]
    assert any(c == code and (message is None or message in m) for c, m in found), found
    assert all(d.line > 0 and d.file.endswith(name.split("/")[1]) for d in diags.errors
               if d.code == code)


def test_a_field_named_kind_is_refused(tmp_path):
    base = {"entities/person.yaml": BASE["entities/person.yaml"].replace(
        "notes: {type: longtext}", "notes: {type: longtext}\n          kind: {type: text}")}
    _, diags = check_paths(packs(tmp_path, base=base))
    assert [(d.code, d.message.split(":")[0]) for d in diags.errors] == [
        ("E223", "field 'kind' cannot be declared on an entity with kinds")]


def test_an_ambiguous_section_name_is_refused(tmp_path):
    hotel = {"entities/guest.yaml": HOTEL["entities/guest.yaml"].replace(
        "{label: Guest profile,", "{label: Work,").replace("sections: [guest_profile]",
                                                            "sections: [work]")}
    _, diags = check_paths(packs(tmp_path, hotel=hotel))
    assert ("E220", "kind 'guest': two sections are named 'work'") in [
        (d.code, d.message) for d in diags.errors]


# -- the shipped verticals --------------------------------------------------------------------

@functools.cache
def verticals() -> AppModel:
    return build_model([VERTICALS / p for p in ("core", "finance", "hotel", "real_estate",
                                                "telecom")], demo=False)


def test_a_hotel_guest_shows_only_the_hotel_sections():
    contact = verticals().entity("contact")
    guest, bank = contact.kinds["hotel_guest"], contact.kinds["bank_customer"]
    assert {"vip_level", "stays_count", "guest_notes", "first_name", "email"} <= guest.fields
    assert not guest.fields & {"bank_customer", "kyc_status", "national_id", "client_roles",
                               "aml_checked", "grade", "job_title", "region"}
    assert {"kyc_status", "national_id", "annual_income"} <= bank.fields
    assert not bank.fields & {"vip_level", "client_roles", "grade"}
    core = contact.kinds["contact"]
    assert {"grade", "job_title", "region"} <= core.fields
    assert not core.fields & {"vip_level", "kyc_status", "client_roles"}
    assert ("reservation", "guest") in guest.related and ("order", "contact") not in guest.related


def test_an_it_customer_shows_no_churn_and_a_subscriber_no_sales_performance():
    account = verticals().entity("account")
    company, subscriber = account.kinds["company"], account.kinds["subscriber"]
    assert not company.fields & {"churn_score", "mrr", "subscriber_type"}
    assert {"churn_score", "mrr"} <= subscriber.fields and "grade" not in subscriber.fields
    assert subscriber.options["account_type"] == ("prospect", "customer", "former_customer")



TASK_SECTIONS = {"hotel_task": {"reservation", "complaint"},
                 "banking_task": {"financial_account", "insurance_policy", "loan_application",
                                  "compliance_case", "source_identity"},
                 "property_task": {"property", "viewing", "offer"},
                 "telecom_task": {"subscription", "retention_case", "billing_account"}}


def test_a_hotel_task_shows_only_the_hotel_section():
    task = verticals().entity("task")
    assert task.default_kind == "general" and set(task.kinds) == {"general", *TASK_SECTIONS}
    common = {"subject", "due_on", "account", "contact", "description"}
    for name, own in TASK_SECTIONS.items():
        others = set().union(*TASK_SECTIONS.values()) - own
        assert common | own <= task.kinds[name].fields and not task.kinds[name].fields & others
    general = task.kinds["general"].fields
    assert common <= general and not general & set().union(*TASK_SECTIONS.values())


def test_a_task_about_a_line_is_a_telecom_task(make_instance):
    inst = make_instance(build_model([VERTICALS / "core", VERTICALS / "telecom"], demo=False))
    admin = admin_actor(inst)
    account = records.create(inst, admin, "account", {"name": "Ann Lee Ltd", "region": "london",
                                                     "subscriber_type": "consumer"})
    billing = records.create(inst, admin, "billing_account", {
        "account": account["id"], "bill_to_name": "Ann Lee", "payment_method": "card"})
    about_bill = records.create(inst, admin, "task", {"subject": "Call about the bill",
                                                      "billing_account": billing["id"]})
    plain = records.create(inst, admin, "task", {"subject": "Call back", "account": account["id"]})
    assert (about_bill["kind"], plain["kind"]) == ("telecom_task", "general")

# -- the write path and the API ---------------------------------------------------------------

@pytest.fixture
def inst(make_instance, tmp_path):
    return make_instance(packs(tmp_path / "packs"))


@pytest.fixture
def clerk(inst):
    return insert_user(inst, "clara", roles=["clerk"], full_name="Clara Clerk")


def test_a_new_record_gets_its_kind_from_when_or_the_default(inst, clerk):
    plain = records.create(inst, clerk, "person", {"first_name": "Ann", "last_name": "Lee",
                                                   "job_title": "Buyer"})
    assert plain["kind"] == "business"
    guest = records.create(inst, clerk, "person", {"first_name": "Bo", "last_name": "Ray",
                                                   "guest": True, "room": "quiet"})
    assert guest["kind"] == "guest"


def test_only_the_kinds_required_fields_are_asked_for(inst, clerk):
    # a guest needs a room wish, not a job title; a business contact the other way round
    with pytest.raises(ValidationFailed) as refused:
        records.create(inst, clerk, "person", {"first_name": "Bo", "last_name": "Ray",
                                               "kind": "guest"})
    assert set(refused.value.errors) == {"room"}
    with pytest.raises(ValidationFailed) as refused:
        records.create(inst, clerk, "person", {"first_name": "Ann", "last_name": "Lee"})
    assert set(refused.value.errors) == {"job_title"}


def test_the_kinds_options_are_kept_and_other_values_kept_too(inst, clerk):
    with pytest.raises(ValidationFailed) as refused:
        records.create(inst, clerk, "person", {"first_name": "Bo", "last_name": "Ray",
                                               "kind": "guest", "room": "high",
                                               "channel": "post"})
    assert refused.value.errors["channel"] == [
        "“Post” is not an option for a hotel guest; choose one of: E-mail, Phone"]
    # a business contact may take any channel, and keeps it when it becomes a guest
    ann = records.create(inst, clerk, "person", {"first_name": "Ann", "last_name": "Lee",
                                                 "job_title": "Buyer", "channel": "post"})
    moved = records.update(inst, clerk, "person", ann["id"], {"kind": "guest", "room": "high",
                                                              "channel": "phone"},
                           version=ann["version"])
    assert (moved["kind"], moved["channel"], moved["job_title"]) == ("guest", "phone", "Buyer")


def test_the_api_honours_kinds(inst, tmp_path):
    _, token = user_with_token(inst, "api", roles=("clerk",))
    client = make_app(inst, tmp_path).test_client()
    made = client.post("/api/v1/person", headers=bearer(token), json={
        "first_name": "Bo", "last_name": "Ray", "kind": "guest", "channel": "post"})
    assert made.status_code == 422, made.get_json()
    assert set(made.get_json()["errors"]) == {"room", "channel"}
    made = client.post("/api/v1/person", headers=bearer(token), json={
        "first_name": "Bo", "last_name": "Ray", "kind": "guest", "room": "quiet"})
    assert made.status_code == 201 and made.get_json()["kind"] == "guest"
    listed = client.get("/api/v1/person?kind=guest", headers=bearer(token)).get_json()
    assert [r["first_name"] for r in listed["data"]] == ["Bo"]
    wrong = client.post("/api/v1/person", headers=bearer(token), json={
        "first_name": "Bo", "last_name": "Ray", "kind": "tourist", "room": "quiet"})
    assert wrong.status_code == 422 and "kind" in wrong.get_json()["errors"]


# -- forms and record pages -------------------------------------------------------------------

@pytest.fixture
def web(inst, clerk, tmp_path):
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, clerk)
    return client


def field_names(html: str) -> set[str]:
    return set(re.findall(r'data-field="(\w+)"', html))


def current_kind(html: str) -> str:
    match = re.search(r'aria-current="page"[^>]*>([^<]+)</a>', html)
    return match.group(1) if match else ""


def test_the_new_form_shows_the_chosen_kinds_fields(web):
    page = web.get("/e/person/new?kind=guest")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert field_names(html) == {"first_name", "last_name", "email", "channel", "guest", "room",
                                 "passport", "loyalty_number"}
    assert '<input type="hidden" name="kind" value="guest">' in html
    assert current_kind(html) == "Hotel guest"  # the picker
    assert '<option value="post"' not in html and '<option value="phone"' in html
    default = web.get("/e/person/new").get_data(as_text=True)
    assert "job_title" in field_names(default) and "room" not in field_names(default)
    assert current_kind(default) == "Business contact"


def test_an_unknown_kind_is_a_clear_400(web):
    page = web.get("/e/person/new?kind=tourist")
    assert page.status_code == 400
    assert "People have no kind “tourist”" in page.get_data(as_text=True)


def test_a_kind_is_chosen_first_when_there_is_no_default(tmp_path, make_instance):
    base = {"entities/person.yaml": BASE["entities/person.yaml"].replace(
        "default: true", "default: false")}
    inst = make_instance(packs(tmp_path / "packs", base=base))
    clerk = insert_user(inst, "clara", roles=["clerk"])
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, clerk)
    html = client.get("/e/person/new").get_data(as_text=True)
    assert "What kind of person?" in html and 'id="form"' not in html
    assert 'href="/e/person/new?kind=guest"' in html


def test_saving_the_form_creates_a_record_of_the_kind(inst, web):
    html = web.get("/e/person/new?kind=guest").get_data(as_text=True)
    saved = web.post("/e/person/new", data={
        "csrf_token": csrf(html), "kind": "guest", "first_name": "Bo", "last_name": "Ray",
        "room": "quiet", "job_title": "ignored: not on this kind's form"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    record_id = int(saved.headers["Location"].rsplit("/", 1)[1])
    record = records.get(inst, admin_actor(inst), "person", record_id)
    assert (record["kind"], record["room"], record["job_title"]) == ("guest", "quiet", None)


def test_a_refused_form_keeps_its_kind(web):
    html = web.get("/e/person/new?kind=guest").get_data(as_text=True)
    refused = web.post("/e/person/new", data={"csrf_token": csrf(html), "kind": "guest",
                                              "first_name": "Bo", "last_name": "Ray"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert 'name="kind" value="guest"' in page and "Room wish is required" in page
    assert "job_title" not in field_names(page)


def related_lists(html: str) -> list[str]:
    return re.findall(r'<h2><a href="[^"]*" style="color:inherit">([^<]+)</a>', html)


def test_the_record_page_shows_the_kinds_sections_and_related_lists(inst, clerk, web):
    bo = records.create(inst, clerk, "person", {"first_name": "Bo", "last_name": "Ray",
                                                "guest": True, "room": "high",
                                                "notes": "kept, not shown"})
    html = web.get(f"/e/person/{bo['id']}").get_data(as_text=True)
    assert "Guest profile" in html and "Loyalty" in html
    assert 'class="kind-badge">Hotel guest' in html
    assert ">Work<" not in html and "kept, not shown" not in html
    assert related_lists(html) == ["Visits", "Stays"]
    ann = records.create(inst, clerk, "person", {"first_name": "Ann", "last_name": "Lee",
                                                 "job_title": "Buyer", "notes": "shown"})
    html = web.get(f"/e/person/{ann['id']}").get_data(as_text=True)
    assert ">Work<" in html and "shown" in html and "Guest profile" not in html
    assert related_lists(html) == ["Deals", "Visits"]


def test_a_record_without_a_kind_shows_everything(inst, clerk, web):
    ann = records.create(inst, clerk, "person", {"first_name": "Ann", "last_name": "Lee",
                                                 "job_title": "Buyer"})
    with inst.engine.begin() as conn:  # saved before the entity had kinds
        table = inst.schema.table("person")
        conn.execute(table.update().where(table.c.id == ann["id"]).values(kind=None))
    html = web.get(f"/e/person/{ann['id']}").get_data(as_text=True)
    assert ">Work<" in html and "Guest profile" in html and "kind-badge" not in html
    form = web.get(f"/e/person/{ann['id']}/edit").get_data(as_text=True)
    assert {"job_title", "room", "notes"} <= field_names(form)


def test_the_edit_form_changes_the_kind(inst, clerk, web):
    ann = records.create(inst, clerk, "person", {"first_name": "Ann", "last_name": "Lee",
                                                 "job_title": "Buyer"})
    html = web.get(f"/e/person/{ann['id']}/edit?kind=guest").get_data(as_text=True)
    assert "room" in field_names(html) and "job_title" not in field_names(html)
    saved = web.post(f"/e/person/{ann['id']}/edit", data={
        "csrf_token": csrf(html), "version": str(ann["version"]), "kind": "guest",
        "first_name": "Ann", "last_name": "Lee", "room": "quiet"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    record = records.get(inst, clerk, "person", ann["id"])
    assert (record["kind"], record["room"], record["job_title"]) == ("guest", "quiet", "Buyer")
