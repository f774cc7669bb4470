"""Parse expression text into our own frozen tree.

Python's `ast` module is used only as a tokenizer and parser: the result is converted node by
node into `nodes.py`, and anything outside the language is refused with a code and the offset
of the culprit. User text is never compiled to code, evaluated or executed.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass
from decimal import Decimal

from ..diagnostics import did_you_mean
from .errors import ExpressionError
from .nodes import (
    Binary,
    BoolOp,
    Call,
    Compare,
    IfElse,
    ListLit,
    Literal,
    Name,
    Node,
    Unary,
    walk,
)

MAX_LENGTH = 2000
MAX_DEPTH = 50

# name -> (fewest arguments, most arguments or None for no limit)
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "today": (0, 0),
    "now": (0, 0),
    "days": (1, 1),
    "hours": (1, 1),
    "days_since": (1, 1),
    "len": (1, 1),
    "lower": (1, 1),
    "upper": (1, 1),
    "trim": (1, 1),
    "left": (2, 2),
    "right": (2, 2),
    "mid": (3, 3),
    "replace": (3, 3),
    "contains": (2, 2),
    "has_role": (1, 1),
    "coalesce": (1, None),
    "round": (1, 2),
    "pow": (2, 2),
    "lookup": (3, 3),
    "min": (2, None),
    "max": (2, None),
    "day": (1, 1),
    "week": (1, 1),
    "month": (1, 1),
    "year": (1, 1),
}

KEYWORD_LITERALS = {"true": True, "false": False, "null": None}
RESERVED_ROOTS = ("old", "user")

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%"}
_BINARY_FORBIDDEN = {
    ast.Pow: ("'**' is not supported", "use pow(x, y)"),
    ast.FloorDiv: ("'//' is not supported", "use round(a / b, 0)"),
    ast.BitAnd: ("'&' is not supported", "use 'and'"),
    ast.BitOr: ("'|' is not supported", "use 'or'"),
    ast.BitXor: ("'^' is not supported", None),
    ast.LShift: ("'<<' is not supported", None),
    ast.RShift: ("'>>' is not supported", None),
    ast.MatMult: ("'@' is not supported", None),
}
_COMPARE = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in",
}
_FORBIDDEN_NODES = {
    ast.Subscript: ("subscripts (x[...]) are not supported", None),
    ast.Slice: ("slices are not supported", None),
    ast.Lambda: ("lambda is not supported", None),
    ast.ListComp: ("comprehensions are not supported", None),
    ast.SetComp: ("comprehensions are not supported", None),
    ast.DictComp: ("comprehensions are not supported", None),
    ast.GeneratorExp: ("comprehensions are not supported", None),
    ast.JoinedStr: ("f-strings are not supported", "use a template or '+'"),
    ast.FormattedValue: ("f-strings are not supported", None),
    ast.NamedExpr: ("':=' is not supported", None),
    ast.Starred: ("'*' unpacking is not supported", None),
    ast.Dict: ("dictionaries are not supported", None),
    ast.Set: ("sets are not supported", "use a list [a, b]"),
    ast.Tuple: ("tuples are not supported", "use a list [a, b]"),
    ast.Await: ("await is not supported", None),
    ast.Yield: ("yield is not supported", None),
    ast.YieldFrom: ("yield is not supported", None),
}


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its source, its tree and the field paths it names."""

    source: str
    tree: Node
    names: frozenset[tuple[str, ...]]
    uses_old: bool
    uses_user: bool

    def __str__(self) -> str:
        return self.source


