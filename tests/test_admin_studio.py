"""The studio (`/admin/studio`, docs/admin.md) through the Flask test client, on an instance
installed by `crmforge install` with its own custom dir (SQLite and PostgreSQL): the forms
write valid `extends:` YAML and the new field is on the record form at once; a bad edit shows
the builder's code with line:col and applies nothing; no pack file is ever written; versions
and revert (with its plan); destructive steps need the name typed; only admins, with CSRF."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from flask import Flask
from support import insert_user, write_pack
from web_support import sign_in, token_of

from runtime.core.instance import Actor
from runtime.http.app import create_app
from runtime.http.current import EXTENSION
from runtime.http.model_watch import WATCH
from runtime.ops.cli import main
from runtime.process.studio.layer import digest, read_text

LEAD = """\
entity: lead
label: Lead
title_field: name
fields:
  name: {type: text, required: true}
  stage: {type: choice, options: {new: New, won: Won}}
  region: {type: choice, options: [north, south]}
  amount: {type: decimal, min: 0}
views:
  list:
    columns: [name, stage]
  form:
    sections:
      - {label: Lead, fields: [name, stage]}
permissions:
  agent: {read: true, create: true, update: true, delete: false}
automations:
  welcome:
    on: create
    do:
      - set: {region: north}
"""
ROLES = "roles:\n  agent: {label: Agent}\n"


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    return write_pack(tmp_path / "packs", {"entities/lead.yaml": LEAD, "roles.yaml": ROLES})


@pytest.fixture
def app(database_url: str, pack: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMFORGE_CUSTOM_DIR", str(tmp_path / "custom"))
    assert main(["install", str(pack), "--database-url", database_url]) == 0
    made = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "s" * 32,
                       "INSTANCE_DIR": str(tmp_path)})
    made.extensions[WATCH].interval = 0  # look at crm_model on every request
    yield made
    made.extensions[EXTENSION].engine.dispose()


def inst(app: Flask) -> Any:
    return app.extensions[EXTENSION]


@pytest.fixture
def people(app: Flask) -> dict[str, Actor]:
    return {"admin": insert_user(inst(app), "boss", is_admin=True, full_name="Bea Boss"),
            "agent": insert_user(inst(app), "rep", roles=["agent"], full_name="Rita Rep")}


def client_of(app: Flask, who: Actor) -> Any:
    client = app.test_client()
    sign_in(client, inst(app), who)
    return client


@pytest.fixture
def admin(app: Flask, people: dict[str, Actor]) -> Any:
    client = client_of(app, people["admin"])
    client.post("/e/lead/new", data={"name": "Acme deal", "stage": "new",
                                     "csrf_token": token_of(client, "/e/lead/new")})
    return client


def post(client: Any, path: str, data: dict[str, Any]) -> Any:
    return client.post(path, data={**data, "csrf_token": token_of(client, "/admin/studio")})


def hidden(html: str, name: str) -> str:
    """The value of the hidden input `name` of the preview's Apply form."""
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', html, re.S)
    assert match, f"no hidden {name}"
    return html_lib.unescape(match.group(1))


def change(client: Any, **form: Any) -> Any:
    """Post one studio form; the preview page."""
    return post(client, "/admin/studio/lead/change", form)


def apply_preview(client: Any, page: Any, **extra: str) -> Any:
    """Press Apply on a preview page."""
    html = page.get_data(as_text=True)
    data = {k: hidden(html, k) for k in ("text", "base", "summary")}
    if 'name="reverted_to"' in html:
        data["reverted_to"] = hidden(html, "reverted_to")
    return post(client, "/admin/studio/lead/apply", {**data, **extra})


def custom_file(tmp_path: Path) -> Path:
    return tmp_path / "custom" / "entities" / "lead.yaml"


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def models(app: Flask) -> int:
    with inst(app).engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM crm_model")).scalar_one()


# -- seeing where things come from -----------------------------------------------------------

