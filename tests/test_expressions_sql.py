"""The SQL compiler against real SQLite and PostgreSQL tables: same answers as the evaluator."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from builder.expressions import (
    EvalContext,
    ExpressionError,
    FieldRef,
    UserInfo,
    evaluate,
    evaluate_condition,
    parse,
)
from runtime.core.expressions import NotTranslatable, SqlContext, to_sql

NOW = datetime(2024, 5, 6, 12, 30, tzinfo=UTC)
USER = UserInfo(id=1, username="anna", roles=frozenset({"agent"}), team=5,
                fields={"region": "south"})

FIELDS = {
    "deal": {
        "id": FieldRef("id", "integer"), "qty": FieldRef("qty", "integer"),
        "price": FieldRef("price", "money"), "name": FieldRef("name", "text"),
        "active": FieldRef("active", "boolean"), "closes": FieldRef("closes", "date"),
        "seen": FieldRef("seen", "datetime"), "prop": FieldRef("prop", "link", "prop"),
        "owner": FieldRef("owner", "link", "user"), "tags": FieldRef("tags", "multichoice"),
    },
    "prop": {"id": FieldRef("id", "integer"), "price": FieldRef("price", "money"),
             "city": FieldRef("city", "text")},
    "user": {"id": FieldRef("id", "integer"), "team": FieldRef("team", "link", "team"),
             "region": FieldRef("region", "text"), "nick": FieldRef("nick", "text")},
    "team": {"id": FieldRef("id", "integer"), "name": FieldRef("name", "text")},
}


class Scope:
    def fields(self, entity):
        return FIELDS.get(entity)


def database_url() -> str:
    url = os.environ.get("CRMFORGE_TEST_DATABASE_URL",
                         "postgresql://postgres@127.0.0.1:5432/test")
    if url.startswith("postgresql://"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            url = "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def make_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    def table(name, *columns):
        return sa.Table(name, metadata, sa.Column("id", sa.Integer, primary_key=True), *columns)

    return {
        "deal": table("deal", sa.Column("qty", sa.Integer), sa.Column("price", sa.Numeric(12, 2)),
                      sa.Column("name", sa.String(100)), sa.Column("active", sa.Boolean),
                      sa.Column("closes", sa.Date), sa.Column("seen", sa.DateTime(timezone=True)),
                      sa.Column("prop", sa.Integer), sa.Column("owner", sa.Integer),
                      sa.Column("tags", sa.String(100))),
        "prop": table("prop", sa.Column("price", sa.Numeric(12, 2)),
                      sa.Column("city", sa.String(100))),
        "user": table("user", sa.Column("team", sa.Integer), sa.Column("region", sa.String(50)),
                      sa.Column("nick", sa.String(50))),
        "team": table("team", sa.Column("name", sa.String(50))),
    }


class Backend:
    """Tables in SQLite, or in a fresh PostgreSQL schema dropped afterwards."""

    def __init__(self, kind: str):
        self.kind = kind
        self.metadata = sa.MetaData()
        self.tables = make_tables(self.metadata)
        self.schema = None
        if kind == "sqlite":
            self.engine = sa.create_engine("sqlite://")
        else:
            engine = sa.create_engine(database_url())
            try:
                with engine.connect():
                    pass
            except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
                engine.dispose()
                pytest.skip(f"PostgreSQL not reachable: {type(exc).__name__}")
            self.schema = "expr_" + uuid.uuid4().hex[:12]
            with engine.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{self.schema}"'))
            self.base_engine = engine
            self.engine = engine.execution_options(schema_translate_map={None: self.schema})
        self.metadata.create_all(self.engine)

    def close(self) -> None:
        if self.schema:
            with self.base_engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            self.base_engine.dispose()
        else:
            self.engine.dispose()

    def context(self, user=USER) -> SqlContext:
        return SqlContext("deal", self.tables.__getitem__, Scope(), user, NOW.date(), NOW)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request):
    db = Backend(request.param)
    yield db
    db.close()


PROPS = {1: {"id": 1, "price": Decimal("100.00"), "city": "Oslo"},
         2: {"id": 2, "price": None, "city": "bergen"}}
ROWS = [
    {"id": 1, "qty": 5, "price": Decimal("10.50"), "name": "Bob", "active": True,
     "closes": date(2024, 5, 1), "seen": datetime(2024, 5, 1, 3, 0, tzinfo=UTC), "prop": 1,
     "owner": 1, "tags": None},
    {"id": 2, "qty": -7, "price": Decimal("0.00"), "name": "alice", "active": False,
     "closes": date(2024, 5, 10), "seen": datetime(2024, 5, 6, 23, 59, 59, tzinfo=UTC),
     "prop": 2, "owner": 2, "tags": None},
    {"id": 3, "qty": None, "price": None, "name": None, "active": None, "closes": None,
     "seen": None, "prop": None, "owner": None, "tags": None},
]
USERS = {1: {"id": 1, "team": 5, "region": "south", "nick": "annie"},
         2: {"id": 2, "team": 6, "region": "north", "nick": "bo"}}
TEAMS = {5: {"id": 5, "name": "North"}, 6: {"id": 6, "name": "South"}}
DB = {"prop": PROPS, "user": USERS, "team": TEAMS}


def load(db: Backend) -> None:
    with db.engine.begin() as conn:
        for entity in ("team", "user", "prop"):
            conn.execute(db.tables[entity].insert(), list(DB[entity].values()))
        conn.execute(db.tables["deal"].insert(), ROWS)


class Fetch:
    """The evaluator's view of the rows in DB (the same rows `load` writes to the tables)."""

    def __call__(self, entity, key):
        return DB[entity].get(key)

    def find(self, entity, field, value):  # lookup(): the lowest id whose field == value
        return min((k for k, row in DB[entity].items() if row.get(field) == value),
                   default=None)


