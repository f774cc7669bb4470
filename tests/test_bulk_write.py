"""The bulk form of the write path (runtime/write/bulk.py): writing a batch of rows at once
leaves the database exactly as writing them one at a time does — rows, autonumbers, audit
entries, timeline entries (workflow moves), automations (a failing one too) and rollups —
and refuses the same rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import build_instance, provision_database
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support import Clock, write_pack

from runtime.core.errors import RecordError
from runtime.core.instance import Actor, Instance
from runtime.ops import transfer
from runtime.process import hook_effects
from runtime.write import bulk, records

CLUB = """
entity: club
title_field: name
fields:
  name:    {type: text, required: true}
  members: {type: integer, rollup: {from: member.club, op: count}}
  points:  {type: integer, rollup: {from: member.club, op: sum, field: score}}
  average: {type: decimal, formula: "points / max(members, 1)"}
"""
MEMBER = """
entity: member
title_field: name
fields:
  number:   {type: autonumber, format: "M-{0000}"}
  code:     {type: text, required: true, unique: true}
  name:     {type: text, required: true}
  email:    {type: email}
  score:    {type: integer, min: 0}
  club:     {type: link, to: club}
  greeting: {type: text}
validations:
  - rule: "score == null or score <= 100"
    message: The score is at most 100.
    field: score
duplicates:
  - {match: [email], action: block}
workflow:
  field: stage
  initial: new
  states:
    new:    {label: New}
    active: {label: Active}
    left:   {label: Left, final: true}
  transitions:
    start: {from: new, to: active}
    leave: {from: [new, active], to: left}
"""
AUTOMATIONS = """
automations:
  greet:
    entity: member
    on: create
    when: "score != null and score > 50"
    do:
      - set: {greeting: "Hello {name}"}
  refuse:
    entity: member
    on: create
    when: "name == 'boom'"
    do:
      - set: {score: -1}
"""
SYSTEM = Actor.system_actor("test")


def pack_files(member: str, automations: str) -> dict[str, str]:
    """The member pack's files: the club (with its rollups), `member`, `automations`."""
    return {"entities/club.yaml": CLUB, "entities/member.yaml": member,
            "automations/test.yaml": textwrap.dedent(automations)}


class Pair(tuple):
    """Two instances; short to print when hypothesis shows a failing example."""

    def __repr__(self) -> str:
        return "Pair(bulk, single)"


