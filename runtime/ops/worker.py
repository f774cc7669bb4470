"""The worker (`crmforge worker`): scheduled automations, approval escalation, queued jobs.

Built on Huey. The queue is `CRMFORGE_QUEUE_URL` (or `--queue-url`): `redis://host:port/db`
for Redis, `sqlite:///path/queue.db` for a file; by default `instance/queue.db` next to the
instance's database. One periodic task, `crmforge.tick`, runs every minute and queues:

- `crmforge.run_automation` for each scheduled automation (hourly, daily, weekly, cron) whose
  current period is not finished yet;
- `crmforge.escalate`, which hands overdue approval steps on.

All state lives in the instance's database (`crm_schedule_run`, the approval tables), and every
task is idempotent, so several workers may run at once and a worker that was stopped picks up
where it left off when it starts again: the current period of each automation runs (a daily
automation missed yesterday is not replayed; a cron automation runs its latest firing of the
last eight days once).

`Ticker` runs the worker beside another program, in a thread of its own, with an in-memory
queue: `crmforge demo` uses it, so that the demo's schedules happen while someone looks.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path
from threading import Event, Lock, Thread
from typing import Any

import sqlalchemy as sa
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey, crontab

from runtime.core.db import database_url, write_transaction
from runtime.core.instance import Instance
from runtime.process import approvals
from runtime.process.automations import (
    SENTINEL,
    automation_key,
    period_key,
    run_scheduled,
    scheduled,
)
from runtime.process.setup import open_instance
from runtime.write.derived import refresh_windowed, windowed

log = logging.getLogger("crmforge.worker")
QUEUE_NAME = "crmforge"


def queue_url(explicit: str | None = None, instance_dir: str | Path = "instance") -> str:
    """The queue's URL: `explicit`, else $CRMFORGE_QUEUE_URL, else the SQLite file in
    `instance_dir`."""
    return explicit or os.environ.get("CRMFORGE_QUEUE_URL") or \
        f"sqlite:///{Path(instance_dir) / 'queue.db'}"


def make_huey(url: str | None = None, *, name: str = QUEUE_NAME, **kwargs: Any) -> Huey:
    """A Huey for `url` (see `queue_url`): RedisHuey for redis:// and rediss://, SqliteHuey
    for sqlite:///PATH."""
    url = queue_url(url)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(name, url=url, **kwargs)
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=str(path), **kwargs)
    raise ValueError(f"CRMFORGE_QUEUE_URL must start with redis:// or sqlite:///, not {url!r}")


WINDOWED = "crm.windowed_rollups"  # crm_schedule_run key of the daily rollup refresh


class Worker:
    """The tasks of one Huey, run against the instance `open_instance()` returns (opened once,
    on first use, in the process that runs the tasks)."""

    def __init__(self, huey: Huey, open_instance: Callable[[], Instance]):
        self.huey = huey
        self._open = open_instance
        self._inst: Instance | None = None
        self._lock = Lock()
        self.tick = huey.periodic_task(crontab(), name="crmforge.tick")(self._tick)
        self.run_automation = huey.task(name="crmforge.run_automation", retries=2,
                                        retry_delay=30)(self._run_automation)
        self.escalate = huey.task(name="crmforge.escalate", retries=2,
                                  retry_delay=30)(self._escalate)
        self.refresh_windowed = huey.task(name="crmforge.refresh_windowed", retries=2,
                                          retry_delay=30)(self._refresh_windowed)

    @property
    def inst(self) -> Instance:
        with self._lock:
            if self._inst is None:
                self._inst = self._open()
            return self._inst

    def due(self) -> list[str]:
        """`entity.name` of the scheduled automations whose current period is unfinished."""

        inst = self.inst
        now = inst.now()
        runs = inst.schema.system("schedule_run")
        result = []
        with inst.engine.connect() as conn:
            for automation in scheduled(inst):
                assert automation.trigger.schedule is not None
                period = period_key(automation.trigger.schedule, now)
                if period is None:
                    continue
                key = automation_key(automation)
                finished = conn.execute(sa.select(runs.c.record_id).where(
                    runs.c.automation == key, runs.c.period == period,
                    runs.c.record_id == SENTINEL)).first()
                if finished is None:
                    result.append(key)
        return result

    def _tick(self) -> list[str]:
        due = self.due()
        for key in due:
            self.run_automation(key)
        self.escalate()

        if windowed(self.inst) and not self._windowed_done():
            self.refresh_windowed()
        return due

    def _windowed_done(self, conn: Any | None = None) -> bool:
        """Whether today's refresh of the `today()`-windowed rollups has run."""

        inst = self.inst
        runs = inst.schema.system("schedule_run")
        query = sa.select(runs.c.record_id).where(
            runs.c.automation == WINDOWED, runs.c.period == inst.today().isoformat(),
            runs.c.record_id == SENTINEL)
        if conn is not None:
            return conn.execute(query).first() is not None
        with inst.engine.connect() as own:
            return own.execute(query).first() is not None

    def _refresh_windowed(self) -> int:

        inst = self.inst
        runs = inst.schema.system("schedule_run")
        with write_transaction(inst.engine) as conn:
            if self._windowed_done(conn):  # another worker did it
                return 0
            count = refresh_windowed(inst, conn)
            conn.execute(runs.insert().values(automation=WINDOWED,
                                              period=inst.today().isoformat(),
                                              record_id=SENTINEL, at=inst.now()))
        return count

    def _run_automation(self, key: str) -> dict[str, Any] | None:

        inst = self.inst
        for automation in scheduled(inst):
            if automation_key(automation) == key:
                report = run_scheduled(inst, automation, inst.now())
                return {"automation": key, "period": report.period, "done": report.done,
                        "failed": len(report.failed)}
        log.warning("no scheduled automation %s in the current definitions", key)
        return None

    def _escalate(self) -> int:

        inst = self.inst
        return approvals.escalate(inst, inst.now())

    def run_pending(self, limit: int = 10_000) -> int:
        """Execute queued tasks in this process until the queue is empty (tests, `--once`)."""
        count = 0
        while count < limit:
            task = self.huey.dequeue()
            if task is None:
                break
            self.huey.execute(task)
            count += 1
        return count

    def run_once(self) -> int:
        """What one tick does, executed now in this process: returns how many tasks ran."""
        self.tick()
        return self.run_pending()


