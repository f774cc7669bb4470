"""Merging duplicates: one record (the survivor) absorbs others of its entity (docs/web.md,
docs/api.md). Decide, then do:

- deciding is pure: from the records read, the references to the absorbed records and what
  hangs on them, `plan` says which value each field keeps (the value chosen, else the
  survivor's, else the first absorbed record's that is not empty), which `link` and `links`
  values in every entity move to the survivor, and how many timeline entries, follow-ups,
  attachments, approval requests and e-mails move with them;
- doing (`merge`) runs in one transaction, the records involved locked first (`SELECT … FOR
  UPDATE` on PostgreSQL, so that a link to an absorbed record cannot be added meanwhile):
  re-points each reference through `records.update` (as the system on the user's behalf, once
  the merge is allowed: audited, rollups and formulas kept), moves the rows that hang on the
  absorbed records, deletes them through `records.delete` (their values stay in the audit
  log), saves the chosen values on the survivor through `records.update` as the user, keeps
  each absorbed id as an alias of the survivor (`crm_record_alias`: old addresses redirect,
  `runtime.read.aliases`), and audits the merge (an audit entry and a timeline entry on the
  survivor naming the absorbed records).

Who may merge: the entity's `merge` right (by default its `delete` rule) on every record
involved, `update` on the survivor and `delete` on each absorbed one (docs/permissions.md).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from builder.model import Entity
from runtime.core.db import in_transaction, is_sqlite, mark_written
from runtime.core.errors import N_, Conflict, Forbidden, StaleVersion, ValidationFailed
from runtime.core.values import AUTO_FIELDS, is_empty, readonly_reason, same, to_json
from runtime.read.permissions import can, hidden_fields, readonly_fields, state_lock
from runtime.read.queries import attach_links, entity_of, load, not_found, record_id_of
from runtime.write import records
from runtime.write.timeline import record_event

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

MAX_ABSORBED = 20  # records one merge may absorb
MOVED = {  # system table -> what its rows are called, in the order a page lists them
    "timeline": N_("timeline entries"), "attachment": N_("attachments"),
    "approval_request": N_("approval requests"), "mail": N_("e-mails"), "demo_key": None}


@dataclass(frozen=True)
class Repoint:
    """`entity` #`record_id`'s `field` becomes `value` (the survivor, or a list with it)."""

    entity: str
    record_id: int
    field: str
    value: Any


@dataclass(frozen=True)
class Plan:
    """What a merge will do, decided before anything is written."""

    entity: str
    survivor: dict[str, Any]  # the records as the actor reads them (JSON)
    absorbed: list[dict[str, Any]]
    choices: dict[str, list[int]]  # field -> the records whose value may be chosen
    chosen: dict[str, int | None]  # field -> the record whose value the default keeps
    values: dict[str, Any]  # the survivor's new values
    repoints: list[Repoint]
    moves: dict[str, int] = field(default_factory=dict)  # what moves, in words -> how many

    @property
    def absorbed_ids(self) -> list[int]:
        return [r["id"] for r in self.absorbed]


# -- deciding ---------------------------------------------------------------------------------


def choosable(inst: Instance, actor: Actor, ent: Entity) -> list[str]:
    """The fields whose surviving value the actor may choose: input fields they may see and
    change (not formulas, rollups, autonumbers, system fields or the workflow state)."""
    hidden = hidden_fields(inst, actor, ent.name)
    denied = readonly_fields(inst, actor, ent.name)
    return [name for name, f in ent.fields.items()
            if not f.computed and name not in AUTO_FIELDS and name != "id"
            and name not in hidden and name not in denied
            and readonly_reason(ent, f, transition=False, system=False) is None]


