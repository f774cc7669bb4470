"""`/e/<entity>/new` and `/e/<entity>/<id>/edit`: forms from `views.form`, the live
`*_when` conditions (an htmx round trip to the server's evaluator), the link picker, and the
duplicate hint: typing in a field that a duplicate rule matches on asks `/_duplicates` whether
a record with those values exists, and the form shows a link to it before anything is saved.

An entity with record kinds (`kinds:`) lays out the form of one kind: `?kind=` (or the posted
`kind`) chooses it, else the record's own, else the default kind; a picker above the form
switches kind, and only the fields of the chosen kind are shown and read from the post.

A form posts plain HTML form values; `records.create` / `records.update` coerce and validate
them exactly as they do for the API. On a refusal the form comes back with the user's input
and each message next to its field (status 422), or with the conflict explained (409).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from markupsafe import Markup

from builder.expressions import ExpressionError
from builder.model import Entity, Field, Kind
from runtime.core.context import eval_context
from runtime.core.errors import Conflict, NotFound, RecordError, StaleVersion, ValidationFailed
from runtime.core.values import apply_defaults, coerce_value, condition
from runtime.http.auth import safe_next
from runtime.http.web import attachments
from runtime.http.web.layout import (
    actor,
    can,
    entity_label,
    entity_or_404,
    field_label,
    hidden_fields,
    inst,
    readonly_fields,
    render,
    tr,
)
from runtime.http.web.listdata import (
    link_titles,
    natives,
    record_title,
    resolve_title,
    row_titles,
    title_of,
)
from runtime.http.web.widgets import WIDGETS, LinkInput, Widget, display, read_form
from runtime.read import people, permissions
from runtime.read.queries import as_id
from runtime.write import checks, records

PICKER_LIMIT = 10


@dataclass
class FormField:
    field: Field
    label: str
    value: Any
    widget: Widget
    errors: list[str] = field(default_factory=list)
    required: bool = False
    readonly: bool = False
    visible: bool = True
    help: str = ""
    link_title: str = ""
    shown: Markup | None = None  # the value as text, for read-only fields
    conditional: bool = False


@dataclass
class FormSection:
    label: str
    columns: int
    fields: list[FormField]


@dataclass
class KindChoice:
    """One kind of the picker above a form of an entity with kinds."""

    name: str
    label: str
    description: str
    url: str
    current: bool


@dataclass
class FormData:
    entity: Entity
    record: dict[str, Any] | None
    sections: list[FormSection]
    errors: dict[str, list[str]]
    record_errors: list[str]
    conflict: dict[str, Any] | None = None
    title: str = ""
    duplicate_url: str | None = None  # the existing record a `block` duplicate rule found
    duplicate_fields: list[str] = field(default_factory=list)  # typing in one asks for a hint
    kind: Kind | None = None  # the kind whose fields the form shows (posted as `kind`)
    kinds: list[KindChoice] = field(default_factory=list)  # the picker; empty: none shown

    @property
    def has_files(self) -> bool:
        return any(f.widget.input == "file" and not f.readonly
                   for s in self.sections for f in s.fields)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/e/<entity>/new", "new", new_record, methods=["GET", "POST"])
    bp.add_url_rule("/e/<entity>/<int:record_id>/edit", "edit", edit_record,
                    methods=["GET", "POST"])
    bp.add_url_rule("/e/<entity>/_state", "form_state", form_state, methods=["POST"])
    bp.add_url_rule("/e/<entity>/_options", "options", link_options)
    bp.add_url_rule("/e/<entity>/_duplicates", "duplicate_check", duplicate_check,
                    methods=["POST"])


# -- building the form ------------------------------------------------------------------------

def form_kind(entity: Entity, record: dict[str, Any] | None) -> Kind | None:
    """The kind whose form to show: `kind` in the address or the post, else the record's,
    else (on a new record) the default kind. None: every field, as without kinds. 400 for a
    kind the entity does not have."""
    if entity.kind_field is None:
        return None
    asked = request.values.get(entity.kind_field)
    if asked:
        if asked not in entity.kinds:
            abort(400, f"{entity_label(entity, plural=True)} have no kind “{asked}”; choose "
                       "one of: " + ", ".join(tr(k.label) for k in entity.kinds.values()) + ".")
        return entity.kinds[asked]
    if record is not None:
        return entity.kind_of(record)
    return entity.kinds.get(entity.default_kind or "")


def kind_choices(entity: Entity, mode: str, record: dict[str, Any] | None,
                 kind: Kind | None) -> list[KindChoice]:
    """The kind picker: each kind with the address of its form; empty when there is nothing
    to choose (one kind, or a kind the user may not change)."""
    name = entity.kind_field
    if name is None or len(entity.kinds) < 2 or name in hidden_fields(entity.name) \
            or name in (readonly_fields(entity.name) if mode == "edit"
                        else _create_readonly(entity)):
        return []
    args = {k: v for k, v in request.args.items() if k != name}
    result = []
    for option in entity.kinds.values():
        url = url_for("web.new", entity=entity.name, **args, **{name: option.name}) \
            if mode == "new" else url_for("web.edit", entity=entity.name,
                                          record_id=(record or {}).get("id"), **args,
                                          **{name: option.name})
        result.append(KindChoice(option.name, tr(option.label),
                                 tr(option.description) if option.description else "", url,
                                 kind is not None and option.name == kind.name))
    return result


def form_fields(entity: Entity, mode: str, kind: Kind | None = None) -> list[list[Field]]:
    """The fields of each form section the user may see (of `kind`, when given); computed
    fields only when editing."""
    hidden = hidden_fields(entity.name)
    result = []
    for section in entity.views.form:
        fields = []
        for name in section.fields:
            f = entity.fields.get(name)
            if f is None or name in hidden or f.type == "autonumber" and mode == "new":
                continue
            if kind is not None and name not in kind.fields:
                continue
            if f.computed and mode == "new":
                continue
            fields.append(f)
        result.append(fields)
    owner = entity.fields.get("owner")
    if result and owner is not None and may_assign(entity) \
            and not any(owner in fields for fields in result):
        result[0].append(owner)  # chosen with the record's first fields, like any link
    return result


def may_assign(entity: Entity) -> bool:
    """Whether the user may choose the owner of records of `entity` (the `assign` right):
    then forms show the owner picker."""
    return "owner" in entity.fields and "owner" not in hidden_fields(entity.name) \
        and can(entity.name, "assign")


def _changeable(f: Field, entity: Entity) -> bool:
    """A field the form lets the user type into: an editable one, or the owner for those who
    may assign (a system field that is otherwise set by CRMForge)."""
    return f.editable or (f.name == "owner" and may_assign(entity))


def evaluation_record(entity: Entity, stored: dict[str, Any] | None,
                      posted: dict[str, Any]) -> dict[str, Any]:
    """The record as conditions see it: the stored values, overlaid with what the user typed
    (coerced where it can be; a value that does not parse yet counts as empty)."""
    record = dict(stored or {})
    for name, raw in posted.items():
        f = entity.fields[name]
        if isinstance(raw, LinkInput):
            raw = raw.id if not raw.typed else None
        try:
            record[name] = coerce_value(f, raw)
        except (ValueError, TypeError):
            record[name] = None
    if entity.workflow is not None and record.get(entity.workflow.field) is None:
        record[entity.workflow.field] = entity.workflow.initial
    return record


def states(entity: Entity, record: dict[str, Any]) -> dict[str, dict[str, bool]]:
    """visible / required / readonly of every field with a `*_when` condition."""
    ctx = eval_context(inst(), actor(), entity.name, record)
    result = {}
    for f in entity.fields.values():
        if not (f.visible_when or f.required_when or f.readonly_when):
            continue
        try:
            result[f.name] = {
                "visible": f.visible_when is None or condition(f.visible_when, ctx),
                "required": f.required or (f.required_when is not None
                                           and condition(f.required_when, ctx)),
                "readonly": f.readonly_when is not None and condition(f.readonly_when, ctx),
            }
        except ExpressionError:
            continue
    return result


def build_form(entity: Entity, mode: str, record: dict[str, Any] | None,
               values: dict[str, Any], errors: dict[str, list[str]]) -> FormData:
    readonly = readonly_fields(entity.name) if mode == "edit" else \
        _create_readonly(entity)
    kind = form_kind(entity, record)
    current = evaluation_record(entity, record, {k: v for k, v in values.items()
                                                 if k in entity.fields})
    conditional = states(entity, current)
    titles = _titles(entity, current)
    sections = []
    for section, fields in zip(entity.views.form, form_fields(entity, mode, kind),
                               strict=True):
        items = []
        for f in fields:
            value = values.get(f.name, current.get(f.name))
            f = _offered(f, kind, value)
            state = conditional.get(f.name, {})
            locked = not _changeable(f, entity) or f.name in readonly \
                or state.get("readonly", False)
            item = FormField(
                f, tr(f.label), value, WIDGETS[f.type], list(errors.get(f.name, [])),
                required=state.get("required", f.required) and not locked,
                readonly=locked, visible=state.get("visible", True),
                help=tr(f.help) if f.help else "", conditional=f.name in conditional)
            if f.type == "link":
                item.link_title = _link_title(f, value, titles)
            if locked:
                item.shown = display(current.get(f.name), f, titles)
            items.append(item)
        if items:
            sections.append(FormSection(tr(section.label) if section.label else "",
                                        max(1, min(section.columns, 3)), items))
    shown = {ff.field.name for s in sections for ff in s.fields}
    record_errors = list(errors.get("_record", []))
    for name, messages in errors.items():
        if name != "_record" and name not in shown:
            record_errors += [f"{field_label(entity, name)}: {m}" for m in messages]
    return FormData(entity, record, sections, errors, record_errors,
                    duplicate_fields=duplicate_fields(entity, shown), kind=kind,
                    kinds=kind_choices(entity, mode, record, kind))


def _offered(f: Field, kind: Kind | None, value: Any) -> Field:
    """`f` with the options `kind` offers (and the value it has, so that it is not lost)."""
    if kind is None or f.name not in kind.options:
        return f
    held = set(value) if isinstance(value, list) else {value}
    return replace(f, options=tuple(o for o in f.options
                                    if o in kind.offers(f.name, f.options) or o.value in held))


def duplicate_fields(entity: Entity, shown: set[str]) -> list[str]:
    """The shown fields that a duplicate rule of `entity` matches on."""
    covered = {name for rule in entity.duplicates for name in rule.match}
    return [name for name in entity.fields if name in covered and name in shown]


def _create_readonly(entity: Entity) -> frozenset[str]:

    return frozenset(permissions.readonly_fields(inst(), actor(), entity.name, "create"))


def _titles(entity: Entity, record: dict[str, Any]) -> dict[str, dict[Any, str]]:
    return link_titles(entity, [record]) if record.get("id") else {}


def _link_title(f: Field, value: Any, titles: dict[str, dict[Any, str]]) -> str:
    if isinstance(value, LinkInput):
        return value.text
    if value in (None, ""):
        return ""
    known = titles.get(f.name, {}).get(value)
    if known:
        return known
    try:
        return (title_of(f.to, int(value)) or f"#{int(value)}") if f.to else ""
    except (TypeError, ValueError):
        return str(value)


def editable_fields(entity: Entity, mode: str, record: dict[str, Any] | None = None
                    ) -> list[Field]:
    """The fields this form shows (of its kind) and the user may change; with the kind
    itself, which the form posts."""
    readonly = readonly_fields(entity.name) if mode == "edit" else _create_readonly(entity)
    kind = form_kind(entity, record)
    shown = [f for section in form_fields(entity, mode, kind) for f in section]
    if kind is not None and entity.kind_field not in hidden_fields(entity.name):
        shown.append(entity.fields[entity.kind_field])
    return [f for f in shown if _changeable(f, entity) and f.name not in readonly]


def editable_values(entity: Entity, mode: str, form: Any,
                    record: dict[str, Any] | None = None) -> dict[str, Any]:
    """The posted values of the fields this form shows and the user may change."""
    return read_form(form, editable_fields(entity, mode, record))


def resolve_links(entity: Entity, values: dict[str, Any],
                  errors: dict[str, list[str]]) -> dict[str, Any]:
    """Link pickers posted as chosen ids or as typed text (JavaScript off): text is looked up
    by the target's quick search and must find exactly one record."""
    result = {}
    for name, value in values.items():
        if not isinstance(value, LinkInput):
            result[name] = value
            continue
        if not value.typed:
            result[name] = value.id or None
            continue
        text = value.text.strip()
        if not text:
            result[name] = None
            continue
        match = resolve_title(entity.fields[name], text)
        if match is None:
            target = entity_label(inst().model.entity(entity.fields[name].to)).lower()
            errors.setdefault(name, []).append(gettext(
                "no single %(what)s matches “%(text)s”; type more of the name and pick one",
                what=target, text=text))
        else:
            result[name] = match
    return result


