"""A ranked search's first page when its exact matches alone fill it (read/best_page.py):
the page is read from the exact matches only — on PostgreSQL those of the
list's first sort column value by value, the few spellings of the search ("Nuñez", "NUNEZ",
"núñez") put in the reader's collation —, the prefix matches are not read, and the page, its
order and its count are the whole ranking's, in every reader's alphabet and sort."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from support import admin_actor, insert_user, write_pack

from runtime.core import searchindex
from runtime.core.instance import Actor, Instance
from runtime.write import records

PERSON = """\
entity: person
fields:
  first_name: {{type: text}}
  last_name: {{type: text, required: true}}
  city: {{type: text}}
search: [first_name, last_name]
views:
  list: {{columns: [first_name, last_name, city], sort: {sort}, filters: [city],
         page_size: 50}}
permissions:
  clerk: {{read: "city == 'Leeds'"}}
"""
ROLES = "roles:\n  clerk: {label: Clerk}\n"
SPELLINGS = ["Nuñez", "Nunez", "NUÑEZ", "nuñez", "Núñez", "NUNEZ"]  # one folded value
OTHERS = ["Ñandú", "Nandu", "Nyman", "Oz", "Abbot", "nuñez", "Zubiri"]  # first name Nuñez
LONG = "\ufdfa" * 60  # folds to more than SHORT_BYTES: the row is kept out of the btrees


@pytest.fixture(params=["[last_name]", "[-last_name]", "[last_name, first_name]"])
def people(request, make_instance: Callable[..., Instance], tmp_path) -> Instance:
    inst = make_instance(write_pack(tmp_path, {
        "entities/person.yaml": PERSON.format(sort=request.param), "roles.yaml": ROLES}))
    actor = admin_actor(inst)
    rows = [(first, last, city) for n, last in enumerate(SPELLINGS * 3)
            for first, city in [(["Ann", "bob", "Cy", None][n % 4], ["Leeds", "York"][n % 2])]]
    rows += [("Nuñez", last, "Leeds") for last in OTHERS]
    rows += [(None, "Nuñezca", "Leeds"), ("Nunezio", "Smith", "York"), (LONG, "NÚÑEZ", "Leeds"),
             ("Ed", "Bonunez", "Leeds")]  # prefix matches, a long row, a substring one
    for first, last, city in rows:
        records.create(inst, actor, "person", {"first_name": first, "last_name": last,
                                               "city": city})
    return inst


def ranking(inst: Instance, actor: Actor, q: str) -> list[int]:
    """The whole ranking, read as before: the full search, no count asked."""
    return [r["id"] for r in records.query(inst, actor, "person", q=q, limit=500).rows]


def best(inst: Instance, actor: Actor, q: str) -> int:
    """How many of the actor's matches have a search field equal to or starting with it."""
    text = searchindex.fold(q.strip())
    return sum(any((searchindex.fold(r.get(f)) or "").startswith(text)
                   for f in ("first_name", "last_name"))
               for r in records.query(inst, actor, "person", q=q, limit=500).rows)


def reads_prefixes(statement: str) -> bool:
    """Whether a statement reads the values starting with the search: `LIKE 'term%'` on
    PostgreSQL, a range up to the term and the byte 0xFF on SQLite."""
    return " LIKE " in statement or "X'FF'" in statement


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("q", ["nunez", "NÚÑEZ "])
@pytest.mark.parametrize("limit", [1, 7, 20])
def test_a_page_of_exact_matches_is_the_whole_rankings_first(people, language, q,
                                                            limit) -> None:
    inst = people
    actor = dataclasses.replace(admin_actor(inst), language=language)
    whole = ranking(inst, actor, q)
    page = records.query(inst, actor, "person", q=q, limit=limit, count_cap=1000)
    assert [r["id"] for r in page.rows] == whole[:limit]
    ids, cursor = [r["id"] for r in page.rows], page.next_cursor
    while cursor:  # the next pages follow on from it
        more = records.query(inst, actor, "person", q=q, limit=limit, cursor=cursor)
        ids, cursor = ids + [r["id"] for r in more.rows], more.next_cursor
    assert ids == whole
    assert page.count == (best(inst, actor, q), False)  # exact and prefix: at least them
    assert len(whole) > best(inst, actor, q)  # Bonunez is found, not counted


