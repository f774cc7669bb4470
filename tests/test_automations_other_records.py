"""Automations that change another record (docs/automations.md): the `update` action and
`transition: {name, record}`, on SQLite and PostgreSQL — a linked record, a two-step path, a
null link, a validation that rolls everything back, a transition not allowed from the target's
state, and the loop guard across records."""

from __future__ import annotations

import textwrap
from decimal import Decimal

import pytest
import sqlalchemy as sa
from support import admin_actor

from runtime.process.automations import AutomationFailed, AutomationLoop
from runtime.read import timeline
from runtime.write import records

ROLES = """
roles:
  agent: {label: Agent}
"""
PROPERTY = """
entity: property
title_field: name
fields:
  name:         {type: text, required: true}
  housekeeping: {type: choice, options: [clean, dirty]}
  last_buyer:   {type: text}
  price:        {type: money, min: 0}
  visits:       {type: integer}
  last_offer:   {type: link, to: offer, on_delete: set_null}
validations:
  - rule: "price == null or price < 1000000"
    message: The price is too high for this agency.
    field: price
workflow:
  field: status
  initial: available
  states:
    available: {label: Available}
    reserved:  {label: Reserved}
    sold:      {label: Sold, final: true}
  transitions:
    reserve: {from: available, to: reserved, roles: []}
    release: {from: reserved, to: available}
    sell:    {from: reserved, to: sold, requires: [price]}
permissions:
  agent: {read: true, create: true, update: true, delete: true}
"""
OFFER = """
entity: offer
title_field: buyer
fields:
  buyer:    {type: text, required: true}
  property: {type: link, to: property, on_delete: set_null}
  amount:   {type: money}
  note:     {type: text}
workflow:
  field: stage
  initial: pending
  states:
    pending:  {label: Pending}
    accepted: {label: Accepted}
  transitions:
    accept: {from: pending, to: accepted}
permissions:
  agent: {read: true, create: true, update: true, delete: true}
"""
CONTRACT = """
entity: contract
title_field: number
fields:
  number: {type: text, required: true}
  offer:  {type: link, to: offer, on_delete: set_null}
permissions:
  agent: {read: true, create: true, update: true, delete: true}
"""


@pytest.fixture
def make(make_instance, pack):
    """`make(AUTOMATIONS_YAML)`: an instance with property/offer/contract and automations."""
    def factory(automations_yaml: str):
        files = {"roles.yaml": ROLES, "entities/property.yaml": PROPERTY,
                 "entities/offer.yaml": OFFER, "entities/contract.yaml": CONTRACT,
                 "automations/test.yaml": textwrap.dedent(automations_yaml)}
        return make_instance(pack(files))
    return factory


def create(inst, entity, **values):
    return records.create(inst, admin_actor(inst), entity, values)


def get(inst, entity, record_id):
    return records.get(inst, admin_actor(inst), entity, record_id)


def edit(inst, entity, record_id, **values):
    current = get(inst, entity, record_id)
    return records.update(inst, admin_actor(inst), entity, record_id, values,
                          version=current["version"])


def count(inst, entity):
    table = inst.schema.table(entity)
    with inst.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


# -- update -----------------------------------------------------------------------------------

