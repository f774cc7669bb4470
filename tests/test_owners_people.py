"""Issue 13, items 1-3: people are shown and found by name, and owners are set in the browser.

Users read as their names in lists of users (not as the first field a pack adds, such as the
sales region), user pickers find people by full name, username and e-mail and show their role
and team, and owned records are claimed, assigned and reassigned from the pages.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from support import admin_actor, insert_team, insert_user
from web_support import csrf, make_app, sign_in

from builder.diagnostics import DefinitionError
from builder.linker import build_model
from runtime.core.errors import Forbidden, ValidationFailed
from runtime.core.instance import Actor
from runtime.read import timeline as read_timeline
from runtime.read import titles
from runtime.write import records

LEAD = {"source": "web", "email": "lead@example.com"}  # what every lead needs
CORE = Path(__file__).resolve().parent.parent / "verticals" / "core"


@pytest.fixture
def core(make_instance, admin, tmp_path) -> dict[str, Any]:
    inst = make_instance(CORE)
    north = insert_team(inst, "North team")
    helen = insert_user(inst, "hashworth", full_name="Helen Ashworth", roles=["sales_rep"],
                        team=north, region="london", email="helen.ashworth@example.com",
                        lead_claim_limit=40, open_leads=0)
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, admin(inst))
    return {"inst": inst, "client": client, "helen": helen, "admin": admin(inst)}


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# -- item 3: a user's title is their name -----------------------------------------------------

def test_a_list_of_users_labels_each_user_by_name(core) -> None:
    html = core["client"].get("/e/user").get_data(as_text=True)
    links = re.findall(r'<a class="title" href="/e/user/(\d+)">([^<]*)</a>', html)
    assert (str(core["helen"].user_id), "Helen Ashworth") in links
    assert all(label != "London" for _, label in links)


def test_a_user_without_a_full_name_reads_as_their_username(core) -> None:
    inst = core["inst"]
    with inst.engine.connect() as conn:
        row = {"id": 99, "username": "jdoe", "full_name": ""}
        assert titles.title(inst, "user", row, conn=conn) == "jdoe"
        assert titles.title_of(inst, conn, "user", core["helen"].user_id) == "Helen Ashworth"


# -- item 2: user pickers find people by name -------------------------------------------------

@pytest.mark.parametrize("typed", ["Helen Ashworth", "ashworth", "hashworth",
                                   "helen.ashworth@example"])
def test_a_user_picker_finds_people_by_name_username_and_email(core, typed: str) -> None:
    html = core["client"].get("/e/user/_options", query_string={"q": typed}).get_data(
        as_text=True)
    assert f'data-id="{core["helen"].user_id}"' in html
    assert "Helen Ashworth" in html
    assert "Sales rep" in text_of(html) and "North team" in text_of(html)  # role and team


def test_the_owner_picker_of_a_lead_finds_a_rep_by_name(core) -> None:
    inst = core["inst"]
    owner = inst.model.entity("lead").fields["owner"]
    assert owner.to == "user" and "full_name" in inst.model.entity("user").search
    html = core["client"].get("/e/user/_options",
                              query_string={"owner__q": "helen ash", "target": "owner"})
    assert "Helen Ashworth" in html.get_data(as_text=True)


# -- item 1: owners are claimed, assigned and reassigned in the browser -----------------------

@pytest.fixture
def sales(core, make_instance, tmp_path) -> dict[str, Any]:
    """The core pack's sales floor: two London reps in one team, a manager, a marketer, and
    two leads in the pool."""
    inst = core["inst"]
    north = core["helen"].team  # Helen's team-mates
    reps = {"helen": core["helen"],
            "omar": insert_user(inst, "okhan", full_name="Omar Khan", roles=["sales_rep"],
                                team=north, region="london", lead_claim_limit=40, open_leads=0),
            "maria": insert_user(inst, "mlopez", full_name="Maria Lopez",
                                 roles=["sales_manager"], team=north),
            "mark": insert_user(inst, "mreed", full_name="Mark Reed", roles=["marketing"],
                                lead_claim_limit=40, open_leads=0)}
    pool = [records.create(inst, core["admin"], "lead", {
        "last_name": name, "source": "web",
        "email": "lead@example.com", "owner": None}) for name in ("Pool", "Spare")]
    return {**core, **reps, "pool": pool}


def client_as(inst, who, tmp_path) -> Any:
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, who)
    return client


def owner_of(inst, lead_id: int) -> int | None:
    return records.get(inst, Actor.system_actor(), "lead", lead_id)["owner"]


def version_of(inst, lead_id: int) -> int:
    return records.get(inst, Actor.system_actor(), "lead", lead_id)["version"]


def owner_entries(inst, lead_id: int) -> list[tuple[str | None, str]]:
    return [(e["user"], e["body"]) for e in read_timeline.entries(
        inst, admin_actor(inst), "lead", lead_id) if e["kind"] == "owner"]


def test_a_rep_claims_an_unowned_lead_from_its_page(sales, tmp_path) -> None:
    inst, helen, lead = sales["inst"], sales["helen"], sales["pool"][0]
    client = client_as(inst, helen, tmp_path)
    page = client.get(f"/e/lead/{lead['id']}").get_data(as_text=True)
    assert ">Claim</button>" in page
    answer = client.post(f"/e/lead/{lead['id']}/claim", data={"csrf_token": csrf(page)})
    assert answer.status_code == 302
    assert owner_of(inst, lead["id"]) == helen.user_id
    assert owner_entries(inst, lead["id"]) == [("Helen Ashworth",
                                                "Owner: nobody → Helen Ashworth")]
    assert ">Claim</button>" not in client.get(f"/e/lead/{lead['id']}").get_data(as_text=True)


def test_a_claim_takes_an_unowned_record_and_no_more(sales, tmp_path) -> None:
    inst, helen, omar, lead = sales["inst"], sales["helen"], sales["omar"], sales["pool"][0]
    records.update(inst, helen, "lead", lead["id"], {"owner": helen.user_id}, version=1)
    with pytest.raises(Forbidden):  # Omar may read his team-mate's lead, not take it
        records.update(inst, omar, "lead", lead["id"], {"owner": omar.user_id},
                       version=version_of(inst, lead["id"]))
    client = client_as(inst, omar, tmp_path)
    page = client.get(f"/e/lead/{lead['id']}").get_data(as_text=True)
    assert ">Claim</button>" not in page
    client.post(f"/e/lead/{lead['id']}/claim", data={"csrf_token": csrf(page)})
    assert owner_of(inst, lead["id"]) == helen.user_id
    assert client.post(f"/e/lead/{lead['id']}/claim").status_code in (400, 403)  # no CSRF


def test_a_rep_without_assign_may_not_give_records_to_others(sales) -> None:
    inst, helen, omar = sales["inst"], sales["helen"], sales["omar"]
    with pytest.raises(ValidationFailed) as refused:
        records.create(inst, helen, "lead", {"last_name": "Gift", **LEAD,
                                             "owner": omar.user_id})
    assert "owner" in refused.value.errors
    mine = records.create(inst, helen, "lead", {"last_name": "Mine", **LEAD})
    assert mine["owner"] == helen.user_id
    with pytest.raises(ValidationFailed):
        records.update(inst, helen, "lead", mine["id"], {"owner": omar.user_id},
                       version=version_of(inst, mine["id"]))


def test_the_owner_picker_is_on_forms_of_roles_that_may_assign(sales, tmp_path) -> None:
    inst = sales["inst"]
    manager = client_as(inst, sales["maria"], tmp_path).get("/e/lead/new").get_data(
        as_text=True)
    rep = client_as(inst, sales["helen"], tmp_path).get("/e/lead/new").get_data(as_text=True)
    assert 'name="owner__q"' in manager and 'name="owner__q"' not in rep


def test_a_manager_chooses_the_owner_in_the_form(sales, tmp_path) -> None:
    inst, helen = sales["inst"], sales["helen"]
    client = client_as(inst, sales["maria"], tmp_path)
    token = csrf(client.get("/e/lead/new").get_data(as_text=True))
    answer = client.post("/e/lead/new", data={"csrf_token": token, "last_name": "Given",
                                              **LEAD, "owner": helen.user_id})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:2000]
    lead_id = int(answer.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    assert owner_of(inst, lead_id) == helen.user_id


def test_a_manager_bulk_assigns_leads_and_the_timeline_says_so(sales, tmp_path) -> None:
    inst, helen = sales["inst"], sales["helen"]
    client = client_as(inst, sales["maria"], tmp_path)
    page = client.get("/e/lead").get_data(as_text=True)
    assert '<option value="assign">Assign to…</option>' in page
    ids = [lead["id"] for lead in sales["pool"]]
    answer = client.post("/e/lead/bulk", data={"csrf_token": csrf(page), "action": "assign",
                                               "ids": ids, "owner": helen.user_id})
    assert answer.status_code == 302
    assert [owner_of(inst, i) for i in ids] == [helen.user_id, helen.user_id]
    assert owner_entries(inst, ids[0]) == [("Maria Lopez", "Owner: nobody → Helen Ashworth")]
    rep_page = client_as(inst, sales["omar"], tmp_path).get("/e/lead").get_data(as_text=True)
    assert 'value="assign"' not in rep_page


def test_a_lead_created_in_a_form_without_owner_is_routed(sales, tmp_path) -> None:
    inst, mark = sales["inst"], sales["mark"]
    client = client_as(inst, mark, tmp_path)
    token = csrf(client.get("/e/lead/new").get_data(as_text=True))
    answer = client.post("/e/lead/new", data={"csrf_token": token, "last_name": "Routed",
                                              **LEAD, "region": "london"})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:2000]
    routed = int(answer.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    assert owner_of(inst, routed) in (sales["helen"].user_id, sales["omar"].user_id)
    kept = records.create(inst, mark, "lead", {"last_name": "Kept", **LEAD})
    assert kept["owner"] == mark.user_id  # no region: no rule routes it, the creator keeps it


def test_the_builder_checks_assign(pack) -> None:
    path = pack({"entities/deal.yaml": """
        entity: deal
        fields: {name: {type: text}}
        permissions:
          rep: {read: true, assign: "nme == 'x'"}
        """, "roles.yaml": "roles: {rep: {label: Rep}}\n"})
    with pytest.raises(DefinitionError) as failed:
        build_model([path])
    assert "E310" in str(failed.value) and "assign: unknown field" in str(failed.value)
    good = pack({"entities/deal.yaml": """
        entity: deal
        fields: {name: {type: text}}
        permissions:
          rep: {read: true, assign: "name == 'x'"}
        """, "roles.yaml": "roles: {rep: {label: Rep}}\n"}, name="good")
    assert build_model([good]).entity("deal").permissions["rep"].assign is not False


def test_assign_on_an_entity_without_owner_is_an_error(pack) -> None:
    path = pack({"entities/user.yaml": """
        extends: user
        permissions:
          rep: {read: true, assign: true}
        """, "roles.yaml": "roles: {rep: {label: Rep}}\n"})
    with pytest.raises(DefinitionError) as failed:
        build_model([path])
    assert "E209" in str(failed.value) and "no owner to assign" in str(failed.value)
