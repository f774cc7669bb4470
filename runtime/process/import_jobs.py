"""Imports started from the web (`/admin/import`, docs/admin.md "Import"): an uploaded file,
its column mapping, a dry run, the run itself, the rejected rows and "Undo".

A job runs in a thread of the web process that started it (`start`): an import is one
person's action, needs no schedule, and must start at once, which the worker's queue does not
promise. Its progress lives in the `crm_import` row, written with each batch of
`runtime.process.imports.import_batches` (1,000 rows, one transaction each), so any process —
another web worker, a page reloaded after the tab was closed — shows where it is. A job whose
row has not moved for `STALLED` (its process ended) shows as stopped; what it created up to
there is kept, listed and can be undone.

The states: `uploaded` → `checking` → `checked` (the dry run's problems) → `running` →
`done`, then `undone`; `failed` when the file cannot be read to its end. A run records each
record it creates with its version in `crm_import_record`; `undo` deletes, through the one
write path, those whose version has not moved since, and keeps (and names) the others. The run
and the undo are audit entries of the entity (`import`, `import_undo`: /admin/audit).
"""

from __future__ import annotations

import csv
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runtime.core.db import write_transaction
from runtime.core.errors import Conflict, NotFound, RecordError
from runtime.core.instance import Actor, Instance
from runtime.process.imports import ImportResult, Reader, TransferError, import_batches
from runtime.read.export import csv_text, escape
from runtime.read.queries import reading
from runtime.write import records

