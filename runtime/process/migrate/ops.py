"""Migration operations: one small object per change, as Alembic's `operations/ops.py`.

An operation knows what it changes (`kind`, `table`), whether that is safe (`safety`), how to
say it to a person (`describe()`), and how to do it: `apply(alter, ctx)` emits the DDL and
`after(ctx)` moves data once the DDL has run (SQLite's batch mode only runs the DDL when the
table's batch closes). Operations that change one table (`local = True`) get that table's
Alembic batch as `alter`; the others (create and remove tables) get None and use `ctx`.

Nothing here decides *what* to do — that is `compare.py` — and nothing runs on its own —
that is `apply.py`. A removed column or table is never dropped: its data is moved aside to a
`_removed_<name>_<yyyymmddhhmmss>` column or table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import sqlalchemy as sa
from alembic.operations import Operations
from sqlalchemy.engine import Connection

from builder.model import AppModel
from runtime.core import phones, searchindex, sortindex

SAFE, NEEDS_DATA, DESTRUCTIVE = "safe", "needs-data", "destructive"
SAFETIES = (SAFE, NEEDS_DATA, DESTRUCTIVE)
ASIDE_PREFIX = "_removed_"


class MigrationFailed(Exception):
    """Nothing changed: the database refused a step (the transaction was rolled back), or the
    plan asks for something no migration can do (a rename onto a name still in use)."""


def aside_name(name: str, stamp: str, limit: int = 63) -> str:
    """`_removed_<name>_<stamp>`, the name kept for removed data; fits PostgreSQL's 63."""
    room = limit - len(ASIDE_PREFIX) - len(stamp) - 1
    return f"{ASIDE_PREFIX}{name[:room]}_{stamp}"


def type_text(type_: sa.types.TypeEngine, dialect: sa.engine.Dialect) -> str:
    try:
        return type_.compile(dialect=dialect)
    except Exception:  # noqa: BLE001 - a type the dialect cannot render still needs a name
        return repr(type_)


@dataclass
class ApplyContext:
    """What operations see while they run: one connection inside one transaction."""

    conn: Connection
    operations: Operations
    model: AppModel
    now: datetime
    notes: list[str] = field(default_factory=list)  # what the data steps report
    _copies: sa.MetaData | None = None

    @property
    def dialect(self) -> sa.engine.Dialect:
        return self.conn.dialect

    def fresh(self, table: sa.Table) -> sa.Table:
        """A private copy of `table` for CREATE TABLE.

        The model's tables are shared (built once per model); SQLAlchemy's `create_all` on
        PostgreSQL marks their use_alter foreign keys "never inline" as a side effect, which
        would leave those keys out of a CREATE TABLE on SQLite later in the same process.
        """
        if self._copies is None:
            self._copies = sa.MetaData(naming_convention=table.metadata.naming_convention)
            for other in table.metadata.tables.values():
                other.to_metadata(self._copies)
            for copy in self._copies.tables.values():
                for constraint in copy.constraints:
                    constraint._create_rule = None  # a "never inline" mark comes with a copy
        return self._copies.tables[table.name]


@dataclass(frozen=True)
class Op:
    kind: ClassVar[str] = "op"
    local: ClassVar[bool] = True  # changes one existing table, inside its batch
    phase: ClassVar[int] = 50  # order inside a table's batch: drops, renames, adds, creates
    table: str
    safety: str = SAFE

    def describe(self) -> str:
        raise NotImplementedError

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        """Emit the DDL: `alter` is the table's Alembic batch for local operations."""

    def after(self, ctx: ApplyContext) -> None:
        """Move data once the DDL of the table's batch has run."""

    def line(self) -> str:
        """One line of a printed plan: safety, then what happens."""
        return f"[{self.safety}] {self.describe()}"


def _table(ctx: ApplyContext, name: str) -> sa.Table:
    """The live table, reflected, so values bind with their real types."""
    with searchindex.reflecting():
        return sa.Table(name, sa.MetaData(), autoload_with=ctx.conn)


