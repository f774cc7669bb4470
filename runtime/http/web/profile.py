"""The signed-in user's own settings: `POST /me/language` (the form is on the page their name
in the top bar leads to). An empty choice follows the browser's `Accept-Language`."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import force_locale, gettext

from runtime.http.i18n import fallback_language
from runtime.http.web.layout import actor, inst
from runtime.read.accounts import LANGUAGES
from runtime.write import accounts


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/me/language", "language", set_language, methods=["POST"])


def set_language() -> ResponseReturnValue:
    chosen = request.form.get("language") or None
    accounts.set_own_language(inst(), actor(), chosen)
    with force_locale(chosen or fallback_language()):  # the answer speaks the new language
        name = LANGUAGES[chosen] if chosen else gettext("as your browser asks")
        flash(gettext("Language saved: %(language)s.", language=name), "success")
    return redirect(url_for("auth.logout"))
