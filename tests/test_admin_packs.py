"""`/admin/packs` through the Flask test client (docs/admin.md "Packs"), on SQLite and
PostgreSQL: who may open it, CSRF, the typed name a destructive step needs (checked on the
server), a plan whose model changed since it was shown, bad input answered with a clear
400/404, the instance's customisations shown apart from the packs, and the jobs kept in
`crm_pack_job` — so that any process answers the progress poll, and a job whose process is gone
shows as failed instead of running for ever."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from packs_support import DEAL, ship
from support import admin_actor, insert_user
from web_support import make_app, sign_in, token_of

from runtime.core.instance import Instance
from runtime.process import migrate, pack_jobs
from runtime.process.setup import installed_packs, open_instance

V2 = """\
entity: deal
label: Deal
fields:
  name: {type: text, label: Name}
  ref: {type: text, label: Code, renamed_from: code}
"""
MINE = "extends: deal\nfields:\n  region: {type: text, label: Region}\n"
UPGRADE = "/admin/packs/plan?action=upgrade&pack=sales"


@pytest.fixture
def world(make_instance: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> dict[str, Any]:
    """Pack `sales` 1.0.0 installed with a customisation and one deal; 2.0.0 on disk, which
    renames `code` and removes `legacy` (destructive)."""
    custom = tmp_path / "custom"
    (custom / "entities").mkdir(parents=True)
    (custom / "entities" / "deal.yaml").write_text(MINE)
    monkeypatch.setenv("CRMFORGE_CUSTOM_DIR", str(custom))
    pack = ship(tmp_path / "packs", "1.0.0", DEAL)
    inst = make_instance([pack, custom])
    with inst.engine.begin() as conn:  # what `crmforge install` records
        migrate.record(conn, inst.model, inst.now())
        conn.execute(sa.text("INSERT INTO deal (name, code, legacy, region, created_at, "
                             "updated_at, version) VALUES ('Big', 'D-1', 'old', 'North', "
                             "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"))
    ship(tmp_path / "packs", "2.0.0", V2)
    app = make_app(inst, tmp_path, WTF_CSRF_ENABLED=True)
    client = app.test_client()
    sign_in(client, inst, admin_actor(inst))
    return {"inst": inst, "app": app, "client": client, "tmp": tmp_path, "custom": custom}


def text(response: Any) -> str:
    return unescape(response.get_data(as_text=True))


def plan_form(client: Any) -> dict[str, str]:
    """The hidden fields of the plan page's apply form (CSRF token and digest included)."""
    html = client.get(UPGRADE).get_data(as_text=True)
    form = html[html.index('id="apply-form"'):]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def columns(inst: Instance) -> set[str]:
    with inst.engine.connect() as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns("deal")}


def version(inst: Instance) -> str:
    return installed_packs(inst.engine)["sales"].version


def finish(client: Any, location: str) -> str:
    """Poll the job's progress until it is over (as htmx does); the job page then."""
    job_id = int(location.rstrip("/").rsplit("/", 1)[1])
    for _ in range(600):
        answer = client.get(f"/admin/packs/job/{job_id}/progress")
        assert answer.status_code == 200
        if answer.headers.get("HX-Refresh"):
            return text(client.get(f"/admin/packs/job/{job_id}"))
        time.sleep(0.05)
    raise AssertionError(f"pack job {job_id} did not finish")


# -- the happy path, data moved -------------------------------------------------------------

def test_upgrade_with_the_typed_name_moves_the_data(world: dict[str, Any]) -> None:
    client, inst = world["client"], world["inst"]
    form = plan_form(client)
    answer = client.post("/admin/packs/apply", data={**form, "confirm-0": "deal.legacy"})
    assert answer.status_code == 302, text(answer)[:500]
    page = finish(client, answer.headers["Location"])
    assert 'id="pack-done"' in page and "sales 1.0.0 → 2.0.0" in page
    assert version(inst) == "2.0.0"
    with inst.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT ref, region FROM deal")).one() == ("D-1", "North")
    assert "legacy" not in columns(inst)
    assert any(c.startswith(migrate.ASIDE_PREFIX) for c in columns(inst))  # kept aside
    table = inst.schema.system("pack_job")
    with inst.engine.connect() as conn:
        row = conn.execute(sa.select(table)).mappings().one()
    assert (row["state"], row["action"], row["pack"]) == ("done", "upgrade", "sales")
    assert row["moves"] == [["sales", "1.0.0", "2.0.0"]]
    listing = text(client.get("/admin/packs"))
    assert "up to date" in listing


# -- refused: rights, CSRF, the typed name, a stale plan ------------------------------------

