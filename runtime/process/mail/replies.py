"""How a message we sent is recognised when something comes back: the signed reply address
(`reply+<token>@…`) that names the record a message is about, and the Message-ID the outbox
gives each message (`<…crm-mail-<id>@…>`), which names its `crm_mail` row.

Both the outbox (which writes them) and inbound mail (which reads them: replies, bounces)
use this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.utils import make_msgid, parseaddr

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.engine import Connection

from runtime.core.instance import Instance
from runtime.process.mail.consent import signing_key
from runtime.process.mail.server import sender_of

REPLY_SALT = "crmforge.reply"
OUR_ID = re.compile(r"crm-mail-(\d+)@")


def message_id(mail_id: int) -> str:
    """A new Message-ID for the outbox's message `mail_id` (recognised by `sent_mail_id`)."""
    return make_msgid(f"crm-mail-{mail_id}")


def sent_mail_id(text: str) -> int | None:
    """The `crm_mail` id a Message-ID (or any text holding one) of ours names; None."""
    found = OUR_ID.search(text)
    return int(found.group(1)) if found else None


def reply_address(inst: Instance, conn: Connection, entity: str, record_id: int) -> str:
    """The address that brings a reply onto the record's timeline: `reply+<token>@` the
    domain of `MAIL_FROM`, the token signed with this instance's key."""
    token = URLSafeSerializer(signing_key(inst, conn), salt=REPLY_SALT).dumps(
        [entity, record_id])
    domain = parseaddr(sender_of(inst))[1].rpartition("@")[2] or "localhost"
    return f"reply+{token}@{domain}"


def record_of_reply_address(inst: Instance, conn: Connection, addresses: Iterable[str]
                            ) -> tuple[str, int] | None:
    """(entity, id) the first validly signed reply address among `addresses` names."""
    serializer = URLSafeSerializer(signing_key(inst, conn), salt=REPLY_SALT)
    for address in addresses:
        local = address.partition("@")[0]
        if local.startswith("reply+"):
            try:
                entity, record_id = serializer.loads(local[len("reply+"):])
            except (BadSignature, ValueError, TypeError):
                continue
            if isinstance(entity, str) and isinstance(record_id, int):
                return entity, record_id
    return None
