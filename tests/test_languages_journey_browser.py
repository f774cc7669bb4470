"""The issue's journey in a real browser, as a Chinese and as a Spanish user, on the core pack
with its demo data in their language (`load_demo(..., language=)`): sign in, create a quote
with a validation error, submit it for approval and approve it as the reviewer, search a demo
name by a middle substring (zh) or without its accents (es), export the contact list — the
chrome in the user's language at every step. `CRMFORGE_SCREENSHOTS=1` saves each step at
1366 px and the list at 390 px too (docs/languages.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from browser_support import (
    browser_instance,
    expect,
    give_passwords,
    served,
    shoot,
    shoot_both,
    sign_in,
)
from support import insert_user

from runtime.core.searchindex import fold
from runtime.ops.demo import load_demo
from runtime.write import records

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TEXTS = {  # what the pages say in each language (catalogs and the core pack's labels)
    "zh": {"home": "首页", "create": "创建", "who_for": "请注明报价对象", "created": "已创建",
           "submit": "提交审批", "waiting": "等待审批", "approve": "批准", "approved": "已批准",
           "export": "导出 CSV", "rep": ("zhang.wei", "张伟"), "reviewer": ("li.na", "李娜")},
    "es": {"home": "Inicio", "create": "Crear", "who_for": "Indique para quién es el presupuesto",
           "created": "creado", "submit": "Enviar a aprobación",
           "waiting": "Esperando la aprobación",
           "approve": "Aprobar", "approved": "Aprobado", "export": "Exportar CSV",
           "rep": ("jose.nunez", "José Núñez"), "reviewer": ("maria.pena", "María Peña")},
}
# chrome that must not show in English on a Chinese or Spanish page
ENGLISH = ("Sign out", "Export CSV", "Save changes", "Workflow", "Approve", "Reject", "Create",
           "needs approval", "Waiting for approval", "Quotes", "Contacts", "Home", "→ Draft",
           "→ Sent", "\nMore\n", "Quote review", "Reviewer", "skipped")


@pytest.fixture(scope="module", params=["zh", "es"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[dict[str, Any]]:
    language = request.param
    inst, directory = browser_instance(tmp_path_factory, f"journey-{language}")
    result = load_demo(inst, ["core"], language=language)
    assert not result.problems, result.problems[:3]
    texts = TEXTS[language]
    with inst.engine.connect() as conn:  # the rep sells beside the owner of the first account
        team = conn.execute(sa.text("select u.team from account a join crm_user u "
                                    "on u.id = a.owner order by a.id")).scalar()
    rep = insert_user(inst, texts["rep"][0], full_name=texts["rep"][1], roles=["sales_rep"],
                      team=team, language=language)
    reviewer = insert_user(inst, texts["reviewer"][0], full_name=texts["reviewer"][1],
                           roles=["sales_manager"], language=language)
    give_passwords(inst, rep, reviewer)
    with served(inst, directory, language=language, texts=texts, rep=rep,
                reviewer=reviewer) as running:
        yield running


def _chrome_in(page: Any, server: dict[str, Any]) -> None:
    """The page is in the server's language: `<html lang>`, the sidebar, no English chrome."""
    expect(page.locator("html")).to_have_attribute("lang", server["language"])
    expect(page.locator(".sidebar")).to_contain_text(server["texts"]["home"])
    text = page.locator("body").inner_text()
    if page.locator("#timeline").count():  # the history keeps the words written at the time
        text = text.replace(page.locator("#timeline").inner_text(), "")
    left = [text[max(0, text.index(word) - 60):text.index(word) + 60] for word in ENGLISH
            if word in text]
    assert not left, f"English on a {server['language']} page: {left}"


def _one(server: dict[str, Any], sql: str) -> Any:
    with server["inst"].engine.connect() as conn:
        return conn.execute(sa.text(sql)).first()


def _shot(page: Any, server: dict[str, Any], step: str) -> None:
    shoot(page, f"desktop-journey-{server['language']}-{step}")


