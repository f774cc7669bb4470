"""Reading records: one record, filtered and sorted lists with keyset pagination, counts,
quick search, and record titles (one query per linked entity for a whole page).

Every read applies the actor's row filter (`permissions.read_filter`) in SQL and leaves out
the fields the actor may not see. Pages never use OFFSET: a cursor carries the sort-key
values of the row it starts after (or before), and is checked field by field when it comes
back — a cursor that does not fit the list is a BadRequest, never a server error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import InvalidOperation
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from builder.diagnostics import did_you_mean
from builder.fieldtypes import MAX_INTEGER, coerce
from builder.model import Entity, Field
from runtime.core import caches, phones, rowcache, searchindex
from runtime.core.errors import N_, BadRequest, NotFound
from runtime.core.schema import by_id, rows_by_id
from runtime.core.values import as_id, json_value, to_json
from runtime.read import collation as collations
from runtime.read import search
from runtime.read.listrequest import (
    MAX_LIMIT,
    Day,
    Filter,
    checked_filter,
    default_sort,
    sort_key,
)
from runtime.read.permissions import hidden_fields, read_filter
from runtime.read.titles import link_titles, title, titles_of, zone_named

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

NEVER_NULL = ("id", search.RANK)  # sort keys with no NULL part to read apart
TOTAL = "_total"  # the count a ranked first page carries (`count(*) OVER ()`)
MAX_ID = MAX_INTEGER  # ids are 64-bit: a larger number names no record (and overflows SQL)


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
    # a bulk write's rows read by id (a locking read always asks the database)
    kept = rowcache.MISSING if lock else rowcache.cached(conn, table.name, record_id)
    if row_filter is None and kept is not rowcache.MISSING:
        row = kept
    elif row_filter is None:  # the common case: one prebuilt statement per table
        row = conn.execute(by_id(table, lock), {"_crm_id": record_id}).mappings().first()
        if not lock and rowcache.rows_of(conn) is not None:
            row = None if row is None else dict(row)
            rowcache.keep(conn, table.name, record_id, row)
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
    value = _bound(column, values[0])
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


def _bound(column: Any, value: Any) -> Any:
    """A value to compare a column with; booleans as bound parameters, so that < and > work
    on them like on any other value."""
    if isinstance(value, bool):
        return sa.literal(value, sa.Boolean())
    return value


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


# -- sorting and cursors ----------------------------------------------------------------------


def sort_keys(ent: Entity, sort: Sequence[str] | str | None,
              hidden: frozenset[str]) -> list[tuple[str, bool]]:
    """[(field, descending)], ending with `id` so that every row has a unique position."""
    if isinstance(sort, str):
        sort = [sort]
    items = [s.strip() for item in (sort or ()) for s in str(item).split(",") if s.strip()]
    if not items:  # the list view's sort, without what this reader may not see
        items = list(default_sort(ent, hidden)) or ["id"]
    keys: list[tuple[str, bool]] = []
    for item in items:
        name, descending = sort_key(ent, item, hidden)
        if name not in (k for k, _ in keys):
            keys.append((name, descending))
    if "id" not in (k for k, _ in keys):
        keys.append(("id", False))
    return keys


def ranked(ent: Entity, sort: Sequence[str] | str | None, q: str | None,
           hidden: frozenset[str]) -> bool:
    """Whether a page is ordered by the search's rank first: a search in the list's own
    sort (an explicit other sort is kept as asked)."""
    if not search.cleaned(q).strip():
        return False
    if isinstance(sort, str):
        sort = [sort]
    items = tuple(s.strip() for item in (sort or ()) for s in str(item).split(",") if s.strip())
    return not items or items == default_sort(ent, hidden)


def _sort_spec(keys: list[tuple[str, bool]]) -> list[str]:
    return [("-" if desc else "") + name for name, desc in keys]


def encode_cursor(keys: list[tuple[str, bool]], row: Mapping[str, Any], direction: str) -> str:
    payload = {"s": _sort_spec(keys), "d": direction,
               "k": [json_value(row.get(name)) for name, _ in keys]}
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_key(field: Field | None, value: Any) -> Any:
    if value is None:
        return None
    kind = "integer" if field is None or field.name == "id" else field.type
    if kind in ("integer", "link"):
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_ID:
            raise ValueError  # past 2⁶³ no database integer compares with it
        return value
    if kind in ("decimal", "money", "percent"):
        if not isinstance(value, str) or field is None:
            raise ValueError
        return coerce(field, value)  # a value the column holds: not 1e999999, not NaN
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError
        return value
    if not isinstance(value, str) or len(value) > 4096:
        raise ValueError
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "datetime":
        return datetime.fromisoformat(value.removesuffix("Z"))
    return value


def decode_cursor(ent: Entity, keys: list[tuple[str, bool]], cursor: str
                  ) -> tuple[str, list[Any]]:
    """(direction "n" or "p", key values) of a cursor made for this sort; BadRequest if not."""
    problem = BadRequest("The cursor is not valid for this list (it is damaged, or was made for "
                         "another sort order); start again from the first page.")
    try:
        text = str(cursor).strip()
        if len(text) > 8192:
            raise ValueError
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload = json.loads(raw)
        if not isinstance(payload, dict) or payload.get("s") != _sort_spec(keys):
            raise ValueError
        direction, values = payload.get("d"), payload.get("k")
        if direction not in ("n", "p") or not isinstance(values, list) or \
                len(values) != len(keys):
            raise ValueError
        decoded = [_decode_key(ent.fields.get(name), value)
                   for (name, _), value in zip(keys, values, strict=True)]
        if decoded[-1] is None:
            raise ValueError
    except (ValueError, TypeError, binascii.Error, InvalidOperation, UnicodeDecodeError,
            RecursionError):
        raise problem from None
    return direction, decoded


def _keyset(columns: list[Any], keys: list[tuple[str, bool]], values: list[Any],
            forward: bool) -> ColumnElement:
    """Rows strictly after (forward) or before the position `values`, in an order where
    NULLs come last in both directions."""
    alternatives = []
    values = [_bound(None, v) for v in values]
    for index, ((_, desc), column, value) in enumerate(zip(keys, columns, values, strict=True)):
        ties = [column_i.is_(None) if value_i is None else column_i == value_i
                for column_i, value_i in zip(columns[:index], values[:index], strict=True)]
        if forward:
            if value is None:
                continue  # nothing sorts after NULL
            step = sa.or_(column < value if desc else column > value, column.is_(None))
        else:
            step = column.is_not(None) if value is None else (
                column > value if desc else column < value)
        alternatives.append(sa.and_(*ties, step))
    return sa.or_(sa.false(), *alternatives)


def _order(columns: list[Any], keys: list[tuple[str, bool]], forward: bool, *,
           not_null: int = 0) -> list[Any]:
    """ORDER BY of a page; the first `not_null` columns are known to hold no NULL in the
    rows selected (and `id` never does), so they get a plain order an index can serve."""
    result = []
    for index, ((name, desc), column) in enumerate(zip(keys, columns, strict=True)):
        plain = index < not_null or name in NEVER_NULL
        if forward:
            ordered = column.desc() if desc else column.asc()
            result.append(ordered if plain else ordered.nulls_last())
        else:
            ordered = column.asc() if desc else column.desc()
            result.append(ordered if plain else ordered.nulls_first())
    return result


def _segments(columns: list[Any], keys: list[tuple[str, bool]], values: list[Any] | None,
              forward: bool) -> list[tuple[list[ColumnElement], int]]:
    """The page as consecutive index-friendly parts, read in order until it is full:
    (clauses, how many leading sort columns are non-NULL in it). The non-NULL part of the
    first sort column is a range (`col <= v AND (col < v OR (col = v AND rest))`), the NULL
    part (NULLs sort last) is read by a second query only when the page is not yet full."""
    if values is None and forward and len(keys) >= 2 and keys[0][0] not in NEVER_NULL:
        # the first page: the non-NULL values in a plain order an index serves (PostgreSQL
        # cannot read `DESC NULLS LAST` from an ascending index), then the NULL tail
        return [([columns[0].is_not(None)], 1), ([columns[0].is_(None)], 0)]
    if values is None or len(keys) < 2 or keys[0][0] in NEVER_NULL:
        clauses = [] if values is None else [_keyset(columns, keys, values, forward)]
        return [(clauses, 0)]
    (_, desc), column, value = keys[0], columns[0], _bound(None, values[0])
    rest = _keyset(columns[1:], keys[1:], values[1:], forward)
    if value is None:
        if forward:  # the NULL tail, after the position
            return [([column.is_(None), rest], 0)]
        # backwards from inside the NULL tail: the NULLs before it, then every non-NULL
        return [([column.is_(None), rest], 0), ([column.is_not(None)], 1)]
    after = forward != desc  # the rows to read have larger values of the column
    if after:
        part = [column >= value, sa.or_(column > value, sa.and_(column == value, rest))]
    else:
        part = [column <= value, sa.or_(column < value, sa.and_(column == value, rest))]
    if forward:
        return [(part, 1), ([column.is_(None)], 0)]
    return [(part, 1)]


def _page_statements(table: sa.Table, columns: list[Any], keys: list[tuple[str, bool]],
                     values: list[Any] | None, forward: bool,
                     collation: str | None = None) -> list[Any]:
    """The SELECTs of an unfiltered page (see `_segments`), cursor values and the limit
    as parameters (`k0`…, `lim`): built and cache-keyed once per table, sort, direction,
    collation and which cursor values are NULL."""
    shape = None if values is None else tuple(v is None for v in values)
    key = (tuple(keys), forward, shape, collation)
    return caches.PAGE_STATEMENTS.get(table, key, lambda: _build_page(
        table, columns, keys, values, forward))


def _build_page(table: sa.Table, columns: list[Any], keys: list[tuple[str, bool]],
                values: list[Any] | None, forward: bool) -> list[Any]:
    params = None if values is None else [
        None if v is None else sa.bindparam(f"k{i}", type_=column.type)
        for i, (v, column) in enumerate(zip(values, columns, strict=True))]
    statements = [sa.select(table).where(*part).order_by(
        *_order(columns, keys, forward, not_null=not_null)).limit(
        sa.bindparam("lim", type_=sa.Integer())) for part, not_null in
        _segments(columns, keys, params, forward)]
    return statements


def _read_page(c: Connection, table: sa.Table, extra: list[Any], clauses: list[ColumnElement],
               columns: list[Any], keys: list[tuple[str, bool]], values: list[Any] | None,
               forward: bool, collation: str | None, limit: int) -> list[dict[str, Any]]:
    """Up to `limit + 1` rows from the position `values` on (see `_segments`)."""
    rows: list[dict[str, Any]] = []
    if clauses:
        for part, not_null in _segments(columns, keys, values, forward):
            stmt = sa.select(table, *extra).where(*clauses, *part).order_by(
                *_order(columns, keys, forward, not_null=not_null))
            rows.extend(dict(r) for r in c.execute(stmt.limit(limit + 1 - len(rows)))
                        .mappings())
            if len(rows) > limit:
                break
    else:  # no filter at all: statements with parameters, built once per sort
        bind = {f"k{i}": v for i, v in enumerate(values or ()) if v is not None}
        for stmt in _page_statements(table, columns, keys, values, forward, collation):
            bind["lim"] = limit + 1 - len(rows)
            rows.extend(dict(r) for r in c.execute(stmt, bind).mappings())
            if len(rows) > limit:
                break
    return rows


PAGE = sa.bindparam("page", type_=sa.Integer())  # how many rows a best page reads
CAP = sa.bindparam("cap", type_=sa.Integer())  # where its count stops


@dataclass(frozen=True)
class _Best:
    """What the parts of a search's best matches are read with (`_best_page`); the search
    itself is a parameter (`searchindex.prefix_parameters`)."""

    ent: Entity
    table: sa.Table
    dialect: str
    keys: list[tuple[str, bool]]  # the page's order: the rank, then the list's sort
    collation: str | None
    values: dict[str, Any]  # each visible text search column: its folded text
    short: ColumnElement | None  # the prefix indexes' predicate (PostgreSQL)
    other: list[ColumnElement]  # the row filter and the filters

    @property
    def carried(self) -> list[str]:
        return [name for name, _ in self.keys[1:] if name != "id"]

    @property
    def indexed(self) -> list[ColumnElement]:
        """The rows the prefix indexes hold, as a query must say it to read them."""
        return [] if self.short is None else [self.short]

    def sort_columns(self, source: Any) -> list[Any]:
        return [collations.sort_column(self.ent, source, name, self.collation)
                for name, _ in self.keys[1:]]


@dataclass(frozen=True)
class _BestStatements:
    exact: Any  # the first rows of the exact matches
    best: Any  # the first rows of the exact and prefix matches
    count: Any  # how many of those, up to a cap


def _best_page(inst: Instance, actor: Actor, ent: Entity, table: sa.Table, c: Connection,
               keys: list[tuple[str, bool]], collation: str | None, found: tuple[str, list[str]],
               filters: Mapping[str, Any] | Iterable[Filter] | None, limit: int,
               cap: int) -> tuple[list[dict[str, Any]], int]:
    """The first `limit + 1` rows of a ranked search taken from its exact and prefix matches
    alone (search.best_matches), and how many such matches there are (up to `cap`; 0 when
    they do not fill the page). The matches come in parts — a text column's exact matches,
    its other prefix matches, and on PostgreSQL the rows too long for the prefix indexes —
    each read from its index up to its own first `limit + 1` in the page's order: a row the
    page shows is among the first of the part that ranks it best, so the page is the first
    of those few. The exact parts come first; when they fill the page the prefix parts are
    not read at all. Only the page's rows are read from the table; the row filter and the
    filters are in every part."""
    text, names = found
    other = where_clauses(inst, actor, ent, table, filters=filters, q=None,
                          dialect=c.dialect.name)
    statements = _best_statements(ent, table, c.dialect.name, keys, collation, names, other)
    bind = {**searchindex.prefix_parameters(text), PAGE.key: limit + 1, CAP.key: cap}
    rows = [dict(r) for r in c.execute(statements.exact, bind).mappings()]
    if len(rows) <= limit:
        rows = [dict(r) for r in c.execute(statements.best, bind).mappings()]
    if len(rows) <= limit:
        return rows, 0
    return rows, c.execute(statements.count, bind).scalar_one()


def _best_statements(ent: Entity, table: sa.Table, dialect: str, keys: list[tuple[str, bool]],
                     collation: str | None, names: list[str],
                     other: list[ColumnElement]) -> _BestStatements:
    """The statements of `_best_page`, with the search, the page's size and the cap as
    parameters: without a row filter or a filter, built once per table, database, sort,
    collation and visible search columns, as an unfiltered list page's are
    (`_page_statements`)."""
    def build() -> _BestStatements:
        short = None if dialect == "sqlite" else searchindex.short_clause(
            table, searchindex.short_columns(ent))  # SQLite's indexes hold every row
        best = _Best(ent, table, dialect, keys, collation,
                     {n: searchindex.folded(table.c[n], dialect) for n in names}, short, other)
        exact = _exact_parts(best)
        return _BestStatements(_first_rows(best, exact),
                               _first_rows(best, [*exact, *_prefix_parts(best)]),
                               _best_count(best))
    if other:
        return build()
    key = ("best", dialect, tuple(keys), collation, tuple(names))
    return caches.PAGE_STATEMENTS.get(table, key, build)


def _exact_parts(best: _Best) -> list[Any]:
    """Per text column, the first records whose folded value is the search (rank 0); on
    PostgreSQL, those of the list's first sort column value by value (`_exact_by_value`),
    and the long rows' exact matches."""
    first = best.keys[1][0]
    parts = [_exact_by_value(best, name) if best.dialect == "postgresql" and name == first
             else _part(best, name, [*best.indexed, value == searchindex.SEARCHED], 0)
             for name, value in best.values.items()]
    if best.short is not None:
        parts.append(_part(best, None, [sa.not_(best.short), _exact(best)], 0))
    return parts