# -- whole tables -------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateTable(Op):
    """A new table: an entity's, a `links` field's join table, or a system table."""

    kind: ClassVar[str] = "create_table"
    local: ClassVar[bool] = False
    target: sa.Table = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    what: str = ""  # "entity offer", "links field offer.tags", "system table"
    deferred_fks: tuple[str, ...] = ()  # added after every new table exists (PostgreSQL)

    def describe(self) -> str:
        what = f" for {self.what}" if self.what else ""
        return f"create table {self.table}{what} ({len(self.target.columns)} columns)"

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        table = ctx.fresh(self.target)
        fks = [fk for fk in table.foreign_key_constraints if fk.name not in self.deferred_fks]
        ctx.conn.execute(sa.schema.CreateTable(table, include_foreign_key_constraints=fks))
        if ctx.dialect.supports_alter:  # our foreign keys are use_alter: never inline there
            for fk in fks:
                if fk.use_alter:
                    ctx.conn.execute(sa.schema.AddConstraint(fk, isolate_from_table=False))
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            ctx.conn.execute(sa.schema.CreateIndex(index))
        if self.table in searchindex.indexed(ctx.model):  # a new entity's search index
            ctx.notes.extend(searchindex.sync(ctx.conn, ctx.model, {self.table}, set()))


@dataclass(frozen=True)
class CopyTable(Op):
    """A `links` field renamed with `renamed_from`: its join table moves to the new name."""

    kind: ClassVar[str] = "rename_table"
    local: ClassVar[bool] = False
    old: str = ""
    target: sa.Table = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    what: str = ""

    def describe(self) -> str:
        return (f"rename table {self.old} -> {self.table} for {self.what} (renamed_from; the "
                "links move with it)")

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        table = ctx.fresh(self.target)
        ctx.conn.execute(sa.schema.CreateTable(
            table, include_foreign_key_constraints=list(table.foreign_key_constraints)))
        for index in table.indexes:
            ctx.conn.execute(sa.schema.CreateIndex(index))
        names = [c.name for c in table.columns]
        old = _table(ctx, self.old)
        ctx.conn.execute(table.insert().from_select(
            names, sa.select(*(old.c[n] for n in names))))
        _drop_table(ctx, self.old)


@dataclass(frozen=True)
class RemoveTable(Op):
    """A table whose entity (or `links` field) is gone: copied aside, then dropped."""

    kind: ClassVar[str] = "remove_table"
    local: ClassVar[bool] = False
    safety: str = DESTRUCTIVE
    aside: str = ""
    rows: int = 0
    what: str = ""

    def describe(self) -> str:
        what = f" ({self.what} is no longer defined)" if self.what else ""
        return (f"remove table {self.table}{what}: {_records(self.rows)} kept in table "
                f"{self.aside}")

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        # A copy keeps the data and the column types without the constraints and index names
        # of the original, so the entity can come back later under its old name.
        source = _table(ctx, self.table)
        kept = [c for c in source.columns if c.computed is None]  # not the folded copies
        copy = sa.Table(self.aside, sa.MetaData(), *(
            sa.Column(c.name, c.type, nullable=True) for c in kept))
        copy.create(ctx.conn)
        ctx.conn.execute(copy.insert().from_select([c.name for c in kept], sa.select(*kept)))
        _drop_table(ctx, self.table)
        searchindex.drop(ctx.conn, self.table)


def _drop_table(ctx: ApplyContext, name: str) -> None:
    quoted = ctx.conn.dialect.identifier_preparer.quote(name)
    cascade = " CASCADE" if ctx.conn.dialect.name == "postgresql" else ""
    ctx.conn.exec_driver_sql(f"DROP TABLE {quoted}{cascade}")


# -- constraints and indexes -------------------------------------------------------------


@dataclass(frozen=True)
class DropIndex(Op):
    kind: ClassVar[str] = "drop_index"
    phase: ClassVar[int] = 10
    name: str = ""
    columns: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"drop index {self.name} on {self.table} ({', '.join(self.columns)})"

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        alter.drop_index(self.name)


@dataclass(frozen=True)
class DropUnique(Op):
    kind: ClassVar[str] = "drop_unique"
    phase: ClassVar[int] = 10
    name: str = ""
    columns: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"drop unique constraint {self.name} on {self.table} ({', '.join(self.columns)})"

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        alter.drop_constraint(self.name, type_="unique")


@dataclass(frozen=True)
class DropForeignKey(Op):
    kind: ClassVar[str] = "drop_foreign_key"
    phase: ClassVar[int] = 10
    name: str = ""
    columns: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"drop foreign key {self.name} on {self.table} ({', '.join(self.columns)})"

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        alter.drop_constraint(self.name, type_="foreignkey")


