"""The page chrome in the reader's language: Flask-Babel, its catalogs, and the choice of language.

A request's language is the signed-in user's preference (`crm_user.language`), else the best
match of `Accept-Language` among the languages with a catalog (`accounts.LANGUAGES`), else the
instance default `CRMFORGE_LANGUAGE` (English). `auth` builds the request's Actor with that
language, so labels (`Text.get`), messages and formats all follow it (docs/languages.md).

The catalogs are `.po` files in `runtime/translations/<language>/LC_MESSAGES/`; each is
compiled to its `.mo` at start when the `.mo` is missing or older, so a fresh checkout needs no
build step.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from flask import Flask, has_request_context, request
from flask_babel import Babel, get_locale

from runtime.core.catalogs import DOMAIN, TRANSLATIONS, compile_catalogs
from runtime.core.errors import N_
from runtime.read.accounts import LANGUAGES
from runtime.read.titles import locale_of

# words that reach the templates as data (approval statuses, timeline kinds, inbox tabs, a
# widget's operation, the commonest field message) and are translated where they are shown
DATA_WORDS = (
    N_("Pending"), N_("Approved"), N_("Rejected"), N_("Recalled"), N_("Note"), N_("Call"),
    N_("Meeting"), N_("Visit"), N_("E-mail"), N_("Waiting for me"), N_("All my requests"),
    N_("Sum"), N_("Avg"), N_("Min"), N_("Max"), N_("sum"), N_("avg"), N_("min"), N_("max"),
    N_("is required; fill it in"),
    N_("Stage"),  # the name a workflow's state field often has (`tr` looks English-only up)
    N_("More"),  # the form section of the fields no declared section places
    N_("skipped"), N_("waiting"), N_("approved"), N_("rejected"),  # an approval step's state
)


def default_language() -> str:
    """The instance default: $CRMFORGE_LANGUAGE when it names a language we have, else en."""
    wanted = os.environ.get("CRMFORGE_LANGUAGE", "").strip().lower()
    return wanted if wanted in LANGUAGES else "en"


def fallback_language() -> str:
    """The language of a request without a user preference: `Accept-Language` negotiated
    among ours, else the instance default."""
    if has_request_context():
        best = request.accept_languages.best_match(tuple(LANGUAGES))
        if best:
            return best
    return default_language()


def init_app(app: Flask, language: Callable[[], str]) -> None:
    """Flask-Babel on `app` (gettext and `_` in templates), picking `language()` per request."""
    compile_catalogs()

    def selector() -> str:
        try:
            wanted = language()
        except Exception:  # noqa: BLE001 - the error page renders even without a database
            wanted = fallback_language()
        return str(locale_of(wanted))  # "en-GB" or "xx" from a user row: one Babel can parse

    Babel(app, locale_selector=selector, default_domain=DOMAIN,
          default_translation_directories=str(TRANSLATIONS))
    app.jinja_env.globals["page_language"] = lambda: str(get_locale()).replace("_", "-")
