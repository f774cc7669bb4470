"""Duplicate rules in the bulk write path (runtime/write/bulk.py): a batch asks the table for
its rows' `block` keys in one query per rule (`checks.keys_in_table`), and only a row whose key
is there gets its own check — so the rows refused, the messages (the record named) and the
database after are those of the same rows written one at a time, for new records and
`--update-by` changes, with rules on text (without case), phone numbers (as E.164), links
and dates; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support import run_together
from test_bulk_upsert import one_by_one
from test_bulk_write import CLUB, Pair, contents, twin_instances

from runtime.core.errors import Conflict
from runtime.core.instance import Actor, Instance
from runtime.ops import transfer
from runtime.write import bulk, records

MEMBER = """
entity: member
title_field: name
fields:
  code:   {type: text, required: true, unique: true}
  name:   {type: text, required: true}
  email:  {type: email}
  phone:  {type: phone}
  club:   {type: link, to: club}
  joined: {type: date}
  score:  {type: integer}
duplicates:
  - {match: [email], action: block}
  - {match: [phone, club], action: block}
  - {match: [name, joined], action: block}
  - {match: [name], action: warn}
"""
SYSTEM = Actor.system_actor("test")
HEADER = ["code", "name", "email", "phone", "club", "joined"]
SEEDED = [{"code": "a", "name": "Ann", "email": "x@example.com", "phone": "0117 496 0320",
           "club": 1, "joined": "2026-01-01"},
          {"code": "b", "name": "Bo", "email": "y@example.com", "phone": "0117 496 0999",
           "club": 2}]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def twins(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    """Two instances of the member pack with its four duplicate rules."""
    yield from twin_instances(request.param, tmp_path, {"entities/club.yaml": CLUB,
                                                        "entities/member.yaml": MEMBER})


def _seed(inst: Instance) -> None:
    """Members a and b (written as records are), the rest of the tables empty."""
    with inst.engine.begin() as conn:
        for sql in ("DELETE FROM member", "DELETE FROM crm_audit WHERE entity = 'member'",
                    "DELETE FROM crm_timeline", "UPDATE club SET members = 0, points = 0"):
            conn.execute(sa.text(sql))
        for values in SEEDED:
            records.create(inst, SYSTEM, "member", values, conn=conn)


def _named(inst: Instance, message: str) -> str:
    """A message with the record it names (#id) given by its code: PostgreSQL's sequences
    may skip ids that a rolled-back attempt took."""
    with inst.engine.connect() as conn:
        return re.sub(r"#(\d+)", lambda m: "#" + str(conn.execute(sa.text(
            "SELECT code FROM member WHERE id = :i"), {"i": int(m.group(1))}).scalar()),
            message)


def imported(inst: Instance, rows: list[dict]) -> dict[int, str]:
    """`crmforge import --update-by code --skip-invalid` of the rows: {line: problem}."""
    result = transfer.import_rows(inst, "member", HEADER, list(enumerate(rows, 2)),
                                  update_by="code", skip_invalid=True, actor=SYSTEM)
    return dict(result.problems)


ROW = st.fixed_dictionaries({"code": st.sampled_from(["a", "b", "c", "d", "e"])}, optional={
    "name": st.sampled_from(["Ann", "ANN", "Bo", "Cy"]),
    "email": st.sampled_from(["x@example.com", "X@Example.com", "y@example.com", "z@ex.com"]),
    "phone": st.sampled_from(["0117 496 0320", "+44 117 496 0320", "01174960999", "12"]),
    "club": st.sampled_from([1, 2]),
    "joined": st.sampled_from(["2026-01-01", "2026-01-02"]),
})


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(files=st.lists(st.lists(ROW, max_size=8), min_size=1, max_size=3))
@example(files=[[{"code": "c", "name": "Cy", "email": "X@example.com"},       # a's email
                 {"code": "d", "name": "Di", "phone": "+44 117 496 0320",   # a's phone+club
                  "club": 1},
                 {"code": "e", "name": "ann", "joined": "2026-01-01"},     # a's name+date
                 {"code": "c", "name": "Cy", "phone": "+44 117 496 0999",  # b's phone
                  "club": 2}]])                                             # and club
@example(files=[[{"code": "a", "email": "z@ex.com"},  # a frees its email ...
                 {"code": "c", "name": "Cy", "email": "x@example.com"}],  # ... c takes it
                [{"code": "d", "name": "Di", "email": "Z@ex.com"}]])  # a's new one, later
def test_duplicate_checks_of_a_batch_equal_one_at_a_time(twins: Pair,
                                                         files: list[list[dict]]) -> None:
    """The same lines refused; a record found in the table is named as a single write names
    it (a duplicate of an earlier line of the batch says that line instead)."""
    together, alone = twins
    for inst in twins:
        _seed(inst)
    for rows in files:
        made, kept = imported(together, rows), one_by_one(alone, rows)
        assert sorted(made) == sorted(kept), rows
        for line, message in made.items():
            if "already exists" in message:
                assert _named(together, message) == _named(alone, kept[line]), rows
    assert contents(together) == contents(alone), files


def test_a_duplicate_in_the_table_is_named_as_a_single_write_names_it(twins: Pair) -> None:
    inst, _ = twins
    _seed(inst)
    rows = [(10, {"code": "c", "name": "Cy", "email": "X@EXAMPLE.com"}),
            (11, {"code": "d", "name": "Di", "phone": "+44 117 496 0320", "club": 1}),
            (12, {"code": "e", "name": "Ed", "phone": "+44 117 496 0320", "club": 2}),
            (13, {"code": "f", "name": "Fi", "phone": "01174960320", "club": 2}),
            (14, {"code": "g", "name": "ann", "joined": "2026-01-01"}),
            (15, {"code": "h", "name": "Ann"})]  # a `warn` rule: no warning in a bulk load
    outcomes = bulk.create_many(inst, SYSTEM, "member", rows)
    assert [o.id is not None for o in outcomes] == [False, False, True, False, False, True]
    for index in (0, 1, 4):
        error = outcomes[index].error
        assert isinstance(error, Conflict) and error.record_id == 1
        with pytest.raises(Conflict) as single:
            records.create(inst, SYSTEM, "member", dict(rows[index][1]))
        assert (error.message, error.record_id) == (single.value.message, 1)
    assert outcomes[0].error.message.startswith("A Member with the same Email already exists "
                                                "(#1)")
    assert "same Phone, Club already exists (#1)" in outcomes[1].error.message
    assert "(line 12)" in outcomes[3].error.message  # a duplicate of a row of this batch


def _member_selects(inst: Instance, rows: list[tuple[int, dict]]) -> list[str]:
    """The SELECTs on the member table that `create_many(rows)` runs."""
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool
             ) -> None:
        if sql.lstrip().upper().startswith("SELECT") and "FROM member" in sql:
            statements.append(sql)

    sa.event.listen(inst.engine, "before_cursor_execute", seen)
    try:
        outcomes = bulk.create_many(inst, SYSTEM, "member", rows)
    finally:
        sa.event.remove(inst.engine, "before_cursor_execute", seen)
    assert all(o.error is None for o in outcomes), [o.error for o in outcomes if o.error]
    return statements


def test_a_batch_asks_the_table_once_per_rule(twins: Pair) -> None:
    """Three `block` rules filled by 600 new rows: one query per rule and 500 keys (and one
    per 500 unique codes) — none per row."""
    inst, _ = twins
    _seed(inst)
    rows = [(n, {"code": f"n{n}", "name": f"N{n}", "email": f"n{n}@example.com",
                 "phone": f"0117 497 {n:04d}", "club": 1 + n % 2, "joined": "2026-02-01"})
            for n in range(600)]
    selects = [" ".join(s.split())[:80] for s in _member_selects(inst, rows)]
    # 3 rules × 2 chunks of keys, 2 chunks of codes, the count of the ids inserted
    assert len(selects) <= 3 * 2 + 2 + 1, selects
    assert records.count(inst, SYSTEM, "member") == (602, True)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_concurrent_batches_with_the_same_customer_make_one(make_instance, pack) -> None:
    """The duplicate locks (`checks.serialise_many`): batches written at the same time with
    one row each for the same number find each other's row instead of both missing it."""
    inst = make_instance(pack({"entities/club.yaml": CLUB, "entities/member.yaml": MEMBER}))
    records.create(inst, SYSTEM, "club", {"name": "Red"})
    threads = 6

    def work(index: int) -> list[bulk.Outcome]:
        return bulk.create_many(inst, SYSTEM, "member", [
            (1, {"code": f"own{index}", "name": f"Own {index}"}),
            (2, {"code": f"c{index}", "name": f"C{index}", "phone": "+44 117 496 0320",
                 "club": 1})])

    results = run_together(threads, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    made = [r[1].id for r in results if r[1].id is not None]
    refused = [r[1].error for r in results if r[1].error is not None]
    assert len(made) == 1 and len(refused) == threads - 1, results
    assert {e.record_id for e in refused} == set(made)
    assert all(r[0].id is not None for r in results)
