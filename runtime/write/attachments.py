"""Attachment rows (`crm_attachment`): what was uploaded for which record, by whom, and under
which storage key. The bytes themselves are kept by the web layer
(`runtime.http.web.attachments`, outside the web root); this module only writes and reads the
rows, and checks the values of `file` / `image` fields for the write path (`records`).

A `file` / `image` field holds the id of an attachment of its own record. A file uploaded
with a new record's form is staged on the record's own transaction with `record_id` PENDING;
`records.create` checks the field against it and binds it to the new record before that
transaction commits, so a PENDING row is never seen outside it (and a form that fails stores
nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from builder.model import Entity
from runtime.core.db import in_transaction, write_transaction
from runtime.core.values import FILE_TYPES, Errors, is_empty

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

PENDING = -1  # the record_id of a file staged for a record being created in this transaction
T = TypeVar("T")


@dataclass(frozen=True)
class NewFile:
    """An upload whose bytes are stored under `storage_key`, for the file field `field`."""

    field: str
    filename: str
    content_type: str
    size: int
    storage_key: str


def saving(inst: Instance, actor: Actor, entity: str, record_id: int | None,
           files: Iterable[NewFile], write: Callable[[Connection, dict[str, str]], T]) -> T:
    """Run `write(conn, {field: attachment id})` — the record's create (`record_id` None) or
    update — in one transaction with the rows of `files`: the rows commit with the record or
    not at all."""
    def work(conn: Connection) -> T:
        ids = {f.field: str(stage(inst, conn, actor, entity, record_id, filename=f.filename,
                                  content_type=f.content_type, size=f.size,
                                  storage_key=f.storage_key)) for f in files}
        return write(conn, ids)

    return in_transaction(inst.engine, None, work)


def add(inst: Instance, actor: Actor, entity: str, record_id: int, *, filename: str,
        content_type: str, size: int, storage_key: str) -> int:
    """Describe one stored upload of `actor` for an existing record; the new row's id."""
    with write_transaction(inst.engine) as conn:
        return stage(inst, conn, actor, entity, record_id, filename=filename,
                     content_type=content_type, size=size, storage_key=storage_key)


def stage(inst: Instance, conn: Connection, actor: Actor, entity: str, record_id: int | None,
          *, filename: str, content_type: str, size: int, storage_key: str) -> int:
    """Describe one upload on the caller's transaction: for record `record_id`, or (None) for
    the record that `records.create` is about to make on `conn`. The new row's id."""
    table = inst.schema.system("attachment")
    return conn.execute(table.insert().values(
        entity=entity, record_id=PENDING if record_id is None else record_id,
        filename=filename, content_type=content_type, size=size, storage_key=storage_key,
        user_id=actor.user_id, created_at=inst.now()).returning(table.c.id)).scalar_one()


def _file_values(ent: Entity, record: Mapping[str, Any], names: Iterable[str]
                 ) -> dict[str, int]:
    """{field: attachment id} of the named `file` / `image` fields that hold a value."""
    return {name: int(record[name]) for name in names
            if ent.fields[name].type in FILE_TYPES and not is_empty(record.get(name))}


def check_files(inst: Instance, conn: Connection, actor: Actor, ent: Entity,
                record: Mapping[str, Any], names: Iterable[str], record_id: int | None,
                errors: Errors) -> None:
    """Each named file field holds an attachment of this record (`record_id`), or, on create
    (None), one `actor` staged for it on this transaction; an error on the field otherwise."""
    wanted = _file_values(ent, record, names)
    if not wanted:
        return
    table = inst.schema.system("attachment")
    rows = {r.id: r for r in conn.execute(
        sa.select(table.c.id, table.c.entity, table.c.record_id, table.c.user_id)
        .where(table.c.id.in_(sorted(set(wanted.values())))))}
    for name, attachment_id in wanted.items():
        row = rows.get(attachment_id)
        if row is not None and row.entity == ent.name and (
                row.record_id == record_id if record_id is not None
                else row.record_id == PENDING and row.user_id == actor.user_id):
            continue
        errors.setdefault(name, []).append(
            f"must be a file attached to this {ent.label}; upload it through the form"
            if record_id is not None else
            f"must be a file uploaded with the new {ent.label}'s form; attach other files "
            "once the record exists")


def bind(inst: Instance, conn: Connection, ent: Entity, record_id: int,
         record: Mapping[str, Any]) -> None:
    """Give the files staged for a new record (see `check_files`) its id."""
    ids = sorted(set(_file_values(ent, record, ent.fields).values()))
    if not ids:
        return
    table = inst.schema.system("attachment")
    conn.execute(table.update().where(table.c.id.in_(ids), table.c.entity == ent.name,
                                      table.c.record_id == PENDING).values(
        record_id=record_id))


def listing(inst: Instance, entity: str, record_id: int) -> list[dict[str, Any]]:
    """A record's attachments, newest first, each with `by`: the uploader's full name."""
    table = inst.schema.system("attachment")
    users = inst.schema.table("user")
    query = (sa.select(table, users.c.full_name.label("by"))
             .select_from(table.outerjoin(users, users.c.id == table.c.user_id))
             .where(table.c.entity == entity, table.c.record_id == record_id)
             .order_by(table.c.id.desc()))
    with inst.primary_reader() as conn:  # the primary: the page after an upload shows it
        return [dict(r) for r in conn.execute(query).mappings()]


def find(inst: Instance, attachment_id: int) -> dict[str, Any] | None:
    """One attachment row; None when there is none with this id."""
    table = inst.schema.system("attachment")
    with inst.primary_reader() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == attachment_id)).mappings().first()
    return dict(row) if row is not None else None
