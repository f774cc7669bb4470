"""`/admin/packs`: installed packs and their versions, the packs on disk, install and upgrade
(docs/admin.md "Packs"). Admins only; every form posts a CSRF token; every applied change is
in the audit log (`pack_install`, `pack_upgrade`).

Install or upgrade → the plan page (`/admin/packs/plan?action=…&pack=…`): an upgrade first
lists the conflicts with the instance's customisations (`runtime.process.pack_upgrade`), each
settled by keep mine / take theirs / edit; then the migration plan in words
(`plans.plan_view`), where each destructive step needs its entity or field name typed →
apply: a job (`runtime.process.pack_jobs`, kept in `crm_pack_job`) runs the migration in a thread
while the job page polls its state from the database (htmx, or a refresh without JavaScript),
in whichever process answers. The web processes pick the new model up by themselves
(`runtime.http.model_watch`). The instance's customisations are shown on their own line, not
as the pack `custom`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from flask import Blueprint, Response, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from builder.model import AppModel
from builder.packs import CUSTOM_PACK, custom_dir, discover, is_pack_dir, kind_for, search_dirs
from runtime.core.errors import BadRequest, NotFound
from runtime.core.instance import Actor, Instance
from runtime.http.current import get_instance
from runtime.http.web.admin.access import admin_only
from runtime.http.web.admin.plans import PlanView, plan_view, unconfirmed
from runtime.http.web.layout import render
from runtime.process import migrate, pack_jobs, pack_upgrade
from runtime.process.pack_upgrade import read_manifest
from runtime.process.setup import SetupError, build, installed_packs, pack_paths

ACTIONS = ("install", "upgrade")


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/packs", "packs", packs_page)
    bp.add_url_rule("/packs/plan", "packs_plan", plan_page)
    bp.add_url_rule("/packs/resolve", "packs_resolve", resolve, methods=["POST"])
    bp.add_url_rule("/packs/apply", "packs_apply", apply, methods=["POST"])
    bp.add_url_rule("/packs/job/<int:job_id>", "packs_job", job_page)
    bp.add_url_rule("/packs/job/<int:job_id>/progress", "packs_progress", progress)


# -- the list -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackRow:
    name: str
    label: str
    on_disk: str | None  # the version of the files on disk
    installed: str | None  # the version the instance recorded
    path: str

    @property
    def upgradable(self) -> bool:
        return bool(self.installed and self.on_disk and self.on_disk != self.installed)


def _rows(inst: Instance) -> tuple[list[PackRow], list[PackRow]]:
    """(installed packs, packs on disk not installed); the instance's own customisations (the
    implicit pack `custom`) are neither: `_customisations` shows them."""
    recorded = installed_packs(inst.engine)
    known = discover(search_dirs())
    installed, available = [], []
    for name, pack in recorded.items():
        if name == CUSTOM_PACK:
            continue
        path = Path(pack.path) if pack.path else known.get(name)
        manifest = read_manifest(path) if path and is_pack_dir(path) else {}
        label = _label(manifest, name)
        installed.append(PackRow(name, label, manifest.get("version"), pack.version,
                                 str(path or "")))
    for name, path in sorted(known.items()):
        if name not in recorded and name != CUSTOM_PACK:
            manifest = read_manifest(path)
            available.append(PackRow(name, _label(manifest, name), manifest.get("version"),
                                     None, str(path)))
    return installed, available


@dataclass(frozen=True)
class Customisations:
    """The instance's own definition files (`CRMFORGE_CUSTOM_DIR`), read over every pack."""

    path: str
    files: int


def _customisations() -> Customisations:
    """The custom dir and how many definition files it holds (not the copies kept aside in
    its hidden folders, such as `.replaced/`)."""
    base = custom_dir()
    count = 0
    if base.is_dir():
        for file in base.rglob("*"):
            rel = file.relative_to(base).as_posix()
            if file.is_file() and not any(p.startswith(".") for p in rel.split("/")) \
                    and kind_for(rel) is not None:
                count += 1
    return Customisations(str(base), count)


