"""The signed-in user's own settings: `POST /me/language` and `POST /me/time-zone` (the forms
are on the page their name in the top bar leads to). An empty language follows the browser's
`Accept-Language`; an empty time zone follows the instance's (docs/languages.md)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import force_locale, gettext

from runtime.core.errors import ValidationFailed
from runtime.http.i18n import fallback_language
from runtime.http.web.layout import actor, inst
from runtime.read.accounts import LANGUAGES
from runtime.read.titles import zone_of
from runtime.write import accounts


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/me/language", "language", set_language, methods=["POST"])
    bp.add_url_rule("/me/time-zone", "time_zone", set_time_zone, methods=["POST"])


def set_language() -> ResponseReturnValue:
    chosen = request.form.get("language") or None
    accounts.set_own_language(inst(), actor(), chosen)
    with force_locale(chosen or fallback_language()):  # the answer speaks the new language
        name = LANGUAGES[chosen] if chosen else gettext("as your browser asks")
        flash(gettext("Language saved: %(language)s.", language=name), "success")
    return redirect(url_for("auth.logout"))


def set_time_zone() -> ResponseReturnValue:
    """Save the user's time zone; a name that is no zone is said on the same page."""
    try:
        zone = accounts.set_own_time_zone(inst(), actor(), request.form.get("time_zone"))
    except ValidationFailed:
        flash(gettext("“%(name)s” is not a time zone: pick one from the list, such as "
                      "Europe/Madrid or Asia/Shanghai.",
                      name=(request.form.get("time_zone") or "")[:64]), "error")
        return redirect(url_for("auth.logout"))
    flash(gettext("Time zone saved: %(zone)s.", zone=zone or str(zone_of(inst()))), "success")
    return redirect(url_for("auth.logout"))
