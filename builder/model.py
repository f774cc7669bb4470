"""The AppModel: what the runtime serves, built by the linker from checked definition files.

Everything here is a frozen dataclass; mappings are read-only views. The model carries a
stable content hash (sha256 of the canonical JSON of every definition document, in pack
order), so the runtime can build tables, compiled expressions and query shapes once per hash.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .expressions import Expression, ValueSlot

EMPTY: Mapping[str, Any] = MappingProxyType({})


def frozen_map(items: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(items or {}))


@dataclass(frozen=True)
class Text:
    """Text a person reads, in one or more languages (docs/definition-files.md)."""

    values: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, raw: Any, default: str = "") -> Text:
        if isinstance(raw, Mapping):
            return cls(tuple((str(k), str(v)) for k, v in raw.items()))
        return cls((("en", str(raw)),)) if raw not in (None, "") else cls((("en", default),))

    def get(self, language: str | None = None) -> str:
        """The text in `language`, falling back to English, then to the first one given."""
        table = dict(self.values)
        for key in (language, (language or "").split("-")[0].split("_")[0], "en"):
            if key and key in table:
                return table[key]
        return self.values[0][1] if self.values else ""

    def __str__(self) -> str:
        return self.get()


def humanize(name: str) -> str:
    """`valid_until` -> `Valid until`."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


@dataclass(frozen=True)
class Option:
    value: str
    label: Text


@dataclass(frozen=True)
class Rollup:
    entity: str  # the child entity whose records are summarised
    link: str  # the child's link field that points here
    op: str  # count, sum, avg, min, max
    field: str | None
    where: Expression | None


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    label: Text
    pack: str
    help: Text | None = None
    placeholder: Text | None = None
    required: bool = False
    unique: bool = False
    index: bool = False
    readonly: bool = False
    default: ValueSlot | None = None
    min: Any = None
    max: Any = None
    formula: Expression | None = None
    rollup: Rollup | None = None
    visible_when: Expression | None = None
    required_when: Expression | None = None
    readonly_when: Expression | None = None
    renamed_from: str | None = None
    options: tuple[Option, ...] = ()
    to: str | None = None
    on_delete: str | None = None
    max_length: int | None = None
    pattern: str | None = None
    precision: int | None = None
    scale: int | None = None
    currency: str | None = None
    format: str | None = None
    system: bool = False

    @property
    def computed(self) -> bool:
        return self.formula is not None or self.rollup is not None or self.type == "autonumber"

    @property
    def editable(self) -> bool:
        """Whether a person may ever type a value into it."""
        return not (self.readonly or self.computed or self.system)

    @property
    def option_values(self) -> tuple[str, ...]:
        return tuple(o.value for o in self.options)

    def option_label(self, value: Any, language: str | None = None) -> str:
        for option in self.options:
            if option.value == value:
                return option.label.get(language)
        return "" if value is None else str(value)


@dataclass(frozen=True)
class Validation:
    rule: Expression
    message: Text
    field: str | None


@dataclass(frozen=True)
class DuplicateRule:
    match: tuple[str, ...]
    action: str  # block | warn


@dataclass(frozen=True)
class ListView:
    columns: tuple[str, ...]
    filters: tuple[str, ...]
    sort: tuple[str, ...]  # "-field" for descending
    page_size: int = 50
    group_by: str | None = None
    op: str | None = None


@dataclass(frozen=True)
class Section:
    label: Text | None
    fields: tuple[str, ...]
    columns: int = 1
    name: str = ""  # `name:`, or the English label as a name: "Guest profile" -> guest_profile


@dataclass(frozen=True)
class KanbanView:
    group_by: str
    card: tuple[str, ...]


@dataclass(frozen=True)
class CalendarView:
    date: str
    end: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Related:
    entity: str
    field: str  # the link field on `entity` that points to this record
    label: Text
    # a link of this record: the list shows the children of the record it points at instead
    # (a reservation's `through: guest` shows the guest's preferences)
    through: str | None = None


@dataclass(frozen=True)
class Views:
    list: ListView
    form: tuple[Section, ...]
    kanban: KanbanView | None = None
    calendar: CalendarView | None = None
    related: tuple[Related, ...] = ()


@dataclass(frozen=True)
class State:
    name: str
    label: Text
    final: bool = False
    editable_by: tuple[str, ...] | None = None  # None: everyone who may update
    color: str | None = None


@dataclass(frozen=True)
class Transition:
    name: str
    label: Text
    from_states: tuple[str, ...]
    to: str
    roles: tuple[str, ...] | None = None  # None: everyone who may update; (): automations only
    when: Expression | None = None
    requires: tuple[str, ...] = ()
    approval: str | None = None
    message: Text | None = None  # shown when the `when` guard refuses (docs/workflows.md)


