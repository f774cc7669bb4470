"""Approval processes (docs/approvals.md), in three files, as Alembic keeps its ops apart from their
implementation:

- `rules.py` decides, from plain data (no SQL, no writes, no clock): who is away and who stands
  in, who approves a step and who is 'nobody' and why, in what capacity someone may decide
  (maker-checker, delegates), when a step is complete (`any`/`all`), which state each step
  shows, when a step escalates; the statuses and decisions;
- `requests.py` reads: a request's row, definition, approvers and decisions, its JSON shape
  (`request_dict`), one request (`get`), a record's requests (`for_record`), a user's
  `inbox`, the pending request that locks a record, and gathers what the rules need
  (`capacity`, `may_decide`, `entry_holds`);
- `pending.py` counts a user's pending inbox in one statement (`pending_count`, the badge);
- `actions.py` does what follows: `open_request`, `approve` / `reject` (`decide`), `recall`,
  `escalate` — the SQL, the notifications, the timeline entries and the moves.

Other layers import the package (`from runtime.process import approvals`) and use the names
below; the modules themselves are for the package and its tests.
"""

from runtime.process.approvals import actions, pending, requests, rules
from runtime.process.approvals.actions import (
    approve,
    decide,
    escalate,
    open_request,
    recall,
    reject,
    rejecting,
)
from runtime.process.approvals.pending import pending_count
from runtime.process.approvals.requests import (
    definition,
    entry_holds,
    for_record,
    get,
    inbox,
    pending_request,
    request_dict,
)
from runtime.process.approvals.rules import (
    APPROVED,
    DECISIONS,
    PENDING,
    RECALLED,
    REJECTED,
    STATUSES,
    WAITING,
    is_away,
)

__all__ = [
    "APPROVED", "DECISIONS", "PENDING", "RECALLED", "REJECTED", "STATUSES", "WAITING",
    "actions", "approve", "decide", "definition", "entry_holds", "escalate", "for_record", "get",
    "inbox", "is_away", "open_request", "pending", "pending_count", "pending_request",
    "recall", "reject", "rejecting", "request_dict", "requests", "rules"]
