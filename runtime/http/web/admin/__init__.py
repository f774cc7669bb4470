"""`/admin`: the administration pages (docs/admin.md), one blueprint, one module per section.

- `people`: `/admin/users` — users, roles, one-time password links, deactivation, API tokens,
  delegations; `teams`: `/admin/teams`. For admins and the built-in `user_admin` role.
- `roles`: `/admin/roles` — what each role may do, read-only, from the definitions.
- `audit`: `/admin/audit` — every change and account event, filtered, paginated, as CSV.
- `webhooks`: `/admin/webhooks` — the webhooks and their delivery log, with "Send again".
- `imports`: `/admin/import` — CSV and XLSX imports: mapping, dry run, progress, undo (also
  for users who may create the entity's records: the list's "Import").
- `packs`: `/admin/packs` — installed and available packs; install and upgrade with their
  migration plan (`plans`), conflicts with customisations settled first.
- `studio`: `/admin/studio` — change an entity with forms or a YAML editor, written to the
  customisation layer, previewed, applied with its migration, kept as versions.
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

from runtime.core.errors import N_, Forbidden
from runtime.core.instance import Actor
from runtime.http.auth import current_actor, require_login
from runtime.http.web.admin import (
    audit,
    imports,
    packs,
    password,
    people,
    roles,
    studio,
    teams,
    webhooks,
)
from runtime.http.web.layout import actor, render
from runtime.read.permissions import manages_people


@dataclass(frozen=True)
class Section:
    label: str
    endpoint: str
    description: str
    people: bool  # open to user administrators too


SECTIONS = (  # label and description are translated where they are shown
    Section(N_("Users"), "admin.users", N_("Create users, give them roles and a one-time link "
            "to set their password; deactivate them; API tokens and delegations."), True),
    Section(N_("Teams"), "admin.teams", N_("Teams, their managers and members."), True),
    Section(N_("Roles"), "admin.roles", N_("What each role may do, per entity, read from the "
            "definitions."), False),
    Section(N_("Audit log"), "admin.audit", N_("Every change, approval, sign-in and failed "
            "sign-in, filtered and exported."), False),
    Section(N_("Webhooks"), "admin.webhooks", N_("Record events sent to other systems: the "
            "hooks, their secrets and the delivery log, with Send again."), False),
    Section(N_("Import"), "admin.imports", N_("Records from a CSV or XLSX file: map the "
            "columns, check, run with progress, download the rejected rows, undo."), False),
    Section(N_("Studio"), "admin.studio", N_("Change the definitions in the browser: fields, "
            "labels, options, form and list, validations; previewed, versioned, reverted."),
            False),
    Section(N_("Packs"), "admin.packs", N_("Installed packs and their versions; install or "
            "upgrade one, with its migration plan first."), False),
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
    for module in (people, teams, roles, audit, webhooks, imports, studio, packs):
        module.register(bp)
    app.register_blueprint(bp)
    password.register(app)
    app.jinja_env.globals["admin_sections"] = lambda: sections(current_actor())


def index_page() -> ResponseReturnValue:
    found = sections(actor())
    if not found:
        raise Forbidden(N_("The administration pages are for administrators; ask one if "
                           "you need something changed."))
    return render("admin/index.html", sections=[(s, url_for(s.endpoint)) for s in found])
