"""Rendering, navigation and the helpers every page uses.

One builder, many renderers: a view builds its page data once and calls `render()`, which
answers a full page, or — for an htmx request — only the block whose name is the request's
`HX-Target` (or the view's default fragment). Templates resolve `entity/<name>/<page>.html`
before `<page>.html`, so a pack can restyle one entity's page without forking the runtime.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import abort, current_app, g, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from markupsafe import Markup

from builder.model import Entity, Text
from runtime.core.errors import NotFound
from runtime.core.instance import Actor, Instance
from runtime.http.auth import current_actor, request_language, require_login
from runtime.http.current import get_instance
from runtime.process.approvals.pending import pending_count
from runtime.read import permissions, queries
from runtime.read.queries import entity_of

PUBLIC_ENDPOINTS = {"web.static"}


def inst() -> Instance:
    return get_instance()


def actor() -> Actor:
    """The signed-in user; every web page runs after `before_request` checked there is one."""
    who = current_actor()
    if who is None:  # pragma: no cover - before_request redirects first
        abort(401)
    return who


def before_request() -> ResponseReturnValue | None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    return require_login()


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true" and \
        request.headers.get("HX-Boosted") != "true"


# -- text in the user's language ------------------------------------------------------------

def language() -> str:
    return request_language()


def tr(text: Text | str | None) -> str:
    """`text` in the reader's language. A text in English only (often one made from a name:
    a workflow's `Status` field) is looked up in the chrome's catalogs, so such common words
    are not left in English on a Chinese or Spanish page."""
    if text is None:
        return ""
    if not isinstance(text, Text):
        return str(text)
    wanted = language() or "en"
    if [code for code, _ in text.values] == ["en"] and not wanted.startswith("en"):
        return gettext(text.values[0][1])
    return text.get(wanted)


def entity_label(entity: Entity, plural: bool = False) -> str:
    return tr(entity.plural if plural else entity.label)


def field_label(entity: Entity, name: str) -> str:
    f = entity.fields.get(name)
    return tr(f.label) if f is not None else name.replace("_", " ").capitalize()


# -- permissions ------------------------------------------------------------------------------

def can(entity: str, action: str, record: dict | None = None) -> bool:

    return bool(permissions.can(inst(), actor(), entity, action, record))


def entity_or_404(name: str, action: str = "read") -> Entity:
    """The entity `name` when it exists, has pages (of the system entities only users and
    teams do) and the user may `action` it; 404 / 403 otherwise."""
    entity = entity_of(inst(), name)
    if entity.system and name not in ("user", "team"):
        raise NotFound(f"There is no page for '{name}'; pick a page from the menu.")
    if not can(name, action):
        abort(403, f"You may not {action} {entity_label(entity, plural=True).lower()}; "
                   "ask an administrator for a role that allows it.")
    return entity


def hidden_fields(entity: str) -> frozenset[str]:

    return frozenset(permissions.hidden_fields(inst(), actor(), entity))


def readonly_fields(entity: str) -> frozenset[str]:

    return frozenset(permissions.readonly_fields(inst(), actor(), entity))


# -- navigation -------------------------------------------------------------------------------

@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    key: str


@dataclass(frozen=True)
class NavGroup:
    label: str
    items: tuple[NavItem, ...]


def in_menu(entity: Entity) -> bool:
    """Whether `entity` is a menu item for this user: not a system entity, not `menu: false`
    (a child reached from its parent's related list), readable, and not a list that would
    be empty with nothing to do in it (read only through a condition no record meets, and
    no right to create) — so a pack group the user has nothing in disappears."""
    if entity.system or not entity.menu or not can(entity.name, "read"):
        return False
    if can(entity.name, "create") or permissions.read_filter(inst(), actor(),
                                                             entity.name) is None:
        return True
    return queries.count(inst(), actor(), entity.name, cap=1)[0] > 0


def navigation() -> list[NavGroup]:
    """Packs and their entities that are menu items for the user (`in_menu`), in install
    order; a pack with none is left out. Cached per request."""
    if "web_nav" in g:
        return g.web_nav
    from flask import url_for

    model = inst().model
    by_pack: dict[str, list[NavItem]] = {}
    for entity in model.entities.values():
        if not in_menu(entity):
            continue
        by_pack.setdefault(entity.pack, []).append(NavItem(
            entity_label(entity, plural=True), url_for("web.list", entity=entity.name),
            entity.name))
    groups = []
    for name, pack in model.packs.items():
        items = by_pack.get(name)
        if items:
            groups.append(NavGroup(tr(pack.label), tuple(items)))
    g.web_nav = groups
    return groups


# -- rendering --------------------------------------------------------------------------------

def template_names(page: str, entity: str | None) -> list[str]:
    return [f"entity/{entity}/{page}", page] if entity else [page]


def render(page: str, *, entity: str | None = None, fragment: str | None = None,
           status: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> ResponseReturnValue:
    """The page `page` (e.g. "list.html"), or one block of it for an htmx request."""
    env = current_app.jinja_env
    template = env.select_template(template_names(page, entity))
    current_app.update_template_context(context)
    block = None
    if is_htmx():
        target = request.headers.get("HX-Target") or ""
        block = target if target in template.blocks else fragment
    if block:
        body = "".join(template.blocks[block](template.new_context(context)))
    else:
        body = template.render(context)
    return body, status, headers or {}


def query_url(endpoint_args: dict[str, Any], base: str, **changes: Any) -> str:
    """`base` with the current query string, `changes` applied (None removes a key)."""
    args: list[tuple[str, str]] = []
    changed = set(changes)
    for key, value in endpoint_args.items():
        if key in changed:
            continue
        values = value if isinstance(value, list) else [value]
        args += [(key, v) for v in values if v not in (None, "")]
    for key, value in changes.items():
        if value is None or value == "":
            continue
        for v in value if isinstance(value, list) else [value]:
            args.append((key, str(v)))
    return base + ("?" + urlencode(args) if args else "")


def current_args(drop: Iterable[str] = ()) -> dict[str, Any]:
    dropped = set(drop)
    return {k: request.args.getlist(k) for k in request.args if k not in dropped}


def color_index(value: Any, options: tuple[str, ...] = ()) -> int:
    """A stable badge colour for a choice value: by position, else by hash."""
    if value in options:
        return options.index(value) % 8
    return int(hashlib.md5(str(value).encode()).hexdigest()[:4], 16) % 8  # noqa: S324


def initials(name: str) -> str:
    parts = [p for p in name.replace(".", " ").replace("_", " ").split() if p]
    return "".join(p[0] for p in parts[:2]).upper() or "?"


def safe_actor() -> dict[str, Any]:
    """`actor` for every template; None when it cannot be had (the error page renders
    without a database)."""
    try:
        return {"actor": current_actor()}
    except Exception:  # noqa: BLE001 - the error page must render even without a database
        return {"actor": None}


def has_endpoint(name: str) -> bool:
    return name in current_app.view_functions


def safe_navigation() -> list[NavGroup]:
    try:
        return navigation()
    except Exception:  # noqa: BLE001 - the error page renders without navigation
        current_app.logger.exception("navigation failed")
        return []


def approvals_count() -> int:
    """Pending approval requests this user may decide: one COUNT query, once a request."""
    if "web_approvals" in g:
        return g.web_approvals
    if not defines_approvals(inst()):
        return 0  # nothing can wait: no query on every page of a model without approvals
    try:
        g.web_approvals = pending_count(inst(), actor())
        return g.web_approvals
    except Exception:  # noqa: BLE001 - a badge must never break the page
        current_app.logger.exception("approvals count failed")
        return 0


def defines_approvals(instance: Instance) -> bool:
    """Whether any entity of the served model has an approval (on a workflow, the only place
    one can be asked for)."""
    return any(entity.approvals for entity in instance.model.entities.values()
               if entity.workflow is not None)


SVG_ICONS = {
    "search": '<svg width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor"'
              ' stroke-width="2" aria-hidden="true"><circle cx="11" cy="11" r="7"/>'
              '<path d="m20 20-3.5-3.5"/></svg>',
    "menu": '<svg width="20" height="20" viewBox="0 0 24 24" fill="none" stroke="currentColor"'
            ' stroke-width="2" aria-hidden="true"><path d="M4 6h16M4 12h16M4 18h16"/></svg>',
}


def icon(name: str) -> Markup:
    return Markup(SVG_ICONS.get(name, ""))
