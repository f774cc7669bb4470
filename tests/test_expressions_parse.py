"""Parsing and checking of expressions (SPEC section 8): valid input, refused input, offsets."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest

from builder.expressions import (
    CheckContext,
    ExpressionError,
    FieldRef,
    check,
    infer_type,
    parse,
    parse_slot,
    template_names,
)
from builder.expressions.nodes import Binary, BoolOp, Call, Compare, Literal, Name

FIELDS = {
    "offer": {
        "id": FieldRef("id", "integer"),
        "owner": FieldRef("owner", "link", "user"),
        "created_at": FieldRef("created_at", "datetime"),
        "last_activity_at": FieldRef("last_activity_at", "datetime"),
        "status": FieldRef("status", "choice"),
        "property": FieldRef("property", "link", "property"),
        "amount": FieldRef("amount", "money"),
        "discount_pct": FieldRef("discount_pct", "percent"),
        "financing": FieldRef("financing", "choice"),
        "valid_until": FieldRef("valid_until", "date"),
        "notes": FieldRef("notes", "longtext"),
        "tags": FieldRef("tags", "multichoice"),
        "urgent": FieldRef("urgent", "boolean"),
    },
    "property": {
        "id": FieldRef("id", "integer"),
        "price": FieldRef("price", "money"),
        "city": FieldRef("city", "text"),
        "agent": FieldRef("agent", "link", "user"),
    },
    "user": {
        "id": FieldRef("id", "integer"),
        "username": FieldRef("username", "text"),
        "team": FieldRef("team", "link", "team"),
        "manager": FieldRef("manager", "link", "user"),
        "region": FieldRef("region", "text"),
    },
    "team": {"id": FieldRef("id", "integer"), "name": FieldRef("name", "text")},
}


class Scope:
    def fields(self, entity):
        return FIELDS.get(entity)


COND = CheckContext("offer")
VALUE = CheckContext("offer", boolean=False)

VALID = [
    "amount > 0",
    "status == 'refused'",
    "financing != 'mortgage' or amount >= 10000",
    "(property.price - amount) / property.price * 100",
    "today() + days(7)",
    "owner == user.id or user.team == owner.team",
    "owner != null and days_since(coalesce(last_activity_at, created_at)) >= 7",
    "owner == null",
    "status == 'pending' and valid_until < today()",
    "status not in ['won', 'lost']",
    "discount_pct > 5",
    "true",
    "False",
    "None",
    "null",
    "not urgent",
    "-amount < -5",
    "amount % 2 == 0",
    "'a' + 'b'",
    "1.5 * amount",
    "amount if urgent else 0",
    "len(notes) > 10",
    "lower(status) == upper(status)",
    "contains(notes, 'vip')",
    "has_role('agent')",
    "round(amount, 2)",
    "round(amount)",
    "min(amount, 5, 7)",
    "max(amount, property.price)",
    "day(valid_until) + week(valid_until) + month(valid_until) + year(valid_until)",
    "now() - hours(4)",
    "'vip' in tags",
    "'agent' in user.roles",
    "old.amount != amount",
    "1 < amount < 10",
    "[1, 2, 3]",
    "  amount  >  0  ",
    "amount >\n  0",
    "user.team.name == 'North'",
    "\"double\" == status",
    "pow(1 + amount / 1200, -12)",
    "'•••• ' + right(notes, 4)",
    "left(status, 1) + mid(notes, 2, 3) == trim(replace(notes, 'a', 'b'))",
]


@pytest.mark.parametrize("source", VALID)
def test_valid_expressions_parse(source):
    expr = parse(source)
    assert expr.source == source


def test_tree_shape_and_names():
    expr = parse("(property.price - amount) / property.price * 100")
    assert isinstance(expr.tree, Binary) and expr.tree.op == "*"
    assert expr.names == frozenset({("property", "price"), ("amount",)})
    assert not expr.uses_old and not expr.uses_user
    expr = parse("old.owner != owner and user.team == 1")
    assert expr.uses_old and expr.uses_user
    assert ("old", "owner") in expr.names and ("user", "team") in expr.names
    assert parse("has_role('x')").uses_user


def test_literals_and_chained_comparisons():
    assert parse("1.25").tree == Literal(Decimal("1.25"), 0)
    assert parse("true").tree == Literal(True, 0)
    assert parse("null").tree == Literal(None, 0)
    tree = parse("1 < a <= 3").tree
    assert isinstance(tree, BoolOp) and [c.op for c in tree.values] == ["<", "<="]
    assert all(isinstance(c, Compare) for c in tree.values)
    call = parse("coalesce(a, b, 1)").tree
    assert isinstance(call, Call) and call.func == "coalesce" and len(call.args) == 3
    name = parse("a . b").tree
    assert isinstance(name, Name) and name.path == ("a", "b") and name.offsets == (0, 4)


INVALID = [
    # (source, code, offset)
    ("amount >", "E301", 0),
    ("(amount", "E301", 0),
    ("amount = 5", "E301", 7),
    ("", "E301", 0),
    ("   ", "E301", 0),
    ("import os", "E301", 0),
    ("amount ** 2", "E302", 7),
    ("amount // 2", "E302", 7),
    ("amount & 1", "E302", 7),
    ("a | b", "E302", 2),
    ("~amount", "E302", 0),
    ("+amount", "E302", 0),
    ("tags[0]", "E302", 0),
    ("lambda: 1", "E302", 0),
    ("[x for x in tags]", "E302", 0),
    ("f'{amount}'", "E302", 0),
    ("(a := 1)", "E302", 1),
    ("status.upper()", "E302", 7),
    ("'abc'.upper", "E302", 5),
    ("amount is None", "E302", 7),
    ("amount is not None", "E302", 7),
    ("(1, 2)", "E302", 0),
    ("{1: 2}", "E302", 0),
    ("{1, 2}", "E302", 0),
    ("round(amount, n=2)", "E302", 14),
    ("min(*tags)", "E302", 4),
    ("b'x' == status", "E302", 0),
    ("1j", "E302", 0),
    ("amount # comment", "E302", 7),
    ("old", "E302", 0),
    ("user == 1", "E302", 0),
    ("x if y else old", "E302", 12),
    ("print(amount)", "E303", 0),
    ("lenn(notes)", "E303", 0),
    ("__import__('os')", "E303", 0),
    ("len(a, b)", "E303", 0),
    ("today(1)", "E303", 0),
    ("contains(a)", "E303", 0),
    ("pow(amount)", "E303", 0),
    ("left(notes)", "E303", 0),
    ("right(notes, 1, 2)", "E303", 0),
    ("mid(notes, 1)", "E303", 0),
    ("substr(notes, 1, 2)", "E303", 0),
    ("replace(notes, 'a')", "E303", 0),
    ("trim()", "E303", 0),
    ("amount > 0 and " + "x" * 2000, "E304", 2000),
    ("(" * 60 + "1" + ")" * 60, "E304", 50),
    ("-" * 60 + "1", "E304", 50),
    ("not " * 60 + "urgent", "E304", 200),
    ("'é' ** 2", "E302", 4),
    ("  amount ** 2", "E302", 9),
]


@pytest.mark.parametrize(("source", "code", "offset"), INVALID)
def test_invalid_expressions(source, code, offset):
    with pytest.raises(ExpressionError) as info:
        parse(source)
    assert (info.value.code, info.value.offset) == (code, offset)
    assert info.value.message


def test_hints():
    with pytest.raises(ExpressionError) as info:
        parse("lenn(notes)")
    assert info.value.hint == "did you mean 'len'?"
    with pytest.raises(ExpressionError) as info:
        parse("amount is None")
    assert "== null" in info.value.hint


def test_deep_input_never_overflows_the_stack():
    for source in ["[" * 1500 + "]" * 1500, "-" * 1999 + "1", "not " * 499 + "a",
                   "a" + " + a" * 499]:
        with pytest.raises(ExpressionError) as info:
            parse(source)
        assert info.value.code == "E304"


def test_non_text_is_refused():
    with pytest.raises(ExpressionError):
        parse(5)  # type: ignore[arg-type]


# -- checking ---------------------------------------------------------------------------

CHECKS = [
    # (source, context, [(code, offset)])
    ("amount > 0", COND, []),
    ("amonut > 0", COND, [("E310", 0)]),
    ("property.prise > 0", COND, [("E310", 9)]),
    ("amount.price > 0", COND, [("E311", 0)]),
    ("notes.x == 1", COND, [("E311", 0)]),
    ("old.amount > amount", COND, [("E312", 0)]),
    ("old.amount > amount", CheckContext("offer", allow_old=True), []),
    ("user.id == owner", CheckContext("offer", allow_user=False), [("E312", 0)]),
    ("'abc' + 1", VALUE, [("E313", 6)]),
    ("valid_until > 5", COND, [("E313", 12)]),
    ("amount", COND, [("E313", 0)]),
    ("amount", VALUE, []),
    ("not amount", COND, [("E313", 0)]),
    ("urgent and status", COND, [("E313", 11)]),
    ("status in 'abc'", COND, [("E313", 10)]),
    ("amount if status else 1", VALUE, [("E313", 10)]),
    ("amount if urgent else 'x'", VALUE, [("E313", 0)]),
    ("lower(amount) == 'x'", COND, [("E313", 6)]),
    ("days(status)", VALUE, [("E313", 5)]),
    ("round(amount, 1.5)", VALUE, [("E313", 14)]),
    ("min(urgent, true)", VALUE, [("E313", 4), ("E313", 12)]),
    ("created_at - created_at", VALUE, [("E313", 11)]),
    ("valid_until - today() > days(3)", COND, []),
    ("valid_until < created_at", COND, []),
    ("amount == null", COND, []),
    ("status in [1, 'a']", COND, [("E313", 14), ("E313", 11)]),
    ("user.team.name == 'x' and user.roles == null", COND, []),
    ("user.roles.x", VALUE, [("E311", 11)]),
    ("user.regoin", VALUE, [("E310", 5)]),
    ("'vip' in tags", CheckContext("offer", require_sql=True), [("E314", 9)]),
    ("len(tags) > 1", CheckContext("offer", require_sql=True), [("E314", 4)]),
    ("has_role('agent') or 'a' in user.roles", CheckContext("offer", require_sql=True), []),
    ("old.amount > 1", CheckContext("offer", allow_old=True, require_sql=True), [("E314", 0)]),
    ("amount > 1", CheckContext("nothing"), [("E310", 0)]),
    ("pow(amount, 2) > 1", COND, []),
    ("pow(status, 2)", VALUE, [("E313", 4)]),
    ("pow(2, valid_until)", VALUE, [("E313", 7)]),
    ("pow(amount, null)", VALUE, []),
    ("lookup('property', 'price', amount) == property", COND, []),
    ("lookup('property', 'price', null)", VALUE, []),
    ("lookup(status, 'price', 1)", VALUE, [("E313", 7)]),
    ("lookup('propety', 'price', 1)", VALUE, [("E310", 7)]),
    ("lookup('property', 'prise', 1)", VALUE, [("E310", 19)]),
    ("lookup('property', 'price', 'x')", VALUE, [("E313", 28)]),
    ("lookup('property', 'price', 1) + 'x'", VALUE, [("E313", 31)]),
    ("left(amount, 2)", VALUE, [("E313", 5)]),
    ("right(status, '2')", VALUE, [("E313", 14)]),
    ("mid(status, 1, days(1))", VALUE, [("E313", 15)]),
    ("mid(status, urgent, 2)", VALUE, [("E313", 12)]),
    ("replace(status, 1, 'x')", VALUE, [("E313", 16)]),
    ("trim(tags)", VALUE, [("E313", 5)]),
    ("left(status, 2) + 1", VALUE, [("E313", 16)]),
    ("pow(amount, 2) + 'x'", VALUE, [("E313", 15)]),
]


@pytest.mark.parametrize(("source", "ctx", "expected"), CHECKS)
def test_check(source, ctx, expected):
    errors = check(parse(source), Scope(), ctx)
    assert [(e.code, e.offset) for e in errors] == expected


def test_unknown_field_hint():
    (error,) = check(parse("amonut > 0"), Scope(), COND)
    assert error.hint == "did you mean 'amount'?"
    (error,) = check(parse("property.prise > 0"), Scope(), COND)
    assert error.hint == "did you mean 'price'?" and "'property'" in error.message


@pytest.mark.parametrize(("source", "kind"), [
    ("amount", "number"), ("status", "text"), ("urgent", "bool"), ("valid_until", "date"),
    ("created_at", "datetime"), ("days(1)", "duration"), ("tags", "list"), ("null", "null"),
    ("owner", "number"), ("property.city", "text"), ("today() + days(1)", "date"),
    ("now() - hours(1)", "datetime"), ("valid_until - today()", "duration"),
    ("amount + null", "number"), ("coalesce(null, 'x')", "text"), ("user.roles", "list"),
    ("user.team.name", "text"), ("amount > 1", "bool"), ("days_since(created_at)", "number"),
    ("pow(amount, 2)", "number"), ("left(status, 2)", "text"), ("right(status, 2)", "text"),
    ("mid(status, 1, 2)", "text"), ("trim(status)", "text"), ("replace(status, 'a', 'b')", "text"),
])
def test_infer_type(source, kind):
    assert infer_type(parse(source), Scope(), VALUE) == kind


# -- value slots ------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "kind", "names"), [
    ("=today() + days(7)", "expression", ()),
    ("{property} — {amount}", "template", (("property",), ("amount",))),
    ("Lead returned: {name}", "template", (("name",),)),
    ("{ owner.team }", "template", (("owner", "team"),)),
    ("{{literal}}", "template", ()),
    ("cash", "literal", ()),
    ("{0000}", "literal", ()),
    (5, "literal", ()),
    (None, "literal", ()),
])
def test_parse_slot(value, kind, names):
    slot = parse_slot(value)
    assert slot.kind == kind
    assert slot.template_names == names
    assert (slot.expression is not None) == (kind == "expression")


def test_slot_expression_errors_point_into_the_whole_string():
    with pytest.raises(ExpressionError) as info:
        parse_slot("=amount ** 2")
    assert (info.value.code, info.value.offset) == ("E302", 8)


def test_template_names():
    assert template_names("{a} {b.c} {a} {{d}}") == (("a",), ("b", "c"))


def test_builder_imports_no_flask_or_sqlalchemy():
    code = ("import sys, builder.expressions; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('flask', 'sqlalchemy')]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_pow_is_the_hint_for_the_power_operator():
    with pytest.raises(ExpressionError) as info:
        parse("amount ** 2")
    assert info.value.hint == "use pow(x, y)"
    with pytest.raises(ExpressionError) as info:
        parse("substr(notes, 1, 2)")
    assert info.value.code == "E303"