# -- pages ------------------------------------------------------------------------------------

def new_record(entity: str) -> ResponseReturnValue:
    model_entity = entity_or_404(entity, "create")
    if request.method == "GET":
        values = _initial_values(model_entity)
        form = build_form(model_entity, "new", None, values, {})
        return render("form.html", entity=entity, fragment="form", form=form,
                      model_entity=model_entity, mode="new")
    posted = editable_values(model_entity, "new", request.form)
    errors: dict[str, list[str]] = {}
    duplicate = None
    values = _computed_defaults_apply(model_entity, resolve_links(model_entity, posted, errors))
    if values.get("owner", "") is None:
        del values["owner"]  # no owner chosen: the creator, or the routing rules, decide
    uploads = _uploads(model_entity, "new", errors)
    if not errors:
        try:
            record = attachments.saving(entity, None, uploads, lambda conn, files: records.create(
                inst(), actor(), entity, {**values, **files}, conn=conn))
        except ValidationFailed as exc:
            errors = exc.errors
        except Conflict as exc:
            errors = {"_record": [exc.message]}
            duplicate = _duplicate_url(exc)
        else:
            for warning in record.get("_warnings") or []:
                flash(str(warning.get("message")), "warning")
            flash(gettext("%(what)s “%(title)s” created.", what=entity_label(model_entity),
                          title=record_title(model_entity, record)), "success")
            return redirect(_next_url() or url_for("web.record", entity=entity,
                                                    record_id=record["id"]))
    form = build_form(model_entity, "new", None, posted, errors)
    form.duplicate_url = duplicate
    return render("form.html", entity=entity, fragment="form", form=form,
                  model_entity=model_entity, mode="new", status=422)


