"""Saved views: a user's named list settings (filters, search, sort, layout, columns, calendar
mode — the list's query string as a dict) for one entity, in `crm_saved_view`. Each user sees
and changes only their own; saving under a name the user already has for the entity replaces
that view. A setting the definition no longer has (a field gone from the columns) is left out
when the list reads it, never an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from runtime.core.db import write_transaction
from runtime.core.instance import Actor, Instance
from runtime.read.queries import as_id

# a view opens on its first page, not on another view, with the column chooser closed;
# `entity` and `endpoint` are url_for's own names and `_method` a method override: none of
# them is a list setting (`columns`, the chosen columns in their order, is one)
NOT_SETTINGS = ("saved", "cursor", "chooser", "entity", "endpoint")


def list_settings(args: Mapping[str, Any]) -> dict[str, Any]:
    """The list settings in a query string's `args`: without NOT_SETTINGS and `_` keys (cache
    busters, `_method`), which no list reads."""
    return {str(k): v for k, v in args.items()
            if k not in NOT_SETTINGS and not str(k).startswith("_")}


def _table(inst: Instance) -> sa.Table:
    return inst.schema.system("saved_view")


def saved_views(inst: Instance, actor: Actor, entity: str) -> list[dict[str, Any]]:
    """The user's views of `entity` ({id, name}), by name."""
    table = _table(inst)
    with inst.primary_reader() as conn:  # the primary: the list after a save shows the view
        rows = conn.execute(sa.select(table.c.id, table.c.name).where(
            table.c.user_id == actor.user_id, table.c.entity == entity).order_by(
            table.c.name)).mappings().all()
    return [dict(r) for r in rows]


def saved_settings(inst: Instance, actor: Actor, entity: str,
                   view_id: Any) -> dict[str, Any] | None:
    """The list settings of the user's view `view_id` of `entity`; None when they have no
    such view (or `view_id` is no id at all)."""
    view_id = as_id(view_id)
    if view_id is None:
        return None
    table = _table(inst)
    with inst.primary_reader() as conn:
        settings = conn.execute(sa.select(table.c.settings).where(
            table.c.id == view_id, table.c.user_id == actor.user_id,
            table.c.entity == entity)).scalar()
    if settings is None:
        return None
    if isinstance(settings, str):
        settings = json.loads(settings)
    return list_settings(dict(settings))  # a view saved before these keys were left out


def save_view(inst: Instance, actor: Actor, entity: str, name: str,
              settings: dict[str, Any]) -> None:
    """Save `settings` as the user's view `name` of `entity`, replacing one of that name."""
    table = _table(inst)
    with write_transaction(inst.engine) as conn:
        conn.execute(table.delete().where(table.c.user_id == actor.user_id,
                                          table.c.entity == entity, table.c.name == name))
        conn.execute(table.insert().values(user_id=actor.user_id, entity=entity, name=name,
                                           settings=list_settings(settings),
                                           created_at=inst.now()))


def delete_view(inst: Instance, actor: Actor, view_id: int) -> None:
    """Remove the user's view `view_id` (nothing happens when it is not theirs)."""
    table = _table(inst)
    with write_transaction(inst.engine) as conn:
        conn.execute(table.delete().where(table.c.id == view_id,
                                          table.c.user_id == actor.user_id))
