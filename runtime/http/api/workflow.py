"""Transitions and approvals over HTTP (docs/api.md):

    GET  /api/v1/<entity>/<id>/transitions            200 [{name, label, to, allowed, reason}]
    POST /api/v1/<entity>/<id>/transitions/<name>     200 the record in its new state
                                                      202 {"approval": {...}} when it waits
                                                      403 role, 409 state, 422 guard/requires
    GET  /api/v1/approvals?status=pending             200 {"data": [requests I may decide]}
    GET  /api/v1/approvals/<id>                       200 the request
    POST /api/v1/approvals/<id>/approve|reject|recall 200 the request

A transition's body is optional: `{"comment": "..", "values": {field: value}, "version": 3}`
(`values` fills fields the transition `requires` in the same step; `version` catches a record
changed since it was read). A decision's body: `{"comment": "..", "version": 2}`.
`runtime.process.workflow` and `runtime.process.approvals` do the work; this module
only translates.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from runtime.core.errors import BadRequest, ValidationFailed
from runtime.http.api.common import ID, actor, entity_or_404, instance, json_object, static_route
from runtime.process import approvals, workflow
from runtime.write import records

TRANSITION_KEYS = ("comment", "values", "version")
DECISION_KEYS = ("comment", "version")
STATUSES = (*approvals.STATUSES, "all")


def register(bp: Blueprint) -> None:
    bp.add_url_rule(f"/<entity>/{ID}/transitions", "transitions", list_transitions,
                    methods=["GET"])
    bp.add_url_rule(f"/<entity>/{ID}/transitions/<name>", "transition_fire", fire,
                    methods=["POST"])
    static_route(bp, "/approvals", "approvals", list_approvals)
    bp.add_url_rule("/approvals/<int:request_id>", "approval", get_approval, methods=["GET"])
    bp.add_url_rule("/approvals/<int:request_id>/<any(approve, reject, recall):action>",
                    "approval_decide", decide, methods=["POST"])


def _body(allowed: tuple[str, ...]) -> dict[str, Any]:
    """The optional JSON object of the request; unknown keys are a 422."""
    body = json_object() if request.get_data(cache=True).strip() else {}
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ValidationFailed({name: [f"is not understood here; send only "
                                       f"{', '.join(allowed)}"] for name in unknown})
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise ValidationFailed({"comment": ["must be text"]})
    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                or version < 1):
        raise ValidationFailed({"version": ["must be the whole number you read, like 3"]})
    values = body.get("values")
    if values is not None and not isinstance(values, dict):
        raise ValidationFailed({"values": ["must be an object of field: value"]})
    return body


def list_transitions(entity: str, record_id: int) -> ResponseReturnValue:
    entity_or_404(entity)
    records.get(instance(), actor(), entity, record_id)  # 404 unless the actor may read it
    return workflow.available(instance(), actor(), entity, record_id)


def fire(entity: str, record_id: int, name: str) -> ResponseReturnValue:
    entity_or_404(entity)
    body = _body(TRANSITION_KEYS)
    result = workflow.fire(instance(), actor(), entity, record_id, name,
                           comment=body.get("comment"), values=body.get("values"),
                           version=body.get("version"))
    if result.status == 202:
        return {"approval": result.approval, "record": result.record}, 202
    return result.record, 200


def list_approvals() -> ResponseReturnValue:
    status = request.args.get("status", approvals.PENDING)
    if status not in STATUSES:
        raise BadRequest(f"'status' must be one of {', '.join(STATUSES)}, not '{status[:40]}'.")
    return {"data": approvals.inbox(instance(), actor(), status)}


def get_approval(request_id: int) -> ResponseReturnValue:
    return approvals.get(instance(), actor(), request_id)


def decide(request_id: int, action: str) -> ResponseReturnValue:
    body = _body(DECISION_KEYS)
    if action == "recall":
        return approvals.recall(instance(), actor(), request_id, comment=body.get("comment"))
    return approvals.decide(instance(), actor(), request_id, action,
                            comment=body.get("comment"), version=body.get("version"))