def edit_record(entity: str, record_id: int) -> ResponseReturnValue:
    model_entity = entity_or_404(entity, "read")
    try:
        record = records.get(inst(), actor(), entity, record_id)
    except NotFound:
        abort(404, f"There is no {entity_label(model_entity).lower()} #{record_id}, or you "
                   "may not see it.")
    if not can(entity, "update", record):
        abort(403, "You may not change this record.")
    record = natives(model_entity, [record])[0]
    title = record_title(model_entity, record)
    if request.method == "GET":
        form = build_form(model_entity, "edit", record, {}, {})
        form.title = title
        return render("form.html", entity=entity, fragment="form", form=form,
                      model_entity=model_entity, mode="edit", record=record)
    posted = editable_values(model_entity, "edit", request.form, record)
    errors: dict[str, list[str]] = {}
    values = resolve_links(model_entity, posted, errors)
    uploads = _uploads(model_entity, "edit", errors, record)
    version = request.form.get("version", "")
    conflict = None
    if not errors:
        try:
            saved = attachments.saving(entity, record_id, uploads, lambda conn, files: (
                records.update(inst(), actor(), entity, record_id, {**values, **files},
                               version=as_id(version) or 0, conn=conn)))
        except ValidationFailed as exc:
            errors = exc.errors
        except StaleVersion as exc:
            conflict = exc.current
            record = {**record, **natives(model_entity, [exc.current or {}])[0]}
        except Conflict as exc:
            errors = {"_record": [exc.message]}
        else:
            flash(gettext("Saved “%(title)s”.", title=record_title(model_entity, saved)),
                  "success")
            return redirect(_next_url() or url_for("web.record", entity=entity,
                                                    record_id=record_id))
    form = build_form(model_entity, "edit", record, posted, errors)
    form.title = title
    if conflict is not None:
        form.conflict = _conflict(model_entity, conflict, posted)
    return render("form.html", entity=entity, fragment="form", form=form,
                  model_entity=model_entity, mode="edit", record=record,
                  status=409 if conflict is not None else 422)


