"""The data of a list page, built once for every renderer (table, kanban, calendar, CSV).

The list's address is its state, in the API's own syntax: `?status=pending&amount__gte=100
&q=anna&sort=-amount&cursor=...`, so a list can be bookmarked, saved as a view, exported, or
replayed against `/api/v1/<entity>`.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from werkzeug.datastructures import MultiDict

from builder.model import Entity, Field
from runtime.core.errors import BadRequest
from runtime.http.web.dashboards import list_summary
from runtime.http.web.layout import actor, entity_label, field_label, hidden_fields, inst, language
from runtime.http.web.widgets import WIDGETS, display
from runtime.read.permissions import native
from runtime.write import records

RESERVED = {"q", "sort", "cursor", "view", "month", "saved", "_", "limit"}
OPERATORS = ("ne", "gt", "gte", "lt", "lte", "in", "contains", "isnull")
COUNT_CAP = 10_000


@dataclass
class Filter:
    """One filter control above the list."""

    field: Field
    kind: str  # choice | boolean | link | range | text
    label: str
    values: dict[str, str] = field(default_factory=dict)  # input name -> current value
    link_title: str = ""

    @property
    def active(self) -> bool:
        return any(self.values.values())


@dataclass
class Column:
    field: Field
    label: str
    sort: str | None  # "asc" / "desc" when the list is sorted by it
    numeric: bool


@dataclass
class ListData:
    entity: Entity
    columns: list[Column]
    rows: list[dict[str, Any]]
    titles: dict[str, dict[Any, str]]
    row_titles: dict[Any, str]
    filters: list[Filter]
    active_filters: dict[str, str]
    q: str
    sort: list[str]
    next_cursor: str | None
    prev_cursor: str | None
    count: int
    exact: bool
    errors: list[str] = field(default_factory=list)
    summary: list[Any] = field(default_factory=list)  # the view's report: dashboards.Point

    @property
    def count_text(self) -> str:
        return f"{self.count:,}" if self.exact else f"{self.count:,}+"


def split_key(entity: Entity, key: str) -> tuple[str, str | None]:
    if key in entity.fields or "__" not in key:
        return key, None
    name, op = key.rsplit("__", 1)
    return name, op


def filter_args(entity: Entity, args: MultiDict) -> tuple[dict[str, str], list[str]]:
    """The `records.query` filters in `args` (API syntax), and messages for keys that are not
    filters. Link filters typed without picking (`buyer__q`) are resolved by title."""
    filters: dict[str, str] = {}
    errors: list[str] = []
    hidden = hidden_fields(entity.name)
    for key in args:
        if key in RESERVED or key.endswith(("__q", "__shown")) or key.startswith("_"):
            continue
        value = args.get(key, "")
        if value == "":
            continue
        name, op = split_key(entity, key)
        if name not in entity.fields or name in hidden or (op and op not in OPERATORS):
            errors.append(f"'{key}' is not a filter of this list; it was ignored.")
            continue
        filters[key] = value
    for f in entity.fields.values():
        typed = (args.get(f.name + "__q") or "").strip()
        if f.type == "link" and typed and f.name not in filters and \
                typed != (args.get(f.name + "__shown") or "").strip():
            match = resolve_title(f, typed)
            if match is None:
                errors.append(f"No {f.to} matches “{typed}”; pick one from the list.")
            else:
                filters[f.name] = str(match)
    return filters, errors


def resolve_title(f: Field, text: str) -> int | None:
    """The one record of `f.to` whose quick search finds `text`; None for none or several."""
    if not f.to or f.to not in inst().model.entities:
        return None
    page = records.query(inst(), actor(), f.to, filters={}, q=text, sort=[], limit=2,
                         cursor=None)
    rows = list(page.rows)
    return rows[0]["id"] if len(rows) == 1 else None


def sort_of(entity: Entity, args: MultiDict) -> list[str]:
    raw = args.get("sort") or ""
    keys = [k for k in (p.strip() for p in raw.split(",")) if k]
    hidden = hidden_fields(entity.name)
    keys = [k for k in keys if k.lstrip("-") in entity.fields and k.lstrip("-") not in hidden]
    return keys or list(entity.views.list.sort)


def visible_columns(entity: Entity) -> list[Field]:
    hidden = hidden_fields(entity.name)
    names = [n for n in entity.views.list.columns if n in entity.fields and n not in hidden]
    return [entity.fields[n] for n in names]


def natives(entity: Entity, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records as JSON (what `records` answers) back to Python values for formatting."""

    return [native(entity, row) for row in rows]


