"""The write path (runtime/records.py): system fields, rules, uniqueness and duplicates,
versions, workflow state, rollups, deletes, audit and hooks — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from record_packs import DESK, FAMILY
from support import FIXTURES

from runtime.core.errors import (
    AwaitingApproval,
    Conflict,
    Forbidden,
    NotFound,
    RecordError,
    StaleVersion,
    ValidationFailed,
)
from runtime.core.instance import Actor
from runtime.core.values import json_value
from runtime.read import timeline as read_timeline
from runtime.write import records, timeline


@pytest.fixture
def spec(spec_instance, admin):
    inst = spec_instance
    actor = admin(inst)
    prop = records.create(inst, actor, "property", {"title": "Flat", "price": "200000"})
    buyer = records.create(inst, actor, "contact", {"first_name": "Anna", "last_name": "Berg",
                                                    "phone": "+44 20 7946 0958"})
    return inst, actor, prop, buyer


@pytest.fixture
def family(make_instance, pack, admin):
    inst = make_instance(pack(FAMILY))
    return inst, admin(inst)


@pytest.fixture
def desk(make_instance, pack, admin):
    inst = make_instance(pack(DESK))
    return inst, admin(inst)


def offer(inst, actor, prop, buyer, **values):
    return records.create(inst, actor, "offer", {"property": prop["id"], "buyer": buyer["id"],
                                                 "amount": 190000, **values})


def audit_rows(inst, entity, record_id):
    audit = inst.schema.system("audit")
    with inst.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(audit).where(
            audit.c.entity == entity, audit.c.record_id == record_id).order_by(audit.c.id))
            .mappings()]


# -- system fields, defaults, formulas ------------------------------------------------------


def test_create_sets_the_system_fields(spec, clock):
    inst, actor, prop, buyer = spec
    made = offer(inst, actor, prop, buyer)
    assert made["owner"] == made["created_by"] == made["updated_by"] == actor.user_id
    assert made["created_at"] == made["updated_at"] == "2026-03-02T09:00:00Z"
    assert made["version"] == 1
    assert made["status"] == "pending"  # the workflow's initial state
    assert made["last_activity_at"] is None
    assert made["reference"] == "OFF-00001"
    clock.advance(hours=1)
    changed = records.update(inst, actor, "offer", made["id"], {"amount": 180000},
                             version=1)
    assert changed["version"] == 2
    assert changed["updated_at"] == "2026-03-02T10:00:00Z"
    assert changed["created_at"] == "2026-03-02T09:00:00Z"


def test_owner_defaults_to_the_actor_and_may_be_given(spec, make_user):
    inst, actor, prop, buyer = spec
    anna = make_user(inst, "anna", roles=["branch_manager"])
    assert offer(inst, actor, prop, buyer)["owner"] == actor.user_id
    assert offer(inst, actor, prop, buyer, owner=anna.user_id)["owner"] == anna.user_id
    with pytest.raises(ValidationFailed) as info:
        offer(inst, actor, prop, buyer, owner=987654)
    assert "owner" in info.value.errors


def test_defaults_and_formulas_following_links(spec):
    inst, actor, prop, buyer = spec
    made = offer(inst, actor, prop, buyer)
    assert made["financing"] == "cash"
    assert made["valid_until"] == "2026-03-09"  # "=today() + days(7)" on the instance clock
    assert made["discount_pct"] == "5.000000"  # (property.price - amount) / price * 100
    changed = records.update(inst, actor, "offer", made["id"], {"amount": 150000}, version=1)
    assert changed["discount_pct"] == "25.000000"


def test_validation_rule_message_at_its_field(spec):
    inst, actor, prop, buyer = spec
    with pytest.raises(ValidationFailed) as info:
        offer(inst, actor, prop, buyer, financing="mortgage", amount=5000)
    assert info.value.errors == {"amount": ["Mortgage offers start at 10,000."]}
    assert offer(inst, actor, prop, buyer, financing="mortgage", amount=50000)


def test_required_when_visible_when_and_record_level_validations(desk):
    inst, actor = desk
    with pytest.raises(ValidationFailed) as info:
        records.create(inst, actor, "case", {"subject": "a", "priority": "high"})
    assert info.value.errors == {"reason": ["is required; fill it in"]}
    # hidden by visible_when: not required even though required_when would hold otherwise
    assert records.create(inst, actor, "case", {"subject": "a", "priority": "low"})
    with pytest.raises(ValidationFailed) as info:
        records.create(inst, actor, "case", {"subject": "a", "amount": 2000})
    assert info.value.errors == {"amount": ["Amounts of 2000.00 need high priority."]}
    with pytest.raises(ValidationFailed) as info:
        records.create(inst, actor, "case", {"subject": "forbidden", "amount": -1})
    assert info.value.errors == {"_record": ["That subject is not allowed."],
                                 "amount": ["must be at least 0; enter a value in range"]}


def test_readonly_when_holds_on_create_and_update(desk):
    inst, actor = desk
    with pytest.raises(ValidationFailed) as info:
        records.create(inst, actor, "case", {"subject": "a", "priority": "high", "reason": "r",
                                             "locked_note": "x"})
    assert "locked_note" in info.value.errors
    low = records.create(inst, actor, "case", {"subject": "a", "locked_note": "x"})
    high = records.update(inst, actor, "case", low["id"], {"priority": "high", "reason": "r"},
                          version=1)
    with pytest.raises(ValidationFailed) as info:
        records.update(inst, actor, "case", low["id"], {"locked_note": "y"},
                       version=high["version"])
    assert info.value.errors == {"locked_note": [
        "is read-only for this record now; leave it unchanged"]}


def test_unique_fields(make_instance, pack, admin):
    from record_packs import THING

    inst = make_instance(pack({"entities/thing.yaml": THING}))
    actor = admin(inst)
    first = records.create(inst, actor, "thing", {"name": "a", "code": "ABC"})
    with pytest.raises(ValidationFailed) as info:
        records.create(inst, actor, "thing", {"name": "b", "code": "ABC"})
    assert info.value.errors == {"code": [
        "is already used by another record; enter a different value"]}
    other = records.create(inst, actor, "thing", {"name": "b", "code": "XYZ"})
    with pytest.raises(ValidationFailed):
        records.update(inst, actor, "thing", other["id"], {"code": "ABC"}, version=1)
    assert records.update(inst, actor, "thing", first["id"], {"code": "ABC", "name": "c"},
                          version=1)["name"] == "c"


def test_duplicate_rules_block_and_warn(spec):
    inst, actor, prop, buyer = spec
    with pytest.raises(Conflict) as info:
        records.create(inst, actor, "contact", {"first_name": "Bo", "last_name": "Li",
                                                "phone": "(44) 20-7946-0958"})
    assert info.value.status == 409 and info.value.record_id == buyer["id"]
    assert f"#{buyer['id']}" in info.value.message
    first = records.create(inst, actor, "contact", {"first_name": "Bo", "last_name": "Li",
                                                    "birth_date": "1990-01-02"})
    second = records.create(inst, actor, "contact", {"first_name": "BO", "last_name": "li",
                                                     "birth_date": "1990-01-02"})
    [warning] = second["_warnings"]
    assert warning["record_id"] == first["id"] and warning["action"] == "warn"
    assert warning["fields"] == ["first_name", "last_name", "birth_date"]
    third = records.create(inst, actor, "contact", {
        "first_name": "Bo", "last_name": "Li", "birth_date": "1990-01-02",
        "_confirm_duplicates": True})
    assert "_warnings" not in third
    with pytest.raises(Conflict):
        records.update(inst, actor, "contact", first["id"], {"phone": "442079460958"},
                       version=1)


# -- versions and state ---------------------------------------------------------------------


def test_stale_version_answers_409_with_the_current_record(spec):
    inst, actor, prop, buyer = spec
    made = offer(inst, actor, prop, buyer)
    records.update(inst, actor, "offer", made["id"], {"amount": 185000}, version=1)
    with pytest.raises(StaleVersion) as info:
        records.update(inst, actor, "offer", made["id"], {"amount": 170000}, version=1)
    assert info.value.status == 409
    assert info.value.current["version"] == 2 and info.value.current["amount"] == "185000.00"
    assert "reload" in info.value.message


def test_version_is_required_for_users_but_not_for_the_system(spec):
    inst, actor, prop, buyer = spec
    made = offer(inst, actor, prop, buyer)
    with pytest.raises(ValidationFailed) as info:
        records.update(inst, actor, "offer", made["id"], {"amount": 1}, version=None)
    assert "version" in info.value.errors
    # the API sends the version inside the body
    assert records.update(inst, actor, "offer", made["id"], {"amount": 180000, "version": 1},
                          version=None)["version"] == 2
    system = Actor.system_actor()
    assert records.update(inst, system, "offer", made["id"], {"amount": 170000},
                          version=None)["version"] == 3


def test_the_state_field_moves_only_through_a_transition(spec):
    inst, actor, prop, buyer = spec
    made = offer(inst, actor, prop, buyer)
    with pytest.raises(ValidationFailed) as info:
        records.update(inst, actor, "offer", made["id"], {"status": "accepted"}, version=1)
    assert "transition" in info.value.errors["status"][0]
    with pytest.raises(ValidationFailed) as info:
        records.create(inst, actor, "offer", {"property": prop["id"], "buyer": buyer["id"],
                                              "amount": 1, "status": "accepted"})
    assert "status" in info.value.errors
    # refusing needs a reason: required_when status == 'refused' holds on the new state
    with pytest.raises(ValidationFailed) as info:
        records.update(inst, actor, "offer", made["id"], {}, version=1, transition="refuse")
    assert info.value.errors == {"refusal_reason": ["is required; fill it in"]}
    refused = records.update(inst, actor, "offer", made["id"], {"refusal_reason": "too low"},
                             version=1, transition="refuse", comment="Sorry")
    assert refused["status"] == "refused" and refused["version"] == 2
    [entry] = [e for e in read_timeline.entries(inst, actor, "offer", made["id"])
               if e["kind"] == "transition"]
    assert entry["data"] == {"transition": "refuse", "from": "pending", "to": "refused"}
    assert entry["body"] == "Sorry"
    with pytest.raises(Conflict):
        records.update(inst, actor, "offer", made["id"], {}, version=2, transition="nope")


def test_editable_by_locks_a_state(desk, make_user):
    inst, actor = desk
    clerk = make_user(inst, "clerk", roles=["clerk"])
    senior = make_user(inst, "senior", roles=["senior"])
    case = records.create(inst, clerk, "case", {"subject": "a"})
    case = records.update(inst, clerk, "case", case["id"], {"subject": "b"}, version=1)
    closed = records.update(inst, clerk, "case", case["id"], {}, version=2, transition="close")
    assert closed["status"] == "closed"
    with pytest.raises(Forbidden) as info:
        records.update(inst, clerk, "case", case["id"], {"subject": "c"}, version=3)
    assert "senior" in info.value.message
    with pytest.raises(Forbidden):
        records.delete(inst, clerk, "case", case["id"])
    assert records.update(inst, senior, "case", case["id"], {"subject": "c"},
                          version=3)["subject"] == "c"


def test_a_pending_approval_locks_the_record(spec):
    inst, actor, prop, buyer = spec
    made = offer(inst, actor, prop, buyer)
    requests = inst.schema.system("approval_request")
    with inst.engine.begin() as conn:
        conn.execute(requests.insert().values(
            entity="offer", record_id=made["id"], approval="below_asking",
            transition="accept", from_state="pending", status="pending",
            submitted_by=actor.user_id, submitted_at=inst.now()))
    with pytest.raises(AwaitingApproval) as info:
        records.update(inst, actor, "offer", made["id"], {"amount": 1000}, version=1)
    assert info.value.status == 409 and "awaiting approval" in info.value.message
    with pytest.raises(AwaitingApproval):
        records.delete(inst, actor, "offer", made["id"])
    system = Actor.system_actor()
    assert records.update(inst, system, "offer", made["id"], {"amount": 1000},
                          version=1)["amount"] == "1000.00"


# -- rollups --------------------------------------------------------------------------------


def parent_of(inst, actor, parent_id):
    return records.get(inst, actor, "parent", parent_id)


def test_rollups_follow_child_create_update_relink_and_delete(family):
    inst, actor = family
    p1 = records.create(inst, actor, "parent", {"name": "p1", "budget": 100})
    p2 = records.create(inst, actor, "parent", {"name": "p2"})
    assert (p1["kids"], p1["total"], p1["biggest"], p1["mean"], p1["spare"]) == (0, 0, None,
                                                                                 None, 1)
    a = records.create(inst, actor, "child", {"name": "a", "size": 4, "parent": p1["id"]})
    b = records.create(inst, actor, "child", {"name": "b", "size": 12, "parent": p1["id"]})
    got = parent_of(inst, actor, p1["id"])
    assert (got["kids"], got["big_kids"], got["total"], got["biggest"], got["smallest"]) == (
        2, 1, 16, 12, 4)
    assert got["mean"] == "8.000000" and got["spare"] == 17  # a formula over a rollup
    assert got["version"] == 1  # rollups do not make the parent's version stale
    assert a["share"] == "50.00"  # formula through the link: parent.budget / 2
    records.update(inst, actor, "child", b["id"], {"size": 20}, version=1)
    assert parent_of(inst, actor, p1["id"])["total"] == 24
    records.update(inst, actor, "child", b["id"], {"parent": p2["id"]}, version=2)
    got1, got2 = parent_of(inst, actor, p1["id"]), parent_of(inst, actor, p2["id"])
    assert (got1["kids"], got1["total"], got1["big_kids"]) == (1, 4, 0)
    assert (got2["kids"], got2["total"], got2["biggest"]) == (1, 20, 20)
    records.delete(inst, actor, "child", a["id"])
    got1 = parent_of(inst, actor, p1["id"])
    assert (got1["kids"], got1["total"], got1["biggest"], got1["mean"]) == (0, 0, None, None)


def test_rollup_where_uses_the_child_state(spec):
    inst, actor, prop, buyer = spec
    low = offer(inst, actor, prop, buyer, amount=150000)
    offer(inst, actor, prop, buyer, amount=180000)
    high = offer(inst, actor, prop, buyer, amount=190000)
    got = records.get(inst, actor, "property", prop["id"])
    assert (got["best_offer"], got["offer_count"]) == ("190000.00", 3)
    records.update(inst, actor, "offer", high["id"], {"refusal_reason": "no"}, version=1,
                   transition="refuse")
    got = records.get(inst, actor, "property", prop["id"])
    assert (got["best_offer"], got["offer_count"]) == ("180000.00", 3)
    assert low


# -- deletes --------------------------------------------------------------------------------


def test_delete_restrict_cascade_and_set_null(family):
    inst, actor = family
    p = records.create(inst, actor, "parent", {"name": "p"})
    kid = records.create(inst, actor, "child", {"name": "k", "parent": p["id"]})
    loose = records.create(inst, actor, "loose", {"name": "l", "parent": p["id"]})
    pin = records.create(inst, actor, "pinned", {"name": "x", "parent": p["id"]})
    with pytest.raises(Conflict) as info:
        records.delete(inst, actor, "parent", p["id"])
    assert "Pinned" in info.value.message and "'parent'" in info.value.message
    assert info.value.entity == "pinned"
    assert records.get(inst, actor, "child", kid["id"])  # nothing happened
    records.delete(inst, actor, "pinned", pin["id"])
    records.delete(inst, actor, "parent", p["id"])
    with pytest.raises(NotFound):
        records.get(inst, actor, "child", kid["id"])
    after = records.get(inst, actor, "loose", loose["id"])
    assert after["parent"] is None and after["version"] == 2
    assert [r["action"] for r in audit_rows(inst, "child", kid["id"])] == ["create", "delete"]
    assert audit_rows(inst, "loose", loose["id"])[-1]["field"] == "parent"
    with pytest.raises(NotFound):
        records.delete(inst, actor, "parent", p["id"])


# -- audit, hooks, errors -------------------------------------------------------------------


def test_an_audit_row_per_changed_field(spec):
    inst, actor, prop, buyer = spec
    made = offer(inst, actor, prop, buyer)
    records.update(inst, actor, "offer", made["id"], {"amount": 160000, "notes": "<b>hi</b>"},
                   version=1)
    rows = audit_rows(inst, "offer", made["id"])
    assert rows[0]["action"] == "create" and rows[0]["field"] is None
    assert json.loads(rows[0]["new_value"])["amount"] == "190000.00"
    changes = {r["field"]: (json.loads(r["old_value"] or "null"), json.loads(r["new_value"]))
               for r in rows[1:]}
    assert changes == {"amount": ("190000.00", "160000.00"), "notes": (None, "<b>hi</b>"),
                       "discount_pct": ("5.000000", "20.000000")}
    assert {r["user_id"] for r in rows} == {actor.user_id}


@pytest.mark.parametrize("value", [
    0, -7, 2**63 - 1, True, False, "", "plain", 'é "quoted" \\ \n\u2028', "😀",
    date(2026, 3, 31), date.min, datetime(2026, 3, 31, 14, 30, 5, 9), Decimal("1.50"), 1.5,
    ["a", 2, date(2000, 1, 2)], {"k": date(2000, 1, 2)}])
def test_an_audit_entry_keeps_a_value_as_its_json_text(value):
    # the audit's text takes a shortcut by the value's class: it must be json.dumps' text
    assert records._audit_text(value) == json.dumps(json_value(value))
    assert records._audit_text(None) is None


def test_hooks_see_every_write_in_its_transaction(spec):
    inst, actor, prop, buyer = spec
    seen = []

    def hook(inst_, conn, actor_, event):
        seen.append((event.kind, event.entity, event.transition, event.depth,
                     (event.record or {}).get("amount"), (event.old or {}).get("amount")))
        assert conn.in_transaction()

    inst.hooks.after_write.append(hook)
    made = offer(inst, actor, prop, buyer)
    records.update(inst, actor, "offer", made["id"], {"amount": 100}, version=1)
    records.update(inst, actor, "offer", made["id"], {"refusal_reason": "x"}, version=2,
                   transition="refuse")
    records.delete(inst, actor, "offer", made["id"])
    from decimal import Decimal

    assert [s[:4] for s in seen] == [("create", "offer", None, 0), ("update", "offer", None, 0),
                                     ("transition", "offer", "refuse", 0),
                                     ("delete", "offer", None, 0)]
    assert seen[1][4:] == (Decimal("100.00"), Decimal("190000.00"))  # native values


class Refused(RecordError):
    status = 422


def test_a_failing_hook_rolls_the_write_back(spec):
    inst, actor, prop, buyer = spec
    made = offer(inst, actor, prop, buyer)

    def hook(inst_, conn, actor_, event):
        if event.kind != "delete":
            raise Refused("The automation 'x' refused: fix y")

    inst.hooks.after_write.append(hook)
    before = records.count(inst, actor, "offer")[0]
    with pytest.raises(Refused):
        offer(inst, actor, prop, buyer)
    assert records.count(inst, actor, "offer")[0] == before
    with pytest.raises(Refused):
        records.update(inst, actor, "offer", made["id"], {"amount": 5}, version=1)
    again = records.get(inst, actor, "offer", made["id"])
    assert again["amount"] == "190000.00" and again["version"] == 1
    assert records.get(inst, actor, "property", prop["id"])["offer_count"] == 1
    assert len(audit_rows(inst, "offer", made["id"])) == 1


def test_a_hook_may_write_through_the_same_path(spec):
    inst, actor, prop, buyer = spec

    def hook(inst_, conn, actor_, event):
        if event.entity == "offer" and event.kind == "create":
            records.update(inst_, Actor.system_actor(), "offer", event.record["id"],
                           {"notes": "seen by automation"}, version=None, conn=conn,
                           depth=event.depth + 1)

    inst.hooks.after_write.append(hook)
    made = offer(inst, actor, prop, buyer)
    assert made["notes"] == "seen by automation" and made["version"] == 2


def test_runaway_automation_depth_is_refused(spec):
    inst, actor, prop, buyer = spec
    with pytest.raises(Conflict) as info:
        offer_values = {"property": prop["id"], "buyer": buyer["id"], "amount": 1}
        records.create(inst, actor, "offer", offer_values, depth=records.MAX_DEPTH + 1)
    assert "loop" in info.value.message


@pytest.mark.parametrize("bad_id", ["abc", 0, -3, "1.5", None, True, 10**30])
def test_malformed_ids_are_not_found(spec, bad_id):
    inst, actor, _, _ = spec
    with pytest.raises(NotFound):
        records.get(inst, actor, "offer", bad_id)
    with pytest.raises(NotFound):
        records.update(inst, actor, "offer", bad_id, {}, version=1)
    with pytest.raises(NotFound):
        records.delete(inst, actor, "offer", bad_id)


def test_unknown_entities_are_not_found(spec):
    inst, actor, _, _ = spec
    with pytest.raises(NotFound) as info:
        records.create(inst, actor, "ofer", {})
    assert "did you mean 'offer'" in info.value.message
    with pytest.raises(NotFound):
        records.query(inst, actor, "nope")


def test_last_activity_at_is_not_an_edit(spec, clock):
    inst, actor, prop, buyer = spec
    made = offer(inst, actor, prop, buyer)
    clock.advance(days=1)
    timeline.add_entry(inst, actor, "offer", made["id"], "call", "Rang them")
    got = records.get(inst, actor, "offer", made["id"])
    assert got["last_activity_at"] == "2026-03-03T09:00:00Z" and got["version"] == 1
    assert date.fromisoformat(got["valid_until"]) == date(2026, 3, 9)


def test_titles_and_link_titles(spec):
    inst, actor, prop, buyer = spec
    made = offer(inst, actor, prop, buyer)
    page = records.query(inst, actor, "offer")
    with inst.engine.connect() as conn:
        titles = records.link_titles(inst, conn, "offer", page.rows)
        assert titles["property"] == {prop["id"]: "Flat"}
        assert titles["buyer"] == {buyer["id"]: "Anna Berg"}
        assert titles["owner"] == {actor.user_id: "Administrator"}
        assert records.title(inst, "offer", made, conn=conn) == "Flat — €190,000.00"
    assert records.title(inst, "offer", made, links=titles) == "Flat — €190,000.00"
    assert records.title(inst, "offer", made) == f"#{prop['id']} — €190,000.00"
    assert records.title(inst, "contact", buyer) == "Anna Berg"


def test_link_titles_use_one_query_per_linked_entity(spec):
    inst, actor, prop, buyer = spec
    for _ in range(5):
        offer(inst, actor, prop, buyer)
    page = records.query(inst, actor, "offer")
    statements = []

    def count_statement(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    with inst.engine.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", count_statement)
        records.link_titles(inst, conn, "offer", page.rows)
        sa.event.remove(conn, "before_cursor_execute", count_statement)
    assert len(statements) == 3  # property, contact, user — not one per row


def test_fixture_pack_is_present():
    assert (FIXTURES / "spec" / "entities" / "offer.yaml").exists()


def test_titles_drop_separators_left_by_empty_fields(spec):
    inst, actor, prop, buyer = spec
    record = {"id": 9, "property": None, "amount": "-5.00"}
    assert records.title(inst, "offer", record) == "-€5.00"
    assert records.title(inst, "offer", {"id": 9, "property": None, "amount": None}) == \
        "Offer #9"
    assert records.title(inst, "contact", {"id": 3, "first_name": "Anna",
                                           "last_name": None}) == "Anna"


CASE = {"entities/case.yaml": """\
entity: case
label: Case
title_field: subject
fields:
  subject: {type: text, required: true}
  status: {type: choice, options: [open, closed], default: open}
  closed_on: {type: date, readonly: true}
  summary: {type: text, readonly_when: "status == 'closed'"}