@dataclass(frozen=True)
class Workflow:
    field: str
    initial: str
    states: Mapping[str, State]
    transitions: Mapping[str, Transition]

    def available_from(self, state: str | None) -> list[Transition]:
        return [t for t in self.transitions.values() if state in t.from_states]


@dataclass(frozen=True)
class Approvers:
    kind: str  # role | user | field
    value: str


@dataclass(frozen=True)
class Step:
    name: str
    label: Text
    approvers: Approvers
    when: Expression | None = None
    mode: str = "any"
    escalate_after: int | None = None  # seconds
    escalate_to: Approvers | None = None


@dataclass(frozen=True)
class Approval:
    name: str
    label: Text
    steps: tuple[Step, ...]
    entry: Expression | None = None
    allow_self_approval: bool = False
    reject_to: str | None = None
    require_comment: bool = False


@dataclass(frozen=True)
class Kind:
    """A record kind (`kinds:`): what a record of this kind shows on its form and page
    (docs/definition-files.md#record-kinds). Worked out by the builder from the sections,
    fields and related lists the entity's kinds claim."""

    name: str
    label: Text
    pack: str
    fields: frozenset[str]  # the fields a record of this kind shows
    related: frozenset[tuple[str, str]]  # (entity, link field) of the related lists it shows
    options: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: EMPTY)
    description: Text | None = None

    def offers(self, name: str, options: tuple[Option, ...]) -> tuple[Option, ...]:
        """The options of the choice field `name` that a record of this kind may take."""
        allowed = self.options.get(name)
        return options if allowed is None else tuple(o for o in options if o.value in allowed)


Rule = bool | Expression  # a permission: always, never, or a condition


@dataclass(frozen=True)
class Permission:
    role: str
    read: Rule = False
    create: Rule = False
    update: Rule = False
    delete: Rule = False
    hidden: tuple[str, ...] = ()
    readonly: tuple[str, ...] = ()
    # add notes and log activities on the timeline; when not given, the linker copies `update`
    comment: Rule = False
    # choose a record's owner (forms, "Assign to…", reassigning); claiming an unowned record
    # one may read needs no right
    assign: Rule = False
    # merge duplicates into one record (absorbing others); when not given, the linker copies
    # `delete`: merging deletes the absorbed records
    merge: Rule = False


@dataclass(frozen=True)
class Entity:
    name: str
    pack: str
    label: Text
    plural: Text
    fields: Mapping[str, Field]
    views: Views
    table: str
    description: Text | None = None
    help: Text | None = None
    icon: str | None = None
    title: str | None = None  # a template like "{property} — {amount}"
    title_field: str | None = None
    search: tuple[str, ...] = ()
    validations: tuple[Validation, ...] = ()
    duplicates: tuple[DuplicateRule, ...] = ()
    workflow: Workflow | None = None
    approvals: Mapping[str, Approval] = field(default_factory=lambda: EMPTY)
    permissions: Mapping[str, Permission] = field(default_factory=lambda: EMPTY)
    system: bool = False  # the built-in `user` and `team`
    extended_by: tuple[str, ...] = ()
    menu: bool = True  # False: reached from its parent's related list, not the menu
    kinds: Mapping[str, Kind] = field(default_factory=lambda: EMPTY)
    kind_field: str | None = None  # the choice field holding a record's kind, when `kinds`
    default_kind: str | None = None

    def field(self, name: str) -> Field:
        return self.fields[name]

    def kind_of(self, record: Mapping[str, Any] | None) -> Kind | None:
        """The kind of `record`; None when the entity has no kinds or the record none (then
        it shows every section, as an entity without kinds does)."""
        if self.kind_field is None or not record:
            return None
        return self.kinds.get(record.get(self.kind_field))

    def shows(self, record: Mapping[str, Any] | None, name: str) -> bool:
        """Whether the form and page of `record` show the field `name` (its kind's)."""
        kind = self.kind_of(record)
        return kind is None or name in kind.fields

    @property
    def data_fields(self) -> list[Field]:
        """Fields with a column of their own (not `links`), system fields included."""
        return [f for f in self.fields.values() if f.type != "links"]

    def email_field(self) -> str | None:
        """The field holding the record's e-mail address: `email`, else the first field of
        type email; None when there is none."""
        names = [f.name for f in self.fields.values() if f.type == "email"]
        return "email" if "email" in names else (names[0] if names else None)

    @property
    def user_fields(self) -> list[Field]:
        """The fields the definition declares (not the system ones)."""
        return [f for f in self.fields.values() if not f.system]


