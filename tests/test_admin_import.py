"""`/admin/import` through the Flask test client on the SPEC pack (docs/admin.md "Import"):
column suggestions, the dry run's bad rows with their lines, a run in its thread, the rejected
rows as CSV, undo keeping a changed record, the audit entry, rights, and broken files answered
with a clear 4xx."""

from __future__ import annotations

import io
import re
import time
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from support import admin_actor, insert_user
from web_support import make_app, sign_in, token_of
from werkzeug.test import EnvironBuilder

from runtime.http.web.attachments import MAX_UPLOAD_BYTES
from runtime.process import import_jobs
from runtime.read.queries import reading
from runtime.write import records

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOOD = "Name,Account,Amount,Colour\nBig deal,Acme,1200,red\nSmall deal,2,30,blue\n"
BAD = GOOD + "Odd deal,Acme,lots,green\nLost deal,Nowhere Ltd,10,\nLast deal,,5,\n"


@pytest.fixture
def world(make_instance: Any, tmp_path: Path) -> dict[str, Any]:
    inst = make_instance([FIXTURES / "core", FIXTURES / "spec"])
    admin = admin_actor(inst)
    records.create(inst, admin, "account", {"name": "Acme"})
    records.create(inst, admin, "account", {"name": "Globex"})
    app = make_app(inst, tmp_path, WTF_CSRF_ENABLED=True)
    client = app.test_client()
    sign_in(client, inst, admin)
    return {"inst": inst, "app": app, "client": client, "admin": admin, "tmp": tmp_path}


def upload(client: Any, content: bytes | str, name: str = "deals.csv",
           entity: str = "opportunity") -> Any:
    data = content.encode() if isinstance(content, str) else content
    return client.post("/admin/import", data={
        "entity": entity, "file": (io.BytesIO(data), name),
        "csrf_token": token_of(client, "/admin/import")}, content_type="multipart/form-data")


def job_id(response: Any) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return int(response.headers["Location"].rsplit("/", 1)[1])


def mapping_of(html: str) -> dict[str, str]:
    """{column: the field selected for it} as the mapping form shows it."""
    rows = re.findall(r'<label for="(map-\d+)">([^<]*)</label>.*?<select id="\1" name="\1">(.*?)'
                      r'</select>', html, re.S)
    return {column: (re.search(r'<option value="([^"]*)" selected', options) or
                     re.match("()", "")).group(1) for _, column, options in rows}


def start(world: dict[str, Any], import_id: int, action: str, **choices: str) -> None:
    client = world["client"]
    page = f"/admin/import/{import_id}"
    html = client.get(page).get_data(as_text=True)
    data = {f"map-{n}": field for n, field in enumerate(mapping_of(html).values())}
    data.update(choices)
    response = client.post(page, data={**data, "action": action,
                                       "csrf_token": token_of(client, page)})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    wait(world, import_id)


def wait(world: dict[str, Any], import_id: int) -> import_jobs.Job:
    for _ in range(300):
        job = import_jobs.get(world["inst"], import_id)
        if not job.busy:
            return job
        time.sleep(0.05)
    raise AssertionError(f"import #{import_id} did not finish")


def names(world: dict[str, Any]) -> list[str]:
    table = world["inst"].schema.table("opportunity")
    with reading(world["inst"], None) as conn:
        return sorted(conn.execute(table.select().with_only_columns(table.c.name)).scalars())


# -- mapping, dry run, run ----------------------------------------------------------------------

def test_columns_are_suggested_by_name_and_label_and_unknown_ones_ignored(world) -> None:
    import_id = job_id(upload(world["client"], GOOD))
    html = world["client"].get(f"/admin/import/{import_id}").get_data(as_text=True)
    assert mapping_of(html) == {"Name": "name", "Account": "account", "Amount": "amount",
                                "Colour": ""}
    assert "Account (id or Name)" in html  # a link takes the id or the title


def test_the_dry_run_lists_every_bad_row_with_its_line_and_keeps_nothing(world) -> None:
    import_id = job_id(upload(world["client"], BAD))
    start(world, import_id, "check")
    job = import_jobs.get(world["inst"], import_id)
    assert job.state == "checked" and job.rows_done == 5 and job.rejected == 2
    assert [line for line, _ in job.problems] == [4, 5]
    html = world["client"].get(f"/admin/import/{import_id}").get_data(as_text=True)
    assert "Nowhere Ltd" in html and "Dry run: nothing was saved" in html
    assert 'id="rows-rejected">2<' in html
    assert names(world) == []


