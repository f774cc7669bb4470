"""Run a plan: every operation in one transaction, or none of them.

Operations that change one table run inside that table's Alembic batch
(`op.batch_alter_table`): plain ALTER statements on PostgreSQL, and on SQLite — which can
alter little in place — a copy of the table made with the change ("move and copy"). SQLite's
foreign keys are switched off while that happens, or dropping the old copy would fire their
ON DELETE actions. On PostgreSQL an advisory lock keeps two migrations from running at once.

The applied model's hash and its packs' versions are recorded in `crm_model` and
`crm_installed` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.engine import Connection, Engine

from builder.model import AppModel
from runtime.core import searchindex
from runtime.core.instance import utcnow
from runtime.core.schema import NAMING_CONVENTION, build_schema
from runtime.process.migrate import ops as O
from runtime.process.migrate.compare import Plan
from runtime.process.migrate.ops import MigrationFailed

ADVISORY_LOCK = 7_311_002  # any constant: "the CRMForge migration" on this database


class MigrationRefused(Exception):
    """The plan has steps that would lose, rewrite or need data, and they were not allowed."""

    def __init__(self, ops: list[O.Op]):
        self.ops = ops
        super().__init__(self.explain())

    def explain(self) -> str:
        destructive = [op for op in self.ops if op.safety == O.DESTRUCTIVE]
        needs_data = [op for op in self.ops if op.safety == O.NEEDS_DATA]
        lines = ["nothing was changed: this migration has steps that would lose or rewrite "
                 "data, or that need data first:"]
        lines += [f"  {op.line()}" for op in self.ops]
        if destructive:
            lines.append("Removed fields and tables, narrower types and removed choices are "
                         "applied only with --allow-destructive; even then the old values are "
                         "kept, renamed aside (_removed_...), never dropped.")
        if needs_data:
            lines.append("Steps marked needs-data can run once the data is fixed, or now with "
                         "--allow-destructive (a new required field then stays empty on the "
                         "existing records).")
        return "\n".join(lines)


def apply(plan: Plan, engine: Engine, allow_destructive: bool = False, *,
          now: datetime | None = None) -> list[str]:
    """Apply `plan` to `engine`'s database; returns the notes of the data steps.

    Raises MigrationRefused (before touching anything) when the plan has destructive or
    needs-data steps and `allow_destructive` is false, and MigrationFailed when the database
    refuses a step (everything is rolled back).
    """
    refused = plan.refused(allow_destructive)
    if refused:
        raise MigrationRefused(refused)
    now = now or utcnow()
    with _migration_connection(engine) as conn:
        context = MigrationContext.configure(conn, opts={
            "target_metadata": build_schema(plan.model).metadata})
        ctx = O.ApplyContext(conn, Operations(context), plan.model, now)
        try:
            run(plan.ops, ctx)
            record(conn, plan.model, now)
        except sa.exc.DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise MigrationFailed(
                f"the database refused the migration and nothing was changed: {reason} (fix "
                "the data it names; if another migration ran at the same time, run the "
                "command again)") from exc
    return ctx.notes


def run(ops: tuple[O.Op, ...] | list[O.Op], ctx: O.ApplyContext) -> None:
    """Each table's local operations in one batch; data steps after their batch; then the
    search index of any table a batch copied (SQLite drops a copied table's triggers)."""
    with searchindex.reflecting():  # Alembic's batches reflect the tables
        index = 0
        while index < len(ops):
            op = ops[index]
            if not op.local:
                op.apply(None, ctx)
                op.after(ctx)
                index += 1
                continue
            group = [op]
            while index + len(group) < len(ops) and _same_batch(group[-1],
                                                                ops[index + len(group)]):
                group.append(ops[index + len(group)])
            with ctx.operations.batch_alter_table(op.table, recreate="auto",
                                                  naming_convention=NAMING_CONVENTION) as batch:
                for item in group:
                    item.apply(batch, ctx)
            for item in group:
                item.after(ctx)
            index += len(group)
        if ops:
            O.SyncSearchIndex("").apply(None, ctx)


def _same_batch(last: O.Op, following: O.Op) -> bool:
    """Whether `following` joins the batch `last` is in: the same table's local operations,
    except that a table's column renames close their batch. In SQLite's copy of the table,
    Alembic still knows a renamed column by its old name, so an index, a constraint or a type
    change on the new name (a renamed sort or filter field's index) goes in the next batch."""
    return following.local and following.table == last.table and not (
        isinstance(last, O.RenameColumn) and not isinstance(following, O.RenameColumn))


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:  # must happen outside a transaction, or SQLite ignores it
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
            conn = conn.execution_options(sqlite_immediate=True)
        try:
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                                 {"key": ADVISORY_LOCK})
                yield conn
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def record(conn: Connection, model: AppModel, now: datetime) -> None:
    """Remember the applied model (hash, pack versions) and the installed packs."""
    schema = build_schema(model)
    models, installed = schema.system("model"), schema.system("installed")
    versions = {name: pack.version for name, pack in model.packs.items()}
    last = conn.execute(sa.select(models.c.hash, models.c.packs)
                        .order_by(models.c.id.desc()).limit(1)).first()
    if last is None or last.hash != model.hash or last.packs != versions:
        conn.execute(models.insert().values(hash=model.hash, packs=versions, applied_at=now))
    rows = {row.pack: row for row in conn.execute(sa.select(installed))}
    for name, pack in model.packs.items():
        path = str(Path(pack.path).resolve()) if pack.path else None
        row = rows.get(name)
        if row is None:
            conn.execute(installed.insert().values(pack=name, version=pack.version, path=path,
                                                   demo=False, installed_at=now))
        elif row.version != pack.version or row.path != path:
            conn.execute(installed.update().where(installed.c.pack == name).values(
                version=pack.version, path=path))
    gone = [name for name in rows if name not in model.packs]
    if gone:
        conn.execute(installed.delete().where(installed.c.pack.in_(gone)))
