"""PostgreSQL's bulk SQL (runtime/core/db.py): many rows by COPY (`insert_many`), many
changes by COPY into a temporary table and one UPDATE … FROM it (`update_by_copy`), each
storing exactly what SQLAlchemy's own INSERT or UPDATE of the same values stores; and the
duplicate rules' advisory locks (runtime/write/checks.py), kept to one schema and taken in
the order of their keys."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import provision_database
from test_bulk_write import AUTOMATIONS, MEMBER, Pair, pack_files, twin_instances

from runtime.core import rowcache
from runtime.core.db import COPY_FROM, insert_many, make_engine, update_by_copy
from runtime.core.instance import Actor
from runtime.write import bulk, checks, records

pytestmark = pytest.mark.postgres
SYSTEM = Actor.system_actor("test")
HOSTILE = ["", "tab\there", "line\nbreak", "cr\rreturn", "back\\slash", "\\N", "\\.", "a\\tb",
           "李小龙 🐉", "quote ' \" ;--", "%s %(x)s {}", "trailing space ", "x" * 20]


def _table(metadata: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(name, metadata,
                    sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
                    sa.Column("version", sa.BigInteger(), nullable=False),
                    sa.Column("name", sa.String(20)), sa.Column("body", sa.Text()),
                    sa.Column("n", sa.BigInteger()), sa.Column("price", sa.Numeric(18, 2)),
                    sa.Column("ratio", sa.Float()),
                    sa.Column("flag", sa.Boolean(create_constraint=False)),
                    sa.Column("born", sa.Date()), sa.Column("at", sa.DateTime()),
                    sa.Column("tags", sa.JSON()))


@pytest.fixture
def tables(tmp_path: Path) -> Iterator[tuple[sa.Engine, sa.Table, sa.Table]]:
    """Two tables of every column type the schema uses, in a new PostgreSQL schema: one
    written by our bulk SQL, one by SQLAlchemy's own statements."""
    with provision_database("postgresql", tmp_path) as url:
        engine = make_engine(url)
        metadata = sa.MetaData()
        ours, theirs = _table(metadata, "ours"), _table(metadata, "theirs")
        metadata.create_all(engine)
        try:
            yield engine, ours, theirs
        finally:
            engine.dispose()


def _rows(count: int, seed: int) -> list[dict[str, Any]]:
    """`count` rows (ids 1…count) holding hostile texts, NULLs, extreme numbers, JSON."""
    rows = []
    for i in range(count):
        k = i + seed
        rows.append({
            "id": i + 1, "version": 1,
            "name": None if k % 7 == 0 else HOSTILE[k % len(HOSTILE)],
            "body": "\n".join(HOSTILE[: k % len(HOSTILE)]) or None,
            "n": [0, -1, 2**62, -(2**62), None][k % 5],
            "price": [Decimal("12.345"), Decimal("-0.005"), Decimal("9999999999999999.99"),
                      None, Decimal("0")][k % 5],
            "ratio": [1.5, -0.0, 1e300, None, float("inf")][k % 5],
            "flag": [True, False, None][k % 3],
            "born": [date(1900, 1, 1), date(2026, 12, 5), None][k % 3],
            "at": [datetime(2026, 12, 5, 19, 30, 1, 123456), None][k % 2],
            "tags": [{"a": [1, "x\ty", None], "b": "\\N"}, ["李", "\n"], None, "plain"][k % 4]})
    return rows


def _contents(engine: sa.Engine, table: sa.Table) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            sa.select(table, sa.cast(table.c.tags, sa.Text)).order_by(table.c.id))]