def _uploads(entity: Entity, mode: str, errors: dict[str, list[str]],
             record: dict[str, Any] | None = None) -> list[attachments.Upload]:
    """The files posted for the form's file fields that the user may change, checked but not
    stored: they are stored with the record, on its transaction (`attachments.saving`)."""
    try:
        return attachments.form_uploads(request.files, editable_fields(entity, mode, record))
    except ValidationFailed as exc:
        errors.update(exc.errors)
        return []


def _duplicate_url(exc: Conflict) -> str | None:
    if exc.record_id is None or not exc.entity:
        return None
    return url_for("web.record", entity=exc.entity, record_id=exc.record_id)


def _conflict(entity: Entity, current: dict[str, Any], posted: dict[str, Any]) -> dict:
    """What the other person saved, field by field, next to what this user typed."""
    titles = _titles(entity, current)
    changes = []
    for name, raw in posted.items():
        f = entity.fields[name]
        mine = evaluation_record(entity, {}, {name: raw}).get(name)
        if str(mine if mine is not None else "") != str(current.get(name) if current.get(
                name) is not None else ""):
            changes.append({"label": field_label(entity, name),
                            "theirs": display(current.get(name), f, titles),
                            "mine": display(mine, f, titles)})
    return {"version": current.get("version"), "changes": changes}


