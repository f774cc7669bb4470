"""Lists in the reader's alphabetical order (docs/languages.md#sorting).

On PostgreSQL a text sort key is compared with the ICU collation of the reader's language
(`es-x-icu`: "Ángel" beside "Ana", "ñ" after "n"; `zh-x-icu`: Chinese by pinyin) when the
server has it (`pg_collation`, PostgreSQL built with ICU); the ORDER BY and the keyset
comparisons of the next and previous pages use the same collation, so paging stays exact.
ICU collations are deterministic (ties are broken by the bytes), so every row keeps one place.
Indexes in each of those collations (core/sortindex.py) serve these pages in order.

SQLite has no collations but BINARY (and ASCII-only NOCASE), and one written in Python would
be called for each comparison of a sort, which a large list cannot afford: lists there sort by
code point, as the index serves them ("Zoe" before "ana", accented letters after "z").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from builder.model import Entity
from runtime.core import sortindex

COLLATED_TYPES = sortindex.COLLATED_TYPES


def for_language(conn: Connection, language: str | None) -> str | None:
    """The collation lists sort text by for readers of `language` ("es", "zh-Hans"), or None
    where the database has none for it (SQLite; PostgreSQL without ICU)."""
    if conn.dialect.name != "postgresql":
        return None
    name = sortindex.collation_name(language)
    return name if name in sortindex.available(conn) else None


def sort_column(ent: Entity, table: Any, name: str, collation: str | None) -> Any:
    """The column a list sorts `name` by: a text field in `collation` when there is one."""
    column = table.c[name]
    field = ent.fields.get(name)
    if collation is None or field is None or field.type not in COLLATED_TYPES:
        return column
    return column.collate(collation)
