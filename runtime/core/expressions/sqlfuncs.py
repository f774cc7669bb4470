"""Dialect-specific SQL constructs for the expression compiler (SQLite and PostgreSQL).

On SQLite, dates are ISO 'YYYY-MM-DD' text and datetimes 'YYYY-MM-DD HH:MM:SS.ffffff' text
(how sa.Date and sa.DateTime store them), booleans are 0/1. On PostgreSQL, datetimes are
normalised to `timestamp without time zone` in UTC. Durations are whole seconds (integers).
"""

from __future__ import annotations

import math

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class _Construct(FunctionElement):
    inherit_cache = True

    def __init__(self, *args, type_=None):
        super().__init__(*args)
        if type_ is not None:
            self.type = type_


def _args(compiler, element, **kw) -> list[str]:
    return [compiler.process(arg, **kw) for arg in element.clauses]


def _pg_tz_aware(element) -> bool:
    return isinstance(element.type, sa.DateTime) and bool(element.type.timezone)


class DtNorm(_Construct):
    """A datetime value, as naive UTC on PostgreSQL."""

    inherit_cache = True
    name = "crm_dt_norm"
    type = sa.DateTime()


@compiles(DtNorm)
def _dt_norm(element, compiler, **kw):
    return _args(compiler, element, **kw)[0]


@compiles(DtNorm, "postgresql")
def _dt_norm_pg(element, compiler, **kw):
    (arg,) = element.clauses
    text = compiler.process(arg, **kw)
    return f"timezone('UTC', {text})" if _pg_tz_aware(arg) else text


class DatePart(_Construct):
    """The calendar day of a (normalised) datetime."""

    inherit_cache = True
    name = "crm_date_part"
    type = sa.Date()


@compiles(DatePart)
def _date_part(element, compiler, **kw):
    return f"substr({_args(compiler, element, **kw)[0]}, 1, 10)"


@compiles(DatePart, "postgresql")
def _date_part_pg(element, compiler, **kw):
    return f"CAST({_args(compiler, element, **kw)[0]} AS DATE)"


class TextOrder(_Construct):
    """Text compared by code point (PostgreSQL collations would otherwise differ)."""

    inherit_cache = True
    name = "crm_text_order"
    type = sa.String()


@compiles(TextOrder)
def _text_order(element, compiler, **kw):
    return _args(compiler, element, **kw)[0]


@compiles(TextOrder, "postgresql")
def _text_order_pg(element, compiler, **kw):
    return f'({_args(compiler, element, **kw)[0]}) COLLATE "C"'


class Div(_Construct):
    """a / b as a non-integer division; null when b is zero."""

    inherit_cache = True
    name = "crm_div"
    type = sa.Numeric()


@compiles(Div)
def _div(element, compiler, **kw):
    a, b = _args(compiler, element, **kw)
    return f"(CAST({a} AS REAL) / NULLIF({b}, 0))"


@compiles(Div, "postgresql")
def _div_pg(element, compiler, **kw):
    a, b = _args(compiler, element, **kw)
    return f"(CAST({a} AS NUMERIC) / NULLIF({b}, 0))"


class Mod(_Construct):
    """a % b with the sign of a (truncating); null when b is zero."""

    inherit_cache = True
    name = "crm_mod"
    type = sa.Numeric()


@compiles(Mod)
def _mod(element, compiler, **kw):
    a, b = _args(compiler, element, **kw)
    return f"(({a}) - ({b}) * CAST(CAST({a} AS REAL) / NULLIF({b}, 0) AS INTEGER))"


@compiles(Mod, "postgresql")
def _mod_pg(element, compiler, **kw):
    a, b = _args(compiler, element, **kw)
    return f"(({a}) {_pct(compiler)} NULLIF({b}, 0))"


class Trunc(_Construct):
    """A number truncated towards zero to an integer."""

    inherit_cache = True
    name = "crm_trunc"
    type = sa.Integer()


@compiles(Trunc)
def _trunc(element, compiler, **kw):
    return f"CAST({_args(compiler, element, **kw)[0]} AS INTEGER)"


@compiles(Trunc, "postgresql")
def _trunc_pg(element, compiler, **kw):
    return f"CAST(trunc({_args(compiler, element, **kw)[0]}) AS BIGINT)"


