"""Automations (SPEC §7): every trigger and action, assignment strategies, the loop guard,
rollback of a failing action, and scheduled runs that are idempotent per period."""

from __future__ import annotations

import functools
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from mail_support import queued_mail
from support import FIXTURES, admin_actor, insert_user

from builder.linker import build_model
from runtime.core.errors import RecordError
from runtime.core.instance import Actor
from runtime.process import automations, workflow
from runtime.process.automations import AutomationFailed, AutomationLoop, period_key
from runtime.read import timeline
from runtime.write import records

ROLES = """
roles:
  rep:     {label: Rep}
  manager: {label: Manager, inherits: [rep]}
"""
USER_EXT = """
extends: user
fields:
  region: {type: choice, options: [north, south]}
"""
LEAD = """
entity: lead
title_field: name
fields:
  name:    {type: text, required: true}
  region:  {type: choice, options: [north, south]}
  score:   {type: integer}
  touches: {type: integer}
  flag:    {type: boolean}
  note:    {type: text}
workflow:
  field: stage
  initial: new
  states:
    new:       {label: New}
    qualified: {label: Qualified}
    won:       {label: Won, final: true}
    lost:      {label: Lost, final: true}
  transitions:
    qualify: {from: new, to: qualified}
    win:     {from: qualified, to: won}
    drop:    {from: [new, qualified], to: lost, roles: []}
permissions:
  rep: {read: true, create: true, update: true, delete: true}
"""
TASK = """
entity: task
title_field: subject
fields:
  subject:  {type: text, required: true}
  assignee: {type: link, to: user}
  lead:     {type: link, to: lead, on_delete: set_null}
permissions:
  rep: {read: true, create: true, update: true, delete: true}
"""
SYSTEM = Actor.system_actor()


@pytest.fixture
def make(make_instance, pack):
    """`make(AUTOMATIONS_YAML)`: an instance with lead/task and those lead automations."""
    def factory(automations_yaml: str = "automations: {}\n"):
        body = textwrap.dedent(automations_yaml)
        files = {"roles.yaml": ROLES, "entities/user.yaml": USER_EXT,
                 "entities/lead.yaml": LEAD, "entities/task.yaml": TASK}
        if body.strip() != "automations: {}":
            files["automations/test.yaml"] = body
        inst = make_instance(pack(files))
        return inst
    return factory


def lead(inst, **values):
    values.setdefault("name", "Acme")
    return records.create(inst, admin_actor(inst), "lead", values)


def get(inst, entity, record_id):
    return records.get(inst, admin_actor(inst), entity, record_id)


def rows(inst, entity):
    table = inst.schema.table(entity)
    with inst.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def notifications(inst):
    table = inst.schema.system("notification")
    with inst.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def update(inst, record, actor=None, **values):
    actor = actor or admin_actor(inst)
    current = get(inst, "lead", record["id"])
    return records.update(inst, actor, "lead", record["id"], values,
                          version=current["version"])


# -- triggers ---------------------------------------------------------------------------------

def test_on_create_set(make):
    inst = make("""
        automations:
          score_new:
            entity: lead
            on: create
            when: "region == 'north'"
            do:
              - set: {score: "=len(name) * 10", flag: true, note: "Hello {name}"}
    """)
    north = lead(inst, name="Acme", region="north")
    assert (north["score"], north["flag"], north["note"]) == (40, True, "Hello Acme")
    south = lead(inst, name="Acme", region="south")
    assert south["score"] is None and south["version"] == 1


def test_on_update_sees_old(make):
    inst = make("""
        automations:
          region_moved:
            entity: lead
            on: update
            when: "old.region != region"
            do:
              - create: {entity: task, values: {subject: "{name}: {old.region} -> {region}",
                                                lead: "=id"}}
    """)
    record = lead(inst, region="north")
    update(inst, record, note="only a note")
    assert rows(inst, "task") == []
    update(inst, record, region="south")
    (task,) = rows(inst, "task")
    assert task["subject"] == "Acme: north -> south" and task["lead"] == record["id"]


def test_on_delete_notifies(make):
    inst = make("""
        automations:
          gone:
            entity: lead
            on: delete
            do:
              - notify: {to: {role: manager}, subject: "Deleted", message: "{name} was deleted"}
    """)
    boss = insert_user(inst, "boss", roles=["manager"])
    insert_user(inst, "rep", roles=["rep"])
    record = lead(inst, name="Old lead")
    records.delete(inst, admin_actor(inst), "lead", record["id"])
    (note,) = notifications(inst)
    assert note["user_id"] == boss.user_id and note["body"] == "Old lead was deleted"
    assert note["subject"] == "Deleted" and note["link"] is None


