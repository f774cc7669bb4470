"""Who may open which administration page: `people_admin()` for users and teams (admins and
`user_admin`), `admin_only()` for roles and the audit log. Both answer 403 otherwise."""

from __future__ import annotations

from runtime.core.errors import N_, Forbidden
from runtime.core.instance import Actor
from runtime.http.web.layout import actor
from runtime.read.permissions import manages_people


def people_admin() -> Actor:
    who = actor()
    if not manages_people(who):
        raise Forbidden(N_("Only administrators and user administrators manage people."))
    return who


def admin_only() -> Actor:
    who = actor()
    if not who.all_powerful:
        raise Forbidden(N_("Only administrators may open this page."))
    return who
