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

from benchmarks.load import REDIS, SERVER

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
    assert doc.read_text(encoding="utf-8") == before
