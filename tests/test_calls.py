"""Incoming calls (`POST /api/v1/calls`, issue 18 item 6) on SQLite and PostgreSQL: the caller
is found by the number in any format across every entity with phone fields, only among the
records the agent may read; each match gets a `call` entry on its timeline; an unknown number
answers 201 with no match; the agent's page polls `/calls/pop` and gets each call once; bad
reports get a clear 4xx."""

from __future__ import annotations

import pytest
from api_support import assert_error_shape, bearer
from support import admin_actor, insert_user
from web_support import make_app, sign_in

from runtime.core.instance import Actor
from runtime.http import auth
from runtime.read import timeline as history
from runtime.write import records

PACK = {
    "roles.yaml": """
        roles:
          agent: {label: Agent}
    """,
    "entities/contact.yaml": """
        entity: contact
        title: "{name}"
        fields:
          name: {type: text, required: true}
          phone: {type: phone}
          mobile: {type: phone}
          grade: {type: choice, options: {a: A customer, b: B customer}}
        permissions:
          agent: {read: "owner == user.id", create: true, update: false, delete: false}
    """,
    "entities/lead.yaml": """
        entity: lead
        title: "{name}"
        fields:
          name: {type: text, required: true}
          phone: {type: phone}
        permissions:
          agent: {read: true, create: true, update: true, delete: false}
    """,
    "entities/ticket.yaml": """
        entity: ticket
        title: "{subject}"
        fields:
          subject: {type: text, required: true}
          contact: {type: link, to: contact}
        workflow:
          field: status
          initial: open
          states:
            open: {label: Open}
            closed: {label: Closed, final: true}
          transitions:
            close: {label: Close, from: open, to: closed}
        permissions:
          agent: {read: true, create: true, update: true, delete: false}
    """,
}


@pytest.fixture
def crm(make_instance, pack, tmp_path):
    inst = make_instance(pack(PACK))
    admin = admin_actor(inst)
    ana = insert_user(inst, "ana", roles=["agent"], full_name="Ana Agent")
    bob = insert_user(inst, "bob", roles=["agent"], full_name="Bob Agent")

    def add(entity: str, **values):  # noqa: ANN202
        return records.create(inst, admin, entity, values)

    people = {
        "ada": add("contact", name="Ada Lovelace", phone="0117 496 0320", grade="a",
                   owner=ana.user_id),
        "ada_lead": add("lead", name="Ada (lead)", phone="+44 117 496 0320"),
        "bo": add("contact", name="Bo Secret", mobile="020 7946 0991", owner=bob.user_id),
    }
    add("ticket", subject="Broken widget", contact=people["ada"]["id"])
    closed = add("ticket", subject="Old question", contact=people["ada"]["id"])
    records.update(inst, admin, "ticket", closed["id"], {}, version=closed["version"],
                   transition="close")
    client = make_app(inst, tmp_path).test_client()
    tokens = {who.username: bearer(auth.create_token(inst, who.user_id))
              for who in (admin, ana, bob)}
    return {"inst": inst, "client": client, "tokens": tokens, "ana": ana, "bob": bob,
            "admin": admin, **people}


def report(crm, body, as_user: str = "admin"):  # noqa: ANN001, ANN201
    return crm["client"].post("/api/v1/calls", json=body, headers=crm["tokens"][as_user])


def matched(answer) -> set[tuple[str, str]]:  # noqa: ANN001
    body = answer.get_json()
    assert answer.status_code == 201, body
    return {(m["entity"], m["title"]) for m in body["matches"]}


@pytest.mark.parametrize("number", ["0117 496 0320", "01174960320", "+44 117 496 0320",
                                    "0044 117 496 0320", "+44 (0)117-496-0320"])
def test_the_caller_is_found_by_any_format_of_the_number(crm, number) -> None:
    assert matched(report(crm, {"from": number, "to": "0800 123", "agent": "ana"})) == {
        ("contact", "Ada Lovelace"), ("lead", "Ada (lead)")}


def test_every_match_gets_the_call_on_its_timeline(crm) -> None:
    answer = report(crm, {"from": "01174960320", "to": "0800 123 456", "agent": "ana"})
    call = answer.get_json()["call"]
    assert call["from_e164"] == "+441174960320" and call["agent"] == "ana"
    assert call["logged"] == 2
    inst, ana = crm["inst"], crm["ana"]
    for entity, record in (("contact", crm["ada"]), ("lead", crm["ada_lead"])):
        entry = history.entries(inst, ana, entity, record["id"], limit=1)[0]
        assert entry["kind"] == "call" and entry["user_id"] == ana.user_id
        assert entry["data"]["call"] == call["id"] and "Ana Agent" in entry["body"]
        assert records.get(inst, ana, entity, record["id"])["last_activity_at"] is not None


