"""The one exporter: the records an actor may read, as CSV, XLSX or JSON rows.

`crmforge export` (runtime/ops/transfer.py) and the web list's "Export CSV"
(`/e/<entity>/export.csv`) both write through `Export`, so both have the same columns (`id`,
the declared fields, then the system fields; the reader's hidden fields left out) and the same
cells. What differs is said by the caller: the web export follows the list's filters, search
and sort, stops at a row limit and writes links as the titles the reader may see; the CLI
writes every record in id order with links as ids, so that its file imports back.

Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` (and some a tab or a carriage
return) as a formula: `=HYPERLINK(...)` or `=cmd|...` in a text field would run on the machine
of whoever opens the export. So every *text* cell starting with one of those characters (or a
line feed) — after any run of single quotes, so that the escaping can be undone exactly — gets
one `'` in front (as OWASP recommends), and XLSX text cells are always string cells, never
formulas. Numbers of number fields (integer, decimal, money, percent), negative ones included,
stay numbers. `unescape` is what an import does to undo it.

One exception, for phone numbers only: a `phone` field's value that is a `+` followed by digits,
spaces, brackets, dots and dashes alone (`+44 20 7946 0958`) is written as it is. What OWASP's
CSV-injection guidance guards against is a cell that calls a function (`HYPERLINK`, `WEBSERVICE`),
refers to other cells or starts a DDE command (`=cmd|...`); such a value can do none of them —
without a letter, a `!`, a `|` or a `"` there is no function, reference or command to run. In XLSX
it is a string cell, shown exactly; in CSV a spreadsheet may read it as a number (as it reads
any number-like text), but nothing runs, and `crmforge import` reads it back unchanged.

Choice fields (the workflow's state field included) are written as their labels in the actor's
language ("Web", "Qualified"); `codes=True` writes the stored codes (`web`, `qualified`)
instead. An import takes either (runtime/ops/transfer.py). JSON always holds the codes.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import IO, TYPE_CHECKING, Any

from babel.numbers import get_decimal_symbol

from builder.model import Entity, Field
from runtime.core.errors import N_, BadRequest
from runtime.read.listrequest import Filter
from runtime.read.permissions import hidden_fields
from runtime.read.queries import entity_of, query, reading
from runtime.read.titles import link_titles, locale_of

if TYPE_CHECKING:
    from runtime.core.instance import Actor, Instance

FORMATS = ("csv", "xlsx", "json")
# what a spreadsheet may run as a formula (OWASP); the line feed too, because XML (so XLSX)
# reads a carriage return as one, and the escaping must still come off on import
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
NUMBER_TYPES = frozenset({"integer", "decimal", "money", "percent"})
PAGE = 500
# a phone number that no spreadsheet can run anything from (see the module's docstring)
SAFE_PHONE = re.compile(r"\+[0-9 ()./-]*[0-9][0-9 ()./-]*")


# -- escaping ---------------------------------------------------------------------------------


def _dangerous(text: str) -> bool:
    """Whether `text`, after any leading single quotes, starts like a formula."""
    return text.lstrip("'")[:1] in FORMULA_STARTS


def escape(text: str) -> str:
    """`text` safe in a spreadsheet cell: one `'` in front when it starts like a formula.
    Text that already starts with quotes before such a character gets one more, so that
    `unescape` gives back exactly what was stored."""
    return "'" + text if text and _dangerous(text) else text


def escape_value(f: Field, text: str) -> str:
    """`escape(text)`, except for a phone number that cannot be a formula worth running."""
    return text if f.type == "phone" and SAFE_PHONE.fullmatch(text) else escape(text)


def unescape(text: str) -> str:
    """The stored text of an exported cell: `escape` undone (one leading `'` removed when
    what follows it, after any further quotes, starts like a formula)."""
    return text[1:] if text[:1] == "'" and _dangerous(text) else text


# -- what is exported ---------------------------------------------------------------------------


def export_fields(inst: Instance, actor: Actor, entity: str) -> list[Field]:
    """The columns: `id`, the declared fields, then the other system fields (owner,
    created_at, ...), without the fields hidden from `actor`."""
    ent = entity_of(inst, entity)
    declared = [f for f in ent.fields.values() if not f.system or ent.system]
    rest = [f for f in ent.fields.values() if f.system and not ent.system]
    ordered = [*(f for f in declared if f.name == "id"), *(f for f in rest if f.name == "id"),
               *(f for f in [*declared, *rest] if f.name != "id")]
    hidden = hidden_fields(inst, actor, entity)
    return [f for f in ordered if f.name not in hidden]


@dataclass(frozen=True)
class Export:
    """One export: whose records, which of them, in what order, and how links read."""

    inst: Instance
    actor: Actor
    entity: str
    filters: Mapping[str, Any] | Iterable[Filter] | None = None
    q: str | None = None
    sort: Sequence[str] | str | None = ("id",)
    limit: int | None = None  # at most this many records; None: all of them
    titles: bool = False  # links as the titles the actor may read (else as ids)
    codes: bool = False  # choices as their stored codes (else as their labels)

    def fields(self) -> list[Field]:
        return export_fields(self.inst, self.actor, self.entity)

    def labels(self) -> dict[str, dict[str, str]]:
        """{choice field: {code: label}}; empty with `codes`."""
        return {} if self.codes else choice_labels(entity_of(self.inst, self.entity),
                                                   self.actor.language)

    def pages(self) -> Iterator[tuple[list[dict[str, Any]], dict[str, dict[int, str]]]]:
        """(records as JSON values, {link field: {id: title}}) page by page, on keyset
        cursors; the titles are empty unless `titles`."""
        cursor, sent = None, 0
        while self.limit is None or sent < self.limit:
            size = PAGE if self.limit is None else min(PAGE, self.limit - sent)
            page = query(self.inst, self.actor, self.entity, filters=self.filters, q=self.q,
                         sort=self.sort, limit=size, cursor=cursor)
            if not page.rows:
                return
            titles: dict[str, dict[int, str]] = {}
            if self.titles:
                with reading(self.inst, None) as conn:
                    titles = link_titles(self.inst, conn, self.entity, page.rows,
                                         actor=self.actor)
            yield page.rows, titles
            sent += len(page.rows)
            cursor = page.next_cursor
            if not cursor:
                return


def choice_labels(ent: Entity, language: str | None) -> dict[str, dict[str, str]]:
    """{choice or multichoice field: {code: label}}, the state field's labels those of its
    workflow's states."""
    result = {f.name: {o.value: o.label.get(language) for o in f.options}
              for f in ent.fields.values() if f.type in ("choice", "multichoice")}
    if ent.workflow is not None:
        result[ent.workflow.field] = {name: state.label.get(language)
                                      for name, state in ent.workflow.states.items()}
    return result