def _pct(compiler) -> str:
    """The modulo operator as it must be written for this driver's parameter style."""
    return "%%" if compiler.dialect.paramstyle in ("format", "pyformat") else "%"


def _floor_days(seconds: str, pct: str = "%") -> str:
    # floor(seconds / 86400) with integer arithmetic only; % takes the sign of the dividend.
    return f"((({seconds}) - ((({seconds}) {pct} 86400) + 86400) {pct} 86400) / 86400)"


class DateAdd(_Construct):
    """date + seconds, moving by whole days (floor), as Python's date + timedelta does."""

    inherit_cache = True
    name = "crm_date_add"
    type = sa.Date()


@compiles(DateAdd)
def _date_add(element, compiler, **kw):
    d, s = _args(compiler, element, **kw)
    return f"date({d}, CAST({_floor_days(s)} AS TEXT) || ' days')"


@compiles(DateAdd, "postgresql")
def _date_add_pg(element, compiler, **kw):
    d, s = _args(compiler, element, **kw)
    return f"(CAST({d} AS DATE) + CAST({_floor_days(s, _pct(compiler))} AS INTEGER))"


class DateTimeAdd(_Construct):
    """datetime + seconds."""

    inherit_cache = True
    name = "crm_datetime_add"
    type = sa.DateTime()


@compiles(DateTimeAdd)
def _datetime_add(element, compiler, **kw):
    d, s = _args(compiler, element, **kw)
    return (f"(strftime('%Y-%m-%d %H:%M:%S', {d}, CAST({s} AS TEXT) || ' seconds') || "
            f"coalesce(nullif(substr({d}, 20), ''), '.000000'))")


@compiles(DateTimeAdd, "postgresql")
def _datetime_add_pg(element, compiler, **kw):
    d, s = _args(compiler, element, **kw)
    return f"({d} + ({s}) * INTERVAL '1 second')"


class DateDiff(_Construct):
    """date - date in seconds (whole days)."""

    inherit_cache = True
    name = "crm_date_diff"
    type = sa.Integer()


@compiles(DateDiff)
def _date_diff(element, compiler, **kw):
    a, b = _args(compiler, element, **kw)
    return f"(CAST(julianday({a}) - julianday({b}) AS INTEGER) * 86400)"


@compiles(DateDiff, "postgresql")
def _date_diff_pg(element, compiler, **kw):
    a, b = _args(compiler, element, **kw)
    return f"((CAST({a} AS DATE) - CAST({b} AS DATE)) * 86400)"


class DaysBetween(_Construct):
    """Whole days from b to a (two dates)."""

    inherit_cache = True
    name = "crm_days_between"
    type = sa.Integer()


@compiles(DaysBetween)
def _days_between(element, compiler, **kw):
    a, b = _args(compiler, element, **kw)
    return f"CAST(julianday({a}) - julianday({b}) AS INTEGER)"


@compiles(DaysBetween, "postgresql")
def _days_between_pg(element, compiler, **kw):
    a, b = _args(compiler, element, **kw)
    return f"(CAST({a} AS DATE) - CAST({b} AS DATE))"


class DateField(_Construct):
    """day, week (ISO), month or year of a date, as an integer; the first argument is the
    part name as a literal string."""

    inherit_cache = True
    name = "crm_date_field"
    type = sa.Integer()

    def __init__(self, part: str, value):
        super().__init__(sa.literal_column(f"'{part}'"), value)
        self.part = part


_SQLITE_PARTS = {"day": "%d", "month": "%m", "year": "%Y"}


@compiles(DateField)
def _date_field(element, compiler, **kw):
    d = _args(compiler, element, **kw)[1]
    if element.part == "week":
        thursday = (f"date({d}, '-' || ((CAST(strftime('%w', {d}) AS INTEGER) + 6) % 7) "
                    f"|| ' days', '+3 days')")
        return f"((CAST(strftime('%j', {thursday}) AS INTEGER) - 1) / 7 + 1)"
    return f"CAST(strftime('{_SQLITE_PARTS[element.part]}', {d}) AS INTEGER)"


