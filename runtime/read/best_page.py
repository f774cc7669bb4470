"""The first page of a ranked quick search, read from the exact and prefix matches alone
(`search.best_matches`): each text column's prefix index (`searchindex`) gives its matches in
the page's order, so the page reads a few index entries and only its own rows, however many
records match; its count stops at a cap. `queries.query` asks for it first and falls back to
the whole ranked search when these matches do not fill the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from builder.model import Entity
from runtime.core import caches, searchindex
from runtime.read import collation as collations
from runtime.read import search
from runtime.read.paging import order

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


PAGE = sa.bindparam("page", type_=sa.Integer())  # how many rows a best page reads
CAP = sa.bindparam("cap", type_=sa.Integer())  # where its count stops


@dataclass(frozen=True)
class _Best:
    """What the parts of a search's best matches are read with (`best_page`); the search
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


def best_page(c: Connection, ent: Entity, table: sa.Table, keys: list[tuple[str, bool]],
              collation: str | None, found: tuple[str, list[str]], other: list[ColumnElement],
              limit: int, cap: int) -> tuple[list[dict[str, Any]], int]:
    """The first `limit + 1` rows of a ranked search taken from its exact and prefix matches
    alone (search.best_matches), and how many such matches there are (up to `cap`; 0 when
    they do not fill the page). The matches come in parts — a text column's exact matches,
    its other prefix matches, and on PostgreSQL the rows too long for the prefix indexes —
    each read from its index up to its own first `limit + 1` in the page's order: a row the
    page shows is among the first of the part that ranks it best, so the page is the first
    of those few. The exact parts come first; when they fill the page the prefix parts are
    not read at all. Only the page's rows are read from the table; `other` (the row filter
    and the filters) is in every part."""
    text, names = found
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
    """The statements of `best_page`, with the search, the page's size and the cap as
    parameters: without a row filter or a filter, built once per table, database, sort,
    collation and visible search columns, as an unfiltered list page's are
    (`paging.page_statements`)."""
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
        search.RANK)).where(*where, *best.other).order_by(*order(
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
        *where, *best.other, column == distinct.c[name]).order_by(*order(
            best.sort_columns(table)[1:], best.keys[2:], True)).limit(PAGE).lateral()
    by = [collations.sort_column(best.ent, distinct, name, best.collation),
          *best.sort_columns(rows)[1:]]
    return sa.select(rows.c.id, *(rows.c[c] for c in best.carried),
                     sa.literal(0, sa.Integer()).label(search.RANK)).select_from(
        distinct).join(rows, sa.true()).where(distinct.c[name].is_not(None)).order_by(
        *order(by, best.keys[1:], True, not_null=1)).limit(PAGE).subquery()


def _first_rows(best: _Best, parts: list[Any]) -> Any:
    """The first records of `parts` (each once, at its best rank), in the page's order, with
    their rows."""
    hits = sa.union_all(*(sa.select(part) for part in parts)).subquery()
    carried = [hits.c[name] for name in best.carried]
    rank = sa.func.min(hits.c[search.RANK]).label(search.RANK)
    first = sa.select(hits.c.id, *carried, rank).group_by(hits.c.id, *carried).order_by(
        *order([rank, *best.sort_columns(hits)], best.keys, True)).limit(PAGE).subquery()
    return sa.select(best.table, first.c[search.RANK]).join_from(
        first, best.table, best.table.c.id == first.c.id).order_by(*order(
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
