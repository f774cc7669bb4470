"""The people pages of `/admin` (docs/admin.md) through the Flask test client, on the SPEC pack:
who may open what, CSRF, creating a user who sets a password with the one-time link,
deactivation ending sessions and API tokens (and handing records over), API tokens, teams,
the role pages, the audit log, and hostile input answered with a 4xx."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from support import admin_actor, insert_team, insert_user
from web_support import PASSWORD, csrf, make_app, sign_in, token_of

from runtime.http.auth import actor_for_token, authenticate
from runtime.write import accounts, records

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LINK = re.compile(r'id="password-link"[^>]*value="([^"]+)"')
TOKEN = re.compile(r'id="new-token"[^>]*value="([^"]+)"')


@pytest.fixture
def world(make_instance: Any, tmp_path: Path) -> dict[str, Any]:
    inst = make_instance([FIXTURES / "core", FIXTURES / "spec"])
    team = insert_team(inst, "North team")
    return {
        "inst": inst, "team": team, "app": make_app(inst, tmp_path, WTF_CSRF_ENABLED=True),
        "admin": admin_actor(inst),
        "rep": insert_user(inst, "rep", roles=["agent"], team=team, full_name="Rita Rep"),
        "people": insert_user(inst, "hr", roles=["user_admin"], full_name="Hana Hr"),
    }


def client_of(world: dict[str, Any], who: str) -> Any:
    client = world["app"].test_client()
    sign_in(client, world["inst"], world[who])
    return client


def post(client: Any, path: str, data: dict[str, Any] | None = None,
         page: str | None = None) -> Any:
    """POST with the CSRF token of `page` (default: the page posted to, else /admin)."""
    return client.post(path, data={**(data or {}), "csrf_token": token_of(
        client, page or "/admin/users")})


def new_user(client: Any, **values: Any) -> Any:
    data = {"username": "nina", "full_name": "Nina New", "email": "nina@example.com",
            "roles": ["agent"], "language": "es", **values}
    return post(client, "/admin/users/new", data)


# -- rights -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/admin", "/admin/users", "/admin/users/new", "/admin/teams",
                                  "/admin/roles", "/admin/roles/agent", "/admin/audit",
                                  "/admin/audit.csv", "/admin/users/1", "/admin/teams/new"])
def test_an_agent_gets_403_everywhere(world, path) -> None:
    assert client_of(world, "rep").get(path).status_code == 403


def test_signed_out_is_sent_to_sign_in(world) -> None:
    answer = world["app"].test_client().get("/admin/users")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_a_user_admin_reaches_people_but_not_roles_or_audit(world) -> None:
    client = client_of(world, "people")
    for path in ("/admin", "/admin/users", "/admin/users/new", "/admin/teams"):
        assert client.get(path).status_code == 200, path
    for path in ("/admin/roles", "/admin/audit", "/admin/audit.csv"):
        assert client.get(path).status_code == 403, path
    index = client.get("/admin").get_data(as_text=True)
    assert "/admin/users" in index and "/admin/audit" not in index
    assert 'href="/admin"' in client.get("/").get_data(as_text=True)  # the menu link


def test_the_admin_link_is_only_for_those_who_may_follow_it(world) -> None:
    assert 'href="/admin"' in client_of(world, "admin").get("/").get_data(as_text=True)
    assert 'href="/admin"' not in client_of(world, "rep").get("/").get_data(as_text=True)


def test_a_user_admin_cannot_make_or_touch_an_admin(world) -> None:
    client = client_of(world, "people")
    assert new_user(client, roles=["admin"]).status_code == 403
    admin_id = world["admin"].user_id
    assert post(client, f"/admin/users/{admin_id}/deactivate").status_code == 403
    assert post(client, f"/admin/users/{admin_id}/password-link").status_code == 403
    assert actor_for_token(world["inst"], "x") is None
    page = client.get("/admin/users/new").get_data(as_text=True)
    assert 'value="admin"' not in page and 'value="user_admin"' in page


def test_posts_without_the_csrf_token_are_refused(world) -> None:
    client = client_of(world, "admin")
    answer = client.post("/admin/users/new", data={"username": "x", "full_name": "X"})
    assert answer.status_code == 400
    rep = world["rep"].user_id
    assert client.post(f"/admin/users/{rep}/deactivate").status_code == 400
    assert records.get(world["inst"], world["admin"], "user", rep)["active"] is True


# -- creating a user and the one-time link ----------------------------------------------------

def test_create_a_user_who_sets_a_password_with_the_link_once(world) -> None:
    inst, client = world["inst"], client_of(world, "admin")
    answer = new_user(client, team=str(world["team"]), manager=str(world["rep"].user_id))
    assert answer.status_code == 302
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    link = LINK.search(page).group(1)
    assert "/set-password/" in link
    assert LINK.search(client.get(answer.headers["Location"]).get_data(as_text=True)) is None
    path = link.split("localhost", 1)[1]

    stranger = world["app"].test_client()
    form = stranger.get(path)
    assert form.status_code == 200 and "Nina New" in form.get_data(as_text=True)
    token = csrf(form.get_data(as_text=True))
    short = stranger.post(path, data={"password": "short", "again": "short",
                                      "csrf_token": token})
    assert short.status_code == 422
    done = stranger.post(path, data={"password": PASSWORD, "again": PASSWORD,
                                     "csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    nina = authenticate(inst, "nina", PASSWORD)
    assert nina is not None and nina.roles == {"agent"} and nina.language == "es"
    assert nina.team == world["team"]
    again = stranger.post(path, data={"password": "another one!", "again": "another one!",
                                      "csrf_token": token})
    assert again.status_code == 400 and "used" in again.get_data(as_text=True)


def test_a_new_link_replaces_the_old_one_and_links_expire(world, clock) -> None:
    inst, admin = world["inst"], world["admin"]
    rep = world["rep"].user_id
    first = accounts.issue_password_link(inst, admin, rep, "test-secret")
    second = accounts.issue_password_link(inst, admin, rep, "test-secret")
    with pytest.raises(accounts.LinkError, match="replaced"):
        accounts.check_password_link(inst, "test-secret", first)
    assert accounts.check_password_link(inst, "test-secret", second).id == rep
    with pytest.raises(accounts.LinkError, match="not valid"):
        accounts.check_password_link(inst, "another-secret", second)
    clock.advance(days=4)
    with pytest.raises(accounts.LinkError, match="expired"):
        accounts.check_password_link(inst, "test-secret", second)


@pytest.mark.parametrize("token", ["x", "a.b", "%00", "'; drop table crm_user; --", "é" * 600])
def test_forged_links_get_a_400(world, token) -> None:
    answer = world["app"].test_client().get(f"/set-password/{token}")
    assert answer.status_code in (400, 404)
    assert answer.status_code != 500


def test_a_user_form_with_problems_says_so(world) -> None:
    client = client_of(world, "admin")
    answer = new_user(client, username="rep")  # taken
    assert answer.status_code == 422
    assert "was not saved" in answer.get_data(as_text=True)
    assert new_user(client, username="", full_name="").status_code == 422
    assert new_user(client, roles=["emperor"]).status_code == 422


# -- deactivation and tokens ------------------------------------------------------------------

def test_deactivation_ends_sessions_and_tokens_and_hands_records_over(world) -> None:
    inst, admin = world["inst"], world["admin"]
    rep = world["rep"]
    lead = records.create(inst, admin, "lead", {"name": "Ada Lovelace",
                                                "owner": rep.user_id})
    rep_client = client_of(world, "rep")
    assert rep_client.get("/").status_code == 200
    token = accounts.create_token(inst, admin, rep.user_id, "phone system")
    assert actor_for_token(inst, token) is not None

    client = client_of(world, "admin")
    page = client.get(f"/admin/users/{rep.user_id}").get_data(as_text=True)
    assert "phone system" in page and "Hand their open records to" in page
    answer = post(client, f"/admin/users/{rep.user_id}/deactivate",
                  {"hand_to": str(admin.user_id)})
    assert answer.status_code == 302
    assert rep_client.get("/").status_code == 302  # signed out at once
    assert actor_for_token(inst, token) is None
    assert records.get(inst, admin, "lead", lead["id"])["owner"] == admin.user_id
    assert authenticate(inst, "rep", PASSWORD) is None
    assert "Inactive" in client.get(f"/admin/users/{rep.user_id}").get_data(as_text=True)


def test_deactivation_without_hand_over_keeps_the_owner(world) -> None:
    inst, admin, rep = world["inst"], world["admin"], world["rep"]
    lead = records.create(inst, admin, "lead", {"name": "Bo Keep", "owner": rep.user_id})
    client = client_of(world, "people")
    assert post(client, f"/admin/users/{rep.user_id}/deactivate").status_code == 302
    assert records.get(inst, admin, "lead", lead["id"])["owner"] == rep.user_id
    # a user administrator may not hand records over (that is assigning them)
    other = insert_user(inst, "other", roles=["agent"])
    answer = post(client, f"/admin/users/{other.user_id}/deactivate",
                  {"hand_to": str(admin.user_id)})
    assert answer.status_code == 403


def test_tokens_are_shown_once_and_revoked(world) -> None:
    inst, client, rep = world["inst"], client_of(world, "people"), world["rep"].user_id
    answer = post(client, f"/admin/users/{rep}/new-token", {"label": "zapier"})
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    token = TOKEN.search(page).group(1)
    assert actor_for_token(inst, token).username == "rep"
    assert TOKEN.search(client.get(f"/admin/users/{rep}").get_data(as_text=True)) is None
    token_id = re.search(r'/tokens/(\d+)/revoke', page).group(1)
    assert post(client, f"/admin/users/{rep}/tokens/{token_id}/revoke").status_code == 302
    assert actor_for_token(inst, token) is None
    assert post(client, f"/admin/users/{rep}/tokens/{token_id}/revoke").status_code == 404


def test_delegation_is_saved_and_checked(world) -> None:
    inst, client, rep = world["inst"], client_of(world, "admin"), world["rep"].user_id
    ok = post(client, f"/admin/users/{rep}/delegation", {
        "delegate": str(world["people"].user_id), "away_from": "2026-03-01",
        "away_until": "2026-03-10"})
    assert ok.status_code == 302
    with inst.engine.connect() as conn:
        from runtime.read.accounts import account  # noqa: PLC0415 - one read, this test only
        assert account(inst, conn, rep).delegation["delegate"] == world["people"].user_id
    bad = post(client, f"/admin/users/{rep}/delegation", {
        "delegate": str(rep), "away_from": "2026-03-01", "away_until": "2026-03-10"})
    assert bad.status_code == 303
    assert post(client, f"/admin/users/{rep}/delegation",
                {"away_from": "yesterday"}).status_code == 400


# -- teams, roles, audit ----------------------------------------------------------------------

def test_teams_are_created_with_members_and_a_manager(world) -> None:
    inst, client = world["inst"], client_of(world, "people")
    rep, hr = world["rep"].user_id, world["people"].user_id
    answer = post(client, "/admin/teams/new", {"name": "South team", "manager": str(hr),
                                               "members": [str(rep), str(hr)]})
    assert answer.status_code == 302
    page = client.get("/admin/teams").get_data(as_text=True)
    assert "South team" in page and "Rita Rep" in page
    assert records.get(inst, world["admin"], "user", rep)["team"] != world["team"]
    assert post(client, "/admin/teams/new", {"name": ""}).status_code == 422


def test_role_pages_say_what_a_role_may_do_in_words(world) -> None:
    client = client_of(world, "admin")
    listing = client.get("/admin/roles").get_data(as_text=True)
    assert "Agent" in listing and "User administrator" in listing
    page = client.get("/admin/roles/agent")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Leads" in text and "When" in text
    assert client.get("/admin/roles/emperor").status_code == 404


def test_the_audit_log_shows_changes_and_sign_ins(world) -> None:
    inst, client = world["inst"], client_of(world, "admin")
    new_user(client)
    assert authenticate(inst, "rep", "wrong password") is None
    page = client.get("/admin/audit").get_data(as_text=True)
    shown = re.findall(r'class="badge c\d">([^<]+)</span>', page)
    assert {"Failed sign-in", "Created", "Changed", "Password link issued"} <= set(shown)
    assert "<strong>roles</strong>: (none) → agent" in page
    only = client.get("/admin/audit?kind=sign_in_failed").get_data(as_text=True)
    assert set(re.findall(r'class="badge c\d">([^<]+)</span>', only)) == {"Failed sign-in"}
    csv = client.get("/admin/audit.csv?user=nina")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert csv.get_data(as_text=True).startswith("at,user,kind")
    assert "password_link" in csv.get_data(as_text=True)


def test_the_audit_log_pages_by_keyset(world) -> None:
    inst, admin, client = world["inst"], world["admin"], client_of(world, "admin")
    for n in range(55):
        records.create(inst, admin, "team", {"name": f"Team {n:02d}"})
    first = client.get("/admin/audit?entity=team").get_data(as_text=True)
    older = re.search(r'href="(/admin/audit\?[^"]*after=[^"]+)"', first).group(1)
    second = client.get(older.replace("&amp;", "&")).get_data(as_text=True)
    assert "Team 00" in second and "Team 00" not in first and "Team 54" in first


@pytest.mark.parametrize("query", ["after=garbage", "after=2026-01-01~x~1", "record=abc",
                                   "kind=explode", "from=31/12/2026", "to=%00",
                                   "record=" + "9" * 40, "user=" + "x" * 500])
def test_hostile_audit_filters_get_a_4xx(world, query) -> None:
    answer = client_of(world, "admin").get("/admin/audit?" + query)
    assert 400 <= answer.status_code < 500 or (
        answer.status_code == 200 and query.startswith("user="))


@pytest.mark.parametrize("path", ["/admin/users?status=deleted", "/admin/users/99999999",
                                  "/admin/teams/99999999", "/admin/users/0",
                                  "/admin/users/99999999999999999999999"])
def test_hostile_people_addresses_get_a_4xx(world, path) -> None:
    assert 400 <= client_of(world, "admin").get(path).status_code < 500


def test_hostile_people_forms_get_a_4xx(world) -> None:
    client = client_of(world, "admin")
    rep = world["rep"].user_id
    assert new_user(client, language="klingon").status_code == 400
    assert new_user(client, team="not-a-number").status_code in (400, 422)
    assert post(client, f"/admin/users/{rep}/deactivate",
                {"hand_to": "1 OR 1=1"}).status_code == 400
    assert post(client, f"/admin/users/{rep}", {"username": "rep", "full_name": "R",
                                                "version": "x"}).status_code == 400
    assert post(client, "/admin/teams/new", {"name": "T", "members": ["-1"]}).status_code == 400