def eval_ctx(row, user=USER) -> EvalContext:
    return EvalContext(record=row, entity="deal", user=user, now=NOW, scope=Scope(),
                       fetch=Fetch())


CONDITIONS = [
    ("qty > 0", [1]), ("qty < 0", [2]), ("qty == null", [3]), ("qty != null", [1, 2]),
    ("qty != 5", [2]), ("not (qty > 0)", [2, 3]), ("not active", [2, 3]), ("active", [1]),
    ("active == false", [2]), ("active != true", [2]), ("price == 0", [2]),
    ("price > 10.25", [1]), ("qty % 2 == 1", [1]), ("qty % 2 == -1", [2]),
    ("qty / 0 == null", [1, 2, 3]), ("qty / 2 > 2", [1]), ("price / qty > 2", [1]),
    ("qty + 1 > 0 or name == 'alice'", [1, 2]), ("name < 'a'", [1]), ("name > 'B'", [1, 2]),
    ("name == 'bob'", []), ("lower(name) == 'bob'", [1]), ("upper(name) == 'ALICE'", [2]),
    ("contains(name, 'li')", [2]), ("not contains(name, 'li')", [1, 3]),
    ("len(name) == 0", [3]), ("len(name) == 5", [2]), ("name + '!' == 'Bob!'", [1]),
    ("qty in [5, 6]", [1]), ("qty not in [5, null]", [2]), ("qty in [null]", []),
    ("qty not in []", [1, 2]), ("name in [lower(name), 'x']", [2]), ("qty in [price, 5]", [1]),
    ("qty not in [price, 1]", [1, 2]),
    ("closes < today()", [1]), ("closes >= today() + days(4)", [2]),
    ("closes > today() - days(6) and closes < today() + days(10)", [1, 2]),
    ("days_since(closes) == 5", [1]), ("days_since(closes) < 0", [2]),
    ("days_since(seen) == 0", [2]), ("seen > now()", [2]), ("seen < now() - hours(24)", [1]),
    ("seen + hours(1) > now() + days(0.25)", [2]), ("seen - days(5) < closes", [1, 2]),
    ("seen == closes", [1]), ("closes > seen", [2]), ("seen >= today()", [2]),
    ("closes - today() > days(3)", [2]), ("closes + hours(-1) < closes", [1, 2]),
    ("day(closes) == 10", [2]), ("week(closes) == 18", [1]), ("week(closes) == 19", [2]),
    ("month(seen) == 5 and year(seen) == 2024", [1, 2]), ("day(seen) == 6", [2]),
    ("prop.price > 50", [1]), ("prop.price == null", [2, 3]), ("prop.city == 'Oslo'", [1]),
    ("owner == user.id", [1]), ("owner.team == user.team", [1]),
    ("owner.team.name == 'South'", [2]), ("user.team.name == 'North'", [1, 2, 3]),
    ("user.nick == 'annie' and qty > 0", [1]), ("user.region == 'south'", [1, 2, 3]),
    ("has_role('agent')", [1, 2, 3]), ("has_role('admin') or qty < 0", [2]),
    ("'agent' in user.roles and active", [1]), ("contains(user.roles, 'agent')", [1, 2, 3]),
    ("coalesce(qty, 0) == 0", [3]), ("coalesce(name, 'z') > 'b'", [3]),
    ("round(price, 0) == 11", [1]), ("round(price) == 0", [2]), ("max(qty, 0) == 0", [2]),
    ("min(qty, 0) == 0", [1]), ("min(name, 'b') == 'Bob'", [1]),
    ("max(closes, today()) == today()", [1]),
    ("(1 if active else 2) == 2", [2, 3]), ("(qty if active else null) == null", [2, 3]),
    ("true", [1, 2, 3]), ("null", []), ("1 + 1 == 2 and not false", [1, 2, 3]),
    ("-qty > 0", [2]), ("1 < qty < 10", [1]),
    # lookup(entity, field, value): the lowest id whose field equals the value, or null
    ("lookup('prop', 'city', 'Oslo') == prop", [1]), ("lookup('prop', 'city', name) == null",
                                                      [1, 2, 3]),
    ("lookup('user', 'nick', 'bo') == owner", [2]),
    ("lookup('team', 'name', 'South') == owner.team", [2]),
    ("lookup('prop', 'price', 100) == prop", [1]), ("lookup('prop', 'city', null) == null",
                                                    [1, 2, 3]),
    ("lookup('user', 'team', user.team) == 1", [1, 2, 3]),
    # text functions: 1-based positions, counts beyond the text, negative counts, nulls
    ("left(name, 2) == 'Bo'", [1]), ("right(name, 3) == 'ice'", [2]),
    ("mid(name, 2, 3) == 'lic'", [2]), ("mid(name, 0, 2) == 'Bo'", [1]),
    ("mid(name, -5, 1) == 'a'", [2]), ("mid(name, 3, 100) == 'ice'", [2]),
    ("mid(name, 4, 1) == ''", [1]), ("mid(name, 2, -1) == ''", [1, 2]),
    ("left(name, -1) == ''", [1, 2]), ("right(name, 0) == ''", [1, 2]),
    ("right(name, 10) == name", [1, 2]), ("left(name, 1e20) == name", [1, 2]),
    ("right(name, -1e20) == ''", [1, 2]), ("left(name, qty) == 'Bob'", [1]),
    ("right(name, qty) == ''", [2]), ("mid(name, qty, 1) == ''", [1]),
    ("left(name, price / 4) == 'Bo'", [1]), ("left(name, 2) == null", [3]),
    ("mid(name, qty, 2) == null", [3]), ("left(prop.city, 1) == 'O'", [1]),
    ("trim('  ' + name + ' ') == name", [1, 2]), ("trim(' a b ') + name == 'a bBob'", [1]),
    ("replace(name, 'l', 'L') == 'aLice'", [2]), ("replace(name, '', 'x') == name", [1, 2]),
    ("replace(name, 'o', '') == 'Bb'", [1]), ("replace(name, 'o', null) == null", [1, 2, 3]),
    ("replace('', '', name) == null", [3]), ("replace(name, '', name) == name", [1, 2]),
    # pow: null in, null out; 0 to a negative power and a negative number to a fraction are
    # null; a result of 1e300 or more is null, one below 1e-300 is 0
    ("pow(qty, 2) == 25", [1]), ("pow(qty, 2) == 49", [2]), ("pow(qty, 3) < 0", [2]),
    ("pow(price, 2) == 110.25", [1]), ("pow(qty, 0.5) > 2", [1]),
    ("pow(qty, 0.5) == null", [2, 3]), ("pow(price, -1) == null", [2, 3]),
    ("pow(price, 0) == 1", [1, 2]), ("pow(10, qty) == 100000", [1]),
    ("pow(10, qty * 100) == null", [1, 3]), ("pow(10, qty * 100) == 0", [2]),
    ("pow(qty, 0.5) == 2.23606797749979", [1]), ("pow(2, qty) == 0.0078125", [2]),
    ("pow(prop.price, 0.5) == 10", [1]), ("pow(1 + price / 100, 2) > 1.2", [1]),
]


