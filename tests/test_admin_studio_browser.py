"""The studio in a real browser (Debian's Chromium through Playwright), on an instance installed
by `crmforge install` and served by TWO apps on two ports — two processes' worth of model, each
with its own model watch — on one database: the admin adds a field in the studio on the first,
sees the live diagnostics of a bad edit, applies; an agent signed in in a second browser context
on the second app sees the new field on the record form without any restart. Every page is
checked with axe. `CRMFORGE_SCREENSHOTS=1` saves the studio pages, desktop and 390 px, as
docs/screenshots/admin-studio-*-<device>.png (docs/admin.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from axe_support import watch
from browser_support import DESKTOP, VIEWPORTS, require_browser, served, shoot, shooting
from support import insert_user, write_pack
from web_support import PASSWORD

from runtime.http.app import create_app
from runtime.http.auth import set_password
from runtime.http.current import EXTENSION
from runtime.ops.cli import main
from runtime.write import records

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # pragma: no cover - the test extra installs it
    pass

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LEAD = """\
entity: lead
label: Lead
title_field: name
fields:
  name: {type: text, required: true}
  stage: {type: choice, options: {new: New, won: Won, lost: Lost}}
  amount: {type: money}
  notes: {type: longtext}
views:
  list:
    columns: [name, stage, amount]
  form:
    sections:
      - {label: Lead, fields: [name, stage, amount], columns: 2}
permissions:
  agent: {read: true, create: true, update: true, delete: false}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_browser()
    directory = tmp_path_factory.mktemp("studio")
    pack = write_pack(directory / "packs", {
        "entities/lead.yaml": LEAD, "roles.yaml": "roles:\n  agent: {label: Agent}\n"},
        name="sales")
    url = f"sqlite:///{directory / 'crm.db'}"
    with pytest.MonkeyPatch.context() as env, ExitStack() as stack:
        env.chdir(directory)  # the pages name files relative to the working directory
        env.setenv("CRMFORGE_CUSTOM_DIR", str(directory / "custom"))
        assert main(["install", str(pack), "--database-url", url]) == 0
        apps = [create_app({"DATABASE_URL": url, "SECRET_KEY": "s" * 32,
                            "INSTANCE_DIR": str(directory)}) for _ in range(2)]
        inst = apps[0].extensions[EXTENSION]
        admin = insert_user(inst, "admin", is_admin=True, full_name="Ada Admin")
        agent = insert_user(inst, "rita", roles=["agent"], full_name="Rita Rep")
        for person in (admin, agent):
            set_password(inst, person.user_id, PASSWORD)
        for name, stage, amount in (("Acme renewal", "new", "1200"), ("Globex pilot", "won",
                                                                      "5400")):
            records.create(inst, admin, "lead", {"name": name, "stage": stage,
                                                 "amount": amount})
        first, second = (stack.enter_context(served(None, directory, app=a)) for a in apps)
        yield {"url": first["url"], "other": second["url"], "pack": pack}
        for a in apps:
            a.extensions[EXTENSION].engine.dispose()


def sign_in(browser: Browser, url: str, username: str, viewport: dict | None = None) -> Page:
    """A page in a browser context of its own, signed in as `username` at `url`."""
    context = browser.new_context(viewport=viewport or DESKTOP)
    page = watch(context.new_page())
    page.set_default_timeout(10_000)
    page.goto(url + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    return page


def test_a_field_added_in_the_studio_is_on_another_users_form_at_once(browser, server) -> None:
    agent = sign_in(browser, server["other"], "rita")  # signed in before the change
    agent.goto(server["other"] + "/e/lead/new")
    expect(agent.locator("#f-source")).to_have_count(0)

    admin = sign_in(browser, server["url"], "admin")
    admin.goto(server["url"] + "/admin")
    admin.click(".admin-tabs >> text=Studio")
    admin.click("table.studio-entities >> text=Lead")
    expect(admin.locator("h1")).to_contain_text("Lead")
    expect(admin.locator("#field-name .studio-place")).to_contain_text(
        "packs/sales/entities/lead.yaml:5:3")

    admin.fill("#studio-text", "extends: lead\nfields:\n  source: {type: nope}\n")
    diagnostic = admin.locator("#studio-diagnostics .diagnostic")
    expect(diagnostic).to_contain_text("E104")
    expect(diagnostic).to_contain_text("custom/entities/lead.yaml:3:18")

    admin.fill("#new-name", "source")
    admin.fill("#new-label", "Lead source")
    admin.select_option("#new-type", "choice")
    admin.fill("#new-options", "web: Website\nfair: Trade fair")
    admin.click(".studio-change >> button:has-text('Preview')")
    expect(admin.locator("h1")).to_contain_text("add field source")
    expect(admin.locator(".studio-list-preview")).to_contain_text("Acme renewal")
    expect(admin.locator(".studio-form-preview #f-source")).to_have_count(1)
    expect(admin.locator("#migration-plan")).to_contain_text("lead.source")
    admin.click("button:has-text('Apply')")
    expect(admin.locator(".flash-success")).to_contain_text("Version 1 applied")
    expect(admin.locator(".studio-version")).to_have_count(1)

    # Another process picks the new model up on its next look at crm_model (at most once a
    # second; a request that comes while another thread is reopening gets the old one).
    started = time.monotonic()
    while True:
        agent.goto(server["other"] + "/e/lead/new")
        if agent.locator("#f-source").count() or time.monotonic() - started > 5:
            break
        time.sleep(0.25)
    expect(agent.locator("#f-source")).to_have_count(1)
    assert time.monotonic() - started < 5
    agent.select_option("#f-source", "fair")
    agent.fill("#f-name", "Initech")
    agent.click("button:has-text('Create')")
    expect(agent.locator("body")).to_contain_text("Trade fair")
    for page in (admin, agent):
        page.context.close()


def test_the_studio_pages_for_the_docs(browser, server) -> None:
    if not shooting():
        pytest.skip("CRMFORGE_SCREENSHOTS is not set")
    for device, viewport in VIEWPORTS:
        page = sign_in(browser, server["url"], "admin", viewport)
        page.goto(server["url"] + "/admin/studio")
        shoot(page, f"admin-studio-{device}")
        page.goto(server["url"] + "/admin/studio/lead")
        page.fill("#studio-text", "extends: lead\nfields:\n  budget: {type: money, requird: 1}\n")
        expect(page.locator("#studio-diagnostics .diagnostic").first).to_be_visible()
        shoot(page, f"admin-studio-entity-{device}")
        page.goto(server["url"] + "/admin/studio/lead")
        page.click("summary:has-text('Change a label')")
        page.fill("#label-text", "Phase")
        page.select_option("#label-field", "stage")
        page.click("details:has(#label-text) >> button:has-text('Preview')")
        expect(page.locator("#migration-plan")).to_be_visible()
        shoot(page, f"admin-studio-preview-{device}")
        page.goto(server["url"] + "/admin/studio/lead/history")
        shoot(page, f"admin-studio-history-{device}")
        page.context.close()