@dataclass(frozen=True)
class AddIndex(Op):
    """An index; a unique one may be partial (`where`, SQL over the table's columns: SQLite
    and PostgreSQL both have them) and needs data when existing rows repeat a value — the
    index's `info["on_duplicates"]` then says what to do, and the repeated values are named."""

    kind: ClassVar[str] = "add_index"
    phase: ClassVar[int] = 80
    name: str = ""
    columns: tuple[str, ...] = ()
    unique: bool = False
    where: str | None = None
    duplicates: tuple[tuple[Any, ...], ...] = ()  # the repeated values (the first few)
    duplicate_count: int = 0  # how many values are repeated
    on_duplicates: str = ""

    def describe(self) -> str:
        what = "unique index" if self.unique else "index"
        text = f"add {what} {self.name} on {self.table} ({', '.join(self.columns)})"
        if self.where:
            text += f" where {self.where}"
        if self.duplicate_count:
            shown = ", ".join("(" + ", ".join(str(v) for v in values) + ")"
                              for values in self.duplicates)
            more = self.duplicate_count - len(self.duplicates)
            text += (f": {self.duplicate_count} value(s) are held by more than one row — "
                     f"{shown}{f' and {more} more' if more > 0 else ''}; "
                     + (self.on_duplicates or "make them unique first"))
        return text

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        partial = {f"{dialect}_where": sa.text(self.where)
                   for dialect in ("sqlite", "postgresql")} if self.where else {}
        alter.create_index(self.name, list(self.columns), unique=self.unique, **partial)


@dataclass(frozen=True)
class AddUnique(Op):
    """A unique constraint; needs data when existing records repeat a value."""

    kind: ClassVar[str] = "add_unique"
    phase: ClassVar[int] = 80
    name: str = ""
    columns: tuple[str, ...] = ()
    duplicates: int = 0  # values held by more than one record

    def describe(self) -> str:
        text = f"add unique constraint {self.name} on {self.table} ({', '.join(self.columns)})"
        if self.duplicates:
            text += (f": {self.duplicates} value(s) are held by more than one record; make "
                     "them unique first")
        return text

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        alter.create_unique_constraint(self.name, list(self.columns))


@dataclass(frozen=True)
class AddForeignKey(Op):
    """A foreign key; needs data when existing values point at records that do not exist."""

    kind: ClassVar[str] = "add_foreign_key"
    phase: ClassVar[int] = 85
    name: str = ""
    columns: tuple[str, ...] = ()
    referent: str = ""
    remote: tuple[str, ...] = ("id",)
    ondelete: str | None = None
    orphans: int = 0

    def describe(self) -> str:
        text = (f"add foreign key {self.name} on {self.table} ({', '.join(self.columns)}) -> "
                f"{self.referent}" + (f" on delete {self.ondelete.lower()}"
                                      if self.ondelete else ""))
        if self.orphans:
            text += (f": {_records(self.orphans)} point at {self.referent} rows that do not "
                     "exist; fix or empty them first")
        return text

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        alter.create_foreign_key(self.name, self.referent, list(self.columns),
                                 list(self.remote), ondelete=self.ondelete)


# -- columns -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RenameColumn(Op):
    """`renamed_from`: the column, and its data, take the new name."""

    kind: ClassVar[str] = "rename_column"
    phase: ClassVar[int] = 20
    old: str = ""
    new: str = ""
    existing_type: sa.types.TypeEngine | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        return (f"rename column {self.table}.{self.old} -> {self.table}.{self.new} "
                "(renamed_from; the data moves with it)")

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        # PostgreSQL's search objects of the old name (a folded copy reads the column and
        # would keep its type from changing later in the plan) go now; the search index
        # step of the same plan makes them under the new name
        searchindex.drop_column_index(ctx.conn, self.table, self.old)
        alter.alter_column(self.old, new_column_name=self.new, existing_type=self.existing_type)


@dataclass(frozen=True)
class MoveColumnAside(Op):
    """A removed field: its column is renamed aside (and made nullable), never dropped."""

    kind: ClassVar[str] = "remove_column"
    phase: ClassVar[int] = 30
    safety: str = DESTRUCTIVE
    column: str = ""
    aside: str = ""
    rows: int = 0  # records that hold a value
    existing_type: sa.types.TypeEngine | None = field(default=None, compare=False, repr=False)
    nullable: bool = True

    def describe(self) -> str:
        held = f"{_records(self.rows)} hold a value" if self.rows else "no record holds a value"
        return (f"remove column {self.table}.{self.column} (the field is gone; {held}): "
                f"kept as {self.table}.{self.aside}")

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        alter.alter_column(self.column, new_column_name=self.aside,
                           existing_type=self.existing_type, nullable=True,
                           existing_nullable=self.nullable)


