"""Record titles: the one renderer behind every page, list, picker, message and API answer.

A title is the entity's `title` template, else its `title_field`, else "Label #id". In a
template `{field}` shows the value as people read it (a choice by its label, money with its
currency, a date as "Mar 2, 2026"), `{link}` the linked record's own title, and `{link.field}`
— or deeper, `{link.link.field}` — a field of the linked record. Separators left dangling by
empty values are dropped ("Flat — " reads "Flat").

Linked records are read for a whole page at once: one query per linked entity and level of
links, however many rows. Read for an actor, every linked record goes through their row filter
(`permissions.read_filter`): one they may not read shows as "#id" and its fields as empty, and
fields hidden from them show as empty.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from copy import copy
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import sqlalchemy as sa
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton
from babel.numbers import NumberPattern, format_decimal, get_currency_symbol

from builder.expressions import EvalContext, render_template, template_names
from builder.expressions.slots import format_value
from builder.model import AppModel, Entity, Field
from runtime.core.catalogs import say_in
from runtime.core.context import scope_of
from runtime.core.errors import N_
from runtime.read.permissions import hidden_fields, native, read_filter

YES, NO = N_("Yes"), N_("No")  # a boolean as people read it, in their language

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

NESTING = 2  # levels of `{link}` titles inside a title; deeper links read "#id"
CHUNK = 500  # ids per `IN (...)` of one query
DEFAULT_CURRENCY = "EUR"
# languages whose everyday date is the locale's "medium" one ("Mar 2, 2026", "2026年3月2日");
# the others write it in figures, day and month as the locale orders them ("2.3.2026")
WORDY_DATES = ("en", "zh", "ja", "ko")

Row = Mapping[str, Any]
Links = Mapping[str, Mapping[Any, str]]  # link field -> {id: title}


# -- values as people read them ---------------------------------------------------------------

def locale_of(language: str | None) -> Locale:
    """The Babel locale of a language like "zh", "es", "en-GB"; English when unknown."""
    return _locale((language or "en").replace("-", "_"))


@lru_cache(maxsize=64)
def _locale(code: str) -> Locale:
    try:
        return Locale.parse(code)
    except (ValueError, UnknownLocaleError):
        return Locale.parse("en")


def number_text(value: Any, language: str | None = None) -> str:
    """1234567.50 -> "1,234,567.5" (en), "1.234.567,5" (es); an integer keeps no decimals."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        return str(value)
    return format_decimal(value, locale=locale_of(language), decimal_quantization=False)


def currency_of(inst: Instance) -> str:
    """The instance's currency (money fields without `currency:`): the `CURRENCY` setting,
    then $CRMFORGE_CURRENCY, then EUR (docs/definition-files.md)."""
    return str(inst.settings.get("CURRENCY") or os.environ.get("CRMFORGE_CURRENCY")
               or DEFAULT_CURRENCY).upper()


