"""What a record page shows of its workflow, read through one connection: the transitions of
the record with whether the user may take them, its approval requests, and the record as
stored (`runtime.http.web.workflow_pages.workflow_panel` lays them out).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.core.instance import Actor, Instance
from runtime.process import approvals, workflow
from runtime.read.queries import load


def workflow_data(inst: Instance, actor: Actor, entity: str, record_id: int,
                  stored: Mapping[str, Any] | None = None
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(transitions as `workflow.available` gives them, the record's approval requests newest
    first, the stored record or {} when there is none).

    `stored`: the record as stored, when the page has read it already (and found that the
    actor may read it); it is not read again."""
    with inst.primary_reader() as conn:  # the primary: a page after a move shows the move
        if stored is None:  # as `available` reads it: None when the actor may not read it
            stored = load(inst, conn, entity, record_id, actor=actor)
        requests = approvals.for_record(inst, conn, entity, record_id, viewer=actor)
        # at most one request is pending: the one every transition would look for
        waiting = any(r["status"] == approvals.PENDING for r in requests)
        # no record: `available` says NotFound as it always did
        offered = workflow.available(inst, actor, entity, stored if stored is not None
                                     else record_id, conn=conn, waiting=waiting)
    return offered, requests, dict(stored or {})
