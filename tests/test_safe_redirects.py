"""Open redirects (issue 12, defect 3): every page that goes back to a `next` / `back` address
after a form uses the one check (`auth.safe_next`), and the address it answers with stays on
this site as a browser reads it — whatever the hostile value, and never with a 500."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from web_support import make_app, seed, sign_in, token_of

from runtime.core.db import write_transaction
from runtime.http.auth import safe_next
from runtime.process import notifications
from runtime.read import timeline as read_timeline
from runtime.write import timeline

HOSTILE = [
    "//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example",
    "/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", " //evil.example",
    "/ \t/evil.example", "/\x00/evil.example", "/\x7f/evil.example", "/\x85/evil.example",
    "/%2F/evil.example", "/%2f%2fevil.example", "/%09/evil.example", "/%5Cevil.example",
    "/%0d%0aSet-Cookie:%20x=1", "/x\r\nSet-Cookie: x=1", "https://evil.example/",
    "http:/evil.example", "javascript:alert(1)", "evil.example", "%2F%2Fevil.example",
]
SAFE = ["/", "/e/property", "/e/property?q=anna%20smith&sort=-price", "/e/offer/3#timeline",
        "/approvals?tab=all"]
BROWSER_IGNORES = "".join(map(chr, range(0x21)))  # stripped from both ends of a URL


def host_of(location: str) -> str:
    """The host a browser goes to for a `Location` (WHATWG: C0 and spaces trimmed, tabs and
    newlines dropped, backslashes read as slashes)."""
    cleaned = re.sub(r"[\t\n\r]", "", location.strip(BROWSER_IGNORES)).replace("\\", "/")
    return urlsplit(urljoin("http://localhost/", cleaned)).netloc


@pytest.mark.parametrize("target", HOSTILE)
def test_safe_next_refuses_what_could_leave_the_site(target: str) -> None:
    assert safe_next(target) is None


@pytest.mark.parametrize("target", SAFE)
def test_safe_next_keeps_paths_of_this_site(target: str) -> None:
    assert safe_next(target) == target


@pytest.fixture
def site(spec_instance, admin, tmp_path) -> dict[str, Any]:
    inst = spec_instance
    who = admin(inst)
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, who)
    data = seed(inst, who)
    offer = data["offers"][0]
    timeline.add_entry(inst, who, "offer", offer["id"], "call", "Call back",
                       follow_up_on=inst.today())
    (follow_up,) = read_timeline.due_follow_ups(inst, who, until=inst.today())
    with write_transaction(inst.engine) as conn:
        notifications.notify(inst, conn, [who.user_id], "Hello")
    return {"inst": inst, "client": client, "admin": who, "data": data,
            "follow_up": follow_up, "token": token_of(client, "/")}


def _new_form(site: dict[str, Any], target: str) -> Any:
    return site["client"].post("/e/property/new", data={
        "csrf_token": site["token"], "title": "Barn", "price": "1", "next": target})


def _new_form_query(site: dict[str, Any], target: str) -> Any:
    return site["client"].post("/e/property/new", query_string={"next": target}, data={
        "csrf_token": site["token"], "title": "Barn", "price": "1"})


def _edit_form(site: dict[str, Any], target: str) -> Any:
    flat = site["data"]["flat"]
    html = site["client"].get(f"/e/property/{flat['id']}/edit").get_data(as_text=True)
    current = re.search(r'name="version" value="(\d+)"', html).group(1)
    return site["client"].post(f"/e/property/{flat['id']}/edit", data={
        "csrf_token": site["token"], "version": current, "title": "Flat", "price": "2",
        "next": target})


def _bulk(site: dict[str, Any], target: str) -> Any:
    flat = site["data"]["flat"]
    return site["client"].post("/e/property/bulk", data={
        "csrf_token": site["token"], "action": "nothing", "ids": [str(flat["id"])],
        "back": target})


def _follow_up_done(site: dict[str, Any], target: str) -> Any:
    entry = site["follow_up"]
    return site["client"].post(
        f"/e/{entry['entity']}/{entry['record_id']}/follow-ups/{entry['id']}/done",
        data={"csrf_token": site["token"], "next": target})


def _notifications_read(site: dict[str, Any], target: str) -> Any:
    return site["client"].post("/notifications/read",
                               data={"csrf_token": site["token"], "next": target})


def _approval_decision(site: dict[str, Any], target: str) -> Any:
    return site["client"].post("/approvals/999999/approve",
                               data={"csrf_token": site["token"], "next": target})


def _login_signed_in(site: dict[str, Any], target: str) -> Any:
    return site["client"].get("/login", query_string={"next": target})


ENDPOINTS: dict[str, Callable[[dict[str, Any], str], Any]] = {
    "new form": _new_form, "new form (query)": _new_form_query, "edit form": _edit_form,
    "bulk back": _bulk, "follow-up done": _follow_up_done,
    "notifications read": _notifications_read, "approval decision": _approval_decision,
    "login": _login_signed_in,
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_every_redirect_stays_on_this_site(site, endpoint) -> None:
    for target in HOSTILE:
        answer = ENDPOINTS[endpoint](site, target)
        allowed = (200, 302, 303, 400) if "\x00" in target else (200, 302, 303)  # NUL: 400
        assert answer.status_code in allowed, (endpoint, target, answer.status_code)
        location = answer.headers.get("Location")
        if location is not None:
            assert host_of(location) in ("", "localhost"), (endpoint, target, location)
            assert "\n" not in location and "\r" not in location
    # a path of this site is still followed
    answer = ENDPOINTS[endpoint](site, "/e/property?q=anna%20smith")
    assert answer.headers["Location"] == "/e/property?q=anna%20smith", endpoint


def test_a_notifications_own_link_is_checked_too(site) -> None:
    inst, who, client = site["inst"], site["admin"], site["client"]
    with write_transaction(inst.engine) as conn:
        notifications.notify(inst, conn, [who.user_id], "Hostile", link="/\t/evil.example")
    (row,) = [n for n in notifications.latest(inst, who.user_id, 10)
              if n["subject"] == "Hostile"]
    answer = client.get(f"/notifications/{row['id']}")
    assert answer.status_code == 302 and answer.headers["Location"] == "/notifications"
