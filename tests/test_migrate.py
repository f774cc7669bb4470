"""Migrations as data: each definition change gives the operations (and safety) expected, a
refused plan changes nothing, an applied one keeps every value, and planning again afterwards
finds nothing to do — on SQLite and PostgreSQL alike."""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support import FIXTURES, write_pack

from builder.diagnostics import DefinitionError
from builder.linker import build_model
from builder.model import AppModel
from builder.packs import SHIPPED_DIR, discover
from runtime.core import searchindex
from runtime.core.db import make_engine
from runtime.core.schema import build_schema
from runtime.process import migrate
from runtime.process.migrate.compare import (
    _Planner,
    normalize_default,
    type_signature,
    widens,
)

NOW = datetime(2026, 3, 2, 9, 0, 0)
STAMP = "20260302090000"

ITEM = """\
entity: item
fields:
  name: {type: text, required: true}
  notes: {type: longtext}
  code: {type: text, max_length: 20}
  size: {type: choice, options: [small, large]}
  tags: {type: multichoice, options: [red, blue]}
  amount: {type: decimal, precision: 10, scale: 2}
"""
ROWS = [
    {"name": "Ann", "notes": "first", "code": "A-1", "size": "large", "tags": ["red", "blue"],
     "amount": "12.50"},
    {"name": "Bob", "notes": None, "code": "12", "size": "small", "tags": ["blue"],
     "amount": "3"},
]


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


# name: (files of version 2, operations expected as (kind, safety), rows before the change)
CASES: dict[str, tuple[dict[str, str], list[tuple[str, str]], bool]] = {
    "add entity": (
        {"entities/item.yaml": ITEM,
         "entities/other.yaml": "entity: other\nfields:\n  title: {type: text}\n"},
        [("create_table", "safe")], True),
    "add field": (
        {"entities/item.yaml": ITEM + "  color: {type: text}\n"},
        [("add_column", "safe"), ("search_index", "safe")], True),  # color joins the default search
    "add link field": (
        {"entities/item.yaml": ITEM + "  parent: {type: link, to: item}\n"},
        [("add_column", "safe"), ("add_index", "safe"), ("add_index", "safe")], True),
    "add index": (
        {"entities/item.yaml": edit(ITEM, "max_length: 20}", "max_length: 20, index: true}")},
        [("add_index", "safe")], True),
    "add unique over distinct values": (
        {"entities/item.yaml": edit(ITEM, "max_length: 20}", "max_length: 20, unique: true}")},
        [("add_unique", "safe")], True),
    "rename with renamed_from": (
        {"entities/item.yaml": edit(ITEM, "  name: {type: text, required: true}",
                                    "  title: {type: text, required: true, renamed_from: name}")},
        [("rename_column", "safe"), ("search_index", "safe")], True),
    "widen text": (
        {"entities/item.yaml": edit(ITEM, "max_length: 20}", "max_length: 80}")},
        [("change_type", "safe")], True),
    "text to longtext": (
        {"entities/item.yaml": edit(ITEM, "code: {type: text, max_length: 20}",
                                    "code: {type: longtext}")},
        # longtext is not in the default search: the index changes
        [("change_type", "safe"), ("search_index", "safe")], True),
    "widen decimal": (
        {"entities/item.yaml": edit(ITEM, "precision: 10, scale: 2", "precision: 14, scale: 4")},
        [("change_type", "safe")], True),
    "remove field": (
        {"entities/item.yaml": edit(ITEM, "  notes: {type: longtext}\n", "")},
        [("remove_column", "destructive")], True),
    "narrow text": (
        {"entities/item.yaml": edit(ITEM, "max_length: 20}", "max_length: 2}")},
        [("replace_column", "destructive")], True),
    "text to integer": (
        {"entities/item.yaml": edit(ITEM, "code: {type: text, max_length: 20}",
                                    "code: {type: integer}")},
        [("replace_column", "destructive"), ("search_index", "safe")], True),
    "narrow decimal": (
        {"entities/item.yaml": edit(ITEM, "precision: 10, scale: 2", "precision: 10, scale: 0")},
        [("replace_column", "destructive")], True),
    "remove choice option in use": (
        {"entities/item.yaml": edit(ITEM, "options: [small, large]", "options: [small, medium]")},
        [("remove_choice_values", "destructive")], True),
    "remove multichoice option in use": (
        {"entities/item.yaml": edit(ITEM, "options: [red, blue]", "options: [blue]")},
        [("remove_choice_values", "destructive")], True),
    "remove choice option not in use": (
        {"entities/item.yaml": edit(ITEM, "options: [small, large]", "options: [large]")},
        [], True),
    "remove unused choice option on an empty table": (
        {"entities/item.yaml": edit(ITEM, "options: [small, large]", "options: [small]")},
        [], False),
    "new required field on a table with rows": (
        {"entities/item.yaml": ITEM + "  priority: {type: integer, required: true}\n"},
        [("add_column", "safe"), ("required_without_default", "needs-data")], True),
    "new required field on an empty table": (
        {"entities/item.yaml": ITEM + "  priority: {type: integer, required: true}\n"},
        [("add_column", "safe")], False),
    "new required field with a default": (
        {"entities/item.yaml": ITEM + "  priority: {type: integer, required: true, default: 3}\n"},
        [("add_column", "safe")], True),
    "add unique over repeated values": (
        {"entities/item.yaml": edit(ITEM, "size: {type: choice,",
                                    "size: {unique: true, type: choice,")},
        [("drop_index", "safe"), ("add_unique", "needs-data")], "dup"),  # unique: no index
    "remove entity": (
        {"entities/item.yaml": ITEM.replace("entity: item", "entity: thing")},
        [("create_table", "safe"), ("remove_table", "destructive")], True),
    "add links field": (
        {"entities/item.yaml": ITEM + "  related: {type: links, to: item}\n"},
        [("create_table", "safe")], True),
}


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def install(engine: sa.Engine, path: Path, allow: bool = False) -> AppModel:
    model = build_model([path])
    migrate.apply(migrate.plan(model, engine, now=NOW), engine, allow_destructive=allow, now=NOW)
    return model


