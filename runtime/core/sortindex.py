"""The list indexes in each reader's alphabet (PostgreSQL; docs/languages.md#sorting).

A list sorts a text field in the ICU collation of the reader's language (`en-x-icu`,
`es-x-icu`, `zh-x-icu`: read/collation.py), and an index built in the database's default
collation (core/schema.py's `ix_<table>_<sort field>` and `(filter, sort…, id)`) cannot give
rows in that order: every page would read and sort the whole table. So beside those, for each
language of the app whose collation the server has, each list sort field of a text type gets
`ix_coll_<table>_<field>_<language>` on `(field COLLATE "<language>-x-icu", id)`, and each
list filter composite whose sort part has one gets `(filter, sort… COLLATE …, id)`: the first
page, and every next or previous one, is read from the index in order.

What the indexes should be is data (`wanted`); what they are comes from the database
(`present`); `crmforge migrate` plans the difference with the search index step
(runtime/process/migrate/compare.py) and `sync` makes it. `Schema.create_all` builds them
(through `searchindex.create_all`). SQLite has no such collations (lists there sort by code
point, which the plain indexes serve): nothing to do.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from builder.model import AppModel, Entity
from runtime.core.phones import MAX_NAME

PREFIX = "ix_coll_"
COLLATED_TYPES = frozenset({"text", "longtext", "email", "url"})  # sorted in the collation
LANGUAGES = ("en", "es", "zh")  # the languages the app speaks (read/accounts.py LANGUAGES)
_UNINDEXED = frozenset({"links", "multichoice", "longtext", "richtext"})  # as core/schema.py
_AVAILABLE: weakref.WeakKeyDictionary[Engine, frozenset[str]] = weakref.WeakKeyDictionary()


def collation_name(language: str | None) -> str:
    """The ICU collation of `language` ("es", "zh-Hans", "en_GB"; None: English)."""
    base = (language or "en").replace("_", "-").split("-")[0].lower()
    return f"{base}-x-icu"


def available(conn: Connection) -> frozenset[str]:
    """The ICU collations the PostgreSQL server has (read once per engine)."""
    engine = conn.engine
    if engine not in _AVAILABLE:
        _AVAILABLE[engine] = frozenset(conn.execute(sa.text(
            "SELECT collname FROM pg_collation WHERE collname LIKE '%-x-icu'")).scalars())
    return _AVAILABLE[engine]


def index_name(table: str, columns: list[str], language: str) -> str:
    """`ix_coll_<table>_<columns>_<language>`, within PostgreSQL's 63 characters (a longer one
    ends in a digest of the whole, so two long names stay apart)."""
    name = f"{PREFIX}{table}_{'_'.join(columns)}_{language}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[:MAX_NAME - 9]}_{digest}"


def _collated(ent: Entity, name: str) -> bool:
    field = ent.fields.get(name)
    return field is not None and field.type in COLLATED_TYPES and field.type not in _UNINDEXED


def keys(ent: Entity) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(plain leading columns, sort columns) of each list index of `ent` that needs a collated
    twin: `((), (field,))` for a text sort field, `((filter,), sort…)` for a filter composite
    (core/schema.py) whose sort part has one; `id` ends every index."""
    view = ent.views.list
    names = list(dict.fromkeys(s.lstrip("-+") for s in view.sort))
    found: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
        ((), (n,)) for n in names if _collated(ent, n)]
    sort = [n for n in names if _indexable(ent, n)]  # the composites' sort part, as schema's
    if any(_collated(ent, n) for n in sort):
        part = tuple(n for n in sort if n != "id")
        found += [((f,), part) for f in dict.fromkeys(view.filters)
                  if _indexable(ent, f) and f not in sort]
    return found


def _indexable(ent: Entity, name: str) -> bool:
    field = ent.fields.get(name)
    return field is not None and not field.unique and field.type not in _UNINDEXED


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def wanted(model: AppModel, collations: frozenset[str]) -> dict[str, tuple[str, str]]:
    """{index name: (table, its DDL)} of every collated list index of `model`, for the
    languages whose collation is in `collations`."""
    result: dict[str, tuple[str, str]] = {}
    languages = [(lang, name) for lang in LANGUAGES
                 if (name := collation_name(lang)) in collations]
    for ent in model.entities.values():
        for plain, sort in keys(ent):
            for lang, coll in languages:
                parts = [_q(c) for c in plain]
                parts += [f"{_q(c)} COLLATE {_q(coll)}" if _collated(ent, c) else _q(c)
                          for c in sort]
                name = index_name(ent.table, [*plain, *sort], lang)
                result[name] = (ent.table, f"CREATE INDEX {_q(name)} ON {_q(ent.table)} "
                                           f"({', '.join([*parts, _q('id')])})")
    return result


def present(conn: Connection) -> dict[str, tuple[str, str]]:
    """{index name: (table, its definition as PostgreSQL keeps it)} of the collated list
    indexes."""
    if conn.dialect.name != "postgresql":
        return {}
    rows = conn.execute(sa.text(
        "SELECT indexname, tablename, indexdef FROM pg_indexes "
        "WHERE schemaname = current_schema() AND indexname LIKE :prefix"),
        {"prefix": PREFIX.replace("_", "\\_") + "%"})
    return {name: (table, ddl) for name, table, ddl in rows}


_TARGET = re.compile(r"\((.+)\)$")


def _target(ddl: str) -> str | None:
    """What an index covers, quotes and spaces aside: `last_nameCOLLATEen-x-icu,id`."""
    match = _TARGET.search(ddl)
    return re.sub(r'[\s"]', "", match.group(1)) if match else None


def stale(conn: Connection, model: AppModel) -> tuple[dict[str, str], dict[str, str]]:
    """({index: its table} of the indexes missing or different, and of those no list wants
    any more); nothing on SQLite."""
    if conn.dialect.name != "postgresql":
        return {}, {}
    want = wanted(model, available(conn))
    have = present(conn)
    build = {name: table for name, (table, ddl) in want.items()
             if name not in have or _target(have[name][1]) != _target(ddl)}
    return build, {name: table for name, (table, _) in have.items() if name not in want}


def sync(conn: Connection, model: AppModel, build: Iterable[str], extra: Iterable[str]
         ) -> None:
    """Drop the indexes in `extra`, (re)build those in `build` over the rows already there."""
    if conn.dialect.name != "postgresql":
        return
    want = wanted(model, available(conn))
    for name in sorted({*extra, *build}):
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {_q(name)}")
    for name in sorted(build):
        conn.exec_driver_sql(want[name][1])


def drop_column(conn: Connection, table: str, column: str) -> None:
    """Drop the collated indexes over one column (PostgreSQL) before its type changes: a
    collation fits text only. The search index step of the same plan makes what is wanted."""
    if conn.dialect.name != "postgresql":
        return
    names = conn.execute(sa.text(
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_class t ON t.oid = x.indrelid "
        "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(x.indkey) "
        "WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = :table "
        "AND a.attname = :column AND i.relname LIKE :prefix"),
        {"table": table, "column": column, "prefix": PREFIX.replace("_", "\\_") + "%"})
    for name in names.scalars().all():
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {_q(name)}")


def create_all(conn: Connection, model: AppModel) -> None:
    """Build every collated list index (new databases; `migrate` keeps them current)."""
    build, extra = stale(conn, model)
    sync(conn, model, build, extra)
