"""`/admin/audit`: the audit log of the whole instance (`runtime.read.audit_log`), filtered by
the query string, a page at a time (`?after=` is the keyset cursor), and `/admin/audit.csv`,
everything the same filters select."""

from __future__ import annotations

from itertools import chain

from flask import Blueprint, Response, request, stream_with_context
from flask.typing import ResponseReturnValue

from runtime.http.current import get_instance
from runtime.http.web.admin.access import admin_only
from runtime.http.web.layout import language, query_url, render
from runtime.read import audit_log

FILTER_KEYS = ("user", "entity", "record", "kind", "from", "to")


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/audit", "audit", audit_page)
    bp.add_url_rule("/audit.csv", "audit_csv", audit_csv)


def _filter_args() -> dict[str, str]:
    return {k: request.args.get(k, "")[:100] for k in FILTER_KEYS if request.args.get(k)}


def audit_page() -> ResponseReturnValue:
    admin_only()
    inst = get_instance()
    args = _filter_args()
    filters = audit_log.parse_filters(inst, args)
    after = request.args.get("after", "")
    found = audit_log.page(inst, filters, audit_log.Cursor.decode(after) if after else None,
                           language=language())
    base = request.script_root + request.path
    return render("admin/audit.html", log=found, args=args, after=after,
                  kinds=audit_log.KINDS, entities=audit_log.entity_choices(inst, language()),
                  next_url=query_url(args, base, after=found.next.encode())
                  if found.next else None,
                  first_url=query_url(args, base) if after else None,
                  csv_url=query_url(args, base + ".csv"))


def audit_csv() -> ResponseReturnValue:
    admin_only()
    inst = get_instance()
    filters = audit_log.parse_filters(inst, _filter_args())
    chunks = audit_log.csv_chunks(inst, filters)
    first = next(chunks)  # a problem shows as an error page, before anything is sent
    return Response(stream_with_context(chain([first], chunks)), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="audit.csv"'})