def insert(engine: sa.Engine, model: AppModel, entity: str, rows: list[dict[str, Any]]) -> None:
    table = build_schema(model).table(entity)
    with engine.begin() as conn:
        for row in rows:
            conn.execute(table.insert().values(created_at=NOW, updated_at=NOW, version=1, **row))


def rows_of(engine: sa.Engine, table: str) -> list[dict[str, Any]]:
    with searchindex.reflecting():  # SQLite's prefix indexes are expressions
        reflected = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(reflected).order_by(reflected.c.id)).mappings()]


def columns_of(engine: sa.Engine, table: str) -> list[str]:
    return [c["name"] for c in sa.inspect(engine).get_columns(table)]


def kinds(plan: migrate.Plan) -> list[tuple[str, str]]:
    return [(op.kind, op.safety) for op in plan.ops]


@pytest.fixture
def versions(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """`versions(files)`: the test pack rewritten with `files` (a new version of it)."""
    def write(files: dict[str, str]) -> Path:
        pack = tmp_path / "packs" / "test"
        for old in (pack / "entities").glob("*.yaml") if (pack / "entities").exists() else []:
            old.unlink()
        return write_pack(tmp_path / "packs", {k: textwrap.dedent(v) for k, v in files.items()})
    return write


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_definition_change(case: str, engine: sa.Engine, versions: Callable) -> None:
    files, expected, with_rows = CASES[case]
    model = install(engine, versions({"entities/item.yaml": ITEM}))
    rows = ROWS
    if with_rows == "dup":
        rows = [*ROWS, {**ROWS[0], "code": "A-2"}]
    if case == "remove choice option not in use":
        rows = [{**r, "size": "large"} for r in ROWS]  # 'small' is unused, 'large' is removed
    if with_rows:
        insert(engine, model, "item", rows)
    before = rows_of(engine, "item")

    new_model = build_model([versions(files)])
    plan = migrate.plan(new_model, engine, now=NOW)
    assert kinds(plan) == expected, plan.lines()
    for line in plan.lines():
        assert line.startswith("[")

    refused = plan.refused()
    if refused:
        with pytest.raises(migrate.MigrationRefused) as info:
            migrate.apply(plan, engine, now=NOW)
        assert "--allow-destructive" in str(info.value)
        assert rows_of(engine, "item") == before  # nothing changed
        assert migrate.plan(new_model, engine, now=NOW).lines() == plan.lines()
    if any(op.kind == "add_unique" and op.safety != "safe" for op in plan.ops):
        with pytest.raises(migrate.MigrationFailed):  # the database still has duplicates
            migrate.apply(plan, engine, allow_destructive=True, now=NOW)
        assert rows_of(engine, "item") == before
        return
    migrate.apply(plan, engine, allow_destructive=True, now=NOW)
    assert migrate.plan(new_model, engine, now=NOW).empty, \
        migrate.plan(new_model, engine, now=NOW).lines()
    check_data(case, engine, before)


def check_data(case: str, engine: sa.Engine, before: list[dict[str, Any]]) -> None:
    if case == "remove entity":
        assert rows_of(engine, "thing") == []
        kept = rows_of(engine, f"_removed_item_{STAMP}")
        assert [r["name"] for r in kept] == [r["name"] for r in before]
        return
    after = rows_of(engine, "item")
    assert [r["id"] for r in after] == [r["id"] for r in before]
    if case == "rename with renamed_from":
        assert [r["title"] for r in after] == ["Ann", "Bob"]
        assert "name" not in after[0]
    elif case == "remove field":
        assert "notes" not in after[0]
        assert [r[f"_removed_notes_{STAMP}"] for r in after] == ["first", None]
    elif case == "narrow text":
        assert [r["code"] for r in after] == [None, "12"]  # 'A-1' does not fit in 2
        assert [r[f"_removed_code_{STAMP}"] for r in after] == ["A-1", "12"]
    elif case == "text to integer":
        assert [r["code"] for r in after] == [None, 12]
        assert [r[f"_removed_code_{STAMP}"] for r in after] == ["A-1", "12"]
    elif case == "narrow decimal":
        assert [r["amount"] for r in after] == [None, 3]  # 12.50 would be rounded
        assert [str(r[f"_removed_amount_{STAMP}"]) for r in after] == ["12.50", "3.00"]
    elif case == "remove choice option in use":
        assert [r["size"] for r in after] == [None, "small"]
        assert [r[f"_removed_size_{STAMP}"] for r in after] == ["large", None]
    elif case == "remove multichoice option in use":
        assert [_json(r["tags"]) for r in after] == [["blue"], ["blue"]]
        assert [_json(r[f"_removed_tags_{STAMP}"]) for r in after] == [["red", "blue"], None]
    elif case == "new required field with a default":
        assert [r["priority"] for r in after] == [3, 3]
    elif case.startswith(("widen", "text to longtext")):
        assert [r["code"] for r in after] == [r["code"] for r in before]
        assert [str(r["amount"]).rstrip("0") for r in after] == \
            [str(r["amount"]).rstrip("0") for r in before]
    else:
        for old, new in zip(before, after, strict=True):
            assert {k: v for k, v in new.items() if k in old} == old


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def test_refused_plan_changes_nothing_and_explains(engine: sa.Engine, versions: Callable
                                                   ) -> None:
    model = install(engine, versions({"entities/item.yaml": ITEM}))
    insert(engine, model, "item", ROWS)
    new = build_model([versions({"entities/item.yaml": edit(
        ITEM, "  notes: {type: longtext}\n", "  color: {type: text}\n")})])
    plan = migrate.plan(new, engine, now=NOW)
    assert kinds(plan) == [("remove_column", "destructive"), ("add_column", "safe"),
                           ("search_index", "safe")]
    with pytest.raises(migrate.MigrationRefused) as info:
        migrate.apply(plan, engine, now=NOW)
    text = str(info.value)
    assert "nothing was changed" in text and "item.notes" in text and "1 record" in text
    assert "color" not in columns_of(engine, "item")  # not even the safe step ran


def test_removed_field_comes_back(engine: sa.Engine, versions: Callable) -> None:
    """A field removed (kept aside) and defined again gets a fresh column; no name clashes."""
    model = install(engine, versions({"entities/item.yaml": ITEM + "  ref: {type: text, "
                                      "unique: true, index: true}\n"}))
    insert(engine, model, "item", [{**ROWS[0], "ref": "x"}])
    install(engine, versions({"entities/item.yaml": ITEM}), allow=True)
    back = install(engine, versions({"entities/item.yaml": ITEM + "  ref: {type: text, "
                                     "unique: true, index: true}\n"}))
    assert migrate.plan(back, engine).empty
    assert rows_of(engine, "item")[0]["ref"] is None


def test_removed_entity_comes_back(engine: sa.Engine, versions: Callable) -> None:
    other = ("entity: other\nfields:\n  title: {type: text, index: true}\n"
             "  item: {type: link, to: item}\n")
    model = install(engine, versions({"entities/item.yaml": ITEM, "entities/other.yaml": other}))
    insert(engine, model, "item", ROWS[:1])
    install(engine, versions({"entities/item.yaml": ITEM}), allow=True)
    back = install(engine, versions({"entities/item.yaml": ITEM, "entities/other.yaml": other}))
    assert migrate.plan(back, engine).empty


def test_renamed_links_field_keeps_its_links(engine: sa.Engine, versions: Callable) -> None:
    v1 = ITEM + "  related: {type: links, to: item}\n"
    model = install(engine, versions({"entities/item.yaml": v1}))
    insert(engine, model, "item", ROWS)
    with engine.begin() as conn:
        conn.execute(build_schema(model).link_table("item", "related").insert().values(
            source_id=1, target_id=2))
    v2 = ITEM + "  friends: {type: links, to: item, renamed_from: related}\n"
    new = build_model([versions({"entities/item.yaml": v2})])
    plan = migrate.plan(new, engine)
    assert kinds(plan) == [("rename_table", "safe")]
    migrate.apply(plan, engine)
    assert migrate.plan(new, engine).empty
    assert [(r["source_id"], r["target_id"]) for r in rows_of_join(engine, "item__friends")] \
        == [(1, 2)]


def rows_of_join(engine: sa.Engine, table: str) -> list[dict[str, Any]]:
    with searchindex.reflecting():  # SQLite's prefix indexes are expressions
        reflected = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(reflected)).mappings()]


