"""The list indexes in each reader's alphabet (runtime/core/sortindex.py): on PostgreSQL a
page of a list sorted by a text field in the reader's ICU collation is read from an index in
that collation (not by sorting the whole table); `crmforge migrate` makes them for instances
from before them and remakes them when the list's sort changes; SQLite has none."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from support import admin_actor, write_pack

from builder.linker import build_model
from runtime.core import sortindex
from runtime.core.instance import Instance
from runtime.process import migrate
from runtime.read import accounts, collation, paging
from runtime.write import bulk, records

PLACE = """\
entity: place
fields:
  name: {type: text, required: true}
  city: {type: text}
  code: {type: integer}
views:
  list: {columns: [name, city, code], sort: [name], filters: [city]}
"""
ROWS = 5000
CHINESE = "北京上海广州深圳成都重庆天津南京武汉西安"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def places(make_instance: Callable[..., Instance], tmp_path) -> Instance:
    inst = make_instance(write_pack(tmp_path / "v1", {"entities/place.yaml": PLACE}))
    if inst.engine.dialect.name != "postgresql":
        pytest.skip("collated indexes are PostgreSQL's (SQLite sorts by code point)")
    return inst


def fill(inst: Instance, rows: int) -> None:
    table = inst.schema.table("place")
    values = [{"name": CHINESE[n % len(CHINESE)] + CHINESE[n * 7 % len(CHINESE)] + f"{n}",
               "city": ("Leeds", "Bristol")[n % 2], "code": n, "version": 1,
               "created_at": NOW, "updated_at": NOW}
              for n in range(rows)]
    with inst.engine.begin() as conn:
        conn.execute(table.insert(), values)
        conn.exec_driver_sql("ANALYZE place")


def plan_of(inst: Instance, language: str, desc: bool = False) -> str:
    """EXPLAIN of the first page's query of a reader of `language` (queries.query's)."""
    ent, table = inst.model.entity("place"), inst.schema.table("place")
    keys = [("name", desc), ("id", desc)]
    with inst.engine.begin() as conn:
        coll = collation.for_language(conn, language)
        assert coll == f"{language}-x-icu"
        columns = [collation.sort_column(ent, table, n, coll) for n, _ in keys]
        statement = paging.page_statements(table, columns, keys, None, True, coll)[0]
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a plan that does not
        # depend on the planner's estimates of a small table
        sql = statement.params(lim=51).compile(dialect=conn.dialect,
                                               compile_kwargs={"literal_binds": True})
        rows = conn.exec_driver_sql(f"EXPLAIN {sql}".replace("%", "%%")).scalars().all()
    return "\n".join(rows)


def test_the_app_languages_are_indexed() -> None:
    assert set(sortindex.LANGUAGES) == set(accounts.LANGUAGES)


def test_names_fit_postgresql() -> None:
    name = sortindex.index_name("t" * 40, ["a" * 30, "b" * 30], "zh")
    assert len(name) == 63 and name != sortindex.index_name("t" * 40, ["a" * 30, "c" * 30],
                                                             "zh")
    assert sortindex.index_name("place", ["name"], "en") == "ix_coll_place_name_en"


@pytest.mark.postgres
@pytest.mark.parametrize("language", ["en", "zh", "es"])
@pytest.mark.parametrize("desc", [False, True])
def test_first_page_reads_the_collated_index(places, language, desc) -> None:
    fill(places, ROWS)
    plan = plan_of(places, language, desc)
    assert "Index Scan" in plan and f"ix_coll_place_name_{language}" in plan, plan
    assert "Sort" not in plan.replace("Sort Key", ""), plan


@pytest.mark.postgres
def test_filtered_lists_have_a_collated_composite(places) -> None:
    with places.engine.connect() as conn:
        have = sortindex.present(conn)
    assert set(have) == {f"ix_coll_place_{cols}_{lang}" for cols in ("name", "city_name")
                         for lang in ("en", "es", "zh")}
    assert 'city, name COLLATE "zh-x-icu", id' in have["ix_coll_place_city_name_zh"][1]


@pytest.mark.postgres
@pytest.mark.parametrize("sort", [None, "-name"])
def test_zh_pages_forward_and_back_keep_every_row_once(places, sort) -> None:
    actor = admin_actor(places)
    bulk.create_many(places, actor, "place", [(n, {"name": CHINESE[n % 11] + str(n % 7)})
                                              for n in range(60)])  # ties broken by id
    reader = replace(actor, language="zh")
    pages, cursor = [], None
    while True:
        page = records.query(places, reader, "place", limit=7, cursor=cursor, sort=sort)
        pages.append([r["id"] for r in page.rows])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    back, cursor = [pages[-1]], page.prev_cursor
    while cursor is not None:
        page = records.query(places, reader, "place", limit=7, cursor=cursor, sort=sort)
        back.insert(0, [r["id"] for r in page.rows])
        cursor = page.prev_cursor
    seen = [i for p in pages for i in p]
    assert back == pages and len(seen) == len(set(seen)) == 60
    whole = records.query(places, reader, "place", limit=100, sort=sort).rows
    assert [r["id"] for r in whole] == seen


@pytest.mark.postgres
def test_migrate_makes_and_remakes_them(places, tmp_path) -> None:
    with places.engine.begin() as conn:  # an instance from before them
        for name in sortindex.present(conn):
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
    plan = migrate.plan(places.model, places.engine)
    assert [op.kind for op in plan] == ["search_index"]
    assert "ix_coll_place_name_zh" in plan.ops[0].describe()
    migrate.apply(plan, places.engine)
    assert migrate.plan(places.model, places.engine).empty
    with places.engine.connect() as conn:
        assert "ix_coll_place_name_es" in sortindex.present(conn)
    by_city = PLACE.replace("sort: [name]", "sort: [city]").replace("filters: [city]",
                                                                     "filters: [code]")
    model = build_model([write_pack(tmp_path / "v2", {"entities/place.yaml": by_city})])
    plan = migrate.plan(model, places.engine)
    assert "search_index" in [op.kind for op in plan]
    migrate.apply(plan, places.engine)
    assert migrate.plan(model, places.engine).empty
    with places.engine.connect() as conn:
        have = sortindex.present(conn)
    assert set(have) == {f"ix_coll_place_{cols}_{lang}" for cols in ("city", "code_city")
                         for lang in ("en", "es", "zh")}


@pytest.mark.postgres
def test_a_type_change_drops_and_remakes_them(places, tmp_path) -> None:
    numbered = PLACE.replace("city: {type: text}", "city: {type: integer}").replace(
        "sort: [name]", "sort: [city]")
    model = build_model([write_pack(tmp_path / "v2", {"entities/place.yaml": numbered})])
    migrate.apply(migrate.plan(model, places.engine), places.engine,
                  allow_destructive=True)
    assert migrate.plan(model, places.engine).empty
    with places.engine.connect() as conn:
        assert set(sortindex.present(conn)) == set()  # numbers sort alike in every language