@dataclass(frozen=True)
class AddColumn(Op):
    """A new field's column. A required field with a default fills the existing records."""

    kind: ClassVar[str] = "add_column"
    phase: ClassVar[int] = 40
    target: sa.Column = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    entity: str | None = None
    backfill: bool = False  # fill existing records with the field's default
    rows: int = 0

    @property
    def column(self) -> str:
        return self.target.name

    def describe(self) -> str:
        text = f"add column {self.table}.{self.column}"
        if self.target.foreign_keys:
            text += f" -> {next(iter(self.target.foreign_keys)).column.table.name}"
        if self.backfill and self.rows:
            text += f", filling {_records(self.rows)} with the field's default"
        return text

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        alter.add_column(detached(self.target))

    def after(self, ctx: ApplyContext) -> None:
        if not (self.backfill and self.rows and self.entity):
            return
        from builder.expressions import EvalContext, slot_value

        entity = ctx.model.entity(self.entity)
        f = entity.field(self.column)
        assert f.default is not None
        table = _table(ctx, self.table)
        rows = ctx.conn.execute(sa.select(table).where(table.c[self.column].is_(None)))
        for row in rows.mappings().all():
            value = slot_value(f.default, EvalContext(record=dict(row), entity=entity.name,
                                                      now=ctx.now, today=ctx.now.date()))
            ctx.conn.execute(table.update().where(table.c.id == row["id"]).values(
                {self.column: _storable(f, value)}))


@dataclass(frozen=True)
class FillPhoneShadow(Op):
    """A phone field's new E.164 shadow column (core/phones.py), filled from the numbers the
    records already hold, read in the instance's default region."""

    kind: ClassVar[str] = "fill_phone_numbers"
    phase: ClassVar[int] = 90  # after the column exists and any default filled the field
    column: str = ""
    field: str = ""
    rows: int = 0

    def describe(self) -> str:
        return (f"fill {self.table}.{self.column} with the E.164 form of {self.field} "
                f"({_records(self.rows)}, region {phones.region()})")

    def after(self, ctx: ApplyContext) -> None:
        table = _table(ctx, self.table)
        rows = ctx.conn.execute(sa.select(table.c.id, table.c[self.field]).where(
            table.c[self.field].is_not(None))).all()
        update = table.update().where(table.c.id == sa.bindparam("_id")).values(
            {self.column: sa.bindparam("_number")})
        for start in range(0, len(rows), 5000):
            ctx.conn.execute(update, [{"_id": i, "_number": phones.normalized(v)}
                                      for i, v in rows[start:start + 5000]])


@dataclass(frozen=True)
class SyncSearchIndex(Op):
    """The quick-search index (core/searchindex.py) of the entities whose index is missing
    or out of date — made, and built over the rows already there — and the index objects no
    entity wants any more, dropped. What is stale is decided again when it runs (and after
    every plan, by `apply.run`): on SQLite a table copied by a batch loses its triggers."""

    kind: ClassVar[str] = "search_index"
    local: ClassVar[bool] = False
    tables: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    sort: tuple[str, ...] = ()  # the list indexes in each language's collation (sortindex)
    sort_extra: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = []
        if self.tables:
            parts.append("build the search index of " + ", ".join(self.tables))
        if self.extra:
            parts.append("drop search index objects " + ", ".join(self.extra))
        if self.sort:
            parts.append("build the list indexes in each language's alphabet "
                         + ", ".join(self.sort))
        if self.sort_extra:
            parts.append("drop list indexes " + ", ".join(self.sort_extra))
        return "; ".join(parts)

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        tables, extra = searchindex.stale(ctx.conn, ctx.model)
        ctx.notes.extend(searchindex.sync(ctx.conn, ctx.model, tables, extra))
        build, unwanted = sortindex.stale(ctx.conn, ctx.model)
        sortindex.sync(ctx.conn, ctx.model, build, unwanted)


