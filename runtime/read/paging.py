"""Keyset paging of a list: the sort keys (always ending with `id`), the cursors that carry a
row's position (checked field by field when they come back: a cursor that does not fit the
list is a BadRequest, never a server error), and the page's SELECTs — each an index-friendly
part read in order until the page is full, never OFFSET. `queries.query` reads pages with
them; `best_page` the first page of a ranked search.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import InvalidOperation
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from builder.fieldtypes import MAX_INTEGER, coerce
from builder.model import Entity, Field
from runtime.core import caches
from runtime.core.errors import BadRequest
from runtime.core.values import json_value
from runtime.read import search
from runtime.read.listrequest import default_sort, sort_key

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

NEVER_NULL = ("id", search.RANK)  # sort keys with no NULL part to read apart
MAX_ID = MAX_INTEGER  # ids are 64-bit: a larger number names no record (and overflows SQL)


def bound(column: Any, value: Any) -> Any:
    """A value to compare a column with; booleans as bound parameters, so that < and > work
    on them like on any other value."""
    if isinstance(value, bool):
        return sa.literal(value, sa.Boolean())
    return value


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


def sort_spec(keys: list[tuple[str, bool]]) -> list[str]:
    return [("-" if desc else "") + name for name, desc in keys]


def encode_cursor(keys: list[tuple[str, bool]], row: Mapping[str, Any], direction: str) -> str:
    payload = {"s": sort_spec(keys), "d": direction,
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
        if not isinstance(payload, dict) or payload.get("s") != sort_spec(keys):
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


def keyset(columns: list[Any], keys: list[tuple[str, bool]], values: list[Any],
            forward: bool) -> ColumnElement:
    """Rows strictly after (forward) or before the position `values`, in an order where
    NULLs come last in both directions."""
    alternatives = []
    values = [bound(None, v) for v in values]
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


def order(columns: list[Any], keys: list[tuple[str, bool]], forward: bool, *,
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


def segments(columns: list[Any], keys: list[tuple[str, bool]], values: list[Any] | None,
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
        clauses = [] if values is None else [keyset(columns, keys, values, forward)]
        return [(clauses, 0)]
    (_, desc), column, value = keys[0], columns[0], bound(None, values[0])
    rest = keyset(columns[1:], keys[1:], values[1:], forward)
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


def page_statements(table: sa.Table, columns: list[Any], keys: list[tuple[str, bool]],
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
        *order(columns, keys, forward, not_null=not_null)).limit(
        sa.bindparam("lim", type_=sa.Integer())) for part, not_null in
        segments(columns, keys, params, forward)]
    return statements


def read_page(c: Connection, table: sa.Table, extra: list[Any], clauses: list[ColumnElement],
               columns: list[Any], keys: list[tuple[str, bool]], values: list[Any] | None,
               forward: bool, collation: str | None, limit: int) -> list[dict[str, Any]]:
    """Up to `limit + 1` rows from the position `values` on (see `_segments`)."""
    rows: list[dict[str, Any]] = []
    if clauses:
        for part, not_null in segments(columns, keys, values, forward):
            stmt = sa.select(table, *extra).where(*clauses, *part).order_by(
                *order(columns, keys, forward, not_null=not_null))
            rows.extend(dict(r) for r in c.execute(stmt.limit(limit + 1 - len(rows)))
                        .mappings())
            if len(rows) > limit:
                break
    else:  # no filter at all: statements with parameters, built once per sort
        bind = {f"k{i}": v for i, v in enumerate(values or ()) if v is not None}
        for stmt in page_statements(table, columns, keys, values, forward, collation):
            bind["lim"] = limit + 1 - len(rows)
            rows.extend(dict(r) for r in c.execute(stmt, bind).mappings())
            if len(rows) > limit:
                break
    return rows
