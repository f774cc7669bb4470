"""The permission matrix, generated from the model: for every shipped pack (installed with its
dependencies and a sample of its demo data), every role and every entity the role may read,
the records a user of that role sees through each read path are exactly those its row filter
admits, and no field hidden from the role shows in any answer. On SQLite and PostgreSQL.

What the row filter admits is worked out apart from every read path: `read_filter` in a plain
SELECT over the table (tests/permission_matrix.py). The read paths:

- every role, every entity it may read (users and teams too): the API list (every page),
  the API record (a readable id 200, an unreadable one 404), the API timeline (the same), the
  CSV export (its ids, and a link to an unreadable record written as its id, not its title),
  and sorting, filtering and quick search by a hidden field — directly or through a link —
  which would tell its values apart (400, or nothing found);
- every entity once, by the reader it tells most about (`web_plan`): the web list (every
  page, and its count), the record page (200 for a record linking to one the reader may not
  read, 404), the kanban board and the calendar (when the entity has them), the global search
  for a value of a readable and of an unreadable record, the link picker of a link to the
  entity, and a new form and a list filter whose link to the entity is filled in with an id;
- every role: its dashboards through the API (each count equal to the count under the row
  filter, group by group; a group of a linked record the user may not read has no title),
  the dashboard pages and the home page.

Hidden fields: a distinctive value is planted in every field some role has hidden (text and
number fields, in the records and in their audit trail; tests/permission_matrix.py); neither
it nor the field's name as a JSON key may appear in any answer to a reader it is hidden from.
And no page names a record the reader may not read: a link to a record shows its title only
when the reader may read it ("#id" otherwise).

Core runs always (about 15 s a database); the vertical packs (more roles, entities and
records: 20-60 s each) are marked slow.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from api_support import bearer
from permission_matrix import (
    PACKS,
    Marker,
    Reader,
    admitted,
    all_ids,
    hidden_markers,
    json_keys,
    leaked,
    plant_hidden_values,
    readable_entities,
    reader_for,
    sample_model,
)
from web_support import make_app, sign_in

from builder.model import Entity, Widget
from runtime.core.context import sql_context
from runtime.core.expressions import to_sql
from runtime.core.instance import Instance
from runtime.core.values import json_value
from runtime.http.auth import create_token
from runtime.ops.demo import load_demo
from runtime.read.permissions import can, grants, hidden_fields, read_filter
from runtime.write import records

API_PAGE = 40  # records per API page: most lists take several
SEARCHABLE = ("text", "longtext", "email", "url", "autonumber")
RECORD_LINK = re.compile(r'<a\b[^>]*\bhref="/e/([a-z][a-z0-9_]*)/(\d+)"[^>]*>(.*?)</a>', re.S)
TITLE_LINK = r'<a class="title" href="/e/{entity}/(\d+)"'
COUNT = re.compile(r'<strong style="color:var\(--text\)">([^<]*)</strong>')
NEXT_PAGE = re.compile(r'rel="next" href="([^"]+)"')
TAG = re.compile(r"<[^>]+>")


@dataclass
class World:
    """An installed pack: the instance, a web client per role, the planted hidden values and
    the problems found so far (all reported at the end, not just the first)."""

    inst: Instance
    app: Any
    readers: dict[str, Reader]
    markers: dict
    clients: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    checked: Counter = field(default_factory=Counter)  # read path -> cases checked

    def client(self, reader: Reader) -> Any:
        if reader.role not in self.clients:
            client = self.app.test_client()
            sign_in(client, self.inst, reader.actor)
            self.clients[reader.role] = client
        return self.clients[reader.role]

    def api(self, reader: Reader, path: str) -> Any:
        return self.client(reader).get(f"/api/v1/{path}", headers=reader.headers)

    def web(self, reader: Reader, path: str) -> Any:
        return self.client(reader).get(path)

    def problem(self, reader: Reader, where: str, message: str) -> None:
        self.problems.append(f"{reader.role} ({reader.actor.username}) {where}: {message}")

    def admitted(self, reader: Reader, entity: str) -> frozenset[int]:
        return admitted(self.inst, reader, entity)

    def secrets(self, reader: Reader) -> list[Marker]:
        return hidden_markers(self.inst, reader, self.markers)

    def look(self, reader: Reader, where: str, body: str, *, html_page: bool = False) -> None:
        """No planted hidden value in `body`; on a page, no titled link to a record the
        reader may not read."""
        found = leaked(body, self.secrets(reader))
        if found:
            self.problem(reader, where, f"shows hidden values of {', '.join(found)}")
        if html_page:
            for entity, record_id, text in titled_links(body):
                if entity in self.inst.model.entities and \
                        not self.inst.model.entity(entity).system and \
                        int(record_id) not in self.admitted(reader, entity):
                    self.problem(reader, where, f"names {entity} #{record_id}, which the "
                                 f"reader may not read, as “{text}”")

    def json_fields(self, reader: Reader, where: str, entity: str, records: Iterable[dict]
                    ) -> None:
        hidden = hidden_fields(self.inst, reader.actor, entity)
        shown = set(json_keys(list(records))) & hidden
        if shown:
            self.problem(reader, where, f"answers hidden fields {sorted(shown)}")

    def compare(self, reader: Reader, where: str, seen: Iterable[int] | None,
                expected: frozenset[int]) -> None:
        self.checked[where.split(" ", 1)[0]] += 1
        if seen is None:
            return
        seen = set(seen)
        if seen != expected:
            extra, missing = sorted(seen - expected)[:8], sorted(expected - seen)[:8]
            self.problem(reader, where, f"shows {len(seen)} records, the row filter admits "
                         f"{len(expected)}; not admitted but shown: {extra}; admitted but "
                         f"missing: {missing}")


def titled_links(body: str) -> Iterable[tuple[str, str, str]]:
    """(entity, id, text) of each link to a record page that shows a title, not "#id"."""
    for entity, record_id, inner in RECORD_LINK.findall(body):
        text = html.unescape(TAG.sub("", inner)).strip()
        if text and text != f"#{record_id}":
            yield entity, record_id, text


# -- the world ----------------------------------------------------------------------------------


def build_world(pack: str, make_instance: Any, tmp_path: Any) -> World:
    model = sample_model(pack)
    inst = make_instance(model)
    result = load_demo(inst, list(model.packs))
    assert not result.problems, result.problems[:5]
    readers = {role: reader_for(inst, role) for role in sorted(model.roles)}
    claim_records(inst, list(readers.values()))
    markers = plant_hidden_values(inst)
    return World(inst, make_app(inst, tmp_path), readers, markers)


def claim_records(inst: Instance, readers: list[Reader]) -> None:
    """Where a reader's row filter admits none of an entity's records, give them one, the
    way the filter asks for it: a record (one no other reader was given) whose user link the
    filter compares with the user (`owner == user.id`) — or whose linked record's
    (`payment_plan.owner == user.id`) — now points at them, or whose choice or boolean field
    the filter reads (`purpose == 'survey'`) takes the value it wants. Written straight into
    the tables, before anything is read; a change that does not help is undone."""
    claimed: set[tuple[str, int]] = set()
    for reader in readers:
        for entity in readable_entities(inst, reader):
            if read_filter(inst, reader.actor, entity.name) is None:
                continue
            paths = sorted({path for perm in grants(inst, reader.actor, entity)
                            if perm.read not in (True, False) for path in perm.read.names})
            for path in paths:
                if _try_claims(inst, reader, entity,
                               _claims(inst, reader, entity, path, claimed), claimed):
                    break
        reader.admitted_ids.clear()


Change = tuple[str, int, str, Any]  # (entity, record id, field, value)


def _claims(inst: Instance, reader: Reader, entity: Entity, path: tuple[str, ...],
            claimed: set[tuple[str, int]]) -> list[list[Change]]:
    """The changes to try, one after the other (each a list made together)."""
    first = entity.fields.get(path[0])
    if first is None:
        return []
    if len(path) == 1 and first.type in ("link", "choice", "boolean"):
        if first.type == "link":
            values = [reader.actor.user_id] if first.to == "user" else []
        else:
            values = [True, False] if first.type == "boolean" else \
                [o.value for o in first.options]
        record_id = _free(inst, entity.name, claimed)
        return [] if record_id is None else [
            [(entity.name, record_id, first.name, value)] for value in values]
    linked = inst.model.entities.get(first.to or "") if first.type == "link" else None
    second = linked.fields.get(path[1]) if linked is not None and len(path) == 2 else None
    if linked is None or second is None or second.type != "link" or second.to != "user":
        return []
    table = inst.schema.table(entity.name)
    with inst.engine.connect() as conn:  # a record already linked, else link one
        pairs = conn.execute(sa.select(table.c.id, table.c[first.name]).where(
            table.c[first.name].is_not(None)).order_by(table.c.id)).all()
    target = next((t for _, t in pairs if (linked.name, t) not in claimed), None)
    if target is not None:
        return [[(linked.name, target, second.name, reader.actor.user_id)]]
    record_id, target = _free(inst, entity.name, claimed), _free(inst, linked.name, claimed)
    if record_id is None or target is None:
        return []
    return [[(entity.name, record_id, first.name, target),
             (linked.name, target, second.name, reader.actor.user_id)]]


def _free(inst: Instance, entity: str, claimed: set[tuple[str, int]]) -> int | None:
    """The smallest id of `entity` no reader was given yet."""
    with inst.engine.connect() as conn:
        ids = conn.execute(sa.select(inst.schema.table(entity).c.id).order_by(
            inst.schema.table(entity).c.id)).scalars().all()
    return next((i for i in ids if (entity, i) not in claimed), None)


def _try_claims(inst: Instance, reader: Reader, entity: Entity,
                alternatives: list[list[Change]], claimed: set[tuple[str, int]]) -> bool:
    """Whether the reader's filter admits a record of `entity`, after the first of the
    `alternatives` that makes it so (the others are undone)."""
    reader.admitted_ids.pop(entity.name, None)
    if admitted(inst, reader, entity.name):
        return True
    for changes in alternatives:
        before = [(e, i, name, _value(inst, e, i, name)) for e, i, name, _ in changes]
        _write(inst, changes)
        reader.admitted_ids.pop(entity.name, None)
        if admitted(inst, reader, entity.name):
            claimed.update((e, i) for e, i, _, _ in changes)
            return True
        _write(inst, before)
    return False


def _value(inst: Instance, entity: str, record_id: int, name: str) -> Any:
    table = inst.schema.table(entity)
    with inst.engine.connect() as conn:
        return conn.execute(sa.select(table.c[name]).where(table.c.id == record_id)).scalar()


def _write(inst: Instance, changes: list[Change]) -> None:
    with inst.engine.begin() as conn:
        for entity, record_id, name, value in changes:
            table = inst.schema.table(entity)
            conn.execute(table.update().where(table.c.id == record_id).values({name: value}))


def web_plan(world: World) -> dict[str, list[Entity]]:
    """Which reader takes which entity through the web paths: every entity some role may
    read, once, by the reader it tells most about — one whose row filter splits it (admits
    some records, refuses others) and from whom it hides fields, else one of the two — the
    least busy such reader first; and every reader at least one entity, one it splits if
    there is one. Deterministic: the same data gives the same plan."""
    plan: dict[str, list[Entity]] = {role: [] for role in world.readers}
    readable = {role: readable_entities(world.inst, reader)
                for role, reader in world.readers.items()}

    def merit(role: str, entity: Entity) -> int:
        reader = world.readers[role]
        splits = 0 < len(world.admitted(reader, entity.name)) < len(
            all_ids(world.inst, entity.name))
        return 2 * splits + bool(hidden_fields(world.inst, reader.actor, entity.name))

    entities = {e.name: e for found in readable.values() for e in found}
    for name in sorted(entities):
        roles = [role for role, found in readable.items() if entities[name] in found]
        best = max(roles, key=lambda r: (merit(r, entities[name]), -len(plan[r])))
        plan[best].append(entities[name])
    for role, found in readable.items():
        if found and not plan[role]:
            plan[role].append(max(found, key=lambda e: merit(role, e)))
    return plan


# -- API paths ----------------------------------------------------------------------------------


def check_api(world: World, reader: Reader, entity: Entity) -> None:
    name = entity.name
    expected = world.admitted(reader, name)
    world.compare(reader, f"api-list {name}", api_list(world, reader, name), expected)
    readable, unreadable = sample_ids(world, reader, name)
    if readable is not None:
        answer = world.api(reader, f"{name}/{readable}")
        if answer.status_code != 200:
            world.problem(reader, f"GET /api/v1/{name}/{readable}",
                          f"answers {answer.status_code} for a record it may read")
        else:
            world.json_fields(reader, f"GET /api/v1/{name}/{readable}", name,
                              [answer.get_json()])
            world.look(reader, f"GET /api/v1/{name}/{readable}", answer.get_data(as_text=True))
        check_timeline(world, reader, name, readable, 200)
    if unreadable is not None:
        answer = world.api(reader, f"{name}/{unreadable}")
        if answer.status_code != 404:
            world.problem(reader, f"GET /api/v1/{name}/{unreadable}",
                          f"answers {answer.status_code} for a record it may not read")
        check_timeline(world, reader, name, unreadable, 404)
    world.compare(reader, f"csv {name}", csv_ids(world, reader, name), expected)
    check_hidden_oracles(world, reader, entity)


def sample_ids(world: World, reader: Reader, entity: str) -> tuple[int | None, int | None]:
    """The smallest id the reader may read, and the smallest they may not (None: none)."""
    expected = world.admitted(reader, entity)
    others = all_ids(world.inst, entity) - expected
    return (min(expected) if expected else None), (min(others) if others else None)


def api_list(world: World, reader: Reader, entity: str) -> list[int] | None:
    ids: list[int] = []
    url = f"{entity}?limit={API_PAGE}"
    for _ in range(1000):
        answer = world.api(reader, url)
        where = f"GET /api/v1/{url}"
        if answer.status_code != 200:
            world.problem(reader, where, f"answers {answer.status_code}")
            return None
        body = answer.get_json()
        world.json_fields(reader, where, entity, body["data"])
        world.look(reader, where, answer.get_data(as_text=True))
        ids += [row["id"] for row in body["data"]]
        if not body["next_cursor"]:
            break
        url = f"{entity}?{urlencode({'limit': API_PAGE, 'cursor': body['next_cursor']})}"
    if len(ids) != len(set(ids)):
        world.problem(reader, f"GET /api/v1/{entity}", "pages repeat records")
    return ids


def check_timeline(world: World, reader: Reader, entity: str, record_id: int,
                   status: int) -> None:
    where = f"GET /api/v1/{entity}/{record_id}/timeline"
    world.checked["api-timeline"] += 1
    answer = world.api(reader, f"{entity}/{record_id}/timeline")
    if answer.status_code != status:
        world.problem(reader, where, f"answers {answer.status_code}, not {status}")
        return
    if status == 200:
        hidden = hidden_fields(world.inst, reader.actor, entity)
        changed = {change["field"] for entry in answer.get_json()["data"]
                   for change in entry.get("changes") or ()}
        if changed & hidden:
            world.problem(reader, where, f"shows changes of hidden fields {changed & hidden}")
        world.look(reader, where, answer.get_data(as_text=True))


def csv_ids(world: World, reader: Reader, entity: str) -> list[int] | None:
    where = f"/e/{entity}/export.csv"
    answer = world.web(reader, where)
    if answer.status_code != 200:
        world.problem(reader, where, f"answers {answer.status_code}")
        return None
    text = answer.get_data(as_text=True)
    world.look(reader, where, text)
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    hidden = set(header) & hidden_fields(world.inst, reader.actor, entity)
    if hidden:
        world.problem(reader, where, f"has columns of hidden fields {sorted(hidden)}")
    column = header.index("id")
    ids = [int(row[column]) for row in rows[1:]]
    check_csv_links(world, reader, entity, header, {int(r[column]): r for r in rows[1:]})
    return ids


def check_csv_links(world: World, reader: Reader, entity: str, header: list[str],
                    rows: dict[int, list[str]]) -> None:
    """A link to a record the reader may not read is exported as its id, not its title."""
    for f in world.inst.model.entity(entity).fields.values():
        target = world.inst.model.entities.get(f.to or "")
        if f.type != "link" or f.name not in header or target is None or target.system:
            continue
        readable = world.admitted(reader, target.name)
        column = header.index(f.name)
        for record_id, value in admitted_values(world, reader, entity, f.name).items():
            cell = rows[record_id][column] if record_id in rows else None
            if value is not None and value not in readable and cell not in \
                    (None, str(value), f"#{value}"):
                world.problem(reader, f"/e/{entity}/export.csv", f"writes the title “{cell}” "
                              f"of {target.name} #{value}, which the reader may not read")


def check_hidden_oracles(world: World, reader: Reader, entity: Entity) -> None:
    """A hidden field cannot be sorted or filtered by (400), nor found by quick search: each
    would tell its values apart."""
    hidden = sorted(hidden_fields(world.inst, reader.actor, entity.name) & set(entity.fields))
    for name in hidden[:1]:
        for query in (f"sort={name}", f"{name}__isnull=false"):
            answer = world.api(reader, f"{entity.name}?{query}")
            world.checked["api-hidden-oracle"] += 1
            if answer.status_code != 400:
                world.problem(reader, f"GET /api/v1/{entity.name}?{query}",
                              f"answers {answer.status_code} for a hidden field, not 400")
    searched = {entity.name} | {  # the entity's own search, and its links' (docs/api.md)
        f.to for name in entity.search if (f := entity.fields.get(name)) is not None
        and f.type == "link" and name not in hidden}
    for marker in world.secrets(reader):
        model_entity = world.inst.model.entity(marker.entity)
        if marker.entity in searched and marker.field in model_entity.search:
            answer = world.api(reader, f"{entity.name}?q={marker.texts[0]}")
            world.checked["api-hidden-oracle"] += 1
            if answer.status_code != 200 or answer.get_json()["data"]:
                world.problem(reader, f"GET /api/v1/{entity.name}?q={marker.texts[0]}",
                              "finds records by the value of a hidden field")


# -- web paths ----------------------------------------------------------------------------------


def check_web(world: World, reader: Reader, entity: Entity) -> None:
    name = entity.name
    expected = world.admitted(reader, name)
    world.compare(reader, f"web-list {name}", web_list(world, reader, name), expected)
    readable, unreadable = sample_ids(world, reader, name)
    for record_id, status in ((linking_record(world, reader, entity) or readable, 200),
                              (unreadable, 404)):
        if record_id is None:
            continue
        where = f"/e/{name}/{record_id}"
        world.checked["record-page"] += 1
        answer = world.web(reader, where)
        if answer.status_code != status:
            world.problem(reader, where, f"answers {answer.status_code}, not {status}")
        elif status == 200:
            world.look(reader, where, answer.get_data(as_text=True), html_page=True)
    if entity.views.kanban is not None:
        check_kanban(world, reader, entity)
    if entity.views.calendar is not None:
        check_calendar(world, reader, entity)
    for record_id in (readable, unreadable):
        if record_id is not None:
            check_search(world, reader, entity, record_id)
    check_pickers(world, reader, entity, readable, unreadable)


def linking_record(world: World, reader: Reader, entity: Entity) -> int | None:
    """A record the reader may read that links to one they may not (a visible link field):
    its page must not give the linked record's title away. None when there is none."""
    hidden = hidden_fields(world.inst, reader.actor, entity.name)
    table = world.inst.schema.table(entity.name)
    row_filter = read_filter(world.inst, reader.actor, entity.name, table)
    for f in entity.fields.values():
        target = world.inst.model.entities.get(f.to or "")
        if f.type != "link" or f.name in hidden or target is None or target.system:
            continue
        refused = all_ids(world.inst, target.name) - world.admitted(reader, target.name)
        if not refused:
            continue
        stmt = sa.select(sa.func.min(table.c.id)).where(table.c[f.name].in_(sorted(refused)))
        if row_filter is not None:
            stmt = stmt.where(row_filter)
        with world.inst.engine.connect() as conn:
            found = conn.execute(stmt).scalar()
        if found is not None:
            return found
    return None


