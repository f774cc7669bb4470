"""Field values on the write path: input coercion, defaults, formulas, field rules, and the
JSON shape of a record.

Everything here works on one record held as a dict of Python values (the "native" shape:
`Decimal`, `date`, naive-UTC `datetime`, `list` for `multichoice` and `links`). Nothing here
writes to the database; `records.py` drives these steps inside its transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from builder.diagnostics import did_you_mean
from builder.expressions import (
    EvalContext,
    ExpressionError,
    ValueSlot,
    evaluate,
    evaluate_condition,
    parse_slot,
    render_template,
    slot_value,
)
from builder.fieldtypes import MAX_INTEGER, REGISTRY, coerce
from builder.model import Entity, Field
from runtime.core import caches
from runtime.core.sanitize import sanitize_html

if TYPE_CHECKING:
    from runtime.core.instance import Actor

Errors = dict[str, list[str]]
AUTO_FIELDS = ("id", "created_at", "created_by", "updated_at", "updated_by", "version",
               "last_activity_at")


# -- the JSON shape ---------------------------------------------------------------------------


def json_value(value: Any) -> Any:
    """A native value as JSON: decimals as strings ("1250.00", exact), dates as ISO
    "2026-03-31", datetimes as ISO UTC "2026-03-31T14:30:00Z", lists as lists."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)


def _ident(value: Any) -> Any:
    return value


def _datetime_json(value: datetime) -> str:
    return value.replace(microsecond=0).isoformat() + ("Z" if value.tzinfo is None else "")


# json_value by the exact class of the value: one dict lookup per cell instead of a chain of
# isinstance tests (anything else, subclasses included, goes through json_value)
_CONVERT: dict[type, Callable[[Any], Any]] = {
    str: _ident, int: _ident, bool: _ident, type(None): _ident,
    Decimal: lambda v: format(v, "f"), date: date.isoformat, datetime: _datetime_json,
}


def _plan(entity: Entity, hidden: Iterable[str]) -> tuple[str, ...]:
    """The field names a reader sees, in field order: once per entity and hidden set
    (`caches.JSON_PLANS`)."""
    skip = hidden if isinstance(hidden, frozenset) else frozenset(hidden)
    return caches.JSON_PLANS.get(entity, skip, lambda: tuple(
        name for name in entity.fields if name not in skip))


def to_json(entity: Entity, record: Mapping[str, Any],
            hidden: Iterable[str] = ()) -> dict[str, Any]:
    """A record as a JSON-able dict: every field the reader may see, in field order."""
    convert = _CONVERT.get
    result: dict[str, Any] = {}
    for name in _plan(entity, hidden):
        if name in record:
            value = record[name]
            result[name] = (convert(value.__class__) or json_value)(value)
    return result


# -- input ------------------------------------------------------------------------------------


def as_id(value: Any) -> int | None:
    """`value` as a row id (1 … 2⁶³-1), from an int or its digits; None when it cannot be one
    (the one check of ids that come from outside: addresses, forms, cursors)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 19:
            return None
        value = int(text)
    if not isinstance(value, int) or not 1 <= value <= MAX_INTEGER:
        return None
    return value


def is_empty(value: Any) -> bool:
    """None, blank text or an empty list (asked for every field of every record written)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return value == []


def unknown_field_message(entity: Entity, name: str) -> str:
    hint = did_you_mean(name, [f.name for f in entity.fields.values() if f.editable])
    return (f"is not a field of {entity.label}; remove it" + (f" ({hint})" if hint else ""))


def coerce_value(field: Field, value: Any) -> Any:
    """The stored value of input `value`; ValueError with a message when it cannot be."""
    result = coerce(field, value)
    if isinstance(result, str) and not result.strip() and field.type in ("longtext", "richtext"):
        return None
    if field.type == "richtext" and result is not None:
        result = sanitize_html(result)
    if field.type in FILE_TYPES and result is not None:
        result = attachment_id(result)
    return result


FILE_TYPES = ("file", "image")
_ATTACHMENT_ID = re.compile(r"[0-9]{1,18}")  # below 2**63: a valid key on every database


