"""The web half of the field-type registry: for each field type (docs/definition-files.md), how a
value is shown, which input edits it, how the posted form is read back, and which filter control
lists use.

Adding a field type is adding one `Widget` here (and one input macro in
`templates/widgets/inputs.html`); no view tests a type name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import url_for
from markupsafe import Markup, escape
from werkzeug.datastructures import MultiDict

from builder.fieldtypes import REGISTRY
from builder.model import Field
from runtime.core.sanitize import sanitize_html
from runtime.http.web import localize
from runtime.http.web.layout import color_index, inst, language
from runtime.read.titles import (
    currency_of,
    date_text,
    money_text,
    number_text,
    percent_text,
)

MISSING = object()  # the form did not carry this field: leave the stored value alone
PRESENT = "__present"  # marker input of checkboxes and multi-selects, posted even when empty

Titles = Mapping[str, Mapping[Any, str]]  # link field -> {id: title}


@dataclass(frozen=True)
class LinkInput:
    """What a link picker posts: the chosen id, the text in the box, and the title it showed."""

    id: str
    text: str
    shown: str

    @property
    def typed(self) -> bool:
        """The user typed text without picking an option (JavaScript off, or no click)."""
        return self.text.strip() != self.shown.strip()


# -- display ----------------------------------------------------------------------------------

def _plain(value: Any, field: Field, titles: Titles | None) -> Markup:
    return escape(value)


# Numbers, money, percentages and dates read as in record titles (`runtime.read.titles`).

def _show_number(value: Any, field: Field, titles: Titles | None) -> Markup:
    return escape(number_text(value))


def _show_money(value: Any, field: Field, titles: Titles | None) -> Markup:
    return escape(money_text(value, field, currency_of(inst()), language()))


def _show_percent(value: Any, field: Field, titles: Titles | None) -> Markup:
    return escape(percent_text(value))


def _show_boolean(value: Any, field: Field, titles: Titles | None) -> Markup:
    return Markup('<span class="yes">Yes</span>') if value else Markup('<span class="no">No</span>')


def _show_date(value: Any, field: Field, titles: Titles | None) -> Markup:
    return escape(date_text(value, language(), localize.zone()))


def _badge(value: Any, field: Field) -> Markup:

    label = field.option_label(value, language())
    index = color_index(value, field.option_values)
    return Markup('<span class="badge c{}">{}</span>').format(index, label)


def _show_choice(value: Any, field: Field, titles: Titles | None) -> Markup:
    return _badge(value, field)


def _show_multichoice(value: Any, field: Field, titles: Titles | None) -> Markup:
    items = value if isinstance(value, list | tuple) else [value]
    return Markup(" ").join(_badge(v, field) for v in items)


def _show_email(value: Any, field: Field, titles: Titles | None) -> Markup:
    return Markup('<a href="mailto:{0}">{0}</a>').format(value)


def _show_phone(value: Any, field: Field, titles: Titles | None) -> Markup:
    digits = "".join(c for c in str(value) if c.isdigit() or c == "+")
    return Markup('<a href="tel:{}" class="nowrap">{}</a>').format(digits, value)


def _show_url(value: Any, field: Field, titles: Titles | None) -> Markup:
    text = str(value)
    if not text.lower().startswith(("http://", "https://")):
        return escape(text)
    shown = text.split("://", 1)[1].rstrip("/")
    return Markup('<a href="{}" rel="noopener noreferrer" target="_blank">{}</a>').format(
        text, shown if len(shown) <= 48 else shown[:45] + "…")


def _link_to(entity: str | None, key: Any, titles: Mapping[Any, str]) -> Markup:
    title = titles.get(key) or titles.get(str(key))
    if entity is None:
        return escape(title or f"#{key}")
    if entity == "user" or entity == "team":
        return escape(title or f"#{key}")
    return Markup('<a href="{}">{}</a>').format(
        url_for("web.record", entity=entity, record_id=key), title or f"#{key}")


def _show_link(value: Any, field: Field, titles: Titles | None) -> Markup:
    return _link_to(field.to, value, (titles or {}).get(field.name, {}))


def _show_links(value: Any, field: Field, titles: Titles | None) -> Markup:
    items = value if isinstance(value, list | tuple) else [value]
    known = (titles or {}).get(field.name, {})
    return Markup(", ").join(_link_to(field.to, v, known) for v in items)


def _show_longtext(value: Any, field: Field, titles: Titles | None) -> Markup:
    return Markup('<span class="longtext">{}</span>').format(value)


def _show_richtext(value: Any, field: Field, titles: Titles | None) -> Markup:
    return Markup(sanitize_html(str(value)))


def _show_file(value: Any, field: Field, titles: Titles | None) -> Markup:
    key = str(value)
    if key.isdigit():
        return Markup('<a href="{}">{}</a>').format(
            url_for("web.attachment", attachment_id=int(key)),
            (titles or {}).get(field.name, {}).get(key) or "Download")
    return escape(key)


# -- reading a posted form --------------------------------------------------------------------

def _read_text(form: MultiDict, field: Field) -> Any:
    return form.get(field.name, MISSING)


def _read_boolean(form: MultiDict, field: Field) -> Any:
    if field.name + PRESENT not in form and field.name not in form:
        return MISSING
    return "true" if form.get(field.name) in ("on", "true", "1", "yes") else "false"


def _read_list(form: MultiDict, field: Field) -> Any:
    if field.name + PRESENT not in form and field.name not in form:
        return MISSING
    return [v for v in form.getlist(field.name) if v]


def _read_link(form: MultiDict, field: Field) -> Any:
    if field.name not in form and field.name + "__q" not in form:
        return MISSING
    return LinkInput(form.get(field.name, ""), form.get(field.name + "__q", ""),
                     form.get(field.name + "__shown", ""))


def _read_file(form: MultiDict, field: Field) -> Any:
    return MISSING  # files arrive in request.files; the form view stores them


# -- input values -----------------------------------------------------------------------------

def input_value(value: Any, field: Field) -> Any:
    """A stored or posted value as an input's `value` attribute."""
    if value is None or value is MISSING:
        return ""
    if isinstance(value, LinkInput):
        return value.id
    if isinstance(value, datetime) or (field.type == "datetime" and isinstance(value, str)):
        return localize.local_input(value)  # in the reader's time zone
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def selected_values(value: Any) -> set[str]:
    if value is None or value is MISSING:
        return set()
    if isinstance(value, list | tuple | set):
        return {str(v) for v in value}
    return {str(value)}