def test_a_run_creates_the_good_rows_offers_the_rejected_ones_and_is_audited(world) -> None:
    client = world["client"]
    import_id = job_id(upload(client, BAD))
    start(world, import_id, "run", **{"map-3": ""})
    job = import_jobs.get(world["inst"], import_id)
    assert (job.state, job.created, job.rejected) == ("done", 3, 2)
    assert names(world) == ["Big deal", "Last deal", "Small deal"]
    rejected = client.get(f"/admin/import/{import_id}/rejected.csv")
    assert rejected.status_code == 200 and rejected.mimetype == "text/csv"
    lines = rejected.get_data(as_text=True).splitlines()
    assert lines[0] == "Name,Account,Amount,Colour,line,problem"
    assert lines[1].startswith("Odd deal,Acme,lots,green,4,amount:")
    assert lines[2].startswith("Lost deal,Nowhere Ltd,10,,5,account: no Account has name")
    audit = client.get("/admin/audit?kind=import").get_data(as_text=True)
    assert "Imported" in audit and "deals.csv" in audit and "created: 3" in audit


def test_a_run_cannot_be_started_twice(world) -> None:
    import_id = job_id(upload(world["client"], GOOD))
    start(world, import_id, "run")
    page = f"/admin/import/{import_id}"
    response = world["client"].post(page, data={"map-0": "name", "action": "run",
                                                "csrf_token": token_of(world["client"], page)})
    assert response.status_code == 409


def test_undo_deletes_what_nobody_changed_and_keeps_a_changed_record(world) -> None:
    client, inst = world["client"], world["inst"]
    import_id = job_id(upload(client, GOOD))
    start(world, import_id, "run")
    table = inst.schema.table("opportunity")
    with reading(inst, None) as conn:
        big = conn.execute(table.select().where(table.c.name == "Big deal")).mappings().one()
    records.update(inst, world["admin"], "opportunity", big["id"], {"amount": "1300"},
                   version=big["version"])
    page = f"/admin/import/{import_id}"
    response = client.post(page + "/undo", data={"csrf_token": token_of(client, page)},
                           follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "1 records deleted" in html and f"#{big['id']}" in html
    assert names(world) == ["Big deal"]
    assert "Import undone" in client.get("/admin/audit").get_data(as_text=True)


# -- rights ---------------------------------------------------------------------------------------

def test_an_agent_may_import_only_what_they_may_create(world) -> None:
    inst = world["inst"]
    rep = insert_user(inst, "rep", roles=["agent"], full_name="Rita Rep")
    client = world["app"].test_client()
    sign_in(client, inst, rep)
    assert client.get("/admin/import").status_code == 403
    assert client.get("/admin/import?entity=user").status_code == 403
    import_id = job_id(upload(world["client"], GOOD))
    assert client.get(f"/admin/import/{import_id}").status_code == 403
    assert client.get(f"/admin/import/{import_id}/rejected.csv").status_code == 403


def test_the_list_page_links_to_the_import(world) -> None:
    html = world["client"].get("/e/opportunity").get_data(as_text=True)
    assert '/admin/import?entity=opportunity"' in html


# -- broken files ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "name", "message"), [
    ("Name\nCafé\n".encode("latin-1"), "deals.csv", "not UTF-8"),
    (b"PK\x03\x04 not really a workbook", "deals.xlsx", "cannot read the XLSX file"),
    ("Name,Amount\n" + "x" * 200_000 + ",1\n", "deals.csv", "field larger than field limit"),
    (b"", "deals.csv", "no header row"),
    ("Name\nA\n", "deals.pdf", "not a CSV or XLSX file"),
])
def test_a_broken_file_gets_a_clear_400(world, content, name, message) -> None:
    response = upload(world["client"], content, name)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert message in text and "/tmp" not in text


def test_a_file_over_the_limit_gets_a_clear_4xx(world) -> None:
    client = world["client"]
    builder = EnvironBuilder(path="/admin/import", method="POST", data={
        "entity": "opportunity", "csrf_token": token_of(client, "/admin/import"),
        "file": (io.BytesIO(b"Name\n" + b"x\n" * (MAX_UPLOAD_BYTES // 2 + 10)), "big.csv")})
    environ = builder.get_environ()
    try:
        response = client.open(environ)
    finally:
        environ["wsgi.input"].close()  # a body this big is spooled to a file
        builder.close()
    assert response.status_code == 400
    assert "is larger than 10 MB" in response.get_data(as_text=True)


def test_an_unknown_entity_or_mapping_is_a_400(world) -> None:
    assert upload(world["client"], GOOD, entity="nothing").status_code in (400, 403)
    import_id = job_id(upload(world["client"], GOOD))
    page = f"/admin/import/{import_id}"
    response = world["client"].post(page, data={"map-0": "id", "action": "run",
                                                "csrf_token": token_of(world["client"], page)})
    assert response.status_code == 400
    assert "has no field 'id' that an import can fill" in unescape(response.get_data(as_text=True))
