"""`/admin`: the administration pages (docs/admin.md), one blueprint, one module per section.

- `people`: `/admin/users` — users, roles, one-time password links, deactivation, API tokens,
  delegations; `teams`: `/admin/teams`. For admins and the built-in `user_admin` role.
- `roles`: `/admin/roles` — what each role may do, read-only, from the definitions.
- `audit`: `/admin/audit` — every change and account event, filtered, paginated, as CSV.
- `webhooks`: `/admin/webhooks` — the webhooks and their delivery log, with "Send again".
- `imports`: `/admin/import` — CSV and XLSX imports: mapping, dry run, progress, undo (also
  for users who may create the entity's records: the list's "Import").
- `password`: `/set-password/<token>` — where a user sets a password with a one-time link
  (no sign-in: the link is the proof).

Routes are thin: data is read in `runtime.read` (`accounts`, `role_rights`, `audit_log`) and
written in `runtime.write.accounts`. Every form posts a CSRF token (Flask-WTF, as every page
of the app) and works without JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask, url_for
from flask.typing import ResponseReturnValue

from runtime.core.errors import Forbidden
from runtime.core.instance import Actor
from runtime.http.auth import current_actor, require_login
from runtime.http.web.admin import audit, imports, password, people, roles, teams, webhooks
from runtime.http.web.layout import actor, render
from runtime.read.permissions import manages_people


@dataclass(frozen=True)
class Section:
    label: str
    endpoint: str
    description: str
    people: bool  # open to user administrators too


SECTIONS = (
    Section("Users", "admin.users", "Create users, give them roles and a one-time link to set "
            "their password; deactivate them; API tokens and delegations.", True),
    Section("Teams", "admin.teams", "Teams, their managers and members.", True),
    Section("Roles", "admin.roles", "What each role may do, per entity, read from the "
            "definitions.", False),
    Section("Audit log", "admin.audit", "Every change, approval, sign-in and failed sign-in, "
            "filtered and exported.", False),
    Section("Webhooks", "admin.webhooks", "Record events sent to other systems: the hooks, "
            "their secrets and the delivery log, with Send again.", False),
    Section("Import", "admin.imports", "Records from a CSV or XLSX file: map the columns, "
            "check, run with progress, download the rejected rows, undo.", False),
)


def sections(who: Actor | None) -> list[Section]:
    """The sections `who` may open (none for a user who is neither admin nor user_admin)."""
    if who is None or not manages_people(who):
        return []
    return [s for s in SECTIONS if s.people or who.all_powerful]


def register(app: Flask) -> None:
    bp = Blueprint("admin", __name__, url_prefix="/admin")
    bp.before_request(require_login)
    bp.add_url_rule("", "index", index_page)
    for module in (people, teams, roles, audit, webhooks, imports):
        module.register(bp)
    app.register_blueprint(bp)
    password.register(app)
    app.jinja_env.globals["admin_sections"] = lambda: sections(current_actor())


def index_page() -> ResponseReturnValue:
    found = sections(actor())
    if not found:
        raise Forbidden("The administration pages are for administrators; ask one if you "
                        "need something changed.")
    return render("admin/index.html", sections=[(s, url_for(s.endpoint)) for s in found])
