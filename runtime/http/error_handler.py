"""The one error handler: every failure becomes an HTML page or the one JSON error shape.

    {"error": {"status": 404, "code": "not_found", "message": "what happened and what to do"}}

`code` is stable and the same in every language (`CODES`, or a finer one for a stale version,
a pending approval, an expired form); `message` is in the request's language.

422 answers add `"errors": {"field": ["message"], "_record": ["message"]}`; 409 answers for a
stale version add `"current"`, the version now stored, without the fields hidden from the
signed-in user (`visible`: the raisers shape it so already; this is the one exit every answer
passes, so a record raised by a write made as the system on the user's behalf is held to the
same filter). JSON is chosen for `/api/` paths and
for clients that prefer `application/json`; everyone else gets a page. No answer carries a
stack trace: unexpected exceptions are logged with a reference that the answer shows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, g, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from runtime.core.errors import (
    N_,
    SOME_NOT_VALID,
    AwaitingApproval,
    RecordError,
    StaleVersion,
    ValidationFailed,
    problems,
)
from runtime.http.current import EXTENSION
from runtime.read.permissions import META_FIELDS, hidden_fields

TITLES = {
    400: N_("Bad request"), 401: N_("Sign-in required"), 403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Method not allowed"), 409: N_("Conflict"), 413: N_("Request too large"),
    415: N_("Unsupported media type"), 422: N_("Invalid values"), 429: N_("Too many requests"),
    500: N_("Internal error"), 503: N_("Unavailable"), 507: N_("Storage full"),
}

MESSAGES = {
    400: N_("The request is malformed; check it against the API documentation (docs/api.md)."),
    401: N_("Sign in first: send the header 'Authorization: Bearer <token>' with a token from "
            "'crmforge token create USERNAME'."),
    403: N_("You are not allowed to do this; ask an administrator for a role that allows it."),
    404: N_("There is nothing at this address; check the entity name and the record id."),
    409: N_("The request conflicts with the record's current state; reload it and try again."),
    415: N_("Send the body as JSON with 'Content-Type: application/json'."),
    422: N_("Some values are not valid; see 'errors' for what to fix in each field."),
    429: N_("Too many requests; wait a moment and try again."),
    503: N_("The database is not answering at the moment; nothing was changed. Try again in "
            "a few seconds."),
}
# `code` of each status: stable names a client may rely on, never translated (docs/api.md)
CODES = {
    400: "bad_request", 401: "sign_in_required", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large",
    415: "unsupported_media_type", 422: "invalid_values", 429: "too_many_requests",
    500: "internal_error", 503: "unavailable", 507: "storage_full",
}
FINER_CODES = ((StaleVersion, "stale_version"), (AwaitingApproval, "awaiting_approval"),
               (CSRFError, "form_expired"))
RETRY_AFTER_SECONDS = "5"  # when a client should try again after a 503


def register(app: Flask) -> None:
    app.register_error_handler(Exception, handle_exception)


def wants_json() -> bool:
    """JSON for the API and for clients that ask for it; HTML for browsers."""
    if request.path == "/api" or request.path.startswith("/api/"):
        return True
    accept = request.accept_mimetypes
    return bool(accept) and accept.best_match(["text/html", "application/json"]) == \
        "application/json"


def handle_exception(exc: Exception) -> ResponseReturnValue:
    if isinstance(exc, HTTPException) and exc.code is not None and exc.code < 400:
        return exc  # routing redirects (a missing trailing slash) are not errors
    status, message, extra, headers = describe(exc)
    message, extra = translated(exc, message, extra)
    if wants_json():
        body: dict[str, Any] = {"error": {"status": status, "code": error_code(exc, status),
                                          "message": message}, **extra}
        response = current_app.json.response(body)
        response.status_code = status
    else:
        response = current_app.make_response((_html(status, message, extra), status))
    for name, value in headers:
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def error_code(exc: Exception, status: int) -> str:
    """The stable, language-neutral `code` of an error answer."""
    finer = next((code for kind, code in FINER_CODES if isinstance(exc, kind)), None)
    return finer or CODES.get(status, "error")


def describe(exc: Exception) -> tuple[int, str, dict[str, Any], list[tuple[str, str]]]:
    """(status, message, extra body keys, headers) of any exception."""
    if isinstance(exc, RecordError):
        status = int(getattr(exc, "status", 400) or 400)
        message = str(getattr(exc, "message", "") or MESSAGES.get(status, ""))
        extra: dict[str, Any] = {}
        if isinstance(exc, ValidationFailed):
            extra["errors"] = {str(k): [str(m) for m in v] for k, v in exc.errors.items()}
        if isinstance(exc, StaleVersion):
            extra["current"] = visible(exc.entity, exc.current)
        return status, message or MESSAGES[409], extra, []
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() == "www-authenticate"
                   or k.lower() == "allow"]
        return status, _http_message(exc, status), {}, headers
    if database_down(exc):
        current_app.logger.warning("database unavailable on %s %s: %s", request.method,
                                   request.path, str(getattr(exc, "orig", exc)).strip()[:200])
        return 503, MESSAGES[503], {}, [("Retry-After", RETRY_AFTER_SECONDS)]
    return 500, _internal(exc), {}, []


def database_down(exc: Exception) -> bool:
    """Whether `exc` says the database cannot be reached (restarting, a dropped or refused
    connection, no pooled connection free in time) rather than that a statement is wrong.
    The pool invalidates a connection that broke (`connection_invalidated`) and pre-pings
    the others, so the next request after the database returns is served again."""
    if isinstance(exc, sa.exc.TimeoutError):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if not isinstance(exc, sa.exc.OperationalError) or hasattr(orig, "sqlite_errorcode"):
        return False  # SQLite's OperationalError also covers a missing table: a bug, a 500
    code = getattr(orig, "pgcode", None)  # none: no connection; 08: lost; 57P0x: shut down
    return code is None or code.startswith(("08", "57P"))


def translated(exc: Exception, message: str,
               extra: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The message and field errors in the request's language: those with a catalog entry
    (every message marked `N_` where it is raised) are translated, others stay as they are;
    a message raised with `%(name)s` slots is translated before they are filled. `status`
    and `code` never change, so a client can rely on them."""
    if "errors" in extra:
        extra = {**extra, "errors": {name: [gettext(m) for m in messages]
                                     for name, messages in extra["errors"].items()}}
    if isinstance(exc, ValidationFailed):
        return gettext(SOME_NOT_VALID, problems=problems(extra["errors"])), extra
    params = getattr(exc, "params", None) if isinstance(exc, RecordError) else None
    if params:
        return gettext(exc.template, **params), extra
    return gettext(message), extra


