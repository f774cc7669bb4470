"""`crmforge import --update-by` through the bulk write path (runtime/write/bulk.py,
`upsert_many`): a batch's changes to existing records, mixed with its new records, leave the
database exactly as the same rows written one at a time do — rows, versions, audit entries
(old → new value of each changed field), timeline entries (workflow moves, owner changes),
automations `on: create` and `on: update` (a failing one too) and rollups — and refuse the
same rows, reported with their lines; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bulk_write import MEMBER as BULK_MEMBER
from test_bulk_write import Pair, contents, pack_files, twin_instances

from runtime.core.errors import RecordError
from runtime.core.instance import Actor, Instance
from runtime.ops import transfer
from runtime.write import bulk, records

# test_bulk_write's member, with a second unique field that rows may give up and take
MEMBER = BULK_MEMBER.replace("  name:     {type: text, required: true}",
                             "  badge:    {type: text, unique: true}\n"
                             "  name:     {type: text, required: true}")
AUTOMATIONS = """
automations:
  greet:
    entity: member
    on: create
    when: "score != null and score > 50"
    do:
      - set: {greeting: "Hello {name}"}
  cheer:
    entity: member
    on: update
    when: "score != null and score > 80"
    do:
      - set: {greeting: "Well done {name}"}
  refuse:
    entity: member
    on: update
    when: "name == 'boom'"
    do:
      - set: {score: -1}
"""
SYSTEM = Actor.system_actor("test")
SEEDED = [{"code": "a", "name": "Ann", "badge": "b1", "club": 1, "score": 10},
          {"code": "b", "name": "Bo", "badge": "b2", "club": 2, "email": "y@example.com"},
          {"code": "c", "name": "Cy", "club": 1, "score": 60}]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def twins(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    """Two instances of the member pack (with `on: update` automations)."""
    yield from twin_instances(request.param, tmp_path, pack_files(MEMBER, AUTOMATIONS))


def _seed(inst: Instance) -> None:
    """Members a, b and c (written as records are), the rest of the tables empty."""
    with inst.engine.begin() as conn:
        for sql in ("DELETE FROM member", "DELETE FROM crm_audit WHERE entity = 'member'",
                    "DELETE FROM crm_timeline", "DELETE FROM crm_autonumber",
                    "UPDATE club SET members = 0, points = 0, average = 0"):
            conn.execute(sa.text(sql))
        for values in SEEDED:
            records.create(inst, SYSTEM, "member", values, conn=conn)


HEADER = ["code", "name", "badge", "email", "score", "club", "stage"]
ROW = st.fixed_dictionaries({"code": st.sampled_from(["a", "b", "c", "d", "e"])}, optional={
    "name": st.sampled_from(["Ann", "Bo", "boom", "Di"]),
    "badge": st.sampled_from(["b1", "b2", "b3"]),
    "email": st.sampled_from(["x@example.com", "y@example.com", "X@example.com", "nope"]),
    "score": st.integers(-3, 110),
    "club": st.sampled_from([1, 2, 99]),
    "stage": st.sampled_from(["new", "active", "left", "gone"]),
})


def imported(inst: Instance, rows: list[dict], first_line: int = 2) -> transfer.ImportResult:
    """`crmforge import --update-by code --skip-invalid` of the rows."""
    return transfer.import_rows(inst, "member", HEADER,
                                [(first_line + n, row) for n, row in enumerate(rows)],
                                update_by="code", skip_invalid=True, actor=SYSTEM)


def one_by_one(inst: Instance, rows: list[dict], first_line: int = 2) -> dict[int, str]:
    """The rows written as `--update-by` wrote them before the bulk path: each looked up by
    its code and written through `records` in a savepoint of its own; {line refused: the
    error's message}."""
    refused = {}
    with inst.engine.begin() as conn:
        for line, row in enumerate(rows, first_line):
            found = conn.execute(sa.text("SELECT id FROM member WHERE code = :c"),
                                 {"c": row["code"]}).scalar()
            values = {k: v for k, v in row.items() if not (found and k == "code")}
            try:
                with conn.begin_nested():
                    transfer.write(inst, SYSTEM, conn, "member", values, found)
            except RecordError as exc:
                refused[line] = exc.message
    return refused


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(files=st.lists(st.lists(ROW, max_size=8), min_size=1, max_size=3))
def test_an_upsert_equals_the_same_rows_one_at_a_time(twins: Pair,
                                                     files: list[list[dict]]) -> None:
    together, alone = twins
    for inst in twins:
        _seed(inst)
    for rows in files:
        result = imported(together, rows)
        refused = one_by_one(alone, rows)
        assert sorted({line for line, _ in result.problems}) == sorted(refused), rows
        assert result.created + result.updated + len(refused) == len(rows)
    assert contents(together) == contents(alone), files


def _audit(inst: Instance, code: str) -> list[tuple[Any, ...]]:
    with inst.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT a.action, a.field, a.old_value, a.new_value FROM crm_audit a JOIN member m "
            "ON m.id = a.record_id WHERE a.entity = 'member' AND m.code = :c ORDER BY a.id"),
            {"c": code})]


