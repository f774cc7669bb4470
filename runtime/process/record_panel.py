"""What a record page shows of its workflow, read through one connection: the transitions of
the record with whether the user may take them, its approval requests, and the record as
stored (`runtime.http.web.workflow_pages.workflow_panel` lays them out).
"""

from __future__ import annotations

from typing import Any

from runtime.core.instance import Actor, Instance
from runtime.process import approvals, workflow
from runtime.read.queries import load


def workflow_data(inst: Instance, actor: Actor, entity: str, record_id: int
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(transitions as `workflow.available` gives them, the record's approval requests newest
    first, the stored record or {} when there is none)."""
    with inst.engine.connect() as conn:
        offered = workflow.available(inst, actor, entity, record_id, conn=conn)
        requests = approvals.for_record(inst, conn, entity, record_id, viewer=actor)
        stored = load(inst, conn, entity, record_id) or {}
    return offered, requests, dict(stored)