def _computed_defaults_apply(entity: Entity, values: dict[str, Any]) -> dict[str, Any]:
    """A field left blank whose default is a template or an expression (`=room_type.hotel`)
    is left out, so that the default is worked out on save from the values typed (the new
    form could not show it yet). A literal default was shown in the form: blank stays blank."""
    def computed_default(name: str) -> bool:
        f = entity.fields.get(name)
        return f is not None and f.default is not None and f.default.kind != "literal"
    return {name: value for name, value in values.items()
            if not (computed_default(name) and (value is None or value == "" or value == []))}


def _initial_values(entity: Entity) -> dict[str, Any]:
    """Defaults, then values from the address (`?property=12` from a related list's "add")."""
    record: dict[str, Any] = {}
    names = [f.name for fields in form_fields(entity, "new", form_kind(entity, None))
             for f in fields]
    ctx = eval_context(inst(), actor(), entity.name, record)
    apply_defaults(entity, record, names, ctx, {})
    for name in names:
        if name in request.args and entity.fields[name].editable:
            record[name] = request.args.get(name)
    return record


def _next_url() -> str | None:
    return safe_next(request.form.get("next") or request.args.get("next"))


# -- htmx helpers -----------------------------------------------------------------------------

def form_state(entity: str) -> ResponseReturnValue:
    """The live state of conditional fields for the values being typed: the same evaluator
    that `records` runs on save. The page applies it (static/crmforge.js)."""
    model_entity = entity_or_404(entity)
    record = None
    record_id = as_id(request.form.get("_record_id", ""))
    mode = "edit" if record_id is not None else "new"
    if record_id is not None:
        try:
            record = records.get(inst(), actor(), entity, record_id)
        except RecordError:
            record = None
    posted = editable_values(model_entity, mode, request.form, record)
    current = evaluation_record(model_entity, record, posted)
    data = json.dumps(states(model_entity, current))
    return Markup('<template id="form-state" data-state="{}"></template>').format(data)