@dataclass(frozen=True)
class ChangeType(Op):
    """A widening type change (longer text, bigger number): the database converts in place."""

    kind: ClassVar[str] = "change_type"
    phase: ClassVar[int] = 45
    column: str = ""
    old_type: sa.types.TypeEngine = field(default=None, compare=False)  # type: ignore[assignment]
    new_type: sa.types.TypeEngine = field(default=None, compare=False)  # type: ignore[assignment]
    old_text: str = ""
    new_text: str = ""
    nullable: bool = True

    def describe(self) -> str:
        return (f"change type of {self.table}.{self.column} from {self.old_text} to "
                f"{self.new_text} (wider: every value still fits)")

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        searchindex.drop_column_index(ctx.conn, self.table, self.column)
        sortindex.drop_column(ctx.conn, self.table, self.column)
        alter.alter_column(self.column, type_=self.new_type, existing_type=self.old_type,
                           existing_nullable=self.nullable)


@dataclass(frozen=True)
class ReplaceColumn(Op):
    """A type change that may not keep every value (narrower, or another kind of value).

    The values are first copied to an aside column; the column, emptied, takes the new type;
    then every value that converts exactly comes back. Nothing is lost: what does not convert
    stays in the aside column. The column keeps its name, indexes and constraints.

    It runs on its own (`local = False`) because its data steps sit between two DDL steps.
    """

    kind: ClassVar[str] = "replace_column"
    local: ClassVar[bool] = False
    phase: ClassVar[int] = 35
    safety: str = DESTRUCTIVE
    column: str = ""
    aside: str = ""
    target: sa.Column = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    old_type: sa.types.TypeEngine = field(default=None, compare=False)  # type: ignore[assignment]
    old_text: str = ""
    new_text: str = ""
    entity: str | None = None
    rows: int = 0
    nullable: bool = True

    def describe(self) -> str:
        return (f"change type of {self.table}.{self.column} from {self.old_text} to "
                f"{self.new_text} (narrower or different; {_records(self.rows)} hold a value): "
                f"old values kept in {self.table}.{self.aside}, values that do not convert are "
                "left empty")

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        with ctx.operations.batch_alter_table(self.table) as batch:
            batch.add_column(sa.Column(self.aside, self.old_type, nullable=True))
        table = _table(ctx, self.table)
        ctx.conn.execute(table.update().values({self.aside: table.c[self.column]}))
        ctx.conn.execute(table.update().values({self.column: None}))
        searchindex.drop_column_index(ctx.conn, self.table, self.column)
        sortindex.drop_column(ctx.conn, self.table, self.column)
        with ctx.operations.batch_alter_table(self.table) as batch:
            batch.alter_column(self.column, type_=self.target.type, existing_type=self.old_type,
                               existing_nullable=self.nullable, postgresql_using="NULL")

    def after(self, ctx: ApplyContext) -> None:
        if not self.rows:
            return
        field_ = (ctx.model.entity(self.entity).fields.get(self.column)
                  if self.entity else None)
        table = _table(ctx, self.table)
        rows = ctx.conn.execute(sa.select(table.c.id, table.c[self.aside]).where(
            table.c[self.aside].isnot(None))).all()
        failed = 0
        for row_id, value in rows:
            converted = _convert(field_, value)
            if converted is None:
                failed += 1
                continue
            ctx.conn.execute(table.update().where(table.c.id == row_id).values(
                {self.column: converted}))
        ctx.notes.append(f"{self.table}.{self.column}: {len(rows) - failed} value(s) converted"
                         + (f", {failed} left empty (still in {self.aside})" if failed else ""))


@dataclass(frozen=True)
class RemoveChoiceValues(Op):
    """Choice values no longer offered but still held by records.

    With consent, the records keep their old value in an aside column and the field is emptied
    of values it no longer offers (a multichoice keeps its other values).
    """

    kind: ClassVar[str] = "remove_choice_values"
    phase: ClassVar[int] = 50
    safety: str = DESTRUCTIVE
    column: str = ""
    aside: str = ""
    values: tuple[tuple[str, int], ...] = ()  # (value, how many records hold it)
    options: tuple[str, ...] = ()
    multi: bool = False
    old_type: sa.types.TypeEngine = field(default=None, compare=False)  # type: ignore[assignment]

    def describe(self) -> str:
        used = ", ".join(f"'{v}' ({_records(n)})" for v, n in self.values)
        return (f"choice field {self.table}.{self.column} no longer offers {used}: those "
                f"records keep their old value in {self.table}.{self.aside} and lose it from "
                f"{self.column}")

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        alter.add_column(sa.Column(self.aside, self.old_type._copy() if hasattr(
            self.old_type, "_copy") else self.old_type, nullable=True))

    def after(self, ctx: ApplyContext) -> None:
        table = _table(ctx, self.table)
        col = table.c[self.column]
        if not self.multi:
            ctx.conn.execute(table.update().where(
                col.isnot(None), col.notin_(self.options)).values(
                {self.aside: col, self.column: None}))
            return
        for row_id, raw in ctx.conn.execute(sa.select(table.c.id, col).where(col.isnot(None))):
            values = _json_list(raw)
            kept = [v for v in values if v in self.options]
            if kept != values:
                ctx.conn.execute(table.update().where(table.c.id == row_id).values(
                    {self.aside: values, self.column: kept}))