def web_list(world: World, reader: Reader, entity: str) -> list[int] | None:
    ids: list[int] = []
    url = f"/e/{entity}"
    for _ in range(1000):
        answer = world.web(reader, url)
        if answer.status_code != 200:
            world.problem(reader, url, f"answers {answer.status_code}")
            return None
        page = answer.get_data(as_text=True)
        world.look(reader, url, page, html_page=True)
        ids += [int(i) for i in re.findall(TITLE_LINK.format(entity=entity), page)]
        count = COUNT.search(page)
        expected = len(world.admitted(reader, entity))
        if expected and (count is None or count.group(1).replace(",", "") != str(expected)):
            world.problem(reader, url, f"counts {count.group(1) if count else None} records;"
                          f" the row filter admits {expected}")
        following = NEXT_PAGE.search(page)
        if following is None:
            break
        url = html.unescape(following.group(1))
    if len(ids) != len(set(ids)):
        world.problem(reader, f"/e/{entity}", "pages repeat records")
    return ids


def admitted_values(world: World, reader: Reader, entity: str, name: str) -> dict[int, Any]:
    """{id: value of `name`} of the records the reader's row filter admits."""
    table = world.inst.schema.table(entity)
    stmt = sa.select(table.c.id, table.c[name])
    row_filter = read_filter(world.inst, reader.actor, entity, table)
    if row_filter is not None:
        stmt = stmt.where(row_filter)
    with world.inst.engine.connect() as conn:
        return dict(conn.execute(stmt).all())


