"""Compile an expression to SQLAlchemy Core, with the evaluator's exact null rules.

A comparison never yields SQL NULL: a null operand makes it FALSE (`x == null` and
`x != null` become IS NULL / IS NOT NULL). `not`, `and`, `or` and `if` read a null operand as
false. Constant sub-expressions (literals, `user.*`, `today()`, `now()`, `has_role()`) are
computed by the Python evaluator and bound as parameters, so both back ends agree on them
by construction. Following a link is a correlated scalar subquery.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement, Null

from builder.expressions.checker import Analysis, CheckContext, Scope, analyse
from builder.expressions.errors import ExpressionError
from builder.expressions.evaluator import EvalContext, UserInfo, _Evaluator
from builder.expressions.nodes import (
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
    children,
)
from builder.expressions.parser import Expression
from runtime.core.expressions import sqlfuncs as f


class NotTranslatable(ExpressionError):
    """The expression cannot run in SQL (E314): `old`, list fields."""

    def __init__(self, code: str = "E314", message: str = "not translatable to SQL",
                 offset: int = 0, hint: str | None = None):
        super().__init__(code, message, offset, hint)


@dataclass(frozen=True)
class SqlContext:
    entity: str
    table: Callable[[str], sa.Table]  # entity -> Table; columns named like fields, `id` key
    scope: Scope
    user: UserInfo | None
    today: date
    now: datetime


_USER_CONSTANTS = ("id", "username", "roles", "team")
_OPERATORS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
              ">": operator.gt, ">=": operator.ge}


def to_sql(expr: Expression, ctx: SqlContext, *, base: sa.Table | sa.Alias | None = None,
           condition: bool | None = None) -> ColumnElement:
    """The SQL for `expr` over rows of `base` (default: the entity's table).

    With `condition` (the default for boolean expressions) the result is a clause that is
    never NULL: true exactly when `evaluate_condition` is true. Otherwise it is the value,
    NULL where the evaluator gives None. Raises NotTranslatable or ExpressionError.
    """
    analysis = analyse(expr, ctx.scope, CheckContext(
        ctx.entity, allow_old=True, allow_user=True, require_sql=True, boolean=False))
    for error in analysis.errors:
        if error.code == "E314":
            raise NotTranslatable(error.code, error.message, error.offset, error.hint)
    if analysis.errors:
        raise analysis.errors[0]
    compiler = _Compiler(ctx, analysis, base if base is not None else ctx.table(ctx.entity))
    if condition is None:
        condition = analysis.type_of(expr.tree) in ("bool", "null")
    if condition:
        return compiler.truth(expr.tree)
    result = compiler.value(expr.tree)
    if isinstance(result, list):
        raise NotTranslatable("E314", "a list is not a value in SQL", expr.tree.offset)
    return result


def bind(value: Any) -> Any:
    """A Python value as SQL; lists stay Python lists of bound values."""
    if value is None:
        return sa.null()
    if isinstance(value, bool):
        return sa.true() if value else sa.false()
    if isinstance(value, int):
        return sa.literal(value, sa.Integer())
    if isinstance(value, Decimal):
        return sa.literal(value, sa.Numeric())
    if isinstance(value, str):
        return sa.literal(value, sa.String())
    if isinstance(value, datetime):
        return sa.literal(value.astimezone(UTC).replace(tzinfo=None), sa.DateTime())
    if isinstance(value, date):
        return sa.literal(value, sa.Date())
    if isinstance(value, timedelta):
        return sa.literal(value // timedelta(seconds=1), sa.Integer())
    if isinstance(value, list):
        return [bind(v) for v in value]
    raise NotTranslatable("E314", f"cannot use a {type(value).__name__} in SQL")


class _Compiler:
    def __init__(self, ctx: SqlContext, analysis: Analysis, base: Any):
        self.ctx = ctx
        self.a = analysis
        self.base = base
        self.evaluator = _Evaluator(EvalContext(
            record={}, entity=ctx.entity, user=ctx.user, now=ctx.now, today=ctx.today,
            scope=ctx.scope))
        self._constant: dict[int, bool] = {}

    def kind(self, node: Node) -> str:
        return self.a.type_of(node)

    # -- constants ------------------------------------------------------------------------

    def is_constant(self, node: Node) -> bool:
        key = id(node)
        if key not in self._constant:
            if isinstance(node, Name):
                result = node.path[0] == "user" and len(node.path) == 2 and (
                    node.path[1] in _USER_CONSTANTS or self.ctx.user is None
                    or node.path[1] in self.ctx.user.fields)
            elif isinstance(node, Call) and node.func == "lookup":
                result = False  # it reads the database: a subquery, not a constant
            else:
                result = all(self.is_constant(c) for c in children(node))
            self._constant[key] = result
        return self._constant[key]

    def constant(self, node: Node) -> Any:
        return self.evaluator.eval(node)

    def null_constant(self, node: Node) -> bool:
        return self.is_constant(node) and self.constant(node) is None

    def non_null_constant(self, node: Node) -> bool:
        return self.is_constant(node) and self.constant(node) is not None

    # -- entry points ---------------------------------------------------------------------

    def truth(self, node: Node) -> ColumnElement:
        """A clause that is TRUE when the node is true, FALSE when it is false or null."""
        if self.is_constant(node):
            value = self.constant(node)
            return sa.true() if value is not None and bool(value) else sa.false()
        sql = self.value(node)
        if isinstance(node, Compare | BoolOp) or (isinstance(node, Unary) and node.op == "not"):
            return sql
        return sa.func.coalesce(sql, sa.false())

    def value(self, node: Node) -> Any:
        if self.is_constant(node):
            return bind(self.constant(node))
        return getattr(self, "_" + type(node).__name__)(node)

    # -- names ----------------------------------------------------------------------------

    def _Name(self, node: Name) -> Any:
        resolved = self.a.resolved(node)
        if resolved is None or resolved.root == "old":
            raise NotTranslatable("E314", "'old' cannot be used in SQL", node.offset)
        if resolved.type == "list":
            raise NotTranslatable("E314", "list fields cannot be used in SQL", node.offset)
        hops = list(resolved.hops)
        if resolved.root == "user":
            first = hops[0][1].name
            user = self.ctx.user
            current: Any
            if user is None or first in _USER_CONSTANTS or first in user.fields:
                current = bind(self.constant(Name(("user", first))))
            else:
                users = self.ctx.table("user").alias()
                sql = sa.select(users.c[first]).where(users.c.id == bind(user.id))
                current = sql.scalar_subquery()
        else:
            current = self.base.c[hops[0][1].name]
        for previous, (_entity, ref) in zip(hops, hops[1:], strict=False):
            target = self.ctx.table(previous[1].to).alias()
            current = sa.select(target.c[ref.name]).where(target.c.id == current)
            current = current.correlate_except(target)
            current = current.scalar_subquery()
        if resolved.type == "datetime":
            return f.DtNorm(current)
        return current

    def _ListLit(self, node: ListLit) -> list:
        return [self.value(item) for item in node.items]

    # -- operators ------------------------------------------------------------------------

    def _Unary(self, node: Unary) -> Any:
        if node.op == "not":
            return sa.not_(self.truth(node.operand))
        return -self.value(node.operand)

    def _BoolOp(self, node: BoolOp) -> Any:
        parts = [self.truth(v) for v in node.values]
        return sa.and_(*parts) if node.op == "and" else sa.or_(*parts)

    def _IfElse(self, node: IfElse) -> Any:
        body, orelse = self.value(node.body), self.value(node.orelse)
        if isinstance(body, Null) and isinstance(orelse, Null):
            return sa.null()  # a CASE of two NULLs would be text on PostgreSQL
        return sa.case((self.truth(node.test), body), else_=orelse)

    def aligned(self, left: Node, right: Node, ordering: bool) -> tuple[Any, Any]:
        """Both sides ready to compare: date parts for date vs datetime, code-point text."""
        lk, rk = self.kind(left), self.kind(right)
        lsql, rsql = self.value(left), self.value(right)
        if {lk, rk} == {"date", "datetime"}:
            lsql = f.DatePart(lsql) if lk == "datetime" else lsql
            rsql = f.DatePart(rsql) if rk == "datetime" else rsql
        elif ordering and "text" in (lk, rk):
            lsql, rsql = f.TextOrder(lsql), f.TextOrder(rsql)
        return lsql, rsql

    def guards(self, *nodes: Node) -> list[Any]:
        return [self.value(n).is_not(None) for n in nodes if not self.non_null_constant(n)]

    def _Compare(self, node: Compare) -> Any:
        op, left, right = node.op, node.left, node.right
        if op in ("==", "!=") and (_null_literal(right) or _null_literal(left)):
            other = self.value(left if _null_literal(right) else right)
            return other.is_(None) if op == "==" else other.is_not(None)
        if op in ("in", "not in"):
            return self.membership(node)
        if self.null_constant(left) or self.null_constant(right):
            return sa.false()
        lsql, rsql = self.aligned(left, right, op not in ("==", "!="))
        if isinstance(lsql, Null) or isinstance(rsql, Null):
            return sa.false()  # arithmetic with null is null, and comparing null is false
        comparison = _OPERATORS[op](lsql, rsql)
        return sa.and_(*self.guards(left, right), comparison)

    def membership(self, node: Compare) -> Any:
        left = node.left
        if self.null_constant(left):
            return sa.false()
        lsql = self.value(left)
        guard = self.guards(left)
        if self.is_constant(node.right):
            values = [v for v in (self.constant(node.right) or []) if v is not None]
            if not values:
                return sa.and_(*guard) if node.op == "not in" and guard else (
                    sa.true() if node.op == "not in" else sa.false())
            bound = [bind(v) for v in values]
            test = lsql.in_(bound) if node.op == "in" else lsql.not_in(bound)
            return sa.and_(*guard, test)
        if not isinstance(node.right, ListLit):
            raise NotTranslatable("E314", "'in' needs a list literal in SQL", node.right.offset)
        items = [i for i in node.right.items if not _null_literal(i)]
        if node.op == "in":
            tests = [sa.and_(*self.guards(i), lsql == self.value(i)) for i in items]
            return sa.and_(*guard, sa.or_(sa.false(), *tests))
        tests = [sa.or_(self.value(i).is_(None), lsql != self.value(i))
                 if not self.non_null_constant(i) else lsql != self.value(i) for i in items]
        return sa.and_(*guard, *tests)

    def _Binary(self, node: Binary) -> Any:
        lk, rk = self.kind(node.left), self.kind(node.right)
        if "null" in (lk, rk):
            return sa.null()
        a, b = self.value(node.left), self.value(node.right)
        if isinstance(a, Null) or isinstance(b, Null):
            return sa.null()  # `(x + null)` is typed but null: NULL + NULL has no type in SQL
        op = node.op
        if lk == "number" and rk == "number":
            if op == "/":
                return f.Div(a, b)
            if op == "%":
                return f.Mod(a, b)
            return a.op(op, return_type=sa.Numeric())(b)
        if lk == "text":
            return a.op("||", return_type=sa.String())(b)
        if rk in ("date", "datetime") and op == "+":
            a, b, lk, rk = b, a, rk, lk
        if lk == "duration" and rk == "duration":
            return a.op(op, return_type=sa.Integer())(b)
        if lk == "date" and rk == "date":
            return f.DateDiff(a, b)
        seconds = b if op == "+" else sa.literal(0, sa.Integer()).op(
            "-", return_type=sa.Integer())(b)
        if lk == "date":
            return f.DateAdd(a, seconds)
        return f.DateTimeAdd(a, seconds)

    # -- functions ------------------------------------------------------------------------

    def _Call(self, node: Call) -> Any:
        name = node.func
        args = node.args
        if name == "len":
            if isinstance(args[0], ListLit):
                return bind(len(args[0].items))
            return sa.func.coalesce(sa.func.length(self.value(args[0])), 0)
        if name == "coalesce":
            # null arguments add nothing; coalesce of nulls alone is NULL of no type, which
            # PostgreSQL would take for text
            values = [v for v in (self.value(a) for a in args) if not isinstance(v, Null)]
            if not values:
                return sa.null()
            return values[0] if len(values) == 1 else sa.func.coalesce(*values)
        if name == "lookup":  # the lowest id of the records of entity whose field = value
            entity, field = args[0].value, args[1].value  # literals: the checker saw to it
            table = self.ctx.table(entity).alias()
            value = self.value(args[2])
            if isinstance(value, sa.sql.elements.Null):
                return sa.null()
            return sa.select(sa.func.min(table.c.id)).where(
                table.c[field] == value).scalar_subquery()
        values = [self.value(a) for a in args]
        if any(isinstance(v, sa.sql.elements.Null) for v in values):
            return sa.null()
        if name in ("days", "hours"):
            factor = 86400 if name == "days" else 3600
            return f.Trunc(values[0].op("*", return_type=sa.Numeric())(bind(factor)))
        if name in ("days_since", "day", "week", "month", "year"):
            d = f.DatePart(values[0]) if self.kind(args[0]) == "datetime" else values[0]
            if name == "days_since":
                return f.DaysBetween(bind(self.ctx.today), d)
            return f.DateField(name, d)
        if name in ("lower", "upper", "trim"):
            # SQLite's and PostgreSQL's trim() take spaces only, as the evaluator does
            return getattr(sa.func, name)(values[0], type_=sa.String())
        if name == "replace":
            return f.Replace(*values)
        if name == "left":
            return f.Mid(values[0], bind(1), values[1])
        if name == "mid":
            return f.Mid(*values)
        if name == "right":
            return f.Right(*values)
        if name == "pow":
            return f.Pow(*values)
        if name == "contains":
            return self.contains(node, values)
        if name == "round":
            digits = values[1] if len(values) > 1 else bind(0)
            return f.Round(values[0], digits)
        if name in ("min", "max"):
            if self.kind(node) == "text":
                values = [f.TextOrder(v) for v in values]
            cls = f.Least if name == "min" else f.Greatest
            return cls(*values, type_=_sa_type(self.kind(node)))
        raise NotTranslatable("E314", f"{name}() cannot be used in SQL here", node.offset)

    def contains(self, node: Call, values: list[Any]) -> Any:
        container, part = values
        if self.kind(node.args[0]) == "text":
            return f.Contains(container, part)
        if not isinstance(container, list):
            raise NotTranslatable("E314", "contains() on a list field cannot run in SQL",
                                  node.offset)
        items = [v for v in container if not isinstance(v, sa.sql.elements.Null)]
        found = sa.or_(sa.false(), *[sa.func.coalesce(part == item, sa.false())
                                     for item in items])
        return sa.case((part.is_(None), sa.null()), else_=found)


def _null_literal(node: Node) -> bool:
    return isinstance(node, Literal) and node.value is None


def _sa_type(kind: str) -> Any:
    return {"number": sa.Numeric(), "text": sa.String(), "date": sa.Date(),
            "datetime": sa.DateTime(), "duration": sa.Integer()}.get(kind, sa.Numeric())
