"""Two `crmforge worker` processes (as on two machines) on one Redis queue and one database: a
scheduled automation runs once per period however many ticks both enqueue, and a job that
fails twice is retried with backoff, recorded in `crm_job_failure` and shown by
`crmforge worker --status`.

The queue is the machine's Redis at 127.0.0.1:6379, database 13 or 14, and only the keys of the
`crmforge` queue in it are removed (skipped visibly when no Redis answers)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from support import write_pack
from test_production import ROOT, Site, wait_until

from runtime.core.db import write_transaction
from runtime.core.instance import Actor, Instance
from runtime.ops.worker import Worker, make_huey
from runtime.process import jobs
from runtime.process.setup import open_instance
from runtime.write import records

# real server and worker processes, about a minute or two each: `make test` runs them,
# `make test-fast` leaves them out
pytestmark = pytest.mark.slow

# one Redis database per pytest-xdist worker (13, 14): the two databases' runs of this module
# may run side by side, and a worker of one must never take the other's jobs
_XDIST = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
REDIS_URL = f"redis://127.0.0.1:6379/{13 + _XDIST % 2}"
LEADS = 60
KEY = "lead.hourly_touch"
LEAD = """
entity: lead
title_field: name
fields:
  name:    {type: text, required: true}
  touches: {type: integer}
automations:
  hourly_touch:
    on: {schedule: hourly}
    do:
      - set: {touches: "=coalesce(touches, 0) + 1"}
"""


@dataclass
class Farm:
    """The installed instance, the queue as seen from the test, and the running workers."""

    site: Site
    queue: Worker  # enqueues only: its tasks run in the worker processes
    logs: list[Path]
    task_ids: list[str] = field(default_factory=list)  # the runs the test queued

    def text(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()}" for log in self.logs)

    def touches(self) -> list[int | None]:
        inst = self.queue.inst
        table = inst.schema.table("lead")
        with inst.engine.connect() as conn:
            return list(conn.execute(sa.select(table.c.touches).order_by(table.c.id)).scalars())


def redis_queue() -> Callable[[], object]:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        pytest.skip(f"Redis not reachable at {REDIS_URL} ({type(exc).__name__}: {exc})")
    return lambda: make_huey(REDIS_URL)


@pytest.fixture
def farm(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Farm]]:
    """`farm(held)`: the instance with LEADS leads and two workers on the queue. While the
    test holds writes to `crm_schedule_run` (and runs `held(conn)` in that transaction), the
    workers start, tick, and the queue gets 8 more runs of the automation; the hold ends when
    both processes are running it, so they run the same automation and period at once."""
    make = redis_queue()
    site = Site(tmp_path, database_url, {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                         "CRMFORGE_CUSTOM_DIR": str(tmp_path / "custom")})
    site.crmforge("install", str(write_pack(tmp_path / "packs", {"entities/lead.yaml": LEAD})))
    inst = open_instance(database_url)
    for number in range(LEADS):
        records.create(inst, Actor.system_actor(), "lead", {"name": f"Lead {number}"})
    huey = make()
    huey.storage.flush_all()  # the `crmforge` queue's keys in database 13 only
    started: list[subprocess.Popen] = []

    def start(held: Callable[[sa.Connection], object] = lambda conn: None) -> Farm:
        found = Farm(site, Worker(huey, lambda: inst, retry_delay=1),  # as the workers
                     [tmp_path / f"worker-{n}.log" for n in (1, 2)])
        with write_lock(inst) as conn:
            held(conn)
            started.extend(_start(site, log) for log in found.logs)
            wait_until(lambda: all("consumer started" in log.read_text()
                                   for log in found.logs), 60, found.text)
            found.task_ids = [found.queue.run_automation(KEY).id for _ in range(8)]
            wait_until(lambda: all(RUNNING in log.read_text() for log in found.logs), 20,
                       found.text)
        return found

    try:
        yield start
    finally:
        _stop(started)
        huey.storage.flush_all()
        inst.engine.dispose()


RUNNING = "Executing runtime.ops.worker.crmforge.run_automation"


@contextmanager
def write_lock(inst: Instance) -> Iterator[sa.Connection]:
    """Hold writes to `crm_schedule_run` (on SQLite: every write) until the block ends."""
    with write_transaction(inst.engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("LOCK TABLE crm_schedule_run IN EXCLUSIVE MODE"))
        yield conn


def _stop(started: list[subprocess.Popen]) -> None:
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def _start(site: Site, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "runtime.ops.cli", "--database-url", site.url, "worker",
             "--queue-url", REDIS_URL, "--retry-delay", "1", "--workers", "4"],
            cwd=site.folder, env=site.env, stdout=out, stderr=subprocess.STDOUT)


def settled(farm: Farm) -> bool:
    huey = farm.queue.huey
    return huey.pending_count() == 0 and huey.scheduled_count() == 0 and \
        farm.queue.due() == []


def test_two_workers_run_each_period_once(farm: Callable[..., Farm]):
    """Both processes held runs of the same automation and period when the lock went (the
    fixture waits for that); each record was done once, by one of them."""
    farm = farm()
    wait_until(lambda: settled(farm) and sum(done(farm)) >= LEADS, 60, farm.text)
    time.sleep(1)  # a run still under way would log a second "done" now
    assert farm.touches() == [1] * LEADS, farm.text()
    assert sum(done(farm)) == LEADS, farm.text()
    assert jobs.counts(farm.queue.inst) == {"retrying": 0, "failed": 0, "recovered": 0}


def done(farm: Farm) -> list[int]:
    """The records each run of the automation did, as the workers logged them."""
    return [int(n) for n in re.findall(rf"scheduled automation {KEY}, period \S+: (\d+) done",
                                       farm.text())]


def away(conn: sa.Connection) -> None:
    """The leads' table gone for a while, as if a migration held it."""
    conn.execute(sa.text("ALTER TABLE lead RENAME TO lead_away"))


