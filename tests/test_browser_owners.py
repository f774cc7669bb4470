"""Issue 13, items 1-3 in a real browser (Debian's Chromium through Playwright): a rep claims a
lead from the pool, a manager bulk-assigns two leads, and the owner picker finds "Helen
Ashworth" by name. `CRMFORGE_SCREENSHOTS=1` saves the pages changed, desktop and 390 px, to
docs/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import require_browser, served, shoot_both, sign_in
from conftest import build_instance
from support import admin_actor, insert_team, insert_user
from web_support import PASSWORD

from runtime.core.instance import Actor
from runtime.http.auth import set_password
from runtime.write import records

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # pragma: no cover - the test extra installs it
    pass

pytestmark = pytest.mark.browser

CORE = Path(__file__).resolve().parent.parent / "verticals" / "core"
LEAD = {"source": "web", "email": "lead@example.com"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_browser()
    directory = tmp_path_factory.mktemp("owners")
    inst = build_instance([CORE], f"sqlite:///{directory / 'crm.db'}")
    team = insert_team(inst, "North team")
    people = {
        "helen": insert_user(inst, "hashworth", full_name="Helen Ashworth", team=team,
                             roles=["sales_rep"], region="london", lead_claim_limit=40,
                             open_leads=0, email="helen.ashworth@example.com"),
        "omar": insert_user(inst, "okhan", full_name="Omar Khan", roles=["sales_rep"],
                            team=team, region="london", lead_claim_limit=40, open_leads=0),
        "maria": insert_user(inst, "mlopez", full_name="Maria Lopez", team=team,
                             roles=["sales_manager"], lead_claim_limit=40, open_leads=0),
    }
    for who in people.values():
        set_password(inst, who.user_id, PASSWORD)
    admin = admin_actor(inst)
    pool = [records.create(inst, admin, "lead", {"first_name": first, "last_name": last,
                                                 "company": company, **LEAD, "owner": None})
            for first, last, company in (("Ada", "Pool", "Pool Works"),
                                         ("Ben", "Spare", "Spare Parts Ltd"),
                                         ("Cleo", "Third", "Third Way plc"))]
    with served(inst, directory, pool=pool, **people) as running:
        yield running


def signed_in(browser: Browser, server: dict[str, Any], who: Actor,
              viewport: dict | None = None) -> Page:
    return sign_in(browser, server, who.username, viewport)


def shoot(browser: Browser, server: dict[str, Any], who: Actor, path: str, name: str,
          prepare: Any = None) -> None:
    shoot_both(browser, server, who.username, path, name, prepare)


def owner_of(server: dict[str, Any], lead_id: int) -> int | None:
    return records.get(server["inst"], Actor.system_actor(), "lead", lead_id)["owner"]


def test_a_rep_claims_a_lead_from_the_pool(browser, server) -> None:
    helen, lead = server["helen"], server["pool"][0]
    shoot(browser, server, helen, f"/e/lead/{lead['id']}", "claim")
    page = signed_in(browser, server, helen)
    page.goto(server["url"] + f"/e/lead/{lead['id']}")
    page.click("button:has-text('Claim')")
    expect(page.locator(".flash-success")).to_contain_text("is yours now")
    expect(page.locator(".timeline")).to_contain_text("Owner: nobody → Helen Ashworth")
    expect(page.locator("button:has-text('Claim')")).to_have_count(0)
    assert owner_of(server, lead["id"]) == helen.user_id
    page.close()


def pick_helen(page: Page, box: str) -> None:
    page.fill(box, "Helen Ashworth")
    option = page.locator(f"{box}-results .picker-option", has_text="Helen Ashworth")
    expect(option).to_contain_text("Sales rep · North team")


def test_a_manager_bulk_assigns_two_leads(browser, server) -> None:
    maria, helen = server["maria"], server["helen"]
    ids = [lead["id"] for lead in server["pool"][1:]]

    def choose(page: Page) -> None:
        for lead_id in ids:
            page.check(f"input[name=ids][value='{lead_id}']")
        page.select_option("select[name=action]", "assign")
        pick_helen(page, "#bulk-owner")

    shoot(browser, server, maria, "/e/lead", "bulk-assign", choose)
    page = signed_in(browser, server, maria)
    page.goto(server["url"] + "/e/lead")
    choose(page)
    page.locator("#bulk-owner-results .picker-option", has_text="Helen Ashworth").click()
    page.click("button:has-text('Apply to selected')")
    expect(page.locator(".flash-success")).to_contain_text("2 records assigned to Helen Ashworth")
    assert [owner_of(server, i) for i in ids] == [helen.user_id, helen.user_id]
    page.goto(server["url"] + f"/e/lead/{ids[0]}")
    expect(page.locator(".timeline")).to_contain_text("Owner: nobody → Helen Ashworth")
    expect(page.locator(".timeline")).to_contain_text("Maria Lopez")
    page.close()


def test_the_owner_picker_finds_helen_by_name(browser, server) -> None:
    maria, helen = server["maria"], server["helen"]
    shoot(browser, server, maria, "/e/lead/new", "owner-picker",
          lambda page: pick_helen(page, "#f-owner"))
    page = signed_in(browser, server, maria)
    page.goto(server["url"] + "/e/lead/new")
    page.fill("#f-first_name", "Dora")
    page.fill("#f-last_name", "Given")
    page.fill("#f-email", "dora@example.com")
    pick_helen(page, "#f-owner")
    page.locator("#f-owner-results .picker-option", has_text="Helen Ashworth").click()
    expect(page.locator("#f-owner")).to_have_value("Helen Ashworth")
    page.click("button:has-text('Create')")
    expect(page.locator(".flash-success")).to_contain_text("created")
    lead_id = int(re.search(r"/e/lead/(\d+)", page.url).group(1))
    assert owner_of(server, lead_id) == helen.user_id
    page.close()


def test_users_are_listed_by_name(browser, server) -> None:
    shoot(browser, server, server["maria"], "/e/user", "users")
    page = signed_in(browser, server, server["maria"])
    page.goto(server["url"] + "/e/user")
    expect(page.locator("a.title", has_text="Helen Ashworth")).to_be_visible()
    page.close()
