"""The timeline of a record (SPEC §2): notes and logged activities with follow-up reminders,
and — read from where they are kept — field changes (`crm_audit`), workflow transitions,
approval decisions and attachments, merged newest first.

Notes, activities and transitions live in `crm_timeline`; adding a note or an activity sets
the record's `last_activity_at` (without touching its version: it is not an edit).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from builder.fieldtypes import coerce_date
from runtime.core.db import in_transaction, mark_written
from runtime.core.errors import Forbidden, NotFound, ValidationFailed
from runtime.core.values import json_value
from runtime.read.permissions import can, hidden_fields
from runtime.read.queries import entity_of, load, not_found, reading, record_id_of
from runtime.read.titles import titles_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

ACTIVITY_KINDS = ("note", "call", "meeting", "email", "visit")
ENTRY_KINDS = (*ACTIVITY_KINDS, "change", "transition", "approval", "attachment")
MAX_BODY = 100_000
MAX_DATA = 10_000  # characters of JSON


def _readable(inst: Instance, actor: Actor, conn: Connection, entity: str,
              record_id: Any) -> dict[str, Any]:
    ent = entity_of(inst, entity)
    rid = record_id_of(ent, record_id)
    record = load(inst, conn, entity, rid, actor=actor)
    if record is None:
        raise not_found(ent, rid)
    return record


def _write(inst: Instance, conn: Connection | None, work: Any) -> Any:
    return in_transaction(inst.engine, conn, work)


def add_entry(inst: Instance, actor: Actor, entity: str, record_id: Any, kind: str,
              body: str | None, *, follow_up_on: date | str | None = None,
              data: Mapping[str, Any] | None = None,
              conn: Connection | None = None) -> dict[str, Any]:
    """Add a note or a logged activity (call, meeting, email, visit) to a record the actor
    may read, optionally with a follow-up date; sets the record's `last_activity_at`."""
    errors: dict[str, list[str]] = {}
    if kind not in ACTIVITY_KINDS:
        errors["kind"] = [f"must be one of: {', '.join(ACTIVITY_KINDS)}"]
    text = body if isinstance(body, str) else (None if body is None else str(body))
    if text is not None and (len(text) > MAX_BODY or "\x00" in text):
        errors["body"] = [f"must be text of at most {MAX_BODY:,} characters"]
    if kind == "note" and not (text or "").strip():
        errors["body"] = ["is required for a note; write something"]
    due = None
    if follow_up_on not in (None, ""):
        try:
            due = coerce_date(follow_up_on, None)  # type: ignore[arg-type]
        except ValueError as exc:
            errors["follow_up_on"] = [str(exc)]
    extra = None
    if data is not None:
        try:
            if not isinstance(data, Mapping):
                raise TypeError
            extra = json.loads(json.dumps(dict(data), default=json_value))
            if len(json.dumps(extra)) > MAX_DATA:
                errors["data"] = [f"must be at most {MAX_DATA:,} characters of JSON"]
        except (TypeError, ValueError):
            errors["data"] = ["must be an object of simple values"]
    if errors:
        raise ValidationFailed(errors)

    def work(conn: Connection) -> dict[str, Any]:
        record = _readable(inst, actor, conn, entity, record_id)
        now = inst.now()
        rows = inst.schema.system("timeline")
        entry_id = conn.execute(rows.insert().values(
            entity=entity, record_id=record["id"], kind=kind, body=text, data=extra,
            follow_up_on=due, follow_up_done=False, user_id=actor.user_id,
            created_at=now).returning(rows.c.id)).scalar_one()
        table = inst.schema.table(entity)
        if "last_activity_at" in table.c:
            conn.execute(table.update().where(table.c.id == record["id"]).values(
                last_activity_at=now))
            mark_written(conn)
        return _timeline_entry(inst, {
            "id": entry_id, "entity": entity, "record_id": record["id"], "kind": kind,
            "body": text, "data": extra, "follow_up_on": due, "follow_up_done": False,
            "user_id": actor.user_id, "created_at": now}, {})

    return _write(inst, conn, work)


