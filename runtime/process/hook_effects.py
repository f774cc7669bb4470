"""What the hooks that follow a write may touch, read off the model: whether the moves of a
batch of new records may wait until every record's `on: create` hooks have run.

An import writes a batch of records, runs each one's creation hooks (automations, webhooks),
then moves each to its workflow state. Done one record at a time, record 1's move (and the
hooks that follow it) comes before record 2's creation hooks; done as a batch, every creation
hook comes first. The two orders leave the same database unless the two chains of hooks
meet: both add rows to one table (their ids interleave), both advance one round-robin
cursor, or one changes what the other reads — a field of another record, a field a
duplicate rule or a unique check compares across rows, a table a `least_loaded` assignment
counts. `interfere` looks for any such meeting; it answers yes whenever it cannot tell.

Each chain is summed up as an `Effects`, following its actions through the automations they
set off in turn (a `set` fires the entity's update automations, a `create` the new record's
creation ones, and so on). Fields are named (entity, field); "*" stands for every field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from builder.expressions import Expression, ValueSlot
from builder.model import Action, AppModel, Entity
from runtime.core import caches
from runtime.process import automations

EVERY = "*"
ANY_ENTITY = "*"  # a path the analysis cannot follow: it may reach any entity
NOT_LINKS = ("old", "user", "item")  # the record before the write, the actor, a for_each child
Field = tuple[str, str]  # (entity, field)


@dataclass
class Effects:
    """What one chain of hooks does beyond the record that set it off."""

    own: set[Field] = field(default_factory=set)  # fields of that record it changes
    other: set[Field] = field(default_factory=set)  # fields of other existing records
    adds: set[str] = field(default_factory=set)  # tables it adds rows to (ids in order)
    follows: set[Field] = field(default_factory=set)  # fields read through links
    scans: set[Field] = field(default_factory=set)  # fields read across a table's rows
    cursors: set[str] = field(default_factory=set)  # round-robin cursors it advances


def interfere(model: AppModel, ent: Entity, transitions: set[str]) -> bool:
    """Whether the creation hooks of `ent`'s records and their moves by `transitions` (with
    the hooks that follow those) may give another result when every creation hook runs
    before every move than when each record's move follows its own creation hooks."""
    if not transitions or not _fires(model, ent.name, "create"):
        return False
    return caches.HOOK_ORDER.get((model.hash, ent.name, frozenset(transitions)),
                                 lambda: bool(meetings(model, ent, transitions)))


def meetings(model: AppModel, ent: Entity, transitions: set[str]) -> list[str]:
    """How the creation hooks of `ent`'s records and their moves by `transitions` may meet,
    in words ("both add crm_notification rows"); empty when they cannot."""
    created = _Walk(model).event(ent.name, "create", None)
    walk = _Walk(model)
    moved = Effects()
    for name in transitions:
        _merge(moved, walk.move(ent.name, name))
    return _meet(created, moved) + _meet(moved, created)


def _fires(model: AppModel, entity: str, kind: str) -> bool:
    return bool(model.automations_for(entity, kind) or model.webhooks_for(entity, kind))


def _meet(a: Effects, b: Effects) -> list[str]:
    """How `a` meets `b`: ids or turns both take, or what `a` writes that `b` reads or
    writes; empty when they do not meet."""
    b_writes, b_reads = b.own | b.other, b.follows | b.scans
    return [*(f"both add {table} rows" for table in a.adds & b.adds),
            *(f"both advance the round-robin of {c}" for c in a.cursors & b.cursors),
            *(f"changes {e}.{n} of another record" for e, n in a.other
              if _overlap((e, n), b_writes)),
            *(f"changes {e}.{n}, which the other reads" for e, n in a.own | a.other
              if _overlap((e, n), b_reads)),
            *(f"adds {table} rows, which the other scans" for table in a.adds
              if _overlap((table, EVERY), b.scans))]


def _overlap(one: Field, fields: set[Field]) -> bool:
    entity, name = one
    return any((e == entity or ANY_ENTITY in (e, entity))
               and (n == name or EVERY in (n, name)) for e, n in fields)


def _merge(into: Effects, more: Effects) -> None:
    for part in dataclasses.fields(Effects):
        getattr(into, part.name).update(getattr(more, part.name))


