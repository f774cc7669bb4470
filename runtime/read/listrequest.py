"""The state of a list, read once from its address: `?field__op=value&q=&sort=&cursor=&limit=`.

One reader for every list — the API's `GET /api/v1/<entity>` and the web list (its page, htmx
fragment, CSV export, kanban and calendar) — so that one address means the same records
everywhere (after Datasette's `filters.py` and Django's `ChangeList`). `parse_list` turns a
query string into a frozen `ListRequest`: filters as (field, operator, value) triples, the sort,
the quick search, the cursor and the page size, and the `Problem`s it found. Each surface
decides what a problem means: the API answers them as one 400 (`ListRequest.check`), the web
page shows them as warnings and lists without what was wrong.

Filters given to `queries.query` as a mapping (`{"amount__gte": "100"}`) go through the same
`checked_filter`, and sort keys through `sort_key`: there is one reader of a `field__op` key,
its value and a sort key. Nothing here touches the database.

Dates and times without an offset are read in a time zone (docs/languages.md, "Time zones"):
a date given for a datetime field (`created=2026-12-04`, `created__gte=2026-12-01`) is a whole
day from one midnight to the next in the `days` zone — 23, 24 or 25 hours — and a date and time
without an offset (what a `datetime-local` box sends) is a moment in the `times` zone. The web
list reads both in its reader's zone (`parse_list(zone=…)` puts it on each `Filter`); the API
reads a date in the token user's own zone (else UTC) and a time without an offset as UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, NamedTuple

from builder.diagnostics import did_you_mean
from builder.fieldtypes import REGISTRY, coerce
from builder.model import Entity, Field
from runtime.core.errors import BadRequest

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "isnull")  # `field__op`
ORDERED_OPERATORS = ("gt", "gte", "lt", "lte")
TEXT_TYPES = ("text", "longtext", "richtext", "email", "phone", "url", "choice",
              "autonumber", "file", "image")
LIST_TYPES = ("multichoice", "links")  # `__contains` and `=` ask whether the list holds a value
UNSORTABLE = ("links", "multichoice", "longtext", "richtext")
MAX_LIMIT = 500
STATE_KEYS = ("q", "sort", "cursor", "limit")  # the rest of the query string is filters


class Filter(NamedTuple):
    """`field__op=value`; `value` as given (a string from an address)."""

    field: str
    op: str
    value: Any
    zone: tzinfo | None = None  # the zone the reader typed dates and times in (None: the API's)

    @property
    def key(self) -> str:
        return self.field if self.op == "eq" else f"{self.field}__{self.op}"


class Problem(NamedTuple):
    """A part of the query string that cannot be used, and what to do about it."""

    key: str
    message: str
    unknown: bool = False  # the key is no filter this reader may use (vs. a bad value)


@dataclass(frozen=True)
class ListRequest:
    """What a list shows: `sort` is never empty unless the list view has no sort either,
    `limit` is always 1..MAX_LIMIT. The problems' parts are left out of the rest."""

    entity: str
    filters: tuple[Filter, ...] = ()
    sort: tuple[str, ...] = ()
    q: str | None = None
    cursor: str | None = None
    limit: int = 50
    problems: tuple[Problem, ...] = ()

    def filter_map(self) -> dict[str, Any]:
        """The filters as `{"field__op": value}`, for readers of filter mappings."""
        return {f.key: f.value for f in self.filters}

    def check(self) -> ListRequest:
        """This request when it has no problem; else one BadRequest naming all of them."""
        if self.problems:
            raise BadRequest(" ".join(p.message for p in self.problems))
        return self


class Day(NamedTuple):
    """A date given for a datetime field: the moments from `start` up to (not including) `end`,
    naive UTC like the stored values — the reader's two local midnights."""

    start: datetime
    end: datetime


class NotAFilter(BadRequest):
    """A key that names no field, or no operator, that the reader may filter by."""


# -- the query string -------------------------------------------------------------------------

