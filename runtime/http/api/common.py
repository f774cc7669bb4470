"""What every API module needs: the instance and actor of the request, the entity named in the
path, and the JSON body — each failing with the one error shape (runtime/error_handler.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Blueprint, g, request
from werkzeug.exceptions import MethodNotAllowed

from builder.model import Entity
from runtime.core.errors import BadRequest, NotFound
from runtime.core.instance import Actor, Instance
from runtime.http.current import get_instance

MAX_ID = 2**63 - 1
ID = f"<int(min=1, max={MAX_ID}):record_id>"  # larger ids cannot exist, and would overflow


def static_route(bp: Blueprint, path: str, endpoint: str, view: Callable) -> None:
    """A GET-only path beside `/<entity>`: other methods answer 405 here instead of being
    taken for a record write on an entity named like the path."""
    bp.add_url_rule(path, endpoint, view, methods=["GET"])
    bp.add_url_rule(path, endpoint + "_other", _get_only, methods=["POST", "PUT", "PATCH",
                                                                  "DELETE"])


def _get_only() -> None:
    raise MethodNotAllowed(valid_methods=["GET", "HEAD"])


def instance() -> Instance:
    return get_instance()


def actor() -> Actor:
    return g.actor


def entity_or_404(name: str) -> Entity:
    entity = instance().model.entities.get(name)
    if entity is None:
        raise NotFound(f"There is no entity '{name}'; GET /api/v1/openapi.json lists the "
                       "entities of this instance.")
    return entity


def json_object() -> dict[str, Any]:
    """The request body as a JSON object; 400 when it is missing, malformed or not an object,
    413 when it is larger than MAX_CONTENT_LENGTH."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadRequest('Send a JSON object in the request body, like {"name": "value"}, '
                         "with 'Content-Type: application/json'.")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise BadRequest("The request body is not UTF-8 text; send JSON encoded as UTF-8.") \
            from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON ({exc.msg} at line {exc.lineno}"
                         f" column {exc.colno}); send a JSON object.") from None
    except (RecursionError, ValueError):
        raise BadRequest("The request body nests too deeply or holds NaN/Infinity; send a "
                         "plain JSON object.") from None
    if not isinstance(data, dict):
        raise BadRequest(f"The request body must be a JSON object, not {_kind(data)}; send "
                         'something like {"name": "value"}.')
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), "a value")
