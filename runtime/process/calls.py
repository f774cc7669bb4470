"""Incoming calls (docs/api.md "Incoming calls"): a telephone system reports that a number is
calling an agent; CRMForge finds the customer, logs the call and pops it up in the agent's
browser.

- Decide (pure): `decide_call` reads the report — the caller's number in any format, the
  number called, the agent's username — into a `Call` (the caller in E.164, as the phone
  shadow columns hold it), or a ValidationFailed naming what to fix.
- Do: `log_call` finds the records with that number that the agent may read
  (`runtime.read.calls.matches`, row filters applied), keeps the call in `crm_call` and puts a
  `call` entry on each record's timeline by the agent (the telephone system reports a fact, as
  the workflow does a transition: no `comment` right is asked), in one transaction.
- `take_pop` hands the agent's browser the newest call not shown yet, once: the first poll
  that claims it wins, so two tabs do not both pop it up.
- The poll is every signed-in page's, every second, so what it asks first is one indexed
  lookup (`waiting`): is the browser's session open, and is a call waiting for its user?
  Only a page of an instance that `takes_calls` (it has an API token, which a telephone
  system reports calls with) polls at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from builder.fieldtypes import phone_digits
from runtime.core import phones, sessions
from runtime.core.db import in_transaction
from runtime.core.errors import ValidationFailed
from runtime.core.values import json_value
from runtime.read.calls import matches
from runtime.write.timeline import record_event, touch_activity

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

FIELDS = ("from", "to", "agent")
MAX_NUMBER = 40
MAX_USERNAME = 255
POP_WINDOW = timedelta(minutes=2)  # a call older than this is over: no screen-pop any more
_NUMBER = re.compile(r"^(tel:)?\+?[0-9 ()./-]+$")


@dataclass(frozen=True)
class Call:
    caller: str  # as the telephone system sent it
    caller_e164: str
    called: str | None
    agent: str  # the username


def decide_call(report: Mapping[str, Any]) -> Call:
    """The call a telephone system reports; ValidationFailed (422) naming every problem."""
    errors: dict[str, list[str]] = {}
    for name in sorted(set(report) - set(FIELDS)):
        errors[name] = ['is not part of a call; send "from", "to" and "agent"']
    caller = _number(report.get("from"), "from", errors, required=True)
    called = _number(report.get("to"), "to", errors, required=False)
    agent = report.get("agent")
    if not isinstance(agent, str) or not agent.strip():
        errors["agent"] = ["is required: the username of the agent taking the call"]
    elif len(agent) > MAX_USERNAME:
        errors["agent"] = [f"must be a username of at most {MAX_USERNAME} characters"]
    if errors:
        raise ValidationFailed(errors)
    number = phones.normalized(caller)
    assert caller is not None and number is not None and isinstance(agent, str)
    return Call(caller, number, called, agent.strip())


def _number(value: Any, name: str, errors: dict[str, list[str]], *,
            required: bool) -> str | None:
    if value is None or value == "":
        if required:
            errors[name] = ["is required: the caller's phone number, in any format"]
        return None
    text = value.strip() if isinstance(value, str) else None
    if text is None or len(text) > MAX_NUMBER or not _NUMBER.match(text) or \
            len(phone_digits(text)) < 3:
        errors[name] = [f"must be a phone number (digits, spaces, +, -, brackets; at most "
                        f"{MAX_NUMBER} characters), like +44 117 496 0320"]
        return None
    return text


def log_call(inst: Instance, reporter: Actor, agent: Actor, call: Call) -> dict[str, Any]:
    """Keep the call, log it on the timeline of each record the agent may read with that
    number, and answer what the reporter may read of it: {"call", "matches"}."""
    found = matches(inst, agent, call.caller_e164)
    if reporter.user_id != agent.user_id:  # the answer tells the reporter nothing more
        theirs = {(m["entity"], m["id"]) for m in matches(inst, reporter, call.caller_e164)}
        shown = [m for m in found if (m["entity"], m["id"]) in theirs]
    else:
        shown = found

    def work(conn: Connection) -> dict[str, Any]:
        now = inst.now()
        table = inst.schema.system("call")
        call_id = conn.execute(table.insert().values(
            agent_id=agent.user_id, caller=call.caller, caller_e164=call.caller_e164,
            called=call.called, reported_by=reporter.user_id, created_at=now,
            matches=[{"entity": m["entity"], "id": m["id"]} for m in found]
        ).returning(table.c.id)).scalar_one()
        data = {"call": call_id, "from": call.caller, "to": call.called,
                "direction": "inbound", "agent": agent.username}
        for match in found:
            record_event(inst, conn, match["entity"], match["id"], "call",
                         _summary(call, agent), data, agent.user_id, key="call_in",
                         params={"caller": call.caller, "called": call.called,
                                 "agent": agent.display_name})
            touch_activity(inst, conn, match["entity"], match["id"], now)
        return {"call": {"id": call_id, "from": call.caller, "from_e164": call.caller_e164,
                         "to": call.called, "agent": agent.username, "at": json_value(now),
                         "logged": len(found)},
                "matches": shown}

    return in_transaction(inst.engine, None, work)


def _summary(call: Call, agent: Actor) -> str:
    to = f" to {call.called}" if call.called else ""
    return f"Incoming call from {call.caller}{to}, taken by {agent.display_name}."


def takes_calls(inst: Instance) -> bool:
    """Whether a call can be reported to the instance: a telephone system reports it with an
    API token, so an instance without any token takes none."""
    tokens = inst.schema.system("token")
    with inst.engine.connect() as conn:
        return conn.execute(sa.select(tokens.c.id).limit(1)).first() is not None


def waiting(inst: Instance, key_hash: str, opened_after: datetime
            ) -> tuple[int, int | None] | None:
    """(user id, id of a call of the last POP_WINDOW waiting for them or None) of the open
    session kept as `key_hash` (`runtime.core.sessions.is_open`); None when it is not open.
    One statement: the session by its unique key, its user's calls by their index."""
    session, table = inst.schema.system("session"), inst.schema.system("call")
    pending = sa.and_(table.c.agent_id == session.c.user_id, table.c.shown_at.is_(None),
                      table.c.created_at >= inst.now() - POP_WINDOW)
    with inst.engine.connect() as conn:
        row = conn.execute(sa.select(session.c.user_id, table.c.id)
                           .select_from(session.outerjoin(table, pending))
                           .where(sessions.is_open(session, key_hash, opened_after))
                           .limit(1)).first()
    return None if row is None else (row[0], row[1])


def take_pop(inst: Instance, agent: Actor) -> dict[str, Any] | None:
    """The agent's newest call of the last POP_WINDOW that no browser has shown yet, marked
    shown (the one conditional UPDATE that succeeds claims it); None when there is none."""
    if agent.user_id is None:
        return None
    table = inst.schema.system("call")
    now = inst.now()
    with inst.engine.connect() as conn:  # polled every second: read first, write rarely
        row = conn.execute(sa.select(table).where(
            table.c.agent_id == agent.user_id, table.c.shown_at.is_(None),
            table.c.created_at >= now - POP_WINDOW).order_by(table.c.id.desc()).limit(1)
        ).mappings().first()
    if row is None:
        return None

    def claim(conn: Connection) -> bool:
        return conn.execute(table.update().where(
            table.c.id == row["id"], table.c.shown_at.is_(None)).values(shown_at=now)
        ).rowcount == 1

    return dict(row) if in_transaction(inst.engine, None, claim) else None