@pytest.mark.parametrize(("source", "expected"), CONDITIONS)
def test_conditions(backend, source, expected):
    load(backend)
    expr = parse(source)
    clause = to_sql(expr, backend.context())
    deal = backend.tables["deal"]
    with backend.engine.connect() as conn:
        got = sorted(conn.execute(sa.select(deal.c.id).where(clause)).scalars())
    assert [r["id"] for r in ROWS if evaluate_condition(expr, eval_ctx(r))] == expected
    assert got == expected


VALUES = [
    "qty + 1", "price * 2", "qty / 4", "qty % 3", "-price", "name + '?'", "lower(name)",
    "coalesce(qty, 42)", "len(name)", "round(price, 1)", "max(qty, 1)", "prop.price - price",
    "days_since(closes)", "day(seen)", "1 if active else 0", "contains(name, 'o')",
    "user.id + qty", "qty / price",
    "pow(qty, 2)", "pow(price, 0.5)", "pow(1 + price / 100, -qty)", "pow(qty, -1)",
    "left(name, 2)", "right(name, qty)", "mid(name, 2, 2)", "trim(name)",
    "replace(name, 'b', 'p')",
]


@pytest.mark.parametrize("source", VALUES)
def test_values(backend, source):
    load(backend)
    expr = parse(source)
    value = to_sql(expr, backend.context(), condition=False)
    deal = backend.tables["deal"]
    with backend.engine.connect() as conn:
        for row in ROWS:
            got = conn.execute(sa.select(value).where(deal.c.id == row["id"])).scalar()
            expected = evaluate(expr, eval_ctx(row))
            if expected is None or got is None:
                assert got is None and expected is None, (row["id"], got, expected)
            elif isinstance(expected, str | bool):
                assert bool(got) == expected if isinstance(expected, bool) else got == expected
            else:
                assert float(got) == pytest.approx(float(expected), rel=1e-9), row["id"]


