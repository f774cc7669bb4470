"""Many records of one entity at once, through the one write path (`records`): imports
(new records and `--update-by`'s changes) and demo data write here (docs/records.md,
"Writing many records").

`upsert_many` takes a batch of rows, each new or naming the record it changes, and runs the
steps of `records.create` and `records.update` over all of them (`create_many` when all
are new):

1. the records the batch changes are read in one query per 500 (locked on PostgreSQL);
   every row is read, coerced, defaulted and checked as one create or update checks it
   (`records.new_record` / `records.revised`: permissions, field rules, validations,
   read-only fields, assignment, links, files) — one bad row is reported with its line and
   the others' checks go on;
2. unique values are compared with the table in one query per unique field, and with the
   rows before them in the batch (a change that frees a value lets a later row take it);
   `block` duplicate rules likewise (the table by one query per rule and 500 keys, then
   a row's own check only when its key is there; the batch by key); the entity's
   create rule is checked per new row;
3. the good rows are written: the changes with one compiled UPDATE … WHERE id AND version
   (executemany; each row's version bumped, the count of rows matched checked as a single
   update checks it), then the new rows with one INSERT (ids returned in order); their
   audit entries (old → new value of each changed field) with one statement each, `links`
   join rows, the owner's change on the timeline; autonumbers come from one counter bump;
   rollups and the formulas over them are refreshed once per parent at the end of the
   batch (`derived.batch`); then each record's `after_write` hooks (automations `on:
   create` or `on: update`) run in row order, and the caller's `then` step (an import's
   move to the record's workflow state).

Step 3 runs in a savepoint: when it fails (an automation refuses a record, a unique value
taken by a concurrent writer), or when a check of step 2 found a record that an earlier
row of the batch changes (the answer depends on the order), the whole batch is written
again one row at a time through `records.create` / `records.update`, each in a savepoint
of its own, so the row at fault is reported and the others are kept — the result is that
of writing the rows one by one. Duplicate rules with `action: warn` give no warnings here
(a bulk load has nobody to confirm them).

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from builder.model import Entity
from runtime.core import phones, rowcache
from runtime.core.context import Fetcher
from runtime.core.db import (
    copies,
    for_driver,
    in_transaction,
    insert_many,
    is_sqlite,
    mark_written,
    update_by_copy,
)
from runtime.core.errors import Conflict, RecordError, ValidationFailed
from runtime.core.schema import rows_by_id
from runtime.core.values import Errors, is_empty
from runtime.read.queries import entity_of, load_many, not_found
from runtime.write import checks, derived, records

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

Row = tuple[Any, Mapping[str, Any], "int | None"]  # (line, values, id of the record it changes)
TAKEN = "is already used by another record; enter a different value"


@dataclass
class Outcome:
    """What became of one row: the record's id (new or changed), or the error that refused
    it."""

    line: Any
    id: int | None = None
    error: RecordError | None = None


@dataclass(frozen=True)
class Then:
    """The caller's step after the records' hooks, in the batch's savepoint: `run(conn,
    [(row's index in the batch, record id)])`. With `each`, it runs after each record's own
    hooks with that record alone, before the next record's hooks (as when the rows are
    written one by one: the order matters when the step fires hooks too); without, once
    with every record of the batch, after all their hooks."""

    run: Callable[[Connection, list[tuple[int, int]]], None]
    each: bool = True


@dataclass
class _Checked:
    """A row read and checked: the record to write; for a change, the record before it and
    the fields it changes."""

    index: int
    record: dict[str, Any]
    errors: Errors
    old: dict[str, Any] | None = None
    changed: list[str] = field(default_factory=list)
    transition: str | None = None


class _OrderMatters(Exception):
    """A check found a record that an earlier row of the batch changes: only writing the
    rows one by one tells whether it still matches."""


def create_many(inst: Instance, actor: Actor, entity: str,
                rows: Sequence[tuple[Any, Mapping[str, Any]]], *,
                conn: Connection | None = None, then: Then | None = None) -> list[Outcome]:
    """Create a record from each (line, values) of `rows`: `upsert_many` of new records."""
    return upsert_many(inst, actor, entity, [(line, values, None) for line, values in rows],
                       conn=conn, then=then)


def upsert_many(inst: Instance, actor: Actor, entity: str, rows: Sequence[Row], *,
                conn: Connection | None = None, then: Then | None = None) -> list[Outcome]:
    """Write each (line, values, id) of `rows`: a new record when id is None, else a change
    to that record (see the module's docstring); one Outcome per row, in order.
    `then` runs after the records' hooks (see `Then`), in the same savepoint: a RecordError
    there refuses the batch, which is then written again row by row, and so that row alone,
    as a check would."""
    ent = entity_of(inst, entity)
    if any(rid is None for _, _, rid in rows):
        records.may_create(inst, actor, ent)
    return _run(inst, actor, ent, rows, conn, then, _Moves.none())


Move = tuple[int, str, Mapping[str, Any]]  # (record id, transition, values changed with it)


def move_many(inst: Instance, actor: Actor, entity: str, moves: Sequence[Move], *,
              conn: Connection | None = None, comment: str | None = None) -> list[Outcome]:
    """Move each (id, transition, values) of `moves` along its workflow transition, as
    `records.update(id, values, transition=...)` moves one record (its rules, audit, the
    transition on the timeline with `comment`, hooks), a batch at a time: the steps of
    `upsert_many`; one Outcome per move (`line` is the id)."""
    ent = entity_of(inst, entity)
    for _, name, _ in moves:
        records.known_transition(ent, name)
    return _run(inst, actor, ent, [(rid, values, rid) for rid, _, values in moves], conn,
                None, _Moves([name for _, name, _ in moves], comment))


@dataclass(frozen=True)
class _Moves:
    """The workflow transition each row of a batch makes (`move_many`), and the comment the
    timeline keeps; no transitions for `upsert_many`."""

    transitions: Sequence[str | None]
    comment: str | None = None

    @classmethod
    def none(cls) -> _Moves:
        return cls(())

    def of(self, index: int) -> str | None:
        return self.transitions[index] if self.transitions else None


def _run(inst: Instance, actor: Actor, ent: Entity, rows: Sequence[Row],
         conn: Connection | None, then: Then | None, moves: _Moves) -> list[Outcome]:
    def work(conn: Connection) -> list[Outcome]:
        outcomes = [Outcome(line) for line, _, _ in rows]
        with rowcache.kept(conn):  # the records the batch links to, read once
            try:
                good = _checked(inst, actor, ent, rows, conn, outcomes, moves)
                with conn.begin_nested():
                    _write(inst, actor, ent, conn, good, outcomes, then, moves)
            except (_OrderMatters, RecordError, sa.exc.IntegrityError):
                # every row again, the refused ones too: a row that took a unique value in
                # the checks may be the one that failed, and the row refused for it is good
                outcomes = [Outcome(line) for line, _, _ in rows]
                _one_by_one(inst, actor, ent, conn, rows, outcomes, then, moves)
        return outcomes

    return in_transaction(inst.engine, conn, work)


def _checked(inst: Instance, actor: Actor, ent: Entity, rows: Sequence[Row],
             conn: Connection, outcomes: list[Outcome], moves: _Moves) -> list[_Checked]:
    """Steps 1 and 2: the rows that pass every check, in order; the others' outcomes get
    their error."""
    fetch = Fetcher(inst, conn)  # nothing is written during the checks: one cache for all
    fetch.prefetch_links(ent, [values for _, values, _ in rows if isinstance(values, Mapping)])
    current = _current(inst, actor, ent, conn, [rid for _, _, rid in rows if rid is not None])
    prepared = []
    for index, (_, values, rid) in enumerate(rows):
        try:
            given = records.input_values(values)
            given.pop("_confirm_duplicates", None)
            if rid is None:
                prepared.append(_Checked(index, *records.new_record(inst, actor, ent, given,
                                                                    conn, fetch)))
                continue
            old = current.get(rid)
            if old is None:
                raise not_found(ent, rid)
            transition = moves.of(index)
            record, changed, errors = records.revised(inst, actor, ent, old, given, conn,
                                                      transition=transition, fetch=fetch)
            prepared.append(_Checked(index, record, errors, old, changed, transition))
        except RecordError as exc:
            outcomes[index].error = exc
    holders = _holders(conn, ent, inst.schema.table(ent.name), prepared)
    keys = {row.index: _blocking_keys(ent, row) for row in prepared}
    in_table = _keys_in_table(conn, ent, inst.schema.table(ent.name), prepared, keys)
    seen: dict[tuple[Any, ...], Any] = {}
    moved: set[int] = set()  # records changed by the rows checked so far
    good = []
    for row in prepared:
        rid = None if row.old is None else int(row.old["id"])
        unique = [n for n in holders if rid is None or n in row.changed]
        try:
            for name in unique:
                value = row.record.get(name)
                if not is_empty(value) and holders[name].get(value, set()) - {rid}:
                    row.errors.setdefault(name, []).append(TAKEN)
            if rid is None:
                records.admit(inst, actor, ent, row.record, row.errors, conn)
            elif row.errors:
                raise ValidationFailed(row.errors)
            if rid is None or row.changed or row.transition:
                _no_twin(ent, keys[row.index], seen)
                if in_table.intersection(keys[row.index]):
                    _no_duplicate(inst, conn, ent, row, moved)
        except RecordError as exc:
            outcomes[row.index].error = exc
            continue
        for name in unique:
            if row.old is not None:
                holders[name].get(row.old.get(name), set()).discard(rid)
            if not is_empty(row.record.get(name)):
                holders[name].setdefault(row.record[name], set()).add(
                    -1 - row.index if rid is None else rid)
        seen.update(dict.fromkeys(keys[row.index], outcomes[row.index].line))
        if rid is not None and (row.changed or row.transition):
            moved.add(rid)
        good.append(row)
    return good


def _current(inst: Instance, actor: Actor, ent: Entity, conn: Connection, ids: list[int]
             ) -> dict[int, dict[str, Any]]:
    """{id: record} of the records of `ids` the actor may read (as `records.load` reads
    one: every field, `links` too; locked on PostgreSQL), 500 a query."""
    return load_many(inst, conn, ent.name, ids, actor=actor, for_update=True)


def _holders(conn: Connection, ent: Entity, table: sa.Table, prepared: list[_Checked]
             ) -> dict[str, dict[Any, set[int]]]:
    """{unique field: {value the batch writes: ids of the records holding it now}}, one
    query per field and 500 values."""
    holders: dict[str, dict[Any, set[int]]] = {}
    for name, f in ent.fields.items():
        if not (f.unique and name in table.c):
            continue
        wanted = sorted({row.record[name] for row in prepared
                         if (row.old is None or name in row.changed)
                         and not is_empty(row.record.get(name))}, key=str)
        holders[name] = {}
        for i in range(0, len(wanted), 500):
            for rid, value in conn.execute(sa.select(table.c.id, table.c[name]).where(
                    table.c[name].in_(wanted[i:i + 500]))):
                holders[name].setdefault(value, set()).add(int(rid))
    return holders


def _blocking_keys(ent: Entity, row: _Checked) -> list[tuple[Any, ...]]:
    """The keys of the `block` duplicate rules the row is checked by (`checks.blocking_keys`):
    every rule it fills for a new record, those on the fields it changes for a change."""
    return [key for key in checks.blocking_keys(ent, row.record)
            if row.old is None or set(ent.duplicates[key[0]].match) & set(row.changed)]


def _keys_in_table(conn: Connection, ent: Entity, table: sa.Table,
                   prepared: list[_Checked], keys: Mapping[int, list[tuple[Any, ...]]]
                   ) -> set[tuple[Any, ...]]:
    """The rows' duplicate keys that a record in the table has, one query per rule and 500
    keys: only a row with one of them needs its own check (`_no_duplicate`). On PostgreSQL
    the duplicate locks of the rows that will be checked are taken first, in their order, as
    each row's check takes its own (`checks.serialise_duplicates`): a concurrent writer of
    the same key is waited for, then its record is found."""
    checked = [row for row in prepared
               if not row.errors and (row.old is None or row.changed or row.transition)]
    checks.serialise_many(conn, ent, [row.record for row in checked])
    return checks.keys_in_table(conn, ent, table,
                                [key for row in checked for key in keys[row.index]])


def _no_duplicate(inst: Instance, conn: Connection, ent: Entity, row: _Checked,
                  moved: set[int]) -> None:
    """Conflict when a `block` duplicate rule finds the record in the table (for a change,
    on the fields it changes); _OrderMatters when what it finds is a record that an earlier
    row of the batch changes. Run only for a row whose key the table has (`_keys_in_table`
    took the locks)."""
    try:
        checks.refuse_duplicates(inst, conn, ent, row.record,
                                 None if row.old is None else set(row.changed))
    except Conflict as exc:
        if exc.record_id in moved:
            raise _OrderMatters from exc
        raise


def _no_twin(ent: Entity, keys: list[tuple[Any, ...]], seen: Mapping[tuple[Any, ...], Any]
             ) -> None:
    """Conflict when a row before this one in the batch matches it by a `block` rule."""
    for key in keys:
        if key in seen:
            labels = ", ".join(str(ent.fields[n].label) for n in ent.duplicates[key[0]].match)
            raise Conflict(f"A {ent.label} with the same {labels} is already in this import "
                           f"(line {seen[key]}); enter it once.", entity=ent.name)


def _write(inst: Instance, actor: Actor, ent: Entity, conn: Connection, good: list[_Checked],
           outcomes: list[Outcome], then: Then | None, moves: _Moves) -> None:
    """Step 3: the changes, the new rows, their audit, links and rollups, then each one's
    hooks in row order, then the caller's `then`."""
    table = inst.schema.table(ent.name)
    changes = [row for row in good if row.old is not None and (row.changed or row.transition)]
    new = [row.record for row in good if row.old is None]
    if changes:
        _update(inst, actor, ent, conn, table, changes)
    if new:
        records.number_records(inst, conn, ent, new)
        ids = _insert(conn, table, [records.row_values(ent, table, r) for r in new])
        mark_written(conn)
        for record, record_id in zip(new, ids, strict=True):
            record["id"] = int(record_id)
    with derived.batch(inst, conn):
        if new:
            records.created(inst, conn, actor, ent, new)
        if changes:
            records.updated(inst, conn, actor, ent,
                            [(row.old, row.record, row.changed) for row in changes],
                            "transition" if moves.transitions else "update")
            records.moved(inst, conn, actor, ent, [
                (row.old, row.record, row.transition) for row in changes if row.transition],
                moves.comment)
        for row in changes:
            derived.refresh_rollups(inst, conn, ent.name, row.old, row.record)
        if any(inst.model.automations_for(ent.name, kind)
               for kind in ("create", "update", "transition")):
            _keep_rows(conn, table, [row.record["id"] for row in good])
        for row in good:
            if row.old is None:
                records.fire_created(inst, conn, actor, ent, row.record)
            elif row.changed or row.transition:
                records.fire_updated(inst, conn, actor, ent, row.record, row.old,
                                     transition=row.transition)
            if then is not None and then.each:
                then.run(conn, [(row.index, row.record["id"])])
            outcomes[row.index].id = row.record["id"]
        if then is not None and not then.each:
            then.run(conn, [(row.index, row.record["id"]) for row in good])


def _keep_rows(conn: Connection, table: sa.Table, ids: list[int]) -> None:
    """The batch's rows as written, read 500 at a time and kept for its automations: each
    reads its record again before each action (`rowcache`), with a lock on PostgreSQL,
    which this transaction holds already: it wrote them."""
    for record_id, row in rows_by_id(conn, table, ids).items():
        rowcache.keep(conn, table.name, record_id, row, locked=True)


def _update(inst: Instance, actor: Actor, ent: Entity, conn: Connection, table: sa.Table,
            changes: list[_Checked]) -> None:
    """The changed rows with one compiled UPDATE … WHERE id AND version (executemany): every
    row gives each column any row of the batch changes (its own value where it changes
    none), so that one statement fits all; each row's version goes up by one."""
    now = inst.now()
    changed = {name for row in changes for name in row.changed}
    names = [n for n in ent.fields if n in table.c and n in changed]
    stamps = [k for k in ("updated_at", "updated_by", "version") if k in ent.fields]
    stamped = [k for k in ("updated_at", "updated_by", "version") if k in table.c]
    phoned = any(ent.fields[n].type == "phone" for n in names)
    params = []
    for row in changes:
        old, record = row.old, row.record
        assert old is not None
        stamp = {"updated_at": now, "updated_by": actor.user_id, "version": old["version"] + 1}
        record.update({k: stamp[k] for k in stamps})
        columns = {n: record[n] if n in row.changed else old.get(n) for n in names}
        if phoned:
            columns |= phones.shadow_values(ent, columns)
        columns.update({k: record[k] for k in stamped})
        columns["_crm_id"], columns["_crm_version"] = old["id"], old["version"]
        params.append(columns)
    mark_written(conn)
    try:
        matched = _update_rows(conn, table, params)
    except sa.exc.IntegrityError as exc:
        raise records.integrity(ent, table, exc) from exc
    # one fewer row matched means someone saved a record since it was read, or the batch
    # changes one record twice (the rows one by one say which); where the driver cannot
    # count (None), `_current` locked the rows (FOR NO KEY UPDATE) when it read them
    if matched is not None and matched != len(params):
        raise Conflict(f"A {ent.label} changed while the batch was written.")


def _update_rows(conn: Connection, table: sa.Table, params: list[dict[str, Any]]
                 ) -> int | None:
    """Run the table's UPDATE (`records.update_statement`) once per row of `params` (each
    with the same keys); the count of rows it matched, None where the driver cannot tell.
    On PostgreSQL (psycopg2) the rows go by COPY into a temporary table, then one
    UPDATE … FROM it (`db.update_by_copy`). On SQLite the values go to the driver as
    SQLAlchemy's own executemany makes them (each through its bind processor, None too),
    from a statement compiled once per set of keys: SQLAlchemy would build and process every
    row's parameters anew, as `db.insert_many` explains."""
    stmt = records.update_statement(table)
    keys = tuple(params[0])
    if (any(c.onupdate is not None for c in table.c if c.name not in keys)
            or not (is_sqlite(conn) or copies(conn))):
        result = conn.execute(stmt, params)
        return result.rowcount if conn.dialect.supports_sane_multi_rowcount else None
    if copies(conn):
        return update_by_copy(conn, table, params, {"id": "_crm_id", "version": "_crm_version"})

    sql, plan = for_driver(conn, table, stmt, "update_many_raw", keys)
    return conn.exec_driver_sql(sql, [
        tuple(row[key] if convert is None else convert(row[key]) for key, convert in plan)
        for row in params]).rowcount


def _insert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert the rows with one statement; their ids, in order. PostgreSQL returns them
    (INSERT … RETURNING, sorted by the rows' order); SQLite would run one statement per row
    to do so, so there the rows go in with a plain executemany and, as the transaction holds
    the write lock, take the ids after the last one in a row — checked by counting them."""
    if not is_sqlite(conn):
        return [int(i) for i in conn.execute(records.insert_statement(table), rows).scalars()]
    insert_many(conn, table, rows)
    last = int(conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
    first = last - len(rows) + 1
    found = conn.execute(sa.select(sa.func.count()).select_from(table).where(
        table.c.id.between(first, last))).scalar_one()
    if found != len(rows):
        raise Conflict("The new records did not get consecutive ids; import them again.")
    return list(range(first, last + 1))


def _one_by_one(inst: Instance, actor: Actor, ent: Entity, conn: Connection,
                rows: Sequence[Row], outcomes: list[Outcome], then: Then | None,
                moves: _Moves) -> None:
    """The batch written again one row at a time after its write failed: each row's own
    error is then known."""
    for index, (_, values, rid) in enumerate(rows):
        try:
            with conn.begin_nested():
                if rid is None:
                    record_id = records.create(inst, actor, ent.name, values, conn=conn)["id"]
                else:
                    version = None if actor.system else _versions(inst, conn, ent,
                                                                   [rid]).get(rid)
                    records.update(inst, actor, ent.name, rid, values, conn=conn,
                                   version=version, transition=moves.of(index),
                                   comment=moves.comment)
                    record_id = rid
                if then is not None:
                    then.run(conn, [(index, record_id)])
            outcomes[index].id = record_id
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
    return {rid: int(row["version"]) for rid, row in rows_by_id(
        conn, table, [i for i in ids if isinstance(i, int)], table.c.version).items()}
