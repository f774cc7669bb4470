"""Evaluate a parsed expression in Python, following the null rules of docs/expressions.md.

The SQL compiler (runtime/expressions/to_sql.py) must give the same answer for every
expression; the rules below are mirrored there and locked by a property test.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .checker import Scope, user_fields
from .errors import ExpressionError
from .nodes import Binary, BoolOp, Call, Compare, IfElse, ListLit, Literal, Name, Node, Unary
from .parser import Expression

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class UserInfo:
    """The acting user: constant for the duration of one request."""

    id: int | None
    username: str
    roles: frozenset[str]
    team: int | None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class EvalContext:
    record: Mapping[str, Any]
    entity: str
    old: Mapping[str, Any] | None = None
    user: UserInfo | None = None
    now: datetime | None = None  # timezone-aware UTC; defaults to the current time
    today: date | None = None  # defaults to the UTC date of `now`
    fetch: Callable[[str, Any], Mapping[str, Any] | None] | None = None
    scope: Scope | None = None
    # a `create` with `for_each` (docs/automations.md): the child record `item.*` reads
    item: Mapping[str, Any] | None = None
    item_entity: str | None = None

    def __post_init__(self) -> None:
        if self.now is None:
            self.now = datetime.now(UTC)
        elif self.now.tzinfo is None:
            self.now = self.now.replace(tzinfo=UTC)
        if self.today is None:
            self.today = self.now.astimezone(UTC).date()


def evaluate(expr: Expression, ctx: EvalContext) -> Any:
    """The value of `expr` for one record; None stands for null."""
    return _Evaluator(ctx).eval(expr.tree)


def evaluate_condition(expr: Expression, ctx: EvalContext) -> bool:
    """Whether a condition holds; null counts as false."""
    return truthy(evaluate(expr, ctx))


def truthy(value: Any) -> bool:
    return value is not None and bool(value)


def normalize(value: Any) -> Any:
    """Values as the evaluator computes with them: Decimal for non-integers, aware UTC."""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return Decimal(repr(value))
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, tuple):
        return list(value)
    return value


def date_part(value: date) -> date:
    """The calendar day of a date or (UTC) datetime."""
    return value.astimezone(UTC).date() if isinstance(value, datetime) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def arithmetic(op: str, a: Any, b: Any) -> Any:
    """`+ - * / %` on two non-null numbers. / and % by zero give null; % takes the sign of a."""
    if op in ("/", "%") and b == 0:
        return None
    if isinstance(a, int) and isinstance(b, int):
        if op == "/":
            return Decimal(a) / Decimal(b)
        if op == "%":
            remainder = abs(a) % abs(b)
            return -remainder if a < 0 else remainder
    else:
        a, b = Decimal(a), Decimal(b)
    try:
        return {"+": operator.add, "-": operator.sub, "*": operator.mul,
                "/": operator.truediv, "%": operator.mod}[op](a, b)
    except InvalidOperation:
        return None


POW_LIMIT = 1e300  # pow() results this large are null, results smaller than 1/POW_LIMIT are 0


def power(x: Any, y: Any) -> Decimal | None:
    """pow(x, y) on two non-null numbers, computed as the SQL compiler does: in binary floating
    point (the same C pow() as SQLite and PostgreSQL), read back as the shortest decimal of
    that float. Null for 0 to a negative power, a negative number to a fractional power and
    results of POW_LIMIT or more; 0 for results below 1 / POW_LIMIT."""
    try:
        xf, yf = float(x), float(y)
    except OverflowError:
        return None
    if not (math.isfinite(xf) and math.isfinite(yf)):
        return None
    if (xf == 0 and yf < 0) or (xf < 0 and yf != math.floor(yf)):
        return None
    try:
        result = math.pow(xf, yf)
    except (OverflowError, ValueError):
        return None
    if abs(result) >= POW_LIMIT:
        return None
    if abs(result) < 1 / POW_LIMIT:
        return Decimal(0)
    return Decimal(repr(result))


_ORDER = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
          ">": operator.gt, ">=": operator.ge}


def compare(op: str, a: Any, b: Any) -> bool:
    """A comparison of two values; any null operand makes it false."""
    if a is None or b is None:
        return False
    if isinstance(a, date) and isinstance(b, date) and (
            isinstance(a, datetime) != isinstance(b, datetime)):
        a, b = date_part(a), date_part(b)
    if type(a) is not type(b) and not (_is_number(a) and _is_number(b)):
        return op == "!="
    return bool(_ORDER[op](a, b))


class _Evaluator:
    def __init__(self, ctx: EvalContext):
        self.ctx = ctx

    def eval(self, node: Node) -> Any:
        return getattr(self, "_" + type(node).__name__)(node)

    def _Literal(self, node: Literal) -> Any:
        return node.value

    def _ListLit(self, node: ListLit) -> Any:
        return [self.eval(item) for item in node.items]

    # -- names ----------------------------------------------------------------------------

    def _Name(self, node: Name) -> Any:
        path = node.path
        ctx = self.ctx
        if path[0] == "old":
            if ctx.old is None:
                return None
            return self.follow(ctx.entity, ctx.old, path[1:])
        if path[0] == "item" and ctx.item_entity is not None and len(path) > 1:
            return self.follow(ctx.item_entity, ctx.item, path[1:])
        if path[0] == "user":
            user = ctx.user
            if user is None:
                return None
            attribute = path[1]
            if attribute == "roles":
                return sorted(user.roles)
            if attribute in ("id", "username", "team"):
                value = getattr(user, attribute)
            elif attribute in user.fields:
                value = normalize(user.fields[attribute])
            else:
                return self.follow("user", self.fetch("user", user.id), path[1:])
            return self.follow("user", {attribute: value}, path[1:])
        return self.follow(ctx.entity, ctx.record, path)

    def fetch(self, entity: str, key: Any) -> Mapping[str, Any] | None:
        if key is None:
            return None
        if self.ctx.fetch is None:
            raise ExpressionError("E320", f"cannot read '{entity}' records: no fetch given")
        return self.ctx.fetch(entity, key)

    def follow(self, entity: str, record: Mapping[str, Any] | None,
               path: tuple[str, ...]) -> Any:
        for index, segment in enumerate(path):
            if record is None:
                return None
            value = normalize(record.get(segment))
            if index + 1 == len(path):
                return value
            entity = self.link_target(entity, segment)
            record = self.fetch(entity, value)
        return None

    def link_target(self, entity: str, segment: str) -> str:
        scope = self.ctx.scope
        if entity == "user":
            fields = user_fields(scope)
        else:
            fields = scope.fields(entity) if scope is not None else None
        ref = (fields or {}).get(segment)
        if ref is None or not ref.to:
            raise ExpressionError("E320", f"cannot follow '{entity}.{segment}': no scope given")
        return ref.to

    # -- operators ------------------------------------------------------------------------

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
            if left is None or not isinstance(right, list):
                return False
            found = any(compare("==", left, item) for item in right)
            return found if node.op == "in" else not found
        return compare(node.op, left, right)

    def _Binary(self, node: Binary) -> Any:
        a, b = self.eval(node.left), self.eval(node.right)
        if a is None or b is None:
            return None
        op = node.op
        if _is_number(a) and _is_number(b):
            return arithmetic(op, a, b)
        if isinstance(a, str) and isinstance(b, str) and op == "+":
            return a + b
        if isinstance(a, timedelta) and op == "+" and isinstance(b, date):
            a, b = b, a
        if isinstance(b, timedelta) and op in ("+", "-"):
            if isinstance(a, timedelta):
                return a + b if op == "+" else a - b
            delta = b if op == "+" else -b
            if isinstance(a, datetime):
                return a + delta
            if isinstance(a, date):
                return a + timedelta(days=delta // ONE_DAY)
        if op == "-" and type(a) is date and type(b) is date:
            return a - b
        raise ExpressionError("E313", f"cannot apply '{op}' to {type(a).__name__} and "
                              f"{type(b).__name__}", node.op_offset)

    # -- functions ------------------------------------------------------------------------

    def _Call(self, node: Call) -> Any:
        name = node.func
        if name == "today":
            return self.ctx.today
        if name == "now":
            return self.ctx.now
        args = [self.eval(a) for a in node.args]
        if name == "coalesce":
            return next((a for a in args if a is not None), None)
        if name == "len":
            return 0 if args[0] is None else len(args[0])
        if name == "has_role" and self.ctx.user is None and args[0] is not None:
            return False
        if name == "lookup":
            return self.lookup(*args)
        if any(a is None for a in args):
            return None
        return getattr(self, "fn_" + name)(*args)

    def lookup(self, entity: str, field: str, value: Any) -> Any:
        """The lowest id of the `entity` records whose `field` equals `value` (the fetch
        given by the runtime answers `find`); null when none does or `value` is null."""
        if value is None:
            return None
        find = getattr(self.ctx.fetch, "find", None)
        if find is None:
            raise ExpressionError("E320", f"cannot look up '{entity}' records: no database")
        return find(entity, field, normalize(value))

    def fn_days(self, n: Any) -> timedelta:
        return timedelta(seconds=int(Decimal(n) * 86400))

    def fn_hours(self, n: Any) -> timedelta:
        return timedelta(seconds=int(Decimal(n) * 3600))

    def fn_days_since(self, d: date) -> int:
        return (self.ctx.today - date_part(d)).days

    def fn_lower(self, s: str) -> str:
        return s.lower()

    def fn_upper(self, s: str) -> str:
        return s.upper()

    def fn_contains(self, container: Any, part: Any) -> bool:
        if isinstance(container, str):
            return isinstance(part, str) and part in container
        return any(compare("==", part, item) for item in container)

    def fn_trim(self, s: str) -> str:
        return s.strip(" ")

    def fn_left(self, s: str, n: Any) -> str:
        return s[:max(int(n), 0)]

    def fn_right(self, s: str, n: Any) -> str:
        count = int(n)
        return s[-count:] if count > 0 else ""

    def fn_mid(self, s: str, start: Any, length: Any) -> str:
        first = max(int(start), 1) - 1
        return s[first:first + max(int(length), 0)]

    def fn_replace(self, s: str, old: str, new: str) -> str:
        return s.replace(old, new) if old else s

    def fn_pow(self, x: Any, y: Any) -> Decimal | None:
        return power(x, y)

    def fn_has_role(self, role: str) -> bool:
        return role in self.ctx.user.roles

    def fn_round(self, x: Any, digits: int = 0) -> Any:
        if isinstance(x, int):
            return x
        try:
            return x.quantize(Decimal(1).scaleb(-int(digits)), rounding=ROUND_HALF_UP)
        except InvalidOperation:
            return x

    def fn_min(self, *args: Any) -> Any:
        return min(args)

    def fn_max(self, *args: Any) -> Any:
        return max(args)

    def fn_day(self, d: date) -> int:
        return date_part(d).day

    def fn_week(self, d: date) -> int:
        return date_part(d).isocalendar()[1]

    def fn_month(self, d: date) -> int:
        return date_part(d).month

    def fn_year(self, d: date) -> int:
        return date_part(d).year


def _null_literal(node: Node) -> bool:
    return isinstance(node, Literal) and node.value is None