def _prefix_parts(best: _Best) -> list[Any]:
    """Per text column, the first records whose folded value starts with the search and
    goes on (rank 1); on PostgreSQL, the long rows' prefix matches."""
    parts = [_part(best, name, [*best.indexed, searchindex.extends(value, best.dialect)], 1)
             for name, value in best.values.items()]
    if best.short is not None:
        parts.append(_part(best, None, [sa.not_(best.short), sa.or_(*(
            searchindex.starts_with(v, best.dialect) for v in best.values.values()))],
            sa.case((_exact(best), 0), else_=1)))
    return parts


def _exact(best: _Best) -> ColumnElement:
    return sa.or_(*(v == searchindex.SEARCHED for v in best.values.values()))


def _part(best: _Best, name: str | None, where: list[ColumnElement], rank: Any) -> Any:
    """The first rows (`id`, the sort columns, `rank`) of those `where` finds, in the list's
    order; `name`: the column they match, which holds no NULL in them."""
    table = best.table
    not_null = int(name is not None and name == best.keys[1][0])
    rank = rank if isinstance(rank, ColumnElement) else sa.literal(rank, sa.Integer())
    return sa.select(table.c.id, *(table.c[c] for c in best.carried), rank.label(
        search.RANK)).where(*where, *best.other).order_by(*_order(
            best.sort_columns(table), best.keys[1:], True, not_null=not_null)).limit(
        PAGE).subquery()


