"""The one error handler: every failure becomes an HTML page or the one JSON error shape.

    {"error": {"status": 404, "message": "what happened and what to do"}}

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

from flask import Flask, current_app, g, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from runtime.core.errors import RecordError, StaleVersion, ValidationFailed
from runtime.http.current import EXTENSION
from runtime.read.permissions import META_FIELDS, hidden_fields

TITLES = {
    400: "Bad request", 401: "Sign-in required", 403: "Not allowed", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "Request too large",
    415: "Unsupported media type", 422: "Invalid values", 429: "Too many requests",
    500: "Internal error",
}

MESSAGES = {
    400: "The request is malformed; check it against the API documentation (docs/api.md).",
    401: "Sign in first: send the header 'Authorization: Bearer <token>' with a token from "
         "'crmforge token create USERNAME'.",
    403: "You are not allowed to do this; ask an administrator for a role that allows it.",
    404: "There is nothing at this address; check the entity name and the record id.",
    409: "The request conflicts with the record's current state; reload it and try again.",
    415: "Send the body as JSON with 'Content-Type: application/json'.",
    422: "Some values are not valid; see 'errors' for what to fix in each field.",
    429: "Too many requests; wait a moment and try again.",
}


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
    if wants_json():
        body: dict[str, Any] = {"error": {"status": status, "message": message}, **extra}
        response = current_app.json.response(body)
        response.status_code = status
    else:
        response = current_app.make_response((_html(status, message, extra), status))
    for name, value in headers:
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


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
    return 500, _internal(exc), {}, []


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
        return (f"The form has expired or did not come from this site ({exc.description}); "
                "reload the page and send it again.")
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
    return (f"Something went wrong on our side; it has been logged with reference {reference}. "
            "Try again, and tell your administrator if it keeps happening.")


def _size(limit: int) -> str:
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):g} MB"
    return f"{limit / 1024:g} KB" if limit >= 1024 else f"{limit} bytes"


def _html(status: int, message: str, extra: dict[str, Any]) -> str:
    title = TITLES.get(status, "Error")
    try:
        return render_template("error.html", status=status, title=title, message=message,
                               errors=extra.get("errors") or {}, actor=g.get("actor"))
    except Exception:  # noqa: BLE001 - a broken template must not hide the original answer
        current_app.logger.exception("the error page itself failed to render")
        return (f"<!doctype html><title>{status} {escape(title)}</title>"
                f"<h1>{escape(title)}</h1><p>{escape(message)}</p>")
