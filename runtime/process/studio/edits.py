"""The studio's form changes, as edits of a customisation's data (decided here, pure; written
by `runtime.process.studio.versions`). Each takes the data of `<entity>.yaml` (`extends:` first),
the entity as the model has it, what the form sent and, where an extension must repeat what
the pack wrote (a choice's whole option list, the whole list view), the raw value from
`origins`; it returns the new data and a one-line summary, or raises StudioError with what to
fix. The builder still checks the result: these only write what an admin asked for.

How an extension merges (builder/linker.py `merge`): a new field is added; a field of the
same type has its keys replaced (label, options, required, min...); form sections and
validations are appended; `views.list` replaces the list view whole.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

from builder.model import Entity, humanize
from runtime.process.studio.layer import StudioError
from runtime.process.studio.origins import EntityOrigins

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# the types a field added in the studio may have (computed and file fields need more than a form)
ADDABLE_TYPES = ("text", "longtext", "email", "phone", "url", "integer", "decimal", "money",
                 "percent", "boolean", "date", "datetime", "choice", "multichoice", "link")
REPEATED = {"choice": ("options",), "multichoice": ("options",), "link": ("to",),
            "links": ("to",)}

Form = Mapping[str, str]
Edited = tuple[dict[str, Any], str]  # the new data, a summary of the change


def add_field(data: dict, entity: Entity, origins: EntityOrigins, form: Form) -> Edited:
    name = _name(form.get("name", ""))
    if name in entity.fields:
        raise StudioError(f"{entity.name} already has a field '{name}'; choose another name.")
    ftype = form.get("type", "")
    if ftype not in ADDABLE_TYPES:
        raise StudioError(f"Choose a field type: one of {', '.join(ADDABLE_TYPES)}.")
    spec: dict[str, Any] = {"type": ftype, "label": _text(form, "label") or humanize(name)}
    if ftype in ("choice", "multichoice"):
        spec["options"] = _options(form.get("options", ""))
    if ftype == "link":
        spec["to"] = _name(form.get("to", ""), "entity")
    if form.get("required"):
        spec["required"] = True
    return _set_field(data, name, spec), f"add field {name} ({ftype})"


def set_label(data: dict, entity: Entity, origins: EntityOrigins, form: Form) -> Edited:
    label = _text(form, "label")
    if not label:
        raise StudioError("Type the new label.")
    target = form.get("field", "")
    if not target:
        edited = copy.deepcopy(data)
        edited["label"] = label
        return edited, f"label of {entity.name}: {label}"
    field = _field(entity, origins, target)
    return _set_field(data, field, {"label": label}, origins), f"label of {field}: {label}"


def add_option(data: dict, entity: Entity, origins: EntityOrigins, form: Form) -> Edited:
    field = _field(entity, origins, form.get("field", ""))
    if entity.fields[field].type not in ("choice", "multichoice"):
        raise StudioError(f"'{field}' is not a choice field; options belong to choices.")
    value = form.get("value", "").strip()
    if not value or len(value) > 63:
        raise StudioError("Type the new option's value (up to 63 characters).")
    if any(o.value == value for o in entity.fields[field].options):
        raise StudioError(f"'{field}' already has the option '{value}'.")
    options = _as_map(origins.fields[field].raw.get("options"))
    options[value] = _text(form, "label") or humanize(value)
    return _set_field(data, field, {"options": options}, origins), \
        f"add option {value} to {field}"


def add_section(data: dict, entity: Entity, origins: EntityOrigins, form: Form) -> Edited:
    label = _text(form, "label")
    if not label:
        raise StudioError("Give the section a label.")
    wanted = form.getlist("fields") if hasattr(form, "getlist") else list(form.get("fields") or [])
    free = unplaced(entity, origins)
    if not wanted or any(n not in free for n in wanted):
        raise StudioError("Pick one or more fields that no section shows yet (a field is "
                          "shown in one section only).")
    columns = form.get("columns") or "1"
    section = {"label": label, "fields": wanted,
               "columns": max(1, min(int(columns), 3)) if columns.isdigit() else 1}
    edited = copy.deepcopy(data)
    edited.setdefault("views", {}).setdefault("form", {}).setdefault("sections", []) \
        .append(section)
    return edited, f"add form section “{label}”"


def add_column(data: dict, entity: Entity, origins: EntityOrigins, form: Form) -> Edited:
    return _add_to_list(data, entity, origins, form.get("field", ""), "columns")


def add_filter(data: dict, entity: Entity, origins: EntityOrigins, form: Form) -> Edited:
    return _add_to_list(data, entity, origins, form.get("field", ""), "filters")


def set_validation(data: dict, entity: Entity, origins: EntityOrigins, form: Form) -> Edited:
    """A field's own checks: required, min, max, max_length, pattern. An empty box keeps
    what the pack says; `required` is written either way (an extension may lift it)."""
    field = _field(entity, origins, form.get("field", ""))
    spec: dict[str, Any] = {"required": bool(form.get("required"))}
    for key in ("min", "max", "max_length"):
        raw = (form.get(key) or "").strip()
        if raw:
            spec[key] = _number(raw, key)
    if (form.get("pattern") or "").strip():
        spec["pattern"] = form["pattern"].strip()
    return _set_field(data, field, spec, origins), f"validation of {field}"


def add_rule(data: dict, entity: Entity, origins: EntityOrigins, form: Form) -> Edited:
    """A record rule (`validations:`): an expression that must hold, and its message."""
    rule = (form.get("rule") or "").strip()
    if not rule:
        raise StudioError("Type the rule, such as: amount > 0")
    item: dict[str, Any] = {"rule": rule}
    if _text(form, "message"):
        item["message"] = _text(form, "message")
    if form.get("field"):
        item["field"] = _field(entity, origins, form["field"])
    edited = copy.deepcopy(data)
    edited.setdefault("validations", []).append(item)
    return edited, f"add validation {rule}"


CHANGES: dict[str, Callable[[dict, Entity, EntityOrigins, Form], Edited]] = {
    "add_field": add_field, "set_label": set_label, "add_option": add_option,
    "add_section": add_section, "add_column": add_column, "add_filter": add_filter,
    "set_validation": set_validation, "add_rule": add_rule,
}


def unplaced(entity: Entity, origins: EntityOrigins) -> list[str]:
    """The fields the form shows that no declared section places (the form's "More" part):
    the ones a new section may take."""
    shown = {n for s in entity.views.form for n in s.fields}
    return [n for n in origins.fields if n in shown and n not in origins.placed]


def _add_to_list(data: dict, entity: Entity, origins: EntityOrigins, field: str,
                 key: str) -> Edited:
    field = _field(entity, origins, field, system_ok=True)
    current = dict(origins.list_raw or {})
    built = entity.views.list
    current.setdefault("columns", list(built.columns))
    current.setdefault("filters", list(built.filters))
    if field in (current.get(key) or []):
        raise StudioError(f"The list already has '{field}' among its {key}.")
    current[key] = [*(current.get(key) or []), field]
    edited = copy.deepcopy(data)
    edited.setdefault("views", {})["list"] = current
    return edited, f"add {field} to the list {key}"


def _set_field(data: dict, name: str, spec: dict[str, Any],
               origins: EntityOrigins | None = None) -> dict:
    """`data` with `spec` set on field `name`; a pack's field is repeated with its type (an
    extension may only change a field of the same type) and what that type requires."""
    edited = copy.deepcopy(data)
    fields = edited.setdefault("fields", {})
    current = dict(fields.get(name) or {})
    if origins is not None and name in origins.fields and "type" not in current:
        raw = origins.fields[name].raw
        current["type"] = raw.get("type", "text")
        for key in REPEATED.get(current["type"], ()):  # keys the schema wants with the type
            current.setdefault(key, copy.deepcopy(raw.get(key)))
    current.update(spec)
    fields[name] = current
    return edited


def _field(entity: Entity, origins: EntityOrigins, name: str, system_ok: bool = False) -> str:
    f = entity.fields.get(name)
    if f is None or (f.system and not system_ok) or (not system_ok and name not in
                                                      origins.fields):
        raise StudioError(f"Pick a field of {entity.name}; '{name[:63]}' is not one.")
    return name


def _name(raw: str, what: str = "field") -> str:
    name = raw.strip()
    if not NAME.match(name):
        raise StudioError(f"A {what} name is lower case letters, digits and _, starting with "
                          f"a letter (such as lead_source); '{name[:63]}' is not.")
    return name


def _text(form: Form, key: str) -> str:
    return " ".join((form.get(key) or "").split())[:200]


def _options(raw: str) -> dict[str, str]:
    """Options typed one a line, `value` or `value: Label`."""
    options: dict[str, str] = {}
    for line in raw.splitlines():
        value, _, label = line.partition(":")
        value = value.strip()
        if not value:
            continue
        if len(value) > 63:
            raise StudioError(f"An option value is at most 63 characters: '{value[:63]}…'.")
        options[value] = label.strip() or humanize(value)
    if not options:
        raise StudioError("A choice needs options: type one a line, as value or value: Label.")
    return options


def _as_map(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return dict(raw)
    return {str(v): humanize(str(v)) for v in raw or []}


def _number(raw: str, key: str) -> int | float:
    try:
        value = float(raw)
    except ValueError:
        raise StudioError(f"{key} must be a number, not '{raw[:40]}'.") from None
    return int(value) if value.is_integer() else value

