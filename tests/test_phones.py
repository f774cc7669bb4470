"""Phone numbers as numbers (core/phones.py): every way of writing one number finds the same
contact — in quick search, the global search page, duplicate rules and the API's `?phone=` —
while the record shows the number as typed; the instance's region reads national numbers;
`crmforge migrate` fills the E.164 column of the records already there."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from api_support import bearer, make_app, user_with_token
from support import admin_actor, write_pack
from web_support import sign_in

from runtime.core import phones, searchindex
from runtime.core.instance import Instance
from runtime.process import migrate
from runtime.write import records
from runtime.write.checks import find_duplicates

CONTACT = """\
entity: contact
title_field: name
fields:
  name: {type: text, required: true}
  phone: {type: phone}
search: [name, phone]
duplicates:
  - {match: [phone], action: warn}
permissions:
  agent: {read: true, create: true, update: true}
"""
ROLES = "roles:\n  agent: {label: Agent}\n"
TYPED = "0117 496 0320"
VARIANTS = ["0117 496 0320", "01174960320", "+44 117 496 0320", "0044 117 496 0320",
            "+44 (0)117 496-0320"]


@pytest.fixture
def contacts(make_instance: Callable[..., Instance], tmp_path) -> tuple[Instance, int]:
    inst = make_instance(write_pack(tmp_path, {"entities/contact.yaml": CONTACT,
                                               "roles.yaml": ROLES}))
    actor = admin_actor(inst)
    records.create(inst, actor, "contact", {"name": "Other", "phone": "+44 20 7946 0958"})
    made = records.create(inst, actor, "contact", {"name": "Caller", "phone": TYPED})
    return inst, made["id"]


@pytest.mark.parametrize(("typed", "stored"), [
    ("0117 496 0320", "+441174960320"), ("+1 (212) 555-0100", "+12125550100"),
    ("0044 117 496 0320", "+441174960320"), ("ext. 123", "123"), ("+999 12", "+99912"),
])
def test_stored_form(typed: str, stored: str) -> None:
    assert phones.e164(typed, "GB") == stored


def test_the_region_reads_national_numbers(monkeypatch) -> None:
    monkeypatch.setenv("CRMFORGE_PHONE_REGION", "us")
    assert phones.normalized("(212) 555-0100") == "+12125550100"
    monkeypatch.delenv("CRMFORGE_PHONE_REGION")
    assert phones.normalized("020 7946 0958") == "+442079460958"  # GB by default


def test_the_number_is_shown_as_typed_and_kept_as_e164(contacts) -> None:
    inst, caller = contacts
    assert records.get(inst, admin_actor(inst), "contact", caller)["phone"] == TYPED
    table = inst.schema.table("contact")
    with inst.engine.connect() as conn:
        assert conn.execute(sa.select(table.c[phones.shadow("phone")]).where(
            table.c.id == caller)).scalar_one() == "+441174960320"


@pytest.mark.parametrize("variant", [*VARIANTS, "496 0320", "0117 496", "4960320"])
def test_every_variant_finds_the_contact_in_quick_search(contacts, variant) -> None:
    inst, caller = contacts
    rows = records.query(inst, admin_actor(inst), "contact", q=variant).rows
    assert [r["id"] for r in rows] == [caller]


def test_an_update_keeps_the_number_current(contacts) -> None:
    inst, caller = contacts
    actor = admin_actor(inst)
    records.update(inst, actor, "contact", caller, {"phone": "020 7946 0000"}, version=1)
    assert records.query(inst, actor, "contact", q=TYPED).rows == []
    assert [r["id"] for r in records.query(
        inst, actor, "contact", q="+442079460000").rows] == [caller]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_is_a_duplicate(contacts, variant) -> None:
    inst, caller = contacts
    with inst.engine.connect() as conn:
        found = find_duplicates(inst, conn, "contact", {"name": "New", "phone": variant})
    assert [f["record_id"] for f in found] == [caller]


def test_a_new_record_with_another_form_of_the_number_is_warned_about(contacts) -> None:
    inst, caller = contacts
    made = records.create(inst, admin_actor(inst), "contact",
                          {"name": "Again", "phone": "+44 117 496 0320"})
    assert [w.get("record_id") for w in made["_warnings"]] == [caller]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_api_phone_filter_compares_numbers(contacts, tmp_path, variant) -> None:
    inst, caller = contacts
    _, token = user_with_token(inst, "agent", roles=("agent",))
    client = make_app(inst, tmp_path).test_client()
    answer = client.get("/api/v1/contact", query_string={"phone": variant},
                        headers=bearer(token))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert [r["id"] for r in answer.get_json()["data"]] == [caller]
    assert answer.get_json()["data"][0]["phone"] == TYPED


@pytest.mark.parametrize(("query", "count"), [("phone=abc", 0), ("phone__contains=0117", 1),
                                              ("phone__contains=x", 0), ("phone__ne=abc", 2),
                                              ("phone__in=01174960320,02079460958", 2)])
def test_the_api_phone_filter_other_operators(contacts, tmp_path, query, count) -> None:
    inst, _ = contacts
    _, token = user_with_token(inst, "agent", roles=("agent",))
    client = make_app(inst, tmp_path).test_client()
    answer = client.get(f"/api/v1/contact?{query}", headers=bearer(token))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert len(answer.get_json()["data"]) == count


def test_the_search_page_finds_the_contact_by_any_variant(contacts, tmp_path) -> None:
    inst, caller = contacts
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, admin_actor(inst))
    for variant in VARIANTS:
        page = client.get("/search", query_string={"q": variant}).get_data(as_text=True)
        assert f"/e/contact/{caller}" in page and "Other" not in page, variant


def test_migrate_fills_the_numbers_already_there(contacts) -> None:
    inst, caller = contacts
    shadow = phones.shadow("phone")
    with inst.engine.begin() as conn:  # as a database from before the E.164 column
        for name, sql in searchindex.present(conn).items():
            if "." in name:  # PostgreSQL's folded column `<table>.<column>` (and its index)
                table, column = name.split(".")
                conn.exec_driver_sql(f'ALTER TABLE "{table}" DROP COLUMN "{column}" CASCADE')
                continue
            kind = "TRIGGER" if sql.startswith("CREATE TRIGGER") else (
                "TABLE" if conn.dialect.name == "sqlite" else "INDEX")
            conn.exec_driver_sql(f'DROP {kind} IF EXISTS "{name}"')
        conn.exec_driver_sql(f'DROP INDEX "ix_contact_{shadow}"')
        conn.exec_driver_sql(f'ALTER TABLE contact DROP COLUMN "{shadow}"')
    plan = migrate.plan(inst.model, inst.engine)
    assert [op.kind for op in plan] == ["add_column", "add_index", "fill_phone_numbers",
                                        "search_index"]
    migrate.apply(plan, inst.engine)
    assert migrate.plan(inst.model, inst.engine).empty
    rows = records.query(inst, admin_actor(inst), "contact", q="+44 117 496 0320").rows
    assert [r["id"] for r in rows] == [caller]
