"""Every role that may create an entity, in every shipped pack, can create one through the web
form, on SQLite and PostgreSQL.

Generated from the model, nothing hand-listed. For each pack, records of every entity are made
first, as the system (like demo data), owned by the test user, every link to a user pointing
at that user — so that links have records to point at that the user may see. Then the test
user takes each role in turn and, for each entity the role may create, opens
`/e/<entity>/new` and posts it with a value in each field the form lets that role edit, and
nothing else, as a person would. The values come from the field types, options, bounds and
patterns (tests/pack_values.py); a value a rule refuses is corrected the way a person would
correct it: another option, another date, another record to link to (one in another workflow
state, or with other values, made when needed). What is left is a pack problem: a required
field the role may not fill and nothing fills for it (real_estate's `listing_agent` was one),
a rule the role cannot satisfy with what it may edit, a link to records it may not see ...
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pack_values import BLANKS, Errors, FieldValues, solve
from support import insert_team
from web_support import csrf, make_app, sign_in

from builder.linker import build_model
from builder.model import AppModel, Entity
from runtime.core.errors import Conflict, ValidationFailed
from runtime.core.instance import Actor, Instance
from runtime.write import records

ROOT = Path(__file__).resolve().parent.parent / "verticals"
PACKS = {
    "core": [ROOT / "core"],
    "real_estate": [ROOT / "core", ROOT / "real_estate"],
    "telecom": [ROOT / "core", ROOT / "telecom"],
    "finance": [ROOT / "core", ROOT / "finance"],
    "hotel": [ROOT / "core", ROOT / "hotel"],
}
INPUT = re.compile(r'\bname="([a-z][a-z0-9_]*)"')
MESSAGE = re.compile(r"<li>(.*?)</li>", re.S)
FIELD_ERRORS = re.compile(r'class="field has-error" id="field-(\w+)".*?<ul class="errors"[^>]*>'
                          r"(.*?)</ul>", re.S)
RECORD_ERRORS = re.compile(r'class="flash flash-error form-errors".*?<ul>(.*?)</ul>', re.S)
DUPLICATE = "Open the existing record"

pytestmark = pytest.mark.slow


@functools.cache
def pack_model(pack: str) -> AppModel:
    return build_model(list(PACKS[pack]), demo=False)


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_every_role_can_create_what_it_may_through_the_form(pack, make_instance, tmp_path):
    inst = make_instance(pack_model(pack))
    team = insert_team(inst, "Testers")
    tester = make_user(inst, team)
    targets = Targets(inst, tester.user_id, team)
    client = make_app(inst, tmp_path).test_client()
    problems = []
    tried = 0
    for role in sorted(inst.model.roles):
        give_role(inst, tester, role)
        sign_in(client, inst, tester)
        for entity in creatable(inst.model, role):
            tried += 1
            problem = create_through_form(client, targets, entity, 1000 + tried)
            if problem:
                problems.append(f"{role} cannot create {entity.name}: {problem}")
    assert tried > 50  # the packs grant create to many roles; a broken generator finds none
    assert not problems, "\n".join(problems)


def creatable(model: AppModel, role: str) -> list[Entity]:
    """The entities a user holding just `role` may create (some of them, at least)."""
    roles = model.role_closure((role,))
    return [entity for entity in model.entities.values()
            if any(perm.create is not False for name, perm in entity.permissions.items()
                   if name in roles)]


def create_through_form(client: Any, targets: Targets, entity: Entity,
                        serial: int) -> str | None:
    """Post `/e/<entity>/new` with the fields its form offers; None once it was created."""
    page = client.get(f"/e/{entity.name}/new")
    if page.status_code != 200:
        return f"the form answers {page.status_code}"
    text = page.get_data(as_text=True)
    offered = [name for name in dict.fromkeys(INPUT.findall(text)) if name in entity.fields]
    token = csrf(text)
    found = targets.candidates(entity, offered, serial)
    posted: dict[str, Any] = {}

    def submit(chosen: dict[str, Any]) -> Errors | None:
        form = {"csrf_token": token}
        for name, value in chosen.items():
            form[name] = value
            kind = entity.fields[name].type
            if kind == "link":  # the picker's chosen id; the text box as the picker left it
                form[f"{name}__q"] = form[f"{name}__shown"] = ""
            elif kind in ("boolean", "multichoice", "links"):
                form[f"{name}__present"] = "1"
        posted.clear()
        posted.update(chosen)
        answer = client.post(f"/e/{entity.name}/new", data=form)
        if answer.status_code == 302:
            made = re.search(rf"/e/{entity.name}/(\d+)$", answer.headers["Location"])
            return None if made else {"_record": [f"sent to {answer.headers['Location']}"]}
        text = answer.get_data(as_text=True)
        errors = form_errors(answer.status_code, text)
        if DUPLICATE in text:  # a `block` duplicate rule: change what it matches on
            errors.update({name: ["matches an existing record"]
                           for name in targets.duplicate_fields(entity) if name in chosen})
        return with_causes(entity, errors, chosen)

    errors = solve(found, submit, grow=functools.partial(targets.grow, entity, found))
    return None if errors is None else f"{errors} (posted {posted})"


def form_errors(status: int, page: str) -> Errors:
    """The messages of a refused form by field (`_record` for those of no field shown)."""
    errors: Errors = {}
    for name, block in FIELD_ERRORS.findall(page):
        errors[name] = [_plain(m) for m in MESSAGE.findall(block)]
    summary = RECORD_ERRORS.search(page)
    if summary:
        errors["_record"] = [_plain(m) for m in MESSAGE.findall(summary.group(1))]
    return errors or {"_record": [f"answered {status}"]}


def with_causes(entity: Entity, errors: Errors, chosen: dict[str, Any]) -> Errors:
    """`errors`, plus the fields sent that a refusal the person cannot fix where it is shown
    depends on: the rule of a message without a field, or about a field the form does not
    offer ("IBAN: is required", for a role that may not see the IBAN, comes from its
    `required_when` on the payment method) — so that those are changed instead."""
    result = dict(errors)
    for key, messages in errors.items():
        for message in messages:
            for expr in _rules_behind(entity, key, message, chosen):
                _blame(result, expr, chosen, message)
    return result


def _rules_behind(entity: Entity, key: str, message: str,
                  chosen: dict[str, Any]) -> Iterator[Any]:
    if key in chosen:
        return
    for f in entity.fields.values():
        if key == f.name or message.startswith(f"{f.label.get()}: "):
            yield from (f.required_when, f.visible_when)
            yield from (rule.rule for rule in entity.validations
                        if rule.field == f.name and rule.message.get() in message)
    yield from (rule.rule for rule in entity.validations
                if rule.field is None and rule.message.get() in message)


def _blame(errors: Errors, expr: Any, chosen: dict[str, Any], message: str) -> None:
    for path in expr.names if expr is not None else ():
        if path[0] in chosen and path[0] not in errors:
            errors[path[0]] = [f"(a cause of) {message}"]


def _plain(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def make_user(inst: Instance, team: int) -> Actor:
    """The test user, made as an administrator makes one (so that the fields packs add to
    users get their defaults, such as core's open-lead limit)."""
    user = records.create(inst, Actor.system_actor(), "user", {
        "username": "tester", "full_name": "Tess Tester", "team": team})
    return Actor(int(user["id"]), "tester", frozenset(), team)


def give_role(inst: Instance, user: Actor, role: str) -> None:
    table = inst.schema.system("user_role")
    with inst.engine.begin() as conn:
        conn.execute(table.delete().where(table.c.user_id == user.user_id))
        conn.execute(table.insert().values(user_id=user.user_id, role=role))


# -- the records links point at --------------------------------------------------------------


class Targets:
    """Records for links to point at, all owned by the test user.

    Two of every entity to start with (the likeliest values, and the next ones: the other
    option, a boolean set), made in the order required links need. When a form refuses every
    record of an entity a link may point at, more are made, each differing from the first in
    one thing: one other option of a choice or boolean field, or one other workflow state
    (a restaurant sees only confirmed reservations; a bundle's component is a catalogue item
    of kind `bundle`)."""

    def __init__(self, inst: Instance, owner: int, team: int):
        self.inst = inst
        self.owner = owner
        self.system = Actor.system_actor()
        self.links: dict[str, list[int]] = {"user": [owner], "team": [team]}
        self.values = FieldValues(inst, self.links)
        self.first: dict[str, dict[str, Any]] = {}  # the values of each entity's first record
        self.serial = 0  # text values carry it: unique fields and duplicate rules hold
        self.spread: set[str] = set()  # entities whose one-difference records exist
        pending = [e for e in inst.model.entities.values() if not e.system]
        while pending:
            ready = [e for e in pending if all(
                f.to in self.links or f.to == e.name for f in e.fields.values()
                if f.type == "link" and f.required)]
            assert ready, f"required links go round in a circle: {[e.name for e in pending]}"
            for entity in ready:
                self.links[entity.name] = []
                self.make(entity, 0)
                self.make(entity, 1)
                pending.remove(entity)

    def candidates(self, entity: Entity, names: list[str], serial: int) -> dict[str, list]:
        """The values worth trying in each of the fields `names` that has any."""
        dates = [f.name for f in entity.fields.values() if f.type in ("date", "datetime")]
        found = {}
        for name in names:
            options = self.values.candidates(entity, entity.fields[name], serial,
                                             dates.index(name) if name in dates else 0)
            if options:
                found[name] = options
        return found

    def duplicate_fields(self, entity: Entity) -> list[str]:
        """What a person changes when a `block` duplicate rule refuses the record: one of the
        values it matches on (the last; changing all of them at once may change too much)."""
        return [rule.match[-1] for rule in entity.duplicates
                if rule.action == "block" and rule.match]

    def grow(self, entity: Entity, found: dict[str, list], name: str) -> bool:
        """More records for the link `name` to try, put right after those tried."""
        f = entity.fields[name]
        target = self.inst.model.entities.get(f.to or "")
        if f.type not in ("link", "links") or target is None or target.system:
            return False
        if target.name not in self.spread:
            self.spread.add(target.name)
            self._spread(target)
        new = [str(i) if f.type == "link" else [str(i)] for i in self.links[target.name]]
        new = [v for v in new if v not in found[name]]
        tried = [v for v in found[name] if v not in BLANKS]
        found[name][len(tried):len(tried)] = new
        return bool(new)

    def _spread(self, entity: Entity) -> None:
        first = self.first.get(entity.name, {})
        for name, value in first.items():
            f = entity.fields[name]
            if f.type not in ("choice", "boolean"):
                continue
            for other in self.values.candidates(entity, f, 0, 0):
                if other not in BLANKS and other != value:
                    self.make(entity, 0, {name: other})
        workflow = entity.workflow
        for state in workflow.states if workflow else ():
            if state != workflow.initial:
                made = self.make(entity, 0, keep=False)
                if made is not None:
                    self._move(entity, made, state)

    def make(self, entity: Entity, variant: int, fixed: dict[str, Any] | None = None, *,
             keep: bool = True) -> int | None:
        """A record of `entity` from the candidates at `variant` (with `fixed` values); None
        when no values were accepted. `keep=False`: not offered to links yet."""
        names = [f.name for f in entity.fields.values() if f.editable and f.to != entity.name]
        self.serial += 1
        found = self.candidates(entity, names, self.serial)
        found.update({name: [value] for name, value in (fixed or {}).items()})
        accepted: list[dict[str, Any]] = []

        def submit(chosen: dict[str, Any]) -> Errors | None:
            try:
                made = records.create(self.inst, self.system, entity.name,
                                      {**chosen, "owner": self.owner})
            except ValidationFailed as exc:
                return with_causes(entity, exc.errors, chosen)
            except Conflict as exc:  # a `block` duplicate rule: change what it matches on
                return {name: [exc.message] for name in self.duplicate_fields(entity)}
            accepted.append({**chosen, "id": int(made["id"])})
            return None

        errors = solve(found, submit, variant=variant,
                       grow=functools.partial(self.grow, entity, found))
        assert errors is None or variant or fixed or not keep, \
            f"the {entity.name} links point at: {errors}"
        if not accepted:
            return None
        record = accepted[0]
        if variant == 0 and not fixed and keep:
            self.first[entity.name] = {k: v for k, v in record.items() if k != "id"}
        if keep:
            self.links[entity.name].append(record["id"])
        return record["id"]

    def _move(self, entity: Entity, record_id: int, state: str) -> None:
        workflow = entity.workflow
        assert workflow is not None
        into = [t.name for t in workflow.transitions.values() if t.to == state]
        try:
            records.update(self.inst, self.system, entity.name, record_id,
                           {workflow.field: state}, version=None,
                           transition=(into or list(workflow.transitions))[0])
        except ValidationFailed:
            return
        self.links[entity.name].append(record_id)
