"""Dashboards over HTTP: the data of the widgets the home page draws, under the reader's row
filters (`runtime.read.dashboards` computes it; this module only translates to JSON).

    GET /api/v1/dashboards          200 {"data": [{name, label, description}]}
    GET /api/v1/dashboards/<name>   200 {name, label, description, widgets: [...]}
                                    404 no such dashboard, or not one of the user's roles

Values follow the API's JSON rules (docs/api.md): whole numbers — counts, and totals, minima
and maxima of `integer` fields — are JSON numbers; totals of decimal fields, averages and
ratios are exact decimal strings ("173000.00"); dates are ISO strings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue

from builder.model import AppModel, Dashboard, Entity, Widget
from runtime.core.errors import NotFound
from runtime.core.values import json_value, to_json
from runtime.http.api.common import actor, instance, static_route
from runtime.read import dashboards
from runtime.read.dashboards import WidgetValue

Schema = dict[str, Any]
DECIMALS = ("decimal", "money", "percent")


def register(bp: Blueprint) -> None:
    static_route(bp, "/dashboards", "dashboards", list_dashboards)
    bp.add_url_rule("/dashboards/<name>", "dashboard", get_dashboard, methods=["GET"])


def list_dashboards() -> ResponseReturnValue:
    """The dashboards of the user's roles (every one for an admin), without their data."""
    who = actor()
    return {"data": [_summary(board, who.language)
                     for board in dashboards.dashboards_for(instance(), who)]}


def get_dashboard(name: str) -> ResponseReturnValue:
    inst, who = instance(), actor()
    board = dashboards.dashboard_for(inst, who, name)
    if board is None:
        raise NotFound(f"There is no dashboard '{name[:100]}' for you; GET /api/v1/dashboards "
                       "lists the dashboards of your roles.")
    language = who.language
    return {**_summary(board, language),
            "widgets": [widget_json(dashboards.compute(inst, who, widget, language), language)
                        for widget in board.widgets]}


def _summary(board: Dashboard, language: str) -> dict[str, Any]:
    return {"name": board.name, "label": board.label.get(language),
            "description": board.description.get(language) if board.description else None}


def widget_json(value: WidgetValue, language: str) -> dict[str, Any]:
    """A widget's definition and its data: `value` (number), `groups` (chart, table) or
    `rows` (list); `error` says why there is no data (null when there is)."""
    widget = value.widget
    result: dict[str, Any] = {
        "type": widget.type, "label": widget.label.get(language), "entity": widget.entity,
        "op": widget.op, "field": widget.field, "group_by": widget.group_by,
        "chart": widget.chart, "format": widget.format, "error": value.error}
    if value.error is not None:
        return result
    if widget.type == "number":
        result["value"] = _number(value.entity, widget, value.number)
    elif widget.type in ("chart", "table") and widget.group_by:
        result["groups"] = [
            {"key": json_value(p.key), "label": p.label,
             "value": _number(value.entity, widget, p.value), "filters": p.filters}
            for p in value.points]
    else:
        result["rows"] = [to_json(value.entity, row) for row in value.rows]
    return result


def _number(entity: Entity, widget: Widget, value: Any) -> Any:
    """One aggregate in JSON: its type follows the widget's definition, not the database
    (PostgreSQL sums integers into numerics, SQLite averages into floats)."""
    if value is None:
        return None
    field = dashboards.value_field(entity, widget)
    whole = widget.divide_by is None and (
        widget.op == "count" or not widget.field
        or (field is not None and field.type == "integer" and widget.op != "avg"))
    if whole and isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        if field is not None and field.type in DECIMALS and widget.op != "avg":
            return format(Decimal(str(value)), "f")
        return _plain_decimal(value)
    return json_value(value)


def _plain_decimal(value: int | float | Decimal) -> str:
    """An average or a ratio as an exact string without trailing zeros ("2.5", "0.75")."""
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return format(number.normalize(), "f")


# -- the OpenAPI document ---------------------------------------------------------------------

def openapi(model: AppModel) -> Schema:
    """The paths and schemas of this module (see runtime.http.api.openapi)."""
    def ref(name: str, kind: str = "schemas") -> Schema:
        return {"$ref": f"#/components/{kind}/{name}"}

    def answer(description: str, schema: Schema) -> Schema:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    unauthorized = {"401": ref("Unauthorized", "responses")}
    names = sorted(model.dashboards)
    return {
        "paths": {
            "/dashboards": {"get": {
                "operationId": "list_dashboards", "summary": "The dashboards of your roles",
                "tags": ["dashboards"],
                "responses": {"200": answer("Dashboards, without their data", {
                    "type": "object", "required": ["data"],
                    "properties": {"data": {"type": "array",
                                            "items": ref("DashboardSummary")}}}),
                    **unauthorized}}},
            "/dashboards/{name}": {
                "parameters": [{"name": "name", "in": "path", "required": True,
                                "schema": {"type": "string", **({"enum": names} if names
                                                                else {})}}],
                "get": {"operationId": "get_dashboard", "summary": "A dashboard's widgets "
                        "and their data, under your row filters", "tags": ["dashboards"],
                        "responses": {"200": answer("The dashboard", ref("Dashboard")),
                                      **unauthorized,
                                      "404": ref("NotFound", "responses")}}},
        },
        "schemas": _schemas(),
    }


def _schemas() -> Schema:
    text, nullable = {"type": "string"}, {"type": ["string", "null"]}
    number = {"type": ["integer", "string", "null"], "description": "A count or a total of "
              "`integer` fields as a number; decimals, averages and ratios as exact strings; "
              "a minimum or maximum of a date as an ISO date"}
    summary = {"type": "object", "required": ["name", "label", "description"],
               "properties": {"name": text, "label": text, "description": nullable}}
    group = {"type": "object", "required": ["key", "label", "value", "filters"], "properties": {
        "key": {"description": "The group's value: a choice, a linked id, a date bucket "
                "(`2026-03`) or null"},
        "label": text, "value": number,
        "filters": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "List filters (GET /api/v1/<entity>) that give the "
                                   "records of this group"}}}
    widget = {"type": "object", "required": ["type", "label", "entity", "error"],
              "properties": {
                  "type": {"type": "string", "enum": ["number", "chart", "table", "list"]},
                  "label": text, "entity": text, "op": text, "field": nullable,
                  "group_by": nullable, "chart": nullable, "format": nullable,
                  "error": {"type": ["string", "null"], "description": "Why the widget has "
                            "no data for you (an entity you may not read, hidden fields)"},
                  "value": number,
                  "groups": {"type": "array", "items": {"$ref": "#/components/schemas/"
                                                                "DashboardGroup"}},
                  "rows": {"type": "array", "items": {"type": "object"},
                           "description": "Records of the widget's entity, as GET "
                                          "/api/v1/<entity> answers them"}}}
    board = {**summary, "required": ["name", "label", "description", "widgets"], "properties": {
        **summary["properties"],
        "widgets": {"type": "array",
                    "items": {"$ref": "#/components/schemas/DashboardWidget"}}}}
    return {"DashboardSummary": summary, "Dashboard": board, "DashboardWidget": widget,
            "DashboardGroup": group}