def test_the_prefix_matches_are_not_read_when_the_exact_ones_fill_the_page(people) -> None:
    inst = people
    pages: list[str] = []  # the statements that read the page's rows

    def seen(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if "person.city" in statement:
            pages.append(statement)

    sa.event.listen(inst.engine, "before_cursor_execute", seen)
    try:
        page = records.query(inst, admin_actor(inst), "person", q="nunez", limit=20,
                             count_cap=1000)
        assert len(page.rows) == 20 and page.count == (28, False)
        assert pages and not any(reads_prefixes(s) for s in pages)
        if inst.engine.dialect.name == "postgresql":  # the spellings, one index probe each
            assert any("WITH RECURSIVE" in s for s in pages)
        pages.clear()
        page = records.query(inst, admin_actor(inst), "person", q="nunez", limit=27,
                             count_cap=1000)  # 26 exact matches: a prefix one comes next
        assert page.rows[26]["last_name"] in {"Nuñezca", "Smith"}
        assert page.count == (28, False)
        assert any(reads_prefixes(s) for s in pages)
    finally:
        sa.event.remove(inst.engine, "before_cursor_execute", seen)


@pytest.mark.parametrize("cap", [1, 20, 25, 28, 29, 1000])
def test_the_count_stops_at_the_cap(people, cap) -> None:
    inst = people
    actor = admin_actor(inst)
    matches = best(inst, actor, "nunez")  # 18 + 7 + the long one, and two prefixes
    assert matches == 28
    page = records.query(inst, actor, "person", q="nunez", limit=5, count_cap=cap)
    assert page.count == (min(cap, matches), False)


def test_row_filters_hold_on_each_spelling(people) -> None:
    inst = people
    clerk = insert_user(inst, "clerk", roles=["clerk"])
    whole = ranking(inst, clerk, "nunez")
    page = records.query(inst, clerk, "person", q="nunez", limit=6, count_cap=1000)
    assert [r["id"] for r in page.rows] == whole[:6]
    assert {r["city"] for r in page.rows} == {"Leeds"}
    assert page.count == (best(inst, clerk, "nunez"), False)


def test_the_planner_knows_the_long_rows_are_few(make_instance, tmp_path) -> None:
    """The rows too long for the prefix indexes are read from `ix_prefix_<table>__long`,
    which the planner takes only when it knows they are few: the statistics of the sizes
    (`ix_prefix_<table>__sizes`) tell it. Without them it guesses each size condition holds
    for one row in three, takes most rows for long ones, and at 1,000,000 rows read the long
    rows' matches of a surname from the trigram index and the table: the 50,000 rows that
    have it (docs/performance.md, notes on search)."""
    inst = make_instance(write_pack(tmp_path, {
        "entities/person.yaml": PERSON.format(sort="[last_name]"), "roles.yaml": ROLES}))
    table = inst.schema.table("person")
    ent = inst.model.entity("person")
    long = sa.not_(searchindex.short_clause(table, searchindex.short_columns(ent)))
    stmt = sa.select(table.c.id).where(long)

    def guessed(conn: sa.Connection) -> int:
        conn.exec_driver_sql("ANALYZE person")
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        return conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql).scalar()[0]["Plan"][
            "Plan Rows"]

    with inst.engine.begin() as conn:
        if conn.dialect.name != "postgresql" or not searchindex.expression_statistics(conn):
            pytest.skip("PostgreSQL's planner, with statistics on expressions")
        now = inst.now()
        conn.execute(table.insert(), [
            {"first_name": LONG if n == 7 else "Ann", "last_name": f"Name {n}",
             "created_at": now, "updated_at": now, "version": 1} for n in range(5000)])
        assert guessed(conn) < 10
        conn.exec_driver_sql(f'DROP STATISTICS "{searchindex.sizes_name("person")}"')
        assert guessed(conn) > 2500