def test_on_transition_and_update(make):
    inst = make("""
        automations:
          won:
            entity: lead
            on: {transition: win}
            do:
              - create: {entity: task, values: {subject: "Invoice {name}", assignee: "=owner"}}
              - notify: {to: {field: owner}, subject: "Won: {name}", message: "Well done"}
          any_change:
            entity: lead
            on: update
            when: "stage != old.stage"
            do:
              - set: {note: "moved to {stage}"}
    """)
    rep = insert_user(inst, "rep", roles=["rep"])
    record = lead(inst, owner=rep.user_id)
    workflow.fire(inst, rep, "lead", record["id"], "qualify")
    assert get(inst, "lead", record["id"])["note"] == "moved to qualified"
    assert rows(inst, "task") == []
    workflow.fire(inst, rep, "lead", record["id"], "win")
    (task,) = rows(inst, "task")
    assert task["subject"] == "Invoice Acme" and task["assignee"] == rep.user_id
    (note,) = notifications(inst)
    assert note["user_id"] == rep.user_id and note["subject"] == "Won: Acme"
    assert note["link"] == f"/e/lead/{record['id']}"
    assert get(inst, "lead", record["id"])["note"] == "moved to won"


# -- actions ----------------------------------------------------------------------------------

def test_notify_defaults_to_the_owner_and_sends_mail_after_commit(make):
    inst = make("""
        automations:
          hello:
            entity: lead
            on: create
            do:
              - notify: {message: "New lead {name} in {region}"}
    """)
    rep = insert_user(inst, "rep", roles=["rep"], email="rep@example.com")
    lead(inst, owner=rep.user_id, region="north")
    (note,) = notifications(inst)
    assert note["user_id"] == rep.user_id and note["subject"] == "New lead Acme in north"
    (mail,) = queued_mail(inst)
    assert mail["to_address"] == "rep@example.com" and "New lead Acme" in mail["body_text"]


def test_transition_action_may_fire_a_transition_without_roles(make):
    inst = make("""
        automations:
          hopeless:
            entity: lead
            on: update
            when: "score != null and score < 0 and stage != 'lost'"
            do:
              - transition: drop
    """)
    record = lead(inst)
    with pytest.raises(RecordError):  # by hand, `drop` (roles: []) is refused
        workflow.fire(inst, admin_actor(inst), "lead", record["id"], "drop")
    update(inst, record, score=-5)
    assert get(inst, "lead", record["id"])["stage"] == "lost"
    moves = [e for e in timeline.entries(inst, admin_actor(inst), "lead", record["id"])
             if e["kind"] == "transition"]
    assert moves[0]["data"]["transition"] == "drop" and "Hopeless" in moves[0]["body"]


ROUND_ROBIN = """
    automations:
      route:
        entity: lead
        on: create
        when: "owner == null"
        do:
          - assign: {field: owner, among: {role: rep}, strategy: round_robin, match: region}
"""


def test_assign_round_robin_by_region(make):
    inst = make(ROUND_ROBIN)
    n1 = insert_user(inst, "n1", roles=["rep"], region="north")
    s1 = insert_user(inst, "s1", roles=["rep"], region="south")
    n2 = insert_user(inst, "n2", roles=["manager"], region="north")  # inherits rep
    n3 = insert_user(inst, "n3", roles=["rep"], region="north")
    users = inst.schema.table("user")
    with inst.engine.begin() as conn:  # inactive users are never chosen
        conn.execute(users.update().where(users.c.id == n3.user_id).values(active=False))
    owners = [lead(inst, region="north", owner=None)["owner"] for _ in range(5)]
    assert owners == [n1.user_id, n2.user_id, n1.user_id, n2.user_id, n1.user_id]
    assert lead(inst, region="south", owner=None)["owner"] == s1.user_id
    assert lead(inst, region="north", owner=None)["owner"] == n2.user_id  # cursor kept
    assert lead(inst, region="north", owner=s1.user_id)["owner"] == s1.user_id  # when false


