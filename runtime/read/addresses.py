"""Where a record lives on the pages: `record_link(entity, id)` is `/e/<entity>/<id>`, the
record page (`runtime.http.web.recordpage`). Notifications and approval requests carry it,
and they are made below the web layer, so the address is spelled here once.
"""

from __future__ import annotations

from typing import Any


def record_link(entity: str, record_id: Any) -> str:
    """The path of a record's page, relative to the application root."""
    return f"/e/{entity}/{record_id}"
