"""Unsubscribe links: a signed token naming a record and its consent field, and withdrawing
that consent without signing in (`GET/POST /unsubscribe/<token>`).

The signing key lives in `crm_secret` (created on first use), so the worker that writes the
link and the web server that reads it agree without sharing a file.
"""

from __future__ import annotations

import secrets
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.engine import Connection

from runtime.core.db import write_transaction
from runtime.core.instance import Actor, Instance
from runtime.core.keys import stored_secret
from runtime.process.mail.server import setting
from runtime.read.queries import load
from runtime.write import records
from runtime.write.timeline import record_event

SALT = "crmforge.unsubscribe"
SYSTEM = Actor.system_actor("unsubscribe link")


def signing_key(inst: Instance, conn: Connection) -> str:
    """The key that signs the links mail carries (unsubscribe, reply addresses; each with a
    salt of its own)."""
    return stored_secret(inst, conn, SALT, lambda: secrets.token_hex(32))


def unsubscribe_url(inst: Instance, conn: Connection, consent: dict[str, Any]) -> str:
    """The absolute link (setting `BASE_URL`) that withdraws `consent` ({entity, id, field})."""
    token = URLSafeSerializer(signing_key(inst, conn), salt=SALT).dumps(
        [consent["entity"], consent["id"], consent["field"]])
    return f"{str(setting(inst, 'BASE_URL', '')).rstrip('/')}/unsubscribe/{token}"


def read_token(inst: Instance, token: str) -> tuple[str, int, str] | None:
    """(entity, id, field) of a token this instance signed; None for any other text."""
    with write_transaction(inst.engine) as conn:
        key = signing_key(inst, conn)
    try:
        entity, record_id, field = URLSafeSerializer(key, salt=SALT).loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    ent = inst.model.entities.get(str(entity))
    if ent is None or field not in ent.fields or not isinstance(record_id, int):
        return None
    return str(entity), record_id, str(field)


def withdraw(inst: Instance, entity: str, record_id: int, field: str) -> bool:
    """Set the consent field to no and say so on the record's timeline, with the date;
    False when the record is gone. Withdrawing twice changes nothing the second time."""
    with write_transaction(inst.engine) as conn:
        record = load(inst, conn, entity, record_id)
        if record is None:
            return False
        if record.get(field) is not False:
            records.update(inst, SYSTEM, entity, record_id, {field: False},
                           version=record["version"], conn=conn)
            label = inst.model.entity(entity).fields[field].label.get()
            record_event(inst, conn, entity, record_id, "change",
                         f"{label}: withdrawn through the unsubscribe link on "
                         f"{inst.today().isoformat()}.", {"unsubscribe": field}, None,
                         key="unsubscribed",
                         params={"field": field, "date": inst.today().isoformat()})
    return True
