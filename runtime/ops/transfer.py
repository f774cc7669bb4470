"""Import and export of records: CSV, XLSX (openpyxl) and JSON.

An import writes every row through `records.create` / `records.update` inside one
transaction, each row in a savepoint: the rows are checked by the same rules as a form or the
API, a row's problems are reported with its line number, and unless `skip_invalid` nothing is
kept when any row is bad. `dry_run` checks everything and keeps nothing.

Columns are matched to fields by name or by label. Links take the linked record's id, or its
title field (a username for users). `--update-by FIELD` updates the record whose FIELD holds
the row's value, and creates one when there is none. A text cell that an export escaped
(`'=x`: a quote before a character that starts a spreadsheet formula) imports as it was
stored (`=x`). A choice (the workflow's state too) takes its code (`web`) or its label
(`Web`, in any of the definition's languages, case aside), so an export — labels unless
`--codes` — imports back either way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from builder.diagnostics import did_you_mean
from builder.model import Entity, Field
from runtime.core.db import write_transaction
from runtime.core.errors import RecordError, ValidationFailed
from runtime.core.instance import Actor, Instance
from runtime.core.values import coerce_value
from runtime.read.export import Export, unescape, write_export
from runtime.read.queries import entity_of
from runtime.write import derived, records

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
    if target is not None and ent.workflow is not None and record.get(state) != target:
        if target not in ent.workflow.states:

            raise ValidationFailed({state: [f"must be one of: "
                                            f"{', '.join(ent.workflow.states)}"]})
        into = [t for t in ent.workflow.transitions.values() if t.to == target]
        name = (into[0] if into else next(iter(ent.workflow.transitions.values()))).name
        record = records.update(inst, actor, entity, record["id"], {state: target},
                                version=None, conn=conn, transition=name, comment="imported")
    return record


# -- export --------------------------------------------------------------------------------


def export(inst: Instance, entity: str, fmt: str, out: IO[bytes],
           actor: Actor | None = None, codes: bool = False) -> int:
    """Write every record of `entity` the actor (default: the system) may read to `out` as
    `fmt`, in id order, links as ids (so the file imports back), choices as labels unless
    `codes`; returns how many. The columns, cells and formula escaping are those of
    `runtime.read.export`, the web's too."""
    return write_export(Export(inst, actor or Actor.system_actor("export"), entity,
                               codes=codes), fmt, out)


# -- reading files -----------------------------------------------------------------------


def read_file(path: Path) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """(header, [(line, {column: value})]) of a CSV or XLSX file; empty rows are skipped."""
    if not path.is_file():
        raise TransferError(f"{path}: no such file")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    try:
        # bytes, not read_text: its newline translation would turn a "\r" inside a quoted
        # value (a note typed in a browser holds "\r\n") into "\n"
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TransferError(f"{path}: not UTF-8 text; save the CSV as UTF-8") from None
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    header = [h.strip() for h in next(reader, [])]
    rows = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(header):
                rows.append((reader.line_num, {"\0": "this row has more values than the "
                                                     "header has columns"}))
                continue
            rows.append((reader.line_num, dict(zip(header, values, strict=False))))
    except csv.Error as exc:
        raise TransferError(f"{path}:{reader.line_num}: cannot read the CSV file: {exc}") \
            from None
    return header, rows


def _read_xlsx(path: Path) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
        raise TransferError(f"{path}: cannot read the XLSX file: {exc}") from None
    try:
        sheet = book.worksheets[0]
        lines = sheet.iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(lines, ())]
        rows = []
        for number, values in enumerate(lines, start=2):
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                continue
            rows.append((number, {h: v for h, v in zip(header, values, strict=False) if h}))
        return header, rows
    finally:
        book.close()


# -- import --------------------------------------------------------------------------------


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, message)
    ignored: list[str] = field(default_factory=list)  # columns not imported
    kept: bool = False  # whether the changes were committed

    @property
    def bad_rows(self) -> int:
        return len({line for line, _ in self.problems})


