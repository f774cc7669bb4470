"""The pages once left in English, in a real browser (Debian's Chromium through Playwright): an
administrator whose language is Chinese, and one whose language is Spanish, open the admin
pages, the duplicate accounts, a merge and the workspace chooser, and no English chrome is left;
the Chinese home page shows its dashboard's description in Chinese, its stage names in Chinese,
and draws the empty-widget icon (an SVG, not a font glyph some fonts lack). Every page is checked
with axe (`browser_support`); `CRMFORGE_SCREENSHOTS=1` saves each, desktop and 390 px, to
docs/screenshots/ (`lang-<page>-<language>`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_support import watch
from browser_support import (
    VIEWPORTS,
    browser_instance,
    expect,
    give_passwords,
    served,
    shoot,
    shoot_both,
    sign_in,
)
from support import admin_actor, insert_user

from runtime.http.workspaces import Site, chooser_app
from runtime.write import records

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# English chrome each page had before it was marked for translation
ENGLISH = {
    "admin": ["Administration", "Overview", "Audit log", "Create users"],
    "users": ["Search users", "New user", "Username", "Active users", "Status"],
    "user": ["Make a password link", "No API tokens.", "Away and delegate", "Save changes",
             "Deactivate"],
    "teams": ["New team", "No teams yet", "Manager", "Members"],
    "audit": ["Export CSV", "Any kind", "Record #", "Filter", "Newest first"],
    "roles": ["What it is for", "Inherits", "Entities it reads"],
    "duplicates": ["Duplicate accounts", "Records that the duplicate rules", "Merge…", "Record"],
    "merge": ["Merge into", "Keeps:", "Keep this one instead", "What moves to",
              "Nothing else links"],
    "workspaces": ["Choose a workspace", "Each workspace has its own users"],
}
# a word of each translation the page must show
WORDS = {"zh": {"admin": "管理", "users": "搜索用户", "user": "生成密码链接", "teams": "新建团队",
                "audit": "任意类型", "roles": "可读实体", "duplicates": "重复的客户",
                "merge": "合并到", "workspaces": "选择工作区"},
         "es": {"admin": "Administración", "users": "Buscar usuarios",
                "user": "Crear un enlace de contraseña", "teams": "Nuevo equipo",
                "audit": "Cualquier tipo", "roles": "Entidades que lee",
                "duplicates": "Registros que las reglas de duplicados",
                "merge": "Fusionar en", "workspaces": "Elija un espacio de trabajo"}}
LOCALES = {"zh": "zh-CN", "es": "es-ES"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    inst, directory = browser_instance(tmp_path_factory, "language_pages")
    people = {
        "zh": insert_user(inst, "wfang", full_name="王芳", is_admin=True, language="zh",
                          roles=["sales_manager"], lead_claim_limit=40, open_leads=0),
        "es": insert_user(inst, "lmartin", full_name="Lucía Martín", is_admin=True,
                          language="es", roles=["sales_manager"], lead_claim_limit=40,
                          open_leads=0),
    }
    give_passwords(inst, *people.values())
    admin = admin_actor(inst)
    keep = records.create(inst, admin, "account", {"name": "Northwind Traders",
                                                   "region": "london", "city": "Bristol"})
    gone = records.create(inst, admin, "account", {
        "name": "NORTHWIND TRADERS", "region": "london", "phone": "0117 496 0320",
        "_confirm_duplicates": True})
    records.create(inst, admin, "opportunity", {
        "name": "华南区扩容", "account": keep["id"], "amount": "1234.56",
        "expected_close": inst.today().isoformat(), "owner": people["zh"].user_id})
    chooser = chooser_app(lambda: [Site("hotel", "Hotel Sol", {}, Path(directory)),
                                   Site("bank", "Banco Norte", {}, Path(directory))])
    with served(inst, directory, keep=keep, gone=gone, **people) as running, \
            served(None, directory, app=chooser) as outside:
        yield {**running, "chooser": outside["url"]}


def _pages(server: dict[str, Any], language: str) -> dict[str, str]:
    keep, gone = server["keep"], server["gone"]
    return {"admin": "/admin", "users": "/admin/users",
            "user": f"/admin/users/{server[language].user_id}", "teams": "/admin/teams",
            "audit": "/admin/audit", "roles": "/admin/roles",
            "duplicates": "/e/account/duplicates",
            "merge": f"/e/account/{keep['id']}/merge?absorb={gone['id']}"}


def _no_english(text: str, page: str, language: str) -> None:
    assert WORDS[language][page] in text, (language, page, text[:400])
    left = [word for word in ENGLISH[page] if word in text]
    assert not left, (language, page, left)


@pytest.mark.parametrize("language", ["zh", "es"])
def test_the_pages_once_in_english_speak_the_users_language(browser, server,
                                                             language: str) -> None:
    user = server[language]
    page = sign_in(browser, server, user.username)
    expect(page.locator("html")).to_have_attribute("lang", language)
    for name, path in _pages(server, language).items():
        page.goto(server["url"] + path)
        _no_english(page.locator("main").text_content() or "", name, language)
        shoot_both(browser, server, user.username, path, f"lang-{name}-{language}")
    page.close()


@pytest.mark.parametrize("language", ["zh", "es"])
def test_the_workspace_chooser_follows_the_browser(browser, server, language: str) -> None:
    for device, viewport in VIEWPORTS:
        page = watch(browser.new_page(viewport=viewport, locale=LOCALES[language]))
        page.goto(server["chooser"] + "/")
        expect(page.locator("html")).to_have_attribute("lang", language)
        _no_english(page.locator("main").text_content() or "", "workspaces", language)
        expect(page.locator(".workspace-list")).to_contain_text("Banco Norte")
        shoot(page, f"{device}-lang-workspaces-{language}")
        page.close()


def test_the_chinese_home_page_is_chinese_and_draws_its_icons(browser, server) -> None:
    shoot_both(browser, server, "wfang", "/", "lang-home-zh")
    page = sign_in(browser, server, "wfang")
    board = page.locator("#dashboards")
    expect(board).to_contain_text("线索、商机管道以及今天到期的跟进。")  # the description
    expect(board).to_contain_text("挖掘")  # the stage of the deal, in the pipeline chart
    text = board.inner_text()
    for english in ("Leads, pipeline", "Prospecting", "Stage", "Nothing here"):
        assert english not in text, english
    icons = page.locator(".widget .empty svg.empty-icon")
    assert icons.count() >= 1
    box = icons.first.bounding_box()
    assert box is not None and box["width"] >= 20 and box["height"] >= 20
    assert "🎉" not in text
    page.close()
