"""Permissions (SPEC §6): row filters in SQL on get/query/count, hidden and read-only fields,
role inheritance, several roles combined most permissively, admin, the built-in user and team
entities — on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from record_packs import DESK

from runtime.core.errors import BadRequest, Forbidden, NotFound, ValidationFailed
from runtime.core.instance import Actor, Instance
from runtime.read import permissions
from runtime.write import records


@dataclass
class Desk:
    inst: Instance
    admin: Actor
    users: dict[str, Actor]
    cases: dict[str, dict]


@pytest.fixture
def desk(make_instance, pack, admin, make_user, make_team) -> Desk:
    inst = make_instance(pack(DESK))
    boss = admin(inst)
    t1, t2 = make_team(inst, "one"), make_team(inst, "two")
    users = {
        "clerk1": make_user(inst, "clerk1", roles=["clerk"], team=t1),
        "clerk2": make_user(inst, "clerk2", roles=["clerk"], team=t1),
        "clerk3": make_user(inst, "clerk3", roles=["clerk"], team=t2),
        "senior": make_user(inst, "senior", roles=["senior"], team=t2),
        "auditor": make_user(inst, "auditor", roles=["auditor"]),
        "viewer": make_user(inst, "viewer", roles=["viewer"], region="north"),
        "multi": make_user(inst, "multi", roles=["auditor", "viewer"]),
        "nobody": make_user(inst, "nobody", roles=["nobody"]),
        "none": make_user(inst, "none"),
    }
    specs = {
        "c1": ("clerk1", "low", 50),
        "c2": ("clerk2", "high", 500),
        "c3": ("clerk3", "low", 150),
        "c4": ("senior", "high", 5),
    }
    cases = {}
    for name, (owner, priority, amount) in specs.items():
        cases[name] = records.create(inst, boss, "case", {
            "subject": name, "owner": users[owner].user_id, "priority": priority,
            "amount": amount, "secret": f"s-{name}", "memo": f"m-{name}",
            "reason": "why" if priority == "high" else None})
    return Desk(inst, boss, users, cases)


VISIBLE = {
    "clerk1": {"c1", "c2"},  # own, and the same team's
    "clerk2": {"c1", "c2"},
    "clerk3": {"c3", "c4"},
    "senior": {"c1", "c2", "c3", "c4"},  # read: true
    "auditor": {"c2", "c4"},  # priority == 'high'
    "viewer": {"c2", "c3"},  # amount >= 100
    "multi": {"c2", "c3", "c4"},  # auditor OR viewer
    "nobody": set(),  # a role the entity does not list
    "none": set(),  # no role at all
}


@pytest.mark.parametrize("who", sorted(VISIBLE))
def test_row_filters_apply_to_query_count_and_get(desk, who):
    actor = desk.users[who]
    page = records.query(desk.inst, actor, "case", limit=100)
    assert {row["subject"] for row in page.rows} == VISIBLE[who]
    assert records.count(desk.inst, actor, "case") == (len(VISIBLE[who]), True)
    for name, case in desk.cases.items():
        if name in VISIBLE[who]:
            assert records.get(desk.inst, actor, "case", case["id"])["subject"] == name
            assert permissions.can(desk.inst, actor, "case", "read", case)
        else:
            with pytest.raises(NotFound) as info:
                records.get(desk.inst, actor, "case", case["id"])
            # the same answer as for an id that does not exist
            with pytest.raises(NotFound) as missing:
                records.get(desk.inst, actor, "case", 987654)
            assert info.value.status == missing.value.status == 404
            assert not permissions.can(desk.inst, actor, "case", "read", case)


def test_search_and_filters_keep_the_row_filter(desk):
    clerk = desk.users["clerk3"]
    assert records.query(desk.inst, clerk, "case", q="c1").rows == []
    assert records.query(desk.inst, clerk, "case", filters={"subject": "c1"}).rows == []
    assert records.count(desk.inst, clerk, "case", q="c") == (2, True)


def test_forged_ids_are_not_found_for_writes_too(desk):
    clerk = desk.users["clerk3"]
    hidden_case = desk.cases["c1"]
    with pytest.raises(NotFound):
        records.update(desk.inst, clerk, "case", hidden_case["id"], {"subject": "x"},
                       version=1)
    with pytest.raises(NotFound):
        records.delete(desk.inst, clerk, "case", hidden_case["id"])


HIDDEN = {
    "clerk1": {"secret"},
    "senior": set(),  # inherits clerk, but its own entry hides nothing: most permissive wins
    "auditor": {"memo"},
    "viewer": {"secret", "memo"},
    "multi": {"memo"},  # hidden only when hidden for every role that may read
}


@pytest.mark.parametrize("who", sorted(HIDDEN))
def test_hidden_fields_are_never_returned(desk, who):
    actor = desk.users[who]
    assert permissions.hidden_fields(desk.inst, actor, "case") == frozenset(HIDDEN[who])
    rows = records.query(desk.inst, actor, "case").rows
    assert rows
    for row in rows:
        assert not HIDDEN[who] & set(row)
        assert {"id", "version", "owner", "status", "subject"} <= set(row)
        assert not HIDDEN[who] & set(records.get(desk.inst, actor, "case", row["id"]))
    for name in HIDDEN[who]:
        with pytest.raises(BadRequest):
            records.query(desk.inst, actor, "case", filters={name: "x"})
        with pytest.raises(BadRequest):
            records.query(desk.inst, actor, "case", sort=[name])


def test_a_hidden_field_is_not_searchable(make_instance, pack, admin, make_user):
    files = dict(DESK)
    files["entities/case.yaml"] = files["entities/case.yaml"].replace(
        "title_field: subject", "title_field: subject\n        search: [subject, secret]")
    inst = make_instance(pack(files))
    clerk = make_user(inst, "clerk", roles=["clerk"])
    records.create(inst, admin(inst), "case", {"subject": "x", "secret": "needle",
                                              "owner": clerk.user_id})
    assert records.query(inst, admin(inst), "case", q="needle").rows
    assert records.query(inst, clerk, "case", q="needle").rows == []


def test_admin_and_system_see_and_change_everything(desk):
    for actor in (desk.admin, Actor.system_actor()):
        rows = records.query(desk.inst, actor, "case").rows
        assert len(rows) == 4 and all("secret" in r and "memo" in r for r in rows)
        assert permissions.read_filter(desk.inst, actor, "case") is None
        assert permissions.hidden_fields(desk.inst, actor, "case") == frozenset()
        assert permissions.readonly_fields(desk.inst, actor, "case") == frozenset()
        for action in ("read", "create", "update", "delete"):
            assert permissions.can(desk.inst, actor, "case", action)


def test_readonly_fields_and_the_update_rule(desk):
    inst, clerk = desk.inst, desk.users["clerk1"]
    own, teammates = desk.cases["c1"], desk.cases["c2"]
    assert permissions.readonly_fields(inst, clerk, "case") == {"owner", "memo", "secret"}
    changed = records.update(inst, clerk, "case", own["id"], {"subject": "mine"}, version=1)
    assert changed["subject"] == "mine"
    for values in ({"memo": "changed"}, {"owner": desk.users["clerk2"].user_id},
                   {"secret": "guess"}):
        with pytest.raises(ValidationFailed) as info:
            records.update(inst, clerk, "case", own["id"], values, version=2)
        assert "may not change" in info.value.errors[next(iter(values))][0]
    with pytest.raises(Forbidden):  # readable (same team) but not theirs to update
        records.update(inst, clerk, "case", teammates["id"], {"subject": "x"}, version=1)
    with pytest.raises(Forbidden):  # delete: false
        records.delete(inst, clerk, "case", own["id"])
    senior = desk.users["senior"]
    moved = records.update(inst, senior, "case", own["id"], {
        "memo": "ok", "owner": senior.user_id}, version=2)
    assert (moved["memo"], moved["owner"]) == ("ok", senior.user_id)
    records.delete(inst, senior, "case", own["id"])


def test_create_rules_and_readonly_fields_on_create(desk):
    inst, clerk = desk.inst, desk.users["clerk1"]
    made = records.create(inst, clerk, "case", {"subject": "new", "owner": clerk.user_id})
    assert made["owner"] == clerk.user_id and "secret" not in made
    with pytest.raises(ValidationFailed) as info:
        records.create(inst, clerk, "case", {"subject": "new", "memo": "x",
                                             "owner": desk.users["clerk2"].user_id})
    assert set(info.value.errors) == {"memo", "owner"}
    for who in ("auditor", "viewer", "nobody", "none"):
        with pytest.raises(Forbidden):
            records.create(inst, desk.users[who], "case", {"subject": "x"})
        assert not permissions.can(inst, desk.users[who], "case", "create")
    with pytest.raises(Forbidden):
        records.update(inst, desk.users["auditor"], "case", desk.cases["c2"]["id"],
                       {"subject": "x"}, version=1)


def test_can_without_a_record_means_for_some_record(desk):
    inst, clerk = desk.inst, desk.users["clerk1"]
    assert permissions.can(inst, clerk, "case", "update")  # "owner == user.id": maybe
    assert not permissions.can(inst, clerk, "case", "delete")
    assert permissions.can(inst, clerk, "case", "update", desk.cases["c1"])
    assert not permissions.can(inst, clerk, "case", "update", desk.cases["c2"])
    assert not permissions.can(inst, clerk, "nope", "read")
    with pytest.raises(ValueError):
        permissions.can(inst, clerk, "case", "erase")


def test_read_filter_works_over_an_alias(desk):
    inst = desk.inst
    table = inst.schema.table("case").alias("someone_elses")
    clause = permissions.read_filter(inst, desk.users["auditor"], "case", table)
    with inst.engine.connect() as conn:
        subjects = conn.execute(sa.select(table.c.subject).where(clause)).scalars().all()
    assert sorted(subjects) == ["c2", "c4"]
    assert permissions.read_filter(inst, desk.users["senior"], "case") is None
    nothing = permissions.read_filter(inst, desk.users["none"], "case")
    with inst.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(
            inst.schema.table("case")).where(nothing)).scalar() == 0


def test_role_inheritance_in_the_spec_pack(spec_instance, admin, make_user, make_team):
    inst = spec_instance
    boss = admin(inst)
    team = make_team(inst, "sales")
    agent = make_user(inst, "agent", roles=["agent"], team=team)
    colleague = make_user(inst, "colleague", roles=["agent"], team=team)
    loner = make_user(inst, "loner", roles=["sales_manager"])  # inherits agent
    director = make_user(inst, "director", roles=["director"])  # inherits branch_manager
    prop = records.create(inst, boss, "property", {"title": "p", "price": 1000})
    buyer = records.create(inst, boss, "contact", {"first_name": "a", "last_name": "b"})
    mine = records.create(inst, boss, "offer", {"property": prop["id"], "buyer": buyer["id"],
                                                "amount": 900, "owner": agent.user_id,
                                                "commission_pct": 3})
    theirs = records.create(inst, boss, "offer", {"property": prop["id"], "buyer": buyer["id"],
                                                  "amount": 800, "owner": loner.user_id})

    def visible(actor):
        return {r["id"] for r in records.query(inst, actor, "offer").rows}

    assert visible(agent) == visible(colleague) == {mine["id"]}
    assert visible(loner) == {theirs["id"]}
    assert visible(director) == {mine["id"], theirs["id"]}
    assert "commission_pct" not in records.get(inst, agent, "offer", mine["id"])
    assert records.get(inst, director, "offer", mine["id"])["commission_pct"] == "3.000000"
    assert permissions.can(inst, director, "offer", "delete", mine)
    assert not permissions.can(inst, loner, "offer", "delete", theirs)


def test_users_and_teams_are_readable_by_everyone_writable_by_admins(desk):
    inst, clerk = desk.inst, desk.users["clerk1"]
    rows = records.query(inst, clerk, "user", limit=100).rows
    assert {r["username"] for r in rows} >= {"admin", "clerk1", "viewer"}
    for row in rows:
        assert set(row) <= {"id", "created_at", "updated_at", "version", "username",
                            "full_name", "email", "team", "manager", "active"}
        assert "region" not in row  # an extension field is not for everyone
    assert records.get(inst, desk.admin, "user", desk.users["viewer"].user_id)[
        "region"] == "north"
    teams = records.query(inst, clerk, "team").rows
    assert {t["name"] for t in teams} == {"one", "two"}
    with pytest.raises(Forbidden):
        records.create(inst, clerk, "team", {"name": "three"})
    with pytest.raises(Forbidden):
        records.update(inst, clerk, "user", clerk.user_id, {"full_name": "Me"}, version=1)
    made = records.create(inst, desk.admin, "team", {"name": "three"})
    assert made["name"] == "three"
    changed = records.update(inst, desk.admin, "user", clerk.user_id,
                             {"full_name": "Clerk One"}, version=1)
    assert changed["full_name"] == "Clerk One"
    anonymous = Actor(None, "anonymous")
    assert records.query(inst, anonymous, "user").rows == []
    assert not permissions.can(inst, anonymous, "user", "read")


def test_admins_write_users_through_the_same_rules(desk):
    with pytest.raises(ValidationFailed) as info:
        records.create(desk.inst, desk.admin, "user", {"username": "new"})
    assert info.value.errors == {"full_name": ["is required; fill it in"]}
    made = records.create(desk.inst, desk.admin, "user", {"username": "new", "full_name": "N"})
    assert made["active"] is True and "password_hash" not in made
    with pytest.raises(ValidationFailed) as info:
        records.create(desk.inst, desk.admin, "user", {"username": "new", "full_name": "M"})
    assert "username" in info.value.errors
