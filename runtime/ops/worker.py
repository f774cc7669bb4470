"""The worker (`crmforge worker`): scheduled automations, approval escalation, queued jobs.

Built on Huey. The queue is `CRMFORGE_QUEUE_URL` (or `--queue-url`): `redis://host:port/db`
for Redis, `sqlite:///path/queue.db` for a file; by default `instance/queue.db` next to the
instance's database. One periodic task, `crmforge.tick`, runs every minute and queues:

- `crmforge.run_automation` for each scheduled automation (hourly, daily, weekly, cron) whose
  current period is not finished yet;
- `crmforge.escalate`, which hands overdue approval steps on;
- `crmforge.send_mail`, which queues yesterday's notification digests and sends the e-mail
  that is due (`process/mail/outbox.py`: the queue is `crm_mail`, retries and backoff are kept
  there);
- `crmforge.send_webhooks`, which delivers the webhook events that are due
  (`process/webhooks.py`: the queue is `crm_webhook_delivery`, with its retries and backoff).

All state lives in the instance's database (`crm_schedule_run`, the approval tables), and every
task is idempotent, so several workers may run at once and a worker that was stopped picks up
where it left off when it starts again: the current period of each automation runs (a daily
automation missed yesterday is not replayed; a cron automation runs its latest firing of the
last eight days once).

Several workers (several machines on one Redis) each enqueue a tick every minute; the run
itself happens once: `run_scheduled` inserts a record's `crm_schedule_run` row (primary key
automation, period, record) in the transaction that runs the actions, before running them, so
a second worker blocks on that key and then skips the record (SQLite: the write lock). A job
that raises (the database away, a table being migrated) is retried by the queue with backoff
(`RETRIES` times, `--retry-delay` seconds first, doubling); every failed attempt is written to
`crm_job_failure` (`runtime.process.jobs`) and logged, and `crmforge worker --status` lists
them.

`Ticker` runs the worker beside another program, in a thread of its own, with an in-memory
queue: `crmforge demo` uses it, so that the demo's schedules happen while someone looks.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from threading import Event, Lock, Thread
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from runtime.core.db import database_url, write_transaction
from runtime.core.instance import Instance
from runtime.process import approvals, jobs
from runtime.process.automations import (
    SENTINEL,
    automation_key,
    period_key,
    run_scheduled,
    scheduled,
)
from runtime.process.mail.outbox import send_due
from runtime.process.notifications import queue_digests
from runtime.process.setup import open_instance
from runtime.process.webhooks import deliver_due
from runtime.write.derived import refresh_windowed, windowed

if TYPE_CHECKING:
    from huey import Huey

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
    from huey import RedisHuey, SqliteHuey  # loads redis (0.1 s): only a worker needs it

    url = queue_url(url)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(name, url=url, **kwargs)
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=str(path), **kwargs)
    raise ValueError(f"CRMFORGE_QUEUE_URL must start with redis:// or sqlite:///, not {url!r}")


RETRIES = 4  # a failing job is tried 5 times in all,
RETRY_DELAY = 30.0  # the first retry this many seconds after the failure,
RETRY_BACKOFF = 2  # each further one twice as long after the last: 30 s, 1, 2, 4 min
WINDOWED = "crm.windowed_rollups"  # crm_schedule_run key of the daily rollup refresh


class Worker:
    """The tasks of one Huey, run against the instance `open_instance()` returns (opened once,
    on first use, in the process that runs the tasks)."""

    def __init__(self, huey: Huey, open_instance: Callable[[], Instance],
                 retry_delay: float = RETRY_DELAY):
        from huey import crontab  # loads redis (0.1 s): only a worker needs it

        self.huey = huey
        self._open = open_instance
        self._inst: Instance | None = None
        self._lock = Lock()
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        retried = {"retries": RETRIES, "retry_delay": retry_delay,
                   "retry_backoff": RETRY_BACKOFF}
        self.tick = huey.periodic_task(crontab(), name="crmforge.tick")(self._tick)
        self.run_automation = huey.task(name="crmforge.run_automation",
                                        **retried)(self._run_automation)
        self.escalate = huey.task(name="crmforge.escalate", **retried)(self._escalate)
        self.refresh_windowed = huey.task(name="crmforge.refresh_windowed",
                                          **retried)(self._refresh_windowed)
        huey.post_execute(name="crmforge.ledger")(self._ledger)
        self.send_mail = huey.task(name="crmforge.send_mail")(self._send_mail)
        self.send_webhooks = huey.task(name="crmforge.send_webhooks")(self._send_webhooks)

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
        self.send_mail()  # after the automations, which may queue mail
        self.send_webhooks()

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

    def _send_mail(self) -> dict[str, int]:
        digests = queue_digests(self.inst)  # yesterday's, once per user
        report = send_due(self.inst)
        return {"digests": digests, "sent": report.sent, "retrying": report.retrying,
                "failed": report.failed}

    def _send_webhooks(self) -> dict[str, int]:
        report = deliver_due(self.inst)
        return {"delivered": report.delivered, "retrying": report.retrying,
                "failed": report.failed, "refused": report.refused}

    def _escalate(self) -> int:

        inst = self.inst
        return approvals.escalate(inst, inst.now())

    def _ledger(self, task: Any, _value: Any, exc: BaseException | None) -> None:
        """After every task: a failure into `crm_job_failure` and the log, a retry that
        succeeded marked recovered."""
        if exc is None:
            jobs.record_success(self.inst, task.id)
            return
        job = f"{task.name}({', '.join(map(repr, task.args))})"
        final = not task.retries  # the queue decrements it after this hook
        attempts = jobs.record_failure(self.inst, task.id, job, _first_line(exc),
                                       final=final, worker=self.name)
        then = "giving up" if final else f"retrying in {task.retry_delay:g} s"
        log.error("job %s failed (attempt %d, %s): %s", job, attempts, then, _first_line(exc))

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


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    first = text.splitlines()[0][:500] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


# -- beside another program -------------------------------------------------------------------

class Ticker:
    """The worker beside another program (`crmforge demo`): a daemon thread runs one tick —
    the due automations and escalations, executed at once — when started and then every
    `interval` seconds, until `stop()`. The queue is in memory: nothing is left behind, and a
    `crmforge worker` running too does no harm (every task is idempotent)."""

    def __init__(self, open_instance: Callable[[], Instance], interval: float = 60.0,
                 report: Callable[[str], None] | None = None):
        from huey import MemoryHuey  # loads redis (0.1 s): only a worker needs it

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
    p.add_argument("--status", action="store_true",
                   help="list the jobs that failed (crm_job_failure) and exit")
    p.add_argument("--retry-delay", type=float, default=RETRY_DELAY, metavar="SECONDS",
                   help=f"first retry of a failed job after SECONDS, doubling after "
                   f"(default {RETRY_DELAY:g}; {RETRIES} retries)")
    command("worker")(cmd_worker)


def cmd_worker(args: argparse.Namespace) -> int:

    url = database_url(getattr(args, "database_url", None))
    huey = make_huey(args.queue_url)
    if args.status:
        return print_status(open_instance(url))
    worker = Worker(huey, lambda: open_instance(url), retry_delay=args.retry_delay)
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


def print_status(inst: Instance) -> int:
    """`crmforge worker --status`: the failed jobs; exit status 1 when one gave up."""
    counts = jobs.counts(inst)
    print(", ".join(f"{count} {status}" for status, count in counts.items()))
    for f in jobs.failures(inst):
        print(f"{f.updated_at:%Y-%m-%d %H:%M:%S}  {f.status:<9}  {f.attempts} attempt(s)  "
              f"{f.job}  on {f.worker}: {f.last_error}")
    return 1 if counts["failed"] else 0
