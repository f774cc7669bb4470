"""Transitions and approvals over the JSON API (INTERFACES.md): every answer of
/transitions and /approvals, in the one error shape when refused."""

from __future__ import annotations

import pytest
from api_support import assert_error_shape, bearer, make_app
from workflow_pack import deal_pack, new_deal, people

from runtime.http.auth import create_token


@pytest.fixture
def env(make_instance, pack, tmp_path):
    inst = make_instance(deal_pack(pack))
    p = people(inst)
    client = make_app(inst, tmp_path).test_client()
    tokens = {name: bearer(create_token(inst, getattr(p, name).user_id))
              for name in ("rita", "ron", "mia", "max", "dan", "fay", "vera", "admin")}
    return inst, p, client, tokens


def test_list_transitions(env):
    inst, p, client, t = env
    deal = new_deal(inst, p)
    response = client.get(f"/api/v1/deal/{deal['id']}/transitions", headers=t["rita"])
    assert response.status_code == 200
    rows = response.get_json()
    assert [r["name"] for r in rows] == ["submit", "win", "lose", "archive", "cancel"]
    assert {k: rows[0][k] for k in ("name", "label", "to", "allowed", "reason")} == {
        "name": "submit", "label": "Submit", "to": "review", "allowed": True, "reason": None}
    assert rows[1]["allowed"] is False and "In review" in rows[1]["reason"]


def test_list_transitions_errors(env):
    inst, p, client, t = env
    deal = new_deal(inst, p)
    assert_error_shape(client.get("/api/v1/deal/999/transitions", headers=t["rita"]), 404)
    assert_error_shape(client.get("/api/v1/nope/1/transitions", headers=t["rita"]), 404)
    assert client.get(f"/api/v1/deal/{deal['id']}/transitions").status_code == 401


def test_fire_moves_the_record(env):
    inst, p, client, t = env
    deal = new_deal(inst, p)
    response = client.post(f"/api/v1/deal/{deal['id']}/transitions/submit",
                           json={"comment": "ready"}, headers=t["rita"])
    assert response.status_code == 200, response.get_json()
    record = response.get_json()
    assert record["stage"] == "review" and record["version"] == deal["version"] + 1
    timeline = client.get(f"/api/v1/deal/{deal['id']}/timeline", headers=t["rita"]).get_json()
    (move,) = [e for e in timeline["data"] if e["kind"] == "transition"]
    assert move["body"] == "ready" and move["data"]["to"] == "review"


def test_fire_without_a_body(env):
    inst, p, client, t = env
    deal = new_deal(inst, p)
    response = client.post(f"/api/v1/deal/{deal['id']}/transitions/submit", headers=t["rita"])
    assert response.status_code == 200 and response.get_json()["stage"] == "review"


@pytest.mark.parametrize("who, stage, values, name, body, status, extra", [
    ("rita", "review", {}, "submit", {}, 409, ()),  # wrong state
    ("rita", "review", {"reason": "x"}, "win", {}, 403, ()),  # role
    ("ron", "draft", {}, "submit", {}, 403, ()),  # may not update rita's deal
    ("mia", "review", {"reason": "x", "amount": "0"}, "win", {}, 422, ("errors",)),  # guard
    ("mia", "review", {}, "win", {}, 422, ("errors",)),  # requires
    ("mia", "review", {}, "nope", {}, 404, ()),
    ("rita", "draft", {}, "submit", {"version": 99}, 409, ("current",)),
    ("rita", "draft", {}, "submit", {"colour": "red"}, 422, ("errors",)),
    ("rita", "draft", {}, "submit", {"values": [1]}, 422, ("errors",)),
    ("admin", "draft", {}, "archive", {}, 403, ()),  # roles: [] — automations only
])
def test_fire_refusals(env, who, stage, values, name, body, status, extra):
    inst, p, client, t = env
    deal = new_deal(inst, p, stage=stage, **values)
    response = client.post(f"/api/v1/deal/{deal['id']}/transitions/{name}", json=body,
                           headers=t[who])
    answer = assert_error_shape(response, status, *extra)
    if status == 422 and not body:
        assert answer["errors"]


def test_requires_can_be_filled_in_the_same_call(env):
    inst, p, client, t = env
    deal = new_deal(inst, p, stage="review")
    response = client.post(f"/api/v1/deal/{deal['id']}/transitions/win",
                           json={"values": {"reason": "signed"}}, headers=t["mia"])
    assert response.status_code == 200 and response.get_json()["reason"] == "signed"


