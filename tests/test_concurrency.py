"""Writers at the same time, on SQLite and PostgreSQL: no lost update, no duplicate number,
no duplicate customer, no unhandled database error — only a success or a clear 409/422."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa
from record_packs import FAMILY, THING
from support import run_together

from runtime.core import db
from runtime.core.db import in_transaction
from runtime.core.errors import Conflict, RecordError, StaleVersion, ValidationFailed
from runtime.write import records

THREADS = 6


@pytest.fixture
def things(make_instance, pack, admin):
    inst = make_instance(pack({"entities/thing.yaml": THING}))
    return inst, admin(inst)


def test_autonumbers_never_repeat_under_concurrent_inserts(things):
    inst, actor = things

    def work(index: int) -> list[str]:
        return [records.create(inst, actor, "thing", {"name": f"t{index}-{n}"})["ref"]
                for n in range(5)]

    results = run_together(THREADS, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    refs = [ref for batch in results for ref in batch]
    assert len(refs) == len(set(refs)) == THREADS * 5
    assert sorted(refs) == [f"T-{n:04d}" for n in range(1, THREADS * 5 + 1)]


def test_two_writers_with_the_same_version_one_wins(things):
    inst, actor = things
    made = records.create(inst, actor, "thing", {"name": "contested", "qty": 1})

    def work(index: int) -> dict:
        return records.update(inst, actor, "thing", made["id"], {"qty": 10 + index},
                              version=made["version"])

    results = run_together(2, work)
    wins = [r for r in results if isinstance(r, dict)]
    stale = [r for r in results if isinstance(r, StaleVersion)]
    assert len(wins) == 1 and len(stale) == 1, results
    assert stale[0].current["qty"] == wins[0]["qty"] and stale[0].current["version"] == 2
    assert records.get(inst, actor, "thing", made["id"])["qty"] == wins[0]["qty"]


def test_read_modify_write_loses_no_update(things):
    inst, actor = things
    made = records.create(inst, actor, "thing", {"name": "counter", "qty": 0})
    conflicts = Counter()

    def work(index: int) -> int:
        for _ in range(50):
            current = records.get(inst, actor, "thing", made["id"])
            try:
                return records.update(inst, actor, "thing", made["id"],
                                      {"qty": current["qty"] + 1},
                                      version=current["version"])["qty"]
            except StaleVersion:
                conflicts["stale"] += 1
        raise AssertionError("never got through")

    results = run_together(THREADS, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    final = records.get(inst, actor, "thing", made["id"])
    assert final["qty"] == THREADS and final["version"] == THREADS + 1
    assert sorted(results) == list(range(1, THREADS + 1))


def test_concurrent_unique_values_give_one_record_and_clear_errors(things):
    inst, actor = things

    def work(index: int) -> dict:
        return records.create(inst, actor, "thing", {"name": f"n{index}", "code": "ABC"})

    results = run_together(THREADS, work)
    made = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, ValidationFailed)]
    assert len(made) == 1 and len(refused) == THREADS - 1, results
    assert all("code" in r.errors for r in refused)


def test_concurrent_duplicate_customers_are_blocked(spec_instance, admin):
    inst = spec_instance
    actor = admin(inst)

    def work(index: int) -> dict:
        return records.create(inst, actor, "contact", {
            "first_name": f"f{index}", "last_name": "l", "phone": "+1 555 0100"})

    results = run_together(THREADS, work)
    made = [r for r in results if isinstance(r, dict)]
    blocked = [r for r in results if isinstance(r, Conflict)]
    assert len(made) == 1 and len(blocked) == THREADS - 1, results
    assert {b.record_id for b in blocked} == {made[0]["id"]}


def test_concurrent_children_keep_the_rollup_exact(make_instance, pack, admin):
    inst = make_instance(pack(FAMILY))
    actor = admin(inst)
    parent = records.create(inst, actor, "parent", {"name": "p"})

    def work(index: int) -> list[int]:
        return [records.create(inst, actor, "child", {"name": f"c{index}-{n}", "size": 1,
                                                      "parent": parent["id"]})["id"]
                for n in range(3)]

    results = run_together(THREADS, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    got = records.get(inst, actor, "parent", parent["id"])
    assert (got["kids"], got["total"]) == (THREADS * 3, THREADS * 3)


def test_mixed_readers_and_writers_never_fail(things):
    inst, actor = things
    made = [records.create(inst, actor, "thing", {"name": f"r{i}", "qty": i})
            for i in range(4)]

    def work(index: int) -> int:
        done = 0
        for n in range(6):
            if index % 2:
                records.query(inst, actor, "thing", sort=["-qty"], limit=3)
                records.count(inst, actor, "thing")
            else:
                target = made[n % len(made)]
                current = records.get(inst, actor, "thing", target["id"])
                try:
                    records.update(inst, actor, "thing", target["id"],
                                   {"notes": f"w{index}-{n}"}, version=current["version"])
                except StaleVersion:
                    pass
                records.create(inst, actor, "thing", {"name": f"w{index}-{n}"})
            done += 1
        return done

    results = run_together(THREADS, work)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    assert all(isinstance(r, RecordError) or r == 6 for r in results)


class FakeOrig(Exception):
    def __init__(self, sqlite_errorcode=None, pgcode=None):
        super().__init__("fake")
        if sqlite_errorcode is not None:
            self.sqlite_errorcode = sqlite_errorcode
        if pgcode is not None:
            self.pgcode = pgcode


@pytest.mark.parametrize(("orig", "retried"), [
    (FakeOrig(sqlite_errorcode=5), True),  # SQLITE_BUSY
    (FakeOrig(sqlite_errorcode=6), True),  # SQLITE_LOCKED
    (FakeOrig(sqlite_errorcode=1), False),
    (FakeOrig(pgcode="40001"), True),  # serialization_failure
    (FakeOrig(pgcode="40P01"), True),  # deadlock_detected
    (FakeOrig(pgcode="42P01"), False),
])
def test_lock_errors_are_retried_then_a_409(things, monkeypatch, orig, retried):
    inst, actor = things
    monkeypatch.setattr(db.time, "sleep", lambda seconds: None)
    calls = []

    def flaky(conn):
        calls.append(1)
        if len(calls) < 3:
            raise sa.exc.OperationalError("SELECT 1", {}, orig)
        return "done"

    if retried:
        assert in_transaction(inst.engine, None, flaky) == "done"
        calls.clear()

        def always(conn):
            raise sa.exc.OperationalError("SELECT 1", {}, orig)

        with pytest.raises(Conflict) as info:
            in_transaction(inst.engine, None, always)
        assert "try again" in info.value.message
    else:
        with pytest.raises(sa.exc.OperationalError):
            in_transaction(inst.engine, None, flaky)


class FakeDiag:
    def __init__(self, name):
        self.constraint_name = name


class FakeIntegrity(Exception):
    def __init__(self, name):
        super().__init__("duplicate key value violates unique constraint (whatever it says)")
        self.diag = FakeDiag(name)


@pytest.mark.parametrize(("constraint", "field", "message"), [
    ("uq_thing_code", "code", "already used"),
    ("fk_thing_other", "other", "does not exist"),
    ("uq_thing_ref", "ref", "already used"),
])
def test_integrity_errors_map_to_fields_by_constraint_name(things, constraint, field, message):
    inst, _ = things
    ent, table = inst.model.entity("thing"), inst.schema.table("thing")
    error = records.integrity(ent, table, sa.exc.IntegrityError("INSERT", {},
                                                                 FakeIntegrity(constraint)))
    assert isinstance(error, ValidationFailed)
    assert message in error.errors[field][0]


def test_unnamed_integrity_errors_are_a_409(things):
    inst, _ = things
    ent, table = inst.model.entity("thing"), inst.schema.table("thing")
    error = records.integrity(ent, table, sa.exc.IntegrityError("INSERT", {}, Exception("?")))
    assert isinstance(error, Conflict) and error.status == 409
