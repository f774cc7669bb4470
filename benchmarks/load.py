"""`make bench-load`: many signed-in users against `crmforge serve` on PostgreSQL and Redis.

What it does, all on 127.0.0.1:

1. makes a PostgreSQL database of its own on the server of `$CRMFORGE_BENCH_POSTGRES` (default
   the shared test server, postgresql://postgres@127.0.0.1:5432/postgres), installs
   `benchmarks/load_pack`, creates `--users` sales reps (password and API token each) and
   `--records` deals; the database is dropped at the end;
2. serves it with `crmforge serve --workers N --threads T` (the queue on Redis:
   `$CRMFORGE_BENCH_REDIS`, default redis://127.0.0.1:6379/11), and plays the mix of
   `benchmarks/locustfile.py` with locust for `--seconds`: first one user on one process (the
   list page "at rest"), then `--users` users on 1 and on 2 processes;
3. after each run compares the deals' counters in the database with the updates that
   succeeded (a lost update shows as a difference), and reports throughput, p50/p95/p99 per kind
   and errors, with the checks: zero errors, zero lost updates, 2 processes ÷ 1 process
   throughput (target ≥ 1.7), p95 of the list page under load (2 processes) ÷ at rest
   (target ≤ 3).

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
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.report import write_section
from runtime.core.db import normalize_url
from runtime.core.instance import Actor, Instance
from runtime.core.passwords import hash_password
from runtime.http.auth import create_token
from runtime.ops.cli import main as crmforge
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


@dataclass
class Run:
    label: str
    processes: int
    users: int
    result: dict[str, Any]
    lost: int

    @property
    def throughput(self) -> float:
        measured = {k: v for k, v in self.result["kinds"].items() if k != "sign-in"}
        seconds = self.result["seconds"] or 1.0
        return sum(v["requests"] for v in measured.values()) / seconds

    @property
    def errors(self) -> int:
        return sum(v["failures"] for v in self.result["kinds"].values())

    def p95(self, kind: str) -> float:
        return float(self.result["kinds"].get(kind, {}).get("p95") or 0.0)


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
def serving(url: str, processes: int, threads: int, folder: Path,
            redis: str) -> Iterator[str]:
    """`crmforge serve` on a free port while the block runs; its base address."""
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
             "--port", str(port), "--workers", str(processes), "--threads", str(threads)],
            cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process, log)
        yield base
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


def play(base: str, users: int, seconds: float, users_file: Path, hot: list[int],
         max_id: int, folder: Path) -> dict[str, Any]:
    """Run locust headless against `base`: the result the locustfile wrote."""
    result = folder / f"result-{uuid.uuid4().hex[:6]}.json"
    env = {**os.environ, "LOAD_USERS": str(users_file), "LOAD_HOT": json.dumps(hot),
           "LOAD_SECONDS": str(seconds), "LOAD_RESULT": str(result),
           "LOAD_MAX_ID": str(max_id)}
    cap = seconds + 60 + users  # signing in first; the locustfile stops itself before this
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", base,
         "-u", str(users), "-r", str(users), "-t", f"{int(cap)}s", "--only-summary",
         "--stop-timeout", "10", "--loglevel", "WARNING"],
        cwd=folder, env=env, capture_output=True, text=True, check=False)
    if not result.is_file():
        raise SystemExit(f"locust wrote no result (exit {done.returncode}):\n"
                         f"{done.stderr[-3000:]}")
    found = json.loads(result.read_text(encoding="utf-8"))
    if not found["measured"]:
        raise SystemExit(f"only {found['signed_in']} of {users} users signed in:\n"
                         f"{done.stderr[-3000:]}")
    return found


def measure(url: str, label: str, processes: int, users: int, seconds: float,
            setup: dict[str, Any]) -> Run:
    before = counter_total(url)
    with serving(url, processes, setup["threads"], setup["folder"], setup["redis"]) as base:
        result = play(base, users, seconds, setup["users_file"], setup["hot"],
                      setup["max_id"], setup["folder"])
    lost = result["updates"] - (counter_total(url) - before)
    run = Run(label, processes, users, result, lost)
    print(f"{label}: {run.throughput:.1f} requests/s, {run.errors} errors, {lost} lost "
          f"updates, {result['conflicts']} conflicts retried", file=sys.stderr)
    return run


# -- the report ---------------------------------------------------------------------------------

def report(runs: list[Run], args: argparse.Namespace) -> tuple[str, bool]:
    """(the markdown section, whether every target holds)."""
    lines = [
        "## Many users at once (PostgreSQL, Redis, `crmforge serve`)", "",
        f"Measured by `make bench-load` (`benchmarks/load.py`, locust) on {date.today()}, "
        f"{platform.machine()}, {os.cpu_count()} cores ({_cpu()}), Python "
        f"{platform.python_version()}, PostgreSQL and Redis on the same machine, locust "
        f"too (it takes CPU from the servers); load average {_load()} at the end (other "
        f"work on the machine slows every figure). {args.records:,} deals; each run "
        f"{args.seconds:g} s after every user signed in; {args.threads} threads per process; "
        "sales reps (role `rep`, no row filter) doing 40% list and search, 25% record page, "
        "10% dashboard (web pages), 15% update, 5% create, 5% transition (JSON API). An "
        f"update reads a deal of {HOT} shared ones and saves its counter plus one with the "
        "version it read; a 409 is read again and retried (counted, not an error).", "",
        "| run | processes | users | requests/s | errors | lost updates | conflicts retried |",
        "|---|---|---|---|---|---|---|"]
    for run in runs:
        lines.append(f"| {run.label} | {run.processes} | {run.users} | {run.throughput:.1f} "
                     f"| {run.errors} | {run.lost} | {run.result['conflicts']} |")
    lines += ["", "Milliseconds per request, p50 / p95 / p99:", "",
              "| kind | " + " | ".join(run.label for run in runs) + " |",
              "|---|" + "---|" * len(runs)]
    for kind in (*KINDS, "update (read)", "transition (read)"):
        cells = []
        for run in runs:
            found = run.result["kinds"].get(kind)
            cells.append("–" if not found else
                         f"{found['p50']:.0f} / {found['p95']:.0f} / {found['p99']:.0f}")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    checks, ok = checks_of(runs)
    lines += ["", "| check | target | measured | holds |", "|---|---|---|---|", *checks]
    errors = [e for run in runs for e in run.result["errors"]]
    if errors:
        lines += ["", "Errors: " + "; ".join(f"{e['count']}× {e['name']}: {e['error']}"
                                             for e in errors[:5])]
    return "\n".join(lines), ok


def checks_of(runs: list[Run]) -> tuple[list[str], bool]:
    rest = next((r for r in runs if r.users == 1), None)
    by_processes = {r.processes: r for r in runs if r.users > 1}
    rows: list[tuple[str, str, str, bool]] = [
        ("errors", "0", str(sum(r.errors for r in runs)), all(r.errors == 0 for r in runs)),
        ("lost updates", "0", str(sum(r.lost for r in runs)), all(r.lost == 0 for r in runs))]
    if 1 in by_processes and 2 in by_processes:
        scale = by_processes[2].throughput / (by_processes[1].throughput or 1.0)
        rows.append(("throughput: 2 processes ÷ 1", f"≥ {TARGET_SCALE}", f"{scale:.2f}",
                     scale >= TARGET_SCALE))
    loaded = by_processes.get(2) or by_processes.get(1)
    if rest is not None and loaded is not None and rest.p95("list"):
        ratio = loaded.p95("list") / rest.p95("list")
        rows.append((f"p95 of the list page: {loaded.label} ÷ at rest", f"≤ {TARGET_REST:g}",
                     f"{ratio:.1f}", ratio <= TARGET_REST))
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
    p.add_argument("--seconds", type=float, default=30, help="each run, measured (default 30)")
    p.add_argument("--rest-seconds", type=float, default=10,
                   help="the run with one user (default 10)")
    p.add_argument("--users", type=int, default=16, help="users at once (default 16)")
    p.add_argument("--records", type=int, default=5000, help="deals (default 5000)")
    p.add_argument("--processes", default="1,2", help="server processes per run (default 1,2)")
    p.add_argument("--threads", type=int, default=4, help="threads per process (default 4)")
    p.add_argument("--no-report", action="store_true", help="do not write docs/performance.md")
    p.add_argument("--quick", action="store_true",
                   help="a few seconds, 1 process, few users and deals; writes nothing")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.rest_seconds, args.users, args.records = 3, 0, 4, 200
        args.processes, args.no_report = "1", True
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    server = os.environ.get("CRMFORGE_BENCH_POSTGRES", SERVER)
    with tempfile.TemporaryDirectory(prefix="crmforge-load-") as tmp, \
            own_database(server) as url:
        folder = Path(tmp)
        users_file, hot = prepare(url, args.users, args.records, folder)
        setup = {"threads": args.threads, "folder": folder, "users_file": users_file,
                 "hot": hot, "max_id": args.records,
                 "redis": os.environ.get("CRMFORGE_BENCH_REDIS", REDIS)}
        runs = []
        if args.rest_seconds > 0:
            runs.append(measure(url, "at rest", 1, 1, args.rest_seconds, setup))
        for processes in (int(n) for n in args.processes.split(",")):
            runs.append(measure(url, f"{processes} process{'es' if processes > 1 else ''}",
                                processes, args.users, args.seconds, setup))
    text, ok = report(runs, args)
    print(text)
    if not args.no_report:
        write_section("load", text)
    return 0 if all(r.errors == 0 and r.lost == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
