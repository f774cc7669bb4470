"""Values computed from other rows, inside the write transaction: autonumbers from their
counters, and rollups (with the formulas of the parents that use them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from builder.model import AppModel, Entity, Field
from runtime.core import caches, rowcache
from runtime.core.context import Fetcher, eval_context, sql_context
from runtime.core.db import is_sqlite, mark_written
from runtime.core.expressions import to_sql
from runtime.core.values import compute_formulas, same
from runtime.read.queries import load_many

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Instance


def next_number(inst: Instance, conn: Connection, entity: str, field: str,
                count: int = 1) -> int:
    """The next number of an autonumber field (the first of `count` in a row), allocated
    inside the caller's transaction: the counter row is updated in place (UPDATE ...
    RETURNING), so concurrent writers queue on it and never get the same number."""
    counters = inst.schema.system("autonumber")
    bump = counters.update().where(counters.c.entity == entity, counters.c.field == field) \
        .values(next_value=counters.c.next_value + count).returning(counters.c.next_value)
    value = conn.execute(bump).scalar()
    if value is None:
        table = inst.schema.table(entity)
        start = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() + 1
        if is_sqlite(conn):
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        conn.execute(insert(counters).values(entity=entity, field=field, next_value=start)
                     .on_conflict_do_nothing())
        value = conn.execute(bump).scalar_one()
    return int(value) - count


def _rollups_from(inst: Instance, child: str) -> list[tuple[Entity, Field]]:
    """(parent entity, rollup field) pairs that summarise records of `child`."""

    def build() -> dict[str, list[tuple[Entity, Field]]]:
        by_child: dict[str, list[tuple[Entity, Field]]] = {}
        for ent in inst.model.entities.values():
            for field in ent.fields.values():
                if field.rollup is not None:
                    by_child.setdefault(field.rollup.entity, []).append((ent, field))
        return by_child

    return caches.ROLLUPS.get(inst.model.hash, build).get(child, [])


def _rollup_alias(inst: Instance, child: str) -> sa.Alias:
    """An alias of the child table for rollup subqueries (the parent may be the same table),
    made once per table: building one copies every column."""
    table = inst.schema.table(child)
    return caches.ROLLUP_ALIASES.get(table, "rollup_child", lambda: table.alias("rollup_child"))


# -- batching ---------------------------------------------------------------------------------


MAX_CHAIN = 8  # levels of rollups over rollups refreshed after one write


class _Batch:
    """Parents whose rollups a batch of writes touched: {(parent, link): (Entity, fields,
    child, ids)}."""

    def __init__(self, inst: Instance, conn: Connection,
                 pending: dict[tuple[str, str, str], set[int]] | None = None) -> None:
        self.inst = inst
        self.conn = conn
        self.pending: dict[tuple[str, str, str], set[int]] = pending or {}


_BATCH: ContextVar[_Batch | None] = ContextVar("crm_rollup_batch", default=None)


@contextmanager
def batch(inst: Instance, conn: Connection) -> Iterator[None]:
    """Defer rollup maintenance of the writes made on `conn` inside the block to its end.

    Every write still goes through `records.create/update/delete` with all their checks,
    audit and hooks; only step 15 (rollups, and the parents' formulas after them) is
    collected: at the end of the block each affected parent is recomputed once, with one
    set-based `UPDATE … WHERE id IN (…)` per parent entity and link. Inside the block a
    parent's rollup fields (and formulas using them) are stale, so use it only for bulk loads
    that do not read them back (the demo loader, imports). An exception leaves the block
    without refreshing (the transaction is rolled back anyway). Nested blocks on the same
    connection join the outer one."""
    current = _BATCH.get()
    if current is not None and current.conn is conn:
        yield
        return
    state = _Batch(inst, conn)
    token = _BATCH.set(state)
    try:
        yield
    finally:
        _BATCH.reset(token)
    _flush(state)


def _flush(state: _Batch) -> None:
    """Refresh the noted parents; then the rollups over those parents (a chain: order lines →
    order total → the account's sum of order totals), level by level."""
    inst, conn = state.inst, state.conn
    pending = state.pending
    for _ in range(MAX_CHAIN):
        if not pending:
            return
        formulas: dict[str, set[int]] = {}
        changed: dict[str, set[int]] = {}
        for (child, parent_name, link), ids in pending.items():
            if not ids:
                continue
            parent = inst.model.entity(parent_name)
            fields = _groups(inst, child)[(parent_name, link)][1]
            ordered = sorted(ids)
            for i in range(0, len(ordered), 500):
                chunk = ordered[i:i + 500]
                _lock_parents(inst, conn, parent_name, chunk)
                conn.execute(_rollup_update(inst, child, parent, link, fields),
                             {"ids": chunk})
                mark_written(conn)
            if any(f.formula is not None for f in parent.fields.values()):
                formulas.setdefault(parent_name, set()).update(ids)
            changed.setdefault(parent_name, set()).update(ids)
        for parent_name, ids in formulas.items():
            _refresh_formulas(inst, conn, inst.model.entity(parent_name), ids)
        pending = _next_level(inst, conn, changed)


def windowed(inst: Instance) -> list[tuple[str, str, str]]:
    """(child, parent, link) of the rollups whose `where` uses `today()` or `now()`."""
    found: list[tuple[str, str, str]] = []
    for parent in inst.model.entities.values():
        for f in parent.fields.values():
            rollup = f.rollup
            if rollup is not None and rollup.where is not None and (
                    "today" in rollup.where.source or "now" in rollup.where.source):
                key = (rollup.entity, parent.name, rollup.link)
                if key not in found:
                    found.append(key)
    return found


def refresh_windowed(inst: Instance, conn: Connection) -> int:
    """Recompute every rollup whose `where` uses `today()` or `now()` ("open tickets due this
    week") for all its parents — the worker does it once a day, as the window moves — and the
    formulas and rollups that follow from them. Returns how many parents were refreshed."""
    pending: dict[tuple[str, str, str], set[int]] = {}
    for key in windowed(inst):
        table = inst.schema.table(key[1])
        pending[key] = set(conn.execute(sa.select(table.c.id)).scalars())
    _flush(_Batch(inst, conn, pending))
    return sum(len(ids) for ids in pending.values())


def _next_level(inst: Instance, conn: Connection, changed: Mapping[str, set[int]]
                ) -> dict[tuple[str, str, str], set[int]]:
    """The parents of the records whose rollups just changed, for the rollups over them."""
    above: dict[tuple[str, str, str], set[int]] = {}
    for name, ids in changed.items():
        groups = _groups(inst, name)
        if not groups:
            continue
        table = inst.schema.table(name)
        links = sorted({link for _, link in groups})
        ordered = sorted(ids)
        for i in range(0, len(ordered), 500):
            rows = conn.execute(sa.select(*(table.c[link] for link in links)).where(
                table.c.id.in_(ordered[i:i + 500]))).all()
            for row in rows:
                for (parent_name, link) in groups:
                    value = row._mapping[link]
                    if value is not None:
                        above.setdefault((name, parent_name, link), set()).add(value)
    return above


# -- rollups ----------------------------------------------------------------------------------

def _groups(inst: Instance, child: str) -> dict[tuple[str, str], tuple[Entity, list[Field]]]:
    """{(parent, link): (parent entity, rollup fields)} of `child`, once per model."""

    def build() -> dict[tuple[str, str], tuple[Entity, list[Field]]]:
        groups: dict[tuple[str, str], tuple[Entity, list[Field]]] = {}
        for parent, field in _rollups_from(inst, child):
            assert field.rollup is not None
            groups.setdefault((parent.name, field.rollup.link), (parent, []))[1].append(field)
        return groups

    return caches.ROLLUP_GROUPS.get((inst.model.hash, child), build)


def _rollup_update(inst: Instance, child: str, parent: Entity, link: str,
                   fields: list[Field]) -> Any:
    """The UPDATE that sets every rollup field of `fields` for the parents in the expanding
    `ids` parameter. Compiled `where` clauses are cached per model, child and parent; a clause
    using `today()` is keyed by the date too, one using `now()` is rebuilt every time."""
    uses_now = any(f.rollup is not None and f.rollup.where is not None
                   and "now" in f.rollup.where.source for f in fields)
    uses_today = any(f.rollup is not None and f.rollup.where is not None
                     and "today" in f.rollup.where.source for f in fields)
    parents = inst.schema.table(parent.name)

    def build() -> Any:
        rows = _rollup_alias(inst, child)
        values = {field.name: _aggregate(inst, child, rows, parents, field) for field in fields}
        return parents.update().where(
            parents.c.id.in_(sa.bindparam("ids", expanding=True))).values(values)

    if uses_now:
        return build()
    return caches.ROLLUP_UPDATES.get(
        parents, (child, link, inst.today() if uses_today else None), build)


def _lock_parents(inst: Instance, conn: Connection, parent: str, ids: list[int]) -> None:
    if is_sqlite(conn):
        return
    # Lock the parents first, in id order: the aggregates then run in a statement that
    # starts after any concurrent child write has committed (PostgreSQL's READ COMMITTED
    # takes a fresh snapshot per statement).
    parents = inst.schema.table(parent)
    conn.execute(sa.select(parents.c.id).where(parents.c.id.in_(ids)).order_by(
        parents.c.id).with_for_update(key_share=True))


def refresh_rollups(inst: Instance, conn: Connection, child: str,
                    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> None:
    """Recompute the rollups that a change to one `child` record may affect, over the
    parents it linked to before and after: one UPDATE per parent entity and link field,
    setting every rollup field to its aggregate subquery; then the parents' formulas, and
    the rollups over those parents in turn (a chain). Inside `batch(inst, conn)` the parents
    are only noted, and refreshed once at the end of the batch."""
    groups = _groups(inst, child)
    if not groups:
        return
    noted: dict[tuple[str, str, str], set[int]] = {}
    for (_, link), (parent, _fields) in groups.items():
        ids = {r[link] for r in (before, after) if r is not None and r.get(link) is not None}
        if ids:
            noted.setdefault((child, parent.name, link), set()).update(ids)
    if not noted:
        return
    state = _BATCH.get()
    if state is not None and state.conn is conn:
        for key, ids in noted.items():
            state.pending.setdefault(key, set()).update(ids)
        return
    _flush(_Batch(inst, conn, noted))


def _aggregate(inst: Instance, child: str, rows: sa.Alias, parents: sa.Table,
               field: Field) -> Any:
    """The correlated subquery that computes one rollup field for its parent row."""
    rollup = field.rollup
    assert rollup is not None
    conditions = [rows.c[rollup.link] == parents.c.id]
    if rollup.where is not None:
        conditions.append(to_sql(rollup.where, sql_context(inst, None, child), base=rows))
    column = rows.c[rollup.field] if rollup.field else rows.c.id
    aggregate = {"count": sa.func.count(rows.c.id), "sum": sa.func.sum(column),
                 "avg": sa.func.avg(column), "min": sa.func.min(column),
                 "max": sa.func.max(column)}[rollup.op]
    if rollup.op in ("count", "sum"):
        aggregate = sa.func.coalesce(aggregate, 0)
    return sa.select(aggregate).where(*conditions).scalar_subquery()


def _refresh_formulas(inst: Instance, conn: Connection, ent: Entity, ids: set[int]) -> None:
    """Formulas of records whose rollups just changed (they may use them), in id order:
    500 records read at once, one cache of the records they link to, and the changed ones
    written with one statement per set of changed fields — unless a formula reads another
    record of the same entity: then each is written at once, and read again when a later
    one links to it."""
    table = inst.schema.table(ent.name)
    one_by_one = _formulas_read_their_entity(inst.model, ent)
    ordered = sorted(ids)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start:start + 500]
        found = load_many(inst, conn, ent.name, chunk)
        fetch = Fetcher(inst, conn)
        fetch.prefetch_links(ent, found.values(), _formula_links(ent))
        changed: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for record_id in chunk:
            record = found.get(record_id)
            if record is None:
                continue
            computed = dict(record)
            compute_formulas(ent, computed, eval_context(inst, None, ent.name, computed,
                                                         fetch=fetch), {})
            changes = {f.name: computed[f.name] for f in ent.fields.values()
                       if f.formula is not None and not same(computed[f.name], record[f.name])}
            if not changes:
                continue
            row = {**changes, "_crm_id": record_id}
            if one_by_one:
                _write_formulas(conn, table, [row])
                fetch.forget(ent.name, record_id)
            else:
                changed.setdefault(tuple(changes), []).append(row)
        for rows in changed.values():
            _write_formulas(conn, table, rows)


def _formula_links(ent: Entity) -> set[str]:
    """The link fields of `ent` its formulas follow (the first step of a path)."""
    return {path[0] for f in ent.fields.values() if f.formula is not None
            for path in f.formula.names if len(path) > 1}


def _formulas_read_their_entity(model: AppModel, ent: Entity) -> bool:
    """Whether a formula of `ent` follows links to a record of `ent` itself (or a path this
    cannot follow)."""
    for f in ent.fields.values():
        for path in f.formula.names if f.formula is not None else ():
            current: Entity | None = ent
            for name in path[:-1]:
                step = current.fields.get(name) if current is not None else None
                current = model.entities.get(step.to) if step is not None and step.to else None
                if current is None or current.name == ent.name:
                    return True
    return False


def _write_formulas(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """UPDATE each row's formula fields (the same in every row) by its `_crm_id`."""
    conn.execute(caches.STATEMENTS.get(table, "formulas", lambda: table.update().where(
        table.c.id == sa.bindparam("_crm_id")).execution_options(**{rowcache.BY_ID: True})),
        rows)
    mark_written(conn)
