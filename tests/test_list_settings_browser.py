"""List settings in a real browser (Debian's Chromium through Playwright), issue 13 item 12: the
column chooser saved with a view, the calendar's week and agenda worked from the keyboard, and
a dashboard's "View all" opening a list that says how it is filtered. Every page visited passes
axe. `CRMFORGE_SCREENSHOTS=1` saves the pages, desktop and 390 px, to docs/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from browser_support import require_browser, served, shoot_both, sign_in
from conftest import build_instance
from support import FIXTURES, admin_actor
from web_support import PASSWORD, seed

from runtime.http.auth import set_password

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the test extra installs it
    pass

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_browser()
    directory = tmp_path_factory.mktemp("list-settings")
    inst = build_instance([FIXTURES / "core", FIXTURES / "spec"],
                          f"sqlite:///{directory / 'crm.db'}")
    admin = admin_actor(inst)
    set_password(inst, admin.user_id, PASSWORD)
    with served(inst, directory, data=seed(inst, admin)) as running:
        yield running


def headings(page: Page) -> list[str]:
    return [t.strip().rstrip("▲▼ ").strip().title() for t in
            page.locator("table.list-table thead th:not(.check)").all_inner_texts()]


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] + 1, f"{page.url} scrolls sideways"


def open_chooser(page: Page) -> None:
    page.click("details.column-chooser > summary")
    expect(page.locator(".column-form")).to_be_visible()
    no_sideways_scroll(page)


def test_choose_order_and_save_columns_with_a_view(browser, server) -> None:
    shoot_both(browser, server, "admin", "/e/offer", "list-columns", open_chooser)
    page = sign_in(browser, server)
    page.goto(server["url"] + "/e/offer")
    assert headings(page) == ["Reference", "Property", "Buyer", "Amount", "Status"]
    open_chooser(page)
    page.uncheck("#col-property")
    page.check("#col-financing")
    page.click("button:has-text('Show columns')")
    expect(page.locator("table.list-table thead")).to_contain_text("Financing")
    assert headings(page) == ["Reference", "Buyer", "Amount", "Status", "Financing"]
    open_chooser(page)
    page.click("button[aria-label='Move Financing up']")  # the chooser stays open
    expect(page.locator(".column-form")).to_be_visible()
    assert headings(page) == ["Reference", "Buyer", "Amount", "Financing", "Status"]
    page.click("details.save-view > summary")
    page.fill("input[name=name]", "Money view")
    page.click("details.save-view button:has-text('Save')")
    expect(page.locator(".flash-success")).to_contain_text("Saved the view “Money view”")
    page.goto(server["url"] + "/e/offer")
    assert headings(page)[1] == "Property"
    page.click(".saved-views a:has-text('Money view')")
    expect(page.locator("table.list-table thead")).to_contain_text("Financing")
    assert headings(page) == ["Reference", "Buyer", "Amount", "Financing", "Status"]
    expect(page.locator(".column-form")).to_be_hidden()
    page.close()


def test_calendar_week_and_agenda_from_the_keyboard(browser, server) -> None:
    def agenda(page: Page) -> None:
        expect(page.locator(".agenda-day").first).to_be_visible()
        no_sideways_scroll(page)

    soonest = server["inst"].today() + timedelta(days=2)  # the loft offer's valid_until
    shoot_both(browser, server, "admin", f"/e/offer?view=calendar&mode=week&day={soonest}",
               "calendar-week", no_sideways_scroll)
    shoot_both(browser, server, "admin", "/e/offer?view=calendar&mode=agenda",
               "calendar-agenda", agenda)
    page = sign_in(browser, server)
    page.goto(server["url"] + "/e/offer?view=calendar")
    page.focus(".cal-modes a:has-text('Week')")
    page.keyboard.press("Enter")
    expect(page.locator(".calendar.week .day")).to_have_count(7)
    expect(page.locator(".cal-modes a[aria-current=page]")).to_have_text("Week")
    page.focus(".cal-modes a:has-text('Agenda')")
    page.keyboard.press("Enter")
    expect(page.locator(".agenda-day")).to_have_count(4)  # the four offers' days
    expect(page.locator(".agenda-day h3").first).to_have_id(f"day-{soonest.isoformat()}")
    page.focus(".agenda-day a.event >> nth=0")
    page.keyboard.press("Enter")
    page.wait_for_url("**/e/offer/*")
    expect(page.locator("h1")).to_contain_text("City loft")
    page.close()


def test_view_all_opens_a_list_that_says_it_is_filtered(browser, server) -> None:
    page = sign_in(browser, server)
    view_all = page.locator("a:has-text('View all')").first
    target = view_all.get_attribute("href")
    assert target and "?" in target
    view_all.click()
    chips = page.locator(".active-filters .filter-chip")
    expect(chips.first).to_be_visible()
    count = chips.count()
    page.locator(".active-filters .chip-remove").first.click()
    expect(page.locator(".active-filters .filter-chip")).to_have_count(count - 1)
    filtered = "/e/lead?status__in=new,contacted&owner__isnull=false&q=o"
    shoot_both(browser, server, "admin", filtered, "list-active-filters")
    page.goto(server["url"] + filtered)
    expect(page.locator(".active-filters")).to_contain_text("Status: New or Contacted")
    expect(page.locator(".active-filters")).to_contain_text("Owner: set")
    page.click(".active-filters a:has-text('Clear all')")
    expect(page.locator(".active-filters")).to_have_count(0)
    page.close()
