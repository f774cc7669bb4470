"""Dashboard data (docs/web.md, docs/api.md): the dashboards a user may see, and each widget's value
— one SQL query per widget (two for a ratio), with SQLAlchemy Core over the entity's table, under
the viewer's row filter (`permissions.read_filter`) and the widget's `where` (compiled by
`runtime.core.expressions.to_sql`).

`compute(inst, actor, widget)` gives a `WidgetValue`: a number, a list of (key, label, value,
list filters) points for charts and tables, or rows for a list. The web pages draw it
(`runtime.http.web.home`, `charts`); the API answers it as JSON (`runtime.http.api.dashboards`).
`list_summary` is the same grouping over what a list shows now (a list view's report).
Every query here reads through `Instance.reader()`: the read replica, when there is one.

Days, weeks, months and years of a datetime field (`group_by: day(created)`) are the reader's:
its stored UTC moments are bucketed by their wall-clock time in `zone` (the web page's reader's
zone; None: the actor's own, else UTC — the API's rule, as for list filters).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from builder.expressions.nodes import BoolOp, Compare, ListLit, Literal, Name, Node
from builder.model import Dashboard, Entity, Widget
from runtime.core.catalogs import say_in
from runtime.core.context import sql_context
from runtime.core.expressions import to_sql
from runtime.core.instance import Actor, Instance
from runtime.read import permissions, titles
from runtime.read.listrequest import Filter
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
    """The dashboards of the user's roles (every dashboard for an admin), the user's own work
    first: a dashboard's `roles` lists whose work it is first, so those naming one of the
    user's own roles earliest come first (then inherited roles; ties keep install order)."""
    roles = inst.model.role_closure(tuple(actor.roles))
    shown = [d for d in inst.model.dashboards.values()
             if actor.all_powerful or not d.roles or roles & set(d.roles)]
    return sorted(shown, key=lambda d: _rank(d, actor.roles, roles))


def _rank(board: Dashboard, own: frozenset[str] | tuple[str, ...], inherited: frozenset[str]
          ) -> int:
    positions = [i for i, role in enumerate(board.roles) if role in own]
    if positions:
        return min(positions)
    positions = [i for i, role in enumerate(board.roles) if role in inherited]
    return 1000 + min(positions) if positions else 2000


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
    """The bucket `fn` (day, week, month, year) of a date, or of a wall-clock datetime."""
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


# -- datetimes in the reader's zone ------------------------------------------------------------

ZONE_SCAN = (datetime(1900, 1, 1), datetime(2100, 1, 1))  # where offset changes are looked for


def reading_zone(actor: Actor, zone: tzinfo | None) -> tzinfo:
    """`zone` when given (a page's reader's), else the actor's own zone, else UTC."""
    return zone or titles.zone_named(actor.time_zone) or UTC


def local_time(conn: Connection, table: sa.Table, column: Any, zone: tzinfo) -> Any:
    """`column` (a datetime, naive UTC) as the wall-clock time in `zone`, so that its day,
    week or month is the reader's. PostgreSQL converts with the zone's rules; SQLite adds the
    zone's offset, which changes at the moments `offset_changes` finds between the column's
    first and last value (a CASE, one branch per change)."""
    if zone is UTC or getattr(zone, "key", None) in ("UTC", "Etc/UTC"):
        return column
    if conn.dialect.name == "postgresql":
        return sa.func.timezone(getattr(zone, "key", "UTC"), sa.func.timezone("UTC", column))
    low, high = conn.execute(sa.select(sa.func.min(column), sa.func.max(column))).one()
    if low is None:
        return column
    changes = offset_changes(zone, low, high)
    shift: Any = sa.literal(f"{changes[-1][1]:+d} seconds")
    if len(changes) > 1:
        shift = sa.case(*((column < start, f"{before[1]:+d} seconds") for before, (start, _)
                          in zip(changes, changes[1:], strict=False)),
                        else_=shift)
    return sa.func.datetime(column, shift)


def offset_changes(zone: tzinfo, low: datetime, high: datetime) -> list[tuple[datetime, int]]:
    """[(from when, offset in seconds)] of `zone` from `low` to `high` (naive UTC): its offset
    at `low`, then each change, to the second (looked for day by day within ZONE_SCAN)."""
    def offset(moment_: datetime) -> int:
        clamped = min(max(moment_, ZONE_SCAN[0]), ZONE_SCAN[1])
        local = clamped.replace(tzinfo=UTC).astimezone(zone)
        return int((local.utcoffset() or timedelta()).total_seconds())

    changes = [(low, offset(low))]
    step, day = timedelta(days=1), max(low, ZONE_SCAN[0])
    end = min(high, ZONE_SCAN[1])
    while day < end:
        after = min(day + step, end)
        if offset(after) != changes[-1][1]:
            early, late = 0, int((after - day).total_seconds())  # the change is in (early, late]
            while late - early > 1:
                middle = (early + late) // 2
                if offset(day + timedelta(seconds=middle)) == changes[-1][1]:
                    early = middle
                else:
                    late = middle
            start = (day + timedelta(seconds=late)).replace(microsecond=0)
            changes.append((start, offset(start)))
        day = after
    return changes


