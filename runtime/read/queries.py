"""Reading records: one record, filtered and sorted lists with keyset pagination, counts,
quick search, and record titles (one query per linked entity for a whole page).

Every read applies the actor's row filter (`permissions.read_filter`) in SQL and leaves out
the fields the actor may not see. Pages never use OFFSET: a cursor carries the sort-key
values of the row it starts after (or before), and is checked field by field when it comes
back (`paging`); a ranked search's first page is read from its best matches (`best_page`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from builder.diagnostics import did_you_mean
from builder.model import Entity, Field
from runtime.core import phones, rowcache
from runtime.core.errors import N_, BadRequest, NotFound
from runtime.core.schema import by_id, rows_by_id
from runtime.core.values import as_id, to_json
from runtime.read import collation as collations
from runtime.read import search
from runtime.read.best_page import best_page
from runtime.read.listrequest import (
    MAX_LIMIT,
    Day,
    Filter,
    checked_filter,
)
from runtime.read.paging import (
    bound,
    decode_cursor,
    encode_cursor,
    ranked,
    read_page,
    sort_keys,
)
from runtime.read.permissions import hidden_fields, read_filter
from runtime.read.titles import link_titles, title, titles_of, zone_named

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

TOTAL = "_total"  # the count a ranked first page carries (`count(*) OVER ()`)


@dataclass(frozen=True)
class Page:
    """One page of a list: JSON-able rows, and cursors for the pages after and before it."""

    rows: list[dict[str, Any]]
    next_cursor: str | None
    prev_cursor: str | None
    count: tuple[int, bool] | None = None  # (how many, exact?) when asked for and cheap


def entity_of(inst: Instance, name: str) -> Entity:
    ent = inst.model.entities.get(name)
    if ent is None:
        hint = did_you_mean(name, inst.model.entities)
        raise NotFound(N_("There is no entity '%(name)s' (%(hint)s); check the address.")
                       if hint else N_("There is no entity '%(name)s'; check the address."),
                       name=name, hint=hint)
    return ent


def record_id_of(ent: Entity, record_id: Any) -> int:
    try:
        if isinstance(record_id, bool):
            raise ValueError
        number = as_id(record_id)
        if number is None:
            raise ValueError
        return number
    except (TypeError, ValueError):
        raise NotFound(f"There is no {ent.label} with id {str(record_id)[:40]!r}; record ids "
                       "are positive whole numbers.") from None


def not_found(ent: Entity, record_id: Any) -> NotFound:
    return NotFound(f"There is no {ent.label} with id {record_id}, or you may not see it; "
                    "check the id, or ask its owner for access.")


@contextmanager
def reading(inst: Instance, conn: Connection | None) -> Iterator[Connection]:
    """`conn`, else a connection for reads on the primary (`Instance.primary_reader`)."""
    if conn is not None:
        yield conn
    else:
        with inst.primary_reader() as own:
            yield own


@contextmanager
def listing(inst: Instance, conn: Connection | None) -> Iterator[Connection]:
    """`conn`, else a connection for a list, search, export or dashboard read: the read
    replica's when there is one and this request has not written (`Instance.reader`)."""
    if conn is not None:
        yield conn
    else:
        with inst.reader() as own:
            yield own


# -- loading rows -----------------------------------------------------------------------------


