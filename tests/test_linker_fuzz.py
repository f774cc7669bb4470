"""The whole validator on random mutations of the SPEC fixture pack (hypothesis).

Whatever is done to the definitions (keys deleted or renamed, values replaced by random
scalars, lists or maps, references renamed, entries duplicated, types swapped, files
dropped or copied), `check_paths` never raises: it returns a model, or diagnostics that
each name a real file, a line and a column.
"""

from __future__ import annotations

import json
import re
import shutil
import string
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.diagnostics import Diagnostics
from builder.linker import check_paths
from builder.loader import load_file

FIXTURES = Path(__file__).parent / "fixtures"
SPEC = FIXTURES / "spec"
CORE = FIXTURES / "core"
CODE = re.compile(r"^E[0-4][0-9][0-9]$")


def _load_fixture() -> dict[str, Any]:
    docs = {}
    for path in sorted(SPEC.rglob("*.yaml")):
        diags = Diagnostics()
        doc = load_file(path, str(path), diags)
        assert doc is not None and not diags
        docs[path.relative_to(SPEC).as_posix()] = doc.data
    return docs


DOCS = _load_fixture()
FILES = sorted(DOCS)


def _vocabulary() -> list[str]:
    """Every key and text value of the fixture: entity, field, state, role names and more."""
    words: set[str] = set()
    stack: list[Any] = list(DOCS.values())
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            words.update(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and len(node) < 60:
            words.add(node)
    return sorted(words)


WORDS = _vocabulary()
IDENTIFIERS = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
NAMES = st.one_of(st.sampled_from(WORDS), IDENTIFIERS)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12),
    st.floats(allow_nan=False, allow_infinity=False), NAMES,
    st.text(alphabet=string.printable, max_size=30),
    st.sampled_from(["=today()", "={x}", "=1 +", "{name}", "owner == user.id", "48h", "-x",
                     "month(x)", "a.b.c", "", " ", "=old.owner", "'", "{"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(NAMES, inner, max_size=4)),
    max_leaves=8,
)
OPS = ["delete", "scalar", "value", "rename_reference", "rename_key", "duplicate", "swap_type"]


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into `node` (not the root)."""
    found: list[tuple] = []
    stack = [(node, prefix)]
    while stack:
        item, path = stack.pop()
        children = item.items() if isinstance(item, dict) else (
            enumerate(item) if isinstance(item, list) else ())
        for key, child in children:
            found.append((*path, key))
            stack.append((child, (*path, key)))
    return sorted(found, key=repr)


def _parent(root: Any, path: tuple) -> Any:
    for key in path[:-1]:
        root = root[key]
    return root


def _swap(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)} if value else ""
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return {}


def _mutate(data: Any, draw: Any) -> Any:
    """One random mutation of a document (a deep copy is changed and returned)."""
    data = json.loads(json.dumps(data))
    paths = _paths(data)
    if not paths:
        return draw(VALUES)
    texts = [p for p in paths if isinstance(_parent(data, p)[p[-1]], str)]
    if texts and draw(st.booleans()):
        # a name swapped for another name of the pack: the file stays well-formed, so the
        # linker's reference, workflow and expression checks get to see it
        path = draw(st.sampled_from(texts))
        _parent(data, path)[path[-1]] = draw(st.sampled_from(WORDS))
        return data
    path = draw(st.sampled_from(paths))
    parent, key = _parent(data, path), path[-1]
    op = draw(st.sampled_from(OPS))
    if op == "delete":
        del parent[key]
    elif op == "scalar":
        parent[key] = draw(SCALARS)
    elif op == "value":
        parent[key] = draw(VALUES)
    elif op == "rename_reference":
        parent[key] = draw(NAMES) if not isinstance(parent[key], list) else [
            draw(NAMES) for _ in parent[key]]
    elif op == "rename_key" and isinstance(parent, dict):
        new = draw(NAMES)
        items = [(new if k == key else k, v) for k, v in parent.items()]
        parent.clear()
        parent.update(items)
    elif op == "duplicate":
        if isinstance(parent, list):
            parent.insert(key, json.loads(json.dumps(parent[key])))
        else:
            parent[draw(NAMES)] = json.loads(json.dumps(parent[key]))
    else:
        parent[key] = _swap(parent[key])
    return data


@st.composite
def mutated_packs(draw: Any) -> dict[str, str | None]:
    """File name -> text (None: the file is removed) for a mutated copy of the fixture."""
    docs: dict[str, Any] = dict(DOCS)
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from(FILES))
        docs[name] = _mutate(docs[name], draw)
    extra = draw(st.sampled_from(["none", "none", "drop", "copy"]))
    texts: dict[str, str | None] = {}
    for name, data in docs.items():
        if draw(st.booleans()):
            texts[name] = json.dumps(data, indent=2, ensure_ascii=False)
        else:
            texts[name] = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    if extra == "drop":
        texts[draw(st.sampled_from(FILES))] = None
    elif extra == "copy":
        name = draw(st.sampled_from(FILES))
        folder, _, base = name.rpartition("/")
        texts[f"{folder}/copy_{base}" if folder else f"copy_{base}"] = texts[name]
    return texts


@pytest.fixture(scope="module", autouse=True)
def _no_custom_dir():
    with tempfile.TemporaryDirectory() as empty, pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMFORGE_CUSTOM_DIR", empty)
        yield


def _write(root: Path, texts: dict[str, str | None]) -> Path:
    shutil.copytree(CORE, root / "core")
    pack = root / "real_estate"
    for name, text in texts.items():
        if text is None:
            continue
        path = pack / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return pack


def test_the_unmutated_fixture_round_trips():
    with tempfile.TemporaryDirectory() as tmp:
        for dump in (lambda d: json.dumps(d, indent=2),
                     lambda d: yaml.safe_dump(d, allow_unicode=True, sort_keys=False)):
            root = Path(tmp) / dump.__name__ / str(id(dump))
            pack = _write(root, {name: dump(data) for name, data in DOCS.items()})
            model, diags = check_paths([pack])
            assert model is not None, [d.format() for d in diags]


@pytest.mark.slow  # fuzzing
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(mutated_packs())
def test_mutated_packs_give_a_model_or_diagnostics(texts):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pack = _write(root, texts)
        model, diags = check_paths([pack])  # never raises
        errors = diags.errors
        if model is None:
            assert errors, "no model and no error"
        else:
            assert not errors
            assert re.fullmatch(r"[0-9a-f]{64}", model.hash)
            assert {"user", "team"} <= set(model.entities)
        for diag in diags:
            assert CODE.match(diag.code), diag
            assert diag.line >= 1 and diag.col >= 1, diag
            assert diag.message and "Traceback" not in diag.message, diag
            assert diag.severity in ("error", "warning"), diag
            where = Path(diag.file)
            assert where.is_absolute() and where.resolve().is_relative_to(root.resolve()), \
                diag.format()
            assert where.exists(), diag.format()
            if where.is_file():
                lines = where.read_text(encoding="utf-8").split("\n")
                assert diag.line <= len(lines), diag.format()
                assert diag.col <= len(lines[diag.line - 1]) + 1, diag.format()