def zone_of(inst: Instance, actor: Actor | None = None) -> tzinfo:
    """The time zone dates and times are shown in (and typed in): the actor's own
    (`time_zone` of their user), else the instance's — the `TIME_ZONE` setting, then
    $CRMFORGE_TIME_ZONE — else UTC."""
    own = zone_named(actor.time_zone) if actor is not None else None
    if own is not None:
        return own
    name = inst.settings.get("TIME_ZONE") or os.environ.get("CRMFORGE_TIME_ZONE")
    return zone_named(name) or UTC  # a misspelt zone shows UTC rather than failing every page


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every IANA time zone name the system knows ("Asia/Shanghai", "Europe/Madrid"…), sorted."""
    return tuple(sorted(_known_zones()))


def zone_named(name: Any) -> tzinfo | None:
    """The IANA time zone called `name`; None when empty or not a zone we know."""
    if not isinstance(name, str) or name.strip() not in _known_zones():
        return None
    try:
        return ZoneInfo(name.strip())
    except (ValueError, ZoneInfoNotFoundError):
        return None


def money_text(value: Any, f: Field, currency: str | None = None,
               language: str | None = None) -> str:
    """415000 -> "€415,000.00" (en) or "415.000,00 €" (es, de): the field's scale, the
    field's currency else `currency` (the instance's); a code without a symbol follows the
    amount ("7.00 SEK")."""
    scale = f.scale if f.scale is not None else 2
    code = (f.currency or currency or "").upper()
    if not isinstance(value, Decimal | int | float) or isinstance(value, bool):
        return f"{value} {code}".strip()
    locale = locale_of(language)
    amount = Decimal(value).quantize(Decimal(1).scaleb(-scale))
    if not code or get_currency_symbol(code, locale) == code:
        number = _fixed(locale.decimal_formats[None], scale).apply(amount, locale)
        return f"{number} {code}".strip()
    pattern = _fixed(locale.currency_formats["standard"], scale)
    text = pattern.apply(amount, locale, currency=code, currency_digits=False)
    return text.replace("\xa0", " ")


def _fixed(pattern: NumberPattern, scale: int) -> NumberPattern:
    """`pattern` showing exactly `scale` decimals (a money field's scale, not the currency's)."""
    fixed = copy(pattern)
    fixed.frac_prec = (scale, scale)
    return fixed


def percent_text(value: Any, language: str | None = None) -> str:
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        number = Decimal(value).quantize(Decimal("0.1")).normalize()
        return format_decimal(number, locale=locale_of(language),
                              decimal_quantization=False) + "%"
    return str(value)


def date_text(value: Any, language: str | None = None, zone: tzinfo | None = None) -> str:
    """A date as the reader's language writes it ("Mar 2, 2026", "2026年3月2日", "2/3/2026");
    a datetime (stored in UTC) also moved to `zone` with its time ("14:30")."""
    if isinstance(value, datetime):
        if zone is not None:
            value = value.replace(tzinfo=value.tzinfo or UTC).astimezone(zone)
        return f"{_date_only(value.date(), language)} {value:%H:%M}"
    if isinstance(value, date):
        return _date_only(value, language)
    return str(value)


def _date_only(value: date, language: str | None) -> str:
    locale = locale_of(language)
    if locale.language in WORDY_DATES:
        return format_date(value, "medium", locale=locale)
    return format_skeleton("yMd", value, locale=locale)


def readable(f: Field | None, value: Any, language: str | None = None, *,
             currency: str | None = None, zone: tzinfo | None = None) -> str:
    """A value of field `f` as plain text people read; empty for no value. Links are the
    renderer's business (they need the linked records). `currency` is the instance's (for
    money fields without their own), `zone` the time zone datetimes are shown in."""
    if value is None or value == "" or value == []:
        return ""
    kind = f.type if f is not None else None
    if f is not None and kind == "choice":
        return f.option_label(value, language)
    if f is not None and kind == "multichoice":
        items = value if isinstance(value, list | tuple) else [value]
        return ", ".join(f.option_label(v, language) for v in items)
    if kind == "boolean":
        return say_in(language)(YES if value else NO)
    if f is not None and kind == "money":
        return money_text(value, f, currency, language)
    if kind in ("integer", "decimal") and f is not None and f.name not in ("id", "version"):
        return number_text(value, language)  # an id reads "#1234", not "#1,234"
    if kind == "percent":
        return percent_text(value, language)
    if kind in ("date", "datetime"):
        return date_text(value, language, zone)
    return format_value(value)


# -- what a title needs read ------------------------------------------------------------------

@dataclass
class _Step:
    """The records one link field points to, and the links to follow from them in turn."""

    target: str
    then: dict[str, _Step] = field(default_factory=dict)


Plan = dict[str, _Step]  # link field -> step


def _paths(ent: Entity, template: str | None) -> list[tuple[str, ...]]:
    """The field paths a title (or another template over `ent`) names. In a template other
    than the title, `{title}` (when there is no field of that name) is the record's title."""
    if template is None:
        if ent.title:
            return list(template_names(ent.title))
        return [(ent.title_field,)] if ent.title_field in ent.fields else []
    found: list[tuple[str, ...]] = []
    for path in template_names(template):
        found += _paths(ent, None) if _is_own_title(ent, path) else [path]
    return found


def _is_own_title(ent: Entity, path: tuple[str, ...]) -> bool:
    return path == ("title",) and "title" not in ent.fields


