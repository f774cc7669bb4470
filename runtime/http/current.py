"""The Instance the current Flask app serves (set by `runtime.http.app.create_app`)."""

from __future__ import annotations

from flask import current_app, g

from runtime.core.instance import Instance

EXTENSION = "crmforge"


def get_instance() -> Instance:
    """The Instance the current request started with (`runtime.http.model_watch` may swap
    the app's for a newer model in between), else the one the app serves."""
    return g.get("crm_instance") or current_app.extensions[EXTENSION]
