"""What every API module needs: the instance and actor of the request, the entity named in the
path, and the JSON body — each failing with the one error shape (runtime/error_handler.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, g, request
from werkzeug.exceptions import MethodNotAllowed

from builder.model import Entity
from runtime.core.errors import BadRequest
from runtime.core.instance import Actor, Instance
from runtime.http.current import get_instance
from runtime.read.queries import entity_of

ID = "<id:record_id>"  # 1 … MAX_ID, else 404 (`app.IdConverter`): larger ids would overflow
_SURROGATE = re.compile("[\ud800-\udfff]")


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
    """The entity named in the path; NotFound (404) when there is none."""
    return entity_of(instance(), name)


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
    bad = _bad_text(data)
    if bad is not None:
        raise BadRequest(f"The request body holds {bad} in a string; no value may contain "
                         "one (nor a name), so remove it and send the request again.")
    return data


def _bad_text(value: Any) -> str | None:
    """What no JSON string here may hold, if one does: a lone surrogate (`\\ud800`, which is
    no character and cannot be stored or answered as UTF-8), or a NUL character (which
    PostgreSQL refuses in every string). Checked once, for every key and value of a body."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "a NUL character (\\u0000)"
            if _SURROGATE.search(item):
                return "a lone surrogate (like \\ud800, half of a UTF-16 pair)"
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), "a value")
