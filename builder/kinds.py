"""Record kinds (`kinds:`): an entity's records of different kinds show different sections.

Kinds *claim* what they show. A section, field or related list that some kind names is shown
only on records of the kinds that name it; one that no kind names is shown on every record
(so a pack's extension sections appear only where its kind applies, and sections nobody
claims stay common). `hide:` leaves common fields out of one kind, `options:` narrows the
options of a choice field. The kind is a choice field of the record (`kind`), filled on
create from the first kind whose `when:` holds, else the `default: true` kind.

The linker calls `collect` for every entity file, `add_field` once the drafts are merged and
`build` in pass 3; problems are reported with the linker's diagnostics (E220-E224).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .diagnostics import did_you_mean
from .expressions import CheckContext, ValueSlot, parse_slot
from .model import Field, Kind, Section, Text, Views, frozen_map, humanize

if TYPE_CHECKING:
    from .linker import EntityDraft, FieldDraft, Linker
    from .loader import LoadedDoc

KIND_FIELD = "kind"


def section_name(raw: Mapping[str, Any]) -> str:
    """A section's name: its `name:`, or its (English) label as a name; "" without either."""
    if raw.get("name"):
        return str(raw["name"])
    label = Text.of(raw.get("label")).get("en") if raw.get("label") else ""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def collect(draft: EntityDraft, doc: LoadedDoc, pack: str) -> None:
    """Remember the `kinds:` of one entity file, in pack order, to be merged by `build`."""
    for name, spec in (doc.data.get("kinds") or {}).items():
        draft.lists.setdefault("kinds", []).append(
            ((name, spec or {}, pack), (doc, ("kinds", name))))


def add_field(linker: Linker, draft: EntityDraft, make: type[FieldDraft]) -> None:
    """The choice field that holds each record's kind, for an entity with `kinds:`."""
    items = draft.lists.get("kinds")
    if not items:
        return
    known = draft.fields.get(KIND_FIELD)
    first_loc = items[0][1]
    if known is not None:
        linker.error("E223", f"field '{KIND_FIELD}' cannot be declared on an entity with "
                     "kinds: it holds each record's kind", known.loc or first_loc,
                     "rename the field", key=True)
        return
    names = list(dict.fromkeys(name for (name, _, _), _ in items))
    draft.fields[KIND_FIELD] = make(
        KIND_FIELD, {"type": "choice", "label": "Kind", "options": names, "index": True,
                     "_kind": True}, (first_loc[0], first_loc[1][:1]), draft.pack)


def build(linker: Linker, draft: EntityDraft, fields: dict[str, Field], views: Views
          ) -> tuple[dict[str, Kind], str | None]:
    """The entity's kinds and its default kind; sets the kind field's options and default
    in `fields`. ({}, None) for an entity without kinds."""
    specs = _merge(linker, draft)
    if not specs:
        return {}, None
    claims = _claims(linker, draft, specs, fields, views)
    kinds = {}
    for name, spec in specs.items():
        kinds[name] = Kind(
            name, Text.of(spec["label"] or humanize(name)), spec["pack"],
            _shown_fields(spec, claims, views), _shown_related(spec, claims, views),
            frozen_map(spec["options"]), Text.of(spec["description"])
            if spec["description"] else None)
    defaults = [name for name, spec in specs.items() if spec["default"]]
    for extra in defaults[1:]:
        linker.error("E222", f"kinds '{defaults[0]}' and '{extra}' are both the default",
                     specs[extra]["default_at"], "set 'default: false' on one of them")
    default = defaults[0] if defaults else None
    field = fields[KIND_FIELD]
    options = tuple(replace(o, label=kinds[o.value].label) for o in field.options)
    fields[KIND_FIELD] = replace(field, options=options,
                                 default=_default_slot(linker, draft, specs, default))
    return kinds, default


def _merge(linker: Linker, draft: EntityDraft) -> dict[str, dict[str, Any]]:
    """Each kind's spec with every file's additions merged in; E222 for a kind defined twice
    (a second `label`)."""
    specs: dict[str, dict[str, Any]] = {}
    for (name, raw, pack), loc in draft.lists.get("kinds", []):
        spec = specs.setdefault(name, {
            "label": None, "description": None, "pack": pack,
            "default": False, "default_at": loc, "when": [], "sections": [], "fields": [],
            "hide": [], "related": [], "options": {}})
        if raw.get("label") is not None:
            if spec["label"] is not None:
                linker.error("E222", f"kind '{name}' is already defined (by pack "
                             f"'{spec['pack']}')", (loc[0], (*loc[1], "label")),
                             "leave out 'label' to add sections or fields to it, or choose "
                             "another name", key=True)
            else:
                spec.update(label=raw["label"], pack=pack)
        if raw.get("description") is not None:
            spec["description"] = raw["description"]
        if "default" in raw:
            spec.update(default=bool(raw["default"]), default_at=(loc[0], (*loc[1], "default")))
        if "when" in raw:
            spec["when"].append((raw["when"], (loc[0], (*loc[1], "when"))))
        for key in ("sections", "fields", "hide", "related"):
            spec[key] += [(item, (loc[0], (*loc[1], key, i)))
                          for i, item in enumerate(raw.get(key) or [])]
        for fname, values in (raw.get("options") or {}).items():
            at = (loc[0], (*loc[1], "options", fname))
            spec["options"].setdefault(fname, (at, []))[1].extend(
                (value, (at[0], (*at[1], i))) for i, value in enumerate(values or []))
    return specs


