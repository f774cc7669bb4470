"""Mail pages:

- `/e/<entity>/<id>/email`, "Send e-mail" on a record page: a template picker, the message
  rendered over the record (refreshed by htmx when the template changes, by the Preview
  button without JavaScript), the recipient (the record's address or its contact's, editable)
  and Send, which queues the message (`process.mail.outbox.send_from_page`); its status is then
  on the record's timeline. For those who may update the record.
- `/unsubscribe/<token>`, which withdraws a contact's consent without signing in (GET asks,
  POST withdraws: a mail scanner that follows links changes nothing).

`mail/_send_action.html` is included among the actions of `record.html` and asks
`send_email_url(entity, record)` whether to offer the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from builder.model import Entity, Message, Recipient
from runtime.core.errors import N_, NotFound
from runtime.http.current import get_instance
from runtime.http.web.layout import (
    actor,
    before_request,
    can,
    entity_label,
    entity_or_404,
    inst,
    render,
)
from runtime.http.web.listdata import record_title
from runtime.process.mail.compose import (
    Composed,
    addresses,
    checked_address,
    compose,
    recipient_fields,
    templates_for,
)
from runtime.process.mail.consent import read_token, withdraw
from runtime.process.mail.outbox import send_from_page
from runtime.read.queries import load, reading

ADDRESS_MAX = 320
PERSON = "contact"  # the core pack's people: whom a document for the customer goes to first


def register(app: Flask) -> None:
    """Add the Send e-mail page, its template helper, and the pages that need no sign-in
    (the unsubscribe link)."""
    public = Blueprint("mail", __name__)
    public.add_url_rule("/unsubscribe/<token>", "unsubscribe", unsubscribe,
                        methods=["GET", "POST"])
    app.register_blueprint(public)
    send_bp = Blueprint("email", __name__)
    send_bp.before_request(before_request)
    send_bp.add_url_rule("/e/<entity>/<int:record_id>/email", "send", send_page,
                         methods=["GET", "POST"])
    app.register_blueprint(send_bp)
    app.jinja_env.globals["send_email_url"] = send_email_url


# -- Send e-mail ------------------------------------------------------------------------------

@dataclass
class SendForm:
    """What the Send e-mail page shows: the choices, the values and what they render to."""

    templates: list[Message]
    template: Message | None
    to: str
    preview: Composed | None = None
    errors: dict[str, str] = field(default_factory=dict)


def send_email_url(entity: Entity, record: dict[str, Any]) -> str | None:
    """The Send e-mail page of `record` when it has templates, someone to write to and the
    user may update it; None otherwise (the record page offers no button)."""
    if not templates_for(inst(), entity.name) or not recipient_fields(inst(), entity.name):
        return None
    if not can(entity.name, "update", record):
        return None
    return url_for("email.send", entity=entity.name, record_id=record["id"])


def send_page(entity: str, record_id: int) -> ResponseReturnValue:
    model_entity = entity_or_404(entity)
    record = _record(model_entity, record_id)
    values = request.form if request.method == "POST" else request.args
    form = read_form(model_entity, record, values)
    if request.method == "POST" and values.get("action") == "send" and not form.errors \
            and form.template is not None and form.preview is not None:
        return _send(model_entity, record, form.template, form.preview.subject, form.to)
    title = record_title(model_entity, record)
    return render("mail/send.html", fragment="preview", status=400 if form.errors else 200,
                  model_entity=model_entity, record=record, title=title, form=form)


def _record(entity: Entity, record_id: int) -> dict[str, Any]:
    """The record, when the user may read and update it and it can be e-mailed about."""
    with reading(inst(), None) as conn:
        record = load(inst(), conn, entity.name, record_id, actor=actor())
    if record is None:
        raise NotFound(gettext("There is no %(what)s #%(id)s, or you may not see it.",
                               what=entity_label(entity).lower(), id=record_id))
    if not can(entity.name, "update", record):
        abort(403, gettext("You may not send e-mail about this record: that takes the right "
                           "to change it."))
    if send_email_url(entity, record) is None:
        raise NotFound(gettext("There are no e-mail templates for %(what)s.",
                               what=entity_label(entity, plural=True).lower()))
    return record


def read_form(entity: Entity, record: dict[str, Any], values: Any, *,
              person: bool = False) -> SendForm:
    """The form from the query or the posted values: the template (the first by default),
    the recipient (the record's address by default), and the preview of the template (also
    the form of "Send to customer" on a document, `documents_pages`)."""
    choices = templates_for(inst(), entity.name)
    name = values.get("template") or choices[0].name
    chosen = next((m for m in choices if m.name == name), None)
    to = values["to"].strip() if "to" in values else \
        recipient_of(entity, record, person=person)[1]
    form = SendForm(choices, chosen, to)
    if chosen is None:
        form.errors["template"] = gettext("Pick a template from the list.")
    else:
        with reading(inst(), None) as conn:
            form.preview = compose(inst(), conn, chosen, record, actor())
    if values.get("action") == "send":
        _check_address(entity, form)
    return form


def _check_address(entity: Entity, form: SendForm) -> None:
    if not form.to:
        form.errors["to"] = gettext("Write the address to send to, like anna@example.com.")
        return
    if len(form.to) > ADDRESS_MAX:
        form.errors["to"] = gettext("An e-mail address has at most %(n)s characters.",
                                    n=ADDRESS_MAX)
        return
    try:
        form.to = checked_address(inst(), entity.name, form.to)
    except ValueError as exc:
        form.errors["to"] = f"“{form.to}”: {exc}."


def recipient_of(entity: Entity, record: dict[str, Any], *, person: bool = False
                 ) -> tuple[str, str]:
    """(field, address) of whom the record's message goes to: the first of its recipient
    fields with an address (a ticket without an account: its contact), else the first.
    `person` (a document for the customer): a link to a contact comes first."""
    paths = recipient_fields(inst(), entity.name)
    if person:
        paths = sorted(paths, key=lambda path: entity.fields[path].to != PERSON)
    with reading(inst(), None) as conn:
        for path in paths:
            found = addresses(inst(), conn, entity.name, record, Recipient("field", path))
            if found:
                return path, found[0].email
    return paths[0], ""


def _send(entity: Entity, record: dict[str, Any], message: Message, subject: str,
          to: str) -> ResponseReturnValue:
    """Queue the message (its status goes on the timeline) and go back to the record."""
    send_from_page(inst(), actor(), entity.name, record, message.name,
                   Recipient("field", recipient_of(entity, record)[0]), to)
    flash(gettext("E-mail “%(subject)s” to %(to)s queued: it leaves with the next run of the "
                  "mail worker; its progress is in the activity.", subject=subject, to=to),
          "success")
    return redirect(url_for("web.record", entity=entity.name, record_id=record["id"]) +
                    "#timeline")


# -- unsubscribing ----------------------------------------------------------------------------

def unsubscribe(token: str) -> str:
    inst = get_instance()
    found = read_token(inst, token)
    if found is None:
        raise NotFound(N_("This unsubscribe link is not valid; copy the whole link from the "
                          "e-mail, or reply to the e-mail and ask us."))
    entity, record_id, field_name = found
    if request.method == "POST":
        if not withdraw(inst, entity, record_id, field_name):
            raise NotFound(N_("There is no one to unsubscribe behind this link any more."))
        return render_template("mail/unsubscribe.html", done=True)
    with inst.primary_reader() as conn:
        record = load(inst, conn, entity, record_id)
    email_field = inst.model.entity(entity).email_field()
    address = record.get(email_field) if record and email_field else None
    return render_template("mail/unsubscribe.html", done=False, address=address)
