"""The quick-search index of each entity, kept by the database itself (docs/records.md#search).

- **SQLite**: an FTS5 table `crm_search__<table>` with the trigram tokenizer over the entity's
  text search fields (and the E.164 shadow column of its phone search fields), contentless (it
  stores no copy of the values) and kept current by three triggers on the entity's table — so
  no write path, single or bulk, has anything to do. A term of three characters or more is
  found anywhere inside a value, Chinese text included (no word breaks needed); shorter terms
  are matched with LIKE. Each folded one-line column also has an index on its folded text,
  `ix_prefix_<table>_<column>` on `crm_fold(column)` carrying the list's sort columns and
  `id`, from which a ranked search's exact and prefix matches are read (`starts_with`); an
  SQLite index keeps a long value's entry on overflow pages, so none is kept out of it.
- **PostgreSQL**: beside each of those text columns a stored generated column
  `_fold_<column>` keeps its folded text (`GENERATED ALWAYS AS (…) STORED`: the database
  refolds it on every insert and update, single or bulk), and a `pg_trgm` GIN index
  `ix_trgm_<table>_<column>` covers it (a phone field's E.164 shadow column is indexed as it
  is: digits need no folding). A search reads `LIKE '%term%'` on the stored column: the index
  finds the candidates, and the recheck a trigram match needs reads the stored text instead of
  folding every candidate's value again (docs/performance.md, notes on search). Each folded
  one-line column also has a btree `ix_prefix_<table>_<column>` (`text_pattern_ops`, then
  the list's sort columns and `id`), from which a ranked search's exact and prefix matches are
  read without the trigram lookups or the rows (read/best_page.py); it holds the
  rows whose values are under `SHORT_BYTES` (a btree entry has a size limit a write must never
  hit), and `ix_prefix_<table>__long` the ids of the others. The statistics object
  `ix_prefix_<table>__sizes` (PostgreSQL 14 and later) tells the planner how long those values
  are: without it, it takes most rows for long ones (each size condition a guess of one in
  three) and reads the long rows' matches from the trigram index and the table, not from that
  small index. When the extension cannot be
  created (not installed on the server, or no right to create it), the
  columns are made all the same and searches read them without the index; the migration says
  so.

Both index the text **folded** (`fold`: Unicode NFKD, combining accents dropped, case folded),
and the search folds its words the same way, so "Jose" finds "José" and "jose" finds "JOSÉ";
Chinese text folds to itself. SQLite runs `fold` itself (the `crm_fold` function every
connection gets, core/db.py); PostgreSQL runs the same steps in SQL (`_pg_fold`), all of
them IMMUTABLE functions there (as a generated column requires).

What the index should be is data (`wanted`); what it is comes from the database (`present`);
`crmforge migrate` plans the difference (`runtime/process/migrate/compare.py`) and `sync` makes it,
building the index for the rows already there. `Schema.create_all` calls `create_all`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from builder.model import AppModel, Entity
from runtime.core import sortindex
from runtime.core.phones import MAX_NAME, SHADOW_PREFIX, shadow

log = logging.getLogger(__name__)

FTS_PREFIX = "crm_search__"
TRGM_PREFIX = "ix_trgm_"
SEARCH_TYPES = ("text", "longtext", "richtext", "email", "url", "choice", "autonumber", "file",
                "image")  # matched as text; phone fields by their shadow column
MIN_TRIGRAM = 3  # a shorter term has no trigram to look up
PREFIX_PREFIX = "ix_prefix_"  # the btree of a folded column, for exact and prefix matches
PREFIX_TYPES = frozenset(SEARCH_TYPES) - {"longtext", "richtext"}
SHORT_BYTES = 1000  # a longer value (rare in a one-line field) is kept out of prefix indexes
LONG_SUFFIX = "__long"  # `ix_prefix_<table>__long`: the rows with one (no field starts "_")
SIZES_SUFFIX = "__sizes"  # `ix_prefix_<table>__sizes`: the statistics of those sizes
FOLD_FUNCTION = "crm_fold"  # SQLite: `fold` as an SQL function
FOLD_PREFIX = "_fold_"  # PostgreSQL's stored folded copies; no field name starts with "_"
# the combining marks a fold drops (accents, diaeresis, tilde, cedilla… once NFKD has split
# them from their letter), as one regular expression both Python and PostgreSQL read
COMBINING_MARKS = r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
_MARKS = re.compile(COMBINING_MARKS)


@contextmanager
def reflecting() -> Iterator[None]:
    """Reflect tables without SQLAlchemy's warning about SQLite's prefix indexes: they index
    `crm_fold(column)`, an expression SQLAlchemy does not reflect on SQLite. It skips them,
    which is right: `sync` keeps them, not the migration's comparison (`present` reads them
    from `sqlite_master`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=sa.exc.SAWarning, message=(
            "Skipped unsupported reflection of expression-based index " + PREFIX_PREFIX))
        yield


