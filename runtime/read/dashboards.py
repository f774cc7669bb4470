"""Dashboard data (docs/web.md, docs/api.md): the dashboards a user may see, and each widget's value
— one SQL query per widget (two for a ratio), with SQLAlchemy Core over the entity's table, under
the viewer's row filter (`permissions.read_filter`) and the widget's `where` (compiled by
`runtime.core.expressions.to_sql`).

`compute(inst, actor, widget)` gives a `WidgetValue`: a number, a list of (key, label, value,
list filters) points for charts and tables, or rows for a list. The web pages draw it
(`runtime.http.web.home`, `charts`); the API answers it as JSON (`runtime.http.api.dashboards`).
`list_summary` is the same grouping over what a list shows now (a list view's report).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from builder.model import Dashboard, Entity, Widget
from runtime.core.context import sql_context
from runtime.core.expressions import to_sql
from runtime.core.instance import Actor, Instance
from runtime.read import permissions, titles
from runtime.read.queries import where_clauses

OPS = {"count": sa.func.count, "sum": sa.func.sum, "avg": sa.func.avg, "min": sa.func.min,
       "max": sa.func.max}
MAX_GROUPS = 50
LIST_LIMIT = 10
# Date buckets: (SQLite strftime format, PostgreSQL to_char format).
BUCKETS = {"day": ("%Y-%m-%d", "YYYY-MM-DD"), "month": ("%Y-%m", "YYYY-MM"),
           "year": ("%Y", "YYYY"), "week": (None, "IYYY-MM-DD")}


@dataclass
class Point:
    key: Any
    label: str
    value: Any
    filters: dict[str, str] = field(default_factory=dict)  # list filters of this group


@dataclass
class WidgetValue:
    widget: Widget
    entity: Entity
    number: Any = None
    points: list[Point] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    value_field: Any = None  # the Field whose format the values take (None: plain numbers)


def dashboards_for(inst: Instance, actor: Actor) -> list[Dashboard]:
    """The dashboards of the user's roles (every dashboard for an admin)."""
    roles = inst.model.role_closure(tuple(actor.roles))
    return [d for d in inst.model.dashboards.values()
            if actor.all_powerful or not d.roles or roles & set(d.roles)]


def dashboard_for(inst: Instance, actor: Actor, name: str) -> Dashboard | None:
    """The dashboard `name` when the user may see it; None when there is none or they may not
    (the two are not told apart)."""
    return next((d for d in dashboards_for(inst, actor) if d.name == name), None)


def _base(inst: Instance, actor: Actor, widget: Widget) -> tuple[sa.Table, list[Any]]:
    table = inst.schema.table(widget.entity)
    clauses = []
    row_filter = permissions.read_filter(inst, actor, widget.entity, table)
    if row_filter is not None:
        clauses.append(row_filter)
    if widget.where is not None:
        clauses.append(to_sql(widget.where, sql_context(inst, actor, widget.entity), base=table,
                              condition=True))
    return table, clauses


def _aggregate(table: sa.Table, widget: Widget) -> Any:
    if widget.op == "count" or not widget.field:
        return sa.func.count(table.c.id)
    return OPS[widget.op](table.c[widget.field])


def _bucket(column: Any, fn: str, dialect: str) -> Any:
    sqlite_format, pg_format = BUCKETS[fn]
    if dialect == "sqlite":
        if fn == "week":
            return sa.func.date(column, "-6 days", "weekday 1")
        return sa.func.strftime(sqlite_format, column)
    if fn == "week":
        return sa.func.to_char(sa.func.date_trunc("week", column), "YYYY-MM-DD")
    return sa.func.to_char(column, pg_format)


def _bucket_label(key: Any, fn: str) -> str:
    text = str(key)
    try:
        if fn == "month":
            return datetime.strptime(text, "%Y-%m").strftime("%b %Y")
        if fn in ("day", "week"):
            day = date.fromisoformat(text[:10])
            return ("Week of " if fn == "week" else "") + day.strftime("%b %-d")
    except ValueError:
        pass
    return text


def value_field(entity: Entity, widget: Widget) -> Any:
    """The field whose type the widget's values take (None: a count or a ratio)."""
    if widget.field and widget.op != "count" and widget.divide_by is None:
        return entity.fields.get(widget.field)
    return None


def compute(inst: Instance, actor: Actor, widget: Widget, language: str = "en") -> WidgetValue:
    entity = inst.model.entity(widget.entity)
    result = WidgetValue(widget, entity, value_field=value_field(entity, widget))
    hidden = permissions.hidden_fields(inst, actor, widget.entity)
    if not permissions.can(inst, actor, widget.entity, "read"):
        result.error = "You may not see these records."
        return result
    if widget.field in hidden or widget.group_parts[1] in hidden or (
            widget.divide_by is not None and widget.divide_by.field in hidden):
        result.error = "Some of these values are hidden from you."
        return result
    table, clauses = _base(inst, actor, widget)
    with inst.engine.connect() as conn:
        if widget.type == "number":
            result.number = conn.execute(sa.select(_aggregate(table, widget)).where(
                *clauses)).scalar()
            if result.number is None and widget.op in ("count", "sum"):
                result.number = 0
            if widget.divide_by is not None:
                result.number = _ratio(inst, actor, conn, table, widget, result.number)
        elif widget.type in ("chart", "table") and widget.group_by:
            result.points = _groups(inst, actor, conn, table, clauses, widget, entity, language)
        else:
            result.rows = _rows(conn, table, clauses, widget, hidden)
    return result


