"""Records over HTTP: list, create, read, update, delete. Every call goes through
`runtime.write.records`, which checks permissions, validates, writes, audits and fires workflows;
this module only turns requests into its arguments and its answers into JSON.
"""

from __future__ import annotations

from flask import Blueprint, Response, request, url_for
from flask.typing import ResponseReturnValue

from builder.model import Entity
from runtime.core.errors import Forbidden, ValidationFailed
from runtime.http.api.common import ID, actor, entity_or_404, instance, json_object
from runtime.read.listrequest import ListRequest, parse_list
from runtime.read.permissions import can, hidden_fields
from runtime.write import records


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
    wanted = list_request(model_entity)
    page = records.query(instance(), actor(), entity, filters=wanted.filters, q=wanted.q,
                         sort=wanted.sort, limit=wanted.limit, cursor=wanted.cursor)
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


def list_request(entity: Entity) -> ListRequest:
    """The list asked for in the query string (`runtime.read.listrequest`, the reader the web
    list uses too); anything in it that cannot be used answers 400, all in one message."""
    who = actor()
    return parse_list(entity, request.args, hidden=hidden_fields(instance(), who, entity.name),
                      me=who.user_id).check()