def fold(text: Any) -> str | None:
    """`text` as the index holds it and a search looks it up: "José Müller" -> "jose muller",
    "ＡＢＣ" -> "abc", "北京" unchanged (None stays None)."""
    if text is None:
        return None
    return _MARKS.sub("", unicodedata.normalize("NFKD", str(text))).casefold()


def register_fold(dbapi_connection: Any) -> None:
    """Give a SQLite connection `crm_fold(text)`, which the index's triggers call."""
    dbapi_connection.create_function(FOLD_FUNCTION, 1, fold, deterministic=True)


def folded(column: Any, dialect: str) -> Any:
    """The folded text (what `fold` makes of it) of `column`, an indexed text column (see
    `columns`) of a table or an alias of one, as a search reads it: on SQLite `crm_fold`
    over it; on PostgreSQL its stored copy `_fold_<column>` beside it."""
    if dialect == "sqlite":
        return getattr(sa.func, FOLD_FUNCTION)(column)
    if dialect == "postgresql":  # a column of the index, not of the model's table
        return sa.sql.expression.ColumnClause(fold_column(column.name), sa.Text(),
                                              _selectable=column.table)
    return sa.func.lower(column)


def fold_column(column: str) -> str:
    """The name of the PostgreSQL column that keeps `column`'s folded text."""
    name = FOLD_PREFIX + column
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(column.encode()).hexdigest()[:8]  # two long names stay apart
    return f"{name[:MAX_NAME - 9]}_{digest}"


def _is_folded(column: str) -> bool:
    """Whether an indexed column is read through a folded copy (not a phone's E.164 shadow)."""
    return not column.startswith(SHADOW_PREFIX)


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pg_fold(column: str) -> str:
    """`folded` as DDL text, for the generated column."""
    return (f"lower(regexp_replace(normalize({column}, NFKD), {_sql_text(COMBINING_MARKS)}, "
            "'', 'g'))")


def columns(ent: Entity) -> tuple[str, ...]:
    """The columns of `ent` the index covers, in `search` order."""
    found = []
    for name in ent.search:
        field = ent.fields.get(name)
        if field is None:
            continue
        if field.type in SEARCH_TYPES:
            found.append(name)
        elif field.type == "phone":
            found.append(shadow(name))
    return tuple(dict.fromkeys(found))


def fts_name(table: str) -> str:
    return FTS_PREFIX + table


def trgm_name(table: str, column: str) -> str:
    return (f"{TRGM_PREFIX}{table}_{column}")[:63]


def prefix_name(table: str, column: str) -> str:
    return (f"{PREFIX_PREFIX}{table}_{column}")[:63]


def prefixes(table: str) -> tuple[str, ...]:
    """How the names of a table's index objects start (SQLite; PostgreSQL's indexes, and its
    folded columns)."""
    return fts_name(table), f"{TRGM_PREFIX}{table}_", f"{PREFIX_PREFIX}{table}_", f"{table}."


def carried(ent: Entity) -> tuple[str, ...]:
    """The columns a prefix index carries besides its folded text: the list's sort and `id`,
    so that the exact and prefix matches of a search are ranked and sorted from the index
    alone (read/best_page.py), without reading each match's row."""
    names = [s.lstrip("-+") for s in ent.views.list.sort]
    kept = [n for n in names if n in ent.fields and ent.fields[n].type not in _NOT_CARRIED]
    return tuple(dict.fromkeys([*kept, "id"]))


def prefixed(ent: Entity) -> tuple[str, ...]:
    """The search columns of `ent` with a prefix index: folded ones of a one-line type (a
    long text's prefix is no name, and would not fit a btree)."""
    return tuple(c for c in columns(ent) if _is_folded(c) and ent.fields[c].type in PREFIX_TYPES)


