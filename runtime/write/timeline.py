"""Writing the timeline of a record (SPEC §2): notes and logged activities with follow-up
reminders (`add_entry`, `complete_follow_up`), and the entries the system keeps there —
workflow transitions (`record_transitions`), approval requests and automations
(`record_event`). A system entry keeps its sentence in English (`body`) and as a key with
parameters (`data.i18n`, see `runtime.read.timeline.SAID`), so each reader reads it in their
language; `data.i18n` is the system's own: a note or activity may not set it.

All of them live in `crm_timeline`; adding a note or an activity sets the record's
`last_activity_at` (without touching its version: it is not an edit). Reading the timeline,
merged with field changes, decisions and attachments, is `runtime.read.timeline`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from builder.fieldtypes import coerce_date
from runtime.core.db import in_transaction, insert_many, mark_written
from runtime.core.errors import Forbidden, NotFound, ValidationFailed
from runtime.core.values import json_value
from runtime.read.people import usernames
from runtime.read.permissions import can
from runtime.read.queries import entity_of
from runtime.read.timeline import SAID, readable, timeline_entry

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

ACTIVITY_KINDS = ("note", "call", "meeting", "email", "visit")
MAX_BODY = 100_000
MAX_DATA = 10_000  # characters of JSON


def _write(inst: Instance, conn: Connection | None, work: Any) -> Any:
    return in_transaction(inst.engine, conn, work)


def add_entry(inst: Instance, actor: Actor, entity: str, record_id: Any, kind: str,
              body: str | None, *, follow_up_on: date | str | None = None,
              data: Mapping[str, Any] | None = None,
              conn: Connection | None = None) -> dict[str, Any]:
    """Add a note or a logged activity (call, meeting, email, visit) to a record the actor
    may read (404 otherwise) and may comment on (the entity's `comment` right, by default its
    `update` rule: 403 otherwise), optionally with a follow-up date; sets the record's
    `last_activity_at`."""
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
            elif "i18n" in extra:  # a person's entry may not pass for one the system wrote
                errors["data"] = ["may not hold 'i18n': the system keeps its own sentences "
                                  "there; use another key"]
        except (TypeError, ValueError):
            errors["data"] = ["must be an object of simple values"]
    if errors:
        raise ValidationFailed(errors)

    def work(conn: Connection) -> dict[str, Any]:
        record = readable(inst, actor, conn, entity, record_id)
        if not can(inst, actor, entity, "comment", record, conn=conn):
            raise Forbidden(no_comment(inst, entity))
        now = inst.now()
        rows = inst.schema.system("timeline")
        entry_id = conn.execute(rows.insert().values(
            entity=entity, record_id=record["id"], kind=kind, body=text, data=extra,
            follow_up_on=due, follow_up_done=False, user_id=actor.user_id,
            created_at=now).returning(rows.c.id)).scalar_one()
        touch_activity(inst, conn, entity, record["id"], now)
        return timeline_entry({
            "id": entry_id, "entity": entity, "record_id": record["id"], "kind": kind,
            "body": text, "data": extra, "follow_up_on": due, "follow_up_done": False,
            "user_id": actor.user_id, "created_at": now}, {})

    return _write(inst, conn, work)


def touch_activity(inst: Instance, conn: Connection, entity: str, record_id: int,
                   now: Any) -> None:
    """Set the record's `last_activity_at` (when the entity has it) without a new version."""
    table = inst.schema.table(entity)
    if "last_activity_at" in table.c:
        conn.execute(table.update().where(table.c.id == record_id).values(
            last_activity_at=now))
        mark_written(conn)


def no_comment(inst: Instance, entity: str) -> str:
    """Why the actor may not add a note or an activity to a record of `entity`."""
    ent = entity_of(inst, entity)
    return (f"You may not add notes or log activities on this {ent.label.get().lower()}; "
            "ask its owner or an administrator.")


Move = tuple[int, str, Any, Any]  # (record id, transition, from state, to state)


def record_transitions(inst: Instance, conn: Connection, actor: Actor, entity: str,
                       moves: Sequence[Move], comment: str | None = None) -> None:
    """Keep workflow transitions of records of `entity` on their timelines — who, when,
    from, to, comment — with one statement for them all. Called by `records.update(...,
    transition=...)` and by the bulk moves inside their transaction."""
    insert_many(conn, inst.schema.system("timeline"), [
        _entry(inst, entity, record_id, "transition", comment or None,
               {"transition": transition, "from": from_state, "to": to_state}, actor.user_id)
        for record_id, transition, from_state, to_state in moves])


