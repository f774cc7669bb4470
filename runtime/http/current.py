"""The Instance the current Flask app serves (set by `runtime.http.app.create_app`)."""

from __future__ import annotations

from flask import current_app

from runtime.core.instance import Instance

EXTENSION = "crmforge"


def get_instance() -> Instance:
    """The Instance the current app serves."""
    return current_app.extensions[EXTENSION]
