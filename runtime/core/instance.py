"""The running instance: one AppModel, its tables, an engine, a clock, and its hooks.

Everything at run time takes an `Instance` and an `Actor` explicitly — no globals, no
"ignore permissions" flags. Tests build instances with a controllable clock.

`read_engine`, when set (CRMFORGE_READ_DATABASE_URL, `runtime.http.replica`), is a read
replica: `reader()` is the one place the reads that may lag a little (lists, search, export,
dashboards) take their connection, from the replica unless this context wrote
(`runtime.core.db.reads_pinned`). Every other read and every write uses `engine`; the reads
that only SELECT take `primary_reader()`.

Read connections cost PostgreSQL no round trip but their statements: they are in autocommit
(no BEGIN, no ROLLBACK; at READ COMMITTED, PostgreSQL's default, each statement sees what was
committed when it began, in a transaction or not, so nothing changes for the reader), and the
pool lends a connection used a moment ago without a ping (`runtime.core.db`). A write still
takes a connection of its own, in a transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from builder.model import AppModel
from runtime.core.db import is_sqlite, reads_pinned
from runtime.core.hooks import Hooks
from runtime.core.schema import Schema, build_schema


def utcnow() -> datetime:
    """Naive UTC, to the second: what every datetime column stores. The datetime of the
    current second is made once (a bulk write asks for it tens of thousands of times)."""
    global _NOW
    second = int(time.time())
    kept = _NOW
    if kept[0] != second:
        kept = _NOW = (second, datetime.fromtimestamp(second, UTC).replace(tzinfo=None))
    return kept[1]


_NOW: tuple[int, datetime] = (0, datetime.min)  # (the second, its naive UTC datetime)


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user (with roles), or the system (automations, imports, installs)."""

    user_id: int | None
    username: str
    roles: frozenset[str] = frozenset()
    team: int | None = None
    is_admin: bool = False
    language: str = "en"
    system: bool = False
    fields: tuple[tuple[str, Any], ...] = ()  # extra user fields (region, ...) for expressions
    full_name: str | None = None
    time_zone: str | None = None  # the user's IANA zone; None: the instance's (read/titles.py)

    @property
    def display_name(self) -> str:
        """What pages call the user: their full name, else their username."""
        return self.full_name or self.username

    @property
    def first_name(self) -> str:
        return self.display_name.split()[0] if self.full_name else self.username

    @classmethod
    def system_actor(cls, name: str = "system") -> Actor:
        return cls(None, name, frozenset(), None, True, "en", True)

    @property
    def all_powerful(self) -> bool:
        return self.is_admin or self.system


@dataclass
class Instance:
    model: AppModel
    engine: Engine
    schema: Schema
    clock: Callable[[], datetime] = utcnow
    hooks: Hooks = field(default_factory=Hooks)
    settings: dict[str, Any] = field(default_factory=dict)
    read_engine: Engine | None = None  # a read replica of `engine`, if any

    @classmethod
    def create(cls, model: AppModel, engine: Engine, **kwargs: Any) -> Instance:
        """An instance with no hooks yet: `runtime.process.setup.assemble` wires them."""
        return cls(model, engine, build_schema(model), **kwargs)

    def reader(self) -> AbstractContextManager[Connection]:
        """A connection for a list, search, export or dashboard read: the replica's, unless
        there is none or this context wrote (then the primary's, which has the writes)."""
        if self.read_engine is None or reads_pinned():
            return read_connection(self.engine)
        return read_connection(self.read_engine)

    def primary_reader(self) -> AbstractContextManager[Connection]:
        """A connection for reads that must see the primary (sign-in, a record's page,
        permissions' lookups); only SELECTs: a write takes `engine`'s, in a transaction."""
        return read_connection(self.engine)

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        return self.clock().date()


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection of `engine` for SELECTs. On PostgreSQL its driver (psycopg2) is in
    autocommit while it is lent: no BEGIN and no ROLLBACK reach the server. The driver's own
    switch costs no round trip; SQLAlchemy's isolation_level="AUTOCOMMIT" would, as it gives
    the connection back (a SET). SQLite's reads keep their transaction: no round trip there."""
    with engine.connect() as conn:
        if is_sqlite(engine):
            yield conn
            return
        driver = conn.connection.driver_connection
        driver.autocommit = True
        try:
            yield conn
        finally:
            if conn.in_transaction():  # SQLAlchemy's own record of one; nothing to send
                conn.rollback()
            if not driver.closed:  # back in the pool as any other: writes need transactions
                driver.autocommit = False
