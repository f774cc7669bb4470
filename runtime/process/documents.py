"""Documents (`documents/*.yaml`): a definition's HTML/Jinja template over one record, printed
to PDF with WeasyPrint (docs/documents.md).

The template runs in Jinja's sandbox and sees only text, read as the actor reads it:
`record` (the record's values as the pages show them — a choice by its label, money with its
currency, a link as the linked record's title — with `id` and `title`), `labels` (the field
labels in the actor's language), `related.NAME` (the rows of the document's related lists,
each like `record`, with their own `.labels`), `document`, `company` (the `COMPANY_NAME`
instance setting) and `today`. Rows the actor may not read are not there; fields hidden from
them are missing, and print empty. WeasyPrint fetches nothing: a picture must be a `data:`
address.

`send_to_customer` ("Send to customer" on a record page) prints the document, keeps the PDF
among the record's attachments and queues it to the customer with a message template, in one
transaction, with an entry on the record's timeline; the outbox sends it (docs/mail.md).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import DictLoader, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy.engine import Connection

from builder.model import Document, Recipient
from runtime.core.db import write_transaction
from runtime.core.errors import NotFound, RecordError
from runtime.core.instance import Actor, Instance
from runtime.process.mail.files import store
from runtime.process.mail.outbox import email_record
from runtime.read import permissions, queries
from runtime.read.titles import TitleReader, date_text
from runtime.write.timeline import record_event

ROWS_MAX = queries.MAX_LIMIT  # rows of one related list on a document
# under every document: A4, a letterhead, the line table (a document's <style> wins)
PRINT_CSS = Path(__file__).resolve().parents[1] / "static" / "document.css"


class DocumentFailed(RecordError):
    """The document's template cannot be printed (it reads what a document may not)."""

    status = 422


class Rows(list):
    """The rows of one related list, with the labels of their fields (`rows.labels.FIELD`)."""

    def __init__(self, rows: list[dict[str, str]], labels: dict[str, str]) -> None:
        super().__init__(rows)
        self.labels = labels


@dataclass(frozen=True)
class Printed:
    filename: str
    pdf: bytes


def find(inst: Instance, entity: str, name: str) -> Document:
    """The document `name` of `entity`'s records; NotFound when there is none."""
    document = inst.model.documents.get(name)
    if document is None or document.entity != entity:
        raise NotFound(f"There is no document '{name}' for {entity} records.")
    return document


def print_pdf(inst: Instance, actor: Actor, document: Document, record_id: int) -> Printed:
    """`document` over record `record_id` as a PDF, read as `actor`."""
    # WeasyPrint loads Pango and fonts (0.4 s): only a process that renders a PDF pays it
    from weasyprint import CSS, HTML
    from weasyprint.urls import URLFetcher

    html = render_html(inst, actor, document, record_id)
    # `data:` addresses only: a template never reaches the network or the server's files
    fetcher = URLFetcher(allowed_protocols=("data",))
    pdf = HTML(string=html, url_fetcher=fetcher).write_pdf(
        stylesheets=[CSS(filename=str(PRINT_CSS), url_fetcher=fetcher)])
    return Printed(filename_of(document, html), pdf)


@dataclass(frozen=True)
class Sent:
    filename: str
    attachment_id: int
    mail_ids: tuple[int, ...]


def send_to_customer(inst: Instance, actor: Actor, document: Document, record_id: int, *,
                     template: str, recipient: Recipient, to: str, folder: Path) -> Sent:
    """Print `document` over the record as `actor`, keep the PDF among the record's
    attachments (its file in `folder`) and queue it to `to` with the message `template`
    (`recipient`: whose consent the template asks); NotFound when the actor may not read the
    record. The caller checks that the actor may update it."""
    printed = print_pdf(inst, actor, document, record_id)
    with write_transaction(inst.engine) as conn:
        record = queries.load(inst, conn, document.entity, record_id, actor=actor)
        if record is None:
            raise NotFound(f"There is no {document.entity} #{record_id}, or you may not see it.")
        attachment_id, path = store(inst, conn, actor, folder, document.entity, record_id,
                                    filename=printed.filename, content_type="application/pdf",
                                    data=printed.pdf)
        try:
            mail_ids = email_record(inst, conn, document.entity, record, template, recipient,
                                    to=to, actor=actor, files=[attachment_id])
            record_event(inst, conn, document.entity, record_id, "email",
                         f"{document.label.get(actor.language)} “{printed.filename}” attached "
                         f"and queued to go to {to} by e-mail.",
                         {"document": document.name, "attachment": attachment_id,
                          "mail": list(mail_ids), "to": to}, actor.user_id,
                         key="document_sent", params={"document": document.name,
                                                      "filename": printed.filename, "to": to})
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    return Sent(printed.filename, attachment_id, tuple(mail_ids))


