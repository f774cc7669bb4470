"""Moving a record to another state of its workflow: the one function a workflow transition,
an approval's last decision and an approval's rejection all end in. It goes through
`runtime.write.records.update(..., transition=NAME)`, the one write path, which audits the
change, keeps it on the timeline with its comment and runs the after-write hooks.

Whether the move is allowed is decided before: by `workflow.check` or by an approval.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from runtime.core.instance import Actor, Instance
from runtime.read.queries import load
from runtime.write import records


def move(inst: Instance, conn: Connection, actor: Actor, entity: str, record: Mapping[str, Any],
         transition: str, *, to: str | None = None, comment: str | None = None,
         depth: int = 0) -> dict[str, Any]:
    """Move `record` through `transition`; returns the record as stored now (native shape).

    The move is made as the system acting for `actor`: the workflow (roles, guard, an
    approval) has authorised it, not the actor's update rule; `updated_by` and the audit
    still name the actor. `to` overrides the transition's target (an approval rejected to its
    `on_reject` state)."""
    workflow = inst.model.entities[entity].workflow
    assert workflow is not None
    values = {workflow.field: to} if to is not None else {}
    records.update(inst, dataclasses.replace(actor, system=True), entity, record["id"], values,
                   version=record["version"], conn=conn, transition=transition, depth=depth,
                   comment=comment)
    moved = load(inst, conn, entity, record["id"])
    return moved if moved is not None else dict(record)
