"""The data of a list page, built once for every renderer (table, kanban, calendar, CSV).

The list's address is its state, in the API's own syntax: `?status=pending&amount__gte=100
&q=anna&sort=-amount&cursor=...`, so a list can be bookmarked, saved as a view, exported, or
replayed against `/api/v1/<entity>`.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from werkzeug.datastructures import MultiDict

from builder.model import Entity, Field
from runtime.core.errors import BadRequest
from runtime.http.web.layout import actor, field_label, hidden_fields, inst, language
from runtime.http.web.widgets import WIDGETS, display
from runtime.read import listrequest, titles
from runtime.read.dashboards import list_summary
from runtime.read.permissions import native
from runtime.read.queries import as_id
from runtime.write import records

# The page's own state beside the list's (`listrequest.STATE_KEYS`): never filters. `entity`
# and `endpoint` are url_for's own names, so a list address cannot carry them as filters.
WEB_KEYS = frozenset({"view", "month", "saved", "entity", "endpoint"})
PICKER_KEYS = ("__q", "__shown")  # a link picker's typed text and the title it showed
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


def web_key(key: str) -> bool:
    """Whether `key` is the page's own (see WEB_KEYS), never a filter."""
    return key in WEB_KEYS or key.endswith(PICKER_KEYS)


def list_request(entity: Entity, args: MultiDict) -> listrequest.ListRequest:
    """The list's state in `args`, read by the API's reader (`runtime.read.listrequest`), with
    the page's keys left out and a blank box of the filter form meaning no filter. A link
    typed without picking (`buyer__q`, JavaScript off) is looked up by title."""
    wanted = listrequest.parse_list(entity, args, hidden=hidden_fields(entity.name),
                                    me=actor().user_id, ignore=web_key, skip_blank=True)
    return typed_links(entity, args, wanted)


def typed_links(entity: Entity, args: MultiDict,
                wanted: listrequest.ListRequest) -> listrequest.ListRequest:
    """`wanted` with a filter for each link typed in its picker but not picked."""
    filters, problems = list(wanted.filters), list(wanted.problems)
    hidden = hidden_fields(entity.name)
    for f in entity.fields.values():
        typed = (args.get(f.name + "__q") or "").strip()
        if f.type != "link" or not typed or f.name in hidden or \
                any(flt.key == f.name for flt in filters) or \
                typed == (args.get(f.name + "__shown") or "").strip():
            continue
        match = resolve_title(f, typed)
        if match is None:
            problems.append(listrequest.Problem(
                f.name + "__q", f"No {f.to} matches “{typed}”; pick one from the list."))
        else:
            filters.append(listrequest.Filter(f.name, "eq", str(match)))
    return replace(wanted, filters=tuple(filters), problems=tuple(problems))


def warnings(wanted: listrequest.ListRequest) -> list[str]:
    """The request's problems as the page shows them: the list is shown without them."""
    return [f"'{p.key}' is not a filter of this list; it was ignored." if p.unknown
            else p.message for p in wanted.problems]


def resolve_title(f: Field, text: str) -> int | None:
    """The one record of `f.to` whose quick search finds `text`; None for none or several."""
    if not f.to or f.to not in inst().model.entities:
        return None
    page = records.query(inst(), actor(), f.to, filters={}, q=text, sort=[], limit=2,
                         cursor=None)
    rows = list(page.rows)
    return rows[0]["id"] if len(rows) == 1 else None


def visible_columns(entity: Entity) -> list[Field]:
    hidden = hidden_fields(entity.name)
    names = [n for n in entity.views.list.columns if n in entity.fields and n not in hidden]
    return [entity.fields[n] for n in names]


