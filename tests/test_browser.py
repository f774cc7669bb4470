"""The web pages in a real browser: Playwright drives Debian's Chromium against a server on
127.0.0.1 (a random port, in a thread). Skipped, visibly, when Chromium or Playwright is not
installed (`apt-get install -y chromium`).

`CRMFORGE_SCREENSHOTS=1` also saves every page, desktop and 390-pixel phone, to
docs/screenshots/ (the pictures in docs/web.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from axe_support import watch
from browser_support import DESKTOP, PHONE, require_browser, served, shoot, sign_in
from conftest import build_instance
from support import FIXTURES, admin_actor, write_pack
from test_web_forms import SUPPORT_PACK
from web_support import PASSWORD, seed

from runtime.http.auth import set_password
from runtime.write import records, timeline

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # pragma: no cover - the test extra installs it
    pass

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_browser()
    directory = tmp_path_factory.mktemp("browser")
    support = write_pack(directory / "packs", SUPPORT_PACK, name="support")
    inst = build_instance([FIXTURES / "core", FIXTURES / "spec", support],
                          f"sqlite:///{directory / 'crm.db'}")
    admin = admin_actor(inst)
    set_password(inst, admin.user_id, PASSWORD)
    data = seed(inst, admin)
    timeline.add_entry(inst, admin, "offer", data["offers"][0]["id"], "call",
                       "Called Anna: she wants to sign before the end of the month.",
                       follow_up_on=inst.today())
    with served(inst, directory, admin=admin, data=data) as running:
        yield running


def signed_in(browser: Browser, server: dict[str, Any], viewport: dict | None = None) -> Page:
    return sign_in(browser, server, "admin", viewport)


def test_sign_in_and_open_the_dashboard(browser, server) -> None:
    page = watch(browser.new_page(viewport=DESKTOP))
    page.goto(server["url"] + "/e/offer")
    expect(page.locator("h1")).to_have_text("Sign in to your workspace")
    page.fill("#username", "admin")
    page.fill("#password", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".flash-error")).to_contain_text("Wrong username or password")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/e/offer$"))  # back where the user wanted to go
    page.goto(server["url"] + "/")
    expect(page.locator(".widget")).to_have_count(5)
    expect(page.locator("svg.chart")).to_have_count(2)
    expect(page.locator(".stat").first).to_be_visible()
    page.close()


def test_create_with_a_validation_error_then_fix_it(browser, server) -> None:
    page = signed_in(browser, server)
    page.goto(server["url"] + "/e/offer/new")
    page.fill("#f-property", "loft")
    page.locator("#f-property-results .picker-option", has_text="City loft").click()
    expect(page.locator("#f-property")).to_have_value("City loft")
    page.fill("#f-buyer", "Okafor")
    page.locator("#f-buyer-results .picker-option", has_text="Ben Okafor").click()
    page.select_option("#f-financing", "mortgage")
    page.fill("#f-amount", "5000")
    page.click("button:has-text('Create')")
    expect(page.locator("#field-amount .errors")).to_contain_text("Mortgage offers start at")
    expect(page.locator("#f-buyer")).to_have_value("Ben Okafor")  # the input is kept
    page.fill("#f-amount", "600000")
    page.click("button:has-text('Create')")
    expect(page.locator(".flash-success")).to_contain_text("created")
    expect(page.locator("h1")).to_contain_text("City loft")
    page.close()


def test_conditional_field_appears_live(browser, server) -> None:
    page = signed_in(browser, server)
    page.goto(server["url"] + "/e/ticket/new")
    detail = page.locator("#field-detail")
    expect(detail).to_be_hidden()
    page.select_option("#f-kind", "other")
    expect(detail).to_be_visible()  # the server's evaluator said so, through htmx
    expect(detail.locator("[data-req]")).to_be_visible()
    page.select_option("#f-kind", "bug")
    expect(detail).to_be_hidden()
    page.close()


def test_filter_sort_and_search_a_list(browser, server) -> None:
    page = signed_in(browser, server)
    page.goto(server["url"] + "/e/offer")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(server_offer_count(server))
    page.select_option("#flt-financing", "cash")
    expect(page).to_have_url(re.compile(r"financing=cash"))  # the address follows
    expect(rows).to_have_count(2)
    page.click("th a:has-text('Amount')")
    expect(page).to_have_url(re.compile(r"sort=amount"))
    expect(rows.first.locator("td").nth(4)).to_contain_text("405,000.00")
    page.click("th a:has-text('Amount')")
    expect(rows.first.locator("td").nth(4)).to_contain_text("1,180,000.00")
    page.goto(server["url"] + "/e/contact")
    page.fill("#q", "okafor")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    expect(page.locator("#results")).to_contain_text("Ben")
    page.close()


def server_offer_count(server: dict[str, Any]) -> int:
    return records.count(server["inst"], server["admin"], "offer")[0]


def test_drag_a_kanban_card(browser, server) -> None:
    page = signed_in(browser, server)
    page.goto(server["url"] + "/e/offer?view=kanban")
    offer = server["data"]["offers"][2]  # no approval needed for this one
    card = page.locator(f".kanban-card[data-id='{offer['id']}']")
    target = page.locator(".kanban-col[data-value='accepted']")
    card.drag_to(target)
    expect(page.locator("#board .flash-success")).to_contain_text("Moved")
    expect(target.locator(f".kanban-card[data-id='{offer['id']}']")).to_be_visible()
    moved = records.get(server["inst"], server["admin"], "offer", offer["id"])
    assert moved["status"] == "accepted"
    page.close()


def test_search_a_phone_number(browser, server) -> None:
    page = signed_in(browser, server)
    page.fill("#global-q", "+44 20 7946 0958")
    page.press("#global-q", "Enter")
    expect(page.locator(".result-group").first).to_contain_text("Anna Schmidt")
    expect(page.locator(".linked").first).to_contain_text("Offers:")
    page.close()


def test_works_with_javascript_off(browser, server) -> None:
    context = browser.new_context(java_script_enabled=False, viewport=DESKTOP)
    page = context.new_page()  # not watched: axe itself needs JavaScript
    page.goto(server["url"] + "/login")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(server["url"] + "/e/offer")
    page.select_option("#flt-financing", "cash")
    page.click(".filters button:has-text('Apply')")
    expect(page.locator("#results tbody tr")).to_have_count(2)
    page.goto(server["url"] + "/e/lead/new")
    page.fill("#f-name", "Offline lead")
    page.click("button:has-text('Create')")
    expect(page.locator(".flash-success")).to_contain_text("created")
    context.close()


PAGES = [
    ("login", "/login"),
    ("home", "/"),
    ("list", "/e/offer"),
    ("list-filtered", "/e/offer?financing=cash&sort=-amount"),
    ("kanban", "/e/offer?view=kanban"),
    ("calendar", "/e/viewing?view=calendar"),
    ("record", "/e/offer/{offer}"),
    ("edit", "/e/offer/{offer}/edit"),
    ("new-with-errors", "/e/offer/new"),
    ("search", "/search?q=%2B44+20+7946+0958"),
    ("leads", "/e/lead"),
]


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_every_page_renders_in_the_browser(browser, server, device: str) -> None:
    viewport = DESKTOP if device == "desktop" else PHONE
    errors: list[str] = []
    page = watch(browser.new_page(viewport=viewport))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda message: errors.append(message.text)
            if "Content Security Policy" in message.text else None)  # the CSP refused something
    page.goto(server["url"] + "/login")
    shoot(page, f"{device}-login")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server["url"] + "/")
    offer = server["data"]["offers"][0]["id"]
    for name, path in PAGES[1:]:
        answer = page.goto(server["url"] + path.format(offer=offer))
        assert answer is not None and answer.status == 200, path
        if name == "new-with-errors":
            page.click("button:has-text('Create')")
            expect(page.locator(".errors").first).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"] + 1, f"{path} scrolls sideways on a {device}"
        shoot(page, f"{device}-{name}")
    if device == "phone":
        page.goto(server["url"] + "/")
        page.click("label.menu-toggle")
        expect(page.locator(".sidebar")).to_be_in_viewport()
        page.wait_for_timeout(400)  # the menu slides in
        shoot(page, "phone-menu", full_page=False)
    assert errors == []
    page.close()


def test_the_content_security_policy_holds_in_the_browser(browser, server) -> None:
    """Our own scripts run (htmx is there, the page is marked "js"); an inline script that
    found its way into a page would not; the sign-out-everywhere button works."""
    page = signed_in(browser, server)
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(server["url"] + "/e/offer")
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("document.documentElement.classList.contains('js')")
    ran = page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.injected = true";
        document.body.appendChild(script);
        return window.injected === true;
    }""")
    assert ran is False and any("inline script" in text for text in refused)
    page.click(".topbar .user a.name")  # the user menu leads to the sign-out page
    page.click("button:has-text('Sign out everywhere')")
    page.wait_for_url(re.compile(r"/login$"))
    expect(page.locator(".flash-success")).to_contain_text("Signed out everywhere")
    page.goto(server["url"] + "/e/offer")
    expect(page.locator("h1")).to_have_text("Sign in to your workspace")
    page.close()
