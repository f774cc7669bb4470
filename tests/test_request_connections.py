"""Fewer round trips per web request (issue #16), on real PostgreSQL (and SQLite where it
applies): a page's reads run in autocommit, no BEGIN and no ROLLBACK (`Instance.reader()`,
`primary_reader()`), their connections go back to the pool ready for transactions, a read
after a write sees it, and the pool pings only a connection that lay idle, yet a connection
the server ended answers 503 once and the next request connects anew (runtime.core.db
`_ping_when_idle`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import psycopg2.extensions
import pytest
import sqlalchemy as sa
from conftest import build_instance, postgres_url, provision_database
from record_packs import DEAL
from support import admin_actor
from web_support import make_app, sign_in

from runtime.core import db
from runtime.core.db import make_engine, write_transaction
from runtime.read import queries
from runtime.write import records

PACK = {"entities/deal.yaml": DEAL}


@pytest.fixture
def site(pack, tmp_path) -> Iterator[tuple[Any, Any, Any]]:  # noqa: ANN001
    """An instance on PostgreSQL with one deal, and an admin's signed-in browser."""
    with provision_database("postgresql", tmp_path) as url:
        inst = build_instance(pack(PACK), url)
        admin = admin_actor(inst)
        records.create(inst, admin, "deal", {"name": "Harbor deal", "amount": 1250})
        client = make_app(inst, tmp_path).test_client()
        sign_in(client, inst, admin)
        try:
            yield inst, admin, client
        finally:
            inst.engine.dispose()


@contextmanager
def statements_on(engine: sa.Engine) -> Iterator[list[tuple[str, Any, bool]]]:
    """(statement, its driver connection, whether that was in autocommit) while the block
    runs."""
    seen: list[tuple[str, Any, bool]] = []

    def note(conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        driver = conn.connection.driver_connection
        seen.append((statement, driver, driver.autocommit))

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


@pytest.mark.postgres
def test_a_list_page_reads_the_session_rows_and_count_in_autocommit(site):
    inst, _admin, client = site
    with statements_on(inst.engine) as seen:
        page = client.get("/e/deal")
    assert page.status_code == 200 and "Harbor deal" in page.get_data(as_text=True)
    reads = [autocommit for statement, _driver, autocommit in seen
             if "crm_session" in statement or "FROM deal" in statement]
    assert len(reads) >= 3, seen  # the sign-in check, the page's rows and their count
    assert all(reads)


@pytest.mark.postgres
def test_connections_go_back_to_the_pool_ready_for_transactions(site):
    inst, admin, client = site
    assert client.get("/e/deal").status_code == 200
    assert client.get("/e/deal/1").status_code == 200
    lent = [inst.engine.connect() for _ in range(inst.engine.pool.checkedin())]
    try:
        assert lent and not [c for c in lent if c.connection.driver_connection.autocommit]
    finally:
        for conn in lent:
            conn.close()
    deals = inst.schema.table("deal")
    with pytest.raises(RuntimeError), write_transaction(inst.engine) as conn:
        conn.execute(deals.update().values(name="Never saved"))
        raise RuntimeError("undo")
    assert records.get(inst, admin, "deal", 1)["name"] == "Harbor deal"


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql",
                                                         marks=pytest.mark.postgres)])
def test_a_read_after_a_write_in_the_same_request_sees_it(kind, pack, tmp_path):
    with provision_database(kind, tmp_path) as url:
        inst = build_instance(pack(PACK), url)
        admin = admin_actor(inst)
        made = records.create(inst, admin, "deal", {"name": "Before", "amount": 1})
        try:
            names = sa.select(inst.schema.table("deal").c.name)
            assert queries.get(inst, admin, "deal", made["id"])["name"] == "Before"
            with inst.reader() as conn:
                assert conn.execute(names).scalar() == "Before"
            records.update(inst, admin, "deal", made["id"], {"name": "After"},
                           version=made["version"])
            with inst.reader() as conn:
                assert conn.execute(names).scalar() == "After"
            assert queries.get(inst, admin, "deal", made["id"])["name"] == "After"
        finally:
            inst.engine.dispose()


def backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()


def end_backends(pids: set[int]) -> None:
    """End these server processes, as a restart of PostgreSQL would."""
    admin = sa.create_engine(postgres_url())
    try:
        with admin.connect() as conn:
            for pid in pids:
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


@pytest.fixture
def pg_engine(tmp_path) -> Iterator[sa.Engine]:  # noqa: ANN001
    with provision_database("postgresql", tmp_path) as url:
        engine = make_engine(url, pool_size=1, max_overflow=0)
        yield engine
        engine.dispose()


@pytest.mark.postgres
def test_a_connection_ended_while_idle_is_pinged_and_replaced_without_an_error(
        pg_engine, monkeypatch):
    before = backend_pid(pg_engine)
    end_backends({before})
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)  # it has lain idle long enough
    assert backend_pid(pg_engine) != before


@pytest.mark.postgres
def test_a_connection_used_a_moment_ago_is_lent_without_a_ping(pg_engine, monkeypatch):
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 60.0)  # however slow the machine
    before = backend_pid(pg_engine)
    end_backends({before})
    with pytest.raises(sa.exc.OperationalError) as failed:  # not pinged: it fails once...
        backend_pid(pg_engine)
    assert failed.value.connection_invalidated
    assert backend_pid(pg_engine) != before  # ...and the pool connects anew


@pytest.mark.postgres
def test_a_page_whose_connections_the_server_ended_answers_503_then_the_next_one_200(
        site, monkeypatch):
    inst, _admin, client = site
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 60.0)  # no ping saves the page
    pids: set[int] = set()
    sa.event.listen(inst.engine.pool, "checkout",
                    lambda driver, *_: pids.add(driver.get_backend_pid()))
    assert client.get("/e/deal").status_code == 200
    end_backends(pids)
    failed = client.get("/e/deal")
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "5"
    assert client.get("/e/deal").status_code == 200


class _CountingCursor(psycopg2.extensions.cursor):
    """A psycopg2 cursor that counts the statements it sends (`execute`) and the calls that
    send one statement a row (`executemany`)."""

    calls: ClassVar[dict[str, int]] = {"execute": 0, "executemany": 0}

    def execute(self, query: Any, vars: Any = None) -> Any:  # noqa: A002 - psycopg2's name
        self.calls["execute"] += 1
        return super().execute(query, vars)

    def executemany(self, query: Any, vars_list: Any) -> Any:
        self.calls["executemany"] += 1
        return super().executemany(query, vars_list)


@pytest.mark.postgres
def test_an_update_of_many_rows_goes_to_postgresql_in_pages_of_500(tmp_path):
    """psycopg2 would send an executemany UPDATE one statement a row, each a round trip:
    `make_engine` has it sent in pages (`db.PSYCOPG2_BATCHES`), 1,200 rows in 3."""
    with provision_database("postgresql", tmp_path) as url:
        engine = make_engine(url, connect_args={"cursor_factory": _CountingCursor})
        table = sa.Table("paged", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                         sa.Column("n", sa.Integer))
        try:
            with engine.begin() as conn:
                table.create(conn)
                conn.execute(table.insert(), [{"id": i, "n": 0} for i in range(1200)])
                _CountingCursor.calls.update(execute=0, executemany=0)
                conn.execute(table.update().where(table.c.id == sa.bindparam("_id")).values(
                    n=sa.bindparam("_n")), [{"_id": i, "_n": i} for i in range(1200)])
                assert _CountingCursor.calls == {"execute": 3, "executemany": 0}
                assert conn.execute(sa.select(sa.func.sum(table.c.n))).scalar_one() == sum(
                    range(1200))
        finally:
            engine.dispose()
