"""Property test: an expression compiled to closures (`builder.expressions.compiler`) gives
what walking its tree gives (`evaluator._Evaluator`), for any tree — well typed or not — on
any record: the same value, or the same error, after the same reads of linked records."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from builder.expressions import (
    Binary,
    BoolOp,
    Call,
    Compare,
    EvalContext,
    FieldRef,
    IfElse,
    ListLit,
    Literal,
    Name,
    UserInfo,
    evaluate,
    parse,
)
from builder.expressions.compiler import compile_node, compiled
from builder.expressions.evaluator import _Evaluator
from builder.expressions.nodes import Unary
from builder.expressions.parser import FUNCTIONS

NOW = datetime(2024, 5, 6, 12, 30, tzinfo=UTC)
FIELDS = {
    "deal": {"qty": FieldRef("qty", "integer"), "price": FieldRef("price", "money"),
             "prop": FieldRef("prop", "link", "prop"), "owner": FieldRef("owner", "link", "user")},
    "prop": {"price": FieldRef("price", "money"), "agent": FieldRef("agent", "link", "user")},
    "user": {"team": FieldRef("team", "link", "team"), "region": FieldRef("region", "text")},
    "team": {"name": FieldRef("name", "text")},
}
TABLES = {
    "prop": {1: {"price": Decimal("2.5"), "agent": 7, "city": "Oslo"}, 2: {"price": None}},
    "user": {7: {"team": 3, "region": "north", "username": "ana"}},
    "team": {3: {"name": "Sales"}},
}


class Scope:
    def fields(self, entity: str) -> Any:
        return FIELDS.get(entity)


values = st.one_of(
    st.none(), st.booleans(), st.integers(-30, 30), st.integers(-10**20, 10**20),
    st.decimals(-1000, 1000, places=2), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("Infinity"), Decimal("-Infinity"), Decimal("1E+30")]),
    st.sampled_from(["", "a", "Ab", " b ", "x{y}", "ab,c"]),
    st.dates(date(2024, 4, 1), date(2024, 6, 1)),
    st.datetimes(datetime(2024, 4, 1), datetime(2024, 6, 1)),
    st.datetimes(datetime(2024, 4, 1), datetime(2024, 6, 1), timezones=st.just(UTC)),
    st.timedeltas(timedelta(days=-5), timedelta(days=5)),
    st.lists(st.sampled_from(["a", "b", 1]), max_size=3),
    st.frozensets(st.sampled_from(["a", "b"])), st.tuples(st.integers(0, 3)),
    st.sampled_from([1, 2, 3, 7]),  # ids the tables hold
)
FIELD_NAMES = ["qty", "price", "name", "prop", "owner", "tags", "missing"]
records = st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=6)
paths = st.one_of(
    st.sampled_from(FIELD_NAMES).map(lambda n: (n,)),
    st.sampled_from([("prop", "price"), ("prop", "city"), ("prop", "agent", "region"),
                     ("prop", "agent", "team", "name"), ("owner", "region"), ("qty", "x"),
                     ("old", "qty"), ("old", "prop", "price"), ("old",), ("item", "price"),
                     ("item",), ("user", "id"), ("user", "username"), ("user", "roles"),
                     ("user", "team"), ("user", "nick"), ("user", "region"),
                     ("user", "team", "name")]),
)
literals = st.builds(Literal, st.one_of(st.none(), st.booleans(), st.integers(-30, 30),
                                        st.decimals(-100, 100, places=2),
                                        st.sampled_from(["", "a", "b", "A"])))
leaves = st.one_of(literals, st.builds(Name, paths))


def _extend(children: st.SearchStrategy) -> st.SearchStrategy:
    arities = {name: (low, high if high is not None else low + 2)
               for name, (low, high) in FUNCTIONS.items()}
    call = st.sampled_from(sorted(arities)).flatmap(lambda name: st.builds(
        Call, st.just(name), st.lists(children, min_size=arities[name][0],
                                      max_size=arities[name][1]).map(tuple)))
    return st.one_of(
        st.builds(Unary, st.sampled_from(["-", "not"]), children),
        st.builds(Binary, st.sampled_from(["+", "-", "*", "/", "%"]), children, children),
        st.builds(BoolOp, st.sampled_from(["and", "or"]),
                  st.lists(children, min_size=2, max_size=3).map(tuple)),
        st.builds(Compare, st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not in"]),
                  children, children),
        st.builds(IfElse, children, children, children),
        st.builds(ListLit, st.lists(children, max_size=3).map(tuple)),
        call,
    )


trees = st.recursive(leaves, _extend, max_leaves=12)


def _context(record: dict, old: dict | None, item: dict | None, with_user: bool,
             reads: list) -> EvalContext:
    def fetch(entity: str, key: Any) -> Any:
        reads.append((entity, key))
        return TABLES.get(entity, {}).get(key) if isinstance(key, int) else None

    def find(entity: str, field: str, value: Any) -> Any:
        reads.append(("find", entity, field, value))
        return 1 if value == "a" else None

    fetch.find = find  # type: ignore[attr-defined]
    user = UserInfo(7, "ana", frozenset({"agent"}), 3, {"nick": "A", "region": 2.5}) \
        if with_user else None
    return EvalContext(record=record, entity="deal", old=old, user=user, now=NOW, fetch=fetch,
                       scope=Scope(), item=item, item_entity="prop" if item is not None else None)


def _outcome(run: Any) -> tuple:
    try:
        value = run()
    except Exception as exc:  # the same error, or the test fails
        return ("error", type(exc).__name__, str(exc))
    return ("value", value, type(value).__name__)


@settings(max_examples=600, deadline=None)
@given(trees, records, st.one_of(st.none(), records), st.one_of(st.none(), records),
       st.booleans())
def test_compiled_closures_agree_with_walking_the_tree(tree, record, old, item, with_user):
    walked_reads: list = []
    compiled_reads: list = []
    walked = _outcome(lambda: _Evaluator(
        _context(record, old, item, with_user, walked_reads)).eval(tree))
    closure = compile_node(tree)
    done = _outcome(lambda: closure(_context(record, old, item, with_user, compiled_reads)))
    assert done == walked
    assert compiled_reads == walked_reads


def test_an_expression_is_compiled_once():
    expr = parse("qty * 2 + 1")
    first = compiled(expr)
    assert compiled(expr) is first
    assert evaluate(expr, EvalContext(record={"qty": 3}, entity="deal")) == 7


EDGES = [None, 0, 3, -7, 10**30, Decimal("0.00"), Decimal("-2.5"), Decimal("Infinity"),
         Decimal("-Infinity"), Decimal("1E+999999"), True, "", "ab", date(2024, 5, 1),
         datetime(2024, 5, 1, 9, tzinfo=UTC), timedelta(hours=30), 2.5, ["ab", 3]]


def test_every_operator_agrees_on_every_pair_of_edge_values():
    """The fast paths of the compiled operators (two numbers, two values of one type) against
    the rules on the values random records rarely hold at once (infinities, overflow)."""
    for op in ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">=", ">", "in", "not in"]:
        tree = parse(f"qty {op} price").tree
        closure = compile_node(tree)
        for a in EDGES:
            for b in EDGES:
                record = {"qty": a, "price": b}
                walked = _outcome(lambda r=record, t=tree: _Evaluator(
                    _context(r, None, None, True, [])).eval(t))
                done = _outcome(lambda r=record, c=closure: c(_context(r, None, None, True, [])))
                assert done == walked, (op, a, b)