def parse(source: str) -> Expression:
    """Parse `source`; raise ExpressionError (E301-E304) when it is not in the language."""
    if not isinstance(source, str):
        raise ExpressionError("E301", f"an expression must be text, not {type(source).__name__}")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(
            "E304", f"expression is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    # Newlines (from YAML block scalars) become spaces: same length, so offsets still hold.
    text = source.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    _prescan(text)
    lead = len(text) - len(text.lstrip())
    body = text[lead:].rstrip()
    if not body:
        raise ExpressionError("E301", "empty expression", 0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(body, mode="eval")
    except SyntaxError as exc:
        offset = lead + max((exc.offset or 1) - 1, 0)
        message = f"syntax error: {exc.msg}"
        raise ExpressionError("E301", message, min(offset, len(source))) from None
    except (RecursionError, MemoryError):
        raise ExpressionError("E304", "expression is nested too deeply", 0) from None
    converted = _Converter(text, lead, body).convert(tree.body, 1)
    names = frozenset(n.path for n in walk(converted) if isinstance(n, Name))
    return Expression(
        source=source,
        tree=converted,
        names=names,
        uses_old=any(p[0] == "old" for p in names),
        uses_user=any(p[0] == "user" for p in names)
        or any(isinstance(n, Call) and n.func == "has_role" for n in walk(converted)),
    )


def _prescan(text: str) -> None:
    """Refuse comments and deep bracket nesting before Python's parser sees the text."""
    depth = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "'\"":
            quote = text[i:i + 3] if text[i:i + 3] in ("'''", '"""') else ch
            i += len(quote)
            while i < len(text) and not text.startswith(quote, i):
                i += 2 if text[i] == "\\" else 1
            i += len(quote)
            continue
        if ch == "#":
            raise ExpressionError("E302", "comments are not allowed in expressions", i)
        if ch in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ExpressionError(
                    "E304", f"expression is nested deeper than {MAX_DEPTH} levels", i)
        elif ch in ")]}":
            depth -= 1
        i += 1


class _Converter:
    def __init__(self, text: str, lead: int, body: str):
        self.text = text
        self.lead = lead
        # ast offsets are UTF-8 byte offsets in the line; map them to character offsets.
        if body.isascii():
            self.byte_to_char = None
        else:
            mapping = []
            for index, ch in enumerate(body):
                mapping.extend([index] * len(ch.encode("utf-8")))
            mapping.append(len(body))
            self.byte_to_char = mapping

    def pos(self, byte_offset: int) -> int:
        if self.byte_to_char is None:
            return self.lead + byte_offset
        return self.lead + self.byte_to_char[min(byte_offset, len(self.byte_to_char) - 1)]

    def at(self, node: ast.AST) -> int:
        return self.pos(getattr(node, "col_offset", 0))

    def after(self, node: ast.AST) -> int:
        """The offset of the first operator character after `node` (skips spaces and ')')."""
        i = self.pos(node.end_col_offset or 0)
        while i < len(self.text) and self.text[i] in " )":
            i += 1
        return i

    def fail(self, code: str, message: str, node: ast.AST | int, hint: str | None = None):
        offset = node if isinstance(node, int) else self.at(node)
        raise ExpressionError(code, message, offset, hint)

    def convert(self, node: ast.AST, depth: int) -> Node:
        if depth > MAX_DEPTH:
            self.fail("E304", f"expression is nested deeper than {MAX_DEPTH} levels", node)
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            message, hint = _FORBIDDEN_NODES.get(
                type(node), (f"{type(node).__name__} is not supported in expressions", None))
            self.fail("E302", message, node, hint)
        return method(node, depth + 1)

    def _Constant(self, node: ast.Constant, depth: int) -> Node:
        value = node.value
        if isinstance(value, bool) or value is None or isinstance(value, str | int):
            return Literal(value, self.at(node))
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                self.fail("E301", "number is too large", node)
            return Literal(Decimal(repr(value)), self.at(node))
        self.fail("E302", f"{type(value).__name__} literals are not supported", node)

    def _Name(self, node: ast.Name, depth: int) -> Node:
        if node.id in KEYWORD_LITERALS:
            return Literal(KEYWORD_LITERALS[node.id], self.at(node))
        if node.id in RESERVED_ROOTS:
            self.fail("E302", f"'{node.id}' must be followed by a field, as in {node.id}.id",
                      node)
        return Name((node.id,), self.at(node), (self.at(node),))

    def _Attribute(self, node: ast.Attribute, depth: int) -> Node:
        parts: list[str] = []
        offsets: list[int] = []
        current: ast.AST = node
        while isinstance(current, ast.Attribute):
            parts.append(current.attr)
            offsets.append(self.pos(current.end_col_offset or 0) - len(current.attr))
            current = current.value
        if not isinstance(current, ast.Name) or current.id in KEYWORD_LITERALS:
            self.fail("E302", "'.' may only follow a field name", offsets[-1] - 1,
                      "fields are followed with a.b; methods such as x.upper() are not allowed")
        parts.append(current.id)
        offsets.append(self.at(current))
        return Name(tuple(reversed(parts)), self.at(node), tuple(reversed(offsets)))

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> Node:
        if isinstance(node.op, ast.USub):
            return Unary("-", self.convert(node.operand, depth), self.at(node))
        if isinstance(node.op, ast.Not):
            return Unary("not", self.convert(node.operand, depth), self.at(node))
        symbol = "+" if isinstance(node.op, ast.UAdd) else "~"
        self.fail("E302", f"unary '{symbol}' is not supported", node)

    def _BinOp(self, node: ast.BinOp, depth: int) -> Node:
        op_offset = self.after(node.left)
        if type(node.op) in _BINARY_FORBIDDEN:
            message, hint = _BINARY_FORBIDDEN[type(node.op)]
            self.fail("E302", message, op_offset, hint)
        return Binary(_BINARY[type(node.op)], self.convert(node.left, depth),
                      self.convert(node.right, depth), self.at(node), op_offset)

    def _BoolOp(self, node: ast.BoolOp, depth: int) -> Node:
        op = "and" if isinstance(node.op, ast.And) else "or"
        return BoolOp(op, tuple(self.convert(v, depth) for v in node.values), self.at(node))

    def _Compare(self, node: ast.Compare, depth: int) -> Node:
        operands = [node.left, *node.comparators]
        converted = [self.convert(o, depth) for o in operands]
        pairs: list[Node] = []
        for index, op in enumerate(node.ops):
            op_offset = self.after(operands[index])
            if isinstance(op, ast.Is | ast.IsNot):
                self.fail("E302", "'is' is not supported", op_offset, "use == null or != null")
            pairs.append(Compare(_COMPARE[type(op)], converted[index], converted[index + 1],
                                 self.at(operands[index]), op_offset))
        if len(pairs) == 1:
            return pairs[0]
        return BoolOp("and", tuple(pairs), self.at(node))

    def _IfExp(self, node: ast.IfExp, depth: int) -> Node:
        return IfElse(self.convert(node.test, depth), self.convert(node.body, depth),
                      self.convert(node.orelse, depth), self.at(node))

    def _List(self, node: ast.List, depth: int) -> Node:
        return ListLit(tuple(self.convert(e, depth) for e in node.elts), self.at(node))

    def _Call(self, node: ast.Call, depth: int) -> Node:
        func = node.func
        if isinstance(func, ast.Attribute):
            hint = f"use {func.attr}(...)" if func.attr in FUNCTIONS else None
            self.fail("E302", "method calls are not allowed",
                      self.pos(func.end_col_offset or 0) - len(func.attr), hint)
        if not isinstance(func, ast.Name):
            self.fail("E302", "only the built-in functions may be called", func)
        if func.id not in FUNCTIONS:
            self.fail("E303", f"unknown function '{func.id}'", func,
                      did_you_mean(func.id, FUNCTIONS))
        for keyword in node.keywords:
            self.fail("E302", "keyword arguments are not supported", keyword)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.fail("E302", "'*' unpacking is not supported", arg)
        low, high = FUNCTIONS[func.id]
        count = len(node.args)
        if count < low or (high is not None and count > high):
            if high is None:
                wanted = f"at least {low}"
            elif low == high:
                wanted = str(low)
            else:
                wanted = f"{low} to {high}"
            plural = "" if wanted == "1" else "s"
            self.fail("E303", f"{func.id}() takes {wanted} argument{plural}, got {count}", node)
        args = tuple(self.convert(a, depth) for a in node.args)
        return Call(func.id, args, self.at(node))
