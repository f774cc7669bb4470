"""The linker's second half: workflows, approvals, permissions, automations, dashboards and
demo data, each reference and expression checked with the culprit's position.

Functions here take the `Linker` (builder/linker.py) that holds the drafts, the scope and the
diagnostics; they return the frozen model objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .diagnostics import Mark, did_you_mean
from .expressions import CheckContext, ExpressionError, Name, parse_repeated_slot
from .fieldtypes import coerce
from .model import (
    BUILTIN_ROLES,
    Action,
    Approval,
    Approvers,
    Automation,
    Dashboard,
    DemoFile,
    Entity,
    Field,
    Measure,
    Permission,
    Recipient,
    State,
    Step,
    Text,
    Transition,
    Trigger,
    Widget,
    Workflow,
    frozen_map,
    humanize,
)

if TYPE_CHECKING:
    from .linker import EntityDraft, Linker, Loc

_DURATION = re.compile(r"^(\d+)\s*([mhd])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int | None:
    """`30m`, `48h`, `5d` -> seconds."""
    match = _DURATION.match(str(text).strip())
    return int(match.group(1)) * _UNITS[match.group(2)] if match else None


def _at(loc: Loc, *keys: Any) -> Loc:
    return (loc[0], (*loc[1], *keys))


def _names(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


# -- workflows ----------------------------------------------------------------------------


def build_workflow(lk: Linker, draft: EntityDraft, fields: Mapping[str, Field]
                   ) -> Workflow | None:
    if "workflow" not in draft.settings:
        return None
    raw, loc = draft.settings["workflow"]
    states_raw: dict = raw.get("states") or {}
    prefix = "workflow: "
    states = {}
    for name, spec in states_raw.items():
        spec = spec or {}
        for index, role in enumerate(spec.get("editable_by") or []):
            lk.role_ref(role, _at(loc, "states", name, "editable_by", index),
                        f"state '{name}' editable_by: ")
        states[name] = State(name, Text.of(spec.get("label"), humanize(name)),
                             bool(spec.get("final")),
                             tuple(spec["editable_by"]) if "editable_by" in spec else None,
                             spec.get("color"))
    initial = raw["initial"]
    if initial not in states:
        lk.unknown("E204", "initial state", initial, states, _at(loc, "initial"), prefix)
    transitions = {}
    for name, spec in (raw.get("transitions") or {}).items():
        tloc = _at(loc, "transitions", name)
        tprefix = f"transition '{name}': "
        sources = _names(spec["from"])
        ok = True
        for index, state in enumerate(sources):
            at = _at(tloc, "from") if isinstance(spec["from"], str) else _at(tloc, "from", index)
            if state not in states:
                lk.unknown("E201", "state", state, states, at, tprefix)
                ok = False
            elif states[state].final:
                lk.error("E208", f"{tprefix}'{state}' is a final state; no transition may "
                         "leave it", at, f"remove 'final: true' from '{state}', or the "
                         "transition")
        if spec["to"] not in states:
            lk.unknown("E201", "state", spec["to"], states, _at(tloc, "to"), tprefix)
            ok = False
        roles = None
        if "roles" in spec:
            roles = tuple(spec["roles"] or ())
            for index, role in enumerate(roles):
                lk.role_ref(role, _at(tloc, "roles", index), tprefix)
        for index, fname in enumerate(spec.get("requires") or []):
            lk.field_ref(draft.name, fname, _at(tloc, "requires", index), "field", tprefix)
        when = None
        if "when" in spec:
            when = lk.expression(spec["when"], _at(tloc, "when"), CheckContext(draft.name),
                                 tprefix)
        if ok:
            transitions[name] = Transition(
                name, Text.of(spec.get("label"), humanize(name)), tuple(sources), spec["to"],
                roles, when, tuple(spec.get("requires") or ()), spec.get("approval"),
                Text.of(spec["message"]) if spec.get("message") else None)
    if initial in states and len(transitions) == len(raw.get("transitions") or {}):
        reachable, frontier = {initial}, [initial]
        while frontier:
            state = frontier.pop()
            for t in transitions.values():
                if state in t.from_states and t.to not in reachable:
                    reachable.add(t.to)
                    frontier.append(t.to)
        for approval in (draft.maps.get("approvals") or {}).values():
            target = (approval[0].get("on_reject") or {}).get("to")
            if target in states:
                reachable.add(target)
        for name in states:
            if name not in reachable:
                lk.error("E207", f"{prefix}state '{name}' cannot be reached from the initial "
                         f"state '{initial}'", _at(loc, "states", name),
                         "add a transition to it, or remove it", key=True)
    return Workflow(raw.get("field", "status"), initial, frozen_map(states),
                    frozen_map(transitions))


def check_transition_approvals(lk: Linker, draft: EntityDraft, workflow: Workflow,
                               approvals: Mapping[str, Approval]) -> None:
    raw, loc = draft.settings["workflow"]
    # every written transition, also one left out of the model for another mistake
    for name, spec in (raw.get("transitions") or {}).items():
        approval = spec.get("approval")
        if approval and approval not in approvals:
            lk.unknown("E206", "approval", approval,
                       list(approvals) + list(draft.maps.get("approvals") or {}),
                       _at(loc, "transitions", name, "approval"), f"transition '{name}': ")


# -- approvals ----------------------------------------------------------------------------


def _approvers(lk: Linker, draft: EntityDraft, raw: dict, loc: Loc, prefix: str
               ) -> Approvers | None:
    kind, value = next(iter(raw.items()))
    at = _at(loc, kind)
    if kind == "role":
        lk.role_ref(value, at, prefix)
    elif kind == "field":
        path = tuple(value.split("."))
        problem = lk.path_problem(draft.name, path)
        if problem:
            lk.error("E203", prefix + problem[0], at, problem[1])
            return None
        target = _path_target(lk, draft.name, path)
        if target != "user":
            lk.error("E209", f"{prefix}'{value}' must be a link to a user", at)
            return None
    return Approvers(kind, str(value))


def _path_target(lk: Linker, entity: str, path: tuple[str, ...]) -> str | None:
    current: str | None = entity
    for name in path:
        fields = lk.scope.fields(current) if lk.scope and current else None
        ref = fields.get(name) if fields else None
        if ref is None or ref.type != "link":
            return None
        current = ref.to
    return current


def build_approvals(lk: Linker, draft: EntityDraft, workflow: Workflow | None
                    ) -> dict[str, Approval]:
    result = {}
    for name, (raw, loc, _pack) in (draft.maps.get("approvals") or {}).items():
        prefix = f"approval '{name}': "
        entry = None
        if "entry" in raw:
            entry = lk.expression(raw["entry"], _at(loc, "entry"), CheckContext(draft.name),
                                  prefix)
        steps = []
        seen = set()
        for index, step in enumerate(raw["steps"]):
            sloc = _at(loc, "steps", index)
            sprefix = f"{prefix}step '{step['name']}': "
            if step["name"] in seen:
                lk.error("E200", f"{prefix}two steps are named '{step['name']}'",
                         _at(sloc, "name"))
            seen.add(step["name"])
            approvers = _approvers(lk, draft, step["approvers"], _at(sloc, "approvers"),
                                   sprefix)
            when = None
            if "when" in step:
                when = lk.expression(step["when"], _at(sloc, "when"), CheckContext(draft.name),
                                     sprefix)
            escalate_to = None
            if "escalate_to" in step:
                escalate_to = _approvers(lk, draft, step["escalate_to"],
                                         _at(sloc, "escalate_to"), sprefix)
            after = duration_seconds(step["escalate_after"]) if "escalate_after" in step \
                else None
            if approvers is not None:
                steps.append(Step(step["name"], Text.of(step.get("label"),
                                                        humanize(step["name"])),
                                  approvers, when, step.get("mode", "any"), after,
                                  escalate_to))
        on_reject = raw.get("on_reject") or {}
        if on_reject.get("to") and (workflow is None or on_reject["to"] not in
                                    workflow.states):
            lk.unknown("E201", "state", on_reject["to"],
                       workflow.states if workflow else [], _at(loc, "on_reject", "to"),
                       prefix + "on_reject: ")
        result[name] = Approval(name, Text.of(raw.get("label"), humanize(name)), tuple(steps),
                                entry, bool(raw.get("allow_self_approval", False)),
                                on_reject.get("to"), bool(on_reject.get("require_comment")))
    return result


# -- permissions --------------------------------------------------------------------------


def build_permissions(lk: Linker, draft: EntityDraft) -> dict[str, Permission]:
    result = {}
    for role, (raw, loc, _pack) in (draft.maps.get("permissions") or {}).items():
        if not lk.role_ref(role, loc, "permissions: ", key=True):
            continue
        prefix = f"permissions of '{role}': "
        if raw.get("assign", False) is not False and "owner" not in draft.fields:
            lk.error("E209", f"{prefix}assign: {draft.name} has no owner to assign",
                     _at(loc, "assign"), "remove 'assign'")
        rules: dict[str, Any] = {}
        for action in ("read", "create", "update", "delete", "comment", "assign", "merge"):
            if action == "comment" and action not in raw:
                rules[action] = rules["update"]  # who may change a record may annotate it
                continue
            if action == "merge" and action not in raw:
                rules[action] = rules["delete"]  # merging deletes the absorbed records
                continue
            value = raw.get(action, False)
            if isinstance(value, str):
                ctx = CheckContext(draft.name, require_sql=action == "read")
                value = lk.expression(value, _at(loc, action), ctx, f"{prefix}{action}: ")
                value = False if value is None else value
            rules[action] = value
        lists = {}
        for key in ("hidden", "readonly"):
            names = []
            for index, fname in enumerate(raw.get(key) or []):
                if lk.field_ref(draft.name, fname, _at(loc, key, index), "field",
                                f"{prefix}{key}: "):
                    names.append(fname)
            lists[key] = tuple(names)
        result[role] = Permission(role, **rules, **lists)
    return result


# -- automations --------------------------------------------------------------------------


def build_automations(lk: Linker) -> list[Automation]:
    found: list[tuple[str, str, dict, Loc, str]] = []  # name, entity, raw, loc, pack
    for draft in lk.drafts.values():
        for name, (raw, loc, pack) in (draft.maps.get("automations") or {}).items():
            if "entity" in raw and raw["entity"] != draft.name:
                lk.error("E209", f"automation '{name}': an automation in {draft.name}'s file "
                         f"acts on {draft.name}; remove 'entity: {raw['entity']}'",
                         _at(loc, "entity"))
            found.append((name, draft.name, raw, loc, pack))
    for source in lk.sources:
        for doc in source.of_kind("automations"):
            for name, raw in doc.data["automations"].items():
                loc = (doc, ("automations", name))
                if lk.entity_ref(raw["entity"], _at(loc, "entity"), f"automation '{name}': "):
                    found.append((name, raw["entity"], raw, loc, source.name))
    result, seen = [], {}
    for name, entity, raw, loc, pack in found:
        if (entity, name) in seen:
            lk.error("E200", f"automation '{name}' of {entity} is defined twice", loc,
                     key=True)
            continue
        seen[(entity, name)] = loc
        automation = _automation(lk, name, entity, raw, loc, pack)
        if automation is not None:
            result.append(automation)
    return result


def _automation(lk: Linker, name: str, entity: str, raw: dict, loc: Loc, pack: str
                ) -> Automation | None:
    prefix = f"automation '{name}': "
    draft = lk.drafts[entity]
    on = raw["on"]
    if isinstance(on, str):
        trigger = Trigger(on)
    elif "transition" in on:
        trigger = Trigger("transition", transition=on["transition"])
        workflow = draft.setting("workflow") or {}
        transitions = workflow.get("transitions") or {}
        if on["transition"] not in transitions:
            lk.unknown("E211", "transition", on["transition"], transitions,
                       _at(loc, "on", "transition"), prefix)
    else:
        trigger = Trigger("schedule", schedule=on["schedule"])
    allow_old = trigger.kind in ("update", "schedule", "transition")
    when = where = None
    if "when" in raw:
        when = lk.expression(raw["when"], _at(loc, "when"),
                             CheckContext(entity, allow_old=allow_old), prefix + "when: ")
    if "where" in raw:
        if trigger.kind != "schedule":
            lk.error("E209", f"{prefix}'where' selects records for a schedule; "
                     "use 'when' for events", _at(loc, "where"), key=True)
        where = lk.expression(raw["where"], _at(loc, "where"),
                              CheckContext(entity, require_sql=True), prefix + "where: ")
    actions = []
    for index, action_raw in enumerate(raw["do"]):
        action = _action(lk, entity, action_raw, _at(loc, "do", index), prefix, allow_old)
        if action is not None:
            actions.append(action)
    return Automation(name, entity, pack, Text.of(raw.get("label"), humanize(name)), trigger,
                      tuple(actions), when, where)


def _values(lk: Linker, entity: str, raw: dict, loc: Loc, prefix: str, context: str,
            allow_old: bool, computed: bool = True, item: str | None = None) -> dict:
    """The value slots of `set`, `create` or `update` for fields of `entity`, evaluated on a
    record of `context`; `computed=False` also refuses formula and rollup fields."""
    values = {}
    for fname, value in (raw or {}).items():
        at = _at(loc, fname)
        field = lk.field_ref(entity, fname, at, "field", prefix, key=True)
        if field is None:
            continue
        if field.system and fname != "owner":
            lk.error("E209", f"{prefix}'{fname}' is kept by the system and cannot be set", at,
                     key=True)
            continue
        if not computed and (field.raw.get("formula") is not None
                             or field.raw.get("rollup") is not None):
            what = "formula" if field.raw.get("formula") is not None else "rollup"
            lk.error("E209", f"{prefix}'{fname}' of {entity} is a {what} and cannot be set",
                     at, key=True)
            continue
        slot = lk.slot(value, at, context, prefix, allow_old, item)
        if slot is not None:
            if slot.kind == "literal":
                lk.literal_check(field, slot.value, at, prefix)
            values[fname] = slot
    return values


def _action(lk: Linker, entity: str, raw: dict, loc: Loc, prefix: str, allow_old: bool
            ) -> Action | None:
    kind, body = next(iter(raw.items()))
    at = _at(loc, kind)
    if kind == "set":
        return Action("set", values=frozen_map(_values(lk, entity, body, at, prefix, entity,
                                                      allow_old)))
    if kind == "create":
        target = body["entity"]
        if not lk.entity_ref(target, _at(at, "entity"), prefix):
            return None
        item = link = of = None
        if "for_each" in body:
            parent = entity
            if "of" in body:
                parent, of = _parent(lk, entity, body["of"], _at(at, "of"), prefix, allow_old)
                if parent is None:
                    return None
            item, link = _for_each(lk, parent, body["for_each"], _at(at, "for_each"), prefix)
            if item is None:
                return None
        elif "of" in body:
            lk.error("E219", f"{prefix}create: 'of' says whose children 'for_each' goes "
                     "through; add 'for_each'", _at(at, "of"), key=True)
        values = _values(lk, target, body.get("values"), _at(at, "values"), prefix, entity,
                         allow_old, item=item)
        return Action("create", entity=target, values=frozen_map(values), for_each=item,
                      for_each_link=link, for_each_of=of)
    if kind == "notify":
        recipient = _recipient(lk, entity, body.get("to"), _at(at, "to"), prefix)
        for key in ("subject", "message"):
            if isinstance(body.get(key), str):
                lk.template(body[key], _at(at, key), entity, prefix, allow_old)
        return Action("notify", recipient=recipient, subject=_opt_text(body.get("subject")),
                      message=Text.of(body["message"]))
    if kind == "email":
        return _email(lk, entity, body, at, prefix + "email: ", allow_old)
    if kind == "update":
        target, slot = _target(lk, entity, body, at, prefix, allow_old, "update")
        if target is None or slot is None:
            return None
        values = _values(lk, target, body.get("values"), _at(at, "values"), prefix, entity,
                         allow_old, computed=False)
        return Action("update", entity=target, record=slot, values=frozen_map(values))
    if kind == "transition":
        name, target, slot = body, entity, None
        if isinstance(body, dict):
            name = body["name"]
            target, slot = _target(lk, entity, body, at, prefix, allow_old, "transition")
            if target is None or slot is None:
                return None
            at = _at(at, "name")
        workflow = lk.drafts[target].setting("workflow") or {}
        if name not in (workflow.get("transitions") or {}):
            if slot is not None and not workflow:
                lk.error("E211", f"{prefix}transition: {target} has no workflow, so it has "
                         f"no transition '{name}'", at)
            else:
                lk.unknown("E211", "transition", name, workflow.get("transitions") or {}, at,
                           prefix if slot is None else f"{prefix}transition on {target}: ")
            return None
        return Action("transition", transition=name,
                      entity=None if slot is None else target, record=slot)
    # assign
    field = lk.field_ref(entity, body["field"], _at(at, "field"), "field", prefix)
    if field is not None and not (field.raw.get("type") == "link"
                                  and field.raw.get("to") == "user"):
        lk.error("E209", f"{prefix}assign: '{field.name}' must be a link to a user",
                 _at(at, "field"))
    among_kind, among_value = next(iter(body["among"].items()))
    if among_kind == "role":
        lk.role_ref(among_value, _at(at, "among", "role"), prefix)
    if body.get("match"):
        lk.field_ref(entity, body["match"], _at(at, "match"), "field", prefix + "match: ")
        if body["match"] not in (lk.drafts["user"].fields):
            lk.error("E203", f"{prefix}match: users have no field '{body['match']}'",
                     _at(at, "match"), f"add it with 'extends: user' (fields: "
                     f"{{{body['match']}: ...}})")
    return Action("assign", field=body["field"], among=Recipient(among_kind, str(among_value)),
                  strategy=body.get("strategy", "round_robin"), match=body.get("match"))


def _parent(lk: Linker, entity: str, raw: Any, at: Loc, prefix: str, allow_old: bool
            ) -> tuple[str | None, Any]:
    """The entity and slot of a `for_each`'s `of: "=LINK"` (a link or path of links of this
    record: the record whose children to go through); (None, None) after reporting."""
    slot = lk.slot(raw, at, entity, prefix, allow_old)
    if slot is None:
        return None, None
    tree = slot.expression.tree if slot.expression is not None else None
    led_to = _path_target(lk, entity, tree.path) if isinstance(tree, Name) else None
    if led_to is None:
        lk.error("E219", f"{prefix}create: of '{raw}' is not a link of {entity}", at,
                 "give a link field like '=quote', or leave 'of' out to go through the "
                 "children of this record")
        return None, None
    return led_to, slot


def _for_each(lk: Linker, entity: str, raw: str, at: Loc, prefix: str
              ) -> tuple[str | None, str | None]:
    """The child entity and its link to `entity` of `for_each: CHILD` or `CHILD.LINK` (the
    records of CHILD whose LINK is this record); (None, None) after reporting."""
    child, _, link = raw.partition(".")
    if not lk.entity_ref(child, at, prefix + "for_each: "):
        return None, None
    links = [name for name, f in lk.drafts[child].fields.items()
             if f.raw.get("type") == "link" and f.raw.get("to") == entity]
    if link:
        if lk.field_ref(child, link, at, "field", prefix + "for_each: ") is None:
            return None, None
        if link not in links:
            lk.error("E219", f"{prefix}for_each: '{child}.{link}' is not a link to {entity}",
                     at, "name a link of the child entity that points at this entity"
                     + (f" ({', '.join(links)})" if links else ""))
            return None, None
        return child, link
    if len(links) != 1:
        why = "no link" if not links else f"{len(links)} links ({', '.join(links)})"
        lk.error("E219", f"{prefix}for_each: {child} has {why} to {entity}", at,
                 f"write 'for_each: {child}.LINK' with a link of {child} to {entity}"
                 if links else f"give {child} a link to {entity}")
        return None, None
    return child, links[0]


def _target(lk: Linker, entity: str, body: dict, at: Loc, prefix: str, allow_old: bool,
            action: str) -> tuple[str | None, Any]:
    """The entity and the `record` slot of an action on another record (`update`, or
    `transition: {name, record}`): `record` is evaluated on this record and gives the other
    record's id. A link or a path of links (`=room`, `=offer.property`, `=old.room`) says the
    entity itself; any other expression needs `entity:`. (None, None) after reporting."""
    explicit = body.get("entity")
    if explicit is not None and not lk.entity_ref(explicit, _at(at, "entity"), prefix):
        return None, None
    rloc = _at(at, "record")
    slot = lk.slot(body["record"], rloc, entity, prefix, allow_old)
    if slot is None:
        return None, None
    expr = slot.expression
    tree = expr.tree if expr is not None else None
    if isinstance(tree, Name) and tree.path != ("id",):
        path = tree.path[1:] if tree.path[0] == "old" and len(tree.path) > 1 else tree.path
        shown = ".".join(tree.path)
        led_to = _path_target(lk, entity, path)
        if led_to is None:
            last = _path_field(lk, entity, path)
            kind = last.type if last is not None else "not a field"
            lk.error("E217", f"{prefix}{action}: record '{shown}' is not a link ({kind}), so "
                     "it names no record", rloc, "give a link field, or a path of links like "
                     "'=offer.property'")
            return None, None
        if explicit is not None and explicit != led_to:
            lk.error("E218", f"{prefix}{action}: record '{shown}' is a link to {led_to}, not "
                     f"to {explicit}", _at(at, "entity"),
                     f"write 'entity: {led_to}', or leave 'entity' out")
            return None, None
        return led_to, slot
    if explicit is None:
        lk.error("E217", f"{prefix}{action}: cannot tell which entity the record "
                 f"'{body['record']}' is", rloc, "add 'entity: NAME', or give a link field "
                 "like '=room'")
        return None, None
    return explicit, slot


def _path_field(lk: Linker, entity: str, path: tuple[str, ...]) -> Any:
    """The field reference at the end of a (valid) path, or None."""
    current: str | None = entity
    ref = None
    for name in path:
        fields = lk.scope.fields(current) if lk.scope and current else None
        ref = fields.get(name) if fields else None
        if ref is None:
            return None
        current = ref.to
    return ref


def _recipient(lk: Linker, entity: str, raw: dict | None, loc: Loc, prefix: str
               ) -> Recipient | None:
    if not raw:
        return None
    kind, value = next(iter(raw.items()))
    if kind == "role":
        lk.role_ref(value, _at(loc, "role"), prefix)
    elif kind == "field":
        problem = lk.path_problem(entity, tuple(value.split(".")))
        if problem:
            lk.error("E203", prefix + problem[0], _at(loc, "field"), problem[1])
        elif _path_target(lk, entity, tuple(value.split("."))) != "user":
            lk.error("E209", f"{prefix}'{value}' must be a link to a user", _at(loc, "field"))
    elif kind == "owner":
        return Recipient("owner")
    return Recipient(kind, str(value))


def _email(lk: Linker, entity: str, body: dict, at: Loc, prefix: str, allow_old: bool
           ) -> Action | None:
    """`email: {to, template, once, status}`: the template must be about this entity."""
    message = lk.messages.get(body["template"])
    if message is None:
        lk.unknown("E230", "message template", body["template"], lk.messages,
                   _at(at, "template"), prefix)
        return None
    if message.entity != entity:
        lk.error("E230", f"{prefix}the message '{message.name}' is about {message.entity}, "
                 f"not {entity}", _at(at, "template"), f"use a message with 'entity: {entity}'")
        return None
    recipient = _email_recipient(lk, entity, body["to"], _at(at, "to"), prefix)
    if message.consent and recipient is not None:
        _consent_field(lk, entity, recipient, message.consent, _at(at, "to"), prefix)
    if "once" in body:
        lk.template(body["once"], _at(at, "once"), entity, prefix + "once: ", allow_old)
    status = dict(body.get("status") or {})
    for key, name in status.items():
        lk.field_ref(entity, name, _at(at, "status", key), "field", prefix + "status: ")
    return Action("email", recipient=recipient, template=message.name, once=body.get("once"),
                  status=tuple(status.items()))


def _email_recipient(lk: Linker, entity: str, raw: dict, loc: Loc, prefix: str
                     ) -> Recipient | None:
    """Like `_recipient`, but a field may also be an e-mail address or a link to a record
    that has one (a contact)."""
    kind, value = next(iter(raw.items()))
    if kind != "field":
        return _recipient(lk, entity, raw, loc, prefix)
    path = tuple(value.split("."))
    problem = lk.path_problem(entity, path)
    if problem:
        lk.error("E203", prefix + problem[0], _at(loc, "field"), problem[1])
        return None
    ref = _path_field(lk, entity, path)
    if ref is not None and not (ref.type == "email" or ref.type == "link" and (
            ref.to == "user" or email_field_of(lk, ref.to) is not None)):
        lk.error("E209", f"{prefix}'{value}' must be an e-mail field or a link to a record "
                 "with one", _at(loc, "field"))
    return Recipient("field", value)


def _consent_field(lk: Linker, entity: str, recipient: Recipient, name: str, loc: Loc,
                   prefix: str) -> None:
    """A message with `consent: F` goes to a record that has the yes/no field F."""
    path = tuple((recipient.value or "").split(".")) if recipient.kind == "field" else ()
    ref = _path_field(lk, entity, path) if path else None
    target = ref.to if ref is not None and ref.type == "link" else (
        _path_target(lk, entity, path[:-1]) if path else None)
    found = (lk.scope.fields(target) or {}).get(name) if lk.scope and target else None
    if found is None or found.type != "boolean":
        lk.error("E209", f"{prefix}the message asks for consent ('{name}'), so it goes to a "
                 f"field whose record has the yes/no field '{name}'", loc)


def email_field_of(lk: Linker, entity: str | None) -> str | None:
    """The e-mail field of `entity` (see `Entity.email_field`), from the drafts."""
    fields = lk.scope.fields(entity) if lk.scope and entity else None
    names = [name for name, ref in (fields or {}).items() if ref.type == "email"]
    return "email" if "email" in names else (names[0] if names else None)


def _opt_text(raw: Any) -> Text | None:
    return Text.of(raw) if raw else None


# -- dashboards ---------------------------------------------------------------------------


def build_dashboards(lk: Linker) -> dict[str, Dashboard]:
    result: dict[str, Dashboard] = {}
    for source in lk.sources:
        for doc in source.of_kind("dashboard"):
            data = doc.data
            name = data["dashboard"]
            if name in result:
                lk.error("E200", f"dashboard '{name}' is already defined by pack "
                         f"'{result[name].pack}'", (doc, ("dashboard",)))
                continue
            for index, role in enumerate(data.get("roles") or []):
                lk.role_ref(role, (doc, ("roles", index)), "dashboard roles: ")
            widgets = []
            for index, raw in enumerate(data["widgets"]):
                widget = _widget(lk, raw, (doc, ("widgets", index)), index)
                if widget is not None:
                    widgets.append(widget)
            result[name] = Dashboard(name, source.name, Text.of(data.get("label"),
                                                                humanize(name)),
                                     tuple(data.get("roles") or ()), tuple(widgets),
                                     _opt_text(data.get("description")))
    return result


def _widget(lk: Linker, raw: dict, loc: Loc, index: int) -> Widget | None:
    entity = raw["entity"]
    label = raw.get("label") or humanize(entity)
    prefix = f"widget {index + 1} ({Text.of(label)}): "
    if not lk.entity_ref(entity, _at(loc, "entity"), prefix):
        return None
    op = raw.get("op", "count")
    _measured_field(lk, entity, raw, loc, prefix)
    divide_by = None
    if isinstance(raw.get("divide_by"), dict):
        part, at = raw["divide_by"], _at(loc, "divide_by")
        _measured_field(lk, entity, part, at, prefix + "divide_by: ")
        below = None
        if "where" in part:
            below = lk.expression(part["where"], _at(at, "where"),
                                  CheckContext(entity, require_sql=True), prefix + "divide_by: ")
        divide_by = Measure(part.get("op", "count"), part.get("field"), below)
    if raw.get("group_by"):
        lk.group_by(entity, raw["group_by"], _at(loc, "group_by"), prefix)
    for i, column in enumerate(raw.get("columns") or []):
        lk.field_ref(entity, column, _at(loc, "columns", i), "field", prefix)
    sort = _names(raw.get("sort"))
    for i, key in enumerate(sort):
        name = key.lstrip("-")
        if raw["type"] in ("chart", "table") and name in ("value", "label"):
            continue
        at = _at(loc, "sort") if isinstance(raw.get("sort"), str) else _at(loc, "sort", i)
        lk.field_ref(entity, name, at, "field", prefix + "sort: ")
    where = None
    if "where" in raw:
        where = lk.expression(raw["where"], _at(loc, "where"),
                              CheckContext(entity, require_sql=True), prefix)
    return Widget(raw["type"], entity, Text.of(label), where, op, raw.get("field"),
                  raw.get("chart"), raw.get("group_by"), tuple(sort), raw.get("limit"),
                  raw.get("format"), tuple(raw.get("columns") or ()), divide_by)


def _measured_field(lk: Linker, entity: str, raw: dict, loc: Loc, prefix: str) -> None:
    """`op` and `field` of a widget (or of its `divide_by`) go together."""
    op = raw.get("op", "count")
    if raw.get("field"):
        ref = lk.field_ref(entity, raw["field"], _at(loc, "field"), "field", prefix)
        if ref is not None and op in ("sum", "avg") and ref.raw.get("type") not in (
                "integer", "decimal", "money", "percent"):
            lk.error("E209", f"{prefix}op {op} needs a number field; '{ref.name}' is "
                     f"{ref.raw.get('type')}", _at(loc, "field"))
    elif op != "count":
        lk.error("E103", f"{prefix}op {op} needs 'field': the field to summarise", loc)


# -- demo data ----------------------------------------------------------------------------


def build_demo(lk: Linker, entities: Mapping[str, Entity]) -> list[DemoFile]:
    files: list[tuple[str, str, str, list[tuple[dict, Any]]]] = []
    for source in lk.sources:
        for doc in source.of_kind("data"):
            entity = _stem(doc.file)
            rows = [(record, (doc, (index,))) for index, record in enumerate(doc.data)]
            files.append((source.name, entity, doc.file, rows))
        for csv_doc in source.csv:
            entity = _stem(csv_doc.file)
            rows = [({k: (v if v != "" else None) for k, v in row.items()},
                     Mark(csv_doc.file, line, 1)) for line, row in csv_doc.rows]
            files.append((source.name, entity, csv_doc.file, rows))
    keys: dict[str, set[str]] = {}
    for _pack, entity, _file, rows in files:
        for record, _where in rows:
            if isinstance(record.get("_key"), str):
                keys.setdefault(entity, set()).add(record["_key"])
    result = []
    passed: set[tuple] = set()
    for pack, entity_name, file, rows in files:
        entity = entities.get(entity_name)
        if entity is None:
            lk.diags.add("E411", f"demo data for unknown entity '{entity_name}'",
                         Mark(file, 1, 1), did_you_mean(entity_name, entities) or
                         "name the file after the entity it fills, like data/contact.yaml")
            continue
        seen_keys: set[str] = set()
        for record, where in rows:
            _check_record(lk, entity, record, where, seen_keys, keys, passed)
        result.append(DemoFile(pack, entity_name, file,
                               tuple(frozen_map(r) for r, _ in rows)))
    return result


def _check_record(lk: Linker, entity: Entity, record: dict, where: Any, seen_keys: set[str],
                  keys: Mapping[str, set[str]], passed: set[tuple]) -> None:
    """Check one demo record. `passed` remembers the (entity, field, value)s found good: the
    shipped demo files give 205,000 values, of which 41,000 differ."""

    def mark(*keys: Any, key: bool = False) -> Mark:
        """The value at `keys` in the record (its key when `key`); a CSV row's start."""
        if isinstance(where, Mark):
            return where
        doc, path = where
        return doc.mark((*path, *keys), key=key)

    key = record.get("_key")
    if key is not None:
        if key in seen_keys:
            lk.diags.add("E413", f"two {entity.name} records have the _key '{key}'",
                         mark("_key"))
        seen_keys.add(str(key))
    for name, value in record.items():
        if name == "_key" or value is None:
            continue
        # the class too: 1, 1.0 and True are equal; a list is not remembered
        known = None if value.__class__ is list else (entity.name, name, value.__class__, value)
        if known in passed:
            continue
        if _check_value(lk, entity, name, value, where, mark, keys) and known is not None:
            passed.add(known)


