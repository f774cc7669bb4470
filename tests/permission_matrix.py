"""The world of tests/test_permission_matrix.py: a shipped pack installed with a sample of its
demo data, a reader per role, the hidden values planted, and what each reader should see —
the ids of the records its row filter admits, worked out with `read_filter` in a plain SELECT
over the table, independently of every read path under test.

The demo data is sampled (the first rows of each data file and every record they link to),
so that a pack loads in seconds and still has many owners, teams, regions and workflow
states: each role's row filters admit some records and refuse others. The reader of a role is
the first demo user (by username) who holds that role alone, or a new user with it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from api_support import bearer
from support import insert_user

from builder.linker import check_paths
from builder.model import AppModel, Entity
from runtime.core.instance import Actor, Instance
from runtime.core.values import json_value
from runtime.http.auth import actor_for_token, create_token
from runtime.read.permissions import can, hidden_fields, read_filter

ROOT = Path(__file__).resolve().parent.parent / "verticals"
PACKS = {
    "core": [ROOT / "core"],
    "real_estate": [ROOT / "core", ROOT / "real_estate"],
    "telecom": [ROOT / "core", ROOT / "telecom"],
    "finance": [ROOT / "core", ROOT / "finance"],
    "hotel": [ROOT / "core", ROOT / "hotel"],
}
SAMPLE = 12  # demo rows kept per data file, before the records they link to
TEXT_TYPES = ("text", "longtext", "richtext", "email", "phone", "url")
NUMBER_TYPES = ("integer", "decimal", "money", "percent")
HIDDEN_NUMBER = 7391000  # plus the field's number: planted in hidden number fields


@functools.cache
def sample_model(pack: str, per_file: int = SAMPLE) -> AppModel:
    """The pack's model with a sample of its demo data (see the module's docstring)."""
    model, diags = check_paths(list(PACKS[pack]), demo=True)
    assert model is not None, [d.format() for d in diags]
    return sample_demo(model, per_file)


def sample_demo(model: AppModel, per_file: int) -> AppModel:
    """`model` with the first `per_file` rows of each demo file (every user and team), and
    every row those link to, transitively, so that each link finds its record."""
    by_key: dict[tuple[str, str], tuple[int, int]] = {}
    for index, demo in enumerate(model.demo):
        for row, values in enumerate(demo.records):
            if values.get("_key") is not None:
                by_key[(demo.entity, str(values["_key"]))] = (index, row)
    todo = [(index, row) for index, demo in enumerate(model.demo)
            for row in range(len(demo.records) if demo.entity in ("user", "team")
                             else min(per_file, len(demo.records)))]
    keep: set[tuple[int, int]] = set()
    while todo:
        place = todo.pop()
        if place in keep:
            continue
        keep.add(place)
        demo = model.demo[place[0]]
        entity = model.entities[demo.entity]
        for name, raw in demo.records[place[1]].items():
            f = entity.fields.get(name)
            if f is None or f.type not in ("link", "links") or raw is None:
                continue
            for item in raw if isinstance(raw, list) else [raw]:
                found = by_key.get((f.to or "", str(item)))
                if found is not None:
                    todo.append(found)
    files = tuple(dataclasses.replace(demo, records=tuple(
        values for row, values in enumerate(demo.records) if (index, row) in keep))
        for index, demo in enumerate(model.demo))
    return dataclasses.replace(model, demo=files)


# -- readers ------------------------------------------------------------------------------------


@dataclass
class Reader:
    """A user holding one role, with an API token; `admitted` is filled as entities are
    asked for."""

    role: str
    actor: Actor
    token: str
    admitted_ids: dict[str, frozenset[int]] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


def reader_for(inst: Instance, role: str) -> Reader:
    """The first user (by username) whose only role is `role`; a new one when there is none.
    The Actor is the one the API makes of the user's token."""
    users, granted = inst.schema.table("user"), inst.schema.system("user_role")
    with inst.engine.connect() as conn:
        holders = conn.execute(sa.select(users.c.id, users.c.username, granted.c.role).join(
            granted, granted.c.user_id == users.c.id).where(
            users.c.active.is_not(False), users.c.is_admin.is_not(True)).order_by(
            users.c.username)).all()
    roles: dict[int, set[str]] = {}
    for user_id, _, name in holders:
        roles.setdefault(user_id, set()).add(name)
    user_id = next((uid for uid, _, _ in holders if roles[uid] == {role}), None)
    if user_id is None:
        user_id = insert_user(inst, f"matrix_{role}", roles=(role,)).user_id
    token = create_token(inst, user_id, f"permission matrix: {role}")
    actor = actor_for_token(inst, token)
    assert actor is not None and actor.roles == frozenset({role}), (role, actor)
    return Reader(role, actor, token)


