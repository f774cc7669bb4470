"""A 409 for a stale version carries the record as it is now — without the fields hidden from
the reader (issue 12, defect 9). A transition and an update sent with an old version, over the
API and from the web pages, on SQLite and PostgreSQL; and the error handler itself, which holds
any record in an answer to the signed-in user's hidden fields."""

from __future__ import annotations

import pytest
from api_support import assert_error_shape, bearer
from flask import g
from web_support import make_app, sign_in, token_of

from runtime.core.errors import StaleVersion
from runtime.http import error_handler
from runtime.http.auth import create_token
from runtime.write import records

SECRET = "TOP-SECRET"
FILES = {
    "roles.yaml": "roles:\n  agent: {label: Agent}\n",
    "entities/case.yaml": """
entity: case
label: Case
title_field: name
fields:
  name:   {type: text, required: true}
  secret: {type: text}
workflow:
  field: stage
  initial: open
  states:
    open:   {label: Open}
    closed: {label: Closed}
  transitions:
    close: {from: open, to: closed}
permissions:
  agent: {read: true, create: true, update: true, delete: false, hidden: [secret]}
""",
}


@pytest.fixture
def env(make_instance, pack, make_user, admin, tmp_path):
    inst = make_instance(pack(FILES))
    agent = make_user(inst, "agent", roles=["agent"])
    case = records.create(inst, admin(inst), "case", {"name": "Case", "secret": SECRET})
    # someone else saved since: version 2 now
    case = records.update(inst, admin(inst), "case", case["id"], {"name": "Case 2"},
                          version=case["version"])
    app = make_app(inst, tmp_path)
    return inst, agent, case, app


def test_stale_transition_over_the_api(env):
    inst, agent, case, app = env
    response = app.test_client().post(
        f"/api/v1/case/{case['id']}/transitions/close", json={"version": 1},
        headers=bearer(create_token(inst, agent.user_id)))
    body = assert_error_shape(response, 409, "current")
    assert body["current"]["version"] == 2 and body["current"]["name"] == "Case 2"
    assert "secret" not in body["current"] and SECRET not in response.get_data(as_text=True)


def test_stale_update_over_the_api(env):
    inst, agent, case, app = env
    response = app.test_client().patch(
        f"/api/v1/case/{case['id']}", json={"name": "Mine", "version": 1},
        headers=bearer(create_token(inst, agent.user_id)))
    body = assert_error_shape(response, 409, "current")
    assert body["current"]["version"] == 2 and "secret" not in body["current"]
    assert SECRET not in response.get_data(as_text=True)


def test_stale_transition_from_the_web(env):
    inst, agent, case, app = env
    client = app.test_client()
    sign_in(client, inst, agent)
    path = f"/e/case/{case['id']}"
    answer = client.post(f"{path}/transitions/close", data={
        "csrf_token": token_of(client, path), "version": "1"}, follow_redirects=True)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "changed by someone else" in html
    assert SECRET not in html


def test_stale_update_from_the_web(env):
    inst, agent, case, app = env
    client = app.test_client()
    sign_in(client, inst, agent)
    path = f"/e/case/{case['id']}/edit"
    answer = client.post(path, data={"csrf_token": token_of(client, path), "name": "Mine",
                                     "version": "1"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 409 and "Case 2" in html
    assert SECRET not in html


def test_the_handler_holds_any_record_to_the_readers_hidden_fields(env):
    """A record raised by a write made as the system on the user's behalf (a workflow move)
    carries every field; the answer still leaves out what the user may not see."""
    inst, agent, case, app = env
    raw = {"id": case["id"], "version": 2, "name": "Case 2", "secret": SECRET}
    with app.test_request_context("/api/v1/case/1"):
        g.actor = agent
        _status, _message, extra, _ = error_handler.describe(StaleVersion(raw, entity="case"))
        assert extra["current"] == {"id": case["id"], "version": 2, "name": "Case 2"}
        # a record whose entity is not known shows its id and version only
        _status, _message, extra, _ = error_handler.describe(StaleVersion(raw))
        assert extra["current"] == {"id": case["id"], "version": 2}