class _Walk:
    """Sums up chains of hooks; an event met again on the way adds nothing new (its effects
    are being summed already)."""

    def __init__(self, model: AppModel):
        self.model = model
        self.seen: set[tuple[str, str, str | None]] = set()

    def move(self, entity: str, transition: str) -> Effects:
        """A record of `entity` moved by `transition`, and what follows."""
        ent = self.model.entity(entity)
        assert ent.workflow is not None
        effects = self.written(ent, {ent.workflow.field}, own=True)
        _merge(effects, self.event(entity, "transition", transition))
        return effects

    def event(self, entity: str, kind: str, transition: str | None) -> Effects:
        """The automations and webhooks that follow a write of `kind` to a record of
        `entity`, and what they set off."""
        effects = Effects()
        if (entity, kind, transition) in self.seen:
            return effects
        self.seen.add((entity, kind, transition))
        if self.model.webhooks_for(entity, kind) or (
                kind == "transition" and self.model.webhooks_for(entity, "update")):
            effects.adds.add("crm_webhook_delivery")
        ent = self.model.entity(entity)
        for automation in self.model.automations:
            if automation.entity != entity or not automations.matches(automation.trigger, kind,
                                                                      transition):
                continue
            effects.follows |= _reads(self.model, ent, _names([automation.when,
                                                                automation.where]))
            for action in automation.actions:
                _merge(effects, self.action(ent, action))
        return effects

    def action(self, ent: Entity, action: Action) -> Effects:
        effects = Effects()
        effects.follows |= _reads(self.model, ent, _names([action.values, action.record,
                                                           action.for_each_of]))
        if action.kind == "set":
            _merge(effects, self.written(ent, set(action.values), own=True))
            _merge(effects, self.event(ent.name, "update", None))
        elif action.kind == "assign":
            assert action.field is not None
            _merge(effects, self.written(ent, {action.field}, own=True))
            _merge(effects, self.event(ent.name, "update", None))
            effects.scans.add(("user", EVERY))  # the candidates, by role or team
            if action.strategy == "least_loaded":
                effects.scans.add((ent.name, EVERY))  # the open records of each
            else:
                effects.cursors.add(f"{ent.name}.{action.field}")
        elif action.kind == "create":
            assert action.entity is not None
            if action.for_each is not None:
                effects.scans.add((action.for_each, EVERY))
            target = self.model.entity(action.entity)
            effects.adds.add(target.name)
            _merge(effects, self.written(target, set(target.fields), own=False,
                                         back=_links_back(ent, target, action)))
            _merge(effects, self.event(target.name, "create", None))
        elif action.kind == "update":
            assert action.entity is not None
            target = self.model.entity(action.entity)
            _merge(effects, self.written(target, set(action.values), own=False))
            _merge(effects, self.event(target.name, "update", None))
        elif action.kind == "transition":
            target = self.model.entity(action.entity or ent.name)
            assert target.workflow is not None and action.transition is not None
            _merge(effects, self.written(target, {target.workflow.field},
                                         own=action.record is None))
            _merge(effects, self.event(target.name, "transition", action.transition))
            if target.workflow.transitions[action.transition].approval is not None:
                effects.adds.add("crm_approval")  # a request may open instead
        elif action.kind in ("notify", "email"):
            effects.adds.add("crm_notification" if action.kind == "notify" else "crm_mail")
            effects.scans.add(("user", EVERY))  # the recipients, by role or field
        else:  # a kind this analysis does not know: assume it touches everything
            effects.other.add((ANY_ENTITY, EVERY))
            effects.scans.add((ANY_ENTITY, EVERY))
        return effects

    def written(self, ent: Entity, names: set[str], *, own: bool,
                back: frozenset[str] = frozenset()) -> Effects:
        """Fields of records of `ent` changed, and what the write reads: its formulas' and
        validations' links (but those of `back`, which lead to the record that set the chain
        off), the rows its unique and duplicate checks compare. (Rollups over the records
        are refreshed at the end of the batch in either order: `derived.batch`.)"""
        effects = Effects()
        (effects.own if own else effects.other).update((ent.name, n) for n in names)
        effects.follows |= _reads(self.model, ent, (
            path for path in _entity_paths(self.model, ent) if path[0] not in back))
        compared = {n for n, f in ent.fields.items() if f.unique}
        compared |= {n for rule in ent.duplicates for n in rule.match}
        effects.scans |= {(ent.name, n) for n in names & compared}
        return effects


def _links_back(ent: Entity, target: Entity, action: Action) -> frozenset[str]:
    """The link fields of the records a `create` action makes that it sets to the record
    the action runs on (`order: "=id"`)."""
    return frozenset(name for name, slot in action.values.items()
                     if slot.expression is not None and slot.expression.source.strip() == "id"
                     and name in target.fields and target.fields[name].to == ent.name)


_LEAVES = (str, int, float, bool, type(None))


def _names(where: Any) -> Iterator[tuple[str, ...]]:
    """The field paths every expression and template inside `where` (model objects,
    mappings, sequences) names."""
    if isinstance(where, _LEAVES):
        return
    if isinstance(where, Expression):
        yield from where.names
    elif isinstance(where, ValueSlot):
        if where.expression is not None:
            yield from where.expression.names
        yield from where.template_names
    elif hasattr(type(where), "__dataclass_fields__"):
        for name in type(where).__dataclass_fields__:
            yield from _names(getattr(where, name))
    elif isinstance(where, Mapping):
        for item in where.values():
            yield from _names(item)
    elif isinstance(where, tuple | list | frozenset | set):
        for item in where:
            yield from _names(item)


def _entity_paths(model: AppModel, ent: Entity) -> frozenset[tuple[str, ...]]:
    """The paths the expressions of `ent` (formulas, defaults, rules, validations, ...)
    name: what a write to one of its records may read."""
    return caches.ENTITY_PATHS.get((model.hash, ent.name), lambda: frozenset(_names(ent)))


def _reads(model: AppModel, ent: Entity, paths: Iterable[tuple[str, ...]]) -> set[Field]:
    """The fields of other records that paths on a record of `ent` read: the step after
    each link ("account.tier" reads the tier of an account)."""
    read: set[Field] = set()
    for path in paths:
        current = ent
        for step, name in enumerate(path[:-1]):
            f = current.fields.get(name)
            # a link, or (first) an entity named as such: its records that link here
            target = model.entities.get(f.to) if f is not None and f.to else (
                model.entities.get(name) if step == 0 else None)
            if target is None:
                if step > 0 or name not in NOT_LINKS:
                    read.add((ANY_ENTITY, EVERY))  # a path this analysis cannot follow
                break
            current = target
            read.add((current.name, path[step + 1]))
    return read
