"""The audit log of the whole instance, in one place (`/admin/audit`, docs/admin.md).

Two tables hold what happened: `crm_audit` — every record change (create, update, transition,
delete, one row per field), the changes of users kept beside their record (roles,
delegation) and the account events of `runtime.write.accounts` (sign-ins, failed sign-ins,
password links, tokens, deactivations; entity `@user`) — and `crm_approval_decision`, every
approval decision. `entries` reads both as one list, newest first, filtered by user, entity,
record, kind and date range, a page at a time by keyset (`Cursor`): an old page costs what
the first one does. A record's own history stays on its timeline (`runtime.read.timeline`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runtime.core.errors import N_, BadRequest
from runtime.core.instance import Instance
from runtime.read.accounts import ACCOUNT, names, user_id_of
from runtime.read.export import csv_text, escape
from runtime.read.queries import reading

PAGE_SIZE = 50
EXPORT_LIMIT = 100_000
KINDS = {  # the page translates these labels; the CSV keeps the codes
    "create": N_("Created"), "update": N_("Changed"), "transition": N_("Moved"),
    "delete": N_("Deleted"), "approval": N_("Approval decision"), "sign_in": N_("Signed in"),
    "sign_in_failed": N_("Failed sign-in"), "password_link": N_("Password link issued"),
    "password_set": N_("Password set"), "token_create": N_("API token created"),
    "token_revoke": N_("API token revoked"), "deactivate": N_("Deactivated"),
    "import": N_("Imported"), "import_undo": N_("Import undone"),
    "pack_install": N_("Pack installed"), "pack_upgrade": N_("Pack upgraded"),
    "studio": N_("Definition changed in the studio"),
}
ACCOUNT_LABEL = N_("Accounts")
SHORT = 160  # characters of a value shown on the page
CSV_HEADER = ("at", "user", "kind", "entity", "record", "field", "old", "new")


@dataclass(frozen=True)
class Filters:
    """What the audit page is asked for; every part optional."""

    user: int | None = None  # who did it, or whose account it is
    entity: str | None = None
    record: int | None = None
    kind: str | None = None
    since: date | None = None
    until: date | None = None  # included


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after the entry (at, source, id) in newest-first order."""

    at: datetime
    source: int
    id: int

    def encode(self) -> str:
        return f"{self.at.isoformat()}~{self.source}~{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            at, source, number = text.split("~")
            return cls(datetime.fromisoformat(at), int(source), int(number))
        except ValueError:
            raise BadRequest("The page address is damaged (after=…): start again from the "
                             "first page.") from None


@dataclass(frozen=True)
class Entry:
    at: datetime
    source: int  # 0: crm_audit, 1: crm_approval_decision
    id: int
    user_id: int | None
    user: str
    kind: str
    entity: str
    entity_label: str
    record_id: int | None
    subject: str  # the record as the page names it: "Maria Lopez", "Lead #12"
    field: str
    old: str
    new: str

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)

    @property
    def has_page(self) -> bool:
        """Whether the record has a page to link to (it may have been deleted since)."""
        return self.entity != ACCOUNT and bool(self.record_id)


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    next: Cursor | None


def _union(inst: Instance) -> sa.Subquery:
    audit = inst.schema.system("audit")
    decisions = inst.schema.system("approval_decision")
    requests = inst.schema.system("approval_request")
    changes = sa.select(
        audit.c.at, sa.literal(0).label("source"), audit.c.id, audit.c.user_id,
        audit.c.entity, audit.c.record_id, audit.c.action.label("kind"), audit.c.field,
        audit.c.old_value, audit.c.new_value)
    approvals = sa.select(
        decisions.c.at, sa.literal(1).label("source"), decisions.c.id, decisions.c.user_id,
        requests.c.entity, requests.c.record_id, sa.literal("approval").label("kind"),
        requests.c.approval.label("field"), decisions.c.step.label("old_value"),
        decisions.c.decision.label("new_value")).join(
        requests, requests.c.id == decisions.c.request_id)
    return sa.union_all(changes, approvals).subquery("log")


def _where(log: sa.Subquery, filters: Filters) -> list[Any]:
    clauses: list[Any] = []
    if filters.user is not None:
        clauses.append(sa.or_(log.c.user_id == filters.user, sa.and_(
            log.c.entity.in_([ACCOUNT, "user"]), log.c.record_id == filters.user)))
    if filters.entity:
        clauses.append(log.c.entity == filters.entity)
    if filters.record is not None:
        clauses.append(log.c.record_id == filters.record)
    if filters.kind:
        clauses.append(log.c.kind == filters.kind)
    if filters.since:
        clauses.append(log.c.at >= datetime.combine(filters.since, time()))
    if filters.until:
        clauses.append(log.c.at < datetime.combine(filters.until + timedelta(days=1), time()))
    return clauses


