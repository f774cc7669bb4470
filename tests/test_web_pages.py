"""The web pages as a whole: sign-in, layout and navigation, every page as a full page and as
its htmx fragment, escaping of hostile values, CSRF refusal, permission-denied pages."""

from __future__ import annotations

from typing import Any

import pytest
from web_support import make_app, seed, sign_in, token_of

from runtime.write import records

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def web(spec_instance, admin, tmp_path) -> dict[str, Any]:
    inst = spec_instance
    who = admin(inst)
    app = make_app(inst, tmp_path)
    client = app.test_client()
    sign_in(client, inst, who)
    return {"inst": inst, "app": app, "client": client, "admin": who, "data": seed(inst, who)}


def test_pages_need_a_signed_in_user(spec_instance, tmp_path) -> None:
    client = make_app(spec_instance, tmp_path).test_client()
    for path in ("/", "/e/offer", "/e/offer/new", "/search?q=a"):
        answer = client.get(path)
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/login")
    login = client.get("/login")
    assert login.status_code == 200
    assert b"/static/crmforge.css" in login.data  # the restyled sign-in page
    for asset in ("/static/crmforge.css", "/static/htmx.min.js", "/static/crmforge.js"):
        with client.get(asset) as answer:
            assert answer.status_code == 200


def test_navigation_lists_packs_and_readable_entities(web) -> None:
    html = web["client"].get("/").get_data(as_text=True)
    assert "Real Estate" in html  # the pack's label heads its group
    for label in ("Offers", "Properties", "Contacts", "Leads"):
        assert f">{label}</a>" in html
    assert 'class="active"' in html


PAGES = [
    ("/", "dashboards"),
    ("/e/offer", "results"),
    ("/e/offer?view=kanban", "board"),
    ("/e/offer?view=calendar", "calendar"),
    ("/e/offer/new", "form"),
    ("/search?q=Schmidt", "results"),
]


@pytest.mark.parametrize(("path", "block"), PAGES)
def test_every_page_is_a_full_page_and_a_fragment(web, path: str, block: str) -> None:
    client = web["client"]
    full = client.get(path)
    assert full.status_code == 200, full.get_data(as_text=True)[:2000]
    text = full.get_data(as_text=True)
    assert text.lstrip().startswith("<!doctype html>")
    assert f'id="{block}"' in text
    part = client.get(path, headers={"HX-Request": "true", "HX-Target": block})
    assert part.status_code == 200
    fragment = part.get_data(as_text=True)
    assert "<html" not in fragment and "<aside" not in fragment
    assert f'id="{block}"' in fragment


def test_record_and_edit_pages_have_fragments(web) -> None:
    client = web["client"]
    offer = web["data"]["offers"][0]["id"]
    for path, block in ((f"/e/offer/{offer}", "record"), (f"/e/offer/{offer}/edit", "form")):
        assert client.get(path).status_code == 200
        part = client.get(path, headers={"HX-Request": "true"}).get_data(as_text=True)
        assert "<html" not in part and f'id="{block}"' in part


def test_entity_template_overrides_come_first(web, tmp_path) -> None:
    app = web["app"]
    from jinja2 import ChoiceLoader, DictLoader

    app.jinja_loader  # noqa: B018 - build the default loader before wrapping it
    app.jinja_env.loader = ChoiceLoader([
        DictLoader({"entity/lead/list.html": "custom lead list {{ data.count }}"}),
        app.jinja_env.loader])
    assert web["client"].get("/e/lead").get_data(as_text=True) == "custom lead list 5"
    assert "custom" not in web["client"].get("/e/offer").get_data(as_text=True)


