"""`/admin/import`: import a CSV or XLSX file into an entity (docs/admin.md "Import").

Upload (`MAX_UPLOAD_BYTES`, as attachments) → map columns to fields (suggested by
`runtime.process.imports.suggest_columns`) → dry run → run → result with the rejected rows
as CSV → undo. Jobs, their threads and their progress are `runtime.process.import_jobs`; the
progress is polled with htmx (`/progress`, a fragment) and, without JavaScript, by the page
reloading itself. Admins import into any entity; a user who may create records of an entity
imports into it (the list's "Import" button) and sees only their own imports.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from flask import Blueprint, Response, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from werkzeug.utils import secure_filename

from runtime.core.errors import N_, BadRequest, Forbidden
from runtime.core.instance import Actor, Instance
from runtime.http.current import get_instance
from runtime.http.web.attachments import MAX_UPLOAD_BYTES, upload_dir, write_file
from runtime.http.web.layout import actor, language, render
from runtime.process import import_jobs
from runtime.process.imports import (
    Reader,
    TransferError,
    check_mapping,
    importable,
    suggest_columns,
)
from runtime.read.permissions import can

SUFFIXES = (".csv", ".txt", ".xlsx")
IGNORE = ""  # the mapping choice "do not import this column"


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/import", "imports", imports_page, methods=["GET", "POST"])
    bp.add_url_rule("/import/<int:import_id>", "imports_job", job_page, methods=["GET", "POST"])
    bp.add_url_rule("/import/<int:import_id>/progress", "imports_progress", progress)
    bp.add_url_rule("/import/<int:import_id>/rejected.csv", "imports_rejected", rejected)
    bp.add_url_rule("/import/<int:import_id>/undo", "imports_undo", undo, methods=["POST"])


def _importer(inst: Instance, entity: str | None) -> Actor:
    """The actor, when they may import into `entity` (any entity: an admin); 403 otherwise."""
    who = actor()
    if who.all_powerful:
        return who
    if entity and entity in inst.model.entities and can(inst, who, entity, "create"):
        return who
    raise Forbidden(N_("Only administrators, and users who may create these records, may "
                       "import them."))


def _entities(inst: Instance, who: Actor) -> list[tuple[str, str]]:
    return sorted(((e.name, e.label.get(language())) for e in inst.model.entities.values()
                   if who.all_powerful or can(inst, who, e.name, "create")),
                  key=lambda pair: pair[1].lower())


def imports_page() -> ResponseReturnValue:
    inst = get_instance()
    entity = request.values.get("entity") or None
    who = _importer(inst, entity)
    if request.method == "POST":
        return _upload(inst, who, entity or "")
    jobs = [j for j in import_jobs.recent(inst) if who.all_powerful or j.user_id == who.user_id]
    return render("admin/imports.html", entities=_entities(inst, who), chosen=entity,
                  jobs=jobs, limit_mb=MAX_UPLOAD_BYTES // (1024 * 1024),
                  labels={e.name: e.label.get(language()) for e in inst.model.entities.values()})


def _upload(inst: Instance, who: Actor, entity: str) -> ResponseReturnValue:
    """Store the uploaded file, read its header (a file that cannot be read is a 400 here,
    before any job) and open its mapping page."""
    if entity not in inst.model.entities:
        raise BadRequest(N_("Choose what to import: the entity is missing or unknown."))
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise BadRequest(N_("Choose a CSV or XLSX file to import."))
    name = secure_filename(upload.filename) or "import.csv"
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise BadRequest(gettext("“%(name)s” is not a CSV or XLSX file; save it as CSV "
                                 "(UTF-8) or XLSX.", name=upload.filename))
    with upload.stream:
        data = upload.stream.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise BadRequest(gettext("“%(name)s” is larger than %(mb)s MB; split it into smaller "
                                 "files.", name=upload.filename,
                                 mb=MAX_UPLOAD_BYTES // (1024 * 1024)))
    folder = upload_dir() / "imports"
    folder.mkdir(exist_ok=True)
    path = folder / f"{secrets.token_hex(16)}{suffix}"
    write_file(path, data)  # a full disk: 507, and no partial file
    try:
        header = _header(path, upload.filename)
    except BadRequest:
        path.unlink()
        raise
    if not any(header):
        path.unlink()
        raise BadRequest(gettext("“%(name)s” has no header row naming its columns.",
                                 name=upload.filename))
    import_id = import_jobs.create(inst, who, entity, upload.filename, path)
    return redirect(url_for("admin.imports_job", import_id=import_id))


def _header(path: Path, shown: str) -> list[str]:
    """The file's header, after reading the file to its end: a broken file is refused now."""
    try:
        with Reader(path) as reader:
            for _ in reader:
                pass
            return reader.header
    except TransferError as exc:
        raise BadRequest(str(exc).replace(str(path), f"“{shown}”")) from None


