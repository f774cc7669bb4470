"""benchmarks/search.py on a few hundred rows: the fast PostgreSQL load (COPY, indexes built
after it) leaves the search index whole, and every measure runs, the collation one on
PostgreSQL only."""

from __future__ import annotations

import time

import sqlalchemy as sa

from benchmarks import search as bench
from builder.linker import build_model
from runtime.core import searchindex
from runtime.core.db import make_engine


def test_the_search_benchmark_loads_and_measures(database_url: str) -> None:
    names = bench.surnames()
    inst = bench.make(database_url)
    try:
        bench.load(inst, 400, names)
        postgresql = inst.engine.dialect.name == "postgresql"
        with inst.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM person")).scalar() == 400
            assert searchindex.stale(conn, inst.model) == (set(), set())
            if postgresql:  # the folded copies computed as the rows were copied in
                assert conn.execute(sa.text(
                    "SELECT count(*) FROM person WHERE _fold_last_name = lower(last_name) "
                    "AND _fold_email = email")).scalar() == 400
                indexes = {i["name"] for i in sa.inspect(conn).get_indexes("person")}
                assert {i.name for i in inst.schema.table("person").indexes} <= indexes
        times = bench.measure(inst, names[17], bench.CITIES[42], repeat=1)
        text = bench.report(times, 400, 2, "PostgreSQL" if postgresql else "SQLite", 1.0)
    finally:
        inst.engine.dispose()
    assert ("zh reader's ICU collation" in text) == postgresql
    assert "400 rows" in text


def test_a_kept_database_is_reused_and_its_index_brought_up_to_date(database_url) -> None:
    assert bench.reused(database_url, 0) is None  # nothing loaded there yet
    inst = bench.make(database_url)
    try:
        bench.load(inst, 30, bench.surnames())
    finally:
        inst.engine.dispose()
    assert bench.reused(database_url, 31) is None  # another size: loaded anew
    assert bench.reused(database_url, 30, every=10) is None  # another share of the surname
    with make_engine(database_url).begin() as conn:
        name = next(iter(searchindex.present(conn)))  # one object of the index lost
        model = build_model([bench.HERE / "person_pack"])
        searchindex.sync(conn, model, set(), {name})
        assert searchindex.stale(conn, model) != (set(), set())
    again = bench.reused(database_url, 30)
    assert again is not None
    try:
        with again.engine.connect() as conn:
            assert searchindex.stale(conn, again.model) == (set(), set())
        times = bench.interleaved({"a": lambda: None, "b": lambda: time.sleep(0.002)}, 3, 1)
        assert times["a"] < times["b"]
    finally:
        again.engine.dispose()


def test_the_searched_surname_takes_the_share_asked_for() -> None:
    names = bench.surnames()
    term = names[bench.SEARCHED]
    assert [row[1] for row in bench.rows(400, names)] == [names[n % 200] for n in range(400)]
    assert [row[1] for row in bench.rows(4000, names, every=20)].count(term) == 200  # 5%
