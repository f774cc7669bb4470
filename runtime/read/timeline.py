"""Reading the timeline of a record (docs/records.md): notes and logged activities with their
follow-ups (`crm_timeline`), merged with what is kept elsewhere — field changes (`crm_audit`),
approval decisions and attachments — newest first; and a user's follow-ups that are due.

`runtime.write.timeline` adds entries and completes follow-ups; both give an entry the one
shape `timeline_entry` makes here.

An entry the system writes keeps its sentence as a key and parameters (`data.i18n`, one of
`SAID`) beside its English `body`; `entries` turns them into `said`: the message to translate
and its parameters with labels in the reader's language, which the page renders through the
catalogs (`templates/record.html`). Old rows and people's notes have no key and show `body`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from runtime.core.errors import N_
from runtime.core.values import json_value
from runtime.read.accounts import all_roles
from runtime.read.people import usernames
from runtime.read.permissions import hidden_fields
from runtime.read.queries import entity_of, load, not_found, reading, record_id_of
from runtime.read.titles import currency_of, date_text, titles_of, zone_of
from runtime.read.titles import readable as value_text

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

ENTRY_KINDS = ("note", "call", "meeting", "email", "visit", "change", "transition", "approval",
               "automation", "attachment")

# the sentences the system keeps on a timeline: `data.i18n.key` -> the English message, whose
# slots are the entry's `data.i18n.params` (labels and words resolved by `_param`)
SAID = {
    "owner": N_("Owner: %(before)s → %(after)s"),
    "approval_requested": N_("Asked for approval “%(approval)s” to %(transition)s"),
    "approval_recalled": N_("Recalled the approval request “%(approval)s”"),
    "assign_nobody": N_("%(automation)s: nobody to assign — no active user with %(among)s."),
    "merged": N_("Merged %(entity)s %(ids)s into this record."),
    "unsubscribed": N_("%(field)s: withdrawn through the unsubscribe link on %(date)s."),
    "mail_status": N_("E-mail “%(subject)s” to %(to)s: %(status)s."),
    "mail_not_marked": N_("The record could not be marked %(marked)s: %(reason)s"),
    "document_sent": N_("%(document)s “%(filename)s” attached and queued to go to %(to)s by "
                        "e-mail."),
    "call_in": N_("Incoming call from %(caller)s, taken by %(agent)s."),
    "mail_in": N_("E-mail from %(sender)s: “%(subject)s”\n\n%(text)s"),
    "mail_in_created": N_("Made from the e-mail from %(sender)s: “%(subject)s” (rule "
                          "%(rule)s)."),
}
# key -> (the parameter that, when given, chooses the second message)
SAID_WITH = {
    "approval_requested": ("comment", N_("Asked for approval “%(approval)s” to "
                                         "%(transition)s: %(comment)s")),
    "approval_recalled": ("comment", N_("Recalled the approval request “%(approval)s”: "
                                        "%(comment)s")),
    "assign_nobody": ("match", N_("%(automation)s: nobody to assign — no active user with "
                                  "%(among)s whose %(field)s is “%(match)s”.")),
    "merged": ("moved", N_("Merged %(entity)s %(ids)s into this record; moved here: "
                           "%(moved)s.")),
    "mail_status": ("answer", N_("E-mail “%(subject)s” to %(to)s: %(status)s — the server "
                                 "answered: %(answer)s")),
    "call_in": ("called", N_("Incoming call from %(caller)s to %(called)s, taken by "
                             "%(agent)s.")),
}
MAIL_STATUS = {"queued": N_("queued"), "sent": N_("sent"),
               "retrying": N_("not sent yet, trying again"), "failed": N_("failed"),
               "cancelled": N_("not sent"),
               "bounced": N_("bounced (refused for good, not tried again)")}
MARKED = (N_("sent"), N_("failed"), N_("bounced"), N_("not sent"))  # what a record is marked
RETRYING_AT = N_("not sent yet, trying again at %(time)s")
AMONG = {"role": N_("role “%(value)s”"), "team": N_("team “%(value)s”")}
NOBODY, UNKNOWN_SENDER = N_("nobody"), N_("an unknown sender")
MOVED_BY = N_("%(count)s %(records)s (by %(field)s)")
MOVED_WORDS = N_("%(count)s %(words)s")
NAMED = {"approval", "transition", "automation", "field", "entity", "document", "status",
         "marked"}
_SLOT = re.compile(r"%\((\w+)\)s")


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
                    state_field: str | None, names: Mapping[int, str],
                    language: str | None = None) -> list[dict[str, Any]]:
    """Audit rows grouped into one entry per save: [{"field", "label", "old", "new"}], each
    field by its label in `language`."""
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
        label = ent.fields[field].label.get(language) if field in ent.fields else field
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


def said(inst: Instance, ent: Any, entry: Mapping[str, Any], language: str
         ) -> dict[str, Any] | None:
    """The sentence of a system entry as {"message", "params"} for the reader: the English
    message the catalogs translate and its parameters, labels in `language` (a parameter may
    itself be such a message: a word, a phrase). None for an entry without a known key (an old
    row, a person's note), or whose parameters do not fill its message: it shows `body`."""
    data = entry.get("data")
    stored = data.get("i18n") if isinstance(data, Mapping) else None
    if not isinstance(stored, Mapping) or stored.get("key") not in SAID:
        return None
    key, raw = stored["key"], stored.get("params")
    if not isinstance(raw, Mapping):
        return None
    params = {str(name): _param(inst, ent, str(name), value, language)
              for name, value in raw.items()}
    if key == "mail_in":  # the message's own text follows the sentence, as written
        params["text"] = str(entry.get("body") or "").partition("\n\n")[2]
    if key == "mail_status" and raw.get("status") == "retrying" and raw.get("time"):
        params["status"] = _said(RETRYING_AT, time=raw["time"])
    if key == "merged":
        moved = data.get("moved") if isinstance(data, Mapping) else None
        params["moved"] = _moved(inst, ent, moved, language) if moved else None
    message = SAID[key]
    other = SAID_WITH.get(key)
    if other is not None and params.get(other[0]) not in (None, "", []):
        message = other[1]
    if not set(_SLOT.findall(message)) <= {n for n, v in params.items() if v is not None}:
        return None
    return _said(message, **params)


def _said(message: str, **params: Any) -> dict[str, Any]:
    return {"message": message, "params": params}


def _label(text: Any, language: str, fallback: Any) -> Any:
    """A label in the reader's language; one written in English only is left to the catalogs
    (a word such as "Status"), as the pages' `tr` does."""
    if text is None:
        return fallback
    if [code for code, _ in text.values] == ["en"] and not language.startswith("en"):
        return _said(text.get())
    return text.get(language)


def _lower(label: Any) -> Any:
    return label.lower() if isinstance(label, str) else label


def _param(inst: Instance, ent: Any, name: str, value: Any, language: str) -> Any:
    """One stored parameter as the reader reads it: names of the model as labels, words
    through the catalogs, dates in the reader's format; anything else as it was written."""
    workflow = ent.workflow
    if name in ("before", "after"):
        return value if value else _said(NOBODY)
    if name == "sender":
        return value if value else _said(UNKNOWN_SENDER)
    if value is None:
        return None
    if name in NAMED and not isinstance(value, str):
        return str(value)
    if name == "approval":
        found = ent.approvals.get(value)
        return _label(found.label if found else None, language, value)
    if name == "transition":
        move = workflow.transitions.get(value) if workflow is not None else None
        return _lower(_label(move.label if move else None, language, value))
    if name == "automation":
        rule = next((a for a in inst.model.automations
                     if a.entity == ent.name and a.name == value), None)
        return _label(rule.label if rule else None, language, value)
    if name == "field":
        f = ent.fields.get(value)
        return _label(f.label if f else None, language, value)
    if name == "entity":
        return _lower(_label(ent.label, language, value))
    if name == "document":
        document = inst.model.documents.get(value)
        return _label(document.label if document else None, language, value)
    if name == "status":
        return _said(MAIL_STATUS[value]) if value in MAIL_STATUS else value
    if name == "marked":
        return _said(value) if value in MARKED else value
    if name == "among" and isinstance(value, Mapping) and value.get("kind") in AMONG:
        shown = value.get("value")
        role = all_roles(inst).get(shown) if value["kind"] == "role" else None
        return _said(AMONG[value["kind"]],
                     value=_label(role.label if role else None, language, shown))
    if name == "date":
        try:
            return date_text(date.fromisoformat(str(value)[:10]), language)
        except ValueError:
            return value
    if name == "ids" and isinstance(value, list):
        return ", ".join(f"#{i}" for i in value)
    return value


def _moved(inst: Instance, ent: Any, moved: Any, language: str) -> list[Any] | None:
    """What a merge moved ({words: how many}, written in English) as phrases for the reader:
    "3 contacts (by company)" from the labels of the link, marked words through the
    catalogs."""
    if not isinstance(moved, Mapping):
        return None
    by_link = {}
    for child in inst.model.entities.values():
        for f in child.fields.values():
            if f.type in ("link", "links") and f.to == ent.name:
                words = f"{child.plural.get().lower()} (by {f.label.get().lower()})"
                by_link[words] = (child, f)
    result: list[Any] = []
    for words, count in moved.items():
        if words in by_link:
            child, f = by_link[words]
            result.append(_said(MOVED_BY, count=count,
                                records=_lower(_label(child.plural, language, words)),
                                field=_lower(_label(f.label, language, words))))
        else:
            result.append(_said(MOVED_WORDS, count=count, words=_said(str(words))))
    return result


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


def record_and_entries(inst: Instance, actor: Actor, entity: str, record_id: Any, *,
                       limit: int = 100) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The record as stored, every field (as `readable` gives it: NotFound when the actor may
    not read it), and its timeline (`entries`), through one connection on the primary (a
    record page: the page after a change shows it)."""
    with inst.primary_reader() as conn:
        record = readable(inst, actor, conn, entity, record_id)
        return record, entries(inst, actor, entity, record["id"], limit=limit, conn=conn,
                               record=record)


def entries(inst: Instance, actor: Actor, entity: str, record_id: Any, *, limit: int = 100,
            conn: Connection | None = None,
            record: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The record's timeline, newest first: notes and activities, field changes (without
    fields hidden from the actor), transitions, approval decisions and attachments.

    `record`: the record as `readable` gave it, when the caller has read it already (a
    record page); it is not read again."""
    ent = entity_of(inst, entity)
    limit = max(1, min(int(limit), 1000))
    hidden = hidden_fields(inst, actor, entity)
    state_field = ent.workflow.field if ent.workflow is not None else None
    with reading(inst, conn) as c:
        if record is None:
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
        changed = _change_entries(ent, changes, hidden, state_field, names, actor.language)
        result = [timeline_entry(r, names) for r in notes]
        _in_words(inst, actor, c, ent, changed, result)
    for entry in result:
        entry["said"] = said(inst, ent, entry, actor.language or "en")
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
