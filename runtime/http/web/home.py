"""`/`: the dashboards of the user's roles, their due follow-ups and pending approvals."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal, gettext
from markupsafe import Markup, escape

from builder.model import Widget
from runtime.http.web import charts
from runtime.http.web.layout import (
    actor,
    approvals_count,
    entity_label,
    field_label,
    inst,
    language,
    query_url,
    render,
    tr,
)
from runtime.http.web.listdata import page_titles
from runtime.http.web.localize import zone
from runtime.http.web.widgets import display
from runtime.read import dashboards, timeline


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/", "home", home_page)
    bp.add_url_rule("/dashboards/<name>", "dashboard", dashboard_page)


def formatter(value_field: Any, widget: Widget) -> Any:
    """How a widget shows its numbers: the summarised field's format, or `format: money`."""
    def fmt(value: Any) -> str:
        if value is None:
            return "—"
        if value_field is not None and widget.op == "avg" and value_field.type == "integer":
            return _fixed(value, 1)  # an average of whole numbers: one decimal
        if value_field is not None and widget.op != "count":
            return str(Markup(display(value, value_field)).striptags())
        if widget.format == "money":
            return _fixed(value, 2)
        if widget.format == "percent":
            return _fixed(value, 1) + "%"
        if widget.divide_by is not None:  # a ratio: two decimals, like 1.25
            return _fixed(value, 2)
        if not float(value).is_integer():
            return _fixed(value, 1)
        return format_decimal(int(float(value)), format="#,##0")
    return fmt


def _fixed(value: Any, decimals: int) -> str:
    """`value` with `decimals` decimals in the reader's locale: 1,234.5 · 1.234,5 · 1,234.5."""
    return format_decimal(float(value), format="#,##0." + "0" * decimals)


def caption(widget: Widget, entity: Any) -> str:
    """What a number widget's figure is: "Night audits · sum of rooms sold ÷ sum of rooms
    available", "Retention cases · share", "Lines"."""
    def part(op: str, field: str | None) -> str:
        return gettext("count") if op == "count" or not field else \
            gettext("%(op)s of %(field)s", op=gettext(op),
                    field=field_label(entity, field).lower())
    text = entity_label(entity, plural=True)
    measure = widget.divide_by
    if measure is not None and widget.op == "count" and measure.op == "count":
        return f"{text} · {gettext('share')}"
    if measure is not None:
        return f"{text} · {part(widget.op, widget.field)} ÷ {part(measure.op, measure.field)}"
    return text if widget.op == "count" else f"{text} · {part(widget.op, widget.field)}"


def widget_view(widget: Widget) -> dict[str, Any]:
    """Everything a widget template needs: its value, drawn chart, and the list it links to."""
    value = dashboards.compute(inst(), actor(), widget, language(), zone())
    plain_url = url_for("web.list", entity=widget.entity)
    counted = {} if value.error else dashboards.list_filters(inst(), actor(), widget)
    list_url = query_url({}, plain_url, **counted)  # "View all": what the widget counts
    fmt = formatter(value.value_field, widget)
    shown: dict[str, Any] = {"widget": widget, "value": value, "label": tr(widget.label),
                             "url": list_url, "fmt": fmt, "chart": Markup(""),
                             "caption": caption(widget, value.entity)}
    if value.points:
        points = [(p.label, charts.as_number(p.value),
                   query_url({}, plain_url, **{**counted, **p.filters}))
                  for p in value.points]
        if widget.type == "chart":
            shown["chart"] = charts.draw(widget.chart, points, fmt, tr(widget.label))
        shown["points"] = points
    if value.rows:
        entity = value.entity
        columns = [entity.fields[c] for c in widget.columns if c in entity.fields] or \
            [entity.fields[c] for c in entity.views.list.columns[:3] if c in entity.fields]
        columns = [c for c in columns if c.name in value.rows[0]]

        shown["columns"] = columns
        shown["titles"], shown["row_titles"] = page_titles(entity, value.rows)
    return shown


def due_follow_ups() -> list[dict[str, Any]]:
    """Follow-ups logged on timelines and records whose next-follow-up date is due: one
    concept to the user, so one list and one count (docs/web.md)."""
    try:
        today = inst().today()
        logged = [dict(e) for e in timeline.due_follow_ups(inst(), actor(), until=today)]
        dated = [{**e, "kind": tr(e["kind"])}
                 for e in dashboards.field_follow_ups(inst(), actor(), until=today)]
        return dashboards.merge_follow_ups(logged, dated)
    except Exception:  # noqa: BLE001 - the home page shows the rest when this part fails
        current_app.logger.exception("due follow-ups failed")
        return []


def home_page() -> ResponseReturnValue:
    boards = dashboards.dashboards_for(inst(), actor())
    shown = [{"dashboard": d, "label": tr(d.label),
              "widgets": [widget_view(w) for w in d.widgets]} for d in boards[:3]]
    return render("home.html", fragment="dashboards", boards=shown, more=boards[3:],
                  follow_ups=due_follow_ups(), approvals=approvals_count(),
                  today=inst().today(), now_hour=inst().now().hour)


def dashboard_page(name: str) -> ResponseReturnValue:
    board = dashboards.dashboard_for(inst(), actor(), name)
    if board is None:
        abort(404, f"There is no dashboard '{escape(name)}' for you.")
    shown = [{"dashboard": board, "label": tr(board.label),
              "widgets": [widget_view(w) for w in board.widgets]}]
    return render("home.html", fragment="dashboards", boards=shown, more=[],
                  follow_ups=None, approvals=None, today=inst().today(), single=True,
                  now_hour=inst().now().hour)