def render_html(inst: Instance, actor: Actor, document: Document, record_id: int) -> str:
    """The template of `document` over record `record_id`, as HTML; NotFound when the actor
    may not read the record, DocumentFailed when the template reads what it may not."""
    with queries.reading(inst, None) as conn:
        values = context(inst, conn, actor, document, record_id)
    try:
        return sandbox(document.bases).from_string(document.source).render(values)
    except TemplateError as exc:
        raise DocumentFailed(f"The document '{document.name}' ({document.file}) cannot be "
                             f"printed: {exc}") from None


@functools.lru_cache(maxsize=32)
def sandbox(bases: tuple[tuple[str, str], ...]) -> SandboxedEnvironment:
    """Jinja's sandbox that loads only `bases`, the templates a document extends or includes,
    which the builder read from its pack's documents/ folder (any other name is not found)."""
    return SandboxedEnvironment(autoescape=True, loader=DictLoader(dict(bases)))


def context(inst: Instance, conn: Connection, actor: Actor, document: Document,
            record_id: int) -> dict[str, Any]:
    """What the template sees (see the module's docstring)."""
    record = queries.get(inst, actor, document.entity, record_id, conn=conn)
    reader = TitleReader(inst, conn, actor)
    related = {name: _rows(inst, conn, actor, reader, child, link,
                           record.get(through) if through else record["id"])
               for name, child, link, through in document.related}
    return {"record": reader.shown(document.entity, [record])[0],
            "labels": labels(inst, actor, document.entity), "related": related,
            "document": document.label.get(actor.language), "company": company_name(inst),
            "today": date_text(inst.today(), actor.language)}


def _rows(inst: Instance, conn: Connection, actor: Actor, reader: TitleReader, child: str,
          link: str, parent: Any) -> Rows:
    """The `child` records that link to `parent` through `link`, as the actor may read them
    (the entity's list order)."""
    found: list[dict[str, Any]] = []
    if parent is not None and permissions.can(inst, actor, child, "read"):
        op = link if inst.model.entity(child).fields[link].type == "link" else f"{link}__contains"
        found = queries.query(inst, actor, child, filters={op: str(parent)},
                              sort=list(inst.model.entity(child).views.list.sort),
                              limit=ROWS_MAX, conn=conn).rows
    return Rows(reader.shown(child, found), labels(inst, actor, child))


def labels(inst: Instance, actor: Actor, entity: str) -> dict[str, str]:
    """{field: label} of `entity` in the actor's language."""
    return {name: f.label.get(actor.language)
            for name, f in inst.model.entity(entity).fields.items()}


def company_name(inst: Instance) -> str:
    """Whose document it is: the `COMPANY_NAME` setting, then $CRMFORGE_COMPANY_NAME."""
    return str(inst.settings.get("COMPANY_NAME") or os.environ.get("CRMFORGE_COMPANY_NAME")
               or "")


def filename_of(document: Document, html: str) -> str:
    """"quote-QUO-00012.pdf": the document's name and the printed record's title (the HTML
    `<title>`), in characters every mail program and file system keeps."""
    found = re.search(r"<title>(.*?)</title>", html, re.S | re.I)
    words = re.sub(r"[^A-Za-z0-9._-]+", "-", found.group(1) if found else "").strip("-.")
    return f"{document.name}-{words[:80]}.pdf" if words else f"{document.name}.pdf"
