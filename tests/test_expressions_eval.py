"""The Python evaluator: every operator and function, and the null rules of SPEC section 8."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import yaml

from builder.expressions import (
    EvalContext,
    ExpressionError,
    FieldRef,
    UserInfo,
    ValueSlot,
    evaluate,
    evaluate_condition,
    parse,
    parse_repeated_slot,
    parse_slot,
    render_template,
    slot_value,
)
from builder.expressions.slots import _parse_text_slot
from builder.packs import SHIPPED_DIR

FIELDS = {
    "offer": {
        "amount": FieldRef("amount", "money"),
        "qty": FieldRef("qty", "integer"),
        "none": FieldRef("none", "integer"),
        "name": FieldRef("name", "text"),
        "urgent": FieldRef("urgent", "boolean"),
        "valid_until": FieldRef("valid_until", "date"),
        "created_at": FieldRef("created_at", "datetime"),
        "tags": FieldRef("tags", "multichoice"),
        "property": FieldRef("property", "link", "property"),
        "owner": FieldRef("owner", "link", "user"),
    },
    "property": {"price": FieldRef("price", "money"), "agent": FieldRef("agent", "link", "user")},
    "user": {"username": FieldRef("username", "text"), "team": FieldRef("team", "link", "team"),
             "region": FieldRef("region", "text")},
    "team": {"name": FieldRef("name", "text")},
}


class Scope:
    def fields(self, entity):
        return FIELDS.get(entity)


NOW = datetime(2024, 5, 6, 12, 30, tzinfo=UTC)  # a Monday, ISO week 19
RECORD = {
    "amount": Decimal("150.50"), "qty": 7, "none": None, "name": "Anna Berg", "urgent": True,
    "valid_until": date(2024, 5, 1), "created_at": datetime(2024, 5, 4, 23, 0, tzinfo=UTC),
    "tags": ["vip", "new"], "property": 10, "owner": 2,
}
DB = {
    ("property", 10): {"price": Decimal("200"), "agent": 3},
    ("user", 3): {"username": "carl", "team": 5, "region": "north"},
    ("team", 5): {"name": "North"},
}
USER = UserInfo(id=2, username="anna", roles=frozenset({"agent"}), team=5,
                fields={"region": "south"})


def ctx(record=RECORD, **kw) -> EvalContext:
    kw.setdefault("user", USER)
    return EvalContext(record=record, entity="offer", now=NOW, scope=Scope(),
                       fetch=lambda entity, key: DB.get((entity, key)), **kw)


CASES = [
    # literals and arithmetic
    ("1 + 2", 3), ("7 - 10", -3), ("3 * 4", 12), ("7 / 2", Decimal("3.5")),
    ("7 % 3", 1), ("-7 % 3", -1), ("7 % -3", 1), ("7.5 % 2", Decimal("1.5")),
    ("1 / 0", None), ("1 % 0", None), ("amount * 2", Decimal("301.00")),
    ("amount + 0.5", Decimal("151.00")), ("qty / 2", Decimal("3.5")), ("-qty", -7),
    ("'a' + 'b'", "ab"), ("2 + 3 * 4", 14), ("(2 + 3) * 4", 20),
    # nulls in arithmetic
    ("none + 1", None), ("-none", None), ("name + none", None), ("valid_until + none", None),
    # comparisons and null
    ("qty > 5", True), ("qty >= 7", True), ("qty < 7", False), ("qty <= 6", False),
    ("qty == 7", True), ("qty != 7", False), ("amount == 150.5", True),
    ("none > 1", False), ("none < 1", False), ("none == 1", False), ("none != 1", False),
    ("none == null", True), ("none != null", False), ("null == none", True),
    ("qty == null", False), ("qty != null", True), ("none == none", False),
    ("'B' < 'a'", True), ("'abc' == 'ABC'", False), ("1 < qty < 10", True),
    # boolean operators
    ("urgent and qty > 1", True), ("urgent and none > 1", False), ("none or urgent", True),
    ("not none", True), ("not urgent", False), ("not (none > 1)", True),
    ("none and none", False), ("none or none", False),
    ("1 if urgent else 2", 1), ("1 if none else 2", 2), ("1 if null else 2", 2),
    # membership
    ("qty in [1, 7]", True), ("qty not in [1, 7]", False), ("none in [1, null]", False),
    ("none not in [1, 2]", False), ("qty not in [1, null]", True), ("'vip' in tags", True),
    ("'old' not in tags", True), ("'agent' in user.roles", True), ("qty in []", False),
    # dates and durations
    ("today()", date(2024, 5, 6)), ("now()", NOW),
    ("today() + days(7)", date(2024, 5, 13)), ("today() - days(1)", date(2024, 5, 5)),
    ("today() + hours(30)", date(2024, 5, 7)), ("today() - hours(1)", date(2024, 5, 5)),
    ("days(2) + today()", date(2024, 5, 8)), ("now() - hours(2)", NOW - timedelta(hours=2)),
    ("valid_until - today()", timedelta(days=-5)), ("days(1) + hours(1)", timedelta(hours=25)),
    ("days(1.5)", timedelta(hours=36)), ("-days(1)", timedelta(days=-1)),
    ("days_since(valid_until)", 5), ("days_since(created_at)", 2), ("days_since(none)", None),
    ("valid_until < today()", True), ("valid_until < created_at", True),
    ("created_at > valid_until", True), ("today() == now()", True),
    ("day(valid_until)", 1), ("week(valid_until)", 18), ("month(valid_until)", 5),
    ("year(valid_until)", 2024), ("day(created_at)", 4), ("week(today())", 19),
    ("valid_until - today() < days(0)", True),
    # functions
    ("len(name)", 9), ("len(tags)", 2), ("len(none)", 0), ("len([1, null])", 2),
    ("lower(name)", "anna berg"), ("upper(name)", "ANNA BERG"), ("lower(none)", None),
    ("contains(name, 'Berg')", True), ("contains(name, 'berg')", False),
    ("contains(none, 'x')", None), ("contains(tags, 'vip')", True),
    ("has_role('agent')", True), ("has_role('admin')", False), ("has_role(null)", None),
    ("coalesce(none, qty)", 7), ("coalesce(none, null)", None), ("coalesce(name)", "Anna Berg"),
    ("round(amount)", Decimal("151")), ("round(amount, 1)", Decimal("150.5")),
    ("round(2.25, 1)", Decimal("2.3")), ("round(-2.5)", Decimal("-3")), ("round(qty, 2)", 7),
    ("round(none, 1)", None), ("min(qty, 3, 5)", 3), ("max(qty, amount)", Decimal("150.50")),
    ("min(qty, none)", None), ("max('a', 'b')", "b"), ("days(none)", None),
    # text functions: positions are 1-based; counts are truncated, clamped to the text
    ("left(name, 4)", "Anna"), ("left(name, 0)", ""), ("left(name, -3)", ""),
    ("left(name, 99)", "Anna Berg"), ("left(name, 2.9)", "An"), ("left(none, 2)", None),
    ("left(name, none)", None), ("right(name, 4)", "Berg"), ("right(name, 0)", ""),
    ("right(name, -1)", ""), ("right(name, 99)", "Anna Berg"), ("right(name, 1.5)", "g"),
    ("right(none, 1)", None), ("right('', 3)", ""), ("mid(name, 1, 4)", "Anna"),
    ("mid(name, 6, 99)", "Berg"), ("mid(name, 0, 2)", "An"), ("mid(name, -4, 2)", "An"),
    ("mid(name, 10, 1)", ""), ("mid(name, 3, 0)", ""), ("mid(name, 3, -2)", ""),
    ("mid(name, 2.7, 2.7)", "nn"), ("mid(name, none, 1)", None), ("mid(name, 1, none)", None),
    ("mid('héllo', 2, 1)", "é"), ("trim('  a b  ')", "a b"),
    ("trim(none)", None), ("replace(name, 'n', 'N')", "ANNa Berg"),
    ("replace(name, 'nn', '')", "Aa Berg"), ("replace(name, '', 'x')", "Anna Berg"),
    ("replace('aaa', 'aa', 'b')", "ba"), ("replace(name, none, 'x')", None),
    ("'•••• ' + right('19850412-1234', 4)", "•••• 1234"),
    # pow: the float result read back as its shortest decimal; null in, null out
    ("pow(2, 10)", Decimal("1024")), ("pow(qty, 2)", Decimal("49")),
    ("pow(2, -2)", Decimal("0.25")), ("pow(-2, 3)", Decimal("-8")), ("pow(4, 0.5)", Decimal("2")),
    ("pow(2, 0.5)", Decimal("1.4142135623730951")), ("pow(1.1, 2)", Decimal("1.2100000000000002")),
    ("pow(0, 0)", Decimal("1")), ("pow(0, 3)", Decimal("0")), ("pow(0, -1)", None),
    ("pow(-8, 1 / 3)", None), ("pow(-8, 2.0)", Decimal("64")), ("pow(none, 2)", None),
    ("pow(2, none)", None), ("pow(10, 299)", Decimal("1e299")), ("pow(10, 300)", None),
    ("pow(10, 1000)", None), ("pow(10, -300)", Decimal("1e-300")), ("pow(10, -301)", Decimal(0)),
    ("pow(0.5, 2000)", Decimal(0)),
    ("round(amount * 0.005 / (1 - pow(1 + 0.005, -qty * 12)), 2)", Decimal("2.20")),
    # names: links, old, user
    ("property.price", Decimal("200")), ("property.agent.team.name", "North"),
    ("(property.price - amount) / property.price * 100", Decimal("24.75")),
    ("old.qty", None), ("user.id", 2), ("user.username", "anna"), ("user.team", 5),
    ("user.team.name", "North"), ("user.region", "south"), ("user.roles", ["agent"]),
]


@pytest.mark.parametrize(("source", "expected"), CASES)
def test_evaluate(source, expected):
    result = evaluate(parse(source), ctx())
    assert result == expected
    assert type(result) is type(expected) or isinstance(expected, int | Decimal)


def test_old_values():
    context = ctx(old={"qty": 3, "owner": None})
    assert evaluate(parse("old.qty"), context) == 3
    assert evaluate_condition(parse("old.qty != qty"), context)
    assert evaluate_condition(parse("old.owner == null"), context)


def test_without_user():
    context = ctx(user=None)
    assert evaluate(parse("user.id"), context) is None
    assert evaluate(parse("has_role('agent')"), context) is False
    assert evaluate_condition(parse("owner == user.id"), context) is False


@pytest.mark.parametrize(("source", "expected"), [
    ("qty > 1", True), ("none > 1", False), ("none", False), ("null", False),
    ("contains(none, 'x')", False), ("not contains(none, 'x')", True), ("urgent", True),
])
def test_evaluate_condition(source, expected):
    assert evaluate_condition(parse(source), ctx()) is expected


def test_float_values_mix_with_decimals():
    record = dict(RECORD, amount=0.1)
    assert evaluate(parse("amount + 0.2"), ctx(record)) == Decimal("0.3")
    assert evaluate(parse("amount * 3 == 0.3"), ctx(record)) is True


def test_naive_datetimes_are_utc_and_today_follows_now():
    context = EvalContext(record={"at": datetime(2024, 1, 1, 23, 0)}, entity="offer",
                          now=datetime(2024, 1, 2, 1, 0))
    assert context.today == date(2024, 1, 2)
    assert evaluate(parse("days_since(at)"), context) == 1


def test_following_a_link_needs_fetch():
    context = EvalContext(record=RECORD, entity="offer", scope=Scope())
    with pytest.raises(ExpressionError) as info:
        evaluate(parse("property.price"), context)
    assert info.value.code == "E320"


def test_missing_linked_record_is_null():
    assert evaluate(parse("property.price"), ctx(dict(RECORD, property=99))) is None
    assert evaluate(parse("property.price"), ctx(dict(RECORD, property=None))) is None


@pytest.mark.parametrize(("template", "expected"), [
    ("{name} — {amount}", "Anna Berg — 150.50"),
    ("{none}!", "!"),
    ("{{name}} {name}", "{name} Anna Berg"),
    ("{property.price} {user.username}", "200 anna"),
    ("{valid_until} {urgent} {tags}", "2024-05-01 yes vip, new"),
    ("no fields {0}", "no fields {0}"),
])
def test_render_template(template, expected):
    assert render_template(template, ctx()) == expected


def test_slot_values():
    assert slot_value(parse_slot("=today() + days(7)"), ctx()) == date(2024, 5, 13)
    assert slot_value(parse_slot("Lead {name}"), ctx()) == "Lead Anna Berg"
    assert slot_value(parse_slot(42), ctx()) == 42
    assert slot_value(parse_slot("=old.qty"), ctx(old={"qty": 1})) == 1
    formatted = render_template("{amount}", ctx(), formatter=lambda path, v: f"€{v}")
    assert formatted == "€150.50"


def test_trim_removes_spaces_only():
    record = dict(RECORD, name="\t a\n ")
    assert evaluate(parse("trim(name)"), ctx(record)) == "\t a\n"


def test_plain_text_slots_skip_the_parse_cache():
    """Names and e-mail addresses are literals at once: they would push the demo files'
    `=expressions` out of the cache."""
    before = _parse_text_slot.cache_info().misses
    for text in ("Jane Smith-Quirrel", "jane.quirrel@example.org", "ends = here"):
        assert parse_repeated_slot(text) == parse_slot(text) == ValueSlot("literal", text)
    assert _parse_text_slot.cache_info().misses == before
    assert parse_repeated_slot("Dear {name} quirrel") == parse_slot("Dear {name} quirrel")
    assert parse_repeated_slot("=qty + 9713").kind == "expression"


def test_the_slot_cache_holds_every_expression_of_the_shipped_demo_files():
    """The linker checks the demo files' slots, then the demo loader reads them at each of
    its passes: with fewer places than texts, the cache misses on nearly every one."""
    texts: set[str] = set()
    for path in SHIPPED_DIR.glob("*/data/*"):
        if path.suffix == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as file:
                rows = list(csv.DictReader(file))
        else:
            rows = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        texts.update(v for row in rows for v in row.values() if isinstance(v, str)
                     and (v.startswith("=") or "{" in v or "}" in v))
    assert len(texts) > 1000  # the files were found
    assert _parse_text_slot.cache_info().maxsize >= len(texts)
