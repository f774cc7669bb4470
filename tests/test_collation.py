"""Lists sort text in the reader's alphabet (runtime/read/collation.py): PostgreSQL's ICU
collations ("Ángel" beside "Ana", "Ñ" after "N" in Spanish, Chinese by pinyin), with next and
previous pages that follow on exactly; on SQLite the documented fallback, code point order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
import sqlalchemy as sa
from support import admin_actor, write_pack

from runtime.core.instance import Instance
from runtime.read import collation
from runtime.write import records

PLACE = """\
entity: place
fields:
  name: {type: text, required: true}
  code: {type: integer}
views:
  list: {columns: [name, code], sort: [name]}
"""
NAMES = ["Zoe", "ana", "Ángel", "Ñandú", "Nube", "oso", "Oso", "北京", "上海", "广州", "Andrés"]
SPANISH = ["ana", "Andrés", "Ángel", "Nube", "Ñandú", "oso", "Oso", "Zoe"]
CHINESE = ["北京", "广州", "上海"]  # bei, guang, shang


@pytest.fixture
def places(make_instance: Callable[..., Instance], tmp_path) -> Instance:
    inst = make_instance(write_pack(tmp_path, {"entities/place.yaml": PLACE}))
    actor = admin_actor(inst)
    for n, name in enumerate(NAMES):
        records.create(inst, actor, "place", {"name": name, "code": n})
    return inst


def names(inst: Instance, language: str, **options) -> list[str]:
    reader = replace(admin_actor(inst), language=language)
    return [r["name"] for r in records.query(inst, reader, "place", limit=100, **options).rows]


def paged(inst: Instance, language: str, sort: str | None = None) -> list[str]:
    """Every name, two to a page, then the same pages walked back from the end."""
    reader = replace(admin_actor(inst), language=language)
    pages, cursor = [], None
    while True:
        page = records.query(inst, reader, "place", limit=2, cursor=cursor, sort=sort)
        pages.append([r["name"] for r in page.rows])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    back, cursor = [pages[-1]], page.prev_cursor
    while cursor is not None:
        page = records.query(inst, reader, "place", limit=2, cursor=cursor, sort=sort)
        back.insert(0, [r["name"] for r in page.rows])
        cursor = page.prev_cursor
    assert back == pages  # previous pages are the very pages seen going forward
    return [name for page in pages for name in page]


def icu(inst: Instance) -> bool:
    with inst.engine.connect() as conn:
        return collation.for_language(conn, "es") is not None


def test_spanish_and_chinese_order(places) -> None:
    if not icu(places):
        pytest.skip("SQLite (or PostgreSQL without ICU): see test_sqlite_sorts_by_code_point")
    spanish = names(places, "es")
    assert [n for n in spanish if n in SPANISH] == SPANISH
    chinese = names(places, "zh")
    assert [n for n in chinese if n in CHINESE] == CHINESE
    assert names(places, "es", sort="-name") == spanish[::-1]


@pytest.mark.parametrize("language", ["es", "zh", "en"])
def test_pages_follow_on_in_the_collation(places, language) -> None:
    assert paged(places, language) == names(places, language)
    assert paged(places, language, "-name") == names(places, language, sort="-name")


def test_sqlite_sorts_by_code_point(places) -> None:
    with places.engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            pytest.skip("SQLite's fallback")
        assert collation.for_language(conn, "es") is None
    assert names(places, "es") == sorted(NAMES)


def test_other_types_and_unknown_languages_keep_the_plain_order(places) -> None:
    table = places.schema.table("place")
    with places.engine.connect() as conn:
        assert collation.for_language(conn, "xx") is None
        plain = conn.execute(sa.select(table.c.name).order_by(table.c.name, table.c.id))
        assert names(places, "xx") == list(plain.scalars())  # the database's own order
        ent = places.model.entity("place")
        column = collation.sort_column(ent, table, "code", "es-x-icu")
        assert column is table.c.code  # numbers are numbers in every language
        rendered = str(collation.sort_column(ent, table, "name", "es-x-icu").compile(
            dialect=sa.create_engine("postgresql+psycopg2://").dialect))
        assert rendered == 'place.name COLLATE "es-x-icu"'
