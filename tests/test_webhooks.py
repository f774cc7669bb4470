"""Outbound webhooks (issue 18, item 5) against a real HTTP receiver on 127.0.0.1: events are
queued inside the write and delivered by the worker, signed (the receiver checks the
signature on its own, as docs/webhooks.md shows), retried after a 500 and after a timeout,
refused when the address points at the instance itself; bad definitions are `validate`
errors with file:line; /admin/webhooks shows the log and sends again (admins only).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from mail_support import run_worker
from support import admin_actor, insert_user, write_pack
from web_support import csrf, make_app, sign_in

from builder.diagnostics import DefinitionError
from builder.linker import build_model
from runtime.core.db import write_transaction
from runtime.http.auth import create_token
from runtime.process import approvals, webhooks, workflow
from runtime.write import records

SECRET = "s3cret-for-tests"
TICKET = """
entity: ticket
title_field: subject
fields:
  subject:  {type: text, required: true}
  priority: {type: choice, options: [low, high]}
workflow:
  field: status
  initial: open
  states:
    open:   {label: Open}
    solved: {label: Solved}
    closed: {label: Closed, final: true}
  transitions:
    solve: {from: open, to: solved}
    close: {from: solved, to: closed, approval: boss}
approvals:
  boss:
    allow_self_approval: true
    steps:
      - name: boss
        approvers: {user: admin}
"""
NOTE = """
entity: note
title_field: text
fields:
  text: {type: text}
"""
HOOKS = """
webhooks:
  helpdesk:
    label: Helpdesk
    entity: ticket
    events: [create, update, delete, transition, approval]
    url: {url}
    secret_env: CRM_TEST_HOOK_SECRET
