"""The worker's ledger of failed jobs (`crm_job_failure`): what failed, how often, and whether
a retry saved it.

A job (one queued Huey task: an automation's run, the escalation, ...) that succeeds at once
leaves no row. The first failure writes one, keyed by the queue's task id, which a retry keeps;
each further failure counts an attempt, `status` says `retrying` while the queue will try again
and `failed` when it gave up, and a retry that succeeds marks it `recovered`. The worker
(`runtime.ops.worker`) writes it; `crmforge worker --status` and `/metrics`
(`crmforge_job_failures`) read it, so every process sees the failures of every worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from runtime.core.db import write_transaction
from runtime.core.instance import Instance

STATUSES = ("retrying", "failed", "recovered")


@dataclass(frozen=True)
class Failure:
    task_id: str
    job: str
    status: str
    attempts: int
    last_error: str
    worker: str
    first_failed_at: datetime
    updated_at: datetime


def record_failure(inst: Instance, task_id: str, job: str, error: str, *, final: bool,
                   worker: str) -> int:
    """Count a failed attempt of the job `task_id`; the attempts so far."""
    table = inst.schema.system("job_failure")
    now = inst.now()
    status = "failed" if final else "retrying"
    with write_transaction(inst.engine) as conn:
        attempts = conn.execute(sa.select(table.c.attempts).where(
            table.c.task_id == task_id)).scalar()
        if attempts is None:
            conn.execute(table.insert().values(
                task_id=task_id, job=job[:255], status=status, attempts=1, last_error=error,
                worker=worker[:255], first_failed_at=now, updated_at=now))
            return 1
        conn.execute(table.update().where(table.c.task_id == task_id).values(
            status=status, attempts=attempts + 1, last_error=error, worker=worker[:255],
            updated_at=now))
        return attempts + 1


def record_success(inst: Instance, task_id: str) -> bool:
    """Mark the job `task_id` recovered if it had failed before; whether it had."""
    table = inst.schema.system("job_failure")
    retrying = (table.c.task_id == task_id) & (table.c.status == "retrying")
    with inst.engine.connect() as conn:  # most jobs never failed: no write, no write lock
        if conn.execute(sa.select(table.c.task_id).where(retrying)).first() is None:
            return False
    with write_transaction(inst.engine) as conn:
        changed = conn.execute(table.update().where(retrying).values(
            status="recovered", updated_at=inst.now()))
    return bool(changed.rowcount)


def failures(inst: Instance, limit: int = 50) -> list[Failure]:
    """The latest failed jobs, newest first."""
    table = inst.schema.system("job_failure")
    with inst.engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(
            table.c.updated_at.desc(), table.c.task_id).limit(limit)).all()
    return [Failure(**row._mapping) for row in rows]


def by_kind(inst: Instance) -> dict[tuple[str, str], tuple[int, int]]:
    """{(kind, status): (jobs, attempts)}, where a job's kind is its task's name
    (`crmforge.run_automation`, without the arguments): one grouped query, for /metrics."""
    table = inst.schema.system("job_failure")
    with inst.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.job, table.c.status, sa.func.count(),
                                      sa.func.sum(table.c.attempts))
                            .group_by(table.c.job, table.c.status)).all()
    found: dict[tuple[str, str], tuple[int, int]] = {}
    for job, status, number, attempts in rows:
        key = (job.split("(", 1)[0], status)
        jobs, tries = found.get(key, (0, 0))
        found[key] = (jobs + int(number), tries + int(attempts or 0))
    return found


def counts(inst: Instance) -> dict[str, int]:
    """How many jobs are in each status (every status present, 0 when none)."""
    table = inst.schema.system("job_failure")
    with inst.engine.connect() as conn:
        found = dict(conn.execute(sa.select(table.c.status, sa.func.count()).group_by(
            table.c.status)).all())
    return {status: int(found.get(status, 0)) for status in STATUSES}