def check_kanban(world: World, reader: Reader, entity: Entity) -> None:
    """Each column: its count is the admitted records with its value, its cards some of
    them (as many as fit)."""
    kanban = entity.views.kanban
    assert kanban is not None
    where = f"/e/{entity.name}?view=kanban"
    answer = world.web(reader, where)
    world.checked["kanban"] += 1
    if answer.status_code != 200:
        world.problem(reader, where, f"answers {answer.status_code}")
        return
    page = answer.get_data(as_text=True)
    world.look(reader, where, page, html_page=True)
    values = admitted_values(world, reader, entity.name, kanban.group_by)
    columns = re.findall(r'<section class="kanban-col" data-value="([^"]*)".*?<span class="n">'
                         r"([^<]*)</span>(.*?)</section>", page, re.S)
    shown = set()
    for value, count, cards in columns:
        value = html.unescape(value)
        wanted = {i for i, v in values.items() if v == value}
        ids = {int(i) for i in re.findall(r'class="kanban-card"[^>]*data-id="(\d+)"', cards)}
        shown |= ids
        if count.replace(",", "") != str(len(wanted)) or not ids <= wanted or \
                len(ids) != min(len(wanted), 50):
            world.problem(reader, where, f"column {value!r} counts {count} and shows "
                          f"{sorted(ids)[:8]}; the row filter admits {len(wanted)}: "
                          f"{sorted(wanted)[:8]}")
    if not shown <= world.admitted(reader, entity.name):
        world.problem(reader, where, "shows records the row filter refuses")