def test_the_entity_page_says_which_file_and_line_each_part_comes_from(admin, pack) -> None:
    page = admin.get("/admin/studio/lead").get_data(as_text=True)
    lead = "packs/test/entities/lead.yaml"
    assert f"{lead}:5:3" in page  # the field `name`
    assert f"{lead}:10:3" in page  # the list view
    assert f"{lead}:14:9" in page  # the form section (its first key)
    assert f"{lead}:16:3" in page and "welcome" in page  # a permission, an automation
    index = admin.get("/admin/studio").get_data(as_text=True)
    assert "/admin/studio/lead" in index and "Lead" in index


# -- forms -----------------------------------------------------------------------------------

def test_adding_a_field_writes_valid_yaml_and_the_form_shows_it(admin, app, tmp_path) -> None:
    page = change(admin, change="add_field", name="source", label="Lead source",
                  type="choice", options="web: Website\nfair")
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html[:2000]
    assert "add column lead.source" in html or "lead.source" in html  # the plan
    assert "Acme deal" in html  # the preview's list shows real records
    assert 'name="source"' in html  # and its form the new field
    assert not custom_file(tmp_path).exists()  # nothing written before Apply
    answer = apply_preview(admin, page)
    assert answer.status_code == 302, answer.get_data(as_text=True)[:2000]
    data = yaml.safe_load(custom_file(tmp_path).read_text())
    assert data == {"extends": "lead", "fields": {"source": {
        "type": "choice", "label": "Lead source", "options": {"web": "Website", "fair": "Fair"}}}}
    form = admin.get("/e/lead/new").get_data(as_text=True)
    assert 'name="source"' in form and "Lead source" in form and "Website" in form
    created = admin.post("/e/lead/new", data={"name": "Beta", "stage": "new", "source": "fair",
                                              "csrf_token": token_of(admin, "/e/lead/new")})
    assert created.status_code == 302


@pytest.mark.parametrize(("form", "expected"), [
    ({"change": "set_label", "field": "stage", "label": "Phase"},
     {"fields": {"stage": {"type": "choice", "options": {"new": "New", "won": "Won"},
                           "label": "Phase"}}}),
    ({"change": "set_label", "field": "", "label": "Prospect"}, {"label": "Prospect"}),
    ({"change": "add_option", "field": "region", "value": "east", "label": "East coast"},
     {"fields": {"region": {"type": "choice", "options": {
         "north": "North", "south": "South", "east": "East coast"}}}}),
    ({"change": "add_section", "label": "Money", "fields": ["amount"], "columns": "2"},
     {"views": {"form": {"sections": [{"label": "Money", "fields": ["amount"],
                                       "columns": 2}]}}}),
    ({"change": "add_column", "field": "region"},
     {"views": {"list": {"columns": ["name", "stage", "region"], "filters": []}}}),
    ({"change": "add_filter", "field": "stage"},
     {"views": {"list": {"columns": ["name", "stage"], "filters": ["stage"]}}}),
    ({"change": "set_validation", "field": "amount", "required": "1", "max": "5000"},
     {"fields": {"amount": {"type": "decimal", "required": True, "max": 5000}}}),
    ({"change": "add_rule", "rule": "amount > 10", "message": "Too small", "field": "amount"},
     {"validations": [{"rule": "amount > 10", "message": "Too small", "field": "amount"}]}),
])
def test_each_form_writes_the_extension_the_builder_accepts(admin, tmp_path, form,
                                                            expected) -> None:
    page = change(admin, **form)
    assert page.status_code == 200, page.get_data(as_text=True)[:3000]
    assert apply_preview(admin, page).status_code == 302
    assert yaml.safe_load(custom_file(tmp_path).read_text()) == {"extends": "lead", **expected}


def test_the_new_label_and_option_are_served_at_once(admin) -> None:
    apply_preview(admin, change(admin, change="set_label", field="stage", label="Phase"))
    apply_preview(admin, change(admin, change="add_option", field="stage", value="lost"))
    form = admin.get("/e/lead/new").get_data(as_text=True)
    assert "Phase" in form and 'value="lost"' in form


