"""A read replica for lists, search, export and dashboards (`CRMFORGE_READ_DATABASE_URL`).

When the setting names a PostgreSQL database (a streaming replica of the primary), the app's
instance gets a second engine, `Instance.read_engine`, and the reads that may lag a moment
(`Instance.reader()`: lists and their counts, search, export, dashboards) go to it. Everything
else — the record page, sign-in, permissions' lookups, every write — stays on the primary.

Read-after-write goes to the primary: a request that wrote (`runtime.core.db.write_transaction`
pins its reads) reads from the primary for the rest of the request, and a signed-in browser
that wrote in the last `STICKY_SECONDS` carries that in its signed session cookie, so the list
it is sent back to after saving shows the save even when the replica is behind. An API client
(bearer token, no cookie) reads its own record pages from the primary; its lists may lag by the
replica's delay.

SQLite has no replicas: the setting with an SQLite primary or replica is refused at start with
a message saying so (docs/deploy.md).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from flask import Flask, Response, g, session

from runtime.core.db import make_engine, normalize_url, pin_reads, reads_pinned, unpin_reads
from runtime.core.instance import Instance
from runtime.http.auth import SESSION_KEY
from runtime.http.ops_routes import time_statements
from runtime.process.setup import SetupError

ENVIRONMENT = "CRMFORGE_READ_DATABASE_URL"
STICKY_SECONDS = 10  # after a browser's write, its lists read from the primary this long
WROTE_KEY = "wrote_at"  # in the signed session: when this browser last wrote (epoch seconds)
TOKEN = "crm_read_pin"  # the request's contextvar token, in Flask's `g`


def check(primary_url: str, read_url: str | None) -> None:
    """Refuse a replica setting that cannot work: SetupError with what to do."""
    if not read_url:
        return
    backends = {sa.make_url(normalize_url(url)).get_backend_name()
                for url in (primary_url, read_url)}
    if "sqlite" in backends:
        raise SetupError(f"{ENVIRONMENT} names a read replica, which SQLite does not have: "
                         "use it with a PostgreSQL primary and a PostgreSQL replica, or unset "
                         "it")


def register(app: Flask, inst: Instance) -> None:
    """Give `inst` the replica of `app.config["READ_DATABASE_URL"]` (if set) and keep each
    request's reads on the primary once it, or its browser lately, wrote."""
    read_url = app.config.get("READ_DATABASE_URL")
    if not read_url:
        return
    check(inst.engine.url.render_as_string(hide_password=False), read_url)
    inst.read_engine = make_engine(read_url)
    time_statements(inst.read_engine)
    app.before_request(_start)
    app.after_request(_remember)
    app.teardown_request(_end)


def _start() -> None:
    wrote_at = session.get(WROTE_KEY)
    recent = isinstance(wrote_at, int | float) and time.time() - wrote_at < STICKY_SECONDS
    g.setdefault(TOKEN, pin_reads("recent" if recent else ""))


def _remember(response: Response) -> Response:
    """A signed-in browser's request that wrote: note when, in its session."""
    if reads_pinned() == "wrote" and session.get(SESSION_KEY):
        session[WROTE_KEY] = int(time.time())
    return response


def _end(_exc: BaseException | None) -> None:
    token = g.pop(TOKEN, None)
    if token is not None:
        unpin_reads(token)