def check_calendar(world: World, reader: Reader, entity: Entity) -> None:
    """The month with the most records (readable or not): each day shows the first four of
    the admitted records of that day, and says how many more there are."""
    calendar = entity.views.calendar
    assert calendar is not None
    name = calendar.date
    table = world.inst.schema.table(entity.name)
    with world.inst.engine.connect() as conn:
        every = [v for v in conn.execute(sa.select(table.c[name])).scalars() if v is not None]
    if not every:
        return
    month = Counter(v.strftime("%Y-%m") for v in every).most_common(1)[0][0]
    where = f"/e/{entity.name}?view=calendar&month={month}"
    answer = world.web(reader, where)
    world.checked["calendar"] += 1
    if answer.status_code != 200:
        world.problem(reader, where, f"answers {answer.status_code}")
        return
    page = answer.get_data(as_text=True)
    world.look(reader, where, page, html_page=True)
    by_day: dict[date, list[tuple[Any, int]]] = {}
    for record_id, value in admitted_values(world, reader, entity.name, name).items():
        if value is not None:
            day = value.date() if isinstance(value, datetime) else value
            by_day.setdefault(day, []).append((value, record_id))
    cells = page.split('<div class="day')[1:]
    grid = month_grid(date.fromisoformat(month + "-01"))
    if len(cells) != len(grid):
        world.problem(reader, where, f"shows {len(cells)} days, not {len(grid)}")
        return
    for day, cell in zip(grid, cells, strict=True):
        ids = [int(i) for i in re.findall(rf'class="event" href="/e/{entity.name}/(\d+)"', cell)]
        more = re.search(r"\+(\d+) more", cell)
        wanted = [i for _, i in sorted(by_day.get(day, []))]
        if ids != wanted[:4] or (int(more.group(1)) if more else 0) != max(len(wanted) - 4, 0):
            world.problem(reader, where, f"{day} shows {ids} (+{more.group(1) if more else 0}"
                          f"); the row filter admits {wanted}")


