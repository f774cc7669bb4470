"""Expression contexts at run time: the model as an expression scope, the acting user, and
contexts for the Python evaluator (with a `fetch` that follows links in the database) and for
the SQL compiler. Built from an Instance and an Actor, never from globals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from builder.expressions import EvalContext, FieldRef, UserInfo
from builder.model import AppModel, Entity
from runtime.core import caches, rowcache
from runtime.core.expressions import SqlContext
from runtime.core.schema import by_id, rows_by_id
from runtime.core.values import as_id

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance


class ModelScope:
    """The fields of every entity of a model, as the expression checker sees them."""

    def __init__(self, model: AppModel):
        self._fields = {
            name: {f.name: FieldRef(f.name, f.type, f.to) for f in entity.fields.values()}
            for name, entity in model.entities.items()}

    def fields(self, entity: str) -> Mapping[str, FieldRef] | None:
        return self._fields.get(entity)


def scope_of(model: AppModel) -> ModelScope:
    """The scope of `model`, built once per model hash."""
    return caches.SCOPES.get(model.hash, lambda: ModelScope(model))


def user_info(inst: Instance, actor: Actor) -> UserInfo:
    """The actor as expressions see it: `user.roles` holds inherited roles too."""
    return UserInfo(id=actor.user_id, username=actor.username,
                    roles=inst.model.role_closure(tuple(actor.roles)), team=actor.team,
                    fields=dict(actor.fields))


class Fetcher:
    """`fetch(entity, id)` for the evaluator: one row by id, cached for one operation."""

    def __init__(self, inst: Instance, conn: Connection | None):
        self.inst = inst
        self.conn = conn
        self.cache: dict[tuple[str, Any], Mapping[str, Any] | None] = {}

    def __call__(self, entity: str, key: Any) -> Mapping[str, Any] | None:
        if key is None or entity not in self.inst.model.entities:
            return None
        try:
            key = int(key)
        except (TypeError, ValueError):
            return None
        if (entity, key) not in self.cache:
            table = self.inst.schema.table(entity)
            kept = rowcache.cached(self.conn, table.name, key)
            if kept is not rowcache.MISSING:
                self.cache[(entity, key)] = kept  # type: ignore[assignment]
                return self.cache[(entity, key)]
            query = by_id(table)
            if self.conn is not None:
                row = self.conn.execute(query, {"_crm_id": key}).mappings().first()
            else:
                with self.inst.primary_reader() as conn:
                    row = conn.execute(query, {"_crm_id": key}).mappings().first()
            self.cache[(entity, key)] = dict(row) if row is not None else None
            rowcache.keep(self.conn, table.name, key, self.cache[(entity, key)])
        return self.cache[(entity, key)]

    def prefetch(self, entity: str, keys: Iterable[Any]) -> None:
        """Read the records of `keys` that are not cached yet, 500 a query, into the cache:
        a batch's linked records at once instead of one read each (needs a connection)."""
        if self.conn is None or entity not in self.inst.model.entities:
            return
        table = self.inst.schema.table(entity)
        missing = []
        for key in sorted({k for k in map(as_id, keys)
                           if k is not None and (entity, k) not in self.cache}):
            kept = rowcache.cached(self.conn, table.name, key)
            if kept is rowcache.MISSING:
                missing.append(key)
            else:
                self.cache[(entity, key)] = kept  # type: ignore[assignment]
        found = rows_by_id(self.conn, table, missing)
        for key in missing:
            self.cache[(entity, key)] = found.get(key)
            rowcache.keep(self.conn, table.name, key, found.get(key))

    def prefetch_links(self, ent: Entity, records: Iterable[Mapping[str, Any]],
                       names: Iterable[str] | None = None) -> None:
        """`prefetch` the records that `records` of `ent` link to through its link fields
        (those of `names`), one query per linked entity and 500 ids; a value that is not an
        id is passed over (the checks say what is wrong with it)."""
        fields = [f for f in ent.fields.values() if f.to is not None
                  and f.type in ("link", "links") and (names is None or f.name in names)]
        wanted: dict[str, set[int]] = {}
        for record in records:
            for field in fields:
                raw = record.get(field.name)
                for item in raw if isinstance(raw, list) else [raw]:
                    record_id = as_id(item)
                    if record_id is not None:
                        wanted.setdefault(field.to or "", set()).add(record_id)
        for entity, ids in wanted.items():
            self.prefetch(entity, ids)

    def find(self, entity: str, field: str, value: Any) -> int | None:
        """`lookup()`: the lowest id of the `entity` records whose `field` equals `value`."""
        if entity not in self.inst.model.entities:
            return None
        table = self.inst.schema.table(entity)
        if field not in table.c:
            return None
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)  # stored as naive UTC
        query = sa.select(sa.func.min(table.c.id)).where(table.c[field] == value)
        if self.conn is not None:
            return self.conn.execute(query).scalar()
        with self.inst.primary_reader() as conn:
            return conn.execute(query).scalar()

    def forget(self, entity: str, key: Any) -> None:
        self.cache.pop((entity, key), None)


def eval_context(inst: Instance, actor: Actor | None, entity: str, record: Mapping[str, Any],
                 *, old: Mapping[str, Any] | None = None, fetch: Fetcher | None = None,
                 conn: Connection | None = None) -> EvalContext:
    """An evaluator context for one record, with the instance's clock and link following."""
    now = inst.now()
    return EvalContext(
        record=record, entity=entity, old=old,
        user=user_info(inst, actor) if actor is not None else None,
        now=now.replace(tzinfo=UTC) if now.tzinfo is None else now, today=now.date(),
        fetch=fetch if fetch is not None else Fetcher(inst, conn),
        scope=scope_of(inst.model))


def sql_context(inst: Instance, actor: Actor | None, entity: str) -> SqlContext:
    """A SQL compiler context: `user` is the actor (None for the system)."""
    now = inst.now()
    user = user_info(inst, actor) if actor is not None and actor.user_id is not None else None
    return SqlContext(entity, _table_of(inst), scope_of(inst.model), user, now.date(),
                      now.replace(tzinfo=UTC) if now.tzinfo is None else now)


def _table_of(inst: Instance):  # noqa: ANN202 - a small closure
    def table(entity: str) -> sa.Table:
        return inst.schema.table(entity)
    return table