def _add(model: AppModel, entity: str, path: tuple[str, ...], budget: int, plan: Plan) -> None:
    """Add to `plan` the links to follow for `path`: through every link of a dotted path,
    and into the linked record's own title for a link at its end (`budget` levels deep)."""
    ent = model.entities.get(entity)
    f = ent.fields.get(path[0]) if ent is not None else None
    if f is None or f.type not in ("link", "links") or f.to not in model.entities:
        return
    step = plan.setdefault(f.name, _Step(f.to))
    if len(path) > 1:
        _add(model, f.to, path[1:], budget, step.then)
    elif budget > 0:
        for inner in _paths(model.entity(f.to), None):
            _add(model, f.to, inner, budget - 1, step.then)


def _link_ids(value: Any) -> list[int]:
    items = value if isinstance(value, list | tuple) else [value]
    found = []
    for item in items:
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            found.append(item)
        elif isinstance(item, str) and item.isdigit():
            found.append(int(item))
    return found


def _field_at(model: AppModel, entity: str, path: tuple[str, ...]) -> Field | None:
    """The field a dotted path ends at (`property.code` of an offer: property's `code`)."""
    for index, name in enumerate(path):
        ent = model.entities.get(entity)
        f = ent.fields.get(name) if ent is not None else None
        if f is None or index == len(path) - 1:
            return f
        if f.type != "link" or not f.to:
            return None
        entity = f.to
    return None


_LEADING = re.compile(r"^\s*(?:[,;]+\s*|[—–\-:|/·]+\s+)+")
_ONLY_SEPARATORS = re.compile(r"[\s—–\-,:;|/·]*")
_TRAILING = re.compile(r"(?:\s*[,;:]+|\s+[—–\-|/·]+)+\s*$")
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]")
_SPACES = re.compile(r"\s+")


def _trim(text: str) -> str:
    """A rendered title on one line, without the separators and brackets left dangling by
    empty fields ("Flat — " -> "Flat", "P-1: " -> "P-1", "Anna ()" -> "Anna"); a leading
    minus sign stays ("-5.00")."""
    text = _SPACES.sub(" ", _EMPTY_BRACKETS.sub("", text)).strip()
    text = _TRAILING.sub("", _LEADING.sub("", text)).strip()
    return "" if _ONLY_SEPARATORS.fullmatch(text) else text


# -- the renderer -----------------------------------------------------------------------------

