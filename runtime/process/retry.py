"""The retry schedule of the worker's queues (the outbox `crm_mail`, the webhook deliveries
`crm_webhook_delivery`): the backoff delays, when the next attempt is due, when it gives up,
and the claim that holds a due row for one worker.

A queue row is `queued`, `retrying` or `sending` while it is due (`DUE`); a worker claims it
by setting it `sending` with one more attempt, due again `held_for` later should the worker
stop before it finishes. After a failed attempt `next_attempt` says when to try again, or None
once the row has had `max_attempts` attempts and is given up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from runtime.core.db import write_transaction
from runtime.core.instance import Instance

DUE = ("queued", "retrying", "sending")


@dataclass(frozen=True)
class RetrySchedule:
    """The delays between attempts (`backoff`: after the first, second … failed attempt) and
    how long a claimed row is held before another worker may try it."""

    backoff: tuple[timedelta, ...]
    held_for: timedelta = timedelta(minutes=10)

    @property
    def max_attempts(self) -> int:
        """The attempts made before a row is given up: one more than there are delays."""
        return len(self.backoff) + 1

    def gives_up(self, attempts: int) -> bool:
        """Whether a row that failed `attempts` attempts is given up (no retry left)."""
        return attempts >= self.max_attempts

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after `attempts` failed attempts; None when there is no retry
        left."""
        if self.gives_up(attempts):
            return None
        return now + self.backoff[max(attempts, 1) - 1]


def due_ids(inst: Instance, table: sa.Table, limit: int) -> list[int]:
    """The ids of the rows of `table` due now, the longest waiting first."""
    with inst.engine.connect() as conn:
        return list(conn.execute(sa.select(table.c.id).where(
            table.c.status.in_(DUE), table.c.next_attempt_at <= inst.now())
            .order_by(table.c.next_attempt_at, table.c.id).limit(limit)).scalars())


def claim(inst: Instance, table: sa.Table, row_id: int, schedule: RetrySchedule
          ) -> dict[str, Any] | None:
    """Hold a due row for this worker (status `sending`, one more attempt); the row as it is
    now, or None when it is no longer due (another worker has it)."""
    now = inst.now()
    with write_transaction(inst.engine) as conn:
        claimed = conn.execute(table.update().where(
            table.c.id == row_id, table.c.status.in_(DUE),
            table.c.next_attempt_at <= now).values(
            status="sending", attempts=table.c.attempts + 1,
            next_attempt_at=now + schedule.held_for)).rowcount
        if claimed != 1:
            return None
        return dict(conn.execute(sa.select(table).where(table.c.id == row_id))
                    .mappings().one())
