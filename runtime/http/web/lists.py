"""`/e/<entity>`: the list (table, kanban, calendar), saved views, CSV export, bulk actions,
and the kanban move (the same `records.update` as the form, with the same checks)."""

from __future__ import annotations

from itertools import chain
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Blueprint, Response, abort, flash, redirect, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from builder.model import Entity
from runtime.core.errors import RecordError, ValidationFailed
from runtime.http.auth import safe_next
from runtime.http.web import activefilters, calendarpage, listdata
from runtime.http.web.forms import may_assign
from runtime.http.web.layout import (
    actor,
    can,
    current_args,
    entity_or_404,
    field_label,
    hidden_fields,
    inst,
    is_htmx,
    language,
    query_url,
    readonly_fields,
    render,
    tr,
)
from runtime.http.web.localize import zone
from runtime.process import workflow as engine
from runtime.read import dashboards
from runtime.read.export import Export, csv_chunks, csv_dialect
from runtime.read.listrequest import Filter, ListRequest
from runtime.read.queries import as_id
from runtime.write import bulk as bulk_write
from runtime.write import records, views

EXPORT_MAX_ROWS = 100_000
BULK_MAX = 500
KANBAN_PER_COLUMN = 50


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/e/<entity>", "list", list_page)
    bp.add_url_rule("/e/<entity>/export.csv", "export", export_csv)
    bp.add_url_rule("/e/<entity>/bulk", "bulk", bulk, methods=["POST"])
    bp.add_url_rule("/e/<entity>/columns", "columns", choose_columns)
    bp.add_url_rule("/e/<entity>/views", "save_view", save_view, methods=["POST"])
    bp.add_url_rule("/e/<entity>/views/<int:view_id>/delete", "delete_view", delete_view,
                    methods=["POST"])
    bp.add_url_rule("/e/<entity>/<int:record_id>/move", "move", move, methods=["POST"])


def list_page(entity: str) -> ResponseReturnValue:
    model_entity = entity_or_404(entity)
    saved = request.args.get("saved")
    if saved and saved.isdigit():
        settings = views.saved_settings(inst(), actor(), entity, saved)
        if settings is None:
            abort(404, "That saved view does not exist (any more).")
        return redirect(query_url(settings, url_for("web.list", entity=entity)))
    view = request.args.get("view") or "table"
    wanted = listdata.list_request(model_entity, request.args)  # once, for every view
    args = _list_args(model_entity)
    common = {"model_entity": model_entity, "view": view,
              "saved_views": views.saved_views(inst(), actor(), entity),
              "can_create": can(entity, "create"), "can_update": can(entity, "update"),
              "can_delete": can(entity, "delete"), "can_assign": may_assign(model_entity),
              "args": args,
              "filter_chips": activefilters.chips(model_entity, wanted, args),
              "query_string": urlencode(args, doseq=True),
              "back_url": _back_url(args),
              "filters": listdata.build_filters(model_entity, request.args)}
    if view == "kanban" and model_entity.views.kanban is not None:
        _warn(listdata.warnings(wanted))
        return render("kanban.html", entity=entity, fragment="board",
                      board=kanban_board(model_entity, wanted), **common)
    if view == "calendar" and model_entity.views.calendar is not None:
        cal = calendarpage.build(model_entity, wanted, request.args)
        _warn(listdata.warnings(wanted) + cal.problems)
        return render("calendar.html", entity=entity, fragment="calendar", cal=cal, **common)
    data = listdata.build(model_entity, wanted, request.args)
    _warn(data.errors)
    common["view"] = "table"
    return render("list.html", entity=entity, fragment="results", data=data,
                  editable_fields=_bulk_fields(model_entity),
                  column_choices=listdata.column_choices(model_entity,
                                                         request.args.get("columns")),
                  **common)


def _list_args(entity: Entity) -> dict[str, Any]:
    """The list's address as its links carry it: without `chooser` (the chooser opens only
    where asked), `columns` as shown (a column unknown or hidden is left out)."""
    args = current_args(drop=("chooser", "columns"))
    if request.args.get("columns"):
        shown = listdata.visible_columns(entity, request.args["columns"])
        args["columns"] = [",".join(f.name for f in shown)]
    return args


def _warn(messages: list[str]) -> None:
    """What the address asked for that the list could not do: shown, never an error page."""
    for message in messages:
        flash(message, "warning")


def _back_url(args: dict[str, Any]) -> str:
    """Where bulk actions return: this list as the user sees it (htmx keeps the address in
    HX-Current-URL when it refreshed only the results)."""
    if is_htmx() and request.headers.get("HX-Current-URL"):
        parts = urlsplit(request.headers["HX-Current-URL"])
        return parts.path + ("?" + parts.query if parts.query else "")
    return query_url(args, request.script_root + request.path)


# -- kanban -----------------------------------------------------------------------------------

