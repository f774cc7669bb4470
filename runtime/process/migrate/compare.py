"""Compare the model's tables with the live database: the plan, as a list of operations.

Alembic's autogenerate comparison does the reflection and the diff (tables, columns, types,
nullability, server defaults, indexes, unique constraints, foreign keys); this module turns
its raw diffs into our operations and adds what only the model knows:

- `renamed_from`: a column (or a `links` join table) is renamed with its data, not dropped
  and added;
- a removed column or table keeps its data aside instead of being dropped;
- a type change is safe only when it widens (longer text, bigger numbers); anything else keeps
  the old values aside and converts what it can;
- a choice option removed while records still hold it, a new required field without a default
  on a table with records, a unique constraint over repeated values: reported before anything
  is changed.

Types are compared by a small signature (kind, length, precision) rather than by Alembic's
default rules, so that reflection differences between SQLite and PostgreSQL (BIGINT vs
INTEGER ids on SQLite, BOOLEAN, JSON, NUMERIC) never show up as changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection, Engine

from builder.model import AppModel, Entity, Field
from runtime.core import phones, searchindex, sortindex
from runtime.core.instance import utcnow
from runtime.core.schema import build_schema, link_table_name
from runtime.process.migrate import ops as O

STAMP_FORMAT = "%Y%m%d%H%M%S"
IGNORED_TABLES = ("alembic_version", "sqlite_")


@dataclass(frozen=True)
class Plan:
    """What `apply` will do to make the database match `model`, in order."""

    ops: tuple[O.Op, ...]
    model: AppModel = field(compare=False, repr=False)
    dialect: str = ""
    stamp: str = ""

    def __bool__(self) -> bool:
        return bool(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self):  # noqa: ANN204
        return iter(self.ops)

    @property
    def empty(self) -> bool:
        return not self.ops

    def refused(self, allow_destructive: bool = False) -> list[O.Op]:
        """The operations that need `allow_destructive` (destructive and needs-data ones)."""
        return [] if allow_destructive else [op for op in self.ops if op.safety != O.SAFE]

    def lines(self) -> list[str]:
        return [op.line() for op in self.ops]

    def of_kind(self, kind: str) -> list[O.Op]:
        return [op for op in self.ops if op.kind == kind]


def plan(model: AppModel, bind: Engine | Connection, *, now: datetime | None = None) -> Plan:
    """Compare `model` with the database behind `bind` and return the plan (nothing changes).

    Raises MigrationFailed when the definitions ask for what no migration can do (a field
    renamed away from a name another field still has)."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            try:
                return plan(model, conn, now=now)
            finally:
                conn.rollback()
    stamp = (now or utcnow()).strftime(STAMP_FORMAT)
    return _Planner(model, bind, stamp).run()


# -- type signatures -----------------------------------------------------------------------


def type_signature(type_: sa.types.TypeEngine, dialect: sa.engine.Dialect) -> tuple:
    """What matters about a column type when comparing: kind and size."""
    variants = getattr(type_, "_variant_mapping", None) or {}
    type_ = variants.get(dialect.name, type_)
    if isinstance(type_, sa.Boolean):
        return ("boolean",)
    if isinstance(type_, sa.JSON):
        return ("json",)
    if isinstance(type_, sa.DateTime):
        return ("datetime",)
    if isinstance(type_, sa.Date):
        return ("date",)
    if isinstance(type_, sa.Time):
        return ("time",)
    if isinstance(type_, sa.Float):
        return ("float",)
    if isinstance(type_, sa.Numeric) and not isinstance(type_, sa.Integer):
        return ("numeric", type_.precision, type_.scale)
    if isinstance(type_, sa.Integer):
        if dialect.name == "sqlite":  # one INTEGER affinity, 64-bit, whatever the name
            return ("integer", 8)
        size = 8 if isinstance(type_, sa.BigInteger) else 2 if isinstance(
            type_, sa.SmallInteger) else 4
        return ("integer", size)
    if isinstance(type_, sa.Text | sa.CLOB):
        return ("string", None)
    if isinstance(type_, sa.String):
        return ("string", type_.length)
    return ("other", type(type_).__name__.lower())