class TitleReader:
    """Titles for one page or one operation. The records titles link to are read once — in
    one query per entity and level of links — through the actor's row filter when there is an
    actor, and kept for the rest of the operation. Without `conn` nothing is looked up:
    links read "#id" and dotted fields are empty."""

    def __init__(self, inst: Instance, conn: Connection | None, actor: Actor | None = None):
        self.inst = inst
        self.conn = conn
        self.actor = actor
        self.language = actor.language if actor is not None else None
        self._rows: dict[str, dict[int, dict[str, Any] | None]] = {}
        self._plans: dict[tuple[str, str | None, int], Plan] = {}

    # -- reading linked records --

    def row(self, entity: str, key: Any) -> dict[str, Any] | None:
        """The `entity` record with id `key` as the reader may see it, or None (missing,
        not readable, or no connection)."""
        ids = _link_ids(key)
        if len(ids) != 1 or isinstance(key, list | tuple):
            return None
        self.load(entity, ids)
        return self._rows.get(entity, {}).get(ids[0])

    def load(self, entity: str, ids: Iterable[int]) -> None:
        """Read the `entity` records with these ids not read yet: one query per 500 ids."""
        known = self._rows.setdefault(entity, {})
        missing = sorted({i for i in ids if i not in known})
        if not missing:
            return
        if self.conn is None or entity not in self.inst.model.entities:
            known.update(dict.fromkeys(missing))
            return
        table = self.inst.schema.table(entity)
        row_filter = read_filter(self.inst, self.actor, entity, table) \
            if self.actor is not None else None
        hidden = hidden_fields(self.inst, self.actor, entity) \
            if self.actor is not None else frozenset()
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start:start + CHUNK]
            stmt = sa.select(table).where(table.c.id.in_(chunk))
            if row_filter is not None:
                stmt = stmt.where(row_filter)
            found = {r["id"]: {k: v for k, v in r.items() if k not in hidden}
                     for r in self.conn.execute(stmt).mappings()}
            known.update({i: found.get(i) for i in chunk})

    def plan(self, entity: str, template: str | None, budget: int) -> Plan:
        key = (entity, template, budget)
        if key not in self._plans:
            plan: Plan = {}
            for path in _paths(self.inst.model.entity(entity), template):
                _add(self.inst.model, entity, path, budget, plan)
            self._plans[key] = plan
        return self._plans[key]

    def prefetch(self, plan: Plan, rows: Sequence[Row]) -> None:
        """Read every record `plan` reaches from `rows`, level by level: one query per
        linked entity and level."""
        level = [(plan, list(rows))]
        while level:
            wanted: dict[str, set[int]] = {}
            for steps, found in level:
                for name, step in steps.items():
                    ids = wanted.setdefault(step.target, set())
                    for row in found:
                        ids.update(_link_ids(row.get(name)))
            for target, ids in wanted.items():
                self.load(target, ids)
            following = []
            for steps, found in level:
                for name, step in steps.items():
                    if step.then:
                        linked = [self.row(step.target, i) for r in found
                                  for i in _link_ids(r.get(name))]
                        following.append((step.then, [r for r in linked if r is not None]))
            level = following

    # -- rendering --

    def render(self, entity: str, row: Row, template: str | None = None,
               budget: int = NESTING, links: Links | None = None) -> str:
        """The title of `row` (or `template` over it, falling back to the title); the
        records it needs should be read already (`prefetch`), else they are read one by
        one."""
        model = self.inst.model
        ent = model.entity(entity)
        record = native(ent, row)
        show = self._shower(entity, row, template, budget, links)
        text = ""
        if template is not None or ent.title:
            ctx = EvalContext(record=record, entity=entity, fetch=self.row,
                              scope=scope_of(model))
            text = _trim(render_template(template or ent.title or "", ctx, formatter=show))
        elif ent.title_field in ent.fields:
            text = _trim(show((ent.title_field,), record.get(ent.title_field)))
        if not text and template is not None:
            return self.render(entity, row, None, budget, links)
        if not text and entity == "user" and not ent.title:
            text = str(row.get("username") or "")  # a user is their name, else their username
        return text or f"{ent.label.get(self.language)} #{row.get('id')}"

    def _shower(self, entity: str, row: Row, template: str | None, budget: int,
                links: Links | None) -> Callable[[tuple[str, ...], Any], str]:
        """How each `{path}` of a template over `row` reads: a link as its title, any other
        value as on a page."""
        model = self.inst.model
        ent = model.entity(entity)

        def show(path: tuple[str, ...], value: Any) -> str:
            if template is not None and _is_own_title(ent, path):
                return self.render(entity, row, None, budget, links)
            f = _field_at(model, entity, path)
            if f is not None and f.type in ("link", "links") and f.to:
                known = (links or {}).get(f.name, {}) if len(path) == 1 else {}
                return ", ".join(known.get(i) or self.link_title(f.to, i, budget)
                                 for i in _link_ids(value))
            return readable(f, value, self.language, currency=currency_of(self.inst),
                            zone=zone_of(self.inst, self.actor))
        return show

    def fill(self, entity: str, row: Row, template: str,
             quote: Callable[[str], str] = str) -> str:
        """`template` over `row` as the text of a message: values read as in a title, each
        passed through `quote` (HTML escaping), lines and spaces kept, no fallback."""
        self.prefetch(self.plan(entity, template, NESTING), [row])
        show = self._shower(entity, row, template, NESTING, None)
        ctx = EvalContext(record=native(self.inst.model.entity(entity), row), entity=entity,
                          fetch=self.row, scope=scope_of(self.inst.model))
        return render_template(template, ctx, formatter=lambda p, v: quote(show(p, v)))

    def link_title(self, entity: str, key: int, budget: int) -> str:
        """How a link to `entity` #key reads inside a title: the linked record's title, or
        "#key" when it is missing, not readable, or nested too deep."""
        row = self.row(entity, key) if budget > 0 else None
        return f"#{key}" if row is None else self.render(entity, row, None, budget - 1)

    # -- pages --

    def shown(self, entity: str, rows: Sequence[Row]) -> list[dict[str, str]]:
        """Each row's values as a page shows them, {field: text} (a link as its title), with
        its `title`; only the fields the rows hold (those the reader may see)."""
        fields = self.inst.model.entity(entity).fields
        links = self.link_titles(entity, rows)
        names = self.titles(entity, rows)
        return [{name: self._shower(entity, row, None, NESTING, links)((name,), value)
                 for name, value in native(self.inst.model.entity(entity), row).items()
                 if name in fields} | {"title": names[row.get("id")]} for row in rows]

    def titles(self, entity: str, rows: Sequence[Row], template: str | None = None,
               budget: int = NESTING) -> dict[Any, str]:
        """{id: title} of `rows` (or of `template` over them, see `render`)."""
        self.prefetch(self.plan(entity, template, budget), rows)
        return {row.get("id"): self.render(entity, row, template, budget) for row in rows}

    def titles_of(self, entity: str, ids: Iterable[int],
                  budget: int = NESTING) -> dict[int, str]:
        """{id: title} of the `entity` records with these ids that the reader may read."""
        wanted = sorted(set(ids))
        self.load(entity, wanted)
        found = [r for r in (self._rows.get(entity, {}).get(i) for i in wanted) if r]
        return self.titles(entity, found, None, budget)

    def link_titles(self, entity: str, rows: Sequence[Row]) -> dict[str, dict[int, str]]:
        """{link field: {id: title}} for every `link`/`links` field of `rows` (owner and the
        other user links included); records the reader may not read are left out."""
        model = self.inst.model
        ent = model.entity(entity)
        plan: Plan = {}
        for f in ent.fields.values():
            if f.type in ("link", "links") and f.to in model.entities:
                _add(model, entity, (f.name,), NESTING, plan)
        self.prefetch(plan, rows)
        result: dict[str, dict[int, str]] = {}
        for name, step in plan.items():
            ids = {i for row in rows for i in _link_ids(row.get(name))}
            result[name] = {i: self.render(step.target, found, None, NESTING - 1)
                            for i in sorted(ids)
                            if (found := self.row(step.target, i)) is not None}
        return result


