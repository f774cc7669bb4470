"""Values computed from other rows, inside the write transaction: autonumbers from their
counters, and rollups (with the formulas of the parents that use them).
"""

from __future__ import annotations

from collections.abc import Mapping
from threading import Lock
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from builder.model import Entity, Field

from .context import eval_context, sql_context
from .db import is_sqlite
from .expressions import to_sql
from .queries import load
from .values import compute_formulas, same

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .instance import Instance


def next_number(inst: Instance, conn: Connection, entity: str, field: str) -> int:
    """The next number of an autonumber field, allocated inside the caller's transaction:
    the counter row is updated in place (UPDATE ... RETURNING), so concurrent writers queue
    on it and never get the same number."""
    counters = inst.schema.system("autonumber")
    bump = counters.update().where(counters.c.entity == entity, counters.c.field == field) \
        .values(next_value=counters.c.next_value + 1).returning(counters.c.next_value)
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
    return int(value) - 1


_ROLLUPS: dict[str, dict[str, list[tuple[Entity, Field]]]] = {}
_ROLLUPS_LOCK = Lock()


def _rollups_from(inst: Instance, child: str) -> list[tuple[Entity, Field]]:
    """(parent entity, rollup field) pairs that summarise records of `child`."""
    with _ROLLUPS_LOCK:
        table = _ROLLUPS.get(inst.model.hash)
        if table is None:
            table = {}
            for ent in inst.model.entities.values():
                for field in ent.fields.values():
                    if field.rollup is not None:
                        table.setdefault(field.rollup.entity, []).append((ent, field))
            _ROLLUPS[inst.model.hash] = table
        return table.get(child, [])


_ALIASES: dict[tuple[str, str], sa.Alias] = {}


def _rollup_alias(inst: Instance, child: str) -> sa.Alias:
    """An alias of the child table for rollup subqueries (the parent may be the same table),
    made once per model: building one copies every column."""
    key = (inst.model.hash, child)
    with _ROLLUPS_LOCK:
        alias = _ALIASES.get(key)
        if alias is None:
            alias = _ALIASES[key] = inst.schema.table(child).alias("rollup_child")
        return alias


def refresh_rollups(inst: Instance, conn: Connection, child: str,
                    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> None:
    """Recompute the rollups that a change to one `child` record may affect, over the
    parents it linked to before and after: one UPDATE per parent entity and link field,
    setting every rollup field to its aggregate subquery."""
    groups: dict[tuple[str, str], tuple[Entity, list[Field]]] = {}
    for parent, field in _rollups_from(inst, child):
        assert field.rollup is not None
        groups.setdefault((parent.name, field.rollup.link), (parent, []))[1].append(field)
    pending: dict[str, tuple[Entity, set[int]]] = {}
    locked: set[tuple[str, int]] = set()
    rows = _rollup_alias(inst, child) if groups else None
    for (_, link), (parent, fields) in groups.items():
        assert rows is not None
        ids = sorted({r[link] for r in (before, after)
                      if r is not None and r.get(link) is not None})
        if not ids:
            continue
        parents = inst.schema.table(parent.name)
        fresh = [i for i in ids if (parent.name, i) not in locked]
        if fresh and not is_sqlite(conn):
            # Lock the parents first, in id order: the aggregates below then run in a
            # statement that starts after any concurrent child write has committed
            # (PostgreSQL's READ COMMITTED takes a fresh snapshot per statement).
            conn.execute(sa.select(parents.c.id).where(parents.c.id.in_(fresh)).order_by(
                parents.c.id).with_for_update(key_share=True))
            locked.update((parent.name, i) for i in fresh)
        values = {field.name: _aggregate(inst, child, rows, parents, field) for field in fields}
        conn.execute(parents.update().where(parents.c.id.in_(ids)).values(values))
        pending.setdefault(parent.name, (parent, set()))[1].update(ids)
    for parent, ids in pending.values():
        if any(f.formula is not None for f in parent.fields.values()):
            for parent_id in sorted(ids):
                _refresh_formulas(inst, conn, parent, parent_id)


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


def _refresh_formulas(inst: Instance, conn: Connection, ent: Entity, record_id: int) -> None:
    """Formulas of a record whose rollups just changed (they may use them)."""
    record = load(inst, conn, ent.name, record_id)
    if record is None:
        return
    computed = dict(record)
    compute_formulas(ent, computed, eval_context(inst, None, ent.name, computed, conn=conn), {})
    changes = {f.name: computed[f.name] for f in ent.fields.values()
               if f.formula is not None and not same(computed[f.name], record[f.name])}
    if changes:
        table = inst.schema.table(ent.name)
        conn.execute(table.update().where(table.c.id == record_id).values(changes))
