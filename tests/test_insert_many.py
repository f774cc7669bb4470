"""`db.insert_many` (runtime/core/db.py): rows inserted through its compiled statement read
back exactly as rows inserted through SQLAlchemy's own executemany — every field type, NULLs,
hostile text — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.core.db import insert_many
from runtime.core.instance import Instance
from runtime.write.records import row_values

FILES = {"entities/thing.yaml": """
entity: thing
title_field: name
fields:
  name:    {type: text}
  born:    {type: date}
  seen:    {type: datetime}
  price:   {type: decimal}
  fee:     {type: money}
  count:   {type: integer}
  active:  {type: boolean}
  tags:    {type: multichoice, options: [a, b, c]}
  phone:   {type: phone}
  level:   {type: choice, options: [low, high]}
"""}

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=40)
THING = st.fixed_dictionaries({
    "name": st.none() | TEXT,
    "born": st.none() | st.dates(date(1, 1, 1), date(9999, 12, 31)),
    "seen": st.none() | st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31)),
    "price": st.none() | st.decimals(-10**9, 10**9, places=4),
    "fee": st.none() | st.decimals(-10**9, 10**9, places=2),
    "count": st.none() | st.integers(-2**63, 2**63 - 1),
    "active": st.none() | st.booleans(),
    "tags": st.lists(st.sampled_from(["a", "b", "c"]), unique=True),
    "phone": st.none() | st.sampled_from(["+44 117 496 0320", "0117 496 0320", "nonsense"]),
    "level": st.none() | st.sampled_from(["low", "high"]),
})


@pytest.fixture
def inst(make_instance, pack) -> Instance:
    return make_instance(pack(FILES))


def stored(inst: Instance, conn: sa.Connection) -> list[dict]:
    """The rows as the database holds them (raw SQL: no type conversion on the way back,
    so a date stored in another text form would show)."""
    rows = conn.exec_driver_sql("SELECT * FROM thing ORDER BY id").mappings()
    return [{k: v for k, v in row.items() if k != "id"} for row in rows]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(things=st.lists(THING, min_size=1, max_size=5))
def test_rows_read_back_as_sqlalchemy_wrote_them(inst: Instance, things: list[dict]) -> None:
    ent, table = inst.model.entity("thing"), inst.schema.table("thing")
    now = datetime(2026, 12, 5, 9, 30, 15, 250000)
    rows = [row_values(ent, table, {**thing, "created_at": now, "updated_at": now,
                                    "version": 1}) for thing in things]
    with inst.engine.begin() as conn:
        conn.execute(table.delete())
        insert_many(conn, table, rows)
        ours = stored(inst, conn)
        conn.execute(table.delete())
        conn.execute(table.insert(), rows)
        theirs = stored(inst, conn)
    assert ours == theirs
    assert len(ours) == len(things)


def test_nothing_to_insert_is_no_statement(inst: Instance) -> None:
    with inst.engine.begin() as conn:
        insert_many(conn, inst.schema.table("thing"), [])
        assert conn.execute(sa.select(sa.func.count()).select_from(
            inst.schema.table("thing"))).scalar() == 0
