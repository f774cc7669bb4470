"""The worker: Huey on SQLite storage (the default) and on Redis (skipped visibly when no server
answers on 127.0.0.1:6379), the minute tick, scheduled automations and escalation through the
queue, idempotency, and surviving a restart."""

from __future__ import annotations

import textwrap
import uuid
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from huey import RedisHuey, SqliteHuey
from support import admin_actor, insert_user
from workflow_pack import deal_pack, new_deal, people

from runtime.ops import cli
from runtime.ops import worker as worker_module
from runtime.ops.worker import Worker, make_huey, queue_url
from runtime.process import approvals, workflow
from runtime.write import records

REDIS_URL = "redis://127.0.0.1:6379/15"

LEAD = """
entity: lead
title_field: name
fields:
  name:    {type: text, required: true}
  touches: {type: integer}
automations:
  daily_touch:
    on: {schedule: daily}
    do:
      - set: {touches: "=coalesce(touches, 0) + 1"}
  monday_touch:
    on: {schedule: "0 8 * * 1"}
    do:
      - set: {touches: "=coalesce(touches, 0) + 10"}
"""


def redis_huey() -> RedisHuey:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        pytest.skip(f"Redis not reachable at {REDIS_URL} ({type(exc).__name__}: {exc})")
    return make_huey(REDIS_URL, name=f"crmforge-test-{uuid.uuid4().hex[:8]}")


@pytest.fixture(params=["sqlite", "redis"])
def queue(request, tmp_path):
    """(kind, a function that makes a Huey on the same storage — call it again to "restart")."""
    if request.param == "sqlite":
        path = tmp_path / "queue.db"
        yield "sqlite", lambda: make_huey(f"sqlite:///{path}")
        return
    first = redis_huey()
    name = first.name
    yield "redis", lambda: make_huey(REDIS_URL, name=name)
    first.storage.flush_all()


@pytest.fixture
def leads(make_instance, pack):
    inst = make_instance(pack({"entities/lead.yaml": textwrap.dedent(LEAD)}))
    return inst


def touches(inst, record):
    return records.get(inst, admin_actor(inst), "lead", record["id"])["touches"]


# -- the queue --------------------------------------------------------------------------------

@pytest.mark.parametrize("url, kind", [
    ("sqlite:///{tmp}/q/queue.db", SqliteHuey),
    ("redis://127.0.0.1:6379/15", RedisHuey),
])
def test_make_huey_picks_the_storage(tmp_path, url, kind):
    huey = make_huey(url.format(tmp=tmp_path))
    assert isinstance(huey, kind)
    if kind is SqliteHuey:
        assert (tmp_path / "q" / "queue.db").exists()


def test_queue_url_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("CRMFORGE_QUEUE_URL", raising=False)
    assert queue_url(None, tmp_path) == f"sqlite:///{tmp_path / 'queue.db'}"
    monkeypatch.setenv("CRMFORGE_QUEUE_URL", "redis://example:6379/2")
    assert queue_url(None, tmp_path) == "redis://example:6379/2"
    assert queue_url("sqlite:///x.db") == "sqlite:///x.db"
    with pytest.raises(ValueError, match="redis:// or sqlite:///"):
        make_huey("amqp://nope")


def test_the_tick_is_a_periodic_task_every_minute(tmp_path, leads):
    huey = make_huey(f"sqlite:///{tmp_path / 'queue.db'}")
    Worker(huey, lambda: leads)
    for minute in (datetime(2026, 3, 2, 9, 0), datetime(2026, 3, 2, 23, 59)):
        assert [t.name for t in huey.read_periodic(minute)] == ["crmforge.tick"]


# -- scheduled automations through the queue --------------------------------------------------

def test_scheduled_automations_run_once_per_period(queue, leads, clock):
    _kind, make = queue
    inst = leads
    record = records.create(inst, admin_actor(inst), "lead", {"name": "Acme"})
    worker = Worker(make(), lambda: inst)
    assert sorted(worker.due()) == ["lead.daily_touch", "lead.monday_touch"]
    ran = worker.run_once()
    assert ran == 6  # the tick, two automations, escalation, due mail, due webhooks
    assert touches(inst, record) == 11
    assert worker.due() == []
    worker.run_once()
    clock.advance(hours=3)
    worker.run_once()
    assert touches(inst, record) == 11  # same day, same Monday firing: nothing twice
    clock.advance(days=1)
    assert worker.due() == ["lead.daily_touch"]
    worker.run_once()
    assert touches(inst, record) == 12


def test_queued_work_survives_a_restart(queue, leads):
    _kind, make = queue
    inst = leads
    record = records.create(inst, admin_actor(inst), "lead", {"name": "Acme"})
    before = Worker(make(), lambda: inst)
    before.tick()  # queued, then the worker stops before running it
    assert before.huey.pending_count() == 1
    after = Worker(make(), lambda: inst)  # a new process on the same queue
    assert after.huey.pending_count() == 1
    assert after.run_pending() == 6
    assert touches(inst, record) == 11
    # the state is in the database: a third start finds nothing left to do
    third = Worker(make(), lambda: inst)
    assert third.due() == []


