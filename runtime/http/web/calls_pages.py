"""The screen-pop of incoming calls: `GET /calls/pop`, polled every second by the layout of
signed-in pages (`templates/_call_poller.html`), answers the newest call reported for the
signed-in agent that no page has shown yet (`runtime.process.calls.take_pop`) as a small
card — the customer's name, grade, open tickets, orders, last activity and a link, or "New
lead" with the number filled in for an unknown caller — and `204 No Content` when there is
none (htmx then swaps nothing). Signed out, it answers 286, which stops htmx polling.

The poll is a hot path (every open page, every second): 204 and 286 cost one indexed lookup
(`runtime.process.calls.waiting`); only a waiting call reads the signed-in user in full and
claims it. Pages poll only when the instance `takes_calls` (the template global), which each
process looks up at most once every `TAKES_CALLS_FOR` seconds.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, current_app, render_template, session
from flask.typing import ResponseReturnValue

from runtime.core.sessions import hash_token
from runtime.http.auth import SESSION_KEY, SESSION_LIFETIME, current_actor
from runtime.http.current import get_instance
from runtime.process.calls import take_pop, takes_calls, waiting
from runtime.read.calls import pop_view
from runtime.read.permissions import can

STOP_POLLING = 286  # htmx's status for "stop polling this element"
TAKES_CALLS = "crmforge_takes_calls"  # app extension: (instance, when looked, answer)
TAKES_CALLS_FOR = 5.0  # seconds a process keeps its answer to "does the instance take calls"


def register(app: Flask) -> None:
    bp = Blueprint("calls", __name__)
    bp.add_url_rule("/calls/pop", "pop", pop)
    app.register_blueprint(bp)
    app.add_template_global(instance_takes_calls, "takes_calls")


def instance_takes_calls() -> bool:
    """Whether the pages poll for calls: the instance can be reported one. Every page asks,
    so a process looks at most once every TAKES_CALLS_FOR seconds (per model it serves): the
    first API token starts the polling, and the last one revoked stops it, that much later."""
    inst, now = get_instance(), time.monotonic()
    seen = current_app.extensions.get(TAKES_CALLS)
    if seen is None or seen[0] is not inst or now - seen[1] >= TAKES_CALLS_FOR:
        seen = current_app.extensions[TAKES_CALLS] = (inst, now, takes_calls(inst))
    return seen[2]


def pop() -> ResponseReturnValue:
    key = session.get(SESSION_KEY)
    if not isinstance(key, str):
        return "", STOP_POLLING
    inst = get_instance()
    found = waiting(inst, hash_token(key), inst.now() - SESSION_LIFETIME)
    if found is None:
        return "", STOP_POLLING
    if found[1] is None:
        return "", 204
    agent = current_actor()  # a call waits: the user in full (active, same password)
    if agent is None:
        return "", STOP_POLLING
    call = take_pop(inst, agent)
    if call is None:
        return "", 204
    view = pop_view(inst, agent, call)
    new_lead = not view["customers"] and "lead" in inst.model.entities and can(
        inst, agent, "lead", "create")
    return render_template("_call_pop.html", call=view, new_lead=new_lead)