def _exact_by_value(best: _Best, name: str) -> Any:
    """The first exact matches of `name`, the list's first sort column, in the list's order
    without sorting them (PostgreSQL). Their values are the search but for case and accents:
    a few distinct ones ("Smith", "smith", "Smíth"), found by a skip scan of the column's
    prefix index (folded text, then the value: one index probe each), put in the reader's
    order; then each value's rows in the order of the rest of the sort (`id`: the index's
    own), until the page is full."""
    table, column = best.table, best.table.c[name]
    where = [*best.indexed, best.values[name] == searchindex.SEARCHED]
    distinct = sa.select(sa.func.min(column).label(name)).where(*where).cte(recursive=True)
    following = sa.select(sa.func.min(column)).where(*where, column > distinct.c[name])
    distinct = distinct.union_all(sa.select(following.scalar_subquery()).where(
        distinct.c[name].is_not(None)))
    rows = sa.select(table.c.id, *(table.c[c] for c in best.carried)).where(
        *where, *best.other, column == distinct.c[name]).order_by(*_order(
            best.sort_columns(table)[1:], best.keys[2:], True)).limit(PAGE).lateral()
    order = [collations.sort_column(best.ent, distinct, name, best.collation),
             *best.sort_columns(rows)[1:]]
    return sa.select(rows.c.id, *(rows.c[c] for c in best.carried),
                     sa.literal(0, sa.Integer()).label(search.RANK)).select_from(
        distinct).join(rows, sa.true()).where(distinct.c[name].is_not(None)).order_by(
        *_order(order, best.keys[1:], True, not_null=1)).limit(PAGE).subquery()