def month_grid(first: date) -> list[date]:
    """The days of the calendar of the month starting `first`: whole weeks, Mondays first."""
    start = first - timedelta(days=first.weekday())
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    last = following - timedelta(days=1)
    end = last + timedelta(days=6 - last.weekday())
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def search_text(world: World, entity: Entity, record_id: int, reader: Reader) -> str | None:
    """The value of the record's first quick-search text field the reader may see."""
    hidden = hidden_fields(world.inst, reader.actor, entity.name)
    table = world.inst.schema.table(entity.name)
    for name in entity.search:
        f = entity.fields.get(name)
        if f is None or name in hidden or f.type not in SEARCHABLE:
            continue
        with world.inst.engine.connect() as conn:
            value = conn.execute(sa.select(table.c[name]).where(
                table.c.id == record_id)).scalar()
        if value and str(value).strip():
            return " ".join(str(value).split()[:4])
    return None


def check_search(world: World, reader: Reader, entity: Entity, record_id: int) -> None:
    """`/search?q=` a value of the record: every hit of every entity is a record the reader
    may read, and a readable record is found (unless the five hits shown are others)."""
    text = search_text(world, entity, record_id, reader)
    if text is None:
        return
    where = f"/search?{urlencode({'q': text})}"
    answer = world.web(reader, where)
    world.checked["search"] += 1
    if answer.status_code != 200:
        world.problem(reader, where, f"answers {answer.status_code}")
        return
    page = answer.get_data(as_text=True)
    world.look(reader, where, page, html_page=True)
    hits: dict[str, set[int]] = {}
    for hit_entity, hit_id in re.findall(r'<a href="/e/([a-z0-9_]+)/(\d+)"><strong>', page):
        hits.setdefault(hit_entity, set()).add(int(hit_id))
    for hit_entity, ids in hits.items():
        if not ids <= world.admitted(reader, hit_entity):
            world.problem(reader, where, f"finds {hit_entity} records the row filter refuses:"
                          f" {sorted(ids - world.admitted(reader, hit_entity))[:8]}")
    found = hits.get(entity.name, set())
    if record_id in world.admitted(reader, entity.name) and record_id not in found and \
            len(found) < 5:
        world.problem(reader, where, f"does not find {entity.name} #{record_id}, which the "
                      "reader may read")


