"""Pack installs and upgrades started from `/admin/packs` as jobs (`crm_pack_job`,
docs/admin.md "Packs").

A job runs in a thread of the web process that started it (`start`), like a web import
(`runtime.process.import_jobs`): the admin's action must begin at once, and the migration
runs in one transaction anyway. Its state lives in its `crm_pack_job` row, so any process —
another gunicorn worker, a page reloaded later — answers the progress poll.

A row says which process runs it (`host`, `pid`) and that process moves `updated_at` every
`HEARTBEAT` while it works. A `running` job is `stalled` — shown as failed, with what that
means — when its process is gone: on the same host the pid says so at once (a SQLite
database is always on one host, and its single writer may hold the heartbeat back during a
long migration); from another host, when the heartbeat is older than `STALLED`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runtime.core.db import write_transaction
from runtime.core.errors import Conflict
from runtime.core.instance import Actor, Instance
from runtime.process import migrate

HEARTBEAT = 5.0  # seconds between two signs of life of a running job
STALLED = timedelta(seconds=60)  # a heartbeat this old, from another host: the job is dead
HOST = socket.gethostname()[:255]
log = logging.getLogger(__name__)

Move = tuple[str, str | None, str]  # (pack, version before or None, version after)
Work = Callable[[], list[str]]  # the migration (and its audit entry); what it said


@dataclass(frozen=True)
class PackJob:
    """One install or upgrade as the pages show it."""

    id: int
    action: str
    pack: str
    state: str  # running, done, failed
    steps: int
    moves: list[Move]
    notes: list[str]
    message: str
    user_id: int | None
    started_at: datetime
    finished_at: datetime | None
    stalled: bool  # running, but its process is gone

    @property
    def busy(self) -> bool:
        return self.state == "running" and not self.stalled

    def elapsed(self, now: datetime) -> float:
        return max(((self.finished_at or now) - self.started_at).total_seconds(), 0.0)


class Busy(Conflict):
    """Another install or upgrade is running: one at a time."""

    def __init__(self, job: PackJob):
        self.job = job
        super().__init__(f"{job.action.capitalize()} of {job.pack} (job #{job.id}) is running; "
                         "wait until it has finished.")


def ensure_table(inst: Instance) -> None:
    """Create `crm_pack_job` when the database predates it, before a plan is made: the
    upgrade that would add it needs it to run."""
    with inst.engine.connect() as conn:
        if sa.inspect(conn).has_table("crm_pack_job"):
            return
    metadata = inst.schema.private_metadata()
    with write_transaction(inst.engine) as conn:
        metadata.create_all(conn, tables=[metadata.tables["crm_pack_job"]], checkfirst=True)


def get(inst: Instance, job_id: int) -> PackJob | None:
    table = inst.schema.system("pack_job")
    with inst.engine.connect() as conn:
        if not sa.inspect(conn).has_table("crm_pack_job"):
            return None
        row = conn.execute(sa.select(table).where(table.c.id == job_id)).mappings().first()
    return None if row is None else _job(inst, row)


def running(inst: Instance) -> list[PackJob]:
    """The jobs running now (their process alive), oldest first."""
    table = inst.schema.system("pack_job")
    with inst.engine.connect() as conn:
        if not sa.inspect(conn).has_table("crm_pack_job"):
            return []
        rows = conn.execute(sa.select(table).where(table.c.state == "running")
                            .order_by(table.c.id)).mappings().all()
    return [job for job in (_job(inst, r) for r in rows) if job.busy]


def _job(inst: Instance, row: Any) -> PackJob:
    return PackJob(row["id"], row["action"], row["pack"], row["state"], row["steps"],
                   [(str(n), old, str(new)) for n, old, new in row["moves"] or []],
                   [str(n) for n in row["notes"] or []], row["message"] or "",
                   row["user_id"], row["started_at"], row["finished_at"],
                   row["state"] == "running" and _gone(row, inst.now()))


def _gone(row: Any, now: datetime) -> bool:
    """Whether the process that runs the job `row` has ended."""
    if row["host"] == HOST:
        return not _alive(int(row["pid"]))
    return row["updated_at"] < now - STALLED


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


# -- running --------------------------------------------------------------------------------

def start(inst: Instance, actor: Actor, action: str, pack: str, steps: int,
          moves: list[Move], work: Work, *, wait: bool = False) -> int:
    """Record the job and run `work` in a thread (to its end first, with `wait`); its id.
    Busy while another install or upgrade is running."""
    busy = running(inst)
    if busy:
        raise Busy(busy[0])
    table = inst.schema.system("pack_job")
    now = inst.now()
    with write_transaction(inst.engine) as conn:
        job_id = int(conn.execute(table.insert().values(
            action=action, pack=pack, state="running", steps=steps,
            moves=[list(m) for m in moves], host=HOST, pid=os.getpid(),
            user_id=actor.user_id, started_at=now, updated_at=now).returning(table.c.id)
        ).scalar_one())
    context = contextvars.copy_context()  # the workspace's custom dir goes with the thread
    thread = threading.Thread(target=context.run, args=(run, inst, job_id, work),
                              name=f"pack-{action}-{job_id}", daemon=True)
    thread.start()
    if wait:
        thread.join()
    return job_id


def run(inst: Instance, job_id: int, work: Work) -> None:
    """The job's body: `work` with a heartbeat beside it, then the outcome in the row."""
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(inst, job_id, stop), daemon=True,
                            name=f"pack-job-{job_id}-heartbeat")
    beat.start()
    try:
        notes = work()
    except Exception as exc:  # every failure ends the job, with its reason
        if not _expected(exc):
            log.exception("pack job #%s failed", job_id)
        _finish(inst, job_id, "failed", message=_reason(exc))
    else:
        _finish(inst, job_id, "done", notes=notes)
    finally:
        stop.set()


def _expected(exc: Exception) -> bool:
    """A failure the admin can act on from its message (not a bug of ours)."""
    return isinstance(exc, (migrate.MigrationFailed, migrate.MigrationRefused,
                            sa.exc.SQLAlchemyError))


def _reason(exc: Exception) -> str:
    if isinstance(exc, sa.exc.SQLAlchemyError):
        return str(exc).splitlines()[0]
    if _expected(exc):
        return str(exc)
    return ("The job stopped on an error of ours; it has been logged. The migration runs in "
            "one transaction: nothing of it was applied.")


def _heartbeat(inst: Instance, job_id: int, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT):
        try:
            with write_transaction(inst.engine) as conn:
                _update(inst, conn, job_id)
        except sa.exc.SQLAlchemyError:  # the database is busy migrating: next time
            continue


def _finish(inst: Instance, job_id: int, state: str, **values: Any) -> None:
    with write_transaction(inst.engine) as conn:
        _update(inst, conn, job_id, state=state, finished_at=inst.now(), **values)


def _update(inst: Instance, conn: Connection, job_id: int, **values: Any) -> None:
    table = inst.schema.system("pack_job")
    conn.execute(table.update().where(table.c.id == job_id).values(
        updated_at=inst.now(), **values))


AUDIT_ENTITY = "pack"


def audit_applied(inst: Instance, who: Actor, action: str, detail: dict[str, Any]) -> None:
    """The audit entry of an applied install or upgrade (`pack_install`, `pack_upgrade`)."""
    with write_transaction(inst.engine) as conn:
        conn.execute(inst.schema.system("audit").insert().values(
            entity=AUDIT_ENTITY, record_id=0, action=f"pack_{action}", field=None,
            old_value=None, new_value=json.dumps(detail), user_id=who.user_id, at=inst.now()))