def _job(inst: Instance, import_id: int) -> tuple[Actor, import_jobs.Job]:
    job = import_jobs.get(inst, import_id)
    who = _importer(inst, job.entity)
    if not who.all_powerful and job.user_id != who.user_id:
        raise Forbidden(N_("This import was started by someone else."))
    return who, job


def job_page(import_id: int) -> ResponseReturnValue:
    inst = get_instance()
    who, job = _job(inst, import_id)
    if request.method == "POST":
        mapping = _chosen_mapping(inst, job)
        import_jobs.start(inst, who, import_id, mapping,
                          dry_run=request.form.get("action") != "run")
        return redirect(url_for("admin.imports_job", import_id=import_id))
    return render("admin/import_job.html", **_view(inst, job))


def _chosen_mapping(inst: Instance, job: import_jobs.Job) -> dict[str, str]:
    """{column: field} from the mapping form (`map-<n>` for the header's n-th column)."""
    header = _header(job.path, job.filename)
    chosen = {column: request.form.get(f"map-{n}", IGNORE)
              for n, column in enumerate(header) if column}
    try:
        return check_mapping(inst.model.entity(job.entity),
                             {c: f for c, f in chosen.items() if f != IGNORE})
    except TransferError as exc:
        raise BadRequest(str(exc)) from None


def _view(inst: Instance, job: import_jobs.Job) -> dict:
    """What the job page and its progress fragment show."""
    ent = inst.model.entity(job.entity)
    view: dict = {"job": job, "ent": ent, "entity_label": ent.label.get(language()),
                  "shown": job.problems[:import_jobs.SHOWN_PROBLEMS]}
    view["speed"], view["left"] = job.speed(inst.now())
    if job.state in ("uploaded", "checked"):
        header = _header(job.path, job.filename)
        suggested = job.mapping or {c: f for c, f in suggest_columns(ent, header).items() if f}
        view["columns"] = [(n, c, suggested.get(c, IGNORE)) for n, c in enumerate(header) if c]
        view["fields"] = [(f.name, f.label.get(language()), _hint(inst, f))
                          for f in ent.fields.values() if importable(ent, f.name)]
    return view


def _hint(inst: Instance, f) -> str:
    """How a link column's values are read: "id or Name"."""
    if f.type not in ("link", "links") and f.name != "owner":
        return ""
    target = inst.model.entities.get(f.to or "")
    key = "username" if f.to == "user" else (target.title_field if target else None)
    return gettext("id or %(field)s", field=target.fields[key].label.get(language())) \
        if target and key in target.fields else "id"


def progress(import_id: int) -> ResponseReturnValue:
    inst = get_instance()
    _, job = _job(inst, import_id)
    if not job.busy:  # finished: htmx loads the whole page, which shows the outcome
        return Response("", headers={"HX-Refresh": "true"})
    return render("admin/_import_progress.html", **_view(inst, job))


def rejected(import_id: int) -> ResponseReturnValue:
    inst = get_instance()
    _, job = _job(inst, import_id)
    name = Path(secure_filename(job.filename) or "import").stem
    return Response(import_jobs.rejected_rows(inst, import_id), mimetype="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="{name}-rejected.csv"'})


def undo(import_id: int) -> ResponseReturnValue:
    inst = get_instance()
    who, _ = _job(inst, import_id)
    done = import_jobs.undo(inst, who, import_id)
    kept = (" " + gettext("Kept %(n)s that were changed since: %(ids)s.", n=len(done.kept),
                          ids=", ".join(f"#{i}" for i in done.kept[:20])
                          + ("…" if len(done.kept) > 20 else ""))) if done.kept else ""
    flash(gettext("Import #%(id)s undone: %(n)s records deleted.", id=import_id,
                  n=done.deleted) + kept, "success")
    return redirect(url_for("admin.imports_job", import_id=import_id))
