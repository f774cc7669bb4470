"""`/admin/roles` and `/admin/roles/<role>`: what each role may do, read-only, generated from
the definitions (`runtime.read.role_rights`)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from runtime.core.errors import N_, NotFound
from runtime.http.current import get_instance
from runtime.http.web.admin.access import admin_only
from runtime.http.web.layout import language, render
from runtime.read import role_rights
from runtime.read.accounts import all_roles

# role_rights.ACTIONS as the role page heads them, translated there
ACTION_WORDS = (N_("Create"), N_("Read"), N_("Update"), N_("Delete"))


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/roles", "roles", roles_page)
    bp.add_url_rule("/roles/<role>", "role", role_page)


def roles_page() -> ResponseReturnValue:
    admin_only()
    return render("admin/roles.html", roles=role_rights.summaries(get_instance()))


def role_page(role: str) -> ResponseReturnValue:
    admin_only()
    inst = get_instance()
    found = all_roles(inst).get(role)
    if found is None:
        raise NotFound(gettext("There is no role '%(name)s'; pick one from the list of roles.",
                               name=role[:63]))
    rights = [] if role == "admin" else role_rights.rights(inst, role, language(), gettext)
    summary = next(s for s in role_rights.summaries(inst) if s.role.name == role)
    return render("admin/role.html", role=found, summary=summary, rights=rights,
                  actions=role_rights.ACTIONS)