UPDATE_CASES = [
    pytest.param("""
        automations:
          follow_offer:
            entity: offer
            on: create
            do:
              - update: {record: "=property", values: {last_buyer: "{buyer}", price: "=amount"}}
        """, lambda inst, p: create(inst, "offer", buyer="Ann", property=p["id"], amount=250000),
        {"last_buyer": "Ann", "price": Decimal(250000), "version": 2}, id="linked-record"),
    pytest.param("""
        automations:
          dirty_on_contract:
            entity: contract
            on: create
            do:
              - update: {record: "=offer.property", values: {housekeeping: dirty}}
        """, lambda inst, p: create(inst, "contract", number="C-1", offer=create(
            inst, "offer", buyer="Bo", property=p["id"])["id"]),
        {"housekeeping": "dirty", "version": 2}, id="two-step-path"),
    pytest.param("""
        automations:
          explicit_entity:
            entity: offer
            on: update
            when: "coalesce(old.note, '') != coalesce(note, '')"
            do:
              - update: {record: "=property", entity: property, values: {last_buyer: "=note"}}
        """, lambda inst, p: edit(inst, "offer", create(inst, "offer", buyer="Cy",
                                                         property=p["id"])["id"], note="call"),
        {"last_buyer": "call", "version": 2}, id="explicit-entity-and-old"),
    pytest.param("""
        automations:
          moved_away:
            entity: offer
            on: update
            when: "old.property != property"
            do:
              - update: {record: "=old.property", values: {last_buyer: "left by {buyer}"}}
        """, lambda inst, p: edit(inst, "offer", create(inst, "offer", buyer="Di",
                                                         property=p["id"])["id"],
                                  property=create(inst, "property", name="Other")["id"]),
        {"last_buyer": "left by Di", "version": 2}, id="the-old-link"),
    pytest.param("""
        automations:
          on_delete:
            entity: offer
            on: delete
            do:
              - update: {record: "=property", values: {last_buyer: "{buyer} withdrew"}}
        """, lambda inst, p: records.delete(inst, admin_actor(inst), "offer", create(
            inst, "offer", buyer="Ed", property=p["id"])["id"]),
        {"last_buyer": "Ed withdrew", "version": 2}, id="after-a-delete"),
    pytest.param("""
        automations:
          unchanged:
            entity: offer
            on: create
            do:
              - update: {record: "=property", values: {name: "=property.name"}}
        """, lambda inst, p: create(inst, "offer", buyer="Fay", property=p["id"]),
        {"name": "Villa", "version": 1}, id="nothing-to-change-writes-nothing"),
]


@pytest.mark.parametrize("automations_yaml, act, expected", UPDATE_CASES)
def test_update_changes_the_linked_record(make, automations_yaml, act, expected):
    inst = make(automations_yaml)
    prop = create(inst, "property", name="Villa")
    act(inst, prop)
    after = get(inst, "property", prop["id"])
    found = {key: Decimal(after[key]) if isinstance(expected[key], Decimal) else after[key]
             for key in expected}
    assert found == expected


def test_update_goes_through_records_update_as_the_system(make):
    inst = make(UPDATE_CASES[0].values[0])
    prop = create(inst, "property", name="Villa")
    offer = create(inst, "offer", buyer="Ann", property=prop["id"], amount=1000)
    after = get(inst, "property", prop["id"])
    assert after["updated_by"] is None and Decimal(after["price"]) == 1000  # the system, not admin
    changes = [e for e in timeline.entries(inst, admin_actor(inst), "property", prop["id"])
               if e["kind"] != "created"]
    assert changes, "the change is audited on the property's timeline"
    assert get(inst, "offer", offer["id"])["version"] == 1


def test_a_null_link_skips_the_action(make):
    inst = make(UPDATE_CASES[1].values[0])
    prop = create(inst, "property", name="Villa")
    no_offer = create(inst, "contract", number="C-1")
    no_property = create(inst, "contract", number="C-2",
                         offer=create(inst, "offer", buyer="Bo")["id"])
    assert no_offer["id"] and no_property["id"]
    assert get(inst, "property", prop["id"])["version"] == 1


def test_a_refused_value_rolls_the_trigger_back_with_a_message(make):
    inst = make("""
        automations:
          follow_offer:
            entity: offer
            label: Offer sets the price
            on: create
            do:
              - update: {record: "=property", values: {price: "=amount"}}
    """)
    prop = create(inst, "property", name="Villa")
    with pytest.raises(AutomationFailed) as info:
        create(inst, "offer", buyer="Rich", property=prop["id"], amount=2_000_000)
    message = info.value.message
    assert "Offer sets the price" in message and "action 1 (update property price)" in message
    assert "The price is too high for this agency." in message
    assert "Nothing was saved" in message and info.value.status == 422
    assert count(inst, "offer") == 0
    assert get(inst, "property", prop["id"])["price"] is None