def parse_list(ent: Entity, args: Mapping[str, Any], *, hidden: Collection[str] = frozenset(),
               me: int | None = None, ignore: Callable[[str], bool] | None = None,
               skip_blank: bool = False, zone: tzinfo | None = None) -> ListRequest:
    """The list request in `args` (a werkzeug MultiDict, or a mapping of strings or lists).

    `hidden`: the fields the reader may not see (no filter, no sort); `me`: the reader's user
    id, for `owner=me`; `ignore(key)`: keys the caller keeps for itself. Keys starting with
    `_` are never filters (no field name does): cache busters, `_method`. `skip_blank`: an
    empty value is no filter (a submitted form sends every box). `zone`: the reader's time
    zone, which dates and times without an offset are read in (the web's); None: the API's
    rule (see the module's docstring)."""
    given, problems = _given(args, ignore)
    filters = []
    for key, raw in given.items():
        if key in STATE_KEYS or (skip_blank and raw == ""):
            continue
        try:
            filters.append(checked_filter(ent, key, raw, hidden, me, days=zone or UTC,
                                          times=zone or UTC)[0]._replace(zone=zone))
        except BadRequest as exc:
            problems.append(Problem(key, exc.message, isinstance(exc, NotAFilter)))
    sort = _sort(ent, given.get("sort") or "", hidden, problems)
    limit = _limit(ent, given.get("limit") or "", problems)
    return ListRequest(ent.name, tuple(filters), sort, (given.get("q") or "").strip() or None,
                       (given.get("cursor") or "").strip() or None, limit, tuple(problems))


def _given(args: Mapping[str, Any], ignore: Callable[[str], bool] | None
           ) -> tuple[dict[str, str], list[Problem]]:
    """{key: its value} of the keys that are the list's, and a problem for each key given
    more than once (its first value is used)."""
    given: dict[str, str] = {}
    problems: list[Problem] = []
    for key in args:
        if key.startswith("_") or (ignore is not None and ignore(key)):
            continue
        values = _values(args, key)
        if len(values) > 1:
            problems.append(Problem(key, f"'{key}' is given {len(values)} times; give each "
                                         "parameter once (for several values use "
                                         "field__in=a,b)."))
        if values:
            given[key] = values[0]
    return given, problems


def _values(args: Mapping[str, Any], key: str) -> list[str]:
    getlist = getattr(args, "getlist", None)
    raw = getlist(key) if getlist is not None else args[key]
    items = raw if isinstance(raw, list | tuple) else [raw]
    return ["" if item is None else str(item) for item in items]


def _sort(ent: Entity, raw: str, hidden: Collection[str], problems: list[Problem]
          ) -> tuple[str, ...]:
    items = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            sort_key(ent, item, hidden)
            items.append(item)
        except BadRequest as exc:
            problems.append(Problem("sort", exc.message))
    return tuple(items) or default_sort(ent, hidden)


def _limit(ent: Entity, raw: str, problems: list[Problem]) -> int:
    default = min(ent.views.list.page_size, MAX_LIMIT)
    if raw == "":
        return default
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        problems.append(Problem("limit", f"'limit' must be a whole number from 1 to "
                                         f"{MAX_LIMIT}, not '{raw[:40]}'."))
        return default
    return limit


# -- one filter -------------------------------------------------------------------------------

def split_key(ent: Entity, key: str, hidden: Collection[str]) -> tuple[str, str]:
    """(field, operator) of `field` or `field__op`; NotAFilter for an unknown or hidden field
    (the same answer: a hidden field does not exist for its reader) or operator."""
    name, op = key, "eq"
    head, sep, tail = key.rpartition("__")
    if sep and tail in OPERATORS:
        name, op = head, tail
    elif sep and head in ent.fields and head not in hidden:
        raise NotAFilter(f"Unknown filter operator '__{tail}' in '{key}'; use one of: "
                         + ", ".join("__" + o for o in OPERATORS if o != "eq") + ".")
    if name not in ent.fields or name in hidden:
        hint = did_you_mean(name, [f for f in ent.fields if f not in hidden])
        raise NotAFilter(f"Cannot filter {ent.plural} by '{name}': there is no such field"
                         + (f" ({hint})" if hint else "") + ".")
    return name, op


def checked_filter(ent: Entity, key: str, raw: Any, hidden: Collection[str],
                   me: int | None, *, days: tzinfo = UTC, times: tzinfo = UTC
                   ) -> tuple[Filter, list[Any]]:
    """The filter `key=raw`, and its values as the SQL compares them (`me` resolved, a date
    against a datetime followed by its `Day`, datetimes in naive UTC); a BadRequest that says
    what to fix. `days`: the zone whose midnights bound a date given for a datetime field;
    `times`: the zone of a date and time given without an offset."""
    name, op = split_key(ent, key, hidden)
    field = ent.fields[name]
    if op in ORDERED_OPERATORS and not REGISTRY[field.type].ordered:
        raise BadRequest(f"'{key}': {name} is a {field.type} field and has no order; use "
                         "=, __ne, __in, __contains or __isnull.")
    if op == "contains" and field.type not in (*TEXT_TYPES, *LIST_TYPES):
        raise BadRequest(f"'{key}': __contains works on text and list fields; "
                         f"{name} is a {field.type} field.")
    return Filter(name, op, raw), filter_values(key, field, op, raw, me, days=days, times=times)


