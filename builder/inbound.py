"""Inbound e-mail rules (`inbound/*.yaml`): which address makes which record, and which part of
the message fills which field (docs/mail.md, "Inbound mail"). `crmforge mail-in` routes by
them (`runtime.process.mail.inbound`).

The builder checks the entity (E202), every field named (E203), that `sender` and `account`
are links to records that can be found by an address (E260), that no two rules take the
same address (E261) and that `new_sender` comes with `sender` (E262).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .link_rules import _at
from .model import Entity, InboundRule, frozen_map

if TYPE_CHECKING:
    from .linker import Linker
    from .loader import LoadedDoc

# what a linked record must have to be found from a sender: its address, or its domain
FINDERS = {"sender": ("email",), "account": ("email", "website")}


def build_inbound(lk: Linker, entities: Mapping[str, Entity]) -> dict[str, InboundRule]:
    """Every valid inbound rule of every pack, by name."""
    result: dict[str, InboundRule] = {}
    taken: dict[str, str] = {}
    for source in lk.sources:
        for doc in source.of_kind("inbound"):
            for name, raw in doc.data["inbound"].items():
                loc = (doc, ("inbound", name))
                address = raw["to"].lower()
                if name in result:
                    lk.error("E200", f"inbound rule '{name}' is already defined by pack "
                             f"'{result[name].pack}'", loc, "choose another name", key=True)
                    continue
                if address in taken:
                    lk.error("E261", f"inbound rule '{name}': '{address}' is already taken by "
                             f"rule '{taken[address]}'", _at(loc, "to"),
                             "give each rule its own address")
                    continue
                taken[address] = name
                if _valid(lk, entities, doc, name, raw):
                    result[name] = InboundRule(
                        name, address, raw["entity"], source.name,
                        frozen_map(raw.get("fields") or {}), frozen_map(raw.get("values") or {}),
                        raw.get("sender"), raw.get("account"),
                        frozen_map(raw.get("new_sender") or {}))
    return result


def _valid(lk: Linker, entities: Mapping[str, Entity], doc: LoadedDoc, name: str,
           raw: dict[str, Any]) -> bool:
    """Report every problem of one rule; whether it has none."""
    loc = (doc, ("inbound", name))
    prefix = f"inbound rule '{name}': "
    if not lk.entity_ref(raw["entity"], _at(loc, "entity"), prefix):
        return False
    entity = entities[raw["entity"]]
    ok = True
    for part in ("fields", "values"):
        for field_name in raw.get(part) or {}:
            ok &= lk.field_ref(entity.name, field_name, _at(loc, part, field_name), "field",
                               prefix, key=True) is not None
    for part, needs in FINDERS.items():
        if raw.get(part) is not None:
            ok &= _finder(lk, entities, entity, raw[part], _at(loc, part), prefix, needs)
    return ok and _new_sender(lk, entity, raw, loc, prefix)


def _new_sender(lk: Linker, entity: Entity, raw: dict[str, Any], loc: tuple, prefix: str
                ) -> bool:
    """`new_sender` names fields of the entity `sender` links to (E262 without `sender`)."""
    if not raw.get("new_sender"):
        return True
    if not raw.get("sender"):
        lk.error("E262", f"{prefix}new_sender needs sender: the link the new record goes in",
                 _at(loc, "new_sender"), "add sender: contact (a link to the sender's record)")
        return False
    target = entity.fields[raw["sender"]].to or ""
    return all([lk.field_ref(target, name, _at(loc, "new_sender", name), "field", prefix,
                             key=True) is not None for name in raw["new_sender"]])


def _finder(lk: Linker, entities: Mapping[str, Entity], entity: Entity, field_name: str,
            loc: tuple, prefix: str, needs: tuple[str, ...]) -> bool:
    """Whether `field_name` links to an entity with one of the fields `needs` (E203, E260)."""
    found = lk.field_ref(entity.name, field_name, loc, "field", prefix)
    if found is None:
        return False
    field = entity.fields[field_name]
    target = entities.get(field.to or "") if field.type == "link" else None
    if target is None or not any(n in target.fields for n in needs):
        lk.error("E260", f"{prefix}'{field_name}' is not a link to records with "
                 f"{' or '.join(repr(n) for n in needs)} fields, so the sender cannot be "
                 "found there", loc, "name a link to a contact (sender) or an account")
        return False
    return True
