"""builder.loader: positions, YAML 1.2 scalars, duplicate keys and hostile input."""

from __future__ import annotations

import time

import pytest

from builder.diagnostics import Diagnostics, Mark
from builder.loader import MAX_BYTES, load_file, load_text


def load(text: str | bytes):
    diags = Diagnostics()
    started = time.process_time()  # CPU time: steady on a busy machine
    doc = load_text(text, "f.yaml", diags)
    return doc, list(diags), time.process_time() - started


def only(diags):
    assert len(diags) == 1, [d.format() for d in diags]
    return diags[0]


# -- positions ------------------------------------------------------------------------------

SAMPLE = """\
entity: offer
fields:
  amount: {type: money, min: 0}
  notes:
    type: longtext
    label: "Notes"
sort: [-amount, reference]
"""


def test_value_and_key_positions():
    doc, diags, _ = load(SAMPLE)
    assert diags == []
    assert doc.value_marks[()] == Mark("f.yaml", 1, 1)
    assert doc.value_marks[("entity",)] == Mark("f.yaml", 1, 9)
    assert doc.key_marks[("entity",)] == Mark("f.yaml", 1, 1)
    assert doc.key_marks[("fields", "amount")] == Mark("f.yaml", 3, 3)
    assert doc.value_marks[("fields", "amount")] == Mark("f.yaml", 3, 11)
    assert doc.key_marks[("fields", "amount", "min")] == Mark("f.yaml", 3, 25)
    assert doc.value_marks[("fields", "amount", "min")] == Mark("f.yaml", 3, 30)
    assert doc.value_marks[("fields", "notes", "type")] == Mark("f.yaml", 5, 11)
    assert doc.value_marks[("sort", 1)] == Mark("f.yaml", 7, 17)


def test_mark_falls_back_to_the_nearest_ancestor():
    doc, _, _ = load(SAMPLE)
    assert doc.mark(("fields", "amount", "nope", 3)) == Mark("f.yaml", 3, 11)
    assert doc.mark(("fields", "amount"), key=True) == Mark("f.yaml", 3, 3)
    assert doc.mark(("sort", 0), key=True) == Mark("f.yaml", 7, 8)  # list items have no key
    assert doc.mark(("missing",)) == Mark("f.yaml", 1, 1)


def test_scalar_style():
    doc, _, _ = load(SAMPLE + "a: 'x'\nb: |\n  text\nc: >\n  folded\n")
    assert doc.scalar_style(("entity",)) == "plain"
    assert doc.scalar_style(("fields", "notes", "label")) == '"'
    assert doc.scalar_style(("a",)) == "'"
    assert doc.scalar_style(("b",)) == "|"
    assert doc.scalar_style(("c",)) == ">"
    assert doc.scalar_style(("fields",)) is None


def test_alias_values_are_copies_marked_at_the_alias():
    doc, diags, _ = load("a: &x {k: [1, 2]}\nb: *x\n")
    assert diags == []
    assert doc.data == {"a": {"k": [1, 2]}, "b": {"k": [1, 2]}}
    assert doc.data["a"] is not doc.data["b"]
    assert doc.mark(("b", "k", 0)) == Mark("f.yaml", 2, 4)


# -- YAML 1.2 scalars -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("FALSE", False),
        ("null", None),
        ("~", None),
        ("", None),
        ("Null", None),
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("n", "n"),
        ("Yes", "Yes"),
        ("NO", "NO"),
        ("2024-01-01", "2024-01-01"),
        ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"),
        ("1.2.0", "1.2.0"),
        ("12:30", "12:30"),
        ("1_000", "1_000"),
        ("42", 42),
        ("-7", -7),
        ("0", 0),
        ("0x1F", 31),
        ("0o17", 15),
        ("007", "007"),
        ("+33612345678", "+33612345678"),
        ("1.5", 1.5),
        ("+1.5", 1.5),
        ("False", False),
        ("NULL", None),
        ("Total", "Total"),
        ("-0.25", -0.25),
        ("1e3", 1000.0),
        (".5", 0.5),
        (".inf", ".inf"),
        ("-.inf", "-.inf"),
        (".nan", ".nan"),
        ('"true"', "true"),
        ("'42'", "42"),
        ("!!str 42", "42"),
        ("!!float 1", 1.0),
    ],
)
def test_core_schema_scalars(text, value):
    doc, diags, _ = load(f"v: {text}\n")
    assert diags == []
    assert doc.data["v"] == value
    assert type(doc.data["v"]) is type(value)


