"""The one-time set-password link e-mailed to a user an administrator just made (docs/mail.md
"Mail to staff"), through the outbox like every message CRMForge sends. The administrator's
page shows the link too, so a user without an address, or an instance without a mail server,
still gets one.
"""

from __future__ import annotations

from runtime.core.db import write_transaction
from runtime.core.instance import Instance
from runtime.process.mail.compose import Address, Composed
from runtime.process.mail.outbox import queue
from runtime.process.mail.server import server_of
from runtime.read.queries import load

SUBJECT = "Your CRMForge account: choose your password"
BODY = """Hello {name},

an account was made for you on CRMForge; your user name is {username}.

Choose your password with this link (it works once, for {days} days):

{link}

If you did not expect this message, you can ignore it.
"""


def mail_password_link(inst: Instance, user_id: int, link: str, days: int) -> bool:
    """Queue `link` (valid `days` days) to the user, when a mail server is set up and the
    user has an address; whether it was queued."""
    if server_of(inst) is None:
        return False
    with write_transaction(inst.engine) as conn:
        user = load(inst, conn, "user", user_id)
        if user is None or not user.get("email"):
            return False
        text = BODY.format(name=user.get("full_name") or user["username"],
                           username=user["username"], link=link, days=days)
        return queue(inst, conn, "user", user_id, Address(str(user["email"])),
                     Composed(SUBJECT, text, None)) is not None