def links_to(world: World, entity: Entity) -> list[tuple[Entity, str]]:
    """(entity, field) of every `link` field pointing at `entity`."""
    return [(source, f.name) for source in sorted(world.inst.model.entities.values(),
                                                  key=lambda e: e.name)
            for f in source.fields.values() if f.type == "link" and f.to == entity.name
            and not source.system]


def check_pickers(world: World, reader: Reader, entity: Entity, readable: int | None,
                  unreadable: int | None) -> None:
    """The link picker of a link to `entity` offers only records the reader may read (typed
    a value of a readable and of an unreadable record); a new form with the link filled in
    shows the linked record's title only when the reader may read it."""
    sources = links_to(world, entity)
    if not sources:
        return
    source, link = sources[0]
    for record_id in (readable, unreadable):
        text = search_text(world, entity, record_id, reader) if record_id else None
        if text is None:
            continue
        where = f"/e/{entity.name}/_options?{urlencode({link + '__q': text, 'target': 'x'})}"
        answer = world.web(reader, where)
        world.checked["picker"] += 1
        if answer.status_code != 200:
            world.problem(reader, where, f"answers {answer.status_code}")
            continue
        page = answer.get_data(as_text=True)
        world.look(reader, where, page)
        offered = {int(i) for i in re.findall(r'data-id="(\d+)"', page)}
        if not offered <= world.admitted(reader, entity.name):
            world.problem(reader, where, "offers records the row filter refuses: "
                          f"{sorted(offered - world.admitted(reader, entity.name))[:8]}")
    creatable = [(s, f) for s, f in sources if can(world.inst, reader.actor, s.name, "create")
                 and f not in hidden_fields(world.inst, reader.actor, s.name)]
    filtered = [(s, f) for s, f in sources if f in s.views.list.filters
                and can(world.inst, reader.actor, s.name, "read")
                and f not in hidden_fields(world.inst, reader.actor, s.name)]
    for record_id in (readable, unreadable):
        if record_id is None:
            continue
        for source, link in creatable[:1]:
            check_shown_title(world, reader, f"/e/{source.name}/new?{link}={record_id}",
                              link, entity, record_id)
        for source, link in filtered[:1]:
            check_shown_title(world, reader, f"/e/{source.name}?{link}={record_id}", link,
                              entity, record_id)


