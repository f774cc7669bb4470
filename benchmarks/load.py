"""`make bench-load`: many signed-in users against `crmforge serve` on PostgreSQL and Redis.

What it does, all on 127.0.0.1:

1. makes a PostgreSQL database of its own on the server of `$CRMFORGE_BENCH_POSTGRES` (default
   the shared test server, postgresql://postgres@127.0.0.1:5432/postgres), installs
   `benchmarks/load_pack`, creates as many sales reps as the largest user count (password and
   API token each) and `--records` deals; the database is dropped at the end;
2. for each of `--processes` (default 1 then 2), serves it with `crmforge serve --workers N
   --threads T [--connections C]` (the queue on Redis: `$CRMFORGE_BENCH_REDIS`, default
   redis://127.0.0.1:6379/11) and sweeps the user counts of `--sweep` (default 1, 2, 4, 8, 16);
   the process counts in turn, `--rounds` times (default 3; a count's runs are pooled, see
   `pooled`): each run signs its users in, then plays the mix for `--seconds` (default 10)
   with our asyncio client (`benchmarks/loadclient.py`; `--client locust` plays
   `benchmarks/locustfile.py`);
3. after each run compares the deals' counters in the database with the updates that
   succeeded (a lost update shows as a difference), and measures the CPU the client, the
   servers and the whole machine used (`loadclient.cpu_marks`);
4. reports, per process count, users → throughput and the list page's p50/p95, the knee (the
   fewest users within 5% of the best throughput: where it stops rising), p50/p95/p99 per kind
   at rest (one user) and at each knee, and the checks: zero errors and zero lost updates over
   all runs, 2 processes ÷ 1 process at each one's best throughput (target ≥ 1.7), p95 of the
   list page at the knee ÷ at rest (target ≤ 3).

The report goes to docs/performance.md (section `load`) unless `--no-report`. `--quick` is the
few-second version the test suite runs (tests/test_bench_load.py), which writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks import loadclient
from benchmarks.report import write_section
from runtime.core.db import normalize_url
from runtime.core.instance import Actor, Instance
from runtime.core.passwords import hash_password
from runtime.http.auth import create_token
from runtime.ops.cli import main as crmforge
from runtime.ops.serve import DEFAULT_THREADS
from runtime.process.setup import open_instance
from runtime.write import bulk, records

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PACK = HERE / "load_pack"
LOCUSTFILE = HERE / "locustfile.py"
SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/11"
PASSWORD = "load-benchmark-password"
SECRET = "load-benchmark-" + "k" * 40
HOT = 20  # deals every user updates (contention); the users' own deals come after them
WORDS = ("north", "river", "solar", "harbor", "maple", "granite", "cedar", "orbit")
KINDS = ("list", "search", "record", "dashboard", "update", "create", "transition")
TARGET_SCALE, TARGET_REST = 1.7, 3.0
KNEE_TOLERANCE = 0.05  # within 5% of the best throughput: it has stopped rising


@dataclass
class Run:
    processes: int
    users: int
    result: dict[str, Any]
    lost: int
    client: str = "asyncio"

    @property
    def label(self) -> str:
        return f"{self.processes} process{'es' if self.processes > 1 else ''}"

    @property
    def throughput(self) -> float:
        measured = {k: v for k, v in self.result["kinds"].items() if k != "sign-in"}
        seconds = self.result["seconds"] or 1.0
        return sum(v["requests"] for v in measured.values()) / seconds

    @property
    def errors(self) -> int:
        return sum(v["failures"] for v in self.result["kinds"].values())

    def p50(self, kind: str) -> float:
        return float(self.result["kinds"].get(kind, {}).get("p50") or 0.0)

    def p95(self, kind: str) -> float:
        return float(self.result["kinds"].get(kind, {}).get("p95") or 0.0)

    def cores(self, name: str) -> float:
        """CPU used by `name` (client, servers, busy: the whole machine) while measuring, in
        cores (CPU seconds per second); 0 when not measured."""
        seconds = self.result["seconds"] or 1.0
        return float(self.result.get("cpu", {}).get(name, 0.0)) / seconds


def knee(throughput: dict[int, float], tolerance: float = KNEE_TOLERANCE) -> int:
    """The load where throughput stops rising: the fewest users whose throughput is within
    `tolerance` (a share) of the best seen."""
    best = max(throughput.values())
    return min(users for users, rate in throughput.items() if rate >= (1 - tolerance) * best)


# -- the database -------------------------------------------------------------------------------

@contextmanager
def own_database(server: str) -> Iterator[str]:
    """A new database on `server` for the block's duration (dropped after)."""
    name = f"crmforge_load_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalize_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(normalize_url(server)).set(database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prepare(url: str, users: int, deals: int, folder: Path) -> tuple[Path, list[int]]:
    """Install the pack, the reps and the deals: (the users' JSON file, the hot deal ids)."""
    if crmforge(["install", str(PACK), "--database-url", url]) != 0:
        raise SystemExit("installing benchmarks/load_pack failed")
    inst = open_instance(url)
    try:
        system = Actor.system_actor("bench")
        rng = random.Random(7)
        rows = [(n, {"name": f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} deal {n}",
                     "company": f"{rng.choice(WORDS).title()} Ltd",
                     "amount": rng.randint(100, 99_999), "hits": 0})
                for n in range(1, deals + 1)]
        made = bulk.create_many(inst, system, "deal", rows)
        ids = [outcome.id for outcome in made if outcome.id is not None]
        if len(ids) != deals:
            raise SystemExit(f"only {len(ids)} of {deals} deals were created")
        hot, rest = ids[:HOT], ids[HOT:]
        team = [_rep(inst, system, n, rest[n::users][:20]) for n in range(users)]
    finally:
        inst.engine.dispose()
    path = folder / "users.json"
    path.write_text(json.dumps(team), encoding="utf-8")
    return path, hot


