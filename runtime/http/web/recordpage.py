"""`/e/<entity>/<id>`: the record's fields by section, its related lists, its timeline (with
the form to log notes, calls, meetings, visits and e-mails), attachments, and delete.
A record of a kind (`kinds:`) shows only the fields and related lists of its kind.

The workflow bar and approval panel plug into `record.html`'s `{% block workflow %}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NoReturn

from flask import Blueprint, abort, flash, g, redirect, request, send_file, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from markupsafe import Markup

from builder.model import Entity, Field
from runtime.core.errors import NotFound, RecordError, ValidationFailed
from runtime.core.values import to_json
from runtime.http.auth import safe_next
from runtime.http.web import attachments, listdata
from runtime.http.web.forms import states
from runtime.http.web.layout import (
    actor,
    can,
    entity_label,
    entity_or_404,
    field_label,
    hidden_fields,
    inst,
    language,
    render,
    tr,
)
from runtime.http.web.widgets import display
from runtime.read import permissions
from runtime.read import timeline as read_timeline
from runtime.read.titles import date_text
from runtime.write import records, timeline

RELATED_LIMIT = 10
TIMELINE_KINDS = {"note": "Note", "call": "Call", "meeting": "Meeting", "visit": "Visit",
                  "email": "E-mail"}
KIND_ICONS = {"note": "✎", "call": "☎", "meeting": "◷", "visit": "⌂", "email": "✉",
              "attachment": "📎", "change": "↻", "update": "↻", "create": "✚",
              "transition": "➜", "approval": "✔", "follow_up": "⏰", "owner": "⇄"}


@dataclass
class ShownField:
    field: Field
    label: str
    value: Markup
    kind: str


@dataclass
class ShownSection:
    label: str
    columns: int
    fields: list[ShownField]


@dataclass
class RelatedList:
    entity: Entity
    field: str
    label: str
    columns: list[Field]
    rows: list[dict[str, Any]]
    titles: dict[str, dict[Any, str]]
    row_titles: dict[Any, str]
    count: str
    add_url: str | None
    all_url: str


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/e/<entity>/<int:record_id>", "record", record_page)
    bp.add_url_rule("/e/<entity>/<int:record_id>/claim", "claim", claim, methods=["POST"])
    bp.add_url_rule("/e/<entity>/<int:record_id>/delete", "delete", delete_record,
                    methods=["GET", "POST"])
    bp.add_url_rule("/e/<entity>/<int:record_id>/timeline", "log", log_activity,
                    methods=["POST"])
    bp.add_url_rule("/e/<entity>/<int:record_id>/follow-ups/<int:entry_id>/done",
                    "follow_up_done", follow_up_done, methods=["POST"])
    bp.add_url_rule("/e/<entity>/<int:record_id>/attachments", "upload", upload,
                    methods=["POST"])
    bp.add_url_rule("/attachments/<int:attachment_id>", "attachment", download)


def load(entity: Entity, record_id: int) -> dict[str, Any]:
    try:
        record = records.get(inst(), actor(), entity.name, record_id)
    except NotFound:
        _missing(entity, record_id)
    return listdata.natives(entity, [record])[0]


def _missing(entity: Entity, record_id: int) -> NoReturn:
    abort(404, f"There is no {entity_label(entity).lower()} #{record_id}, or you may not "
               "see it.")


def stored_record(entity: Entity, record_id: int) -> dict[str, Any] | None:
    """The record as stored (every field) when this request's record page has read it (and
    found that the user may read it): the workflow panel takes it instead of reading it again.
    Never shown as it is: it holds the fields hidden from the user."""
    kept = g.get("web_stored_record")
    return kept[2] if kept is not None and kept[:2] == (entity.name, record_id) else None


def sections(entity: Entity, record: dict[str, Any],
             titles: dict[str, dict[Any, str]]) -> list[ShownSection]:
    hidden = hidden_fields(entity.name)
    conditional = states(entity, record)
    result = []
    for section in entity.views.form:
        shown = []
        for name in section.fields:
            f = entity.fields.get(name)
            if f is None or name in hidden or not conditional.get(name, {}).get("visible", True):
                continue
            if not entity.shows(record, name):
                continue
            shown.append(ShownField(f, tr(f.label), display(record.get(name), f, titles),
                                    f.type))
        if shown:
            result.append(ShownSection(tr(section.label) if section.label else "",
                                       max(1, min(section.columns, 3)), shown))
    return result


def related_lists(entity: Entity, record: dict[str, Any]) -> list[RelatedList]:
    result = []
    model = inst().model
    kind = entity.kind_of(record)
    for related in entity.views.related:
        child = model.entities.get(related.entity)
        if child is None or not can(child.name, "read"):
            continue
        if kind is not None and (related.entity, related.field) not in kind.related:
            continue
        hidden = hidden_fields(child.name)
        if related.field in hidden:
            continue
        link = child.fields[related.field]
        op = related.field if link.type == "link" else f"{related.field}__contains"
        # `through: guest`: the children of the record this one links to
        parent = record.get(related.through) if related.through else record["id"]
        if parent is None:
            continue
        filters = {op: str(parent)}
        page = records.query(inst(), actor(), child.name, filters=filters, q=None,
                             sort=list(child.views.list.sort), limit=RELATED_LIMIT,
                             cursor=None)
        rows = listdata.natives(child, page.rows)
        count, exact = records.count(inst(), actor(), child.name, filters=filters, q=None,
                                     cap=listdata.COUNT_CAP)
        titles, names = listdata.page_titles(child, rows)
        columns = [child.fields[n] for n in child.views.list.columns
                   if n in child.fields and n not in hidden and n != related.field][:5]
        add_url = url_for("web.new", entity=child.name, **{related.field: parent},
                          next=url_for("web.record", entity=entity.name,
                                       record_id=record["id"])) \
            if can(child.name, "create") and link.type == "link" else None
        result.append(RelatedList(
            child, related.field, tr(related.label) or entity_label(child, plural=True),
            columns, rows, titles, names,
            f"{count:,}" if exact else f"{count:,}+", add_url,
            url_for("web.list", entity=child.name, **{op: parent})))
    return result


def timeline_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timeline's entries with their dates as dates (`read_timeline` gives them as text)."""
    result = []
    for entry in entries:
        item = dict(entry)
        item["at"] = _parse(item.get("at"), datetime)
        item["follow_up_on"] = _parse(item.get("follow_up_on"), date)
        result.append(item)
    return result


