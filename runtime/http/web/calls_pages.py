"""The screen-pop of incoming calls: `GET /calls/pop`, polled every second by the layout of
signed-in pages (`templates/_call_poller.html`), answers the newest call reported for the
signed-in agent that no page has shown yet (`runtime.process.calls.take_pop`) as a small
card — the customer's name, grade, open tickets, orders, last activity and a link, or "New
lead" with the number filled in for an unknown caller — and `204 No Content` when there is
none (htmx then swaps nothing). Signed out, it answers 286, which stops htmx polling.
"""

from __future__ import annotations

from flask import Blueprint, Flask, render_template
from flask.typing import ResponseReturnValue

from runtime.http.auth import current_actor
from runtime.http.current import get_instance
from runtime.process.calls import take_pop
from runtime.read.calls import pop_view
from runtime.read.permissions import can

STOP_POLLING = 286  # htmx's status for "stop polling this element"


def register(app: Flask) -> None:
    bp = Blueprint("calls", __name__)
    bp.add_url_rule("/calls/pop", "pop", pop)
    app.register_blueprint(bp)


def pop() -> ResponseReturnValue:
    agent = current_actor()
    if agent is None:
        return "", STOP_POLLING
    inst = get_instance()
    call = take_pop(inst, agent)
    if call is None:
        return "", 204
    view = pop_view(inst, agent, call)
    new_lead = not view["customers"] and "lead" in inst.model.entities and can(
        inst, agent, "lead", "create")
    return render_template("_call_pop.html", call=view, new_lead=new_lead)
