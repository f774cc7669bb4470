"""`crmforge import` with files as they come: big ones (streamed, in batches), other
encodings, files that are not CSV, columns that name no field, one bad row at the end, the
same unique value twice in one file, and an import killed half-way."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from runtime.core.instance import Instance
from runtime.ops import transfer
from runtime.ops.transfer import Reader, TransferError, import_rows

PERSON = """
entity: person
title_field: last_name
fields:
  code:      {type: text, required: true, unique: true}
  last_name: {type: text, required: true}
  city:      {type: text}
  score:     {type: integer, min: 0}
validations:
  - rule: "score == null or score <= 1000"
    message: The score is at most 1000.
    field: score
"""
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def inst(make_instance, pack) -> Instance:
    return make_instance(pack({"entities/person.yaml": PERSON}))


def people(count: int, start: int = 1) -> list[list[str]]:
    return [[f"P{n:06d}", f"Müller {n}", "Zürich", str(n % 1000)]
            for n in range(start, start + count)]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", newline="", encoding=encoding) as handle:
        csv.writer(handle).writerows([["code", "last_name", "city", "score"], *rows])
    return path


def run(inst: Instance, path: Path, **options) -> transfer.ImportResult:
    with Reader(path) as reader:
        return import_rows(inst, "person", reader.header, reader, **options)


def count(inst: Instance) -> int:
    with inst.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM person")).scalar_one()


def test_many_rows_go_in_batches_with_one_bad_row_at_the_end(inst, tmp_path) -> None:
    rows = people(2 * transfer.BATCH + 10)
    rows.append(["P999999", "Last", "Bern", "5000"])
    path = write_csv(tmp_path / "people.csv", rows)
    result = run(inst, path)
    last_line = len(rows) + 1  # the header is line 1
    assert not result.kept and result.problems == [
        (last_line, "score: The score is at most 1000.")]
    assert result.rows == len(rows) and count(inst) == 0  # nothing imported
    kept = run(inst, path, skip_invalid=True)
    assert kept.kept and kept.created == len(rows) - 1 and count(inst) == len(rows) - 1


def test_the_same_unique_value_twice_in_one_file_is_caught(inst, tmp_path) -> None:
    rows = people(5)
    rows.insert(3, ["P000002", "Again", "Bern", "1"])  # line 5 repeats line 3's code
    result = run(inst, write_csv(tmp_path / "twice.csv", rows), skip_invalid=True)
    assert result.problems == [(5, "code: is already used by another record; enter a "
                                   "different value")]
    assert result.created == 5


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_a_file_with_a_byte_order_mark_is_decoded(inst, tmp_path, encoding) -> None:
    path = write_csv(tmp_path / "bom.csv", people(3), encoding=encoding)
    assert path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff", b"\xef\xbb")
    result = run(inst, path)
    assert result.kept and result.created == 3
    with inst.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT last_name FROM person ORDER BY id")
                            ).scalars().first() == "Müller 1"


def test_a_latin_1_file_is_a_clear_error(inst, tmp_path) -> None:
    path = write_csv(tmp_path / "latin.csv", people(3), encoding="latin-1")
    with pytest.raises(TransferError, match=r"latin\.csv:\d+: not UTF-8 text .*save the CSV "
                                            "as UTF-8"):
        run(inst, path)
    assert count(inst) == 0


def test_a_latin_1_row_deep_in_a_file_names_its_line(inst, tmp_path) -> None:
    path = write_csv(tmp_path / "mixed.csv", people(3000))
    with path.open("ab") as handle:
        handle.write("P777777,Gr\u00fcn,Z\u00fcrich,3\r\n".encode("latin-1"))
    with pytest.raises(TransferError, match=r"mixed\.csv:300[12]: not UTF-8 text"):
        run(inst, path)
    assert count(inst) == 0  # the batches before it were not kept


@pytest.mark.parametrize("content", [
    b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,  # an image
    b"PK\x03\x04" + b"\x00\x14\x00\x06\x00" * 300,  # a zip (an XLSX named .csv)
    b"\x00" * 600,  # zeros
])
def test_a_file_that_is_not_csv_is_a_clear_error(inst, tmp_path, content) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(content)
    with pytest.raises(TransferError, match="people.csv.*(not UTF-8 text|not a CSV file)"):
        run(inst, path)


def test_an_xlsx_that_is_not_one_is_a_clear_error(inst, tmp_path) -> None:
    path = tmp_path / "people.xlsx"
    path.write_text("code,last_name\nP1,Smith\n")
    with pytest.raises(TransferError, match="cannot read the XLSX file"):
        run(inst, path)


def test_a_column_naming_no_field_stops_the_import(inst, tmp_path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("code,last_nmae,xyzzy\nP1,Smith,Bern\n")
    with pytest.raises(TransferError) as stopped:
        run(inst, path)
    assert str(stopped.value).startswith("columns 'last_nmae' (did you mean 'last_name'?), "
                                         "'xyzzy' are not a field of Person; rename or "
                                         "remove them")


def test_the_progress_line_shows_rows_per_second_and_time_left(tmp_path) -> None:
    path = write_csv(tmp_path / "people.csv", people(50))
    out = io.StringIO()
    with Reader(path) as reader:
        show = transfer.progress_line(reader, out)
        list(reader)
        show(50)
    line = out.getvalue()
    assert line.startswith("\r50 rows · ") and " rows/s · 100% · about 0 s left" in line


KILLED = """
import os, sys, time
from pathlib import Path
from runtime.core.db import make_engine
from runtime.ops.transfer import Reader, import_rows
from runtime.process.setup import assemble
from builder.linker import build_model

inst = assemble(build_model([Path(sys.argv[1])]), make_engine(sys.argv[2]))

def progress(done):
    if done >= 2000:  # two batches written in the transaction: now be killed
        print("written", flush=True)
        time.sleep(60)

with Reader(Path(sys.argv[3])) as reader:
    import_rows(inst, "person", reader.header, reader, progress=progress)
"""


def test_a_killed_import_leaves_nothing_half_written(inst, tmp_path, database_url) -> None:
    path = write_csv(tmp_path / "people.csv", people(5000))
    folder = Path(inst.model.packs["test"].path)
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED), str(folder), database_url, str(path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout is not None and child.stdout.readline() == "written\n"
        with inst.engine.connect() as conn:  # not visible to others while it runs
            assert conn.execute(sa.text("SELECT count(*) FROM person")).scalar_one() == 0
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert count(inst) == 0
    result = run(inst, path)  # and the database takes the next import
    assert result.kept and result.created == 5000


def test_update_by_updates_creates_and_finds_a_record_made_above(inst, tmp_path) -> None:
    run(inst, write_csv(tmp_path / "first.csv", people(3)))
    rows = [["P000002", "Changed", "Bern", "7"], ["P000009", "New", "Chur", "1"],
            ["P000009", "Newer", "Chur", "2"], ["P000003", "", "Bern", "-5"]]
    result = run(inst, write_csv(tmp_path / "update.csv", rows), update_by="code",
                 skip_invalid=True)
    assert (result.created, result.updated) == (1, 2)
    assert [(line, text[:6]) for line, text in result.problems] == [(5, "score:")]
    with inst.engine.connect() as conn:
        names = dict(conn.execute(sa.text("SELECT code, last_name FROM person")).all())
    assert names == {"P000001": "Müller 1", "P000002": "Changed", "P000003": "Müller 3",
                     "P000009": "Newer"}
