"""Many new records of one entity at once, through the one write path (`records`): imports
and demo data write here (docs/records.md, "Writing many records").

`create_many` takes a batch of rows and runs the steps of `records.create` over all of them:

1. every row is read, coerced, defaulted and checked as one create checks it (field rules,
   validations, read-only fields, assignment, links, files) — one bad row is reported with its
   line and the others' checks go on;
2. unique values are compared with the table in one query per unique field, and with the
   rows before them in the batch; `block` duplicate rules likewise (the table per row, the
   batch by key); the entity's create rule is checked per row;
3. the good rows are written with one statement each for the rows (executemany, ids
   returned in order), their audit entries and `links` join rows; autonumbers come from one
   counter bump; rollups and the formulas over them are refreshed once per parent at the end
   of the batch (`derived.batch`); then each record's `after_write` hooks (automations
   `on: create`) run in row order, and the caller's `then` step (an import's move to the
   record's workflow state).

Step 3 runs in a savepoint: when it fails (an automation refuses a record, a unique value
taken by a concurrent writer), the whole batch is written again one row at a time through
`records.create`, each in a savepoint of its own, so the row at fault is reported and the
others are kept — the result is that of writing the rows one by one. Duplicate rules with
`action: warn` give no warnings here (a bulk load has nobody to confirm them).

Without a connection, a batch is one transaction; an import passes its own to keep the whole
file all-or-nothing (runtime/ops/transfer.py).

`update_many` and `delete_many` are the bulk edit and bulk delete (the list page's bulk
actions): one transaction for the batch, each record through `records.update` /
`records.delete` (its permission, rules, audit, timeline and hooks) in a savepoint of its own,
so a refused record is reported and the others kept, as when they are written one by one;
rollups over parents are refreshed once at the end (`derived.batch`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from builder.model import Entity
from runtime.core.context import Fetcher
from runtime.core.db import in_transaction, is_sqlite, mark_written
from runtime.core.errors import Conflict, RecordError
from runtime.core.values import is_empty
from runtime.read.queries import entity_of
from runtime.write import checks, derived, records

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

Then = Callable[["Connection", int, int], None]  # (conn, row's index in the batch, new id)
TAKEN = "is already used by another record; enter a different value"


@dataclass
class Outcome:
    """What became of one row: the new record's id, or the error that refused it."""

    line: Any
    id: int | None = None
    error: RecordError | None = None


def create_many(inst: Instance, actor: Actor, entity: str,
                rows: Sequence[tuple[Any, Mapping[str, Any]]], *,
                conn: Connection | None = None, then: Then | None = None) -> list[Outcome]:
    """Create a record from each (line, values) of `rows` (see the module's docstring); one
    Outcome per row, in order. `then(conn, index, id)` runs after each record's hooks, in
    the same savepoint: a RecordError there refuses that row as a check would."""
    ent = entity_of(inst, entity)
    records.may_create(inst, actor, ent)

    def work(conn: Connection) -> list[Outcome]:
        outcomes = [Outcome(line) for line, _ in rows]
        good = _checked(inst, actor, ent, rows, conn, outcomes)
        try:
            with conn.begin_nested():
                _write(inst, actor, ent, conn, good, outcomes, then)
        except (RecordError, sa.exc.IntegrityError):
            # every row again, the refused ones too: a row that took a unique value in the
            # checks may be the one that failed, and the row refused for it is good then
            outcomes = [Outcome(line) for line, _ in rows]
            _one_by_one(inst, actor, ent, conn, rows, outcomes, then)
        return outcomes

    return in_transaction(inst.engine, conn, work)


def _checked(inst: Instance, actor: Actor, ent: Entity,
             rows: Sequence[tuple[Any, Mapping[str, Any]]], conn: Connection,
             outcomes: list[Outcome]) -> list[tuple[int, dict[str, Any]]]:
    """Steps 1 and 2: the (index, record) of the rows that pass every check; the others'
    outcomes get their error."""
    fetch = Fetcher(inst, conn)  # nothing is written during the checks: one cache for all
    prepared = []
    for index, (_, values) in enumerate(rows):
        try:
            given = records.input_values(values)
            given.pop("_confirm_duplicates", None)
            prepared.append((index, *records.new_record(inst, actor, ent, given, conn, fetch)))
        except RecordError as exc:
            outcomes[index].error = exc
    taken = checks.unique_taken(conn, ent, inst.schema.table(ent.name),
                                [record for _, record, _ in prepared])
    seen: dict[tuple[Any, ...], Any] = {}
    good = []
    for index, record, errors in prepared:
        keys = checks.blocking_keys(ent, record)
        try:
            for name, values in taken.items():
                if not is_empty(record.get(name)) and record[name] in values:
                    errors.setdefault(name, []).append(TAKEN)
            records.admit(inst, actor, ent, record, errors, conn)
            _no_twin(ent, keys, seen)
            checks.duplicates(inst, conn, ent, record, None, True)
        except RecordError as exc:
            outcomes[index].error = exc
            continue
        for name, values in taken.items():
            if not is_empty(record.get(name)):
                values.add(record[name])
        seen.update(dict.fromkeys(keys, outcomes[index].line))
        good.append((index, record))
    return good


