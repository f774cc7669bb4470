"""Reading the timeline of a record (docs/records.md): notes and logged activities with their
follow-ups (`crm_timeline`), merged with what is kept elsewhere — field changes (`crm_audit`),
approval decisions and attachments — newest first; and a user's follow-ups that are due.

`runtime.write.timeline` adds entries and completes follow-ups; both give an entry the one
shape `timeline_entry` makes here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from runtime.core.values import json_value
from runtime.read.people import usernames
from runtime.read.permissions import hidden_fields
from runtime.read.queries import entity_of, load, not_found, reading, record_id_of
from runtime.read.titles import currency_of, titles_of, zone_of
from runtime.read.titles import readable as value_text

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

ENTRY_KINDS = ("note", "call", "meeting", "email", "visit", "change", "transition", "approval",
               "automation", "attachment")


def readable(inst: Instance, actor: Actor, conn: Connection, entity: str,
             record_id: Any) -> dict[str, Any]:
    """The record whose timeline is asked for; NotFound when it is missing or the actor may
    not read it (a timeline is as private as its record)."""
    ent = entity_of(inst, entity)
    rid = record_id_of(ent, record_id)
    record = load(inst, conn, entity, rid, actor=actor)
    if record is None:
        raise not_found(ent, rid)
    return record


def _entry(source: str, number: int, kind: str, at: Any, user_id: Any,
           names: Mapping[int, str], **rest: Any) -> dict[str, Any]:
    return {"source": source, "id": number, "kind": kind, "at": json_value(at),
            "user_id": user_id, "user": names.get(user_id), **rest}


def timeline_entry(row: Mapping[str, Any], names: Mapping[int, str]) -> dict[str, Any]:
    """A `crm_timeline` row as the API and the pages show it; `names` are the user names."""
    return _entry("timeline", row["id"], row["kind"], row["created_at"], row["user_id"],
                  names, entity=row["entity"], record_id=row["record_id"], body=row["body"],
                  data=row["data"], follow_up_on=json_value(row["follow_up_on"]),
                  follow_up_done=bool(row["follow_up_done"]))


def due_follow_ups(inst: Instance, actor: Actor, *, until: date,
                   conn: Connection | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The actor's open follow-ups due on or before `until`, oldest first, each with the
    record's entity, id and title (records the actor can no longer read are left out)."""
    rows = inst.schema.system("timeline")
    with reading(inst, conn) as c:
        found = [dict(r) for r in c.execute(sa.select(rows).where(
            rows.c.user_id == actor.user_id, rows.c.follow_up_on.is_not(None),
            rows.c.follow_up_on <= until, rows.c.follow_up_done.is_(False)).order_by(
            rows.c.follow_up_on, rows.c.id).limit(limit * 2)).mappings()]
        by_entity: dict[str, set[int]] = {}
        for row in found:
            if row["entity"] in inst.model.entities:
                by_entity.setdefault(row["entity"], set()).add(row["record_id"])
        titles = {name: titles_of(inst, c, name, ids, actor, 1) for name, ids in by_entity.items()}
        names = usernames(inst, c, {r["user_id"] for r in found})
    result = []
    for row in found:
        record_title = titles.get(row["entity"], {}).get(row["record_id"])
        if record_title is None:
            continue
        entry = timeline_entry(row, names)
        entry["title"] = record_title
        result.append(entry)
    return result[:limit]


# -- the merged timeline ----------------------------------------------------------------------


def _change_entries(ent: Any, rows: list[Mapping[str, Any]], hidden: frozenset[str],
                    state_field: str | None, names: Mapping[int, str]) -> list[dict[str, Any]]:
    """Audit rows grouped into one entry per save: [{"field", "label", "old", "new"}]."""
    groups: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        field = row["field"]
        if field in hidden or (row["action"] == "transition" and field == state_field):
            continue
        if row["action"] in ("delete", "merge"):  # a merge has its own timeline entry
            continue
        key = (row["at"], row["user_id"], row["action"])
        entry = groups.get(key)
        if entry is None:
            entry = groups[key] = _entry("audit", row["id"], "change", row["at"],
                                         row["user_id"], names, action=row["action"],
                                         changes=[])
        entry["id"] = max(entry["id"], row["id"])
        if row["action"] == "create":
            continue
        label = ent.fields[field].label.get() if field in ent.fields else field
        entry["changes"].append({
            "field": field, "label": label,
            "old": json.loads(row["old_value"]) if row["old_value"] is not None else None,
            "new": json.loads(row["new_value"]) if row["new_value"] is not None else None})
    return [e for e in groups.values() if e["action"] == "create" or e["changes"]]


