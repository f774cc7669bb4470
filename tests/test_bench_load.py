"""`benchmarks/load.py --quick` (the load benchmark of `make bench-load`, a few seconds, one
server process, four users) runs to the end against real `crmforge serve`, PostgreSQL, Redis
and locust, with no errors and no lost updates — so that the benchmark cannot rot unnoticed.
It writes nothing to docs/performance.md."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import postgres_url

from benchmarks.load import REDIS, SERVER, Run, pooled

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def reachable() -> str:
    """Why the benchmark cannot run here, or ""."""
    try:
        if importlib.util.find_spec("locust") is None:  # never imported here: it patches
            return "locust is not installed"  # the whole process for gevent
        import redis  # noqa: PLC0415

        redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
        engine = sa.create_engine(sa.make_url(postgres_url()).set(database="postgres"))
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - whatever is missing: skip, saying what
        return f"{type(exc).__name__}: {str(exc).strip()[:200]}"
    return ""


def test_the_load_benchmark_runs_in_its_quick_mode(tmp_path: Path) -> None:
    problem = reachable()
    if problem:
        pytest.skip(f"the load benchmark needs locust, PostgreSQL and Redis ({problem})")
    server = sa.make_url(postgres_url()).set(database="postgres").render_as_string(
        hide_password=False)
    doc = ROOT / "docs" / "performance.md"
    before = doc.read_text(encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.load", "--quick"], cwd=ROOT, capture_output=True,
        text=True, timeout=600, check=False,
        env={**os.environ, "CRMFORGE_BENCH_POSTGRES": server or SERVER})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| errors | 0 | 0 | yes |" in done.stdout, done.stdout
    assert "| lost updates | 0 | 0 | yes |" in done.stdout, done.stdout
    row = next(line for line in done.stdout.splitlines() if line.startswith("| 1 process |"))
    assert float(row.split("|")[4]) > 0, row  # requests/s: something was measured
    assert "the sweeps played 2 times" in done.stdout
    assert doc.read_text(encoding="utf-8") == before


def kind(requests: int, p95: float, failures: int = 0) -> dict[str, float]:
    return {"requests": requests, "failures": failures, "p50": p95 / 2, "p95": p95,
            "p99": p95 * 2}


def result(seconds: float, kinds: dict[str, dict[str, float]], **counts: int) -> dict:
    return {"signed_in": 4, "measured": True, "seconds": seconds, "kinds": kinds,
            "requests": sum(k["requests"] for k in kinds.values()),
            "failures": sum(k["failures"] for k in kinds.values()), "errors": [],
            "updates": counts.get("updates", 0), "conflicts": counts.get("conflicts", 0),
            "gave_up": 0, "cpu": {"client": 0.5, "servers": 9.0, "busy": 15.0}}


def test_a_user_counts_rounds_pool_into_one_run() -> None:
    """Throughput over all rounds; each percentile the median of the rounds' (one slow round
    moves none); errors, updates, lost updates and CPU added up."""
    rounds = [Run(2, 4, result(10, {"list": kind(400, 40)}, updates=30), 0),
              Run(2, 4, result(10, {"list": kind(200, 400, failures=1),
                                    "search": kind(0, 0, failures=2)}, updates=10), 1),
              Run(2, 4, result(10, {"list": kind(300, 50)}, updates=20), 0)]
    rounds[1].result["errors"] = [{"name": "list", "error": "HTTP 500", "count": 1}]
    run = pooled(rounds)
    assert (run.processes, run.users, run.throughput) == (2, 4, 900 / 30)
    assert (run.p50("list"), run.p95("list"), run.result["kinds"]["list"]["p99"]) == (25, 50, 100)
    assert run.result["kinds"]["search"] == {"requests": 0, "failures": 2, "p50": 0.0,
                                             "p95": 0.0, "p99": 0.0}
    assert (run.errors, run.lost, run.result["updates"]) == (3, 1, 60)
    assert run.result["errors"] == [{"name": "list", "error": "HTTP 500", "count": 1}]
    assert run.cores("servers") == 27.0 / 30
    assert pooled(rounds[:1]) is rounds[0]
