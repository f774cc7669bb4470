"""The PostgreSQL teardown of the test suite (conftest.drop_schema) drops a schema of many
tables a batch at a time, so that it never needs a lock on every table in one transaction
(which ran the server out of shared lock memory once, with another client busy)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from conftest import _postgres_unreachable, drop_schema, postgres_url

pytestmark = pytest.mark.postgres


def test_a_schema_of_many_tables_is_dropped_in_small_transactions():
    problem = _postgres_unreachable()
    if problem:
        pytest.skip(problem)
    engine = sa.create_engine(postgres_url())
    schema = "t_" + uuid.uuid4().hex[:16]
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            for i in range(120):  # each with a sequence and two indexes, like a pack's tables
                conn.execute(sa.text(f'CREATE TABLE "{schema}".t{i} (id serial PRIMARY KEY, '
                                     f"name text UNIQUE)"))
        drops: list[int] = []  # tables named by each DROP TABLE
        locks: list[int] = []  # locks held right after each one, in its transaction

        @sa.event.listens_for(engine, "after_cursor_execute")
        def watch(conn, cursor, statement, parameters, context, executemany):
            if statement.startswith("DROP TABLE"):
                drops.append(statement.count(f'"{schema}".'))
                cursor.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()")
                locks.append(cursor.fetchone()[0])

        drop_schema(engine, schema, batch=50)
        sa.event.remove(engine, "after_cursor_execute", watch)
        with engine.connect() as conn:
            left = conn.execute(sa.text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"),
                                {"s": schema}).scalar_one()
        assert left == 0
        assert drops == [50, 50, 20]
        # the locks follow the batch (a table with its indexes, sequence and TOAST table takes
        # about a dozen), not the whole schema: 50 tables' worth, never 120 tables' worth
        per_table = locks[-1] / 20
        assert max(locks) < per_table * 60
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
