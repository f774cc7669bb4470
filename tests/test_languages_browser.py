"""docs/languages.md in a real browser (Debian's Chromium through Playwright): a user whose
preference is Chinese sees the chrome in Chinese, switches to Spanish on their own page, and
then sees Spanish words, dates and money. Every page is checked with axe (`browser_support`);
`CRMFORGE_SCREENSHOTS=1` saves the home and a record page in zh and es, desktop and phone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import browser_instance, expect, give_passwords, served, shoot_both, sign_in
from support import admin_actor, insert_user

from runtime.write import records

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    inst, directory = browser_instance(tmp_path_factory, "languages")
    people = {
        "li": insert_user(inst, "lwei", full_name="李伟", roles=["sales_manager"],
                          language="zh", lead_claim_limit=40, open_leads=0),
        "ana": insert_user(inst, "agarcia", full_name="Ana García", roles=["sales_manager"],
                           language="es", lead_claim_limit=40, open_leads=0),
    }
    give_passwords(inst, *people.values())
    admin = admin_actor(inst)
    account = records.create(inst, admin, "account", {"name": "Inmobiliaria Sol",
                                                      "region": "london"})
    deal = records.create(inst, admin, "opportunity", {
        "name": "Oficinas Castellana", "account": account["id"], "amount": "1234.56",
        "expected_close": "2026-12-04", "owner": people["ana"].user_id})
    with served(inst, directory, deal=deal, **people) as running:
        yield running


def test_a_chinese_user_switches_to_spanish(browser, server) -> None:
    li = server["li"]
    page = sign_in(browser, server, li.username)
    expect(page.locator("html")).to_have_attribute("lang", "zh")
    expect(page.locator(".sidebar")).to_contain_text("首页")
    expect(page.locator(".topbar")).to_contain_text("退出登录")
    page.click(".topbar .user a.name")  # the user's own page: language, sign out
    page.select_option("#language", "es")
    page.click("form[action$='/me/language'] button[type=submit]")
    expect(page.locator(".flash-success")).to_contain_text("Idioma guardado: Español.")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    page.goto(server["url"] + f"/e/opportunity/{server['deal']['id']}")
    expect(page.locator(".sidebar")).to_contain_text("Inicio")
    fields = page.locator(".record-layout .card").first
    expect(fields).to_contain_text("4/12/2026")
    expect(fields).to_contain_text("1.234,56 €")
    expect(page.locator("#timeline")).to_contain_text("Actividad")


@pytest.mark.parametrize("who", ["li", "ana"])
def test_screenshots_in_each_language(browser, server, who: str) -> None:
    user = server[who]
    language = {"li": "zh", "ana": "es"}[who]
    users = server["inst"].schema.table("user")
    with server["inst"].engine.begin() as conn:  # the journey above moved li to Spanish
        conn.execute(users.update().where(users.c.id == user.user_id).values(language=language))
    shoot_both(browser, server, user.username, "/", f"home-{language}")
    shoot_both(browser, server, user.username, f"/e/opportunity/{server['deal']['id']}",
               f"record-{language}")
    page = sign_in(browser, server, user.username)
    page.goto(server["url"] + f"/e/opportunity/{server['deal']['id']}")
    expect(page.locator("html")).to_have_attribute("lang", language)