def value_field(entity: Entity, widget: Widget) -> Any:
    """The field whose type the widget's values take (None: a count or a ratio)."""
    if widget.field and widget.op != "count" and widget.divide_by is None:
        return entity.fields.get(widget.field)
    return None


def compute(inst: Instance, actor: Actor, widget: Widget, language: str = "en",
            zone: tzinfo | None = None) -> WidgetValue:
    """The widget's value for `actor`; datetimes grouped by day, week, month or year in
    `zone` (None: the actor's own zone, else UTC)."""
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
    with inst.reader() as conn:
        if widget.type == "number":
            result.number = conn.execute(sa.select(_aggregate(table, widget)).where(
                *clauses)).scalar()
            if result.number is None and widget.op in ("count", "sum"):
                result.number = 0
            if widget.divide_by is not None:
                result.number = _ratio(inst, actor, conn, table, widget, result.number)
        elif widget.type in ("chart", "table") and widget.group_by:
            result.points = _groups(inst, actor, conn, table, clauses, widget, entity, language,
                                    reading_zone(actor, zone))
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
            clauses: list[Any], widget: Widget, entity: Entity, language: str,
            zone: tzinfo = UTC) -> list[Point]:
    fn, name = widget.group_parts
    assert name is not None
    column = table.c[name]
    if fn and entity.fields[name].type == "datetime":
        column = local_time(conn, table, column, zone)
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
        label = say_in(language)(titles.YES if k else titles.NO)
        filters = {name: "true" if k else "false"}
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


# -- follow-ups due: the timeline's and the records' own date ---------------------------------

FOLLOW_UP_FIELD = "next_follow_up"  # a date field by this name is the record's next follow-up


def field_follow_ups(inst: Instance, actor: Actor, *, until: date,
                     limit: int = 100) -> list[dict[str, Any]]:
    """The records the actor owns whose `next_follow_up` date is on or before `until` (and
    not in a final workflow state), shaped like `timeline.due_follow_ups` entries: to the
    user a record's next-follow-up date and a follow-up logged on its timeline are one thing
    (docs/web.md, "Home and dashboards")."""
    found: list[dict[str, Any]] = []
    with inst.reader() as conn:
        for entity in inst.model.entities.values():
            date_field = entity.fields.get(FOLLOW_UP_FIELD)
            if entity.system or date_field is None or date_field.type != "date" or \
                    FOLLOW_UP_FIELD in permissions.hidden_fields(inst, actor, entity.name):
                continue
            found += _due_records(inst, actor, conn, entity, until, limit)
    found.sort(key=lambda e: (e["follow_up_on"], e["entity"], e["record_id"]))
    return found[:limit]


def _due_records(inst: Instance, actor: Actor, conn: Connection, entity: Entity,
                 until: date, limit: int) -> list[dict[str, Any]]:
    table = inst.schema.table(entity.name)
    column = table.c[FOLLOW_UP_FIELD]
    clauses = [table.c.owner == actor.user_id, column.is_not(None), column <= until]
    row_filter = permissions.read_filter(inst, actor, entity.name, table)
    if row_filter is not None:
        clauses.append(row_filter)
    workflow = entity.workflow
    if workflow is not None:
        final = [name for name, state in workflow.states.items() if state.final]
        if final:
            state = table.c[workflow.field]
            clauses.append(sa.or_(state.is_(None), state.not_in(final)))
    rows = conn.execute(sa.select(table.c.id, column).where(*clauses).order_by(
        column, table.c.id).limit(limit)).all()
    names = titles.titles_of(inst, conn, entity.name, [r[0] for r in rows], actor, 1)
    label = entity.fields[FOLLOW_UP_FIELD].label
    return [{"entity": entity.name, "record_id": r[0], "follow_up_on": r[1], "kind": label,
             "body": None, "title": names.get(r[0]), "source": "field"} for r in rows]


def merge_follow_ups(logged: list[dict[str, Any]], dated: list[dict[str, Any]]
                     ) -> list[dict[str, Any]]:
    """Timeline follow-ups and records' due dates as one list, one row per record (the
    logged follow-up, which says more, wins), oldest first."""
    seen = {(e["entity"], e["record_id"]) for e in logged}
    merged = logged + [e for e in dated if (e["entity"], e["record_id"]) not in seen]
    return sorted(merged, key=lambda e: str(e["follow_up_on"])[:10])