def page(inst: Instance, filters: Filters, after: Cursor | None = None,
         size: int = PAGE_SIZE, conn: Connection | None = None,
         language: str | None = None) -> Page:
    """One page of entries, newest first, and the cursor of the next page (None: the last);
    entity and field labels in `language`."""
    log = _union(inst)
    query = sa.select(log).where(*_where(log, filters))
    if after is not None:
        query = query.where(sa.tuple_(log.c.at, log.c.source, log.c.id)
                            < sa.tuple_(sa.literal(after.at, sa.DateTime()),
                                        sa.literal(after.source), sa.literal(after.id)))
    query = query.order_by(log.c.at.desc(), log.c.source.desc(), log.c.id.desc()).limit(
        size + 1)
    with reading(inst, conn) as c:
        rows = [dict(r) for r in c.execute(query).mappings()]
        who = names(inst, c, [r["user_id"] for r in rows] + [
            r["record_id"] for r in rows if r["entity"] in (ACCOUNT, "user")])
    entries = [_entry(inst, row, who, language) for row in rows[:size]]
    more = len(rows) > size and entries
    return Page(entries, Cursor(entries[-1].at, entries[-1].source, entries[-1].id)
                if more else None)


def _entry(inst: Instance, row: Mapping[str, Any], who: Mapping[int, str],
           language: str | None = None) -> Entry:
    entity = row["entity"]
    ent = inst.model.entities.get(entity)
    label = ACCOUNT_LABEL if entity == ACCOUNT else (ent.label.get(language) if ent else entity)
    field = row["field"] or ""
    if ent is not None and field in ent.fields:
        field = ent.fields[field].label.get(language)
    old, new = row["old_value"], row["new_value"]
    if row["source"] == 0:
        old, new = _text(old), _text(new)
    user = who.get(row["user_id"], "") if row["user_id"] else N_("(nobody signed in)")
    record_id = row["record_id"] or None
    subject = who.get(record_id) if entity in (ACCOUNT, "user") and record_id else None
    return Entry(row["at"], row["source"], row["id"], row["user_id"], user, row["kind"],
                 entity, label, record_id, subject or f"{label} #{record_id or ''}", field,
                 old or "", new or "")


def _text(stored: str | None) -> str:
    """An audited JSON value as short text: `{"a": 1}` reads `a: 1`."""
    if stored is None:
        return ""
    try:
        value = json.loads(stored)
    except ValueError:
        return stored[:SHORT]
    if isinstance(value, dict):
        text = ", ".join(f"{k}: {_plain(v)}" for k, v in value.items() if v not in (None, ""))
    else:
        text = _plain(value)
    return text if len(text) <= SHORT else text[:SHORT - 1] + "…"


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value) or "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def entity_choices(inst: Instance, language: str | None = None) -> list[tuple[str, str]]:
    """(name, label) of what the entity filter offers: the entities (labels in `language`),
    then the accounts."""
    found = sorted(((e.name, e.label.get(language)) for e in inst.model.entities.values()),
                   key=lambda pair: pair[1].lower())
    return [*found, (ACCOUNT, ACCOUNT_LABEL)]


def csv_chunks(inst: Instance, filters: Filters) -> Iterator[str]:
    """Every entry the filters select (up to EXPORT_LIMIT), as CSV, a page at a time; text
    cells escaped against spreadsheet formulas as every export is (`runtime.read.export`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    after, written = None, 0
    while written < EXPORT_LIMIT:
        found = page(inst, filters, after, size=1000)
        for e in found.entries:
            writer.writerow([e.at.isoformat(), escape(e.user), e.kind, e.entity,
                             csv_text(e.record_id), escape(e.field), escape(e.old),
                             escape(e.new)])
        written += len(found.entries)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if found.next is None:
            return
        after = found.next


def parse_filters(inst: Instance, args: Mapping[str, str]) -> Filters:
    """Filters from a query string (`user`: a username or id, `entity`, `record`, `kind`,
    `from`, `to`); BadRequest saying what is wrong with a value. An unknown user or entity
    selects nothing."""
    filters = Filters(since=_date(args, "from"), until=_date(args, "to"))
    user = (args.get("user") or "").strip()
    if user:
        with reading(inst, None) as conn:
            found = user_id_of(inst, conn, user[:64])
        if found is None and user.isdigit() and len(user) < 19:
            found = int(user)
        filters = replace(filters, user=found if found is not None else -1)
    entity = (args.get("entity") or "").strip()
    if entity:
        filters = replace(filters, entity=entity[:63])
    record = (args.get("record") or "").strip()
    if record:
        if not record.isdigit() or len(record) > 18:
            raise BadRequest("The record filter takes a record number, like 42.")
        filters = replace(filters, record=int(record))
    kind = (args.get("kind") or "").strip()
    if kind:
        if kind not in KINDS:
            raise BadRequest(f"There is no kind '{kind[:40]}'; pick one from the list.")
        filters = replace(filters, kind=kind)
    return filters


def _date(args: Mapping[str, str], key: str) -> date | None:
    text = (args.get(key) or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise BadRequest(f"'{text[:20]}' is not a date: write it as 2026-03-31.") from None