@dataclass(frozen=True)
class Widget:
    input: str  # macro of templates/widgets/inputs.html
    show: Callable[[Any, Field, Titles | None], Markup]
    read: Callable[[MultiDict, Field], Any]
    filter: str | None  # choice | boolean | link | range | text | None (no filter control)
    numeric: bool = False
    input_type: str = "text"


WIDGETS: dict[str, Widget] = {
    "text": Widget("text", _plain, _read_text, "text"),
    "longtext": Widget("textarea", _show_longtext, _read_text, "text"),
    "richtext": Widget("textarea", _show_richtext, _read_text, None),
    "integer": Widget("number", _show_number, _read_text, "range", True, "number"),
    "decimal": Widget("number", _show_number, _read_text, "range", True, "number"),
    "money": Widget("number", _show_money, _read_text, "range", True, "number"),
    "percent": Widget("number", _show_percent, _read_text, "range", True, "number"),
    "boolean": Widget("checkbox", _show_boolean, _read_boolean, "boolean"),
    "date": Widget("text", _show_date, _read_text, "range", False, "date"),
    "datetime": Widget("text", _show_date, _read_text, "range", False, "datetime-local"),
    "choice": Widget("select", _show_choice, _read_text, "choice"),
    "multichoice": Widget("checks", _show_multichoice, _read_list, "choice"),
    "email": Widget("text", _show_email, _read_text, "text", False, "email"),
    "phone": Widget("text", _show_phone, _read_text, "text", False, "tel"),
    "url": Widget("text", _show_url, _read_text, "text", False, "url"),
    "link": Widget("link", _show_link, _read_link, "link"),
    "links": Widget("links", _show_links, _read_list, None),
    "autonumber": Widget("text", _plain, _read_text, "text"),
    "file": Widget("file", _show_file, _read_file, None),
    "image": Widget("file", _show_file, _read_file, None),
}

assert set(WIDGETS) == set(REGISTRY), "every field type needs a web widget"


def widget(field: Field) -> Widget:
    return WIDGETS[field.type]


def display(value: Any, field: Field, titles: Titles | None = None) -> Markup:
    """A value for people: escaped, formatted by type; an empty value is an en dash."""
    if value is None or value == "" or value == []:
        return Markup('<span class="no">—</span>')
    return WIDGETS[field.type].show(value, field, titles)


def display_filter(value: Any, field: Field | None, titles: Titles | None = None) -> Markup:
    if field is None:
        return escape("" if value is None else value)
    return display(value, field, titles)


def read_form(form: MultiDict, fields: list[Field]) -> dict[str, Any]:
    """The posted values of `fields`, as raw input (records coerces them); fields the form did
    not carry are left out."""
    values: dict[str, Any] = {}
    for f in fields:
        value = WIDGETS[f.type].read(form, f)
        if value is not MISSING:
            values[f.name] = localize.typed(f.type, value)
    return values