def visible(entity: str | None, record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """`record` (a record in its JSON shape) without the fields hidden from the signed-in
    user; only its id, version and times when it cannot be told whose record it is or who
    asks."""
    if record is None:
        return None
    actor = g.get("actor")
    instance = current_app.extensions.get(EXTENSION)
    if instance is None or actor is None or entity not in instance.model.entities:
        return {name: value for name, value in record.items() if name in META_FIELDS}
    hidden = hidden_fields(instance, actor, entity)
    return {name: value for name, value in record.items() if name not in hidden}


def _http_message(exc: HTTPException, status: int) -> str:
    if isinstance(exc, CSRFError):
        return gettext("The form has expired or did not come from this site (%(reason)s); "
                       "reload the page and send it again.", reason=exc.description)
    if status == 405:
        allowed = getattr(exc, "valid_methods", None) or []
        return (f"{request.method} is not allowed at this address; use "
                f"{', '.join(sorted(allowed)) or 'another method'}.")
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        return (f"The request body is larger than the limit of {_size(limit)}; send less data "
                "in one request.")
    custom = exc.description if exc.description != type(exc).description else None
    return custom or MESSAGES.get(status) or f"The request failed ({exc.name})."


def _internal(exc: Exception) -> str:
    reference = g.get("request_id") or uuid.uuid4().hex[:12]
    current_app.logger.error("internal error %s on %s %s", reference, request.method,
                             request.path, exc_info=exc)
    return gettext("Something went wrong on our side; it has been logged with reference "
                   "%(reference)s. Try again, and tell your administrator if it keeps "
                   "happening.", reference=reference)


def _size(limit: int) -> str:
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):g} MB"
    return f"{limit / 1024:g} KB" if limit >= 1024 else f"{limit} bytes"


def _html(status: int, message: str, extra: dict[str, Any]) -> str:
    title = gettext(TITLES.get(status, N_("Error")))
    try:
        return render_template("error.html", status=status, title=title, message=message,
                               errors=extra.get("errors") or {}, actor=g.get("actor"))
    except Exception:  # noqa: BLE001 - a broken template must not hide the original answer
        current_app.logger.exception("the error page itself failed to render")
        return (f"<!doctype html><title>{status} {escape(title)}</title>"
                f"<h1>{escape(title)}</h1><p>{escape(message)}</p>")
