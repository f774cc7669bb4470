"""`/e/<entity>`: the list (table, kanban, calendar), saved views, CSV export, bulk actions,
and the kanban move (the same `records.update` as the form, with the same checks)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, Response, abort, flash, redirect, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue

from builder.model import Entity
from runtime.core.db import write_transaction
from runtime.core.errors import RecordError, ValidationFailed
from runtime.http.web import listdata
from runtime.http.web.layout import (
    actor,
    can,
    current_args,
    entity_or_404,
    field_label,
    hidden_fields,
    inst,
    is_htmx,
    readonly_fields,
    render,
    tr,
)
from runtime.process import workflow as engine
from runtime.write import records

EXPORT_MAX_ROWS = 100_000
EXPORT_PAGE = 500
BULK_MAX = 500
KANBAN_PER_COLUMN = 50


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/e/<entity>", "list", list_page)
    bp.add_url_rule("/e/<entity>/export.csv", "export", export_csv)
    bp.add_url_rule("/e/<entity>/bulk", "bulk", bulk, methods=["POST"])
    bp.add_url_rule("/e/<entity>/views", "save_view", save_view, methods=["POST"])
    bp.add_url_rule("/e/<entity>/views/<int:view_id>/delete", "delete_view", delete_view,
                    methods=["POST"])
    bp.add_url_rule("/e/<entity>/<int:record_id>/move", "move", move, methods=["POST"])


def list_page(entity: str) -> ResponseReturnValue:
    model_entity = entity_or_404(entity)
    saved = request.args.get("saved")
    if saved and saved.isdigit():
        settings = _saved_settings(entity, int(saved))
        if settings is None:
            abort(404, "That saved view does not exist (any more).")
        return redirect(url_for("web.list", entity=entity, **settings))
    view = request.args.get("view") or "table"
    common = {"model_entity": model_entity, "view": view, "saved_views": _saved_views(entity),
              "can_create": can(entity, "create"), "can_update": can(entity, "update"),
              "can_delete": can(entity, "delete"), "args": current_args(),
              "query_string": request.query_string.decode("utf-8", "replace"),
              "back_url": _back_url(entity),
              "filters": listdata.build_filters(model_entity, request.args)}
    if view == "kanban" and model_entity.views.kanban is not None:
        return render("kanban.html", entity=entity, fragment="board",
                      board=kanban_board(model_entity), **common)
    if view == "calendar" and model_entity.views.calendar is not None:
        first, days = listdata.calendar_days(model_entity, request.args,
                                             model_entity.views.calendar.date)
        return render("calendar.html", entity=entity, fragment="calendar", month=first,
                      days=days, timedelta=timedelta,
                      today_month=inst().today().strftime("%Y-%m"), **common)
    data = listdata.build(model_entity, request.args)
    for message in data.errors:
        flash(message, "warning")
    common["view"] = "table"
    return render("list.html", entity=entity, fragment="results", data=data,
                  editable_fields=_bulk_fields(model_entity), **common)


def _back_url(entity: str) -> str:
    """Where bulk actions return: this list as the user sees it (htmx keeps the address in
    HX-Current-URL when it refreshed only the results)."""
    if is_htmx() and request.headers.get("HX-Current-URL"):
        parts = urlsplit(request.headers["HX-Current-URL"])
        return parts.path + ("?" + parts.query if parts.query else "")
    return request.full_path.rstrip("?")


# -- kanban -----------------------------------------------------------------------------------

def kanban_board(entity: Entity) -> dict[str, Any]:
    kanban = entity.views.kanban
    assert kanban is not None
    group = entity.fields[kanban.group_by]
    filters, _ = listdata.filter_args(entity, request.args)
    q = (request.args.get("q") or "").strip() or None
    if entity.workflow is not None and entity.workflow.field == group.name:
        values = [(s.name, tr(s.label)) for s in entity.workflow.states.values()]
    else:
        values = [(o.value, tr(o.label)) for o in group.options]
    hidden = hidden_fields(entity.name)
    card_fields = [entity.fields[n] for n in kanban.card if n in entity.fields and n not in hidden]
    columns = []
    instance, who = inst(), actor()
    for value, label in values:
        column_filters = {**filters, group.name: value}
        page = records.query(instance, who, entity.name, filters=column_filters, q=q,
                             sort=list(entity.views.list.sort), limit=KANBAN_PER_COLUMN,
                             cursor=None)
        rows = listdata.natives(entity, page.rows)
        count, exact = records.count(instance, who, entity.name, filters=column_filters, q=q,
                                     cap=listdata.COUNT_CAP)
        titles = listdata.link_titles(entity, rows)
        columns.append({"value": value, "label": label, "rows": rows, "titles": titles,
                        "row_titles": listdata.row_titles(entity, rows, titles),
                        "count": count if exact else f"{count:,}+"})
    return {"group": group, "columns": columns, "card_fields": card_fields,
            "choices": values}


def move(entity: str, record_id: int) -> ResponseReturnValue:
    """Move a kanban card: set the group field, or take the workflow transition to that
    state. The same write as the form, with the same permission and validation checks."""
    model_entity = entity_or_404(entity, "update")
    kanban = model_entity.views.kanban
    if kanban is None:
        abort(404, "This list has no kanban view.")
    value = request.form.get("value", "")
    version = request.form.get("version", "")
    try:
        record = records.get(inst(), actor(), entity, record_id)
        waiting = False
        if model_entity.workflow is not None and model_entity.workflow.field == kanban.group_by:
            waiting = _transition_to(model_entity, record, value)
        else:
            records.update(inst(), actor(), entity, record_id, {kanban.group_by: value},
                           version=int(version) if version.isdigit() else record["version"])
        title = listdata.record_title(model_entity, record)
        if waiting:
            flash(f"“{title}” waits for approval before it moves.", "info")
        else:
            flash(f"Moved “{title}”.", "success")
    except ValidationFailed as exc:
        flash("Not moved: " + "; ".join(
            f"{field_label(model_entity, k) if k != '_record' else ''} {' '.join(v)}".strip()
            for k, v in exc.errors.items()), "error")
    except RecordError as exc:
        flash("Not moved: " + exc.message, "error")
    args = {k: v for k, v in request.args.items()}
    args["view"] = "kanban"
    if is_htmx():
        return render("kanban.html", entity=entity, fragment="board",
                      board=kanban_board(model_entity), view="kanban",
                      model_entity=model_entity, args=current_args(), saved_views=[],
                      can_create=can(entity, "create"),
                      can_update=True, can_delete=can(entity, "delete"), query_string="")
    return redirect(url_for("web.list", entity=entity, **args))


def _transition_to(entity: Entity, record: dict[str, Any], state: str) -> bool:
    """Take the transition that leads to `state`; True when it waits for an approval."""
    workflow = entity.workflow
    assert workflow is not None
    current = record.get(workflow.field)
    if current == state:
        return False
    candidates = [t for t in workflow.available_from(current) if t.to == state]
    if not candidates:
        raise ValidationFailed({"_record": [
            f"There is no step from “{current}” to “{state}”; open the record to see "
            "the steps it can take."]})

    result = engine.fire(inst(), actor(), entity.name, record["id"], candidates[0].name,
                         version=record.get("version"))
    return result.status == 202


# -- CSV export -------------------------------------------------------------------------------

def export_csv(entity: str) -> ResponseReturnValue:
    model_entity = entity_or_404(entity)
    filters, _ = listdata.filter_args(model_entity, request.args)
    sort = listdata.sort_of(model_entity, request.args)
    q = (request.args.get("q") or "").strip() or None
    hidden = hidden_fields(entity)
    fields = [f for f in model_entity.fields.values()
              if f.name not in hidden and f.type != "links"]
    instance, who = inst(), actor()

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([f.name for f in fields])
        cursor, sent = None, 0
        while sent < EXPORT_MAX_ROWS:
            page = records.query(instance, who, entity, filters=filters, q=q, sort=sort,
                                 limit=EXPORT_PAGE, cursor=cursor)
            batch = list(page.rows)
            with instance.engine.connect() as conn:
                titles = records.link_titles(instance, conn, entity, batch,
                                             actor=who) if batch else {}
            for row in batch:
                writer.writerow([_csv_value(row.get(f.name), f, titles) for f in fields])
            sent += len(batch)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            cursor = page.next_cursor
            if not cursor or not batch:
                break

    name = f"{entity}-{instance.today().isoformat()}.csv"
    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _csv_value(value: Any, field: Any, titles: dict) -> str:
    if value is None:
        return ""
    if field.type == "link":
        value = (titles.get(field.name) or {}).get(value, value)
    elif isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if isinstance(value, bool):
        text = "true" if value else "false"
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        text = "'" + text  # a spreadsheet must not run a cell as a formula
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


# -- bulk edit and delete ---------------------------------------------------------------------

def _bulk_fields(entity: Entity) -> list[Any]:
    readonly = readonly_fields(entity.name)
    state = entity.workflow.field if entity.workflow else None
    return [f for f in entity.user_fields if f.editable and f.name not in readonly
            and f.name != state and f.type not in ("links", "file", "image", "richtext")]


def bulk(entity: str) -> ResponseReturnValue:
    model_entity = entity_or_404(entity)
    action = request.form.get("action", "")
    ids = [int(i) for i in request.form.getlist("ids") if i.isdigit()][:BULK_MAX]
    back = request.form.get("back") or url_for("web.list", entity=entity)
    if not back.startswith("/") or back.startswith("//"):
        back = url_for("web.list", entity=entity)
    if not ids:
        flash("Select at least one record first.", "warning")
        return redirect(back)
    instance, who = inst(), actor()
    if action == "delete":
        if not can(entity, "delete"):
            abort(403, "You may not delete these records.")
        if request.form.get("confirm") != "yes":
            rows = []
            for record_id in ids:
                try:
                    rows.append(records.get(instance, who, entity, record_id))
                except RecordError:
                    continue
            return render("bulk_confirm.html", entity=entity, model_entity=model_entity,
                          rows=rows, titles=listdata.row_titles(model_entity, rows), back=back)
        done, failed = 0, []
        for record_id in ids:
            try:
                records.delete(instance, who, entity, record_id)
                done += 1
            except RecordError as exc:
                failed.append(f"#{record_id}: {exc.message}")
        _report(done, failed, "deleted")
        return redirect(back)
    if action == "edit":
        name = request.form.get("field", "")
        allowed = {f.name: f for f in _bulk_fields(model_entity)}
        if name not in allowed:
            flash("Choose a field to change.", "warning")
            return redirect(back)
        value = request.form.get("value", "")
        done, failed = 0, []
        for record_id in ids:
            try:
                record = records.get(instance, who, entity, record_id)
                records.update(instance, who, entity, record_id, {name: value},
                               version=record["version"])
                done += 1
            except ValidationFailed as exc:
                failed.append(f"#{record_id}: " + "; ".join(
                    m for msgs in exc.errors.values() for m in msgs))
            except RecordError as exc:
                failed.append(f"#{record_id}: {exc.message}")
        _report(done, failed, f"changed ({field_label(model_entity, name)})")
        return redirect(back)
    flash("Choose what to do with the selected records.", "warning")
    return redirect(back)


def _report(done: int, failed: list[str], verb: str) -> None:
    if done:
        flash(f"{done} record{'s' if done != 1 else ''} {verb}.", "success")
    if failed:
        shown = "; ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5
                                         else "")
        flash(f"{len(failed)} not {verb.split(' ')[0]}: {shown}", "error")


# -- saved views ------------------------------------------------------------------------------

def _views_table() -> sa.Table:
    return inst().schema.system("saved_view")


def _saved_views(entity: str) -> list[dict[str, Any]]:
    table = _views_table()
    with inst().engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.id, table.c.name).where(
            table.c.user_id == actor().user_id, table.c.entity == entity).order_by(
            table.c.name)).mappings().all()
    return [dict(r) for r in rows]


def _saved_settings(entity: str, view_id: int) -> dict[str, Any] | None:
    table = _views_table()
    with inst().engine.connect() as conn:
        settings = conn.execute(sa.select(table.c.settings).where(
            table.c.id == view_id, table.c.user_id == actor().user_id,
            table.c.entity == entity)).scalar()
    if settings is None:
        return None
    if isinstance(settings, str):
        settings = json.loads(settings)
    return {k: v for k, v in dict(settings).items() if k not in ("saved", "cursor")}


def save_view(entity: str) -> ResponseReturnValue:
    entity_or_404(entity)
    name = (request.form.get("name") or "").strip()[:100]
    from urllib.parse import parse_qsl

    args = dict(parse_qsl(request.form.get("query", ""), keep_blank_values=False))
    args = {k: v for k, v in args.items() if k not in ("saved", "cursor", "_")}
    if not name:
        flash("Give the view a name to save it.", "warning")
        return redirect(url_for("web.list", entity=entity, **args))
    table = _views_table()
    with write_transaction(inst().engine) as conn:
        conn.execute(table.delete().where(table.c.user_id == actor().user_id,
                                          table.c.entity == entity, table.c.name == name))
        conn.execute(table.insert().values(user_id=actor().user_id, entity=entity, name=name,
                                           settings=args, created_at=inst().now()))
    flash(f"Saved the view “{name}”.", "success")
    return redirect(url_for("web.list", entity=entity, **args))


def delete_view(entity: str, view_id: int) -> ResponseReturnValue:
    entity_or_404(entity)
    table = _views_table()
    with write_transaction(inst().engine) as conn:
        conn.execute(table.delete().where(table.c.id == view_id,
                                          table.c.user_id == actor().user_id))
    flash("Saved view removed.", "success")
    return redirect(url_for("web.list", entity=entity))

