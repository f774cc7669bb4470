"""Template filters that write values in the reader's language (docs/languages.md): `when` (a
UTC datetime in the instance's time zone), `number`, `monthday` and `weekday_names()` for the
calendar. The words themselves come from Babel through `runtime.read.titles`. And `typed`:
numbers and dates typed in the reader's locale, read as ISO for the write path; `translate`
for words that arrive as data."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from babel.dates import format_skeleton, get_day_names, parse_date
from babel.numbers import NumberFormatError, parse_decimal
from flask_babel import gettext

from runtime.http.web.layout import inst, language
from runtime.read.titles import date_text, locale_of, number_text, zone_of


def when(value: datetime | None) -> str:
    """A stored (naive UTC) datetime as the reader writes it, in the instance's zone."""
    return "" if value is None else date_text(value, language(), zone_of(inst()))


def number(value: Any) -> str:
    return number_text(value, language())


def monthday(value: date) -> str:
    """"December 4", "12月4日", "4 de diciembre"."""
    return format_skeleton("MMMMd", value, locale=locale_of(language()))


def weekday_names() -> list[str]:
    """Monday to Sunday, abbreviated: "Mon", "周一", "lun"."""
    names = get_day_names("abbreviated", locale=locale_of(language()))
    return [names[day] for day in range(7)]


def translate(text: Any) -> str:
    """Text that reaches a template as data (a field message, a status) in the reader's
    language when the catalogs hold it. Not `_()`: Jinja formats what `_()` returns with `%`,
    which a message such as "at most 20%" would break."""
    return gettext(str(text)) if text not in (None, "") else ""


def register(env: Any) -> None:
    env.filters.update(when=when, number=number, monthday=monthday, translate=translate)
    env.globals["weekday_names"] = weekday_names


# -- what people type ------------------------------------------------------------------------

ISO_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
NUMBER_TYPES = frozenset({"integer", "decimal", "money", "percent"})


def typed(field_type: str, text: Any) -> Any:
    """A form value as the write path reads it: a number or date typed in the reader's
    locale ("1.234,56", "4/12/2026" in Spanish) becomes its ISO text; ISO input, and text
    neither reads as, pass through unchanged (the write path says what is wrong)."""
    if not isinstance(text, str) or not text.strip():
        return text
    raw = text.strip()
    locale = locale_of(language())
    try:
        if field_type in NUMBER_TYPES and not ISO_NUMBER.fullmatch(raw):
            return format(parse_decimal(raw.rstrip("%").strip(), locale, strict=True), "f")
        if field_type == "date" and not ISO_DATE.fullmatch(raw):
            return parse_date(raw, locale).isoformat()
    except (NumberFormatError, ValueError, IndexError):
        return text
    return text
