"""Issue 18, item 5 in a real browser (Debian's Chromium through Playwright): an admin finds a
webhook delivery the receiver answered with a 500 on /admin/webhooks, presses "Send again",
and sees it delivered by the worker running beside the server (a `Ticker`). The receiver is a
real HTTP server on 127.0.0.1 that checks the signature. `CRMFORGE_SCREENSHOTS=1` saves the
page, desktop and 390 px, as docs/screenshots/{desktop,phone}-admin-webhooks.png.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import require_browser, served, shoot_both, sign_in
from conftest import build_instance
from support import admin_actor, write_pack
from test_webhooks import HOOKS, NOTE, SECRET, TICKET, receiving
from web_support import PASSWORD

from runtime.http.auth import set_password
from runtime.ops.worker import Ticker
from runtime.write import records

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the test extra installs it
    pass

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_browser()
    directory = tmp_path_factory.mktemp("webhooks")
    with pytest.MonkeyPatch.context() as env, receiving() as receiver:
        env.setenv("CRM_TEST_HOOK_SECRET", SECRET)
        root = write_pack(directory / "packs", {
            "entities/ticket.yaml": TICKET, "entities/note.yaml": NOTE,
            "webhooks/hooks.yaml": HOOKS.replace("{url}", receiver.url)})
        inst = build_instance([root], f"sqlite:///{directory / 'crm.db'}")
        set_password(inst, admin_actor(inst).user_id, PASSWORD)
        ticker = Ticker(lambda: inst, interval=0.3).start()
        try:
            with served(inst, directory, receiver=receiver) as running:
                yield running
        finally:
            ticker.stop()


def delivery_row(page: Page, number: int) -> Any:
    return page.locator(f"#delivery-{number}")


def wait_for_status(page: Page, number: int, status: str) -> None:
    """Reload until delivery `number` shows `status` (the worker ticks every 0.3 s)."""
    for _ in range(40):
        badge = delivery_row(page, number).locator(".badge")
        if badge.count() and badge.inner_text() == status:
            return
        time.sleep(0.25)
        page.reload()
    expect(delivery_row(page, number).locator(".badge")).to_have_text(status)


def test_a_failed_delivery_is_sent_again_and_delivered(browser, server):
    inst, receiver = server["inst"], server["receiver"]
    receiver.plan = [500]
    made = records.create(inst, admin_actor(inst), "ticket", {"subject": "Printer jam"})
    page = sign_in(browser, server)
    page.goto(server["url"] + "/admin")
    page.click("text=Webhooks")
    expect(page.locator("h1")).to_have_text("Webhooks")
    wait_for_status(page, 1, "retrying")
    row = delivery_row(page, 1)
    expect(row).to_contain_text("500")
    expect(row).to_contain_text(f"#{made['id']}")
    row.get_by_role("button", name="Send delivery 1 again").click()
    expect(page.locator(".flash-success")).to_contain_text("Delivery #1 is queued again")
    wait_for_status(page, 1, "delivered")
    expect(delivery_row(page, 1)).to_contain_text("200")
    assert [g["verified"] for g in receiver.got] == [True, True]
    assert receiver.got[1]["body"]["record"]["subject"] == "Printer jam"

    receiver.plan = [502]  # a second delivery that fails, for the pictures
    records.create(inst, admin_actor(inst), "ticket", {"subject": "Screen flickers"})
    wait_for_status(page, 2, "retrying")
    shoot_both(browser, server, "admin", "/admin/webhooks", "admin-webhooks")