automations:
  stamp:
    on: update
    when: "status == 'closed' and old.status != 'closed'"
    do:
      - set: {closed_on: "=today()", summary: "Closed: {subject}"}
"""}


def test_read_only_fields_bind_users_not_automations_or_imports(make_instance, pack, admin,
                                                                  make_user):
    """`readonly: true` and `readonly_when` are about people: an automation (the system) sets
    them, an import brings their values in, a user's change is refused."""
    from runtime.ops import transfer

    inst = make_instance(pack(CASE))
    actor = admin(inst)
    case = records.create(inst, actor, "case", {"subject": "Leak"})
    with pytest.raises(ValidationFailed) as refused:
        records.update(inst, actor, "case", case["id"], {"closed_on": "2026-01-02"},
                       version=case["version"])
    assert refused.value.errors["closed_on"] == ["is read-only; leave it out"]
    closed = records.update(inst, actor, "case", case["id"], {"status": "closed"},
                            version=case["version"])
    assert closed["closed_on"] == inst.today().isoformat()  # the automation set both
    assert closed["summary"] == "Closed: Leak"
    with pytest.raises(ValidationFailed) as locked:  # readonly_when holds for the user
        records.update(inst, actor, "case", case["id"], {"summary": "mine"},
                       version=closed["version"])
    assert "read-only for this record" in locked.value.errors["summary"][0]

    report = transfer.import_rows(inst, "case", ["subject", "status", "closed_on"],
                                  [(2, {"subject": "Old", "status": "closed",
                                        "closed_on": "2025-12-24"})])
    assert not report.problems and not report.ignored
    imported = records.query(inst, actor, "case", filters={"subject": "Old"}).rows[0]
    assert imported["closed_on"] == "2025-12-24"


