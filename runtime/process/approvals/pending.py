"""How many approval requests wait for a user: the pending inbox (`requests.inbox`) counted in
one SQL statement, for the badge every page shows.

The inbox lists a pending request when `may_decide` says the user may decide its current step
(`rules.capacity`); `decidable` is that rule as one SQL condition:

- the request's approval is still defined (its entity has a workflow and the approval) and its
  step index is one of the approval's steps;
- maker-checker: without `allow_self_approval`, the submitter is not counted;
- the user has not decided the current step yet;
- the user is an approver of the current step, or the delegate of an approver of it who is
  away today (`away_from` .. `away_until`, one end at least), whom no decision of the step
  covers yet and who is not the submitter (unless self-approval is allowed).

tests/test_approvals_count.py checks that the count equals `len(inbox(...))` over the
approval scenarios.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from runtime.core.instance import Actor, Instance
from runtime.process.approvals.requests import tables
from runtime.process.approvals.rules import PENDING


def pending_count(inst: Instance, actor: Actor) -> int:
    """How many requests `inbox(inst, actor)` lists (without its page limit): one query."""
    if actor.user_id is None:
        return 0
    requests, _, _ = tables(inst)
    query = sa.select(sa.func.count()).select_from(requests).where(
        decidable(inst, actor.user_id, inst.today()))
    with inst.primary_reader() as conn:
        return int(conn.execute(query).scalar_one())


def decidable(inst: Instance, user_id: int, today: date) -> Any:
    """The SQL condition on `crm_approval_request`: `user_id` may decide it today."""
    requests, _, decisions = tables(inst)
    decided = sa.exists().where(decisions.c.request_id == requests.c.id,
                                decisions.c.step_index == requests.c.step_index,
                                decisions.c.user_id == user_id)
    defined: dict[bool, list[Any]] = {True: [], False: []}  # by allow_self_approval
    for entity in inst.model.entities.values():
        for approval in entity.approvals.values() if entity.workflow is not None else ():
            defined[approval.allow_self_approval].append(sa.and_(
                requests.c.entity == entity.name, requests.c.approval == approval.name,
                requests.c.step_index < len(approval.steps)))
    kinds = [sa.and_(sa.or_(*keys), _may(inst, user_id, today, self_ok))
             for self_ok, keys in defined.items() if keys]
    if not kinds:
        return sa.false()
    return sa.and_(requests.c.status == PENDING, ~decided, sa.or_(*kinds))


def _may(inst: Instance, user_id: int, today: date, self_ok: bool) -> Any:
    """Approver of the current step or standing in for one; with maker-checker
    (`self_ok` False), not the submitter."""
    requests, assignees, _ = tables(inst)
    approver = sa.exists().where(assignees.c.request_id == requests.c.id,
                                 assignees.c.step_index == requests.c.step_index,
                                 assignees.c.user_id == user_id)
    may = sa.or_(approver, _stands_in(inst, user_id, today, self_ok))
    if self_ok:
        return may
    return sa.and_(sa.or_(requests.c.submitted_by.is_(None),
                          requests.c.submitted_by != user_id), may)


def _away_delegators(inst: Instance, user_id: int, today: date) -> sa.Select:
    """The ids of the users away today who named `user_id` their delegate (`rules.is_away`)."""
    users = inst.schema.table("user")
    start, end = users.c.away_from, users.c.away_until
    return sa.select(users.c.id).where(
        users.c.delegate == user_id, sa.or_(start.is_not(None), end.is_not(None)),
        sa.or_(start.is_(None), start <= today), sa.or_(end.is_(None), end >= today))


def _stands_in(inst: Instance, user_id: int, today: date, self_ok: bool) -> Any:
    """An approver of the current step is away, `user_id` is their delegate, no decision of
    the step covers them yet, and they are not the submitter (unless self-approval is
    allowed)."""
    requests, assignees, decisions = tables(inst)
    covered = sa.exists().where(
        decisions.c.request_id == requests.c.id,
        decisions.c.step_index == requests.c.step_index, decisions.c.user_id.is_not(None),
        sa.func.coalesce(decisions.c.on_behalf_of, decisions.c.user_id) == assignees.c.user_id)
    return sa.exists().where(
        assignees.c.request_id == requests.c.id,
        assignees.c.step_index == requests.c.step_index,
        assignees.c.user_id.in_(_away_delegators(inst, user_id, today)), ~covered,
        sa.true() if self_ok else sa.or_(requests.c.submitted_by.is_(None),
                                         assignees.c.user_id != requests.c.submitted_by))