def test_date_values(backend):
    load(backend)
    deal = backend.tables["deal"]
    expr = parse("closes + days(3)")
    with backend.engine.connect() as conn:
        got = conn.execute(sa.select(to_sql(expr, backend.context())).where(deal.c.id == 1))
        assert got.scalar() == date(2024, 5, 4)


def test_without_user(backend):
    load(backend)
    deal = backend.tables["deal"]
    clause = to_sql(parse("owner == user.id or has_role('agent')"), backend.context(user=None))
    with backend.engine.connect() as conn:
        assert conn.execute(sa.select(deal.c.id).where(clause)).scalars().all() == []


@pytest.mark.parametrize("source", ["old.qty > 1", "'a' in tags", "len(tags) > 0"])
def test_not_translatable(source):
    db = Backend("sqlite")
    try:
        with pytest.raises(NotTranslatable) as info:
            to_sql(parse(source), db.context())
        assert info.value.code == "E314"
    finally:
        db.close()


def test_unknown_field_is_an_error():
    db = Backend("sqlite")
    try:
        with pytest.raises(ExpressionError) as info:
            to_sql(parse("qtty > 1"), db.context())
        assert info.value.code == "E310"
    finally:
        db.close()


def test_constants_are_folded():
    db = Backend("sqlite")
    try:
        clause = to_sql(parse("has_role('agent') and user.team + 1 == 6"), db.context())
        assert str(clause.compile(db.engine)) == "1"
        text = str(to_sql(parse("closes < today() - days(2)"), db.context()).compile(db.engine))
        assert "julianday" not in text and "date(" not in text
    finally:
        db.close()