def check_shown_title(world: World, reader: Reader, where: str, link: str, entity: Entity,
                      record_id: int) -> None:
    """A page whose link picker `link` is filled in with `record_id` (a new form, a list
    filter) shows the record's title only when the reader may read it."""
    answer = world.web(reader, where)
    world.checked["picker-filled"] += 1
    if answer.status_code != 200:
        return  # a create rule the form checks on the values, say; nothing shown
    page = answer.get_data(as_text=True)
    world.look(reader, where, page, html_page=True)
    shown = re.search(rf'name="{link}__shown" value="([^"]*)"', page)
    title = html.unescape(shown.group(1)).strip() if shown else ""
    if record_id not in world.admitted(reader, entity.name) and title not in \
            ("", f"#{record_id}"):
        world.problem(reader, where, f"shows the title “{title}” of {entity.name} "
                      f"#{record_id}, which the reader may not read")


# -- dashboards ---------------------------------------------------------------------------------


def check_dashboards(world: World, reader: Reader) -> None:
    """Every dashboard of the role, through the API and as a page; the home page."""
    answer = world.api(reader, "dashboards")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    for board in answer.get_json()["data"]:
        where = f"GET /api/v1/dashboards/{board['name']}"
        answer = world.api(reader, f"dashboards/{board['name']}")
        if answer.status_code != 200:
            world.problem(reader, where, f"answers {answer.status_code}")
            continue
        world.look(reader, where, answer.get_data(as_text=True))
        model_board = world.inst.model.dashboards[board["name"]]
        for widget, shown in zip(model_board.widgets, answer.get_json()["widgets"],
                                 strict=True):
            check_widget(world, reader, f"{where} “{shown['label']}”", widget, shown)
        page = f"/dashboards/{board['name']}"
        answer = world.web(reader, page)
        world.checked["dashboard-page"] += 1
        if answer.status_code != 200:
            world.problem(reader, page, f"answers {answer.status_code}")
        else:
            world.look(reader, page, answer.get_data(as_text=True), html_page=True)
    answer = world.web(reader, "/")
    if answer.status_code != 200:
        world.problem(reader, "/", f"answers {answer.status_code}")
    else:
        world.look(reader, "/", answer.get_data(as_text=True), html_page=True)


def widget_rows(world: World, reader: Reader, widget: Widget, *columns: str) -> list[Any]:
    """The rows under the reader's row filter and the widget's `where`."""
    inst = world.inst
    table = inst.schema.table(widget.entity)
    stmt = sa.select(*(table.c[c] for c in columns))
    row_filter = read_filter(inst, reader.actor, widget.entity, table)
    if row_filter is not None:
        stmt = stmt.where(row_filter)
    if widget.where is not None:
        stmt = stmt.where(to_sql(widget.where, sql_context(inst, reader.actor, widget.entity),
                                 base=table, condition=True))
    with inst.engine.connect() as conn:
        return list(conn.execute(stmt).all())


def check_widget(world: World, reader: Reader, where: str, widget: Widget,
                 shown: dict[str, Any]) -> None:
    if shown.get("rows"):
        world.json_fields(reader, where, widget.entity, shown["rows"])
    if shown["error"] is not None or widget.op != "count" or widget.divide_by is not None:
        return
    world.checked["dashboard-count"] += 1
    fn, name = widget.group_parts
    if widget.type == "number":
        expected = len(widget_rows(world, reader, widget, "id"))
        if shown["value"] != expected:
            world.problem(reader, where, f"counts {shown['value']}; under the row filter "
                          f"there are {expected}")
    elif name is not None and fn is None and widget.type in ("chart", "table"):
        counts = Counter(json_value(v) for (v,) in widget_rows(world, reader, widget, name))
        groups = {g["key"]: g["value"] for g in shown["groups"]}
        if len(counts) <= (widget.limit or 50) and groups != dict(counts):
            world.problem(reader, where, f"groups {groups}; under the row filter {counts}")
        check_group_titles(world, reader, where, widget, name, shown["groups"])
    elif widget.type == "list":
        ids = {row["id"] for row in shown.get("rows") or ()}
        wanted = {i for (i,) in widget_rows(world, reader, widget, "id")}
        if not ids <= wanted or len(ids) != min(len(wanted), widget.limit or 10):
            world.problem(reader, where, f"lists {sorted(ids)}; under the row filter "
                          f"{sorted(wanted)[:20]}")


