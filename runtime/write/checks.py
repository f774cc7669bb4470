"""Checks of a record against the other rows, inside the write transaction: links point to
records that exist (and that the actor may read), `unique` values, duplicate rules, and
pending approval requests; and the options the record's kind offers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from builder.model import Entity
from runtime.core import caches, phones
from runtime.core.db import is_sqlite
from runtime.core.errors import Conflict
from runtime.core.values import Errors, is_empty
from runtime.read.permissions import read_filter

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.context import Fetcher
    from runtime.core.instance import Actor, Instance


def check_links(inst: Instance, actor: Actor, conn: Connection, ent: Entity,
                 record: Mapping[str, Any], names: list[str], errors: Errors,
                 fetch: Fetcher | None = None) -> None:
    """Every linked id exists and the actor may see it. With the write's `fetch`, a single
    link the actor may see whatever its row is asks it (formulas then find the row there)."""
    for name in names:
        field = ent.fields[name]
        if field.type not in ("link", "links") or field.to not in inst.model.entities:
            continue
        value = record.get(name)
        ids = [value] if field.type == "link" else list(value or [])
        ids = [i for i in ids if i is not None]
        if not ids:
            continue
        target = inst.schema.table(field.to)
        row_filter = read_filter(inst, actor, field.to, target)
        if row_filter is None and fetch is not None and field.type == "link":
            found = {ids[0]} if fetch(field.to, ids[0]) is not None else set()
        elif row_filter is None:  # one prebuilt statement per target table
            found = set(conn.execute(_exists(target), {"ids": ids}).scalars())
        else:
            found = set(conn.execute(sa.select(target.c.id).where(
                target.c.id.in_(ids), row_filter)).scalars())
        missing = [i for i in ids if i not in found]
        if missing:
            label = inst.model.entity(field.to).label
            errors.setdefault(name, []).append(
                f"there is no {label} with id {', '.join(map(str, missing))} (or you may not "
                "see it); choose an existing record")


def check_kind_options(ent: Entity, record: Mapping[str, Any], names: list[str],
                       errors: Errors) -> None:
    """A choice that the record's kind narrows (`kinds: … options:`) takes one of the kind's
    options. Only `names` are checked (the values given), so a record keeps a value it had
    before its kind changed until someone changes it."""
    kind = ent.kind_of(record)
    if kind is None:
        return
    for name in names:
        allowed = kind.options.get(name)
        value = record.get(name)
        if allowed is None or is_empty(value):
            continue
        refused = [v for v in (value if isinstance(value, list) else [value]) if v not in allowed]
        if refused:
            field = ent.fields[name]
            offered = ", ".join(field.option_label(v) for v in allowed)
            errors.setdefault(name, []).append(
                f"“{field.option_label(refused[0])}” is not an option for a "
                f"{kind.label.get().lower()}; choose one of: {offered}")


def check_unique(conn: Connection, ent: Entity, table: sa.Table, record: Mapping[str, Any],
                  names: list[str], errors: Errors) -> None:
    for name in names:
        field = ent.fields[name]
        value = record.get(name)
        if not (field.unique and name in table.c) or is_empty(value):
            continue
        stmt = sa.select(table.c.id).where(table.c[name] == value)
        if record.get("id") is not None:
            stmt = stmt.where(table.c.id != record["id"])
        if conn.execute(stmt.limit(1)).first() is not None:
            errors.setdefault(name, []).append(
                "is already used by another record; enter a different value")


def unique_taken(conn: Connection, ent: Entity, table: sa.Table,
                 records: list[Mapping[str, Any]]) -> dict[str, set[Any]]:
    """{unique field: the values of `records` that rows already hold}, one query per field
    and 500 values (the batch form of `check_unique` for new records)."""
    taken: dict[str, set[Any]] = {}
    for name, field in ent.fields.items():
        if not (field.unique and name in table.c):
            continue
        wanted = sorted({r[name] for r in records if not is_empty(r.get(name))}, key=str)
        taken[name] = set()
        for i in range(0, len(wanted), 500):
            taken[name].update(conn.execute(sa.select(table.c[name]).where(
                table.c[name].in_(wanted[i:i + 500]))).scalars())
    return taken


def blocking_keys(ent: Entity, record: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """One key per `block` duplicate rule that `record` fills, compared as the rule compares
    (text without case, phone numbers as E.164): two new records with the same key are
    duplicates of each other."""
    keys = []
    for index, rule in enumerate(ent.duplicates):
        values = [record.get(name) for name in rule.match]
        if rule.action != "block" or not rule.match or any(is_empty(v) for v in values):
            continue
        keys.append((index, *(_compared(ent.fields[n].type, v)
                              for n, v in zip(rule.match, values, strict=True))))
    return keys


def find_duplicates(inst: Instance, conn: Connection, entity: str,
                    record: Mapping[str, Any], *, changed: set[str] | None = None,
                    blocking_only: bool = False) -> list[dict[str, Any]]:
    """The records that the entity's duplicate rules say are the same as `record`:
    [{"fields", "action", "record_id"}], one per rule that matches (text compares without
    case, phone numbers as numbers: E.164). `record` may have an `id` to exclude. `changed`
    (the fields an update changes) skips rules that match on none of them; `blocking_only`
    skips `warn` rules (their matches would not be reported)."""
    ent = inst.model.entity(entity)
    table = inst.schema.table(entity)
    found = []
    for index, rule in enumerate(ent.duplicates):
        if changed is not None and not changed & set(rule.match):
            continue
        if blocking_only and rule.action != "block":
            continue
        values = [record.get(name) for name in rule.match]
        if not rule.match or any(is_empty(v) for v in values):
            continue
        texts = tuple(ent.fields[n].type in ("text", "email") and isinstance(v, str)
                      for n, v in zip(rule.match, values, strict=True))
        with_id = record.get("id") is not None
        stmt = caches.STATEMENTS.get(table, ("duplicates", index, texts, with_id), partial(
            _duplicate_query, ent, table, rule.match, texts, with_id))
        params: dict[str, Any] = {}
        for i, (name, value) in enumerate(zip(rule.match, values, strict=True)):
            if ent.fields[name].type == "phone":
                params[f"v{i}"] = phones.normalized(value)
            elif texts[i]:
                params[f"v{i}"] = value.lower()
            else:
                params[f"v{i}"] = value
        if with_id:
            params["_crm_id"] = record["id"]
        match = conn.execute(stmt, params).scalar()
        if match is not None:
            found.append({"fields": list(rule.match), "action": rule.action, "record_id": match})
    return found


def _compared(kind: str, value: Any) -> Any:
    """A value as a duplicate rule compares it."""
    if kind == "phone":
        return phones.normalized(value)
    if kind in ("text", "email") and isinstance(value, str):
        return value.lower()
    return value


def _exists(target: sa.Table) -> Any:
    """SELECT id FROM target WHERE id IN :ids, once per table."""
    return caches.STATEMENTS.get(target, "exists", lambda: sa.select(target.c.id).where(
        target.c.id.in_(sa.bindparam("ids", expanding=True))))


def _duplicate_query(ent: Entity, table: sa.Table, match: tuple[str, ...],
                     texts: tuple[bool, ...], with_id: bool) -> Any:
    """The SELECT of the first record matching a duplicate rule on `match` (values `v0`…;
    phone numbers by their E.164 shadow column, `texts` lower-cased; `_crm_id` excluded
    when `with_id`)."""
    conditions = []
    for i, (name, text) in enumerate(zip(match, texts, strict=True)):
        compared = _compared_column(ent, table, name, text)
        conditions.append(compared == sa.bindparam(f"v{i}", type_=compared.type))
    if with_id:
        conditions.append(table.c.id != sa.bindparam("_crm_id"))
    return sa.select(table.c.id).where(*conditions).order_by(table.c.id).limit(1)


def _compared_column(ent: Entity, table: sa.Table, name: str, text: bool) -> Any:
    """A field's column as a duplicate rule compares it: a phone number's E.164 shadow
    column, text lower-cased when `text` (the value compared is a string)."""
    if ent.fields[name].type == "phone":
        return table.c[phones.shadow(name)]
    if text:
        return sa.func.lower(table.c[name], type_=sa.String())
    return table.c[name]


def keys_in_table(conn: Connection, ent: Entity, table: sa.Table,
                  keys: list[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    """Of `keys` (as `blocking_keys` makes them), those that a row of the table has: one
    query per rule and 500 keys, the batch form of `find_duplicates`' search for new rows.
    Only a key found can be a duplicate; its exact check (`find_duplicates`: which record,
    the record itself left out) is the caller's. A row the database finds but Python does
    not compare equal to any key asked (a value it gives back in another form) counts
    every key of its query as found: never a duplicate missed."""
    groups: dict[tuple[int, tuple[bool, ...]], list[tuple[Any, ...]]] = {}
    for key in dict.fromkeys(keys):
        match = ent.duplicates[key[0]].match
        texts = tuple(ent.fields[n].type in ("text", "email") and isinstance(v, str)
                      for n, v in zip(match, key[1:], strict=True))
        groups.setdefault((key[0], texts), []).append(key)
    found: set[tuple[Any, ...]] = set()
    for (index, texts), wanted in groups.items():
        columns = [_compared_column(ent, table, name, text)
                   for name, text in zip(ent.duplicates[index].match, texts, strict=True)]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            if len(columns) == 1:
                where = columns[0].in_([key[1] for key in chunk])
            else:
                where = sa.tuple_(*columns).in_([key[1:] for key in chunk])
            rows = {(index, *row) for row in conn.execute(
                sa.select(*columns).where(where).distinct())}
            found |= rows if rows <= set(chunk) else set(chunk)
    return found


def serialise_duplicates(conn: Connection, ent: Entity, record: Mapping[str, Any]) -> None:
    """On PostgreSQL, two transactions inserting the same customer at once would both miss
    each other; a transaction-scoped advisory lock per (entity, rule, values) makes the second
    wait for the first and then see its row. (SQLite's write lock already serialises.)"""
    serialise_many(conn, ent, [record])


def serialise_many(conn: Connection, ent: Entity, records: list[Mapping[str, Any]]) -> None:
    """`serialise_duplicates` for many records at once, before their duplicate checks: the
    same locks, in one statement per 500 locks, taken in the order of their keys so that two
    batches locking the same keys queue instead of deadlocking."""
    if is_sqlite(conn):
        return
    keys = sorted({key for record in records for key in _lock_keys(ent, record)})
    for start in range(0, len(keys), 500):
        conn.execute(_LOCK_MANY, {"keys": keys[start:start + 500]})


# An advisory lock is the database's, not a schema's: each key is mixed with the current
# schema's hash, so that the instances (workspaces) of one database do not wait for each
# other. unnest keeps the array's order, which the locks are taken in.
_LOCK_MANY = sa.text(
    "SELECT pg_advisory_xact_lock(k # hashtextextended(coalesce(current_schema(), ''), 0)) "
    "FROM unnest(CAST(:keys AS bigint[])) WITH ORDINALITY AS t(k, n) ORDER BY n")


def _lock_keys(ent: Entity, record: Mapping[str, Any]) -> list[int]:
    """The advisory lock of each `block` rule the record fills: a hash of (entity, rule,
    values as the rule compares them)."""
    keys = []
    for rule in ent.duplicates:
        if rule.action != "block":
            continue
        values = [record.get(name) for name in rule.match]
        if not rule.match or any(is_empty(v) for v in values):
            continue
        parts = [str(phones.normalized(v)) if ent.fields[n].type == "phone" else str(v).lower()
                 for n, v in zip(rule.match, values, strict=True)]
        digest = hashlib.sha256("\x1f".join([ent.name, *rule.match, *parts]).encode())
        keys.append(int.from_bytes(digest.digest()[:8], "big", signed=True))
    return keys


def duplicates(inst: Instance, conn: Connection, ent: Entity, record: Mapping[str, Any],
                changed: set[str] | None, confirmed: bool) -> list[dict[str, Any]]:
    serialise_duplicates(conn, ent, record)
    warnings = []
    for match in find_duplicates(inst, conn, ent.name, record, changed=changed,
                                 blocking_only=confirmed):
        labels = ", ".join(str(ent.fields[n].label) for n in match["fields"])
        if match["action"] == "block":
            raise duplicate_conflict(ent, match)
        if not confirmed:
            # no merge exists (yet): say what the user can do now
            warnings.append({**match, "message": f"A {ent.label} with the same {labels} "
                             f"already exists (#{match['record_id']}); open it to check "
                             "that this is not the same one, and delete the one you do not "
                             "need if it is."})
    return warnings


def refuse_duplicates(inst: Instance, conn: Connection, ent: Entity,
                      record: Mapping[str, Any], changed: set[str] | None) -> None:
    """`duplicates` confirmed, without its locks (the caller took them): Conflict when a
    `block` rule finds the record in the table."""
    for match in find_duplicates(inst, conn, ent.name, record, changed=changed,
                                 blocking_only=True):
        raise duplicate_conflict(ent, match)


def duplicate_conflict(ent: Entity, match: Mapping[str, Any]) -> Conflict:
    """The error of a record that a `block` rule finds in the table (`find_duplicates`)."""
    labels = ", ".join(str(ent.fields[n].label) for n in match["fields"])
    return Conflict(f"A {ent.label} with the same {labels} already exists (#"
                    f"{match['record_id']}); open that record instead of entering it "
                    "twice.", record_id=match["record_id"], entity=ent.name)


def pending_approval(inst: Instance, conn: Connection, entity: str, record_id: int
                      ) -> str | None:
    requests = inst.schema.system("approval_request")
    return conn.execute(sa.select(requests.c.approval).where(
        requests.c.entity == entity, requests.c.record_id == record_id,
        requests.c.status == "pending").limit(1)).scalar()
