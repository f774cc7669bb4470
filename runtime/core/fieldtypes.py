"""The field type registry, runtime half: the column type of each field type
(docs/definition-files.md).

The builder half (`builder/fieldtypes.py`) says what a value may be; this one says how it is
stored. The web layer adds widgets and formatters keyed by the same names.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from builder.fieldtypes import DEFAULT_MAX_LENGTH, REGISTRY
from builder.model import Field

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only


def _numeric(field: Field) -> sa.types.TypeEngine:
    scale = field.scale if field.scale is not None else (2 if field.type == "money" else 6)
    return sa.Numeric(field.precision or 18, scale)


COLUMN_TYPES: dict[str, Callable[[Field], sa.types.TypeEngine]] = {
    "text": lambda f: sa.String(f.max_length or DEFAULT_MAX_LENGTH),
    "longtext": lambda f: sa.Text(),
    "richtext": lambda f: sa.Text(),
    "integer": lambda f: sa.BigInteger(),
    "decimal": _numeric,
    "money": _numeric,
    "percent": _numeric,
    "boolean": lambda f: sa.Boolean(create_constraint=False),
    "date": lambda f: sa.Date(),
    "datetime": lambda f: sa.DateTime(),
    "choice": lambda f: sa.String(max([64, *(len(o.value) for o in f.options)])),
    "multichoice": lambda f: sa.JSON(),
    "email": lambda f: sa.String(254),
    "phone": lambda f: sa.String(40),
    "url": lambda f: sa.String(2048),
    "link": lambda f: Id,
    "autonumber": lambda f: sa.String(64),
    "file": lambda f: sa.String(255),
    "image": lambda f: sa.String(255),
}

assert set(COLUMN_TYPES) | {"links"} == set(REGISTRY), "every field type needs a column type"


def column_type(field: Field) -> sa.types.TypeEngine:
    if field.name == "id":
        return Id
    return COLUMN_TYPES[field.type](field)
