"""The message catalogs (docs/languages.md): `.po` files in `runtime/translations/<language>/
LC_MESSAGES/`, compiled to `.mo` when missing or older (`compile_catalogs`, at the web app's
start and on first use here), and `say_in(language)` — gettext's signature for code that runs
outside a request's Flask-Babel but knows its reader's language (a transition refused in the
workflow panel, the API or an automation's log)."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"
DOMAIN = "messages"


def compile_catalogs(folder: Path = TRANSLATIONS) -> list[Path]:
    """Write the `.mo` of every `.po` under `folder` that has none or an older one; the
    written paths."""
    written = []
    for po_path in sorted(folder.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=po_path.parts[-3])
        partial = mo_path.with_suffix(f".mo.{os.getpid()}")
        with partial.open("wb") as handle:
            write_mo(handle, catalog)
        partial.replace(mo_path)  # atomic: several server processes may start at once
        written.append(mo_path)
    return written


def say_in(language: str | None) -> Callable[..., str]:
    """`say(message, **values)`: `message` in `language` (English when it has no catalog or no
    entry), then its `%(name)s` slots filled."""
    return _say((language or "en").replace("_", "-").split("-")[0].lower())


@lru_cache(maxsize=16)
def _say(language: str) -> Callable[..., str]:
    compile_catalogs()
    catalog: NullTranslations = Translations.load(str(TRANSLATIONS), [language], DOMAIN)

    def say(message: str, **values: object) -> str:
        text = catalog.gettext(message)
        return text % values if values else text

    return say