def test_applied_model_is_recorded(engine: sa.Engine, versions: Callable) -> None:
    model = install(engine, versions({"entities/item.yaml": ITEM}))
    schema = build_schema(model)
    with engine.connect() as conn:
        applied = conn.execute(sa.select(schema.system("model"))).all()
        installed = conn.execute(sa.select(schema.system("installed"))).all()
    assert [(r.hash, r.packs) for r in applied] == [(model.hash, {"test": "1.0.0"})]
    assert [(r.pack, r.version, r.demo) for r in installed] == [("test", "1.0.0", False)]
    install(engine, versions({"entities/item.yaml": ITEM}))  # nothing new: nothing recorded
    with engine.connect() as conn:
        assert len(conn.execute(sa.select(schema.system("model"))).all()) == 1


# -- round trips: install, then the plan must be empty ------------------------------------


def _packs() -> list:
    params = [pytest.param([FIXTURES / "core", FIXTURES / "spec"], id="spec-fixture")]
    for name, path in sorted(discover([SHIPPED_DIR]).items()):
        # the verticals take 5-7 s each: `make test` runs them, `make test-fast` runs core
        marks = () if name == "core" else pytest.mark.slow
        params.append(pytest.param([path], id=name, marks=marks))
    return params


@functools.cache
def _model(paths: tuple[Path, ...]) -> AppModel | str:
    """The model of `paths` (built once per worker: both databases use it), or the first
    error when it does not validate."""
    try:
        return build_model(list(paths))
    except DefinitionError as exc:
        return (str(exc).splitlines() or [""])[0]