def _rep(inst: Instance, system: Actor, number: int, own: list[int]) -> dict[str, Any]:
    username = f"rep{number + 1}"
    user = records.create(inst, system, "user", {"username": username,
                                                 "full_name": f"Rep {number + 1}"})
    users, roles = inst.schema.table("user"), inst.schema.system("user_role")
    with inst.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == user["id"]).values(
            password_hash=hash_password(PASSWORD)))
        conn.execute(roles.insert().values(user_id=user["id"], role="rep"))
    return {"username": username, "password": PASSWORD, "own": own,
            "token": create_token(inst, user["id"], "load benchmark")}


def counter_total(url: str) -> int:
    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT coalesce(sum(hits), 0) FROM deal"))
                       .scalar_one())
    finally:
        engine.dispose()


# -- the server and the load --------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(url: str, processes: int, options: list[str], folder: Path,
            redis: str) -> Iterator[tuple[str, int]]:
    """`crmforge serve --workers processes *options` on a free port while the block runs: its
    base address and process id."""
    port = free_port()
    env = {**os.environ, "CRMFORGE_SECRET_KEY": SECRET, "CRMFORGE_QUEUE_URL": redis,
           "PYTHONPATH": str(ROOT), "CRMFORGE_CUSTOM_DIR": str(folder / "custom")}
    for name in ("CRMFORGE_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR",
                 "CRMFORGE_READ_DATABASE_URL"):
        env.pop(name, None)
    log = folder / f"serve-{processes}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "runtime.ops.cli", "--database-url", url, "serve",
             "--port", str(port), "--workers", str(processes), *options],
            cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process, log)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(base: str, process: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"crmforge serve stopped:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"crmforge serve was not ready within {seconds} s:\n"
                     f"{log.read_text()[-3000:]}")