def _inserted(engine: sa.Engine, ours: sa.Table, theirs: sa.Table,
              rows: list[dict[str, Any]]) -> list[str]:
    """`rows` into `ours` by `insert_many`, into `theirs` by SQLAlchemy's INSERT; the
    statements `insert_many` ran that SQLAlchemy's events saw (their first three words)."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        seen.append(" ".join(sql.split()[:3]))

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        with engine.begin() as conn:
            insert_many(conn, ours, rows)
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)
    with engine.begin() as conn:
        conn.execute(theirs.insert(), rows)
    return seen


def test_many_rows_go_by_copy_and_store_what_an_insert_stores(tables) -> None:
    engine, ours, theirs = tables
    rows = _rows(COPY_FROM + 40, seed=0)
    seen = _inserted(engine, ours, theirs, rows)
    assert not [s for s in seen if s.startswith("INSERT")]  # COPY, which no event sees
    assert _contents(engine, ours) == _contents(engine, theirs)
    assert len(_contents(engine, ours)) == len(rows)


def test_fewer_rows_than_copy_takes_go_as_an_insert(tables) -> None:
    engine, ours, theirs = tables
    assert _inserted(engine, ours, theirs, _rows(COPY_FROM - 1, seed=3)) == ["INSERT INTO ours"]
    assert _contents(engine, ours) == _contents(engine, theirs)


def test_a_nul_is_refused_and_nothing_is_written(tables) -> None:
    engine, ours, _ = tables
    rows = _rows(COPY_FROM, seed=0)
    rows[7]["body"] = "a\x00b"  # no PostgreSQL text holds one
    with pytest.raises(sa.exc.DataError, match="0x00"), engine.begin() as conn:
        insert_many(conn, ours, rows)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ours)).scalar() == 0


def test_a_copy_rolled_back_with_its_savepoint_leaves_nothing(tables) -> None:
    engine, ours, _ = tables
    with engine.begin() as conn:
        try:
            with conn.begin_nested():
                insert_many(conn, ours, _rows(COPY_FROM, seed=1))
                raise RuntimeError("refused")
        except RuntimeError:
            pass
        assert conn.execute(sa.select(sa.func.count()).select_from(ours)).scalar() == 0


def test_a_copy_forgets_the_ids_the_row_cache_knew_had_no_row(tables) -> None:
    engine, ours, _ = tables
    with engine.begin() as conn, rowcache.kept(conn):
        rowcache.keep(conn, "ours", 1, None)
        rowcache.keep(conn, "ours", 999, {"id": 999})
        insert_many(conn, ours, _rows(COPY_FROM, seed=2))
        assert rowcache.cached(conn, "ours", 1) is rowcache.MISSING
        assert rowcache.cached(conn, "ours", 999) == {"id": 999}


def _changes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row changed to another row's values, with `_crm_id` and `_crm_version`."""
    return [{**{k: v for k, v in new.items() if k not in ("id", "version")}, "version": 2,
             "_crm_id": old["id"], "_crm_version": 1}
            for old, new in zip(rows, _rows(len(rows), seed=5), strict=True)]


def _sqlalchemy_update(table: sa.Table) -> Any:
    return table.update().where(table.c.id == sa.bindparam("_crm_id"),
                                table.c.version == sa.bindparam("_crm_version"))


def test_changes_by_copy_store_what_an_update_stores(tables) -> None:
    engine, ours, theirs = tables
    rows = _rows(530, seed=0)
    changes = _changes(rows)
    changes[3]["_crm_version"] = 7  # changed by someone since it was read: not matched
    with engine.begin() as conn:
        conn.execute(ours.insert(), rows)
        conn.execute(theirs.insert(), rows)
    with engine.begin() as conn:
        assert update_by_copy(conn, ours, changes,
                                  {"id": "_crm_id", "version": "_crm_version"}) == len(rows) - 1
        conn.execute(_sqlalchemy_update(theirs), changes)
    assert _contents(engine, ours) == _contents(engine, theirs)
    assert _contents(engine, ours)[3][1] == 1  # its version as it was


