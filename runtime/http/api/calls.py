"""`POST /api/v1/calls`: a telephone system reports an incoming call — `{"from": caller number
in any format, "to": number called, "agent": username}` — and is answered 201 with the call
and the records that matched (those both the agent and the token's user may read; none for an
unknown number). `runtime.process.calls` decides and logs; the agent's browser pops it up
(`runtime.http.web.calls_pages`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue

from builder.model import AppModel
from runtime.core.errors import ValidationFailed
from runtime.http.api.common import actor, instance, json_object
from runtime.http.auth import actor_for_username
from runtime.process import calls


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/calls", "calls_report", report_call, methods=["POST"])


def report_call() -> ResponseReturnValue:
    call = calls.decide_call(json_object())
    agent = actor_for_username(instance(), call.agent)
    if agent is None:
        raise ValidationFailed({"agent": [f"is not the username of an active user: "
                                          f"{call.agent[:60]!r}"]})
    return calls.log_call(instance(), actor(), agent, call), 201


def openapi(model: AppModel) -> dict[str, Any]:
    """`POST /calls` for the OpenAPI document (`openapi.py` gathers it)."""
    number = {"type": "string", "maxLength": calls.MAX_NUMBER,
              "description": "A phone number in any format, like +44 117 496 0320"}
    errors = {code: {"$ref": f"#/components/responses/{name}"} for code, name in (
        ("400", "BadRequest"), ("401", "Unauthorized"), ("413", "TooLarge"),
        ("422", "ValidationFailed"))}
    match = {"type": "object", "required": ["entity", "id", "title"], "properties": {
        "entity": {"type": "string"}, "label": {"type": "string"},
        "id": {"type": "integer"}, "title": {"type": "string"}}}
    call = {"type": "object", "required": ["id", "from", "agent", "at"], "properties": {
        "id": {"type": "integer"}, "from": {"type": "string"},
        "from_e164": {"type": "string"}, "to": {"type": ["string", "null"]},
        "agent": {"type": "string"}, "at": {"type": "string"},
        "logged": {"type": "integer", "description": "How many records the call is logged on"}}}
    return {"paths": {"/calls": {"post": {
        "operationId": "report_call", "tags": ["session"],
        "summary": "Report an incoming call: find the caller, log it, pop it up to the agent",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/CallInput"}}}},
        "responses": {"201": {"description": "The call and the records that matched (none "
                                             "for an unknown number)", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/CallAnswer"}}}},
            **errors}}}},
        "schemas": {
            "CallInput": {"type": "object", "required": ["from", "agent"],
                          "additionalProperties": False, "properties": {
                              "from": number, "to": {**number, "type": ["string", "null"]},
                              "agent": {"type": "string", "maxLength": calls.MAX_USERNAME,
                                        "description": "The username of the agent"}}},
            "CallAnswer": {"type": "object", "required": ["call", "matches"], "properties": {
                "call": call, "matches": {"type": "array", "items": match}}}}}
