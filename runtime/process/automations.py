"""Automations (docs/automations.md): event automations run inside the write that triggered them;
scheduled ones run in the worker.

Event automations hang on `Instance.hooks.after_write` through `install_hooks(inst)`, which
`runtime.process.setup.assemble` calls when it builds an instance (it is idempotent).
For every write `records.py` reports, the automations of that entity whose trigger matches run
in model order:

- `create`, `update` (a transition is an update of the state field too), `delete`,
  `{transition: NAME}`;
- `when` is evaluated as the system (`user` is null) with `old` the record before the change
  and `now`/`today` from the instance clock;
- the actions run as the system, in the same transaction as the change: `set` (through
  `records.update`; a `set` that changes nothing writes nothing), `create` (`records.create`),
  one per child with `for_each` (the child read as `item`),
  `update` (another record, the one whose id the `record` slot gives, e.g. a link: through
  `records.update`; a null link skips it), `notify` (to a role, a user, a record field, the
  owner; default the owner), `transition` (`workflow.fire`: roles `[]` included; on another
  record with `{name, record}`, skipped when that record is not in a `from` state of the
  transition, or its link is null), `assign` (`round_robin` with a cursor in
  `crm_assign_cursor`, or `least_loaded`: fewest open records of this entity, i.e. not in a
  final state; `match: F` keeps the users whose own `F` equals the record's);
- any failing action raises `AutomationFailed` (a `RecordError`): the whole change, the
  triggering write included, rolls back and the message says which automation and action;
- every write an action makes is one level deeper (`WriteEvent.depth`); beyond `MAX_DEPTH`
  levels the chain is refused as a loop (`AutomationLoop`).

Scheduled automations (`{schedule: hourly | daily | weekly | CRON}`): `run_scheduled(inst,
automation, now)` visits the records its `where` selects (in SQL, as the system: no row
filter), each in a transaction of its own, and records each record done in
`crm_schedule_run` under the period key (`2026-11-23T14` hourly, `2026-11-23` daily,
`2026-W48` weekly, the minute of the cron's latest firing) — so running the same period twice
does nothing twice, and a run cut short by a crash finishes where it stopped. A record whose
actions fail is rolled back alone, logged, and tried again next period. `run_due(inst, now)`
runs every scheduled automation; the worker calls it each minute.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from builder.expressions import EvalContext, evaluate_condition, render_template, slot_value
from builder.model import Action, Automation, Trigger
from runtime.core import caches
from runtime.core.context import eval_context, scope_of
from runtime.core.db import write_transaction
from runtime.core.errors import RecordError
from runtime.core.expressions import SqlContext, to_sql
from runtime.core.hooks import WriteEvent
from runtime.core.instance import Actor, Instance
from runtime.core.values import same
from runtime.process import approvals, workflow
from runtime.process.mail.outbox import email_record
from runtime.process.notifications import notify
from runtime.read.addresses import record_link
from runtime.read.people import resolve_users, users_with_role
from runtime.read.queries import load
from runtime.write import records
from runtime.write.records import MAX_DEPTH  # the one limit: writes refuse to go deeper too
from runtime.write.timeline import record_event

log = logging.getLogger("crmforge.automations")
SYSTEM = Actor.system_actor()
SENTINEL = 0  # crm_schedule_run.record_id of the row that marks a whole period done


class AutomationFailed(RecordError):
    """An automation's action failed; the change that triggered it was not saved."""

    status = 422

    def __init__(self, message: str, *, automation: str | None = None,
                 cause: Exception | None = None):
        super().__init__(message)
        self.automation = automation
        self.cause = cause


class AutomationLoop(AutomationFailed):
    """Automations kept triggering each other (or themselves) beyond MAX_DEPTH levels."""

    status = 409


# -- event automations ------------------------------------------------------------------------

def install_hooks(inst: Instance) -> None:
    """Run the model's event automations after every write on `inst` (idempotent)."""
    inst.hooks.add_after_write(after_write)


