"""Duplicates and merging on the web (docs/web.md):

- `/e/<entity>/duplicates`: the groups the entity's duplicate rules find
  (`runtime.read.duplicates`), each with a *Merge…* button, for users with the merge right;
- `/e/<entity>/<id>/merge?absorb=<ids>`: pick the surviving value of each field (a radio per
  field, the survivor's value when it has one), see what will move, and merge
  (`runtime.write.merge`); without `absorb`, the records the rules find for this one, to tick;
- an address naming a merged record's old id answers `302` to the survivor's.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from builder.model import Entity
from runtime.core.errors import Conflict, ValidationFailed
from runtime.http.api.merge import alias_redirect
from runtime.http.web import listdata
from runtime.http.web.layout import (
    actor,
    can,
    entity_label,
    entity_or_404,
    field_label,
    inst,
    render,
)
from runtime.http.web.recordpage import refusal
from runtime.read import duplicates
from runtime.write import merge, records

CHUNK = 200  # ids read per query


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/e/<entity>/duplicates", "duplicates", duplicates_page)
    bp.add_url_rule("/e/<entity>/<int:record_id>/merge", "merge", merge_page,
                    methods=["GET", "POST"])
    bp.before_request(_old_address)
    bp.add_app_template_global(may_merge)


def _old_address() -> ResponseReturnValue | None:
    return alias_redirect(302) if request.method in ("GET", "HEAD") else None


def may_merge(entity: Entity, record: dict[str, Any] | None = None) -> bool:
    """Whether the record page offers *Merge…*: the entity has duplicate rules and the user
    the merge right."""
    return bool(entity.duplicates) and not entity.system and can(entity.name, "merge", record)


def _mergeable(name: str) -> Entity:
    entity = entity_or_404(name)
    if entity.system or not can(name, "merge"):
        abort(403, gettext("You may not merge %(what)s; ask an administrator for the merge "
                           "right.", what=entity_label(entity, plural=True).lower()))
    return entity


def duplicates_page(entity: str) -> ResponseReturnValue:
    model_entity = _mergeable(entity)
    found = duplicates.groups(inst(), actor(), entity)
    rows = _rows(model_entity, [i for group in found for i in group.ids])
    titles, names = listdata.page_titles(model_entity, list(rows.values()))
    shown = [{"ids": [i for i in group.ids if i in rows], "rules": [
        ", ".join(field_label(model_entity, n) for n in rule) for rule in group.rules]}
        for group in found]
    return render("duplicates.html", entity=entity, model_entity=model_entity,
                  groups=[g for g in shown if len(g["ids"]) > 1], rows=rows, titles=titles,
                  names=names, columns=_columns(model_entity), limit=duplicates.MAX_GROUPS)


def _rows(entity: Entity, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The records with these ids the user may read, as Python values, by id."""
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        page = records.query(inst(), actor(), entity.name, limit=CHUNK,
                             filters={"id__in": ",".join(map(str, chunk))})
        found.update((row["id"], row) for row in listdata.natives(entity, page.rows))
    return found


def _columns(entity: Entity) -> list[str]:
    """The fields a group shows: those the rules compare, then the list's columns."""
    ruled = [n for rule in entity.duplicates for n in rule.match]
    return [n for n in dict.fromkeys([*ruled, *entity.views.list.columns])
            if n in entity.fields][:6]


def merge_page(entity: str, record_id: int) -> ResponseReturnValue:
    model_entity = _mergeable(entity)
    absorb = _absorb_ids()
    if not absorb:
        return _candidates(model_entity, record_id)
    plan = merge.preview(inst(), actor(), entity, record_id, absorb)
    if request.method == "POST":
        return _merge(model_entity, plan)
    everyone = listdata.natives(model_entity, [plan.survivor, *plan.absorbed])
    titles, names = listdata.page_titles(model_entity, everyone)
    same = [n for n in merge.choosable(inst(), actor(), model_entity)
            if n not in plan.choices and n in plan.survivor]
    return render("merge.html", entity=entity, model_entity=model_entity, plan=plan,
                  records=everyone, titles=titles, names=names, same=same)


def _absorb_ids() -> list[str]:
    """`absorb=3,4` or `absorb=3&absorb=4` (form or address), as given."""
    given = request.form.getlist("absorb") or request.args.getlist("absorb")
    return [part.strip() for value in given for part in value.split(",") if part.strip()]


def _candidates(entity: Entity, record_id: int) -> ResponseReturnValue:
    """The records this one's duplicate rules find (one per rule), to choose from."""
    record = records.get(inst(), actor(), entity.name, record_id)
    with inst().primary_reader() as conn:
        found = records.find_duplicates(inst(), conn, entity.name, record)
    rows = _rows(entity, sorted({match["record_id"] for match in found}))
    subject = listdata.natives(entity, [record])
    titles, names = listdata.page_titles(entity, [*subject, *rows.values()])
    return render("merge.html", entity=entity.name, model_entity=entity, plan=None,
                  record=subject[0], candidates=list(rows.values()), titles=titles,
                  names=names, columns=_columns(entity))


def _merge(entity: Entity, plan: merge.Plan) -> ResponseReturnValue:
    by_id = {r["id"]: r for r in [plan.survivor, *plan.absorbed]}
    values = {}
    for name in plan.choices:
        source = request.form.get(f"keep__{name}", type=int)
        if source in by_id:
            values[name] = by_id[source].get(name)
    versions = {i: request.form.get(f"version__{i}") for i in by_id}
    survivor = plan.survivor["id"]
    back = url_for("web.merge", entity=entity.name, record_id=survivor,
                   absorb=",".join(map(str, plan.absorbed_ids)))
    try:
        merge.merge(inst(), actor(), entity.name, survivor, plan.absorbed_ids, values,
                    versions={i: v for i, v in versions.items() if v})
    except (ValidationFailed, Conflict) as exc:
        flash(gettext("Nothing was merged: %(reason)s", reason=refusal(exc)), "error")
        return redirect(back, 303)
    flash(gettext("Merged %(n)s %(what)s record(s) into this one (%(ids)s).",
                  n=len(plan.absorbed), what=entity_label(entity).lower(),
                  ids="#" + ", #".join(map(str, plan.absorbed_ids))), "success")
    return redirect(url_for("web.record", entity=entity.name, record_id=survivor), 303)

