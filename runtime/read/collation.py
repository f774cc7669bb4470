"""Lists in the reader's alphabetical order (docs/languages.md#sorting).

On PostgreSQL a text sort key is compared with the ICU collation of the reader's language
(`es-x-icu`: "Ángel" beside "Ana", "ñ" after "n"; `zh-x-icu`: Chinese by pinyin) when the
server has it (`pg_collation`, PostgreSQL built with ICU); the ORDER BY and the keyset
comparisons of the next and previous pages use the same collation, so paging stays exact.
ICU collations are deterministic (ties are broken by the bytes), so every row keeps one place.

SQLite has no collations but BINARY (and ASCII-only NOCASE), and one written in Python would
be called for each comparison of a sort, which a large list cannot afford: lists there sort by
code point, as the index serves them ("Zoe" before "ana", accented letters after "z").
"""

from __future__ import annotations

import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from builder.model import Entity

COLLATED_TYPES = frozenset({"text", "longtext", "email", "url"})
_AVAILABLE: weakref.WeakKeyDictionary[Engine, frozenset[str]] = weakref.WeakKeyDictionary()


def for_language(conn: Connection, language: str | None) -> str | None:
    """The collation lists sort text by for readers of `language` ("es", "zh-Hans"), or None
    where the database has none for it (SQLite; PostgreSQL without ICU)."""
    if conn.dialect.name != "postgresql":
        return None
    base = (language or "en").replace("_", "-").split("-")[0].lower()
    name = f"{base}-x-icu"
    return name if name in _icu_collations(conn) else None


def _icu_collations(conn: Connection) -> frozenset[str]:
    engine = conn.engine
    if engine not in _AVAILABLE:
        _AVAILABLE[engine] = frozenset(conn.execute(sa.text(
            "SELECT collname FROM pg_collation WHERE collname LIKE '%-x-icu'")).scalars())
    return _AVAILABLE[engine]


def sort_column(ent: Entity, table: Any, name: str, collation: str | None) -> Any:
    """The column a list sorts `name` by: a text field in `collation` when there is one."""
    column = table.c[name]
    field = ent.fields.get(name)
    if collation is None or field is None or field.type not in COLLATED_TYPES:
        return column
    return column.collate(collation)