@dataclass(frozen=True)
class Recipient:
    kind: str  # role | user | field | owner
    value: str | None = None


@dataclass(frozen=True)
class Action:
    """One step of an automation; `kind` says which of the other attributes are set."""

    kind: str  # set | create | update | notify | email | transition | assign
    values: Mapping[str, ValueSlot] = field(default_factory=lambda: EMPTY)  # set, create, update
    entity: str | None = None  # create; update and transition on another record: its entity
    recipient: Recipient | None = None  # notify, email (None: the record's owner)
    subject: Text | None = None
    message: Text | None = None
    transition: str | None = None
    field: str | None = None  # assign
    among: Recipient | None = None  # assign: role or team
    strategy: str = "round_robin"
    match: str | None = None
    # update, and transition on another record: the slot whose value is that record's id
    record: ValueSlot | None = None
    # create with `for_each`: one record per child of this entity (its link to this record),
    # the values reading the child as `item`
    for_each: str | None = None
    for_each_link: str | None = None
    for_each_of: ValueSlot | None = None  # `of:` the parent's id (a link); None: this record
    template: str | None = None  # email: the message template's name
    once: str | None = None  # email: the key template; a key queued before is not queued again
    status: tuple[tuple[str, str], ...] = ()  # email: (role, field): field, sent_at, reason


@dataclass(frozen=True)
class Message:
    """A message template (`messages/*.yaml`): subject and body with `{field}` slots over a
    record of `entity`; `format` is markdown, text or html."""

    name: str
    entity: str
    pack: str
    label: Text
    subject: Text
    body: Text
    format: str = "markdown"
    consent: str | None = None  # a boolean field of the recipient record: unsubscribe sets it


@dataclass(frozen=True)
class Document:
    """A printable document (`documents/*.yaml`): an HTML/Jinja template over a record of
    `entity` and the rows of its `related` lists, rendered to PDF (docs/documents.md)."""

    name: str
    entity: str
    pack: str
    label: Text
    source: str  # the Jinja template
    file: str  # where the template is written, for messages
    first_line: int  # the line of `file` the template's first line is on
    # (name in the template, entity, link field, `through` link of the record or None)
    related: tuple[tuple[str, str, str, str | None], ...] = ()
    # (file name, template) of what the template extends or includes, from its pack's documents/
    bases: tuple[tuple[str, str], ...] = ()


WEBHOOK_EVENTS = ("create", "update", "delete", "transition", "approval")


@dataclass(frozen=True)
class Webhook:
    """An outbound webhook (`webhooks/*.yaml`): the `events` of `entity`'s records are POSTed
    to `url`, signed with the secret in the environment variable `secret_env` (or one the
    instance generates and keeps when it is None)."""

    name: str
    entity: str
    pack: str
    label: Text
    events: tuple[str, ...]
    url: str
    secret_env: str | None = None
    active: bool = True


@dataclass(frozen=True)
class InboundRule:
    """An inbound e-mail rule (`inbound/*.yaml`): a message sent to `address` (`support@` for
    that local part at any domain) that answers no record makes a new record of `entity`,
    `fields` filled from the message's parts and `values` fixed; `sender` and `account` are
    link fields set to the contact and the account found from the sender's address, and
    `new_sender` fills a new contact when none has it."""

    name: str
    address: str
    entity: str
    pack: str
    fields: Mapping[str, str]
    values: Mapping[str, Any]
    sender: str | None = None
    account: str | None = None
    new_sender: Mapping[str, str] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True)
class Trigger:
    kind: str  # create | update | delete | transition | schedule
    transition: str | None = None
    schedule: str | None = None  # hourly | daily | weekly | 5-field cron


@dataclass(frozen=True)
class Automation:
    name: str
    entity: str
    pack: str
    label: Text
    trigger: Trigger
    actions: tuple[Action, ...]
    when: Expression | None = None
    where: Expression | None = None


@dataclass(frozen=True)
class Measure:
    """The denominator of a ratio widget: an aggregate over the widget's entity."""

    op: str = "count"
    field: str | None = None
    where: Expression | None = None  # None: the widget's own `where`