def play_locust(base: str, pid: int, users: int, seconds: float,
                setup: dict[str, Any]) -> dict[str, Any]:
    """Run locust headless against `base` (`--client locust`): the result the locustfile
    wrote."""
    folder = setup["folder"]
    result = folder / f"result-{uuid.uuid4().hex[:6]}.json"
    env = {**os.environ, "LOAD_USERS": str(setup["users_file"]),
           "LOAD_HOT": json.dumps(setup["hot"]), "LOAD_SECONDS": str(seconds),
           "LOAD_RESULT": str(result), "LOAD_MAX_ID": str(setup["max_id"]),
           "LOAD_SERVER_PID": str(pid), "PYTHONPATH": str(ROOT)}
    cap = seconds + 60 + users  # signing in first; the locustfile stops itself before this
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", base,
         "-u", str(users), "-r", str(users), "-t", f"{int(cap)}s", "--only-summary",
         "--stop-timeout", "10", "--loglevel", "WARNING"],
        cwd=folder, env=env, capture_output=True, text=True, check=False)
    if not result.is_file():
        raise SystemExit(f"locust wrote no result (exit {done.returncode}):\n"
                         f"{done.stderr[-3000:]}")
    return json.loads(result.read_text(encoding="utf-8"))


def measure(url: str, base: str, pid: int, processes: int, users: int, seconds: float,
            setup: dict[str, Any]) -> Run:
    """One run of `users` users for `seconds` against the server at `base`."""
    before = counter_total(url)
    if setup["client"] == "locust":
        result = play_locust(base, pid, users, seconds, setup)
    else:
        result = loadclient.play(base, setup["team"], users, seconds, setup["hot"], setup["max_id"],
                                 lambda: loadclient.cpu_marks(pid),
                                 keep_alive=setup.get("keep_alive", False))
    if not result["measured"]:
        raise SystemExit(f"only {result['signed_in']} of {users} users signed in: "
                         f"{result['errors'][:3]}")
    lost = result["updates"] - (counter_total(url) - before)
    run = Run(processes, users, result, lost, setup["client"])
    print(f"{run.label}, {users} users: {run.throughput:.1f} requests/s, list p95 "
          f"{run.p95('list'):.0f} ms, {run.errors} errors, {lost} lost updates, "
          f"{result['conflicts']} conflicts retried; CPU cores: client {run.cores('client'):.2f}"
          f", servers {run.cores('servers'):.2f}, machine {run.cores('busy'):.2f}",
          file=sys.stderr)
    return run


def sweep(url: str, processes: int, users: list[int], seconds: float,
          setup: dict[str, Any]) -> list[Run]:
    """Each user count in turn against one `crmforge serve` of `processes` processes."""
    with serving(url, processes, setup["serve"], setup["folder"], setup["redis"]) as (
            base, pid):
        return [measure(url, base, pid, processes, n, seconds, setup) for n in users]


def rounds_of(url: str, counts: list[int], users: list[int], seconds: float,
              setup: dict[str, Any], rounds: int) -> list[Run]:
    """Every process count's sweep, the counts in turn `rounds` times (1 process, 2
    processes, 1 process, ...; a new server each time): one run per process and user count,
    its rounds pooled."""
    played = [run for _ in range(rounds) for processes in counts
              for run in sweep(url, processes, users, seconds, setup)]
    return [pooled([run for run in played if (run.processes, run.users) == (processes, n)])
            for processes in counts for n in users]


def pooled(runs: list[Run]) -> Run:
    """A user count's rounds as one run: their requests, failures, seconds, CPU, updates and
    lost updates added up, each kind's percentiles the median of the rounds' (a slow minute
    of the machine moves none of them)."""
    if len(runs) == 1:
        return runs[0]
    results = [run.result for run in runs]
    kinds = {}
    for name in sorted({kind for result in results for kind in result["kinds"]}):
        found = [result["kinds"][name] for result in results if name in result["kinds"]]
        timed = [entry for entry in found if entry["requests"]]
        kinds[name] = {"requests": sum(entry["requests"] for entry in found),
                       "failures": sum(entry["failures"] for entry in found),
                       **{q: statistics.median(entry[q] for entry in timed) if timed else 0.0
                          for q in ("p50", "p95", "p99")}}
    errors: Counter[tuple[str, str]] = Counter()
    for result in results:
        errors.update({(e["name"], e["error"]): e["count"] for e in result["errors"]})
    added = {key: sum(result[key] for result in results)
             for key in ("signed_in", "seconds", "requests", "failures", "updates",
                         "conflicts", "gave_up")}
    cpu = Counter()
    for result in results:
        cpu.update(result.get("cpu", {}))
    result = {**added, "measured": all(r["measured"] for r in results), "kinds": kinds,
              "cpu": dict(cpu),
              "errors": [{"name": name, "error": error, "count": count}
                         for (name, error), count in errors.most_common()]}
    first = runs[0]
    return Run(first.processes, first.users, result, sum(run.lost for run in runs),
               first.client)