# -- the functions the other layers call ------------------------------------------------------

def title(inst: Instance, entity: str, record: Row, *, conn: Connection | None = None,
          links: Links | None = None, actor: Actor | None = None) -> str:
    """The title of one record in hand. Linked records are read through `conn` (through
    `actor`'s row filter when given); without `conn` a link reads as its title in `links`
    (as `link_titles` gives them), else "#id", and dotted fields are empty."""
    reader = TitleReader(inst, conn, actor)
    reader.prefetch(reader.plan(entity, None, NESTING), [record])
    return reader.render(entity, record, None, NESTING, links)


def title_of(inst: Instance, conn: Connection, entity: str, record_id: Any, *,
             actor: Actor | None = None) -> str | None:
    """The title of the `entity` record with id `record_id`; None when it does not exist or
    `actor` may not read it."""
    ids = _link_ids(record_id)
    if len(ids) != 1 or entity not in inst.model.entities:
        return None
    return TitleReader(inst, conn, actor).titles_of(entity, ids).get(ids[0])


def titles(inst: Instance, conn: Connection, entity: str, rows: Sequence[Row], *,
           actor: Actor | None = None, template: str | None = None) -> dict[Any, str]:
    """{id: title} of a page of records in hand (or `template` over each of them — a
    calendar's event title — falling back to the title when it reads empty)."""
    return TitleReader(inst, conn, actor).titles(entity, rows, template)


def titles_of(inst: Instance, conn: Connection, entity: str, ids: Iterable[int],
              actor: Actor | None = None, depth: int = NESTING) -> dict[int, str]:
    """{id: title} of the `entity` records with these ids (those `actor` may read, when
    given); `{link}` titles inside them nest `depth` levels deep."""
    return TitleReader(inst, conn, actor).titles_of(entity, ids, depth)


def link_titles(inst: Instance, conn: Connection, entity: str, rows: Sequence[Row], *,
                actor: Actor | None = None) -> dict[str, dict[int, str]]:
    """{link field: {id: title}} for every `link`/`links` field of `rows`, with one query per
    linked entity and level for the whole page. With `actor`, records they may not read get
    no title (pages show them as "#id")."""
    return TitleReader(inst, conn, actor).link_titles(entity, rows)


def page_titles(inst: Instance, conn: Connection, entity: str, rows: Sequence[Row], *,
                actor: Actor | None = None, template: str | None = None
                ) -> tuple[dict[str, dict[int, str]], dict[Any, str]]:
    """`link_titles` and `titles` of one page together, every linked record read once."""
    reader = TitleReader(inst, conn, actor)
    return reader.link_titles(entity, rows), reader.titles(entity, rows, template)