@pytest.mark.parametrize("paths", _packs())
def test_second_plan_is_empty(paths: list[Path], engine: sa.Engine) -> None:
    model = _model(tuple(paths))
    if isinstance(model, str):
        pytest.skip(f"pack does not validate yet: {model[:200]}")
    plan = migrate.plan(model, engine)
    assert plan.ops and all(op.safety == "safe" for op in plan.ops)
    migrate.apply(plan, engine)
    second = migrate.plan(model, engine)
    assert second.empty, second.lines()


@pytest.mark.parametrize("present", [(), ("alembic_version",)], ids=["empty", "ignored-table"])
@pytest.mark.parametrize("paths", _packs()[:2])
def test_empty_database_is_planned_as_alembic_would(paths: list[Path], present: tuple[str, ...],
                                                    engine: sa.Engine) -> None:
    """A database without a table of ours is planned without Alembic's comparison (every
    table is new): the plan is the one Alembic's diffs give."""
    model = _model(tuple(paths))
    if isinstance(model, str):
        pytest.skip(f"pack does not validate yet: {model[:200]}")
    with engine.begin() as conn:
        for name in present:
            conn.execute(sa.text(f"CREATE TABLE {name} (version_num VARCHAR(32))"))
    with engine.connect() as conn:
        shortcut, alembic = _Planner(model, conn, STAMP), _Planner(model, conn, STAMP)
        assert not shortcut.has_tables()
        expected = alembic.plan(alembic.compared())
        assert len(expected.of_kind("create_table")) == len(build_schema(model).metadata.tables)
        assert shortcut.plan(shortcut.all_new()) == expected
        assert migrate.plan(model, conn, now=NOW) == expected


