"""Document pages (docs/documents.md):

- `/e/<entity>/<id>/documents/<name>.pdf`: the record printed with the document `name`
  (`process.documents`), as a download; 404 for a document the entity does not have, or a
  record the user may not read.
- `/e/<entity>/<id>/documents/<name>/attach` (POST): the same PDF kept among the record's
  files (and so on its timeline), for those who may update the record.
- `/e/<entity>/<id>/documents/<name>/send` ("Send to customer"): the Send e-mail form
  (`mail_pages.read_form`: recipient, template, preview) with the PDF attached; Send keeps
  the PDF among the record's files and queues it (`process.documents.send_to_customer`).
  For those who may update the record, when the entity has message templates.

`documents/_menu.html` is the "Documents" menu among the actions of `record.html`; it asks
`record_documents(entity, record)` what to offer.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, request, send_file, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import FileStorage

from builder.model import Document, Entity, Recipient
from runtime.core.errors import NotFound
from runtime.http.web import attachments
from runtime.http.web.layout import actor, before_request, can, entity_or_404, inst, render, tr
from runtime.http.web.listdata import record_title
from runtime.http.web.mail_pages import read_form, recipient_of, send_email_url
from runtime.http.web.recordpage import load
from runtime.process.documents import (
    Printed,
    filename_of,
    find,
    print_pdf,
    render_html,
    send_to_customer,
)


def register(app: Flask) -> None:
    """Add the document routes and the `record_documents` template helper."""
    bp = Blueprint("documents", __name__)
    bp.before_request(before_request)
    bp.add_url_rule("/e/<entity>/<int:record_id>/documents/<name>.pdf", "pdf", download)
    bp.add_url_rule("/e/<entity>/<int:record_id>/documents/<name>/attach", "attach", attach,
                    methods=["POST"])
    bp.add_url_rule("/e/<entity>/<int:record_id>/documents/<name>/send", "send", send_page,
                    methods=["GET", "POST"])
    app.register_blueprint(bp)
    app.jinja_env.globals["record_documents"] = record_documents


def record_documents(entity: Entity, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The documents a record page offers: label, download address and (for those who may
    update the record) the addresses that attach the PDF to it and send it to the customer
    (when there is a message template to send it with)."""
    may_attach = can(entity.name, "update", record)
    may_send = may_attach and send_email_url(entity, record) is not None
    return [{"label": tr(d.label),
             "url": url_for("documents.pdf", entity=entity.name, record_id=record["id"],
                            name=d.name),
             "attach": url_for("documents.attach", entity=entity.name,
                               record_id=record["id"], name=d.name) if may_attach else None,
             "send": url_for("documents.send", entity=entity.name, record_id=record["id"],
                             name=d.name) if may_send else None}
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


def send_page(entity: str, record_id: int, name: str) -> ResponseReturnValue:
    model_entity = entity_or_404(entity)
    document = _document(entity, name)
    record = load(model_entity, record_id)
    if not can(entity, "update", record):
        abort(403, "You may not send documents of this record: that takes the right to "
                   "change it.")
    if send_email_url(model_entity, record) is None:
        raise NotFound("There is no e-mail template to send this document with; a message "
                       f"template for {entity} records is needed (docs/mail.md).")
    values = request.form if request.method == "POST" else request.args
    form = read_form(model_entity, record, values, person=True)
    if request.method == "POST" and values.get("action") == "send" and not form.errors \
            and form.template is not None:
        sent = send_to_customer(
            inst(), actor(), document, record_id, template=form.template.name,
            recipient=Recipient("field", recipient_of(model_entity, record, person=True)[0]),
            to=form.to,
            folder=attachments.upload_dir())
        flash(f"“{sent.filename}” attached, and the e-mail to {form.to} queued: it leaves "
              "with the next run of the mail worker; its progress is in the activity.",
              "success")
        return redirect(url_for("web.record", entity=entity, record_id=record_id) +
                        "#timeline")
    pdf_url = url_for("documents.pdf", entity=entity, record_id=record_id, name=name)
    filename = filename_of(document, render_html(inst(), actor(), document, record_id))
    return render("mail/send.html", fragment="preview", status=400 if form.errors else 200,
                  model_entity=model_entity, record=record,
                  title=record_title(model_entity, record), form=form,
                  document=tr(document.label), attachment={"url": pdf_url, "filename": filename},
                  action_url=url_for("documents.send", entity=entity, record_id=record_id,
                                     name=name))


def _document(entity: str, name: str) -> Document:
    try:
        return find(inst(), entity, name)
    except NotFound as exc:
        abort(404, str(exc))


def _printed(entity: str, record_id: int, name: str) -> Printed:
    entity_or_404(entity)
    return print_pdf(inst(), actor(), _document(entity, name), record_id)
