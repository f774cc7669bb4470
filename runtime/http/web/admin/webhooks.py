"""`/admin/webhooks`: the webhooks of the definitions (`webhooks/*.yaml`) with their secret and
whether they may be sent to, and the delivery log (`runtime.process.webhooks`), newest first,
of every hook or of one (`?hook=`); "Send again" queues a delivery anew for the worker."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from builder.model import Webhook
from runtime.core.errors import N_, NotFound
from runtime.core.instance import Instance
from runtime.http.current import get_instance
from runtime.http.web.admin.access import admin_only
from runtime.http.web.layout import language, render
from runtime.process import webhooks
from runtime.read.queries import reading

STATUS_COLORS = {"delivered": 1, "queued": 4, "sending": 4, "retrying": 5, "failed": 2,
                 "refused": 3}
STATUS_WORDS = (N_("delivered"), N_("queued"), N_("sending"), N_("retrying"), N_("failed"),
                N_("refused"))  # translated where the log shows them


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/webhooks", "webhooks", webhooks_page)
    bp.add_url_rule("/webhooks/deliveries/<int:delivery_id>/send", "webhook_send",
                    send_again, methods=["POST"])


def webhooks_page() -> ResponseReturnValue:
    admin_only()
    inst = get_instance()
    hook = request.args.get("hook") or None
    if hook is not None and hook not in inst.model.webhooks:
        raise NotFound(gettext("There is no webhook named '%(name)s' in the definitions.",
                               name=hook[:63]))
    with reading(inst, None) as conn:
        log = webhooks.deliveries(inst, conn, hook)
    return render("admin/webhooks.html", hooks=[_hook_view(inst, h)
                                                for h in inst.model.webhooks.values()],
                  log=log, hook=hook, colors=STATUS_COLORS,
                  entities={e.name: e.label.get(language()) for e in inst.model.entities.values()})


def _hook_view(inst: Instance, hook: Webhook) -> dict[str, Any]:
    """What the page shows of one hook: its secret (generated on first use when the
    definitions name no variable) and why it would be refused, if it would."""
    secret = webhooks.hook_secret(inst, hook)
    own = [*webhooks.own_addresses(inst), request.host_url]
    return {"hook": hook, "secret": secret, "refusal": webhooks.refusal(hook.url, own),
            "entity": inst.model.entity(hook.entity).label.get(language())}


def send_again(delivery_id: int) -> ResponseReturnValue:
    admin_only()
    inst = get_instance()
    if not webhooks.send_again(inst, delivery_id):
        raise NotFound(gettext("There is no webhook delivery with id %(id)s.", id=delivery_id))
    flash(gettext("Delivery #%(id)s is queued again; the worker sends it within a minute.",
                  id=delivery_id), "success")
    hook = request.form.get("hook")
    return redirect(url_for("admin.webhooks", hook=hook if hook in inst.model.webhooks
                            else None))