def chosen_sources(names: Sequence[str], survivor: Mapping[str, Any],
                   absorbed: Sequence[Mapping[str, Any]]
                   ) -> tuple[dict[str, list[int]], dict[str, int | None]]:
    """({field: the records with a value for it, survivor first}, {field: the record whose
    value survives by default: the survivor's when it has one, else the first absorbed
    record's}) for the fields where the records differ."""
    choices: dict[str, list[int]] = {}
    defaults: dict[str, int | None] = {}
    everyone = [survivor, *absorbed]
    for name in names:
        if all(same(r.get(name), survivor.get(name)) for r in absorbed):
            continue
        choices[name] = [r["id"] for r in everyone]
        filled = [r["id"] for r in everyone if not is_empty(r.get(name))]
        defaults[name] = filled[0] if filled else survivor["id"]
    return choices, defaults


def surviving_values(ent: Entity, names: Sequence[str], survivor: Mapping[str, Any],
                     absorbed: Sequence[Mapping[str, Any]], given: Mapping[str, Any]
                     ) -> dict[str, Any]:
    """The survivor's new values: each default (`chosen_sources`) where it is not the
    survivor's own, then the values `given`; a link of the entity to itself never points at
    a merged record (the survivor's own id included, which would make it its own parent)."""
    errors: dict[str, list[str]] = {}
    for name in given:
        if name not in ent.fields:
            errors[name] = [f"{ent.label} has no field '{name}'; send fields of {ent.label}"]
        elif name not in names:
            errors[name] = ["cannot be chosen in a merge (it is computed, read-only or "
                            "hidden for you); leave it out"]
    if errors:
        raise ValidationFailed(errors)
    by_id = {r["id"]: r for r in [survivor, *absorbed]}
    _, defaults = chosen_sources(names, survivor, absorbed)
    values = {name: by_id[source].get(name) for name, source in defaults.items()
              if source != survivor["id"]}
    values.update(given)
    merged = {survivor["id"], *by_id}
    for name, value in list(values.items()):
        f = ent.fields[name]
        if f.to == ent.name and f.type == "link" and value in merged:
            values[name] = None
        elif f.to == ent.name and f.type == "links" and isinstance(value, list):
            values[name] = [v for v in value if v not in merged]
    return values


def repoints(references: Mapping[tuple[str, str, str], Mapping[int, Any]], survivor: int,
             absorbed: Sequence[int], entity: str) -> list[Repoint]:
    """Each reference to an absorbed record moved to the survivor. `references` is
    {(entity, field, "link" | "links"): {record id: its current value}}; the absorbed records'
    own references go with them, and the survivor pointing at an absorbed record (a link of
    the entity to itself) points at nothing instead of at itself."""
    gone = set(absorbed)
    result = []
    for (ref_entity, name, kind), rows in references.items():
        for record_id, value in rows.items():
            if ref_entity == entity and record_id in gone:
                continue
            to_self = ref_entity == entity and record_id == survivor
            if kind == "link":
                result.append(Repoint(ref_entity, record_id, name, None if to_self else survivor))
            else:
                kept = {v for v in value if v not in gone}
                if not to_self:
                    kept.add(survivor)
                result.append(Repoint(ref_entity, record_id, name, sorted(kept - (
                    {survivor} if to_self else set()))))
    return sorted(result, key=lambda r: (r.entity, r.record_id, r.field))


def refusal(inst: Instance, actor: Actor, conn: Connection, ent: Entity,
            survivor: Mapping[str, Any], absorbed: Sequence[Mapping[str, Any]]) -> None:
    """Forbidden or Conflict when the actor may not merge these records."""
    label = ent.label.get().lower()
    for record in [survivor, *absorbed]:
        if not can(inst, actor, ent.name, "merge", record, conn=conn):
            raise Forbidden(f"You may not merge {ent.plural.get().lower()} (#{record['id']}); "
                            "ask an administrator for the merge right.")
        lock = state_lock(inst, actor, ent.name, record)
        if lock:
            raise Forbidden(f"#{record['id']}: {lock}")
    if not can(inst, actor, ent.name, "update", survivor, conn=conn):
        raise Forbidden(f"You may not change this {label} (#{survivor['id']}), so it cannot "
                        "absorb others; merge into a record you may change.")
    for record in absorbed:
        if not can(inst, actor, ent.name, "delete", record, conn=conn):
            raise Forbidden(f"You may not delete the {label} #{record['id']}, so it cannot be "
                            "merged away; leave it out or ask an administrator.")
    waiting = _pending(inst, conn, ent.name, [survivor["id"], *(r["id"] for r in absorbed)])
    if len(waiting) > 1:
        raise Conflict(f"The {label} records #{', #'.join(map(str, waiting))} each await "
                       "approval; decide or recall all but one request before merging them.",
                       record_id=waiting[0], entity=ent.name)


