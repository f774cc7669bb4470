"""Duplicates and merge (issue 14, item 6): the duplicate scan, the merge through
`runtime.write.merge` (links and `links` re-pointed in every entity, timeline, follow-ups,
attachments and approval requests moved, aliases, audit), its refusals, the pages, the API, the
command line, and a merge on PostgreSQL while someone edits an absorbed record's child."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from web_support import csrf, make_app, sign_in

from runtime.core.errors import (
    Forbidden,
    NotFound,
    RecordError,
    StaleVersion,
    ValidationFailed,
)
from runtime.core.instance import Actor, Instance
from runtime.http import auth
from runtime.ops.cli import main
from runtime.process.setup import open_instance
from runtime.read import aliases, duplicates
from runtime.read import timeline as read_timeline
from runtime.write import attachments, merge, records, timeline

COMPANY = """\
entity: company
plural: Companies
title_field: name
fields:
  name: {type: text, required: true}
  phone: {type: phone}
  email: {type: email}
  vat: {type: text, unique: true}
  parent: {type: link, to: company}
duplicates:
  - {match: [name], action: warn}
  - {match: [phone], action: warn}
permissions:
  clerk:
    read: "owner == user.id"
    create: true
    update: "owner == user.id"
    delete: "owner == user.id"
  editor: {read: true, create: true, update: true}
"""
PERSON = """\
entity: person
title_field: name
fields:
  name: {type: text, required: true}
  company: {type: link, to: company, on_delete: restrict}
  phone: {type: phone}
permissions:
  clerk: {read: true, create: true, update: true}
"""
PROJECT = """\
entity: project
title_field: name
fields:
  name: {type: text, required: true}
  companies: {type: links, to: company}
permissions:
  clerk: {read: true, create: true, update: true}