@dataclass(frozen=True)
class AlterNullable(Op):
    """NOT NULL on or off (system columns only: entity fields are always nullable)."""

    kind: ClassVar[str] = "alter_nullable"
    phase: ClassVar[int] = 60
    column: str = ""
    nullable: bool = True
    nulls: int = 0
    existing_type: sa.types.TypeEngine | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        if self.nullable:
            return f"allow empty values in {self.table}.{self.column}"
        text = f"require a value in {self.table}.{self.column}"
        if self.nulls:
            text += f": {_records(self.nulls)} have none; fill them first"
        return text

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        alter.alter_column(self.column, nullable=self.nullable,
                           existing_type=self.existing_type)


@dataclass(frozen=True)
class AlterDefault(Op):
    """The database-side default of a column (system columns: `version`, flags)."""

    kind: ClassVar[str] = "alter_default"
    phase: ClassVar[int] = 60
    column: str = ""
    default: str | None = None
    existing_type: sa.types.TypeEngine | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        what = f"to {self.default}" if self.default is not None else "off"
        return f"set the database default of {self.table}.{self.column} {what}"

    def apply(self, alter: Any, ctx: ApplyContext) -> None:
        alter.alter_column(self.column, server_default=(
            sa.text(self.default) if self.default is not None else None),
            existing_type=self.existing_type)


# -- notes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequiredFieldNote(Op):
    """A new required field without a default on a table that has records: the column is
    added (fields are never NOT NULL in the database), but the existing records have no
    value, and will be asked for one when next edited."""

    kind: ClassVar[str] = "required_without_default"
    local: ClassVar[bool] = False
    safety: str = NEEDS_DATA
    column: str = ""
    rows: int = 0

    def describe(self) -> str:
        return (f"new required field {self.table}.{self.column} has no default and "
                f"{_records(self.rows)} exist: they stay empty until someone fills them "
                "(give the field a default to fill them now)")


# -- helpers -------------------------------------------------------------------------------


def detached(column: sa.Column) -> sa.Column:
    """A copy of a table's column that carries its foreign key (SQLAlchemy's own copy leaves
    table-level constraints behind), without indexes or unique constraints: those are
    operations of their own."""
    fks = [sa.ForeignKey(fk.target_fullname, ondelete=fk.ondelete, onupdate=fk.onupdate,
                         name=fk.constraint.name if fk.constraint is not None else None)
           for fk in column.foreign_keys]
    default = column.server_default
    return sa.Column(column.name, column.type, *fks, nullable=column.nullable,
                     server_default=default.arg if isinstance(default, sa.DefaultClause)
                     else None)


def _records(n: int) -> str:
    return f"{n} record{'s' if n != 1 else ''}"


def _json_list(raw: Any) -> list[Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return []
    return list(raw) if isinstance(raw, list) else []


def _storable(f: Any, value: Any) -> Any:
    from builder.fieldtypes import coerce

    if value is None:
        return None
    try:
        value = coerce(f, value)
    except ValueError:
        return None
    return value


def _convert(f: Any, value: Any) -> Any:
    """`value` as the new type of field `f`, or None when it does not convert."""
    from builder.fieldtypes import coerce

    if f is None:
        return value
    if isinstance(value, str) and f.type == "multichoice":
        value = _json_list(value) or [v.strip() for v in value.split(",") if v.strip()]
    try:
        converted = coerce(f, value)
    except (ValueError, TypeError):
        return None
    if isinstance(converted, int | Decimal) and not isinstance(converted, bool):
        try:  # a rounded number is a changed number: leave it to the aside column
            if Decimal(str(value).strip()) != converted:
                return None
        except (InvalidOperation, ValueError):
            pass
    return converted


def counts(ops: list[Op] | tuple[Op, ...]) -> Mapping[str, int]:
    """How many operations of each safety."""
    result = dict.fromkeys(SAFETIES, 0)
    for op in ops:
        result[op.safety] += 1
    return result