def record_reassignment(inst: Instance, conn: Connection, actor: Actor, entity: str,
                        record_id: int, old_owner: Any, new_owner: Any) -> None:
    """Keep a change of owner on the timeline as "Owner: A → B", by who made it (claims,
    assignments, routing rules). Called by `records.update` inside its transaction."""
    names = usernames(inst, conn, [old_owner, new_owner])
    before, after = names.get(old_owner), names.get(new_owner)
    record_event(inst, conn, entity, record_id, "owner",
                 f"Owner: {before or 'nobody'} → {after or 'nobody'}",
                 {"from": old_owner, "to": new_owner}, actor.user_id,
                 key="owner", params={"before": before, "after": after})


def record_event(inst: Instance, conn: Connection, entity: str, record_id: int, kind: str,
                 body: str | None, data: Mapping[str, Any] | None,
                 user_id: int | None, *, key: str | None = None,
                 params: Mapping[str, Any] | None = None) -> None:
    """One entry the system keeps on a record's timeline, in the caller's transaction
    (kinds: transition, approval, automation, owner, merge, email, call, change); `user_id`
    None is the system. `body` is the sentence in English (the API, exports, old readers);
    `key` (one of `SAID`) and `params` keep it for the reader's language in `data.i18n`."""
    # the values go as parameters: one compiled statement serves every entry
    conn.execute(inst.schema.system("timeline").insert(), _entry(
        inst, entity, record_id, kind, body, data, user_id, key=key, params=params))


def _entry(inst: Instance, entity: str, record_id: int, kind: str, body: str | None,
           data: Mapping[str, Any] | None, user_id: int | None, *, key: str | None = None,
           params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The row of one timeline entry (see `record_event`)."""
    stored = dict(data or {})
    if key is not None:
        if key not in SAID:
            raise ValueError(f"unknown timeline sentence {key!r}; add it to SAID")
        stored["i18n"] = {"key": key, "params": json.loads(json.dumps(
            dict(params or {}), default=json_value))}
    return {"entity": entity, "record_id": int(record_id), "kind": kind, "body": body,
            "data": stored, "follow_up_done": False, "user_id": user_id,
            "created_at": inst.now()}


def complete_follow_up(inst: Instance, actor: Actor, entry_id: Any, *, done: bool = True,
                       entity: str | None = None, record_id: Any = None,
                       conn: Connection | None = None) -> dict[str, Any]:
    """Mark a follow-up done (or open again): by its author, or anyone who may update the
    record it belongs to. With `entity` and `record_id` (the page it is done from) the
    follow-up must belong to that record.

    A follow-up that does not exist, that belongs to a record the actor may not read, or to
    another record than the one named, gets the same NotFound naming the follow-up: the
    answer says nothing about a record the actor cannot see."""
    try:
        number = int(str(entry_id).rpartition(":")[2])
    except ValueError:
        raise _no_follow_up(entry_id) from None

    def work(conn: Connection) -> dict[str, Any]:
        rows = inst.schema.system("timeline")
        row = conn.execute(sa.select(rows).where(rows.c.id == number)).mappings().first()
        if row is None or row["follow_up_on"] is None or (
                entity is not None and (row["entity"], str(row["record_id"]))
                != (entity, str(record_id))):
            raise _no_follow_up(number)
        try:
            record = readable(inst, actor, conn, row["entity"], row["record_id"])
        except NotFound:
            raise _no_follow_up(number) from None
        if row["user_id"] != actor.user_id and not can(
                inst, actor, row["entity"], "update", record, conn=conn):
            raise Forbidden("Only the author of this follow-up, or someone who may change "
                            "the record, can complete it.")
        conn.execute(rows.update().where(rows.c.id == number).values(follow_up_done=done))
        return timeline_entry({**dict(row), "follow_up_done": done}, {})

    return _write(inst, conn, work)


def _no_follow_up(entry_id: Any) -> NotFound:
    return NotFound(f"There is no follow-up with id {str(entry_id)[:40]}; check the id.")
