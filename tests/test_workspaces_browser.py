"""Workspaces in a real browser (Chromium): the chooser, signing in to the hotel workspace, a
hotel guest showing only hotel sections, then the finance workspace in the same browser, and
both sessions still working afterwards. `CRMFORGE_SCREENSHOTS=1` saves the chooser, desktop
and phone (docs/screenshots/desktop-workspaces.png, phone-workspaces.png).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from axe_support import watch
from browser_support import DESKTOP, VIEWPORTS, require_browser, served, shoot
from web_support import PASSWORD

from runtime.core.instance import Actor
from runtime.ops.cli import main
from runtime.ops.workspaces import dispatcher, load, opened
from runtime.write import records

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # pragma: no cover - require_browser skips
    pass

pytestmark = pytest.mark.browser

# a contact of each kind, made in its workspace
PEOPLE = {"hotel": {"first_name": "Grace", "last_name": "Guest", "hotel_guest": True,
                    "email": "grace@example.com"},
          "finance": {"first_name": "Bruno", "last_name": "Banker", "bank_customer": True,
                      "primary_branch": "harbour",
                      "email": "bruno@example.com"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_browser()
    root = tmp_path_factory.mktemp("workspaces")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("CRMFORGE_WORKSPACES_DIR", str(root / "ws"))
        patch.delenv("CRMFORGE_DATABASE_URL", raising=False)
        people = {}
        for vertical, person in PEOPLE.items():
            assert main(["workspace", "create", vertical, "--packs", f"core,{vertical}"]) == 0
            assert main(["--workspace", vertical, "user", "create", "boss", "--admin",
                         "--password", PASSWORD]) == 0
            inst = opened(load(vertical))
            people[vertical] = records.create(inst, Actor.system_actor("test"), "contact",
                                              person)["id"]
            inst.engine.dispose()
        app = dispatcher()
        with served(None, root, app=app, people=people) as running:
            yield running
        app.close()


def sign_in_here(page: Page, base: str) -> None:
    """Sign in as boss on the workspace's login page the page is on."""
    expect(page).to_have_url(f"{base}/login?next=/{base.split('/', 3)[3]}/")
    page.fill("#username", "boss")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_chooser_then_hotel_then_finance_in_one_browser(browser: Browser,
                                                        server: dict[str, Any]) -> None:
    url = server["url"]
    page = watch(browser.new_page(viewport=DESKTOP))
    page.set_default_timeout(15_000)
    page.goto(url + "/")
    expect(page.locator("h1")).to_have_text("Choose a workspace")
    expect(page.locator(".workspace-list a")).to_have_count(2)

    page.get_by_role("link", name="Hotel").click()
    sign_in_here(page, f"{url}/w/hotel")
    page.goto(f"{url}/w/hotel/e/contact/{server['people']['hotel']}")
    expect(page.get_by_role("heading", name="Guest profile")).to_be_visible()
    expect(page.get_by_text("Identity and KYC")).to_have_count(0)
    expect(page.get_by_text("Bank customer")).to_have_count(0)
    nav = page.locator("nav.nav a.active")  # the menu marks the page under the prefix too
    expect(nav).to_have_count(1)

    page.goto(f"{url}/w/finance/")  # the same browser: hotel's cookie stays
    sign_in_here(page, f"{url}/w/finance")
    page.goto(f"{url}/w/finance/e/contact/{server['people']['finance']}")
    expect(page.get_by_role("heading", name="Identity and KYC")).to_be_visible()
    expect(page.get_by_text("Guest profile")).to_have_count(0)

    for vertical in PEOPLE:  # both sessions survive
        page.goto(f"{url}/w/{vertical}/e/contact/{server['people'][vertical]}")
        expect(page).to_have_url(f"{url}/w/{vertical}/e/contact/{server['people'][vertical]}")
    cookies = {c["name"] for c in page.context.cookies()}
    assert {"crmforge_session_hotel", "crmforge_session_finance"} <= cookies
    page.close()


def test_chooser_screenshots(browser: Browser, server: dict[str, Any]) -> None:
    for device, viewport in VIEWPORTS:
        page = watch(browser.new_page(viewport=viewport))
        page.goto(server["url"] + "/")
        expect(page.locator(".workspace-list a").first).to_be_visible()
        shoot(page, f"{device}-workspaces")
        page.close()


def test_an_unknown_workspace_offers_the_others(browser: Browser,
                                                server: dict[str, Any]) -> None:
    page = watch(browser.new_page(viewport=DESKTOP))
    answer = page.goto(server["url"] + "/w/casino/")
    assert answer is not None and answer.status == 404
    expect(page.locator("h1")).to_have_text("There is no workspace here")
    expect(page.get_by_role("link", name="Finance")).to_be_visible()
    page.close()