"""


# -- the receiver -----------------------------------------------------------------------------

class Receiver:
    """What a real receiver got; `plan` holds its next answers (a status, or "slow": answer
    200 after two seconds), then it answers 200."""

    def __init__(self, secret: str):
        self.secret = secret
        self.plan: list[int | str] = []
        self.got: list[dict[str, Any]] = []
        self.url = ""

    def verify(self, timestamp: str, body: bytes, signature: str) -> bool:
        """The check docs/webhooks.md shows a receiver: HMAC-SHA256 of TIMESTAMP.BODY."""
        expected = hmac.new(self.secret.encode(), timestamp.encode() + b"." + body,
                            hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature, "sha256=" + expected)


@contextmanager
def receiving(secret: str = SECRET) -> Iterator[Receiver]:
    receiver = Receiver(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.got.append({
                "body": json.loads(body), "headers": dict(self.headers),
                "verified": receiver.verify(self.headers["X-CRMForge-Timestamp"], body,
                                            self.headers["X-CRMForge-Signature"])})
            answer = receiver.plan.pop(0) if receiver.plan else 200
            if answer == "slow":
                time.sleep(2)
                answer = 200
            try:
                self.send_response(int(answer))
                self.end_headers()
                self.wfile.write(b"thanks")
            except OSError:  # the sender gave up waiting
                pass

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{httpd.server_port}/hooks/crm"
    try:
        yield receiver
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


@pytest.fixture
def inst(make_instance, pack, receiver, monkeypatch):
    monkeypatch.setenv("CRM_TEST_HOOK_SECRET", SECRET)
    return make_instance(pack({"entities/ticket.yaml": TICKET, "entities/note.yaml": NOTE,
                               "webhooks/hooks.yaml": HOOKS.replace("{url}", receiver.url)}))


def log(inst) -> list[dict[str, Any]]:
    """The delivery log, oldest first."""
    with inst.engine.connect() as conn:
        return webhooks.deliveries(inst, conn)[::-1]


def ticket(inst, **values) -> dict[str, Any]:
    return records.create(inst, admin_actor(inst), "ticket", {"subject": "Printer", **values})


# -- delivery ---------------------------------------------------------------------------------

def test_a_new_record_arrives_signed_with_the_record_as_the_api_returns_it(inst, receiver,
                                                                           tmp_path):
    made = ticket(inst, priority="high")
    assert receiver.got == []  # the write did not wait for the receiver
    assert [d["status"] for d in log(inst)] == ["queued"]
    run_worker(inst)
    [got] = receiver.got
    assert got["verified"]
    assert got["headers"]["Content-Type"] == "application/json"
    token = create_token(inst, admin_actor(inst).user_id)
    api = make_app(inst, tmp_path).test_client().get(
        f"/api/v1/ticket/{made['id']}", headers={"Authorization": f"Bearer {token}"}).get_json()
    body = got["body"]
    assert body["record"] == api
    assert (body["event"], body["entity"], body["hook"], body["record_id"]) == (
        "create", "ticket", "helpdesk", made["id"])
    [row] = log(inst)
    assert (row["status"], row["response_code"], row["attempts"]) == ("delivered", 200, 1)
    assert row["response_ms"] is not None and row["delivered_at"] == inst.now()
    run_worker(inst)
    assert len(receiver.got) == 1  # delivered once


def test_a_500_is_retried_with_backoff_then_delivered(inst, receiver, clock):
    receiver.plan = [500]
    ticket(inst)
    run_worker(inst)
    [row] = log(inst)
    assert (row["status"], row["response_code"], row["attempts"]) == ("retrying", 500, 1)
    assert "answered 500" in row["last_error"]
    assert row["next_attempt_at"] == inst.now() + webhooks.BACKOFF[0]
    run_worker(inst)  # not due yet
    assert len(receiver.got) == 1
    clock.advance(minutes=1)
    run_worker(inst)
    [row] = log(inst)
    assert (row["status"], row["response_code"], row["attempts"]) == ("delivered", 200, 2)
    assert row["last_error"] is None
    first, second = receiver.got
    assert first["verified"] and second["verified"]
    assert first["body"]["id"] == second["body"]["id"]  # the same event, for deduplication


def test_a_receiver_that_does_not_answer_in_time_is_retried(inst, receiver, clock):
    receiver.plan = ["slow"]
    ticket(inst)
    report = webhooks.deliver_due(inst, timeout=0.5)
    assert report.retrying == 1 and report.errors == ["no answer within 0.5 seconds"]
    [row] = log(inst)
    assert row["status"] == "retrying" and row["response_code"] is None
    assert 400 <= row["response_ms"] < 2000
    clock.advance(minutes=1)
    assert webhooks.deliver_due(inst, timeout=0.5).delivered == 1


def test_retries_stop_after_about_a_day(inst, receiver, clock):
    receiver.plan = [503] * webhooks.MAX_ATTEMPTS
    ticket(inst)
    run_worker(inst)
    for wait in webhooks.BACKOFF:
        clock.advance(seconds=wait.total_seconds())
        run_worker(inst)
    [row] = log(inst)
    assert (row["status"], row["attempts"]) == ("failed", webhooks.MAX_ATTEMPTS)
    assert 20 * 3600 < sum(w.total_seconds() for w in webhooks.BACKOFF) <= 24 * 3600
    assert len(receiver.got) == webhooks.MAX_ATTEMPTS


def test_an_unreachable_receiver_is_retried(make_instance, pack, monkeypatch):
    monkeypatch.setenv("CRM_TEST_HOOK_SECRET", SECRET)
    inst = make_instance(pack({"entities/ticket.yaml": TICKET, "entities/note.yaml": NOTE,
                               "webhooks/hooks.yaml": HOOKS.replace(
                                   "{url}", "http://127.0.0.1:9/nobody")}))
    ticket(inst)
    report = webhooks.deliver_due(inst, timeout=1)
    assert report.retrying == 1 and "could not reach the receiver" in report.errors[0]
    assert log(inst)[0]["status"] == "retrying"


def test_every_event_is_sent_and_a_rolled_back_write_sends_nothing(inst, receiver):
    admin = admin_actor(inst)
    made = ticket(inst)
    made = records.update(inst, admin, "ticket", made["id"], {"priority": "low"},
                          version=made["version"])
    workflow.fire(inst, admin, "ticket", made["id"], "solve")
    result = workflow.fire(inst, admin, "ticket", made["id"], "close")
    approvals.approve(inst, admin, result.approval["id"], comment="fine")
    with pytest.raises(Exception, match="subject|required"):
        records.create(inst, admin, "ticket", {"priority": "low"})
    records.create(inst, admin, "note", {"text": "no hook for notes"})
    current = records.get(inst, admin, "ticket", made["id"])
    records.delete(inst, admin, "ticket", made["id"])
    run_worker(inst)
    bodies = [g["body"] for g in receiver.got]
    assert [b["event"] for b in bodies] == ["create", "update", "transition", "transition",
                                            "approval", "delete"]
    assert bodies[2]["transition"] == "solve" and bodies[2]["record"]["status"] == "solved"
    assert bodies[3]["transition"] == "close"
    assert bodies[4]["approval"] == {"name": "boss", "decision": "approved",
                                     "comment": "fine", "by": "admin"}
    assert bodies[4]["record"]["status"] == "closed"
    assert bodies[5]["record"]["id"] == made["id"]
    assert bodies[5]["record"]["status"] == current["status"]
    assert all(g["verified"] for g in receiver.got)


def test_an_address_that_points_at_the_instance_itself_is_refused(inst, receiver):
    inst.settings["BASE_URL"] = receiver.url.rsplit("/hooks", 1)[0]
    ticket(inst)
    run_worker(inst)
    [row] = log(inst)
    assert row["status"] == "refused" and "points at this instance" in row["last_error"]
    assert receiver.got == []


@pytest.mark.parametrize(("url", "own", "refused"), [
    ("https://hooks.example.com/x", ["https://crm.example.com"], None),
    ("https://crm.example.com/api/v1/x", ["https://crm.example.com/"], "points at this"),
    ("http://CRM.example.com:80/x", ["http://crm.example.com"], "points at this"),
    ("http://crm.example.com:8080/x", ["http://crm.example.com"], None),
    ("ftp://hooks.example.com/x", [], "not an http"),
    ("file:///etc/passwd", [], "not an http"),
    ("http:///x", [], "names no host"),
    ("https://user:pw@hooks.example.com/", [], "user name or password"),
    ("http://hooks.example.com:99999/", [], "not a valid address"),
])
def test_refusal(url, own, refused):
    found = webhooks.refusal(url, own)
    assert (found is None) if refused is None else (refused in found)


def test_a_generated_secret_is_kept_and_signs(make_instance, pack, receiver):
    hooks = HOOKS.replace("{url}", receiver.url).replace(
        "    secret_env: CRM_TEST_HOOK_SECRET\n", "")
    inst = make_instance(pack({"entities/ticket.yaml": TICKET, "entities/note.yaml": NOTE,
                               "webhooks/hooks.yaml": hooks}))
    hook = inst.model.webhooks["helpdesk"]
    with write_transaction(inst.engine) as conn:
        secret = webhooks.secret_of(inst, conn, hook)
        assert secret.startswith("whsec_") and webhooks.secret_of(inst, conn, hook) == secret
    receiver.secret = secret
    ticket(inst)
    run_worker(inst)
    assert [g["verified"] for g in receiver.got] == [True]


def test_an_unset_secret_variable_holds_the_delivery(inst, receiver, monkeypatch):
    monkeypatch.delenv("CRM_TEST_HOOK_SECRET")
    ticket(inst)
    run_worker(inst)
    [row] = log(inst)
    assert row["status"] == "retrying" and "CRM_TEST_HOOK_SECRET" in row["last_error"]
    assert receiver.got == []


def test_the_signature_is_over_timestamp_dot_body():
    body = b'{"event":"create"}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    headers = webhooks.signed_headers("k", 1700000000, body)
    assert headers["X-CRMForge-Signature"] == "sha256=" + expected
    assert headers["X-CRMForge-Timestamp"] == "1700000000"


# -- definitions ------------------------------------------------------------------------------

def problems(tmp_path, hooks: str) -> str:
    root = write_pack(tmp_path / "p", {"entities/ticket.yaml": TICKET,
                                       "entities/note.yaml": NOTE,
                                       "webhooks/hooks.yaml": hooks})
    with pytest.raises(DefinitionError) as caught:
        build_model([root])
    return str(caught.value)


@pytest.mark.parametrize(("change", "expected"), [
    ({"url: {url}": "url: ftp://hooks.example.com/x"},
     r"webhooks/hooks\.yaml:7:10: error E240 webhook 'helpdesk': 'ftp://hooks\.example\.com/x' "
     r"is not an http:// or https:// address"),
    ({"url: {url}": "url: hooks.example.com/x"}, r"hooks\.yaml:7:10: error E240"),
    ({"url: {url}": "url: https://u:p@hooks.example.com/"}, r"hooks\.yaml:7:10: error E240"),
    ({"entity: ticket": "entity: tiket"},
     r"hooks\.yaml:5:13: error E202 webhook 'helpdesk': unknown entity 'tiket' "
     r"\(did you mean 'ticket'\?\)"),
    ({"approval]": "approve]"}, r"hooks\.yaml:6:\d+: error E10\d .*approve"),
    ({"entity: ticket": "entity: note"},
     r"hooks\.yaml:6:\d+: error E241 webhook 'helpdesk': 'note' has no workflow"),
    ({"entity: ticket": "entity: user"}, r"hooks\.yaml:5:13: error E242"),
])
def test_bad_webhooks_are_validate_errors_with_file_and_line(tmp_path, change, expected):
    hooks = HOOKS.replace("{url}", "https://hooks.example.com/crm")
    for old, new in change.items():
        hooks = hooks.replace(old.replace("{url}", "https://hooks.example.com/crm"), new)
    text = problems(tmp_path, hooks)
    assert re.search(expected, text), text


# -- the admin page ---------------------------------------------------------------------------

def test_the_admin_page_shows_the_log_and_sends_again(inst, receiver, tmp_path, clock):
    receiver.plan = [500]
    made = ticket(inst)
    run_worker(inst)
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, admin_actor(inst))
    page = client.get("/admin/webhooks")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Helpdesk" in html and receiver.url in html and "$CRM_TEST_HOOK_SECRET" in html
    assert "retrying" in html and "500 · " in html and f"Ticket #{made['id']}</a>" in html
    [row] = log(inst)
    sent = client.post(f"/admin/webhooks/deliveries/{row['id']}/send",
                       data={"csrf_token": csrf(html), "hook": "helpdesk"})
    assert sent.status_code == 302 and sent.headers["Location"].endswith("?hook=helpdesk")
    assert log(inst)[0]["status"] == "queued"
    run_worker(inst)  # due now: no need to wait for the backoff
    assert log(inst)[0]["status"] == "delivered"
    html = client.get("/admin/webhooks?hook=helpdesk").get_data(as_text=True)
    assert "delivered" in html and "Deliveries of helpdesk" in html
    assert client.post("/admin/webhooks/deliveries/999/send",
                       data={"csrf_token": csrf(html)}).status_code == 404
    assert client.get("/admin/webhooks?hook=nope").status_code == 404
    assert client.post(f"/admin/webhooks/deliveries/{row['id']}/send").status_code == 400


def test_only_admins_open_the_webhooks_page(inst, tmp_path):
    clerk = insert_user(inst, "clerk", full_name="Cleo Clerk")
    hr = insert_user(inst, "hr", roles=["user_admin"], full_name="Hana Ruiz")
    for who in (clerk, hr):
        client = make_app(inst, tmp_path).test_client()
        sign_in(client, inst, who)
        assert client.get("/admin/webhooks").status_code == 403
        assert client.post("/admin/webhooks/deliveries/1/send",
                           data={"csrf_token": csrf(client.get("/").get_data(as_text=True))}
                           ).status_code == 403