def twin_instances(database: str, tmp_path: Path, files: dict[str, str]) -> Iterator[Pair]:
    """Two instances of the pack `files` on two empty databases, on the same fixed clock,
    each with the same two clubs."""
    clock = Clock()
    with ExitStack() as stack:
        pair = []
        for name in ("bulk", "single"):
            url = stack.enter_context(provision_database(database, tmp_path / name))
            (tmp_path / name).mkdir(exist_ok=True)
            inst = build_instance(write_pack(tmp_path / name / "packs", files), url,
                                  clock=clock)
            stack.callback(inst.engine.dispose)
            for team in ("Red", "Blue"):
                records.create(inst, SYSTEM, "club", {"name": team})
            pair.append(inst)
        yield Pair(pair)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def twins(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    """Two instances of the member pack."""
    yield from twin_instances(request.param, tmp_path, pack_files(MEMBER, AUTOMATIONS))


ROW = st.fixed_dictionaries({
    "code": st.sampled_from(["a", "b", "c", "d", "e", "f"]),
    "name": st.sampled_from(["Ann", "Bo", "", "boom", "Cy"]),
}, optional={
    "email": st.sampled_from(["x@example.com", "y@example.com", "X@example.com", "nope"]),
    "score": st.integers(-3, 110),
    "club": st.sampled_from([1, 2, 99]),
    "stage": st.sampled_from(["new", "active", "left", "gone"]),
})


def one_by_one(inst: Instance, rows: list[dict]) -> list[int | None]:
    """The rows written as an import wrote them before the bulk path: one savepoint each."""
    lines: list[int | None] = []
    with inst.engine.begin() as conn:
        for row in rows:
            try:
                with conn.begin_nested():
                    lines.append(transfer.write(inst, SYSTEM, conn, "member", row)["id"])
            except RecordError:
                lines.append(None)
    return lines


def at_once(inst: Instance, rows: list[dict]) -> list[int | None]:
    with inst.engine.begin() as conn:
        outcomes = transfer.write_many(inst, SYSTEM, conn, "member", list(enumerate(rows)))
    return [o.id for o in outcomes]


def contents(inst: Instance) -> dict[str, list]:
    """Every row the writes leave, record ids replaced by their place among the members
    (PostgreSQL's sequences may skip numbers that a rolled-back attempt took); audit and
    timeline entries in their order per record."""
    with inst.engine.connect() as conn:
        members = conn.execute(sa.text("SELECT * FROM member ORDER BY id")).mappings().all()
        place = {m["id"]: n for n, m in enumerate(members)}

        def rows(sql: str) -> list:
            found = []
            for row in conn.execute(sa.text(sql)).mappings():
                row = dict(row)
                row.pop("id", None)
                if row.get("entity") == "member" and "record_id" in row:
                    row["record_id"] = place.get(row["record_id"])
                found.append(row)
            # a batch writes its audit entries together: the order per record is what counts
            return sorted(found, key=lambda r: (r.get("entity", ""), str(r.get("record_id"))))

        return {
            "member": [{k: v for k, v in m.items() if k != "id"} for m in members],
            "club": rows("SELECT * FROM club ORDER BY id"),
            # the clubs automations create are compared by their rows, in order of their ids
            # (which PostgreSQL's sequences may skip), not by their audit entries
            "audit": rows("SELECT entity, record_id, action, field, old_value, new_value, "
                          "user_id, at FROM crm_audit WHERE entity <> 'club' OR record_id <= 2 "
                          "ORDER BY id"),
            "timeline": rows("SELECT entity, record_id, kind, body, user_id, created_at "
                             "FROM crm_timeline ORDER BY id"),
            "counters": rows("SELECT * FROM crm_autonumber ORDER BY entity, field"),
        }


# hooks on the creation and on the move of members that both write clubs: the order in
# which they run shows in the clubs' ids, so the moves of such a batch keep their places
ORDERED = AUTOMATIONS + """
  fan_club:
    entity: member
    on: create
    when: "score != null and score > 80"
    do:
      - create: {entity: club, values: {name: "{name} fans"}}
  alumni:
    entity: member
    on: {transition: leave}
    do:
      - create: {entity: club, values: {name: "{name} alumni"}}
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ordered_twins(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    """Two instances of the member pack whose creations and moves both fire automations."""
    yield from twin_instances(request.param, tmp_path, pack_files(MEMBER, ORDERED))


def same_as_one_at_a_time(twins: tuple[Instance, Instance], batches: list[list[dict]]
                          ) -> None:
    """Write `batches` at once on one instance and row by row on the other, each example
    from the two clubs alone: the same rows refused, the same database after."""
    together, alone = twins
    for inst in twins:
        with inst.engine.begin() as conn:
            for sql in ("DELETE FROM member", "DELETE FROM crm_audit WHERE entity = 'member' "
                        "OR (entity = 'club' AND record_id > 2)",
                        "DELETE FROM crm_timeline", "DELETE FROM crm_autonumber",
                        "DELETE FROM club WHERE id > 2",
                        "UPDATE club SET members = 0, points = 0, average = 0"):
                conn.execute(sa.text(sql))
    for rows in batches:
        made = at_once(together, rows)
        kept = one_by_one(alone, rows)
        assert [i is None for i in made] == [i is None for i in kept], rows
    assert contents(together) == contents(alone), batches


PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
BATCHES = st.lists(st.lists(ROW, max_size=8), min_size=1, max_size=3)


@PROPERTY
@given(batches=BATCHES)
def test_a_bulk_write_equals_the_same_rows_one_at_a_time(
        twins: tuple[Instance, Instance], batches: list[list[dict]]) -> None:
    same_as_one_at_a_time(twins, batches)


@PROPERTY
@given(batches=BATCHES)
@example(batches=[[{"code": "a", "name": "Ann", "score": 90, "stage": "left"},
                   {"code": "b", "name": "Bo", "score": 95}]])  # fans, alumni, fans
def test_moves_whose_hooks_follow_creation_hooks_keep_the_rows_order(
        ordered_twins: tuple[Instance, Instance], batches: list[list[dict]]) -> None:
    same_as_one_at_a_time(ordered_twins, batches)


# hooks on the creation and on the move of members that do not meet (the creation makes
# clubs, the move only greets): the batch is moved at once, after every creation hook
APART = AUTOMATIONS + """
  fan_club:
    entity: member
    on: create
    when: "score != null and score > 80"
    do:
      - create: {entity: club, values: {name: "{name} fans"}}
  farewell:
    entity: member
    on: {transition: leave}
    do:
      - set: {greeting: "Bye {name}"}
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def apart_twins(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    """Two instances of the member pack whose creation and move hooks do not meet."""
    yield from twin_instances(request.param, tmp_path, pack_files(MEMBER, APART))


@PROPERTY
@given(batches=BATCHES)
@example(batches=[[{"code": "a", "name": "Ann", "score": 90, "stage": "left"},
                   {"code": "b", "name": "Bo", "score": 95, "stage": "left"}]])
def test_moves_whose_hooks_do_not_meet_the_creation_hooks_go_at_once(
        apart_twins: tuple[Instance, Instance], batches: list[list[dict]]) -> None:
    together, _ = apart_twins
    member = together.model.entity("member")
    assert not hook_effects.interfere(together.model, member, {"start", "leave"})
    same_as_one_at_a_time(apart_twins, batches)


def test_a_bad_row_keeps_the_good_rows_checks_and_its_line(
        twins: tuple[Instance, Instance]) -> None:
    inst, _ = twins
    rows = [(10, {"code": "a", "name": "Ann"}), (11, {"code": "b", "name": ""}),
            (12, {"code": "a", "name": "Twin"}), (13, {"code": "c", "name": "Cy",
                                                      "score": 500}),
            (14, {"code": "d", "name": "Di", "email": "x@example.com"}),
            (15, {"code": "e", "name": "Ed", "email": "X@example.com"})]
    outcomes = bulk.create_many(inst, SYSTEM, "member", rows)
    assert [o.line for o in outcomes] == [10, 11, 12, 13, 14, 15]
    assert [o.id is not None for o in outcomes] == [True, False, False, False, True, False]
    assert outcomes[1].error.errors == {"name": ["is required; fill it in"]}
    assert "already used" in outcomes[2].error.errors["code"][0]  # the row above has "a"
    assert outcomes[3].error.errors == {"score": ["The score is at most 100."]}
    assert "(line 14)" in outcomes[5].error.message  # a duplicate of a row of this batch
    numbers = records.query(inst, SYSTEM, "member").rows
    assert sorted(r["number"] for r in numbers) == ["M-0001", "M-0002"]


def test_a_failing_automation_refuses_its_row_only(twins: tuple[Instance, Instance]) -> None:
    inst, _ = twins
    outcomes = bulk.create_many(inst, SYSTEM, "member", [
        (2, {"code": "a", "name": "Ann", "club": 1, "score": 60}),
        (3, {"code": "b", "name": "boom", "club": 1}),
        (4, {"code": "c", "name": "Cy", "club": 1, "score": 7})])
    assert [o.id is not None for o in outcomes] == [True, False, True]
    assert "'Refuse'" in outcomes[1].error.message
    team = records.get(inst, SYSTEM, "club", 1)
    assert (team["members"], team["points"]) == (2, 67)
    assert records.get(inst, SYSTEM, "member", outcomes[0].id)["greeting"] == "Hello Ann"


def test_who_may_not_create_is_refused_for_the_whole_batch(
        twins: tuple[Instance, Instance], make_user) -> None:
    inst, _ = twins
    nobody = make_user(inst, "nobody")
    with pytest.raises(RecordError) as refused:
        bulk.create_many(inst, nobody, "member", [(2, {"code": "a", "name": "Ann"})])
    assert refused.value.status == 403


EDITS = st.lists(st.tuples(st.integers(1, 7), st.fixed_dictionaries({}, optional={
    "score": st.integers(-3, 110), "club": st.sampled_from([1, 2, 99]),
    "email": st.sampled_from(["x@example.com", "nope", ""]),
    "name": st.sampled_from(["Ann", ""])})), max_size=8)


def _members(inst: Instance) -> None:
    """The same six members in each twin (ids 1-6), in the two clubs."""
    with inst.engine.begin() as conn:
        for sql in ("DELETE FROM member", "DELETE FROM crm_audit WHERE entity = 'member'",
                    "DELETE FROM crm_timeline", "DELETE FROM crm_autonumber",
                    "UPDATE club SET members = 0, points = 0, average = 0"):
            conn.execute(sa.text(sql))
        for n in range(6):
            conn.execute(sa.text("INSERT INTO member (id, code, name, score, club, stage, "
                                 "version, created_at, updated_at) VALUES (:i, :c, 'M', :s, "
                                 ":k, 'new', 1, '2026-01-01', '2026-01-01')"),
                         {"i": n + 1, "c": f"m{n}", "s": n * 10, "k": 1 + n % 2})


def _outcomes(outcomes: list[bulk.Outcome]) -> list[tuple[int, int | None, str | None]]:
    return [(o.line, o.id, None if o.error is None else type(o.error).__name__)
            for o in outcomes]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(edits=EDITS, deleted=st.lists(st.integers(1, 7), max_size=4))
def test_bulk_edit_and_delete_equal_one_at_a_time(
        twins: tuple[Instance, Instance], edits: list, deleted: list[int]) -> None:
    together, alone = twins
    for inst in twins:
        _members(inst)
    made = bulk.update_many(together, SYSTEM, "member", [(i, v, None) for i, v in edits])
    kept = []
    for rid, values in edits:
        try:
            with alone.engine.begin() as conn:
                version = conn.execute(sa.text("SELECT version FROM member WHERE id = :i"),
                                       {"i": rid}).scalar()
                records.update(alone, SYSTEM, "member", rid, values, version=version,
                               conn=conn)
            kept.append((rid, rid, None))
        except RecordError as exc:
            kept.append((rid, None, type(exc).__name__))
    assert _outcomes(made) == kept
    gone = bulk.delete_many(together, SYSTEM, "member", deleted)
    alone_gone = []
    for rid in deleted:
        try:
            records.delete(alone, SYSTEM, "member", rid)
            alone_gone.append((rid, rid, None))
        except RecordError as exc:
            alone_gone.append((rid, None, type(exc).__name__))
    assert _outcomes(gone) == alone_gone
    assert contents(together) == contents(alone), (edits, deleted)


def test_bulk_edit_keeps_the_permission_of_each_record(
        twins: tuple[Instance, Instance], make_user) -> None:
    inst, _ = twins
    _members(inst)
    nobody = make_user(inst, "nobody")
    outcomes = bulk.update_many(inst, nobody, "member", [(1, {"score": 5}, None)])
    assert outcomes[0].id is None and outcomes[0].error.status in (403, 404)
    outcomes = bulk.delete_many(inst, nobody, "member", [1, 2])
    assert [o.error.status in (403, 404) for o in outcomes] == [True, True]
    assert records.get(inst, SYSTEM, "member", 1)["score"] == 0
    team = records.get(inst, SYSTEM, "club", 1)
    assert team["members"] == 0  # rows inserted by hand: no rollup ran, none ran since
