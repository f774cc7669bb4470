"""File fields and uploads (issue 12, defects 2, 13 and 14): a download works with the default,
relative instance folder; a `file` / `image` field holds an attachment of its own record,
uploaded through it; a form that fails stores no file and no attachment row."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_support import bearer
from web_support import make_app, seed, sign_in, token_of

from builder.model import Field
from runtime.core.errors import ValidationFailed
from runtime.core.instance import Instance
from runtime.core.values import coerce_value
from runtime.http.app import create_app
from runtime.http.auth import create_token
from runtime.write import attachments, records

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.fixture
def web(spec_instance, admin, tmp_path) -> dict[str, Any]:
    inst = spec_instance
    who = admin(inst)
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, who)
    return {"inst": inst, "client": client, "admin": who, "data": seed(inst, who),
            "uploads": tmp_path / "uploads", "api": bearer(create_token(inst, who.user_id))}


def attachment_rows(inst: Instance) -> list[dict[str, Any]]:
    table = inst.schema.system("attachment")
    with inst.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def stored_files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.is_dir() else []


def attach(web: dict[str, Any], entity: str, record_id: int, name: str = "a.pdf") -> int:
    """Upload a file to a record's Files section; the new attachment's id."""
    client = web["client"]
    token = token_of(client, f"/e/{entity}/{record_id}")
    answer = client.post(f"/e/{entity}/{record_id}/attachments", data={
        "csrf_token": token, "file": (io.BytesIO(PDF), name)},
        content_type="multipart/form-data")
    assert answer.status_code == 302
    return attachment_rows(web["inst"])[-1]["id"]


# -- defect 2: the instance folder ------------------------------------------------------------

def test_download_with_the_default_relative_instance_folder(spec_instance, admin, tmp_path,
                                                            monkeypatch) -> None:
    """With `INSTANCE_DIR` left at its relative default, the file is found where it was
    written (Flask would resolve a relative path against the app's root: a 500)."""
    monkeypatch.chdir(tmp_path)
    inst, who = spec_instance, admin(spec_instance)
    app = create_app({"INSTANCE": inst, "TESTING": True, "SECRET_KEY": "test-secret"})
    assert app.config["INSTANCE_DIR"] == str(tmp_path / "instance")
    client = app.test_client()
    sign_in(client, inst, who)
    flat = records.create(inst, who, "property", {"title": "Flat", "price": "1"})
    token = token_of(client, f"/e/property/{flat['id']}")
    answer = client.post(f"/e/property/{flat['id']}/attachments", data={
        "csrf_token": token, "file": (io.BytesIO(PDF), "plan.pdf")},
        content_type="multipart/form-data")
    assert answer.status_code == 302
    (row,) = attachment_rows(inst)
    assert (tmp_path / "instance" / "uploads" / row["storage_key"]).read_bytes() == PDF
    with client.get(f"/attachments/{row['id']}") as download:
        assert download.status_code == 200 and download.data == PDF


# -- defect 14: nothing is stored unless the record is ----------------------------------------

def test_a_new_record_form_that_fails_stores_no_file(web) -> None:
    client, inst = web["client"], web["inst"]
    rows_before, files_before = attachment_rows(inst), stored_files(web["uploads"])
    token = token_of(client, "/e/property/new")
    answer = client.post("/e/property/new", data={
        "csrf_token": token, "title": "Barn", "price": "-5",
        "brochure": (io.BytesIO(PDF), "barn.pdf")}, content_type="multipart/form-data")
    assert answer.status_code == 422
    assert "price" in answer.get_data(as_text=True).lower()
    assert attachment_rows(inst) == rows_before
    assert stored_files(web["uploads"]) == files_before


def test_a_new_record_form_that_succeeds_stores_its_file_for_the_record(web) -> None:
    client, inst, who = web["client"], web["inst"], web["admin"]
    rows_before = attachment_rows(inst)
    token = token_of(client, "/e/property/new")
    answer = client.post("/e/property/new", data={
        "csrf_token": token, "title": "Barn", "price": "100",
        "brochure": (io.BytesIO(PDF), "barn.pdf"), "photo": (io.BytesIO(PNG), "barn.png")},
        content_type="multipart/form-data")
    assert answer.status_code == 302, answer.get_data(as_text=True)[:2000]
    record_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    new = sorted(attachment_rows(inst)[len(rows_before):], key=lambda r: r["filename"])
    assert [(r["entity"], r["record_id"], r["filename"]) for r in new] == [
        ("property", record_id, "barn.pdf"), ("property", record_id, "barn.png")]
    record = records.get(inst, who, "property", record_id)
    assert (record["brochure"], record["photo"]) == (str(new[0]["id"]), str(new[1]["id"]))
    assert (web["uploads"] / new[0]["storage_key"]).read_bytes() == PDF
    assert (web["uploads"] / new[1]["storage_key"]).read_bytes() == PNG
    with client.get(f"/attachments/{record['brochure']}") as download:
        assert download.status_code == 200 and download.data == PDF


def test_an_edit_form_that_fails_stores_no_file_and_one_that_succeeds_does(web) -> None:
    client, inst, who = web["client"], web["inst"], web["admin"]
    flat = web["data"]["flat"]
    url = f"/e/property/{flat['id']}/edit"
    rows_before, files_before = attachment_rows(inst), stored_files(web["uploads"])
    token = token_of(client, url)
    failed = client.post(url, data={
        "csrf_token": token, "version": str(flat["version"]), "title": "Flat", "price": "-1",
        "brochure": (io.BytesIO(PDF), "flat.pdf")}, content_type="multipart/form-data")
    assert failed.status_code == 422
    stale = client.post(url, data={
        "csrf_token": token, "version": str(flat["version"] - 1), "title": "Flat",
        "price": "5", "brochure": (io.BytesIO(PDF), "flat.pdf")},
        content_type="multipart/form-data")
    assert stale.status_code == 409
    assert attachment_rows(inst) == rows_before
    assert stored_files(web["uploads"]) == files_before
    saved = client.post(url, data={
        "csrf_token": token, "version": str(flat["version"]), "title": "Flat", "price": "5",
        "brochure": (io.BytesIO(PDF), "flat.pdf")}, content_type="multipart/form-data")
    assert saved.status_code == 302
    (row,) = attachment_rows(inst)[len(rows_before):]
    assert (row["entity"], row["record_id"]) == ("property", flat["id"])
    assert records.get(inst, who, "property", flat["id"])["brochure"] == str(row["id"])
    assert stored_files(web["uploads"]) == sorted([*files_before,
                                                   web["uploads"] / row["storage_key"]])


def test_a_refused_upload_names_its_field_and_stores_nothing(web) -> None:
    client, inst = web["client"], web["inst"]
    token = token_of(client, "/e/property/new")
    answer = client.post("/e/property/new", data={
        "csrf_token": token, "title": "Barn", "price": "100",
        "brochure": (io.BytesIO(PDF), "barn.pdf"), "photo": (io.BytesIO(PDF), "barn.pdf")},
        content_type="multipart/form-data")
    assert answer.status_code == 422
    assert "is not a file type we accept" in answer.get_data(as_text=True)
    assert attachment_rows(inst) == [] and stored_files(web["uploads"]) == []


# -- defect 13: a file field holds an attachment of its own record ----------------------------

@pytest.mark.parametrize("value", ["../../etc/passwd", "/etc/passwd", "0", "-3", "1.5",
                                   "99999999999999999999", "１２", [1], True])
def test_a_file_value_that_is_no_attachment_id_is_refused(web, value) -> None:
    client, flat = web["client"], web["data"]["flat"]
    answer = client.patch(f"/api/v1/property/{flat['id']}", headers=web["api"],
                          json={"brochure": value, "version": flat["version"]})
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert "brochure" in answer.get_json()["errors"]
    created = client.post("/api/v1/property", headers=web["api"],
                          json={"title": "Barn", "price": "1", "brochure": value})
    assert created.status_code == 422 and "brochure" in created.get_json()["errors"]


def test_another_records_attachment_is_refused(web) -> None:
    client, inst, who, data = web["client"], web["inst"], web["admin"], web["data"]
    flat, villa = data["flat"], data["villa"]
    theirs = attach(web, "property", villa["id"])
    offers = attach(web, "offer", data["offers"][0]["id"])
    mine = attach(web, "property", flat["id"])
    for other in (theirs, offers):
        answer = client.patch(f"/api/v1/property/{flat['id']}", headers=web["api"],
                              json={"brochure": str(other), "version": flat["version"]})
        assert answer.status_code == 422
        assert answer.get_json()["errors"]["brochure"] == [
            "must be a file attached to this Property; upload it through the form"]
        created = client.post("/api/v1/property", headers=web["api"], json={
            "title": "Barn", "price": "1", "photo": other})
        assert created.status_code == 422 and "photo" in created.get_json()["errors"]
    with pytest.raises(ValidationFailed) as refused:
        records.update(inst, who, "property", flat["id"], {"brochure": str(theirs)},
                       version=flat["version"])
    assert set(refused.value.errors) == {"brochure"}
    assert records.get(inst, who, "property", flat["id"])["brochure"] is None
    # an attachment of this very record is fine
    answer = client.patch(f"/api/v1/property/{flat['id']}", headers=web["api"],
                          json={"brochure": mine, "version": flat["version"]})
    assert answer.status_code == 200 and answer.get_json()["brochure"] == str(mine)


def test_a_leftover_upload_without_a_record_cannot_be_claimed(web) -> None:
    """A file left by a failed form before this fix (`record_id` 0) belongs to no record;
    a new record may not take it (only files uploaded with it)."""
    inst, who = web["inst"], web["admin"]
    leftover = attachments.add(inst, who, "property", 0, filename="old.pdf",
                               content_type="application/pdf", size=3, storage_key="old")
    with pytest.raises(ValidationFailed) as refused:
        records.create(inst, who, "property", {"title": "Barn", "price": "1",
                                               "brochure": str(leftover)})
    assert refused.value.errors == {"brochure": [
        "must be a file uploaded with the new Property's form; attach other files once the "
        "record exists"]}


def test_file_values_are_attachment_ids() -> None:
    field = Field(name="document", type="file", label="Document", pack="test")
    assert coerce_value(field, " 17 ") == "17"
    assert coerce_value(field, 17) == "17"
    assert coerce_value(field, "") is None
    for bad in ("../../etc/passwd", "0", "9" * 19, "17a"):
        with pytest.raises(ValueError, match="must be the id of a file"):
            coerce_value(field, bad)
