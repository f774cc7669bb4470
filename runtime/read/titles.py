"""Record titles: the entity's `title` template or `title_field`, with linked records shown by
their own titles — for one record, or for a whole page with one query per linked entity.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from builder.expressions import EvalContext, render_template, template_names
from builder.expressions.slots import format_value
from builder.model import Entity, Field
from runtime.core.context import Fetcher, scope_of
from runtime.read.permissions import read_filter

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance


def _link_ids(value: Any) -> list[int]:
    items = value if isinstance(value, list | tuple) else [value]
    return [int(v) for v in items if isinstance(v, int) and not isinstance(v, bool)]


def title(inst: Instance, entity: str, record: Mapping[str, Any], *,
          conn: Connection | None = None,
          links: Mapping[str, Mapping[int, str]] | None = None) -> str:
    """The record's title: the entity's `title` template or `title_field`.

    A link inside the title shows the linked record's title — taken from `links` (as
    `link_titles` returns them), else looked up through `conn`, else shown as "#id".
    """
    ent = inst.model.entity(entity)
    fetch = Fetcher(inst, conn) if conn is not None else (lambda _entity, _key: None)

    def linked(field: Field, value: Any) -> str:
        if value is None:
            return ""
        known = (links or {}).get(field.name, {})
        if value in known:
            return known[value]
        if conn is not None and field.to in inst.model.entities:
            row = fetch(field.to, value)
            if row is not None:
                return _plain_title(inst, inst.model.entity(field.to), row)
        return f"#{value}"

    def formatter(path: tuple[str, ...], value: Any) -> str:
        field = ent.fields.get(path[0])
        if len(path) == 1 and field is not None:
            if field.type == "link":
                return linked(field, value)
            if field.type == "choice":
                return field.option_label(value)
        return format_value(value)

    if ent.title:
        ctx = EvalContext(record=record, entity=entity, fetch=fetch, scope=scope_of(inst.model))
        text = _trim(render_template(ent.title, ctx, formatter=formatter))
    elif ent.title_field and ent.title_field in ent.fields:
        text = formatter((ent.title_field,), record.get(ent.title_field))
    else:
        text = ""
    return text.strip() or f"{ent.label} #{record.get('id')}"


_LEADING = re.compile(r"^\s*(?:[,;]+\s*|[—–\-:|/·]+\s+)+")
_ONLY_SEPARATORS = re.compile(r"[\s—–\-,:;|/·]*")
_TRAILING = re.compile(r"(?:\s*[,;]+|\s+[—–\-:|/·]+)+\s*$")


def _trim(text: str) -> str:
    """A rendered title without the separators left dangling by empty fields
    ("Flat — " -> "Flat"); a leading minus sign stays ("-5.00")."""
    text = _TRAILING.sub("", _LEADING.sub("", text.strip())).strip()
    return "" if _ONLY_SEPARATORS.fullmatch(text) else text


def _plain_title(inst: Instance, ent: Entity, row: Mapping[str, Any],
                 nested: Mapping[str, Mapping[int, str]] | None = None) -> str:
    return title(inst, ent.name, row, links=nested or {})


def titles_of(inst: Instance, conn: Connection, entity: str, ids: set[int],
              actor: Actor | None, depth: int = 1) -> dict[int, str]:
    """{id: title} of the `entity` records with these ids (those `actor` may read, when
    given); links inside titles are resolved `depth` levels deep, one query per entity."""
    ent = inst.model.entity(entity)
    table = inst.schema.table(entity)
    rows: list[dict[str, Any]] = []
    id_list = sorted(ids)
    for start in range(0, len(id_list), 500):
        stmt = sa.select(table).where(table.c.id.in_(id_list[start:start + 500]))
        if actor is not None:
            row_filter = read_filter(inst, actor, entity, table)
            if row_filter is not None:
                stmt = stmt.where(row_filter)
        rows += [dict(r) for r in conn.execute(stmt).mappings()]
    nested: dict[str, dict[int, str]] = {}
    if depth > 0 and ent.title:
        wanted: dict[str, set[int]] = {}
        for path in template_names(ent.title):
            field = ent.fields.get(path[0])
            if len(path) == 1 and field is not None and field.type == "link" and field.to:
                for row in rows:
                    wanted.setdefault(field.name, set()).update(_link_ids(row.get(field.name)))
        for name, field_ids in wanted.items():
            target = ent.fields[name].to
            assert target is not None
            nested[name] = titles_of(inst, conn, target, field_ids, actor, depth - 1)
    return {row["id"]: _plain_title(inst, ent, row, nested) for row in rows}


def link_titles(inst: Instance, conn: Connection, entity: str,
                rows: Sequence[Mapping[str, Any]], *, actor: Actor | None = None
                ) -> dict[str, dict[int, str]]:
    """{link field: {id: title}} for every `link`/`links` field (owner and the other user
    links included) of `rows`: one query per linked entity for the whole page.

    With `actor`, records they may not read get no title (show them as "#id")."""
    ent = inst.model.entity(entity)
    by_target: dict[str, set[int]] = {}
    per_field: dict[str, set[int]] = {}
    for field in ent.fields.values():
        if field.type not in ("link", "links") or field.to not in inst.model.entities:
            continue
        ids = {i for row in rows for i in _link_ids(row.get(field.name))}
        per_field[field.name] = ids
        by_target.setdefault(field.to, set()).update(ids)
    titles = {target: titles_of(inst, conn, target, ids, actor, 1) if ids else {}
              for target, ids in by_target.items()}
    result: dict[str, dict[int, str]] = {}
    for name, ids in per_field.items():
        target = ent.fields[name].to
        assert target is not None
        result[name] = {i: titles[target][i] for i in ids if i in titles[target]}
    return result