def link_titles(entity: Entity, rows: list[dict[str, Any]]) -> dict[str, dict[Any, str]]:
    """{link field: {id: title}} for every link on these rows, in one query per target;
    records the user may not read have no title (they show as "#id")."""
    if not rows:
        return {}
    instance = inst()
    with instance.engine.connect() as conn:
        titles = records.link_titles(instance, conn, entity.name, rows, actor=actor())
    return {name: dict(values) for name, values in (titles or {}).items()}


def row_titles(entity: Entity, rows: Iterable[dict[str, Any]],
               titles: dict[str, dict[Any, str]] | None = None) -> dict[Any, str]:
    instance = inst()
    result = {}
    for row in rows:
        # A title template is filled with values as people read them ("415,000.00").
        text = fill(entity.title, entity, row, titles or {}) if entity.title else \
            records.title(instance, entity.name, row, links=titles)
        if not text or text == str(row["id"]) or text == f"#{row['id']}":
            text = f"{entity_label(entity)} #{row['id']}"
        result[row["id"]] = text
    return result


def record_title(entity: Entity, record: dict[str, Any]) -> str:
    """One record's title, with the titles of the records it links to."""
    return row_titles(entity, [record], link_titles(entity, [record]))[record["id"]]


def build_filters(entity: Entity, args: MultiDict) -> list[Filter]:
    hidden = hidden_fields(entity.name)
    result = []
    for name in entity.views.list.filters:
        f = entity.fields.get(name)
        if f is None or name in hidden:
            continue
        kind = WIDGETS[f.type].filter
        if kind is None:
            continue
        if kind == "range":
            keys = [f"{name}__gte", f"{name}__lte"]
        elif kind == "text":
            keys = [f"{name}__contains"]
        elif kind == "choice" and f.type == "multichoice":
            keys = [f"{name}__contains"]
        else:
            keys = [name]
        values = {k: args.get(k, "") for k in keys}
        current = Filter(f, kind, field_label(entity, name), values)
        if kind == "link":
            current.values[name + "__q"] = args.get(name + "__q", "")
            if values[name].isdigit() and f.to in inst().model.entities:
                current.link_title = title_of(f.to, int(values[name])) or ""
        result.append(current)
    return result


def title_of(entity: str, record_id: int) -> str | None:
    try:
        record = records.get(inst(), actor(), entity, record_id)
    except Exception:  # noqa: BLE001 - a missing or unreadable record has no title to show
        return None
    return record_title(inst().model.entity(entity), record)


def build(entity: Entity, args: MultiDict, *, limit: int | None = None) -> ListData:
    """The rows, columns, filters and paging of one list page."""
    filters, errors = filter_args(entity, args)
    sort = sort_of(entity, args)
    q = (args.get("q") or "").strip()
    size = limit or entity.views.list.page_size
    instance, who = inst(), actor()
    try:
        page = records.query(instance, who, entity.name, filters=filters, q=q or None,
                             sort=sort, limit=size, cursor=args.get("cursor") or None)
        count, exact = records.count(instance, who, entity.name, filters=filters,
                                     q=q or None, cap=COUNT_CAP)
    except BadRequest as exc:
        errors.append(exc.message)
        filters, q = {}, ""
        page = records.query(instance, who, entity.name, filters={}, q=None, sort=sort,
                             limit=size, cursor=None)
        count, exact = records.count(instance, who, entity.name, filters={}, q=None,
                                     cap=COUNT_CAP)
    rows = natives(entity, page.rows)
    sorted_by = {k.lstrip("-"): ("desc" if k.startswith("-") else "asc") for k in sort[:1]}
    columns = [Column(f, field_label(entity, f.name), sorted_by.get(f.name),
                      WIDGETS[f.type].numeric) for f in visible_columns(entity)]
    titles = link_titles(entity, rows)

    summary = list_summary(instance, who, entity, filters, q or None, language())
    return ListData(entity, columns, rows, titles, row_titles(entity, rows, titles),
                    build_filters(entity, args), filters, q, sort, page.next_cursor,
                    page.prev_cursor, count, exact, errors, summary)


