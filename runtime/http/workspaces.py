"""One server, several workspaces: a WSGI app that hands each request to the workspace it names.

A workspace is a whole instance (its database, packs, users, custom dir) served by a Flask app
of its own, made by `create_app` on its first request and kept. A request names it by

- its host: a name in the workspace's host list, or `<name>.<domain>` when a domain is set
  (`CRMFORGE_WORKSPACE_DOMAIN`); the workspace then answers at `/`;
- else its path: `/w/<name>/...`, served with `SCRIPT_NAME` set to `/w/<name>`, so that every
  `url_for`, redirect, htmx address and static file of that app stays under the prefix.

Anything else gets the chooser (`templates/workspaces.html`): a link to each workspace, no data
of any, in the browser's language (`Accept-Language`, else `CRMFORGE_LANGUAGE`). What a
workspace is (its settings, where they are kept) is the caller's business: the dispatcher
receives `find(name)` and `listing()` (`runtime.ops.workspaces` reads the registry).
`find` is asked on every request, so a workspace deleted or made again is noticed at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import Any

import sqlalchemy as sa
from flask import Flask, jsonify, redirect, render_template, request
from werkzeug.wrappers import Response

from builder.packs import custom_dir_as
from runtime.http.app import TEMPLATES_DIR, create_app, security_headers
from runtime.http.current import EXTENSION
from runtime.http.i18n import fallback_language, init_app
from runtime.http.web import STATIC_DIR
from runtime.process.setup import SetupError

PREFIX = "w"  # /w/<name>/...
MISSING = "crmforge.missing_workspace"  # environ key: the workspace a request named in vain
log = logging.getLogger("crmforge.workspaces")


@dataclass(frozen=True)
class Site:
    """A workspace as the dispatcher sees it: the `create_app` config of its app, the custom
    dir its model is read with, and the host names that choose it."""

    name: str
    label: str
    config: Mapping[str, Any]
    custom_dir: Path
    hosts: tuple[str, ...] = ()


Find = Callable[[str], "Site | None"]


class Dispatcher:
    """The WSGI app of a server hosting workspaces."""

    def __init__(self, find: Find, listing: Callable[[], Iterable[Site]], *,
                 domain: str | None = None,
                 make_app: Callable[[Mapping[str, Any]], Flask] = create_app):
        self.find = find
        self.listing = listing
        self.domain = (domain or "").strip(".").lower() or None
        self.make_app = make_app
        self.chooser = chooser_app(listing)
        self._apps: dict[str, tuple[Site, Flask]] = {}
        self._lock = Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        name = self.by_host(environ)
        prefixed = name is None
        if prefixed:
            name = by_prefix(environ.get("PATH_INFO", ""))
            if name is None:
                return self.chooser(environ, start_response)
        site = self.find(name)
        if site is None:
            self.forget(name)
            environ[MISSING] = name
            return self.chooser(environ, start_response)
        if prefixed:
            mount(environ, name)
        with custom_dir_as(site.custom_dir):  # a model reopened in this request reads it
            app = self.app(site)
            if app is None:
                return _unavailable(site)(environ, start_response)
            return app(environ, start_response)

    def by_host(self, environ: Mapping[str, Any]) -> str | None:
        """The workspace the request's host names, if any."""
        host = (environ.get("HTTP_HOST") or "").rsplit(":", 1)[0].lower().rstrip(".")
        for site in self.listing():
            if host in site.hosts:
                return site.name
        if self.domain and host.endswith("." + self.domain):
            label = host[:-len(self.domain) - 1]
            return label if "." not in label else None
        return None

    def app(self, site: Site) -> Flask | None:
        """The app serving `site`, made on first use and again when its settings changed;
        None (logged) when the workspace cannot be opened now (tried again next time)."""
        kept = self._apps.get(site.name)
        if kept is not None and kept[0] == site:
            return kept[1]
        with self._lock:  # one app made at a time; the requests of made ones go on
            kept = self._apps.get(site.name)
            if kept is not None and kept[0] == site:
                return kept[1]
            try:
                app = self.make_app(site.config)
            except (SetupError, sa.exc.SQLAlchemyError) as exc:
                log.error("workspace %s cannot be opened: %s", site.name, exc)
                return None
            self.forget(site.name)
            self._apps[site.name] = (site, app)
        return app

    def forget(self, name: str) -> None:
        """Drop the app of workspace `name` (deleted or changed), closing its connections."""
        kept = self._apps.pop(name, None)
        if kept is not None:
            kept[1].extensions[EXTENSION].engine.dispose()

    def close(self) -> None:
        """Close every workspace's database connections."""
        with self._lock:
            for name in list(self._apps):
                self.forget(name)


def by_prefix(path: str) -> str | None:
    """The `<name>` of a `/w/<name>/...` path."""
    parts = path.split("/", 3)  # "", "w", name, rest
    if len(parts) < 3 or parts[1] != PREFIX or not parts[2]:
        return None
    return parts[2]


def mount(environ: dict[str, Any], name: str) -> None:
    """Serve the request as if the workspace's app were mounted at `/w/<name>`."""
    rest = environ.get("PATH_INFO", "")[len(PREFIX) + len(name) + 2:]
    environ["SCRIPT_NAME"] = f"{environ.get('SCRIPT_NAME', '')}/{PREFIX}/{name}"
    environ["PATH_INFO"] = rest or "/"


def _unavailable(site: Site) -> Response:
    return Response(f"The workspace {site.label} cannot be opened now; the server's log "
                    "says why.\n", 503, mimetype="text/plain")  # no app: no language yet


def chooser_app(listing: Callable[[], Iterable[Site]]) -> Flask:
    """The pages outside every workspace: the chooser at `/`, `/healthz`, the static files,
    and a 404 naming a workspace that does not exist."""
    app = Flask("runtime.workspaces", template_folder=str(TEMPLATES_DIR), static_folder=None)
    # `web.static`, as base.html names it in every workspace
    app.add_url_rule("/static/<path:filename>", "web.static",
                     lambda filename: app.send_static_file(filename))
    app.static_folder = str(STATIC_DIR)
    init_app(app, fallback_language)  # no user here: `Accept-Language`, else the default

    @app.before_request
    def missing_workspace() -> Any:
        name = request.environ.get(MISSING)
        if name is not None:
            return _chooser(listing, missing=name), 404
        return None

    @app.get("/")
    def choose() -> Any:
        return _chooser(listing)

    @app.get(f"/{PREFIX}/")
    def bare_prefix() -> Any:
        return redirect(request.script_root + "/")

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    @app.errorhandler(404)
    def not_found(_error: Any) -> Any:
        return _chooser(listing, missing=request.path), 404

    app.after_request(security_headers)
    return app


def _chooser(listing: Callable[[], Iterable[Site]], missing: str | None = None) -> str:
    return render_template("workspaces.html", missing=missing,
                           sites=sorted(listing(), key=lambda s: (s.label.lower(), s.name)))

