"""Issue 15, imports, in a real browser (Debian's Chromium through Playwright): an admin
uploads a 10,000-row file with two bad rows, sees them in the dry run with their lines, fixes
the file, uploads it again, runs it, watches the progress bar finish, and finds the import in
/admin/audit. Every page visited is checked with axe. `CRMFORGE_SCREENSHOTS=1` saves the
pages as docs/screenshots/admin-import-<page>-<device>.png (docs/admin.md "Import").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import require_browser, served, shoot, shooting, sign_in
from conftest import build_instance
from support import admin_actor
from test_admin_browser import shoot_devices
from web_support import PASSWORD

from runtime.http.auth import set_password
from runtime.process import import_jobs
from runtime.write import records

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the test extra installs it
    pass

pytestmark = pytest.mark.browser

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROWS = 10_000
BAD_LINES = {5001: "Deal 5000,Acme,lots\n", 9001: "Deal 9000,Nowhere Ltd,90\n"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_browser()
    directory = tmp_path_factory.mktemp("import")
    inst = build_instance([FIXTURES / "core", FIXTURES / "spec"],
                          f"sqlite:///{directory / 'crm.db'}")
    admin = admin_actor(inst)
    set_password(inst, admin.user_id, PASSWORD)
    for name in ("Acme", "Globex"):
        records.create(inst, admin, "account", {"name": name})
    with served(inst, directory, files=directory) as running:
        yield running


def deals(directory: Path, name: str, bad: bool) -> Path:
    """A CSV of ROWS opportunities; with `bad`, two of them cannot be imported."""
    lines = ["Name,Account,Amount\n"]
    for n in range(1, ROWS + 1):
        line = n + 1
        lines.append(BAD_LINES[line] if bad and line in BAD_LINES
                     else f"Deal {n},{'Acme' if n % 2 else 'Globex'},{n * 10}\n")
    path = directory / name
    path.write_text("".join(lines))
    return path


def upload(page: Page, server: dict[str, Any], path: Path) -> None:
    page.goto(server["url"] + "/e/opportunity")
    page.click(".page-header .actions a:has-text('Import')")
    expect(page.locator("#import-entity")).to_have_value("opportunity")
    page.set_input_files("#import-file", str(path))
    page.click("button:has-text('Upload and map columns')")
    expect(page.locator("#import-mapping")).to_be_visible()


def test_an_admin_imports_ten_thousand_rows_after_fixing_two(browser, server) -> None:
    page = sign_in(browser, server)
    upload(page, server, deals(server["files"], "deals.csv", bad=True))
    expect(page.locator("#map-1")).to_have_value("account")
    shoot(page, "admin-import-mapping-desktop")
    page.click("button:has-text('Check (dry run)')")
    expect(page.get_by_role("heading", name="Dry run: nothing was saved")).to_be_visible(
        timeout=60_000)
    expect(page.locator("#rows-read")).to_have_text("10,000")
    expect(page.locator("#rows-rejected")).to_have_text("2")
    problems = page.locator("#import-problems tbody tr")
    expect(problems).to_have_count(2)
    expect(problems.nth(0)).to_contain_text("5001")
    expect(problems.nth(0)).to_contain_text("amount")
    expect(problems.nth(1)).to_contain_text("9001")
    expect(problems.nth(1)).to_contain_text("Nowhere Ltd")
    shoot(page, "admin-import-dry-run-desktop")

    page.click("a:has-text('Upload a fixed file')")
    page.set_input_files("#import-file", str(deals(server["files"], "fixed.csv", False)))
    page.click("button:has-text('Upload and map columns')")
    page.click("button[value=run]")
    bar = page.locator("#import-bar")
    expect(bar).to_be_visible()
    if shooting():  # a picture with some rows done
        expect(page.locator("#import-numbers")).not_to_contain_text(re.compile(r"^0 rows"))
        shoot(page, "admin-import-progress-desktop")
    expect(page.get_by_role("heading", name="Result")).to_be_visible(timeout=120_000)
    expect(page.locator("#rows-created")).to_have_text("10,000")
    expect(page.locator("#rows-rejected")).to_have_text("0")
    shoot(page, "admin-import-result-desktop")

    page.goto(server["url"] + "/admin/audit?kind=import")
    entry = page.locator("tbody tr", has_text="Imported").first
    expect(entry).to_contain_text("fixed.csv")
    expect(entry).to_contain_text("created: 10000")
    page.close()


def test_the_import_pages_for_the_docs(browser, server) -> None:
    if not shooting():
        pytest.skip("CRMFORGE_SCREENSHOTS is not set")
    jobs = import_jobs.recent(server["inst"])
    checked = next(j for j in jobs if j.filename == "deals.csv")
    done = next(j for j in jobs if j.filename == "fixed.csv")
    for name, path in (("upload", "/admin/import"), ("dry-run", f"/admin/import/{checked.id}"),
                       ("result", f"/admin/import/{done.id}")):
        shoot_devices(browser, server, f"import-{name}", server["url"] + path)
