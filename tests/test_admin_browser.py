"""Issue 15, people and audit, in a real browser (Debian's Chromium through Playwright): an
admin creates a user and copies the one-time link; the new user sets a password in a second
browser context and signs in; the admin finds the creation and the sign-in in /admin/audit.
Every page visited is checked with axe. `CRMFORGE_SCREENSHOTS=1` saves the admin pages,
desktop and 390 px, as docs/screenshots/admin-<page>-<device>.png (docs/admin.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_support import watch
from browser_support import (
    DESKTOP,
    VIEWPORTS,
    require_browser,
    served,
    shoot,
    shooting,
    sign_in,
)
from conftest import build_instance
from support import admin_actor, insert_team, insert_user
from web_support import PASSWORD

from runtime.http.auth import set_password
from runtime.write import accounts, records

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # pragma: no cover - the test extra installs it
    pass

pytestmark = pytest.mark.browser

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NEW_PASSWORD = "a long new password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_browser()
    directory = tmp_path_factory.mktemp("admin")
    inst = build_instance([FIXTURES / "core", FIXTURES / "spec"],
                          f"sqlite:///{directory / 'crm.db'}")
    admin = admin_actor(inst)
    set_password(inst, admin.user_id, PASSWORD)
    north = insert_team(inst, "North team")
    lead = insert_user(inst, "mlopez", roles=["sales_manager"], team=north,
                       full_name="Maria Lopez", email="maria.lopez@example.com")
    records.update(inst, admin, "team", north, {"manager": lead.user_id}, version=1)
    for username, name in (("hashworth", "Helen Ashworth"), ("okhan", "Omar Khan")):
        insert_user(inst, username, roles=["agent"], team=north, full_name=name,
                    manager=lead.user_id, email=f"{username}@example.com")
    hr = insert_user(inst, "hr", roles=["user_admin"], full_name="Hana Ruiz")
    set_password(inst, hr.user_id, PASSWORD)
    accounts.create_token(inst, admin, lead.user_id, "phone system")
    with served(inst, directory, maria=lead) as running:
        yield running


def anonymous(browser: Browser, viewport: dict | None = None) -> Page:
    """A page in a fresh browser context: nobody signed in, no cookie shared."""
    context = browser.new_context(viewport=viewport or DESKTOP)
    page = watch(context.new_page())
    page.set_default_timeout(10_000)
    return page


def create_user(page: Page, server: dict[str, Any], username: str, full_name: str) -> str:
    """Fill in /admin/users/new as the admin; the one-time link shown afterwards."""
    page.goto(server["url"] + "/admin")
    page.click("text=Users")
    page.click("text=New user")
    page.fill("#f-username", username)
    page.fill("#f-full_name", full_name)
    page.fill("#f-email", f"{username}@example.com")
    page.select_option("#f-team", label="North team")
    page.select_option("#f-manager", label="Maria Lopez")
    page.check("input[name=roles][value=agent]")
    page.click("button:has-text('Create user')")
    expect(page.locator("h1")).to_contain_text(full_name)
    return page.input_value("#password-link")


def test_an_admin_creates_a_user_who_sets_a_password_and_signs_in(browser, server) -> None:
    admin = sign_in(browser, server)
    link = create_user(admin, server, "nwong", "Nina Wong")
    assert "/set-password/" in link

    newcomer = anonymous(browser)
    newcomer.goto(link)
    expect(newcomer.locator("h1")).to_have_text("Choose your password")
    newcomer.fill("#password", NEW_PASSWORD)
    newcomer.fill("#again", NEW_PASSWORD)
    newcomer.click("button:has-text('Set my password')")
    newcomer.wait_for_url(server["url"] + "/login")
    expect(newcomer.locator(".flash-success")).to_contain_text("password is set")
    newcomer.fill("#username", "nwong")
    newcomer.fill("#password", NEW_PASSWORD)
    newcomer.click("button[type=submit]")
    newcomer.wait_for_url(server["url"] + "/")
    expect(newcomer.locator(".user .name")).to_have_text("Nina Wong")

    again = anonymous(browser)
    again.goto(link)
    expect(again.locator("h1")).to_have_text("This link does not work")

    admin.goto(server["url"] + "/admin/audit")
    admin.fill("#a-user", "nwong")
    admin.click("button:has-text('Filter')")
    rows = admin.locator("table.audit-table tbody tr")
    expect(rows.filter(has_text="Signed in")).to_have_count(1)
    expect(rows.filter(has_text="Created")).to_have_count(1)
    expect(rows.filter(has_text="Password set")).to_have_count(1)
    for page in (admin, newcomer, again):
        page.context.close() if page.context is not admin.context else page.close()


def test_a_user_admin_sees_people_but_not_the_audit_log(browser, server) -> None:
    page = sign_in(browser, server, "hr")
    page.click("nav.nav >> text=Admin")
    expect(page.locator(".admin-tabs a")).to_have_text(["Overview", "Users", "Teams"])
    answer = page.goto(server["url"] + "/admin/audit")
    assert answer is not None and answer.status == 403
    page.close()


def test_the_admin_pages_for_the_docs(browser, server) -> None:
    if not shooting():
        pytest.skip("CRMFORGE_SCREENSHOTS is not set")
    maria = server["maria"].user_id
    for name, path in (("index", "/admin"), ("users", "/admin/users"),
                       ("new-user", "/admin/users/new"), ("teams", "/admin/teams"),
                       ("team", "/admin/teams/1"), ("roles", "/admin/roles"),
                       ("role", "/admin/roles/agent"), ("audit", "/admin/audit"),
                       ("user", f"/admin/users/{maria}")):
        shoot_devices(browser, server, name, server["url"] + path, link_shown=name == "user")
    token = accounts.issue_password_link(server["inst"], admin_actor(server["inst"]),
                                         maria, "test-secret")
    for device, viewport in VIEWPORTS:
        page = anonymous(browser, viewport)
        page.goto(f"{server['url']}/set-password/{token}")
        shoot(page, f"admin-set-password-{device}")
        page.context.close()


def shoot_devices(browser: Browser, server: dict[str, Any], name: str, url: str,
                  link_shown: bool = False) -> None:
    """Save `url` as the admin sees it, desktop and phone (CRMFORGE_SCREENSHOTS=1)."""
    if not shooting():
        return
    for device, viewport in VIEWPORTS:
        page = sign_in(browser, server, "admin", viewport)
        page.goto(url)
        if link_shown:  # the link is shown once: make one for the picture
            page.click("button:has-text('Make a password link')")
        shoot(page, f"admin-{name}-{device}")
        page.close()