def _check_value(lk: Linker, entity: Entity, name: str, value: Any, where: Any,
                 mark: Callable[..., Mark], keys: Mapping[str, set[str]]) -> bool:
    """Check one value of a demo record: True when there is nothing to report."""
    if name == "roles" and entity.name == "user":
        return _check_demo_roles(lk, value, mark)
    field = entity.fields.get(name)
    if field is None or (field.system and name != "owner" and (
            not entity.system or name in _AUTOMATIC)):
        lk.diags.add("E412", f"{entity.name} has no field '{name}'", mark(name, key=True),
                     did_you_mean(name, [f.name for f in entity.user_fields]))
        return False
    if field.type in ("link", "links"):
        if field.to == "user" or field.to not in lk.drafts:
            return True  # an unknown entity is reported at the field
        return _check_demo_keys(lk, entity, field, value, mark, keys)
    try:
        slot = parse_repeated_slot(value)
    except ExpressionError as err:
        if isinstance(where, Mark):
            lk.diags.add(err.code, f"{entity.name}.{name}: {err.message}", where, err.hint)
        else:  # at the culprit inside the expression
            lk.expression_error(err, (where[0], (*where[1], name)), f"{entity.name}.{name}: ")
        return False
    if slot.kind != "literal":
        return True
    try:
        coerce(field, value)
    except ValueError as exc:
        lk.diags.add("E415", f"{entity.name}.{name}: {str(value)[:40]!r} {exc}", mark(name))
        return False
    return True


