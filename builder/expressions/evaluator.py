"""Evaluate a parsed expression in Python, following the null rules of docs/expressions.md.

`evaluate` runs the expression's compiled closures (`compiler.py`, built once per
expression); `_Evaluator` walks the tree node by node, with the same rules (`rules.py`): it is
the reference the compiled form is tested against, and what the SQL compiler folds constant
sub-expressions with. The SQL compiler (runtime/core/expressions/to_sql.py) must give the same
answer for every expression; the rules are mirrored there and locked by a property test.
"""

from __future__ import annotations

from typing import Any

from .compiler import compiled
from .nodes import Binary, BoolOp, Call, Compare, IfElse, ListLit, Literal, Name, Node, Unary
from .parser import Expression
from .rules import (
    ONE_DAY,
    POW_LIMIT,
    EvalContext,
    UserInfo,
    arithmetic,
    binary,
    call,
    compare,
    date_part,
    membership,
    name_value,
    normalize,
    power,
    truthy,
)

__all__ = ["ONE_DAY", "POW_LIMIT", "EvalContext", "UserInfo", "arithmetic", "compare",
           "date_part", "evaluate", "evaluate_condition", "normalize", "power", "truthy"]


def evaluate(expr: Expression, ctx: EvalContext) -> Any:
    """The value of `expr` for one record; None stands for null."""
    return compiled(expr)(ctx)


def evaluate_condition(expr: Expression, ctx: EvalContext) -> bool:
    """Whether a condition holds; null counts as false."""
    return truthy(compiled(expr)(ctx))


class _Evaluator:
    def __init__(self, ctx: EvalContext):
        self.ctx = ctx

    def eval(self, node: Node) -> Any:
        return getattr(self, "_" + type(node).__name__)(node)

    def _Literal(self, node: Literal) -> Any:
        return node.value

    def _ListLit(self, node: ListLit) -> Any:
        return [self.eval(item) for item in node.items]

    def _Name(self, node: Name) -> Any:
        return name_value(self.ctx, node.path)

    def _Unary(self, node: Unary) -> Any:
        value = self.eval(node.operand)
        if node.op == "not":
            return not truthy(value)
        return None if value is None else -value

    def _BoolOp(self, node: BoolOp) -> bool:
        if node.op == "and":
            return all(truthy(self.eval(v)) for v in node.values)
        return any(truthy(self.eval(v)) for v in node.values)

    def _IfElse(self, node: IfElse) -> Any:
        return self.eval(node.body) if truthy(self.eval(node.test)) else self.eval(node.orelse)

    def _Compare(self, node: Compare) -> bool:
        if node.op in ("==", "!=") and (_null_literal(node.right) or _null_literal(node.left)):
            other = node.left if _null_literal(node.right) else node.right
            is_null = self.eval(other) is None
            return is_null if node.op == "==" else not is_null
        left, right = self.eval(node.left), self.eval(node.right)
        if node.op in ("in", "not in"):
            return membership(node.op, left, right)
        return compare(node.op, left, right)

    def _Binary(self, node: Binary) -> Any:
        a, b = self.eval(node.left), self.eval(node.right)
        if a is None or b is None:
            return None
        return binary(node.op, a, b, node.op_offset)

    def _Call(self, node: Call) -> Any:
        name = node.func
        if name == "today":
            return self.ctx.today
        if name == "now":
            return self.ctx.now
        return call(self.ctx, name, [self.eval(a) for a in node.args])


def _null_literal(node: Node) -> bool:
    return isinstance(node, Literal) and node.value is None