def test_approval_flow_over_http(env):
    inst, p, client, t = env
    deal = new_deal(inst, p, stage="review", reason="x", discount="25")
    response = client.post(f"/api/v1/deal/{deal['id']}/transitions/win",
                           json={"comment": "big one"}, headers=t["mia"])
    assert response.status_code == 202
    request = response.get_json()["approval"]
    assert request["status"] == "pending" and request["step"] == "manager"
    rid = request["id"]
    # the submitter's inbox is empty; max's holds it
    assert client.get("/api/v1/approvals", headers=t["mia"]).get_json() == {"data": []}
    inbox = client.get("/api/v1/approvals?status=pending", headers=t["max"]).get_json()
    assert [r["id"] for r in inbox["data"]] == [rid] and inbox["data"][0]["can_decide"]
    # locked for edits
    locked = client.patch(f"/api/v1/deal/{deal['id']}", json={"notes": "x", "version": 3},
                          headers=t["mia"])
    assert locked.status_code == 409
    assert_error_shape(client.post(f"/api/v1/approvals/{rid}/approve", headers=t["mia"]), 403)
    step = client.post(f"/api/v1/approvals/{rid}/approve", json={"comment": "ok"},
                       headers=t["max"])
    assert step.status_code == 200 and step.get_json()["step"] == "finance"
    for who in ("fay",):
        assert client.post(f"/api/v1/approvals/{rid}/approve", headers=t[who]).status_code \
            == 200
    fred = bearer(create_token(inst, p.fred.user_id))
    done = client.post(f"/api/v1/approvals/{rid}/approve", headers=fred).get_json()
    assert done["status"] == "approved"
    record = client.get(f"/api/v1/deal/{deal['id']}", headers=t["mia"]).get_json()
    assert record["stage"] == "won"
    decided = client.get("/api/v1/approvals?status=approved", headers=t["max"]).get_json()
    assert [r["id"] for r in decided["data"]] == [rid]


def test_reject_and_recall_over_http(env):
    inst, p, client, t = env
    deal = new_deal(inst, p, stage="review", reason="x", discount="15")
    rid = client.post(f"/api/v1/deal/{deal['id']}/transitions/win",
                      headers=t["mia"]).get_json()["approval"]["id"]
    no_comment = client.post(f"/api/v1/approvals/{rid}/reject", json={}, headers=t["max"])
    assert "comment" in assert_error_shape(no_comment, 422, "errors")["errors"]
    rejected = client.post(f"/api/v1/approvals/{rid}/reject", json={"comment": "no"},
                           headers=t["max"])
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "rejected"
    assert_error_shape(client.post(f"/api/v1/approvals/{rid}/approve", headers=t["max"]), 409)

    again = new_deal(inst, p, stage="review", reason="x", discount="15")
    rid = client.post(f"/api/v1/deal/{again['id']}/transitions/win",
                      headers=t["mia"]).get_json()["approval"]["id"]
    assert_error_shape(client.post(f"/api/v1/approvals/{rid}/recall", headers=t["max"]), 403)
    recalled = client.post(f"/api/v1/approvals/{rid}/recall", json={"comment": "oops"},
                           headers=t["mia"])
    assert recalled.status_code == 200 and recalled.get_json()["status"] == "recalled"


def test_approval_reading_and_errors(env):
    inst, p, client, t = env
    deal = new_deal(inst, p, stage="review", reason="x", discount="15")
    rid = client.post(f"/api/v1/deal/{deal['id']}/transitions/win",
                      headers=t["mia"]).get_json()["approval"]["id"]
    assert client.get(f"/api/v1/approvals/{rid}", headers=t["max"]).status_code == 200
    assert client.get(f"/api/v1/approvals/{rid}", headers=t["fay"]).status_code == 200  # reads
    assert_error_shape(client.get("/api/v1/approvals/999", headers=t["max"]), 404)
    assert_error_shape(client.get("/api/v1/approvals?status=maybe", headers=t["max"]), 400)
    assert_error_shape(client.post(f"/api/v1/approvals/{rid}/veto", headers=t["max"]), 404)
    assert client.post("/api/v1/approvals", headers=t["max"]).status_code == 405
    assert client.get("/api/v1/approvals").status_code == 401