@compiles(DateField, "postgresql")
def _date_field_pg(element, compiler, **kw):
    d = _args(compiler, element, **kw)[1]
    return f"CAST(EXTRACT({element.part.upper()} FROM CAST({d} AS DATE)) AS INTEGER)"


class Contains(_Construct):
    """Whether text a contains text b (case-sensitive); null when either is null."""

    inherit_cache = True
    name = "crm_contains"
    type = sa.Boolean()


@compiles(Contains)
def _contains(element, compiler, **kw):
    a, b = _args(compiler, element, **kw)
    return f"(instr({a}, {b}) > 0)"


@compiles(Contains, "postgresql")
def _contains_pg(element, compiler, **kw):
    a, b = _args(compiler, element, **kw)
    return f"(strpos({a}, {b}) > 0)"


class Round(_Construct):
    """round(x, n), halves away from zero."""

    inherit_cache = True
    name = "crm_round"
    type = sa.Numeric()


@compiles(Round)
def _round(element, compiler, **kw):
    x, n = _args(compiler, element, **kw)
    return f"round({x}, {n})"


@compiles(Round, "postgresql")
def _round_pg(element, compiler, **kw):
    x, n = _args(compiler, element, **kw)
    return f"round(CAST({x} AS NUMERIC), {n})"


class Least(_Construct):
    """min of several values; null when any of them is null."""

    inherit_cache = True
    name = "crm_least"
    which = "min"


class Greatest(_Construct):
    """max of several values; null when any of them is null."""

    inherit_cache = True
    name = "crm_greatest"
    which = "max"


def _extreme(element, compiler, **kw):
    # SQLite's multi-argument min()/max() already return NULL when any argument is NULL.
    return f"{element.which}({', '.join(_args(compiler, element, **kw))})"


def _extreme_pg(element, compiler, **kw):
    args = _args(compiler, element, **kw)
    func = "LEAST" if element.which == "min" else "GREATEST"
    any_null = " OR ".join(f"({a}) IS NULL" for a in args)
    return f"(CASE WHEN {any_null} THEN NULL ELSE {func}({', '.join(args)}) END)"


for _cls in (Least, Greatest):
    compiles(_cls)(_extreme)
    compiles(_cls, "postgresql")(_extreme_pg)


class Pow(_Construct):
    """pow(x, y) in binary floating point, as `builder.expressions.evaluator.power`: null for 0
    to a negative power, a negative number to a fractional power and results of 1e300 or more;
    0 for results below 1e-300. On SQLite this needs pow() and floor(): see
    `register_sqlite_functions`."""

    inherit_cache = True
    name = "crm_pow"
    type = sa.Numeric()


@compiles(Pow)
def _pow(element, compiler, **kw):
    x, y = _args(compiler, element, **kw)
    p = f"pow({x}, {y})"
    return (f"(CASE WHEN ({x}) IS NULL OR ({y}) IS NULL THEN NULL"
            f" WHEN ({x}) = 0 AND ({y}) < 0 THEN NULL"
            f" WHEN ({x}) < 0 AND ({y}) <> floor({y}) THEN NULL"
            f" WHEN abs({p}) >= 1e300 THEN NULL WHEN abs({p}) < 1e-300 THEN 0 ELSE {p} END)")


@compiles(Pow, "postgresql")
def _pow_pg(element, compiler, **kw):
    x, y = _args(compiler, element, **kw)
    xf, yf = f"CAST({x} AS DOUBLE PRECISION)", f"CAST({y} AS DOUBLE PRECISION)"
    p = f"power({xf}, {yf})"
    magnitude = f"{yf} * ln(NULLIF(abs({xf}), 0))"  # guards power() against its range errors
    # float8 as text is its shortest exact decimal (extra_float_digits >= 1, the default), the
    # same digits as Python's repr(); a plain cast to numeric would keep only 15 digits
    return (f"(CASE WHEN ({x}) IS NULL OR ({y}) IS NULL THEN NULL"
            f" WHEN {xf} = 0 AND {yf} < 0 THEN NULL"
            f" WHEN {xf} < 0 AND {yf} <> floor({yf}) THEN NULL"
            f" WHEN {magnitude} > 700 THEN NULL WHEN {magnitude} < -700 THEN 0"
            f" WHEN abs({p}) >= 1e300 THEN NULL WHEN abs({p}) < 1e-300 THEN 0"
            f" ELSE CAST(CAST({p} AS TEXT) AS NUMERIC) END)")