def test_only_admins_reach_any_packs_route(world: dict[str, Any]) -> None:
    inst, app = world["inst"], world["app"]
    for roles in ((), ("user_admin",)):
        client = app.test_client()
        sign_in(client, inst, insert_user(inst, f"someone{len(roles)}", roles=roles))
        token = token_of(client, "/")
        for path in ("/admin/packs", UPGRADE, "/admin/packs/job/1",
                     "/admin/packs/job/1/progress"):
            assert client.get(path).status_code == 403, path
        for path in ("/admin/packs/resolve", "/admin/packs/apply"):
            answer = client.post(path, data={"csrf_token": token, "action": "upgrade",
                                             "pack": "sales", "confirm-0": "deal.legacy"})
            assert answer.status_code == 403, path
    assert version(inst) == "1.0.0"


def test_a_post_without_the_csrf_token_is_refused(world: dict[str, Any]) -> None:
    client, inst = world["client"], world["inst"]
    form = plan_form(client)
    del form["csrf_token"]
    answer = client.post("/admin/packs/apply", data={**form, "confirm-0": "deal.legacy"})
    assert answer.status_code == 400
    assert "The form has expired or did not come from this site" in text(answer)
    assert version(inst) == "1.0.0" and "legacy" in columns(inst)


@pytest.mark.parametrize("typed", ["", "legacy", "deal.code", "DEAL.LEGACY"])
def test_a_destructive_step_without_its_typed_name_changes_nothing(
        world: dict[str, Any], typed: str) -> None:
    client, inst = world["client"], world["inst"]
    answer = client.post("/admin/packs/apply", data={**plan_form(client), "confirm-0": typed})
    assert answer.status_code == 302 and "/admin/packs/plan" in answer.headers["Location"]
    shown = text(client.get(answer.headers["Location"]))
    assert "Type the name of each destructive step to allow it: deal.legacy" in shown
    assert version(inst) == "1.0.0"
    assert {"code", "legacy"} <= columns(inst)
    with inst.engine.connect() as conn:
        assert not conn.execute(sa.text("SELECT count(*) FROM crm_pack_job")).scalar()


def test_a_plan_whose_model_changed_is_shown_again(world: dict[str, Any]) -> None:
    client, inst = world["client"], world["inst"]
    form = plan_form(client)
    # meanwhile the customisation gains a field: the plan shown no longer says it all
    (world["custom"] / "entities" / "deal.yaml").write_text(
        MINE + "  stage: {type: text, label: Stage}\n")
    answer = client.post("/admin/packs/apply", data={**form, "confirm-0": "deal.legacy"})
    assert answer.status_code == 302 and "/admin/packs/plan" in answer.headers["Location"]
    shown = text(client.get(answer.headers["Location"]))
    assert "The plan changed since it was shown: check it again." in shown
    assert "deal.stage" in shown  # the new plan, to check again
    assert version(inst) == "1.0.0" and "stage" not in columns(inst)
    answer = client.post("/admin/packs/apply", data={**plan_form(client),
                                                     "confirm-0": "deal.legacy"})
    finish(client, answer.headers["Location"])
    assert version(inst) == "2.0.0" and "stage" in columns(inst)


# -- bad input: a clear 400/404 -------------------------------------------------------------

@pytest.mark.parametrize(("path", "status", "says"), [
    ("/admin/packs/plan?action=upgrade&pack=nope", 404, "Pack nope is not installed."),
    ("/admin/packs/plan?action=install&pack=nope", 404, "There is no pack nope on disk."),
    ("/admin/packs/plan?action=install&pack=../../etc", 404, "There is no pack ../../etc"),
    ("/admin/packs/plan?action=upgrade&pack=custom", 404, "Your customisations are not a pack"),
    ("/admin/packs/plan?action=install&pack=custom", 404, "Your customisations are not a pack"),
    ("/admin/packs/plan?action=install&pack=sales", 400, "Pack sales is installed already"),
    ("/admin/packs/plan?action=delete&pack=sales", 400, "Choose a pack to install or upgrade"),
    ("/admin/packs/plan", 400, "Choose a pack to install or upgrade"),
    ("/admin/packs/job/999", 404, "There is no pack job 999"),
    ("/admin/packs/job/999/progress", 404, "There is no pack job 999"),
    ("/admin/packs/job/abc", 404, ""),
])
def test_bad_addresses_get_a_clear_page(world: dict[str, Any], path: str, status: int,
                                        says: str) -> None:
    answer = world["client"].get(path)
    assert answer.status_code == status, text(answer)[:500]
    assert says in text(answer)