def triggered_by(inst: Instance, event: WriteEvent) -> tuple[Automation, ...]:
    """The event automations of the event's entity whose trigger matches it (found once per
    model, entity, kind and transition: every record written asks)."""
    model = inst.model
    return caches.TRIGGERS.get(
        (model.hash, event.entity, event.kind, event.transition),
        lambda: tuple(a for a in model.automations if a.entity == event.entity
                      and matches(a.trigger, event.kind, event.transition)))


def matches(trigger: Trigger, kind: str, transition: str | None) -> bool:
    """Whether an automation with `trigger` runs after a write of `kind` (create, update,
    transition, delete; a transition's name): `on: update` follows transitions too."""
    if trigger.kind == "transition":
        return kind == "transition" and trigger.transition == transition
    if trigger.kind == "update":
        return kind in ("update", "transition")
    return trigger.kind == kind


def after_write(inst: Instance, conn: Connection, actor: Actor, event: WriteEvent) -> None:
    """The after-write hook: run each matching automation (see the module doc)."""
    if event.kind == "transition" and event.record is not None and approvals.rejecting(
            conn, event.entity, event.record["id"]):
        event = dataclasses.replace(event, kind="update", transition=None)
    automations = triggered_by(inst, event)
    if not automations:
        return
    if event.depth >= MAX_DEPTH:
        names = ", ".join(f"'{a.name}'" for a in automations)
        raise AutomationLoop(
            f"Automations triggered each other more than {MAX_DEPTH} levels deep (the last "
            f"were {names} on {event.entity}); this looks like a loop, so nothing was saved. "
            "Add a `when` condition that stops the chain.", automation=automations[0].name)
    record = event.record if event.record is not None else event.old
    if record is None:
        return
    for automation in automations:
        ctx = _context(inst, conn, automation.entity, record, event.old, inst.now())
        if automation.when is not None and not evaluate_condition(automation.when, ctx):
            continue
        run_actions(inst, conn, automation, dict(record), event.old, depth=event.depth,
                    deleted=event.kind == "delete", now=inst.now())


def run_actions(inst: Instance, conn: Connection, automation: Automation,
                record: dict[str, Any], old: Mapping[str, Any] | None, *, depth: int,
                deleted: bool = False, now: datetime | None = None) -> None:
    """Run the automation's actions on one record, in order, as the system."""
    now = now or inst.now()
    current: dict[str, Any] = record
    for index, action in enumerate(automation.actions):
        if not deleted:
            current = load(inst, conn, automation.entity, record["id"]) or current
        try:
            ACTIONS[action.kind](inst, conn, automation, action, current, old, depth, now,
                                 deleted)
        except AutomationFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure rolls back, with a message
            what = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            log.info("automation %s.%s failed at action %d: %s", automation.entity,
                     automation.name, index + 1, what)
            raise AutomationFailed(
                f"The automation '{automation.label.get()}' ({automation.entity}) could not "
                f"run its action {index + 1} ({_describe(action)}): {what} Nothing was saved; "
                "correct the record or the automation and try again.",
                automation=automation.name, cause=exc) from exc


def _describe(action: Action) -> str:
    if action.kind == "create":
        each = f" for each {action.for_each}" if action.for_each else ""
        return f"create {action.entity}{each}"
    if action.kind == "update":
        return f"update {action.entity} " + ", ".join(action.values)
    if action.kind == "transition":
        if action.record is not None:
            return f"transition {action.transition} of {action.entity}"
        return f"transition {action.transition}"
    if action.kind == "assign":
        return f"assign {action.field}"
    if action.kind == "set":
        return "set " + ", ".join(action.values)
    return action.kind


def _context(inst: Instance, conn: Connection, entity: str, record: Mapping[str, Any],
             old: Mapping[str, Any] | None, now: datetime) -> EvalContext:
    ctx = eval_context(inst, None, entity, record, old=old, conn=conn)
    ctx.now = now.replace(tzinfo=UTC) if now.tzinfo is None else now
    ctx.today = ctx.now.date()
    return ctx


def _values(inst: Instance, conn: Connection, automation: Automation, action: Action,
            record: Mapping[str, Any], old: Mapping[str, Any] | None,
            now: datetime) -> dict[str, Any]:
    ctx = _context(inst, conn, automation.entity, record, old, now)
    return {name: slot_value(slot, ctx) for name, slot in action.values.items()}