"""
ROLES = "roles:\n  clerk: {label: Clerk}\n  editor: {label: Editor}\n"
FILES = {"entities/company.yaml": COMPANY, "entities/person.yaml": PERSON,
         "entities/project.yaml": PROJECT, "roles.yaml": ROLES}


@pytest.fixture
def crm(make_instance: Callable[..., Instance], pack: Callable, admin: Callable
        ) -> dict[str, Any]:
    inst = make_instance(pack(FILES))
    who = admin(inst)

    def company(**values: Any) -> dict[str, Any]:
        return records.create(inst, who, "company", values)

    return {"inst": inst, "admin": who, "company": company}


def names(inst: Instance, entity: str) -> dict[int, dict[str, Any]]:
    page = records.query(inst, Actor.system_actor(), entity, limit=500)
    return {row["id"]: row for row in page.rows}


def test_a_merge_repoints_links_moves_history_and_keeps_the_old_id(crm) -> None:
    inst, who = crm["inst"], crm["admin"]
    keep = crm["company"](name="Acme", vat="GB1")
    gone = crm["company"](name="ACME", phone="+44 20 7946 0958", email="hi@acme.test")
    other = crm["company"](name="Other", parent=gone["id"])
    person = records.create(inst, who, "person", {"name": "Ann", "company": gone["id"]})
    both = records.create(inst, who, "project", {"name": "P1",
                                                 "companies": [keep["id"], gone["id"]]})
    one = records.create(inst, who, "project", {"name": "P2", "companies": [gone["id"]]})
    timeline.add_entry(inst, who, "company", gone["id"], "note", "called them",
                       follow_up_on="2030-01-01")
    attachments.add(inst, who, "company", gone["id"], filename="a.pdf",
                    content_type="application/pdf", size=3, storage_key="k1")

    plan = merge.preview(inst, who, "company", keep["id"], [gone["id"]])
    assert plan.choices["phone"] == [keep["id"], gone["id"]]
    assert plan.chosen["phone"] == gone["id"] and plan.chosen["name"] == keep["id"]
    assert plan.moves == {"persons (by company)": 1, "companies (by parent)": 1,
                          "projects (by companies)": 2, "follow-ups": 1, "attachments": 1}

    result = merge.merge(inst, who, "company", keep["id"], [gone["id"]], {"name": "Acme Ltd"})
    assert result["id"] == keep["id"] and result["name"] == "Acme Ltd"
    assert result["phone"] == "+44 20 7946 0958" and result["email"] == "hi@acme.test"
    assert result["vat"] == "GB1"  # the survivor's value when it has one
    assert records.get(inst, who, "person", person["id"])["company"] == keep["id"]
    assert records.get(inst, who, "company", other["id"])["parent"] == keep["id"]
    assert records.get(inst, who, "project", both["id"])["companies"] == [keep["id"]]
    assert records.get(inst, who, "project", one["id"])["companies"] == [keep["id"]]
    with pytest.raises(NotFound):
        records.get(inst, who, "company", gone["id"])
    assert aliases.survivor(inst, "company", gone["id"]) == keep["id"]
    entries = read_timeline.entries(inst, who, "company", keep["id"])
    kinds = [e["kind"] for e in entries]
    assert "note" in kinds and "attachment" in kinds and "merge" in kinds
    merged = next(e for e in entries if e["kind"] == "merge")
    assert f"#{gone['id']}" in merged["body"]
    audit = inst.schema.system("audit")
    with inst.engine.connect() as conn:
        row = conn.execute(sa.select(audit).where(audit.c.action == "merge")).mappings().one()
        deleted = conn.execute(sa.select(audit.c.old_value).where(
            audit.c.action == "delete", audit.c.record_id == gone["id"])).scalar_one()
    assert row["record_id"] == keep["id"] and json.loads(row["new_value"])["absorbed"] == [
        gone["id"]]
    assert json.loads(deleted)["email"] == "hi@acme.test"  # no value is lost


def test_an_alias_follows_a_later_merge(crm) -> None:
    inst, who = crm["inst"], crm["admin"]
    a, b, c = (crm["company"](name="Same") for _ in range(3))
    merge.merge(inst, who, "company", b["id"], [c["id"]])
    merge.merge(inst, who, "company", a["id"], [b["id"]])
    assert aliases.survivor(inst, "company", c["id"]) == a["id"]
    assert aliases.survivor(inst, "company", b["id"]) == a["id"]
    assert aliases.survivor(inst, "company", a["id"]) is None


def test_a_self_link_to_a_merged_record_points_at_nothing(crm) -> None:
    inst, who = crm["inst"], crm["admin"]
    child = crm["company"](name="Kid")
    parent = crm["company"](name="Kid", parent=None)
    records.update(inst, who, "company", child["id"], {"parent": parent["id"]}, version=1)
    result = merge.merge(inst, who, "company", child["id"], [parent["id"]])
    assert result["parent"] is None


@pytest.mark.parametrize(("absorb", "values", "error"), [
    ("self", None, ValidationFailed),
    ([], None, ValidationFailed),
    ("unseen", None, NotFound),
    ([999999], None, NotFound),
    ("other", {"name": ""}, ValidationFailed),
    ("other", {"nope": 1}, ValidationFailed),
    ("other", {"id": 5}, ValidationFailed),
    ("other", ["not", "an", "object"], ValidationFailed),
])
def test_bad_merges_are_refused(crm, make_user, absorb, values, error) -> None:
    inst = crm["inst"]
    clerk = make_user(inst, "clara", roles=["clerk"])
    mine = records.create(inst, clerk, "company", {"name": "Mine"})
    other = records.create(inst, clerk, "company", {"name": "Mine too"})
    unseen = crm["company"](name="Not hers")
    ids = {"self": [mine["id"]], "unseen": [unseen["id"]], "other": [other["id"]]}
    with pytest.raises(error):
        chosen = ids[absorb] if isinstance(absorb, str) else absorb
        merge.merge(inst, clerk, "company", mine["id"], chosen, values)
    assert records.get(inst, clerk, "company", other["id"])  # nothing happened


def test_the_merge_right_and_stale_versions(crm, make_user) -> None:
    inst, who = crm["inst"], crm["admin"]
    editor = make_user(inst, "ed", roles=["editor"])  # update, no delete: no merge
    a, b = crm["company"](name="X"), crm["company"](name="X")
    with pytest.raises(Forbidden, match="merge right"):
        merge.merge(inst, editor, "company", a["id"], [b["id"]])
    with pytest.raises(Forbidden):
        merge.merge(inst, who, "user", who.user_id, [who.user_id + 1])
    records.update(inst, who, "company", b["id"], {"email": "b@x.test"}, version=1)
    with pytest.raises(StaleVersion):
        merge.merge(inst, who, "company", a["id"], [b["id"]], versions={b["id"]: 1})
    assert merge.merge(inst, who, "company", a["id"], [b["id"]],
                       versions={a["id"]: 1, b["id"]: 2})["email"] == "b@x.test"


def test_a_clerk_may_merge_only_her_own(crm, make_user) -> None:
    inst = crm["inst"]
    clara = make_user(inst, "clara", roles=["clerk"])
    mine = records.create(inst, clara, "company", {"name": "Mine"})
    theirs = crm["company"](name="Mine")
    with pytest.raises(NotFound):  # she cannot see it: exactly like a missing record
        merge.merge(inst, clara, "company", mine["id"], [theirs["id"]])
    mine2 = records.create(inst, clara, "company", {"name": "Mine"})
    assert merge.merge(inst, clara, "company", mine["id"], [mine2["id"]])["id"] == mine["id"]


def test_the_scan_groups_what_the_rules_tie(crm, make_user) -> None:
    inst, who = crm["inst"], crm["admin"]
    a = crm["company"](name="Acme", phone="020 7946 0958")
    b = crm["company"](name="acme")
    c = crm["company"](name="Beta", phone="+44 20 7946 0958")
    d, e = crm["company"](name="Solo"), crm["company"](name="Gamma")
    f = crm["company"](name="GAMMA", phone="")
    found = duplicates.groups(inst, who, "company")
    assert [g.ids for g in found] == [(a["id"], b["id"], c["id"]), (e["id"], f["id"])]
    assert found[0].rules == (("name",), ("phone",))
    assert d["id"] not in {i for g in found for i in g.ids}
    clara = make_user(inst, "clara", roles=["clerk"])
    assert duplicates.groups(inst, clara, "company") == []  # she reads none of them


def test_the_pages_the_api_and_the_old_addresses(crm, make_user, tmp_path) -> None:
    inst, who = crm["inst"], crm["admin"]
    a = crm["company"](name="Acme")
    b = crm["company"](name="ACME", email="b@acme.test")
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, who)
    page = client.get("/e/company/duplicates").get_data(as_text=True)
    assert f"/e/company/{a['id']}/merge?absorb={b['id']}" in page.replace("&amp;", "&")
    assert "Merge…" in client.get(f"/e/company/{a['id']}").get_data(as_text=True)
    form = client.get(f"/e/company/{a['id']}/merge?absorb={b['id']}")
    html = form.get_data(as_text=True)
    assert form.status_code == 200 and 'name="keep__email"' in html
    answer = client.post(f"/e/company/{a['id']}/merge", data={
        "csrf_token": csrf(html), "absorb": str(b["id"]), "keep__name": str(b["id"]),
        "keep__email": str(b["id"]), f"version__{a['id']}": "1", f"version__{b['id']}": "1"})
    assert answer.status_code == 303 and answer.location.endswith(f"/e/company/{a['id']}")
    assert records.get(inst, who, "company", a["id"])["name"] == "ACME"
    old = client.get(f"/e/company/{b['id']}")
    assert old.status_code == 302 and old.location.endswith(f"/e/company/{a['id']}")
    token = {"Authorization": f"Bearer {auth.create_token(inst, who.user_id)}"}
    moved = client.get(f"/api/v1/company/{b['id']}?x=1", headers=token)
    assert moved.status_code == 308 and moved.location.endswith(f"/api/v1/company/{a['id']}?x=1")
    c = crm["company"](name="ACME", phone="+44 20 7946 0958")
    done = client.post(f"/api/v1/company/{a['id']}/merge", headers=token,
                       json={"absorb": [c["id"]], "values": {"email": "a@acme.test"}})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["email"] == "a@acme.test" and done.get_json()["phone"]
    for body, status in (({"absorb": [a["id"]]}, 422), ({"absorb": [987654]}, 404),
                         ({"absorb": "x"}, 422), ({"absorb": [c["id"]]}, 308),
                         ({"absorb": [1], "extra": 1}, 422)):
        target = c["id"] if status == 308 else a["id"]
        answer = client.post(f"/api/v1/company/{target}/merge", headers=token, json=body)
        assert answer.status_code == status, (body, answer.get_json())
    clerk = make_user(inst, "clara", roles=["editor"])
    sign_in(client, inst, clerk)
    assert client.get("/e/company/duplicates").status_code == 403
    assert "Merge…" not in client.get(f"/e/company/{a['id']}").get_data(as_text=True)


def test_the_command_line_lists_the_groups(database_url, pack, tmp_path, monkeypatch,
                                           capsys) -> None:
    monkeypatch.setenv("CRMFORGE_CUSTOM_DIR", str(tmp_path / "custom"))
    monkeypatch.delenv("CRMFORGE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["install", str(pack(FILES)), "--database-url", database_url]) == 0
    inst = open_instance(database_url)
    system = Actor.system_actor()
    ids = [records.create(inst, system, "company", {"name": n})["id"]
           for n in ("Acme", "acme", "Beta")]
    inst.engine.dispose()
    capsys.readouterr()
    assert main(["duplicates", "company", "--database-url", database_url]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == f"#{ids[0]} #{ids[1]}\tsame name"
    assert "rule 2/2 (phone)" in out.err and "1 group(s)" in out.err
    assert main(["duplicates", "person", "--database-url", database_url]) == 1
    assert "no duplicate rules" in capsys.readouterr().err


@pytest.mark.postgres
def test_a_merge_under_a_concurrent_edit_loses_nothing(crm, database_url) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL (SQLite writes one at a time)")
    inst, who = crm["inst"], crm["admin"]
    keep, gone = crm["company"](name="Acme"), crm["company"](name="Acme")
    person = records.create(inst, who, "person", {"name": "Ann", "company": gone["id"]})
    editing, errors = threading.Event(), []

    def edit() -> None:  # holds the child's row while the merge wants it
        try:
            with inst.engine.begin() as conn:
                records.update(inst, who, "person", person["id"], {"phone": "+44 20 7946 0001"},
                               version=1, conn=conn)
                editing.set()
                time.sleep(0.5)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            editing.set()

    worker = threading.Thread(target=edit)
    worker.start()
    assert editing.wait(10)
    merge.merge(inst, who, "company", keep["id"], [gone["id"]])
    worker.join(10)
    assert not errors
    after = records.get(inst, who, "person", person["id"])
    assert after["company"] == keep["id"] and after["phone"] == "+44 20 7946 0001"


@pytest.mark.postgres
def test_a_link_added_during_a_merge_is_refused_not_lost(crm, database_url) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL (SQLite writes one at a time)")
    inst, who = crm["inst"], crm["admin"]
    keep, gone = crm["company"](name="Acme"), crm["company"](name="Acme")
    outcome: list[Any] = []
    started = threading.Event()

    def link() -> None:
        started.set()
        try:
            outcome.append(records.create(inst, who, "person", {"name": "Late",
                                                                "company": gone["id"]}))
        except Exception as exc:  # noqa: BLE001 - examined below
            outcome.append(exc)

    with inst.engine.begin() as conn:
        merge.merge(inst, who, "company", keep["id"], [gone["id"]], conn=conn)
        worker = threading.Thread(target=link)
        worker.start()
        started.wait(10)
        time.sleep(0.5)  # the insert now waits for the merge's row lock
    worker.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], RecordError), outcome
    assert "company" in str(getattr(outcome[0], "errors", outcome[0]))
    persons = names(inst, "person")
    assert all(p["company"] in (keep["id"], None) for p in persons.values())
    assert not [p for p in persons.values() if p["company"] == gone["id"]]