def test_assign_with_nobody_to_choose_leaves_it_and_says_why(make):
    inst = make(ROUND_ROBIN)
    insert_user(inst, "s1", roles=["rep"], region="south")
    record = lead(inst, region="north", owner=None)
    assert record["owner"] is None
    notes = [e for e in timeline.entries(inst, admin_actor(inst), "lead", record["id"])
             if e["kind"] == "automation"]
    assert "nobody to assign" in notes[0]["body"]
    assert lead(inst, owner=None)["owner"] is None  # no region: nobody matches


def test_assign_least_loaded_counts_open_records_only(make):
    inst = make("""
        automations:
          route:
            entity: lead
            on: create
            when: "owner == null"
            do:
              - assign: {field: owner, among: {role: rep}, strategy: least_loaded}
    """)
    a = insert_user(inst, "a", roles=["rep"])
    b = insert_user(inst, "b", roles=["rep"])
    for _ in range(2):
        lead(inst, owner=a.user_id)
    lead(inst, owner=b.user_id)
    for _ in range(3):  # won leads are final: they do not count
        won = lead(inst, owner=b.user_id)
        records.update(inst, SYSTEM, "lead", won["id"], {}, version=None, transition="qualify")
        records.update(inst, SYSTEM, "lead", won["id"], {}, version=None, transition="win")
    assert lead(inst, owner=None)["owner"] == b.user_id  # a: 2 open, b: 1 open
    assert lead(inst, owner=None)["owner"] == a.user_id  # 2 and 2: the lower id


def test_assign_among_a_team(make, make_team):
    inst = make("""
        automations:
          route:
            entity: lead
            on: create
            when: "owner == null"
            do:
              - assign: {field: owner, among: {team: Inside sales}}
    """)
    team = make_team(inst, "Inside sales")
    insert_user(inst, "outsider", roles=["rep"])
    t1 = insert_user(inst, "t1", team=team)
    t2 = insert_user(inst, "t2", team=team)
    assert [lead(inst, owner=None)["owner"] for _ in range(3)] == [
        t1.user_id, t2.user_id, t1.user_id]


# -- loops and failures -----------------------------------------------------------------------

def test_an_automation_triggering_itself_forever_is_refused(make):
    inst = make("""
        automations:
          count_touches:
            entity: lead
            on: update
            do:
              - set: {touches: "=coalesce(touches, 0) + 1"}
    """)
    record = lead(inst)
    with pytest.raises(AutomationLoop) as info:
        update(inst, record, note="touch")
    assert "loop" in info.value.message and info.value.status == 409
    after = get(inst, "lead", record["id"])
    assert after["note"] is None and after["touches"] is None and after["version"] == 1


def test_a_set_that_changes_nothing_ends_the_chain(make):
    inst = make("""
        automations:
          mark:
            entity: lead
            on: update
            do:
              - set: {flag: true}
    """)
    record = lead(inst)
    after = update(inst, record, note="x")
    assert after["flag"] is True and after["version"] == 3  # the edit, then the automation


def test_a_failing_action_rolls_back_the_whole_change(make):
    inst = make("""
        automations:
          follow_up:
            entity: lead
            label: Follow-up task
            on: create
            do:
              - set: {score: 1}
              - create: {entity: task, values: {subject: "=note"}}
    """)
    with pytest.raises(AutomationFailed) as info:
        lead(inst, name="No note")
    message = info.value.message
    assert "Follow-up task" in message and "action 2 (create task)" in message
    assert "subject" in message and "Nothing was saved" in message
    assert rows(inst, "lead") == [] and rows(inst, "task") == []
    assert lead(inst, name="With note", note="Call back")["score"] == 1
    assert [t["subject"] for t in rows(inst, "task")] == ["Call back"]


def test_install_hooks_is_idempotent(make):
    inst = make()
    assert inst.hooks.after_write.count(automations.after_write) == 1
    automations.install_hooks(inst)
    assert inst.hooks.after_write.count(automations.after_write) == 1


# -- scheduled --------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule, now, key", [
    ("hourly", datetime(2026, 11, 23, 14, 59), "2026-11-23T14"),
    ("daily", datetime(2026, 11, 23, 0, 0), "2026-11-23"),
    ("weekly", datetime(2026, 11, 23, 14, 0), "2026-W48"),
    ("weekly", datetime(2027, 1, 1, 9, 0), "2026-W53"),
    ("0 8 * * 1", datetime(2026, 11, 23, 8, 0), "2026-11-23T08:00"),
    ("0 8 * * 1", datetime(2026, 11, 25, 17, 30), "2026-11-23T08:00"),
    ("*/15 * * * *", datetime(2026, 11, 23, 14, 44, 59), "2026-11-23T14:30"),
    ("0 0 29 2 *", datetime(2026, 11, 23, 8, 0), None),  # not in the last eight days
])
def test_period_key(schedule, now, key):
    assert period_key(schedule, now) == key