def test_on_stays_a_string_key():
    doc, diags, _ = load("on: create\nyes: 1\noff: {schedule: daily}\n")
    assert diags == []
    assert list(doc.data) == ["on", "yes", "off"]


def test_number_keys_are_kept_as_written():
    doc, diags, _ = load("1: low\n2.5: mid\n0x10: hex\n")
    assert diags == []
    assert doc.data == {"1": "low", "2.5": "mid", "0x10": "hex"}


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ("a: 1\ntrue: 2\n", 2, 1),
        ("a: 1\n~: 2\n", 2, 1),
        ("a: 1\n? [x, y]\n: 2\n", 2, 3),
        ("a: &k key\n*k : 2\n", 2, 1),
    ],
)
def test_non_text_keys_are_refused(text, line, col):
    doc, diags, _ = load(text)
    diag = only(diags)
    assert (diag.code, diag.line, diag.col) == ("E008", line, col)
    assert doc is not None and doc.data["a"] is not None


def test_duplicate_keys():
    doc, diags, _ = load(
        "entity: offer\nfields:\n  amount: {type: money}\n  amount: {type: text}\n"
    )
    diag = only(diags)
    assert (diag.code, diag.line, diag.col) == ("E002", 4, 3)
    assert "'amount'" in diag.message and "line 3" in diag.message
    assert doc.data["fields"]["amount"] == {"type": "money"}  # the first one wins
    assert doc.value_marks[("fields", "amount")].line == 3


def test_duplicate_keys_in_flow_mapping():
    _, diags, _ = load("a: {x: 1, y: 2, x: 3}\n")
    diag = only(diags)
    assert (diag.code, diag.line, diag.col) == ("E002", 1, 17)


def test_merge_keys_are_refused():
    doc, diags, _ = load("base: &b {x: 1}\nitem:\n  <<: *b\n  y: 2\n")
    diag = only(diags)
    assert (diag.code, diag.line, diag.col) == ("E009", 3, 3)
    assert doc.data["item"] == {"y": 2}


# -- hostile and broken input -------------------------------------------------------------------

BILLION_LAUGHS = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 10)
)
MANY_ALIASES = "a: &a x\nl:\n" + "".join("  - *a\n" for _ in range(150))


@pytest.mark.parametrize(
    ("text", "code", "line", "col"),
    [
        (BILLION_LAUGHS, "E005", 5, 45),
        (MANY_ALIASES, "E005", 103, 5),
        ("a: *nowhere\n", "E005", 1, 4),
        ("a: &r [1, *r]\n", "E005", 1, 11),
        ("[" * 10_000 + "]" * 10_000, "E004", 1, 65),
        ("{a: " * 5_000 + "1" + "}" * 5_000, "E004", 1, 257),
        ("".join("  " * i + f"k{i}:\n" for i in range(200)), "E004", 65, 129),
        ("x" * (3 * 1024 * 1024), "E003", 1, 1),
        (b"a: \x89PNG\r\n\x1a\n\x00\x00", "E006", 1, 4),
        (b"name: ok\nbad: caf\xe9\n", "E006", 2, 9),
        ("a: ok\nb: x\x00y\n", "E006", 2, 5),
        ("a: \x07\n", "E006", 1, 4),
        (b"\xff\xfea\x00:\x00", "E006", 1, 1),
        ("a: !!python/object/apply:os.system ['echo hi']\n", "E007", 1, 4),
        ("a: !!python/name:os.system\n", "E007", 1, 4),
        ("a: !!binary aGVsbG8=\n", "E007", 1, 4),
        ("a: !!set {x, y}\n", "E007", 1, 4),
        ("a: !custom 1\n", "E007", 1, 4),
        ("a: !!int twelve\n", "E007", 1, 4),
        ("a: 1\n---\nb: 2\n", "E010", 2, 1),
        ("--- \na: 1\n--- \n", "E010", 3, 1),
        ("", "E011", 1, 1),
        ("\n\n   \n", "E011", 1, 1),
        ("# nothing here\n# at all\n", "E011", 1, 1),
        ("---\n", "E011", 1, 1),
        ("--- # a comment\n...\n", "E011", 1, 1),
        ("k" * (1024 * 1024) + ": v\n", "E001", 1, 1024 * 1024 + 1),
    ],
)
def test_hostile_input_is_refused_quickly(text, code, line, col):
    doc, diags, elapsed = load(text)
    diag = only(diags)
    assert (diag.code, diag.line, diag.col) == (code, line, col), diag.format()
    # not a speed test: an unguarded expansion takes hours, a refused one milliseconds, and a
    # loaded CI machine must not fail it on a pause
    assert elapsed < 10
    if code not in ("E007",):
        assert doc is None


