"""Request ids and the log lines of requests.

Every request has an id: the caller's `X-Request-ID` when it is a plausible one (1–64
letters, digits, `.`, `_`, `:` or `-`; a proxy in front usually sets it), else a new one. It is
sent back in the `X-Request-ID` header, shown on error pages (the reference of an internal
error) and written on every log line made while the request runs. Each request ends with one
access line on the `crmforge.access` logger: method, path, route, status, duration and time
spent in the database.

`JSONFormatter` writes a log record as one JSON object per line; `crmforge serve` installs it
(`LOGGING`) for its own, gunicorn's and the app's loggers.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, has_request_context, request

HEADER = "X-Request-ID"
VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
EXTRA_KEYS = ("method", "path", "route", "status", "duration_ms", "db_ms", "remote")

access_log = logging.getLogger("crmforge.access")


def register(app: Flask) -> None:
    """Give every request of `app` an id, and log it when it ends."""
    app.before_request(begin)
    app.after_request(finish)


def begin() -> None:
    given = request.headers.get(HEADER, "")
    g.request_id = given if VALID_ID.fullmatch(given) else uuid.uuid4().hex[:16]
    g.started = time.perf_counter()
    g.db_seconds = 0.0


def finish(response: Response) -> Response:
    response.headers[HEADER] = g.request_id
    access_log.info("%s %s %s", request.method, request.path, response.status_code, extra={
        "method": request.method, "path": request.path, "route": route(),
        "status": response.status_code, "duration_ms": round(elapsed() * 1000, 2),
        "db_ms": round(g.get("db_seconds", 0.0) * 1000, 2), "remote": request.remote_addr})
    return response


def elapsed() -> float:
    """Seconds since the request began."""
    return time.perf_counter() - g.get("started", time.perf_counter())


def route() -> str:
    """The route template that answered (`/e/<entity>/<id:record_id>`), so that metrics and
    logs group requests by page, not by address; `unmatched` for a 404."""
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def request_id() -> str | None:
    """The id of the request being served, if any."""
    return g.get("request_id") if has_request_context() else None


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, the request id while a
    request runs, the access fields, and the exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        rid = getattr(record, "request_id", None) or request_id()
        if rid:
            entry["request_id"] = rid
        entry.update({key: getattr(record, key) for key in EXTRA_KEYS if hasattr(record, key)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


LOGGING: dict[str, Any] = {  # logging.config.dictConfig, also gunicorn's `logconfig_dict`
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": JSONFormatter}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                            "stream": "ext://sys.stderr"}},
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
    },
}