def admitted(inst: Instance, reader: Reader, entity: str) -> frozenset[int]:
    """The ids of the records of `entity` the reader's row filter admits: `read_filter` in a
    plain SELECT over the table (all of them when there is no filter)."""
    if entity not in reader.admitted_ids:
        table = inst.schema.table(entity)
        stmt = sa.select(table.c.id)
        if not can(inst, reader.actor, entity, "read"):
            reader.admitted_ids[entity] = frozenset()
            return reader.admitted_ids[entity]
        row_filter = read_filter(inst, reader.actor, entity, table)
        if row_filter is not None:
            stmt = stmt.where(row_filter)
        with inst.engine.connect() as conn:
            reader.admitted_ids[entity] = frozenset(conn.execute(stmt).scalars())
    return reader.admitted_ids[entity]


def all_ids(inst: Instance, entity: str) -> frozenset[int]:
    table = inst.schema.table(entity)
    with inst.engine.connect() as conn:
        return frozenset(conn.execute(sa.select(table.c.id)).scalars())


def readable_entities(inst: Instance, reader: Reader, *, system: bool = False
                      ) -> list[Entity]:
    """The entities of which the reader may read some records; with `system`, the users and
    teams too (every user may read them, but not all of their fields)."""
    return [e for e in sorted(inst.model.entities.values(), key=lambda e: e.name)
            if (system or not e.system) and can(inst, reader.actor, e.name, "read")]


# -- hidden values ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Marker:
    """A value planted in a field hidden from some role: its texts must appear in no answer
    to a reader the field is hidden from (empty for types with no distinctive value)."""

    entity: str
    field: str
    texts: tuple[str, ...]


def plant_hidden_values(inst: Instance) -> dict[tuple[str, str], Marker]:
    """Every field some role has hidden gets a distinctive value in every record: text
    fields `ZQ<nnn>X` (with the id after it when the field is unique), number fields
    HIDDEN_NUMBER + <nnn>, where <nnn> numbers the field. Written straight into the table
    after the demo data, so that nothing computed from them (no visible formula may read a
    hidden field: W201) changes; and into the audit trail, as a change of every record, so
    that a timeline showing the changes of hidden fields shows these values too."""
    markers: dict[tuple[str, str], Marker] = {}
    audit = inst.schema.system("audit")
    hidden = sorted({(e.name, name) for e in inst.model.entities.values()
                     for perm in e.permissions.values() for name in perm.hidden})
    with inst.engine.begin() as conn:
        for number, (entity, name) in enumerate(hidden):
            f = inst.model.entity(entity).fields[name]
            table = inst.schema.table(entity)
            if f.type in TEXT_TYPES:
                text = f"ZQ{number:03d}X"
                value: Any = (sa.literal(text) + sa.cast(table.c.id, sa.String)) \
                    if f.unique else text
                markers[(entity, name)] = Marker(entity, name, (text,))
            elif f.type in NUMBER_TYPES:
                value = HIDDEN_NUMBER + number
                markers[(entity, name)] = Marker(entity, name, number_texts(value))
            else:
                markers[(entity, name)] = Marker(entity, name, ())
                continue
            conn.execute(table.update().values({name: value}))
            changes = [{"entity": entity, "record_id": record_id, "action": "update",
                        "field": name, "old_value": json.dumps(None),
                        "new_value": json.dumps(json_value(planted)), "user_id": None,
                        "at": inst.now()}
                       for record_id, planted in conn.execute(
                           sa.select(table.c.id, table.c[name])).all()]
            if changes:
                conn.execute(audit.insert(), changes)
    return markers


def number_texts(value: int) -> tuple[str, ...]:
    """How a page may write `value`: plain, or grouped in English, German or French style."""
    grouped = f"{value:,}"
    return (str(value), grouped, grouped.replace(",", "."), grouped.replace(",", "\u202f"))


def hidden_markers(inst: Instance, reader: Reader, markers: dict[tuple[str, str], Marker]
                   ) -> list[Marker]:
    """The planted values the reader must never see."""
    return [m for (entity, name), m in markers.items()
            if m.texts and name in hidden_fields(inst, reader.actor, entity)]


def leaked(body: str, markers: list[Marker]) -> list[str]:
    """`entity.field` of each planted hidden value found in `body`."""
    return [f"{m.entity}.{m.field}" for m in markers if any(t in body for t in m.texts)]


def json_keys(value: Any) -> Iterator[str]:
    """Every key of every object in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from json_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_keys(item)