def attachment_id(text: str) -> str:
    """A `file` / `image` value: the id of an attachment, as text ("17"). Whether that
    attachment belongs to the record is for the write path to check."""
    if not _ATTACHMENT_ID.fullmatch(text) or int(text) <= 0:
        raise ValueError("must be the id of a file attached to this record; upload the file "
                         "through the form")
    return str(int(text))


def readonly_reason(entity: Entity, field: Field, *, transition: bool = False,
                    system: bool = False) -> str | None:
    """Why nobody may type into `field` (None when they may). `readonly: true` binds users,
    not the `system` (automations, imports, demo data)."""
    if entity.workflow is not None and field.name == entity.workflow.field:
        return None if transition else (
            "changes only through a workflow transition; use one of the record's transitions")
    if field.formula is not None:
        return "is computed by a formula; leave it out"
    if field.rollup is not None:
        return "is summarised from related records; leave it out"
    if field.type == "autonumber":
        return "is numbered automatically; leave it out"
    if field.system and field.name != "owner" and not entity.system:
        return "is set by CRMForge; leave it out"
    if field.name in AUTO_FIELDS:
        return "is set by CRMForge; leave it out"
    if field.readonly and not system:
        return "is read-only; leave it out"
    return None


def same(a: Any, b: Any) -> bool:
    """Whether two stored values are the same (lists compare as sets)."""
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):
        return sorted(map(str, a or [])) == sorted(map(str, b or []))
    if is_empty(a) and is_empty(b):
        return True
    return a == b


# -- defaults and formulas --------------------------------------------------------------------


def apply_defaults(entity: Entity, record: dict[str, Any], missing: Iterable[str],
                   ctx: EvalContext, errors: Errors) -> None:
    """Fill each field in `missing` (not given in the input) from its `default` slot."""
    for name in missing:
        field = entity.fields[name]
        if field.default is None:
            continue
        try:
            value = slot_value(field.default, ctx)
            record[name] = None if value is None else coerce_value(field, _plain(field, value))
        except (ValueError, ExpressionError) as exc:
            errors.setdefault(name, []).append(
                f"its default could not be used ({_reason(exc)}); enter a value")


def compute_formulas(entity: Entity, record: dict[str, Any], ctx: EvalContext,
                     errors: Errors) -> None:
    """Store the value of every formula field; a formula may use another one declared
    before or after it (a second pass settles those: `_formula_passes`)."""
    for formulas in _formula_passes(entity):
        for field in formulas:
            assert field.formula is not None
            try:
                value = evaluate(field.formula, ctx)
                record[field.name] = None if value is None else coerce_value(
                    field, _plain(field, value))
            except (ValueError, ExpressionError, ArithmeticError) as exc:
                record[field.name] = None
                errors.setdefault(field.name, []).append(
                    f"could not be computed ({_reason(exc)}); check the values it uses")


def _formula_passes(entity: Entity) -> tuple[tuple[Field, ...], tuple[Field, ...]]:
    """The formula fields in declaration order, then those the second pass computes again:
    each that uses a formula declared at or after it, or one computed again. The others
    would give the same value again (their inputs are set by then), so it is not asked."""

    def build() -> tuple[tuple[Field, ...], tuple[Field, ...]]:
        formulas = tuple(f for f in entity.fields.values() if f.formula is not None)
        if len(formulas) < 2:
            return formulas, ()
        again: list[Field] = []
        for index, field in enumerate(formulas):
            assert field.formula is not None
            used = {path[0] for path in field.formula.names if len(path) == 1}
            if any(f.name in used for f in (*formulas[index:], *again)):
                again.append(field)
        return formulas, tuple(again)

    return caches.ENTITY_PLANS.get(entity, "formula_passes", build)


def _plain(field: Field, value: Any) -> Any:
    """An evaluator result in a shape `coerce` takes for this field."""
    if isinstance(value, timedelta):
        value = Decimal(value.total_seconds()) / 86400
    if field.type == "integer" and isinstance(value, Decimal):
        return value.to_integral_value(rounding=ROUND_HALF_UP)
    if field.type in ("decimal", "money", "percent") and isinstance(value, int | Decimal):
        scale = field.scale if field.scale is not None else (2 if field.type == "money" else 6)
        return Decimal(value).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    return value