CANNOT = [
    {"change": "add_field", "name": "Bad Name", "type": "text"},
    {"change": "add_field", "name": "name", "type": "text"},
    {"change": "add_field", "name": "colour", "type": "choice", "options": ""},
    {"change": "add_field", "name": "colour", "type": "formula"},
    {"change": "add_option", "field": "name", "value": "x"},
    {"change": "add_option", "field": "stage", "value": "new"},
    {"change": "add_section", "label": "Again", "fields": ["name"]},
    {"change": "add_column", "field": "nope"},
    {"change": "set_validation", "field": "amount", "min": "lots"},
    {"change": "nothing"},
]


def test_a_form_that_cannot_be_done_says_why_and_writes_nothing(admin, tmp_path) -> None:
    for form in CANNOT:
        answer = change(admin, **form)
        assert answer.status_code in (400, 422), form
        assert 'class="flash flash-error"' in answer.get_data(as_text=True), form
    assert not custom_file(tmp_path).exists()


# -- the YAML editor --------------------------------------------------------------------------

BAD = "extends: lead\nfields:\n  colour: {type: nope}\n"


def test_a_bad_edit_shows_the_builders_code_and_place_and_applies_nothing(
        admin, app, tmp_path) -> None:
    before = models(app)
    live = post(admin, "/admin/studio/lead/validate", {"text": BAD})
    assert live.status_code == 200
    fragment = live.get_data(as_text=True)
    assert "E104" in fragment and "custom/entities/lead.yaml:3:18" in fragment, fragment
    page = post(admin, "/admin/studio/lead/preview", {"text": BAD})
    assert page.status_code == 422 and "E104" in page.get_data(as_text=True)
    assert "Apply" not in page.get_data(as_text=True)
    forced = post(admin, "/admin/studio/lead/apply", {
        "text": BAD, "base": hidden_base(admin), "summary": "x"})
    assert forced.status_code == 409 and "E104" in forced.get_data(as_text=True)
    assert not custom_file(tmp_path).exists() and models(app) == before
    syntax = post(admin, "/admin/studio/lead/validate", {"text": "extends: lead\nfields: [\n"})
    assert "E001" in syntax.get_data(as_text=True)


def hidden_base(client: Any) -> str:
    """The digest of the current file, as the entity page carries it."""
    page = client.get("/admin/studio/lead").get_data(as_text=True)
    match = re.search(r'name="base" value="([^"]*)"', page)
    return match.group(1) if match else digest(read_text("lead"))


def test_the_editor_may_not_touch_another_entity(admin, tmp_path) -> None:
    answer = post(admin, "/admin/studio/lead/validate", {"text": "extends: user\n"})
    assert "S001" in answer.get_data(as_text=True)
    answer = post(admin, "/admin/studio/lead/validate", {"text": "entity: lead\n"})
    assert "S002" in answer.get_data(as_text=True)


def test_a_valid_edit_is_applied_from_the_editor(admin, tmp_path) -> None:
    text = "extends: lead\n# the admin's note\nfields:\n  memo: {type: longtext}\n"
    assert "valid" in post(admin, "/admin/studio/lead/validate",
                           {"text": text}).get_data(as_text=True)
    page = post(admin, "/admin/studio/lead/preview", {"text": text})
    assert apply_preview(admin, page).status_code == 302
    assert custom_file(tmp_path).read_text() == text  # written as typed, comments kept
    assert 'name="memo"' in admin.get("/e/lead/new").get_data(as_text=True)


# -- packs stay untouched, versions, revert -------------------------------------------------

def test_no_pack_file_is_ever_written(admin, pack) -> None:
    before = snapshot(pack)
    apply_preview(admin, change(admin, change="add_field", name="memo", type="text"))
    apply_preview(admin, change(admin, change="set_label", field="name", label="Company"))
    apply_preview(admin, change(admin, change="add_column", field="region"))
    assert snapshot(pack) == before


