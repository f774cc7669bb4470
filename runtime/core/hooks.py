"""The extension points of the runtime, listed in one place.

The lower layers announce what happened; the higher ones hang behaviour on the announcement.
A hook is registered where the instance is assembled (`runtime.process.setup.assemble`), so
that `core` and `write` never import the code that reacts to them.

- `after_write(inst, conn, actor, event: WriteEvent)` — called by `runtime.write.records` for
  every create, update, delete and workflow move, inside its transaction, after the row and its
  audit entry are written.

CRMForge ships two `after_write` hooks: the process layer's automations
(`runtime.process.automations.after_write`) and the end of a deactivated user's web sessions
(`runtime.core.sessions.after_write`).
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


@dataclass
class Hooks:
    """The hooks registered on one instance, run in the order they were added."""

    after_write: list[Hook] = field(default_factory=list)

    def add_after_write(self, hook: Hook) -> None:
        """Register `hook` once (adding it again changes nothing)."""
        if hook not in self.after_write:
            self.after_write.append(hook)
