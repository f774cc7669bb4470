"""Who is calling: the records whose phone numbers are the caller's (`matches`, compared as
E.164 in the shadow columns of `runtime.core.phones`, through the reader's row filters), and
what an agent's screen-pop shows of them (`pop_view`): the name, the grade or segment, open
tickets, orders and the last activity, each as the agent may read it.

Written by `runtime.process.calls`; shown by `runtime.http.web.calls_pages`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from builder.model import Entity
from runtime.core import phones
from runtime.read import timeline as history
from runtime.read.permissions import can, hidden_fields, read_filter
from runtime.read.queries import count, load, query, reading
from runtime.read.titles import readable, title, titles

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

MAX_MATCHES = 10  # per entity: a number shared by more records is a switchboard
BADGE_FIELDS = ("grade", "segment")  # and any field named `*_segment` or `*_grade`
# What a pop lists of a customer's related records: (entity, only those in an open state)
POP_LISTS = (("ticket", True), ("order", False), ("complaint", True), ("reservation", False),
             ("retention_case", True), ("subscription", False), ("compliance_case", True))
LIST_ITEMS = 3


def phone_entities(inst: Instance) -> list[Entity]:
    """The entities with a phone field, in the model's order."""
    return [ent for ent in inst.model.entities.values()
            if not ent.system and phones.phone_fields(ent)]


def matches(inst: Instance, actor: Actor, number: str, *,
            conn: Connection | None = None) -> list[dict[str, Any]]:
    """The records with a phone field holding `number` (E.164, as `phones.normalized` makes
    it) that the actor may read — phone fields hidden from them do not count: [{"entity",
    "label", "id", "title"}]."""
    found: list[dict[str, Any]] = []
    with reading(inst, conn) as c:
        for ent in phone_entities(inst):
            found += _matches_in(inst, actor, c, ent, number)
    return found


def _matches_in(inst: Instance, actor: Actor, conn: Connection, ent: Entity,
                number: str) -> list[dict[str, Any]]:
    table = inst.schema.table(ent.name)
    hidden = hidden_fields(inst, actor, ent.name)
    columns = [table.c[phones.shadow(n)] for n in phones.phone_fields(ent) if n not in hidden]
    if not columns or not can(inst, actor, ent.name, "read"):
        return []
    row_filter = read_filter(inst, actor, ent.name, table)
    clauses = [sa.or_(*(column == number for column in columns))]
    if row_filter is not None:
        clauses.append(row_filter)
    rows = [dict(r) for r in conn.execute(sa.select(table).where(*clauses).order_by(
        table.c.id).limit(MAX_MATCHES)).mappings()]
    names = titles(inst, conn, ent.name, rows, actor=actor)
    return [{"entity": ent.name, "label": ent.label.get(actor.language), "id": row["id"],
             "title": names.get(row["id"]) or f"#{row['id']}"} for row in rows]


def pop_view(inst: Instance, actor: Actor, call: Mapping[str, Any]) -> dict[str, Any]:
    """What the agent's screen-pop shows of a `crm_call` row: the caller, and per matched
    record the agent may (still) read its title, badge, related lists and last activity."""
    with reading(inst, None) as conn:
        customers = [view for match in call["matches"] or ()
                     if (view := _customer(inst, actor, conn, match, call["id"])) is not None]
    return {"id": call["id"], "caller": call["caller"], "called": call["called"],
            "at": call["created_at"], "customers": customers}


def _customer(inst: Instance, actor: Actor, conn: Connection, match: Mapping[str, Any],
              call_id: int) -> dict[str, Any] | None:
    name = match.get("entity")
    if name not in inst.model.entities:
        return None
    record = load(inst, conn, name, int(match["id"]), actor=actor)
    if record is None:
        return None
    ent = inst.model.entities[name]
    return {"entity": name, "label": ent.label.get(actor.language), "id": record["id"],
            "title": title(inst, name, record, conn=conn, actor=actor),
            "badge": _badge(inst, actor, ent, record),
            "lists": _lists(inst, actor, conn, ent, record["id"]),
            "last": _last_activity(inst, actor, conn, name, record["id"], call_id)}


def _badge(inst: Instance, actor: Actor, ent: Entity,
           record: Mapping[str, Any]) -> dict[str, str] | None:
    """The record's grade or segment (a field named so that the actor may see), as shown."""
    hidden = hidden_fields(inst, actor, ent.name)
    for name, f in ent.fields.items():
        badge = name in BADGE_FIELDS or name.endswith(("_segment", "_grade"))
        text = readable(f, record.get(name), actor.language) if badge else ""
        if text and name not in hidden:
            return {"label": f.label.get(actor.language), "value": text}
    return None


def _lists(inst: Instance, actor: Actor, conn: Connection, ent: Entity,
           record_id: int) -> list[dict[str, Any]]:
    """Per POP_LISTS entity linking to the record: how many (open) records, and the first."""
    found = []
    for name, open_only in POP_LISTS:
        related = inst.model.entities.get(name)
        hidden = hidden_fields(inst, actor, name) if related is not None else frozenset()
        for f in related.fields.values() if related is not None else ():
            if f.type == "link" and f.to == ent.name and f.name not in hidden:
                filters = {f.name: record_id} | _open_filter(related, open_only, hidden)
                found += _list(inst, actor, conn, related, filters, open_only)
    return found


def _list(inst: Instance, actor: Actor, conn: Connection, ent: Entity,
          filters: dict[str, Any], open_only: bool) -> list[dict[str, Any]]:
    total, _ = count(inst, actor, ent.name, filters=filters, cap=99, conn=conn)
    if not total:
        return []
    rows = query(inst, actor, ent.name, filters=filters, limit=LIST_ITEMS, conn=conn).rows
    names = titles(inst, conn, ent.name, rows, actor=actor)
    return [{"entity": ent.name, "label": ent.plural.get(actor.language), "count": total,
             "open": bool(open_only and ent.workflow),
             "items": [{"id": r["id"], "title": names.get(r["id"])} for r in rows]}]


def _open_filter(ent: Entity, open_only: bool, hidden: frozenset[str]) -> dict[str, str]:
    """`state__in=…` of the workflow's states that are not final, when asked for."""
    flow = ent.workflow
    if not open_only or flow is None or flow.field in hidden:
        return {}
    return {f"{flow.field}__in": ",".join(n for n, s in flow.states.items() if not s.final)}


def _last_activity(inst: Instance, actor: Actor, conn: Connection, entity: str,
                   record_id: int, call_id: int) -> dict[str, Any] | None:
    """The newest timeline entry before this call (its own entry left out)."""
    for entry in history.entries(inst, actor, entity, record_id, limit=4, conn=conn):
        data = entry.get("data") or {}
        if not (entry["kind"] == "call" and isinstance(data, dict)
                and data.get("call") == call_id):
            return entry
    return None