def attach_links(inst: Instance, conn: Connection, ent: Entity,
                 rows: Sequence[dict[str, Any]]) -> None:
    """Give every row its `links` fields as sorted id lists: one query per `links` field."""
    fields = [f for f in ent.fields.values() if f.type == "links"]
    if not fields or not rows:
        return
    ids = [row["id"] for row in rows]
    for field in fields:
        join = inst.schema.link_table(ent.name, field.name)
        found: dict[int, list[int]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for source, target in conn.execute(
                    sa.select(join.c.source_id, join.c.target_id).where(
                        join.c.source_id.in_(chunk))):
                found.setdefault(source, []).append(target)
        for row in rows:
            row[field.name] = sorted(found.get(row["id"], []))


def load(inst: Instance, conn: Connection, entity: str, record_id: int, *,
         actor: Actor | None = None, for_update: bool = False) -> dict[str, Any] | None:
    """One record in the native shape (Python values, every field), or None.

    With `actor`, a record they may not read is None too. `for_update` locks the row on
    PostgreSQL (SQLite's write transaction already holds the database's write lock).
    """
    ent = inst.model.entity(entity)
    table = inst.schema.table(entity)
    lock = for_update and conn.dialect.name != "sqlite"
    row_filter = read_filter(inst, actor, entity, table) if actor is not None else None
    # a bulk write's rows read by id (a locking read asks the database unless this
    # transaction holds the row locked already)
    kept = rowcache.cached(conn, table.name, record_id, locked=lock)
    if row_filter is None and kept is not rowcache.MISSING:
        row = kept
    elif row_filter is None:  # the common case: one prebuilt statement per table
        row = conn.execute(by_id(table, lock), {"_crm_id": record_id}).mappings().first()
        if rowcache.rows_of(conn) is not None:
            row = None if row is None else dict(row)
            rowcache.keep(conn, table.name, record_id, row, locked=lock and row is not None)
    else:
        stmt = sa.select(table).where(table.c.id == record_id, row_filter)
        if lock:
            stmt = stmt.with_for_update(key_share=True, of=table)
        row = conn.execute(stmt).mappings().first()
    if row is None:
        return None
    record = dict(row)
    attach_links(inst, conn, ent, [record])
    return {name: record.get(name) for name in ent.fields} | {
        k: v for k, v in record.items() if k not in ent.fields}


def load_many(inst: Instance, conn: Connection, entity: str, ids: Sequence[int], *,
              actor: Actor | None = None, for_update: bool = False) -> dict[int, dict[str, Any]]:
    """{id: record} of the records of `ids` that exist, as `load` reads each (with
    `actor`, those they may read; `for_update` locks them on PostgreSQL, in id order),
    500 a query."""
    ent = inst.model.entity(entity)
    table = inst.schema.table(entity)
    found = rows_by_id(conn, table, ids, where=read_filter(inst, actor, entity, table)
                       if actor is not None else None,
                       lock=for_update and conn.dialect.name != "sqlite")
    attach_links(inst, conn, ent, list(found.values()))
    return {rid: {name: row.get(name) for name in ent.fields}
            | {k: v for k, v in row.items() if k not in ent.fields}
            for rid, row in found.items()}


def get(inst: Instance, actor: Actor, entity: str, record_id: Any, *,
        conn: Connection | None = None) -> dict[str, Any]:
    """The record as JSON; NotFound when it is missing or the actor may not read it."""
    ent = entity_of(inst, entity)
    rid = record_id_of(ent, record_id)
    with reading(inst, conn) as c:
        record = load(inst, c, entity, rid, actor=actor)
    if record is None:
        raise not_found(ent, rid)
    return to_json(ent, record, hidden_fields(inst, actor, entity))


# -- filters and search -----------------------------------------------------------------------


def _json_has(conn_dialect: str, column: Any, value: str) -> ColumnElement:
    """Whether a JSON list column holds `value`."""
    if conn_dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return sa.func.coalesce(sa.cast(column, JSONB).contains([value]), sa.false())
    each = sa.func.json_each(column).table_valued("value")
    return sa.exists(sa.select(1).select_from(each).where(each.c.value == value))


def _field_clause(inst: Instance, dialect: str, ent: Entity, table: sa.Table, field: Field,
                  op: str, values: list[Any]) -> ColumnElement:
    if field.type == "links":
        join = inst.schema.link_table(ent.name, field.name)
        base = sa.select(1).where(join.c.source_id == table.c.id)
        if op == "isnull":
            return ~sa.exists(base) if values[0] else sa.exists(base)
        has = sa.exists(base.where(join.c.target_id.in_(values)))
        return ~has if op == "ne" else has
    column = table.c[field.name]
    if field.type == "multichoice":
        if op == "isnull":
            empty = sa.or_(column.is_(None), sa.cast(column, sa.String).in_(["[]", "null"]))
            return empty if values[0] else sa.not_(empty)
        has = sa.or_(*[_json_has(dialect, column, v) for v in values])
        return sa.or_(column.is_(None), sa.not_(has)) if op == "ne" else has
    if op == "isnull":
        return column.is_(None) if values[0] else column.is_not(None)
    if field.type == "phone":  # as a number: its E.164 shadow column (core/phones.py)
        column, values = _phone_filter(table, field, op, values)
        if not values:  # no digit in what was asked: no number is that
            return sa.true() if op == "ne" else sa.false()
    if op == "contains":
        return sa.func.lower(column).contains(str(values[0]).lower(), autoescape=True)
    if field.type == "email":
        column = sa.func.lower(column)
        values = [str(v).lower() for v in values]
    if op == "in":
        return column.in_(values)
    value = bound(column, values[0])
    if field.type == "datetime" and isinstance(values[-1], Day):
        start, end = values[-1]  # the reader's midnights, in UTC: 23, 24 or 25 hours apart
        day = {"eq": lambda: sa.and_(column >= start, column < end),
               "ne": lambda: sa.or_(column < start, column >= end, column.is_(None)),
               "gt": lambda: column >= end, "gte": lambda: column >= start,
               "lt": lambda: column < start, "lte": lambda: column < end}
        return day[op]()
    compare = {"eq": lambda: column == value,
               "ne": lambda: sa.or_(column != value, column.is_(None)),
               "gt": lambda: column > value, "gte": lambda: column >= value,
               "lt": lambda: column < value, "lte": lambda: column <= value}
    return compare[op]()


def _phone_filter(table: sa.Table, field: Field, op: str, values: list[Any]
                  ) -> tuple[Any, list[Any]]:
    """The shadow column of a phone field and the filter's numbers as it holds them (a part
    of a number for `__contains`); values with no digit are left out."""
    where = phones.region()
    convert = phones.fragment if op == "contains" else phones.e164
    numbers = [convert(str(v), where) for v in values]
    return table.c[phones.shadow(field.name)], [n for n in numbers if n]


def filter_clauses(inst: Instance, actor: Actor, ent: Entity, table: sa.Table,
                   filters: Mapping[str, Any] | Iterable[Filter] | None,
                   hidden: frozenset[str], dialect: str,
                   zone: tzinfo | None = None) -> list[ColumnElement]:
    """SQL for filters: a `ListRequest`'s (field, operator, value) triples, or a mapping of
    API-style keys (`field=value`, `field__gt=value`, ...); each is read and checked by
    `listrequest.checked_filter`, so both mean the same.

    Dates and times without an offset are read in the filter's own zone, else `zone` (a web
    page's reader's); with neither, as the API reads them: a date in the actor's own time
    zone (UTC when they have none), a date and time in UTC."""
    items = ((key, raw, None) for key, raw in filters.items()) if isinstance(
        filters, Mapping) else ((f.key, f.value, f.zone) for f in filters or ())
    own = zone_named(actor.time_zone) or UTC
    clauses = []
    for key, raw, typed_in in items:
        typed = typed_in or zone
        flt, values = checked_filter(ent, key, raw, hidden, actor.user_id, days=typed or own,
                                     times=typed or UTC)
        clauses.append(_field_clause(inst, dialect, ent, table, ent.fields[flt.field], flt.op,
                                     values))
    return clauses


def where_clauses(inst: Instance, actor: Actor, ent: Entity, table: sa.Table, *,
                  filters: Mapping[str, Any] | Iterable[Filter] | None, q: str | None,
                  dialect: str, zone: tzinfo | None = None) -> list[ColumnElement]:
    hidden = hidden_fields(inst, actor, ent.name)
    clauses = []
    row_filter = read_filter(inst, actor, ent.name, table)
    if row_filter is not None:
        clauses.append(row_filter)
    clauses += filter_clauses(inst, actor, ent, table, filters, hidden, dialect, zone)
    found = search.search_clause(inst, actor, ent, table, q, hidden, dialect)
    if found is not None:
        clauses.append(found)
    return clauses


def query(inst: Instance, actor: Actor, entity: str, *,
          filters: Mapping[str, Any] | Iterable[Filter] | None = None, q: str | None = None,
          sort: Sequence[str] | str | None = None, limit: int = 50, cursor: str | None = None,
          conn: Connection | None = None, count_cap: int | None = None) -> Page:
    """One page of the records the actor may read, filtered, searched and sorted. With
    `count_cap`, a ranked search's first page also brings its count (`Page.count`; else
    None: call `count`): it reads every match to rank them anyway."""
    ent = entity_of(inst, entity)
    table = inst.schema.table(entity)
    hidden = hidden_fields(inst, actor, entity)
    keys = sort_keys(ent, sort, hidden)
    extra: list[Any] = []
    if ranked(ent, sort, q, hidden):
        extra = [search.rank(ent, table, str(q), hidden, inst.engine.dialect.name)
                 .label(search.RANK)]
        keys = [(search.RANK, False), *keys]
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        raise BadRequest("limit must be a whole number from 1 to 500.") from None
    if limit < 1:
        raise BadRequest("limit must be a whole number from 1 to 500.")
    limit = min(limit, MAX_LIMIT)
    direction, values = ("n", None)
    if cursor:
        direction, values = decode_cursor(ent, keys, cursor)
    forward = direction == "n"
    with listing(inst, conn) as c:
        collation = collations.for_language(c, actor.language)  # the reader's alphabet
        columns = [*extra, *(collations.sort_column(ent, table, name, collation)
                             for name, _ in keys[len(extra):])]
        counted = count_cap is not None and bool(extra) and values is None and forward
        cap = int(count_cap or 0)
        found = search.best_matches(ent, q, hidden, c.dialect.name) if counted else None
        rows: list[dict[str, Any]] = []
        total: tuple[int, bool] | None = None
        if found is not None:
            other = where_clauses(inst, actor, ent, table, filters=filters, q=None,
                                  dialect=c.dialect.name)
            rows, matches = best_page(c, ent, table, keys, collation, found, other, limit,
                                      cap)
            # a full page: no other match can rank above it; the count is "at least"
            rows, total = (rows, (min(matches, cap), False)) if len(rows) > limit else ([], None)
        if not rows:
            if counted:  # the ranked page reads every match: it counts them on the way
                extra = [*extra, sa.func.count().over().label(TOTAL)]
            clauses = where_clauses(inst, actor, ent, table, filters=filters, q=q,
                                    dialect=c.dialect.name)
            rows = read_page(c, table, extra, clauses, columns, keys, values, forward,
                             collation, limit)
            if counted:
                matches = rows[0][TOTAL] if rows else 0
                total = (min(matches, cap), matches <= cap)
        for row in rows:
            row.pop(TOTAL, None)
        more = len(rows) > limit
        rows = rows[:limit]
        if not forward:
            rows.reverse()
        attach_links(inst, c, ent, rows)
    next_cursor = prev_cursor = None
    if rows:
        if more or not forward:
            next_cursor = encode_cursor(keys, rows[-1], "n")
        if (forward and values is not None) or (not forward and more):
            prev_cursor = encode_cursor(keys, rows[0], "p")
    elif values is not None:
        position = dict(zip([k for k, _ in keys], values, strict=True))
        if forward:
            prev_cursor = encode_cursor(keys, position, "p")
        else:
            next_cursor = encode_cursor(keys, position, "n")
    return Page([to_json(ent, row, hidden) for row in rows], next_cursor, prev_cursor, total)


def count(inst: Instance, actor: Actor, entity: str, *,
          filters: Mapping[str, Any] | Iterable[Filter] | None = None, q: str | None = None,
          cap: int = 10000, conn: Connection | None = None) -> tuple[int, bool]:
    """(how many records match, whether that is exact): counting stops at `cap`."""
    ent = entity_of(inst, entity)
    table = inst.schema.table(entity)
    with listing(inst, conn) as c:
        clauses = where_clauses(inst, actor, ent, table, filters=filters, q=q,
                                dialect=c.dialect.name)
        inner = sa.select(table.c.id).where(*clauses).limit(cap + 1).subquery()
        found = c.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one()
    return (min(found, cap), found <= cap)


__all__ = ["Page", "count", "get", "link_titles", "load", "query", "title", "titles_of"]
