"""Issue 14, item 6 in a real browser (Debian's Chromium through Playwright): a director opens
the duplicate accounts, picks a group, keeps the phone number of the record merged away, merges,
lands on the survivor with the contact that linked to the other record, and the other record's
old address leads to the survivor. `CRMFORGE_SCREENSHOTS=1` saves the duplicates and merge
pages, desktop and 390 px, to docs/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import browser_instance, expect, give_passwords, served, shoot_both, sign_in
from support import admin_actor, insert_user

from runtime.core.instance import Actor
from runtime.write import records

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    inst, directory = browser_instance(tmp_path_factory, "merge")
    dora = insert_user(inst, "dora", full_name="Dora Director", roles=["director"],
                       lead_claim_limit=40, open_leads=0)
    give_passwords(inst, dora)
    admin = admin_actor(inst)

    def account(**values: Any) -> dict[str, Any]:
        return records.create(inst, admin, "account", {"region": "london", **values})

    keep = account(name="Northwind Traders", city="Bristol", email="info@northwind.example")
    gone = account(name="NORTHWIND TRADERS", phone="0117 496 0320", city="Bristol",
                   _confirm_duplicates=True)
    account(name="Fabrikam", phone="+44 117 496 0999")
    account(name="Fabrikam Ltd", phone="0117 496 0999", _confirm_duplicates=True)
    contact = records.create(inst, admin, "contact", {
        "first_name": "Ada", "last_name": "Moss", "email": "ada@moss.example",
        "account": gone["id"]})
    with served(inst, directory, dora=dora, keep=keep, gone=gone, contact=contact) as running:
        yield running


def test_a_director_merges_two_accounts(browser, server) -> None:
    keep, gone = server["keep"], server["gone"]
    merge_path = f"/e/account/{keep['id']}/merge?absorb={gone['id']}"
    shoot_both(browser, server, "dora", "/e/account/duplicates", "duplicates")
    shoot_both(browser, server, "dora", merge_path, "merge")
    page = sign_in(browser, server, "dora")
    page.goto(server["url"] + "/e/account/duplicates")
    group = page.locator(".duplicate-group", has_text="Northwind Traders")
    expect(group).to_contain_text("NORTHWIND TRADERS")
    group.get_by_role("link", name="Merge…").click()
    expect(page.locator("h1")).to_contain_text("Merge into Northwind Traders")
    # the survivor has no phone: the default keeps the other record's
    expect(page.locator(f"input[name=keep__phone][value='{gone['id']}']")).to_be_checked()
    page.check(f"input[name=keep__name][value='{keep['id']}']")
    expect(page.locator(".merge-moves")).to_contain_text("1 contacts")
    page.click("button:has-text('Merge 2 records')")
    page.wait_for_url(server["url"] + f"/e/account/{keep['id']}")
    expect(page.locator(".flash-success")).to_contain_text("Merged 1")
    expect(page.locator(".timeline")).to_contain_text(f"#{gone['id']}")
    expect(page.locator("main")).to_contain_text("Ada Moss")
    page.goto(server["url"] + f"/e/account/{gone['id']}")
    assert page.url == server["url"] + f"/e/account/{keep['id']}"
    after = records.get(server["inst"], Actor.system_actor(), "account", keep["id"])
    assert after["phone"] == "0117 496 0320" and after["name"] == "Northwind Traders"
    page.close()
