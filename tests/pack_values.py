"""Plausible input values for any field of any pack, worked out from the model alone.

`FieldValues` gives, for a field, the text a person would type or pick in the web form: the
field's literal default when it has one, else a value of its type inside its `min`/`max`
(expression bounds are evaluated), matching its `pattern`, one of its options, or the id of a
record the caller names for the link's target — and, for a field a rule refuses, the other
values worth trying (the other options, dates past and future, ...): `solve` tries them as a
person would, moving only the fields the refusal names. Text values carry a serial number, so
that unique fields and duplicate rules see a new value each time. Fields whose default is an
expression or a template are left blank: the form works them out on save, as it does for a
person who leaves them empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

try:  # Python 3.11+ keeps the regex parser here; re._parser warns about its private name
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

from builder.expressions import parse_slot, slot_value
from builder.model import Entity, Field
from runtime.core.context import eval_context
from runtime.core.instance import Instance

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
WORD = LETTERS + LETTERS.lower() + DIGITS
NUMBERS = {"integer": (2, 0, 1, 20), "decimal": (10, 0, 1, 1000),
           "money": (100, 0, 1, 1000, 250000), "percent": (10, 0, 1, 50)}
OMIT = object()  # leave the field out of what is sent: its default is worked out on save
BLANKS = ("", [])


class FieldValues:
    """Form values for the fields of `inst`'s model; `links` maps an entity to the ids of the
    records a link to it may be given (the caller may add to those lists)."""

    def __init__(self, inst: Instance, links: Mapping[str, list[int]]):
        self.inst = inst
        self.links = links
        self.today = inst.today()

    def candidates(self, entity: Entity, f: Field, serial: int, position: int) -> list[Any]:
        """Form texts (or lists of texts) for `f`, the likeliest first, OMIT to leave it out;
        empty when there is nothing to give. `position` orders the dates of one entity, so
        that a later-declared date (`departure`) comes after an earlier one (`arrival`)."""
        found = self._typed(entity, f, serial, position)
        default = f.default
        if default is not None and default.kind != "literal":
            found.insert(0, OMIT)  # worked out on save; a value only if that is refused
        elif default is not None and default.value is not None:
            literal = default.value
            found.insert(0, [str(v) for v in literal] if isinstance(literal, list)
                         else _text(literal))
        if found and not f.required:  # left empty, the last thing to try
            found.append([] if f.type in ("multichoice", "links") else "")
        unique = {repr(v): v for v in found if v is not OMIT}
        return ([OMIT] if found[:1] == [OMIT] else []) + list(unique.values())

    def _typed(self, entity: Entity, f: Field, serial: int, position: int) -> list[Any]:
        kind = f.type
        if kind in ("file", "image", "autonumber"):
            return []
        if kind in ("link", "links"):
            targets = self.links.get(f.to or "", [])
            return [str(t) if kind == "link" else [str(t)] for t in targets]
        if kind == "choice":
            return [o.value for o in f.options]
        if kind == "multichoice":
            return [[o.value] for o in f.options]
        if kind == "boolean":
            return ["false", "true"]
        if kind in NUMBERS:
            return [_text(self._bounded(entity, f, n)) for n in (*NUMBERS[kind], -1)]
        if kind in ("date", "datetime"):
            days = [self.today + timedelta(days=7 * (position + 1)),
                    self.today - timedelta(days=365 * 30 - 7 * position), self.today,
                    self.today + timedelta(days=7 * position + serial % 997)]
            bounded = [self._bounded(entity, f, d) for d in days]
            return [d.isoformat() if kind == "date" else f"{d.isoformat()}T10:00"
                    for d in bounded]
        return [_text_of(f, serial)]

    def _bounded(self, entity: Entity, f: Field, value: Any) -> Any:
        if not isinstance(value, date):
            value = Decimal(value)
        low, high = self._bound(entity, f.min, f), self._bound(entity, f.max, f)
        if low is not None and value < low:
            value = low
        if high is not None and value > high:
            value = high
        return value

    def _bound(self, entity: Entity, raw: Any, f: Field) -> Any:
        if raw is None:
            return None
        if isinstance(raw, str) and raw.startswith("="):
            ctx = eval_context(self.inst, None, entity.name, {})
            raw = slot_value(parse_slot(raw), ctx)
        if f.type in ("date", "datetime"):
            if isinstance(raw, datetime):
                return raw.date()
            return raw if isinstance(raw, date) else date.fromisoformat(str(raw)[:10])
        return Decimal(str(raw))


Errors = dict[str, list[str]]


def solve(candidates: dict[str, list[Any]], submit: Callable[[dict[str, Any]], Errors | None],
          *, variant: int = 0, grow: Callable[[str], bool] | None = None,
          tries: int = 100) -> Errors | None:
    """Submit a candidate of every field — the first, or the `variant`-th where a field has
    that many (blanks aside); while the refusal names fields that have other candidates (or
    that `grow` finds one more for), move those on and submit again, as a person corrects a
    form. The last refusal, or None once `submit` accepted. OMIT values are not submitted."""
    index = {name: min(variant, max(len([v for v in found if v not in BLANKS]) - 1, 0))
             for name, found in candidates.items()}
    errors: Errors | None = None
    for _ in range(tries):
        errors = submit({name: found[index[name]] for name, found in candidates.items()
                         if found[index[name]] is not OMIT})
        if not errors:
            return None
        moved = False
        for name in [n for n in errors if n in index]:
            if index[name] + 1 < len(candidates[name]) or (grow is not None and grow(name)):
                index[name] += 1
                moved = True
        if not moved:
            return errors
    return errors


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _text_of(f: Field, serial: int) -> str:
    if f.pattern:
        return from_pattern(f.pattern, serial)
    if f.type == "email":
        return f"{f.name}.{serial}@example.com"
    if f.type == "phone":
        return f"+44 20 7946 {serial:04d}"
    if f.type == "url":
        return f"https://example.com/{f.name}/{serial}"
    text = f"{f.name.replace('_', ' ').capitalize()} {serial}"
    return text[-f.max_length:] if f.max_length else text


def from_pattern(pattern: str, serial: int) -> str:
    """A text `re.fullmatch(pattern, text)` accepts (the shortest form of each repeat, the
    first branch), whose characters from classes spell `serial` from the end, so that two
    serials give two texts when the pattern has room for them."""
    picks: list[str] = []  # the classes, in order; filled in below
    out: list[Any] = []
    _emit(sre_parse.parse(pattern), out, picks)
    rest = serial
    for index in reversed(range(len(out))):
        if isinstance(out[index], int):
            chars = picks[out[index]]
            out[index] = chars[rest % len(chars)]
            rest //= len(chars)
    text = "".join(out)
    assert re.fullmatch(pattern, text), (pattern, text)
    return text


def _emit(items: Any, out: list[Any], picks: list[str]) -> None:
    """Literal characters into `out`; for a class, the index of its characters in `picks`."""
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name in ("ANY", "IN", "CATEGORY"):
            chars = WORD if name == "ANY" else _class(arg) if name == "IN" else _category(arg)
            picks.append(chars)
            out.append(len(picks) - 1)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _high, body = arg
            for _ in range(low):  # the shortest form: an optional part is left out
                _emit(body, out, picks)
        elif name == "SUBPATTERN":
            _emit(arg[-1], out, picks)
        elif name == "BRANCH":
            _emit(arg[1][0], out, picks)
        # AT (anchors) and the like add nothing


def _class(items: Any) -> str:
    chars = ""
    negate = False
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            chars += chr(arg)
        elif name == "RANGE":
            chars += "".join(chr(c) for c in range(arg[0], arg[1] + 1))
        elif name == "CATEGORY":
            chars += _category(arg)
    if negate:
        return "".join(c for c in WORD if c not in chars)
    return "".join(c for c in chars if c.isalnum()) or chars


def _category(arg: Any) -> str:
    name = str(arg)
    if "DIGIT" in name and "NOT" not in name:
        return DIGITS
    if "SPACE" in name and "NOT" not in name:
        return " "
    return WORD
