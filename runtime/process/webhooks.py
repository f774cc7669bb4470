"""Outbound webhooks (docs/webhooks.md): record events POSTed, signed, to the addresses the
definitions name (`webhooks/*.yaml`), by the worker, with retries.

Decide, then do:

- `after_write` and `after_decision` (hung on the instance by `install_hooks`) queue one row of
  `crm_webhook_delivery` per event and hook inside the write's transaction, with the body as it
  will be sent: an event whose write is rolled back is never sent, and no request waits for a
  receiver.
- `payload` and `signed_headers` are pure: the JSON body, and the signature over
  `TIMESTAMP.BODY` with the hook's secret (`secret_env`, or one generated and kept in
  `crm_secret`).
- `deliver_due` (the worker, every minute) POSTs each due delivery with `post`.

A delivery is `queued`, `sending` while a worker holds it, then `delivered` (any 2xx answer).
A failed attempt (no answer within `TIMEOUT` seconds, a refused connection, any other status)
is `retrying` after 1, 4, 16, 64, 256 and 1024 minutes — about 23 hours in all — and then
`failed`. An address that is not http(s), or that points at the instance itself (its
`BASE_URL`), is `refused` and never sent. `send_again` queues any delivery anew.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import os
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from builder.model import Webhook
from builder.webhooks import url_problem
from runtime.core.db import write_transaction
from runtime.core.hooks import DecisionEvent, WriteEvent
from runtime.core.instance import Actor, Instance
from runtime.core.keys import stored_secret
from runtime.core.values import json_value, to_json
from runtime.process.mail.server import setting
from runtime.process.retry import RetrySchedule, claim, due_ids
from runtime.read.queries import load

log = logging.getLogger("crmforge.webhooks")
TIMEOUT = 5.0  # seconds a receiver has to answer
BACKOFF = tuple(timedelta(minutes=4 ** n) for n in range(6))  # 1 min … 17 h
SCHEDULE = RetrySchedule(BACKOFF)
MAX_ATTEMPTS = SCHEDULE.max_attempts
SIGNATURE = "X-CRMForge-Signature"
TIMESTAMP = "X-CRMForge-Timestamp"


# -- deciding ---------------------------------------------------------------------------------

def payload(hook: Webhook, event: str, record: Mapping[str, Any], at: datetime, *,
            event_id: str, details: Mapping[str, Any] | None = None) -> bytes:
    """The JSON body of one event: `record` is the record as the API returns it."""
    body = {"id": event_id, "event": event, "hook": hook.name, "entity": hook.entity,
            "record_id": record.get("id"), "occurred_at": json_value(at), **(details or {}),
            "record": dict(record)}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of `TIMESTAMP.BODY` under `secret`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one attempt: the content type, the timestamp and the signature."""
    return {"Content-Type": "application/json", "User-Agent": "CRMForge-Webhooks/1",
            TIMESTAMP: str(timestamp), SIGNATURE: signature(secret, timestamp, body)}


def refusal(url: str, own: Iterable[str]) -> str | None:
    """Why `url` must not be sent to: not an http(s) address (`url_problem`), or the same
    host and port as one of the instance's own addresses `own`; None when it may be."""
    problem = url_problem(url)
    if problem:
        return problem
    target = _host_port(url)
    for address in own:
        if address and url_problem(address) is None and _host_port(address) == target:
            return f"'{url}' points at this instance itself ({address})"
    return None


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url.strip())
    return (parts.hostname or "").lower().rstrip("."), \
        parts.port or (443 if parts.scheme == "https" else 80)


def own_addresses(inst: Instance) -> list[str]:
    """The addresses the instance answers on, as far as it knows: its `BASE_URL`."""
    base = setting(inst, "BASE_URL")
    return [str(base)] if base else []


# -- queueing (inside the write) --------------------------------------------------------------

def install_hooks(inst: Instance) -> None:
    """Send the model's webhooks after every write and approval decision."""
    inst.hooks.add_after_write(after_write)
    inst.hooks.add_after_decision(after_decision)


def after_write(inst: Instance, conn: Connection, actor: Actor, event: WriteEvent) -> None:
    hooks = inst.model.webhooks_for(event.entity, event.kind)
    if not hooks:
        return
    if event.kind == "delete":
        record = event.old or {}
    else:
        record_id = (event.record or {})["id"]
        record = load(inst, conn, event.entity, record_id) or event.record or {}
    details = {"transition": event.transition} if event.kind == "transition" else None
    _queue_all(inst, conn, hooks, event.kind, event.entity, record, details)


def after_decision(inst: Instance, conn: Connection, actor: Actor, event: DecisionEvent
                   ) -> None:
    hooks = inst.model.webhooks_for(event.entity, "approval")
    if not hooks:
        return
    record = load(inst, conn, event.entity, event.record_id) or {"id": event.record_id}
    details = {"approval": {"name": event.approval, "decision": event.decision,
                            "comment": event.comment, "by": actor.username}}
    _queue_all(inst, conn, hooks, "approval", event.entity, record, details)


def _queue_all(inst: Instance, conn: Connection, hooks: list[Webhook], event: str,
               entity: str, record: Mapping[str, Any], details: Mapping[str, Any] | None
               ) -> None:
    table = inst.schema.system("webhook_delivery")
    now = inst.now()
    as_json = to_json(inst.model.entity(entity), record)
    for hook in hooks:
        body = payload(hook, event, as_json, now, event_id=uuid.uuid4().hex, details=details)
        conn.execute(table.insert().values(
            hook=hook.name, event=event, entity=entity, record_id=record["id"],
            body=body.decode(), status="queued", attempts=0, next_attempt_at=now,
            created_at=now))