@pytest.mark.parametrize(("form", "status", "says"), [
    ({"action": "upgrade", "pack": "nope"}, 404, "Pack nope is not installed."),
    ({"action": "upgrade"}, 400, "Choose a pack to install or upgrade"),
    ({"action": "frobnicate", "pack": "sales"}, 400, "Choose a pack to install or upgrade"),
])
def test_bad_forms_get_a_clear_page(world: dict[str, Any], form: dict[str, str], status: int,
                                    says: str) -> None:
    client = world["client"]
    for path in ("/admin/packs/apply", "/admin/packs/resolve"):
        answer = client.post(path, data={**form, "csrf_token": token_of(client, "/admin/packs")})
        assert answer.status_code == status, (path, text(answer)[:500])
        assert says in text(answer)
    assert version(world["inst"]) == "1.0.0"


def test_an_edit_that_is_not_a_definition_is_refused(world: dict[str, Any]) -> None:
    """A conflict settled with "Edit" and text that does not read: 400, the file unchanged."""
    client, custom = world["client"], world["custom"]
    mine = "extends: deal\nfields:\n  code:\n    type: text\n    label: Reference\n"
    (custom / "entities" / "deal.yaml").write_text(mine)
    page = client.get(UPGRADE).get_data(as_text=True)
    assert "renamed field deal.code to deal.ref" in unescape(page)
    answer = client.post("/admin/packs/resolve", data={
        "csrf_token": token_of(client, UPGRADE), "action": "upgrade", "pack": "sales",
        "choice-renamed_field:deal.code": "edit",
        "text-renamed_field:deal.code": "extends: deal\nfields: [oops\n"})
    assert answer.status_code == 400, text(answer)[:500]
    assert "would not read as a definition" in text(answer)
    assert (custom / "entities" / "deal.yaml").read_text() == mine


# -- the list: customisations apart ----------------------------------------------------------

def test_customisations_are_not_a_pack_with_a_version(world: dict[str, Any]) -> None:
    assert "custom" in installed_packs(world["inst"].engine)  # recorded as the implicit pack
    (world["custom"] / ".replaced" / "1" / "entities").mkdir(parents=True)
    (world["custom"] / ".replaced" / "1" / "entities" / "deal.yaml").write_text(MINE)
    html = text(world["client"].get("/admin/packs"))
    installed = html[html.index('id="installed-packs"'):html.index("</table>")]
    assert "sales" in installed and "custom" not in installed and "0.0.0" not in html
    mine = html[html.index('id="customisations"'):]
    mine = mine[:mine.index("</section>")]
    assert "Your customisations" in mine and "1 definition file" in mine
    assert str(world["custom"]) in mine and "Upgrade" not in mine
    available = html[html.index('id="available-title"'):]
    assert "pack=core" in available and "pack=custom" not in available  # not offered either


def test_customisations_in_chinese(world: dict[str, Any]) -> None:
    html = text(world["client"].get("/admin/packs", headers={"Accept-Language": "zh"}))
    assert "你的自定义" in html and "1 个定义文件" in html


# -- jobs in the database ---------------------------------------------------------------------

def test_another_process_answers_the_poll(world: dict[str, Any], database_url: str,
                                          clock: Any, tmp_path: Path) -> None:
    """A job started through one app is followed through another, opened as a gunicorn worker
    opens the instance (its own engine and model), to its end."""
    inst = world["inst"]
    other = open_instance(database_url, check_migrated=False, clock=clock)
    second = make_app(other, tmp_path / "second", WTF_CSRF_ENABLED=True).test_client()
    sign_in(second, other, admin_actor(other))
    release = threading.Event()
    job_id = pack_jobs.start(inst, admin_actor(inst), "upgrade", "sales", 3,
                             [("sales", "1.0.0", "2.0.0")], lambda: [str(release.wait(30))])
    try:
        answer = second.get(f"/admin/packs/job/{job_id}/progress")
        assert answer.status_code == 200 and "Applying 3 steps" in text(answer)
        assert "is being installed or upgraded" in text(second.get("/admin/packs"))
        # one at a time: a second apply while it runs lands on the running job
        first = world["client"]
        busy = first.post("/admin/packs/apply", data={**plan_form(first),
                                                      "confirm-0": "deal.legacy"})
        assert busy.headers["Location"].endswith(f"/admin/packs/job/{job_id}")
        assert "Another install or upgrade is running (sales)" in text(
            first.get(busy.headers["Location"]))
    finally:
        release.set()
    page = finish(second, f"/admin/packs/job/{job_id}")
    assert "sales 1.0.0 → 2.0.0" in page and "True" in page  # the work's notes
    other.engine.dispose()


