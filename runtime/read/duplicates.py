"""Scanning an entity for duplicates: the groups of records its `duplicates` rules say are the
same, compared as the rules compare while saving (`runtime.write.checks.find_duplicates`: text
without case, phone numbers by their E.164 form), among the records the actor may read.

Each rule is one GROUP BY in the database (`HAVING count(*) > 1`) and one read of the rows
in those groups, so a scan of a million rows runs at the database's speed; records that two
rules tie together end in one group. `crmforge duplicates ENTITY` and the page
`/e/<entity>/duplicates` show the groups; merging them is `runtime.write.merge`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from builder.model import DuplicateRule, Entity
from runtime.core import phones
from runtime.read.permissions import read_filter
from runtime.read.queries import entity_of, reading

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

MAX_GROUPS = 200  # groups one page shows; the command line asks for all
TEXT_TYPES = ("text", "email")


@dataclass(frozen=True)
class Group:
    """Records the rules call the same: `ids` oldest first (the suggested survivor), and the
    fields of each rule that tied them (`rules`)."""

    ids: tuple[int, ...]
    rules: tuple[tuple[str, ...], ...]


def groups(inst: Instance, actor: Actor, entity: str, *, conn: Connection | None = None,
           limit: int | None = MAX_GROUPS,
           progress: Callable[[int, int, DuplicateRule, int], Any] | None = None
           ) -> list[Group]:
    """The duplicate groups of `entity` the actor may see, oldest record first in each and
    groups in the order of their oldest record; at most `limit` per rule (None: all).
    `progress(done, rules, rule, found)` is called after each rule."""
    ent = entity_of(inst, entity)
    rules = [rule for rule in ent.duplicates if rule.match]
    pairs: list[tuple[tuple[int, ...], tuple[str, ...]]] = []
    with reading(inst, conn) as c:
        for done, rule in enumerate(rules, 1):
            found = _rule_groups(inst, actor, c, ent, rule, limit)
            pairs += [(ids, rule.match) for ids in found]
            if progress is not None:
                progress(done, len(rules), rule, len(found))
    return joined(pairs)


def joined(pairs: list[tuple[tuple[int, ...], tuple[str, ...]]]) -> list[Group]:
    """Groups that share a record become one group (a record is in one group only)."""
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        while parent.setdefault(i, i) != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for ids, _ in pairs:
        for other in ids[1:]:
            parent[root(other)] = root(ids[0])
    members: dict[int, set[int]] = {}
    tied: dict[int, list[tuple[str, ...]]] = {}
    for ids, match in pairs:
        top = root(ids[0])
        members.setdefault(top, set()).update(ids)
        if match not in tied.setdefault(top, []):
            tied[top].append(match)
    found = [Group(tuple(sorted(ids)), tuple(tied[top])) for top, ids in members.items()]
    return sorted(found, key=lambda g: g.ids[0])


def _keys(ent: Entity, table: sa.Table, rule: DuplicateRule) -> list[Any]:
    """The rule's values as it compares them: phone numbers by their E.164 column, text
    lower-cased."""
    keys = []
    for name in rule.match:
        kind = ent.fields[name].type
        if kind == "phone":
            keys.append(table.c[phones.shadow(name)])
        elif kind in TEXT_TYPES:
            keys.append(sa.func.lower(table.c[name]))
        else:
            keys.append(table.c[name])
    return keys


def _filled(ent: Entity, table: sa.Table, rule: DuplicateRule) -> list[Any]:
    """Every matched field has a value (empty values match nothing, as when saving)."""
    conditions = []
    for name, key in zip(rule.match, _keys(ent, table, rule), strict=True):
        conditions.append(key.is_not(None))
        if ent.fields[name].type in (*TEXT_TYPES, "phone"):
            conditions.append(key != "")
    return conditions


def _rule_groups(inst: Instance, actor: Actor, conn: Connection, ent: Entity,
                 rule: DuplicateRule, limit: int | None) -> list[tuple[int, ...]]:
    """The id groups one rule finds: a GROUP BY of the rule's keys, then the rows in them."""
    table = inst.schema.table(ent.name)
    where = _filled(ent, table, rule)
    row_filter = read_filter(inst, actor, ent.name, table)
    if row_filter is not None:
        where.append(row_filter)
    keys = [key.label(f"k{i}") for i, key in enumerate(_keys(ent, table, rule))]
    tied = sa.select(*keys).where(*where).group_by(*(k.element for k in keys)).having(
        sa.func.count() > 1).order_by(sa.func.min(table.c.id))
    if limit is not None:
        tied = tied.limit(limit)
    dup = tied.subquery()
    rows = conn.execute(sa.select(table.c.id, *keys).join(dup, sa.and_(*(
        k.element == dup.c[k.name] for k in keys))).where(*where).order_by(table.c.id))
    found: dict[tuple, list[int]] = {}
    for row in rows:
        found.setdefault(tuple(row[1:]), []).append(row[0])
    return [tuple(ids) for ids in found.values() if len(ids) > 1]