# -- beside another program -------------------------------------------------------------------

class Ticker:
    """The worker beside another program (`crmforge demo`): a daemon thread runs one tick —
    the due automations and escalations, executed at once — when started and then every
    `interval` seconds, until `stop()`. The queue is in memory: nothing is left behind, and a
    `crmforge worker` running too does no harm (every task is idempotent)."""

    def __init__(self, open_instance: Callable[[], Instance], interval: float = 60.0,
                 report: Callable[[str], None] | None = None):
        self.worker = Worker(MemoryHuey(QUEUE_NAME), open_instance)
        self.interval = interval
        self.report = report or (lambda line: log.info("%s", line))
        self._stop = Event()
        self._thread = Thread(target=self._loop, name="crmforge-ticker", daemon=True)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop after the tick under way; whether the thread ended within `timeout`."""
        self._stop.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.interval)

    def tick(self) -> list[str]:
        """One tick now; the keys of the automations that were due. A failure is logged and
        the next tick tries again: the program beside must not stop because of it."""
        try:
            due = self.worker.due()
            self.worker.run_once()
        except Exception:  # noqa: BLE001 - any failure: log it, keep ticking
            log.exception("the worker's tick failed; trying again in %s s", self.interval)
            return []
        if due:  # the first tick of the demo runs some 80: name a few, count the rest
            shown = ", ".join(due[:6]) + (f" and {len(due) - 6} more" if len(due) > 6 else "")
            self.report(f"worker: ran {shown}")
        return due


# -- the command ------------------------------------------------------------------------------

def add_worker_commands(sub: argparse._SubParsersAction,
                        command: Callable[[str], Callable]) -> None:
    """Add `crmforge worker` to the CLI (`runtime/cli.py` calls this)."""
    p = sub.add_parser("worker", help="run scheduled automations, approval escalation and "
                       "queued jobs")
    p.add_argument("--queue-url", help="redis://... or sqlite:///PATH (default: "
                   "$CRMFORGE_QUEUE_URL or sqlite:///instance/queue.db)")
    p.add_argument("--workers", type=int, default=2, help="worker threads (default 2)")
    p.add_argument("--once", action="store_true",
                   help="run what is due now, wait for it, and exit (for cron or tests)")
    command("worker")(cmd_worker)


def cmd_worker(args: argparse.Namespace) -> int:

    url = database_url(getattr(args, "database_url", None))
    huey = make_huey(args.queue_url)
    worker = Worker(huey, lambda: open_instance(url))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.once:
        count = worker.run_once()
        print(f"ran {count} task(s)")
        return 0
    consumer = huey.create_consumer(workers=max(1, args.workers), worker_type="thread",
                                    periodic=True, check_worker_health=True)
    log.info("worker started: queue %s, database %s", queue_url(args.queue_url),
             url.split("@")[-1])
    consumer.run()
    return 0