def short_columns(ent: Entity) -> tuple[str, ...]:
    """The columns whose size decides whether a row is in the prefix indexes: their folded
    search text and the carried text columns (a btree entry has at most 2,704 bytes)."""
    texts = [c for c in carried(ent) if ent.fields.get(c) is not None
             and ent.fields[c].type in (*SEARCH_TYPES, "phone")]
    return tuple(dict.fromkeys([*(fold_column(c) for c in prefixed(ent)), *texts]))


def short_clause(table: Any, names: tuple[str, ...]) -> Any:
    """Every column of `names` at most `SHORT_BYTES` long: the prefix indexes' predicate, as
    a query must state it for the planner to use them (`_short_ddl` is its DDL)."""
    return sa.and_(*(sa.func.coalesce(sa.func.octet_length(_column(table, n)), 0) <= SHORT_BYTES
                     for n in names))


def _column(table: Any, name: str) -> Any:
    if name in table.c:
        return table.c[name]
    return sa.sql.expression.ColumnClause(name, sa.Text(), _selectable=table)  # a folded copy


def _short_ddl(names: tuple[str, ...]) -> str:
    return " AND ".join(f"{_size_ddl(n)} <= {SHORT_BYTES}" for n in names)


def _size_ddl(name: str) -> str:
    return f"coalesce(octet_length({_q(name)}), 0)"


_NOT_CARRIED = frozenset({"links", "multichoice", "longtext", "richtext"})  # no column, or long


def indexed(model: AppModel) -> dict[str, tuple[str, ...]]:
    """{table: its indexed columns} of every entity that has any."""
    return {e.table: cols for e in model.entities.values() if (cols := columns(e))}


# -- what the index should be -----------------------------------------------------------------


def wanted(model: AppModel, dialect: str, trgm_schema: str | None = None, *,
           statistics: bool = False) -> dict[str, str]:
    """{object name: its DDL} of the whole search index of `model` on `dialect`. PostgreSQL:
    the folded columns, named `<table>.<column>` with their `ADD COLUMN` clause, the
    trigram indexes when `trgm_schema` (where pg_trgm lives) is given, and the statistics of
    the prefix indexes' sizes when the server has statistics on expressions
    (`expression_statistics`)."""
    result: dict[str, str] = {}
    entities = {e.table: e for e in model.entities.values()}
    for table, cols in indexed(model).items():
        if dialect == "sqlite":
            result.update(_fts_ddl(table, cols))
            result.update(_sqlite_prefix_ddl(table, entities[table]))
        elif dialect == "postgresql":
            result.update({f"{table}.{fold_column(c)}": _fold_ddl(c)
                           for c in cols if _is_folded(c)})
            result.update(_prefix_ddl(table, entities[table], statistics))
            if trgm_schema is not None:
                result.update({trgm_name(table, c): _trgm_ddl(table, c, trgm_schema)
                               for c in cols})
    return result


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fts_ddl(table: str, cols: tuple[str, ...]) -> dict[str, str]:
    fts = fts_name(table)
    names = ", ".join(_q(c) for c in cols)
    new = ", ".join(f"{FOLD_FUNCTION}(new.{_q(c)})" for c in cols)
    old = ", ".join(f"{FOLD_FUNCTION}(old.{_q(c)})" for c in cols)
    add = f"INSERT INTO {_q(fts)}(rowid, {names}) VALUES (new.\"id\", {new});"
    remove = (f"INSERT INTO {_q(fts)}({_q(fts)}, rowid, {names}) "
              f"VALUES ('delete', old.\"id\", {old});")
    return {
        fts: (f"CREATE VIRTUAL TABLE {_q(fts)} USING fts5({names}, content='', "
              "tokenize='trigram')"),
        f"{fts}_ai": f"CREATE TRIGGER {_q(fts + '_ai')} AFTER INSERT ON {_q(table)} BEGIN "
                     f"{add} END",
        f"{fts}_ad": f"CREATE TRIGGER {_q(fts + '_ad')} AFTER DELETE ON {_q(table)} BEGIN "
                     f"{remove} END",
        f"{fts}_au": f"CREATE TRIGGER {_q(fts + '_au')} AFTER UPDATE OF {names} ON "
                     f"{_q(table)} BEGIN {remove} {add} END",
    }