def scheduled(inst, name):
    (automation,) = [a for a in inst.model.automations if a.name == name]
    return automation


def test_daily_runs_once_per_day(make, clock):
    inst = make("""
        automations:
          tick:
            entity: lead
            on: {schedule: daily}
            where: "score >= 10"
            do:
              - set: {touches: "=coalesce(touches, 0) + 1"}
    """)
    hot = lead(inst, score=10)
    cold = lead(inst, score=1)
    automation = scheduled(inst, "tick")
    first = automations.run_scheduled(inst, automation, clock())
    assert (first.period, first.selected, first.done) == ("2026-03-02", 1, 1)
    clock.advance(hours=5)
    again = automations.run_scheduled(inst, automation, clock())
    assert again.complete_before and again.done == 0
    assert get(inst, "lead", hot["id"])["touches"] == 1
    assert get(inst, "lead", cold["id"])["touches"] is None
    clock.advance(days=1)
    assert automations.run_scheduled(inst, automation, clock()).done == 1
    assert get(inst, "lead", hot["id"])["touches"] == 2


def test_hourly_and_cron_periods(make, clock):
    inst = make("""
        automations:
          hourly:
            entity: lead
            on: {schedule: hourly}
            do:
              - set: {touches: "=coalesce(touches, 0) + 1"}
          monday:
            entity: lead
            on: {schedule: "0 8 * * 1"}
            do:
              - set: {score: "=coalesce(score, 0) + 1"}
    """)
    record = lead(inst)
    for minutes in (0, 10, 50, 61, 65, 130):
        at = clock() + timedelta(minutes=minutes)
        automations.run_due(inst, at)
    after = get(inst, "lead", record["id"])
    assert after["touches"] == 3  # 09:xx, 10:xx, 11:xx
    assert after["score"] == 1  # Monday 08:00 fired once
    automations.run_due(inst, clock() + timedelta(days=6, hours=23))  # Monday 08:00 next
    assert get(inst, "lead", record["id"])["score"] == 2


def test_return_to_pool_as_in_the_spec(make, clock):
    inst = make("""
        automations:
          return_to_pool:
            entity: lead
            on: {schedule: daily}
            where: "owner != null and days_since(coalesce(last_activity_at, created_at)) >= 7"
            do:
              - set: {owner: null}
              - create: {entity: task, values: {subject: "Lead returned: {name}",
                                                assignee: "=old.owner"}}
              - notify: {to: {role: manager}, message: "{name} went back to the pool"}
    """)
    rep = insert_user(inst, "rep", roles=["rep"])
    boss = insert_user(inst, "boss", roles=["manager"])
    stale = lead(inst, name="Stale", owner=rep.user_id)
    clock.advance(days=5)
    fresh = lead(inst, name="Fresh", owner=rep.user_id)
    clock.advance(days=2)
    report = automations.run_scheduled(inst, scheduled(inst, "return_to_pool"))
    assert report.done == 1
    assert get(inst, "lead", stale["id"])["owner"] is None
    assert get(inst, "lead", fresh["id"])["owner"] == rep.user_id
    (task,) = rows(inst, "task")
    assert task["subject"] == "Lead returned: Stale" and task["assignee"] == rep.user_id
    assert [(n["user_id"], n["body"]) for n in notifications(inst)] == [
        (boss.user_id, "Stale went back to the pool")]


def test_schedule_when_filters_in_python(make, clock):
    inst = make("""
        automations:
          north_only:
            entity: lead
            on: {schedule: daily}
            when: "region == 'north'"
            do:
              - set: {flag: true}
    """)
    north, south = lead(inst, region="north"), lead(inst, region="south")
    report = automations.run_scheduled(inst, scheduled(inst, "north_only"), clock())
    assert (report.selected, report.done, report.skipped) == (2, 1, 1)
    assert get(inst, "lead", north["id"])["flag"] is True
    assert get(inst, "lead", south["id"])["flag"] is None


