"""A list's active filters in words, each with the address that removes it: the chips above the
results of the table, the board and the calendar. A list opened filtered — a dashboard's
"View all" with `status__in=`, `owner__isnull=` or `id__in=`, a bookmark, a saved view — says
so ("Status: New or Qualified", "Owner: not set", "24 chosen leads") whether or not the view's
filter form has a box for that filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from flask import url_for
from flask_babel import gettext, lazy_gettext, ngettext

from builder.model import Entity, Field
from runtime.http.web.layout import (
    actor,
    entity_label,
    field_label,
    language,
    query_url,
)
from runtime.http.web.listdata import PICKER_KEYS, title_of
from runtime.http.web.localize import zone
from runtime.http.web.widgets import display
from runtime.read import listrequest
from runtime.read.export import choice_labels
from runtime.read.titles import date_text

# how each operator reads with its value ("Amount: from 100,000"), in the reader's language
OPERATOR_WORDS = {"ne": lazy_gettext("not %(value)s"),
                  "gt": lazy_gettext("more than %(value)s"), "gte": lazy_gettext("from %(value)s"),
                  "lt": lazy_gettext("less than %(value)s"), "lte": lazy_gettext("up to %(value)s"),
                  "contains": lazy_gettext("contains %(value)s")}
SHOWN_VALUES = 3  # "New, Qualified, Won and 2 more"


@dataclass(frozen=True)
class Chip:
    text: str
    remove_url: str


@dataclass(frozen=True)
class ActiveFilters:
    chips: list[Chip]
    clear_url: str  # the list without any filter or search (its view, columns, period kept)


def chips(entity: Entity, wanted: listrequest.ListRequest, args: dict[str, Any]
          ) -> ActiveFilters:
    """A chip for each filter of `wanted` and for its quick search; `args`: the list's
    address as its links carry it."""
    base = url_for("web.list", entity=entity.name)
    current = {k: v for k, v in args.items() if k not in ("cursor", "saved")}
    found = [Chip(filter_words(entity, flt), query_url(current, base, **removed(flt.key)))
             for flt in wanted.filters]
    if wanted.q:
        found.append(Chip(gettext("Search: “%(words)s”", words=wanted.q),
                          query_url(current, base, q=None)))
    kept = {k: v for k, v in current.items()
            if k in ("view", "mode", "month", "day", "columns", "sort")}
    return ActiveFilters(found, query_url(kept, base))


def removed(key: str) -> dict[str, None]:
    """The address changes that remove the filter `key` (and its link picker's text)."""
    return {key: None, **{key + suffix: None for suffix in PICKER_KEYS}}


def filter_words(entity: Entity, flt: listrequest.Filter) -> str:
    """"Status: New or Qualified", "Owner: me", "Amount: from 100,000", "3 chosen leads"."""
    f = entity.fields[flt.field]
    values = listrequest.filter_values(flt.key, f, flt.op, flt.value, actor().user_id,
                                       days=flt.zone or zone())
    if flt.field == "id" and flt.op == "in":
        return ngettext("%(num)d chosen %(things)s", "%(num)d chosen %(things)s", len(values),
                        things=entity_label(entity, plural=len(values) != 1).lower())
    label = field_label(entity, flt.field)
    if flt.op == "isnull":
        return gettext("%(field)s: %(value)s", field=label,
                       value=gettext("not set") if values[0] else gettext("set"))
    if flt.op == "in":
        words = [value_words(entity, f, v, raw) for v, raw in
                 zip(values, listrequest.split_values(flt.value), strict=False)]
        return gettext("%(field)s: %(value)s", field=label, value=either(words))
    # a date given for a datetime field also gives its day (`listrequest.Day`): shown as a date
    worded = value_words(entity, f, values[-1], flt.value)
    if flt.op in OPERATOR_WORDS:
        worded = str(OPERATOR_WORDS[flt.op]) % {"value": worded}
    return gettext("%(field)s: %(value)s", field=label, value=worded)


def value_words(entity: Entity, f: Field, value: Any, raw: Any) -> str:
    """One filter value as the list shows it: a choice's label, a linked record's title
    ("me" for `me`), a number or date in the user's format."""
    if f.type in ("choice", "multichoice"):
        return choice_labels(entity, language()).get(f.name, {}).get(value, str(value))
    if f.type in ("link", "links"):
        if str(raw).strip() == "me":
            return gettext("me")
        return (title_of(f.to, value) if f.to else None) or f"#{value}"
    if f.type in ("text", "longtext", "email", "url", "autonumber", "phone"):
        return f"“{raw}”"
    if isinstance(value, listrequest.Day):  # a date given for a datetime field: the local day
        return date_text(value.start.replace(tzinfo=UTC).astimezone(zone()).date(), language())
    return display(value, f, {}).striptags()


def either(words: list[str]) -> str:
    """"New", "New or Won", "New, Won or Lost", "New, Won, Lost or 2 more"."""
    if len(words) > SHOWN_VALUES + 1:
        return gettext("%(values)s or %(num)d more", values=gettext(", ").join(
            words[:SHOWN_VALUES]), num=len(words) - SHOWN_VALUES)
    if len(words) == 1:
        return words[0]
    return gettext("%(values)s or %(last)s", values=gettext(", ").join(words[:-1]),
                   last=words[-1])