def test_a_bad_row_is_reported_with_its_line_and_the_others_kept(twins: Pair) -> None:
    inst, _ = twins
    _seed(inst)
    result = imported(inst, [
        {"code": "a", "score": 90},                    # 2: a change, and `cheer` runs
        {"code": "b", "score": 500},                   # 3: refused by the validation
        {"code": "d", "name": "Di", "badge": "b1"},    # 4: b1 is a's
        {"code": "c", "name": "boom"},                 # 5: refused by the automation
        {"code": "e", "name": "Ed", "club": 2},        # 6: new
        {"code": "b", "badge": "b3"}])                 # 7: b again, in a batch of its own
    assert result.problems == [
        (3, "score: The score is at most 100."),
        (4, "badge: is already used by another record; enter a different value"),
        (5, result.problems[2][1])]
    assert "Refuse" in result.problems[2][1]
    assert (result.created, result.updated) == (1, 2)
    a = records.get(inst, SYSTEM, "member", 1)
    assert (a["score"], a["greeting"], a["version"]) == (90, "Well done Ann", 3)
    assert _audit(inst, "a")[-2:] == [("update", "score", "10", "90"),
                                      ("update", "greeting", None, '"Well done Ann"')]
    assert _audit(inst, "b")[-1] == ("update", "badge", '"b2"', '"b3"')
    clubs = {c["name"]: c for c in records.query(inst, SYSTEM, "club").rows}
    assert (clubs["Red"]["points"], clubs["Blue"]["members"]) == (150, 2)


def test_a_value_freed_by_a_change_is_taken_by_a_later_row(twins: Pair) -> None:
    """A unique value (b1) and a duplicate rule's key (y@example.com) that a change frees
    are free for the rows after it, as when the rows are written one by one."""
    together, alone = twins
    for inst in twins:
        _seed(inst)
    for rows in ([{"code": "a", "badge": "b3"}, {"code": "d", "name": "Di", "badge": "b1"},
                  {"code": "b", "badge": "b4"}, {"code": "c", "badge": "b2"}],
                 [{"code": "b", "email": "z@example.com"},
                  {"code": "e", "name": "Ed", "email": "Y@example.com"}]):
        result = imported(together, rows)
        assert (result.problems, result.created + result.updated) == ([], len(rows))
        assert one_by_one(alone, rows) == {}
    assert contents(together) == contents(alone)


def test_a_batch_of_changes_is_one_update_statement_and_one_audit_statement(
        twins: Pair) -> None:
    inst, _ = twins
    _seed(inst)
    imported(inst, [{"code": f"n{n}", "name": f"N{n}"} for n in range(40)])
    statements: list[tuple[str, bool]] = []

    def seen(conn: Any, cursor: Any, sql: str, params: Any, context: Any,
             many: bool) -> None:
        statements.append((" ".join(sql.split()[:3]), many))

    sa.event.listen(inst.engine, "before_cursor_execute", seen)
    try:
        result = imported(inst, [{"code": f"n{n}", "name": f"M{n}", "score": n}
                                 for n in range(40)])
    finally:
        sa.event.remove(inst.engine, "before_cursor_execute", seen)
    assert (result.updated, result.problems) == (40, [])
    updates = [s for s in statements if s[0] == "UPDATE member SET"]
    audits = [s for s in statements if s[0] == "INSERT INTO crm_audit"]
    if inst.engine.dialect.name == "sqlite":  # an executemany each
        assert (updates, audits) == ([("UPDATE member SET", True)],
                                     [("INSERT INTO crm_audit", True)])
    else:  # one UPDATE … FROM the rows COPY put in a temporary table; the 80 audit
           # entries by COPY too, which no event sees
        assert (updates, audits) == ([("UPDATE member SET", False)], [])
    with inst.engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT count(*) FROM crm_audit WHERE action = 'update' AND record_id IN "
            "(SELECT id FROM member WHERE code LIKE 'n%')")).scalar() == 80
        assert set(conn.execute(sa.text("SELECT version FROM member WHERE code LIKE 'n%'")
                                ).scalars()) == {2}


def test_who_may_not_update_is_refused_row_by_row(twins: Pair, make_user) -> None:
    inst, _ = twins
    _seed(inst)
    nobody = make_user(inst, "nobody")
    result = transfer.import_rows(inst, "member", HEADER, [(2, {"code": "a", "score": 5})],
                                  update_by="code", skip_invalid=True, actor=nobody)
    assert [line for line, _ in result.problems] == [2] and result.updated == 0
    assert records.get(inst, SYSTEM, "member", 1)["score"] == 10


def test_the_batch_update_counts_only_the_rows_at_the_version_read(
        twins: tuple[Instance, Instance]) -> None:
    """The compiled executemany of a batch's changes (`bulk._update_rows`) matches a row
    only at the version the batch read: a row saved since is not written, and the count
    says so (the batch is then written row by row, which names it)."""
    inst, _ = twins
    ids = [records.create(inst, SYSTEM, "member", {"code": c, "name": c})["id"]
           for c in ("p", "q", "r")]
    table = inst.schema.table("member")
    with inst.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == ids[1]).values(version=2))
        matched = bulk._update_rows(conn, table, [
            {"name": f"New {n}", "_crm_id": rid, "_crm_version": 1}
            for n, rid in enumerate(ids)])
    if inst.engine.dialect.supports_sane_multi_rowcount:
        assert matched == 2
    names = {r["id"]: r["name"] for r in records.query(inst, SYSTEM, "member").rows}
    assert [names[rid] for rid in ids] == ["New 0", "q", "New 2"]