def _label(manifest: dict, default: str) -> str:
    label = manifest.get("label") or default
    if isinstance(label, dict):
        return str(label.get("en") or next(iter(label.values()), default))
    return str(label)


def packs_page() -> ResponseReturnValue:
    admin_only()
    inst = get_instance()
    installed, available = _rows(inst)
    return render("admin/packs.html", installed=installed, available=available,
                  custom=_customisations(), running=pack_jobs.running(inst))


# -- the plan -------------------------------------------------------------------------------


@dataclass
class Prepared:
    """What an install or upgrade would do now."""

    action: str
    pack: str
    conflicts: list[pack_upgrade.Conflict] = field(default_factory=list)
    model: AppModel | None = None
    plan: migrate.Plan | None = None
    moves: list[tuple[str, str | None, str]] = field(default_factory=list)

    @property
    def digest(self) -> str:
        """The identity of what is shown — the model, the versions and the plan's steps (not
        their timestamped aside names): a plan whose model changed since it was shown is shown
        again instead of applied."""
        ops = [(op.kind, op.table, op.safety, str(getattr(op, "column", "")))
               for op in (self.plan.ops if self.plan else ())]
        shown = [self.model.hash if self.model else "", self.moves, ops]
        return hashlib.sha256(json.dumps(shown).encode()).hexdigest()[:16]


def _requested(values) -> tuple[str, str]:  # noqa: ANN001 - request.args or request.form
    action, pack = values.get("action", ""), (values.get("pack") or "").strip()
    if action not in ACTIONS or not pack:
        raise BadRequest(gettext("Choose a pack to install or upgrade from the packs page."))
    return action, pack


def _check_requested(action: str, pack: str, recorded: dict, known: dict) -> None:
    """NotFound or BadRequest, in words, unless `action` can be done to `pack`."""
    if pack == CUSTOM_PACK:
        raise NotFound(gettext("Your customisations are not a pack: they are read over every "
                               "pack and kept through upgrades."))
    if action == "upgrade" and pack not in recorded:
        raise NotFound(gettext("Pack %(name)s is not installed.", name=pack))
    if action == "install" and pack in recorded:
        raise BadRequest(gettext("Pack %(name)s is installed already; upgrade it from the "
                                 "packs page.", name=pack))
    if action == "install" and pack not in known:
        raise NotFound(gettext("There is no pack %(name)s on disk.", name=pack))


def prepare(inst: Instance, action: str, pack: str) -> Prepared:
    """The conflicts (upgrade), else the model and migration plan of `action` on `pack`."""
    pack_jobs.ensure_table(inst)
    recorded = installed_packs(inst.engine)
    known = discover(search_dirs())
    _check_requested(action, pack, recorded, known)
    try:
        paths = pack_paths(recorded.values())
        if action == "install" and known[pack] not in paths:
            paths.append(known[pack])
        found = Prepared(action, pack)
        if action == "upgrade":
            found.conflicts = pack_upgrade.find_conflicts(paths)
            if found.conflicts:
                return found
        found.model = build(paths)
    except SetupError as exc:
        raise BadRequest(str(exc)) from None
    try:
        found.plan = migrate.plan(found.model, inst.engine)
    except migrate.MigrationFailed as exc:  # a rename the database cannot follow
        raise BadRequest(str(exc)) from None
    found.moves = [(n, recorded[n].version if n in recorded else None, p.version)
                   for n, p in found.model.packs.items()
                   if n not in recorded or recorded[n].version != p.version]
    return found