def _check_demo_keys(lk: Linker, entity: Entity, field: Field, value: Any,
                     mark: Callable[..., Mark], keys: Mapping[str, set[str]]) -> bool:
    """A demo link names records of its entity by `_key` (or is an `=expression`)."""
    known = keys.get(field.to or "", set())
    wanted = value if isinstance(value, list) else [value]
    found = True
    for index, item in enumerate(wanted):
        if isinstance(item, str) and not item.startswith("=") and item not in known:
            at = mark(field.name, index) if isinstance(value, list) else mark(field.name)
            lk.diags.add("E414", f"{entity.name}.{field.name}: no {field.to} record has "
                         f"the _key '{item}'", at, did_you_mean(item, known))
            found = False
    return found


# the fields of a built-in entity (user, team) no demo row sets
_AUTOMATIC = frozenset({"id", "created_at", "created_by", "updated_at", "updated_by", "version",
                        "last_activity_at"})


def _check_demo_roles(lk: Linker, value: Any, mark: Callable[..., Mark]) -> bool:
    """`roles: [agent, ...]` of a demo user: role names of the packs (or `admin`)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        lk.diags.add("E415", f"user.roles: {str(value)[:40]!r} must be a list of role names",
                     mark("roles"), "write roles: [agent] (names from roles.yaml)")
        return False
    known = set(lk.roles) | set(BUILTIN_ROLES)
    unknown = [(index, role) for index, role in enumerate(value) if role not in known]
    for index, role in unknown:
        lk.diags.add("E205", f"user.roles: unknown role '{role}'", mark("roles", index),
                     did_you_mean(role, known))
    return not unknown


def _stem(file: str) -> str:
    base = file.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0]