def test_a_too_long_text_is_refused_not_cut(tables) -> None:
    engine, ours, _ = tables
    rows = _rows(3, seed=0)
    with engine.begin() as conn:
        conn.execute(ours.insert(), rows)
    changes = _changes(rows)
    changes[1]["name"] = "y" * 21  # the column is VARCHAR(20)
    with pytest.raises(sa.exc.DataError, match="too long"), engine.begin() as conn:
        update_by_copy(conn, ours, changes, {"id": "_crm_id", "version": "_crm_version"})
    with engine.begin() as conn:
        assert conn.execute(sa.select(ours.c.version)).scalars().all() == [1, 1, 1]


def test_a_refused_batch_leaves_no_table_behind_for_the_next(tables) -> None:
    engine, ours, _ = tables
    rows = _rows(4, seed=0)
    match = {"id": "_crm_id", "version": "_crm_version"}
    with engine.begin() as conn:
        conn.execute(ours.insert(), rows)
        changes = _changes(rows)
        assert update_by_copy(conn, ours, changes[:2], match) == 2  # two batches, one
        assert update_by_copy(conn, ours, changes[2:3], match) == 1  # transaction
        refused = [{**changes[3], "name": "y" * 21}]
        with pytest.raises(sa.exc.DataError), conn.begin_nested():
            update_by_copy(conn, ours, refused, match)
        assert update_by_copy(conn, ours, changes[3:], match) == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(ours.c.version)).scalars().all() == [2, 2, 2, 2]


@pytest.fixture
def twins(tmp_path: Path) -> Iterator[Pair]:
    """The member pack (its `block` rule on email) in two schemas of one database."""
    yield from twin_instances("postgresql", tmp_path, pack_files(MEMBER, AUTOMATIONS))


def test_a_batch_that_changes_one_record_twice_keeps_both_changes(twins: Pair) -> None:
    inst, _ = twins
    rid = records.create(inst, SYSTEM, "member", {"code": "a", "name": "Ann"})["id"]
    outcomes = bulk.upsert_many(inst, SYSTEM, "member", [(1, {"name": "Bo"}, rid),
                                                         (2, {"score": 7}, rid)])
    assert [(o.id, o.error) for o in outcomes] == [(rid, None), (rid, None)]
    with inst.engine.connect() as conn:
        record = records.load(inst, conn, "member", rid)
    assert (record["name"], record["score"], record["version"]) == ("Bo", 7, 3)


def _waiting(engine: sa.Engine, pid: int) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity "
                                    "WHERE pid = :pid"), {"pid": pid}).scalar() is True


def test_duplicate_locks_of_two_schemas_do_not_wait_for_each_other(twins: Pair) -> None:
    first, second = twins
    record = {"email": "same@example.com"}
    with first.engine.begin() as holder, second.engine.begin() as other:
        checks.serialise_duplicates(holder, first.model.entities["member"], record)
        other.execute(sa.text("SET LOCAL lock_timeout = '3s'"))
        checks.serialise_duplicates(other, second.model.entities["member"], record)


def test_two_batches_locking_the_same_keys_in_other_orders_queue(twins: Pair) -> None:
    inst, _ = twins
    ent = inst.model.entities["member"]
    low, high = sorted(({"email": f"{n}@example.com"} for n in range(2)),
                       key=lambda record: checks._lock_keys(ent, record))
    done: list[BaseException | None] = []
    started = threading.Event()
    pid: list[int] = []

    def second_batch() -> None:  # its rows in the other order: high, then low
        try:
            with inst.engine.begin() as conn:
                pid.append(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
                started.set()
                checks.serialise_many(conn, ent, [high, low])
            done.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            done.append(exc)

    with inst.engine.begin() as first:
        first.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
        checks.serialise_many(first, ent, [low])
        thread = threading.Thread(target=second_batch)
        thread.start()
        started.wait(5)
        deadline = time.monotonic() + 5
        while not _waiting(inst.engine, pid[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _waiting(inst.engine, pid[0])  # the second batch waits for `low`…
        checks.serialise_many(first, ent, [high])  # …not holding `high`: no deadlock
    thread.join(10)
    assert done == [None]
