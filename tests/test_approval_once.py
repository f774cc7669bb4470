"""One open approval per record, held by the database (issue 12, defect 1): parallel
submissions of a transition that needs an approval open exactly one request — the record row is
locked while the transition is checked, and a unique partial index over the pending requests
refuses a second one — and the others get the one 409 answer. `crmforge migrate` adds that
index to an instance made before it, and says what to do when a database already holds
duplicates."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from api_support import assert_error_shape, bearer, make_app
from support import run_together
from workflow_pack import deal_pack, new_deal, people

from runtime.core.errors import AwaitingApproval
from runtime.http.auth import create_token
from runtime.process import approvals, migrate, workflow

THREADS = 12
INDEX = "uq_crm_approval_request_pending"


@pytest.fixture
def env(make_instance, pack, tmp_path):
    inst = make_instance(deal_pack(pack))
    return inst, people(inst), tmp_path


def pending_rows(inst, deal_id: int) -> list[dict]:
    requests = inst.schema.system("approval_request")
    with inst.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(requests).where(
            requests.c.entity == "deal", requests.c.record_id == deal_id,
            requests.c.status == approvals.PENDING)).mappings()]


def test_parallel_submissions_over_http_open_one_request(env):
    inst, p, tmp_path = env
    deal = new_deal(inst, p, stage="review", reason="signed", discount="25")
    app = make_app(inst, tmp_path)
    headers = bearer(create_token(inst, p.mia.user_id))

    def work(index: int) -> Any:
        response = app.test_client().post(f"/api/v1/deal/{deal['id']}/transitions/win",
                                          json={"comment": f"try {index}"}, headers=headers)
        return response

    answers = run_together(THREADS, work)
    assert not [a for a in answers if isinstance(a, Exception)], answers
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] + [409] * (THREADS - 1), [a.get_json() for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            body = assert_error_shape(answer, 409)
            assert "waiting for an approval" in body["error"]["message"]
    (row,) = pending_rows(inst, deal["id"])
    (accepted,) = [a for a in answers if a.status_code == 202]
    assert accepted.get_json()["approval"]["id"] == row["id"]


def test_parallel_submissions_in_python_open_one_request(env):
    inst, p, _ = env
    deal = new_deal(inst, p, stage="review", reason="signed", discount="25")

    def work(index: int) -> Any:
        return workflow.fire(inst, p.mia, "deal", deal["id"], "win")

    results = run_together(THREADS, work)
    opened = [r for r in results if isinstance(r, workflow.Result)]
    refused = [r for r in results if isinstance(r, AwaitingApproval)]
    assert len(opened) == 1 and len(refused) == THREADS - 1, results
    assert opened[0].status == 202 and len(pending_rows(inst, deal["id"])) == 1


def test_the_database_refuses_a_second_pending_request(env):
    """Even a writer that skips the checks cannot add a second pending request for a record;
    decided requests may pile up."""
    inst, p, _ = env
    deal = new_deal(inst, p, stage="review", reason="signed", discount="25")
    workflow.fire(inst, p.mia, "deal", deal["id"], "win")
    requests = inst.schema.system("approval_request")
    (row,) = pending_rows(inst, deal["id"])
    copy = {k: v for k, v in row.items() if k != "id"}
    with pytest.raises(sa.exc.IntegrityError), inst.engine.begin() as conn:
        conn.execute(requests.insert().values(**copy))
    with inst.engine.begin() as conn:
        conn.execute(requests.insert().values(**{**copy, "status": approvals.RECALLED}))
        conn.execute(requests.insert().values(**{**copy, "status": approvals.REJECTED}))
    assert len(pending_rows(inst, deal["id"])) == 1


def test_open_request_turns_the_index_into_the_409(env):
    """The last line of defence: when the unique index refuses the insert (a check that raced),
    the answer is the same AwaitingApproval, and the caller's transaction stays usable."""
    inst, p, _ = env
    deal = new_deal(inst, p, stage="review", reason="signed", discount="25")
    workflow.fire(inst, p.mia, "deal", deal["id"], "win")
    ent = inst.model.entities["deal"]
    transition = ent.workflow.transitions["win"]
    approval = ent.approvals["big_discount"]
    requests = inst.schema.system("approval_request")
    with inst.engine.begin() as conn:
        record = conn.execute(sa.select(inst.schema.table("deal")).where(
            inst.schema.table("deal").c.id == deal["id"])).mappings().one()
        with pytest.raises(AwaitingApproval):
            approvals.open_request(inst, conn, p.mia, "deal", dict(record), transition,
                                   approval)
        assert conn.execute(sa.select(sa.func.count()).select_from(requests)).scalar() == 1


# -- an instance made before the index --------------------------------------------------------


def drop_pending_index(inst) -> None:
    with inst.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP INDEX {INDEX}")


def add_pending(inst, deal_id: int, count: int) -> list[int]:
    """`count` pending requests for one deal, as a database before the index could hold."""
    requests = inst.schema.system("approval_request")
    with inst.engine.begin() as conn:
        return [conn.execute(requests.insert().values(
            entity="deal", record_id=deal_id, approval="big_discount", transition="win",
            from_state="review", status=approvals.PENDING, step_index=0,
            submitted_at=inst.now(), version=1).returning(requests.c.id)).scalar_one()
            for _ in range(count)]


def test_migrate_adds_the_index_as_a_safe_step(env):
    inst, p, _ = env
    deal = new_deal(inst, p, stage="review", reason="signed", discount="25")
    drop_pending_index(inst)
    add_pending(inst, deal["id"], 1)
    plan = migrate.plan(inst.model, inst.engine)
    assert [(op.kind, op.safety) for op in plan.ops] == [("add_index", "safe")]
    assert plan.lines() == [
        f"[safe] add unique index {INDEX} on crm_approval_request (entity, record_id) "
        "where status = 'pending'"]
    migrate.apply(plan, inst.engine)
    assert migrate.plan(inst.model, inst.engine).empty
    with pytest.raises(sa.exc.IntegrityError):
        add_pending(inst, deal["id"], 1)


def test_migrate_with_duplicates_says_what_to_do(env):
    inst, p, _ = env
    deal = new_deal(inst, p, stage="review", reason="signed", discount="25")
    drop_pending_index(inst)
    ids = add_pending(inst, deal["id"], 3)
    plan = migrate.plan(inst.model, inst.engine)
    assert [(op.kind, op.safety) for op in plan.ops] == [("add_index", "needs-data")]
    with pytest.raises(migrate.MigrationRefused) as info:
        migrate.apply(plan, inst.engine)
    text = str(info.value)
    assert "nothing was changed" in text and f"(deal, {deal['id']})" in text
    assert "recall all but one" in text and "/api/v1/approvals/<id>/recall" in text
    # done as it says: the extra requests recalled, the migration goes through
    for request_id in ids[1:]:
        approvals.recall(inst, p.admin, request_id)
    plan = migrate.plan(inst.model, inst.engine)
    assert [(op.kind, op.safety) for op in plan.ops] == [("add_index", "safe")]
    migrate.apply(plan, inst.engine)
    assert migrate.plan(inst.model, inst.engine).empty