def filter_values(key: str, field: Field, op: str, raw: Any, me: int | None, *,
                  days: tzinfo = UTC, times: tzinfo = UTC) -> list[Any]:
    try:
        if op == "isnull":
            text = str(_one(raw)).strip().lower()
            if text not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError("must be true or false")
            values: list[Any] = [text in ("true", "1", "yes")]
        elif op == "in":
            values = [_filter_value(me, field, v, days, times) for v in split_values(raw)]
            if not values:
                raise ValueError("needs at least one value (a comma-separated list)")
        else:
            one = _one(raw)
            values = [_filter_value(me, field, one, days, times) if op != "contains" or
                      field.type in LIST_TYPES else str(one)]
            if field.type == "datetime" and _is_date(one):
                values.append(day_of(date.fromisoformat(one.strip()), days))
    except ValueError as exc:
        raise BadRequest(f"Filter '{key}': the value {str(raw)[:60]!r} {exc}.") from None
    if op != "isnull" and any(v is None for v in values):
        raise BadRequest(f"Filter '{key}' has no value; use {field.name}__isnull=true to find "
                         "empty ones.")
    return values


def split_values(raw: Any) -> list[Any]:
    """The values of an `__in` filter: `a,b` (or a list of them), blanks left out."""
    items = raw if isinstance(raw, list | tuple) else [raw]
    result: list[Any] = []
    for item in items:
        if isinstance(item, str):
            result.extend(part.strip() for part in item.split(",") if part.strip())
        elif item is not None:
            result.append(item)
    return result


def _one(raw: Any) -> Any:
    if isinstance(raw, list | tuple):
        if len(raw) != 1:
            raise ValueError("takes one value; use __in for several")
        return raw[0]
    return raw


def _is_date(raw: Any) -> bool:
    """Whether `raw` is a date alone ("2026-12-04"), not a date and time."""
    return isinstance(raw, str) and len(raw.strip()) == 10


def day_of(day: date, zone: tzinfo) -> Day:
    """The moments of `day` in `zone`, as naive UTC: from its midnight to the next one (a day
    that skips or repeats an hour for daylight saving lasts 23 or 25 hours)."""
    if day == date.max:  # a whole day ends at the next one, which no calendar has
        raise ValueError(f"must be a day before {date.max.isoformat()}")
    return Day(moment(datetime.combine(day, time()), zone),
               moment(datetime.combine(day + timedelta(days=1), time()), zone))


def moment(value: datetime, zone: tzinfo) -> datetime:
    """`value` — naive: a wall-clock time in `zone` — as naive UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError("is too close to the first or last day a calendar has") from None


def _filter_value(me: int | None, field: Field, raw: Any, days: tzinfo = UTC,
                  times: tzinfo = UTC) -> Any:
    if field.type in ("link", "links") and isinstance(raw, str) and raw.strip() == "me" \
            and field.to == "user":
        return me
    if field.type in LIST_TYPES:
        single = Field(field.name, "choice" if field.type == "multichoice" else "link",
                       field.label, field.pack, options=field.options, to=field.to)
        return coerce(single, raw)
    if field.type in ("text", "longtext", "richtext", "autonumber", "file", "image"):
        return str(raw).strip()
    if field.type == "phone":  # compared as a number, in E.164 (read/queries.py)
        return str(raw).strip()
    if field.type == "datetime" and isinstance(raw, str):  # an offset (or Z) is kept
        coerce(field, raw)  # a ValueError that says what a date and time looks like
        given = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        return moment(given.replace(microsecond=0), days if _is_date(raw) else times)
    return coerce(field, raw)


# -- sort -------------------------------------------------------------------------------------

def sort_key(ent: Entity, item: str, hidden: Collection[str]) -> tuple[str, bool]:
    """(field, descending) of `name`, `-name` or `+name`; BadRequest when the reader cannot
    sort by it."""
    name, descending = item.lstrip("-+"), item.startswith("-")
    field = ent.fields.get(name)
    if field is None or name in hidden:
        hint = did_you_mean(name, [f for f in ent.fields if f not in hidden])
        raise BadRequest(f"Cannot sort {ent.plural} by '{name}': there is no such field"
                         + (f" ({hint})" if hint else "") + ".")
    if field.type in UNSORTABLE:
        raise BadRequest(f"Cannot sort by '{name}': {field.type} fields have no order.")
    return name, descending


def default_sort(ent: Entity, hidden: Collection[str]) -> tuple[str, ...]:
    """The list view's sort, without what this reader may not see."""
    return tuple(s for s in ent.views.list.sort if s.lstrip("-+") not in hidden)
