"""Exports write words, not codes (issue 13, item 14): choices and workflow states as their
labels unless codes are asked for (`crmforge export --codes`, `export.csv?codes=1`), an import
takes the labels back as codes, and a phone number keeps its `+` (no `'` in front) while a
formula in a phone field is still escaped — through the CLI and the web list's Export CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from browser_support import chromium, require_browser, served
from browser_support import sign_in as browser_sign_in
from cli_support import Run, cli_runner
from openpyxl import load_workbook
from web_support import PASSWORD, make_app, sign_in

from runtime.core.db import make_engine
from runtime.core.instance import Instance
from runtime.http.auth import set_password
from runtime.ops import transfer
from runtime.read.export import escape_value, unescape
from runtime.write import records

LEAD = """\
entity: lead
title_field: name
fields:
  name: {type: text, required: true}
  source: {type: choice, options: {web: Web form, fair: Trade fair}}
  tags: {type: multichoice, options: {vip: VIP, new: New}}
  phone: {type: phone}
workflow:
  initial: new
  states:
    new: {label: New lead}
    qualified: {label: Qualified}
  transitions:
    qualify: {from: new, to: qualified}
"""
PHONES = ["+44 20 7946 0958", "+1 (555) 010-2030", "020 7946 0958"]


@pytest.fixture
def leads(make_instance: Callable[..., Instance], pack: Callable, admin: Callable
          ) -> dict[str, Any]:
    inst = make_instance(pack({"entities/lead.yaml": LEAD}))
    who = admin(inst)
    for index, phone in enumerate(PHONES):
        made = records.create(inst, who, "lead", {
            "name": f"Lead {index}", "source": "web" if index else "fair",
            "tags": ["vip", "new"] if index == 0 else [], "phone": phone})
        if index == 1:
            records.update(inst, who, "lead", made["id"], {"status": "qualified"},
                           version=made["version"], transition="qualify")
    return {"inst": inst, "admin": who}


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def web_csv(leads: dict[str, Any], tmp_path: Path, query: str = "") -> list[dict[str, str]]:
    client = make_app(leads["inst"], tmp_path).test_client()
    sign_in(client, leads["inst"], leads["admin"])
    answer = client.get(f"/e/lead/export.csv{query}")
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    return rows_of(answer.get_data(as_text=True))


def test_the_web_export_writes_labels_and_codes_on_request(leads, tmp_path) -> None:
    rows = web_csv(leads, tmp_path)
    assert [r["source"] for r in rows] == ["Trade fair", "Web form", "Web form"]
    assert [r["status"] for r in rows] == ["New lead", "Qualified", "New lead"]
    assert rows[0]["tags"] == "VIP, New"
    assert [r["phone"] for r in rows] == PHONES  # no `'` in front of a phone number
    coded = web_csv(leads, tmp_path, "?codes=1&source=web")  # `codes` is not a filter
    assert [r["source"] for r in coded] == ["web", "web"]
    assert [r["status"] for r in coded] == ["qualified", "new"]


@pytest.fixture
def run(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> Run:
    """`run("export", "lead")` -> (exit status, stdout, stderr) against the test database."""
    return cli_runner(database_url, tmp_path, monkeypatch, capsys)


def database(url: str) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT name, source, status, phone FROM lead ORDER BY id"))]
    finally:
        engine.dispose()


@pytest.mark.parametrize(("fmt", "codes"), [("csv", False), ("xlsx", False), ("csv", True)])
def test_the_cli_export_imports_back_with_labels_or_codes(
        run: Callable, pack: Callable, database_url: str, tmp_path: Path, fmt: str,
        codes: bool) -> None:
    assert run("install", pack({"entities/lead.yaml": LEAD}))[0] == 0
    source = tmp_path / "in.csv"
    source.write_text("name,source,status,phone\n"
                      "Ann,fair,new,+44 20 7946 0958\n"
                      "Bob,Web form,Qualified,+1 (555) 010-2030\n")  # codes and labels
    assert run("import", "lead", source)[0] == 0
    path = tmp_path / f"leads.{fmt}"
    code, _, err = run("export", "lead", "--output", path, *(["--codes"] if codes else []))
    assert code == 0, err
    if fmt == "xlsx":
        sheet = load_workbook(path).worksheets[0]
        header = [c.value for c in sheet[1]]
        cells = [row[header.index("phone")] for row in sheet.iter_rows(min_row=2)]
        assert [c.value for c in cells] == PHONES[:2] and {c.data_type for c in cells} == {"s"}
        assert [row[header.index("status")].value for row in sheet.iter_rows(min_row=2)] \
            == ["New lead", "Qualified"]
    else:
        exported = rows_of(path.read_text(encoding="utf-8"))
        assert [(r["source"], r["status"]) for r in exported] == (
            [("fair", "new"), ("web", "qualified")] if codes else
            [("Trade fair", "New lead"), ("Web form", "Qualified")])
        assert [r["phone"] for r in exported] == PHONES[:2]
    before = database(database_url)
    assert before == [("Ann", "fair", "new", PHONES[0]), ("Bob", "web", "qualified", PHONES[1])]
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM lead"))
    engine.dispose()
    code, _, err = run("import", "lead", path)
    assert code == 0, err
    assert database(database_url) == before


def test_an_import_takes_labels_in_any_case_and_still_refuses_the_unknown(leads) -> None:
    inst = leads["inst"]
    header = ["name", "source", "tags", "status"]
    rows = [(2, {"name": "A", "source": "trade FAIR", "tags": "vip, New", "status": "qualified"}),
            (3, {"name": "B", "source": "Radio", "tags": "", "status": ""})]
    result = transfer.import_rows(inst, "lead", header, rows, skip_invalid=True)
    assert result.created == 1 and [line for line, _ in result.problems] == [3]
    assert "source" in result.problems[0][1]
    made = records.query(inst, leads["admin"], "lead", filters={"name": "A"}).rows[0]
    assert (made["source"], made["tags"], made["status"]) == ("fair", ["vip", "new"],
                                                              "qualified")


@pytest.mark.parametrize(("text", "kept"), [
    ("+44 20 7946 0958", True), ("+1 (555) 010-2030", True), ("+33.1.23.45", True),
    ("+1+cmd|' /C calc'!A0", False), ("+HYPERLINK(1)", False), ("=1+2", False),
    ("-2", False), ("+", False), ("'+44 20", False),
])
def test_only_a_plain_phone_number_is_left_unescaped(text: str, kept: bool) -> None:
    phone = type("F", (), {"type": "phone"})()
    text_field = type("F", (), {"type": "text"})()
    assert (escape_value(phone, text) == text) is kept
    assert unescape(escape_value(phone, text)) == text  # an import gives back what was stored
    assert escape_value(text_field, text) != text or not text.startswith(("+", "=", "-"))


# -- in a browser -------------------------------------------------------------------------------

@pytest.mark.browser
def test_the_list_export_button_downloads_labels_and_plain_phones(leads, tmp_path) -> None:
    require_browser()
    set_password(leads["inst"], leads["admin"].user_id, PASSWORD)
    saved = tmp_path / "download.csv"
    with served(leads["inst"], tmp_path, dispose=False) as server, chromium() as browser:
        page = browser_sign_in(browser, server, "admin")
        page.goto(server["url"] + "/e/lead")
        with page.expect_download() as download:
            page.click("text=Export CSV")
        download.value.save_as(saved)
    rows = rows_of(saved.read_text(encoding="utf-8"))
    assert sorted(r["source"] for r in rows) == ["Trade fair", "Web form", "Web form"]
    assert sorted(r["phone"] for r in rows) == sorted(PHONES)
