"""The JSON API (`/api/v1`, `Authorization: Bearer <token>`), one module per resource.

Each module in `MODULES` has `register(bp)`, which adds its routes to the blueprint. A new
resource (transitions, approvals) is a new module and one more name in `MODULES`. Static paths
(`/me`, `/openapi.json`) win over `/<entity>` in Werkzeug's routing, whatever the order here.
"""

from __future__ import annotations

import importlib

from flask import Blueprint

from runtime.http.auth import require_token

MODULES = ["me", "openapi", "timeline", "workflow", "dashboards", "merge", "calls", "crud"]


def create_blueprint() -> Blueprint:
    """A fresh blueprint for one app (mount it at /api/v1)."""
    bp = Blueprint("api", __name__)
    bp.before_request(require_token)
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}").register(bp)
    return bp
