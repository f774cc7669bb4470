"""Demo data (`crmforge install --demo`): each pack's `data/*.yaml|csv` written through the one
write path, a batch of records of one entity at a time (`runtime.write.bulk`), once per pack.

Values are value slots (docs/expressions.md): literals, `{field}` templates and `=expressions`,
evaluated with the instance's clock (`listed_on: "=today() - days(40)"`). A link holds the `_key` of
another demo record; records are created in passes — those whose links all resolve first — and
records that link to each other in a circle are created without those links and linked afterwards;
the keys are kept (`crm_demo_key`), so a pack whose demo data loads later can link to them. Links to
users (and `owner`) hold usernames: users that do not exist are created as demo users. A bad row is
reported with its file and line and skipped; the others load. The notifications the demo's
history sends are left read, but for each user's newest few (`read_demo_notifications`). In
another language (`language="zh"`) the names, companies, addresses and phone numbers are the
language's (`runtime.ops.demo_languages`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from builder.diagnostics import Diagnostics
from builder.expressions import (
    EvalContext,
    ExpressionError,
    is_plain,
    parse_repeated_slot,
    slot_value,
)
from builder.loader import load_file
from builder.model import DemoFile, Field
from runtime.core.db import write_transaction
from runtime.core.errors import RecordError
from runtime.core.instance import Actor, Instance
from runtime.ops.demo_languages import DEFAULT, localise
from runtime.ops.transfer import problem_text, unsettable, write_many
from runtime.write import derived, records


@dataclass
class Row:
    demo: DemoFile
    index: int  # the record's place in its file
    values: Mapping[str, Any]
    id: int | None = None
    deferred: dict[str, Any] = field(default_factory=dict)  # circular links, set afterwards

    @property
    def pack(self) -> str:
        return self.demo.pack

    @property
    def entity(self) -> str:
        return self.demo.entity

    @property
    def file(self) -> str:
        return self.demo.file

    @property
    def key(self) -> str | None:
        key = self.values.get("_key")
        return str(key) if key is not None else None


@dataclass
class DemoResult:
    created: dict[str, int] = field(default_factory=dict)  # entity -> records
    users: list[str] = field(default_factory=list)  # demo users created for links
    problems: list[str] = field(default_factory=list)  # "file:line: entity: message"

    @property
    def total(self) -> int:
        return sum(self.created.values())


BATCH = 500  # demo records written at once


class _Unresolved(Exception):
    """A link to a demo record that is not created yet."""


def load_demo(inst: Instance, packs: Iterable[str], *,
              actor: Actor | None = None, language: str = DEFAULT) -> DemoResult:
    """Load the demo data of `packs` in one transaction, its names and places in `language`
    (DemoLanguageError when the demo has none in it); marks them in `crm_installed`."""

    wanted = set(packs)
    actor = actor or Actor.system_actor("demo")
    rows = [row for demo in inst.model.demo if demo.pack in wanted
            for row in _rows(inst, demo)]
    for row, values in zip(rows, localise(inst.model, [(r.entity, r.values) for r in rows],
                                          language), strict=True):
        row.values = values
    loader = _Loader(inst, actor, rows, records)
    with write_transaction(inst.engine) as conn:
        notices = inst.schema.system("notification")
        before = conn.execute(sa.select(sa.func.max(notices.c.id))).scalar() or 0
        with derived.batch(inst, conn):  # rollups once per parent, at the end
            loader.run(conn)
        read_demo_notifications(inst, conn, after=before)
        installed = inst.schema.system("installed")
        conn.execute(installed.update().where(installed.c.pack.in_(sorted(wanted)))
                     .values(demo=True))
    return loader.result


UNREAD_KEPT = 3  # per user: enough to show the bell at work, not a backlog to clear


def read_demo_notifications(inst: Instance, conn: Connection, *, after: int) -> None:
    """The notifications the demo's history sent (ids above `after`) are marked read, but for
    each user's newest UNREAD_KEPT: a first visit shows the bell working, not ~150 unread."""
    table = inst.schema.system("notification")
    rows = conn.execute(sa.select(table.c.id, table.c.user_id).where(
        table.c.id > after, table.c.read_at.is_(None)).order_by(table.c.id.desc())).all()
    kept: dict[int, int] = {}
    old = []
    for notice_id, user_id in rows:
        kept[user_id] = kept.get(user_id, 0) + 1
        if kept[user_id] > UNREAD_KEPT:
            old.append(notice_id)
    for start in range(0, len(old), 500):
        conn.execute(table.update().where(table.c.id.in_(old[start:start + 500]))
                     .values(read_at=inst.now()))


def _rows(inst: Instance, demo: DemoFile) -> list[Row]:
    return [Row(demo, index, rec) for index, rec in enumerate(demo.records)]


def _lines(inst: Instance, demo: DemoFile) -> list[int | None]:
    """The line of each record in its file (the model keeps the records, not their lines)."""
    path = Path(demo.file)
    pack = inst.model.packs.get(demo.pack)
    if not path.is_file() and pack is not None:
        path = Path(pack.path) / "data" / path.name
    if not path.is_file():
        return []
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline=""))
        return [reader.line_num for row in reader if None not in row]
    doc = load_file(path, demo.file, Diagnostics())
    if doc is None or not isinstance(doc.data, list):
        return []
    return [doc.mark((i,)).line for i in range(len(doc.data))]


