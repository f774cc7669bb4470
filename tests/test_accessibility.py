"""Accessibility in a real browser: every page passes axe-core's WCAG 2 A and AA rules
(colour contrast, labels, nested interactive elements ...) at desktop and phone width, focus
is visible, and the kanban can be worked with the keyboard alone (the same move as a drag).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from axe_support import assert_accessible, check_watched, unwatch, violations, watch
from browser_support import DESKTOP, PHONE, shoot
from test_browser import PAGES, server, signed_in  # noqa: F401 - server: the same site
from web_support import PASSWORD

from runtime.http.web import charts
from runtime.write import records

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the test extra installs it
    expect = None

SHOWN = {"home", "kanban", "calendar", "record"}  # the pages whose colours changed most
EXTRA = [("approvals", "/approvals"), ("notifications", "/notifications"),
         ("board-of-tickets", "/e/ticket?view=kanban"), ("new-ticket", "/e/ticket/new")]


@pytest.mark.browser
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_every_page_passes_axe(browser, server, device: str) -> None:  # noqa: F811
    page = browser.new_page(viewport=DESKTOP if device == "desktop" else PHONE)
    page.set_default_timeout(10_000)
    page.goto(server["url"] + "/login")
    assert_accessible(page)
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server["url"] + "/")
    offer = server["data"]["offers"][0]["id"]
    for name, path in PAGES[1:] + EXTRA:
        answer = page.goto(server["url"] + path.format(offer=offer))
        assert answer is not None and answer.status == 200, path
        if name == "new-with-errors":
            page.click("button:has-text('Create')")
            expect(page.locator(".errors").first).to_be_visible()
        assert_accessible(page)
        if name in SHOWN:
            shoot(page, f"{device}-accessibility-{name}")
    page.close()


@pytest.mark.browser
def test_axe_finds_a_violation(browser, server) -> None:  # noqa: F811
    """The check can fail: an unlabelled input and grey-on-white text are reported."""
    page = unwatch(signed_in(browser, server))  # broken on purpose: not the teardown's to report
    page.evaluate("""() => {
        const main = document.querySelector("main") || document.body;
        main.insertAdjacentHTML("beforeend",
            '<input id="nameless"><p style="color:#bbb;background:#fff">faint</p>');
    }""")
    found = "\n".join(violations(page))
    assert "label" in found and "#nameless" in found
    assert "color-contrast" in found
    page.close()


@pytest.mark.browser
def test_watched_pages_are_checked_on_every_load(browser, server) -> None:  # noqa: F811
    """The hook the browser tests use: a page that loads with a violation is reported after
    the test has moved on to another page."""
    page = watch(signed_in(browser, server))
    broken = server["url"] + "/broken-page"
    page.route(broken, lambda route: route.fulfill(
        content_type="text/html",
        body='<!doctype html><html lang="en"><title>Broken</title><main><h1>Broken</h1>'
             '<input id="nameless"></main></html>'))
    page.goto(broken)
    expect(page.locator("h1")).to_have_text("Broken")
    page.wait_for_function("typeof window.axe === 'object'")
    page.wait_for_timeout(500)  # axe runs after the load, beside the test
    page.goto(server["url"] + "/e/offer")
    with pytest.raises(AssertionError, match="broken-page: label .*#nameless"):
        check_watched()
    page.close()


@pytest.mark.browser
def test_focus_is_visible(browser, server) -> None:  # noqa: F811
    page = signed_in(browser, server)
    page.goto(server["url"] + "/e/offer")
    for _ in range(3):
        page.keyboard.press("Tab")
        outline = page.evaluate("""() => {
            const style = getComputedStyle(document.activeElement);
            return [style.outlineStyle, parseFloat(style.outlineWidth)];
        }""")
        assert outline[0] != "none" and outline[1] >= 2, outline
    page.close()


@pytest.mark.browser
def test_move_a_kanban_card_with_the_keyboard(browser, server) -> None:  # noqa: F811
    """Tab to a card, Tab to its "Move to" choice, pick a column with the arrow keys, Enter:
    the same move as a drag, without a mouse."""
    page = signed_in(browser, server)
    page.goto(server["url"] + "/e/offer?view=kanban")
    offer = server["data"]["offers"][3]
    before = records.get(server["inst"], server["admin"], "offer", offer["id"])
    card = page.locator(f".kanban-card[data-id='{offer['id']}']")
    title = card.locator("a.title")
    for _ in range(200):  # Tab through the page until the card's title has the focus
        page.keyboard.press("Tab")
        if title.evaluate("node => node === document.activeElement"):
            break
    else:
        pytest.fail("the kanban card cannot be reached with Tab")
    shoot(page, "desktop-accessibility-kanban-keyboard", full_page=False)
    page.keyboard.press("Tab")
    choice = card.locator("select[name=value]")
    expect(choice).to_be_focused()
    target = "accepted"
    assert before["status"] != target
    while choice.input_value() != target:
        page.keyboard.press("ArrowDown" if _after(choice, target) else "ArrowUp")
    page.keyboard.press("Tab")
    expect(card.locator("button:has-text('Move')")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".flash-success")).to_contain_text("Moved")
    expect(page).to_have_url(re.compile(r"view=kanban"))
    column = page.locator(f".kanban-col[data-value='{target}']")
    expect(column.locator(f".kanban-card[data-id='{offer['id']}']")).to_be_visible()
    assert records.get(server["inst"], server["admin"], "offer", offer["id"])["status"] == target
    assert_accessible(page)
    page.close()


def _after(choice: Any, target: str) -> bool:
    """Is `target` below the selected option (so ArrowDown reaches it)?"""
    return bool(choice.evaluate("""(select, target) => {
        const values = Array.from(select.options).map(o => o.value);
        return values.indexOf(target) > select.selectedIndex;
    }""", target))


def test_a_chart_of_links_is_a_group_of_named_links() -> None:
    """An image may not hold links (axe: nested-interactive): a chart whose marks are links is
    a named group, each link named "label: value"; a chart without links stays an image."""
    points = [("Website", 3.0, "/e/lead?source=web"), ("Referral", 1.0, "/e/lead?source=ref")]
    for draw in (charts.bar, charts.line, charts.pie):
        linked = str(draw(points, lambda v: f"{v:.0f}", "Leads by source"))
        assert 'role="group" aria-label="Leads by source"' in linked
        assert 'role="img"' not in linked
        assert '<a href="/e/lead?source=web" aria-label="Website: 3">' in linked
        plain = str(draw([(label, value, None) for label, value, _ in points],
                         lambda v: f"{v:.0f}", "Leads"))
        assert 'role="img" aria-label="Leads"' in plain and "<a " not in plain


@pytest.mark.browser
def test_open_the_phone_menu_with_the_keyboard(browser, server) -> None:  # noqa: F811
    page = signed_in(browser, server, PHONE)
    toggle = page.locator("label.menu-toggle")
    for _ in range(60):  # after the (closed) sidebar's links
        page.keyboard.press("Tab")
        if toggle.evaluate("node => node === document.activeElement"):
            break
    else:
        pytest.fail("the menu button cannot be reached with Tab")
    page.keyboard.press("Enter")
    expect(page.locator(".sidebar")).to_be_in_viewport()
    page.close()