def _sqlite_prefix_ddl(table: str, ent: Entity) -> dict[str, str]:
    """Per prefixed column an index on its folded text (an expression: `crm_fold` is
    registered deterministic, core/db.py) carrying the list's sort columns."""
    carry = "".join(f", {_q(c)}" for c in carried(ent))
    return {prefix_name(table, c): f"CREATE INDEX {_q(prefix_name(table, c))} ON {_q(table)} "
                                   f"({FOLD_FUNCTION}({_q(c)}){carry})" for c in prefixed(ent)}


SEARCHED = sa.bindparam("searched", type_=sa.Text())  # a prefix read's folded search
PATTERN = sa.bindparam("searched_pattern", type_=sa.Text())  # the same as LIKE 'term%'
LIKE_ESCAPE = "/"


def prefix_parameters(text: str) -> dict[str, str]:
    """The values of `SEARCHED` and `PATTERN` when the folded search is `text`."""
    escaped = "".join(LIKE_ESCAPE + ch if ch in (LIKE_ESCAPE, "%", "_") else ch for ch in text)
    return {SEARCHED.key: text, PATTERN.key: escaped + "%"}


def starts_with(value: Any, dialect: str) -> Any:
    """`value` (a folded text, `folded`) starts with the search (`prefix_parameters`), as
    its prefix index reads it. SQLite: a range, which an index on an expression serves (its
    LIKE optimisation takes a bare column only): from the search up to the search followed
    by the byte 0xFF, which no UTF-8 text holds, so every value starting with it lies below."""
    if dialect != "sqlite":
        return value.like(PATTERN, escape=LIKE_ESCAPE)
    return sa.and_(value >= SEARCHED, value < _above())


def extends(value: Any, dialect: str) -> Any:
    """`value` (a folded text) starts with the search and goes on: the prefix matches that
    are not exact, read from the prefix index after the exact ones (a range that starts past
    the search: PostgreSQL's `~>~` is the byte order `text_pattern_ops` keeps)."""
    if dialect != "sqlite":
        return sa.and_(value.op("~>~")(SEARCHED), value.like(PATTERN, escape=LIKE_ESCAPE))
    return sa.and_(value > SEARCHED, value < _above())


def _above() -> Any:
    """The search followed by the byte 0xFF (SQLite). A concatenation, not a cast of bytes:
    SQLite bounds an index range with the first only."""
    return SEARCHED.concat(sa.literal_column("CAST(X'FF' AS TEXT)"))


def _fold_ddl(column: str) -> str:
    return (f"ADD COLUMN {_q(fold_column(column))} text GENERATED ALWAYS AS "
            f"({_pg_fold(_q(column))}) STORED")


def _trgm_ddl(table: str, column: str, schema: str) -> str:
    target = fold_column(column) if _is_folded(column) else column
    return (f"CREATE INDEX {_q(trgm_name(table, column))} ON {_q(table)} USING gin "
            f"({_q(target)} {_q(schema)}.gin_trgm_ops)")


def _prefix_ddl(table: str, ent: Entity, statistics: bool) -> dict[str, str]:
    """Per prefixed column a btree in code-point order (`text_pattern_ops`: `LIKE 'term%'`
    and `=` read it), then the list's sort columns and `id` (keys, not INCLUDEd: the exact
    matches of the sort column are read value by value, each in `id` order), for an
    index-only read of a search's best matches; it holds the rows whose values are short
    (`short_clause`), and `ix_prefix_<table>__long` the ids of the others, so that a too long
    value neither fails a write nor escapes a search. With `statistics`, the statistics of
    the sizes the predicates read (see the module's docstring)."""
    cols = prefixed(ent)
    if not cols:
        return {}
    sizes = short_columns(ent)
    short = _short_ddl(sizes)
    carry = "".join(f", {_q(c)}" for c in carried(ent))
    result = {prefix_name(table, c): (
        f"CREATE INDEX {_q(prefix_name(table, c))} ON {_q(table)} USING btree "
        f"({_q(fold_column(c))} text_pattern_ops{carry}) WHERE {short}")
        for c in cols}
    result[long_name(table)] = (f"CREATE INDEX {_q(long_name(table))} ON {_q(table)} USING "
                                f"btree (\"id\") WHERE NOT ({short})")
    if statistics:
        result[sizes_name(table)] = (
            f"CREATE STATISTICS {_q(sizes_name(table))} ON "
            f"{', '.join(f'({_size_ddl(n)})' for n in sizes)} FROM {_q(table)}")
    return result