def check_group_titles(world: World, reader: Reader, where: str, widget: Widget, name: str,
                       groups: list[dict[str, Any]]) -> None:
    """A group of a linked record the reader may not read is labelled "#id", not titled."""
    f = world.inst.model.entity(widget.entity).fields[name]
    if f.type != "link" or f.to not in world.inst.model.entities or \
            world.inst.model.entity(f.to).system:
        return
    readable = world.admitted(reader, f.to)
    for group in groups:
        key = group["key"]
        if key is not None and key not in readable and group["label"] != f"#{key}":
            world.problem(reader, where, f"labels the group of {f.to} #{key}, which the "
                          f"reader may not read, “{group['label']}”")


# -- the test -----------------------------------------------------------------------------------


def run_matrix(world: World) -> None:
    plan = web_plan(world)
    for reader in world.readers.values():
        for entity in readable_entities(world.inst, reader, system=True):
            check_api(world, reader, entity)
        for entity in plan[reader.role]:
            check_web(world, reader, entity)
        check_dashboards(world, reader)
    split_roles = {
        reader.role for reader in world.readers.values()
        for e in readable_entities(world.inst, reader)
        if 0 < len(world.admitted(reader, e.name)) < len(all_ids(world.inst, e.name))}
    filtered_roles = {
        reader.role for reader in world.readers.values()
        for e in readable_entities(world.inst, reader)
        if read_filter(world.inst, reader.actor, e.name) is not None}
    assert not world.problems, "\n".join(
        [f"{len(world.problems)} problems:", *world.problems[:60]])
    # the data puts every row filter to work: it admits some records and refuses others
    assert filtered_roles <= split_roles, filtered_roles - split_roles
    assert world.checked["web-list"] >= len(world.readers)


# every pack is slow (core about 20 s): `make test` runs them all, `make test-fast` none
MATRIX_PACKS = [pytest.param(p, marks=pytest.mark.slow) for p in PACKS]


@pytest.mark.parametrize("pack", MATRIX_PACKS)
def test_every_read_path_shows_what_the_row_filter_admits(pack, make_instance, tmp_path):
    world = build_world(pack, make_instance, tmp_path)
    run_matrix(world)


# -- quick search through a link ----------------------------------------------------------------

LINKED_SEARCH = {
    "roles.yaml": """
        roles:
          rep: {label: Rep}
    """,
    "entities/client.yaml": """
        entity: client
        title_field: name
        search: [name, code]
        fields:
          name: {type: text, required: true}
          code: {type: text}
        permissions:
          rep: {read: "owner == user.id", create: true, update: true, hidden: [code]}
    """,
    "entities/deal.yaml": """
        entity: deal
        title_field: title
        search: [title, client]
        fields:
          title:  {type: text, required: true}
          client: {type: link, to: client}
        permissions:
          rep: {read: true, create: true, update: true}
    """,
}


def test_quick_search_through_a_link_keeps_to_the_row_filter_and_hidden_fields(
        pack, make_instance, make_user, admin, tmp_path):
    """A deal is found by its client's search fields (docs/api.md) — only by a client the
    reader may read, and only by the fields they may see: otherwise which deals a search
    finds tells an unreadable client's name, or a hidden code, as the matrix's readers must
    never learn. The API list, the global search and the link picker alike."""
    inst = make_instance(pack(LINKED_SEARCH))
    rep = make_user(inst, "rita", roles=["rep"])
    other = make_user(inst, "otto", roles=["rep"])
    system = admin(inst)
    mine = records.create(inst, system, "client", {"name": "Bravo", "code": "QQCODE",
                                                   "owner": rep.user_id})
    theirs = records.create(inst, system, "client", {"name": "Secretco",
                                                     "owner": other.user_id})
    by_mine = records.create(inst, system, "deal", {"title": "Renewal", "client": mine["id"]})
    records.create(inst, system, "deal", {"title": "Expansion", "client": theirs["id"]})
    token = create_token(inst, rep.user_id, "search")
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, rep)

    def api(q: str) -> list[int]:
        answer = client.get(f"/api/v1/deal?q={q}", headers=bearer(token))
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return [row["id"] for row in answer.get_json()["data"]]

    assert api("Bravo") == [by_mine["id"]]  # through a client the rep may read
    assert api("Secretco") == []  # not through one they may not
    assert api("QQCODE") == []  # nor by a field hidden from them
    page = client.get("/search?q=Secretco").get_data(as_text=True)
    assert "/e/deal/" not in page
    options = client.get("/e/deal/_options?client__q=Secretco").get_data(as_text=True)
    assert "data-id=" not in options
