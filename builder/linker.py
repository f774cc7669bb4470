"""The linker: checked definition files in, one immutable `AppModel` out.

It works in three passes over the packs, in install order:

1. roles, and entity *drafts*: every entity with its fields, extensions merged in;
2. a scope of every entity's fields, so that expressions can follow links anywhere;
3. the final entities (views, workflow, approvals, permissions), automations, dashboards and
   demo data, each reference and expression checked against the scope.

Every problem goes to `Diagnostics` with the position of the culprit; nothing is raised for a
user's mistake. `build_model` raises `DefinitionError` carrying all of them at the end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import exposure, kinds, link_rules
from .diagnostics import DefinitionError, Diagnostics, Mark, did_you_mean
from .documents import build_documents
from .expressions import (
    CheckContext,
    Expression,
    ExpressionError,
    FieldRef,
    ValueSlot,
    check,
    parse,
    parse_slot,
)
from .guard_words import describe
from .inbound import build_inbound
from .loader import LoadedDoc
from .messages import build_messages
from .model import (
    BUILTIN_ROLES,
    AppModel,
    CalendarView,
    DuplicateRule,
    Entity,
    Field,
    KanbanView,
    ListView,
    Message,
    Option,
    Pack,
    Related,
    Role,
    Rollup,
    Section,
    Text,
    Validation,
    Views,
    frozen_map,
    humanize,
)
from .packs import PackSource, resolve
from .webhooks import build_webhooks

Loc = tuple[LoadedDoc, tuple]

# labels in every language the runtime's pages speak (docs/languages.md)
SYSTEM_FIELDS: dict[str, dict] = {
    "id": {"type": "integer", "label": {"en": "ID", "zh": "编号", "es": "ID"}},
    "created_at": {"type": "datetime", "label": {"en": "Created", "zh": "创建时间",
                                                 "es": "Creado"}},
    "created_by": {"type": "link", "to": "user", "label": {"en": "Created by", "zh": "创建人",
                                                           "es": "Creado por"}},
    "updated_at": {"type": "datetime", "label": {"en": "Updated", "zh": "更新时间",
                                                 "es": "Actualizado"}},
    "updated_by": {"type": "link", "to": "user", "label": {"en": "Updated by", "zh": "更新人",
                                                           "es": "Actualizado por"}},
    "owner": {"type": "link", "to": "user", "label": {"en": "Owner", "zh": "负责人",
                                                      "es": "Responsable"},
              "on_delete": "set_null"},
    "version": {"type": "integer", "label": {"en": "Version", "zh": "版本", "es": "Versión"}},
    "last_activity_at": {"type": "datetime", "label": {"en": "Last activity", "zh": "最近活动",
                                                       "es": "Última actividad"}},
}
SYSTEM_ENTITY_FIELDS = ("id", "created_at", "updated_at", "version")
BUILTIN_ENTITIES: dict[str, dict] = {
    "user": {
        "table": "crm_user", "label": "User", "plural": "Users", "title_field": "full_name",
        "search": ["username", "full_name", "email"],
        "fields": {
            "username": {"type": "text", "required": True, "unique": True, "max_length": 64},
            "full_name": {"type": "text", "required": True},
            "email": {"type": "email"},
            "team": {"type": "link", "to": "team", "on_delete": "set_null"},
            "manager": {"type": "link", "to": "user", "on_delete": "set_null"},
            "active": {"type": "boolean", "default": True},
        },
    },
    "team": {
        "table": "crm_team", "label": "Team", "plural": "Teams", "title_field": "name",
        "search": ["name"],
        "fields": {
            "name": {"type": "text", "required": True, "unique": True},
            "manager": {"type": "link", "to": "user", "on_delete": "set_null"},
        },
    },
}
RESERVED_NAMES = {"user", "old", "null", "none", "true", "false", "and", "or", "not",
                  "in", "if", "else", "is"}
LONG_TYPES = ("longtext", "richtext", "links", "multichoice", "file", "image")


@dataclass
class FieldDraft:
    name: str
    raw: dict
    loc: Loc | None  # where the field is defined (None for system fields)
    pack: str
    system: bool = False
    origins: dict[str, Loc] = field(default_factory=dict)  # key -> where it was last set

    def at(self, key: str | None = None) -> Loc | None:
        return self.origins.get(key, self.loc) if key else self.loc


@dataclass
class EntityDraft:
    name: str
    pack: str
    loc: Loc | None
    table: str
    system: bool = False
    fields: dict[str, FieldDraft] = field(default_factory=dict)
    settings: dict[str, tuple[Any, Loc]] = field(default_factory=dict)  # label, title...
    lists: dict[str, list[tuple[Any, Loc]]] = field(default_factory=dict)  # appended keys
    maps: dict[str, dict[str, tuple[Any, Loc, str]]] = field(default_factory=dict)
    extended_by: list[str] = field(default_factory=list)

    def setting(self, key: str, default: Any = None) -> Any:
        return self.settings[key][0] if key in self.settings else default


class Scope:
    """Fields of every entity as the expression checker sees them."""

    def __init__(self, drafts: Mapping[str, EntityDraft]):
        self._fields = {
            name: {f.name: FieldRef(f.name, f.raw.get("type", "text"), f.raw.get("to"))
                   for f in draft.fields.values()}
            for name, draft in drafts.items()}

    def fields(self, entity: str) -> Mapping[str, FieldRef] | None:
        return self._fields.get(entity)


class Linker:
    def __init__(self, sources: list[PackSource], diags: Diagnostics):
        self.sources = sources
        self.diags = diags
        self.roles: dict[str, Role] = {}
        self.role_locs: dict[str, Loc] = {}
        self.drafts: dict[str, EntityDraft] = {}
        self.scope: Scope | None = None
        self.messages: dict[str, Message] = {}  # built before the automations that name them
        self._links_to: dict[str, list[tuple[str, str]]] | None = None

    # -- reporting ------------------------------------------------------------------------

    def mark(self, loc: Loc | None, key: bool = False) -> Mark | None:
        return loc[0].mark(loc[1], key=key) if loc else None

    def error(self, code: str, message: str, loc: Loc | None, hint: str | None = None,
              key: bool = False) -> None:
        self.diags.add(code, message, self.mark(loc, key), hint)

    def unknown(self, code: str, what: str, name: str, known: Any, loc: Loc | None,
                prefix: str = "", key: bool = False) -> None:
        hint = did_you_mean(name, known)
        self.error(code, f"{prefix}unknown {what} '{name}'", loc, hint, key)

    def expression_error(self, err: ExpressionError, loc: Loc, prefix: str) -> None:
        doc, path = loc
        mark = doc.mark(path)
        style = doc.scalar_style(path)
        value = _get(doc.data, path)
        # Inside the expression when the text is written as it reads (one line, no escapes);
        # at the start of the value otherwise (block scalars, folded or escaped text).
        if isinstance(value, str) and doc.is_verbatim(path):
            mark = Mark(mark.file, mark.line, mark.col + err.offset + (style != "plain"))
        hint = err.hint
        self.diags.add(err.code, f"{prefix}{err.message}", mark, hint)

    # -- expressions ----------------------------------------------------------------------

    def expression(self, source: Any, loc: Loc, ctx: CheckContext,
                   prefix: str = "") -> Expression | None:
        """Parse and check one expression; None (and diagnostics) when it is not valid."""
        if not isinstance(source, str):
            return None
        try:
            expr = parse(source)
        except ExpressionError as err:
            self.expression_error(err, loc, prefix)
            return None
        problems = check(expr, self.scope, ctx) if self.scope else []
        for err in problems:
            self.expression_error(err, loc, prefix)
        return None if problems else expr

    def slot(self, value: Any, loc: Loc, entity: str, prefix: str = "",
             allow_old: bool = False, item: str | None = None) -> ValueSlot | None:
        try:
            slot = parse_slot(value)
        except ExpressionError as err:
            self.expression_error(err, loc, prefix)
            return None
        if slot.kind == "expression" and slot.expression is not None:
            ctx = CheckContext(entity, allow_old=allow_old, boolean=False, item=item)
            problems = check(slot.expression, self.scope, ctx) if self.scope else []
            for err in problems:
                self.expression_error(err.shifted(1), loc, prefix)
            if problems:
                return None
        elif slot.kind == "template":
            self.template(value, loc, entity, prefix, allow_old, item)
        return slot

    def template(self, text: Any, loc: Loc, entity: str, prefix: str = "",
                 allow_old: bool = False, item: str | None = None) -> None:
        """Check the `{field}` names of a template (`{title}` is the record's title)."""
        from .expressions import template_names

        if not isinstance(text, str):
            return
        for path in template_names(text):
            if path == ("title",) and "title" not in (self.drafts[entity].fields
                                                      if entity in self.drafts else {}):
                continue
            if item is not None and path[0] == "item" and len(path) > 1:
                entity_of, path = item, path[1:]  # `{item.product}` of a `for_each`
            else:
                entity_of = entity
            problem = self.path_problem(entity_of, path, allow_old)
            if problem:
                self.error("E310", f"{prefix}{problem[0]}", loc, problem[1])

    def path_problem(self, entity: str, path: tuple[str, ...],
                     allow_old: bool = False) -> tuple[str, str | None] | None:
        """Why a dotted field path does not resolve on `entity`, or None when it does."""
        current = entity
        if path[0] == "old" and allow_old and len(path) > 1:
            path = path[1:]
        elif path[0] == "user" and len(path) > 1:
            current, path = "user", path[1:]
            if path[0] in ("roles", "id", "username", "team"):
                return None
        for index, name in enumerate(path):
            fields = self.scope.fields(current) if self.scope else None
            if fields is None:
                return None
            ref = fields.get(name)
            if ref is None:
                return (f"unknown field '{name}' of {current}", did_you_mean(name, fields))
            if index < len(path) - 1:
                if ref.type != "link" or not ref.to:
                    return (f"'{name}' is not a link, so '.{path[index + 1]}' cannot follow it",
                            None)
                current = ref.to
        return None

    def field_ref(self, entity: str, name: Any, loc: Loc, what: str, prefix: str = "",
                  key: bool = False) -> FieldDraft | None:
        """The field `name` of `entity`, or None after reporting E203."""
        draft = self.drafts.get(entity)
        if draft is None or not isinstance(name, str):
            return None
        found = draft.fields.get(name)
        if found is None:
            self.unknown("E203", what, name, draft.fields, loc, prefix, key)
        return found

    def role_ref(self, name: Any, loc: Loc, prefix: str = "", key: bool = False) -> bool:
        if name in BUILTIN_ROLES or name in self.roles:
            return True
        self.unknown("E205", "role", str(name), self.roles, loc, prefix, key)
        return False

    def entity_ref(self, name: Any, loc: Loc, prefix: str = "", key: bool = False) -> bool:
        if name in self.drafts:
            return True
        self.unknown("E202", "entity", str(name), self.drafts, loc, prefix, key)
        return False

    # -- pass 1: roles and drafts --------------------------------------------------------

    def collect_roles(self) -> None:
        for source in self.sources:
            for doc in source.of_kind("roles"):
                for name, raw in (doc.data.get("roles") or {}).items():
                    loc = (doc, ("roles", name))
                    if name in self.roles or name in BUILTIN_ROLES:
                        owner = self.roles[name].pack if name in self.roles else None
                        self.error("E200", f"role '{name}' is already defined by "
                                   + (f"pack '{owner}'" if owner else "CRMForge itself"), loc,
                                   "roles are shared by all packs: use it, or pick a new name",
                                   key=True)
                        continue
                    raw = raw or {}
                    self.roles[name] = Role(
                        name, Text.of(raw.get("label"), humanize(name)), source.name,
                        tuple(raw.get("inherits") or ()), _text(raw.get("description")))
                    self.role_locs[name] = loc
        for name, role in self.roles.items():
            for index, parent in enumerate(role.inherits):
                self.role_ref(parent, (self.role_locs[name][0],
                                       ("roles", name, "inherits", index)), f"role '{name}': ")
        for name in self.roles:
            seen, stack = set(), list(self.roles[name].inherits)
            while stack:
                parent = stack.pop()
                if parent == name:
                    self.error("E215", f"role '{name}' inherits from itself (through "
                               "'inherits')", self.role_locs[name], key=True)
                    break
                if parent not in seen and parent in self.roles:
                    seen.add(parent)
                    stack.extend(self.roles[parent].inherits)

    def collect_entities(self) -> None:
        for name, spec in BUILTIN_ENTITIES.items():
            draft = EntityDraft(name, "", None, spec["table"], system=True)
            for key in ("label", "plural", "title_field"):
                draft.settings[key] = (spec[key], None)
            # A list like any pack's `search:`, so that an extension adds to it, not replaces
            # it (a user picker finds people by name, username and e-mail).
            draft.lists["search"] = [(item, None) for item in spec["search"]]
            for fname in SYSTEM_ENTITY_FIELDS:
                draft.fields[fname] = FieldDraft(fname, dict(SYSTEM_FIELDS[fname]), None, "",
                                                 system=True)
            for fname, raw in spec["fields"].items():
                draft.fields[fname] = FieldDraft(fname, dict(raw), None, "", system=True)
            self.drafts[name] = draft
        extensions: list[tuple[PackSource, LoadedDoc]] = []
        for source in self.sources:
            for doc in source.of_kind("entity"):
                if "extends" in doc.data:
                    extensions.append((source, doc))
                else:
                    self.new_entity(source, doc)
            for source_ext, doc in [e for e in extensions if e[0] is source]:
                self.extend_entity(source_ext, doc)

    def new_entity(self, source: PackSource, doc: LoadedDoc) -> None:
        name = doc.data["entity"]
        loc = (doc, ("entity",))
        if name in self.drafts:
            other = self.drafts[name]
            where = "built in" if other.system else f"already defined by pack '{other.pack}'"
            self.error("E200", f"entity '{name}' is {where}", loc,
                       "use 'extends: NAME' to add to it, or choose another name")
            return
        if name in RESERVED_NAMES or name.startswith("crm_"):
            self.error("E210", f"'{name}' is reserved and cannot name an entity", loc)
            return
        draft = EntityDraft(name, source.name, loc, name)
        self.drafts[name] = draft
        self.merge(draft, source, doc)

    def extend_entity(self, source: PackSource, doc: LoadedDoc) -> None:
        name = doc.data["extends"]
        draft = self.drafts.get(name)
        if draft is None:
            self.unknown("E202", "entity", name, self.drafts, (doc, ("extends",)),
                         "extends: ")
            return
        draft.extended_by.append(source.name)
        self.merge(draft, source, doc)

    def merge(self, draft: EntityDraft, source: PackSource, doc: LoadedDoc) -> None:
        data = doc.data
        extension = "extends" in data
        for key in ("label", "plural", "description", "help", "icon", "menu", "title",
                    "title_field"):
            if key in data:
                draft.settings[key] = (data[key], (doc, (key,)))
        for key in ("search", "validations", "duplicates"):
            for index, item in enumerate(data.get(key) or []):
                draft.lists.setdefault(key, []).append((item, (doc, (key, index))))
        for key in ("approvals", "permissions", "automations"):
            for name, item in (data.get(key) or {}).items():
                draft.maps.setdefault(key, {})[name] = (item, (doc, (key, name)), source.name)
        views = data.get("views") or {}
        for key in ("list", "kanban", "calendar"):
            if key in views:
                draft.settings["view_" + key] = (views[key], (doc, ("views", key)))
        for index, section in enumerate((views.get("form") or {}).get("sections") or []):
            draft.lists.setdefault("sections", []).append(
                (section, (doc, ("views", "form", "sections", index))))
        for index, item in enumerate(views.get("related") or []):
            draft.lists.setdefault("related", []).append(
                (item, (doc, ("views", "related", index))))
        if "workflow" in data and not extension:
            draft.settings["workflow"] = (data["workflow"], (doc, ("workflow",)))
        kinds.collect(draft, doc, source.name)
        for fname, raw in (data.get("fields") or {}).items():
            loc = (doc, ("fields", fname))
            if fname in SYSTEM_FIELDS or fname in RESERVED_NAMES:
                what = "a system field every record has" if fname in SYSTEM_FIELDS else \
                    "reserved in expressions"
                self.error("E210", f"field '{fname}' cannot be declared: it is {what}", loc,
                           "choose another name", key=True)
                continue
            known = draft.fields.get(fname)
            if known is None:
                draft.fields[fname] = FieldDraft(fname, dict(raw), loc, source.name,
                                                 origins={k: (doc, ("fields", fname, k))
                                                          for k in raw})
            elif not extension or known.raw.get("type") != raw.get("type"):
                self.error("E212", f"field '{fname}' is already defined"
                           + (f" as {known.raw.get('type')} by pack '{known.pack}'"
                              if extension else ""), loc,
                           "an extension may redefine a field only with the same type"
                           if extension else "remove one of them", key=True)
            else:  # same type: the extension changes keys, such as the options of a choice
                known.raw.update(raw)
                known.origins.update({k: (doc, ("fields", fname, k)) for k in raw})

    def add_system_fields(self) -> None:
        for draft in self.drafts.values():
            if draft.system:
                continue
            workflow = draft.setting("workflow")
            if isinstance(workflow, dict):
                state_field = workflow.get("field", "status")
                states = _state_options(workflow.get("states"))
                known = draft.fields.get(state_field)
                loc = draft.settings["workflow"][1]
                if known is None:
                    draft.fields[state_field] = FieldDraft(
                        state_field, {"type": "choice", "options": states, "index": True,
                                      "readonly": True, "_state": True},
                        (loc[0], (*loc[1], "field")), draft.pack)
                elif known.raw.get("type") != "choice":
                    self.error("E209", f"workflow field '{state_field}' must be a choice "
                               f"field, not {known.raw.get('type')}", known.loc,
                               "remove the declaration; the workflow creates it")
                else:
                    known.raw.update({"options": states, "index": True, "readonly": True,
                                      "_state": True})
            kinds.add_field(self, draft, FieldDraft)
            for fname, raw in SYSTEM_FIELDS.items():
                draft.fields[fname] = FieldDraft(fname, dict(raw), None, "", system=True)

    # -- pass 3: fields, views, entities --------------------------------------------------

    def build_field(self, entity: EntityDraft, draft: FieldDraft) -> Field:
        raw = draft.raw
        ftype = raw.get("type", "text")
        name = draft.name
        prefix = f"field '{name}': "
        at = draft.at

        def cond(key: str) -> Expression | None:
            if key not in raw:
                return None
            return self.expression(raw[key], at(key), CheckContext(entity.name), prefix)

        options = _options(raw.get("options"))
        if ftype in ("link", "links"):
            target = raw.get("to")
            if target is not None and target not in self.drafts:
                self.unknown("E202", "entity", target, self.drafts, at("to"), prefix)
        formula = None
        if "formula" in raw:
            formula = self.expression(raw["formula"], at("formula"),
                                      CheckContext(entity.name, boolean=False), prefix)
        rollup = self.build_rollup(entity, draft) if "rollup" in raw else None
        default = None
        if "default" in raw:
            default = self.slot(raw["default"], at("default"), entity.name, prefix)
            if default is not None and default.kind == "literal":
                self.literal_check(draft, default.value, at("default"), prefix + "default ")
        on_delete = raw.get("on_delete")
        if ftype == "link" and on_delete is None:
            on_delete = "restrict" if raw.get("required") else "set_null"
        if ftype == "link" and on_delete == "set_null" and raw.get("required"):
            self.error("E209", f"{prefix}a required link cannot use on_delete: set_null",
                       at("on_delete"), "use restrict or cascade")
        for key in ("min", "max"):
            if key in raw and isinstance(raw[key], str) and raw[key].startswith("="):
                self.slot(raw[key], at(key), entity.name, prefix)
        label = raw.get("label") or ("ID" if name == "id" else humanize(name))
        return Field(
            name=name, type=ftype, label=Text.of(label), pack=draft.pack or entity.pack,
            help=_text(raw.get("help")), placeholder=_text(raw.get("placeholder")),
            required=bool(raw.get("required")), unique=bool(raw.get("unique")),
            index=bool(raw.get("index")), readonly=bool(raw.get("readonly")),
            default=default, min=raw.get("min"), max=raw.get("max"), formula=formula,
            rollup=rollup, visible_when=cond("visible_when"),
            required_when=cond("required_when"), readonly_when=cond("readonly_when"),
            renamed_from=raw.get("renamed_from"), options=options, to=raw.get("to"),
            on_delete=on_delete, max_length=raw.get("max_length"), pattern=raw.get("pattern"),
            precision=raw.get("precision"), scale=raw.get("scale"),
            currency=raw.get("currency"), format=raw.get("format"), system=draft.system)

    def literal_check(self, draft: FieldDraft, value: Any, loc: Loc, prefix: str) -> None:
        from .fieldtypes import coerce

        if value is None or draft.raw.get("type") in ("link", "links"):
            return
        probe = _probe_field(draft)
        try:
            coerce(probe, value)
        except ValueError as exc:
            self.error("E216", f"{prefix}{_short(value)!s} {exc}", loc)

    def build_rollup(self, entity: EntityDraft, draft: FieldDraft) -> Rollup | None:
        raw = draft.raw["rollup"]
        loc = draft.at("rollup")
        prefix = f"field '{draft.name}' rollup: "
        child, _, link = raw["from"].partition(".")
        if not self.entity_ref(child, (loc[0], (*loc[1], "from")), prefix):
            return None
        link_field = self.field_ref(child, link, (loc[0], (*loc[1], "from")), "field", prefix)
        if link_field is None:
            return None
        if link_field.raw.get("type") != "link" or link_field.raw.get("to") != entity.name:
            self.error("E209", f"{prefix}'{raw['from']}' is not a link to {entity.name}",
                       (loc[0], (*loc[1], "from")))
            return None
        if raw.get("field"):
            self.field_ref(child, raw["field"], (loc[0], (*loc[1], "field")), "field", prefix)
        where = None
        if "where" in raw:
            where = self.expression(raw["where"], (loc[0], (*loc[1], "where")),
                                    CheckContext(child, require_sql=True), prefix)
        return Rollup(child, link, raw["op"], raw.get("field"), where)

    def build_views(self, draft: EntityDraft, fields: Mapping[str, Field],
                    has_workflow: str | None) -> Views:
        name = draft.name

        def names(values: Any, loc: Loc, what: str) -> tuple[str, ...]:
            result = []
            for index, item in enumerate(values or []):
                if self.field_ref(name, item, (loc[0], (*loc[1], index)), "field",
                                  f"{what}: "):
                    result.append(item)
            return tuple(result)

        user = _shown_fields(draft, fields)
        list_raw, list_loc = draft.settings.get("view_list", (None, None))
        if list_raw:
            columns = names(list_raw.get("columns"), (list_loc[0], (*list_loc[1], "columns")),
                            "list columns")
            filters = names(list_raw.get("filters"), (list_loc[0], (*list_loc[1], "filters")),
                            "list filters")
            sort_raw = list_raw.get("sort", "-created_at")
            sort_list = [sort_raw] if isinstance(sort_raw, str) else list(sort_raw)
            sort_loc = (list_loc[0], (*list_loc[1], "sort"))
            sort = []
            for index, key in enumerate(sort_list):
                at = sort_loc if isinstance(sort_raw, str) else (sort_loc[0],
                                                                 (*sort_loc[1], index))
                if self.field_ref(name, key.lstrip("-"), at, "field", "list sort: "):
                    sort.append(key)
            group_by = list_raw.get("group_by")
            if group_by:
                self.group_by(name, group_by, (list_loc[0], (*list_loc[1], "group_by")),
                              "list group_by: ")
            list_view = ListView(columns or _default_columns(user, has_workflow),
                                 filters, tuple(sort) or ("-created_at",),
                                 list_raw.get("page_size", 50), group_by, list_raw.get("op"))
        else:
            list_view = ListView(_default_columns(user, has_workflow),
                                 _default_filters(user), ("-created_at",))
        sections = []
        placed: set[str] = set()
        for section, loc in draft.lists.get("sections", []):
            fnames = names(section.get("fields"), (loc[0], (*loc[1], "fields")), "form section")
            placed.update(fnames)
            sections.append(Section(_text(section.get("label")), fnames,
                                    section.get("columns", 1), kinds.section_name(section)))
        rest = tuple(f.name for f in user if f.name not in placed
                     and not (has_workflow and f.name == has_workflow)
                     and not (f.name == kinds.KIND_FIELD and "kinds" in draft.lists))
        if rest:
            sections.append(Section(None if not sections else Text.of("More"), rest,
                                    1 if sections else 2))
        kanban = calendar = None
        if "view_kanban" in draft.settings:
            raw, loc = draft.settings["view_kanban"]
            group = self.field_ref(name, raw["group_by"], (loc[0], (*loc[1], "group_by")),
                                   "field", "kanban group_by: ")
            if group is not None and group.raw.get("type") not in ("choice", "link", "boolean"):
                self.error("E209", f"kanban group_by: '{group.name}' must be a choice, "
                           "link or boolean field", (loc[0], (*loc[1], "group_by")))
            card = names(raw.get("card"), (loc[0], (*loc[1], "card")), "kanban card")
            kanban = KanbanView(raw["group_by"], card or list_view.columns[:3])
        elif has_workflow:
            kanban = KanbanView(has_workflow, list_view.columns[:3])
        if "view_calendar" in draft.settings:
            raw, loc = draft.settings["view_calendar"]
            for key in ("date", "end"):
                if key not in raw:
                    continue
                ref = self.field_ref(name, raw[key], (loc[0], (*loc[1], key)), "field",
                                     f"calendar {key}: ")
                if ref is not None and ref.raw.get("type") not in ("date", "datetime"):
                    self.error("E209", f"calendar {key}: '{ref.name}' must be a date or "
                               "datetime field", (loc[0], (*loc[1], key)))
            if "title" in raw:
                self.template(raw["title"], (loc[0], (*loc[1], "title")), name, "calendar: ")
            calendar = CalendarView(raw["date"], raw.get("end"), raw.get("title"))
        return Views(list_view, tuple(sections), kanban, calendar, self.build_related(draft))

    def links_to(self, entity: str) -> list[tuple[str, str]]:
        """(child entity, link field) pairs of the declared `link` fields to `entity`.

        Indexed once (the drafts are complete by pass 3), so that many entities stay linear.
        """
        if self._links_to is None:
            self._links_to = {}
            for child in self.drafts.values():
                if child.system:
                    continue
                for f in child.fields.values():
                    if f.raw.get("type") == "link" and not f.system and \
                            isinstance(f.raw.get("to"), str):
                        self._links_to.setdefault(f.raw["to"], []).append((child.name, f.name))
        return self._links_to.get(entity, [])

    def build_related(self, draft: EntityDraft) -> tuple[Related, ...]:
        reverse = self.links_to(draft.name)
        items = draft.lists.get("related")
        if not items:
            return tuple(Related(e, f, Text.of(self.plural_of(e))) for e, f in reverse)
        result = []
        for item, loc in items:
            spec = {"entity": item} if isinstance(item, str) else item
            child = spec["entity"]
            at = loc if isinstance(item, str) else (loc[0], (*loc[1], "entity"))
            if not self.entity_ref(child, at, "related: "):
                continue
            parent, through = draft.name, spec.get("through")
            if through is not None:
                parent = self.related_through(draft, through, (loc[0], (*loc[1], "through")))
                if parent is None:
                    continue
                reverse = self.links_to(parent)
            links = [f for e, f in reverse if e == child]
            chosen = spec.get("field")
            if chosen is not None:
                if chosen not in links:
                    self.error("E209", f"related: '{child}.{chosen}' is not a link to "
                               f"{parent}", (loc[0], (*loc[1], "field")),
                               did_you_mean(chosen, links))
                    continue
            elif not links:
                self.error("E209", f"related: {child} has no link to {parent}", at,
                           f"add a field like {{type: link, to: {parent}}} to {child}")
                continue
            elif len(links) > 1:
                self.error("E209", f"related: {child} links to {parent} through "
                           f"{', '.join(links)}; say which", at,
                           f"write {{entity: {child}, field: {links[0]}}}")
                continue
            label = spec.get("label") or self.plural_of(child)
            result.append(Related(child, chosen or links[0], Text.of(label), through))
            reverse = self.links_to(draft.name)
        return tuple(result)

    def related_through(self, draft: EntityDraft, through: str, loc: Loc) -> str | None:
        """The entity a related list's `through` link of `draft` leads to; None after
        reporting (E203 unknown field, E209 not a link)."""
        found = self.field_ref(draft.name, through, loc, "field", "related: through: ")
        if found is None:
            return None
        if found.raw.get("type") != "link" or not isinstance(found.raw.get("to"), str):
            self.error("E209", f"related: through '{through}' is not a link", loc,
                       "name a link field of this entity, like the reservation's guest")
            return None
        return found.raw["to"]

    def plural_of(self, entity: str) -> Any:
        draft = self.drafts[entity]
        return draft.setting("plural") or humanize(entity) + "s"

    def group_by(self, entity: str, value: str, loc: Loc, prefix: str) -> None:
        fn, _, rest = value.partition("(")
        fname = rest.rstrip(") ").strip() if rest else fn
        ref = self.field_ref(entity, fname, loc, "field", prefix)
        if rest and ref is not None and ref.raw.get("type") not in ("date", "datetime"):
            self.error("E209", f"{prefix}{fn}() needs a date field; '{fname}' is "
                       f"{ref.raw.get('type')}", loc)

    def build_entity(self, draft: EntityDraft) -> Entity:
        fields = {name: self.build_field(draft, f) for name, f in draft.fields.items()}
        prefix_of = draft.name
        title_field = draft.setting("title_field")
        if title_field is not None:
            self.field_ref(draft.name, title_field, draft.settings["title_field"][1], "field",
                           "title_field: ")
        title = draft.setting("title")
        if title is not None:
            self.template(title, draft.settings["title"][1], draft.name, "title: ")
        if title is None and title_field is None:
            title_field = _guess_title(list(fields.values()))
        search = []
        for item, loc in draft.lists.get("search", []):
            if self.field_ref(draft.name, item, loc, "field", "search: "):
                search.append(item)
        if not search:
            search = [f.name for f in fields.values() if not f.system and f.type in (
                "text", "email", "phone", "autonumber")][:4]
        validations = []
        for item, loc in draft.lists.get("validations", []):
            rule = self.expression(item["rule"], (loc[0], (*loc[1], "rule")),
                                   CheckContext(draft.name, allow_old=True), "validation: ")
            if item.get("field"):
                self.field_ref(draft.name, item["field"], (loc[0], (*loc[1], "field")),
                               "field", "validation: ")
            if rule is not None:
                # No message given: the rule in words from this entity's labels.
                message = item.get("message") or "Needs: " + describe(
                    rule, lambda name: fields if name == draft.name else None, draft.name) + "."
                validations.append(Validation(rule, Text.of(message), item.get("field")))
        duplicates = []
        for item, loc in draft.lists.get("duplicates", []):
            match = []
            for index, fname in enumerate(item["match"]):
                if self.field_ref(draft.name, fname, (loc[0], (*loc[1], "match", index)),
                                  "field", "duplicates: "):
                    match.append(fname)
            duplicates.append(DuplicateRule(tuple(match), item.get("action", "warn")))
        workflow = link_rules.build_workflow(self, draft, fields)
        views = self.build_views(draft, fields, workflow.field if workflow else None)
        entity_kinds, default_kind = kinds.build(self, draft, fields, views)
        approvals = link_rules.build_approvals(self, draft, workflow)
        if workflow is not None:
            link_rules.check_transition_approvals(self, draft, workflow, approvals)
        permissions = link_rules.build_permissions(self, draft)
        label = draft.setting("label") or humanize(prefix_of)
        return Entity(
            name=draft.name, pack=draft.pack, label=Text.of(label),
            plural=Text.of(self.plural_of(draft.name)), fields=frozen_map(fields),
            views=views, table=draft.table, description=_text(draft.setting("description")),
            help=_text(draft.setting("help")), icon=draft.setting("icon"), title=title,
            title_field=title_field, search=tuple(search), validations=tuple(validations),
            duplicates=tuple(duplicates), workflow=workflow, approvals=frozen_map(approvals),
            permissions=frozen_map(permissions), system=draft.system,
            extended_by=tuple(draft.extended_by), menu=draft.setting("menu", True),
            kinds=frozen_map(entity_kinds), default_kind=default_kind,
            kind_field=kinds.KIND_FIELD if entity_kinds else None)

    # -- the whole model ------------------------------------------------------------------

    def link(self) -> AppModel:
        self.collect_roles()
        self.collect_entities()
        self.add_system_fields()
        self.scope = Scope(self.drafts)
        entities = {name: self.build_entity(draft) for name, draft in self.drafts.items()}
        self.messages = build_messages(self)
        webhooks = build_webhooks(self, entities)
        documents = build_documents(self, entities)
        inbound = build_inbound(self, entities)
        automations = link_rules.build_automations(self)
        dashboards = link_rules.build_dashboards(self)
        demo = link_rules.build_demo(self, entities)
        packs = {}
        for source in self.sources:
            data = source.manifest.data if source.manifest else {"version": "0.0.0"}
            packs[source.name] = Pack(source.name, str(data.get("version", "0.0.0")),
                                      Text.of(data.get("label"), humanize(source.name)),
                                      str(source.path), tuple(source.requires),
                                      _text(data.get("description")))
        reverse: dict[str, list[tuple[str, str]]] = {}
        for entity in entities.values():
            for f in entity.fields.values():
                if f.type in ("link", "links") and f.to and not f.system:
                    reverse.setdefault(f.to, []).append((entity.name, f.name))
        model = AppModel(
            packs=frozen_map(packs), roles=frozen_map(self.roles),
            entities=frozen_map(entities), automations=tuple(automations),
            dashboards=frozen_map(dashboards), demo=tuple(demo),
            hash=content_hash(self.sources), messages=frozen_map(self.messages),
            webhooks=frozen_map(webhooks), documents=frozen_map(documents),
            inbound=frozen_map(inbound),
            _reverse=frozen_map({k: tuple(v) for k, v in reverse.items()}))
        if not self.diags.errors:  # warnings about a model that is whole; errors come first
            exposure.check(self, model)
        return model


def content_hash(sources: list[PackSource]) -> str:
    """sha256 of every definition document (demo data excluded), canonical and ordered."""
    digest = hashlib.sha256(b"crmforge-format-1\n")
    for source in sources:
        manifest = source.manifest.data if source.manifest else {}
        docs = sorted(json.dumps(doc.data, sort_keys=True, default=str, ensure_ascii=False)
                      for kind, doc in source.docs if kind != "data")
        digest.update(json.dumps([source.name, manifest, docs], sort_keys=True,
                                 default=str, ensure_ascii=False).encode())
    return digest.hexdigest()


def check_paths(paths: list[str | Path], extra_dirs: list[Path] | None = None, *,
                demo: bool = True) -> tuple[AppModel | None, Diagnostics]:
    """Validate the packs at `paths` (and what they require): the model, or None on errors.

    `demo=False` skips the demo data files: the model (and its hash) is the same, and
    serving an instance does not need them.
    """
    diags = Diagnostics()
    sources = resolve([Path(p) for p in paths], diags, extra_dirs, demo)
    if diags.errors or not sources:
        return None, diags
    try:
        model = Linker(sources, diags).link()
    except RecursionError:
        diags.add("E006", "definitions are nested too deeply to check", None)
        return None, diags
    return (None if diags.errors else model), diags


def build_model(paths: list[str | Path], extra_dirs: list[Path] | None = None, *,
                demo: bool = True) -> AppModel:
    """The AppModel of the packs at `paths`; raises DefinitionError with every problem."""
    model, diags = check_paths(paths, extra_dirs, demo=demo)
    if model is None:
        raise DefinitionError(diags.errors)
    return model


# -- small helpers ------------------------------------------------------------------------


def _get(data: Any, path: tuple) -> Any:
    for key in path:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _text(raw: Any) -> Text | None:
    return Text.of(raw) if raw not in (None, "") else None


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 40 else text[:37] + "...'"


def _options(raw: Any) -> tuple[Option, ...]:
    if isinstance(raw, dict):
        return tuple(Option(str(k), Text.of(v)) for k, v in raw.items())
    if isinstance(raw, list):
        return tuple(Option(str(v), Text.of(humanize(str(v)))) for v in raw)
    return ()


def _probe_field(draft: FieldDraft) -> Field:
    raw = draft.raw
    return Field(name=draft.name, type=raw.get("type", "text"), label=Text.of(draft.name),
                 pack=draft.pack, options=_options(raw.get("options")),
                 max_length=raw.get("max_length"), pattern=raw.get("pattern"),
                 precision=raw.get("precision"), scale=raw.get("scale"), to=raw.get("to"))


def _shown_fields(draft: EntityDraft, fields: Mapping[str, Field]) -> list[Field]:
    """The fields a default list shows: every field a pack defines and, on a built-in entity,
    its own fields (a user's name and username) — the title field first, so that a list of
    users is labelled by their names, not by the first field an extension adds."""
    shown = [f for f in fields.values() if not f.system
             or (draft.system and f.name not in SYSTEM_ENTITY_FIELDS)]
    first = draft.setting("title_field") if draft.system else None
    return sorted(shown, key=lambda f: f.name != first)


def _default_columns(fields: list[Field], state: str | None) -> tuple[str, ...]:
    names = [f.name for f in fields if f.type not in LONG_TYPES][:5]
    if state and state not in names:
        names.append(state)
    return tuple(names)


def _default_filters(fields: list[Field]) -> tuple[str, ...]:
    return tuple(f.name for f in fields if f.type in ("choice", "boolean", "link"))[:4]


def _guess_title(fields: list[Field]) -> str:
    for candidate in ("name", "full_name", "title", "subject", "reference", "number", "code"):
        for f in fields:
            if f.name == candidate:
                return f.name
    for f in fields:
        if not f.system and f.type in ("text", "autonumber", "email", "phone"):
            return f.name
    return "id"


def _state_options(states: Any) -> dict[str, Any]:
    """The options of a workflow's state field: each state labelled as the workflow labels it
    (a label map keeps its languages), else by its name."""
    if not isinstance(states, dict):
        return {}
    return {str(name): (spec.get("label") if isinstance(spec, dict) and spec.get("label")
                        else humanize(str(name))) for name in states for spec in [states[name]]}
