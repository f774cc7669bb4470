"""Bounces reported after a message left (docs/mail.md "Bounces"): a delivery-status
notification (RFC 3464) read by `crmforge mail-in` that returns a message the outbox sent
marks that message `bounced`, with the remote server's answer on the record's timeline.

The message is found by the returned message's Message-ID (`<…crm-mail-<id>@…>`), or by the
In-Reply-To / References of the notice; failing that, by the signed reply address the message
carried (`Reply-To: reply+<token>@…`), which names the record: then the newest message sent
about it to the address that failed. A "delayed" notice changes nothing (the remote server
is still trying).

(A refusal while sending — a 5xx answer to RCPT or DATA — is told apart in
`server.send` and `outbox.send_due`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runtime.core.instance import Instance
from runtime.process.mail.outbox import settle
from runtime.process.mail.received import FAILED_ACTION, DeliveryReport, Received
from runtime.process.mail.replies import record_of_reply_address, sent_mail_id

BOUNCEABLE = ("sent", "sending", "retrying", "queued")


def bounced(inst: Instance, conn: Connection, report: DeliveryReport, mail: Received
            ) -> tuple[str, str, str | None, int | None]:
    """Handle the delivery `report` the message `mail` is: (outcome, reason, entity, record
    id) of the message it returns (`bounced`), or `dropped` with why nothing changed."""
    if report.action != FAILED_ACTION:
        return "dropped", f"a delivery notice ({report.action}), not a bounce", None, None
    row = _sent_message(inst, conn, report, mail.answers)
    if row is None:
        return "dropped", "a bounce of a message we did not send", None, None
    answer = report.answer or "the receiving server returned the message"
    if row["status"] not in BOUNCEABLE:
        return "dropped", f"message {row['id']} is {row['status']} already", \
            row["entity"], row["record_id"]
    settle(inst, conn, row, "bounced", answer)
    return "bounced", answer, row["entity"], row["record_id"]


def _sent_message(inst: Instance, conn: Connection, report: DeliveryReport,
                  answers: tuple[str, ...]) -> Mapping[str, Any] | None:
    """The outbox row the report returns (see the module's docstring), or None."""
    table = inst.schema.system("mail")
    for text in (*report.message_ids, *reversed(answers)):
        mail_id = sent_mail_id(text)
        if mail_id is not None:
            row = conn.execute(sa.select(table).where(table.c.id == mail_id)).mappings().first()
            if row is not None:
                return row
    record = record_of_reply_address(inst, conn, report.reply_addresses)
    if record is None:
        return None
    query = sa.select(table).where(table.c.entity == record[0], table.c.record_id == record[1],
                                   table.c.status == "sent")
    if report.recipients:
        query = query.where(sa.func.lower(table.c.to_address).in_(report.recipients))
    return conn.execute(query.order_by(table.c.id.desc()).limit(1)).mappings().first()
