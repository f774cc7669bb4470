"""The business users' web pages: one Flask blueprint, one module per page family.

- `layout`: rendering (full page or htmx fragment, per-entity template overrides), navigation,
  flash messages, the helpers every template uses.
- `localize`: filters writing dates, times and numbers in the reader's language.
- `widgets`: the field-type registry of the web: how each type is shown, edited and filtered.
- `lists` (+ `listdata`): `/e/<entity>` — table, kanban, calendar, export, bulk actions.
- `forms`: `/e/<entity>/new`, `/e/<entity>/<id>/edit`, live conditions, the link picker.
- `recordpage`: `/e/<entity>/<id>` — fields, related lists, timeline, attachments.
- `search`: `/search?q=`.
- `profile`: `/me/language` — the user's own language (docs/languages.md).
- `merge_pages`: `/e/<entity>/duplicates` and `/e/<entity>/<id>/merge`; old ids redirect.
- `mail_pages`: `/e/<entity>/<id>/email` (Send e-mail), `/unsubscribe/<token>` (no sign-in).
- `calls_pages`: `/calls/pop` — the screen-pop of incoming calls, polled by every page.
- `documents_pages`: `/e/<entity>/<id>/documents/<name>.pdf` — a record printed as a PDF.
- `home` (+ `charts`): `/` — dashboards (data from `runtime.read.dashboards`), follow-ups,
  approvals.
- `admin/`: `/admin` — users, teams, roles, the audit log; and `/set-password/<token>`.

Data is read and written only through the layers below (`runtime.read`, `runtime.write`,
`runtime.process`): no page runs SQL of its own.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask

from runtime.http.web import (
    admin,
    attachments,
    calls_pages,
    documents_pages,
    forms,
    home,
    layout,
    lists,
    localize,
    mail_pages,
    merge_pages,
    profile,
    recordpage,
    search,
    widgets,
    workflow_pages,
)
from runtime.read.accounts import LANGUAGES

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"


def register_web(app: Flask) -> None:
    """Add the web pages, their static files and template helpers to `app`."""

    bp = Blueprint("web", __name__, static_folder=str(STATIC_DIR),
                   static_url_path="/static")
    bp.before_request(layout.before_request)
    for module in (home, lists, forms, recordpage, search, merge_pages, profile):
        module.register(bp)
    app.register_blueprint(bp)
    _template_helpers(app)

    workflow_pages.register(app)
    calls_pages.register(app)
    mail_pages.register(app)
    documents_pages.register(app)
    admin.register(app)
    app.jinja_env.globals["link_choices"] = forms.link_choices
    app.url_value_preprocessor(attachments.allow_uploads)


def _template_helpers(app: Flask) -> None:
    """Template helpers for every page (the login and error pages included)."""
    app.jinja_env.globals.update(
        tr=layout.tr, entity_label=layout.entity_label, field_label=layout.field_label,
        web_nav=layout.safe_navigation, query_url=layout.query_url, initials=layout.initials,
        widgets=widgets, icon=layout.icon, approvals_count=layout.approvals_count,
        has_endpoint=layout.has_endpoint, languages=LANGUAGES)
    app.jinja_env.filters["display"] = widgets.display_filter
    localize.register(app.jinja_env)
    app.context_processor(layout.safe_actor)
