"""Where each part of an entity comes from: the file, line and column of its fields (and of
each key an extension changed), its list and form views, workflow, validations, permissions,
approvals and automations, as the builder's linker saw them while merging the packs and the
customisations. The model keeps no positions; the linker's drafts do, so this links the
instance's files once more (cached per model hash) and reads them.

Also the raw values the studio's forms start from (a choice's options as written, the list
view as declared), which the model only has in their built form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from builder.diagnostics import Diagnostics, Mark
from builder.linker import EntityDraft, Linker, Loc
from builder.model import AppModel
from builder.packs import custom_dir, resolve
from runtime.process.setup import custom_paths
from runtime.process.studio.layer import StudioError, pack_dirs


@dataclass(frozen=True)
class Place:
    """One part of an entity and where it is defined: `what` in words, the pack, file:line:col."""

    what: str
    pack: str
    mark: Mark | None

    @property
    def where(self) -> str:
        return f"{self.mark.file}:{self.mark.line}:{self.mark.col}" if self.mark else "built in"


@dataclass(frozen=True)
class FieldOrigin:
    name: str
    defined: Place
    changed: tuple[Place, ...]  # keys set again by an extension (label, options...)
    raw: Mapping[str, Any]


@dataclass
class EntityOrigins:
    """Every place the parts of one entity come from."""

    entity: str
    defined: Place
    extended_by: tuple[str, ...]
    fields: dict[str, FieldOrigin] = field(default_factory=dict)
    views: list[Place] = field(default_factory=list)
    workflow: Place | None = None
    validations: list[Place] = field(default_factory=list)
    permissions: list[Place] = field(default_factory=list)
    approvals: list[Place] = field(default_factory=list)
    automations: list[Place] = field(default_factory=list)
    list_raw: Mapping[str, Any] | None = None  # views.list as last declared
    placed: set[str] = field(default_factory=set)  # fields a declared form section shows


def of_entity(model: AppModel, entity: str) -> EntityOrigins:
    """Where every part of `entity` of `model` comes from."""
    linker = _linked(model.hash, tuple(str(p) for p in pack_dirs(model)), str(custom_dir()))
    draft = linker.drafts.get(entity)
    if draft is None:
        raise StudioError(f"There is no entity '{entity[:63]}' in the definitions.")
    return _origins(linker, draft)


@lru_cache(maxsize=4)
def _linked(model_hash: str, paths: tuple[str, ...], custom: str) -> Linker:
    """The linker, after linking, of the files that made the model `model_hash` (with the
    custom dir `custom`, which the key holds because it is read through `custom_dir()`)."""
    diags = Diagnostics()
    wanted = list(dict.fromkeys([*(Path(p) for p in paths), *custom_paths()]))
    linker = Linker(resolve(wanted, diags, demo=False), diags)
    linker.link()
    return linker


def _origins(linker: Linker, draft: EntityDraft) -> EntityOrigins:
    mark = linker.mark
    found = EntityOrigins(draft.name, Place(draft.name, draft.pack or "CRMForge",
                                            mark(draft.loc)), tuple(draft.extended_by))
    for name, f in draft.fields.items():
        if f.system:
            continue
        changed = tuple(Place(key, _pack_of(loc, linker), mark(loc, key=True))
                        for key, loc in f.origins.items()
                        if f.loc is None or loc[0] is not f.loc[0])
        found.fields[name] = FieldOrigin(name, Place(name, f.pack, mark(f.loc, key=True)),
                                         changed, dict(f.raw))
    for key, what in (("view_list", "list view"), ("view_kanban", "kanban view"),
                      ("view_calendar", "calendar view"), ("label", "label")):
        if key in draft.settings and draft.settings[key][1] is not None:
            found.views.append(_place(linker, what, draft.settings[key][1]))
    for index, (section, loc) in enumerate(draft.lists.get("sections", [])):
        label = section.get("label") if isinstance(section, dict) else None
        found.views.append(_place(linker, f"form section {index + 1}"
                                  + (f" “{_plain(label)}”" if label else ""), loc))
        found.placed.update(n for n in section.get("fields") or [] if isinstance(n, str))
    if "workflow" in draft.settings:
        found.workflow = _place(linker, "workflow", draft.settings["workflow"][1])
    for item, loc in draft.lists.get("validations", []):
        found.validations.append(_place(linker, str(item.get("rule", "")), loc))
    for key, target in (("permissions", found.permissions), ("approvals", found.approvals),
                        ("automations", found.automations)):
        for name, (_item, loc, pack) in (draft.maps.get(key) or {}).items():
            target.append(Place(name, pack, mark(loc, key=True)))
    found.automations += _automation_files(linker, draft.name)
    found.list_raw = draft.setting("view_list")
    return found


def _automation_files(linker: Linker, entity: str) -> list[Place]:
    """The automations of `entity` kept in `automations/*.yaml` files."""
    places = []
    for source in linker.sources:
        for doc in source.of_kind("automations"):
            for name, raw in (doc.data.get("automations") or {}).items():
                if isinstance(raw, dict) and raw.get("entity") == entity:
                    places.append(Place(name, source.name,
                                        doc.mark(("automations", name), key=True)))
    return places


def _place(linker: Linker, what: str, loc: Loc) -> Place:
    return Place(what, _pack_of(loc, linker), linker.mark(loc, key=True))


def _pack_of(loc: Loc, linker: Linker) -> str:
    """The pack whose file holds `loc`."""
    doc = loc[0]
    for source in linker.sources:
        if any(d is doc for _kind, d in source.docs):
            return source.name
    return ""


def _plain(label: Any) -> str:
    """A label as written: its English text when it is given per language."""
    if isinstance(label, dict):
        return str(label.get("en") or next(iter(label.values()), ""))
    return str(label)
