"""What each role may do, in words, from the definitions (`/admin/roles`, docs/admin.md):
per entity create / read / update / delete — "yes", "no", or "when …" with the rule in words
(`builder.guard_words`) — and the hidden and read-only fields.

The rule reads in the reader's language: labels and option labels from the label maps, the
words between them ("is", "at least") through `say` — gettext, which the page passes in, as
this layer knows no request — and numbers in the reader's format.

A role is described with everything it inherits, combined the way `runtime.read.permissions`
combines several roles for a user: a right holds when any of the roles gives it, a field is
hidden (read-only) only when every role that reads (writes) hides it (makes it read-only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from builder.expressions import Expression
from builder.guard_words import ENGLISH, Voice, describe
from builder.model import Entity, Permission, Role
from runtime.core.instance import Instance
from runtime.read.accounts import all_roles
from runtime.read.titles import number_text

ACTIONS = ("create", "read", "update", "delete")


@dataclass(frozen=True)
class Right:
    """One action on one entity: "yes", "no" or "when" (with `words`)."""

    kind: str
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class EntityRights:
    entity: Entity
    rights: dict[str, Right]
    hidden: tuple[str, ...]
    readonly: tuple[str, ...]


@dataclass(frozen=True)
class RoleSummary:
    role: Role
    inherits: tuple[Role, ...]  # every role it inherits, transitively, by name
    entities: int  # how many entities it may read at all
    builtin: bool


def summaries(inst: Instance) -> list[RoleSummary]:
    """Every role, the built-in ones first, then by name."""
    model = inst.model
    result = []
    roles = all_roles(inst)
    for name, role in roles.items():
        builtin = role.pack is None
        readable = len(model.entities) if name == "admin" else sum(
            1 for ent in model.entities.values() if not ent.system
            and _combined(ent, _grants(inst, name), "read").kind != "no")
        parents = sorted(model.role_closure((name,)) - {name})
        result.append(RoleSummary(role, tuple(roles[p] for p in parents if p in roles),
                                  readable, builtin))
    return sorted(result, key=lambda s: (not s.builtin, s.role.name))


def _grants(inst: Instance, role: str) -> frozenset[str]:
    return inst.model.role_closure((role,))


def _combined(ent: Entity, roles: frozenset[str], action: str,
              language: str | None = None, inst: Instance | None = None,
              voice: Voice = ENGLISH) -> Right:
    rules = [getattr(perm, action) for name, perm in ent.permissions.items() if name in roles]
    if any(rule is True for rule in rules):
        return Right("yes")
    conditions = [rule for rule in rules if isinstance(rule, Expression)]
    if not conditions:
        return Right("no")
    if inst is None:
        return Right("when")
    entities = inst.model.entities
    return Right("when", tuple(describe(rule, lambda n: entities[n].fields
                                        if n in entities else None, ent.name, language, voice)
                               for rule in conditions))


def _fields(ent: Entity, perms: list[Permission], key: str, language: str | None
            ) -> tuple[str, ...]:
    """Fields in `key` (hidden / readonly) of every permission given, as labels."""
    if not perms:
        return ()
    common = set(getattr(perms[0], key))
    for perm in perms[1:]:
        common &= set(getattr(perm, key))
    return tuple(sorted(ent.fields[n].label.get(language) if n in ent.fields else n
                        for n in common))


def rights(inst: Instance, role: str, language: str | None = None,
           say: Callable[..., str] | None = None) -> list[EntityRights]:
    """What `role` may do per entity it has any right on, by entity label; `say` translates
    the words of the rules (gettext's signature), English when None."""
    roles = _grants(inst, role)
    voice = Voice(say, partial(number_text, language=language)) if say else ENGLISH
    result = []
    for ent in inst.model.entities.values():
        if ent.system:
            continue
        answers = {a: _combined(ent, roles, a, language, inst, voice) for a in ACTIONS}
        if all(r.kind == "no" for r in answers.values()):
            continue
        perms = [p for n, p in ent.permissions.items() if n in roles]
        readers = [p for p in perms if p.read is not False]
        writers = [p for p in perms if p.update is not False or p.create is not False]
        result.append(EntityRights(ent, answers, _fields(ent, readers, "hidden", language),
                                   _fields(ent, writers, "readonly", language)))
    return sorted(result, key=lambda e: e.entity.label.get(language).lower())