CHAIN = {"entities/shop.yaml": """\
entity: shop
label: Shop
title_field: name
fields:
  name: {type: text, required: true}
  ordered: {type: money, rollup: {from: basket.shop, op: sum, field: total}}
  big_baskets: {type: integer, rollup: {from: basket.shop, op: count, where: "total >= 100"}}
""", "entities/basket.yaml": """\
entity: basket
label: Basket
fields:
  shop: {type: link, to: shop, required: true}
  subtotal: {type: money, rollup: {from: item.basket, op: sum, field: price}}
  total: {type: money, formula: "coalesce(subtotal, 0) * 1.2"}
""", "entities/item.yaml": """\
entity: item
label: Item
fields:
  basket: {type: link, to: basket, required: true, on_delete: cascade}
  price: {type: money, required: true}
"""}


def test_rollups_over_rollups_follow_a_change(make_instance, pack, admin):
    """item.price → basket.subtotal (rollup) → basket.total (formula) → shop.ordered and
    shop.big_baskets (rollups of the total): one write refreshes the chain, and so does a
    bulk load at its end."""
    from runtime.write import derived

    inst = make_instance(pack(CHAIN))
    actor = admin(inst)
    shop = records.create(inst, actor, "shop", {"name": "Corner"})
    basket = records.create(inst, actor, "basket", {"shop": shop["id"]})
    item = records.create(inst, actor, "item", {"basket": basket["id"], "price": "50"})
    after = records.get(inst, actor, "shop", shop["id"])
    assert after["ordered"] == "60.00" and after["big_baskets"] == 0
    records.update(inst, actor, "item", item["id"], {"price": "100"}, version=item["version"])
    after = records.get(inst, actor, "shop", shop["id"])
    assert after["ordered"] == "120.00" and after["big_baskets"] == 1
    records.delete(inst, actor, "item", item["id"])
    assert records.get(inst, actor, "shop", shop["id"])["ordered"] == "0.00"

    with inst.engine.begin() as conn, derived.batch(inst, conn):
        for price in ("10", "20", "70"):
            records.create(inst, actor, "item", {"basket": basket["id"], "price": price},
                           conn=conn)
    after = records.get(inst, actor, "shop", shop["id"])
    assert after["ordered"] == "120.00" and after["big_baskets"] == 1