def long_name(table: str) -> str:
    return _suffixed(table, LONG_SUFFIX)


def sizes_name(table: str) -> str:
    return _suffixed(table, SIZES_SUFFIX)


def _suffixed(table: str, suffix: str) -> str:
    return f"{PREFIX_PREFIX}{table[:63 - len(PREFIX_PREFIX) - len(suffix)]}{suffix}"


def expression_statistics(conn: Connection) -> bool:
    """Whether the server takes statistics on expressions (PostgreSQL 14 and later)."""
    version = conn.dialect.server_version_info or (0,)
    return conn.dialect.name == "postgresql" and version >= (14,)


def drop_column_index(conn: Connection, table: str, column: str) -> None:
    """Drop the trigram index and the folded copy of one column (PostgreSQL) before its type
    changes: the operator class takes text only, and a column a generated column reads keeps
    its type. The search-index step of the same plan makes what is still wanted."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {_q(trgm_name(table, column))}")
        conn.exec_driver_sql(f"ALTER TABLE {_q(table)} DROP COLUMN IF EXISTS "
                             f"{_q(fold_column(column))}")


# -- what it is -------------------------------------------------------------------------------


def present(conn: Connection) -> dict[str, str]:
    """{object name: its DDL as the database keeps it} of the search index objects there
    (PostgreSQL: the indexes with their definition, and the folded columns, `<table>.<column>`,
    with their generation expression)."""
    if conn.dialect.name == "sqlite":
        rows = conn.execute(sa.text(
            "SELECT name, sql FROM sqlite_master WHERE (type IN ('table', 'trigger') "
            "AND name LIKE :fts ESCAPE '\\' OR type = 'index' AND name LIKE :prefix "
            "ESCAPE '\\') AND sql IS NOT NULL"),
            {"fts": FTS_PREFIX.replace("_", "\\_") + "%",
             "prefix": PREFIX_PREFIX.replace("_", "\\_") + "%"})
        # FTS5's own tables (`_data`, `_idx`, ...) come and go with the virtual table
        return {name: sql for name, sql in rows if not sql.startswith("CREATE TABLE")}
    if conn.dialect.name == "postgresql":
        rows = conn.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND (indexname LIKE :trgm OR indexname LIKE :prefix)"),
            {"trgm": TRGM_PREFIX.replace("_", "\\_") + "%",
             "prefix": PREFIX_PREFIX.replace("_", "\\_") + "%"})
        found = dict(rows.all())
        # generated columns only: a table kept aside by a migration copies their values into
        # plain columns, which are no index of anything
        columns = conn.execute(sa.text(
            "SELECT c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' "
            "AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = 's' "
            "AND a.attname LIKE :prefix"), {"prefix": FOLD_PREFIX.replace("_", "\\_") + "%"})
        found.update({f"{table}.{column}": f"GENERATED ALWAYS AS ({expression}) STORED"
                      for table, column, expression in columns})
        found.update(conn.execute(sa.text(
            "SELECT stxname, pg_get_statisticsobjdef(oid) FROM pg_statistic_ext "
            "WHERE stxnamespace = current_schema()::regnamespace AND stxname LIKE :prefix"),
            {"prefix": PREFIX_PREFIX.replace("_", "\\_") + "%"}).all())
        return found
    return {}


def trgm_schema(conn: Connection) -> str | None:
    """The schema pg_trgm is installed in, None when it is not."""
    return conn.execute(sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'")).scalar()


def trgm_available(conn: Connection) -> bool:
    """Whether the server has pg_trgm to install (or installed)."""
    return bool(conn.execute(sa.text(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).scalar())


def stale(conn: Connection, model: AppModel) -> tuple[set[str], set[str]]:
    """(tables whose index is missing or differs, index objects no entity wants any more)."""
    dialect = conn.dialect.name
    schema = trgm_schema(conn) if dialect == "postgresql" else None
    statistics = expression_statistics(conn)
    if dialect == "postgresql" and schema is None and not trgm_available(conn):
        # the folded columns; no index to build them with
        want = wanted(model, dialect, None, statistics=statistics)
    else:
        want = wanted(model, dialect, schema or "public", statistics=statistics)
    have = present(conn)
    tables = set()
    for table, cols in indexed(model).items():
        names = _object_names(table, cols, dialect, want)
        if any(n not in have or not _same(have[n], want[n], dialect) for n in names):
            tables.add(table)
    extra = {name for name in have if name not in want}
    return tables, extra


def _object_names(table: str, cols: tuple[str, ...], dialect: str,
                  want: dict[str, str]) -> list[str]:
    """The names of `table`'s index objects in `want` (PostgreSQL: columns before indexes)."""
    if dialect == "sqlite":
        fts = fts_name(table)
        return [fts, f"{fts}_ai", f"{fts}_ad", f"{fts}_au",
                *(n for c in cols if (n := prefix_name(table, c)) in want)]
    names = [f"{table}.{fold_column(c)}" for c in cols if _is_folded(c)]
    return [*names, *(n for c in cols if (n := trgm_name(table, c)) in want),
            *(n for c in cols if (n := prefix_name(table, c)) in want),
            *(n for n in [long_name(table), sizes_name(table)] if n in want)]


