"""The field type registry, builder half: what each field type accepts as a value.

One entry per type: its expression type and a `coerce` that turns input (JSON, form text, CSV
text, YAML literal) into the canonical Python value or raises `ValueError` with a message a
person can act on. The runtime adds column types, widgets and formatters to the same names
(`runtime/fieldtypes.py`); adding a type is adding one entry here and one there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Context, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from .expressions import FIELD_TYPES

if TYPE_CHECKING:
    from .model import Field

_EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{3,30}$")
_URL = re.compile(r"^(https?|mailto|tel):\S+$", re.IGNORECASE)
MAX_TEXT = 100_000  # longtext/richtext characters
DEFAULT_MAX_LENGTH = 255
MAX_INTEGER = 2**63 - 1  # a 64-bit signed column: larger values overflow the database


def _text(value: Any, field: Field) -> str:
    if isinstance(value, bool) or isinstance(value, dict | list):
        raise ValueError("must be text")
    text = str(value) if isinstance(value, int | float | Decimal) else value
    if not isinstance(text, str):
        raise ValueError("must be text")
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


def coerce_text(value: Any, field: Field) -> str:
    text = _text(value, field).strip()
    if "\n" in text or "\r" in text:
        raise ValueError("must be on one line")
    limit = field.max_length or DEFAULT_MAX_LENGTH
    if len(text) > limit:
        raise ValueError(f"must be at most {limit} characters (it has {len(text)})")
    if field.pattern and not re.fullmatch(field.pattern, text):
        raise ValueError(f"does not have the expected form ({field.pattern})")
    return text


def coerce_longtext(value: Any, field: Field) -> str:
    text = _text(value, field)
    if len(text) > MAX_TEXT:
        raise ValueError(f"must be at most {MAX_TEXT:,} characters")
    return text


def _number_text(value: Any) -> str:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, str):
        return value.strip().replace(",", "").replace("_", "")
    raise ValueError("must be a number")


def coerce_integer(value: Any, field: Field) -> int:
    text = _number_text(value)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError("must be a whole number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise ValueError("must be a whole number")
    if number and number.adjusted() > 18:  # checked before int(): 1e999999 is a huge int
        raise ValueError(f"is too large (at most {MAX_INTEGER:,})")
    result = int(number)
    if abs(result) > MAX_INTEGER:
        raise ValueError(f"is too large (at most {MAX_INTEGER:,})")
    return result


def coerce_decimal(value: Any, field: Field) -> Decimal:
    scale = field.scale if field.scale is not None else (2 if field.type == "money" else 6)
    precision = field.precision or 18
    if value.__class__ is Decimal and value.is_finite() and value.as_tuple().exponent == -scale \
            and (not value or value.adjusted() < precision - scale):
        return value  # already what the steps below make of it (a formula's result, say)
    text = _number_text(value)
    if isinstance(value, str):
        text = text.removesuffix("%").strip()
        for symbol in ("$", "€", "£", "¥"):
            text = text.replace(symbol, "")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not number.is_finite():
        raise ValueError("must be a finite number")
    too_large = ValueError(f"is too large (at most {precision - scale} digits before the "
                           "decimal point)")
    # the magnitude first: quantizing 1e27 or 1e999999 would exceed the context's precision
    if number and number.adjusted() >= precision - scale:
        raise too_large
    number = number.quantize(Decimal(1).scaleb(-scale),
                             context=Context(prec=precision + 1))
    if abs(number) >= Decimal(10) ** (precision - scale):  # rounded up to the next power
        raise too_large
    return number


_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f", ""}


def coerce_boolean(value: Any, field: Field) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("must be true or false")


def coerce_date(value: Any, field: Field) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise ValueError("must be a date like 2026-03-31")


def coerce_datetime(value: Any, field: Field) -> datetime:
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            result = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be a date and time like 2026-03-31T14:30") from None
    else:
        raise ValueError("must be a date and time like 2026-03-31T14:30")
    if result.tzinfo is not None:
        result = result.astimezone(UTC).replace(tzinfo=None)
    return result.replace(microsecond=0)


def coerce_choice(value: Any, field: Field) -> str:
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) \
        else None
    if text is not None and text not in field.option_values:
        text = _option_named(field, text)
    if text is None:
        # Messages are read by people: options by their labels, which are accepted too.
        shown = ", ".join(o.label.get() for o in field.options[:12])
        raise ValueError(f"must be one of: {shown}")
    return text


def _option_named(field: Field, text: str) -> str | None:
    """The code of the option whose code or label (in any language) is `text`, ignoring
    case: people type "Hot" where the stored code is `hot`."""
    wanted = text.casefold()
    for option in field.options:
        if wanted == option.value.casefold() or any(
                wanted == label.casefold() for _, label in option.label.values):
            return option.value
    return None


def coerce_multichoice(value: Any, field: Field) -> list[str]:
    if isinstance(value, str):
        value = [v for v in (p.strip() for p in value.split(",")) if v]
    if not isinstance(value, list | tuple):
        raise ValueError("must be a list of choices")
    result = []
    for item in value:
        choice = coerce_choice(item, field)
        if choice not in result:
            result.append(choice)
    return result


def coerce_email(value: Any, field: Field) -> str:
    text = coerce_text(value, field).lower()
    if not _EMAIL.match(text):
        raise ValueError("must be an e-mail address like anna@example.com")
    return text


def coerce_phone(value: Any, field: Field) -> str:
    text = coerce_text(value, field)
    if not _PHONE.match(text) or sum(c.isdigit() for c in text) < 3:
        raise ValueError("must be a phone number like +44 20 7946 0958")
    return text


def phone_digits(text: str | None) -> str:
    """The digits of a phone number: what search and duplicate rules compare."""
    return "".join(c for c in text or "" if c.isdigit())


def coerce_url(value: Any, field: Field) -> str:
    text = coerce_text(value, field)
    if not _URL.match(text):
        if re.match(r"^[\w-]+(\.[\w-]+)+(/\S*)?$", text):
            return "https://" + text
        raise ValueError("must be a web address starting with https://")
    return text


def coerce_link(value: Any, field: Field) -> int:
    if isinstance(value, dict) and "id" in value:
        value = value["id"]
    try:
        number = coerce_integer(value, field)
    except ValueError:
        raise ValueError(f"must be the id of a {field.to} record") from None
    if number <= 0:
        raise ValueError(f"must be the id of a {field.to} record")
    return number


def coerce_links(value: Any, field: Field) -> list[int]:
    if isinstance(value, str):
        value = [v for v in value.replace(";", ",").split(",") if v.strip()]
    if not isinstance(value, list | tuple):
        raise ValueError(f"must be a list of {field.to} ids")
    return sorted({coerce_link(item, field) for item in value})  # a set: ids in order


def coerce_file(value: Any, field: Field) -> str:
    return coerce_text(value, field)


@dataclass(frozen=True)
class FieldType:
    name: str
    coerce: Callable[[Any, Field], Any]
    ordered: bool  # supports min/max, <, > and range filters

    @property
    def expression_type(self) -> str:
        return FIELD_TYPES[self.name]


REGISTRY: dict[str, FieldType] = {t.name: t for t in [
    FieldType("text", coerce_text, False),
    FieldType("longtext", coerce_longtext, False),
    FieldType("richtext", coerce_longtext, False),
    FieldType("integer", coerce_integer, True),
    FieldType("decimal", coerce_decimal, True),
    FieldType("money", coerce_decimal, True),
    FieldType("percent", coerce_decimal, True),
    FieldType("boolean", coerce_boolean, False),
    FieldType("date", coerce_date, True),
    FieldType("datetime", coerce_datetime, True),
    FieldType("choice", coerce_choice, False),
    FieldType("multichoice", coerce_multichoice, False),
    FieldType("email", coerce_email, False),
    FieldType("phone", coerce_phone, False),
    FieldType("url", coerce_url, False),
    FieldType("link", coerce_link, False),
    FieldType("links", coerce_links, False),
    FieldType("autonumber", coerce_text, False),
    FieldType("file", coerce_file, False),
    FieldType("image", coerce_file, False),
]}


def coerce(field: Field, value: Any) -> Any:
    """The canonical value of `value` for `field`; None for empty; ValueError when invalid."""
    if value is None or (isinstance(value, str) and not value.strip()
                         and field.type not in ("longtext", "richtext")):
        return [] if field.type in ("multichoice", "links") else None
    return REGISTRY[field.type].coerce(value, field)
