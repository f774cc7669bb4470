"""A small pack that exercises every workflow and approval rule of SPEC §4 and §5, and the
people who work with it. Shared by test_workflow.py, test_approvals.py and the API tests.

    deal: draft -> review -> won | lost, archived (automations only)
      submit  (no roles key: anyone who may update)      draft -> review
      win     (roles [manager], guard, requires, approval) review -> won
      lose    (roles [rep], requires reason)              draft|review -> lost
      archive (roles []: only automations)                draft -> archived
      cancel  (approval by_people: a user, then owner.manager) review -> lost
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support import admin_actor, insert_user

from runtime.core.instance import Actor, Instance
from runtime.write import records

ROLES = """
roles:
  rep:      {label: Rep}
  manager:  {label: Manager, inherits: [rep]}
  director: {label: Director}
  finance:  {label: Finance}
  clerk:    {label: Clerk}
"""

USER_EXT = """
extends: user
fields:
  region: {type: choice, options: [north, south]}
"""

DEAL = """
entity: deal
label: Deal
title_field: name
fields:
  name:     {type: text, required: true}
  amount:   {type: money}
  discount: {type: percent}
  reason:   {type: text}
  approver: {type: link, to: user}
  notes:    {type: text}
workflow:
  field: stage
  initial: draft
  states:
    draft:    {label: Draft}
    review:   {label: In review, editable_by: [manager]}
    won:      {label: Won, final: true}
    lost:     {label: Lost, final: true}
    archived: {label: Archived, final: true}
  transitions:
    submit: {from: draft, to: review}
    win:
      label: Mark as won
      from: review
      to: won
      roles: [manager]
      when: "amount > 0"
      requires: [reason]
      approval: big_discount
    lose: {from: [draft, review], to: lost, roles: [rep], requires: [reason]}
    archive: {from: draft, to: archived, roles: []}
    cancel: {from: review, to: lost, approval: by_people}
approvals:
  big_discount:
    label: Big discount
    entry: "discount > 10"
    allow_self_approval: false
    steps:
      - name: manager
        approvers: {role: manager}
        escalate_after: 48h
        escalate_to: {role: director}
      - name: finance
        when: "discount > 20"
        approvers: {role: finance}
        mode: all
      - name: named
        when: "discount > 30"
        approvers: {field: approver}
    on_reject: {to: draft, require_comment: true}
  by_people:
    allow_self_approval: true
    steps:
      - name: vera
        approvers: {user: vera}
      - name: owner
        approvers: {field: owner}
      - name: boss
        approvers: {field: owner.manager}
permissions:
  rep:     {read: true, create: true, update: "owner == user.id", delete: false}
  manager: {read: true, create: true, update: true, delete: true}
  finance: {read: true}
  clerk:   {read: true}
  director: {read: true}
"""

FILES = {"roles.yaml": ROLES, "entities/user.yaml": USER_EXT, "entities/deal.yaml": DEAL}


@dataclass
class People:
    admin: Actor
    rita: Actor  # rep, north, manager: mia
    ron: Actor  # rep, south
    mia: Actor  # manager
    max: Actor  # manager
    dan: Actor  # director
    fay: Actor  # finance
    fred: Actor  # finance
    vera: Actor  # clerk
    walt: Actor  # clerk (vera's delegate)


def people(inst: Instance) -> People:
    mia = insert_user(inst, "mia", roles=["manager"], region="north")
    return People(
        admin=admin_actor(inst),
        rita=insert_user(inst, "rita", roles=["rep"], manager=mia.user_id, region="north"),
        ron=insert_user(inst, "ron", roles=["rep"], region="south"),
        mia=mia,
        max=insert_user(inst, "max", roles=["manager"], region="south"),
        dan=insert_user(inst, "dan", roles=["director"]),
        fay=insert_user(inst, "fay", roles=["finance"]),
        fred=insert_user(inst, "fred", roles=["finance"]),
        vera=insert_user(inst, "vera", roles=["clerk"]),
        walt=insert_user(inst, "walt", roles=["clerk"]),
    )


def deal_pack(pack: Any, extra: dict[str, str] | None = None) -> Path:
    return pack({**FILES, **(extra or {})})


def new_deal(inst: Instance, who: People, *, owner: Actor | None = None, stage: str = "draft",
             **values: Any) -> dict[str, Any]:
    """A deal owned by `owner` (default rita), moved to `stage` by the system."""
    owner = owner or who.rita
    values.setdefault("name", "Deal")
    values.setdefault("amount", "1000")
    deal = records.create(inst, who.admin, "deal", {**values, "owner": owner.user_id})
    if stage != "draft":
        system = Actor.system_actor()
        path = {"review": ["submit"], "won": ["submit", "win"], "lost": ["lose"],
                "archived": ["archive"]}[stage]
        for name in path:
            deal = records.update(inst, system, "deal", deal["id"], {}, version=None,
                                  transition=name)
    return deal
