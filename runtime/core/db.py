"""Database engines: URLs, SQLite pragmas, and the write-transaction helper.

SQLite runs in WAL mode with foreign keys on, a busy timeout and the search index's
`crm_fold` function (core/searchindex.py); a write transaction on SQLite
starts with BEGIN IMMEDIATE so that two writers queue instead of failing half-way. PostgreSQL's
pool pings a connection that lay idle before lending it. Many rows are written by the
fastest statement each database has (`insert_many`, `update_by_copy`: COPY on PostgreSQL).
Nothing here knows about entities.
"""

from __future__ import annotations

import io
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from runtime.core import caches, rowcache
from runtime.core.errors import Conflict
from runtime.core.expressions.sqlfuncs import register_sqlite_functions
from runtime.core.searchindex import register_fold

DEFAULT_URL = "sqlite:///instance/crmforge.db"
BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str) -> str:
    """Map `postgres://` and `postgresql://` to the psycopg2 driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def database_url(explicit: str | None = None) -> str:
    return normalize_url(explicit or os.environ.get("CRMFORGE_DATABASE_URL") or DEFAULT_URL)


def make_engine(url: str | None = None, **kwargs) -> Engine:
    """An engine for `url` (default: $CRMFORGE_DATABASE_URL or the instance's SQLite file)."""
    url = database_url(url)
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        memory = database in ("", ":memory:") or "mode=memory" in url
        if not memory:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        options = {"connect_args": {"timeout": BUSY_TIMEOUT_MS / 1000,
                                    "check_same_thread": False}}
        if memory:
            options["poolclass"] = StaticPool
        engine = sa.create_engine(url, **options, **kwargs)
        _sqlite_events(engine, memory)
        return engine
    if parsed.get_driver_name() == "psycopg2":
        kwargs = {**PSYCOPG2_BATCHES, **kwargs}
    engine = sa.create_engine(url, **kwargs)
    _ping_when_idle(engine)
    return engine


# psycopg2 sends an executemany UPDATE or DELETE one statement a round trip; in batches of
# 500 (`execute_batch`) it costs the database's work, not the wire's, but counts no rows.
# A bulk write's changes go by COPY and one UPDATE … FROM instead (`update_by_copy`),
# which counts them; INSERTs already go as multi-row VALUES (insertmanyvalues).
PSYCOPG2_BATCHES = {"executemany_mode": "values_plus_batch", "executemany_batch_page_size": 500}


PING_IDLE_SECONDS = 2.0  # a pooled connection unused this long is pinged before it is lent


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before lending it only when it has lain unused a while
    (SQLAlchemy's pool_pre_ping pings on every checkout: a round trip, and a BEGIN it opens,
    several times a page). One used a moment ago was alive then; should the server have gone
    since, its first statement fails as a disconnect, which invalidates the whole pool and
    answers 503, and the next request connects anew."""

    @sa.event.listens_for(engine.pool, "checkin")
    def returned(_dbapi_connection, record) -> None:  # noqa: ANN001
        record.info["crm_returned_at"] = time.monotonic()

    @sa.event.listens_for(engine.pool, "checkout")
    def lent(dbapi_connection, record, _proxy) -> None:  # noqa: ANN001
        returned_at = record.info.get("crm_returned_at")  # none: connected just now
        if returned_at is None or time.monotonic() - returned_at < PING_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)  # psycopg's: in autocommit, no BEGIN
        except engine.dialect.loaded_dbapi.Error as exc:  # the pool reconnects, or fails
            raise sa.exc.InvalidatePoolError("an idle connection no longer answers") from exc


def _sqlite_events(engine: Engine, memory: bool) -> None:
    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()
        register_sqlite_functions(dbapi_connection)  # pow() for expressions, if SQLite lacks it
        register_fold(dbapi_connection)  # crm_fold(), which the search index's triggers call

    @sa.event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("sqlite_immediate")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def mark_written(conn: Connection) -> None:
    """Count a change to an entity row made on `conn` (the write path, rollups, timeline):
    a write that sees the count unchanged after its hooks knows its record is as it left it.
    The replica-able reads after it, in this context, go to the primary (`reads_pinned`)."""
    conn.info["crm_writes"] = conn.info.get("crm_writes", 0) + 1
    pin_reads()


def writes(conn: Connection) -> int:
    return conn.info.get("crm_writes", 0)


def insert_many(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT `rows` (each with the same keys) into `table` with one executemany. On SQLite
    the values go to the driver as the columns' own bind processors make them (dates as
    SQLAlchemy stores them), from a statement compiled once: SQLAlchemy's executemany there
    builds and processes every row's parameters in Python, most of an import's time in it.
    On PostgreSQL (psycopg2) COPY_FROM rows or more go by COPY (`_copy`). Elsewhere, and for
    a table with Python-side column defaults, it is a plain execute."""
    if not rows:
        return
    keys = tuple(rows[0])
    defaults = any(c.default is not None for c in table.c if c.name not in keys)
    if not defaults and copies(conn) and len(rows) >= COPY_FROM:
        _copy(conn, table, keys, rows)
    elif not defaults and is_sqlite(conn):
        sql, plan = for_driver(conn, table, table.insert(), "insert_many_raw", keys)
        conn.exec_driver_sql(sql, [tuple(convert(row[key]) if convert is not None
                                         and row[key] is not None else row[key]
                                         for key, convert in plan) for row in rows])
    else:
        conn.execute(table.insert(), list(rows))


COPY_FROM = 50  # rows: fewer go as an INSERT (which statement counters and metrics see)


def copies(conn: Connection) -> bool:
    """Whether `conn`'s driver takes COPY (psycopg2's `copy_expert`): `_copy`, `update_by_copy`."""
    return conn.dialect.driver == "psycopg2"


def _copy(conn: Connection, table: sa.Table, keys: tuple[str, ...],
          rows: Sequence[Mapping[str, Any]]) -> None:
    """`rows` into `table` by COPY … FROM STDIN (text format) on the connection's own
    transaction: a bulk write's audit entries, a quarter of the time and a fifth of the CPU
    of a multi-row INSERT on PostgreSQL. COPY bypasses SQLAlchemy's statement events: the
    row cache is told of the new rows here (`rowcache.inserted`)."""
    _copy_in(conn, table, keys, _copy_data(conn, table, keys, rows))


def _copy_data(conn: Connection, table: sa.Table, keys: tuple[str, ...],
               rows: Sequence[Mapping[str, Any]]) -> str:
    """`rows` as COPY's text: each value through its column's bind processor (JSON to its
    text), then NULL as \\N, and backslash, tab, newline and carriage return escaped where
    a value has one (a search first: most have none, and a bulk write's audit entries are
    millions of values)."""
    plan = once_per_value([(key, table.c[key].type._cached_bind_processor(conn.dialect))
                           for key in keys])
    lines = []
    for row in rows:
        fields = []
        for key, convert in plan:
            value = row[key] if convert is None else convert(row[key])
            if value is None:
                fields.append("\\N")
                continue
            text = value if value.__class__ is str else str(value)
            fields.append(text if _COPY_SPECIAL(text) is None else text.translate(_COPY_ESCAPES))
        lines.append("\t".join(fields))
    lines.append("")
    return "\n".join(lines)


def _copy_in(conn: Connection, table: sa.Table, keys: tuple[str, ...], data: str) -> None:
    """COPY `data` into `table`; the driver's error as SQLAlchemy raises a statement's
    (IntegrityError, DataError…), which callers catch."""
    preparer = conn.dialect.identifier_preparer
    statement = (f"COPY {preparer.format_table(table)} "
                 f"({', '.join(preparer.quote(key) for key in keys)}) FROM STDIN")
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.copy_expert(statement, io.StringIO(data))
    except conn.dialect.loaded_dbapi.Error as exc:
        raise sa.exc.DBAPIError.instance(statement, None, exc, conn.dialect.loaded_dbapi.Error,
                                         dialect=conn.dialect) from exc
    finally:
        cursor.close()
    rowcache.inserted(conn, table.name)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]").search


