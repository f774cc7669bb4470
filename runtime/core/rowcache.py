"""Entity rows read by id, kept on a connection for the length of a bulk write.

A bulk write (runtime/write/bulk.py: imports, demo data) checks and writes thousands of
records that link to the same few hundred others; each check, formula and automation used to
read a linked record again (`context.Fetcher`, one cache per operation). Inside `kept(conn)`
a read by id is kept on the connection and served again until the connection writes to that
row: an UPDATE of rows by id (a statement built with `BY_ID`) forgets those rows, any other
UPDATE forgets the rows of its table, an INSERT the ids of its table known to have no row (it
changes no row there is), and a DELETE, a statement it cannot read (raw SQL) or a rollback
(of a savepoint too) forgets them all. So a
row served from here is the row the database would return on this connection (other
connections' commits aside: the bulk write sees the rows as it first read them, as its own
transaction would on SQLite).

On PostgreSQL a locking read (`FOR NO KEY UPDATE`) asks the database, unless the row is one
this transaction holds locked: it wrote the row, or read it with a lock, and is the only one
who can change it until it ends (`keep(…, locked=True)`, `cached(…, locked=True)`). A rollback
(of a savepoint too) forgets the locks with the rows: a savepoint's locks end with it.

A key may also be a tuple naming a question about the table (`approvals.pending_request`:
whether any record of an entity awaits approval), kept with its answer: None (no row
answers it) is forgotten as an id with no row is, and any UPDATE of the table — by id too —
forgets every such answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

KEY = "crm_row_cache"
LOCKED = "crm_row_cache_locked"  # table -> ids of the rows this transaction holds locked
# the execution option of an UPDATE … WHERE id = :_crm_id: it changes those rows alone
BY_ID = "crm_update_by_id"
INSERT_INTO = re.compile(r'\s*INSERT INTO (?:"([^"]+)"|(\w+))[\s(]', re.IGNORECASE)
_READS = ("SELECT", "SAVEPOINT", "RELEASE")

Key = int | tuple[Any, ...]  # a row's id, or a question (see the module's docstring)
Rows = dict[str, dict[Key, Mapping[str, Any] | None]]  # table -> key -> row (None: no row)


MISSING = object()  # `cached`: nothing kept for that id


def rows_of(conn: Connection | None) -> Rows | None:
    """The rows kept on `conn`, or None outside `kept`."""
    return None if conn is None else conn.info.get(KEY)


def cached(conn: Connection | None, table: str, key: Key, *, locked: bool = False
           ) -> Mapping[str, Any] | None | object:
    """The row of `table` with id `key` as kept on `conn` (None: there is no such row), or
    MISSING when none is kept (or outside `kept`); for a locking read (`locked`), only a row
    this transaction holds locked."""
    rows = rows_of(conn)
    if rows is None or (locked and key not in conn.info[LOCKED].get(table, ())):
        return MISSING
    return rows.get(table, {}).get(key, MISSING)


def keep(conn: Connection | None, table: str, key: Key, row: Mapping[str, Any] | None, *,
         locked: bool = False) -> None:
    """Keep the row of `table` with id `key` (None: there is none) on `conn`, inside `kept`;
    `locked`: this transaction holds the row locked (it wrote it, or read it with a lock)."""
    rows = rows_of(conn)
    if rows is not None:
        rows.setdefault(table, {})[key] = row
        if locked:
            conn.info[LOCKED].setdefault(table, set()).add(key)


@contextmanager
def kept(conn: Connection) -> Iterator[None]:
    """Keep the rows read by id on `conn` inside the block (a nested block joins the outer
    one); see the module's docstring."""
    if KEY in conn.info:
        yield
        return
    conn.info[KEY], conn.info[LOCKED] = {}, {}
    listeners = (("before_cursor_execute", _executed), ("rollback", _rolled_back),
                 ("rollback_savepoint", _rolled_back))
    for name, listener in listeners:
        sa.event.listen(conn, name, listener)
    try:
        yield
    finally:
        for name, listener in listeners:
            sa.event.remove(conn, name, listener)
        conn.info.pop(KEY, None)
        conn.info.pop(LOCKED, None)


def _executed(conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:
    rows = conn.info.get(KEY)
    if rows is None or statement.lstrip()[:9].upper().startswith(_READS):
        return
    compiled = getattr(context, "compiled", None)
    target = getattr(getattr(compiled, "statement", None), "table", None)
    if context is not None and context.isupdate and isinstance(target, sa.Table):
        if context.execution_options.get(BY_ID):
            kept = rows.get(target.name, {})
            for params in context.compiled_parameters:
                kept.pop(params["_crm_id"], None)
            for key in [key for key in kept if isinstance(key, tuple)]:
                del kept[key]
        else:
            rows.pop(target.name, None)
    elif context is not None and context.isinsert and isinstance(target, sa.Table):
        if getattr(compiled.statement, "_post_values_clause", None) is not None:
            rows.pop(target.name, None)  # ON CONFLICT …: it may change a row there is
        else:
            _inserted(rows, target.name)
    elif compiled is None and (inserted := INSERT_INTO.match(statement)):
        _inserted(rows, inserted.group(1) or inserted.group(2))  # `db.insert_many`'s SQL
    else:  # a DELETE (the database may cascade it), other raw SQL, DDL: nothing is known
        rows.clear()


def inserted(conn: Connection, table: str) -> None:
    """New rows put in `table` on `conn` by what the statement events do not see (COPY)."""
    rows = rows_of(conn)
    if rows is not None:
        _inserted(rows, table)


def _inserted(rows: Rows, table: str) -> None:
    """New rows in `table`: an id kept as having none may have one now."""
    kept = rows.get(table)
    if kept:
        for key in [key for key, row in kept.items() if row is None]:
            del kept[key]


def _rolled_back(conn: Connection, *args: Any) -> None:
    rows = conn.info.get(KEY)
    if rows is not None:
        rows.clear()
        conn.info[LOCKED].clear()