def duplicate_check(entity: str) -> ResponseReturnValue:
    """The duplicate hint for the values being typed: the records the entity's duplicate rules
    find (`checks.find_duplicates`, the check a save runs), each with a link — only those the
    user may read; the save still warns about the others."""
    model_entity = entity_or_404(entity)
    record_id = as_id(request.form.get("_record_id", ""))
    stored = None
    if record_id is not None:
        try:
            stored = records.get(inst(), actor(), entity, record_id)
        except RecordError:
            stored = None
    posted = editable_values(model_entity, "new" if stored is None else "edit", request.form,
                             stored)
    record = evaluation_record(model_entity, stored, posted)
    if stored is not None:
        record["id"] = stored["id"]
    with inst().primary_reader() as conn:
        found = checks.find_duplicates(inst(), conn, entity, record)
    hints, seen = [], set()
    for match in found:
        if match["record_id"] in seen:
            continue
        seen.add(match["record_id"])
        try:
            existing = records.get(inst(), actor(), entity, match["record_id"])
        except RecordError:
            continue  # not the user's to see: no hint
        hints.append({"fields": _words([field_label(model_entity, n) for n in match["fields"]]),
                      "title": record_title(model_entity, existing),
                      "url": url_for("web.record", entity=entity, record_id=existing["id"])})
    return render("widgets/duplicate_hint.html", hints=hints,
                  label=_lower(entity_label(model_entity)))


def _lower(label: str) -> str:
    """`label` inside a sentence: "contact", but "KYC case" stays."""
    return label if label[1:2].isupper() else label[:1].lower() + label[1:]


def _words(labels: list[str]) -> str:
    """"e-mail", "first name and last name", "first name, last name and account"."""
    labels = [_lower(label) for label in labels]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def link_options(entity: str) -> ResponseReturnValue:
    """Options for a link picker: records of `entity` that the user may read, by quick
    search."""
    model_entity = entity_or_404(entity)
    target = request.args.get("target", "")
    typed = [v for k, v in request.args.items() if k.endswith("__q")]  # the picker's own box
    q = (request.args.get("q") or (typed[0] if typed else "")).strip()
    if not q:
        return ""
    page = records.query(inst(), actor(), entity, filters={}, q=q or None, sort=[],
                         limit=PICKER_LIMIT, cursor=None)
    rows = [dict(r) for r in page.rows]
    options = list(row_titles(model_entity, rows).items())
    details: dict[int, str] = {}
    if entity == "user":  # people are told apart by their role and team, not their number
        with inst().primary_reader() as conn:
            details = people.user_details(inst(), conn, [key for key, _ in options],
                                          actor().language)
    else:  # titles tell records apart; the number only for two with the same title
        seen = [title for _, title in options]
        details = {key: f"#{key}" for key, title in options if seen.count(title) > 1}
    return render("widgets/options.html", options=options, target=target, q=q,
                  model_entity=model_entity, details=details)


def link_choices(f: Field, limit: int = 200) -> list[tuple[int, str]]:
    """The records a `links` field may point to (the first `limit`, by the target's sort)."""
    if not f.to or f.to not in inst().model.entities or not can(f.to, "read"):
        return []
    target = inst().model.entity(f.to)
    page = records.query(inst(), actor(), f.to, filters={}, q=None,
                         sort=list(target.views.list.sort), limit=limit, cursor=None)
    rows = list(page.rows)
    return list(row_titles(target, rows).items())
