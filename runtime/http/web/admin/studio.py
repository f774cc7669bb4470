"""`/admin/studio`: change the model in the browser (admins only; docs/admin.md).

Routes stay thin: the customisation files, their checks, edits, origins and versions are
`runtime.process.studio`; the plan in words is `plans.plan_view`. Every change — from a form or
the YAML editor — ends on one preview page (the diff, the builder's diagnostics, the form and
list drawn with the candidate model and real records, the migration plan) whose *Apply*
posts the text with the digest of the file it started from.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue

from builder.model import AppModel, Entity
from runtime.core.errors import NotFound
from runtime.http.current import get_instance
from runtime.http.web.admin.access import admin_only
from runtime.http.web.admin.plans import plan_view, unconfirmed
from runtime.http.web.forms import build_form
from runtime.http.web.layout import actor, entity_label, render, tr
from runtime.http.web.listdata import natives, page_titles
from runtime.http.web.widgets import display
from runtime.process import migrate
from runtime.process.studio import edits, layer, origins, versions
from runtime.process.studio.layer import StudioError
from runtime.write import records

PREVIEW_ROWS = 5


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/studio", "studio", index_page)
    bp.add_url_rule("/studio/<entity>", "studio_entity", entity_page)
    bp.add_url_rule("/studio/<entity>/validate", "studio_validate", validate, methods=["POST"])
    bp.add_url_rule("/studio/<entity>/change", "studio_change", change, methods=["POST"])
    bp.add_url_rule("/studio/<entity>/preview", "studio_preview", preview, methods=["POST"])
    bp.add_url_rule("/studio/<entity>/apply", "studio_apply", apply, methods=["POST"])
    bp.add_url_rule("/studio/<entity>/history", "studio_history", history_page)
    bp.add_url_rule("/studio/versions/<int:version_id>/revert", "studio_revert", revert)


def index_page() -> ResponseReturnValue:
    admin_only()
    inst = get_instance()
    entities = [e for e in inst.model.entities.values() if not e.system]
    return render("admin/studio.html", entities=entities,
                  customised={e.name for e in entities if layer.entity_file(e.name).is_file()},
                  recent=versions.history(inst, limit=10))


def entity_page(entity: str, text: str | None = None, problem: str | None = None,
                status: int = 200) -> ResponseReturnValue:
    admin_only()
    ent = _entity(entity)
    found = origins.of_entity(get_instance().model, entity)
    current = layer.read_text(entity)
    return render("admin/studio_entity.html", target=ent, origins=found, problem=problem,
                  text=current if text is None else text, base=layer.digest(current),
                  file=layer.shown_path(entity), types=edits.ADDABLE_TYPES,
                  unplaced=edits.unplaced(ent, found), status=status,
                  links=sorted(n for n, e in get_instance().model.entities.items()))


def validate(entity: str) -> ResponseReturnValue:
    """The builder's diagnostics of the editor's text (an htmx fragment)."""
    admin_only()
    _entity(entity)
    checked = layer.check(get_instance().model, entity, request.form.get("text", ""))
    return render("admin/_studio_diagnostics.html", diagnostics=checked.diagnostics,
                  checked=True)


def change(entity: str) -> ResponseReturnValue:
    """A form's change: the current file edited, then the preview."""
    admin_only()
    ent = _entity(entity)
    kind = request.form.get("change", "")
    if kind not in edits.CHANGES:
        return entity_page(entity, problem="Pick one of the changes below.", status=400)
    found = origins.of_entity(get_instance().model, entity)
    try:
        data = layer.parse(entity, layer.read_text(entity))
        edited, summary = edits.CHANGES[kind](data, ent, found, request.form)
    except StudioError as exc:
        return entity_page(entity, problem=str(exc), status=422)
    return _preview(entity, layer.dump(edited), summary)


def preview(entity: str) -> ResponseReturnValue:
    """The YAML editor's text, previewed."""
    admin_only()
    _entity(entity)
    return _preview(entity, request.form.get("text", ""), "edit in the YAML editor")


