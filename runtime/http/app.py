"""The web application: `create_app(config)` builds everything; importing this module does not.

Configuration comes from, in increasing order of precedence: the defaults below, the
environment (`CRMFORGE_DATABASE_URL`, `CRMFORGE_SECRET_KEY`), and the `config` mapping. Tests
pass `{"INSTANCE": inst, "TESTING": True}` so that no database is opened behind their back;
production runs `gunicorn "runtime.http.app:create_app()"`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from flask_wtf.csrf import CSRFProtect
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

from runtime.core.db import database_url, normalize_url
from runtime.core.errors import BadRequest
from runtime.http import (
    auth,
    error_handler,
    i18n,
    model_watch,
    ops_routes,
    replica,
    requestlog,
)
from runtime.http.api import create_blueprint
from runtime.http.current import EXTENSION
from runtime.http.web import register_web
from runtime.process.setup import open_instance
from runtime.read.paging import MAX_ID

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"  # package data
MAX_BODY_BYTES = 2 * 1024 * 1024

DEFAULTS: dict[str, Any] = {
    "INSTANCE_DIR": "instance",
    "MAX_CONTENT_LENGTH": MAX_BODY_BYTES,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "crmforge_session",
    "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the signed session
}


class JSONProvider(DefaultJSONProvider):
    """Records in JSON: ISO dates, UTC datetimes with `Z`, decimals as exact strings.

    Money and other decimals are strings ("1250.00") because a JSON number is a binary float
    in most clients and would lose cents on large amounts; the API accepts both on input.
    """

    sort_keys = False
    ensure_ascii = False

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            return o.isoformat() + ("Z" if o.tzinfo is None else "")
        if isinstance(o, date):
            return o.isoformat()
        if isinstance(o, Decimal):
            return str(o)
        if isinstance(o, set | frozenset | tuple):
            return sorted(o) if isinstance(o, set | frozenset) else list(o)
        return DefaultJSONProvider.default(o)


class IdConverter(IntegerConverter):
    """`<int:...>` (and `<id:...>`) in this app's routes: every number in an address is a row
    id, so one outside 1 … 2⁶³-1 is a 404 here instead of an overflow in the database. (Not a
    `max`: werkzeug takes a value its converter refuses for a 405 on the other methods of the
    address.)"""

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise NotFound(f"There is nothing with the id {value[:40]}; ids are whole numbers "
                           f"from 1 to {MAX_ID}.")
        return number


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The CRMForge web app: the JSON API under /api/v1, the sign-in pages and the business
    users' pages. `config` overrides the environment."""
    app = Flask("runtime", template_folder=str(TEMPLATES_DIR), static_folder=None)
    app.url_map.converters.update(id=IdConverter, int=IdConverter)  # before any route
    app.json = JSONProvider(app)
    app.jinja_options = {**app.jinja_options, "trim_blocks": True, "lstrip_blocks": True,
                         "autoescape": _autoescape}
    app.config.update(DEFAULTS)
    overrides = dict(config or {})
    instance = overrides.pop("INSTANCE", None)
    app.config.update(_from_environment())
    app.config.update(overrides)
    _absolute_folders(app)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_or_create_secret_key(Path(app.config["INSTANCE_DIR"]))
    app.config["DATABASE_URL"] = normalize_url(app.config["DATABASE_URL"])
    opened = instance is None
    if opened:
        instance = open_instance(app.config["DATABASE_URL"])
    app.extensions[EXTENSION] = instance
    requestlog.register(app)  # first: every other hook may log, with the request's id
    replica.register(app, instance)  # before any hook that may write
    i18n.init_app(app, auth.request_language)
    if app.config.get("WATCH_MODEL", opened):
        model_watch.watch(app)


    csrf = CSRFProtect(app)
    api = create_blueprint()
    csrf.exempt(api)  # the API authenticates with a bearer token, never with the cookie
    app.register_blueprint(api, url_prefix="/api/v1")
    app.register_blueprint(auth.create_blueprint())
    error_handler.register(app)
    ops_routes.register(app, instance.engine)
    app.before_request(_refuse_nul)
    app.after_request(security_headers)
    register_web(app)
    return app


def _absolute_folders(app: Flask) -> None:
    """`INSTANCE_DIR` (and `UPLOAD_DIR`) against the working directory, once, at start: Flask
    resolves a relative path against the app's root instead, so `send_file` and the code that
    checked the file would look in two different places."""
    for key in ("INSTANCE_DIR", "UPLOAD_DIR"):
        if app.config.get(key):
            app.config[key] = str(Path(app.config[key]).absolute())


def load_or_create_secret_key(instance_dir: Path) -> str:
    """The key in `instance_dir/secret_key`, created (owner-readable only) on first use.

    Several server processes may start at once: the file is created exclusively, and whoever
    loses the race reads the winner's key.
    """
    path = instance_dir / "secret_key"
    try:
        key = path.read_text(encoding="ascii").strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    instance_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key


def _from_environment() -> dict[str, Any]:
    values: dict[str, Any] = {"DATABASE_URL": database_url()}
    if os.environ.get("CRMFORGE_READ_DATABASE_URL"):  # a read replica (runtime.http.replica)
        values["READ_DATABASE_URL"] = os.environ["CRMFORGE_READ_DATABASE_URL"]
    if os.environ.get("CRMFORGE_SECRET_KEY"):
        values["SECRET_KEY"] = os.environ["CRMFORGE_SECRET_KEY"]
    proxies = os.environ.get("CRMFORGE_TRUSTED_PROXIES", "").strip()
    if proxies:  # how many proxies in front add X-Forwarded-For (the sign-in throttle)
        if not proxies.isdigit():
            raise ValueError(f"CRMFORGE_TRUSTED_PROXIES must be a number, not {proxies!r}")
        values["TRUSTED_PROXIES"] = int(proxies)
    if os.environ.get("CRMFORGE_COOKIE_SECURE", "").strip().lower() in ("1", "true", "yes"):
        values["SESSION_COOKIE_SECURE"] = True  # served over HTTPS (a TLS proxy in front)
    return values


def _autoescape(name: str | None) -> bool:
    return not (name or "").endswith(".txt")  # e-mail bodies are plain text


def _refuse_nul() -> None:
    """No person types a NUL character, and PostgreSQL stores none in any string: an address
    or a form that holds one is refused here, once for every page and API call (JSON bodies:
    `api.common.json_object`)."""
    if "\x00" in request.path or _holds_nul(request.args) or _holds_nul(request.form):
        raise BadRequest("The address or the form holds a NUL character (%00), which no value "
                         "may contain; remove it and send the request again.")


def _holds_nul(values: MultiDict) -> bool:
    return any("\x00" in key or any("\x00" in v for v in values.getlist(key))
               for key in values)


# Scripts only from our own files (runtime/static/): no inline script, no event handler
# attribute, no eval. Styles allow 'unsafe-inline' because templates and the charts still carry
# a few style attributes; styles cannot run code. Nothing may frame a page (clickjacking).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",  # the favicon is a data: URL
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def security_headers(response):  # noqa: ANN001, ANN202 - flask.Response in and out
    """The same headers on every answer; one that set its own policy (an attachment
    download's sandbox) keeps it."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    return response