def test_a_run_interrupted_half_way_is_finished_by_the_next_tick(tmp_path, leads):
    inst = leads
    first = records.create(inst, admin_actor(inst), "lead", {"name": "A"})
    second = records.create(inst, admin_actor(inst), "lead", {"name": "B"})
    runs = inst.schema.system("schedule_run")
    with inst.engine.begin() as conn:  # the first record was done when the worker died
        conn.execute(runs.insert().values(automation="lead.daily_touch", period="2026-03-02",
                                          record_id=first["id"], at=inst.now()))
    worker = Worker(make_huey(f"sqlite:///{tmp_path / 'queue.db'}"), lambda: inst)
    worker.run_once()
    assert touches(inst, first) == 10 and touches(inst, second) == 11


def test_the_worker_escalates_approvals(queue, make_instance, pack, clock):
    _kind, make = queue
    inst = make_instance(deal_pack(pack))
    p = people(inst)
    deal = new_deal(inst, p, stage="review", discount="15", reason="x")
    request = workflow.fire(inst, p.mia, "deal", deal["id"], "win").approval
    worker = Worker(make(), lambda: inst)
    worker.run_once()
    assert approvals.inbox(inst, p.dan) == []
    clock.advance(hours=48)
    worker.run_once()
    assert [r["id"] for r in approvals.inbox(inst, p.dan)] == [request["id"]]


# -- the command ------------------------------------------------------------------------------

def test_crmforge_worker_once(monkeypatch, tmp_path, leads, capsys):
    inst = leads
    record = records.create(inst, admin_actor(inst), "lead", {"name": "Acme"})
    monkeypatch.setattr(worker_module, "open_instance", lambda url: inst)
    code = cli.main(["worker", "--once", "--queue-url", f"sqlite:///{tmp_path / 'q.db'}"])
    assert code == 0 and "ran 6 task(s)" in capsys.readouterr().out
    assert touches(inst, record) == 11


def test_worker_is_in_the_cli_help():
    parser = cli.build_parser()
    args = parser.parse_args(["worker", "--workers", "3"])
    assert args.command == "worker" and args.workers == 3 and not args.once


def test_notifications_of_scheduled_automations(make_instance, pack, tmp_path):
    inst = make_instance(pack({"roles.yaml": "roles:\n  boss: {label: Boss}\n",
                               "entities/lead.yaml": textwrap.dedent("""
        entity: lead
        fields:
          name: {type: text, required: true}
        automations:
          digest:
            on: {schedule: hourly}
            do:
              - notify: {to: {role: boss}, message: "Still open: {name}"}
        """)}))
    boss = insert_user(inst, "boss", roles=["boss"])
    records.create(inst, admin_actor(inst), "lead", {"name": "Acme"})
    worker = Worker(make_huey(f"sqlite:///{tmp_path / 'queue.db'}"), lambda: inst)
    worker.run_once()
    worker.run_once()
    notes = inst.schema.system("notification")
    with inst.engine.connect() as conn:
        bodies = conn.execute(sa.select(notes.c.body).where(
            notes.c.user_id == boss.user_id)).scalars().all()
    assert bodies == ["Still open: Acme"]


WINDOWED = {"entities/desk.yaml": """
entity: desk
title_field: name
fields:
  name: {type: text, required: true}
  overdue: {type: integer, rollup: {from: job.desk, op: count, where: "due_on < today()"}}
  late: {type: boolean, formula: "overdue > 0"}
""", "entities/job.yaml": """
entity: job
fields:
  desk: {type: link, to: desk, required: true}
  due_on: {type: date, required: true}
"""}


def test_rollups_over_a_moving_window_are_refreshed_once_a_day(queue, make_instance, pack,
                                                                clock):
    """`where: "due_on < today()"` changes as days pass, with no child written: the worker's
    tick refreshes such rollups (and the formulas over them) once per day."""
    _kind, make = queue
    inst = make_instance(pack(WINDOWED))
    actor = admin_actor(inst)
    desk = records.create(inst, actor, "desk", {"name": "Front"})
    records.create(inst, actor, "job", {"desk": desk["id"],
                                        "due_on": (inst.today() + timedelta(days=1)).isoformat()})
    worker = Worker(make(), lambda: inst)
    worker.run_once()
    assert records.get(inst, actor, "desk", desk["id"])["overdue"] == 0
    clock.advance(days=2)
    assert records.get(inst, actor, "desk", desk["id"])["overdue"] == 0  # stale until the tick
    assert worker.run_once() == 5  # the tick, escalation, mail, webhooks, the refresh
    after = records.get(inst, actor, "desk", desk["id"])
    assert after["overdue"] == 1 and after["late"] is True
    assert worker.run_once() == 4  # the same day: not again