def _same(a: Any, b: Any) -> bool:

    if a is not None and b is not None and not isinstance(a, bool | list) and \
            not isinstance(b, bool | list):
        return str(a) == str(b) or same(a, b)
    return same(a, b)


def _do_set(inst: Instance, conn: Connection, automation: Automation, action: Action,
            record: dict[str, Any], old: Mapping[str, Any] | None, depth: int,
            now: datetime, deleted: bool) -> None:

    if deleted:
        raise AutomationFailed(f"'set' cannot change a deleted {automation.entity}; use "
                               "'create' or 'notify' in a delete automation.")
    values = _values(inst, conn, automation, action, record, old, now)
    changed = {k: v for k, v in values.items() if not _same(record.get(k), v)}
    if changed:
        records.update(inst, SYSTEM, automation.entity, record["id"], changed,
                       version=record["version"], conn=conn, depth=depth + 1)


def _do_create(inst: Instance, conn: Connection, automation: Automation, action: Action,
               record: dict[str, Any], old: Mapping[str, Any] | None, depth: int,
               now: datetime, deleted: bool) -> None:

    assert action.entity is not None
    if action.for_each is None:
        values = _values(inst, conn, automation, action, record, old, now)
        records.create(inst, SYSTEM, action.entity, values, conn=conn, depth=depth + 1)
        return
    parent = record["id"]
    if action.for_each_of is not None:
        parent = slot_value(action.for_each_of, _context(inst, conn, automation.entity,
                                                         record, old, now))
    for item in children(inst, conn, action, parent):
        ctx = _context(inst, conn, automation.entity, record, old, now)
        ctx.item, ctx.item_entity = item, action.for_each
        values = {name: slot_value(slot, ctx) for name, slot in action.values.items()}
        records.create(inst, SYSTEM, action.entity, values, conn=conn, depth=depth + 1)


def children(inst: Instance, conn: Connection, action: Action, record_id: Any
             ) -> list[dict[str, Any]]:
    """The records of a `for_each` (its child entity whose link is the parent), by id; none
    when the parent (an `of` link left empty) is null."""
    assert action.for_each is not None and action.for_each_link is not None
    if record_id is None:
        return []
    table = inst.schema.table(action.for_each)
    rows = conn.execute(sa.select(table).where(table.c[action.for_each_link] == record_id)
                        .order_by(table.c.id)).mappings()
    return [dict(row) for row in rows]


def _other_record(inst: Instance, conn: Connection, automation: Automation, action: Action,
                  record: Mapping[str, Any], old: Mapping[str, Any] | None, now: datetime
                  ) -> dict[str, Any] | None:
    """The record an `update` or a `transition: {record: ...}` acts on: its `record` slot
    evaluated on this record gives the id; None when it is null (the action is skipped)."""
    assert action.record is not None and action.entity is not None
    ctx = _context(inst, conn, automation.entity, record, old, now)
    value = slot_value(action.record, ctx)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise AutomationFailed(f"'{action.record.value}' gave {value!r}, not the id of a "
                               f"{action.entity}.")
    try:
        record_id = int(value)
    except ValueError:
        raise AutomationFailed(f"'{action.record.value}' gave {value!r}, not the id of a "
                               f"{action.entity}.") from None
    target = load(inst, conn, action.entity, record_id)
    if target is None:
        raise AutomationFailed(f"there is no {action.entity} #{record_id} "
                               f"('{action.record.value}').")
    return target


def _do_update(inst: Instance, conn: Connection, automation: Automation, action: Action,
               record: dict[str, Any], old: Mapping[str, Any] | None, depth: int,
               now: datetime, deleted: bool) -> None:

    assert action.entity is not None
    target = _other_record(inst, conn, automation, action, record, old, now)
    if target is None:
        return
    values = _values(inst, conn, automation, action, record, old, now)
    changed = {k: v for k, v in values.items() if not _same(target.get(k), v)}
    if changed:
        records.update(inst, SYSTEM, action.entity, target["id"], changed,
                       version=target["version"], conn=conn, depth=depth + 1)