def kanban_board(entity: Entity, wanted: ListRequest) -> dict[str, Any]:
    """A column per group value, each `wanted`'s filters with the group's value (it replaces
    a filter on the group field), search and sort."""
    kanban = entity.views.kanban
    assert kanban is not None
    group = entity.fields[kanban.group_by]
    q = wanted.q
    if entity.workflow is not None and entity.workflow.field == group.name:
        values = [(s.name, tr(s.label)) for s in entity.workflow.states.values()]
    else:
        values = [(o.value, tr(o.label)) for o in group.options]
    hidden = hidden_fields(entity.name)
    card_fields = [entity.fields[n] for n in kanban.card if n in entity.fields and n not in hidden]
    columns = []
    instance, who = inst(), actor()
    # a column's total: of the first money (else number) field on the cards
    summed = next((f for kind in ("money", "decimal", "integer") for f in card_fields
                   if f.type == kind), None)
    for value, label in values:  # the list's filters, read in the reader's zone, and the column's
        column_filters = [*(f for f in wanted.filters if f.key != group.name),
                          Filter(group.name, "eq", value)]
        page = records.query(instance, who, entity.name, filters=column_filters, q=q,
                             sort=wanted.sort, limit=KANBAN_PER_COLUMN, cursor=None)
        rows = listdata.natives(entity, page.rows)
        count, exact = records.count(instance, who, entity.name, filters=column_filters, q=q,
                                     cap=listdata.COUNT_CAP)
        titles, names = listdata.page_titles(entity, rows)
        columns.append({"value": value, "label": label, "rows": rows, "titles": titles,
                        "row_titles": names,
                        "count": count if exact else f"{count:,}+",
                        "total": None if summed is None else dashboards.list_total(
                            instance, who, entity, summed.name, column_filters, q, zone())})
    return {"group": group, "columns": columns, "card_fields": card_fields,
            "choices": values, "summed": summed}


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
                           version=as_id(version) or record["version"])
        title = listdata.record_title(model_entity, record)
        if waiting:
            flash(gettext("“%(title)s” waits for approval before it moves.", title=title),
                  "info")
        else:
            flash(gettext("Moved “%(title)s”.", title=title), "success")
    except ValidationFailed as exc:
        flash(gettext("Not moved:") + " " + "; ".join(
            f"{field_label(model_entity, k) if k != '_record' else ''} {' '.join(v)}".strip()
            for k, v in exc.errors.items()), "error")
    except RecordError as exc:
        flash(gettext("Not moved:") + " " + gettext(exc.message), "error")
    if is_htmx():
        wanted = listdata.list_request(model_entity, request.args)
        return render("kanban.html", entity=entity, fragment="board",
                      board=kanban_board(model_entity, wanted), view="kanban",
                      model_entity=model_entity, args=current_args(), saved_views=[],
                      can_create=can(entity, "create"),
                      can_update=True, can_delete=can(entity, "delete"), query_string="")
    # the board as it was: its address as given (url_for would take `entity=` for its own)
    return redirect(query_url(current_args(), url_for("web.list", entity=entity),
                              view="kanban"))


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
    # the list's records, all of them (no cursor, no page size); what the list page would
    # warn about is left out here too. Columns, cells and formula escaping are those of the
    # one exporter (`runtime.read.export`), the CLI's too; links read as their titles.
    # choices as labels, unless `codes=1` asks for the stored codes (not a filter)
    args = request.args.copy()
    codes = args.pop("codes", "") == "1"
    separator, bom = csv_dialect(args.pop("sep", ""), language())
    wanted = listdata.list_request(model_entity, args)
    instance = inst()
    chunks = csv_chunks(Export(instance, actor(), entity, filters=wanted.filters,
                               q=wanted.q, sort=wanted.sort, limit=EXPORT_MAX_ROWS,
                               titles=True, codes=codes), separator, bom)
    # the first page is read now, so that a problem answers as an error page, not as a
    # download cut short
    first = next(chunks)
    name = f"{entity}-{instance.today().isoformat()}.csv"
    return Response(stream_with_context(chain([first], chunks)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# -- bulk edit and delete ---------------------------------------------------------------------

def _bulk_fields(entity: Entity) -> list[Any]:
    readonly = readonly_fields(entity.name)
    state = entity.workflow.field if entity.workflow else None
    return [f for f in entity.user_fields if f.editable and f.name not in readonly
            and f.name != state and f.type not in ("links", "file", "image", "richtext")]


def bulk(entity: str) -> ResponseReturnValue:
    model_entity = entity_or_404(entity)
    action = request.form.get("action", "")
    ids = [i for i in map(as_id, request.form.getlist("ids")) if i is not None][:BULK_MAX]
    back = safe_next(request.form.get("back")) or url_for("web.list", entity=entity)
    if not ids:
        flash(gettext("Select at least one record first."), "warning")
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
        outcomes = bulk_write.delete_many(instance, who, entity, ids)
        failed = [f"#{o.line}: {o.error.message}" for o in outcomes if o.error is not None]
        _report(len(outcomes) - len(failed), failed, "deleted")
        return redirect(back)
    if action == "edit":
        name = request.form.get("field", "")
        allowed = {f.name: f for f in _bulk_fields(model_entity)}
        if name not in allowed:
            flash(gettext("Choose a field to change."), "warning")
            return redirect(back)
        value = request.form.get("value", "")
        outcomes = bulk_write.update_many(instance, who, entity,
                                          [(i, {name: value}, None) for i in ids])
        failed = []
        for o in outcomes:
            if isinstance(o.error, ValidationFailed):
                failed.append(f"#{o.line}: " + "; ".join(  # "Temperature must be …"
                    f"{field_label(model_entity, n)} {m}" if n in model_entity.fields else m
                    for n, msgs in o.error.errors.items() for m in msgs))
            elif o.error is not None:
                failed.append(f"#{o.line}: {o.error.message}")
        _report(len(outcomes) - len(failed), failed,
                f"changed ({field_label(model_entity, name)})")
        return redirect(back)
    if action == "assign" and may_assign(model_entity):
        return _assign(model_entity, ids, back)
    flash(gettext("Choose what to do with the selected records."), "warning")
    return redirect(back)


def _assign(entity: Entity, ids: list[int], back: str) -> ResponseReturnValue:
    """"Assign to…": make the chosen user the owner of every selected record, each through
    the write path (which checks `assign` on each record and keeps it on the timeline)."""
    owner = as_id(request.form.get("owner", ""))
    typed = (request.form.get("owner__q") or "").strip()
    if owner is None and typed:  # typed without picking (JavaScript off)
        owner = listdata.resolve_title(entity.fields["owner"], typed)
    if owner is None:
        flash(gettext("Choose the user to assign the selected records to."), "warning")
        return redirect(back)
    instance, who = inst(), actor()
    done, failed = 0, []
    for record_id in ids:
        try:
            record = records.get(instance, who, entity.name, record_id)
            records.update(instance, who, entity.name, record_id, {"owner": owner},
                           version=record["version"])
            done += 1
        except ValidationFailed as exc:
            failed.append(f"#{record_id}: " + "; ".join(
                m for msgs in exc.errors.values() for m in msgs))
        except RecordError as exc:
            failed.append(f"#{record_id}: {exc.message}")
    name = listdata.title_of("user", owner) or f"#{owner}"
    _report(done, failed, f"assigned to {name}")
    return redirect(back)


def _report(done: int, failed: list[str], verb: str) -> None:
    if done:
        flash(f"{done} record{'s' if done != 1 else ''} {verb}.", "success")
    if failed:
        shown = "; ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5
                                         else "")
        flash(f"{len(failed)} not {verb.split(' ')[0]}: {shown}", "error")


# -- the column chooser -----------------------------------------------------------------------

def choose_columns(entity: str) -> ResponseReturnValue:
    """The column chooser's form, a GET so that it works without JavaScript. The ticked `col`s
    in their order, one of them moved by its arrow (`move=up:status`), become the list's
    `columns=`; after a move the chooser stays open (`chooser=open`); `reset` goes back to
    the view's columns. The rest of the address is the list's own and is kept."""
    model_entity = entity_or_404(entity)
    args = current_args(drop=("col", "move", "reset", "columns", "chooser", "cursor"))
    list_url = url_for("web.list", entity=entity)
    if "reset" in request.args:
        return redirect(query_url(args, list_url))
    offered = {f.name for f in listdata.offered_columns(model_entity)}
    names = [n for n in dict.fromkeys(request.args.getlist("col")) if n in offered]
    if not names:
        flash(gettext("Tick at least one column; the list's own columns are shown."),
              "warning")
        return redirect(query_url(args, list_url))
    move = request.args.get("move", "")
    return redirect(query_url(args, list_url, columns=",".join(listdata.moved(names, move)),
                              chooser="open" if move else None) + ("#columns" if move else ""))


# -- saved views ------------------------------------------------------------------------------

def save_view(entity: str) -> ResponseReturnValue:
    entity_or_404(entity)
    name = (request.form.get("name") or "").strip()[:100]
    args = views.list_settings(dict(parse_qsl(request.form.get("query", ""),
                                              keep_blank_values=False)))
    # the list's address as given (url_for would take `entity=` or `_method=` for its own)
    back = query_url(args, url_for("web.list", entity=entity))
    if not name:
        flash(gettext("Give the view a name to save it."), "warning")
        return redirect(back)
    views.save_view(inst(), actor(), entity, name, args)
    flash(gettext("Saved the view “%(name)s”.", name=name), "success")
    return redirect(back)


def delete_view(entity: str, view_id: int) -> ResponseReturnValue:
    entity_or_404(entity)
    views.delete_view(inst(), actor(), view_id)
    flash(gettext("Saved view removed."), "success")
    return redirect(url_for("web.list", entity=entity))