def _claims(linker: Linker, draft: EntityDraft, specs: dict[str, dict[str, Any]],
            fields: Mapping[str, Field], views: Views) -> dict[str, set]:
    """Check every kind's names; the sections, fields and related lists some kind claims.
    The specs keep only the names that resolve."""
    by_name: dict[str, list[Section]] = {}
    for section in views.form:
        if section.name:
            by_name.setdefault(section.name, []).append(section)
    related = {f"{r.entity}.{r.field}": (r.entity, r.field) for r in views.related}
    claims: dict[str, set] = {"sections": set(), "fields": set(), "related": set()}
    for name, spec in specs.items():
        prefix = f"kind '{name}': "
        spec["sections"] = _sections(linker, spec["sections"], by_name, prefix)
        for key in ("fields", "hide"):
            spec[key] = [item for item, loc in spec[key]
                         if linker.field_ref(draft.name, item, loc, "field", f"{prefix}{key}: ")]
        spec["related"] = _related(linker, spec["related"], related, prefix)
        spec["options"] = _options(linker, draft, spec, fields, prefix)
        spec["when"] = [source for source, loc in spec["when"] if linker.expression(
            source, loc, CheckContext(draft.name), prefix + "when: ") is not None]
        claims["sections"].update(spec["sections"])
        claims["fields"].update(spec["fields"])
        claims["related"].update(spec["related"])
    return claims


def _sections(linker: Linker, items: list, by_name: dict[str, list[Section]], prefix: str
              ) -> list[str]:
    result = []
    for item, loc in items:
        found = by_name.get(item)
        if not found:
            linker.error("E220", f"{prefix}unknown section '{item}'", loc,
                         did_you_mean(item, by_name) or "name a section of views.form by "
                         "its 'name:' or its label written as a name (Guest profile: "
                         "guest_profile)")
        elif len(found) > 1:
            linker.error("E220", f"{prefix}two sections are named '{item}'", loc,
                         "give one of them another 'name:'")
        else:
            result.append(item)
    return result


def _related(linker: Linker, items: list, related: dict[str, tuple[str, str]], prefix: str
             ) -> list[tuple[str, str]]:
    result = []
    for item, loc in items:
        matches = [key for key in related if key == item or key.split(".")[0] == item]
        if len(matches) == 1:
            result.append(related[matches[0]])
        elif matches:
            linker.error("E224", f"{prefix}related: '{item}' is several related lists", loc,
                         f"write ENTITY.FIELD, like '{matches[0]}'")
        else:
            linker.error("E224", f"{prefix}related: '{item}' is not a related list of this "
                         "entity", loc, did_you_mean(item, [k.split(".")[0] for k in related])
                         or "add it to views.related")
    return result


def _options(linker: Linker, draft: EntityDraft, spec: dict[str, Any],
             fields: Mapping[str, Field], prefix: str) -> dict[str, tuple[str, ...]]:
    result = {}
    for fname, (loc, values) in spec["options"].items():
        field = fields.get(fname)
        if field is None:
            linker.field_ref(draft.name, fname, loc, "field", f"{prefix}options: ", key=True)
            continue
        if field.type not in ("choice", "multichoice"):
            linker.error("E221", f"{prefix}options: '{fname}' is {field.type}, not a choice",
                         loc, "narrow the options of a choice or multichoice field", key=True)
            continue
        known = field.option_values
        good = []
        for value, at in values:
            if str(value) in known:
                good.append(str(value))
            else:
                linker.error("E221", f"{prefix}options: '{fname}' has no option '{value}'",
                             at, did_you_mean(str(value), known))
        result[fname] = tuple(good)
    return result


def _shown_fields(spec: dict[str, Any], claims: dict[str, set], views: Views
                  ) -> frozenset[str]:
    """A kind shows its own fields, and the unclaimed fields of the common sections and of
    its own sections, less those it hides."""
    shown = set(spec["fields"])
    for section in views.form:
        if section.name in claims["sections"] and section.name not in spec["sections"]:
            continue
        shown.update(n for n in section.fields if n not in claims["fields"])
    return frozenset(shown - set(spec["hide"]))


def _shown_related(spec: dict[str, Any], claims: dict[str, set], views: Views
                   ) -> frozenset[tuple[str, str]]:
    every = {(r.entity, r.field) for r in views.related}
    return frozenset(every - claims["related"] | set(spec["related"]))


def _default_slot(linker: Linker, draft: EntityDraft, specs: dict[str, dict[str, Any]],
                  default: str | None) -> ValueSlot | None:
    """`='a' if (WHEN_A) else ('b' if (WHEN_B) else 'DEFAULT')`: the kind a new record gets
    when none is given. Each `when` was checked at its own place."""
    text = f"'{default}'" if default else "null"
    for name in reversed(list(specs)):
        for source in reversed(specs[name]["when"]):
            text = f"'{name}' if ({source}) else ({text})"
    if text == "null":
        return None
    return parse_slot("=" + text)