_GIN_TARGET = re.compile(r"USING gin \((.+) \S+\)$")


def _same(have: str, want: str, dialect: str) -> bool:
    if dialect == "sqlite":
        return have == want
    if have.startswith("GENERATED"):  # PostgreSQL rewrites the expression; it folds or not
        return "normalize(" in have.lower()
    if want.startswith("CREATE STATISTICS"):
        return _statistics_shape(have) == _statistics_shape(want)
    if "USING btree" in want:  # a prefix index: the same column and carried columns
        return _btree_shape(have) == _btree_shape(want)
    # an index: on the same column (an index from before the stored copies, on the folding
    # expression or on the bare column, is rebuilt)
    targets = [m.group(1).replace('"', "") if (m := _GIN_TARGET.search(ddl)) else None
               for ddl in (have, want)]
    return targets[0] is not None and targets[0] == targets[1]


def _statistics_shape(ddl: str) -> str:
    """What a statistics object's definition says after `ON`, as PostgreSQL and we write it
    alike (it qualifies the names with the schema)."""
    shape = re.sub(r"[\s\"()]", "", ddl[ddl.find(" ON "):]).lower()
    return re.sub(r"from\w+\.", "from", shape.replace("::text", ""))


def _btree_shape(ddl: str) -> str:
    """What a btree's definition says after `USING`, as PostgreSQL and we write it alike
    (it quotes only what needs it, brackets each condition, capitalises COALESCE and casts
    a varchar column to text)."""
    return re.sub(r"[\s\"()]", "", ddl[ddl.find("USING"):]).lower().replace("::text", "")


# -- making it ------------------------------------------------------------------------------


def sync(conn: Connection, model: AppModel, tables: set[str], extra: set[str]) -> list[str]:
    """Drop the index objects in `extra`, (re)build the index of each table in `tables` over
    the rows already there; returns notes for the person running the migration."""
    dialect = conn.dialect.name
    notes: list[str] = []
    have = present(conn)
    for name in sorted(extra):
        _drop(conn, name, have.get(name, ""))
    schema = None
    if dialect == "postgresql" and tables:
        schema = ensure_trgm(conn, notes)  # None: the folded columns all the same
    want = wanted(model, dialect, schema, statistics=expression_statistics(conn))
    cols = indexed(model)
    for table in sorted(tables):
        names = _object_names(table, cols[table], dialect, want)
        if dialect == "sqlite":
            _sync_sqlite(conn, table, cols[table], names, want, have)
        else:
            _sync_pg(conn, table, names, want, have)
    return notes


