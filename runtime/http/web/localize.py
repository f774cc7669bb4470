"""Template filters that write values in the reader's language (docs/languages.md): `when` (a
UTC datetime in the reader's time zone), `number`, `monthday` and `weekday_names()` for the
calendar. The words themselves come from Babel through `runtime.read.titles`. And `typed`:
numbers and dates typed in the reader's locale, read as ISO for the write path, and times
typed in the reader's time zone, given its offset (the write path stores UTC); `translate`
for words that arrive as data."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from babel.dates import format_skeleton, get_day_names, parse_date
from babel.numbers import NumberFormatError, parse_decimal
from flask_babel import gettext

from runtime.http.auth import current_actor
from runtime.http.web.layout import inst, language
from runtime.read.titles import date_text, locale_of, number_text, zone_names, zone_of


def zone() -> tzinfo:
    """The reader's time zone: their own, else the instance's (`titles.zone_of`)."""
    return zone_of(inst(), current_actor())


def when(value: datetime | None) -> str:
    """A stored (naive UTC) datetime as the reader writes it, in the reader's zone."""
    return "" if value is None else date_text(value, language(), zone())


def local_input(value: datetime | str) -> str:
    """A datetime as a `datetime-local` input shows it: in the reader's zone, without an
    offset ("2026-03-31T22:30"). A stored value is naive UTC; a posted one (a form shown
    again) carries the offset `typed` gave it, or none (then it is shown as it came)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return value
        if value.tzinfo is None:
            return value.strftime("%Y-%m-%dT%H:%M")
    return value.replace(tzinfo=value.tzinfo or UTC).astimezone(zone()).strftime(
        "%Y-%m-%dT%H:%M")


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
    env.globals.update(weekday_names=weekday_names, time_zones=zone_names,
                       reader_zone=lambda: str(zone()))


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
        if field_type == "datetime":
            return _with_offset(raw)
    except (NumberFormatError, ValueError, IndexError):
        return text
    return text


def _with_offset(raw: str) -> str:
    """An ISO date and time without an offset (what a `datetime-local` input posts) is the
    reader's local time: "2026-03-31T14:30" in Asia/Shanghai -> "2026-03-31T14:30:00+08:00".
    One with an offset (or `Z`) is kept; ValueError when it is no ISO datetime."""
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone())
    return moment.isoformat()