def _no_twin(ent: Entity, keys: list[tuple[Any, ...]], seen: Mapping[tuple[Any, ...], Any]
             ) -> None:
    """Conflict when a row before this one in the batch matches it by a `block` rule."""
    for key in keys:
        if key in seen:
            labels = ", ".join(str(ent.fields[n].label) for n in ent.duplicates[key[0]].match)
            raise Conflict(f"A {ent.label} with the same {labels} is already in this import "
                           f"(line {seen[key]}); enter it once.", entity=ent.name)


def _write(inst: Instance, actor: Actor, ent: Entity, conn: Connection,
           good: list[tuple[int, dict[str, Any]]], outcomes: list[Outcome],
           then: Then | None) -> None:
    """Step 3: the rows, their audit, links and rollups, then each one's hooks."""
    new = [record for _, record in good]
    if not new:
        return
    table = inst.schema.table(ent.name)
    records.number_records(inst, conn, ent, new)
    ids = _insert(conn, table, [records.row_values(ent, table, r) for r in new])
    mark_written(conn)
    for record, record_id in zip(new, ids, strict=True):
        record["id"] = int(record_id)
    with derived.batch(inst, conn):
        records.created(inst, conn, actor, ent, new)
        for index, record in good:
            records.fire_created(inst, conn, actor, ent, record)
            if then is not None:
                then(conn, index, record["id"])
            outcomes[index].id = record["id"]


def _insert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert the rows with one statement; their ids, in order. PostgreSQL returns them
    (INSERT … RETURNING, sorted by the rows' order); SQLite would run one statement per row
    to do so, so there the rows go in with a plain executemany and, as the transaction holds
    the write lock, take the ids after the last one in a row — checked by counting them."""
    if not is_sqlite(conn):
        return [int(i) for i in conn.execute(records.insert_statement(table), rows).scalars()]
    conn.execute(table.insert(), rows)
    last = int(conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
    first = last - len(rows) + 1
    found = conn.execute(sa.select(sa.func.count()).select_from(table).where(
        table.c.id.between(first, last))).scalar_one()
    if found != len(rows):
        raise Conflict("The new records did not get consecutive ids; import them again.")
    return list(range(first, last + 1))


def _one_by_one(inst: Instance, actor: Actor, ent: Entity, conn: Connection,
                rows: Sequence[tuple[Any, Mapping[str, Any]]], outcomes: list[Outcome],
                then: Then | None) -> None:
    """The batch written again one row at a time after its write failed: each row's own
    error is then known."""
    for index in range(len(rows)):
        try:
            with conn.begin_nested():
                record = records.create(inst, actor, ent.name, rows[index][1], conn=conn)
                if then is not None:
                    then(conn, index, record["id"])
            outcomes[index].id = record["id"]
        except RecordError as exc:
            outcomes[index].error = exc


Change = tuple[int, Mapping[str, Any], "int | None"]  # (record id, values, version read)


def update_many(inst: Instance, actor: Actor, entity: str, changes: Sequence[Change], *,
                conn: Connection | None = None) -> list[Outcome]:
    """Change each (id, values, version) of `changes` through `records.update` in one
    transaction (see the module's docstring); a version of None is the record's current
    one (read for the whole batch in one query). One Outcome per change (`line` is the id)."""
    ent = entity_of(inst, entity)

    def work(conn: Connection) -> list[Outcome]:
        current = _versions(inst, conn, ent, [rid for rid, _, version in changes
                                              if version is None])
        outcomes = []

        def change(rid: int, values: Mapping[str, Any], version: int | None) -> None:
            done = records.update(inst, actor, entity, rid, values, conn=conn,
                                  version=current.get(rid) if version is None else version)
            if rid in current and "version" in done:  # a record changed twice in the batch
                current[rid] = done["version"]

        with derived.batch(inst, conn):
            for rid, values, version in changes:
                outcomes.append(_each(conn, rid, lambda r=rid, v=values, n=version:
                                      change(r, v, n)))
        return outcomes

    return in_transaction(inst.engine, conn, work)


def delete_many(inst: Instance, actor: Actor, entity: str, ids: Sequence[int], *,
                conn: Connection | None = None) -> list[Outcome]:
    """Delete each record of `ids` through `records.delete` in one transaction (see the
    module's docstring); one Outcome per id (`line` and `id` are the record's id)."""
    entity_of(inst, entity)

    def work(conn: Connection) -> list[Outcome]:
        with derived.batch(inst, conn):
            return [_each(conn, rid, lambda rid=rid: records.delete(inst, actor, entity, rid,
                                                                     conn=conn))
                    for rid in ids]

    return in_transaction(inst.engine, conn, work)


def _each(conn: Connection, rid: int, write: Callable[[], Any]) -> Outcome:
    """One record's write in a savepoint of its own: its Outcome."""
    try:
        with conn.begin_nested():
            write()
    except RecordError as exc:
        return Outcome(rid, error=exc)
    return Outcome(rid, id=rid)


def _versions(inst: Instance, conn: Connection, ent: Entity, ids: list[int]) -> dict[int, int]:
    """{id: version} of the records of `ids` that exist (500 ids a query)."""
    table = inst.schema.table(ent.name)
    found: dict[int, int] = {}
    wanted = sorted({i for i in ids if isinstance(i, int)})
    for start in range(0, len(wanted), 500):
        found.update((int(i), int(v)) for i, v in conn.execute(sa.select(
            table.c.id, table.c.version).where(table.c.id.in_(wanted[start:start + 500]))))
    return found