def match_columns(ent: Entity, header: list[str], update_by: str | None
                  ) -> tuple[dict[str, str], list[str]]:
    """{column: field} for the columns that are imported, and the columns ignored (system and
    computed fields). TransferError for a column that names no field."""
    by_label = {str(f.label).strip().lower(): f.name for f in ent.fields.values()}
    mapping: dict[str, str] = {}
    ignored: list[str] = []
    unknown: list[str] = []
    for column in header:
        if not column:
            continue
        name = column if column in ent.fields else by_label.get(column.strip().lower())
        if name is None:
            unknown.append(column)
            continue
        f = ent.fields[name]
        if name == update_by or (name not in SKIPPED and not unsettable(ent, name) and
                                 (not f.system or name == "owner" or ent.system)):
            if name in mapping.values():
                raise TransferError(f"two columns are the field '{name}'; keep one")
            mapping[column] = name
        else:
            ignored.append(column)
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


def import_rows(inst: Instance, entity: str, header: list[str],
                rows: list[tuple[int, dict[str, Any]]], *, update_by: str | None = None,
                dry_run: bool = False, skip_invalid: bool = False,
                actor: Actor | None = None,
                progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Import `rows` into `entity` (see the module's docstring)."""

    ent = entity_of(inst, entity)
    if update_by is not None and update_by not in ent.fields:
        raise TransferError(f"--update-by {update_by}: {ent.label} has no such field"
                            + (f" ({h})" if (h := did_you_mean(update_by, ent.fields)) else ""))
    mapping, ignored = match_columns(ent, header, update_by)
    actor = actor or Actor.system_actor("import")
    result = ImportResult(ignored=ignored)
    importer = _Importer(inst, ent, actor, mapping, update_by)
    try:
        with write_transaction(inst.engine) as conn, derived.batch(inst, conn):
            for index, (line, raw) in enumerate(rows, start=1):
                outcome, problem = importer.row(conn, raw)
                if problem is not None:
                    result.problems.append((line, problem))
                elif outcome == "created":
                    result.created += 1
                else:
                    result.updated += 1
                if progress is not None:
                    progress(index, len(rows))
            if dry_run or (result.problems and not skip_invalid):
                raise _Rollback
            result.kept = True
    except _Rollback:
        pass
    return result


class _Rollback(Exception):
    pass


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

    def row(self, conn: Connection, raw: Mapping[str, Any]) -> tuple[str, str | None]:
        """("created" | "updated", None), or ("", the row's problems as one message)."""

        if "\0" in raw:
            return "", str(raw["\0"])
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
        if problems:
            return "", "; ".join(problems)
        try:
            with conn.begin_nested():
                existing = self.existing(conn, values)
                if existing is None:
                    write(self.inst, self.actor, conn, self.ent.name, values)
                    return "created", None
                values.pop(self.update_by or "", None)
                write(self.inst, self.actor, conn, self.ent.name, values, existing)
                return "updated", None
        except RecordError as exc:
            errors = getattr(exc, "errors", None)
            if isinstance(errors, Mapping) and errors:
                return "", "; ".join(f"{k}: {', '.join(v)}" if k != "_record" else
                                     ", ".join(v) for k, v in errors.items())
            return "", exc.message
        except ValueError as exc:
            return "", str(exc)

    def existing(self, conn: Connection, values: Mapping[str, Any]) -> int | None:
        if self.update_by is None:
            return None
        value = values.get(self.update_by)
        if value is None:
            raise ValueError(f"{self.update_by}: is empty, so no record can be found to update")

        f = self.ent.fields[self.update_by]
        try:
            value = coerce_value(f, value) if f.type not in ("link", "links") else value
        except ValueError as exc:
            raise ValueError(f"{self.update_by}: {exc}") from None
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