# -- the report ---------------------------------------------------------------------------------

CLIENTS = {"locust": "locust (`benchmarks/locustfile.py`, FastHttpUser)",
           "asyncio": "our asyncio client (`benchmarks/loadclient.py`)"}


def report(runs: list[Run], args: argparse.Namespace,
           compared: list[Run] | None = None) -> tuple[str, bool]:
    """(the markdown section, whether every target holds); `compared`: the same load played
    by locust, for its CPU."""
    cores = os.cpu_count() or 1
    client = CLIENTS[args.client]
    if args.client == "asyncio":
        client += (", a kept-alive connection per user" if args.keep_alive else
                   ", a new connection per request, as a reverse proxy in front opens them")
    knees = knees_of(runs)
    swept = ", ".join(str(n) for n in args.users)
    lines = [
        "## Many users at once (PostgreSQL, Redis, `crmforge serve`)", "",
        f"Measured by `make bench-load` (`benchmarks/load.py`, {client}) on {date.today()}, "
        f"{platform.machine()}, {cores} cores ({_cpu()}), Python "
        f"{platform.python_version()}, PostgreSQL, Redis and the client on the same machine; "
        f"load average {_load()} at the end (1 / 5 / 15 minutes; other work on the machine "
        f"slows every figure). {args.records:,} deals; users {swept} on each process "
        f"count (one server per process count), {_rounds(args)}; {_server(args)}; sales "
        "reps (role `rep`, no row filter) doing 40% list and search, 25% record page, 10% "
        "dashboard (web pages), 15% update, 5% create, 5% transition (JSON API). An update "
        f"reads a deal of {HOT} shared ones and saves its counter plus one with the version it "
        "read; a 409 is read again and retried (counted, not an error).", "",
        f"The knee is the fewest users whose throughput is within {KNEE_TOLERANCE:.0%} of the "
        "best of the sweep: where throughput stops rising. CPU columns: cores used while "
        "measuring (CPU seconds per second) by the client, by the `crmforge serve` processes, "
        f"and by the whole machine (of {cores}; the rest is PostgreSQL, Redis and other work).",
        "",
        "| run | processes | users | requests/s | list p50 ms | list p95 ms | errors "
        "| lost updates | conflicts retried | CPU client | CPU servers | CPU machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        mark = " (knee)" if knees.get(run.processes) is run else ""
        lines.append(
            f"| {run.label} | {run.processes} | {run.users}{mark} | {run.throughput:.1f} "
            f"| {run.p50('list'):.0f} | {run.p95('list'):.0f} | {run.errors} | {run.lost} "
            f"| {run.result['conflicts']} | {run.cores('client'):.2f} "
            f"| {run.cores('servers'):.2f} | {run.cores('busy'):.2f} |")
    share = cpu_share(runs)
    if share:
        lines += ["", f"Over all runs the client took {share}."]
    for run in compared or []:
        lines += ["", f"The same load played by {CLIENTS[run.client]}, {run.label}, "
                  f"{run.users} users, for comparison: {run.throughput:.1f} requests/s, "
                  f"{run.errors} errors, {run.lost} lost updates; it took "
                  f"{cpu_share([run]) or 'an unmeasured share of the CPU'}."]
    shown = [("at rest", rest_of(runs, 1))] + [
        (f"knee, {run.label} ({run.users} users)", run) for run in knees.values()]
    shown = [(name, run) for name, run in shown if run is not None]
    lines += ["", "Milliseconds per request, p50 / p95 / p99:", "",
              "| kind | " + " | ".join(name for name, _ in shown) + " |",
              "|---|" + "---|" * len(shown)]
    for kind in (*KINDS, "update (read)", "transition (read)"):
        cells = []
        for _name, run in shown:
            found = run.result["kinds"].get(kind)
            cells.append("–" if not found or not found["requests"] else
                         f"{found['p50']:.0f} / {found['p95']:.0f} / {found['p99']:.0f}")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    checks, ok = checks_of(runs, compared or [])
    lines += ["", "| check | target | measured | holds |", "|---|---|---|---|", *checks]
    errors = [e for run in runs for e in run.result["errors"]]
    if errors:
        lines += ["", "Errors: " + "; ".join(f"{e['count']}× {e['name']}: {e['error']}"
                                             for e in errors[:5])]
    return "\n".join(lines), ok


def _server(args: argparse.Namespace) -> str:
    if args.connections and args.connections != args.threads:
        return (f"{args.threads} threads per process, each taking up to {args.connections} "
                "connections at once")
    return (f"{args.threads} threads per process, each taking as many connections at once "
            "(the rest wait for the first free process)")


def _rounds(args: argparse.Namespace) -> str:
    if args.rounds == 1:
        return f"each run {args.seconds:g} s after every user signed in"
    return (f"the sweeps played {args.rounds} times, the process counts in turn (a new "
            f"server each time), each run {args.seconds:g} s after every user signed in, so "
            "that a slower minute of the machine falls on every process and user count alike; "
            f"a count's {args.rounds} runs pooled: throughput over all of them, each "
            "percentile the median of theirs")


def cpu_share(runs: list[Run]) -> str:
    """The client's share of the CPU the client and the servers used, in words ("" when it
    was not measured)."""
    client = sum(r.result.get("cpu", {}).get("client", 0.0) for r in runs)
    servers = sum(r.result.get("cpu", {}).get("servers", 0.0) for r in runs)
    requests = sum(r.throughput * r.result["seconds"] for r in runs)
    if not client or not requests:
        return ""
    return (f"{client / (client + servers):.0%} of the CPU the client and the servers used "
            f"together ({client / requests * 1000:.2f} ms of CPU per request; the servers "
            f"{servers / requests * 1000:.1f} ms)")


def knees_of(runs: list[Run]) -> dict[int, Run]:
    """Per process count, its run at the knee."""
    found = {}
    for processes in sorted({r.processes for r in runs}):
        mine = {r.users: r for r in runs if r.processes == processes}
        found[processes] = mine[knee({n: r.throughput for n, r in mine.items()})]
    return found


def rest_of(runs: list[Run], processes: int) -> Run | None:
    """The run with one user on `processes` processes (else on any): the list "at rest"."""
    alone = [r for r in runs if r.users == 1]
    return next((r for r in alone if r.processes == processes), alone[0] if alone else None)


def checks_of(runs: list[Run], compared: list[Run]) -> tuple[list[str], bool]:
    every = runs + compared
    rows: list[tuple[str, str, str, bool]] = [
        ("errors", "0", str(sum(r.errors for r in every)), all(r.errors == 0 for r in every)),
        ("lost updates", "0", str(sum(r.lost for r in every)),
         all(r.lost == 0 for r in every))]
    best = {p: max(r.throughput for r in runs if r.processes == p)
            for p in {r.processes for r in runs}}
    if 1 in best and 2 in best:
        scale = best[2] / (best[1] or 1.0)
        rows.append(("throughput: 2 processes ÷ 1, each at its best", f"≥ {TARGET_SCALE}",
                     f"{scale:.2f}", scale >= TARGET_SCALE))
    for processes, run in knees_of(runs).items():
        rest = rest_of(runs, processes)
        top = max(r.users for r in runs if r.processes == processes)
        if run.users == top and top > 1:
            rows.append((f"{run.label}: throughput stopped rising", f"before {top} users",
                         "still rising: sweep further", False))
        if rest is not None and rest is not run and rest.p95("list"):
            ratio = run.p95("list") / rest.p95("list")
            rows.append((f"p95 of the list page: {run.label} at the knee ({run.users} users) "
                         "÷ at rest (1 user)", f"≤ {TARGET_REST:g}", f"{ratio:.1f}",
                         ratio <= TARGET_REST))
    lines = [f"| {name} | {target} | {measured} | {'yes' if holds else '**no**'} |"
             for name, target, measured, holds in rows]
    return lines, all(holds for *_, holds in rows)


def _load() -> str:
    try:
        return " / ".join(f"{n:.1f}" for n in os.getloadavg())
    except OSError:
        return "unknown"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# -- the command --------------------------------------------------------------------------------

def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10,
                   help="each run, measured after every user signed in (default 10)")
    p.add_argument("--rounds", type=int, default=3,
                   help="times the sweeps are played, the process counts in turn; a process "
                        "and user count's figures pool its rounds (default 3)")
    p.add_argument("--sweep", default="1,2,4,8,16",
                   help="user counts, run in turn on each process count (default 1,2,4,8,16)")
    p.add_argument("--records", type=int, default=5000, help="deals (default 5000)")
    p.add_argument("--processes", default="1,2", help="server processes per sweep (default 1,2)")
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                   help=f"threads per process (default {DEFAULT_THREADS}, as crmforge serve)")
    p.add_argument("--connections", type=int,
                   help="connections a process takes at once (default: its threads, as "
                        "crmforge serve)")
    p.add_argument("--client", choices=("asyncio", "locust"), default="asyncio",
                   help="who plays the users: benchmarks/loadclient.py (default) or locust")
    p.add_argument("--keep-alive", action="store_true",
                   help="one kept-alive connection per user (default: one per request, as a "
                        "reverse proxy in front opens them)")
    p.add_argument("--no-compare", action="store_true",
                   help="skip the last run, locust at the most users and processes (its CPU)")
    p.add_argument("--no-report", action="store_true", help="do not write docs/performance.md")
    p.add_argument("--quick", action="store_true",
                   help="a few seconds, 1 process, 1 then 4 users twice, few deals; writes "
                        "nothing")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.sweep, args.records, args.rounds = 2, "1,4", 200, 2
        args.processes, args.no_report, args.no_compare = "1", True, True
    args.users = sorted({int(n) for n in args.sweep.split(",")})
    return args


