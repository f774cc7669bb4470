"""Document pages (docs/documents.md):

- `/e/<entity>/<id>/documents/<name>.pdf`: the record printed with the document `name`
  (`process.documents`), as a download; 404 for a document the entity does not have, or a
  record the user may not read.
- `/e/<entity>/<id>/documents/<name>/attach` (POST): the same PDF kept among the record's
  files (and so on its timeline), for those who may update the record.

`documents/_menu.html` is the "Documents" menu among the actions of `record.html`; it asks
`record_documents(entity, record)` what to offer.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, send_file, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import FileStorage

from builder.model import Entity
from runtime.core.errors import NotFound
from runtime.http.web import attachments
from runtime.http.web.layout import actor, before_request, can, entity_or_404, inst, tr
from runtime.http.web.recordpage import load
from runtime.process.documents import Printed, find, print_pdf


def register(app: Flask) -> None:
    """Add the document routes and the `record_documents` template helper."""
    bp = Blueprint("documents", __name__)
    bp.before_request(before_request)
    bp.add_url_rule("/e/<entity>/<int:record_id>/documents/<name>.pdf", "pdf", download)
    bp.add_url_rule("/e/<entity>/<int:record_id>/documents/<name>/attach", "attach", attach,
                    methods=["POST"])
    app.register_blueprint(bp)
    app.jinja_env.globals["record_documents"] = record_documents


def record_documents(entity: Entity, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The documents a record page offers: label, download address and (for those who may
    update the record) the address that attaches the PDF to it."""
    may_attach = can(entity.name, "update", record)
    return [{"label": tr(d.label),
             "url": url_for("documents.pdf", entity=entity.name, record_id=record["id"],
                            name=d.name),
             "attach": url_for("documents.attach", entity=entity.name,
                               record_id=record["id"], name=d.name) if may_attach else None}
            for d in inst().model.documents_for(entity.name)]


def download(entity: str, record_id: int, name: str) -> ResponseReturnValue:
    printed = _printed(entity, record_id, name)
    return send_file(BytesIO(printed.pdf), mimetype="application/pdf", as_attachment=True,
                     download_name=printed.filename)


def attach(entity: str, record_id: int, name: str) -> ResponseReturnValue:
    model_entity = entity_or_404(entity)
    if not can(entity, "update", load(model_entity, record_id)):
        abort(403, "You may not attach files to this record.")
    printed = _printed(entity, record_id, name)
    attachments.store(entity, record_id, FileStorage(
        BytesIO(printed.pdf), filename=printed.filename, content_type="application/pdf"))
    flash(f"Attached “{printed.filename}”.", "success")
    return redirect(url_for("web.record", entity=entity, record_id=record_id) + "#files")


def _printed(entity: str, record_id: int, name: str) -> Printed:
    entity_or_404(entity)
    try:
        document = find(inst(), entity, name)
    except NotFound as exc:
        abort(404, str(exc))
    return print_pdf(inst(), actor(), document, record_id)
