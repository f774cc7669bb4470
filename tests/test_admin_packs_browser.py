"""Issue 15, packs, in a real browser: an admin upgrades a customised pack through a conflict
(the pack renamed a field the admin relabelled: keep mine), reads the migration plan, types
the name of the field a destructive step removes, applies, watches it finish (the job's state
polled from `crm_pack_job`), and finds the upgrade in /admin/audit. The customisations are
shown on their own line, not as a pack; a job whose process ended shows as stopped.
`CRMFORGE_SCREENSHOTS=1` saves the packs page, the conflict, the plan and a stopped job as
docs/screenshots/admin-packs-<page>-<device>.png (docs/admin.md "Packs").
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from browser_support import require_browser, served, sign_in
from conftest import build_instance
from packs_support import DEAL, ship
from support import admin_actor
from test_admin_browser import shoot_devices
from web_support import PASSWORD

from runtime.http.auth import set_password
from runtime.process import migrate, pack_jobs
from runtime.process.setup import installed_packs

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the test extra installs it
    pass

pytestmark = [pytest.mark.browser, pytest.mark.slow]

V2 = """\
entity: deal
label: Deal
fields:
  name: {type: text, label: Name}
  ref: {type: text, label: Code, renamed_from: code}
  notes: {type: longtext, label: Notes}
"""
MINE = "extends: deal\nfields:\n  code:\n    type: text\n    label: Reference\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_browser()
    directory = tmp_path_factory.mktemp("packs")
    custom = directory / "custom"
    (custom / "entities").mkdir(parents=True)
    (custom / "entities" / "deal.yaml").write_text(MINE)
    before = os.environ.get("CRMFORGE_CUSTOM_DIR")
    os.environ["CRMFORGE_CUSTOM_DIR"] = str(custom)
    try:
        pack = ship(directory / "packs", "1.0.0", DEAL)
        inst = build_instance([pack, custom], f"sqlite:///{directory / 'crm.db'}")
        with inst.engine.begin() as conn:  # what `crmforge install` records
            migrate.record(conn, inst.model, inst.now())
        admin = admin_actor(inst)
        set_password(inst, admin.user_id, PASSWORD)
        with inst.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO deal (name, code, legacy, created_at, updated_at, "
                                 "version) VALUES ('Big', 'D-1', 'old', CURRENT_TIMESTAMP, "
                                 "CURRENT_TIMESTAMP, 1)"))
        ship(directory / "packs", "2.0.0", V2)
        with served(inst, directory, dispose=False) as running:
            running.update(custom=custom, engine=inst.engine)
            yield running
        inst.engine.dispose()
    finally:
        if before is None:
            os.environ.pop("CRMFORGE_CUSTOM_DIR", None)
        else:
            os.environ["CRMFORGE_CUSTOM_DIR"] = before


def test_an_admin_upgrades_a_customised_pack_through_a_conflict(browser, server) -> None:
    url = server["url"]
    shoot_devices(browser, server, "packs", url + "/admin/packs")
    page = sign_in(browser, server)
    page.goto(url + "/admin/packs")
    mine = page.locator("#customisations")  # apart from the packs, without a version
    expect(mine).to_contain_text("Your customisations")
    expect(mine).to_contain_text("1 definition file")
    expect(page.locator("#installed-packs")).not_to_contain_text("custom")
    row = page.locator("#installed-packs tr", has_text="sales")
    expect(row).to_contain_text("1.0.0")
    expect(row).to_contain_text("2.0.0")
    row.get_by_role("link", name="Upgrade to 2.0.0").click()

    conflict = page.locator(".conflict")
    expect(conflict).to_have_count(1)
    expect(conflict).to_contain_text("renamed field deal.code to deal.ref")
    expect(conflict).to_contain_text("custom/entities/deal.yaml:3")
    expect(conflict).to_contain_text("sales/entities/deal.yaml:5")
    shoot_devices(browser, server, "packs-conflict", page.url)
    conflict.get_by_label("Keep mine").check()
    page.click("button:has-text('Save my choices')")

    expect(page.locator(".flash-success")).to_contain_text("Resolved")
    plan = page.locator("#migration-plan")
    expect(plan).to_contain_text("rename column deal.code -> deal.ref")
    expect(plan).to_contain_text("remove column deal.legacy")
    shoot_devices(browser, server, "packs-plan", page.url)
    page.click("#apply")  # without typing the name: not sent (the server refuses it too)
    expect(page.locator("#apply-form")).to_be_visible()
    assert installed_packs(server["engine"])["sales"].version == "1.0.0"
    page.get_by_label("Type deal.legacy to allow this step").fill("deal.legacy")
    page.click("#apply")
    expect(page.locator("#pack-done")).to_contain_text("sales 1.0.0 → 2.0.0", timeout=30_000)

    assert installed_packs(server["engine"])["sales"].version == "2.0.0"
    with server["engine"].connect() as conn:
        assert conn.execute(sa.text("SELECT ref FROM deal")).scalar() == "D-1"
    assert "  ref:\n" in (server["custom"] / "entities" / "deal.yaml").read_text()

    page.goto(url + "/e/deal/new")  # the running app serves the new model: my label, renamed
    expect(page.get_by_label("Reference")).to_be_visible()
    page.goto(url + "/admin/audit?kind=pack_upgrade")
    expect(page.locator("table")).to_contain_text("sales 1.0.0 -> 2.0.0")
    page.goto(url + "/admin/packs")
    expect(page.locator("#installed-packs tr", has_text="sales")).to_contain_text("up to date")


def test_a_job_whose_process_ended_shows_as_stopped(browser, server) -> None:
    """A job row left `running` by a process that has ended (a worker restarted mid-job): the
    page says so instead of polling for ever."""
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    inst = server["inst"]
    table = inst.schema.system("pack_job")
    with server["engine"].begin() as conn:
        job_id = conn.execute(table.insert().values(
            action="upgrade", pack="sales", state="running", steps=3,
            moves=[["sales", "2.0.0", "3.0.0"]], host=pack_jobs.HOST, pid=int(ended.stdout),
            started_at=inst.now(), updated_at=inst.now()).returning(table.c.id)).scalar_one()
    url = f"{server['url']}/admin/packs/job/{job_id}"
    shoot_devices(browser, server, "packs-job-stopped", url)
    page = sign_in(browser, server)
    page.goto(url)
    expect(page.locator("#pack-failed")).to_contain_text("stopped before it finished")
    expect(page.locator("#pack-progress")).to_have_count(0)