def serve_options(args: argparse.Namespace) -> list[str]:
    connections = ["--connections", str(args.connections)] if args.connections else []
    return ["--threads", str(args.threads), *connections]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    server = os.environ.get("CRMFORGE_BENCH_POSTGRES", SERVER)
    with tempfile.TemporaryDirectory(prefix="crmforge-load-") as tmp, \
            own_database(server) as url:
        folder = Path(tmp)
        users_file, hot = prepare(url, max(args.users), args.records, folder)
        setup = {"serve": serve_options(args), "folder": folder, "users_file": users_file,
                 "hot": hot, "max_id": args.records, "client": args.client,
                 "keep_alive": args.keep_alive,
                 "team": json.loads(users_file.read_text(encoding="utf-8")),
                 "redis": os.environ.get("CRMFORGE_BENCH_REDIS", REDIS)}
        counts = [int(n) for n in args.processes.split(",")]
        runs = rounds_of(url, counts, args.users, args.seconds, setup, args.rounds)
        compared = []
        if args.client != "locust" and not args.no_compare:
            compared = sweep(url, max(counts), [max(args.users)], args.seconds,
                             {**setup, "client": "locust"})
    text, _ok = report(runs, args, compared)
    print(text)
    if not args.no_report:
        write_section("load", text)
    return 0 if all(r.errors == 0 and r.lost == 0 for r in runs + compared) else 1


if __name__ == "__main__":
    sys.exit(main())
