"""The one exporter (`runtime/read/export.py`) through the web list's CSV export and the
functions the CLI uses: text that a spreadsheet would run as a formula is escaped with a
leading quote, numbers stay numbers, hidden fields stay out, the web and the CLI write the same
columns, and an import takes an escaped cell back as it was stored — on SQLite and PostgreSQL.
The `crmforge export` command itself is tested in test_commands.py."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from web_support import make_app, sign_in

from runtime.core.instance import Actor, Instance
from runtime.ops import transfer
from runtime.read.export import Export, csv_chunks, escape, unescape, write_export
from runtime.write import records

ITEM = """\
entity: item
title_field: name
fields:
  name: {type: text, required: true}
  notes: {type: longtext}
  qty: {type: integer}
  price: {type: decimal}
  amount: {type: money}
  share: {type: percent}
  parent: {type: link, to: item}
  related: {type: links, to: item}
  secret: {type: text}
permissions:
  clerk: {read: true, create: true, update: true, hidden: [secret]}
"""
ROLES = "roles:\n  clerk: {label: Clerk}\n"

# (text a cell holds, what a spreadsheet would make of it unescaped)
FORMULAS = [
    ('=HYPERLINK("http://evil.example")', "a formula"),
    ("+1+cmd|' /C calc'!A0", "DDE after a plus"),
    ("-2+cmd|' /C calc'!A0", "DDE after a minus"),
    ("@SUM(1+1)*cmd|' /C calc'!A0", "a function after an at sign"),
    ("\t=1+2", "a formula after a tab"),
    ("\r=1+2", "a formula after a carriage return"),
    ("\n=1+2", "a formula after a line feed (what XLSX makes of a carriage return)"),
    ("'=1+2", "a quote and a formula: one more quote, so the import gives it back"),
]
# numbers of number fields, negative ones included: never escaped, cells of their own type
NUMBERS = {"qty": -3, "price": "-0.5", "amount": "-12.50", "share": "-1.25"}


@pytest.mark.parametrize(("stored", "exported"), [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-x", "'-x"), ("@x", "'@x"), ("\tx", "'\tx"),
    ("\rx", "'\rx"), ("\nx", "'\nx"), ("'=x", "''=x"), ("''-x", "'''-x"),
    ("plain", "plain"), ("'quoted", "'quoted"), ("a=b", "a=b"), ("", ""), ("'", "'"),
    (" =x", " =x"),  # a spreadsheet does not run " =x"
])
def test_escape_and_unescape(stored: str, exported: str) -> None:
    assert escape(stored) == exported
    assert unescape(exported) == stored
    assert exported[:1] not in ("=", "+", "-", "@", "\t", "\r", "\n")


@pytest.fixture
def items(make_instance: Callable[..., Instance], pack: Callable, admin: Callable
          ) -> dict[str, Any]:
    """An instance whose items hold each formula in a text field, a longtext field and the
    title of the record they link to, next to negative numbers."""
    inst = make_instance(pack({"entities/item.yaml": ITEM, "roles.yaml": ROLES}))
    who = admin(inst)
    made = []
    for index, (text, _) in enumerate(FORMULAS):
        made.append(records.create(inst, who, "item", {
            "name": f"{text.strip()} #{index}", "notes": text, "secret": "TOP-SECRET",
            "parent": made[-1]["id"] if made else None,
            "related": [m["id"] for m in made[-2:]],
            **NUMBERS}))
    return {"inst": inst, "admin": who, "made": made}


def web_export(inst: Instance, actor: Actor, tmp_path: Path, query: str = ""
               ) -> list[dict[str, str]]:
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, actor)
    with client.get(f"/e/item/export.csv{query}") as answer:
        assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
        assert answer.mimetype == "text/csv"
        text = answer.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_web_export_escapes_every_formula_and_keeps_numbers(items, tmp_path) -> None:
    rows = web_export(items["inst"], items["admin"], tmp_path)
    assert len(rows) == len(FORMULAS)
    for index, (row, (text, why)) in enumerate(zip(rows, FORMULAS, strict=True)):
        assert row["notes"] == "'" + text, why
        assert row["name"] == escape(f"{text.strip()} #{index}"), why
        for name in NUMBERS:  # as the API gives them ("-0.500000" for a decimal)
            assert row[name] == str(items["made"][index][name]), (name, row[name])
            assert Decimal(row[name]) == Decimal(NUMBERS[name])
        if index:  # links read as the linked record's title, escaped like any text
            assert row["parent"] == rows[index - 1]["name"], why
            assert row["parent"].startswith("'")
    assert rows[2]["related"] == "'" + ", ".join(
        f"{t.strip()} #{i}" for i, (t, _) in enumerate(FORMULAS[:2]))


def test_web_and_cli_write_the_same_columns(items, make_user, tmp_path) -> None:
    """`id` first, the declared fields, the system fields; hidden fields left out."""
    inst = items["inst"]
    cli = io.BytesIO()
    assert transfer.export(inst, "item", "csv", cli) == len(FORMULAS)
    header = next(csv.reader(io.StringIO(cli.getvalue().decode())))
    assert header[:3] == ["id", "name", "notes"] and "related" in header and "owner" in header
    assert list(web_export(inst, items["admin"], tmp_path)[0]) == header
    clerk = make_user(inst, "clara", roles=["clerk"])
    assert list(web_export(inst, clerk, tmp_path)[0]) == [h for h in header if h != "secret"]
    # the CLI writes links as ids, so that its file imports back
    first = next(csv.DictReader(io.StringIO(cli.getvalue().decode())))
    assert first["id"] == str(items["made"][0]["id"]) and first["parent"] == ""


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_then_import_gives_the_same_values(items, fmt: str, tmp_path: Path) -> None:
    inst = items["inst"]
    path = tmp_path / f"items.{fmt}"
    with open(path, "wb") as out:
        assert transfer.export(inst, "item", fmt, out) == len(FORMULAS)
    if fmt == "xlsx":
        sheet = load_workbook(path).worksheets[0]
        header = [c.value for c in sheet[1]]
        for row, (text, why) in zip(sheet.iter_rows(min_row=2), FORMULAS, strict=True):
            notes = row[header.index("notes")]
            # a string cell, never a formula; XML reads a carriage return as a line feed
            assert notes.data_type == "s" and notes.value == "'" + text.replace("\r", "\n"), why
            for name, stored in NUMBERS.items():
                assert row[header.index(name)].data_type == "n"
                assert float(row[header.index(name)].value) == float(stored)
    before = stored_items(inst)
    with inst.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM item"))
    header, rows = transfer.read_file(path)
    # links hold ids, which the new records do not have (the web's titles are tested below)
    links = {"parent", "related"}
    result = transfer.import_rows(inst, "item", [h for h in header if h not in links], [
        (line, {k: v for k, v in row.items() if k not in links}) for line, row in rows])
    assert result.kept and result.created == len(FORMULAS), result.problems
    after = stored_items(inst)
    if fmt == "xlsx":  # see above: the one change XLSX itself makes
        before = [(name, notes.replace("\r", "\n"), *rest) for name, notes, *rest in before]
    assert after == before


def stored_items(inst: Instance) -> list[tuple]:
    """What the database holds, without the ids (a re-import makes new ones)."""
    with inst.engine.connect() as conn:
        return [(r.name, r.notes, r.qty, float(r.price), float(r.amount), float(r.share),
                 r.secret) for r in conn.execute(sa.text(
                     "SELECT name, notes, qty, price, amount, share, secret FROM item "
                     "ORDER BY id"))]


def test_web_export_round_trips_through_the_import(items, tmp_path: Path) -> None:
    """Titles are escaped like any text and the import finds the record by its title field."""
    inst = items["inst"]
    rows = web_export(inst, items["admin"], tmp_path)
    path = tmp_path / "web.csv"
    declared = [f.name for f in inst.model.entity("item").fields.values() if not f.system]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        # the declared fields: a user's title is their full name, not the username an
        # import looks users up by
        writer = csv.DictWriter(handle, fieldnames=declared, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    before = stored_items(inst)
    with inst.engine.begin() as conn:
        conn.execute(sa.text("UPDATE item SET parent = NULL"))
        conn.execute(sa.text("DELETE FROM item"))
    header, read = transfer.read_file(path)
    result = transfer.import_rows(inst, "item", header, read)
    assert result.kept, result.problems
    assert stored_items(inst) == before
    who = items["admin"]
    by_name = {r["name"]: r for r in records.query(inst, who, "item", limit=50).rows}
    for index, (text, why) in enumerate(FORMULAS[1:], start=1):
        child = by_name[f"{text.strip()} #{index}"]
        parent = records.get(inst, who, "item", child["parent"])
        assert parent["name"] == f"{FORMULAS[index - 1][0].strip()} #{index - 1}", why


def test_export_stops_at_its_limit(items) -> None:
    inst, who = items["inst"], items["admin"]
    text = "".join(csv_chunks(Export(inst, who, "item", limit=3)))
    assert len(list(csv.DictReader(io.StringIO(text, newline="")))) == 3
    out = io.BytesIO()
    assert write_export(Export(inst, who, "item", limit=2), "json", out) == 2


def test_the_first_chunk_holds_the_header_and_the_first_page(items) -> None:
    """The web takes the first chunk before it answers, so that a problem reading the records
    is an error page and not a download cut short: that chunk must have read the first page."""
    inst, who = items["inst"], items["admin"]
    first = next(csv_chunks(Export(inst, who, "item")))
    assert len(list(csv.DictReader(io.StringIO(first, newline="")))) == len(FORMULAS)
    none = list(csv_chunks(Export(inst, who, "item", q="no such item")))
    assert len(none) == 1 and none[0].startswith("id,name,notes,")


def test_xlsx_leaves_out_what_it_cannot_hold_and_still_escapes(items) -> None:
    """XLSX holds no control characters; leaving one out must not bare a formula."""
    inst, who = items["inst"], items["admin"]
    made = records.create(inst, who, "item", {"name": "control", "notes": "\x01=1+2"})
    out = io.BytesIO()
    write_export(Export(inst, who, "item", filters={"id": made["id"]}), "xlsx", out)
    sheet = load_workbook(io.BytesIO(out.getvalue())).worksheets[0]
    header = [c.value for c in sheet[1]]
    notes = sheet[2][header.index("notes")]
    assert (notes.data_type, notes.value) == ("s", "'=1+2")