def _in_words(inst: Instance, actor: Actor, conn: Connection, ent: Any,
              changed: list[dict[str, Any]], notes: list[dict[str, Any]]) -> None:
    """Add what people read to the entries: each change's `old_text`/`new_text` (choice
    labels, dates in the instance's time zone, money with its currency, linked records by
    title) and each transition's `transition_label`, `from_label`, `to_label`."""
    language, currency, zone = actor.language, currency_of(inst), zone_of(inst, actor)
    wanted: dict[str, set[int]] = {}
    for change in (c for e in changed for c in e["changes"]):
        f = ent.fields.get(change["field"])
        if f is not None and f.type == "link" and f.to in inst.model.entities:
            wanted.setdefault(f.to, set()).update(
                v for v in (change["old"], change["new"]) if isinstance(v, int))
    titles = {target: titles_of(inst, conn, target, ids, actor, 1)
              for target, ids in wanted.items()}
    for change in (c for e in changed for c in e["changes"]):
        f = ent.fields.get(change["field"])
        for side in ("old", "new"):
            value = change[side]
            if f is not None and f.type == "link" and value is not None:
                text = titles.get(f.to, {}).get(value) or f"#{value}"
            else:
                text = value_text(f, _native(f, value), language, currency=currency, zone=zone)
            change[f"{side}_text"] = text or None
    workflow = ent.workflow
    for entry in notes:
        data = entry.get("data") if isinstance(entry.get("data"), Mapping) else None
        if entry["kind"] != "transition" or workflow is None or data is None:
            continue
        move = workflow.transitions.get(data.get("transition"))
        entry["transition_label"] = move.label.get(language) if move else data.get("transition")
        for side in ("from", "to"):
            state = workflow.states.get(data.get(side))
            entry[f"{side}_label"] = state.label.get(language) if state else data.get(side)


def _native(f: Any, value: Any) -> Any:
    """An audited JSON value back as the date, datetime or Decimal `readable` formats."""
    if f is None or not isinstance(value, str | int | float) or isinstance(value, bool):
        return value
    try:
        if f.type == "date":
            return date.fromisoformat(str(value)[:10])
        if f.type == "datetime":
            return datetime.fromisoformat(str(value).replace("Z", ""))
        if f.type in ("money", "decimal", "percent"):
            return Decimal(str(value))
    except (ValueError, ArithmeticError):
        return value
    return value


def entries(inst: Instance, actor: Actor, entity: str, record_id: Any, *, limit: int = 100,
            conn: Connection | None = None) -> list[dict[str, Any]]:
    """The record's timeline, newest first: notes and activities, field changes (without
    fields hidden from the actor), transitions, approval decisions and attachments."""
    ent = entity_of(inst, entity)
    limit = max(1, min(int(limit), 1000))
    hidden = hidden_fields(inst, actor, entity)
    state_field = ent.workflow.field if ent.workflow is not None else None
    with reading(inst, conn) as c:
        record = readable(inst, actor, c, entity, record_id)
        rid = record["id"]
        timeline = inst.schema.system("timeline")
        notes = [dict(r) for r in c.execute(sa.select(timeline).where(
            timeline.c.entity == entity, timeline.c.record_id == rid).order_by(
            timeline.c.id.desc()).limit(limit)).mappings()]
        audit = inst.schema.system("audit")
        changes = [dict(r) for r in c.execute(sa.select(audit).where(
            audit.c.entity == entity, audit.c.record_id == rid).order_by(
            audit.c.id.desc()).limit(limit * 10)).mappings()]
        requests = inst.schema.system("approval_request")
        decisions = inst.schema.system("approval_decision")
        approvals = [dict(r) for r in c.execute(sa.select(
            decisions, requests.c.approval, requests.c.transition).join(
            requests, requests.c.id == decisions.c.request_id).where(
            requests.c.entity == entity, requests.c.record_id == rid).order_by(
            decisions.c.id.desc()).limit(limit)).mappings()]
        files = inst.schema.system("attachment")
        attachments = [dict(r) for r in c.execute(sa.select(files).where(
            files.c.entity == entity, files.c.record_id == rid).order_by(
            files.c.id.desc()).limit(limit)).mappings()]
        people = {r["user_id"] for r in [*notes, *changes, *approvals, *attachments]}
        people |= {r.get("on_behalf_of") for r in approvals}
        names = usernames(inst, c, people)
        changed = _change_entries(ent, changes, hidden, state_field, names)
        result = [timeline_entry(r, names) for r in notes]
        _in_words(inst, actor, c, ent, changed, result)
    result += changed
    result += [_entry("approval", r["id"], "approval", r["at"], r["user_id"], names,
                      approval=r["approval"], transition=r["transition"], step=r["step"],
                      decision=r["decision"], comment=r["comment"],
                      on_behalf_of=r["on_behalf_of"],
                      on_behalf_of_name=names.get(r["on_behalf_of"]))
               for r in approvals]
    result += [_entry("attachment", r["id"], "attachment", r["created_at"], r["user_id"],
                      names, filename=r["filename"], content_type=r["content_type"],
                      size=r["size"]) for r in attachments]
    order = {"timeline": 0, "approval": 1, "attachment": 2, "audit": 3}
    result.sort(key=lambda e: (e["at"] or "", -order[e["source"]], e["id"]), reverse=True)
    return result[:limit]
