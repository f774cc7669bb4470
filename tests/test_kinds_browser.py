"""Issue 13, item 11 in a real browser (Debian's Chromium through Playwright): on an instance
with every shipped vertical, the front desk creates a hotel guest — the kind chosen first —
and sees only the hotel's sections; a bank customer's page shows no hotel section.
`CRMFORGE_SCREENSHOTS=1` saves the pages, desktop and 390 px, to docs/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import require_browser, served, shoot_both, sign_in
from conftest import build_instance
from support import admin_actor, insert_user
from web_support import PASSWORD

from runtime.core.instance import Actor
from runtime.http.auth import set_password
from runtime.write import records

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the test extra installs it
    pass

pytestmark = pytest.mark.browser

VERTICALS = Path(__file__).resolve().parent.parent / "verticals"
PACKS = [VERTICALS / name for name in ("core", "finance", "hotel", "real_estate", "telecom")]
OTHER_PACKS = ("Bank customer", "Identity and KYC", "Estate agency", "Churn risk")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_browser()
    directory = tmp_path_factory.mktemp("kinds")
    inst = build_instance(PACKS, f"sqlite:///{directory / 'crm.db'}")
    desk = insert_user(inst, "nina", full_name="Nina Petrova", roles=["front_desk"])
    set_password(inst, desk.user_id, PASSWORD)
    admin = admin_actor(inst)
    set_password(inst, admin.user_id, PASSWORD)
    guest = records.create(inst, admin, "contact", {
        "first_name": "Oliver", "last_name": "Kingsley", "email": "oliver@example.net",
        "hotel_guest": True, "vip_level": "vip1", "nationality": "gb",
        "guest_notes": "Prefers a quiet room away from the lift."})
    banker = records.create(inst, admin, "contact", {
        "first_name": "Peter", "last_name": "Byrne", "email": "peter@example.org",
        "bank_customer": True, "primary_branch": "northgate", "finance_segment": "mass"})
    with served(inst, directory, desk=desk, guest=guest, banker=banker) as running:
        yield running


def sections(page: Any) -> list[str]:
    return page.locator("main h2").all_inner_texts()


def test_the_front_desk_creates_a_hotel_guest_and_sees_only_the_hotel_sections(
        browser, server) -> None:
    desk: Actor = server["desk"]
    shoot_both(browser, server, desk.username, "/e/contact/new?kind=hotel_guest",
               "kind-new-guest")
    page = sign_in(browser, server, desk.username)
    page.goto(server["url"] + "/e/contact/new")
    picker = page.get_by_role("navigation", name="Kind of contact")
    expect(picker.locator("[aria-current=page]")).to_have_text("Contact")
    picker.get_by_role("link", name="Hotel guest").click()
    page.wait_for_url("**/e/contact/new?kind=hotel_guest")
    expect(picker.locator("[aria-current=page]")).to_have_text("Hotel guest")
    shown = sections(page)
    assert "Guest profile" in shown and not set(shown) & set(OTHER_PACKS), shown
    expect(page.locator("#f-job_title")).to_have_count(0)  # a business contact's field
    page.fill("#f-first_name", "Lucy")
    page.fill("#f-last_name", "Cartwright")
    page.fill("#f-email", "lucy@example.net")
    page.check("#f-hotel_guest")
    page.select_option("#f-nationality", "ie")
    page.click("button:has-text('Create')")
    expect(page.locator(".flash-success")).to_contain_text("created")
    expect(page.locator(".kind-badge")).to_have_text("Hotel guest")
    shown = sections(page)
    assert {"Guest profile", "Stay history"} <= set(shown), shown
    assert not set(shown) & {*OTHER_PACKS, "Properties owned", "Accounts", "Orders"}, shown
    created = records.get(server["inst"], Actor.system_actor(), "contact",
                          int(page.url.rsplit("/", 1)[1]))
    assert (created["kind"], created["nationality"], created["hotel_guest"]) == (
        "hotel_guest", "ie", True)
    shoot_both(browser, server, desk.username, page.url.replace(server["url"], ""),
               "kind-guest-record")


def test_a_bank_customer_shows_no_hotel_section(browser, server) -> None:
    page = sign_in(browser, server, "admin")
    page.goto(server["url"] + f"/e/contact/{server['banker']['id']}")
    expect(page.locator(".kind-badge")).to_have_text("Bank customer")
    shown = sections(page)
    assert {"Bank customer", "Identity and KYC"} <= set(shown), shown
    assert not set(shown) & {"Guest profile", "Stay history", "Estate agency", "Stays"}, shown