def revert(version_id: int) -> ResponseReturnValue:
    """The preview of going back to a version's text."""
    admin_only()
    found = versions.get(get_instance(), version_id)
    if found is None:
        raise NotFound(f"There is no studio version {version_id}.")
    _entity(found.entity)
    return _preview(found.entity, found.after_text, f"revert to version {version_id}",
                    reverted_to=version_id)


def apply(entity: str) -> ResponseReturnValue:
    admin_only()
    _entity(entity)
    inst, form = get_instance(), request.form
    text, summary = form.get("text", ""), form.get("summary", "change")[:255]
    reverted_to = int(form["reverted_to"]) if form.get("reverted_to", "").isdigit() else None
    problem = versions.stale(entity, form.get("base", ""))
    if problem:
        return _preview(entity, text, summary, reverted_to=reverted_to, status=409,
                        problem=problem)
    prepared = versions.prepare(inst, entity, text)
    view = plan_view(prepared.plan) if prepared.plan is not None else None
    missing = unconfirmed(view, form) if view is not None else []
    if missing:
        return _preview(entity, text, summary, reverted_to=reverted_to, status=422,
                        problem="Type the name of each destructive step to allow it: "
                        + ", ".join(missing) + ".")
    try:
        version_id = versions.apply(inst, actor(), entity, text, base=form.get("base", ""),
                                    summary=summary, reverted_to=reverted_to,
                                    allow_destructive=bool(view and view.allow_destructive))
    except (StudioError, migrate.MigrationRefused, migrate.MigrationFailed) as exc:
        return _preview(entity, text, summary, reverted_to=reverted_to, status=409,
                        problem=str(exc))
    flash(f"Version {version_id} applied: {summary}. Every page uses it within seconds.",
          "success")
    return redirect(url_for("admin.studio_history", entity=entity))


def history_page(entity: str) -> ResponseReturnValue:
    admin_only()
    ent = _entity(entity)
    return render("admin/studio_history.html", target=ent,
                  versions=versions.history(get_instance(), entity),
                  file=layer.shown_path(entity))


# -- the preview ------------------------------------------------------------------------------

def _preview(entity: str, text: str, summary: str, *, reverted_to: int | None = None,
             status: int = 200, problem: str | None = None) -> ResponseReturnValue:
    inst = get_instance()
    prepared = versions.prepare(inst, entity, text)
    problem = problem or prepared.refused
    model = prepared.check.model
    shown = _drawn(model, entity) if model is not None else {}
    if not prepared.ok and status == 200:
        status = 422
    return render("admin/studio_preview.html", target=_entity(entity), prepared=prepared,
                  summary=summary, reverted_to=reverted_to, problem=problem,
                  plan=plan_view(prepared.plan) if prepared.plan is not None else None,
                  base=layer.digest(prepared.before), file=layer.shown_path(entity),
                  status=status, **shown)


def _drawn(model: AppModel, entity: str) -> dict[str, Any]:
    """The form and the list of `entity` as the candidate model lays them out, filled with
    the first records (read with the model served now: new fields are still empty)."""
    inst = get_instance()
    candidate, served = model.entity(entity), inst.model.entity(entity)
    rows = natives(served, records.query(inst, actor(), entity, limit=PREVIEW_ROWS).rows)
    links, names = page_titles(served, rows)
    form = build_form(candidate, "edit" if rows else "new", rows[0] if rows else None, {}, {})
    columns = [candidate.fields[n] for n in candidate.views.list.columns
               if n in candidate.fields]
    table = [[display(row.get(f.name), f, links) for f in columns] for row in rows]
    return {"form": form, "columns": columns, "rows": table,
            "row_titles": [names.get(r["id"], f"#{r['id']}") for r in rows],
            "filters": [tr(candidate.fields[n].label) for n in candidate.views.list.filters
                        if n in candidate.fields],
            "candidate": candidate, "label": entity_label(candidate)}


def _entity(name: str) -> Entity:
    found = get_instance().model.entities.get(name)
    if found is None or found.system:
        raise NotFound(f"There is no entity '{name[:63]}' to customise; pick one from the "
                       "studio's list.")
    return found
