"""W201: a formula or rollup a role sees that gives away a field hidden from that role.

`hidden:` keeps a field out of every answer, but a derived field computed from it is stored
and shown like any other: `profit = total - cost` visible to a role that may not see `cost`
gives the cost exactly. This check follows what each formula and rollup reads — its own
fields, fields across links (`product.unit_cost`), the fields of a `lookup()`, a rollup's
summarised field and `where` on the child entity, and through other formulas and rollups
transitively — and warns, for every role, about each visible derived field that reaches a
field hidden from that role.

"Hidden from a role" is what the runtime applies (runtime/read/permissions.hidden_fields) to
a user holding just that role: the role is taken with every role it inherits, and a field is
hidden when every one of those roles that may read the entity hides it. Entities a role may
not read at all are left out (nothing of them is shown to it, and a rollup is how such a role
is meant to see a summary of them), though a chain is followed through them; so are the
built-in `user` and `team`, whose readable fields are fixed. Each role is checked on its own,
as the packs grant them: roles combined in one user see the union of what each sees.

The check runs on a linked model without errors; it only adds warnings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .expressions import Call, Expression, Literal
from .expressions.nodes import walk
from .model import AppModel, Entity, Field

if TYPE_CHECKING:
    from .linker import Linker

CODE = "W201"

Ref = tuple[str, str]  # (entity, field)


@dataclass(frozen=True)
class Leak:
    """A visible derived field reaching a hidden one, and the derived fields in between."""

    role: str
    field: Ref
    hidden: Ref
    via: tuple[Ref, ...]


def check(lk: Linker, model: AppModel) -> None:
    """Add a W201 warning for each (role, visible derived field, hidden field it reads)."""
    for leak in find_leaks(model):
        entity, name = leak.field
        draft = lk.drafts[entity].fields[name]
        key = "formula" if model.entities[entity].fields[name].formula is not None else "rollup"
        lk.diags.add(CODE, _message(leak, key), lk.mark(draft.at(key)), _hint(leak),
                     severity="warning")


def find_leaks(model: AppModel) -> list[Leak]:
    """Every leak of every role, in a stable order (role, entity, field, hidden field)."""
    reads = _Reads(model.entities)
    leaks: list[Leak] = []
    for role in sorted(model.roles):
        hidden = _Hidden(model.entities, model.role_closure((role,)))
        for entity in model.entities.values():
            visible = hidden.visible(entity.name)
            if visible is None:
                continue
            for f in entity.fields.values():
                if (f.formula is not None or f.rollup is not None) and f.name in visible:
                    leaks.extend(_leaks_of(role, (entity.name, f.name), reads, hidden))
    return leaks


def _leaks_of(role: str, start: Ref, reads: _Reads, hidden: _Hidden) -> Iterator[Leak]:
    """The hidden fields `start` reaches, each once, with the shortest chain to it."""
    seen: set[Ref] = {start}
    frontier: list[tuple[Ref, tuple[Ref, ...]]] = [(start, ())]
    while frontier:
        following: list[tuple[Ref, tuple[Ref, ...]]] = []
        for ref, via in frontier:
            for read in reads.of(ref):
                if read in seen:
                    continue
                seen.add(read)
                if hidden.hides(read):
                    yield Leak(role, start, read, via)
                elif reads.derived(read):
                    following.append((read, (*via, read)))
        frontier = following


class _Reads:
    """The fields each derived field reads directly, worked out once per model."""

    def __init__(self, entities: Mapping[str, Entity]):
        self.entities = entities
        self._memo: dict[Ref, tuple[Ref, ...]] = {}

    def derived(self, ref: Ref) -> bool:
        f = self._field(ref)
        return f is not None and (f.formula is not None or f.rollup is not None)

    def of(self, ref: Ref) -> tuple[Ref, ...]:
        if ref not in self._memo:
            self._memo[ref] = tuple(dict.fromkeys(self._direct(ref)))
        return self._memo[ref]

    def _field(self, ref: Ref) -> Field | None:
        entity = self.entities.get(ref[0])
        return entity.fields.get(ref[1]) if entity is not None else None

    def _direct(self, ref: Ref) -> Iterator[Ref]:
        f = self._field(ref)
        if f is None:
            return
        if f.formula is not None:
            yield from self._expression(ref[0], f.formula)
        rollup = f.rollup
        if rollup is not None:
            if rollup.field:
                yield rollup.entity, rollup.field
            if rollup.where is not None:
                yield from self._expression(rollup.entity, rollup.where)

    def _expression(self, entity: str, expr: Expression) -> Iterator[Ref]:
        """Each field a path names, link fields on the way included (`account.name`
        reads `account` here and `name` on account); `user.…` is the reader, not a record."""
        for path in sorted(expr.names):
            if path[0] in ("user", "old"):
                continue
            current: str | None = entity
            for name in path:
                found = self._field((current, name)) if current else None
                if found is None:
                    break
                yield current, name
                current = found.to
        for node in walk(expr.tree):
            if isinstance(node, Call) and node.func == "lookup" and len(node.args) == 3:
                target, name = node.args[0], node.args[1]
                if isinstance(target, Literal) and isinstance(name, Literal) and \
                        self._field((str(target.value), str(name.value))) is not None:
                    yield str(target.value), str(name.value)


class _Hidden:
    """What one role, with the roles it inherits, may not see of each entity."""

    def __init__(self, entities: Mapping[str, Entity], roles: frozenset[str]):
        self.entities = entities
        self.roles = roles
        self._memo: dict[str, frozenset[str] | None] = {}

    def hidden(self, entity: str) -> frozenset[str] | None:
        """The hidden fields of `entity`; None when the role may not read it at all (or it
        is a built-in entity, whose readable fields do not depend on roles)."""
        if entity not in self._memo:
            ent = self.entities.get(entity)
            readers = [] if ent is None or ent.system else [
                perm for role, perm in ent.permissions.items()
                if role in self.roles and perm.read is not False]
            result: frozenset[str] | None = None
            if readers:
                result = frozenset(readers[0].hidden).intersection(
                    *(perm.hidden for perm in readers[1:]))
            self._memo[entity] = result
        return self._memo[entity]

    def visible(self, entity: str) -> frozenset[str] | None:
        hidden = self.hidden(entity)
        return None if hidden is None else frozenset(self.entities[entity].fields) - hidden

    def hides(self, ref: Ref) -> bool:
        hidden = self.hidden(ref[0])
        return hidden is not None and ref[1] in hidden


def _message(leak: Leak, key: str) -> str:
    entity, name = leak.field
    through = ", ".join(f"'{e}.{f}'" for e, f in leak.via)
    return (f"field '{name}': role '{leak.role}' sees the {key} '{entity}.{name}', which reads "
            f"'{leak.hidden[0]}.{leak.hidden[1]}'" + (f" (through {through})" if through else "")
            + ", hidden from that role")


def _hint(leak: Leak) -> str:
    entity, name = leak.field
    return (f"hide '{name}' from '{leak.role}' too, in the 'hidden' list of its permissions on "
            f"{entity}; or stop hiding '{leak.hidden[0]}.{leak.hidden[1]}'")