def widens(old: tuple, new: tuple) -> bool:
    """Whether every value of type `old` fits in type `new` unchanged."""
    if old == new:
        return True
    if old[0] == "string" and new[0] == "string":
        return new[1] is None or (old[1] is not None and new[1] >= old[1])
    if old[0] == "integer" and new[0] == "integer":
        return new[1] >= old[1]
    if old[0] == "numeric" and new[0] == "numeric":
        (p1, s1), (p2, s2) = old[1:], new[1:]
        if p2 is None:
            return True
        if p1 is None:
            return False
        return (s2 or 0) >= (s1 or 0) and p2 - (s2 or 0) >= p1 - (s1 or 0)
    if old[0] == "integer" and new[0] == "numeric":
        p, s = new[1:]
        return p is None or p - (s or 0) >= 19
    return (old[0], new[0]) in {("date", "datetime"), ("boolean", "integer")}


def _compare_type(context: MigrationContext, inspected: sa.Column, metadata: sa.Column,
                  inspected_type: sa.types.TypeEngine,
                  metadata_type: sa.types.TypeEngine) -> bool:
    dialect = context.dialect
    return type_signature(inspected_type, dialect) != type_signature(metadata_type, dialect)


_CAST = re.compile(r"::[a-z ]+(\([0-9, ]*\))?(\[\])?$", re.IGNORECASE)


def normalize_default(text: str | None) -> str | None:
    """A server default as text, without quotes, casts and parentheses; booleans as 0/1."""
    if text is None:
        return None
    value = str(text).strip()
    changed = True
    while changed:
        before = value
        value = _CAST.sub("", value).strip()
        if value.startswith("(") and value.endswith(")"):
            value = value[1:-1].strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        changed = value != before
    return {"false": "0", "true": "1"}.get(value.lower(), value)


def _compare_default(context: MigrationContext, inspected: sa.Column, metadata: sa.Column,
                     inspected_default: str | None, metadata_default: Any,
                     rendered_metadata_default: str | None) -> bool:
    if inspected_default and "nextval(" in str(inspected_default):
        return False  # PostgreSQL's serial ids
    if metadata.primary_key and metadata.autoincrement in (True, "auto"):
        return False
    return normalize_default(inspected_default) != normalize_default(rendered_metadata_default)


def _include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if name and name.startswith(O.ASIDE_PREFIX):
        return False  # data kept aside by earlier migrations
    if type_ == "table" and name and name.startswith(IGNORED_TABLES):
        return False
    if name and name.startswith((searchindex.FTS_PREFIX, searchindex.TRGM_PREFIX,
                                 searchindex.PREFIX_PREFIX, searchindex.FOLD_PREFIX,
                                 sortindex.PREFIX)):
        return False  # the search index, its folded columns and the collated list indexes:
        # planned by `search_index`
    return True


# -- the planner ---------------------------------------------------------------------------