# -- "View all": the list of what a widget counts -------------------------------------------

MAX_IDS = 500  # the largest `id__in` a "View all" address carries (the list's MAX_LIMIT)


def list_filters(inst: Instance, actor: Actor, widget: Widget) -> dict[str, str]:
    """The list filters (`?field__op=value`) that show exactly the records `widget` counts.

    The list applies the same row filter, so only the widget's `where` needs saying: as
    filters when every part of it is one (`a == 'x' and b in [...] and c == null and
    owner == user.id`), else as `id__in=` the matching records' ids (up to MAX_IDS; beyond,
    the parts that are filters, a wider list — docs/web.md)."""
    if widget.where is None:
        return {}
    entity = inst.model.entity(widget.entity)
    hidden = permissions.hidden_fields(inst, actor, widget.entity)
    parts = _conjuncts(widget.where.tree)
    filters: dict[str, str] = {}
    exact = True
    for part in parts:
        pair = _as_filter(part, entity, hidden)
        if pair is None or pair[0] in filters:
            exact = False
        else:
            filters[pair[0]] = pair[1]
    if exact:
        return filters
    table, clauses = _base(inst, actor, widget)
    with inst.reader() as conn:
        ids = conn.execute(sa.select(table.c.id).where(*clauses).order_by(table.c.id)
                           .limit(MAX_IDS + 1)).scalars().all()
    if len(ids) > MAX_IDS:
        return filters
    return {"id__in": ",".join(str(i) for i in ids) or "0"}


def _conjuncts(tree: Node) -> list[Node]:
    if isinstance(tree, BoolOp) and tree.op == "and":
        return [part for value in tree.values for part in _conjuncts(value)]
    return [tree]


def _as_filter(node: Node, entity: Entity, hidden: frozenset[str]) -> tuple[str, str] | None:
    """`field == literal`, `field != null`, `field in [literals]`, `link == user.id` as one
    (key, value) list filter; None for anything else (`!=` and `<` treat empty values
    differently in the two readers, so they are not translated)."""
    if not isinstance(node, Compare) or not isinstance(node.left, Name) \
            or len(node.left.path) != 1:
        return None
    name = node.left.path[0]
    field_ = entity.fields.get(name)
    if field_ is None or name in hidden or field_.type in ("multichoice", "links"):
        return None
    right = node.right
    if isinstance(right, Literal) and right.value is None and node.op in ("==", "!="):
        return f"{name}__isnull", "true" if node.op == "==" else "false"
    if node.op == "==" and isinstance(right, Name) and right.path == ("user", "id") \
            and field_.type == "link" and field_.to == "user":
        return name, "me"
    if node.op == "==" and isinstance(right, Literal):
        return name, _literal(right.value)
    if node.op == "in" and isinstance(right, ListLit) and right.items and all(
            isinstance(i, Literal) and i.value is not None and "," not in str(i.value)
            for i in right.items):
        return f"{name}__in", ",".join(_literal(i.value) for i in right.items)
    return None


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def list_total(inst: Instance, actor: Actor, entity: Entity, field_name: str,
               filters: Mapping[str, Any] | Iterable[Filter], q: str | None,
               zone: tzinfo | None = None) -> Any:
    """The sum of `field_name` over what a list shows (same row filter, filters and search):
    a kanban column's total. None when the field is hidden from the user."""
    if field_name in permissions.hidden_fields(inst, actor, entity.name):
        return None
    table = inst.schema.table(entity.name)
    with inst.reader() as conn:
        clauses = where_clauses(inst, actor, entity, table, filters=filters, q=q,
                                dialect=conn.dialect.name, zone=zone)
        total = conn.execute(sa.select(sa.func.sum(table.c[field_name])).where(
            *clauses)).scalar()
    return total if total is not None else 0


def list_summary(inst: Instance, actor: Actor, entity: Entity, filters: dict[str, str],
                 q: str | None, language: str = "en", zone: tzinfo | None = None
                 ) -> list[Point]:
    """A list view's report (`group_by` and `op` on the list view): the groups of the records
    the list shows now — same row filter, filters and search — in one query; `zone` as for
    `compute`."""
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
    with inst.reader() as conn:
        clauses = where_clauses(inst, actor, entity, table, filters=filters, q=q,
                                dialect=conn.dialect.name, zone=zone)
        return _groups(inst, actor, conn, table, clauses, widget, entity, language,
                       reading_zone(actor, zone))