def _reason(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__


# -- field rules ------------------------------------------------------------------------------


# A pure parse of a slot string (no model in it), so a plain lru_cache: see core/caches.py.
@lru_cache(maxsize=512)
def _bound_slot(raw: Any) -> ValueSlot:
    return parse_slot(raw)


def _bound(field: Field, raw: Any, ctx: EvalContext) -> Any:
    """The value of a `min`/`max` (a literal or "=expression") for this record."""
    if raw is None:
        return None
    value = slot_value(_bound_slot(raw), ctx) if isinstance(raw, str) else raw
    if value is None:
        return None
    if isinstance(value, datetime) and field.type == "datetime":
        return value.replace(tzinfo=None)
    return coerce(field, value)


def condition(expr: Any, ctx: EvalContext) -> bool:
    try:
        return evaluate_condition(expr, ctx)
    except ExpressionError:
        return False


def check_fields(entity: Entity, record: Mapping[str, Any], ctx: EvalContext, errors: Errors,
                 *, language: str = "en") -> None:
    """`required` / `required_when` (skipped when `visible_when` or the record's kind hides
    the field), `min`, `max`, and the entity's validations; messages go into `errors`."""
    for field in _checked_fields(entity):
        value = record.get(field.name)
        if is_empty(value):
            # a field the record's kind does not show is not asked for (docs/records.md)
            if (field.required or (field.required_when is not None
                                   and condition(field.required_when, ctx))) \
                    and field.formula is None \
                    and (field.visible_when is None or condition(field.visible_when, ctx)) \
                    and entity.shows(record, field.name):
                errors.setdefault(field.name, []).append("is required; fill it in")
            continue
        if not REGISTRY[field.type].ordered:
            continue
        for key, word in (("min", "at least"), ("max", "at most")):
            raw = getattr(field, key)
            try:
                bound = _bound(field, raw, ctx)
            except (ValueError, ExpressionError):
                continue
            if bound is None:
                continue
            try:
                bad = value < bound if key == "min" else value > bound
            except TypeError:
                continue
            if bad:
                errors.setdefault(field.name, []).append(
                    f"must be {word} {_show(bound)}; enter a value in range")
    for validation in entity.validations:
        if condition(validation.rule, ctx):
            continue
        message = render_template(validation.message.get(language), ctx)
        target = validation.field if validation.field in entity.fields else "_record"
        messages = errors.setdefault(target, [])
        if message not in messages:
            messages.append(message)


def _checked_fields(entity: Entity) -> tuple[Field, ...]:
    """The fields `check_fields` has something to check in: required (always or `when`), or
    of an ordered type with a `min` or `max` — once per entity, not per record."""

    def build() -> tuple[Field, ...]:
        return tuple(
            f for f in entity.fields.values()
            if f.name not in AUTO_FIELDS and f.name != "owner" and f.type != "autonumber"
            and f.rollup is None and (f.required or f.required_when is not None or (
                REGISTRY[f.type].ordered and (f.min is not None or f.max is not None))))

    return caches.ENTITY_PLANS.get(entity, "checked_fields", build)


def _show(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else \
            format(value, "f")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def format_autonumber(fmt: str | None, number: int, today: date) -> str:
    """`OFF-{00000}` and 42 -> `OFF-00042`; `{YYYY}`, `{YY}`, `{MM}` give the date."""
    if not fmt:
        return str(number)
    text = fmt.replace("{YYYY}", f"{today.year:04d}").replace("{YY}", f"{today.year % 100:02d}")
    text = text.replace("{MM}", f"{today.month:02d}")
    text, count = re.subn(r"\{(0+)\}", lambda m: f"{number:0{len(m.group(1))}d}", text)
    return text if count else f"{text}{number}"


def actor_language(actor: Actor | None) -> str:
    return actor.language if actor is not None else "en"
