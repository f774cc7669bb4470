"""Importing CSV and XLSX files into records, for `crmforge import` (runtime/ops/transfer.py)
and the web's `/admin/import` (runtime/http/web/admin/imports.py, with its jobs in
`runtime.process.import_jobs`).

An import streams the file (`Reader`) and writes its rows a batch at a time through the one
write path's bulk form (`runtime.write.bulk.upsert_many`: new records and, with
`--update-by`, changes to existing ones). `import_rows` does so in one transaction: the rows
are checked by the same rules as a form or the API, a row's problems are reported with its
line number, and unless `skip_invalid` nothing is kept when any row is bad — nor when the
import is killed half-way (the transaction is never committed). `dry_run` checks everything
and keeps nothing. `import_batches` commits (or, dry, rolls back) each batch on its own, so
that a job can show its progress to every process as it goes.

Columns are matched to fields by name or by label (`suggest_columns`). Links take the linked
record's id, or its title field (a username for users). `--update-by FIELD` updates the record
whose FIELD holds the row's value, and creates one when there is none: the records a batch
names are found with one query (per 500 values), and its changes are written with its new
records (one UPDATE and one INSERT executemany per batch). A text cell that an export escaped
(`'=x`: a quote before a character that starts a spreadsheet formula) imports as it was stored
(`=x`). A choice (the workflow's state too) takes its code (`web`) or its label
(`Web`, in any of the definition's languages, case aside), so an export — labels unless
`--codes` — imports back either way.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from builder.diagnostics import did_you_mean
from builder.model import AppModel, Entity, Field
from runtime.core import caches, rowcache
from runtime.core.db import write_transaction
from runtime.core.errors import RecordError, ValidationFailed
from runtime.core.instance import Actor, Instance
from runtime.core.schema import rows_by_id
from runtime.core.values import coerce_value
from runtime.process import hook_effects
from runtime.read.export import unescape
from runtime.read.queries import entity_of
from runtime.write import bulk, records

SKIPPED = ("id", "created_at", "updated_at", "created_by", "updated_by", "version",
           "last_activity_at")


class TransferError(Exception):
    """A file that cannot be imported as a whole (unreadable, unknown columns)."""


# -- writing one record, state included ----------------------------------------------------


def unsettable(ent: Entity, name: str) -> bool:
    """Fields nobody writes, not even an import: computed ones (formulas, rollups,
    autonumbers, system fields). `readonly: true` fields bind users only: an import, like an
    automation, acts as the system and brings their values in."""
    return ent.fields[name].computed


def write(inst: Instance, actor: Actor, conn: Connection, entity: str,
          values: Mapping[str, Any], record_id: int | None = None) -> dict[str, Any]:
    """Create (or update) a record through `records`, including its workflow state.

    The state field changes only through a transition; data brought in from elsewhere
    (demo data, an import from another system) is already in its state, so after the write the
    record is moved there with a transition that leads to it — kept on its timeline like any
    other, with "imported" as the comment.
    """

    ent = inst.model.entity(entity)
    values = dict(values)
    state = ent.workflow.field if ent.workflow is not None else None
    target = values.pop(state, None) if state else None
    if record_id is None:
        record = records.create(inst, actor, entity, values, conn=conn)
    elif values:
        record = records.update(inst, actor, entity, record_id, values, version=None,
                                conn=conn)
    else:
        record = records.get(inst, actor, entity, record_id, conn=conn)
    if target is not None and record.get(state) != target:
        _state_known(ent, target)
        record = _move(inst, actor, conn, ent, record["id"], target)
    return record


MOVE_COMMENT = "imported"  # on the timeline of a record an import moved to its state


def write_many(inst: Instance, actor: Actor, conn: Connection, entity: str,
               rows: list[tuple[Any, Mapping[str, Any]]],
               ids: Sequence[int | None] | None = None) -> list[bulk.Outcome]:
    """`write` for a batch of records at once (`bulk.upsert_many`): one Outcome per
    (line, values), in order; `ids[i]` is the record row i changes (None: a new one; no
    `ids`: all new)."""
    ent = inst.model.entity(entity)
    state = ent.workflow.field if ent.workflow is not None else None
    targets: list[Any] = []
    given: list[tuple[Any, Mapping[str, Any]]] = []
    refused: dict[int, RecordError] = {}
    for index, (_, values) in enumerate(rows):
        values = dict(values)
        targets.append(values.pop(state, None) if state else None)
        try:
            if targets[-1] is not None:
                _state_known(ent, targets[-1])
        except RecordError as exc:
            refused[index] = exc
            continue
        given.append((index, values))

    def move(conn: Connection, done: list[tuple[int, int]]) -> None:
        """Move the records written to their rows' states: their states read (automations
        may have moved them), then one `records.update` or, for many, `bulk.move_many`."""
        wanted = {record_id: targets[given[at][0]] for at, record_id in done
                  if targets[given[at][0]] is not None}
        if not wanted or state is None:
            return
        current = _states(inst, conn, ent, state, list(wanted))  # automations may move them
        moves = [(rid, target) for rid, target in wanted.items() if current.get(rid) != target]
        if len(moves) == 1:
            _move(inst, actor, conn, ent, *moves[0])
            return
        for outcome in bulk.move_many(inst, actor, entity, [
                (rid, _transition_into(ent, target), {state: target}) for rid, target in moves],
                conn=conn, comment=MOVE_COMMENT):
            if outcome.error is not None:  # the batch is written again row by row
                raise outcome.error

    written = bulk.upsert_many(inst, actor, entity, [
        (rows[i][0], v, None if ids is None else ids[i]) for i, v in given], conn=conn,
        then=bulk.Then(move, each=_hooks_in_order(inst.model, ent, {
            _transition_into(ent, target) for target in targets if target is not None})))
    outcomes = [bulk.Outcome(line, error=refused.get(i)) for i, (line, _) in enumerate(rows)]
    for (index, _), outcome in zip(given, written, strict=True):
        outcomes[index] = outcome
    return outcomes


def _hooks_in_order(model: AppModel, ent: Entity, transitions: set[str]) -> bool:
    """Whether the records of a batch must be moved to their states one at a time, each
    right after its own `on: create` hooks: when the hooks that follow their creation and
    those that follow their moves (by one of `transitions`) may meet — both take ids of one
    table or turns of one round-robin, or one changes what the other reads
    (`hook_effects.interfere`) — their order may change what they do. Otherwise the batch
    is moved at once after all its creation hooks, with the same result."""
    return hook_effects.interfere(model, ent, transitions)


def _state_known(ent: Entity, target: Any) -> None:
    assert ent.workflow is not None
    if target not in ent.workflow.states:
        raise ValidationFailed({ent.workflow.field: [
            f"must be one of: {', '.join(ent.workflow.states)}"]})


def _move(inst: Instance, actor: Actor, conn: Connection, ent: Entity, record_id: int,
          target: Any) -> dict[str, Any]:
    """Move a record to the workflow state `target` with a transition that leads there."""
    assert ent.workflow is not None
    return records.update(inst, actor, ent.name, record_id, {ent.workflow.field: target},
                          version=None, conn=conn, transition=_transition_into(ent, target),
                          comment=MOVE_COMMENT)


def _transition_into(ent: Entity, target: Any) -> str:
    """A transition that leads to the state `target` (the first one declared), else the
    first transition: the record is moved by it to `target`."""
    assert ent.workflow is not None
    into = [t for t in ent.workflow.transitions.values() if t.to == target]
    return (into[0] if into else next(iter(ent.workflow.transitions.values()))).name


def _states(inst: Instance, conn: Connection, ent: Entity, state: str, ids: list[int]
            ) -> dict[int, Any]:
    """{id: workflow state} of the records of `ids` that exist: one record with a
    statement built once (a batch moved record by record reads one per record), many 500
    ids a query."""
    table = inst.schema.table(ent.name)
    if len(ids) == 1:
        kept = rowcache.cached(conn, table.name, ids[0])
        if isinstance(kept, Mapping):
            return {ids[0]: kept[state]}  # as read since the last write
        found = conn.execute(caches.STATEMENTS.get(table, "state", lambda: sa.select(
            table.c[state]).where(table.c.id == sa.bindparam("_crm_id"))),
            {"_crm_id": ids[0]}).first()
        return {} if found is None else {ids[0]: found[0]}
    return {rid: row[state] for rid, row in rows_by_id(conn, table, ids,
                                                      table.c[state]).items()}


def problem_text(exc: Exception) -> str:
    """A refused write as one line: "field: message; field: message"."""
    errors = getattr(exc, "errors", None)
    if isinstance(errors, Mapping) and errors:
        return "; ".join(f"{k}: {', '.join(v)}" if k != "_record" else ", ".join(v)
                         for k, v in errors.items())
    return str(getattr(exc, "message", exc))


# -- reading files -----------------------------------------------------------------------

BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
SAMPLE = 4096  # characters read to tell the separator
NOT_DECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)


class Reader:
    """The rows of a CSV or XLSX file, read as they are iterated (memory stays flat for any
    size): `header`, then (line, {column: value}) for each row that is not empty; `fraction()`
    is how much of the file has been read. CSV is UTF-8 (with or without a byte-order mark) or
    UTF-16 with one; anything else is a TransferError naming the line. Use it as a context
    manager, which closes the file."""

    def __init__(self, path: Path):
        if not path.is_file():
            raise TransferError(f"{path}: no such file")
        self.path = path
        self.size = max(path.stat().st_size, 1)
        self.header: list[str] = []
        self._done = 0.0
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            self._rows = self._xlsx()
        else:
            self._rows = self._csv()
        self.header = next(self._rows)  # type: ignore[assignment]

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._rows.close()

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        return self._rows  # type: ignore[return-value]

    def fraction(self) -> float:
        return min(self._done, 1.0)

    def _csv(self) -> Iterator[Any]:
        with self.path.open("rb") as raw:
            start = raw.read(4)
            raw.seek(0)
            encoding = next((name for bom, name in BOMS if start.startswith(bom)), "utf-8")
            # newline="": a "\r" inside a quoted value (a note typed in a browser holds
            # "\r\n") stays as it is
            # bytes that are not UTF-8 come through as surrogates, found on their own line
            text = io.TextIOWrapper(raw, encoding=encoding, newline="",
                                    errors="surrogateescape")
            sample = self._decoded(lambda: text.read(SAMPLE), 1)
            if NOT_DECODED.search(sample):
                self._not_utf8(sample[:NOT_DECODED.search(sample).start()].count("\n") + 1)
            if sample.count("\0") > len(sample) // 100 + 1:  # one in a cell is the row's problem
                raise TransferError(f"{self.path}: not a CSV file (it holds binary data); "
                                    "save it as CSV (UTF-8) or XLSX")
            try:
                dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            text.seek(0)
            reader = csv.reader(text, dialect)
            header = [h.strip() for h in self._decoded(lambda: next(reader, []), 1)]
            yield header
            while True:
                values = self._decoded(lambda: next(reader, None), reader.line_num + 1)
                if values is None:
                    return
                self._done = raw.tell() / self.size
                if NOT_DECODED.search("".join(values)):
                    self._not_utf8(reader.line_num)
                if not any(v.strip() for v in values):
                    continue
                if len(values) > len(header):
                    yield reader.line_num, {"\0": "this row has more values than the header "
                                                   "has columns"}
                    continue
                yield reader.line_num, dict(zip(header, values, strict=False))

    def _not_utf8(self, line: int) -> NoReturn:
        raise TransferError(f"{self.path}:{line}: not UTF-8 text (Latin-1 or a Windows "
                            "encoding?); save the CSV as UTF-8")

    def _decoded(self, read: Callable[[], Any], line: int) -> Any:
        try:
            return read()
        except UnicodeDecodeError:
            self._not_utf8(line)
        except csv.Error as exc:
            raise TransferError(f"{self.path}:{line}: cannot read the CSV file: {exc}") \
                from None

    def _xlsx(self) -> Iterator[Any]:
        from openpyxl import load_workbook  # slow to import; only XLSX needs it

        try:
            book = load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
            raise TransferError(f"{self.path}: cannot read the XLSX file: {exc}") from None
        try:
            sheet = book.worksheets[0]
            total = max(sheet.max_row or 1, 1)
            lines = sheet.iter_rows(values_only=True)
            header = [str(h).strip() if h is not None else "" for h in next(lines, ())]
            yield header
            for number, values in enumerate(lines, start=2):
                self._done = number / total
                if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                    continue
                yield number, {h: v for h, v in zip(header, values, strict=False) if h}
        finally:
            book.close()


def read_file(path: Path) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """(header, [(line, {column: value})]) of a CSV or XLSX file, all in memory (a small
    file; `Reader` streams a big one)."""
    with Reader(path) as reader:
        return reader.header, list(reader)


# -- import --------------------------------------------------------------------------------


@dataclass
class ImportResult:
    rows: int = 0  # rows read
    created: int = 0
    updated: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, message)
    ignored: list[str] = field(default_factory=list)  # columns not imported
    ids: list[int] = field(default_factory=list)  # the records created, in order
    kept: bool = False  # whether the changes were committed

    @property
    def bad_rows(self) -> int:
        return len({line for line, _ in self.problems})


def importable(ent: Entity, name: str, update_by: str | None = None) -> bool:
    """Whether an import writes the field `name` (system and computed fields it does not)."""
    f = ent.fields[name]
    return name == update_by or (name not in SKIPPED and not unsettable(ent, name) and
                                 (not f.system or name == "owner" or ent.system))


def field_of_column(ent: Entity, column: str) -> str | None:
    """The field a column names, by its name or its label (case and spaces aside)."""
    column = column.strip()
    if column in ent.fields:
        return column
    return next((f.name for f in ent.fields.values()
                 if str(f.label).strip().lower() == column.lower()), None)


def suggest_columns(ent: Entity, header: list[str]) -> dict[str, str | None]:
    """{column: the importable field it names, or None}; a field goes to its first column."""
    suggested: dict[str, str | None] = {}
    for column in header:
        name = field_of_column(ent, column) if column else None
        usable = name is not None and importable(ent, name)
        suggested[column] = name if usable and name not in suggested.values() else None
    return suggested


def match_columns(ent: Entity, header: list[str], update_by: str | None
                  ) -> tuple[dict[str, str], list[str]]:
    """{column: field} for the columns that are imported, and the columns ignored (system and
    computed fields). TransferError for a column that names no field."""
    mapping: dict[str, str] = {}
    ignored: list[str] = []
    unknown: list[str] = []
    for column in header:
        if not column:
            continue
        name = field_of_column(ent, column)
        if name is None:
            unknown.append(column)
        elif not importable(ent, name, update_by):
            ignored.append(column)
        elif name in mapping.values():
            raise TransferError(f"two columns are the field '{name}'; keep one")
        else:
            mapping[column] = name
    if unknown:
        hints = [f"'{c}'" + (f" ({h})" if (h := did_you_mean(c, list(ent.fields))) else "")
                 for c in unknown]
        raise TransferError(f"column{'s' if len(unknown) > 1 else ''} {', '.join(hints)} "
                            f"{'are' if len(unknown) > 1 else 'is'} not a field of "
                            f"{ent.label}; rename or remove "
                            f"{'them' if len(unknown) > 1 else 'it'}")
    if update_by and update_by not in mapping.values():
        raise TransferError(f"--update-by {update_by}: the file has no column '{update_by}'")
    return mapping, ignored


BATCH = 1000  # rows written at once (bulk.upsert_many)


def import_rows(inst: Instance, entity: str, header: list[str],
                rows: Iterable[tuple[int, dict[str, Any]]], *, update_by: str | None = None,
                dry_run: bool = False, skip_invalid: bool = False,
                actor: Actor | None = None,
                progress: Callable[[int], None] | None = None) -> ImportResult:
    """Import `rows` (any iterable: a `Reader` streams them) into `entity`, BATCH rows at a
    time through `bulk.upsert_many`, in one transaction (see the module's docstring);
    `progress(rows read)` after each batch."""

    ent = entity_of(inst, entity)
    if update_by is not None and update_by not in ent.fields:
        raise TransferError(f"--update-by {update_by}: {ent.label} has no such field"
                            + (f" ({h})" if (h := did_you_mean(update_by, ent.fields)) else ""))
    mapping, ignored = match_columns(ent, header, update_by)
    actor = actor or Actor.system_actor("import")
    result = ImportResult(ignored=ignored)
    importer = _Importer(inst, ent, actor, mapping, update_by)
    done = 0
    try:
        with write_transaction(inst.engine) as conn:
            for batch in importer.batches(rows):
                importer.write(conn, batch, result)
                done += len(batch)
                result.rows = done
                if progress is not None:
                    progress(done)
            if dry_run or (result.problems and not skip_invalid):
                raise _Rollback
            result.kept = True
    except _Rollback:
        pass
    result.problems.sort(key=lambda problem: problem[0])
    return result


class _Rollback(Exception):
    pass


AfterBatch = Callable[[Connection, "ImportResult", list[int]], None]


def import_batches(inst: Instance, actor: Actor, entity: str, mapping: dict[str, str],
                   rows: Iterable[tuple[int, dict[str, Any]]], *, dry_run: bool,
                   after_batch: AfterBatch) -> ImportResult:
    """Import `rows` with the columns `mapping` names (checked: `check_mapping`), each batch
    in a transaction of its own: bad rows are left out (`problems`), good ones kept — or, dry,
    none. `after_batch(conn, result so far, ids created by the batch)` runs in the batch's
    transaction (a dry run's: in one of its own, as the batch's is rolled back)."""
    ent = entity_of(inst, entity)
    importer = _Importer(inst, ent, actor, mapping, None)
    result = ImportResult()
    for batch in importer.batches(rows):
        start = len(result.ids)
        try:
            with write_transaction(inst.engine) as conn:
                importer.write(conn, batch, result)
                result.rows += len(batch)
                if dry_run:
                    raise _Rollback
                after_batch(conn, result, result.ids[start:])
        except _Rollback:
            importer.link_cache.clear()  # it may hold records of the batch rolled back
            del result.ids[start:]
            with write_transaction(inst.engine) as conn:
                after_batch(conn, result, [])
    result.kept = not dry_run
    result.problems.sort(key=lambda problem: problem[0])
    return result


def check_mapping(ent: Entity, mapping: Mapping[str, str]) -> dict[str, str]:
    """A mapping chosen by a person, {column: field}: TransferError when a field is not one
    an import writes, or is given two columns."""
    for column, name in mapping.items():
        if name not in ent.fields or not importable(ent, name):
            raise TransferError(f"column '{column}': {ent.label} has no field '{name}' that "
                                "an import can fill")
    if len(set(mapping.values())) < len(mapping):
        twice = sorted({n for n in mapping.values() if list(mapping.values()).count(n) > 1})
        raise TransferError(f"two columns are mapped to {', '.join(twice)}; keep one")
    if not mapping:
        raise TransferError("no column is mapped to a field; map at least one")
    return dict(mapping)


def choice_codes(ent: Entity) -> dict[str, dict[str, str]]:
    """{choice field: {label in lower case, in every language given: code}}; the state
    field's labels are those of its workflow's states."""
    result = {f.name: {text.strip().lower(): o.value for o in f.options
                       for _, text in o.label.values}
              for f in ent.fields.values() if f.type in ("choice", "multichoice")}
    if ent.workflow is not None:
        result[ent.workflow.field] = {text.strip().lower(): name
                                      for name, state in ent.workflow.states.items()
                                      for _, text in state.label.values}
    return result


def as_codes(f: Field, codes: Mapping[str, str], value: str) -> str:
    """`value` with each label (a multichoice's comma-separated ones) read as its code; a
    code, or what is neither, is left for the field's own check."""
    known = set(codes.values())

    def one(text: str) -> str:
        text = text.strip()
        return text if text in known else codes.get(text.lower(), text)

    if f.type == "multichoice":
        return ", ".join(one(part) for part in value.split(","))
    return one(value)


class _Importer:
    def __init__(self, inst: Instance, ent: Entity, actor: Actor, mapping: dict[str, str],
                 update_by: str | None):
        self.inst = inst
        self.ent = ent
        self.actor = actor
        self.mapping = mapping
        self.update_by = update_by
        self.link_cache: dict[tuple[str, str], int | str] = {}
        self.codes = choice_codes(ent)
        self.found: dict[Any, list[int]] = {}  # --update-by value: ids (`prefetch`)
        self.coerced: dict[str, Any] = {}  # --update-by text: its value (`prefetch`)
        self.links_itself = any(f.to == ent.name for f in ent.fields.values()
                                if f.type in ("link", "links"))

    def batches(self, rows: Iterable[tuple[int, dict[str, Any]]]
                ) -> Iterator[list[tuple[int, dict[str, Any]]]]:
        """The rows in batches of BATCH; with --update-by a value met again starts a new
        batch, so that its row finds the record the first one made."""
        column = next((c for c, name in self.mapping.items() if name == self.update_by), None)
        batch: list[tuple[int, dict[str, Any]]] = []
        keys: set[Any] = set()
        for line, raw in rows:
            key = raw.get(column) if column is not None else None
            if len(batch) >= BATCH or (key is not None and key in keys):
                yield batch
                batch, keys = [], set()
            batch.append((line, raw))
            if key is not None:
                keys.add(key)
        if batch:
            yield batch

    def write(self, conn: Connection, batch: list[tuple[int, dict[str, Any]]],
              result: ImportResult) -> None:
        """Write one batch: its new records and (--update-by) its changes at once."""
        rows: list[tuple[Any, Mapping[str, Any], int | None]] = []
        self.prefetch(conn, batch)
        for line, raw in batch:
            values, problem = self.values(conn, raw)
            if problem is not None and rows and self.links_itself:
                # it may link by title to a record of this file not written yet
                self.save(conn, rows, result)
                rows = []
                values, problem = self.values(conn, raw)
            try:
                existing = self.existing(conn, values) if problem is None else None
            except ValueError as exc:
                problem = str(exc)
            if problem is not None:
                result.problems.append((line, problem))
                continue
            if existing is not None:
                values.pop(self.update_by or "", None)
            rows.append((line, values, existing))
        self.save(conn, rows, result)

    def save(self, conn: Connection, rows: list[tuple[Any, Mapping[str, Any], int | None]],
             result: ImportResult) -> None:
        """Write the rows at once: (line, values, the record it changes or None)."""
        outcomes = write_many(self.inst, self.actor, conn, self.ent.name,
                              [(line, values) for line, values, _ in rows],
                              [rid for _, _, rid in rows])
        for (_, _, rid), outcome in zip(rows, outcomes, strict=True):
            if outcome.error is not None:
                result.problems.append((outcome.line, problem_text(outcome.error)))
            elif rid is None:
                result.created += 1
                result.ids.append(outcome.id)
            else:
                result.updated += 1
        # a title not found before may name one of these records now
        self.link_cache = {k: v for k, v in self.link_cache.items() if not isinstance(v, str)}

    def values(self, conn: Connection, raw: Mapping[str, Any]
               ) -> tuple[dict[str, Any], str | None]:
        """The row's values for the write, or the row's problems as one message."""
        if "\0" in raw:
            return {}, str(raw["\0"])
        values: dict[str, Any] = {}
        problems: list[str] = []
        for column, name in self.mapping.items():
            value = raw.get(column)
            if isinstance(value, str):
                value = unescape(value.strip())  # `'=x` as exported is `=x`
            if value is None or value == "":
                continue
            f = self.ent.fields[name]
            if f.type in ("link", "links") or name == "owner":
                try:
                    value = self.links(conn, f, value)
                except ValueError as exc:
                    problems.append(f"{name}: {exc}")
                    continue
            if isinstance(value, float) and value.is_integer():
                value = int(value)  # a spreadsheet's whole number
            if name in self.codes and isinstance(value, str):
                value = as_codes(f, self.codes[name], value)
            values[name] = value
        return values, "; ".join(problems) if problems else None

    def prefetch(self, conn: Connection, batch: list[tuple[int, dict[str, Any]]]) -> None:
        """The ids of the records the batch's --update-by values name, in one query per 500
        values (`existing` asks the database only for a value not found here); each text
        coerced is kept in `coerced`, so that `existing` does not coerce it again."""
        self.found, self.coerced = {}, {}
        column = next((c for c, n in self.mapping.items() if n == self.update_by), None)
        f = self.ent.fields.get(self.update_by or "")
        if column is None or f is None or f.type in ("link", "links"):
            return
        wanted = set()
        for _, raw in batch:
            given = raw.get(column)
            given = unescape(given.strip()) if isinstance(given, str) else given
            try:
                value = coerce_value(f, given)
            except ValueError:
                continue
            if isinstance(given, str):
                self.coerced[given] = value
            if not isinstance(value, list | dict) and value not in (None, ""):
                wanted.add(value)
        table = self.inst.schema.table(self.ent.name)
        ordered = sorted(wanted, key=str)
        self.found = {value: [] for value in ordered}
        for i in range(0, len(ordered), 500):
            for record_id, value in conn.execute(sa.select(table.c.id, table.c[f.name]).where(
                    table.c[f.name].in_(ordered[i:i + 500]))):
                if value in self.found:
                    self.found[value].append(record_id)

    def existing(self, conn: Connection, values: Mapping[str, Any]) -> int | None:
        if self.update_by is None:
            return None
        value = values.get(self.update_by)
        if value is None:
            raise ValueError(f"{self.update_by}: is empty, so no record can be found to update")

        f = self.ent.fields[self.update_by]
        try:
            if isinstance(value, str) and value in self.coerced:
                value = self.coerced[value]
            elif f.type not in ("link", "links"):
                value = coerce_value(f, value)
        except ValueError as exc:
            raise ValueError(f"{self.update_by}: {exc}") from None
        if value in self.found:
            ids = self.found[value]
        else:
            table = self.inst.schema.table(self.ent.name)
            ids = conn.execute(sa.select(table.c.id).where(table.c[self.update_by] == value)
                               .limit(2)).scalars().all()
        if len(ids) > 1:
            raise ValueError(f"{self.update_by}: several {self.ent.plural} have "
                             f"'{value}'; it must name one record")
        return ids[0] if ids else None

    def links(self, conn: Connection, f: Field, value: Any) -> Any:
        if f.type == "links":
            parts = value if isinstance(value, list) else [
                p for p in str(value).replace(";", ",").split(",") if p.strip()]
            return [self.one(conn, f, p) for p in parts]
        return self.one(conn, f, value)

    def one(self, conn: Connection, f: Field, value: Any) -> int:
        """A link's id: the value itself when it is a number, else the record whose title field
        (username for users) holds it."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():  # NaN, ±inf, 1.5
                raise ValueError(f"must be the id of a {f.to} record")
            return int(value)
        text = str(value).strip()
        if text.isascii() and text.isdigit():
            return int(text)
        if "\0" in text:  # no title holds one, and PostgreSQL refuses it in a query
            raise ValueError("must not contain NUL characters")
        target = self.inst.model.entities.get(f.to or "")
        if target is None:
            raise ValueError(f"must be the id of a {f.to} record")
        key = (target.name, text)
        if key not in self.link_cache:
            self.link_cache[key] = self.lookup(conn, target, text)
        found = self.link_cache[key]
        if isinstance(found, str):
            raise ValueError(found)
        return found

    def lookup(self, conn: Connection, target: Entity, text: str) -> int | str:
        column = "username" if target.name == "user" else target.title_field
        if not column or column not in target.fields:
            return (f"'{text}' is not an id; {target.label} records are linked by id "
                    "here")
        table = self.inst.schema.table(target.name)
        ids = conn.execute(sa.select(table.c.id).where(table.c[column] == text).limit(2)
                           ).scalars().all()
        if not ids:
            return f"no {target.label} has {column} '{text}'"
        if len(ids) > 1:
            return f"several {target.plural} have {column} '{text}'; give the id"
        return int(ids[0])