def test_an_agent_never_gets_a_record_they_may_not_read(crm) -> None:
    """Bo's number: Bob's contact. Ana may not read it: no match, nothing logged for her;
    and the token's user sees only what both may read."""
    bob_number = {"from": "+44 20 7946 0991", "agent": "ana"}
    answer = report(crm, bob_number)
    assert matched(answer) == set() and answer.get_json()["call"]["logged"] == 0
    assert matched(report(crm, bob_number | {"agent": "bob"})) == {("contact", "Bo Secret")}
    # Ana's token names Bob as the agent: Bob's pop has Bo, Ana's answer does not
    answer = report(crm, bob_number | {"agent": "bob"}, as_user="ana")
    assert matched(answer) == set() and answer.get_json()["call"]["logged"] == 1


def test_an_unknown_number_answers_201_without_a_match(crm) -> None:
    answer = report(crm, {"from": "+1 202 555 0143", "to": "0800", "agent": "ana"})
    assert matched(answer) == set()
    assert answer.get_json()["call"]["logged"] == 0


def test_the_agents_page_pops_each_call_up_once(crm) -> None:
    client, inst = crm["client"], crm["inst"]
    sign_in(client, inst, crm["ana"])
    assert client.get("/calls/pop").status_code == 204
    report(crm, {"from": "0117 496 0320", "to": "0800 123", "agent": "ana"})
    page = client.get("/calls/pop")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Ada Lovelace" in html and "Ada (lead)" in html
    assert "A customer" in html  # the grade
    assert "Broken widget" in html and "Old question" not in html  # open tickets only
    assert f'/e/contact/{crm["ada"]["id"]}' in html
    assert client.get("/calls/pop").status_code == 204  # shown once
    report(crm, {"from": "+1 202 555 0143", "agent": "ana"})
    html = client.get("/calls/pop").get_data(as_text=True)
    assert "New lead" in html and "/e/lead/new?phone=%2B1+202+555+0143" in html


def test_a_call_for_another_agent_does_not_pop_up_here(crm) -> None:
    client = crm["client"]
    sign_in(client, crm["inst"], crm["ana"])
    report(crm, {"from": "0117 496 0320", "agent": "bob"})
    assert client.get("/calls/pop").status_code == 204


def test_a_signed_out_page_stops_polling(crm) -> None:
    assert crm["client"].get("/calls/pop").status_code == 286


def test_the_lead_form_takes_the_number_from_the_address(crm) -> None:
    client = crm["client"]
    sign_in(client, crm["inst"], crm["ana"])
    html = client.get("/e/lead/new?phone=%2B1+202+555+0143").get_data(as_text=True)
    assert 'value="+1 202 555 0143"' in html


@pytest.mark.parametrize(("body", "field"), [
    ({"to": "0800", "agent": "ana"}, "from"),
    ({"from": "", "agent": "ana"}, "from"),
    ({"from": "call me", "agent": "ana"}, "from"),
    ({"from": "12", "agent": "ana"}, "from"),
    ({"from": 1174960320, "agent": "ana"}, "from"),
    ({"from": "1" * 5000, "agent": "ana"}, "from"),
    ({"from": "0117 496 0320", "to": ["x"], "agent": "ana"}, "to"),
    ({"from": "0117 496 0320"}, "agent"),
    ({"from": "0117 496 0320", "agent": "nobody"}, "agent"),
    ({"from": "0117 496 0320", "agent": "x" * 100_000}, "agent"),
    ({"from": "0117 496 0320", "agent": "ana", "extra": 1}, "extra"),
])
def test_bad_reports_get_422_naming_the_field(crm, body, field) -> None:
    error = assert_error_shape(report(crm, body), 422, "errors")
    assert field in error["errors"]


def test_nul_bytes_get_400_and_no_token_gets_401(crm) -> None:
    answer = report(crm, {"from": "0117\x00496", "agent": "ana"})
    assert "NUL" in assert_error_shape(answer, 400)["error"]["message"]
    answer = crm["client"].post("/api/v1/calls", json={"from": "0117 496 0320",
                                                       "agent": "ana"})
    assert_error_shape(answer, 401)


def test_an_inactive_agent_is_unknown(crm) -> None:
    inst = crm["inst"]
    carl: Actor = insert_user(inst, "carl", roles=["agent"])
    users = inst.schema.table("user")
    with inst.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == carl.user_id).values(active=False))
    error = assert_error_shape(report(crm, {"from": "0117 496 0320", "agent": "carl"}),
                               422, "errors")
    assert "active user" in error["errors"]["agent"][0]