def test_a_database_with_a_table_of_ours_is_compared(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE contact (id INTEGER PRIMARY KEY)"))
    with engine.connect() as conn:
        assert _Planner(build_model([FIXTURES / "core"]), conn, STAMP).has_tables()


# -- small pieces --------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "wider"), [
    (sa.String(64), sa.String(255), True),
    (sa.String(255), sa.String(64), False),
    (sa.String(64), sa.Text(), True),
    (sa.Text(), sa.String(64), False),
    (sa.Integer(), sa.BigInteger(), True),
    (sa.BigInteger(), sa.Integer(), False),
    (sa.Numeric(10, 2), sa.Numeric(12, 2), True),
    (sa.Numeric(10, 2), sa.Numeric(10, 4), False),
    (sa.Numeric(10, 2), sa.Numeric(12, 4), True),
    (sa.Date(), sa.DateTime(), True),
    (sa.DateTime(), sa.Date(), False),
    (sa.String(64), sa.BigInteger(), False),
    (sa.Boolean(), sa.String(5), False),
])
def test_widening(old: sa.types.TypeEngine, new: sa.types.TypeEngine, wider: bool) -> None:
    dialect = sa.create_engine("postgresql+psycopg2://").dialect
    assert widens(type_signature(old, dialect), type_signature(new, dialect)) is wider


@pytest.mark.parametrize(("text", "normal"), [
    ("'1'::integer", "1"), ("1", "1"), ("false", "0"), ("'0'", "0"), ("(0)", "0"),
    ("'cash'::character varying", "cash"), (None, None), ("true", "1"),
])
def test_server_default_normalisation(text: str | None, normal: str | None) -> None:
    assert normalize_default(text) == normal


def test_create_all_elsewhere_does_not_lose_foreign_keys(engine: sa.Engine,
                                                         versions: Callable) -> None:
    """SQLAlchemy's create_all on PostgreSQL marks the shared tables' use_alter foreign keys
    "never inline"; a later install in the same process (on SQLite) must still create them."""
    model = build_model([versions({"entities/item.yaml": ITEM.replace(
        "entity: item", "entity: item\nlabel: Isolated") + "  parent: {type: link, to: item}\n"})])
    for table in build_schema(model).metadata.tables.values():
        for fk in table.foreign_key_constraints:
            if fk.use_alter:
                sa.schema.AddConstraint(fk)  # what create_all does on PostgreSQL
    migrate.apply(migrate.plan(model, engine), engine)
    assert migrate.plan(model, engine).empty
    fks = sa.inspect(engine).get_foreign_keys("item")
    assert {tuple(fk["constrained_columns"]) for fk in fks} >= {("parent",), ("owner",)}
