"""Renaming (`renamed_from`) a field that indexes cover: a list's sort field (`ix_<table>_<field>`),
a list filter (the composite `(filter, sort…, id)`), a link field (its index and foreign key), a
unique field (its constraint), a field whose type changes too. The migration drops the old
indexes, renames the column with its data and makes the indexes under the new name — on SQLite
(a table copy) and PostgreSQL alike — and planning again afterwards finds nothing to do."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support import write_pack

from builder.linker import build_model
from builder.model import AppModel
from runtime.core import searchindex
from runtime.core.db import make_engine
from runtime.core.schema import build_schema
from runtime.process import migrate

NOW = datetime(2026, 3, 2, 9, 0, 0)

PERSON = """\
entity: person
fields:
  first_name: {type: text}
  last_name: {type: text, max_length: 80}
  status: {type: choice, options: [lead, client]}
  email: {type: email, unique: true}
  company: {type: link, to: company}
views:
  list:
    columns: [first_name, last_name, status]
    filters: [status]
    sort: [last_name, first_name]
"""
COMPANY = "entity: company\nfields:\n  title: {type: text}\n"
ROWS = [
    {"first_name": "Ann", "last_name": "Zeta", "status": "lead", "email": "ann@x.org"},
    {"first_name": "Bob", "last_name": "Alpha", "status": "client", "email": "bob@x.org"},
    {"first_name": "Cid", "last_name": None, "status": None, "email": None},
]


def edit(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    return text


SORT_RENAMED = (("  last_name: {type: text, max_length: 80}",
                 "  surname: {type: text, max_length: 80, renamed_from: last_name}"),
                ("[first_name, last_name, status]", "[first_name, surname, status]"),
                ("sort: [last_name, first_name]", "sort: [surname, first_name]"))
FILTER_RENAMED = (("  status: {type: choice, options: [lead, client]}",
                   "  stage: {type: choice, options: [lead, client], renamed_from: status}"),
                  ("surname, status]", "surname, stage]"),
                  ("last_name, status]", "last_name, stage]"),
                  ("filters: [status]", "filters: [stage]"))

# name: (edits of PERSON, the renamed columns as {new: old})
CASES: dict[str, tuple[tuple[tuple[str, str], ...], dict[str, str]]] = {
    "sort field": (SORT_RENAMED, {"surname": "last_name"}),
    "descending sort field": (
        (*SORT_RENAMED[:2], ("sort: [last_name, first_name]", "sort: [-surname, first_name]")),
        {"surname": "last_name"}),
    "filter field": (FILTER_RENAMED[:1] + FILTER_RENAMED[2:], {"stage": "status"}),
    "sort and filter fields": (SORT_RENAMED + FILTER_RENAMED[1:2] + FILTER_RENAMED[:1]
                               + FILTER_RENAMED[3:], {"surname": "last_name", "stage": "status"}),
    "sort field with a narrower type": (
        ((SORT_RENAMED[0][0], "  surname: {type: text, max_length: 3, renamed_from: last_name}"),
         *SORT_RENAMED[1:]), {"surname": "last_name"}),
    "sort field with a wider type": (
        ((SORT_RENAMED[0][0], "  surname: {type: text, max_length: 200, renamed_from: last_name}"),
         *SORT_RENAMED[1:]), {"surname": "last_name"}),
    "unique field": ((("  email: {type: email, unique: true}",
                       "  mail: {type: email, unique: true, renamed_from: email}"),),
                     {"mail": "email"}),
    "link field": ((("  company: {type: link, to: company}",
                     "  employer: {type: link, to: company, renamed_from: company}"),),
                   {"employer": "company"}),
}


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def versions(tmp_path: Path) -> Callable[[str], AppModel]:
    """`versions(person)`: the model of the test pack with `person` as its person entity."""
    def write(person: str) -> AppModel:
        return build_model([write_pack(tmp_path / "packs", {
            "entities/person.yaml": person, "entities/company.yaml": COMPANY})])
    return write


def migrate_to(model: AppModel, engine: sa.Engine) -> migrate.Plan:
    """What `crmforge migrate --allow-destructive` does: plan, then apply the plan."""
    plan = migrate.plan(model, engine, now=NOW)
    migrate.apply(plan, engine, allow_destructive=True, now=NOW)
    return plan


def rows_of(engine: sa.Engine) -> list[dict[str, Any]]:
    with searchindex.reflecting():  # SQLite's prefix indexes are expressions
        table = sa.Table("person", sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.id)).mappings()
        # not PostgreSQL's folded copies of searched columns: the search index step's own
        return [{k: v for k, v in r.items() if not k.startswith("_fold_")} for r in rows]


def indexes_of(engine: sa.Engine) -> dict[str, tuple[str, ...]]:
    with searchindex.reflecting():  # SQLite's prefix indexes are expressions
        found = sa.inspect(engine).get_indexes("person")
    return {i["name"]: tuple(i["column_names"]) for i in found}


def expected_indexes(model: AppModel) -> dict[str, tuple[str, ...]]:
    table = build_schema(model).table("person")
    return {str(i.name): tuple(c.name for c in i.columns) for i in table.indexes}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_renamed_indexed_field_keeps_its_data_and_indexes(case: str, engine: sa.Engine,
                                                          versions: Callable) -> None:
    edits, renamed = CASES[case]
    model = versions(PERSON)
    migrate_to(model, engine)
    with engine.begin() as conn:
        conn.execute(build_schema(model).table("company").insert().values(
            id=1, title="Acme", created_at=NOW, updated_at=NOW, version=1))
        conn.execute(build_schema(model).table("person").insert(), [
            {**row, "company": 1 if row["email"] else None, "created_at": NOW,
             "updated_at": NOW, "version": 1} for row in ROWS])
    before = rows_of(engine)

    new = versions(edit(PERSON, *edits))
    plan = migrate_to(new, engine)
    assert [op.new for op in plan.of_kind("rename_column")] == list(renamed), plan.lines()
    assert migrate.plan(new, engine, now=NOW).empty, migrate.plan(new, engine).lines()

    after = rows_of(engine)
    narrowed = case == "sort field with a narrower type"
    for old_row, new_row in zip(before, after, strict=True):
        moved = {new_name: old_row[old_name] for new_name, old_name in renamed.items()}
        if narrowed:  # 'Zeta' and 'Alpha' do not fit in 3: kept aside, the field is empty
            assert new_row["surname"] is None
            assert new_row["_removed_surname_20260302090000"] == old_row["last_name"]
            moved.pop("surname")
        kept = {k: v for k, v in old_row.items() if k not in renamed.values()}
        assert {k: new_row[k] for k in [*kept, *moved]} == {**kept, **moved}
        assert not set(renamed.values()) & set(new_row)
    live = indexes_of(engine)
    assert {k: v for k, v in live.items() if k in expected_indexes(new)} == \
        expected_indexes(new)
    assert not any(old in columns for columns in live.values() for old in renamed.values())
    if case == "link field":
        fks = sa.inspect(engine).get_foreign_keys("person")
        assert ("employer",) in {tuple(fk["constrained_columns"]) for fk in fks}


def test_sort_rename_plan_says_what_happens(engine: sa.Engine, versions: Callable) -> None:
    """The plan drops the old indexes, renames, then adds the new ones — all safe."""
    migrate_to(versions(PERSON), engine)
    plan = migrate.plan(versions(edit(PERSON, *SORT_RENAMED)), engine, now=NOW)
    local = [(op.kind, getattr(op, "name", "") or getattr(op, "new", ""))
             for op in plan.ops if op.kind != "search_index"]
    assert sorted(local) == sorted([
        ("drop_index", "ix_person_last_name"),
        ("drop_index", "ix_person_status_last_name_first_name_id"),
        ("rename_column", "surname"),
        ("add_index", "ix_person_surname"),
        ("add_index", "ix_person_status_surname_first_name_id")])
    kinds = [kind for kind, _ in local]
    assert kinds.index("rename_column") > max(i for i, k in enumerate(kinds) if k == "drop_index")
    assert kinds.index("rename_column") < min(i for i, k in enumerate(kinds) if k == "add_index")
    assert all(op.safety == "safe" for op in plan.ops), plan.lines()


def test_unique_rename_over_repeated_values_is_refused_clearly(engine: sa.Engine,
                                                               versions: Callable) -> None:
    """A field renamed and made unique at once, over repeated values: the plan counts them on
    the old column and refuses, naming them, before anything changes."""
    model = versions(PERSON)
    migrate_to(model, engine)
    with engine.begin() as conn:
        conn.execute(build_schema(model).table("person").insert(), [
            {"first_name": "Ann", "last_name": "Same", "created_at": NOW, "updated_at": NOW,
             "version": 1} for _ in range(2)])
    new = versions(edit(PERSON, ("  last_name: {type: text, max_length: 80}",
                                 "  surname: {type: text, max_length: 80, unique: true, "
                                 "renamed_from: last_name}"), *SORT_RENAMED[1:]))
    plan = migrate.plan(new, engine, now=NOW)
    refused = plan.refused()
    assert [op.kind for op in refused] == ["add_unique"], plan.lines()
    with pytest.raises(migrate.MigrationRefused) as info:
        migrate.apply(plan, engine, now=NOW)
    assert "surname" in str(info.value) and "held by more than one" in str(info.value)
    assert "last_name" in {c["name"] for c in sa.inspect(engine).get_columns("person")}


def test_rename_onto_a_name_still_in_use_is_refused_clearly(engine: sa.Engine,
                                                            versions: Callable) -> None:
    """`surname` renamed from `last_name` while a new `last_name` field comes in the same
    version: one migration cannot both move and keep the column. The plan says so (the
    command prints it, no traceback) and nothing changes; done in two versions, it works."""
    model = versions(PERSON)
    migrate_to(model, engine)
    with engine.begin() as conn:
        conn.execute(build_schema(model).table("person").insert().values(
            last_name="Zeta", created_at=NOW, updated_at=NOW, version=1))
    renamed = edit(PERSON, *SORT_RENAMED)
    both = renamed.replace("  first_name: {type: text}\n",
                           "  first_name: {type: text}\n  last_name: {type: integer}\n")
    with pytest.raises(migrate.MigrationFailed) as info:
        migrate.plan(versions(both), engine, now=NOW)
    assert str(info.value).startswith(
        "cannot rename person.last_name to person.surname (renamed_from) while person still "
        "has a field named last_name: nothing was changed")
    assert rows_of(engine)[0]["last_name"] == "Zeta"

    migrate_to(versions(renamed), engine)
    final = versions(both)
    migrate_to(final, engine)
    assert migrate.plan(final, engine, now=NOW).empty
    assert [(r["surname"], r["last_name"]) for r in rows_of(engine)] == [("Zeta", None)]