def test_history_and_revert_to_a_version(admin, app, tmp_path) -> None:
    apply_preview(admin, change(admin, change="add_field", name="memo", type="text",
                                label="Memo"))
    apply_preview(admin, change(admin, change="set_label", field="memo", label="Notes"))
    assert "Notes" in admin.get("/e/lead/new").get_data(as_text=True)
    history = admin.get("/admin/studio/lead/history").get_data(as_text=True)
    assert "Version 1" in history and "Version 2" in history
    assert "+    label: Notes" in history and "-    label: Memo" in history  # the diff
    assert "boss" in history  # who
    preview = admin.get("/admin/studio/versions/1/revert")
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "revert to version 1" in html
    assert 'id="migration-plan"' in html  # its own plan first
    assert apply_preview(admin, preview).status_code == 302
    form = admin.get("/e/lead/new").get_data(as_text=True)
    assert "Memo" in form and "Notes" not in form
    with inst(app).engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, reverted_to FROM crm_studio_version "
                                    "ORDER BY id")).all()
        audited = conn.execute(sa.text("SELECT count(*) FROM crm_audit WHERE action = "
                                       "'studio'")).scalar_one()
    assert [tuple(r) for r in rows] == [(1, None), (2, None), (3, 1)] and audited == 3
    assert "Definition changed in the studio" in admin.get("/admin/audit").get_data(
        as_text=True)
    assert admin.get("/admin/studio/versions/99/revert").status_code == 404


def test_a_stale_base_is_refused(admin, tmp_path) -> None:
    first = change(admin, change="add_field", name="memo", type="text")
    second = change(admin, change="add_field", name="other", type="text")
    assert apply_preview(admin, first).status_code == 302
    answer = apply_preview(admin, second)
    assert answer.status_code == 409 and "changed by someone else" in answer.get_data(
        as_text=True)


def test_a_destructive_step_needs_the_name_typed(admin, tmp_path) -> None:
    apply_preview(admin, change(admin, change="add_field", name="memo", type="text"))
    page = post(admin, "/admin/studio/lead/preview", {"text": "extends: lead\n"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "lead.memo" in html and "destructive" in html
    refused = apply_preview(admin, page)
    assert refused.status_code == 422 and "memo" in yaml.safe_load(
        custom_file(tmp_path).read_text())["fields"]
    assert apply_preview(admin, page, **{"confirm-0": "lead.memo"}).status_code == 302
    assert 'name="memo"' not in admin.get("/e/lead/new").get_data(as_text=True)


# -- who may ---------------------------------------------------------------------------------

def test_a_non_admin_gets_403_and_writes_nothing(app, people, tmp_path) -> None:
    client = client_of(app, people["agent"])
    for path in ("/admin/studio", "/admin/studio/lead", "/admin/studio/lead/history",
                 "/admin/studio/versions/1/revert"):
        assert client.get(path).status_code == 403, path
    for path in ("/admin/studio/lead/validate", "/admin/studio/lead/change",
                 "/admin/studio/lead/preview", "/admin/studio/lead/apply"):
        answer = client.post(path, data={"text": "extends: lead\nlabel: Hacked\n",
                                         "change": "set_label", "label": "Hacked",
                                         "csrf_token": token_of(client, "/")})
        assert answer.status_code == 403, path
    assert not custom_file(tmp_path).exists()


def test_posts_need_the_csrf_token(admin, tmp_path) -> None:
    answer = admin.post("/admin/studio/lead/change", data={
        "change": "set_label", "label": "Prospect"})
    assert answer.status_code == 400 and not custom_file(tmp_path).exists()


def test_an_unknown_entity_is_404(admin) -> None:
    assert admin.get("/admin/studio/nothing").status_code == 404
    assert admin.get("/admin/studio/user").status_code == 404


def test_a_rename_the_database_cannot_follow_is_refused_with_words(admin, tmp_path,
                                                                    app) -> None:
    """`renamed_from` a field the entity keeps: the migration cannot be planned, so the
    preview says why (422) and applying writes nothing (409) — never a 500."""
    before = models(app)
    text = "extends: lead\nfields:\n  memo: {type: text, renamed_from: name}\n"
    page = post(admin, "/admin/studio/lead/preview", {"text": text})
    html = page.get_data(as_text=True)
    assert page.status_code == 422 and "cannot rename lead.name to lead.memo" in html, html[:500]
    assert "The database cannot follow this customisation" in html  # not "no problem found"
    forced = post(admin, "/admin/studio/lead/apply", {
        "text": text, "base": hidden_base(admin), "summary": "x"})
    assert forced.status_code == 409 and "cannot rename" in forced.get_data(as_text=True)
    assert not custom_file(tmp_path).exists() and models(app) == before