def _ratio(inst: Instance, actor: Actor, conn: Connection, table: sa.Table, widget: Widget,
           numerator: Any) -> float | None:
    """value ÷ `divide_by` (over the rows the viewer may read; its own `where`, else the
    widget's); None when the denominator is nothing or zero. `format: percent` shows it ×100."""
    measure = widget.divide_by
    assert measure is not None
    _, clauses = _base(inst, actor, replace(
        widget, where=measure.where if measure.where is not None else widget.where))
    column = table.c[measure.field] if measure.field and measure.op != "count" else None
    aggregate = OPS[measure.op](column) if column is not None else sa.func.count(table.c.id)
    denominator = conn.execute(sa.select(aggregate).where(*clauses)).scalar()
    if numerator is None or not denominator:
        return None
    ratio = float(numerator) / float(denominator)
    return ratio * 100 if widget.format == "percent" else ratio


def _groups(inst: Instance, actor: Actor, conn: Connection, table: sa.Table,
            clauses: list[Any], widget: Widget, entity: Entity, language: str) -> list[Point]:
    fn, name = widget.group_parts
    assert name is not None
    column = table.c[name]
    key = _bucket(column, fn, conn.dialect.name) if fn else column
    value = _aggregate(table, widget)
    stmt = sa.select(key.label("k"), value.label("v")).where(*clauses).group_by(key)
    sort = widget.sort[0] if widget.sort else ("k" if fn else "-v")
    descending = sort.startswith("-")
    label = "v" if sort.lstrip("-") in ("value", "v") else "k"
    order = sa.desc(label) if descending else sa.asc(label)
    stmt = stmt.order_by(order).limit(widget.limit or MAX_GROUPS)
    rows = conn.execute(stmt).all()
    f = entity.fields[name]
    names: dict[Any, str] = {}
    if f.type == "link" and f.to in inst.model.entities:
        names = titles.link_titles(inst, conn, entity.name, [{name: r.k} for r in rows],
                                   actor=actor)[name]
    return [_point(k, v, fn, name, f, names, language) for k, v in rows]


def _point(k: Any, v: Any, fn: str | None, name: str, f: Any, names: dict[Any, str],
           language: str) -> Point:
    """One group: its label, and the list filters that show its records."""
    same = {name: str(k)} if k is not None else {f"{name}__isnull": "true"}
    if fn:
        label, filters = _bucket_label(k, fn), {}
    elif f.type == "link":
        label, filters = names.get(k) or ("(none)" if k is None else f"#{k}"), same
    elif f.type == "choice":
        label, filters = f.option_label(k, language) if k is not None else "(none)", same
    elif f.type == "boolean":
        label, filters = "Yes" if k else "No", {name: "true" if k else "false"}
    else:
        label, filters = "(none)" if k is None else str(k), same
    return Point(k, label, v if v is not None else 0, filters)


def _rows(conn: Connection, table: sa.Table, clauses: list[Any], widget: Widget,
          hidden: frozenset[str]) -> list[dict[str, Any]]:
    order = []
    for key in widget.sort:
        name = key.lstrip("-")
        if name in table.c and name not in hidden:
            order.append(table.c[name].desc() if key.startswith("-") else table.c[name].asc())
    order.append(table.c.id.desc())
    stmt = sa.select(table).where(*clauses).order_by(*order).limit(widget.limit or LIST_LIMIT)
    return [{k: v for k, v in dict(r).items() if k not in hidden}
            for r in conn.execute(stmt).mappings()]


def list_summary(inst: Instance, actor: Actor, entity: Entity, filters: dict[str, str],
                 q: str | None, language: str = "en") -> list[Point]:
    """A list view's report (`group_by` and `op` on the list view): the groups of the records
    the list shows now — same row filter, filters and search — in one query."""
    view = entity.views.list
    if not view.group_by:
        return []
    widget = Widget(type="table", entity=entity.name, label=entity.label, op=view.op or "count",
                    field=None, group_by=view.group_by, sort=("-value",), limit=MAX_GROUPS)
    _fn, name = widget.group_parts
    hidden = permissions.hidden_fields(inst, actor, entity.name)
    if name not in entity.fields or name in hidden:
        return []
    table = inst.schema.table(entity.name)
    with inst.engine.connect() as conn:
        clauses = where_clauses(inst, actor, entity, table, filters=filters, q=q,
                                dialect=conn.dialect.name)
        return _groups(inst, actor, conn, table, clauses, widget, entity, language)
