"""An expression in words, for people: `total > 0 and valid_until >= today()` reads
"Total greater than 0; Valid until on or after today".

Used where a rule is refused and the definition gives no `message:` (transition guards,
validations — docs/workflows.md). Field names become their labels, choice codes their option
labels, dotted paths "Tenant's AML checked"; comparisons with a date read "before"/"on or
after", others "less than"/"at least". What has no natural wording keeps a compact form
(`Annual rent ÷ 52 × 5`), never Python syntax.

The words between the labels are messages with `%(name)s` slots, marked with `N_` for the
catalogs (runtime/translations): a `Voice` with gettext as `say` and the reader's number
format says them in the reader's language ("状态为草稿"); the default voice says them in
English.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .expressions import BoolOp, Call, Compare, Expression, IfElse, ListLit, Literal, Name
from .expressions.nodes import Binary, Node, Unary
from .model import Field, Text, humanize

FieldsOf = Callable[[str], Mapping[str, Field] | None]  # entity name -> its fields, if known


def N_(message: str) -> str:  # noqa: N802 - the name gettext tools look for
    """Mark a message for the catalogs; it is translated where it is said (`Voice.say`)."""
    return message


def _english(message: str, **values: str) -> str:
    return message % values if values else message


def _english_number(value: Decimal | int | float) -> str:
    text = f"{value:,}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class Voice:
    """How the words are said: `say(message, **values)` translates a message and fills in its
    slots (gettext's signature); `number(value)` writes a number the reader's way."""

    say: Callable[..., str] = _english
    number: Callable[[Decimal | int | float], str] = _english_number


ENGLISH = Voice()

IS, IS_NOT = N_("%(subject)s is %(value)s"), N_("%(subject)s is not %(value)s")
_NUMBER_OPS = {">": N_("%(subject)s greater than %(value)s"),
               ">=": N_("%(subject)s at least %(value)s"),
               "<": N_("%(subject)s less than %(value)s"),
               "<=": N_("%(subject)s at most %(value)s"), "==": IS, "!=": IS_NOT}
_DATE_OPS = {">": N_("%(subject)s after %(value)s"), ">=": N_("%(subject)s on or after %(value)s"),
             "<": N_("%(subject)s before %(value)s"),
             "<=": N_("%(subject)s on or before %(value)s"), "==": IS, "!=": IS_NOT}
IS_YES, IS_NO = N_("%(subject)s is yes"), N_("%(subject)s is no")
_CALLS = {"today": N_("today"), "now": N_("now")}
_AMOUNTS = {"days": N_("%(value)s days"), "hours": N_("%(value)s hours")}
_ARITHMETIC = {"+": "+", "-": "−", "*": "×", "/": "÷", "%": "mod"}
_DATE_TYPES = ("date", "datetime")
_DATE_CALLS = ("today", "now")


class _Words:
    def __init__(self, fields_of: FieldsOf, entity: str, language: str | None,
                 voice: Voice = ENGLISH):
        self.fields_of = fields_of
        self.entity = entity
        self.language = language
        self.say = voice.say
        self.number = voice.number

    # -- names ---------------------------------------------------------------------------------

    def field(self, path: tuple[str, ...]) -> Field | None:
        """The field a path ends at, following links; None when unknown."""
        entity: str | None = self.entity
        found: Field | None = None
        for segment in path:
            fields = self.fields_of(entity) if entity else None
            found = (fields or {}).get(segment)
            if found is None:
                return None
            entity = found.to
        return found

    def name(self, path: tuple[str, ...]) -> str:
        if path[0] == "user":
            return self.say(N_("your %(field)s"), field=" ".join(
                humanize(p).lower() for p in path[1:])) if len(path) > 1 else self.say(N_("you"))
        if path[0] == "old":
            return self.say(N_("the previous %(name)s"), name=_lower_first(
                self.name(path[1:]))) if len(path) > 1 else self.say(N_("the previous value"))
        parts = [self.label(path[: i + 1]) for i in range(len(path))]
        head = parts[0]
        for part in parts[1:]:
            head = self.say(N_("%(owner)s's %(part)s"), owner=head, part=_lower_first(part))
        return head

    def label(self, path: tuple[str, ...]) -> str:
        found = self.field(path)
        return self.text(found.label) if found is not None else humanize(path[-1])

    def text(self, text: Text) -> str:
        """A label in the reader's language; one in English only (often made from a name: a
        workflow's `Status`) is looked up in the catalogs, as the pages do (`layout.tr`)."""
        if [code for code, _ in text.values] == ["en"]:
            return self.say(text.values[0][1])
        return text.get(self.language)

    # -- values --------------------------------------------------------------------------------

    def value(self, node: Node, beside: Field | None = None) -> str:
        """`node` as words; a literal next to a choice field reads as that option's label."""
        if isinstance(node, Literal):
            return self.literal(node.value, beside)
        if isinstance(node, Name):
            return self.name(node.path)
        if isinstance(node, ListLit):
            return self.either([self.value(item, beside) for item in node.items])
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Binary):
            return (f"{self.value(node.left)} {_ARITHMETIC.get(node.op, node.op)} "
                    f"{self.value(node.right)}")
        if isinstance(node, Unary):
            return f"−{self.value(node.operand)}" if node.op == "-" \
                else self.say(N_("not (%(condition)s)"), condition=self.condition(node.operand))
        if isinstance(node, IfElse):
            return self.say(N_("%(value)s when %(condition)s, otherwise %(other)s"),
                            value=self.value(node.body), condition=self.condition(node.test),
                            other=self.value(node.orelse))
        return self.condition(node)

    def literal(self, value: Any, beside: Field | None) -> str:
        if value is None:
            return self.say(N_("empty"))
        if isinstance(value, bool):
            return self.say(N_("yes")) if value else self.say(N_("no"))
        if beside is not None and beside.options and isinstance(value, str):
            option = next((o for o in beside.options if o.value == value), None)
            return self.text(option.label) if option else value
        if isinstance(value, Decimal | int | float):
            return self.number(value)
        return f"“{value}”"

    def call(self, node: Call) -> str:
        args = node.args
        if node.func in _CALLS:
            return self.say(_CALLS[node.func])
        if node.func == "coalesce" and args:
            return self.value(args[0])
        if node.func in ("lower", "upper", "trim") and args:
            return self.value(args[0])
        if node.func in _AMOUNTS and args:
            return self.say(_AMOUNTS[node.func], value=self.value(args[0]))
        if node.func == "days_since" and args:
            return self.say(N_("days since %(value)s"), value=self.value(args[0]))
        if node.func == "len" and args:
            return self.say(N_("the length of %(value)s"), value=self.value(args[0]))
        return f"{node.func}({', '.join(self.value(a) for a in args)})"

    def either(self, items: list[str]) -> str:
        """"A, B or C" in the reader's language."""
        if len(items) <= 1:
            return "".join(items)
        head = items[0]
        for item in items[1:-1]:
            head = self.say(N_("%(left)s, %(right)s"), left=head, right=item)
        return self.say(N_("%(left)s or %(right)s"), left=head, right=items[-1])

    def joined(self, parts: list[str], message: str) -> str:
        head = parts[0]
        for part in parts[1:]:
            head = self.say(message, left=head, right=part)
        return head

    # -- conditions ----------------------------------------------------------------------------

    def condition(self, node: Node) -> str:
        if isinstance(node, BoolOp):
            parts = [self.condition(v) for v in node.values]
            if node.op == "or":
                return self.say(N_("either %(conditions)s"),
                                conditions=self.joined(parts, N_("%(left)s or %(right)s")))
            return self.joined(parts, N_("%(left)s and %(right)s"))
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, Unary) and node.op == "not":
            return self.say(N_("not (%(condition)s)"), condition=self.condition(node.operand))
        if isinstance(node, Call) and node.func == "has_role" and node.args:
            return self.say(N_("you have the role %(role)s"), role=self.value(node.args[0]))
        if isinstance(node, Call) and node.func == "contains" and len(node.args) == 2:
            return self.say(N_("%(text)s contains %(part)s"), text=self.value(node.args[0]),
                            part=self.value(node.args[1]))
        if isinstance(node, Name):
            return self.say(IS_YES, subject=self.name(node.path))
        return self.value(node)

    def compare(self, node: Compare) -> str:
        left_field = self.field(node.left.path) if isinstance(node.left, Name) else None
        right = node.right
        subject = self.value(node.left)
        if isinstance(right, Literal) and right.value is None and node.op in ("==", "!="):
            return self.say(N_("%(subject)s is empty") if node.op == "==" else
                            N_("%(subject)s is filled in"), subject=subject)
        if isinstance(right, Literal) and isinstance(right.value, bool) and node.op in (
                "==", "!="):
            return self.say(IS_YES if right.value == (node.op == "==") else IS_NO,
                            subject=subject)
        shown = self.value(right, left_field)
        if node.op in ("in", "not in"):
            return self.say(IS if node.op == "in" else IS_NOT, subject=subject, value=shown)
        ops = _DATE_OPS if self.is_date(node.left, left_field) or self.is_date(right) \
            else _NUMBER_OPS
        if node.op not in ops:
            return f"{subject} {node.op} {shown}"
        return self.say(ops[node.op], subject=subject, value=shown)

    def is_date(self, node: Node, known: Field | None = None) -> bool:
        if isinstance(node, Call):
            return node.func in _DATE_CALLS
        if isinstance(node, Name):
            found = known or self.field(node.path)
            return found is not None and found.type in _DATE_TYPES
        return False


def _lower_first(text: str) -> str:
    """"Accepted offers" -> "accepted offers", but "AML checked" stays."""
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def clauses(expr: Expression | Node, fields_of: FieldsOf, entity: str,
            language: str | None = None, voice: Voice = ENGLISH) -> list[str]:
    """The conditions of `expr` in words, one per top-level `and`."""
    tree = expr.tree if isinstance(expr, Expression) else expr
    words = _Words(fields_of, entity, language, voice)
    parts = tree.values if isinstance(tree, BoolOp) and tree.op == "and" else (tree,)
    return [_upper_first(words.condition(part)) for part in parts]


def describe(expr: Expression | Node, fields_of: FieldsOf, entity: str,
             language: str | None = None, voice: Voice = ENGLISH) -> str:
    """`expr` in words: "Total greater than 0; Valid until on or after today"."""
    words = _Words(fields_of, entity, language, voice)
    return words.joined(clauses(expr, fields_of, entity, language, voice),
                        N_("%(left)s; %(right)s"))


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]