def entry_label(entry: dict[str, Any]) -> str:
    """What a timeline entry is, in words."""
    kind = entry.get("kind")
    if kind == "change":
        return gettext("Created the record") if entry.get("action") == "create" else \
            gettext("Changed")
    if kind == "transition":
        return gettext("Moved")
    if kind == "approval":
        return gettext("Approval")
    if kind == "attachment":
        return gettext("Attached a file")
    if kind == "owner":
        return gettext("Owner")
    if kind == "merge":
        return gettext("Merge")
    if kind == "automation":
        return gettext("Automation")
    if kind in TIMELINE_KINDS:
        return gettext(TIMELINE_KINDS[str(kind)])
    return str(kind).replace("_", " ").capitalize()


def _parse(value: Any, kind: type) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if kind is date:
            return date.fromisoformat(value[:10])
        return datetime.fromisoformat(value.replace("Z", ""))
    except ValueError:
        return value


def record_page(entity: str, record_id: int) -> ResponseReturnValue:
    model_entity = entity_or_404(entity)
    try:  # the record read once, for the page, its timeline and its workflow panel
        stored, entries = read_timeline.record_and_entries(inst(), actor(), entity, record_id)
    except NotFound:
        _missing(model_entity, record_id)
    g.web_stored_record = (entity, record_id, stored)
    record = listdata.natives(model_entity, [
        to_json(model_entity, stored, hidden_fields(entity))])[0]
    titles, names = listdata.page_titles(model_entity, [record])
    title = names[record["id"]]
    files = attachments.listing(entity, record_id)
    return render(
        "record.html", entity=entity, fragment="record", model_entity=model_entity,
        record=record, title=title, titles=titles,
        sections=sections(model_entity, record, titles),
        related=related_lists(model_entity, record),
        timeline=timeline_entries(entries), kinds=TIMELINE_KINDS,
        icons=KIND_ICONS, entry_label=entry_label, attachments=files,
        human_size=attachments.human_size,
        can_update=can(entity, "update", record), can_delete=can(entity, "delete", record),
        can_comment=can(entity, "comment", record),
        can_claim=permissions.may_claim(inst(), actor(), entity, record),
        meta=_meta(model_entity, record, titles), today=inst().today())


def _meta(entity: Entity, record: dict[str, Any], titles: dict) -> list[tuple[str, Markup]]:
    hidden = hidden_fields(entity.name)
    result = []
    kind = entity.kind_of(record)
    if kind is not None and entity.kind_field not in hidden:
        result.append((field_label(entity, entity.kind_field),
                       Markup('<span class="kind-badge">{}</span>').format(tr(kind.label))))
    for name in ("owner", "created_at", "updated_at", "last_activity_at"):
        f = entity.fields.get(name)
        if f is not None and name not in hidden and record.get(name) is not None:
            result.append((field_label(entity, name), display(record.get(name), f, titles)))
    return result


def claim(entity: str, record_id: int) -> ResponseReturnValue:
    """Make the signed-in user the owner of an unowned record they may read: an update of
    `owner` alone, which the write path permits as a claim (docs/permissions.md)."""
    model_entity = entity_or_404(entity)
    record = load(model_entity, record_id)
    title = listdata.record_title(model_entity, record)
    try:
        records.update(inst(), actor(), entity, record_id, {"owner": actor().user_id},
                       version=record["version"])
    except RecordError as exc:
        flash(f"“{title}” was not claimed: {refusal(exc)}", "error")
    else:
        flash(gettext("“%(title)s” is yours now.", title=title), "success")
    return redirect(url_for("web.record", entity=entity, record_id=record_id))