def test_a_failing_record_is_rolled_back_alone_and_retried_next_period(make, clock):
    inst = make("""
        automations:
          remind:
            entity: lead
            on: {schedule: daily}
            do:
              - set: {flag: true}
              - create: {entity: task, values: {subject: "=note", lead: "=id"}}
    """)
    good = lead(inst, note="Call")
    bad = lead(inst)
    automation = scheduled(inst, "remind")
    report = automations.run_scheduled(inst, automation, clock())
    assert report.done == 1 and [rid for rid, _ in report.failed] == [bad["id"]]
    assert "subject" in report.failed[0][1]
    assert get(inst, "lead", good["id"])["flag"] is True
    assert get(inst, "lead", bad["id"])["flag"] is None
    assert automations.run_scheduled(inst, automation, clock()).complete_before
    update(inst, bad, note="Fixed")
    clock.advance(days=1)
    report = automations.run_scheduled(inst, automation, clock())
    assert report.failed == [] and report.done == 2
    assert len(rows(inst, "task")) == 3


def test_a_run_cut_short_finishes_where_it_stopped(make, clock):
    inst = make("""
        automations:
          count:
            entity: lead
            on: {schedule: daily}
            do:
              - set: {touches: "=coalesce(touches, 0) + 1"}
    """)
    first, second = lead(inst), lead(inst)
    runs = inst.schema.system("schedule_run")
    with inst.engine.begin() as conn:  # as if the worker died after the first record
        conn.execute(runs.insert().values(automation="lead.count", period="2026-03-02",
                                          record_id=first["id"], at=clock()))
    report = automations.run_scheduled(inst, scheduled(inst, "count"), clock())
    assert report.done == 1
    assert get(inst, "lead", first["id"])["touches"] is None
    assert get(inst, "lead", second["id"])["touches"] == 1


def test_scheduled_transition(make, clock):
    inst = make("""
        automations:
          expire:
            entity: lead
            on: {schedule: hourly}
            where: "stage == 'new' and days_since(created_at) >= 30"
            do:
              - transition: drop
    """)
    old = lead(inst)
    clock.advance(days=29)
    young = lead(inst)
    clock.advance(days=1)
    automations.run_due(inst)
    assert get(inst, "lead", old["id"])["stage"] == "lost"
    assert get(inst, "lead", young["id"])["stage"] == "new"


# -- the SPEC fixture -------------------------------------------------------------------------

def test_spec_commission_on_accept_and_expire_offers(make_instance, clock):
    inst = make_instance([FIXTURES / "core", FIXTURES / "spec"])
    admin = admin_actor(inst)
    agent = insert_user(inst, "anna", roles=["agent"])
    home = records.create(inst, admin, "property", {"title": "Flat", "price": "100000"})
    buyer = records.create(inst, admin, "contact", {"first_name": "A", "last_name": "B"})

    def offer(amount):
        return records.create(inst, admin, "offer", {
            "property": home["id"], "buyer": buyer["id"], "amount": amount,
            "owner": agent.user_id})

    accepted = offer("99000")
    result = workflow.fire(inst, agent, "offer", accepted["id"], "accept")
    assert result.status == 200
    (commission,) = rows(inst, "commission")
    assert commission["offer"] == accepted["id"] and str(commission["amount"]) == "2970.00"
    assert [n["subject"] for n in notifications(inst)] == ["Offer accepted"]

    waiting = offer("98000")
    clock.advance(days=8)  # valid_until was today + 7
    automations.run_due(inst)
    assert get(inst, "offer", waiting["id"])["status"] == "expired"
    assert get(inst, "offer", accepted["id"])["status"] == "accepted"


# -- the shipped packs ------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def shipped_model():
    root = Path(__file__).parent.parent / "verticals"
    return build_model(sorted(p for p in root.iterdir() if (p / "pack.yaml").exists()))


@pytest.mark.slow
def test_every_shipped_schedule_runs_on_an_empty_database(make_instance):
    inst = make_instance(shipped_model())
    found = automations.scheduled(inst)
    assert found, "the shipped packs have scheduled automations"
    monday = datetime(2026, 3, 2, 8, 0)
    for automation in found:  # every cron expression is one Huey accepts
        schedule = automation.trigger.schedule
        if schedule not in ("hourly", "daily", "weekly"):
            assert automations.cron_matches(schedule, monday) in (True, False)
    reports = automations.run_due(inst)
    assert [r.failed for r in reports if r.failed] == []