def record_transition(inst: Instance, conn: Connection, actor: Actor, entity: str,
                      record_id: int, transition: str, from_state: Any, to_state: Any,
                      comment: str | None = None) -> None:
    """Keep a workflow transition on the timeline: who, when, from, to, comment.
    Called by `records.update(..., transition=...)` inside its transaction."""
    rows = inst.schema.system("timeline")
    conn.execute(rows.insert().values(
        entity=entity, record_id=record_id, kind="transition",
        body=(comment or None), data={"transition": transition, "from": from_state,
                                      "to": to_state},
        follow_up_done=False, user_id=actor.user_id, created_at=inst.now()))


def complete_follow_up(inst: Instance, actor: Actor, entry_id: Any, *, done: bool = True,
                       conn: Connection | None = None) -> dict[str, Any]:
    """Mark a follow-up done (or open again): by its author, or anyone who may update the
    record it belongs to."""
    try:
        number = int(str(entry_id).rpartition(":")[2])
    except ValueError:
        raise NotFound("There is no timeline entry with that id; check it.") from None

    def work(conn: Connection) -> dict[str, Any]:
        rows = inst.schema.system("timeline")
        row = conn.execute(sa.select(rows).where(rows.c.id == number)).mappings().first()
        if row is None or row["follow_up_on"] is None:
            raise NotFound(f"There is no follow-up with id {number}; check the id.")
        record = _readable(inst, actor, conn, row["entity"], row["record_id"])
        if row["user_id"] != actor.user_id and not can(
                inst, actor, row["entity"], "update", record, conn=conn):
            raise Forbidden("Only the author of this follow-up, or someone who may change "
                            "the record, can complete it.")
        conn.execute(rows.update().where(rows.c.id == number).values(follow_up_done=done))
        return _timeline_entry(inst, {**dict(row), "follow_up_done": done}, {})

    return _write(inst, conn, work)


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
        names = _user_names(inst, c, {r["user_id"] for r in found})
    result = []
    for row in found:
        record_title = titles.get(row["entity"], {}).get(row["record_id"])
        if record_title is None:
            continue
        entry = _timeline_entry(inst, row, names)
        entry["title"] = record_title
        result.append(entry)
    return result[:limit]


# -- reading the merged timeline --------------------------------------------------------------


def _user_names(inst: Instance, conn: Connection, ids: set[Any]) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    users = inst.schema.table("user")
    return {i: name or username for i, name, username in conn.execute(
        sa.select(users.c.id, users.c.full_name, users.c.username).where(
            users.c.id.in_(sorted(ids))))}


def _entry(source: str, number: int, kind: str, at: Any, user_id: Any,
           names: Mapping[int, str], **rest: Any) -> dict[str, Any]:
    return {"source": source, "id": number, "kind": kind, "at": json_value(at),
            "user_id": user_id, "user": names.get(user_id), **rest}


def _timeline_entry(inst: Instance, row: Mapping[str, Any],
                    names: Mapping[int, str]) -> dict[str, Any]:
    return _entry("timeline", row["id"], row["kind"], row["created_at"], row["user_id"],
                  names, entity=row["entity"], record_id=row["record_id"], body=row["body"],
                  data=row["data"], follow_up_on=json_value(row["follow_up_on"]),
                  follow_up_done=bool(row["follow_up_done"]))


def _change_entries(inst: Instance, ent: Any, rows: list[Mapping[str, Any]],
                    hidden: frozenset[str], state_field: str | None,
                    names: Mapping[int, str]) -> list[dict[str, Any]]:
    """Audit rows grouped into one entry per save: [{"field", "label", "old", "new"}]."""
    groups: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        field = row["field"]
        if field in hidden or (row["action"] == "transition" and field == state_field):
            continue
        if row["action"] == "delete":
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


def entries(inst: Instance, actor: Actor, entity: str, record_id: Any, *, limit: int = 100,
            conn: Connection | None = None) -> list[dict[str, Any]]:
    """The record's timeline, newest first: notes and activities, field changes (without
    fields hidden from the actor), transitions, approval decisions and attachments."""
    ent = entity_of(inst, entity)
    limit = max(1, min(int(limit), 1000))
    hidden = hidden_fields(inst, actor, entity)
    state_field = ent.workflow.field if ent.workflow is not None else None
    with reading(inst, conn) as c:
        record = _readable(inst, actor, c, entity, record_id)
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
        names = _user_names(inst, c, people)
    result = [_timeline_entry(inst, r, names) for r in notes]
    result += _change_entries(inst, ent, changes, hidden, state_field, names)
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

