"""The calendar of a list (`?view=calendar`): a month grid, a week, or an agenda of the four
weeks ahead grouped by day (`mode=month|week|agenda`). Each record sits on the day of the
view's `date` field, titled by the view's `title` template; the list's filters and quick search
apply (the one `ListRequest`). `month=2026-03` picks a month, `day=2026-03-04` the week or the
agenda's first day; what cannot be shown is a warning, and today's period is shown instead.

Days are the reader's (`localize.zone()`: their own time zone, else the instance's): today is
their today, a datetime event sits on its day and shows its time in their zone (23:30 UTC on
4 December is 07:30 on 5 December in Shanghai), and the period's bounds are their midnights.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, NamedTuple

from werkzeug.datastructures import MultiDict

from builder.model import Entity
from runtime.http.web.layout import actor, inst
from runtime.http.web.listdata import natives, page_titles
from runtime.http.web.localize import zone
from runtime.read import listrequest
from runtime.write import records

MODES = ("month", "week", "agenda")
AGENDA_DAYS = 28
EVENT_LIMIT = 1000
# The days a calendar shows, its whole weeks and the links to the periods beside it must stay
# inside Python's dates (years 1 to 9999).
FIRST_MONTH, LAST_MONTH = date(date.min.year + 1, 1, 1), date(date.max.year - 1, 12, 1)
LAST_DAY = date(date.max.year - 1, 12, 31)


class Event(NamedTuple):
    record_id: int
    title: str
    time: str  # "09:30" for a datetime field, else ""


@dataclass
class CalendarDay:
    day: date
    in_month: bool  # false for the days of the month grid's first and last weeks outside it
    today: bool
    events: list[Event]


@dataclass
class Calendar:
    """One period of the calendar, and the address changes that lead to the others."""

    mode: str
    anchor: date  # the month's first day, or the week's or the agenda's given day
    heading: str
    days: list[CalendarDay]
    earlier: dict[str, str | None] | None  # None: no period before (the first year)
    later: dict[str, str | None] | None
    now: dict[str, str | None]
    modes: dict[str, dict[str, str | None]]
    problems: list[str] = field(default_factory=list)


# -- the address ------------------------------------------------------------------------------

def _month(raw: str) -> date | None:
    try:
        year, month = (int(p) for p in raw.split("-")[:2])
        first = date(year, month, 1)
    except ValueError:
        return None
    return first if FIRST_MONTH <= first <= LAST_MONTH else None


def _day(raw: str) -> date | None:
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        return None
    return day if FIRST_MONTH <= day <= LAST_DAY else None


def _problems(args: MultiDict, mode: str) -> list[str]:
    problems = []
    raw_mode = args.get("mode") or "month"
    if raw_mode not in MODES:
        problems.append(f"There is no calendar '{raw_mode[:20]}'; use month, week or agenda. "
                        "The month is shown.")
    raw = args.get("month") or ""
    if mode == "month" and raw and _month(raw) is None:
        problems.append(f"There is no month '{raw[:20]}' to show; use a month like 2026-03 "
                        f"from {FIRST_MONTH.isoformat()[:7]} to {LAST_MONTH.isoformat()[:7]}. "
                        "This month is shown.")
    raw = args.get("day") or ""
    if mode != "month" and raw and _day(raw) is None:
        problems.append(f"There is no day '{raw[:20]}' to show; use a day like 2026-03-04 "
                        f"from {FIRST_MONTH.isoformat()} to {LAST_DAY.isoformat()}. Today "
                        "is shown.")
    return problems


# -- the periods ------------------------------------------------------------------------------

def month_grid(first: date) -> list[date]:
    """Whole weeks, Monday first, covering the month of `first`."""
    start = first - timedelta(days=first.weekday())
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    end = last + timedelta(days=6 - last.weekday())
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def span_text(low: date, high: date) -> str:
    """"2 – 8 March 2026", "30 March – 5 April 2026", "29 December 2025 – 4 January 2026"."""
    end = f"{high.day} {high:%B %Y}"
    if (low.year, low.month) == (high.year, high.month):
        return f"{low.day} – {end}"
    if low.year == high.year:
        return f"{low.day} {low:%B} – {end}"
    return f"{low.day} {low:%B %Y} – {end}"


def _month_view(args: MultiDict, today: date) -> tuple[date, list[date], str, Any, Any]:
    first = _month(args.get("month") or "") or today.replace(day=1)
    before = (first - timedelta(days=1)).replace(day=1)
    after = (first + timedelta(days=31)).replace(day=1)
    return (first, month_grid(first), f"{first:%B %Y}",
            {"month": f"{before:%Y-%m}"} if before >= FIRST_MONTH else None,
            {"month": f"{after:%Y-%m}"} if after <= LAST_MONTH else None)


def _span_view(day: date, length: int, step: int) -> tuple[list[date], str, Any, Any]:
    days = [day + timedelta(days=i) for i in range(length)]
    before, after = day - timedelta(days=step), day + timedelta(days=step)
    return (days, span_text(days[0], days[-1]),
            {"day": before.isoformat()} if before >= FIRST_MONTH else None,
            {"day": after.isoformat()} if after + timedelta(days=length) <= LAST_DAY else None)


def build(entity: Entity, wanted: listrequest.ListRequest, args: MultiDict) -> Calendar:
    """The period `args` asks for, with `wanted`'s records on their days (the reader's)."""
    reader = zone()
    today = inst().now().replace(tzinfo=UTC).astimezone(reader).date()
    mode = args.get("mode") if args.get("mode") in MODES else "month"
    if mode == "month":
        anchor, grid, heading, earlier, later = _month_view(args, today)
        current = today if today.replace(day=1) == anchor else anchor
        now: dict[str, str | None] = {"month": None}
    else:
        current = anchor = _day(args.get("day") or "") or today
        start = anchor - timedelta(days=anchor.weekday()) if mode == "week" else anchor
        length = 7 if mode == "week" else AGENDA_DAYS
        grid, heading, earlier, later = _span_view(start, length, length)
        now = {"day": None}
    events = events_between(entity, wanted, grid[0], grid[-1], reader)
    days = [CalendarDay(d, mode != "month" or d.month == anchor.month, d == today,
                        events.get(d, [])) for d in grid]
    return Calendar(mode, anchor, heading, days, earlier, later, now,
                    modes=mode_links(current), problems=_problems(args, mode))


def mode_links(current: date) -> dict[str, dict[str, str | None]]:
    """The address changes that show `current` as a month, a week and an agenda."""
    return {"month": {"mode": None, "day": None, "month": f"{current:%Y-%m}"},
            "week": {"mode": "week", "month": None, "day": current.isoformat()},
            "agenda": {"mode": "agenda", "month": None, "day": current.isoformat()}}


# -- the records ------------------------------------------------------------------------------

def events_between(entity: Entity, wanted: listrequest.ListRequest, low: date, high: date,
                   reader: tzinfo = UTC, limit: int = EVENT_LIMIT) -> dict[date, list[Event]]:
    """{day: its events} from `low` to `high` (both included), days and times in the
    `reader`'s zone, with `wanted`'s filters (read as the list reads them) and search; the
    bounds replace a filter on the date field."""
    view = entity.views.calendar
    assert view is not None
    name = view.date
    # on a datetime field a date is a whole day of the reader's, so __lte ends at its midnight
    bounds = (listrequest.Filter(name, "gte", low.isoformat(), reader),
              listrequest.Filter(name, "lte", high.isoformat(), reader))
    filters = [f for f in wanted.filters if f.key not in (b.key for b in bounds)] + list(bounds)
    page = records.query(inst(), actor(), entity.name, filters=filters, q=wanted.q,
                         sort=[name], limit=limit, cursor=None)
    rows = natives(entity, page.rows)
    names = page_titles(entity, rows, view.title)[1]
    by_day: dict[date, list[Event]] = {}
    for row in rows:
        value = row.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            value = date.fromisoformat(value[:10])
        timed = isinstance(value, datetime)
        if timed:
            value = value.replace(tzinfo=value.tzinfo or UTC).astimezone(reader)
        day = value.date() if timed else value
        by_day.setdefault(day, []).append(Event(row["id"], names[row["id"]],
                                                f"{value:%H:%M}" if timed else ""))
    return by_day