def update_by_copy(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]],
                   match: Mapping[str, str]) -> int:
    """UPDATE `table` (on PostgreSQL) from `rows`, each with the same keys: a column's new
    value, or for each (column, key) of `match` the value that column must hold for the
    row to change; the count of rows changed. The rows go by COPY into a temporary table
    (made and dropped by each call), and one UPDATE … FROM it … RETURNING changes them: an
    executemany sends the server one UPDATE per row (psycopg2's `execute_batch` joins them,
    but each is parsed and planned), which took 2.5 times as long for 100,000 rows, and one
    UPDATE … FROM (VALUES …) of 500 rows a sixth longer, with twice the CPU. The temporary
    table's columns have their column's type without a length or precision, so that the
    assignment checks each value as an UPDATE's parameter is checked (a too-long text is
    refused, not cut)."""

    def build() -> tuple[sa.Table, str]:
        by_key = {key: column for column, key in match.items()}
        column = {key: table.c[by_key.get(key, key)] for key in keys}
        changes = sa.Table("crm_changes", sa.MetaData(), *(
            sa.Column(key, _without_length(column[key].type)) for key in keys),
            prefixes=["TEMPORARY"], postgresql_on_commit="DROP")
        quote = conn.dialect.identifier_preparer.quote
        name, source = (conn.dialect.identifier_preparer.format_table(t)
                        for t in (table, changes))
        sets = ", ".join(f"{quote(column[k].name)} = {source}.{quote(k)}" for k in keys
                         if k not in by_key)
        where = " AND ".join(f"{name}.{quote(c)} = {source}.{quote(k)}"
                             for c, k in match.items())
        return changes, (f"UPDATE {name} SET {sets} FROM {source} WHERE {where} "
                         f"RETURNING {name}.id")

    keys = tuple(rows[0])
    changes, update = caches.STATEMENTS.get(table, ("update_by_copy", keys), build)
    data = _copy_data(conn, changes, keys, rows)  # before the table: it cannot fail after
    changes.create(conn)
    _copy_in(conn, changes, keys, data)
    changed = len(conn.exec_driver_sql(update).fetchall())
    changes.drop(conn)
    return changed