@dataclass(frozen=True)
class Widget:
    type: str  # number | chart | table | list
    entity: str
    label: Text
    where: Expression | None = None
    op: str = "count"
    field: str | None = None
    chart: str | None = None
    group_by: str | None = None  # a field, or "month(field)" etc.
    sort: tuple[str, ...] = ()
    limit: int | None = None
    format: str | None = None
    columns: tuple[str, ...] = ()
    divide_by: Measure | None = None  # a number widget shows value ÷ this

    @property
    def group_parts(self) -> tuple[str | None, str | None]:
        """(function, field) of `group_by`: ("month", "ordered_on") or (None, "source")."""
        if not self.group_by:
            return None, None
        if "(" in self.group_by:
            fn, rest = self.group_by.split("(", 1)
            return fn.strip(), rest.rstrip(") ").strip()
        return None, self.group_by


@dataclass(frozen=True)
class Dashboard:
    name: str
    pack: str
    label: Text
    roles: tuple[str, ...]
    widgets: tuple[Widget, ...]
    description: Text | None = None


@dataclass(frozen=True)
class Role:
    name: str
    label: Text
    pack: str | None
    inherits: tuple[str, ...] = ()
    description: Text | None = None


# Roles every instance has, whatever its packs: `admin` may do everything; `user_admin` manages
# people (users, teams, tokens, delegations — the /admin/users and /admin/teams pages) and
# nothing else. Packs grant them nothing and may not define roles of these names.
BUILTIN_ROLES: Mapping[str, Role] = MappingProxyType({
    "admin": Role("admin", Text.of({"en": "Administrator", "zh": "管理员", "es": "Administrador"}),
                  None, (), Text.of({
                      "en": "May do everything, the administration pages included.",
                      "zh": "可执行所有操作，包括各管理页面。",
                      "es": "Puede hacerlo todo, incluidas las páginas de administración."})),
    "user_admin": Role("user_admin", Text.of({"en": "User administrator", "zh": "用户管理员",
                                              "es": "Administrador de usuarios"}), None, (),
                       Text.of({"en": "Creates and deactivates users, manages teams, API tokens "
                                      "and delegations; sees no records for it.",
                                "zh": "创建和停用用户，管理团队、API 令牌和委托；"
                                      "但不因此看到任何记录。",
                                "es": "Crea y desactiva usuarios y gestiona equipos, tokens de "
                                      "API y delegaciones; no ve ningún registro por ello."})),
})


@dataclass(frozen=True)
class Pack:
    name: str
    version: str
    label: Text
    path: str
    requires: tuple[str, ...] = ()
    description: Text | None = None


@dataclass(frozen=True)
class DemoFile:
    """Demo data of one entity in one pack: raw records, value slots not yet evaluated."""

    pack: str
    entity: str
    file: str
    records: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class AppModel:
    packs: Mapping[str, Pack]  # in install order (required packs first)
    roles: Mapping[str, Role]
    entities: Mapping[str, Entity]
    automations: tuple[Automation, ...]
    dashboards: Mapping[str, Dashboard]
    demo: tuple[DemoFile, ...]
    hash: str
    _reverse: Mapping[str, tuple[tuple[str, str], ...]] = field(
        default_factory=lambda: EMPTY, repr=False)
    messages: Mapping[str, Message] = field(default_factory=lambda: EMPTY)
    webhooks: Mapping[str, Webhook] = field(default_factory=lambda: EMPTY)
    documents: Mapping[str, Document] = field(default_factory=lambda: EMPTY)
    inbound: Mapping[str, InboundRule] = field(default_factory=lambda: EMPTY)

    def messages_for(self, entity: str) -> list[Message]:
        """The message templates about records of `entity`, by name."""
        return sorted((m for m in self.messages.values() if m.entity == entity),
                      key=lambda m: m.name)

    def documents_for(self, entity: str) -> list[Document]:
        """The documents printed from records of `entity`, by name."""
        return sorted((d for d in self.documents.values() if d.entity == entity),
                      key=lambda d: d.name)

    def webhooks_for(self, entity: str, event: str) -> list[Webhook]:
        """The active webhooks that send `event` of `entity`'s records."""
        return [h for h in self.webhooks.values()
                if h.entity == entity and h.active and event in h.events]

    def entity(self, name: str) -> Entity:
        return self.entities[name]

    def reverse_links(self, entity: str) -> tuple[tuple[str, str], ...]:
        """(child entity, link field) pairs whose `link` or `links` point at `entity`."""
        return self._reverse.get(entity, ())

    def role_closure(self, roles: Iterator[str] | tuple[str, ...] | list[str]) -> frozenset[str]:
        """The roles given plus every role they inherit, transitively."""
        seen: set[str] = set()
        stack = list(roles)
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            role = self.roles.get(name)
            if role is not None:
                stack.extend(role.inherits)
        return frozenset(seen)

    def automations_for(self, entity: str, kind: str) -> list[Automation]:
        return [a for a in self.automations if a.entity == entity and a.trigger.kind == kind]