def _do_notify(inst: Instance, conn: Connection, automation: Automation, action: Action,
               record: dict[str, Any], old: Mapping[str, Any] | None, depth: int,
               now: datetime, deleted: bool) -> None:
    recipient = action.recipient
    kind, value = (recipient.kind, recipient.value) if recipient else ("owner", None)
    users = resolve_users(inst, conn, automation.entity, record, kind, value)
    if not users:
        return
    ctx = _context(inst, conn, automation.entity, record, old, now)
    message = render_template(action.message.get(), ctx) if action.message else ""
    subject = render_template(action.subject.get(), ctx) if action.subject else (
        message.splitlines()[0] if message else automation.label.get())
    notify(inst, conn, users, subject, message,
           None if deleted else record_link(automation.entity, record["id"]))


def _do_transition(inst: Instance, conn: Connection, automation: Automation, action: Action,
                   record: dict[str, Any], old: Mapping[str, Any] | None, depth: int,
                   now: datetime, deleted: bool) -> None:

    assert action.transition is not None
    if action.record is None:
        workflow.fire(inst, SYSTEM, automation.entity, record["id"], action.transition,
                      comment=f"by the automation '{automation.label.get()}'", conn=conn,
                      depth=depth + 1)
        return
    assert action.entity is not None
    target = _other_record(inst, conn, automation, action, record, old, now)
    if target is None:
        return
    _, flow, transition = workflow.transition_of(inst, action.entity, action.transition)
    if target.get(flow.field) not in transition.from_states:
        log.info("automation %s.%s: %s #%s is '%s'; transition '%s' skipped",
                 automation.entity, automation.name, action.entity, target["id"],
                 target.get(flow.field), action.transition)
        return
    workflow.fire(inst, SYSTEM, action.entity, target["id"], action.transition,
                  comment=f"by the automation '{automation.label.get()}' of "
                          f"{automation.entity} #{record['id']}", conn=conn, depth=depth + 1)


def _do_assign(inst: Instance, conn: Connection, automation: Automation, action: Action,
               record: dict[str, Any], old: Mapping[str, Any] | None, depth: int,
               now: datetime, deleted: bool) -> None:

    assert action.field is not None and action.among is not None
    if deleted:
        return
    candidates = assign_candidates(inst, conn, automation.entity, record, action)
    if not candidates:
        among = f"{action.among.kind} '{action.among.value}'"
        match = (f" whose {action.match} is '{record.get(action.match)}'"
                 if action.match else "")
        record_event(inst, conn, automation.entity, record["id"], "automation",
                     f"{automation.label.get()}: nobody to assign — no active user with "
                     f"{among}{match}.", {"automation": automation.name, "action": "assign"},
                     None, key="assign_nobody", params={
                         "automation": automation.name, "among": {
                             "kind": action.among.kind, "value": action.among.value},
                         "field": action.match,
                         "match": record.get(action.match) if action.match else None})
        log.warning("automation %s.%s: nobody to assign for record %s", automation.entity,
                    automation.name, record["id"])
        return
    if action.strategy == "least_loaded":
        chosen = least_loaded(inst, conn, automation.entity, action.field, candidates,
                              exclude=record["id"])
    else:
        chosen = round_robin(inst, conn, _cursor_key(automation, action, record), candidates)
    if not _same(record.get(action.field), chosen):
        records.update(inst, SYSTEM, automation.entity, record["id"], {action.field: chosen},
                       version=record["version"], conn=conn, depth=depth + 1)


def _do_email(inst: Instance, conn: Connection, automation: Automation, action: Action,
              record: dict[str, Any], old: Mapping[str, Any] | None, depth: int,
              now: datetime, deleted: bool) -> None:
    assert action.template is not None
    if deleted:
        return
    email_record(inst, conn, automation.entity, record, action.template, action.recipient,
                 once=action.once, follow=dict(action.status) or None)


ACTIONS = {"set": _do_set, "create": _do_create, "update": _do_update, "notify": _do_notify,
           "email": _do_email, "transition": _do_transition, "assign": _do_assign}


