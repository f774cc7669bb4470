"""Value slots (defaults, `set`/`create` values, demo data) and message templates.

A slot holds a literal; a string that starts with "=" is an expression; a string with
`{field}` or `{link.field}` in it is a template filled from the record. In a template "{{" and
"}}" stand for literal braces, and a brace that does not enclose a field name is kept as is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from .errors import ExpressionError
from .evaluator import evaluate
from .parser import Expression, parse
from .rules import EvalContext, name_value

_PLACEHOLDER = re.compile(
    r"\{\{|\}\}|\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}")


@dataclass(frozen=True)
class ValueSlot:
    kind: Literal["literal", "template", "expression"]
    value: Any  # the slot as written
    expression: Expression | None = None
    template_names: tuple[tuple[str, ...], ...] = ()


def parse_slot(value: Any) -> ValueSlot:
    """Classify a slot; raise ExpressionError (offset inside the whole string) for "=bad"."""
    if isinstance(value, str):
        if value.startswith("="):
            try:
                return ValueSlot("expression", value, parse(value[1:]))
            except ExpressionError as exc:
                raise exc.shifted(1) from None
        names = template_names(value)
        if names or "{{" in value or "}}" in value:
            return ValueSlot("template", value, None, names)
    return ValueSlot("literal", value)


def parse_repeated_slot(value: Any) -> ValueSlot:
    """`parse_slot`, remembering text slots: demo files repeat the same few values
    ("=today() - days(3)", "open") thousands of times. Plain text (no "=" first, no brace) is
    a literal without looking further, and is not remembered: names and e-mail addresses
    would push the few expressions out of the cache."""
    if is_plain(value):
        return ValueSlot("literal", value)
    return _parse_text_slot(value)


def is_plain(value: Any) -> bool:
    """Whether `value` is a literal at a glance: not text, or text with no "=" first and no
    brace (a slot that is neither may still turn out to be a literal)."""
    return not isinstance(value, str) or (
        not value.startswith("=") and "{" not in value and "}" not in value)


# the shipped packs' demo files hold some 11,600 different `=expressions` and templates, which
# the linker's checks and then the demo loader read in turn: a cache smaller than that misses
# on nearly every one (about 1 KB each)
@functools.lru_cache(maxsize=16384)
def _parse_text_slot(value: str) -> ValueSlot:
    return parse_slot(value)


def slot_value(slot: ValueSlot, ctx: EvalContext) -> Any:
    """The value a slot gives for one record."""
    if slot.kind == "expression":
        assert slot.expression is not None
        return evaluate(slot.expression, ctx)
    if slot.kind == "template":
        return render_template(slot.value, ctx)
    return slot.value


def template_names(template: str) -> tuple[tuple[str, ...], ...]:
    """The field paths a template names, in order of first appearance."""
    seen: list[tuple[str, ...]] = []
    for match in _PLACEHOLDER.finditer(template):
        if match.group(1):
            path = tuple(match.group(1).split("."))
            if path not in seen:
                seen.append(path)
    return tuple(seen)


def format_value(value: Any) -> str:
    """How a value reads inside a template; null reads as the empty string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def render_template(template: str, ctx: EvalContext, *,
                    formatter: Callable[[tuple[str, ...], Any], str] | None = None) -> str:
    """Fill `{field}` placeholders from the record; `formatter(path, value)` may override."""
    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text in ("{{", "}}"):
            return text[0]
        path = tuple(match.group(1).split("."))
        if path[0] in ("old", "user") and len(path) == 1:
            return text
        value = name_value(ctx, path)
        return formatter(path, value) if formatter else format_value(value)

    return _PLACEHOLDER.sub(replace, template)
