"""The rules of approvals (`runtime.process.approvals.rules`), case by case from plain data: who
is away and who stands in, maker-checker, who is 'nobody' and why, in what capacity a user
decides, when a step is complete, which state a step shows, when a step escalates."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from builder.expressions import EvalContext, parse
from builder.model import Approval, Approvers, Step, Text
from runtime.core.errors import Conflict, Forbidden
from runtime.core.instance import Actor
from runtime.process.approvals import rules

TODAY = date(2026, 3, 10)
NOW = datetime(2026, 3, 10, 12, 0)
SUBMITTER, ANA, BEN, CAL, DORA = 1, 2, 3, 4, 5


def step(mode: str = "any", *, when: str | None = None, escalate_after: int | None = None,
         kind: str = "role", value: str = "manager") -> Step:
    return Step("check", Text.of("Check"), Approvers(kind, value),
                parse(when) if when else None, mode, escalate_after)


def approval(*steps: Step, self_ok: bool = False, comment: bool = False,
             entry: str | None = None) -> Approval:
    return Approval("discount", Text.of("Discount"), steps or (step(),),
                    parse(entry) if entry else None, self_ok, None, comment)


def request(status: str = rules.PENDING, index: int = 0) -> dict:
    return {"id": 7, "entity": "deal", "approval": "discount", "status": status,
            "step_index": index, "submitted_by": SUBMITTER}


def decision(user: int | None, kind: str = "approve", on_behalf_of: int | None = None) -> dict:
    return {"user_id": user, "decision": kind, "on_behalf_of": on_behalf_of}


def away(start: date | None, end: date | None, delegate: int | None = DORA) -> dict:
    return {"away_from": start, "away_until": end, "delegate": delegate}


@pytest.mark.parametrize(("start", "end", "expected"), [
    (None, None, False),                                   # no period: never away
    (TODAY, TODAY, True),
    (TODAY - timedelta(days=3), None, True),               # open-ended
    (None, TODAY + timedelta(days=1), True),               # away until tomorrow
    (TODAY + timedelta(days=1), None, False),              # leaves tomorrow
    (None, TODAY - timedelta(days=1), False),              # back since yesterday
    (TODAY - timedelta(days=5), TODAY - timedelta(days=1), False),
])
def test_is_away(start, end, expected):
    assert rules.is_away(away(start, end), TODAY) is expected


@pytest.mark.parametrize(("row", "self_ok", "expected"), [
    (away(TODAY, None), False, True),
    (away(None, None), False, False),                      # not away
    (away(TODAY, None, delegate=None), False, False),      # nobody to stand in
    (away(TODAY, None, delegate=SUBMITTER), False, False),  # maker-checker
    (away(TODAY, None, delegate=SUBMITTER), True, True),   # self-approval allowed
])
def test_stands_in(row, self_ok, expected):
    assert rules.stands_in(row, TODAY, approval(self_ok=self_ok), SUBMITTER) is expected


@pytest.mark.parametrize(("users", "submitter", "self_ok", "expected"), [
    ([SUBMITTER, ANA], SUBMITTER, False, [ANA]),
    ([SUBMITTER, ANA], SUBMITTER, True, [SUBMITTER, ANA]),
    ([SUBMITTER], SUBMITTER, False, []),
    ([ANA, BEN], None, False, [ANA, BEN]),                 # submitted by the system
])
def test_without_submitter(users, submitter, self_ok, expected):
    assert rules.without_submitter(users, submitter, approval(self_ok=self_ok)) == expected


@pytest.mark.parametrize(("kind", "value", "excluded_self", "says"), [
    ("role", "cfo", False, "no active user has the role 'cfo'"),
    ("user", "zoe", False, "the user 'zoe' does not exist or is inactive"),
    ("field", "manager", False, "the record's 'manager' names no active user"),
    ("team", "north", False, "the team 'north' names no active user"),
    ("role", "cfo", True, "the only possible approver is the person who asked (the only "
                          "active user with the role 'cfo'), and this approval does not allow "
                          "self-approval"),
    ("field", "manager", True, "the only possible approver is the person who asked (the "
                               "record's 'manager'), and this approval does not allow "
                               "self-approval"),
])
def test_nobody_says_why_and_what_to_do(kind, value, excluded_self, says):
    the_step = step(kind=kind, value=value)
    message = rules.nobody(the_step.approvers, the_step, approval(the_step), excluded_self)
    assert message.startswith("Nobody can approve step 'Check' of 'Discount': " + says + ".")
    assert "Ask an administrator" in message


@pytest.mark.parametrize(("entry", "record", "expected"), [
    (None, {"amount": 1}, True),                           # no entry: always
    ("amount > 100", {"amount": 500}, True),
    ("amount > 100", {"amount": 50}, False),
    ("amount > 100", {"amount": None}, False),             # null counts as false
])
def test_entry_holds(entry, record, expected):
    ctx = EvalContext(record=record, entity="deal")
    assert rules.entry_holds(approval(entry=entry), ctx) is expected


@pytest.mark.parametrize(("when", "record", "expected"), [
    (None, {}, True),
    ("region == 'north'", {"region": "north"}, True),
    ("region == 'north'", {"region": "south"}, False),
])
def test_step_applies(when, record, expected):
    assert rules.step_applies(step(when=when), EvalContext(record=record, entity="deal")) \
        is expected


# (user, assigned {user: escalated}, decided, away for the user, self-approval) -> capacity
CAPACITY = [
    ("approver", ANA, {ANA: False}, [], [], False, None),
    ("escalation approver", CAL, {ANA: False, CAL: True}, [], [], False, None),
    ("delegate of an away approver", DORA, {ANA: False}, [], [ANA], False, ANA),
    ("delegate, second away approver", DORA, {ANA: False, BEN: False},
     [decision(CAL, on_behalf_of=ANA)], [ANA, BEN], False, BEN),
    ("delegate of the submitter, self-approval allowed", DORA, {SUBMITTER: False}, [],
     [SUBMITTER], True, SUBMITTER),
]


@pytest.mark.parametrize(("case", "user", "assigned", "decided", "away_for", "self_ok",
                          "expected"), CAPACITY, ids=[c[0] for c in CAPACITY])
def test_capacity(case, user, assigned, decided, away_for, self_ok, expected):
    assert rules.capacity(approval(self_ok=self_ok), request(), user, assigned, decided,
                          away_for) == expected


REFUSED = [
    ("approval no longer defined", None, ANA, {ANA: False}, [], [], Conflict,
     "no longer defined"),
    ("not signed in", approval(), None, {ANA: False}, [], [], Forbidden, "signed-in"),
    ("maker-checker", approval(), SUBMITTER, {SUBMITTER: False}, [], [], Forbidden,
     "does not allow self-approval"),
    ("already decided", approval(), ANA, {ANA: False}, [decision(ANA)], [], Conflict,
     "already decided step 'Check'"),
    ("not an approver", approval(), BEN, {ANA: False}, [], [], Forbidden,
     "not an approver of step 'Check'"),
    ("the away approver is covered", approval(), DORA, {ANA: False},
     [decision(CAL, on_behalf_of=ANA)], [ANA], Forbidden, "not an approver"),
    ("the away approver decided", approval(), DORA, {ANA: False}, [decision(ANA)], [ANA],
     Forbidden, "not an approver"),
    ("delegate of an approver of another step", approval(), DORA, {ANA: False}, [], [BEN],
     Forbidden, "not an approver"),
    ("delegate of the submitter", approval(), DORA, {SUBMITTER: False}, [], [SUBMITTER],
     Forbidden, "not an approver"),
]


@pytest.mark.parametrize(("case", "the_approval", "user", "assigned", "decided", "away_for",
                          "error", "says"), REFUSED, ids=[c[0] for c in REFUSED])
def test_capacity_refuses_with_the_reason(case, the_approval, user, assigned, decided,
                                          away_for, error, says):
    with pytest.raises(error, match=says):
        rules.capacity(the_approval, request(), user, assigned, decided, away_for)


@pytest.mark.parametrize(("actor", "expected"), [
    (Actor(user_id=SUBMITTER, username="sam"), True),
    (Actor(user_id=ANA, username="ana"), False),
    (Actor(user_id=ANA, username="ana", is_admin=True), True),
    (Actor.system_actor(), True),
    (Actor(user_id=None, username="anonymous"), False),
])
def test_may_recall(actor, expected):
    assert rules.may_recall(actor, request()) is expected


@pytest.mark.parametrize(("required", "decision_", "comment", "expected"), [
    (True, "reject", None, True),
    (True, "reject", "", True),
    (True, "reject", "too cheap", False),
    (True, "approve", None, False),                        # only a rejection needs one
    (False, "reject", None, False),
])
def test_comment_missing(required, decision_, comment, expected):
    assert bool(rules.comment_missing(approval(comment=required), decision_, comment)) \
        is expected


# (mode, assigned {user: escalated}, decisions, decider) -> complete
COMPLETE = [
    ("any: the first approval", "any", {ANA: False, BEN: False}, [decision(ANA)], ANA, True),
    ("all: one of two", "all", {ANA: False, BEN: False}, [decision(ANA)], ANA, False),
    ("all: both", "all", {ANA: False, BEN: False}, [decision(ANA), decision(BEN)], BEN, True),
    ("all: a delegate's approval counts for the away approver", "all",
     {ANA: False, BEN: False}, [decision(ANA), decision(DORA, on_behalf_of=BEN)], BEN, True),
    ("all: an escalation approver decides alone", "all", {ANA: False, BEN: False, CAL: True},
     [decision(CAL)], CAL, True),
    ("all: escalation approvers are not waited for", "all",
     {ANA: False, BEN: False, CAL: True}, [decision(ANA), decision(BEN)], BEN, True),
    ("all: a skipped row is no approval", "all", {ANA: False, BEN: False},
     [decision(ANA), decision(None, "skipped")], ANA, False),
]


@pytest.mark.parametrize(("case", "mode", "assigned", "decisions", "decider", "expected"),
                         COMPLETE, ids=[c[0] for c in COMPLETE])
def test_step_complete(case, mode, assigned, decisions, decider, expected):
    assert rules.step_complete(step(mode), assigned, decisions, decider) is expected


# (index, request status, request step, decisions on the step, when holds) -> state
STATES = [
    (0, rules.PENDING, 1, set(), True, "approved"),
    (1, rules.PENDING, 1, set(), True, "current"),
    (2, rules.PENDING, 1, set(), True, "waiting"),
    (2, rules.PENDING, 1, set(), False, "skipped"),        # its `when` is false
    (0, rules.PENDING, 1, {"skipped"}, True, "skipped"),
    (1, rules.REJECTED, 1, {"reject"}, True, "rejected"),
    (2, rules.REJECTED, 1, set(), True, "not reached"),
    (2, rules.RECALLED, 1, set(), True, "not reached"),
    (1, rules.APPROVED, 1, {"approve"}, True, "approved"),
    (1, rules.PENDING, 1, {"escalated"}, True, "current"),
]


@pytest.mark.parametrize(("index", "status", "current", "kinds", "holds", "expected"), STATES)
def test_step_state(index, status, current, kinds, holds, expected):
    asked: list[int] = []

    def applies() -> bool:
        asked.append(index)
        return holds

    assert rules.step_state(index, request(status, current), kinds, applies) == expected
    assert asked == ([index] if expected in ("waiting", "skipped") and not kinds else [])


@pytest.mark.parametrize(("after", "started", "expected"), [
    (None, NOW - timedelta(days=30), False),               # no escalate_after
    (3600, None, False),                                   # not started
    (3600, NOW - timedelta(minutes=59), False),
    (3600, NOW - timedelta(hours=1), True),                # exactly due
    (3600, NOW - timedelta(hours=5), True),
])
def test_escalation_due(after, started, expected):
    assert rules.escalation_due(step(escalate_after=after), started, NOW) is expected


@pytest.mark.parametrize(("names", "expected"), [
    (["Ana", "Ben"], "Undecided after 48h; escalated to Ana, Ben"),
    ([], "Undecided after 48h; nobody to escalate to, reminded the approvers"),
])
def test_escalation_note(names, expected):
    assert rules.escalation_note(step(escalate_after=48 * 3600), names) == expected
