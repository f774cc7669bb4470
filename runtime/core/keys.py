"""Secrets an instance makes for itself and keeps in `crm_secret`: the key of unsubscribe
links, the signing secret of a webhook. Made on first use, once — when two processes race, the
one that inserts first wins and the other reads its value — so every process (the worker that
writes a link, the web server that reads it) agrees without sharing a file.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from runtime.core.instance import Instance


def stored_secret(inst: Instance, conn: Connection, name: str, make: Callable[[], str]) -> str:
    """The secret called `name`, made with `make()` and stored the first time it is asked for."""
    table = inst.schema.system("secret")
    found = conn.execute(sa.select(table.c.value).where(table.c.name == name)).scalar()
    if found is None:
        try:
            with conn.begin_nested():
                found = make()
                conn.execute(table.insert().values(name=name, value=found))
        except IntegrityError:  # another process made it first
            found = conn.execute(sa.select(table.c.value).where(table.c.name == name)).scalar()
    return str(found)