# -- assignment -------------------------------------------------------------------------------

def assign_candidates(inst: Instance, conn: Connection, entity: str,
                      record: Mapping[str, Any], action: Action) -> list[int]:
    """The active users `among` a role or team, kept by `match` (sorted by id)."""
    assert action.among is not None
    if action.among.kind == "role":
        users = users_with_role(inst, conn, action.among.value or "")
    else:
        users = resolve_users(inst, conn, entity, record, action.among.kind,
                              action.among.value)
    if action.match and users:
        wanted = record.get(action.match)
        if wanted is None:
            return []
        table = inst.schema.table("user")
        column = table.c[action.match]
        users = list(conn.execute(sa.select(table.c.id).where(
            table.c.id.in_(users), column == wanted).order_by(table.c.id)).scalars())
    return sorted(users)


def _cursor_key(automation: Automation, action: Action, record: Mapping[str, Any]) -> str:
    assert action.among is not None
    key = f"{automation.entity}.{automation.name}:{action.field}:{action.among.kind}=" \
          f"{action.among.value}"
    if action.match:
        key += f":{action.match}={record.get(action.match)}"
    if len(key) > 255:
        key = key[:200] + ":" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return key


def round_robin(inst: Instance, conn: Connection, key: str, candidates: list[int]) -> int:
    """The candidate after the one chosen last time under `key` (wrapping around)."""
    cursor = inst.schema.system("assign_cursor")
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        conn.execute(insert(cursor).values(key=key, last_user_id=None)
                     .on_conflict_do_nothing(index_elements=["key"]))
    else:  # pragma: no cover - other databases
        try:
            with conn.begin_nested():
                conn.execute(cursor.insert().values(key=key, last_user_id=None))
        except IntegrityError:
            pass
    last = conn.execute(sa.select(cursor.c.last_user_id).where(cursor.c.key == key)
                        .with_for_update()).scalar()
    ordered = sorted(candidates)
    chosen = next((u for u in ordered if last is None or u > last), ordered[0])
    conn.execute(cursor.update().where(cursor.c.key == key).values(last_user_id=chosen))
    return chosen


def least_loaded(inst: Instance, conn: Connection, entity: str, field_name: str,
                 candidates: list[int], exclude: int | None = None) -> int:
    """The candidate with the fewest open records (not in a final state) of `entity` in
    `field_name`; ties go to the lowest id."""
    table = inst.schema.table(entity)
    column = table.c[field_name]
    query = sa.select(column, sa.func.count()).where(column.in_(candidates)).group_by(column)
    workflow = inst.model.entities[entity].workflow
    if workflow is not None:
        final = [name for name, state in workflow.states.items() if state.final]
        if final:
            state = table.c[workflow.field]
            query = query.where(sa.or_(state.is_(None), state.not_in(final)))
    if exclude is not None:
        query = query.where(table.c.id != exclude)
    load_of = dict(conn.execute(query).all())
    return min(sorted(candidates), key=lambda u: load_of.get(u, 0))


# -- scheduled automations --------------------------------------------------------------------

@dataclass
class RunReport:
    automation: str
    period: str | None
    selected: int = 0
    done: int = 0
    skipped: int = 0  # already done in this period, or `when` false
    failed: list[tuple[int, str]] = field(default_factory=list)
    complete_before: bool = False  # the period had been run to the end already


def scheduled(inst: Instance) -> list[Automation]:
    return [a for a in inst.model.automations if a.trigger.kind == "schedule"]


def automation_key(automation: Automation) -> str:
    return f"{automation.entity}.{automation.name}"


# A pure parse of a cron string (no model in it), so a plain lru_cache: see core/caches.py.
@lru_cache(maxsize=256)
def _cron(expression: str):  # noqa: ANN202 - huey's validator function
    from huey import crontab

    minute, hour, day, month, weekday = expression.split()
    return crontab(minute, hour, day, month, weekday, strict=True)


def cron_matches(expression: str, when: datetime) -> bool:
    return bool(_cron(expression)(when.replace(second=0, microsecond=0)))


