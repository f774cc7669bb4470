"""An expression in words, for people: `total > 0 and valid_until >= today()` reads
"Total greater than 0; Valid until on or after today".

Used where a rule is refused and the definition gives no `message:` (transition guards,
validations — docs/workflows.md). Field names become their labels, choice codes their option
labels, dotted paths "Tenant's AML checked"; comparisons with a date read "before"/"on or
after", others "less than"/"at least". What has no natural wording keeps a compact form
(`Annual rent ÷ 52 × 5`), never Python syntax.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from .expressions import BoolOp, Call, Compare, Expression, IfElse, ListLit, Literal, Name
from .expressions.nodes import Binary, Node, Unary
from .model import Field, humanize

FieldsOf = Callable[[str], Mapping[str, Field] | None]  # entity name -> its fields, if known

_NUMBER_OPS = {">": "greater than", ">=": "at least", "<": "less than", "<=": "at most",
               "==": "is", "!=": "is not"}
_DATE_OPS = {">": "after", ">=": "on or after", "<": "before", "<=": "on or before",
             "==": "is", "!=": "is not"}
_ARITHMETIC = {"+": "+", "-": "−", "*": "×", "/": "÷", "%": "mod"}
_DATE_TYPES = ("date", "datetime")
_DATE_CALLS = ("today", "now")


class _Words:
    def __init__(self, fields_of: FieldsOf, entity: str, language: str | None):
        self.fields_of = fields_of
        self.entity = entity
        self.language = language

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
            return "your " + " ".join(humanize(p).lower() for p in path[1:]) \
                if len(path) > 1 else "you"
        if path[0] == "old":
            return "the previous " + _lower_first(self.name(path[1:])) if len(path) > 1 \
                else "the previous value"
        parts = [self.label(path[: i + 1]) for i in range(len(path))]
        head = parts[0]
        for part in parts[1:]:
            head = f"{head}'s {_lower_first(part)}"
        return head

    def label(self, path: tuple[str, ...]) -> str:
        found = self.field(path)
        return found.label.get(self.language) if found is not None else humanize(path[-1])

    # -- values --------------------------------------------------------------------------------

    def value(self, node: Node, beside: Field | None = None) -> str:
        """`node` as words; a literal next to a choice field reads as that option's label."""
        if isinstance(node, Literal):
            return self.literal(node.value, beside)
        if isinstance(node, Name):
            return self.name(node.path)
        if isinstance(node, ListLit):
            return _either([self.value(item, beside) for item in node.items])
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Binary):
            return (f"{self.value(node.left)} {_ARITHMETIC.get(node.op, node.op)} "
                    f"{self.value(node.right)}")
        if isinstance(node, Unary):
            return f"−{self.value(node.operand)}" if node.op == "-" \
                else f"not ({self.condition(node.operand)})"
        if isinstance(node, IfElse):
            return (f"{self.value(node.body)} when {self.condition(node.test)}, "
                    f"otherwise {self.value(node.orelse)}")
        return self.condition(node)

    def literal(self, value: Any, beside: Field | None) -> str:
        if value is None:
            return "empty"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if beside is not None and beside.options and isinstance(value, str):
            return beside.option_label(value, self.language)
        if isinstance(value, Decimal | int | float):
            text = f"{value:,}"
            return text.rstrip("0").rstrip(".") if "." in text else text
        return f"“{value}”"

    def call(self, node: Call) -> str:
        args = node.args
        if node.func in _DATE_CALLS:
            return node.func
        if node.func == "coalesce" and args:
            return self.value(args[0])
        if node.func in ("lower", "upper", "trim") and args:
            return self.value(args[0])
        if node.func in ("days", "hours") and args:
            return f"{self.value(args[0])} {node.func}"
        if node.func == "days_since" and args:
            return f"days since {self.value(args[0])}"
        if node.func == "len" and args:
            return f"the length of {self.value(args[0])}"
        return f"{node.func}({', '.join(self.value(a) for a in args)})"

    # -- conditions ----------------------------------------------------------------------------

    def condition(self, node: Node) -> str:
        if isinstance(node, BoolOp):
            parts = [self.condition(v) for v in node.values]
            if node.op == "or":
                return "either " + " or ".join(parts)
            return " and ".join(parts)
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, Unary) and node.op == "not":
            return f"not ({self.condition(node.operand)})"
        if isinstance(node, Call) and node.func == "has_role" and node.args:
            return f"you have the role {self.value(node.args[0])}"
        if isinstance(node, Call) and node.func == "contains" and len(node.args) == 2:
            return f"{self.value(node.args[0])} contains {self.value(node.args[1])}"
        if isinstance(node, Name):
            return f"{self.name(node.path)} is yes"
        return self.value(node)

    def compare(self, node: Compare) -> str:
        left_field = self.field(node.left.path) if isinstance(node.left, Name) else None
        right = node.right
        subject = self.value(node.left)
        if isinstance(right, Literal) and right.value is None and node.op in ("==", "!="):
            return f"{subject} is {'empty' if node.op == '==' else 'filled in'}"
        if isinstance(right, Literal) and isinstance(right.value, bool) and node.op in (
                "==", "!="):
            return f"{subject} is {'yes' if right.value == (node.op == '==') else 'no'}"
        shown = self.value(right, left_field)
        if node.op == "in":
            return f"{subject} is {shown}"
        if node.op == "not in":
            return f"{subject} is not {shown}"
        ops = _DATE_OPS if self.is_date(node.left, left_field) or self.is_date(right) \
            else _NUMBER_OPS
        return f"{subject} {ops.get(node.op, node.op)} {shown}"

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


def _either(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def clauses(expr: Expression | Node, fields_of: FieldsOf, entity: str,
            language: str | None = None) -> list[str]:
    """The conditions of `expr` in words, one per top-level `and`."""
    tree = expr.tree if isinstance(expr, Expression) else expr
    words = _Words(fields_of, entity, language)
    parts = tree.values if isinstance(tree, BoolOp) and tree.op == "and" else (tree,)
    return [_upper_first(words.condition(part)) for part in parts]


def describe(expr: Expression | Node, fields_of: FieldsOf, entity: str,
             language: str | None = None) -> str:
    """`expr` in words: "Total greater than 0; Valid until on or after today"."""
    return "; ".join(clauses(expr, fields_of, entity, language))


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]
