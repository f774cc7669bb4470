"""`crmforge demo` runs the worker beside the server (issue 13, item 16): the `Ticker` the demo
starts runs the due scheduled automations at once and then every tick, against an installed
instance opened from its URL as the demo opens it, and stops when asked — bounded, never
hanging a test or the demo's exit."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from runtime.core.db import make_engine
from runtime.ops.cli import build_parser, main
from runtime.ops.worker import Ticker
from runtime.process.setup import open_instance

LEAD = """\
entity: lead
title_field: name
fields:
  name: {type: text, required: true}
  pooled: {type: boolean}
automations:
  back_to_pool:
    label: Return leads to the pool
    on: {schedule: daily}
    where: "pooled != true"
    do:
      - set: {pooled: true}
"""


def pooled(url: str) -> list[tuple[str, bool]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [(r.name, bool(r.pooled)) for r in conn.execute(sa.text(
                "SELECT name, pooled FROM lead ORDER BY id"))]
    finally:
        engine.dispose()


@pytest.fixture
def installed(database_url: str, pack: Callable, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> str:
    """An instance installed through `crmforge install`, with two leads not yet pooled."""
    monkeypatch.setenv("CRMFORGE_CUSTOM_DIR", str(tmp_path / "custom"))
    monkeypatch.delenv("CRMFORGE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["install", str(pack({"entities/lead.yaml": LEAD})),
                 "--database-url", database_url]) == 0
    data = tmp_path / "leads.csv"
    data.write_text("name,pooled\nAnn,false\nBob,false\n")
    assert main(["import", "lead", str(data), "--database-url", database_url]) == 0
    return database_url


def test_the_demo_worker_runs_due_automations_and_stops(installed: str) -> None:
    assert pooled(installed) == [("Ann", False), ("Bob", False)]
    lines: list[str] = []
    ticker = Ticker(lambda: open_instance(installed), interval=0.2,
                    report=lines.append).start()
    try:
        deadline = time.monotonic() + 30
        while pooled(installed) != [("Ann", True), ("Bob", True)]:
            assert time.monotonic() < deadline, "the scheduled automation did not run"
            time.sleep(0.1)
    finally:
        assert ticker.stop(timeout=10), "the worker's thread did not stop"
    assert lines == ["worker: ran lead.back_to_pool"]  # once per period, however many ticks


def test_a_failing_tick_is_logged_and_the_next_one_tries_again(installed: str) -> None:
    attempts: list[int] = []

    def flaky_open():  # the database is not reachable the first time
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("database not up yet")
        return open_instance(installed)

    ticker = Ticker(flaky_open, interval=0.1, report=lambda line: None).start()
    try:
        deadline = time.monotonic() + 30
        while not all(flag for _, flag in pooled(installed)):
            assert time.monotonic() < deadline, "the worker gave up after a failure"
            time.sleep(0.1)
    finally:
        assert ticker.stop(timeout=10)
    assert len(attempts) == 2


def test_the_demo_command_runs_the_worker_unless_told_not_to() -> None:
    args = build_parser().parse_args(["demo", "--no-serve"])
    assert args.no_worker is False and args.tick == 60.0
    args = build_parser().parse_args(["demo", "--no-worker", "--tick", "5"])
    assert args.no_worker is True and args.tick == 5.0


def test_a_tick_that_runs_many_automations_names_a_few(make_instance, pack) -> None:
    many = "entity: lead\nfields:\n  name: {type: text}\n  n: {type: integer}\nautomations:\n" + \
        "".join(f"  a{i}:\n    on: {{schedule: daily}}\n    do:\n      - set: {{n: {i}}}\n"
                for i in range(8))
    inst = make_instance(pack({"entities/lead.yaml": many}))
    lines: list[str] = []
    ticker = Ticker(lambda: inst, report=lines.append)
    assert len(ticker.tick()) == 8
    assert lines == ["worker: ran lead.a0, lead.a1, lead.a2, lead.a3, lead.a4, lead.a5 "
                     "and 2 more"]
    assert ticker.tick() == [] and len(lines) == 1  # nothing due: nothing said
