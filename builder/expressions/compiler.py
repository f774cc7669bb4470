"""An expression compiled once into nested Python closures, one per node of its tree.

Evaluating walks no tree and dispatches on no node type: each closure calls its children's
closures directly, with the decisions a node allows made at compile time (a field of the record
itself, a comparison with null, which function). The rules are those of `rules.py`, which the
tree walker (`evaluator._Evaluator`) also runs; `tests/test_expressions_compiled.py` checks the
two agree on generated expressions. Nothing here turns text into code: the closures are made
from the checked tree, never from the source.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from .nodes import Binary, BoolOp, Call, Compare, IfElse, ListLit, Literal, Name, Node, Unary
from .parser import Expression
from .rules import (
    FUNCTIONS,
    ORDER,
    PLAIN,
    EvalContext,
    binary,
    call,
    compare,
    follow,
    membership,
    name_value,
    normalize,
)

Compiled = Callable[[EvalContext], Any]

_ROOTS = ("old", "user", "item")  # paths that may read something else than the record
_SAME_TYPE_ORDERED = frozenset({int, str, Decimal, bool})  # compared by the operator alone
_FAST = {"+": operator.add, "-": operator.sub, "*": operator.mul}
_NUMBERS = frozenset({int, Decimal})
_NULL_KEPT = frozenset({"coalesce", "len", "has_role", "lookup"})  # not null in, null out


def compiled(expr: Expression) -> Compiled:
    """The closure of `expr`, built on first use and kept on the expression."""
    try:
        return expr._compiled  # type: ignore[attr-defined,no-any-return]
    except AttributeError:
        fn = compile_node(expr.tree)
        # Expression is frozen; the closure is derived from its tree, so it is kept with it
        object.__setattr__(expr, "_compiled", fn)
        return fn


def compile_node(node: Node) -> Compiled:
    """The closure giving the value of `node` for a context, as `_Evaluator.eval` does."""
    return _COMPILERS[type(node)](node)


def _literal(node: Literal) -> Compiled:
    value = node.value
    return lambda ctx: value


def _list(node: ListLit) -> Compiled:
    items = tuple(compile_node(item) for item in node.items)
    return lambda ctx: [item(ctx) for item in items]


def _name(node: Name) -> Compiled:
    path = node.path
    if path[0] in _ROOTS:
        return lambda ctx: name_value(ctx, path)
    if len(path) > 1:
        return lambda ctx: follow(ctx, ctx.entity, ctx.record, path)
    segment = path[0]

    def field(ctx: EvalContext) -> Any:
        record = ctx.record
        if record is None:
            return None
        value = record.get(segment)
        return value if type(value) in PLAIN else normalize(value)

    return field


def _unary(node: Unary) -> Compiled:
    operand = compile_node(node.operand)
    if node.op == "not":
        def negation(ctx: EvalContext) -> bool:
            value = operand(ctx)
            return value is None or not value

        return negation

    def minus(ctx: EvalContext) -> Any:
        value = operand(ctx)
        return None if value is None else -value

    return minus


def _boolop(node: BoolOp) -> Compiled:
    values = tuple(compile_node(v) for v in node.values)
    if node.op == "and":
        def all_true(ctx: EvalContext) -> bool:
            for value in values:
                result = value(ctx)
                if result is None or not result:
                    return False
            return True

        return all_true

    def any_true(ctx: EvalContext) -> bool:
        for value in values:
            result = value(ctx)
            if result is not None and result:
                return True
        return False

    return any_true


def _ifelse(node: IfElse) -> Compiled:
    test, body, orelse = compile_node(node.test), compile_node(node.body), compile_node(node.orelse)

    def choice(ctx: EvalContext) -> Any:
        held = test(ctx)
        return body(ctx) if held is not None and held else orelse(ctx)

    return choice


def _null_literal(node: Node) -> bool:
    return isinstance(node, Literal) and node.value is None


def _compare(node: Compare) -> Compiled:
    op = node.op
    if op in ("==", "!=") and (_null_literal(node.right) or _null_literal(node.left)):
        other = compile_node(node.left if _null_literal(node.right) else node.right)
        if op == "==":
            return lambda ctx: other(ctx) is None
        return lambda ctx: other(ctx) is not None
    left, right = compile_node(node.left), compile_node(node.right)
    if op in ("in", "not in"):
        return lambda ctx: membership(op, left(ctx), right(ctx))
    order = ORDER[op]

    def comparison(ctx: EvalContext) -> bool:
        a = left(ctx)
        b = right(ctx)
        if a is None or b is None:
            return False
        kind = type(a)
        if kind is type(b) and kind in _SAME_TYPE_ORDERED:
            return order(a, b)  # what `compare` comes to for two values of one such type
        return compare(op, a, b)

    return comparison


def _binary(node: Binary) -> Compiled:
    op, offset = node.op, node.op_offset
    left, right = compile_node(node.left), compile_node(node.right)
    fast = _FAST.get(op)

    def arithmetic(ctx: EvalContext) -> Any:
        a = left(ctx)
        b = right(ctx)
        if a is None or b is None:
            return None
        if fast is not None and type(a) in _NUMBERS and type(b) in _NUMBERS:
            # what `binary` comes to for + - * on two numbers: Decimal arithmetic takes an
            # int exactly, as `Decimal(int)` does
            try:
                return fast(a, b)
            except InvalidOperation:
                return None
        return binary(op, a, b, offset)

    return arithmetic


def _call(node: Call) -> Compiled:
    name = node.func
    if name == "today":
        return lambda ctx: ctx.today
    if name == "now":
        return lambda ctx: ctx.now
    args = tuple(compile_node(a) for a in node.args)
    function = FUNCTIONS.get(name)
    if name in _NULL_KEPT or function is None:
        return lambda ctx: call(ctx, name, [a(ctx) for a in args])
    if len(args) == 1:
        (only,) = args

        def one(ctx: EvalContext) -> Any:
            value = only(ctx)
            return None if value is None else function(ctx, value)

        return one

    def many(ctx: EvalContext) -> Any:
        values = [a(ctx) for a in args]
        for value in values:
            if value is None:
                return None
        return function(ctx, *values)

    return many


_COMPILERS: dict[type, Callable[[Any], Compiled]] = {
    Literal: _literal, ListLit: _list, Name: _name, Unary: _unary, BoolOp: _boolop,
    IfElse: _ifelse, Compare: _compare, Binary: _binary, Call: _call,
}
