"""W101: a text a business user reads that lacks one of the languages asked for.

`crmforge validate --languages zh,es` lists every such text at its file, line and column. A text
written as a plain string is English only (`label: Offer`); a label map carries one text per
language (`label: {en: Offer, zh: 报价, es: Oferta}`). A text left out and made from a name —
a field without `label`, choice options written as a list — is English only too, and is
reported where the name is.

Which texts count is data: `PLACES` names them per file kind. Descriptions are left to the
pack author, but a dashboard's (shown under its title on the home page) and a role's (shown
beside it on the admin pages); the texts of menus, forms (a field's help text and placeholder
included), lists, workflows, dashboards, roles and messages are not. The check reads the
files again (without demo data), once the packs have no error; it only adds warnings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .diagnostics import Diagnostics, Mark
from .loader import LoadedDoc
from .packs import resolve

CODE = "W101"
ANY = "*"  # in a place's path: every key of a mapping, or every item of a list
ENGLISH = {"en": "-"}  # what a text made from a name holds
SLOT = re.compile(r"\{[^{}]*\}")
LANGUAGE = re.compile(r"[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*")  # as a label map's keys


@dataclass(frozen=True)
class Place:
    """Where a text goes in a file: a path of keys (ANY for each), and what a missing one is.

    `named`: left out, the text is made from the name of what holds it (English only), so it
    is reported; otherwise a missing text is simply not shown and is not reported.
    `options`: the path leads to choice options, a map of value to label or a list of values.
    """

    path: tuple[str, ...]
    named: bool = False
    options: bool = False


ENTITY_TEXTS = (
    Place(("plural",)),
    Place(("fields", ANY, "label"), named=True),
    Place(("fields", ANY, "options"), options=True),
    Place(("fields", ANY, "help")),  # under the field on its form
    Place(("fields", ANY, "placeholder")),  # in the empty input
    Place(("workflow", "states", ANY, "label"), named=True),
    Place(("workflow", "transitions", ANY, "label"), named=True),
    Place(("workflow", "transitions", ANY, "message")),
    Place(("validations", ANY, "message")),
    Place(("views", "list", "label")),
    Place(("views", "form", "sections", ANY, "label")),
    Place(("views", "related", ANY, "label")),
    Place(("kinds", ANY, "label")),
    Place(("approvals", ANY, "label")),
    Place(("approvals", ANY, "steps", ANY, "label")),
)

PLACES: dict[str, tuple[Place, ...]] = {
    "pack": (Place(("label",), named=True),),
    "entity": ENTITY_TEXTS,
    "dashboard": (Place(("label",), named=True), Place(("description",)),
                  Place(("widgets", ANY, "label"))),  # the description shows under its title
    "messages": (Place(("messages", ANY, "label")), Place(("messages", ANY, "subject")),
                 Place(("messages", ANY, "body"))),
    "documents": (Place(("documents", ANY, "label")),),
    "roles": (Place(("roles", ANY, "label"), named=True), Place(("roles", ANY, "description"))),
}


@dataclass(frozen=True)
class Missing:
    """A text without some of the languages asked for: where it is (or would go) and what
    it reads in English (None when it is made from a name)."""

    doc: LoadedDoc
    path: tuple
    english: str | None
    languages: tuple[str, ...]
    key: bool = False  # the text was left out: the mark is the key of what holds it
    mapped: bool = False  # the text is a label map already

    @property
    def mark(self) -> Mark:
        return self.doc.mark(self.path[:-1], key=True) if self.key else self.doc.mark(self.path)


def parse_languages(text: str) -> tuple[str, ...]:
    """`zh,es` -> ("zh", "es"); ValueError naming a code that is not a language code."""
    codes = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    bad = [code for code in codes if not LANGUAGE.fullmatch(code)]
    if bad or not codes:
        raise ValueError(f"'{bad[0] if bad else text}' is not a language code; "
                         "give codes like zh,es")
    return codes


def check(paths: list[str | Path], languages: tuple[str, ...], diags: Diagnostics) -> None:
    """Add a W101 warning for every text of the packs at `paths` that lacks a language."""
    sources = resolve([Path(p) for p in paths], Diagnostics(), demo=False)
    for source in sources:
        docs = [("pack", source.manifest)] if source.manifest else []
        for kind, doc in [*docs, *source.docs]:
            for item in missing(doc, kind, languages):
                diags.add(CODE, _message(item), item.mark, _hint(item), severity="warning")


def missing(doc: LoadedDoc, kind: str, languages: tuple[str, ...]) -> Iterator[Missing]:
    """Every text of `doc` (a file of `kind`) that lacks one of `languages`."""
    places = PLACES.get(kind, ())
    if kind == "entity" and isinstance(doc.data, dict) and "entity" in doc.data:
        places = (Place(("label",), named=True), *places)  # an extension keeps the base's
    for place in places:
        for path, value, found in _walk(doc.data, place.path, ()):
            if place.options:
                yield from _options(doc, path, value, languages)
            elif found:
                yield from _text(doc, path, value, languages)
            elif place.named and path[:-1] in doc.value_marks and _lacking(languages, ENGLISH):
                yield Missing(doc, path, None, _lacking(languages, ENGLISH), key=True)


def _walk(data: Any, pattern: tuple[str, ...], at: tuple) -> Iterator[tuple[tuple, Any, bool]]:
    """(path, value, found) for each concrete path matching `pattern`; the last key of a
    pattern is also yielded when missing (found False) from a mapping that is there."""
    if not pattern:
        yield at, data, True
        return
    head, rest = pattern[0], pattern[1:]
    if head == ANY:
        items = data.items() if isinstance(data, dict) else (
            enumerate(data) if isinstance(data, list) else ())
        for key, value in items:
            yield from _walk(value, rest, (*at, key))
    elif isinstance(data, dict) and head in data:
        yield from _walk(data[head], rest, (*at, head))
    elif not rest and isinstance(data, dict | type(None)):
        yield (*at, head), None, False


def _lacking(languages: tuple[str, ...], texts: dict) -> tuple[str, ...]:
    """The languages a text lacks; a plain string or a name is English (`{"en": ...}`)."""
    return tuple(lang for lang in languages if not str(texts.get(lang) or "").strip())


def _text(doc: LoadedDoc, path: tuple, value: Any,
          languages: tuple[str, ...]) -> Iterator[Missing]:
    texts = value if isinstance(value, dict) else {"en": value}
    lacking = _lacking(languages, texts)
    if lacking and not _neutral(str(texts.get("en") or "")):
        english = texts.get("en")
        yield Missing(doc, path, str(english) if english not in (None, "") else None, lacking,
                      mapped=isinstance(value, dict))


def _neutral(text: str) -> bool:
    """Whether every language reads a text the same: no word outside its `{field}` slots
    (`"{subject}"`), or a single letter (a grade or a band: `A`)."""
    words = SLOT.sub("", text).strip()
    return len(words) == 1 or not any(ch.isalpha() for ch in words)


def _options(doc: LoadedDoc, path: tuple, value: Any,
             languages: tuple[str, ...]) -> Iterator[Missing]:
    if isinstance(value, dict):
        for key, label in value.items():
            yield from _text(doc, (*path, key), label, languages)
    elif isinstance(value, list):
        lacking = _lacking(languages, ENGLISH)
        for index, option in enumerate(value):
            if lacking and not _neutral(str(option)):
                yield Missing(doc, (*path, index), None, lacking)


def _message(item: Missing) -> str:
    langs = ", ".join(item.languages)
    where = _describe(item.path)
    if item.english is not None:
        return f"{where} '{_short(item.english)}' has no {langs} translation"
    if item.key:
        return f"{where} is made from a name, so it has no {langs} translation"
    return f"{where} has no {langs} translation"


def _hint(item: Missing) -> str:
    langs = ", ".join(f"{lang}: …" for lang in item.languages)
    if item.key:
        return f"add label: {{en: …, {langs}}}"
    if isinstance(item.path[-1], int):
        return f"write the options as a map, value: {{en: …, {langs}}}"
    if item.mapped:
        return f"add {langs} to the map"
    return f"write it as a map: {{en: …, {langs}}}"


def _describe(path: tuple) -> str:
    """`fields.stage.label` for a path; list items by position (`widgets[2].label`)."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= 40 else line[:37] + "..."
