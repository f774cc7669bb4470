"""The users of `benchmarks/load.py`, played by a small asyncio client of ours (the default;
`--client locust` plays `benchmarks/locustfile.py` instead, the same mix).

Why our own: on a 2-core machine the load generator shares the cores with the servers it
measures. One event loop speaking HTTP/1.1 over `asyncio` streams (by default a connection per
request, as a reverse proxy in front of the servers opens them — so the kernel hands each
request to a server process that is accepting, instead of pinning a user's keep-alive connection
to one process for the whole run; `keep_alive=True`: one connection per user, as a browser
talking to the servers directly holds one) costs a fraction of locust's CPU per request (no
gevent, no per-request statistics events), and it stops cleanly: when the time is up every user
finishes the action it began, so each save the server made is counted and the lost-update check
is exact.

The users are sales reps signed in through the login form, each doing the mix of the issue —
40% list and search, 25% record page, 10% dashboard (web pages), 15% update, 5% create, 5%
workflow transition (the JSON API, with the rep's token). An update reads the deal and sends
its counter plus one with the version it read; a 409 (another rep saved first) is not an error:
the rep reads again and retries, and only the saves that succeeded are counted.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import psutil

WORDS = ("north", "river", "solar", "harbor", "maple", "granite", "cedar", "orbit")
CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')
RETRIES = 20
MIX = (("list", 20), ("search", 20), ("record", 25), ("dashboard", 10), ("update", 15),
       ("create", 5), ("transition", 5))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    cookies: list[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One HTTP/1.1 connection, kept alive (`keep_alive`) or closed after each answer; opened
    again when the server closed it."""

    def __init__(self, host: str, port: int, keep_alive: bool = False):
        self.host, self.port, self.keep_alive = host, port, keep_alive
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str],
                      body: bytes = b"") -> Answer:
        reused = self.writer is not None
        try:
            return await self._exchange(method, path, headers, body)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.close()
            if not reused:
                raise
            # the server closed an idle keep-alive connection before reading: send it again
            return await self._exchange(method, path, headers, body)

    async def _exchange(self, method: str, path: str, headers: dict[str, str],
                        body: bytes) -> Answer:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        if not self.keep_alive:
            head.append("Connection: close")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        status_line, *lines = (await self.reader.readuntil(b"\r\n\r\n")).decode(
            "latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        found: dict[str, str] = {}
        cookies = []
        for line in lines:
            if ":" in line:
                name, value = line.split(":", 1)
                found[name.strip().lower()] = value.strip()
                if name.strip().lower() == "set-cookie":
                    cookies.append(value.strip())
        data = await self._body(status, found)
        if not self.keep_alive or found.get("connection", "").lower() == "close":
            self.close()
        return Answer(status, found, cookies, data)

    async def _body(self, status: int, headers: dict[str, str]) -> bytes:
        assert self.reader is not None
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")  # no trailers are sent here
                    return b"".join(parts)
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        if status in (204, 304) or status < 200:
            return b""
        data = await self.reader.read()
        self.close()
        return data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Stats:
    """Response times (ms) and failures per kind of request, and the save counters."""

    times: dict[str, list[float]] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    updates: int = 0
    conflicts: int = 0
    gave_up: int = 0

    def summary(self) -> dict[str, dict[str, float]]:
        kinds = {}
        for name in sorted(set(self.times) | set(self.failures)):
            found = sorted(self.times.get(name, []))
            kinds[name] = {"requests": len(found), "failures": self.failures[name],
                           "p50": percentile(found, 0.5), "p95": percentile(found, 0.95),
                           "p99": percentile(found, 0.99)}
        return kinds


def percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of an ordered list (0 for none)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


class Rep:
    """One sales rep: a connection, a session cookie, an API token and the deals it moves."""

    def __init__(self, base: str, me: dict[str, Any], hot: list[int], max_id: int,
                 stats: Stats, rng: random.Random, keep_alive: bool = False):
        address = urlsplit(base)
        self.connection = Connection(address.hostname or "127.0.0.1", address.port or 80,
                                     keep_alive)
        self.me, self.hot, self.max_id, self.stats, self.rng = me, hot, max_id, stats, rng
        self.cookies: dict[str, str] = {}
        self.auth = {"Authorization": f"Bearer {me['token']}"}
        # the stage of each deal only this rep moves, kept in `me` from one run to the next
        self.own: dict[int, str] = me.setdefault(
            "stages", {record_id: "open" for record_id in me["own"]})

    async def call(self, kind: str, method: str, path: str, *, api: bool = False,
                   data: Any = None, form: dict[str, str] | None = None) -> Answer | None:
        """One timed request; None (and a failure counted) when it could not be made."""
        headers = dict(self.auth) if api else {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = b""
        if data is not None:
            body, headers["Content-Type"] = json.dumps(data).encode(), "application/json"
        elif form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        try:
            answer = await self.connection.request(method, path, headers, body)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            self.connection.close()
            self.stats.times.setdefault(kind, []).append(
                (time.perf_counter() - started) * 1000)
            self.fail(kind, f"{type(exc).__name__}: {exc}")
            return None
        self.stats.times.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
        for cookie in answer.cookies:
            name, _, value = cookie.split(";", 1)[0].partition("=")
            if value and "max-age=0" not in cookie.lower():
                self.cookies[name.strip()] = value.strip()
            else:
                self.cookies.pop(name.strip(), None)
        return answer

    def fail(self, kind: str, error: str) -> None:
        self.stats.failures[kind] += 1
        self.stats.errors[(kind, error[:300])] += 1

    def expect(self, kind: str, answer: Answer | None, *statuses: int) -> bool:
        if answer is None:
            return False
        if answer.status in statuses:
            return True
        self.fail(kind, f"{answer.status}: {answer.body[:200].decode('utf-8', 'replace')}")
        return False

    async def sign_in(self) -> bool:
        page = await self.call("sign-in", "GET", "/login")
        if page is None:
            return False
        token = CSRF.search(page.body)
        answer = await self.call("sign-in", "POST", "/login", form={
            "username": self.me["username"], "password": self.me["password"],
            "csrf_token": token.group(1).decode() if token else ""})
        if answer is None:
            return False
        if answer.status in (302, 303) and "/login" not in answer.headers.get("location", ""):
            return True
        self.fail("sign-in", f"sign-in failed ({answer.status})")
        return False

    async def act(self) -> None:
        """One action of the mix, chosen by its weight."""
        kind = self.rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        if kind == "list":
            sort = self.rng.choice(("", "?sort=-amount", "?sort=name", "?stage=open"))
            self.expect(kind, await self.call(kind, "GET", f"/e/deal{sort}"), 200)
        elif kind == "search":
            self.expect(kind, await self.call(
                kind, "GET", f"/e/deal?q={self.rng.choice(WORDS)}"), 200)
        elif kind == "record":
            self.expect(kind, await self.call(
                kind, "GET", f"/e/deal/{self.rng.randint(1, self.max_id)}"), 200)
        elif kind == "dashboard":
            self.expect(kind, await self.call(kind, "GET", "/dashboards/pipeline"), 200)
        elif kind == "update":
            await self.update()
        elif kind == "create":
            self.expect(kind, await self.call(kind, "POST", "/api/v1/deal", api=True, data={
                "name": f"{self.rng.choice(WORDS).title()} deal {self.rng.randint(1, 10**6)}",
                "company": f"{self.rng.choice(WORDS).title()} Ltd",
                "amount": self.rng.randint(1, 9999)}), 200, 201)
        else:
            await self.transition()

    async def update(self) -> None:
        record_id = self.rng.choice(self.hot)
        for _attempt in range(RETRIES):
            read = await self.call("update (read)", "GET", f"/api/v1/deal/{record_id}",
                                   api=True)
            if not self.expect("update (read)", read, 200):
                return
            assert read is not None
            deal = read.json()
            answer = await self.call("update", "PATCH", f"/api/v1/deal/{record_id}", api=True,
                                     data={"hits": (deal.get("hits") or 0) + 1,
                                           "version": deal["version"]})
            if answer is not None and answer.status == 409:  # another rep saved first
                self.stats.conflicts += 1
                continue
            if self.expect("update", answer, 200):
                self.stats.updates += 1
            return
        self.stats.gave_up += 1

    async def transition(self) -> None:
        if not self.own:
            return
        record_id = self.rng.choice(list(self.own))
        name, after = ("start", "working") if self.own[record_id] == "open" else ("pause", "open")
        answer = await self.call("transition", "POST",
                                 f"/api/v1/deal/{record_id}/transitions/{name}", api=True,
                                 data={})
        if answer is not None and answer.status == 409:  # moved by another rep first
            self.stats.conflicts += 1
            read = await self.call("transition (read)", "GET", f"/api/v1/deal/{record_id}",
                                   api=True)
            if self.expect("transition (read)", read, 200):
                assert read is not None
                self.own[record_id] = read.json().get("stage", self.own[record_id])
        elif self.expect("transition", answer, 200):
            self.own[record_id] = after


def play(base: str, team: list[dict[str, Any]], users: int, seconds: float, hot: list[int],
         max_id: int, marks: Callable[[], dict[str, float]] = dict,
         seed: int = 7, keep_alive: bool = False) -> dict[str, Any]:
    """`users` reps of `team` (load.py's users file; each rep's `stages` is kept there for
    the next run) sign in, then act for `seconds`: the result (the shape the locustfile
    writes, plus `cpu`: how much each of `marks()`'s counters and this process's CPU time
    grew while measuring)."""
    return asyncio.run(_play(base, team, users, seconds, hot, max_id, marks, seed, keep_alive))


async def _play(base: str, team: list[dict[str, Any]], users: int, seconds: float,
                hot: list[int], max_id: int, marks: Callable[[], dict[str, float]],
                seed: int, keep_alive: bool) -> dict[str, Any]:
    stats = Stats()
    reps = [Rep(base, team[n % len(team)], hot, max_id, stats, random.Random(seed + n),
                keep_alive) for n in range(users)]
    signed = await asyncio.gather(*(rep.sign_in() for rep in reps))
    result: dict[str, Any] = {"signed_in": sum(signed), "measured": all(signed), "seconds": 0.0}
    if all(signed):
        stats.times.clear()  # measured from here: every rep is signed in
        before, cpu, started = marks(), time.process_time(), time.perf_counter()
        deadline = started + seconds

        async def work(rep: Rep) -> None:
            while time.perf_counter() < deadline:  # the action begun is finished
                await rep.act()

        await asyncio.gather(*(work(rep) for rep in reps))
        result["seconds"] = time.perf_counter() - started
        after = marks()
        result["cpu"] = {"client": time.process_time() - cpu,
                         **{k: after[k] - before.get(k, 0.0) for k in after}}
    for rep in reps:
        rep.connection.close()
    kinds = stats.summary()
    result.update({
        "kinds": kinds, "requests": sum(k["requests"] for k in kinds.values()),
        "failures": sum(k["failures"] for k in kinds.values()),
        "errors": [{"name": name, "error": error, "count": count}
                   for (name, error), count in stats.errors.most_common()],
        "updates": stats.updates, "conflicts": stats.conflicts, "gave_up": stats.gave_up})
    return result


def cpu_marks(pid: int | None) -> dict[str, float]:
    """CPU seconds used so far by the server process `pid` and its workers (`servers`), and by
    the whole machine (`busy`: every core's time not idle)."""
    machine = psutil.cpu_times()
    busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0) \
        - getattr(machine, "guest", 0.0) - getattr(machine, "guest_nice", 0.0)
    servers = 0.0
    if pid:
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for process in tree:
            try:
                used = process.cpu_times()
            except psutil.NoSuchProcess:
                continue  # a worker that ended: its time is gone with it
            servers += used.user + used.system
    return {"servers": servers, "busy": busy}