_MAX_CHARS = 1_000_000_000  # character positions and counts are clamped to this


def _clamp(n: str, low: int) -> str:
    """A number as a whole count (truncated towards zero) from `low` to _MAX_CHARS."""
    return f"min(max(CAST({n} AS INTEGER), {low}), {_MAX_CHARS})"


def _clamp_pg(n: str, low: int) -> str:
    return (f"CAST(LEAST(GREATEST(trunc(CAST({n} AS NUMERIC)), {low}), {_MAX_CHARS}) "
            f"AS INTEGER)")


def _null_guard(args: list[str], then: str) -> str:
    nulls = " OR ".join(f"({a}) IS NULL" for a in args)
    return f"(CASE WHEN {nulls} THEN NULL ELSE {then} END)"


class Mid(_Construct):
    """mid(s, start, length): `length` characters from position `start` (1-based); a start
    below 1 counts as 1, a negative length as 0; fractions are truncated."""

    inherit_cache = True
    name = "crm_mid"
    type = sa.String()


@compiles(Mid)
def _mid(element, compiler, **kw):
    args = _args(compiler, element, **kw)
    s, start, length = args
    return _null_guard(args, f"substr({s}, {_clamp(start, 1)}, {_clamp(length, 0)})")


@compiles(Mid, "postgresql")
def _mid_pg(element, compiler, **kw):
    args = _args(compiler, element, **kw)
    s, start, length = args
    return _null_guard(args, f"substr({s}, {_clamp_pg(start, 1)}, {_clamp_pg(length, 0)})")


class Right(_Construct):
    """right(s, n): the last n characters (all of s when n is larger, '' when n <= 0)."""

    inherit_cache = True
    name = "crm_right"
    type = sa.String()


@compiles(Right)
def _right(element, compiler, **kw):
    args = _args(compiler, element, **kw)
    s, n = args
    return _null_guard(args, f"substr({s}, max(length({s}) - {_clamp(n, 0)} + 1, 1), "
                             f"{_clamp(n, 0)})")


@compiles(Right, "postgresql")
def _right_pg(element, compiler, **kw):
    args = _args(compiler, element, **kw)
    s, n = args
    return _null_guard(args, f"substr({s}, GREATEST(char_length({s}) - {_clamp_pg(n, 0)} + 1, "
                             f"1), {_clamp_pg(n, 0)})")


class Replace(_Construct):
    """replace(s, old, new): every `old` in s replaced; an empty `old` changes nothing. Null
    when any argument is (SQLite's replace(s, '', NULL) would give s)."""

    inherit_cache = True
    name = "crm_replace"
    type = sa.String()


@compiles(Replace)
def _replace(element, compiler, **kw):
    args = _args(compiler, element, **kw)
    return _null_guard(args, f"replace({', '.join(args)})")


def register_sqlite_functions(dbapi_connection) -> None:  # noqa: ANN001
    """Give a SQLite connection the math functions the compiler uses (pow, floor) when the
    linked SQLite was built without them; deterministic Python versions of the C ones."""
    try:
        dbapi_connection.execute("SELECT pow(2, 3), floor(1.5)").fetchall()
        return
    except Exception:  # noqa: BLE001 - sqlite3.OperationalError: no such function
        pass
    dbapi_connection.create_function("pow", 2, _sqlite_pow, deterministic=True)
    dbapi_connection.create_function("floor", 1, _sqlite_floor, deterministic=True)


def _sqlite_pow(x, y):  # noqa: ANN001, ANN202
    if x is None or y is None:
        return None
    try:
        return math.pow(x, y)
    except OverflowError:
        return math.inf
    except (ValueError, TypeError):
        return None


def _sqlite_floor(x):  # noqa: ANN001, ANN202
    if x is None:
        return None
    if isinstance(x, int):
        return x
    try:
        return float(math.floor(x))
    except (ValueError, OverflowError, TypeError):
        return None
