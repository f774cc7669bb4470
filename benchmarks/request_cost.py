"""What one web request costs the database and the server, per kind of the load benchmark's mix.

`python -m benchmarks.request_cost` builds the instance `make bench-load` builds
(`benchmarks/load.py`'s `own_database` and `prepare`: the load pack, the reps, `--records`
deals) on `$CRMFORGE_BENCH_POSTGRES` (default postgresql://postgres@127.0.0.1:5432/postgres)
with the queue on `$CRMFORGE_BENCH_REDIS`, makes the app `crmforge serve` makes in each worker
(`create_app()`, the model watch on, JSON access lines and multiprocess metrics as under
serve), and plays each kind of the mix (list, search, record page, dashboard, API update, API
create, API transition) `--repeat` times in this process through Flask's test client, signed
in as a rep. For each kind it prints the SQL statements per request (counted by a
`before_cursor_execute` event on the instance's engines), the connections taken from the pool,
the round trips to PostgreSQL (every query message the app sends, counted on the wire by a
proxy the app connects through: statements, and the pool's pings, BEGIN, ROLLBACK and COMMIT,
which no SQLAlchemy event shows) and the median CPU milliseconds per request (this thread's
CPU time); with `--statements` the text of each
statement of one request of each kind (`--callers`: and the code that ran it); with
`--profile KIND` where KIND's requests spend their time. The database is dropped at the end.

No network and no other process: the numbers are the app's own work, not the HTTP server's,
and the model watch reads `crm_model` at most once a second, so fast repeats skip it as
they do under load.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import logging.config
import os
import pstats
import re
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prometheus_client import values

from benchmarks import load
from runtime.http import requestlog
from runtime.http.app import create_app
from runtime.http.current import EXTENSION

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SORTS = ("", "?sort=-amount", "?sort=name", "?stage=open")


@dataclass
class Cost:
    """The statements and CPU time of each request of one kind."""

    statements: list[int] = field(default_factory=list)
    checkouts: list[int] = field(default_factory=list)
    round_trips: list[int] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # of the last request

    def row(self, kind: str) -> str:
        return (f"| {kind} | {statistics.median(self.statements):g} | "
                f"{min(self.statements)}–{max(self.statements)} | "
                f"{statistics.median(self.checkouts):g} | "
                f"{statistics.median(self.round_trips):g} | "
                f"{statistics.median(self.cpu_ms):.1f} |")


class Wire:
    """A proxy between the app and PostgreSQL that counts the query messages the app sends:
    each one is a round trip (psycopg2 sends every statement, BEGIN, ROLLBACK, COMMIT and
    the pool's ping as one simple-protocol Query and waits for its answer). The app must
    connect with sslmode=disable, so that the messages can be read."""

    QUERY, SYNC = b"Q", b"S"  # a simple query; the end of an extended-protocol exchange

    def __init__(self, server: tuple[str, int]):
        self.server, self.queries = server, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: str) -> str:
        """`url` through this proxy."""
        return sa.make_url(url).set(host="127.0.0.1", port=self.port, query={
            "sslmode": "disable"}).render_as_string(hide_password=False)

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            server = socket.create_connection(self.server)
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()
            threading.Thread(target=self._from_app, args=(client, server), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        with source, target, contextlib.suppress(OSError):  # either side may close first
            while data := source.recv(65536):
                target.sendall(data)

    def _from_app(self, client: socket.socket, server: socket.socket) -> None:
        """Forward the app's messages, counting its queries: the startup message has no
        type byte, every later one has one and then its length."""
        with client, server:
            stream = client.makefile("rb")
            length = struct.unpack("!i", stream.read(4))[0]
            server.sendall(struct.pack("!i", length) + stream.read(length - 4))
            while kind := stream.read(1):
                head = stream.read(4)
                body = stream.read(struct.unpack("!i", head)[0] - 4)
                self.queries += kind in (self.QUERY, self.SYNC)
                server.sendall(kind + head + body)


class Counter:
    """Every statement the app's engines run while `counting`, how many connections it took
    from their pools and how many round trips to PostgreSQL it made (`Wire`)."""

    def __init__(self, engines: list[sa.engine.Engine], wire: Wire, callers: bool = False):
        self.texts: list[str] = []
        self.checkouts = 0
        self.wire, self.round_trips = wire, 0
        self.on, self.callers = False, callers
        for engine in engines:
            sa.event.listen(engine, "before_cursor_execute", self._seen)
            sa.event.listen(engine.pool, "checkout", self._checked_out)

    def _checked_out(self, *_args: Any) -> None:
        self.checkouts += self.on

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.on:
            self.texts.append(" ".join(statement.split()) + (_caller() if self.callers else ""))

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        self.texts, self.checkouts, self.on = [], 0, True
        sent = self.wire.queries
        try:
            yield self.texts
        finally:
            self.on = False
            self.round_trips = self.wire.queries - sent


def _caller() -> str:
    """ [file:line < file:line < file:line]: the innermost project frames that ran a statement."""
    frames = [f for f in traceback.extract_stack()
              if f"{os.sep}runtime{os.sep}" in f.filename and "sqlalchemy" not in f.filename]
    where = [f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno}"
             for f in reversed(frames[-4:])]
    return " [" + " < ".join(where) + "]"


class Player:
    """One rep's browser (session cookie) and API client (bearer token) on the app."""

    def __init__(self, app: Any, me: dict[str, Any], hot: list[int], max_id: int):
        self.web, self.api = app.test_client(), app.test_client()
        self.auth = {"Authorization": f"Bearer {me['token']}"}
        self.me, self.hot, self.max_id, self.turn = me, hot, max_id, 0
        self.stages = {record_id: "open" for record_id in me["own"]}
        page = self.web.get("/login").get_data(as_text=True)
        token = CSRF.search(page)
        answer = self.web.post("/login", data={
            "username": me["username"], "password": me["password"],
            "csrf_token": token.group(1) if token else ""})
        if answer.status_code not in (302, 303) or "/login" in answer.location:
            raise SystemExit(f"{me['username']} could not sign in ({answer.status_code})")

    def kinds(self) -> dict[str, Callable[[], Callable[[], Any]]]:
        """Each kind: a function making the next request of that kind, ready to send."""
        return {"list": self.list, "search": self.search, "record": self.record,
                "dashboard": self.dashboard, "update (read)": self.update_read,
                "update": self.update, "create": self.create, "transition": self.transition}

    def _next(self, choices: tuple[Any, ...] | list[Any]) -> Any:
        self.turn += 1
        return choices[self.turn % len(choices)]

    def list(self) -> Any:
        path = f"/e/deal{self._next(SORTS)}"
        return lambda: self.web.get(path)

    def search(self) -> Any:
        path = f"/e/deal?q={self._next(load.WORDS)}"
        return lambda: self.web.get(path)

    def record(self) -> Any:
        self.turn += 1
        path = f"/e/deal/{1 + (self.turn * 97) % self.max_id}"
        return lambda: self.web.get(path)

    def dashboard(self) -> Any:
        return lambda: self.web.get("/dashboards/pipeline")

    def update_read(self) -> Any:
        path = f"/api/v1/deal/{self._next(self.hot)}"
        return lambda: self.api.get(path, headers=self.auth)

    def update(self) -> Any:
        record_id = self._next(self.hot)
        deal = self.api.get(f"/api/v1/deal/{record_id}", headers=self.auth).get_json()
        return lambda: self.api.patch(f"/api/v1/deal/{record_id}", headers=self.auth, json={
            "hits": (deal.get("hits") or 0) + 1, "version": deal["version"]})

    def create(self) -> Any:
        self.turn += 1
        deal = {"name": f"Cost deal {self.turn}", "company": "Cost Ltd", "amount": self.turn}
        return lambda: self.api.post("/api/v1/deal", headers=self.auth, json=deal)

    def transition(self) -> Any:
        record_id = self._next(list(self.stages))
        name, after = ("start", "working") if self.stages[record_id] == "open" else (
            "pause", "open")
        self.stages[record_id] = after
        path = f"/api/v1/deal/{record_id}/transitions/{name}"
        return lambda: self.api.post(path, headers=self.auth, json={})


def measure(player: Player, counter: Counter, repeat: int,
            only: set[str] | None = None) -> dict[str, Cost]:
    """Each kind `repeat` times after one warm-up: its statements and CPU time."""
    costs: dict[str, Cost] = {}
    for kind, act in player.kinds().items():
        if only and kind not in only:
            continue
        cost = costs[kind] = Cost()
        for turn in range(repeat + 1):
            request = act()  # what comes before the request (an update's read) is not counted
            with counter.counting() as texts:
                started = time.thread_time()
                answer = request()
                used = (time.thread_time() - started) * 1000
            if answer.status_code not in (200, 201):
                raise SystemExit(f"{kind}: {answer.status_code} "
                                 f"{answer.get_data(as_text=True)[:300]}")
            if turn:  # the first one warms caches up
                cost.statements.append(len(texts))
                cost.checkouts.append(counter.checkouts)
                cost.round_trips.append(counter.round_trips)
                cost.cpu_ms.append(used)
                cost.texts = list(texts)
    return costs


def profile(player: Player, kind: str, repeat: int, order: str) -> None:
    """Print where `repeat` requests of `kind` spend their time, costliest first by `order`
    (a pstats sort key: cumulative, tottime)."""
    act = player.kinds()[kind]
    requests = [act() for _ in range(repeat)]
    profiler = cProfile.Profile()
    profiler.enable()
    for request in requests:
        request()
    profiler.disable()
    pstats.Stats(profiler, stream=sys.stdout).sort_stats(order).print_stats(45)


def serve_like(redis: str) -> None:
    """What `crmforge serve` sets up around the app: the queue, multiprocess metrics and the
    JSON access log (written to nowhere)."""
    os.environ["CRMFORGE_QUEUE_URL"] = redis
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="crmforge-cost-metrics-")
    values.ValueClass = values.get_value_class()
    logging.config.dictConfig(requestlog.LOGGING)
    nowhere = open(os.devnull, "w")  # noqa: SIM115 - open while the process runs
    for handler in logging.getLogger().handlers:
        handler.setStream(nowhere)


