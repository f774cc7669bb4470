"""The workflow on the web pages: the state bar and transition forms of the record page, the
approval panel, the /approvals inbox, and the notification bell — all with plain forms."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from web_support import make_app, sign_in, token_of
from workflow_pack import deal_pack, new_deal, people

from runtime.process import approvals, workflow
from runtime.write import records


@pytest.fixture
def env(make_instance, pack, tmp_path):
    inst = make_instance(deal_pack(pack))
    p = people(inst)
    app = make_app(inst, tmp_path)
    return inst, p, app


def client_for(app, inst, actor):
    client = app.test_client()
    sign_in(client, inst, actor)
    return client


def page(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:800]
    return response.get_data(as_text=True)


def test_record_page_shows_states_and_the_steps_i_may_take(env):
    inst, p, app = env
    deal = new_deal(inst, p)
    html = page(client_for(app, inst, p.rita), f"/e/deal/{deal['id']}")
    assert 'class="state-steps"' in html and 'aria-current="step">Draft' in html
    assert f'/e/deal/{deal["id"]}/transitions/submit' in html
    # `lose` needs a reason: offered with an input for it; `archive` (automations) is not
    assert 'name="value.reason"' in html
    assert "/transitions/archive" not in html and "/transitions/win" not in html


def test_firing_from_the_page(env):
    inst, p, app = env
    deal = new_deal(inst, p)
    client = client_for(app, inst, p.rita)
    path = f"/e/deal/{deal['id']}"
    token = token_of(client, path)
    answer = client.post(f"{path}/transitions/submit", data={
        "csrf_token": token, "comment": "ready", "version": deal["version"]})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(path)
    html = page(client, path)
    assert "moved to “In review”" in html
    assert records.get(inst, p.admin, "deal", deal["id"])["stage"] == "review"


def test_required_fields_are_filled_in_the_transition_form(env):
    inst, p, app = env
    deal = new_deal(inst, p)
    client = client_for(app, inst, p.rita)
    path = f"/e/deal/{deal['id']}"
    client.post(f"{path}/transitions/lose", data={
        "csrf_token": token_of(client, path), "value.reason": "no budget"})
    stored = records.get(inst, p.admin, "deal", deal["id"])
    assert stored["stage"] == "lost" and stored["reason"] == "no budget"
    assert "final state" in page(client, path)


def test_a_refused_transition_is_explained(env):
    inst, p, app = env
    deal = new_deal(inst, p, stage="review")
    client = client_for(app, inst, p.mia)
    path = f"/e/deal/{deal['id']}"
    answer = client.post(f"{path}/transitions/win", data={"csrf_token": token_of(client, path)},
                         follow_redirects=True)
    assert "Not moved:" in answer.get_data(as_text=True)
    # without CSRF nothing happens
    assert client.post(f"{path}/transitions/lose", data={"value.reason": "x"}).status_code == 400
    assert records.get(inst, p.admin, "deal", deal["id"])["stage"] == "review"


def test_guard_false_shows_a_disabled_button_with_the_reason(env):
    inst, p, app = env
    deal = new_deal(inst, p, stage="review", reason="x", amount="0")
    html = page(client_for(app, inst, p.mia), f"/e/deal/{deal['id']}")
    assert "disabled>Mark as won</button>" in html
    assert "Mark as won needs: Amount greater than 0." in html  # the guard in words


def test_approval_panel_inbox_and_decision(env):
    inst, p, app = env
    deal = new_deal(inst, p, stage="review", reason="x", discount="15")
    mia = client_for(app, inst, p.mia)
    path = f"/e/deal/{deal['id']}"
    answer = mia.post(f"{path}/transitions/win", data={"csrf_token": token_of(mia, path)},
                      follow_redirects=True)
    html = answer.get_data(as_text=True)
    assert "waits for approval" in html and "Waiting for approval “Big discount”" in html
    assert "Recall this request" in html and "/approve" not in html  # maker-checker
    max_ = client_for(app, inst, p.max)
    inbox = page(max_, "/approvals")
    assert "Big discount" in inbox and f'href="/e/deal/{deal["id"]}"' in inbox
    (request,) = approvals.inbox(inst, p.max)
    answer = max_.post(f"/approvals/{request['id']}/approve", data={
        "csrf_token": token_of(max_, "/approvals"), "version": request["version"],
        "comment": "ok", "next": "/approvals"}, follow_redirects=True)
    assert "Approved." in answer.get_data(as_text=True)
    assert records.get(inst, p.admin, "deal", deal["id"])["stage"] == "won"
    assert "Nothing to decide" in page(max_, "/approvals")
    history = page(max_, "/approvals?tab=all")
    assert "Approved" in history and "ok" in history


def test_reject_from_the_inbox_needs_a_comment(env):
    inst, p, app = env
    deal = new_deal(inst, p, stage="review", reason="x", discount="15")
    workflow.fire(inst, p.mia, "deal", deal["id"], "win")
    (request,) = approvals.inbox(inst, p.max)
    max_ = client_for(app, inst, p.max)
    token = token_of(max_, "/approvals")
    answer = max_.post(f"/approvals/{request['id']}/reject", data={"csrf_token": token},
                       follow_redirects=True)
    assert "Not done:" in answer.get_data(as_text=True)
    max_.post(f"/approvals/{request['id']}/reject", data={"csrf_token": token,
                                                          "comment": "too cheap"})
    assert records.get(inst, p.admin, "deal", deal["id"])["stage"] == "draft"


def test_recall_from_the_record_page(env):
    inst, p, app = env
    deal = new_deal(inst, p, stage="review", reason="x", discount="15")
    request = workflow.fire(inst, p.mia, "deal", deal["id"], "win").approval
    mia = client_for(app, inst, p.mia)
    path = f"/e/deal/{deal['id']}"
    answer = mia.post(f"/approvals/{request['id']}/recall", data={
        "csrf_token": token_of(mia, path), "next": path})
    assert answer.headers["Location"].endswith(path)
    assert approvals.get(inst, p.mia, request["id"])["status"] == "recalled"
    html = page(mia, path)
    assert "Earlier approval requests (1)" in html and "/transitions/win" in html


def test_inbox_link_in_the_menu_and_unsafe_next_is_ignored(env):
    inst, p, app = env
    deal = new_deal(inst, p, stage="review", reason="x", discount="15")
    request = workflow.fire(inst, p.mia, "deal", deal["id"], "win").approval
    max_ = client_for(app, inst, p.max)
    home = page(max_, "/")
    assert 'href="/approvals"' in home and '<span class="count">1</span>' in home
    answer = max_.post(f"/approvals/{request['id']}/approve", data={
        "csrf_token": token_of(max_), "next": "//evil.example.com/"})
    assert answer.headers["Location"].endswith("/approvals")


def test_notification_bell(env):
    inst, p, app = env
    deal = new_deal(inst, p, stage="review", reason="x", discount="15")
    workflow.fire(inst, p.mia, "deal", deal["id"], "win")
    max_ = client_for(app, inst, p.max)
    html = page(max_, "/")
    assert 'class="bell-count">1<' in html and "Approval needed" in html
    listing = page(max_, "/notifications")
    table = inst.schema.system("notification")
    with inst.engine.connect() as conn:
        note_id = conn.execute(sa.select(table.c.id).where(
            table.c.user_id == p.max.user_id)).scalar_one()
    assert f"/notifications/{note_id}" in listing
    answer = max_.get(f"/notifications/{note_id}")
    assert answer.status_code == 302 and answer.headers["Location"].endswith(
        f"/e/deal/{deal['id']}")
    assert "bell-count" not in page(max_, "/")
    # someone else's notification is not found
    assert client_for(app, inst, p.fay).get(f"/notifications/{note_id}").status_code == 404


def test_mark_all_read(env):
    inst, p, app = env
    for _ in range(2):
        deal = new_deal(inst, p, stage="review", reason="x", discount="15")
        workflow.fire(inst, p.mia, "deal", deal["id"], "win")
    max_ = client_for(app, inst, p.max)
    answer = max_.post("/notifications/read", data={"csrf_token": token_of(max_)},
                       follow_redirects=True)
    assert "2 notifications marked as read" in answer.get_data(as_text=True)
    assert "bell-count" not in page(max_, "/")


def test_pages_need_a_sign_in(env):
    inst, p, app = env
    client = app.test_client()
    for path in ("/approvals", "/notifications"):
        assert client.get(path).status_code in (302, 401)
