"""The extension points of the runtime, listed in one place.

The lower layers announce what happened; the higher ones hang behaviour on the announcement.
A hook is registered where the instance is assembled (`runtime.process.setup.assemble`), so
that `core` and `write` never import the code that reacts to them.

- `after_write(inst, conn, actor, event: WriteEvent)` — called by `runtime.write.records` for
  every create, update, delete and workflow move, inside its transaction, after the row and its
  audit entry are written.
- `after_decision(inst, conn, actor, event: DecisionEvent)` — called by
  `runtime.process.approvals.actions` when an approval request is approved or rejected, inside
  its transaction, after the record was moved.

CRMForge ships three `after_write` hooks: the process layer's automations
(`runtime.process.automations.after_write`), the end of a deactivated user's web sessions
(`runtime.core.sessions.after_write`) and outbound webhooks
(`runtime.process.webhooks.after_write`, which hangs on `after_decision` too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.core.instance import Actor, Instance


@dataclass(frozen=True)
class WriteEvent:
    """What happened to one record, handed to hooks inside the write's transaction."""

    kind: str  # create | update | delete | transition
    entity: str
    record: dict[str, Any] | None  # after (None for delete)
    old: dict[str, Any] | None  # before (None for create)
    transition: str | None = None
    depth: int = 0  # how many automations deep this write is (a guard against loops)


Hook = Callable[["Instance", Any, "Actor", WriteEvent], None]  # (inst, conn, actor, event)


@dataclass(frozen=True)
class DecisionEvent:
    """An approval request that was decided, handed to hooks inside the decision's
    transaction."""

    entity: str
    record_id: int
    approval: str
    decision: str  # approved | rejected
    comment: str | None = None


DecisionHook = Callable[["Instance", Any, "Actor", DecisionEvent], None]


@dataclass
class Hooks:
    """The hooks registered on one instance, run in the order they were added."""

    after_write: list[Hook] = field(default_factory=list)
    after_decision: list[DecisionHook] = field(default_factory=list)

    def add_after_write(self, hook: Hook) -> None:
        """Register `hook` once (adding it again changes nothing)."""
        if hook not in self.after_write:
            self.after_write.append(hook)

    def add_after_decision(self, hook: DecisionHook) -> None:
        """Register `hook` once (adding it again changes nothing)."""
        if hook not in self.after_decision:
            self.after_decision.append(hook)

    def decided(self, inst: Instance, conn: Any, actor: Actor, event: DecisionEvent) -> None:
        """Run the `after_decision` hooks."""
        for hook in list(self.after_decision):
            hook(inst, conn, actor, event)