def _sync_pg(conn: Connection, table: str, names: list[str], want: dict[str, str],
             have: dict[str, str]) -> None:
    """Make `table`'s folded columns that are missing or differ — in one ALTER TABLE, which
    fills them for the rows already there in one pass — then its indexes (and the statistics
    of their sizes), anew."""
    columns = [n for n in names if "." in n]
    indexes = [n for n in names if "." not in n]
    for name in indexes:
        _drop(conn, name, "")
    remake = [n for n in columns if n not in have or not _same(have[n], want[n], "postgresql")]
    for name in remake:
        if name in have:
            _drop(conn, name, have[name])
    if remake:
        conn.exec_driver_sql(f"ALTER TABLE {_q(table)} " + ", ".join(want[n] for n in remake))
    for name in indexes:
        conn.exec_driver_sql(want[name])
    if sizes_name(table) in indexes:  # the planner reads new statistics after an ANALYZE
        conn.exec_driver_sql(f"ANALYZE {_q(table)}")


def _sync_sqlite(conn: Connection, table: str, cols: tuple[str, ...], names: list[str],
                 want: dict[str, str], have: dict[str, str]) -> None:
    """Make `table`'s FTS table and triggers anew, filled with the rows already there, when
    any of them is missing or differs; and its prefix indexes that are missing or differ."""
    fts = [n for n in names if n.startswith(FTS_PREFIX)]
    remake = [n for n in names if n not in fts and have.get(n) != want[n]]
    refill = any(have.get(n) != want[n] for n in fts)
    for name in [*fts, *remake] if refill else remake:
        _drop(conn, name, have.get(name, ""))
    for name in [*fts, *remake] if refill else remake:
        conn.exec_driver_sql(want[name])
    if refill:
        _fill(conn, table, cols)


def _fill(conn: Connection, table: str, cols: tuple[str, ...]) -> None:
    """Index the rows already in `table` (SQLite), folded as the triggers fold new ones."""
    names = ", ".join(_q(c) for c in cols)
    values = ", ".join(f"{FOLD_FUNCTION}({_q(c)})" for c in cols)
    conn.exec_driver_sql(f"INSERT INTO {_q(fts_name(table))}(rowid, {names}) "
                         f"SELECT \"id\", {values} FROM {_q(table)}")


def create_all(conn: Connection, model: AppModel) -> None:
    """Build every entity's search index, and the list indexes in each language's collation
    (core/sortindex.py) — new databases; `migrate` keeps them current."""
    tables, extra = stale(conn, model)
    for note in sync(conn, model, tables, extra):
        log.warning(note)
    sortindex.create_all(conn, model)


def drop(conn: Connection, table: str) -> None:
    """Drop the search index of a table that is dropped (SQLite: its FTS table; PostgreSQL's
    indexes and columns go with their table)."""
    if conn.dialect.name == "sqlite":
        _drop(conn, fts_name(table), "")


def _drop(conn: Connection, name: str, ddl: str) -> None:
    """Drop the index object `name` (`ddl`: its definition, when there is one)."""
    if conn.dialect.name == "sqlite":
        kind = next((k for k in ("TRIGGER", "INDEX") if ddl.startswith(f"CREATE {k}")),
                    "TABLE")
        conn.exec_driver_sql(f"DROP {kind} IF EXISTS {_q(name)}")
    elif "." in name:  # a folded column, `<table>.<column>`
        table, column = name.split(".", 1)
        conn.exec_driver_sql(f"ALTER TABLE IF EXISTS {_q(table)} DROP COLUMN IF EXISTS "
                             f"{_q(column)}")
    elif name.endswith(SIZES_SUFFIX):
        conn.exec_driver_sql(f"DROP STATISTICS IF EXISTS {_q(name)}")
    else:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {_q(name)}")


def ensure_trgm(conn: Connection, notes: list[str]) -> str | None:
    """The schema of pg_trgm, creating the extension if need be; None (and a note) when it
    cannot be: searches then read the whole table."""
    schema = trgm_schema(conn)
    if schema is not None:
        return schema
    # in `public` when there is one: an extension lives in one schema of the database, and
    # goes when that schema is dropped
    public = conn.execute(sa.text(
        "SELECT 1 FROM pg_namespace WHERE nspname = 'public'")).scalar()
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm"
                                 + (" SCHEMA public" if public else ""))
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        notes.append(f"search index: the pg_trgm extension could not be created ({reason}); "
                     "quick search works without it but reads the whole table — install "
                     "PostgreSQL's contrib package or run CREATE EXTENSION pg_trgm as a "
                     "superuser, then crmforge migrate")
        return None
    return trgm_schema(conn)