def test_long_value_under_the_limit_is_fine():
    doc, diags, elapsed = load("a: " + "k" * (1024 * 1024) + "\n")
    assert diags == []
    assert len(doc.data["a"]) == 1024 * 1024
    assert elapsed < 20  # linear, not quadratic (that would take minutes)


@pytest.mark.parametrize(
    ("text", "line", "col", "words"),
    [
        ("a:\n\tb: 1\n", 2, 1, "tab"),
        ("a: b: c\n", 1, 5, "mapping values are not allowed"),
        ("a: [1, 2\n", 2, 1, "expected ',' or ']'"),
        ("a: 'open\n", 2, 1, "quoted scalar that starts at line 1, column 4"),
        ("a:\n  b: 1\n c: 2\n", 3, 2, "end of an indented block"),
        ('a: "\\q"\n', 1, 6, "unknown escape character 'q'"),
        ("a: @x\n", 1, 4, "'@'"),
        ("- a\nb: 1\n", 2, 1, "found a key"),
    ],
)
def test_syntax_errors(text, line, col, words):
    doc, diags, _ = load(text)
    diag = only(diags)
    assert doc is None
    assert (diag.code, diag.line, diag.col) == ("E001", line, col)
    assert words in diag.message
    assert "\\t" not in diag.message and "<" not in diag.message


def test_file_size_is_checked_before_reading(tmp_path):
    big = tmp_path / "big.yaml"
    with open(big, "wb") as handle:
        handle.seek(MAX_BYTES + 10)
        handle.write(b"\n")
    diags = Diagnostics()
    started = time.perf_counter()
    assert load_file(big, "entities/big.yaml", diags=diags) is None
    assert time.perf_counter() - started < 5  # reading the sparse file whole would take longer
    diag = only(list(diags))
    assert (diag.file, diag.code, diag.line, diag.col) == ("entities/big.yaml", "E003", 1, 1)


def test_load_file_reads_and_names_the_file(tmp_path):
    path = tmp_path / "pack.yaml"
    path.write_bytes(b"\xef\xbb\xbfpack: demo\nlabel: Caf\xc3\xa9\n")
    diags = Diagnostics()
    doc = load_file(path, diags=diags)
    assert not diags
    assert doc.file == str(path)
    assert doc.data == {"pack": "demo", "label": "Café"}
    assert doc.value_marks[("label",)] == Mark(str(path), 2, 8)


@pytest.mark.parametrize("name", ["missing.yaml", "."])
def test_unreadable_files(tmp_path, name):
    diags = Diagnostics()
    assert load_file(tmp_path / name, "x.yaml", diags) is None
    assert only(list(diags)).code == "E012"


def test_load_file_needs_diagnostics(tmp_path):
    with pytest.raises(TypeError):
        load_file(tmp_path / "x.yaml")


# -- positions read when first asked for ------------------------------------------------------

DEMO_RECORDS = "".join(
    f"- {{_key: c{i}, name: 'Client {i}', status: open, amount: {i}.50, vip: false,"
    f" due: '=today() + days({i % 30})'}}\n" for i in range(5000))


def test_a_document_without_problems_is_read_without_positions_first():
    started = time.process_time()
    doc = load_text(DEMO_RECORDS, "f.yaml", Diagnostics())
    quick = time.process_time() - started
    started = time.process_time()
    assert doc.mark((4999, "amount")) == Mark("f.yaml", 5000, 60)  # read now
    with_positions = time.process_time() - started
    assert doc.data[4999]["amount"] == 4999.5 and doc.data[0]["vip"] is False
    assert doc.scalar_style((1, "name")) == "'" and doc.is_verbatim((1, "name"))
    assert quick < with_positions / 2, (quick, with_positions)


def test_a_document_with_a_problem_is_read_with_positions_once():
    diags = Diagnostics()
    doc = load_text(DEMO_RECORDS + "- {_key: c1, _key: c2}\n", "f.yaml", diags)
    assert only(list(diags)).format() == (
        "f.yaml:5001:14: error E002 duplicate key '_key' (first defined on line 5001) "
        "(keep only one of them)")
    assert doc.mark((5000, "_key")) == Mark("f.yaml", 5001, 10)
    assert doc.mark((4999, "amount")) == Mark("f.yaml", 5000, 60)