TREE = {"entities/node.yaml": """\
entity: node
label: Node
fields:
  name: {type: text}
  parent: {type: link, to: node}
  own: {type: money, rollup: {from: leaf.node, op: sum, field: price}}
  total: {type: money, formula: "coalesce(own, 0) + coalesce(parent.total, 0)"}
  doubled: {type: money, formula: "coalesce(own, 0) * 2"}
""", "entities/leaf.yaml": """\
entity: leaf
label: Leaf
fields:
  node: {type: link, to: node, required: true}
  price: {type: money, required: true}
"""}


def test_formulas_refreshed_at_the_end_of_a_batch_read_each_other(make_instance, pack,
                                                                  admin):
    """A bulk load refreshes its rollups at its end, then the formulas over them: a formula
    that reads another record of its own entity (a child's total adds its parent's) sees
    that record's new value, and records whose changed formulas differ are all written."""
    from runtime.write import derived

    inst = make_instance(pack(TREE))
    actor = admin(inst)
    root = records.create(inst, actor, "node", {"name": "root"})
    child = records.create(inst, actor, "node", {"name": "child", "parent": root["id"]})
    other = records.create(inst, actor, "node", {"name": "other"})
    with inst.engine.begin() as conn, derived.batch(inst, conn):
        for node, price in ((root, "10"), (child, "1"), (other, "5")):
            records.create(inst, actor, "leaf", {"node": node["id"], "price": price},
                           conn=conn)
    got = {n: records.get(inst, actor, "node", r["id"])
           for n, r in (("root", root), ("child", child), ("other", other))}
    assert [(got[n]["total"], got[n]["doubled"]) for n in ("root", "child", "other")] == [
        ("10.00", "20.00"), ("11.00", "2.00"), ("5.00", "10.00")]


FORMULA_CHAIN = {"entities/sum.yaml": """\
entity: sum
label: Sum
fields:
  name: {type: text}
  base: {type: integer}
  first: {type: integer, formula: "second + 1"}
  second: {type: integer, formula: "base * 2"}
  third: {type: integer, formula: "first + second"}
  fourth: {type: integer, formula: "base + 1"}
"""}


def test_formulas_use_each_other_declared_before_or_after(make_instance, pack, admin):
    """A formula using one declared after it is computed again once the other is known; the
    ones whose inputs are known by then are computed once (`values._formula_passes`)."""
    from runtime.core.values import _formula_passes

    inst = make_instance(pack(FORMULA_CHAIN))
    record = records.create(inst, admin(inst), "sum", {"name": "n", "base": 5})
    assert (record["second"], record["first"], record["third"], record["fourth"]) == (
        10, 11, 21, 6)
    formulas, again = _formula_passes(inst.model.entity("sum"))
    assert [f.name for f in formulas] == ["first", "second", "third", "fourth"]
    assert [f.name for f in again] == ["first", "third"]