STALLED = timedelta(minutes=2)  # a running job whose row has not moved for this long stopped
SHOWN_PROBLEMS = 200  # problems a page lists; the count and the CSV hold all
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One import as the pages show it."""

    id: int
    entity: str
    filename: str
    path: Path
    mapping: dict[str, str]
    state: str
    rows_done: int
    fraction: float
    created: int
    rejected: int
    problems: list[tuple[int, str]]
    message: str
    user_id: int | None
    started_at: datetime | None
    updated_at: datetime | None
    stalled: bool

    @property
    def busy(self) -> bool:
        return self.state in ("checking", "running") and not self.stalled

    def speed(self, now: datetime) -> tuple[float, float | None]:
        """(rows per second, seconds left or None when unknown)."""
        if self.started_at is None or not self.rows_done:
            return 0.0, None
        elapsed = max(((self.updated_at or now) - self.started_at).total_seconds(), 0.001)
        left = elapsed * (1 - self.fraction) / self.fraction if self.fraction > 0 else None
        return self.rows_done / elapsed, left


def create(inst: Instance, actor: Actor, entity: str, filename: str, path: Path) -> int:
    """A new job for an uploaded file; its id."""
    table = inst.schema.system("import")
    with write_transaction(inst.engine) as conn:
        return int(conn.execute(table.insert().values(
            entity=entity, filename=filename[:255], path=str(path), state="uploaded",
            user_id=actor.user_id, created_at=inst.now()).returning(table.c.id)).scalar_one())


def get(inst: Instance, import_id: int, conn: Connection | None = None) -> Job:
    table = inst.schema.system("import")
    with reading(inst, conn) as c:
        row = c.execute(sa.select(table).where(table.c.id == import_id)).mappings().first()
    if row is None:
        raise NotFound(f"There is no import #{import_id}.")
    stalled = row["state"] in ("checking", "running") and (
        row["updated_at"] or row["created_at"]) < inst.now() - STALLED
    return Job(row["id"], row["entity"], row["filename"], Path(row["path"]),
               json.loads(row["mapping"] or "{}"), row["state"], row["rows_done"],
               row["fraction"], row["created"], row["rejected"],
               [(int(line), text) for line, text in json.loads(row["problems"] or "[]")],
               row["message"] or "", row["user_id"], row["started_at"], row["updated_at"],
               stalled)


def recent(inst: Instance, limit: int = 20) -> list[Job]:
    """The newest imports, newest first."""
    table = inst.schema.system("import")
    with reading(inst, None) as conn:
        ids = conn.execute(sa.select(table.c.id).order_by(table.c.id.desc()).limit(limit)
                           ).scalars().all()
        return [get(inst, i, conn) for i in ids]


def _update(inst: Instance, conn: Connection, import_id: int, **values: Any) -> None:
    table = inst.schema.system("import")
    conn.execute(table.update().where(table.c.id == import_id).values(
        updated_at=inst.now(), **values))


# -- running ----------------------------------------------------------------------------------

def start(inst: Instance, actor: Actor, import_id: int, mapping: Mapping[str, str], *,
          dry_run: bool) -> None:
    """Check (`dry_run`) or run the import in a thread; Conflict when it is busy already or
    was run."""
    job = get(inst, import_id)
    if job.state not in ("uploaded", "checked"):
        raise Conflict(f"Import #{import_id} is {job.state}; it cannot be started again.")
    with write_transaction(inst.engine) as conn:
        _update(inst, conn, import_id, state="checking" if dry_run else "running",
                mapping=json.dumps(dict(mapping)), rows_done=0, fraction=0.0, created=0,
                rejected=0, problems=None, message=None, started_at=inst.now())
    threading.Thread(target=run, args=(inst, actor, import_id, dry_run), daemon=True,
                     name=f"import-{import_id}").start()


def run(inst: Instance, actor: Actor, import_id: int, dry_run: bool) -> None:
    """The job itself (the thread's body; a test may call it directly)."""
    job = get(inst, import_id)
    try:
        with Reader(job.path) as reader:
            def after_batch(conn: Connection, result: ImportResult, ids: list[int]) -> None:
                _record_ids(inst, conn, job, ids)
                _update(inst, conn, import_id, rows_done=result.rows,
                        fraction=reader.fraction(), created=result.created,
                        rejected=result.bad_rows)

            result = import_batches(inst, actor, job.entity, job.mapping, reader,
                                    dry_run=dry_run, after_batch=after_batch)
    except (TransferError, RecordError) as exc:
        _finish(inst, job, "failed", message=str(getattr(exc, "message", exc)))
        return
    except Exception:
        log.exception("import #%s failed", import_id)
        _finish(inst, job, "failed", message="The import stopped on an error of ours; it "
                "has been logged. What it created up to there can be undone.")
        return
    problems = json.dumps(result.problems)
    if dry_run:
        _finish(inst, job, "checked", problems=problems, rejected=result.bad_rows, created=0)
        return
    _finish(inst, job, "done", problems=problems, rejected=result.bad_rows,
            audit=("import", {"import": import_id, "file": job.filename,
                              "created": result.created, "rejected": result.bad_rows}),
            actor=actor)


def _record_ids(inst: Instance, conn: Connection, job: Job, ids: list[int]) -> None:
    """Keep the records a batch created with their version now (the move to their workflow
    state included): "Undo" deletes those still at it."""
    if not ids:
        return
    table = inst.schema.table(job.entity)
    versions = conn.execute(sa.select(table.c.id, table.c.version).where(table.c.id.in_(ids)))
    conn.execute(inst.schema.system("import_record").insert(), [
        {"import_id": job.id, "record_id": i, "version": v} for i, v in versions])


def _finish(inst: Instance, job: Job, state: str, *, actor: Actor | None = None,
            audit: tuple[str, dict[str, Any]] | None = None, **values: Any) -> None:
    with write_transaction(inst.engine) as conn:
        _update(inst, conn, job.id, state=state, **({"fraction": 1.0} if state != "failed"
                                                     else {}), **values)
        if audit is not None:
            _audit(inst, conn, actor, job.entity, *audit)


def _audit(inst: Instance, conn: Connection, actor: Actor | None, entity: str, kind: str,
           detail: Mapping[str, Any]) -> None:
    """An import (or its undo) as one audit entry of the entity."""
    conn.execute(inst.schema.system("audit").insert().values(
        entity=entity, record_id=0, action=kind, field=None, old_value=None,
        new_value=json.dumps(dict(detail)), user_id=actor.user_id if actor else None,
        at=inst.now()))


# -- after the run ----------------------------------------------------------------------------

def rejected_rows(inst: Instance, import_id: int) -> Iterator[str]:
    """The rows the run (or the dry run) refused, as CSV: the file's columns, then `line` and
    `problem`; text that a spreadsheet would run as a formula is escaped."""
    job = get(inst, import_id)
    problems: dict[int, list[str]] = {}
    for line, text in job.problems:
        problems.setdefault(line, []).append(text)
    out = _Lines()
    writer = csv.writer(out)
    with Reader(job.path) as reader:
        columns = [c for c in reader.header if c]
        writer.writerow([*columns, "line", "problem"])
        yield out.take()
        for line, raw in reader:
            if line in problems:
                writer.writerow([escape(csv_text(raw.get(c))) for c in columns]
                                + [line, escape("; ".join(problems[line]))])
                yield out.take()


class _Lines:
    """A file-like object csv.writer writes to, emptied by `take`."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def take(self) -> str:
        text, self.parts = "".join(self.parts), []
        return text


@dataclass(frozen=True)
class Undone:
    deleted: int
    kept: list[int]  # records changed since the import (or that could not be deleted)


def undo(inst: Instance, actor: Actor, import_id: int) -> Undone:
    """Delete the records the import created that nobody changed since; keep the others."""
    job = get(inst, import_id)
    if job.state not in ("done", "failed") and not job.stalled:
        raise Conflict(f"Import #{import_id} is {job.state}; only a finished import can be "
                       "undone.")
    table = inst.schema.table(job.entity)
    made = inst.schema.system("import_record")
    deleted, kept = 0, []
    with write_transaction(inst.engine) as conn:
        rows = conn.execute(sa.select(made.c.record_id, made.c.version, table.c.version)
                            .join(table, table.c.id == made.c.record_id)
                            .where(made.c.import_id == import_id)
                            .order_by(made.c.record_id.desc())).all()
        for record_id, then, now in rows:
            if then != now or not _deleted(inst, actor, conn, job.entity, record_id):
                kept.append(record_id)
            else:
                deleted += 1
        conn.execute(made.delete().where(made.c.import_id == import_id))
        _update(inst, conn, import_id, state="undone", message=json.dumps(sorted(kept)))
        _audit(inst, conn, actor, job.entity, "import_undo",
               {"import": import_id, "deleted": deleted, "kept": len(kept)})
    return Undone(deleted, sorted(kept))


def _deleted(inst: Instance, actor: Actor, conn: Connection, entity: str,
             record_id: int) -> bool:
    """Delete one record in a savepoint; False when the write path refuses (a link that
    restricts it), so that the record is kept."""
    try:
        with conn.begin_nested():
            records.delete(inst, actor, entity, record_id, conn=conn)
    except RecordError:
        return False
    return True