def test_the_journey_in_the_users_language(browser, server) -> None:
    texts, rep = server["texts"], server["rep"]
    page = sign_in(browser, server, rep.username)
    _chrome_in(page, server)
    _shot(page, server, "1-home")

    # a quote for nobody: the pack's validation message, in the language
    page.goto(server["url"] + "/e/quote/new")
    page.click(f"button[type=submit]:has-text('{texts['create']}')")
    expect(page.locator(".form-errors")).to_contain_text(texts["who_for"])
    _chrome_in(page, server)
    _shot(page, server, "2-validation-error")

    account_id, account = _one(server, "select id, name from account order by id")
    contact = _one(server, "select first_name, last_name from contact "
                           f"where account = {account_id} order by id")
    page.goto(server["url"] + "/e/quote/new")
    _pick(page, "account", account, account)
    _pick(page, "contact", f"{contact[0]} {contact[1]}", contact[0])
    _pick(page, "reviewer", texts["reviewer"][1], texts["reviewer"][1])
    page.click(f"button[type=submit]:has-text('{texts['create']}')")
    expect(page.locator(".flash-success")).to_contain_text(texts["created"])
    expect(page.locator("h1")).to_contain_text(account)
    quote_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    product = _one(server, "select id from product where active = 1 order by id")
    records.create(server["inst"], rep, "quote_line", {"quote": quote_id, "product": product[0],
                                                        "quantity": "2"})

    # submitted for approval, then approved by the reviewer
    page.reload()
    page.locator("details.transition summary", has_text=texts["submit"]).click()
    page.locator("form[action$='/transitions/submit'] button[type=submit]").click()
    expect(page.locator(".workflow-note")).to_contain_text(texts["waiting"])
    _chrome_in(page, server)
    _shot(page, server, "3-waiting-for-approval")
    page.close()
    page = sign_in(browser, server, server["reviewer"].username)
    page.goto(server["url"] + f"/e/quote/{quote_id}")
    page.locator(".approval-form button.btn-primary", has_text=texts["approve"]).click()
    expect(page.locator(".state-steps li.current")).to_have_text(texts["approved"])
    _chrome_in(page, server)
    _shot(page, server, "4-approved")
    page.close()

    page = sign_in(browser, server, rep.username)
    _search(page, server)
    _export(page, server)
    page.close()


def _pick(page: Any, field: str, typed: str, shown: str) -> None:
    """Type into a link picker and choose the first option that shows `shown`."""
    page.fill(f"#f-{field}", typed)
    page.locator(f"#f-{field}-results .picker-option[data-id]", has_text=shown).first.click()
    expect(page.locator(f"#f-{field}-results .picker-option")).to_have_count(0)


def _search(page: Any, server: dict[str, Any]) -> None:
    """zh: an account by a middle part of its name; es: a contact without the accents."""
    if server["language"] == "zh":
        name = _one(server, "select name from account order by id")[0]
        query, found = name[2:6], name
    else:
        with server["inst"].engine.connect() as conn:  # a José with an accent in his surname
            first, last = next(row for row in conn.execute(sa.text(
                "select first_name, last_name from contact where first_name = 'José' "
                "order by id")) if not row[1].isascii())
        query, found = f"{fold(first)} {fold(last)}".title(), f"{first} {last}"
    page.fill("#global-q", query)
    page.press("#global-q", "Enter")
    expect(page.locator(".result-group").first).to_contain_text(found)
    _chrome_in(page, server)
    _shot(page, server, "5-search")


def _export(page: Any, server: dict[str, Any]) -> None:
    page.goto(server["url"] + "/e/contact")
    _chrome_in(page, server)
    with page.expect_download() as download:
        page.locator("a", has_text=server["texts"]["export"]).click()
    data = Path(download.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8
    first = _one(server, "select first_name from contact order by id")[0]
    assert first in data.decode("utf-8-sig")
    shoot_both(browser=page.context.browser, server=server, username=server["rep"].username,
               path="/e/contact", name=f"journey-{server['language']}-6-list")