POW_EXACT = ["pow(price, 0.5)", "pow(qty, -1)", "pow(1.0025, -qty * 72)", "pow(qty, 1.5) + 1",
             "round(100000 * 0.004 / (1 - pow(1.004, -qty * 12)), 2)"]


@pytest.mark.parametrize("source", POW_EXACT)
def test_pow_is_the_same_float_everywhere(backend, source):
    """pow() is computed in binary floating point in all three engines: the very same value,
    not merely a close one."""
    load(backend)
    expr = parse(source)
    # the driver's own value: sa.Numeric would round SQLite's floats to 10 decimals
    value = sa.type_coerce(to_sql(expr, backend.context(), condition=False), sa.types.NullType())
    deal = backend.tables["deal"]
    with backend.engine.connect() as conn:
        for row in ROWS:
            got = conn.execute(sa.select(value).where(deal.c.id == row["id"])).scalar()
            expected = evaluate(expr, eval_ctx(row))
            assert (got is None) == (expected is None), (row["id"], got, expected)
            if got is not None:
                if backend.kind == "postgresql":
                    assert Decimal(got) == expected, row["id"]
                else:
                    assert float(got) == float(expected), row["id"]


def test_pow_without_sqlite_math_functions():
    """The Python pow() and floor() registered on SQLite builds without math functions give
    the built-in answers."""
    from runtime.core.expressions import sqlfuncs

    def run(register):
        engine = sa.create_engine("sqlite://")
        if register:
            @sa.event.listens_for(engine, "connect")
            def connect(dbapi_connection, _record):
                dbapi_connection.create_function("pow", 2, sqlfuncs._sqlite_pow,
                                                 deterministic=True)
                dbapi_connection.create_function("floor", 1, sqlfuncs._sqlite_floor,
                                                 deterministic=True)
        cases = [(x, y) for x in (0, -0.5, -8, 2, 10, 1.0025, None)
                 for y in (0, -1, 0.5, 3, -360, 400, -400, None)]
        x, y = sa.bindparam("x", type_=sa.Numeric()), sa.bindparam("y", type_=sa.Numeric())
        query = sa.select(sqlfuncs.Pow(x, y))
        with engine.connect() as conn:
            results = [conn.execute(query, {"x": a, "y": b}).scalar() for a, b in cases]
        engine.dispose()
        return results

    assert run(register=True) == run(register=False)


def test_register_sqlite_functions_keeps_the_built_ins():
    import sqlite3

    from runtime.core.expressions.sqlfuncs import register_sqlite_functions

    class Missing:
        def __init__(self):
            self.real = sqlite3.connect(":memory:")
            self.registered = []

        def execute(self, sql):
            raise sqlite3.OperationalError("no such function: pow")

        def create_function(self, name, *args, **kwargs):
            self.registered.append(name)

    conn = sqlite3.connect(":memory:")
    register_sqlite_functions(conn)  # this SQLite has them: nothing is replaced
    assert conn.execute("SELECT pow(2, 3), floor(2.5)").fetchone() == (8.0, 2.0)
    missing = Missing()
    register_sqlite_functions(missing)
    assert missing.registered == ["pow", "floor"]