class _Planner:
    def __init__(self, model: AppModel, conn: Connection, stamp: str):
        self.model = model
        self.conn = conn
        self.stamp = stamp
        self.schema = build_schema(model)
        self.target = self.schema.metadata
        self.dialect = conn.dialect
        self.inspector = sa.inspect(conn)
        self.live_tables = set(self.inspector.get_table_names())
        self.fields: dict[str, tuple[Entity, dict[str, Field]]] = {
            e.table: (e, dict(e.fields)) for e in model.entities.values()}
        self.links: dict[str, tuple[Entity, Field]] = {
            link_table_name(e, f.name): (e, f) for e in model.entities.values()
            for f in e.fields.values() if f.type == "links"}
        self.consumed: set[tuple[str, ...]] = set()  # diffs a rename has taken over
        self.new_tables: list[O.Op] = []
        self.local: list[O.Op] = []
        self.removed: list[O.Op] = []
        self.notes: list[O.Op] = []
        self.typed: set[tuple[str, str]] = set()  # columns with a type operation
        self.added_columns: set[tuple[str, str]] = set()
        self.removed_tables: set[str] = set()

    def run(self) -> Plan:
        return self.plan(self.compared() if self.has_tables() else self.all_new())

    def plan(self, diffs: list[tuple]) -> Plan:
        """The plan from the comparison's `diffs` and what only the model knows."""
        self.renames()
        added = {d[1].name for d in diffs if d[0] == "add_table"}
        self.added_columns = {(d[2], d[3].name) for d in diffs if d[0] == "add_column" and
                              ("add_column", d[2], d[3].name) not in self.consumed}
        self.removed_tables = {d[1].name for d in diffs if d[0] == "remove_table"}
        for diff in diffs:
            self.diff(diff)
        self.create_tables(added)
        self.choices()
        local = sorted(self.local, key=lambda op: (self._table_order(op.table), op.phase))
        ops = (*self.new_tables, *local, *self.removed, *self.search_index(),
               *self.notes)
        return Plan(tuple(ops), self.model, self.dialect.name, self.stamp)

    def has_tables(self) -> bool:
        """Whether the database holds a table the comparison looks at."""
        return any(_include(None, name, "table", True, None) for name in self.live_tables)

    def compared(self) -> list[tuple]:
        """Alembic's diffs between the database and the model's tables."""
        context = MigrationContext.configure(self.conn, opts={
            "compare_type": _compare_type, "compare_server_default": _compare_default,
            "include_object": _include, "target_metadata": self.target})
        with searchindex.reflecting():
            return _flatten(compare_metadata(context, self.target))

    def all_new(self) -> list[tuple]:
        """The diffs of an empty database, without Alembic (0.5 s for the shipped packs' 339
        tables): every table is added. Alembic would list the new tables' indexes and
        foreign keys too, which come with their tables (`on_add_index`, `on_add_fk`)."""
        return [("add_table", table) for table in self.target.tables.values()
                if _include(table, table.name, "table", False, None)]

    def _table_order(self, name: str) -> int:
        names = list(self.target.tables)
        return names.index(name) if name in names else len(names)

    # -- helpers --------------------------------------------------------------------------

    def aside(self, name: str, taken: Iterable[str]) -> str:
        candidate = O.aside_name(name, self.stamp)
        n = 2
        while candidate in taken:
            candidate = O.aside_name(f"{name}_{n}", self.stamp)
            n += 1
        return candidate

    def live_columns(self, table: str) -> dict[str, dict]:
        if table not in self.live_tables:
            return {}
        return {c["name"]: c for c in self.inspector.get_columns(table)}

    def count(self, table: str, where: sa.ColumnElement | None = None, *columns: str) -> int:
        t = sa.table(table, *(sa.column(c) for c in columns))
        query = sa.select(sa.func.count()).select_from(t)
        if where is not None:
            query = query.where(where)
        return int(self.conn.execute(query).scalar() or 0)

    def not_null(self, table: str, column: str) -> int:
        return self.count(table, sa.column(column).isnot(None))

    def live_name(self, table: str, column: str) -> str:
        """The name `column` has in the database now: the old one while a rename is planned
        (what counts values before a unique index or a type change reads)."""
        return next((op.old for op in self.local if isinstance(op, O.RenameColumn)
                     and op.table == table and op.new == column), column)

    def field_of(self, table: str, column: str) -> tuple[Entity | None, Field | None]:
        entity, fields = self.fields.get(table, (None, {}))
        return entity, fields.get(column)

    # -- renamed_from ---------------------------------------------------------------------

    def renames(self) -> None:
        for entity in self.model.entities.values():
            for f in entity.fields.values():
                if not f.renamed_from or f.renamed_from == f.name:
                    continue
                if f.type == "links":
                    self.rename_link_table(entity, f)
                    continue
                live = self.live_columns(entity.table)
                if f.renamed_from not in live or f.name in live:
                    continue
                self.refuse_reused_name(entity, f)
                old = live[f.renamed_from]
                self.local.append(O.RenameColumn(entity.table, old=f.renamed_from, new=f.name,
                                                 existing_type=old["type"]))
                self.consumed |= {("remove_column", entity.table, f.renamed_from),
                                  ("add_column", entity.table, f.name)}
                target = self.target.tables[entity.table].c[f.name]
                self.type_change(entity.table, f.name, old["type"], target.type,
                                 old.get("nullable", True), target)

    @staticmethod
    def refuse_reused_name(entity: Entity, f: Field) -> None:
        """A field renamed away from a name another field of the entity now has: the old
        column (or join table) cannot be both moved and kept in one migration."""
        if f.renamed_from in entity.fields:
            raise O.MigrationFailed(
                f"cannot rename {entity.name}.{f.renamed_from} to {entity.name}.{f.name} "
                f"(renamed_from) while {entity.name} still has a field named {f.renamed_from}: "
                f"nothing was changed. Migrate the rename first, then add the new "
                f"{f.renamed_from} field, or give it another name")

    def rename_link_table(self, entity: Entity, f: Field) -> None:
        old = link_table_name(entity, f.renamed_from or "")
        new = link_table_name(entity, f.name)
        if old not in self.live_tables or new in self.live_tables:
            return
        self.refuse_reused_name(entity, f)
        self.new_tables.append(O.CopyTable(new, old=old, target=self.target.tables[new],
                                           what=f"links field {entity.name}.{f.name}"))
        self.consumed |= {("add_table", new), ("remove_table", old)}

    # -- Alembic's diffs ------------------------------------------------------------------

    def diff(self, diff: tuple) -> None:
        kind = diff[0]
        if kind in ("add_table", "remove_table"):
            if (kind, diff[1].name) in self.consumed:
                return
            if kind == "remove_table":
                self.remove_table(diff[1])
            return
        if kind in ("add_column", "remove_column"):
            table, column = diff[2], diff[3]
            if (kind, table, column.name) in self.consumed:
                return
            (self.add_column if kind == "add_column" else self.remove_column)(table, column)
            return
        subject = diff[1] if kind in ("remove_index", "remove_constraint", "remove_fk") else None
        if subject is not None and subject.table.name in self.removed_tables:
            return  # goes with its table
        handler = getattr(self, "on_" + kind, None)
        if handler is not None:
            handler(*diff[1:])

    def remove_table(self, table: sa.Table) -> None:
        names = {c.name for c in table.columns}
        entity_like = {"id", "created_at", "updated_at", "version"} <= names
        join_like = "__" in table.name and {"source_id", "target_id"} <= names
        if table.name.startswith("crm_") or not (entity_like or join_like):
            return  # not ours: leave it alone
        what = f"links table {table.name}" if join_like else f"entity {table.name}"
        self.removed.append(O.RemoveTable(
            table.name, aside=self.aside(table.name, self.live_tables),
            rows=self.count(table.name), what=what))

    def add_column(self, table: str, column: sa.Column) -> None:
        entity, f = self.field_of(table, column.name)
        rows = self.count(table) if table in self.live_tables else 0
        backfill = bool(f is not None and f.required and f.default is not None and
                        not f.computed and rows)
        self.local.append(O.AddColumn(table, target=column, entity=entity.name if entity
                                      else None, backfill=backfill, rows=rows))
        if f is not None and f.required and f.default is None and not f.computed and rows:
            self.notes.append(O.RequiredFieldNote(table, column=column.name, rows=rows))
        if entity is not None and column.name.startswith(phones.SHADOW_PREFIX) and rows:
            field = next(n for n in phones.phone_fields(entity)
                         if phones.shadow(n) == column.name)
            self.local.append(O.FillPhoneShadow(table, column=column.name, field=field,
                                                rows=rows))

    def remove_column(self, table: str, column: sa.Column) -> None:
        live = self.live_columns(table)
        self.local.append(O.MoveColumnAside(
            table, column=column.name, aside=self.aside(column.name, live),
            rows=self.not_null(table, column.name), existing_type=column.type,
            nullable=bool(live.get(column.name, {}).get("nullable", True))))

    def on_add_index(self, index: sa.Index) -> None:
        table = index.table.name
        if table not in self.live_tables:
            return
        # Alembic hands over a rebuilt index (name, columns, dialect options); the model's
        # own carries its `info` too
        index = next((i for i in self.target.tables[table].indexes if i.name == index.name),
                     index)
        columns = tuple(c.name for c in index.columns)
        where = _index_where(index, self.dialect)
        repeated: list[tuple[Any, ...]] = []
        count = 0
        if index.unique:
            count, repeated = self.repeated(table, columns, where)
        self.local.append(O.AddIndex(
            table, name=str(index.name), columns=columns, unique=bool(index.unique),
            where=where, duplicates=tuple(repeated), duplicate_count=count,
            on_duplicates=str(index.info.get("on_duplicates") or ""),
            safety=O.NEEDS_DATA if count else O.SAFE))

    def on_remove_index(self, index: sa.Index) -> None:
        self.local.append(O.DropIndex(index.table.name, name=str(index.name),
                                      columns=tuple(c.name for c in index.columns)))

    def on_add_constraint(self, constraint: sa.Constraint) -> None:
        if not isinstance(constraint, sa.UniqueConstraint):
            return
        table = constraint.table.name
        columns = tuple(c.name for c in constraint.columns)
        duplicates = self.duplicates(table, columns)
        self.local.append(O.AddUnique(table, name=str(constraint.name), columns=columns,
                                      duplicates=duplicates,
                                      safety=O.NEEDS_DATA if duplicates else O.SAFE))

    def on_remove_constraint(self, constraint: sa.Constraint) -> None:
        if not isinstance(constraint, sa.UniqueConstraint):
            return
        table = constraint.table.name
        columns = tuple(c.name for c in constraint.columns)
        name = constraint.name or _conv("uq", table, columns)
        self.local.append(O.DropUnique(table, name=str(name), columns=columns))

    def on_add_fk(self, fk: sa.ForeignKeyConstraint) -> None:
        table = fk.table.name
        if table not in self.live_tables:
            return  # created with the table
        columns = tuple(c.name for c in fk.columns)
        if all((table, c) in self.added_columns for c in columns):
            return  # the new column brings its foreign key
        referent = fk.referred_table.name
        orphans = 0
        live = tuple(self.live_name(table, c) for c in columns)
        if all(c in self.live_columns(table) for c in live) and referent in self.live_tables:
            child, parent = sa.table(table, sa.column(live[0])), sa.table(
                referent, sa.column("id"))
            orphans = int(self.conn.execute(
                sa.select(sa.func.count()).select_from(child).where(
                    child.c[live[0]].isnot(None),
                    ~sa.exists().where(parent.c.id == child.c[live[0]]))).scalar() or 0)
        self.local.append(O.AddForeignKey(
            table, name=str(fk.name), columns=columns, referent=referent,
            remote=tuple(e.column.name for e in fk.elements), ondelete=fk.ondelete,
            orphans=orphans, safety=O.NEEDS_DATA if orphans else O.SAFE))

    def on_remove_fk(self, fk: sa.ForeignKeyConstraint) -> None:
        table = fk.table.name
        columns = tuple(c.name for c in fk.columns)
        self.local.append(O.DropForeignKey(table, name=str(fk.name or _conv(
            "fk", table, columns)), columns=columns))

    def on_modify_type(self, schema: Any, table: str, column: str, info: dict,
                       old: sa.types.TypeEngine, new: sa.types.TypeEngine) -> None:
        target = self.target.tables[table].c[column]
        self.type_change(table, column, old, new, info.get("existing_nullable", True), target)

    def type_change(self, table: str, column: str, old: sa.types.TypeEngine,
                    new: sa.types.TypeEngine, nullable: bool | None, target: sa.Column) -> None:
        sig_old, sig_new = (type_signature(old, self.dialect), type_signature(new, self.dialect))
        if sig_old == sig_new:
            return
        self.typed.add((table, column))
        old_text, new_text = O.type_text(old, self.dialect), O.type_text(new, self.dialect)
        if widens(sig_old, sig_new):
            self.local.append(O.ChangeType(table, column=column, old_type=old, new_type=new,
                                           old_text=old_text, new_text=new_text,
                                           nullable=bool(nullable)))
            return
        entity, _ = self.field_of(table, column)
        live = self.live_columns(table)
        source = self.live_name(table, column)
        rows = self.not_null(table, source) if source in live else 0
        self.local.append(O.ReplaceColumn(
            table, column=column, aside=self.aside(column, live), target=target,
            old_type=old, old_text=old_text, new_text=new_text,
            entity=entity.name if entity else None, rows=rows, nullable=bool(nullable)))

    def on_modify_nullable(self, schema: Any, table: str, column: str, info: dict,
                           old: bool, new: bool) -> None:
        nulls = 0 if new else self.count(table, sa.column(column).is_(None))
        self.local.append(O.AlterNullable(table, column=column, nullable=bool(new),
                                          nulls=nulls, existing_type=info.get("existing_type"),
                                          safety=O.NEEDS_DATA if nulls else O.SAFE))

    def on_modify_default(self, schema: Any, table: str, column: str, info: dict,
                          old: Any, new: Any) -> None:
        default = None
        if new is not None:
            arg = getattr(new, "arg", new)
            default = (str(arg.compile(dialect=self.dialect)) if isinstance(
                arg, sa.ClauseElement) else f"'{arg}'" if isinstance(arg, str) else str(arg))
        self.local.append(O.AlterDefault(table, column=column, default=default,
                                         existing_type=info.get("existing_type")))

    def search_index(self) -> list[O.Op]:
        """The search index step, when an entity's index is missing or out of date."""
        tables, extra = searchindex.stale(self.conn, self.model)
        tables -= {op.table for op in self.new_tables}  # made with their table
        gone = tuple(p for op in self.removed for p in searchindex.prefixes(op.table))
        extra = {name for name in extra if not name.startswith(gone)}  # go with their table
        # the collated list indexes (core/sortindex.py); a new table's are made after it
        # (`apply.run` ends with this step), a removed table's go with it
        build, unwanted = sortindex.stale(self.conn, self.model)
        new = {op.table for op in self.new_tables}
        build = {name: table for name, table in build.items() if table not in new}
        unwanted = {name: table for name, table in unwanted.items()
                    if table not in {op.table for op in self.removed}}
        if not tables and not extra and not build and not unwanted:
            return []
        return [O.SyncSearchIndex("", tables=tuple(sorted(tables)), extra=tuple(sorted(extra)),
                                  sort=tuple(sorted(build)), sort_extra=tuple(sorted(unwanted)))]

    # -- new tables -----------------------------------------------------------------------

    def create_tables(self, added: set[str]) -> None:
        order = [t for t in self.target.tables.values()
                 if t.name in added and ("add_table", t.name) not in self.consumed]
        exists = set(self.live_tables)
        for table in order:
            deferred = ()
            if self.dialect.name != "sqlite":  # SQLite takes references to later tables
                deferred = tuple(str(fk.name) for fk in table.foreign_key_constraints
                                 if fk.referred_table.name not in exists | {table.name})
            exists.add(table.name)
            self.new_tables.append(O.CreateTable(table.name, target=table,
                                                 what=self.table_what(table.name),
                                                 deferred_fks=deferred))
            for fk in table.foreign_key_constraints:
                if fk.name in deferred:
                    self.local.append(O.AddForeignKey(
                        table.name, name=str(fk.name), columns=tuple(
                            c.name for c in fk.columns), referent=fk.referred_table.name,
                        ondelete=fk.ondelete))

    def table_what(self, table: str) -> str:
        if table in self.fields:
            entity = self.fields[table][0]
            return "system entity " + entity.name if entity.system else "entity " + entity.name
        if table in self.links:
            entity, f = self.links[table]
            return f"links field {entity.name}.{f.name}"
        return "system table"

    # -- choices still in use -------------------------------------------------------------

    def choices(self) -> None:
        for table, (_entity, fields) in self.fields.items():
            if table not in self.live_tables:
                continue
            live = self.live_columns(table)
            for f in fields.values():
                if f.type not in ("choice", "multichoice") or (table, f.name) in self.typed:
                    continue
                column = self.live_name(table, f.name)
                if column not in live:
                    continue
                options = f.option_values
                used = (self.multichoice_in_use(table, column, options)
                        if f.type == "multichoice" else
                        self.choice_in_use(table, column, options))
                if used:
                    self.local.append(O.RemoveChoiceValues(
                        table, column=f.name, aside=self.aside(f.name, live), values=used,
                        options=options, multi=f.type == "multichoice",
                        old_type=live[column]["type"]))

    def choice_in_use(self, table: str, column: str,
                      options: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
        col = sa.column(column)
        query = (sa.select(col, sa.func.count()).select_from(sa.table(table, col))
                 .where(col.isnot(None), col.notin_(options)).group_by(col).order_by(col))
        return tuple((str(v), int(n)) for v, n in self.conn.execute(query))

    def multichoice_in_use(self, table: str, column: str,
                           options: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
        col = sa.column(column)
        counts: dict[str, int] = {}
        query = sa.select(col).select_from(sa.table(table, col)).where(col.isnot(None))
        for (raw,) in self.conn.execute(query):
            values = raw
            if isinstance(raw, str):
                try:
                    values = json.loads(raw)
                except ValueError:
                    continue
            for value in set(values) if isinstance(values, list) else ():
                if str(value) not in options:
                    counts[str(value)] = counts.get(str(value), 0) + 1
        return tuple(sorted(counts.items()))

    def repeated(self, table: str, columns: tuple[str, ...], where: str | None,
                 shown: int = 5) -> tuple[int, list[tuple[Any, ...]]]:
        """How many values of `columns` more than one row holds (among the rows `where`
        admits), and the first `shown` of them, for a unique index about to be made."""
        columns = tuple(self.live_name(table, c) for c in columns)
        if not all(c in self.live_columns(table) for c in columns):
            return 0, []
        cols = [sa.column(c) for c in columns]
        query = (sa.select(*cols).select_from(sa.table(table, *cols))
                 .where(*(c.isnot(None) for c in cols)))
        if where:
            query = query.where(sa.text(where))
        query = query.group_by(*cols).having(sa.func.count() > 1)
        count = int(self.conn.execute(sa.select(sa.func.count()).select_from(
            query.subquery())).scalar() or 0)
        if not count:
            return 0, []
        first = self.conn.execute(query.order_by(*cols).limit(shown)).all()
        return count, [tuple(row) for row in first]

    def duplicates(self, table: str, columns: tuple[str, ...]) -> int:
        columns = tuple(self.live_name(table, c) for c in columns)
        if table not in self.live_tables or not all(
                c in self.live_columns(table) for c in columns):
            return 0
        cols = [sa.column(c) for c in columns]
        inner = (sa.select(*cols).select_from(sa.table(table, *cols))
                 .where(*(c.isnot(None) for c in cols)).group_by(*cols)
                 .having(sa.func.count() > 1).subquery())
        return int(self.conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar()
                   or 0)


def _index_where(index: sa.Index, dialect: sa.engine.Dialect) -> str | None:
    """The condition of a partial index, as SQL text (None for a whole-table index)."""
    where = index.dialect_options[dialect.name].get("where") if dialect.name in (
        "sqlite", "postgresql") else None
    if where is None:
        return None
    if isinstance(where, sa.TextClause):
        return where.text
    return str(where.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _flatten(diffs: list) -> list[tuple]:
    """Alembic nests column modifications in lists; one tuple per change is easier."""
    flat: list[tuple] = []
    for diff in diffs:
        if isinstance(diff, list):
            flat.extend(diff)
        else:
            flat.append(diff)
    return flat


def _conv(prefix: str, table: str, columns: Iterable[str]) -> str:
    """The name our naming convention gives a constraint (for ones reflected without one)."""
    if prefix == "fk":
        return f"fk_{table}_{next(iter(columns))}"
    return f"{prefix}_{table}_{'_'.join(columns)}"