# -- reading what a merge touches ---------------------------------------------------------------


def _pending(inst: Instance, conn: Connection, entity: str, ids: Sequence[int]) -> list[int]:
    """The ids among `ids` with a pending approval request."""
    requests = inst.schema.system("approval_request")
    return sorted(conn.execute(sa.select(requests.c.record_id).where(
        requests.c.entity == entity, requests.c.record_id.in_(ids),
        requests.c.status == "pending")).scalars())



def absorbed_ids(ent: Entity, survivor: int, absorb: Any) -> list[int]:
    """The ids to absorb, checked: a list of 1…MAX_ABSORBED ids of other records."""
    if not isinstance(absorb, list | tuple) or not absorb:
        raise ValidationFailed({"absorb": ["send a list of the ids of the records to absorb, "
                                           "like [12, 15]"]})
    if len(absorb) > MAX_ABSORBED:
        raise ValidationFailed({"absorb": [f"at most {MAX_ABSORBED} records in one merge"]})
    ids = [record_id_of(ent, value) for value in absorb]
    if survivor in ids:
        raise ValidationFailed({"absorb": [f"#{survivor} cannot absorb itself; list the "
                                           "other records only"]})
    return list(dict.fromkeys(ids))


def read_records(inst: Instance, actor: Actor, conn: Connection, ent: Entity, survivor: int,
                 ids: Sequence[int]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The survivor and the absorbed records (native values); NotFound for one the actor may
    not see."""
    found = []
    for record_id in [survivor, *ids]:
        record = load(inst, conn, ent.name, record_id, actor=actor)
        if record is None:
            raise not_found(ent, record_id)
        found.append(record)
    return found[0], found[1:]


def references(inst: Instance, conn: Connection, entity: str, ids: Sequence[int]
               ) -> dict[tuple[str, str, str], dict[int, Any]]:
    """Every `link` and `links` value in every entity that points at one of `ids`:
    {(entity, field, kind): {record id: current value}}."""
    found: dict[tuple[str, str, str], dict[int, Any]] = {}
    for child, name in inst.model.reverse_links(entity):
        f = inst.model.entity(child).fields[name]
        if f.type == "link":
            table = inst.schema.table(child)
            rows = {row.id: row[1] for row in conn.execute(sa.select(
                table.c.id, table.c[name]).where(table.c[name].in_(ids)).order_by(table.c.id))}
        else:
            join = inst.schema.link_table(child, name)
            sources = conn.execute(sa.select(join.c.source_id).where(
                join.c.target_id.in_(ids)).distinct()).scalars().all()
            rows = {}
            for source in sorted(sources):
                rows[source] = sorted(conn.execute(sa.select(join.c.target_id).where(
                    join.c.source_id == source)).scalars())
        if rows:
            found[(child, name, f.type)] = rows
    return found


def moves(inst: Instance, conn: Connection, entity: str, ids: Sequence[int],
          refs: Mapping[tuple[str, str, str], Mapping[int, Any]]) -> dict[str, int]:
    """What moves to the survivor, in words -> how many (nothing that is zero)."""
    result: dict[str, int] = {}
    for (child, name, _kind), rows in refs.items():
        ent = inst.model.entity(child)
        words = f"{ent.plural.get().lower()} (by {ent.fields[name].label.get().lower()})"
        result[words] = result.get(words, 0) + len(rows)
    timeline = inst.schema.system("timeline")
    counted = {N_("follow-ups"): (timeline, timeline.c.follow_up_on.is_not(None)),
               "timeline entries": (timeline, timeline.c.follow_up_on.is_(None))}
    counted |= {words: (inst.schema.system(name), sa.true()) for name, words in MOVED.items()
                if words is not None and name != "timeline"}
    for words, (table, where) in counted.items():
        result[words] = conn.execute(sa.select(sa.func.count()).select_from(table).where(
            table.c.entity == entity, table.c.record_id.in_(ids), where)).scalar_one()
    return {words: n for words, n in result.items() if n}


def prepare(inst: Instance, actor: Actor, conn: Connection, ent: Entity, survivor_id: int,
            ids: Sequence[int], given: Mapping[str, Any]) -> Plan:
    """Read what the merge touches and decide it (refusals raised)."""
    survivor, absorbed = read_records(inst, actor, conn, ent, survivor_id, ids)
    refusal(inst, actor, conn, ent, survivor, absorbed)
    attach_links(inst, conn, ent, [survivor, *absorbed])
    names = choosable(inst, actor, ent)
    choices, defaults = chosen_sources(names, survivor, absorbed)
    values = surviving_values(ent, names, survivor, absorbed, given)
    refs = references(inst, conn, ent.name, ids)
    hidden = hidden_fields(inst, actor, ent.name)
    return Plan(ent.name, to_json(ent, survivor, hidden),
                [to_json(ent, r, hidden) for r in absorbed], choices, defaults, values,
                repoints(refs, survivor_id, ids, ent.name), moves(inst, conn, ent.name, ids, refs))


def preview(inst: Instance, actor: Actor, entity: str, survivor: Any, absorb: Any) -> Plan:
    """The plan of a merge, nothing written (the merge page shows it)."""
    ent = entity_of(inst, entity)
    rid = record_id_of(ent, survivor)
    _mergeable(ent)
    with inst.engine.connect() as conn:
        return prepare(inst, actor, conn, ent, rid, absorbed_ids(ent, rid, absorb), {})


# -- doing ------------------------------------------------------------------------------------


def merge(inst: Instance, actor: Actor, entity: str, survivor: Any, absorb: Any,
          values: Mapping[str, Any] | None = None, *, versions: Mapping[Any, Any] | None = None,
          conn: Connection | None = None) -> dict[str, Any]:
    """Merge the records `absorb` into `survivor`; the survivor as JSON afterwards. `values`
    chooses surviving values ({field: value}); `versions` ({id: version}) are the versions
    the actor read, refused as stale (409) when someone saved since."""
    ent = entity_of(inst, entity)
    rid = record_id_of(ent, survivor)
    _mergeable(ent)
    ids = absorbed_ids(ent, rid, absorb)
    if values is not None and not isinstance(values, Mapping):
        raise ValidationFailed({"values": ["send the chosen values as an object of field: "
                                           "value"]})

    def work(conn: Connection) -> dict[str, Any]:
        lock(inst, conn, entity, [rid, *ids])
        plan = prepare(inst, actor, conn, ent, rid, ids, dict(values or {}))
        check_versions(ent, plan, versions or {})
        return apply(inst, actor, conn, ent, plan)

    return in_transaction(inst.engine, conn, work)


def _mergeable(ent: Entity) -> None:
    if ent.system:
        raise Forbidden(f"{ent.plural.get()} cannot be merged; make the ones you do not need "
                        "inactive instead.")


def lock(inst: Instance, conn: Connection, entity: str, ids: Sequence[int]) -> None:
    """Lock the records involved, in id order (two merges never wait for each other in a
    circle). FOR UPDATE, not FOR NO KEY UPDATE: a transaction linking a record to one of
    them waits, then fails on the deleted row instead of linking to it."""
    if is_sqlite(conn):  # the write transaction holds the database's write lock already
        return
    table = inst.schema.table(entity)
    conn.execute(sa.select(table.c.id).where(table.c.id.in_(ids)).order_by(
        table.c.id).with_for_update(of=table))


def check_versions(ent: Entity, plan: Plan, versions: Mapping[Any, Any]) -> None:
    """StaleVersion when a version the actor sent is not the record's now."""
    for record in [plan.survivor, *plan.absorbed]:
        sent = versions.get(record["id"], versions.get(str(record["id"])))
        if sent is None:
            continue
        if isinstance(sent, bool) or not (isinstance(sent, int) or (
                isinstance(sent, str) and sent.isascii() and sent.isdigit())):
            raise ValidationFailed({"versions": [f"#{record['id']}: must be the whole number "
                                                 "from the record, like 3"]})
        if int(sent) != record["version"]:
            raise StaleVersion(record, f"{ent.label} #{record['id']} was changed by someone "
                               "else since you read it; reload and merge again.",
                               entity=ent.name)


def apply(inst: Instance, actor: Actor, conn: Connection, ent: Entity,
          plan: Plan) -> dict[str, Any]:
    """Carry out `plan` on the transaction `conn` (see the module's docstring for the order:
    the absorbed records go before the survivor takes their values, so unique values and
    blocking duplicate rules let it)."""
    on_behalf = dataclasses.replace(actor, system=True)  # the merge is allowed: `refusal`
    survivor, ids = plan.survivor["id"], plan.absorbed_ids
    for move in plan.repoints:
        records.update(inst, on_behalf, move.entity, move.record_id, {move.field: move.value},
                       version=None, conn=conn, depth=1)
    _move_rows(inst, conn, ent.name, ids, survivor, [n for n in MOVED if n != "approval_request"])
    for record_id in ids:
        records.delete(inst, on_behalf, ent.name, record_id, conn=conn, depth=1)
    result = None
    if plan.values:
        current = load(inst, conn, ent.name, survivor)
        result = records.update(inst, actor, ent.name, survivor, plan.values,
                                version=current["version"] if current else None, conn=conn)
    _move_rows(inst, conn, ent.name, ids, survivor, ["approval_request"])
    _keep_aliases(inst, actor, conn, ent.name, ids, survivor)
    _record(inst, actor, conn, ent, plan)
    return result if result is not None else records.get(inst, actor, ent.name, survivor,
                                                         conn=conn)


def _move_rows(inst: Instance, conn: Connection, entity: str, ids: Sequence[int],
               survivor: int, tables: Sequence[str]) -> None:
    for name in tables:
        table = inst.schema.system(name)
        conn.execute(table.update().where(table.c.entity == entity,
                                          table.c.record_id.in_(ids)).values(record_id=survivor))
    mark_written(conn)


def _keep_aliases(inst: Instance, actor: Actor, conn: Connection, entity: str,
                  ids: Sequence[int], survivor: int) -> None:
    """Each absorbed id (and the ids it had absorbed before) now names the survivor."""
    aliases = inst.schema.system("record_alias")
    conn.execute(aliases.update().where(aliases.c.entity == entity,
                                        aliases.c.record_id.in_(ids)).values(record_id=survivor))
    conn.execute(aliases.delete().where(aliases.c.entity == entity,
                                        aliases.c.old_id.in_([survivor, *ids])))
    conn.execute(aliases.insert(), [{"entity": entity, "old_id": i, "record_id": survivor,
                                     "merged_by": actor.user_id, "merged_at": inst.now()}
                                    for i in ids])


def _record(inst: Instance, actor: Actor, conn: Connection, ent: Entity, plan: Plan) -> None:
    """The audit entry and the timeline entry of the merge, on the survivor."""
    survivor, ids = plan.survivor["id"], plan.absorbed_ids
    data = {"absorbed": ids, "moved": plan.moves}
    conn.execute(inst.schema.system("audit").insert(), {
        "entity": ent.name, "record_id": survivor, "action": "merge", "field": None,
        "old_value": None, "new_value": json.dumps(data), "user_id": actor.user_id,
        "at": inst.now()})
    moved = ", ".join(f"{n} {words}" for words, n in plan.moves.items())
    body = (f"Merged {ent.label.get().lower()} #{', #'.join(map(str, ids))} into this record"
            + (f"; moved here: {moved}." if moved else "."))
    record_event(inst, conn, ent.name, survivor, "merge", body, data, actor.user_id,
                 key="merged", params={"entity": ent.name, "ids": ids})
