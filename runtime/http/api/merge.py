"""Merging over HTTP: `POST /api/v1/<entity>/<id>/merge` with `{"absorb": [ids], "values":
{field: value}}` (and optionally the versions read: `"version"` of the survivor, `"versions":
{id: version}`), answered with the survivor as the API returns records
(`runtime.write.merge` does the work).

The ids a merge absorbed live on: a request naming one (`/api/v1/<entity>/<old id>…`) is
answered `308 Permanent Redirect` to the same request on the survivor — method and body kept —
and a web page `302` (`alias_redirect`, which the web pages use too).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, request, url_for
from flask.typing import ResponseReturnValue

from builder.model import AppModel
from runtime.core.errors import ValidationFailed
from runtime.http.api.common import ID, actor, entity_or_404, instance, json_object
from runtime.http.current import get_instance
from runtime.read import aliases
from runtime.write import merge

KEYS = ("absorb", "values", "version", "versions")
ERRORS = {"400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound",
          "409": "Conflict", "413": "TooLarge", "422": "ValidationFailed"}


def register(bp: Blueprint) -> None:
    bp.add_url_rule(f"/<entity>/{ID}/merge", "merge", merge_records, methods=["POST"])
    bp.before_request(lambda: alias_redirect(308))


def merge_records(entity: str, record_id: int) -> ResponseReturnValue:
    entity_or_404(entity)
    body = json_object()
    unknown = sorted(set(body) - set(KEYS))
    if unknown:
        raise ValidationFailed({name: [f"is not part of a merge; send {', '.join(KEYS)}"]
                                for name in unknown})
    versions = body.get("versions") or {}
    if not isinstance(versions, dict):
        raise ValidationFailed({"versions": ['send an object of id: version, like {"12": 3}']})
    if "version" in body:
        versions = {**versions, str(record_id): body["version"]}
    return merge.merge(instance(), actor(), entity, record_id, body.get("absorb"),
                       body.get("values"), versions=versions)


def alias_redirect(status: int) -> ResponseReturnValue | None:
    """A redirect to the same address on the survivor when the request names a record (the
    path's `entity` and `record_id`) that a merge absorbed; None otherwise."""
    args = request.view_args or {}
    entity, record_id = args.get("entity"), args.get("record_id")
    if request.endpoint is None or not isinstance(entity, str) or not isinstance(record_id, int):
        return None
    target = aliases.survivor(get_instance(), entity, record_id)
    if target is None:
        return None
    location = url_for(request.endpoint, **{**args, "record_id": target})
    query = request.query_string.decode("utf-8", "replace")
    return redirect(location + (f"?{query}" if query else ""), status)


def openapi(model: AppModel) -> dict[str, Any]:
    """The merge operation of every entity that is not a system one, for the OpenAPI
    document (`openapi.py` gathers it)."""
    paths = {f"/{e.name}/{{id}}/merge": {
        "parameters": [{"$ref": "#/components/parameters/id"}],
        "post": {
            "operationId": f"merge_{e.name}", "tags": [e.name],
            "summary": f"Merge other {e.plural.get()} into this {e.label.get()}",
            "description": "Re-points every link to the absorbed records, moves their "
                           "timeline, attachments and approval requests, deletes them and "
                           "keeps their ids as aliases (a request naming one is redirected "
                           "here with 308).",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/MergeInput"}}}},
            "responses": {
                "200": {"description": "The surviving record", "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{e.name}"}}}},
                **{code: {"$ref": f"#/components/responses/{name}"}
                   for code, name in ERRORS.items()}}}}
        for e in model.entities.values() if not e.system}
    version = {"type": "integer", "minimum": 1}
    return {"paths": paths, "schemas": {"MergeInput": {
        "type": "object", "required": ["absorb"], "additionalProperties": False,
        "properties": {
            "absorb": {"type": "array", "minItems": 1, "maxItems": merge.MAX_ABSORBED,
                       "items": {"type": "integer", "minimum": 1},
                       "description": "The ids of the records to absorb"},
            "values": {"type": "object", "description": "The surviving value of each field "
                       "to choose (default: the survivor's, else the first absorbed "
                       "record's that is not empty)"},
            "version": {**version, "description": "The survivor's version as read"},
            "versions": {"type": "object", "additionalProperties": version,
                         "description": "The versions read, by record id"}}}}}