def _shortened(text: str, keep: int = 160) -> str:
    """A statement's first `keep` characters, and where it ran from (`--callers`)."""
    caller = text[text.rfind(" ["):] if text.endswith("]") else ""
    return text[:keep] + (" …" if len(text) - len(caller) > keep else "") + caller


def report(costs: dict[str, Cost], statements: bool) -> str:
    lines = ["| kind | statements (median) | statements (range) | connections | round trips "
             "| CPU ms (median) |", "|---|---|---|---|---|---|"]
    lines += [cost.row(kind) for kind, cost in costs.items()]
    if statements:
        for kind, cost in costs.items():
            lines += ["", f"### {kind}: {len(cost.texts)} statements", ""]
            lines += [f"{n}. {_shortened(text)}" for n, text in enumerate(cost.texts, 1)]
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=5000, help="deals (default 5000)")
    p.add_argument("--repeat", type=int, default=30, help="requests of each kind (default 30)")
    p.add_argument("--statements", action="store_true",
                   help="list the statements of one request of each kind")
    p.add_argument("--callers", action="store_true",
                   help="with --statements, where each statement was run from")
    p.add_argument("--only", default="", help="comma-separated kinds to measure (default all)")
    p.add_argument("--profile", metavar="KIND",
                   help="also profile KIND's requests (cProfile, the 30 costliest functions)")
    p.add_argument("--sort", default="cumulative",
                   help="--profile's order: cumulative (default) or tottime")
    p.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    server = os.environ.get("CRMFORGE_BENCH_POSTGRES", load.SERVER)
    serve_like(os.environ.get("CRMFORGE_BENCH_REDIS", load.REDIS))
    with tempfile.TemporaryDirectory(prefix="crmforge-cost-") as tmp, \
            load.own_database(server) as url:
        folder = Path(tmp)
        users_file, hot = load.prepare(url, 1, args.records, folder)
        where = sa.make_url(url)
        wire = Wire((where.host or "127.0.0.1", where.port or 5432))
        app = create_app({"DATABASE_URL": wire.url(url), "SECRET_KEY": load.SECRET,
                          "INSTANCE_DIR": str(folder / "instance"), "WATCH_MODEL": True})
        inst = app.extensions[EXTENSION]
        counter = Counter([e for e in {inst.engine, inst.read_engine} if e is not None],
                          wire, args.callers)
        me = json.loads(users_file.read_text(encoding="utf-8"))[0]
        only = {k.strip() for k in args.only.split(",") if k.strip()} or None
        player = Player(app, me, hot, args.records)
        costs = measure(player, counter, args.repeat, only)
        if args.profile:
            profile(player, args.profile, args.repeat, args.sort)
        inst.engine.dispose()
    print(report(costs, args.statements))
    if args.json:
        args.json.write_text(json.dumps({k: {"statements": statistics.median(c.statements),
                                             "connections": statistics.median(c.checkouts),
                                             "round_trips": statistics.median(c.round_trips),
                                             "cpu_ms": statistics.median(c.cpu_ms)}
                                         for k, c in costs.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