def test_updates_of_each_other_are_stopped_as_a_loop(make):
    inst = make("""
        automations:
          offer_counts_a_visit:
            entity: offer
            on: update
            do:
              - update: {record: "=property", values: {visits: "=coalesce(property.visits, 0) + 1"}}
          property_notes_the_offer:
            entity: property
            on: update
            do:
              - update: {record: "=last_offer", values: {note: "visit {visits}"}}
    """)
    offer = create(inst, "offer", buyer="Ann")
    prop = create(inst, "property", name="Villa", last_offer=offer["id"])
    with pytest.raises(AutomationLoop) as info:
        edit(inst, "offer", offer["id"], property=prop["id"])
    assert "loop" in info.value.message and info.value.status == 409
    assert get(inst, "offer", offer["id"])["property"] is None
    after = get(inst, "property", prop["id"])
    assert after["visits"] is None and after["version"] == 1


# -- transition on another record -------------------------------------------------------------

RESERVE = """
    automations:
      reserve_property:
        entity: offer
        label: Reserve on acceptance
        on: {transition: accept}
        do:
          - transition: {name: reserve, record: "=property"}
"""


def accept(inst, offer):
    from runtime.process import workflow

    return workflow.fire(inst, admin_actor(inst), "offer", offer["id"], "accept")


def test_transition_on_the_linked_record(make):
    inst = make(RESERVE)
    prop = create(inst, "property", name="Villa")
    offer = create(inst, "offer", buyer="Ann", property=prop["id"])
    accept(inst, offer)
    assert get(inst, "property", prop["id"])["status"] == "reserved"  # roles: [] allowed
    moves = [e for e in timeline.entries(inst, admin_actor(inst), "property", prop["id"])
             if e["kind"] == "transition"]
    assert moves[0]["data"]["transition"] == "reserve"
    assert "Reserve on acceptance" in moves[0]["body"] and f"offer #{offer['id']}" in \
        moves[0]["body"]


def test_transition_not_allowed_from_the_targets_state_is_skipped(make):
    inst = make(RESERVE)
    prop = create(inst, "property", name="Villa")
    first = create(inst, "offer", buyer="Ann", property=prop["id"])
    second = create(inst, "offer", buyer="Bo", property=prop["id"])
    accept(inst, first)
    before = get(inst, "property", prop["id"])
    accept(inst, second)  # the property is reserved already: nothing to do, no error
    assert get(inst, "offer", second["id"])["stage"] == "accepted"
    assert get(inst, "property", prop["id"])["version"] == before["version"]
    lonely = create(inst, "offer", buyer="Cy")  # no property: skipped as well
    assert accept(inst, lonely).moved


def test_transition_on_another_record_that_fails_its_checks_rolls_back(make):
    inst = make(RESERVE + """
      sell_on_contract:
        entity: contract
        label: Sell on contract
        on: create
        do:
          - transition: {name: sell, record: "=offer.property", entity: property}
""")
    prop = create(inst, "property", name="Villa")
    offer = create(inst, "offer", buyer="Ann", property=prop["id"])
    accept(inst, offer)
    with pytest.raises(AutomationFailed) as info:  # sell requires a price
        create(inst, "contract", number="C-1", offer=offer["id"])
    assert "Sell on contract" in info.value.message and "transition sell of property" in \
        info.value.message and "Price" in info.value.message
    assert count(inst, "contract") == 0
    edit(inst, "property", prop["id"], price=1000)
    create(inst, "contract", number="C-2", offer=offer["id"])
    assert get(inst, "property", prop["id"])["status"] == "sold"