def refusal(exc: RecordError) -> str:
    """Why the write path refused, in one line for a flash message, in the reader's language:
    each field's messages after its name ("email: must be an e-mail address"), or the
    refusal's message."""
    if isinstance(exc, ValidationFailed):
        return "; ".join((f"{k}: " if k != "_record" else "") + " ".join(map(gettext, v))
                         for k, v in exc.errors.items())
    return gettext(exc.message)


def delete_record(entity: str, record_id: int) -> ResponseReturnValue:
    model_entity = entity_or_404(entity)
    record = load(model_entity, record_id)
    if not can(entity, "delete", record):
        abort(403, "You may not delete this record.")
    title = listdata.record_title(model_entity, record)
    if request.method == "GET":
        return render("delete.html", entity=entity, model_entity=model_entity, record=record,
                      title=title)
    try:
        records.delete(inst(), actor(), entity, record_id)
    except RecordError as exc:
        flash(f"“{title}” was not deleted: {exc.message}", "error")
        return redirect(url_for("web.record", entity=entity, record_id=record_id))
    flash(gettext("%(what)s “%(title)s” deleted.", what=entity_label(model_entity), title=title),
          "success")
    return redirect(url_for("web.list", entity=entity))


def log_activity(entity: str, record_id: int) -> ResponseReturnValue:
    """Add a note or a logged activity (with an optional next follow-up date): for those with
    the entity's `comment` right on the record (403 otherwise; the page offers no form)."""
    model_entity = entity_or_404(entity)
    record = load(model_entity, record_id)
    if not can(entity, "comment", record):
        abort(403, timeline.no_comment(inst(), entity))

    kind = request.form.get("kind", "note")
    body = (request.form.get("body") or "").strip()
    follow_raw = (request.form.get("follow_up_on") or "").strip()
    errors = []
    if kind not in TIMELINE_KINDS:
        errors.append("Choose what to log: a note, call, meeting, visit or e-mail.")
    if not body:
        errors.append("Write what happened before saving.")
    follow_up = None
    if follow_raw:
        try:
            follow_up = date.fromisoformat(follow_raw)
        except ValueError:
            errors.append("The follow-up date must look like 2026-03-31.")
    if not errors:
        try:
            timeline.add_entry(inst(), actor(), entity, record_id, kind, body,
                               follow_up_on=follow_up)
        except ValidationFailed as exc:
            errors += [m for msgs in exc.errors.values() for m in msgs]
        except RecordError as exc:
            errors.append(exc.message)
    for message in errors:
        flash(message, "error")
    if not errors:
        flash(gettext("%(kind)s logged.", kind=gettext(TIMELINE_KINDS[kind])) + (
            " " + gettext("Follow-up on %(date)s.", date=date_text(follow_up, language()))
            if follow_up else ""), "success")
    return redirect(url_for("web.record", entity=entity, record_id=record_id) + "#timeline")


def follow_up_done(entity: str, record_id: int, entry_id: int) -> ResponseReturnValue:
    model_entity = entity_or_404(entity)
    load(model_entity, record_id)

    try:
        timeline.complete_follow_up(inst(), actor(), entry_id, entity=entity,
                                    record_id=record_id)
        flash(gettext("Follow-up marked as done."), "success")
    except RecordError as exc:
        flash(exc.message, "error")
    return redirect(safe_next(request.form.get("next")) or url_for(
        "web.record", entity=entity, record_id=record_id) + "#timeline")


def upload(entity: str, record_id: int) -> ResponseReturnValue:
    model_entity = entity_or_404(entity)
    record = load(model_entity, record_id)
    if not can(entity, "update", record):
        abort(403, "You may not attach files to this record.")
    files = [f for f in request.files.getlist("file") if f and f.filename]
    if not files:
        flash(gettext("Choose a file to upload."), "warning")
    for item in files:
        try:
            attachments.store(entity, record_id, item)
            flash(gettext("Attached “%(name)s”.", name=item.filename), "success")
        except ValueError as exc:
            flash(f"Not attached: {exc}.", "error")
    return redirect(url_for("web.record", entity=entity, record_id=record_id) + "#files")


def download(attachment_id: int) -> ResponseReturnValue:
    row = attachments.find(attachment_id)
    if row is None:
        abort(404, "That file does not exist (any more).")
    if row["record_id"]:
        entity = entity_or_404(row["entity"])
        load(entity, row["record_id"])  # 404 unless the user may read the record
    elif row["user_id"] != actor().user_id:
        abort(404, "That file does not exist (any more).")
    path = attachments.path_of(row)
    if not path.is_file():
        abort(404, "The file is missing from storage; ask an administrator.")
    inline = row["content_type"].startswith("image/") or row["content_type"] == \
        "application/pdf"
    response = send_file(path, mimetype=row["content_type"], as_attachment=not inline,
                         download_name=row["filename"], max_age=0)
    # An uploaded file never runs as part of this site, even when a browser shows it inline.
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response
