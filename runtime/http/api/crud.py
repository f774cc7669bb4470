"""Records over HTTP: list, create, read, update, delete. Every call goes through
`runtime.write.records`, which checks permissions, validates, writes, audits and fires workflows;
this module only turns requests into its arguments and its answers into JSON.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request, url_for
from flask.typing import ResponseReturnValue

from builder.model import Entity
from runtime.core.errors import BadRequest, Forbidden, ValidationFailed
from runtime.http.api.common import ID, actor, entity_or_404, instance, json_object
from runtime.read.permissions import can
from runtime.write import records

OPERATORS = ("ne", "gt", "gte", "lt", "lte", "in", "contains", "isnull")  # and `field=value`
RESERVED = ("q", "sort", "limit", "cursor")
MAX_LIMIT = 500


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/<entity>", "list", list_records, methods=["GET"])
    bp.add_url_rule("/<entity>", "create", create_record, methods=["POST"])
    bp.add_url_rule(f"/<entity>/{ID}", "get", get_record, methods=["GET"])
    bp.add_url_rule(f"/<entity>/{ID}", "update", update_record, methods=["PATCH"])
    bp.add_url_rule(f"/<entity>/{ID}", "delete", delete_record, methods=["DELETE"])


def list_records(entity: str) -> ResponseReturnValue:
    model_entity = entity_or_404(entity)
    if not can(instance(), actor(), entity, "read"):
        raise Forbidden(f"You may not read {model_entity.plural.get()}; ask an administrator "
                        "for a role that allows it.")
    args = list_arguments(model_entity, request.args)
    page = records.query(instance(), actor(), entity, **args)
    return {"data": list(page.rows), "next_cursor": page.next_cursor,
            "prev_cursor": page.prev_cursor}


def create_record(entity: str) -> ResponseReturnValue:
    entity_or_404(entity)
    values = json_object()
    record = records.create(instance(), actor(), entity, values)
    location = url_for("api.get", entity=entity, record_id=record["id"])
    return record, 201, {"Location": location}


def get_record(entity: str, record_id: int) -> ResponseReturnValue:
    entity_or_404(entity)
    return records.get(instance(), actor(), entity, record_id)


def update_record(entity: str, record_id: int) -> ResponseReturnValue:
    entity_or_404(entity)
    values = json_object()
    version = values.pop("version", None)
    if version is None:
        raise ValidationFailed({"version": [
            "Send the record's 'version' as you last read it, so that a change made by "
            "someone else in between is not overwritten."]})
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationFailed({"version": ["must be the whole number from the record, like 3"]})
    return records.update(instance(), actor(), entity, record_id, values, version=version)


def delete_record(entity: str, record_id: int) -> ResponseReturnValue:
    entity_or_404(entity)
    records.delete(instance(), actor(), entity, record_id)
    return Response(status=204)


def list_arguments(entity: Entity, args: Any) -> dict[str, Any]:
    """The keyword arguments of `records.query` from a query string. Fields, operators, sort
    keys and cursors are checked by `records.query` (which knows what the actor may not see);
    here: a parameter given twice, or a limit outside 1..500, is a BadRequest."""
    filters: dict[str, str] = {}
    for key in args:
        values = args.getlist(key)
        if len(values) > 1:
            raise BadRequest(f"'{key}' is given {len(values)} times; give each parameter once "
                             "(for several values use field__in=a,b).")
        if key not in RESERVED:
            filters[key] = values[0]
    sort = [part.strip() for part in (args.get("sort") or "").split(",") if part.strip()]
    return {"filters": filters, "q": args.get("q") or None, "sort": sort or None,
            "limit": limit_of(entity, args), "cursor": args.get("cursor") or None}


def limit_of(entity: Entity, args: Any) -> int:
    raw = args.get("limit")
    if raw in (None, ""):
        return min(entity.views.list.page_size, MAX_LIMIT)
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"'limit' must be a whole number from 1 to {MAX_LIMIT}, not '{raw}'.")
    return limit