# -- delivering (the worker) ------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """What one attempt got: the HTTP status (None without one), the time it took, and what
    went wrong (None for a 2xx answer)."""

    code: int | None
    ms: int
    error: str | None = None


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not an order: it could lead anywhere, the instance included."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float = TIMEOUT
         ) -> Answer:
    """POST `body` to `url` once; the answer, never an exception."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    start = time.monotonic()
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
            code, error = response.status, None
    except urllib.error.HTTPError as exc:
        code, error = exc.code, f"the receiver answered {exc.code} {exc.reason}"
        exc.close()
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        code, error = None, _reason(exc, timeout)
    return Answer(code, round((time.monotonic() - start) * 1000), error)


def _reason(exc: BaseException, timeout: float) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} seconds"
    return f"could not reach the receiver: {reason}"


def deliver_due(inst: Instance, limit: int = 200, *, timeout: float = TIMEOUT
                ) -> DeliveryReport:
    """Deliver what is due now (the worker calls this every minute)."""
    report = DeliveryReport()
    table = inst.schema.system("webhook_delivery")
    for delivery_id in due_ids(inst, table, limit):
        row = claim(inst, table, delivery_id, SCHEDULE)
        if row is None:
            continue  # another worker has it
        status, answer = _attempt(inst, row, timeout)
        _finish(inst, row, status, answer)
        setattr(report, status, getattr(report, status) + 1)
        if answer.error:
            report.errors.append(answer.error)
    return report


def _attempt(inst: Instance, row: Mapping[str, Any], timeout: float) -> tuple[str, Answer]:
    """One attempt at a claimed delivery: (its new status, the answer)."""
    hook = inst.model.webhooks.get(row["hook"])
    if hook is None or not hook.active:
        return "refused", Answer(None, 0, f"the webhook '{row['hook']}' is no longer "
                                 "defined or active")
    problem = refusal(hook.url, own_addresses(inst))
    if problem:
        return "refused", Answer(None, 0, problem)
    with write_transaction(inst.engine) as conn:
        secret = secret_of(inst, conn, hook)
    if secret is None:
        answer = Answer(None, 0, f"the environment variable {hook.secret_env} that holds the "
                        "secret is not set")
    else:
        body = row["body"].encode()
        stamp = int(inst.now().replace(tzinfo=UTC).timestamp())
        answer = post(hook.url, body, signed_headers(secret, stamp, body), timeout)
    if answer.error is None:
        return "delivered", answer
    return ("failed" if SCHEDULE.gives_up(row["attempts"]) else "retrying"), answer


def _finish(inst: Instance, row: Mapping[str, Any], status: str, answer: Answer) -> None:
    table = inst.schema.system("webhook_delivery")
    now = inst.now()
    values: dict[str, Any] = {"status": status, "response_code": answer.code,
                              "response_ms": answer.ms, "last_error": answer.error,
                              "attempted_at": now}
    if status == "retrying":
        values["next_attempt_at"] = SCHEDULE.next_attempt(row["attempts"], now)
    if status == "delivered":
        values["delivered_at"] = now
    with write_transaction(inst.engine) as conn:
        conn.execute(table.update().where(table.c.id == row["id"]).values(**values))
    log.info("webhook %s delivery %s (attempt %s): %s%s", row["hook"], row["id"],
             row["attempts"], status, f" ({answer.error})" if answer.error else "")


def send_again(inst: Instance, delivery_id: int) -> bool:
    """Queue a delivery anew, due now (the worker sends it); False when there is none."""
    table = inst.schema.system("webhook_delivery")
    with write_transaction(inst.engine) as conn:
        return conn.execute(table.update().where(table.c.id == delivery_id).values(
            status="queued", next_attempt_at=inst.now())).rowcount == 1


# -- secrets and the log ----------------------------------------------------------------------

def secret_of(inst: Instance, conn: Connection, hook: Webhook) -> str | None:
    """The hook's signing secret: the environment variable `secret_env` (None when it is not
    set), else the one the instance generated for it and keeps in `crm_secret`."""
    if hook.secret_env:
        return os.environ.get(hook.secret_env) or None
    return stored_secret(inst, conn, f"webhook:{hook.name}",
                         lambda: "whsec_" + secrets.token_hex(24))


def hook_secret(inst: Instance, hook: Webhook) -> str | None:
    """`secret_of` in a transaction of its own (the admin page shows it)."""
    with write_transaction(inst.engine) as conn:
        return secret_of(inst, conn, hook)


def deliveries(inst: Instance, conn: Connection, hook: str | None = None, limit: int = 50
               ) -> list[dict[str, Any]]:
    """The delivery log, newest first (of one hook, with `hook`)."""
    table = inst.schema.system("webhook_delivery")
    query = sa.select(table).order_by(table.c.id.desc()).limit(limit)
    if hook is not None:
        query = query.where(table.c.hook == hook)
    return [dict(row) for row in conn.execute(query).mappings()]


def delivery(inst: Instance, conn: Connection, delivery_id: int) -> dict[str, Any] | None:
    table = inst.schema.system("webhook_delivery")
    row = conn.execute(sa.select(table).where(table.c.id == delivery_id)).mappings().first()
    return dict(row) if row else None