def cell(data: ListData, row: dict[str, Any], column: Column) -> Any:
    return display(row.get(column.field.name), column.field, data.titles)


# -- calendar ---------------------------------------------------------------------------------

@dataclass
class CalendarDay:
    day: date
    in_month: bool
    today: bool
    events: list[tuple[int, str, str]]  # (id, title, time of day or "")


def fill(template: str, entity: Entity, row: dict[str, Any],
         links: dict[str, dict[Any, str]]) -> str:
    """A `{field}` template with the row's values as people read them (links by title)."""
    def value(match: re.Match) -> str:
        name = match.group(1)
        f = entity.fields.get(name)
        if f is None or row.get(name) is None:
            return ""
        return str(display(row.get(name), f, links).striptags())
    return re.sub(r"\{(\w+)\}", value, template).strip()


def month_of(args: MultiDict, today: date) -> date:
    raw = args.get("month") or ""
    try:
        year, month = (int(p) for p in raw.split("-")[:2])
        return date(year, month, 1)
    except ValueError:
        return today.replace(day=1)


def month_grid(first: date, today: date) -> list[date]:
    """Whole weeks, Monday first, covering the month of `first`."""
    start = first - timedelta(days=first.weekday())
    days_in = calendar.monthrange(first.year, first.month)[1]
    last = first.replace(day=days_in)
    end = last + timedelta(days=6 - last.weekday())
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def calendar_days(entity: Entity, args: MultiDict, date_field: str,
                  limit: int = 1000) -> tuple[date, list[CalendarDay]]:
    today = inst().today()
    first = month_of(args, today)
    grid = month_grid(first, today)
    filters, _ = filter_args(entity, args)
    f = entity.fields[date_field]
    low, high = grid[0].isoformat(), grid[-1].isoformat()
    if f.type == "datetime":
        high = (grid[-1] + timedelta(days=1)).isoformat()
        filters.update({f"{date_field}__gte": low, f"{date_field}__lt": high})
    else:
        filters.update({f"{date_field}__gte": low, f"{date_field}__lte": high})
    page = records.query(inst(), actor(), entity.name, filters=filters, q=None,
                         sort=[date_field], limit=limit, cursor=None)
    rows = natives(entity, page.rows)
    by_day: dict[date, list[tuple[int, str]]] = {}
    links = link_titles(entity, rows)
    titles = row_titles(entity, rows, links)
    template = entity.views.calendar.title if entity.views.calendar else None
    if template:
        titles = {row["id"]: fill(template, entity, row, links) or titles[row["id"]]
                  for row in rows}
    times = {row["id"]: f"{row[date_field]:%H:%M}" for row in rows
             if isinstance(row.get(date_field), datetime)}
    for row in rows:
        value = row.get(date_field)
        if value is None:
            continue
        if isinstance(value, str):
            value = date.fromisoformat(value[:10])
        day = value.date() if hasattr(value, "date") and callable(value.date) else value
        by_day.setdefault(day, []).append((row["id"], titles[row["id"]],
                                           times.get(row["id"], "")))
    days = [CalendarDay(d, d.month == first.month, d == today, by_day.get(d, [])) for d in grid]
    return first, days