def natives(entity: Entity, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records as JSON (what `records` answers) back to Python values for formatting."""

    return [native(entity, row) for row in rows]


# -- titles: `runtime.read.titles` for the signed-in user ---------------------------------------

def page_titles(entity: Entity, rows: Sequence[dict[str, Any]], template: str | None = None
                ) -> tuple[dict[str, dict[Any, str]], dict[Any, str]]:
    """({link field: {id: title}}, {id: title}) of a page of rows, every linked record read
    once, through the user's row filter (see `titles.page_titles`)."""
    if not rows:
        return {}, {}
    with inst().engine.connect() as conn:
        return titles.page_titles(inst(), conn, entity.name, rows, actor=actor(),
                                  template=template)


def link_titles(entity: Entity, rows: Sequence[dict[str, Any]]) -> dict[str, dict[Any, str]]:
    """{link field: {id: title}} for every link on these rows; records the user may not read
    have no title (they show as "#id")."""
    return page_titles(entity, rows)[0]


def row_titles(entity: Entity, rows: Sequence[dict[str, Any]]) -> dict[Any, str]:
    """{id: title} of these rows."""
    return page_titles(entity, rows)[1]


def record_title(entity: Entity, record: dict[str, Any]) -> str:
    """One record's title."""
    return row_titles(entity, [record])[record["id"]]


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
            record_id = as_id(values[name])
            if record_id is not None and f.to in inst().model.entities:
                current.link_title = title_of(f.to, record_id) or ""
        result.append(current)
    return result


def title_of(entity: str, record_id: int) -> str | None:
    """The title of a record by id; None when it is missing or the user may not read it."""
    with inst().engine.connect() as conn:
        return titles.title_of(inst(), conn, entity, record_id, actor=actor())


def build(entity: Entity, wanted: listrequest.ListRequest, args: MultiDict) -> ListData:
    """The rows, columns, filters and paging of one list page: `wanted` without its problems
    (they are the page's warnings); a cursor that does not fit is one more, and the first
    page is shown."""
    errors = warnings(wanted)
    filters, q, sort = wanted.filters, wanted.q, list(wanted.sort)
    instance, who = inst(), actor()
    try:
        page = records.query(instance, who, entity.name, filters=filters, q=q, sort=sort,
                             limit=wanted.limit, cursor=wanted.cursor)
    except BadRequest as exc:
        errors.append(exc.message)
        page = records.query(instance, who, entity.name, filters=filters, q=q, sort=sort,
                             limit=wanted.limit, cursor=None)
    count, exact = records.count(instance, who, entity.name, filters=filters, q=q,
                                 cap=COUNT_CAP)
    rows = natives(entity, page.rows)
    sorted_by = {k.lstrip("-+"): ("desc" if k.startswith("-") else "asc") for k in sort[:1]}
    columns = [Column(f, field_label(entity, f.name), sorted_by.get(f.name),
                      WIDGETS[f.type].numeric) for f in visible_columns(entity)]
    links, names = page_titles(entity, rows)
    summary = list_summary(instance, who, entity, wanted.filter_map(), q, language())
    return ListData(entity, columns, rows, links, names,
                    build_filters(entity, args), wanted.filter_map(), q or "", sort,
                    page.next_cursor, page.prev_cursor, count, exact, errors, summary)


def cell(data: ListData, row: dict[str, Any], column: Column) -> Any:
    return display(row.get(column.field.name), column.field, data.titles)


# -- calendar ---------------------------------------------------------------------------------

@dataclass
class CalendarDay:
    day: date
    in_month: bool
    today: bool
    events: list[tuple[int, str, str]]  # (id, title, time of day or "")


# The months a calendar shows: its grid of whole weeks and the links to the months beside it
# must stay inside Python's calendar (years 1 to 9999).
FIRST_MONTH, LAST_MONTH = date(date.min.year + 1, 1, 1), date(date.max.year - 1, 12, 1)


def _month(raw: str) -> date | None:
    try:
        year, month = (int(p) for p in raw.split("-")[:2])
        first = date(year, month, 1)
    except ValueError:
        return None
    return first if FIRST_MONTH <= first <= LAST_MONTH else None


def month_of(args: MultiDict, today: date) -> date:
    """The month in `args` (`month=2026-03`); this month when there is none, or none that
    can be shown (see `month_problems`)."""
    return _month(args.get("month") or "") or today.replace(day=1)


def month_problems(args: MultiDict) -> list[str]:
    """The list warning for a `month` that cannot be shown."""
    raw = args.get("month") or ""
    if not raw or _month(raw) is not None:
        return []
    return [f"There is no month '{raw[:20]}' to show; use a month like 2026-03 from "
            f"{FIRST_MONTH.isoformat()[:7]} to {LAST_MONTH.isoformat()[:7]}. This month is "
            "shown."]


def month_grid(first: date, today: date) -> list[date]:
    """Whole weeks, Monday first, covering the month of `first`."""
    start = first - timedelta(days=first.weekday())
    days_in = calendar.monthrange(first.year, first.month)[1]
    last = first.replace(day=days_in)
    end = last + timedelta(days=6 - last.weekday())
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def calendar_days(entity: Entity, wanted: listrequest.ListRequest, args: MultiDict,
                  date_field: str, limit: int = 1000) -> tuple[date, list[CalendarDay]]:
    """The month in `args` (`month=2026-03`), with `wanted`'s filters and search."""
    today = inst().today()
    first = month_of(args, today)
    grid = month_grid(first, today)
    filters = wanted.filter_map()  # the month's bounds replace a filter on the same key
    f = entity.fields[date_field]
    low, high = grid[0].isoformat(), grid[-1].isoformat()
    if f.type == "datetime":
        high = (grid[-1] + timedelta(days=1)).isoformat()
        filters.update({f"{date_field}__gte": low, f"{date_field}__lt": high})
    else:
        filters.update({f"{date_field}__gte": low, f"{date_field}__lte": high})
    page = records.query(inst(), actor(), entity.name, filters=filters, q=wanted.q,
                         sort=[date_field], limit=limit, cursor=None)
    rows = natives(entity, page.rows)
    by_day: dict[date, list[tuple[int, str]]] = {}
    template = entity.views.calendar.title if entity.views.calendar else None
    names = page_titles(entity, rows, template)[1]
    times = {row["id"]: f"{row[date_field]:%H:%M}" for row in rows
             if isinstance(row.get(date_field), datetime)}
    for row in rows:
        value = row.get(date_field)
        if value is None:
            continue
        if isinstance(value, str):
            value = date.fromisoformat(value[:10])
        day = value.date() if hasattr(value, "date") and callable(value.date) else value
        by_day.setdefault(day, []).append((row["id"], names[row["id"]],
                                           times.get(row["id"], "")))
    days = [CalendarDay(d, d.month == first.month, d == today, by_day.get(d, [])) for d in grid]
    return first, days