# -- cells --------------------------------------------------------------------------------------


def cell(f: Field, value: Any, titles: Mapping[int, str] | None = None,
         labels: Mapping[str, str] | None = None) -> Any:
    """One exported cell of a record's JSON `value`: None, a bool, an int, a Decimal (a
    number field's number) or text, escaped. With `titles`, link ids read as titles; with
    `labels`, choice codes as labels."""
    if value is None:
        return None
    if labels:
        value = ([labels.get(v, v) for v in value] if isinstance(value, list)
                 else labels.get(value, value))
    if titles is not None and f.type in ("link", "links"):
        value = ([titles.get(v, v) for v in value] if isinstance(value, list)
                 else titles.get(value, value))
    if isinstance(value, bool | int):
        return value  # a number, a link's id, a boolean: nothing a spreadsheet runs
    if isinstance(value, list):
        return escape_value(f, ", ".join(str(v) for v in value))
    if f.type in NUMBER_TYPES:
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            number = None
        if number is not None and number.is_finite():
            return number
    return escape_value(f, str(value))


def csv_text(value: Any) -> str:
    """A `cell` as CSV text: empty for None, true/false, decimals exactly as stored."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _row(fields: Sequence[Field], record: Mapping[str, Any],
         titles: Mapping[str, Mapping[int, str]], use_titles: bool,
         labels: Mapping[str, Mapping[str, str]]) -> list[Any]:
    return [cell(f, record.get(f.name), titles.get(f.name, {}) if use_titles else None,
                 labels.get(f.name)) for f in fields]


# -- writers ------------------------------------------------------------------------------------


SEPARATORS = {",": ",", ";": ";", "tab": "\t", "\t": "\t"}


def csv_dialect(sep: str | None, language: str | None) -> tuple[str, bool]:
    """(separator, whether to start with a byte order mark) of a CSV download: `sep` when
    given (`,`, `;` or `tab`), else the reader's locale's (`;` where the decimal mark is a
    comma, so Excel splits the columns); the BOM for anyone but an English reader who asked
    for nothing, so Excel reads 报价 and Oferta as UTF-8 (docs/languages.md)."""
    if sep:
        if sep not in SEPARATORS:
            raise BadRequest(N_("Pick the separator ',', ';' or 'tab'."))
        return SEPARATORS[sep], True
    locale = locale_of(language)
    if locale.language == "en":
        return ",", False
    return (";" if get_decimal_symbol(locale) == "," else ","), True


def csv_chunks(export: Export, separator: str = ",", bom: bool = False) -> Iterator[str]:
    """The CSV text of `export`, one chunk per page (for streaming); the first holds the
    header, so taking it reads the first page: a problem shows before anything is sent."""
    start = "\ufeff" if bom else ""
    for chunk, _ in _csv_pages(export, separator):
        yield start + chunk
        start = ""


def _csv_pages(export: Export, separator: str = ",") -> Iterator[tuple[str, int]]:
    """(CSV text, how many records it holds), one page at a time, the header in the first."""
    fields, labels = export.fields(), export.labels()
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=separator)
    writer.writerow([f.name for f in fields])
    for records, titles in export.pages():
        for record in records:
            writer.writerow([csv_text(v) for v in _row(fields, record, titles,
                                                       export.titles, labels)])
        yield buffer.getvalue(), len(records)
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # no record at all: the header alone
        yield buffer.getvalue(), 0


def write_export(export: Export, fmt: str, out: IO[bytes]) -> int:
    """Write `export` to `out` as `fmt` (csv, xlsx or json); returns how many records."""
    if fmt == "json":
        return _write_json(export, out)
    if fmt == "xlsx":
        return _write_xlsx(export, out)
    if fmt != "csv":
        raise ValueError(f"unknown export format {fmt!r}; use one of: {', '.join(FORMATS)}")
    count = 0
    for chunk, records in _csv_pages(export):
        out.write(chunk.encode("utf-8"))
        count += records
    return count


def _write_json(export: Export, out: IO[bytes]) -> int:
    """A JSON array of the records as the API gives them (no escaping: JSON is no
    spreadsheet, and a program reading it wants the values as they are)."""
    names = [f.name for f in export.fields()]
    count = 0
    out.write(b"[")
    for records, _ in export.pages():
        for record in records:
            out.write((b",\n" if count else b"\n") + json.dumps(
                {k: record.get(k) for k in names}, ensure_ascii=False).encode())
            count += 1
    out.write(b"\n]\n" if count else b"]\n")
    return count


def _write_xlsx(export: Export, out: IO[bytes]) -> int:
    # openpyxl takes a while to import (70 ms) and only XLSX needs it
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    fields, labels = export.fields(), export.labels()
    book = Workbook(write_only=True)
    sheet = book.create_sheet(export.entity[:31])

    def text(value: str) -> Any:
        """A string cell, whatever `value` starts with (openpyxl makes a formula of a value
        starting with `=`), without the control characters XLSX cannot hold — escaped again
        when leaving them out bares a formula."""
        clean = ILLEGAL_CHARACTERS_RE.sub("", value)
        result = WriteOnlyCell(sheet, value=clean if clean == value else escape(clean))
        result.data_type = "s"
        return result

    sheet.append([text(f.name) for f in fields])
    count = 0
    for records, titles in export.pages():
        for record in records:
            sheet.append([
                text(typed) if isinstance(typed := _xlsx_value(f, value), str) else typed
                for f, value in zip(fields, _row(fields, record, titles, export.titles,
                                                 labels), strict=True)])
            count += 1
    book.save(out)
    return count


def _xlsx_value(f: Field, value: Any) -> Any:
    """Dates and date-times as cells of their type; numbers, booleans, text as they are."""
    if isinstance(value, str) and f.type in ("date", "datetime"):
        try:
            return (date.fromisoformat(value) if f.type == "date"
                    else datetime.fromisoformat(value.removesuffix("Z")))
        except ValueError:
            pass
    return value