def test_a_job_that_fails_twice_is_retried_and_recorded(farm: Callable[..., Farm]):
    farm = farm(away)
    inst, task_id = farm.queue.inst, farm.task_ids[0]

    def attempts() -> int:
        found = [f for f in jobs.failures(inst) if f.task_id == task_id]
        return found[0].attempts if found else 0

    wait_until(lambda: attempts() == 2, 30, farm.text)
    with inst.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE lead_away RENAME TO lead"))
    wait_until(lambda: settled(farm) and jobs.counts(inst)["retrying"] == 0, 60, farm.text)
    assert farm.touches() == [1] * LEADS, farm.text()
    failure = next(f for f in jobs.failures(inst) if f.task_id == task_id)
    assert (failure.status, failure.attempts, failure.job) == (
        "recovered", 2, f"crmforge.run_automation('{KEY}')")
    assert "lead" in failure.last_error
    assert re.search(rf"job crmforge.run_automation\('{KEY}'\) failed \(attempt 2, "
                     r"retrying in 2 s\)", farm.text()), farm.text()
    status = farm.site.crmforge("worker", "--status")
    assert f"recovered  2 attempt(s)  crmforge.run_automation('{KEY}')" in status.stdout


def test_a_job_that_never_succeeds_is_reported_failed(farm: Callable[..., Farm]):
    farm = farm(away)
    inst, task_id = farm.queue.inst, farm.task_ids[0]
    wait_until(lambda: any(f.task_id == task_id and f.status == "failed"
                           for f in jobs.failures(inst)), 60, farm.text)
    failure = next(f for f in jobs.failures(inst) if f.task_id == task_id)
    assert failure.attempts == 5  # the first try and RETRIES retries
    assert "giving up" in farm.text()
    status = farm.site.crmforge("worker", "--status", check=False)
    assert status.returncode == 1 and " failed " in status.stdout
