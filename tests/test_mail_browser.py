"""Send e-mail in a real browser (Debian's Chromium through Playwright) to a real SMTP server
(aiosmtpd on 127.0.0.1): open a contact, Send e-mail, pick a template and see the preview
follow (htmx), send, run the worker once; the message arrives and the timeline says sent.
Every page is checked by axe. `CRMFORGE_SCREENSHOTS=1` saves the page, desktop and 390 px,
to docs/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from axe_support import assert_accessible
from browser_support import (
    browser_instance,
    expect,
    give_passwords,
    served,
    shoot,
    shoot_both,
    sign_in,
)
from mail_support import run_worker, smtp_server
from support import admin_actor

from runtime.write import records

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    inst, directory = browser_instance(tmp_path_factory, "mail")
    admin = admin_actor(inst)
    give_passwords(inst, admin)
    ada = records.create(inst, admin, "contact", {
        "salutation": "ms", "first_name": "Ada", "last_name": "Lovelace",
        "email": "ada@example.com", "owner": admin.user_id})
    with smtp_server() as (inbox, url):
        inst.settings.update(MAIL_URL=url, BASE_URL="http://crm.test")
        with served(inst, directory, ada=ada, inbox=inbox) as running:
            yield running


def send_path(server: dict[str, Any]) -> str:
    return f"/e/contact/{server['ada']['id']}/email"


def pick_follow_up(page: Page) -> None:
    page.select_option("#mail-template", "contact_follow_up")
    expect(page.locator("#preview .mail-subject")).to_have_text("Following up, Ada")


def test_send_an_email_from_a_contact(browser, server) -> None:
    shoot_both(browser, server, "admin", send_path(server), "send-email", pick_follow_up)
    page = sign_in(browser, server)
    page.goto(server["url"] + f"/e/contact/{server['ada']['id']}")
    page.get_by_role("link", name="Send e-mail").click()
    page.wait_for_url(server["url"] + send_path(server))
    expect(page.locator("#mail-to")).to_have_value("ada@example.com")
    expect(page.locator("#preview .mail-subject")).to_have_text("Hello Ada")
    pick_follow_up(page)  # htmx: only the preview is fetched again
    expect(page.locator("#preview .mail-body")).to_contain_text("reply to this e-mail")
    assert_accessible(page)
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".flash-success")).to_contain_text(
        "“Following up, Ada” to ada@example.com queued")
    expect(page.locator(".timeline")).to_contain_text(
        "E-mail “Following up, Ada” to ada@example.com: queued.")

    run_worker(server["inst"])
    [mail] = server["inbox"].messages
    assert (mail["To"], mail["Subject"]) == ("ada@example.com", "Following up, Ada")
    page.goto(server["url"] + f"/e/contact/{server['ada']['id']}")
    expect(page.locator(".timeline")).to_contain_text(
        "E-mail “Following up, Ada” to ada@example.com: sent.")
    shoot(page, "desktop-send-email-sent", full_page=False)
    page.close()


def test_a_bad_address_is_answered_on_the_form(browser, server) -> None:
    page = sign_in(browser, server)
    page.goto(server["url"] + send_path(server))
    page.fill("#mail-to", "ada at example")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".form-errors")).to_contain_text("must be an e-mail address")
    expect(page.locator("#mail-to")).to_have_attribute("aria-invalid", "true")
    page.close()