def _first_rows(best: _Best, parts: list[Any]) -> Any:
    """The first records of `parts` (each once, at its best rank), in the page's order, with
    their rows."""
    hits = sa.union_all(*(sa.select(part) for part in parts)).subquery()
    carried = [hits.c[name] for name in best.carried]
    rank = sa.func.min(hits.c[search.RANK]).label(search.RANK)
    first = sa.select(hits.c.id, *carried, rank).group_by(hits.c.id, *carried).order_by(
        *_order([rank, *best.sort_columns(hits)], best.keys, True)).limit(PAGE).subquery()
    return sa.select(best.table, first.c[search.RANK]).join_from(
        first, best.table, best.table.c.id == first.c.id).order_by(*_order(
            [first.c[search.RANK], *best.sort_columns(first)], best.keys, True))


def _best_count(best: _Best) -> Any:
    """How many records have a visible text column equal to or starting with the search, up
    to the cap: each column's matches are read up to the cap (a record once in each); when
    one column alone has that many, so has the whole, else their union is counted."""
    starts = [searchindex.starts_with(v, best.dialect) for v in best.values.values()]
    wheres = [[*best.indexed, start] for start in starts]
    if best.short is not None:
        wheres.append([sa.not_(best.short), sa.or_(*starts)])
    parts = [sa.select(best.table.c.id).where(*where, *best.other).limit(CAP).subquery()
             for where in wheres]
    sizes = [sa.select(sa.func.count()).select_from(part).scalar_subquery() for part in parts]
    union = sa.union(*(sa.select(part.c.id) for part in parts)).subquery()
    return sa.select(sa.case((sa.or_(*(size >= CAP for size in sizes)), CAP),
                             else_=sa.select(sa.func.count()).select_from(union)
                             .scalar_subquery()))


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
            rows, matches = _best_page(inst, actor, ent, table, c, keys, collation, found,
                                       filters, limit, cap)
            # a full page: no other match can rank above it; the count is "at least"
            rows, total = (rows, (min(matches, cap), False)) if len(rows) > limit else ([], None)
        if not rows:
            if counted:  # the ranked page reads every match: it counts them on the way
                extra = [*extra, sa.func.count().over().label(TOTAL)]
            clauses = where_clauses(inst, actor, ent, table, filters=filters, q=q,
                                    dialect=c.dialect.name)
            rows = _read_page(c, table, extra, clauses, columns, keys, values, forward,
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