class _Loader:
    def __init__(self, inst: Instance, actor: Actor, rows: list[Row], records: Any):
        self.inst = inst
        self.actor = actor
        self.rows = rows
        self.records = records
        self.result = DemoResult()
        self.keys: dict[tuple[str, str], int] = {}
        self.pending_keys = {(r.entity, r.key) for r in rows if r.key}
        self.usernames: dict[str, int] = {}
        self.pending_users = {str(r.values["username"]) for r in rows
                              if r.entity == "user" and r.values.get("username")}
        self.ignored: dict[tuple[str, str], int] = {}  # (file, field): rows
        self.lines: dict[int, list[int | None]] = {}  # id(DemoFile) -> line of each record
        self.new_keys: dict[tuple[str, str], int] = {}  # written to crm_demo_key at the end
        self.stored: set[tuple[str, str]] = set()  # the keys crm_demo_key held at the start
        self.queue: list[tuple[Row, dict[str, Any]]] = []  # rows of one entity, to write
        self.queued: set[tuple[str, str]] = set()  # their (entity, _key) and ("user", name)

    def run(self, conn: Connection) -> None:
        keys = self.inst.schema.system("demo_key")
        for entity, key, record_id in conn.execute(sa.select(keys)):
            self.keys[(entity, key)] = int(record_id)  # demo data of packs loaded before
        self.stored = set(self.keys)
        # the staff first, so that automations of the records after them (round-robin
        # assignment, approvers by role) find someone; links between users wait
        staff = [row for row in self.rows if row.entity == "user"]
        for row in staff:
            self.attempt(conn, row, circular=True)
        self.flush(conn)
        pending = [row for row in self.rows if row.entity != "user" and row.id is None]
        circular = False
        while pending:
            left: list[Row] = []
            for row in pending:
                if not self.attempt(conn, row, circular):
                    left.append(row)
            self.flush(conn)
            if len(left) == len(pending):
                if circular:  # even without the optional links nothing moves: give up
                    for row in left:
                        self.problem(row, "links to records that could not be created")
                    break
                circular = True
            else:
                circular = False
            pending = left
        for row in self.rows:
            if row.id is not None and row.deferred:
                self.link_later(conn, row)
        self.save_keys(conn)
        for (file, name), count in self.ignored.items():
            self.result.problems.append(
                f"{file}: field '{name}' is computed or read-only: its value was left out of "
                f"{count} record(s)")

    def attempt(self, conn: Connection, row: Row, circular: bool) -> bool:
        """Create the row's record; False when it links to records not created yet."""
        try:
            values = self.values(conn, row, circular)
        except _Unresolved:
            return False
        except (ValueError, ExpressionError) as exc:
            self.problem(row, str(getattr(exc, "message", exc)))
            self.forget(row)
            return True
        self.create(conn, row, values)
        return True

    # -- values ---------------------------------------------------------------------------

    def values(self, conn: Connection, row: Row, circular: bool) -> dict[str, Any]:
        entity = self.inst.model.entities.get(row.entity)
        if entity is None:
            raise ValueError(f"there is no entity '{row.entity}'")
        values: dict[str, Any] = {}  # the literals first: expressions may read them
        later: dict[str, Any] = {}
        links: dict[str, Any] = {}
        for name, raw in row.values.items():
            if name == "_key" or raw is None or (name == "roles" and entity.name == "user"):
                continue
            f = entity.fields.get(name)
            if f is None:
                raise ValueError(f"{entity.name} has no field '{name}'")
            if unsettable(entity, name):
                self.ignored.setdefault((row.file, name), 0)
                self.ignored[(row.file, name)] += 1
                continue
            if f.type in ("link", "links"):
                links[name] = raw
                continue
            slot = None if is_plain(raw) else parse_repeated_slot(raw)
            if slot is None or slot.kind == "literal":
                values[name] = raw
            else:
                later[name] = slot
        ctx = EvalContext(record=dict(values), entity=entity.name, now=self.inst.now(),
                          today=self.inst.today())
        for name, slot in later.items():
            values[name] = slot_value(slot, ctx)
        deferred: dict[str, Any] = {}
        for name, raw in links.items():
            f = entity.fields[name]
            try:
                values[name] = self.link(conn, f, raw)
            except _Unresolved:
                if not circular or f.required:
                    raise
                deferred[name] = raw
        row.deferred = deferred
        return values

    def link(self, conn: Connection, f: Field, raw: Any) -> Any:
        if f.type == "links":
            items = raw if isinstance(raw, list) else [raw]
            return [self.one(conn, f, item) for item in items]
        return self.one(conn, f, raw)

    def one(self, conn: Connection, f: Field, raw: Any) -> int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        value = str(raw)
        if (f.to, value) in self.queued:
            self.flush(conn)
        if f.to == "user":
            return self.user(conn, value)
        if (f.to, value) in self.keys:
            return self.keys[(f.to or "", value)]
        if (f.to, value) in self.pending_keys:
            raise _Unresolved(value)
        raise ValueError(f"{f.name}: no {f.to} record has the _key '{value}'")

    def user(self, conn: Connection, username: str) -> int:
        if ("user", username) in self.queued:
            self.flush(conn)
        if username in self.usernames:
            return self.usernames[username]
        users = self.inst.schema.table("user")
        found = conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar()
        if found is None and username in self.pending_users:
            raise _Unresolved(username)
        if found is None:
            record = self.records.create(self.inst, self.actor, "user", {
                "username": username, "full_name": _full_name(username)}, conn=conn)
            found = record["id"]
            self.result.users.append(username)
        self.usernames[username] = int(found)
        return int(found)

    # -- writing ----------------------------------------------------------------------------

    def create(self, conn: Connection, row: Row, values: dict[str, Any]) -> None:
        """Queue the row's record; the queue is written at once (`flush`) when a row of
        another entity comes, when a row links to a queued one, and at the end of a pass."""
        if self.queue and (self.queue[0][0].entity != row.entity or len(self.queue) >= BATCH):
            self.flush(conn)
        self.queue.append((row, values))
        if row.key:
            self.queued.add((row.entity, row.key))
        if row.entity == "user" and values.get("username"):
            self.queued.add(("user", str(values["username"])))

    def flush(self, conn: Connection) -> None:
        """Write the queued rows through the bulk form of the write path."""
        if not self.queue:
            return
        queue, self.queue = self.queue, []
        self.queued.clear()
        outcomes = write_many(self.inst, self.actor, conn, queue[0][0].entity,
                              [(row.index, values) for row, values in queue])
        for (row, values), outcome in zip(queue, outcomes, strict=True):
            if outcome.error is not None:
                self.problem(row, problem_text(outcome.error))
                self.forget(row)
            else:
                self.created(conn, row, values, int(outcome.id or 0))

    def created(self, conn: Connection, row: Row, values: dict[str, Any], record_id: int
                ) -> None:
        row.id = record_id
        if row.key:
            self.keys[(row.entity, row.key)] = self.new_keys[(row.entity, row.key)] = row.id
        if row.entity == "user" and values.get("username"):
            self.usernames[str(values["username"])] = row.id
            self.grant(conn, row)
        self.result.created[row.entity] = self.result.created.get(row.entity, 0) + 1

    def grant(self, conn: Connection, row: Row) -> None:
        """The roles a demo user row names (`roles: [agent]`), given as `user create --role`
        gives them."""
        roles = row.values.get("roles") or []
        unknown = [r for r in roles if r not in self.inst.model.roles]
        if unknown:
            self.problem(row, f"roles: no role named {', '.join(map(repr, unknown))}")
        granted = self.inst.schema.system("user_role")
        wanted = [r for r in dict.fromkeys(roles) if r in self.inst.model.roles]
        if wanted:
            conn.execute(granted.insert(), [{"user_id": row.id, "role": r} for r in wanted])

    def save_keys(self, conn: Connection) -> None:
        """The keys of the records made, kept for packs whose demo data loads later."""
        if not self.new_keys:
            return
        keys = self.inst.schema.system("demo_key")
        if replaced := [{"e": e, "k": k} for e, k in self.new_keys if (e, k) in self.stored]:
            conn.execute(keys.delete().where(keys.c.entity == sa.bindparam("e"),
                                             keys.c.key == sa.bindparam("k")), replaced)
        conn.execute(keys.insert(), [{"entity": e, "key": k, "record_id": record_id}
                                     for (e, k), record_id in self.new_keys.items()])

    def link_later(self, conn: Connection, row: Row) -> None:

        entity = self.inst.model.entity(row.entity)
        values = {}
        for name, raw in row.deferred.items():
            try:
                values[name] = self.link(conn, entity.fields[name], raw)
            except (_Unresolved, ValueError):
                self.problem(row, f"{name}: the linked record could not be created")
        if not values:
            return
        try:
            with conn.begin_nested():
                self.records.update(self.inst, self.actor, row.entity, row.id, values,
                                    version=None, conn=conn)
        except RecordError as exc:
            self.problem(row, problem_text(exc))

    def forget(self, row: Row) -> None:
        """A row that will not be created: links to it are errors, not waits."""
        if row.key:
            self.pending_keys.discard((row.entity, row.key))
        if row.entity == "user" and row.values.get("username"):
            self.pending_users.discard(str(row.values["username"]))

    def problem(self, row: Row, message: str) -> None:
        where = row.file
        if id(row.demo) not in self.lines:  # files are read again only to report a problem
            self.lines[id(row.demo)] = _lines(self.inst, row.demo)
        lines = self.lines[id(row.demo)]
        if row.index < len(lines) and lines[row.index]:
            where = f"{row.file}:{lines[row.index]}"
        self.result.problems.append(f"{where}: {row.entity}: {message}")


def _full_name(username: str) -> str:
    return " ".join(p.capitalize() for p in username.replace(".", " ").replace("_", " ").split())