def plan_page() -> ResponseReturnValue:
    admin_only()
    action, pack = _requested(request.args)
    found = prepare(get_instance(), action, pack)
    view = plan_view(found.plan) if found.plan is not None else None
    texts = {c.id: _text(c.path) for c in found.conflicts}
    return render("admin/pack_plan.html", found=found, plan=view, texts=texts,
                  confirm_inputs=True, custom=custom_dir())


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def resolve() -> ResponseReturnValue:
    """Settle the conflicts: `choice-<id>` is mine, theirs or edit (`text-<id>` the text)."""
    admin_only()
    action, pack = _requested(request.form)
    found = prepare(get_instance(), action, pack)
    done: list[str] = []
    try:
        for conflict in sorted(found.conflicts, key=lambda c: (str(c.path), -c.line)):
            choice = request.form.get(f"choice-{conflict.id}", "")
            if choice == pack_upgrade.EDIT:
                done.append(pack_upgrade.edit_file(conflict,
                                                   request.form.get(f"text-{conflict.id}", "")))
            elif choice in pack_upgrade.CHOICES:
                done.append(pack_upgrade.resolve_conflict(conflict, choice))
    except pack_upgrade.ResolveError as exc:
        raise BadRequest(str(exc)) from None
    if done:
        flash(gettext("Resolved: %(what)s", what="; ".join(done)), "success")
    return redirect(url_for("admin.packs_plan", action=action, pack=pack))


# -- applying -------------------------------------------------------------------------------


def apply() -> ResponseReturnValue:
    who = admin_only()
    inst = get_instance()
    action, pack = _requested(request.form)
    found = prepare(inst, action, pack)
    if found.conflicts or found.plan is None:
        flash(gettext("Settle the conflicts with your customisations first."), "error")
        return redirect(url_for("admin.packs_plan", action=action, pack=pack))
    view = plan_view(found.plan)
    if request.form.get("digest") != found.digest:
        flash(gettext("The plan changed since it was shown: check it again."), "warning")
        return redirect(url_for("admin.packs_plan", action=action, pack=pack))
    missing = unconfirmed(view, request.form)
    if missing:
        flash(gettext("Type the name of each destructive step to allow it: %(names)s",
                      names=", ".join(missing)), "error")
        return redirect(url_for("admin.packs_plan", action=action, pack=pack))
    try:
        job_id = pack_jobs.start(inst, who, found.action, found.pack, len(view.steps),
                                 found.moves, lambda: _work(inst, who, found, view),
                                 wait=not view.has_data_steps)  # shape only: done at once
    except pack_jobs.Busy as busy:
        flash(gettext("Another install or upgrade is running (%(pack)s); wait until it has "
                      "finished, then check the plan again.", pack=busy.job.pack), "error")
        job_id = busy.job.id
    return redirect(url_for("admin.packs_job", job_id=job_id))


def _work(inst: Instance, who: Actor, found: Prepared, view: PlanView) -> list[str]:
    """The job: the migration, then its audit entry; what the migration said."""
    notes = migrate.apply(found.plan, inst.engine, allow_destructive=view.allow_destructive)
    _audit(inst, who, found, view)
    return notes


def _audit(inst: Instance, who: Actor, found: Prepared, view: PlanView) -> None:
    pack_jobs.audit_applied(inst, who, found.action, {
        "pack": found.pack,
        "versions": ", ".join(f"{n} {old or '-'} -> {new}" for n, old, new in found.moves),
        "steps": len(view.steps), "destructive": len(view.destructive)})


def _job(inst: Instance, job_id: int) -> pack_jobs.PackJob:
    job = pack_jobs.get(inst, job_id)
    if job is None:
        raise NotFound(gettext("There is no pack job %(id)s; the packs page lists what is "
                               "installed.", id=job_id))
    return job


def job_page(job_id: int) -> ResponseReturnValue:
    admin_only()
    inst = get_instance()
    return render("admin/pack_job.html", job=_job(inst, job_id), now=inst.now())


def progress(job_id: int) -> ResponseReturnValue:
    admin_only()
    inst = get_instance()
    job = _job(inst, job_id)
    if not job.busy:  # finished, or its process is gone: the whole page shows the outcome
        return Response("", headers={"HX-Refresh": "true"})
    return render("admin/_pack_progress.html", job=job, now=inst.now())