def test_a_database_from_before_pack_jobs_gets_the_table_first(world: dict[str, Any]) -> None:
    """The upgrade that would create `crm_pack_job` needs it to run: it is made before the
    plan, which then does not list it."""
    client, inst = world["client"], world["inst"]
    with inst.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE crm_pack_job"))
    assert "crm_pack_job" not in text(client.get(UPGRADE))
    with inst.engine.connect() as conn:
        assert sa.inspect(conn).has_table("crm_pack_job")
    answer = client.post("/admin/packs/apply", data={**plan_form(client),
                                                     "confirm-0": "deal.legacy"})
    assert 'id="pack-done"' in finish(client, answer.headers["Location"])
    assert version(inst) == "2.0.0"


def _job_row(inst: Instance, **values: Any) -> int:
    table = inst.schema.system("pack_job")
    row = {"action": "upgrade", "pack": "sales", "state": "running", "steps": 2,
           "moves": [["sales", "1.0.0", "2.0.0"]], "host": pack_jobs.HOST, "pid": 1,
           "started_at": inst.now(), "updated_at": inst.now(), **values}
    with inst.engine.begin() as conn:
        return int(conn.execute(table.insert().values(**row).returning(table.c.id)
                                ).scalar_one())


@pytest.mark.slow  # starts a process, to have the pid of one that has ended
def test_a_job_whose_process_ended_shows_as_failed(world: dict[str, Any]) -> None:
    client, inst = world["client"], world["inst"]
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    job_id = _job_row(inst, pid=int(ended.stdout))
    answer = client.get(f"/admin/packs/job/{job_id}/progress")
    assert answer.headers.get("HX-Refresh") == "true"  # no more polling
    page = text(client.get(f"/admin/packs/job/{job_id}"))
    assert 'id="pack-failed"' in page
    assert "The server process that ran this job stopped before it finished" in page
    assert 'http-equiv="refresh"' not in page
    assert "is being installed or upgraded" not in text(client.get("/admin/packs"))


def test_a_job_on_another_host_is_judged_by_its_heartbeat(world: dict[str, Any],
                                                          clock: Any) -> None:
    client, inst = world["client"], world["inst"]
    job_id = _job_row(inst, host="worker-elsewhere", pid=1)
    answer = client.get(f"/admin/packs/job/{job_id}/progress")
    assert answer.status_code == 200 and "HX-Refresh" not in answer.headers  # still running
    clock.advance(seconds=pack_jobs.STALLED.total_seconds() - 1)
    assert "HX-Refresh" not in client.get(f"/admin/packs/job/{job_id}/progress").headers
    clock.advance(seconds=2)
    assert client.get(f"/admin/packs/job/{job_id}/progress").headers.get("HX-Refresh")
    assert "stopped before it finished" in text(client.get(f"/admin/packs/job/{job_id}"))


def test_the_heartbeat_moves_while_the_job_works(world: dict[str, Any], clock: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    inst = world["inst"]
    monkeypatch.setattr(pack_jobs, "HEARTBEAT", 0.05)
    started = inst.now()
    release = threading.Event()
    job_id = pack_jobs.start(inst, admin_actor(inst), "install", "sales", 1, [],
                             lambda: [str(release.wait(30))])
    clock.advance(minutes=5)
    table = inst.schema.system("pack_job")
    try:
        for _ in range(200):
            with inst.engine.connect() as conn:
                beat = conn.execute(sa.select(table.c.updated_at)
                                    .where(table.c.id == job_id)).scalar_one()
            if beat > started:
                break
            time.sleep(0.02)
        assert beat - started == timedelta(minutes=5)
        job = pack_jobs.get(inst, job_id)
        assert job is not None and job.busy
    finally:
        release.set()


def test_a_failing_job_says_why(world: dict[str, Any]) -> None:
    inst = world["inst"]

    def refused() -> list[str]:
        raise migrate.MigrationRefused([])

    job_id = pack_jobs.start(inst, admin_actor(inst), "upgrade", "sales", 1, [], refused,
                             wait=True)
    page = text(world["client"].get(f"/admin/packs/job/{job_id}"))
    assert 'id="pack-failed"' in page and str(migrate.MigrationRefused([])) in page


def test_an_upgrade_the_database_cannot_follow_is_refused_with_words(
        world: dict[str, Any]) -> None:
    """Version 3.0.0 renames `legacy` away while keeping a field named `legacy`: the plan
    page answers 400 with the reason, never a 500, and nothing changes."""
    ship(world["tmp"] / "packs", "3.0.0", DEAL + "  note: {type: text, renamed_from: legacy}\n")
    answer = world["client"].get(UPGRADE)
    assert answer.status_code == 400, answer.status_code
    assert "cannot rename deal.legacy to deal.note" in text(answer)
    assert version(world["inst"]) == "1.0.0" and "legacy" in columns(world["inst"])