def test_hostile_values_are_escaped_everywhere(web) -> None:
    inst, who, client = web["inst"], web["admin"], web["client"]
    contact = records.create(inst, who, "contact", {
        "first_name": HOSTILE, "last_name": "Evil", "email": "evil@example.com"})
    prop = web["data"]["flat"]
    offer = records.create(inst, who, "offer", {
        "property": prop["id"], "buyer": contact["id"], "amount": "1000", "notes": HOSTILE})
    pages = ["/e/contact", f"/e/contact/{contact['id']}", f"/e/contact/{contact['id']}/edit",
             f"/e/offer/{offer['id']}", "/e/offer", "/search?q=Evil", "/e/offer?view=kanban",
             "/e/contact/_options?q=Evil&target=x", "/e/contact?q=" + HOSTILE]
    for path in pages:
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in html, path
        assert "<img src=x" not in html, path
    assert "&lt;script&gt;" in client.get(f"/e/contact/{contact['id']}").get_data(as_text=True)


def test_csrf_token_is_required_on_every_form(spec_instance, admin, tmp_path) -> None:
    inst = spec_instance
    who = admin(inst)
    app = make_app(inst, tmp_path)
    client = app.test_client()
    sign_in(client, inst, who, form=True)
    offer_data = seed(inst, who)
    offer = offer_data["offers"][0]["id"]
    posts = [("/e/lead/new", {"name": "No token"}),
             (f"/e/offer/{offer}/timeline", {"kind": "note", "body": "x"}),
             (f"/e/offer/{offer}/delete", {}),
             ("/e/lead/bulk", {"action": "delete", "ids": "1", "confirm": "yes"}),
             ("/e/lead/views", {"name": "v", "query": ""})]
    for path, data in posts:
        answer = client.post(path, data=data)
        assert answer.status_code == 400, path
        assert "expired or did not come from this site" in answer.get_data(as_text=True)
    assert records.count(inst, who, "lead")[0] == 5
    token = token_of(client, "/e/lead/new")
    answer = client.post("/e/lead/new", data={"name": "With token", "csrf_token": token})
    assert answer.status_code == 302
    answer = client.post("/e/lead/new", data={"name": "Header token"},
                         headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert answer.status_code == 302


def test_permission_denied_pages(spec_instance, admin, make_user, tmp_path) -> None:
    inst = spec_instance
    data = seed(inst, admin(inst))
    agent = make_user(inst, "agnes", roles=["agent"])
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, agent)
    home = client.get("/").get_data(as_text=True)
    assert ">Leads</a>" in home and ">Commissions</a>" not in home  # no role on commission
    denied = client.get("/e/commission")
    assert denied.status_code == 403
    assert "ask an administrator" in denied.get_data(as_text=True)
    assert client.get("/e/commission/new").status_code == 403
    # agents may read offers of their own (or their team's): admin's offers are not theirs
    assert client.get(f"/e/offer/{data['offers'][0]['id']}").status_code == 404
    assert "OFF-00001" not in client.get("/e/offer").get_data(as_text=True)
    assert client.get("/e/nonsense").status_code == 404
    # leads: agents may create but not delete
    page = client.get("/e/lead").get_data(as_text=True)
    assert '<option value="delete">' not in page
    token = token_of(client, "/e/lead/new")
    answer = client.post("/e/lead/bulk", data={"action": "delete", "ids": "1",
                                                "csrf_token": token})
    assert answer.status_code == 403


def test_hidden_fields_are_not_shown(spec_instance, admin, make_user, tmp_path) -> None:
    inst = spec_instance
    agent = make_user(inst, "agnes", roles=["agent"])
    data = seed(inst, admin(inst))
    offer = records.create(inst, admin(inst), "offer", {
        "property": data["flat"]["id"], "buyer": data["anna"]["id"], "amount": "5",
        "owner": agent.user_id, "commission_pct": "3"})
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, agent)
    for path in (f"/e/offer/{offer['id']}", f"/e/offer/{offer['id']}/edit", "/e/offer/new"):
        html = client.get(path).get_data(as_text=True)
        assert "Commission pct" not in html, path


def test_error_pages_use_the_layout(web) -> None:
    answer = web["client"].get("/e/offer/999999")
    assert answer.status_code == 404
    html = answer.get_data(as_text=True)
    assert "crmforge.css" in html and "Offers" in html
