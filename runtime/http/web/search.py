"""`/search?q=`: quick search across every entity the user may read. A hit on a record that
other records link to (a customer found by phone number or e-mail) shows those records too:
their orders, tickets, opportunities — through `model.reverse_links`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue

from builder.model import Entity
from runtime.http.web import listdata
from runtime.http.web.layout import actor, can, entity_label, hidden_fields, inst, render
from runtime.write import records

PER_ENTITY = 5
LINKED_FOR = 3  # hits per entity whose linked records are shown
LINKED_PER_KIND = 5
COUNT_CAP = 1000  # a group says "1,000+" beyond


@dataclass
class Linked:
    entity: Entity
    label: str
    items: list[tuple[int, str]]
    more_url: str | None


@dataclass
class Hit:
    id: int
    title: str
    details: list[tuple[str, Any]]
    linked: list[Linked] = field(default_factory=list)


@dataclass
class Group:
    entity: Entity
    label: str
    hits: list[Hit]
    count: str
    url: str


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/search", "search", search_page)


def searchable() -> list[Entity]:
    return [e for e in inst().model.entities.values()
            if not e.system and e.search and can(e.name, "read")]


def linked_records(entity: Entity, record_id: int) -> list[Linked]:
    model = inst().model
    result = []
    for child_name, link in model.reverse_links(entity.name):
        child = model.entities.get(child_name)
        if child is None or child.system or not can(child_name, "read") or \
                link in hidden_fields(child_name):
            continue
        op = link if child.fields[link].type == "link" else f"{link}__contains"
        page = records.query(inst(), actor(), child_name, filters={op: str(record_id)},
                             q=None, sort=list(child.views.list.sort),
                             limit=LINKED_PER_KIND + 1, cursor=None)
        rows = listdata.natives(child, page.rows)
        if not rows:
            continue
        titles = listdata.row_titles(child, rows[:LINKED_PER_KIND])
        more = url_for("web.list", entity=child_name, **{op: record_id}) \
            if len(rows) > LINKED_PER_KIND else None
        label = entity_label(child, plural=True)
        if sum(1 for c, _ in model.reverse_links(entity.name) if c == child_name) > 1:
            label += f" ({listdata.field_label(child, link).lower()})"
        result.append(Linked(child, label, list(titles.items()), more))
    return result


def search(q: str) -> list[Group]:
    groups = []
    for entity in searchable():
        page = records.query(inst(), actor(), entity.name, filters={}, q=q, sort=[],
                             limit=PER_ENTITY, cursor=None, count_cap=COUNT_CAP)
        rows = listdata.natives(entity, page.rows)
        if not rows:
            continue
        count, exact = page.count or records.count(inst(), actor(), entity.name, filters={},
                                                   q=q, cap=COUNT_CAP)
        titles, names = listdata.page_titles(entity, rows)
        hidden = hidden_fields(entity.name)
        shown_fields = [entity.fields[n] for n in entity.search
                        if n in entity.fields and n not in hidden][:3]
        hits = []
        for i, row in enumerate(rows):
            details = [(f, row.get(f.name), titles) for f in shown_fields if row.get(f.name)]
            hit = Hit(row["id"], names[row["id"]], details)
            if i < LINKED_FOR:
                hit.linked = linked_records(entity, row["id"])
            hits.append(hit)
        groups.append(Group(entity, entity_label(entity, plural=True), hits,
                            f"{count:,}" if exact else f"{count:,}+",
                            url_for("web.list", entity=entity.name, q=q)))
    return groups


def search_page() -> ResponseReturnValue:
    q = (request.args.get("q") or "").strip()[:200]
    groups = search(q) if q else []
    return render("search.html", fragment="results", q=q, groups=groups,
                  titles={})
