"""The field type registry, JSON half: the JSON Schema of each field type (docs/definition-files.md)
as the API reads and writes it. Adding a field type is adding one entry here (the assert below says
so).

Decimals (`decimal`, `money`, `percent`) are written as exact strings ("1250.00") and accepted
as strings or numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from builder.fieldtypes import DEFAULT_MAX_LENGTH, REGISTRY
from builder.model import Field

Schema = dict[str, Any]
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"


def _text(field: Field, write: bool) -> Schema:
    schema: Schema = {"type": "string", "maxLength": field.max_length or DEFAULT_MAX_LENGTH}
    if field.pattern:
        schema["pattern"] = field.pattern
    return schema


def _long(field: Field, write: bool) -> Schema:
    return {"type": "string"}


def _integer(field: Field, write: bool) -> Schema:
    schema: Schema = {"type": "integer"}
    if _number(field.min):
        schema["minimum"] = field.min
    if _number(field.max):
        schema["maximum"] = field.max
    return schema


def _decimal(field: Field, write: bool) -> Schema:
    if write:
        return {"type": ["string", "number"], "format": "decimal"}
    return {"type": "string", "format": "decimal", "pattern": DECIMAL_PATTERN}


def _choice(field: Field, write: bool) -> Schema:
    return {"type": "string", "enum": list(field.option_values)}


def _multichoice(field: Field, write: bool) -> Schema:
    return {"type": "array", "items": {"type": "string", "enum": list(field.option_values)},
            "uniqueItems": True}


def _link(field: Field, write: bool) -> Schema:
    return {"type": "integer", "minimum": 1, "description": f"id of a {field.to} record"}


def _links(field: Field, write: bool) -> Schema:
    return {"type": "array", "items": {"type": "integer", "minimum": 1}, "uniqueItems": True,
            "description": f"ids of {field.to} records"}


def _fixed(schema: Schema) -> Callable[[Field, bool], Schema]:
    return lambda field, write: dict(schema)


JSON_TYPES: dict[str, Callable[[Field, bool], Schema]] = {
    "text": _text,
    "longtext": _long,
    "richtext": _long,
    "integer": _integer,
    "decimal": _decimal,
    "money": _decimal,
    "percent": _decimal,
    "boolean": _fixed({"type": "boolean"}),
    "date": _fixed({"type": "string", "format": "date"}),
    "datetime": _fixed({"type": "string", "format": "date-time"}),
    "choice": _choice,
    "multichoice": _multichoice,
    "email": _fixed({"type": "string", "format": "email", "maxLength": 254}),
    "phone": _fixed({"type": "string", "maxLength": 40}),
    "url": _fixed({"type": "string", "format": "uri", "maxLength": 2048}),
    "link": _link,
    "links": _links,
    "autonumber": _fixed({"type": "string"}),
    "file": _fixed({"type": "string", "maxLength": 255}),
    "image": _fixed({"type": "string", "maxLength": 255}),
}

assert set(JSON_TYPES) == set(REGISTRY), "every field type needs a JSON schema"

ALWAYS_SET = ("id", "version", "created_at", "updated_at")  # never null in a stored record


def field_schema(field: Field, *, write: bool = False) -> Schema:
    """The JSON Schema of one field's value; null is allowed unless it is always set."""
    schema = JSON_TYPES[field.type](field, write)
    if field.name == "id":
        schema = {"type": "integer", "minimum": 1}
    if field.name not in ALWAYS_SET and schema.get("type") != "array":
        schema = _nullable(schema)
    schema["title"] = field.label.get()
    if field.help is not None:
        schema["description"] = field.help.get()
    if not write and (field.computed or field.system):
        schema["readOnly"] = True
    return schema


def _nullable(schema: Schema) -> Schema:
    kind = schema.get("type")
    if isinstance(kind, str):
        schema["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        schema["type"] = [*kind, "null"]
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    return schema


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
