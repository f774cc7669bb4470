"""`GET /api/v1/openapi.json`: the OpenAPI 3.1 document of this instance, generated from the
AppModel (a schema per entity, the paths of every operation, bearer authentication) and built
once per model hash.

Another API module documents its own routes by defining `openapi(model)`, returning
`{"paths": {...}, "schemas": {...}}` (paths relative to /api/v1; `_ref`-style references to
`#/components/responses/Unauthorized` etc. may be used).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from builder.model import AppModel, Entity, Field
from runtime.core import caches
from runtime.http import api
from runtime.http.api.common import instance, static_route
from runtime.http.api.jsontypes import field_schema
from runtime.http.api.timeline import KINDS, MAX_ENTRIES
from runtime.read.listrequest import MAX_LIMIT, OPERATORS

Schema = dict[str, Any]

FILTER_HELP = (
    "Filter with `field=value` (equals) or `field__op=value`, where op is one of "
    + ", ".join(f"`{op}`" for op in OPERATORS)
    + ". `__in` takes a comma-separated list, `__isnull` takes true or false. "
    "Unknown fields or operators answer 400.")


def register(bp: Blueprint) -> None:
    static_route(bp, "/openapi.json", "openapi", openapi_json)


def openapi_json() -> ResponseReturnValue:
    document = openapi_document(instance().model)
    return {**document, "servers": [{"url": request.script_root + "/api/v1"}]}


def openapi_document(model: AppModel) -> Schema:
    """The document of `model` (without `servers`), built once per model hash
    (`caches.OPENAPI`)."""
    return caches.OPENAPI.get(model.hash, lambda: _build(model))


def _contributors() -> list[Callable[[AppModel], Schema]]:
    """`openapi(model) -> {"paths": {...}, "schemas": {...}}` of the other API modules that
    define one, so that each resource documents its own routes."""

    found = []
    for name in api.MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        contribute = getattr(module, "openapi", None)
        if callable(contribute) and module.__name__ != __name__:
            found.append(contribute)
    return found


def _ref(name: str, kind: str = "schemas") -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


def _answer(description: str, schema: Schema | None = None) -> Schema:
    return {"description": description, **(_json(schema) if schema else {})}


def _build(model: AppModel) -> Schema:
    packs = ", ".join(f"{p.name} {p.version}" for p in model.packs.values()) or "none"
    paths: Schema = {
        "/me": {"get": {
            "operationId": "me", "summary": "The user this token belongs to",
            "tags": ["session"], "responses": {"200": _answer("The user", _ref("Me")),
                                               "401": _ref("Unauthorized", "responses")}}},
        "/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document", "tags": ["session"],
            "responses": {"200": _answer("The OpenAPI document", {"type": "object"}),
                          "401": _ref("Unauthorized", "responses")}}},
    }
    schemas: Schema = dict(_common_schemas())
    for entity in model.entities.values():
        schemas[entity.name] = _record_schema(entity)
        schemas[f"{entity.name}.create"] = _write_schema(entity, create=True)
        schemas[f"{entity.name}.update"] = _write_schema(entity, create=False)
        schemas[f"{entity.name}.page"] = {
            "type": "object", "required": ["data", "next_cursor"],
            "properties": {"data": {"type": "array", "items": _ref(entity.name)},
                           "next_cursor": {"type": ["string", "null"]},
                           "prev_cursor": {"type": ["string", "null"]}}}
        paths.update(_entity_paths(entity))
    for contribute in _contributors():
        extra = contribute(model)
        paths.update(extra.get("paths", {}))
        schemas.update(extra.get("schemas", {}))
    return {
        "openapi": "3.1.0",
        "info": {"title": "CRMForge API", "version": model.hash[:12],
                 "description": f"The JSON API of this CRMForge instance (packs: {packs}). "
                                "Every error answers the `Error` shape."},
        "security": [{"bearerAuth": []}],
        "tags": [{"name": "session"},
                 *({"name": e.name, "description": e.plural.get()}
                   for e in model.entities.values())],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "A token from `crmforge token create USERNAME`."}},
            "schemas": schemas,
            "parameters": _parameters(),
            "responses": _responses(),
        },
    }


def _common_schemas() -> Schema:
    error = {"type": "object", "required": ["status", "code", "message"],
             "properties": {"status": {"type": "integer"},
                            "code": {"type": "string", "description": "Stable, in every "
                                     "language: not_found, invalid_values, stale_version…"},
                            "message": {"type": "string",
                                        "description": "What happened and what to do"}}}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": error}},
        "ValidationError": {
            "type": "object", "required": ["error", "errors"],
            "properties": {"error": error, "errors": {
                "type": "object", "description": "Messages by field; `_record` for the record "
                "as a whole", "additionalProperties": {"type": "array",
                                                         "items": {"type": "string"}}}}},
        "Conflict": {
            "type": "object", "required": ["error"],
            "properties": {"error": error, "current": {
                "type": "object", "description": "When the version was stale: the record as "
                "it is now"}}},
        "Me": {"type": "object", "required": ["id", "username", "roles", "is_admin"],
               "description": "The user's record (the fields every user may see), with:",
               "properties": {"id": {"type": "integer"}, "username": {"type": "string"},
                              "team": {"type": ["integer", "null"]},
                              "roles": {"type": "array", "items": {"type": "string"}},
                              "all_roles": {"type": "array", "items": {"type": "string"}},
                              "is_admin": {"type": "boolean"},
                              "language": {"type": "string"}}},
        "TimelineEntry": {
            "type": "object", "required": ["source", "id", "kind", "at"],
            "description": "A note or activity (source `timeline`), a saved change (`audit`), "
                           "an approval decision (`approval`) or a file (`attachment`).",
            "properties": {
                "source": {"type": "string",
                           "enum": ["timeline", "audit", "approval", "attachment"]},
                "id": {"type": "integer"}, "kind": {"type": "string"},
                "at": {"type": ["string", "null"], "format": "date-time"},
                "user_id": {"type": ["integer", "null"]},
                "user": {"type": ["string", "null"]},
                "body": {"type": ["string", "null"]},
                "follow_up_on": {"type": ["string", "null"], "format": "date"},
                "follow_up_done": {"type": "boolean"},
                "data": {"type": ["object", "null"]}}},
        "TimelineEntryInput": {
            "type": "object", "required": ["body"], "additionalProperties": False,
            "properties": {"kind": {"type": "string", "enum": list(KINDS), "default": "note"},
                           "body": {"type": "string", "minLength": 1},
                           "follow_up_on": {"type": "string", "format": "date"},
                           "data": {"type": "object"}}},
    }


def _record_schema(entity: Entity) -> Schema:
    return {"type": "object", "title": entity.label.get(),
            "required": [n for n in ("id", "version", "created_at", "updated_at")
                         if n in entity.fields],
            "properties": {f.name: field_schema(f) for f in entity.fields.values()}}


def writable(entity: Entity, field: Field) -> bool:
    """Whether a client may send `field` (the state moves by transitions, not by writes)."""
    if entity.workflow is not None and field.name == entity.workflow.field:
        return False
    return field.editable or field.name == "owner"


def _write_schema(entity: Entity, *, create: bool) -> Schema:
    fields = [f for f in entity.fields.values() if writable(entity, f)]
    properties = {f.name: field_schema(f, write=True) for f in fields}
    schema: Schema = {"type": "object", "additionalProperties": False}
    if create:
        required = [f.name for f in fields if f.required and f.default is None]
        if required:
            schema["required"] = required
    else:
        properties["version"] = {"type": "integer", "minimum": 1, "description":
                                 "The version you last read; 409 when someone saved since"}
        schema["required"] = ["version"]
    schema["properties"] = properties
    return schema


def _parameters() -> Schema:
    return {
        "id": {"name": "id", "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 1}},
        "limit": {"name": "limit", "in": "query", "description": "Records per page "
                  "(default: the list view's page size)",
                  "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}},
        "cursor": {"name": "cursor", "in": "query", "description": "`next_cursor` of the "
                   "previous page", "schema": {"type": "string"}},
        "q": {"name": "q", "in": "query", "description": "Quick search over the entity's "
              "search fields", "schema": {"type": "string"}},
        "sort": {"name": "sort", "in": "query", "description": "Comma-separated fields; "
                 "prefix `-` for descending, e.g. `-amount,reference`",
                 "schema": {"type": "string"}},
        "timeline_limit": {"name": "limit", "in": "query", "schema": {
            "type": "integer", "minimum": 1, "maximum": MAX_ENTRIES, "default": 100}},
    }


def _responses() -> Schema:
    def error(description: str, schema: str = "Error") -> Schema:
        return _answer(description, _ref(schema))

    return {
        "BadRequest": error("Malformed request: bad JSON, unknown filter, sort or cursor"),
        "Unauthorized": error("Missing or invalid bearer token"),
        "Forbidden": error("The user's roles do not allow this"),
        "NotFound": error("No such entity or record (or one this user may not read)"),
        "Conflict": error("Stale version, a restricting link, a duplicate or a lock",
                          "Conflict"),
        "TooLarge": error("The body is larger than the limit"),
        "ValidationFailed": error("Values that cannot be saved", "ValidationError"),
    }


def _entity_paths(entity: Entity) -> Schema:
    name = entity.name
    label = entity.label.get()

    def errors(*codes: str) -> Schema:
        names = {"400": "BadRequest", "401": "Unauthorized", "403": "Forbidden",
                 "404": "NotFound", "409": "Conflict", "413": "TooLarge",
                 "422": "ValidationFailed"}
        return {code: _ref(names[code], "responses") for code in codes}

    filters = [{"name": f.name, "in": "query", "required": False, "schema": {"type": "string"},
                "description": f"{f.label.get()} equals; see the operation for operators"}
               for f in entity.fields.values() if f.type != "links"]
    record = _answer(f"The {label} record", _ref(name))
    body = {"required": True}
    return {
        f"/{name}": {
            "get": {"operationId": f"list_{name}", "summary": f"List {entity.plural.get()}",
                    "description": FILTER_HELP, "tags": [name],
                    "parameters": [_ref(p, "parameters") for p in ("q", "sort", "limit",
                                                                   "cursor")] + filters,
                    "responses": {"200": _answer("A page of records", _ref(f"{name}.page")),
                                  **errors("400", "401", "403", "404")}},
            "post": {"operationId": f"create_{name}", "summary": f"Create a {label}",
                     "tags": [name], "requestBody": {**body, **_json(_ref(f"{name}.create"))},
                     "responses": {"201": record,
                                   **errors("400", "401", "403", "404", "409", "413",
                                            "422")}},
        },
        f"/{name}/{{id}}": {
            "parameters": [_ref("id", "parameters")],
            "get": {"operationId": f"get_{name}", "summary": f"Read a {label}", "tags": [name],
                    "responses": {"200": record, **errors("401", "404")}},
            "patch": {"operationId": f"update_{name}", "summary": f"Change a {label}",
                      "tags": [name],
                      "requestBody": {**body, **_json(_ref(f"{name}.update"))},
                      "responses": {"200": record,
                                    **errors("400", "401", "403", "404", "409", "413",
                                             "422")}},
            "delete": {"operationId": f"delete_{name}", "summary": f"Delete a {label}",
                       "tags": [name],
                       "responses": {"204": {"description": "Deleted"},
                                     **errors("401", "403", "404", "409")}},
        },
        f"/{name}/{{id}}/timeline": {
            "parameters": [_ref("id", "parameters")],
            "get": {"operationId": f"timeline_{name}", "summary": f"The {label}'s timeline, "
                    "newest first", "tags": [name],
                    "parameters": [_ref("timeline_limit", "parameters")],
                    "responses": {"200": _answer("Entries", {
                        "type": "object", "required": ["data"],
                        "properties": {"data": {"type": "array",
                                                "items": _ref("TimelineEntry")}}}),
                        **errors("400", "401", "404")}},
            "post": {"operationId": f"log_{name}", "summary": f"Log a note or an activity on "
                     f"a {label}", "tags": [name],
                     "requestBody": {**body, **_json(_ref("TimelineEntryInput"))},
                     "responses": {"201": _answer("The new entry", _ref("TimelineEntry")),
                                   **errors("400", "401", "403", "404", "413", "422")}},
        },
    }