def period_key(schedule: str, now: datetime) -> str | None:
    """The period `now` falls in for a schedule; for a cron, the minute of its latest firing
    (at most 8 days back), None when it has not fired in that time."""
    if schedule == "hourly":
        return now.strftime("%Y-%m-%dT%H")
    if schedule == "daily":
        return now.strftime("%Y-%m-%d")
    if schedule == "weekly":
        year, week, _ = now.isocalendar()
        return f"{year}-W{week:02d}"
    minute = now.replace(second=0, microsecond=0)
    for _ in range(8 * 24 * 60):
        if cron_matches(schedule, minute):
            return minute.strftime("%Y-%m-%dT%H:%M")
        minute -= timedelta(minutes=1)
    return None


def run_due(inst: Instance, now: datetime | None = None) -> list[RunReport]:
    """Run every scheduled automation for the period `now` is in (idempotent)."""
    now = now or inst.now()
    return [run_scheduled(inst, automation, now) for automation in scheduled(inst)]


def run_scheduled(inst: Instance, automation: Automation, now: datetime | None = None
                  ) -> RunReport:
    """Run one scheduled automation for the period `now` falls in; see the module doc."""
    now = (now or inst.now()).replace(microsecond=0)
    if now.tzinfo is not None:
        now = now.astimezone(UTC).replace(tzinfo=None)
    assert automation.trigger.schedule is not None
    period = period_key(automation.trigger.schedule, now)
    report = RunReport(automation_key(automation), period)
    if period is None:
        return report
    runs = inst.schema.system("schedule_run")
    key = automation_key(automation)
    table = inst.schema.table(automation.entity)
    with inst.engine.connect() as conn:
        if _done(conn, runs, key, period, SENTINEL):
            report.complete_before = True
            return report
        query = sa.select(table.c.id).where(~table.c.id.in_(
            sa.select(runs.c.record_id).where(runs.c.automation == key,
                                              runs.c.period == period)))
        if automation.where is not None:
            query = query.where(to_sql(automation.where, _sql_context(inst, automation, now),
                                       condition=True))
        ids = list(conn.execute(query.order_by(table.c.id)).scalars())
    report.selected = len(ids)
    for record_id in ids:
        try:
            with write_transaction(inst.engine) as conn:
                if _done(conn, runs, key, period, record_id):
                    report.skipped += 1
                    continue
                # the key first: a second worker on the same record waits here for this
                # transaction, then fails on the key (rolled back, skipped) — never runs twice
                conn.execute(runs.insert().values(automation=key, period=period,
                                                  record_id=record_id, at=inst.now()))
                record = load(inst, conn, automation.entity, record_id)
                if record is None:
                    continue
                ctx = _context(inst, conn, automation.entity, record, record, now)
                if automation.when is None or evaluate_condition(automation.when, ctx):
                    run_actions(inst, conn, automation, record, dict(record), depth=0, now=now)
                    report.done += 1
                else:
                    report.skipped += 1
        except RecordError as exc:
            report.failed.append((record_id, exc.message))
            log.error("scheduled automation %s, period %s, record %s: %s", key, period,
                      record_id, exc.message)
        except IntegrityError:  # another worker did this record at the same moment
            report.skipped += 1
    try:
        with write_transaction(inst.engine) as conn:
            if not _done(conn, runs, key, period, SENTINEL):
                conn.execute(runs.insert().values(automation=key, period=period,
                                                  record_id=SENTINEL, at=inst.now()))
    except IntegrityError:
        pass
    if report.done or report.failed:
        log.info("scheduled automation %s, period %s: %d done, %d failed", key, period,
                 report.done, len(report.failed))
    return report


def _done(conn: Connection, runs: sa.Table, key: str, period: str, record_id: int) -> bool:
    return conn.execute(sa.select(runs.c.record_id).where(
        runs.c.automation == key, runs.c.period == period,
        runs.c.record_id == record_id)).first() is not None


def _sql_context(inst: Instance, automation: Automation, now: datetime) -> SqlContext:
    return SqlContext(automation.entity, inst.schema.table, scope_of(inst.model), None,
                      now.date(), now.replace(tzinfo=UTC))
