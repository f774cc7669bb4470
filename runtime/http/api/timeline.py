"""A record's timeline over HTTP: read it, and log a note or an activity (call, meeting,
e-mail, visit) with an optional follow-up date. `runtime.write.timeline` checks that the actor may
read the record (404 otherwise) and has the entity's `comment` right on it (403 in the one error
shape otherwise; by default the `update` rule, admins only on users and teams) and writes the
entry.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from runtime.core.errors import BadRequest, ValidationFailed
from runtime.http.api.common import ID, actor, entity_or_404, instance, json_object
from runtime.read import timeline as read_timeline
from runtime.write import timeline

KINDS = timeline.ACTIVITY_KINDS
MAX_ENTRIES = 500


def register(bp: Blueprint) -> None:
    bp.add_url_rule(f"/<entity>/{ID}/timeline", "timeline", list_entries, methods=["GET"])
    bp.add_url_rule(f"/<entity>/{ID}/timeline", "timeline_add", add_entry, methods=["POST"])


def list_entries(entity: str, record_id: int) -> ResponseReturnValue:
    entity_or_404(entity)
    raw = request.args.get("limit", "100")
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_ENTRIES:
        raise BadRequest(f"'limit' must be a whole number from 1 to {MAX_ENTRIES}, not '{raw}'.")
    entries = read_timeline.entries(instance(), actor(), entity, record_id, limit=limit)
    return {"data": list(entries)}


def add_entry(entity: str, record_id: int) -> ResponseReturnValue:
    entity_or_404(entity)
    body = json_object()
    kind, text, follow_up_on, data = _entry_values(body)
    entry = timeline.add_entry(instance(), actor(), entity, record_id, kind, text,
                               follow_up_on=follow_up_on, data=data)
    return entry, 201


def _entry_values(body: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """kind, body, follow_up_on, data; `runtime.write.timeline` checks the values themselves."""
    unknown = sorted(set(body) - {"kind", "body", "follow_up_on", "data"})
    if unknown:
        raise ValidationFailed({name: ["is not part of a timeline entry; send kind, body, "
                                       "follow_up_on and data"] for name in unknown})
    return (body.get("kind", "note"), body.get("body"), body.get("follow_up_on"),
            body.get("data"))
