"""Any input gives diagnostics, never an exception (hypothesis)."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.diagnostics import Diagnostics
from builder.loader import _NON_PRINTABLE, LoadedDoc, _Builder, load_text
from builder.packs import SHIPPED_DIR
from builder.schema_check import KINDS, SCHEMA_DIR, check_document, kind_for

FIXTURES = Path(__file__).parent / "fixtures" / "spec"
FIXTURE_FILES = sorted(FIXTURES.rglob("*.yaml"))
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CODE = re.compile(r"^E[01][0-9][0-9]$")
YAML_CHARS = list(":-[]{},#&*!|>'\"%@`?\n\t ") + ["  ", "\n  ", ": ", "- ", "---\n", "\x00"]


def _vocabulary() -> list[str]:
    """Every key and enum value the schemas know, so generated data reaches deep."""
    words: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            words.update(node.get("properties", {}))
            for value in node.get("enum", []):
                if isinstance(value, str):
                    words.add(value)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in SCHEMA_DIR.glob("*.schema.json"):
        walk(json.loads(path.read_text(encoding="utf-8")))
    return sorted(words)


WORDS = _vocabulary()


def check_all_kinds(doc: LoadedDoc | None, diags: Diagnostics) -> None:
    if doc is not None:
        for kind in KINDS:
            check_document(doc, kind, diags)
    for diag in diags:
        assert CODE.match(diag.code), diag
        assert diag.line >= 1 and diag.col >= 1, diag
        assert diag.message


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text):
    diags = Diagnostics()
    check_all_kinds(load_text(text, "f.yaml", diags), diags)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(raw):
    diags = Diagnostics()
    check_all_kinds(load_text(raw, "f.yaml", diags), diags)


@FUZZ
@given(
    st.lists(st.sampled_from(YAML_CHARS + WORDS[:40] + ["1", "true", "~", "*a", "&a"]), max_size=60)
)
def test_yaml_looking_noise(tokens):
    diags = Diagnostics()
    check_all_kinds(load_text("".join(tokens), "f.yaml", diags), diags)


mutation = st.tuples(
    st.sampled_from(["delete", "insert", "replace", "dup_line", "drop_line", "indent"]),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=1, max_value=8),
    st.sampled_from(YAML_CHARS + WORDS),
)


def mutate(text: str, change) -> str:
    op, pos, length, piece = change
    pos %= max(len(text), 1)
    lines = text.split("\n")
    line = pos % max(len(lines), 1)
    if op == "delete":
        return text[:pos] + text[pos + length :]
    if op == "insert":
        return text[:pos] + piece + text[pos:]
    if op == "replace":
        return text[:pos] + piece + text[pos + length :]
    if op == "dup_line":
        return "\n".join(lines[: line + 1] + lines[line:])
    if op == "drop_line":
        return "\n".join(lines[:line] + lines[line + 1 :])
    return "\n".join(lines[:line] + [" " * length + lines[line]] + lines[line + 1 :])


@FUZZ
@given(st.sampled_from(FIXTURE_FILES), st.lists(mutation, min_size=1, max_size=6))
def test_mutated_fixtures(path, changes):
    text = path.read_text(encoding="utf-8")
    for change in changes:
        text = mutate(text, change)
    rel = path.relative_to(FIXTURES).as_posix()
    diags = Diagnostics()
    doc = load_text(text, rel, diags)
    if doc is not None:
        check_document(doc, kind_for(rel), diags)
    check_all_kinds(doc, diags)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=20),
    st.sampled_from(WORDS),
    st.floats(allow_nan=False, allow_infinity=False),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=8), inner, max_size=5),
    ),
    max_leaves=40,
)


@FUZZ
@given(documents)
def test_random_structures_against_every_schema(data):
    text = yaml.safe_dump(data, allow_unicode=True)
    diags = Diagnostics()
    check_all_kinds(load_text(text, "f.yaml", diags), diags)


# -- read without positions, then with them on demand ------------------------------------


def same_as_read_with_positions(text: str, file: str = "f.yaml") -> None:
    """A document with nothing to report is read without positions (`_quick`), the rest with
    them (`_Builder`): the data, the diagnostics and (asked for later) the positions must be
    those of reading every document with positions."""
    text = text.removeprefix("\ufeff")
    diags, full_diags = Diagnostics(), Diagnostics()
    doc = load_text(text, file, diags)
    full = _Builder(file, full_diags).build(text)
    assert [d.format() for d in diags] == [d.format() for d in full_diags]
    assert (doc is None) == (full is None)
    if doc is not None and full is not None:
        typed = json.dumps(doc.data, default=repr), json.dumps(full.data, default=repr)
        assert typed[0] == typed[1]
        assert doc.positions == full.positions


NOISE = YAML_CHARS + WORDS[:40] + ["1", "true", "~", "*a", "&a", "<<", "!!str"]


@FUZZ
@given(st.one_of(
    st.lists(st.sampled_from(NOISE), max_size=60).map("".join),
    documents.map(lambda data: yaml.safe_dump(data, allow_unicode=True)),
    st.tuples(st.sampled_from(FIXTURE_FILES), st.lists(mutation, min_size=1, max_size=3)).map(
        lambda picked: functools.reduce(mutate, picked[1], picked[0].read_text("utf-8"))),
))
def test_read_without_positions_is_the_same(text):
    if not _NON_PRINTABLE.search(text):  # those stop load_text before any YAML is read
        same_as_read_with_positions(text)


@pytest.mark.parametrize("path", sorted(SHIPPED_DIR.rglob("*.yaml")), ids=str)
def test_shipped_files_read_without_positions_are_the_same(path):
    same_as_read_with_positions(path.read_text("utf-8"), str(path))
