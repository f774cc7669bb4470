"""The ids that live on after a merge (`crm_record_alias`, written by `runtime.write.merge`):
which record an absorbed record's id names now, so that its old address answers with a
redirect to the survivor (docs/web.md, docs/api.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from runtime.core import caches
from runtime.read.queries import reading

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Instance


def survivor(inst: Instance, entity: str, record_id: int, *,
             conn: Connection | None = None) -> int | None:
    """The id of the record that absorbed `entity` #`record_id`, or None. A record that holds
    the id itself wins over the alias (SQLite may give the id of a deleted newest row to the
    next new one), so an alias never hides a live record."""
    if entity not in inst.model.entities:
        return None
    with reading(inst, conn) as c:
        return c.execute(_statement(inst, entity), {"entity": entity, "old_id": record_id}
                         ).scalar()


def _statement(inst: Instance, entity: str) -> Any:
    """SELECT record_id FROM crm_record_alias WHERE (entity, old_id) and no row has the id,
    built once per entity table."""
    table = inst.schema.table(entity)
    aliases = inst.schema.system("record_alias")

    def build() -> Any:
        live = sa.select(table.c.id).where(table.c.id == aliases.c.old_id).exists()
        return sa.select(aliases.c.record_id).where(
            aliases.c.entity == sa.bindparam("entity"),
            aliases.c.old_id == sa.bindparam("old_id"), ~live)

    return caches.STATEMENTS.get(table, "alias", build)
