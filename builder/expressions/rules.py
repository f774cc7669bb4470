"""The rules of the expression language in Python (docs/expressions.md): the evaluation context,
the null rules of every operator and function, reading a field path.

Both ways of evaluating an expression use them: the tree walker (`evaluator.py`, the reference
the SQL compiler's constant folding also runs) and the closures an expression is compiled to
once (`compiler.py`), so the two cannot drift apart.
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


# values `normalize` gives back as they are (exact types: a datetime is a date, not one of these)
PLAIN = frozenset({type(None), str, int, bool, Decimal, date, timedelta, list})


def date_part(value: date) -> date:
    """The calendar day of a date or (UTC) datetime."""
    return value.astimezone(UTC).date() if isinstance(value, datetime) else value


def is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul,
               "/": operator.truediv, "%": operator.mod}


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
        return _ARITHMETIC[op](a, b)
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


ORDER = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
          ">": operator.gt, ">=": operator.ge}


def compare(op: str, a: Any, b: Any) -> bool:
    """A comparison of two values; any null operand makes it false."""
    if a is None or b is None:
        return False
    if isinstance(a, date) and isinstance(b, date) and (
            isinstance(a, datetime) != isinstance(b, datetime)):
        a, b = date_part(a), date_part(b)
    if type(a) is not type(b) and not (is_number(a) and is_number(b)):
        return op == "!="
    return bool(ORDER[op](a, b))


def membership(op: str, left: Any, right: Any) -> bool:
    """`in` / `not in`: false when `left` is null or `right` is not a list."""
    if left is None or not isinstance(right, list):
        return False
    found = any(compare("==", left, item) for item in right)
    return found if op == "in" else not found


def binary(op: str, a: Any, b: Any, op_offset: int) -> Any:
    """`+ - * / %` on two non-null values of any type (numbers, text, dates, durations)."""
    if is_number(a) and is_number(b):
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
                          f"{type(b).__name__}", op_offset)


# -- names --------------------------------------------------------------------------------


def name_value(ctx: EvalContext, path: tuple[str, ...]) -> Any:
    """The value of a field path: the record's, `old.*`, `item.*` or `user.*`."""
    root = path[0]
    if root == "old":
        if ctx.old is None:
            return None
        return follow(ctx, ctx.entity, ctx.old, path[1:])
    if root == "item" and ctx.item_entity is not None and len(path) > 1:
        return follow(ctx, ctx.item_entity, ctx.item, path[1:])
    if root == "user":
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
            return follow(ctx, "user", fetch(ctx, "user", user.id), path[1:])
        return follow(ctx, "user", {attribute: value}, path[1:])
    return follow(ctx, ctx.entity, ctx.record, path)


def fetch(ctx: EvalContext, entity: str, key: Any) -> Mapping[str, Any] | None:
    if key is None:
        return None
    if ctx.fetch is None:
        raise ExpressionError("E320", f"cannot read '{entity}' records: no fetch given")
    return ctx.fetch(entity, key)


def follow(ctx: EvalContext, entity: str, record: Mapping[str, Any] | None,
           path: tuple[str, ...]) -> Any:
    for index, segment in enumerate(path):
        if record is None:
            return None
        value = normalize(record.get(segment))
        if index + 1 == len(path):
            return value
        entity = link_target(ctx, entity, segment)
        record = fetch(ctx, entity, value)
    return None


def link_target(ctx: EvalContext, entity: str, segment: str) -> str:
    scope = ctx.scope
    if entity == "user":
        fields = user_fields(scope)
    else:
        fields = scope.fields(entity) if scope is not None else None
    ref = (fields or {}).get(segment)
    if ref is None or not ref.to:
        raise ExpressionError("E320", f"cannot follow '{entity}.{segment}': no scope given")
    return ref.to


# -- functions ----------------------------------------------------------------------------


def call(ctx: EvalContext, name: str, args: list[Any]) -> Any:
    """A function on its evaluated arguments (all but `today()` and `now()`, which take
    none): null in, null out, but for coalesce, len, has_role and lookup."""
    if name == "coalesce":
        return next((a for a in args if a is not None), None)
    if name == "len":
        return 0 if args[0] is None else len(args[0])
    if name == "has_role" and ctx.user is None and args[0] is not None:
        return False
    if name == "lookup":
        return lookup(ctx, *args)
    if any(a is None for a in args):
        return None
    return FUNCTIONS[name](ctx, *args)


def lookup(ctx: EvalContext, entity: str, field: str, value: Any) -> Any:
    """The lowest id of the `entity` records whose `field` equals `value` (the fetch given by
    the runtime answers `find`); null when none does or `value` is null."""
    if value is None:
        return None
    find = getattr(ctx.fetch, "find", None)
    if find is None:
        raise ExpressionError("E320", f"cannot look up '{entity}' records: no database")
    return find(entity, field, normalize(value))


def _contains(ctx: EvalContext, container: Any, part: Any) -> bool:
    if isinstance(container, str):
        return isinstance(part, str) and part in container
    return any(compare("==", part, item) for item in container)


def _right(ctx: EvalContext, s: str, n: Any) -> str:
    count = int(n)
    return s[-count:] if count > 0 else ""


def _mid(ctx: EvalContext, s: str, start: Any, length: Any) -> str:
    first = max(int(start), 1) - 1
    return s[first:first + max(int(length), 0)]


def _round(ctx: EvalContext, x: Any, digits: int = 0) -> Any:
    if isinstance(x, int):
        return x
    try:
        return x.quantize(Decimal(1).scaleb(-int(digits)), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return x


# the functions with the null rule (any null argument gives null), as f(ctx, *arguments)
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "days": lambda ctx, n: timedelta(seconds=int(Decimal(n) * 86400)),
    "hours": lambda ctx, n: timedelta(seconds=int(Decimal(n) * 3600)),
    "days_since": lambda ctx, d: (ctx.today - date_part(d)).days,
    "lower": lambda ctx, s: s.lower(),
    "upper": lambda ctx, s: s.upper(),
    "contains": _contains,
    "trim": lambda ctx, s: s.strip(" "),
    "left": lambda ctx, s, n: s[:max(int(n), 0)],
    "right": _right,
    "mid": _mid,
    "replace": lambda ctx, s, old, new: s.replace(old, new) if old else s,
    "pow": lambda ctx, x, y: power(x, y),
    "has_role": lambda ctx, role: role in ctx.user.roles,
    "round": _round,
    "min": lambda ctx, *args: min(args),
    "max": lambda ctx, *args: max(args),
    "day": lambda ctx, d: date_part(d).day,
    "week": lambda ctx, d: date_part(d).isocalendar()[1],
    "month": lambda ctx, d: date_part(d).month,
    "year": lambda ctx, d: date_part(d).year,
}
