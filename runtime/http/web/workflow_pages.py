"""The workflow on the web pages: the state bar and transition buttons of a record, its
approval panel, the approval inbox (`/approvals`) and the notification bell (`/notifications`).

Everything here works with JavaScript off (plain forms that post and redirect back), and goes
through `runtime.process.workflow`, `runtime.process.approvals` and
`runtime.process.notifications`:

- `record_workflow.html` is included by `record.html`'s `{% block workflow %}` and asks
  `workflow_panel(entity, record_id)` for its data;
- `_notifications.html` is included in the top bar of `base.html` and asks `notification_bell()`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, current_app, flash, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from werkzeug.datastructures import MultiDict

from builder.model import Entity
from runtime.core.errors import RecordError
from runtime.http.auth import safe_next
from runtime.http.web.forms import resolve_links
from runtime.http.web.layout import (
    actor,
    before_request,
    entity_label,
    entity_or_404,
    field_label,
    inst,
    render,
    tr,
)
from runtime.http.web.localize import typed
from runtime.http.web.recordpage import refusal, stored_record
from runtime.http.web.widgets import read_form
from runtime.process import approvals, notifications, record_panel, workflow
from runtime.read.queries import as_id

INBOX_TABS = {"pending": "Waiting for me", "all": "All my requests"}
BELL_LIMIT = 8
PAGE_LIMIT = 100


def register(app: Flask) -> None:
    """Add the approval and notification pages and the template helpers to `app`."""
    inbox_bp = Blueprint("approvals", __name__)
    inbox_bp.before_request(before_request)
    inbox_bp.add_url_rule("/approvals", "inbox", inbox)
    inbox_bp.add_url_rule("/approvals/<int:request_id>/<any(approve, reject, recall):action>",
                          "decide", decide, methods=["POST"])
    app.register_blueprint(inbox_bp)
    flow_bp = Blueprint("workflow", __name__)
    flow_bp.before_request(before_request)
    flow_bp.add_url_rule("/e/<entity>/<int:record_id>/transitions/<name>", "fire", fire,
                         methods=["POST"])
    flow_bp.add_url_rule("/notifications", "notifications", notifications_page)
    flow_bp.add_url_rule("/notifications/<int:notification_id>", "open", open_notification)
    flow_bp.add_url_rule("/notifications/read", "read", mark_all_read, methods=["POST"])
    app.register_blueprint(flow_bp)
    app.jinja_env.globals.update(workflow_panel=workflow_panel,
                                 notification_bell=notification_bell)


def _back(default: str) -> str:
    """Where to return after a form: the `next` field when it is a path on this site."""
    return safe_next(request.form.get("next") or request.args.get("next")) or default


def _flash_error(prefix: str, exc: RecordError) -> None:
    flash(prefix + refusal(exc), "error")


# -- the record page --------------------------------------------------------------------------

def workflow_panel(entity: str, record_id: int) -> dict[str, Any] | None:
    """What `record_workflow.html` shows: the states (with the current one), the transitions
    the user may take (with inputs for the fields they require), and approval requests."""
    model_entity = inst().model.entities.get(entity)
    if model_entity is None or model_entity.workflow is None:
        return None
    flow = model_entity.workflow
    offered, requests, stored = record_panel.workflow_data(
        inst(), actor(), entity, record_id, stored_record(model_entity, record_id))
    current = stored.get(flow.field)
    states = [{"name": name, "label": tr(state.label), "final": state.final,
               "current": name == current} for name, state in flow.states.items()]
    actions = []
    for item in offered:
        if item["code"] in ("state", "role", "approval"):
            continue
        fields = []
        for name in item["missing"]:
            f = model_entity.fields.get(name)
            if f is not None:
                fields.append({"name": name, "label": field_label(model_entity, name),
                               "type": f.type, "to": f.to, "options": [
                                   (o.value, tr(o.label)) for o in f.options]})
        actions.append({**item, "fields": fields,
                        "usable": item["allowed"] or item["code"] == "requires"})
    pending = next((r for r in requests if r["status"] == approvals.PENDING), None)
    return {"states": states, "current": current, "actions": actions, "pending": pending,
            "history": [r for r in requests if r is not pending][:5],
            "version": stored.get("version"), "final": bool(
                flow.states.get(current) and flow.states[current].final)}


def fire(entity: str, record_id: int, name: str) -> ResponseReturnValue:
    model_entity = entity_or_404(entity)
    back = url_for("web.record", entity=entity, record_id=record_id)
    errors: dict[str, list[str]] = {}
    values = _transition_values(model_entity, errors)
    if errors:
        flash("Not moved: " + "; ".join(f"{field_label(model_entity, name)}: {' '.join(said)}"
                                        for name, said in errors.items()), "error")
        return redirect(back)
    raw_version = request.form.get("version") or ""
    version = as_id(raw_version)
    try:
        result = workflow.fire(inst(), actor(), entity, record_id, name,
                               comment=request.form.get("comment"), values=values or None,
                               version=version)
    except RecordError as exc:
        _flash_error("Not moved: ", exc)
        return redirect(back)
    flow = model_entity.workflow
    assert flow is not None
    if result.status == 202:
        flash(gettext("%(what)s waits for approval (“%(approval)s”) before it moves on.",
                      what=entity_label(model_entity), approval=result.approval["label"]),
              "info")
    else:
        state = flow.states.get(result.record.get(flow.field))
        flash(gettext("%(what)s moved to “%(state)s”.", what=entity_label(model_entity),
                      state=tr(state.label) if state else ""), "success")
    return redirect(back)


def _transition_values(entity: Entity, errors: dict[str, list[str]]) -> dict[str, Any]:
    """The `value.FIELD` inputs of a transition form; a link comes from the same picker as
    on record forms (`value.room`, `value.room__q`, `value.room__shown`), so a title typed
    without JavaScript is looked up as there."""
    posted = MultiDict([(key[len("value."):], value)
                        for key, value in request.form.items(multi=True)
                        if key.startswith("value.")])
    links = [f for f in entity.fields.values() if f.type == "link" and f.name in posted]
    chosen = resolve_links(entity, read_form(posted, links), errors)
    values = {key: typed(entity.fields[key].type, value) if key in entity.fields else value
              for key, value in posted.items()
              if "__" not in key and value != "" and key not in chosen}
    values.update({key: value for key, value in chosen.items() if value is not None})
    return values


# -- the inbox --------------------------------------------------------------------------------

def inbox() -> ResponseReturnValue:
    tab = request.args.get("tab", "pending")
    if tab not in INBOX_TABS:
        abort(404, "There is no such tab; choose “Waiting for me” or “All my requests”.")
    items = approvals.inbox(inst(), actor(), "pending" if tab == "pending" else "all",
                            limit=PAGE_LIMIT)
    for item in items:
        ent = inst().model.entities.get(item["entity"])
        item["entity_label"] = entity_label(ent) if ent else item["entity"]
    return render("approvals.html", fragment="inbox", items=items, tab=tab, tabs=INBOX_TABS)


def decide(request_id: int, action: str) -> ResponseReturnValue:
    comment = request.form.get("comment")
    raw_version = request.form.get("version") or ""
    try:
        if action == "recall":
            approvals.recall(inst(), actor(), request_id, comment=comment)
            flash(gettext("Request recalled; the record is unlocked."), "success")
        else:
            approvals.decide(inst(), actor(), request_id, action, comment=comment,
                             version=as_id(raw_version))
            flash(gettext("Approved.") if action == "approve" else gettext("Rejected."),
                  "success")
    except RecordError as exc:
        _flash_error("Not done: ", exc)
    return redirect(_back(url_for("approvals.inbox")))


# -- notifications ----------------------------------------------------------------------------

def notification_bell() -> dict[str, Any]:
    """The unread count and the latest unread notifications of the signed-in user."""
    if "web_bell" in g:
        return g.web_bell
    who = actor()
    bell: dict[str, Any] = {"count": 0, "items": []}
    if who.user_id is not None:
        try:
            bell = notifications.bell(inst(), who.user_id, BELL_LIMIT)
        except Exception:  # noqa: BLE001 - a bell must never break the page
            current_app.logger.exception("notification bell failed")
    g.web_bell = bell
    return bell


def notifications_page() -> ResponseReturnValue:
    items = notifications.latest(inst(), actor().user_id, PAGE_LIMIT)
    return render("notifications.html", fragment="notifications", items=items)


def open_notification(notification_id: int) -> ResponseReturnValue:
    """Mark one notification read and go where it points."""
    row = notifications.open_one(inst(), actor().user_id, notification_id)
    if row is None:
        abort(404, "That notification does not exist (or is someone else's).")
    return redirect(safe_next(row["link"]) or url_for("workflow.notifications"))


def mark_all_read() -> ResponseReturnValue:
    count = notifications.mark_all_read(inst(), actor().user_id)
    flash(f"{count} notification{'s' if count != 1 else ''} marked as read.", "success")
    return redirect(_back(url_for("workflow.notifications")))