def _without_length(kind: sa.types.TypeEngine) -> sa.types.TypeEngine:
    """`kind` without the length a text or the precision a number has."""
    if isinstance(kind, sa.String):
        return sa.Text()
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
        return sa.Numeric()
    return kind


BindPlan = list[tuple[str, Any]]  # a compiled statement's (parameter, bind processor or None)


def for_driver(conn: Connection, table: sa.Table, statement: Any, purpose: str,
               keys: tuple[str, ...]) -> tuple[str, BindPlan]:
    """`statement` (of `table`, with parameters `keys`) compiled once for `conn`'s driver:
    its SQL and, in the order of its positional parameters, each one's key and bind
    processor (None: none), ready for one executemany (`once_per_value`)."""

    def compile_once() -> tuple[str, BindPlan]:
        compiled = statement.compile(dialect=conn.dialect, column_keys=list(keys))
        return str(compiled), [
            (key, compiled.binds[key].type._cached_bind_processor(conn.dialect))
            for key in compiled.positiontup or ()]

    sql, plan = caches.STATEMENTS.get(table, (purpose, keys), compile_once)
    return sql, once_per_value(plan)


def once_per_value(plan: BindPlan) -> BindPlan:
    """`plan` for one executemany, each bind processor run once for a value that the row
    before gave too: a batch's one `now` in every row (SQLite's DATETIME processor formats
    it in Python, some µs a time; an import's audit entries all carry it)."""
    return [(key, None if convert is None else _last_kept(convert)) for key, convert in plan]


def _last_kept(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    last: list[Any] = [_NOTHING, None]  # the value last converted (kept alive), its result

    def converted(value: Any) -> Any:
        if value is not last[0]:
            last[:] = value, convert(value)
        return last[1]

    return converted


_NOTHING = object()


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


# Read replicas (Instance.read_engine): once a request (or a thread) has written, its reads go
# to the primary, which has its writes; runtime.http.replica scopes this to one request. The
# value says why: "" not pinned, "wrote" this context wrote, "recent" its session wrote lately.
_PINNED: ContextVar[str] = ContextVar("crm_reads_pinned", default="")


def pin_reads(why: str = "wrote") -> object:
    """Send this context's replica-able reads to the primary (a token for `unpin_reads`)."""
    return _PINNED.set(why)


def unpin_reads(token: object) -> None:
    _PINNED.reset(token)  # type: ignore[arg-type]


def reads_pinned() -> str:
    """Why this context reads from the primary ("wrote", "recent"), or "" when it need not."""
    return _PINNED.get()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction meant to write; on SQLite it takes the write lock first,
    so concurrent writers wait for each other instead of failing with 'database is locked'."""
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn = conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            yield conn


RETRIES = 6
T = TypeVar("T")


def _retryable(exc: sa.exc.DBAPIError) -> bool:
    """Lock timeouts, deadlocks and serialisation failures: worth trying again."""
    orig = exc.orig
    if getattr(orig, "sqlite_errorcode", None) is not None:
        return orig.sqlite_errorcode & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
    return getattr(orig, "pgcode", None) in ("40001", "40P01", "55P03")


def in_transaction(engine: Engine, conn: Connection | None,
                   work: Callable[[Connection], T]) -> T:
    """Run `work` in the caller's transaction, or in one of our own, retried when the
    database reports a lock conflict; a conflict that persists becomes a 409."""
    if conn is not None:
        return work(conn)
    for attempt in range(RETRIES):
        try:
            with write_transaction(engine) as own:
                return work(own)
        except sa.exc.DBAPIError as exc:
            if isinstance(exc, sa.exc.IntegrityError) or not _retryable(exc):
                raise
            if attempt == RETRIES - 1:
                raise Conflict("The database is busy with other changes to the same records; "
                               "try again in a moment.") from exc
            time.sleep(0.02 * (2 ** attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")
