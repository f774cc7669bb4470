"""The one write path: every change to a record — form, API, import, automation, workflow —
goes through `create`, `update` or `delete` here (docs/records.md).

A write runs in one transaction: permission checks, input coercion, defaults, formulas, field
rules and validations, uniqueness and duplicate rules, the row itself (with an optimistic
version check), `links` join rows, an audit row per changed field, rollups of the records it
links to, and finally the `after_write` hooks (workflow, approvals, automations). Any error,
in a hook too, rolls the whole write back. Reads live in `queries.py` and are re-exported
here, so `records` is the one module callers need.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from builder.model import Entity
from runtime.core import caches, phones, rowcache
from runtime.core.context import Fetcher, eval_context
from runtime.core.db import in_transaction, insert_many, mark_written, writes
from runtime.core.errors import (
    AwaitingApproval,
    Conflict,
    Forbidden,
    RecordError,
    StaleVersion,
    ValidationFailed,
)
from runtime.core.hooks import WriteEvent
from runtime.core.values import (
    AUTO_FIELDS,
    Errors,
    actor_language,
    apply_defaults,
    check_fields,
    coerce_value,
    compute_formulas,
    condition,
    format_autonumber,
    is_empty,
    json_value,
    readonly_reason,
    same,
    to_json,
    unknown_field_message,
)
from runtime.read.permissions import (
    can,
    hidden_fields,
    may_claim,
    readonly_fields,
    state_lock,
)
from runtime.read.queries import (
    Page,
    count,
    entity_of,
    get,
    link_titles,
    load,
    not_found,
    query,
    reading,
    record_id_of,
    title,
)
from runtime.write import attachments, checks, derived
from runtime.write.checks import find_duplicates
from runtime.write.timeline import record_reassignment, record_transitions

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from runtime.core.instance import Actor, Instance

__all__ = ["Page", "count", "create", "delete", "find_duplicates", "get", "link_titles",
           "load", "query", "reading", "title", "to_json", "update"]

MAX_DEPTH = 8  # automations writing records that fire automations...
T = TypeVar("T")


# -- transactions -----------------------------------------------------------------------------


def integrity(ent: Entity, table: sa.Table, exc: sa.exc.IntegrityError) -> RecordError:
    """An integrity error mapped to a field through the constraint's deterministic name."""
    name = getattr(getattr(exc.orig, "diag", None), "constraint_name", None) or ""
    for field in ent.fields.values():
        if name == f"uq_{table.name}_{field.name}":
            return ValidationFailed({field.name: [
                "is already used by another record; enter a different value"]})
        if name == f"fk_{table.name}_{field.name}":
            return ValidationFailed({field.name: [
                f"links to a {field.to} record that does not exist; choose another"]})
    return Conflict("The change conflicts with another record (a unique value or a link); "
                    "reload the record and try again.")


def _statement(table: sa.Table, kind: str) -> Any:
    """The INSERT … RETURNING id, or the UPDATE … WHERE id = :_crm_id AND version =
    :_crm_version, of a table: built once (`caches.STATEMENTS`); the columns come with the
    execution's parameters (so SQLAlchemy's compiled cache serves them without building a
    statement per write)."""

    def build() -> Any:
        if kind == "insert":
            return table.insert().returning(table.c.id)
        return table.update().where(table.c.id == sa.bindparam("_crm_id"),
                                    table.c.version == sa.bindparam("_crm_version")
                                    ).execution_options(**{rowcache.BY_ID: True})

    return caches.STATEMENTS.get(table, kind, build)


def _execute(conn: Connection, ent: Entity, table: sa.Table, stmt: Any,
             params: Any = None) -> Any:
    mark_written(conn)
    try:
        return conn.execute(stmt, params) if params is not None else conn.execute(stmt)
    except sa.exc.IntegrityError as exc:
        raise integrity(ent, table, exc) from exc


def _check_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise Conflict(f"Automations changed records more than {MAX_DEPTH} levels deep (a loop "
                       "of automations?); check their `when` conditions.")


# -- input ------------------------------------------------------------------------------------


def _read_input(inst: Instance, actor: Actor, ent: Entity, values: Mapping[str, Any], *,
                old: Mapping[str, Any] | None, transition: bool, errors: Errors
                ) -> dict[str, Any]:
    """The coerced values the actor may write. A read-only field may be sent only with the
    value it has (so a record read and sent back as a whole is fine)."""
    action = "update" if old is not None else "create"
    denied = readonly_fields(inst, actor, ent.name, action)
    reasons = _readonly_reasons(ent, transition=transition, system=actor.system)
    given: dict[str, Any] = {}
    for name, raw in values.items():
        field = ent.fields.get(name)
        if field is None:
            errors.setdefault(name, []).append(unknown_field_message(ent, name))
            continue
        try:
            value = coerce_value(field, raw)
        except ValueError as exc:
            errors.setdefault(name, []).append(str(exc))
            continue
        current = old.get(name) if old is not None else None
        reason = reasons.get(name)
        if reason is None and name in denied and old is not None:
            reason = "you may not change it; leave it out"
        if reason is not None:
            if old is None and ent.workflow is not None and name == ent.workflow.field:
                current = ent.workflow.initial
            if not same(value, current):
                errors.setdefault(name, []).append(reason)
            continue
        given[name] = value
    return given


def _readonly_reasons(ent: Entity, *, transition: bool, system: bool) -> dict[str, str]:
    """{field: why nobody may type into it} (`readonly_reason`), once per entity and case."""
    return caches.ENTITY_PLANS.get(ent, ("readonly", transition, system), lambda: {
        f.name: reason for f in ent.fields.values()
        if (reason := readonly_reason(ent, f, transition=transition, system=system))})


def _is_claim(inst: Instance, actor: Actor, ent: Entity, old: Mapping[str, Any],
              values: Mapping[str, Any]) -> bool:
    """Whether an update only makes the actor the owner of a record that has none: a claim,
    which reading the record permits (`permissions.may_claim`), without `update`."""
    if set(values) != {"owner"} or "owner" not in ent.fields:
        return False
    try:
        wanted = coerce_value(ent.fields["owner"], values["owner"])
    except ValueError:
        return False
    return wanted == actor.user_id and may_claim(inst, actor, ent.name, old)


def _routed(inst: Instance, ent: Entity, record: Mapping[str, Any], fetch: Fetcher) -> bool:
    """Whether a routing rule of the entity (a create automation that `assign`s the owner)
    will choose the owner of this new record: its `when` holds on the record without an
    owner, evaluated as automations do (as the system). Then the record is created unowned
    for it to route — from a form as from an import — instead of belonging to its creator."""
    if "owner" not in ent.fields:
        return False
    unowned = {**record, "owner": None}
    for automation in inst.model.automations_for(ent.name, "create"):
        if not any(a.kind == "assign" and a.field == "owner" for a in automation.actions):
            continue
        ctx = eval_context(inst, None, ent.name, unowned, fetch=fetch)
        if automation.when is None or condition(automation.when, ctx):
            return True
    return False


def _check_assign(inst: Instance, actor: Actor, ent: Entity, record: Mapping[str, Any],
                  conn: Connection, errors: Errors) -> None:
    """Choosing an owner other than oneself takes the entity's `assign` right."""
    if not can(inst, actor, ent.name, "assign", record, conn=conn):
        errors.setdefault("owner", []).append(
            "you may not assign records to others; leave it out, or claim an unowned record")


def _readonly_when(ent: Entity, record: Mapping[str, Any], given: Mapping[str, Any],
                   before: Mapping[str, Any], ctx: Any, errors: Errors) -> None:
    """`readonly_when` holds on the server: on update over the record as it was (for users:
    automations and imports act as the system, which it does not bind)."""
    for name in given:
        field = ent.fields[name]
        if field.readonly_when is not None and not same(record.get(name), before.get(name)) \
                and condition(field.readonly_when, ctx):
            errors.setdefault(name, []).append(
                "is read-only for this record now; leave it unchanged")


def _check_create_readonly(inst: Instance, actor: Actor, ent: Entity, record: dict[str, Any],
                           given: Mapping[str, Any], base: Mapping[str, Any], ctx: Any,
                           fetch: Fetcher, errors: Errors) -> None:
    """On create, a field the actor may not change (their role's `readonly`, or a
    `readonly_when` that holds) may only be given the value it would get anyway."""
    if actor.system:
        return
    denied = readonly_fields(inst, actor, ent.name, "create")
    names = [n for n in given if n in denied or ent.fields[n].readonly_when is not None]
    if not names:
        return
    baseline = dict(base)
    apply_defaults(ent, baseline, list(ent.fields),
                   eval_context(inst, actor, ent.name, baseline, fetch=fetch), {})
    for name in names:
        if same(record.get(name), baseline.get(name)):
            continue
        if name in denied:
            errors.setdefault(name, []).append("you may not set it; leave it out")
        elif condition(ent.fields[name].readonly_when, ctx):
            errors.setdefault(name, []).append(
                "is read-only for this record; leave it out")


# -- writing ----------------------------------------------------------------------------------


def _audit_rows(inst: Instance, actor: Actor, ent: Entity, record_id: int, action: str,
                changes: list[tuple[str | None, Any, Any]], now: datetime | None = None
                ) -> list[dict[str, Any]]:
    """The audit entries of one record's write, at `now` (a batch's moment: else this one)."""
    now = now or inst.now()
    return [{"entity": ent.name, "record_id": record_id, "action": action, "field": name,
             "old_value": _audit_text(old), "new_value": _audit_text(new),
             "user_id": actor.user_id, "at": now} for name, old, new in changes]


def _audit_text(value: Any) -> str | None:
    """A value as an audit entry keeps it: its JSON text (None: NULL). A text, a whole
    number or a date, what most entries hold, goes by its exact class straight to what
    `json.dumps(json_value(value))` would run for it (a bulk update writes several entries a
    record); anything else goes that way."""
    if value is None:
        return None
    text = _AUDIT_TEXT.get(value.__class__)
    if text is not None:
        return text(value)
    value = json_value(value)
    return encode_basestring_ascii(value) if isinstance(value, str) else json.dumps(value)


# the JSON text of a value by its exact class (`_audit_text`): a subclass (bool, datetime)
# takes the general path
_AUDIT_TEXT: dict[type, Callable[[Any], str]] = {
    str: encode_basestring_ascii, int: int.__repr__,
    date: lambda value: encode_basestring_ascii(value.isoformat()),
}


def _insert_audit(inst: Instance, conn: Connection, rows: list[dict[str, Any]]) -> None:
    insert_many(conn, inst.schema.system("audit"), rows)


def _audit(inst: Instance, conn: Connection, actor: Actor, ent: Entity, record_id: int,
           action: str, changes: list[tuple[str | None, Any, Any]]) -> None:
    _insert_audit(inst, conn, _audit_rows(inst, actor, ent, record_id, action, changes))


def _write_links(inst: Instance, conn: Connection, ent: Entity, record_id: int,
                 record: Mapping[str, Any], before: Mapping[str, Any] | None) -> None:
    for field in ent.fields.values():
        if field.type != "links":
            continue
        join = inst.schema.link_table(ent.name, field.name)
        new = set(record.get(field.name) or [])
        old = set((before or {}).get(field.name) or [])
        if old - new:
            conn.execute(join.delete().where(join.c.source_id == record_id,
                                             join.c.target_id.in_(sorted(old - new))))
        if new - old:
            conn.execute(join.insert(), [{"source_id": record_id, "target_id": t}
                                         for t in sorted(new - old)])


def _input_fields(ent: Entity) -> list[str]:
    """The fields whose value comes from input or a default, not a formula, rollup or
    autonumber."""
    return [name for name, field in ent.fields.items() if not field.computed]


def row_values(ent: Entity, table: sa.Table, record: Mapping[str, Any]) -> dict[str, Any]:
    """The column values of a record's row (phone numbers with their E.164 shadow)."""
    values = {name: record.get(name) for name in ent.fields
              if name in table.c and name != "id" and ent.fields[name].type != "links"}
    return values | phones.shadow_values(ent, values)


def _fire(inst: Instance, conn: Connection, actor: Actor, event: WriteEvent) -> None:
    for hook in list(inst.hooks.after_write):
        hook(inst, conn, actor, event)


def _result(inst: Instance, actor: Actor, conn: Connection, ent: Entity, record_id: int,
            record: dict[str, Any], written: int) -> dict[str, Any]:
    """The record as JSON after the write: as written when the hooks changed no row since
    (`written` is the connection's write count then), else read back."""
    if writes(conn) != written:
        record = load(inst, conn, ent.name, record_id)
    if record is None:  # an automation deleted it
        return {"id": record_id}
    return to_json(ent, record, hidden_fields(inst, actor, ent.name))


def create(inst: Instance, actor: Actor, entity: str, values: Mapping[str, Any], *,
           conn: Connection | None = None, depth: int = 0) -> dict[str, Any]:
    """Create a record from input values (JSON, form text or Python values); the record as
    JSON, with `_warnings` when a duplicate rule with `action: warn` matched (send
    `_confirm_duplicates: true` to say you checked). Many records at once: `bulk.create_many`,
    which runs the same steps a batch at a time."""
    ent = entity_of(inst, entity)
    _check_depth(depth)
    may_create(inst, actor, ent)
    values = input_values(values)
    confirmed = bool(values.pop("_confirm_duplicates", False))

    def work(conn: Connection) -> dict[str, Any]:
        table = inst.schema.table(entity)
        record, errors = new_record(inst, actor, ent, values, conn, Fetcher(inst, conn))
        checks.check_unique(conn, ent, table, record,
                            [n for n in ent.fields if not is_empty(record.get(n))], errors)
        admit(inst, actor, ent, record, errors, conn)
        warnings = checks.duplicates(inst, conn, ent, record, None, confirmed)
        number_records(inst, conn, ent, [record])
        result = _execute(conn, ent, table, _statement(table, "insert"),
                          row_values(ent, table, record))
        record["id"] = int(result.scalar_one())
        created(inst, conn, actor, ent, [record])
        written = writes(conn)
        _fire(inst, conn, actor, WriteEvent("create", entity, dict(record), None, None, depth))
        out = _result(inst, actor, conn, ent, record["id"], record, written)
        if warnings:
            out["_warnings"] = warnings
        return out

    return in_transaction(inst.engine, conn, work)


def may_create(inst: Instance, actor: Actor, ent: Entity) -> None:
    """Forbidden unless the actor's roles may create records of `ent` at all."""
    if not can(inst, actor, ent.name, "create"):
        raise Forbidden(f"You may not create {ent.plural}; ask an administrator for a role "
                        "that allows it.")


def input_values(values: Any) -> dict[str, Any]:
    """The values of one write as a dict of their own; ValidationFailed when not an object."""
    if not isinstance(values, Mapping):
        raise ValidationFailed({"_record": ["send the values as an object of field: value"]})
    return dict(values)


def new_record(inst: Instance, actor: Actor, ent: Entity, values: Mapping[str, Any],
               conn: Connection, fetch: Fetcher) -> tuple[dict[str, Any], Errors]:
    """The record a create would write from `values` and the problems found in it: input
    read and coerced, defaults, formulas, field rules and validations, read-only fields,
    assignment, links and files. Unique values, the create rule and duplicate rules are the
    caller's next steps (`checks.check_unique`, `admit`, `checks.duplicates`), as they
    compare with other rows. ValidationFailed at once when the input itself is unreadable."""
    errors: Errors = {}
    given = _read_input(inst, actor, ent, values, old=None, transition=False, errors=errors)
    if errors:
        raise ValidationFailed(errors)
    record = _blank(inst, actor, ent)
    base = dict(record)
    record.update(given)
    ctx = eval_context(inst, actor, ent.name, record, fetch=fetch)
    apply_defaults(ent, record, [n for n in ent.fields if n not in given], ctx, errors)
    if "owner" not in given and _routed(inst, ent, record, fetch):
        record["owner"] = None  # a routing rule chooses the owner, not the creator
    compute_formulas(ent, record, ctx, errors)
    check_fields(ent, record, ctx, errors, language=actor_language(actor))
    checks.check_kind_options(ent, record, list(given), errors)
    _check_create_readonly(inst, actor, ent, record, given, base, ctx, fetch, errors)
    if given.get("owner") not in (None, actor.user_id) and "owner" not in errors:
        _check_assign(inst, actor, ent, record, conn, errors)
    checks.check_links(inst, actor, conn, ent, record, list(given), errors, fetch)
    attachments.check_files(inst, conn, actor, ent, record, _input_fields(ent), None, errors)
    return record, errors


def _blank(inst: Instance, actor: Actor, ent: Entity) -> dict[str, Any]:
    """A new record before its input: empty fields, zero counts, the system fields, the
    workflow's initial state."""
    now = inst.now()
    record: dict[str, Any] = {name: None for name in ent.fields}
    for field in ent.fields.values():
        if field.type in ("links", "multichoice"):
            record[field.name] = []
        if field.rollup is not None and field.rollup.op in ("count", "sum"):
            record[field.name] = 0
    record.update({k: v for k, v in {
        "created_at": now, "updated_at": now, "created_by": actor.user_id,
        "updated_by": actor.user_id, "version": 1, "owner": actor.user_id,
    }.items() if k in ent.fields})
    if ent.workflow is not None:
        record[ent.workflow.field] = ent.workflow.initial
    return record


def admit(inst: Instance, actor: Actor, ent: Entity, record: Mapping[str, Any],
          errors: Errors, conn: Connection) -> None:
    """ValidationFailed with the problems found, else Forbidden unless the entity's create
    rule holds for these values."""
    if errors:
        raise ValidationFailed(errors)
    if not can(inst, actor, ent.name, "create", record, conn=conn):
        raise Forbidden(f"You may not create this {ent.label} (your role's create rule "
                        "does not hold for these values); change them or ask an "
                        "administrator.")


def number_records(inst: Instance, conn: Connection, ent: Entity,
                   new: list[dict[str, Any]]) -> None:
    """Give the new records their autonumbers, in order, from one counter bump per field."""
    for field in ent.fields.values():
        if field.type == "autonumber" and new:
            first = derived.next_number(inst, conn, ent.name, field.name, len(new))
            for offset, record in enumerate(new):
                record[field.name] = format_autonumber(field.format, first + offset,
                                                       inst.today())


def created(inst: Instance, conn: Connection, actor: Actor, ent: Entity,
            new: list[dict[str, Any]]) -> None:
    """What follows the insert of new records (with their ids): `links` join rows, staged
    files, one audit entry each (one statement for all), and their rollups (deferred inside
    `derived.batch`)."""
    for record in new:
        _write_links(inst, conn, ent, record["id"], record, None)
        attachments.bind(inst, conn, ent, record["id"], record)
    _insert_audit(inst, conn, [row for record in new for row in _audit_rows(
        inst, actor, ent, record["id"], "create", [(None, None, {
            k: v for k, v in record.items()
            if not is_empty(v) and k not in AUTO_FIELDS and k in ent.fields})])])
    for record in new:
        derived.refresh_rollups(inst, conn, ent.name, None, record)


def fire_created(inst: Instance, conn: Connection, actor: Actor, ent: Entity,
                 record: Mapping[str, Any], depth: int = 0) -> None:
    """The `after_write` hooks of a new record (automations `on: create`)."""
    _fire(inst, conn, actor, WriteEvent("create", ent.name, dict(record), None, None, depth))


def insert_statement(table: sa.Table) -> Any:
    """INSERT … RETURNING id for many rows at once (ids in the order of the rows), built
    once per table."""
    return caches.STATEMENTS.get(table, "insert_many", lambda: table.insert().returning(
        table.c.id, sort_by_parameter_order=True))


def update(inst: Instance, actor: Actor, entity: str, record_id: Any,
           values: Mapping[str, Any], *, version: int | None, conn: Connection | None = None,
           transition: str | None = None, depth: int = 0,
           comment: str | None = None) -> dict[str, Any]:
    """Change a record. `version` is the version the actor read (required for users;
    StaleVersion when someone saved since). `transition=NAME` is the workflow module
    moving the state field (set to that transition's `to` unless `values` names the state);
    the event's kind is then "transition" and `comment` is kept on the timeline."""
    ent = entity_of(inst, entity)
    rid = record_id_of(ent, record_id)
    _check_depth(depth)
    if not isinstance(values, Mapping):
        raise ValidationFailed({"_record": ["send the values as an object of field: value"]})
    values = dict(values)
    if "version" in values:
        sent = values.pop("version")
        version = sent if version is None else version
    confirmed = bool(values.pop("_confirm_duplicates", False))
    if transition is not None:
        known_transition(ent, transition)

    def work(conn: Connection) -> dict[str, Any]:
        nonlocal version
        table = inst.schema.table(entity)
        old = load(inst, conn, entity, rid, actor=actor, for_update=True)
        if old is None:
            raise not_found(ent, rid)
        hidden = hidden_fields(inst, actor, entity)
        if version is None and not actor.system:
            raise ValidationFailed({"version": [
                "is required: send the version you read, so that concurrent edits are "
                "caught"]})
        if version is not None:
            try:
                version = int(version)
            except (TypeError, ValueError):
                raise ValidationFailed({"version": ["must be a whole number"]}) from None
            if version != old["version"]:
                raise StaleVersion(to_json(ent, old, hidden), entity=entity)
        record, changed, errors = revised(inst, actor, ent, old, values, conn,
                                          transition=transition)
        checks.check_unique(conn, ent, table, record, changed, errors)
        if errors:
            raise ValidationFailed(errors)
        if not changed and transition is None:
            return to_json(ent, old, hidden)
        checks.duplicates(inst, conn, ent, record, set(changed), confirmed)
        now = inst.now()
        record.update({k: v for k, v in {"updated_at": now, "updated_by": actor.user_id,
                                         "version": old["version"] + 1}.items()
                       if k in ent.fields})
        columns = {n: record[n] for n in changed if n in table.c}
        columns |= phones.shadow_values(ent, columns)
        columns.update({k: record[k] for k in ("updated_at", "updated_by", "version")
                        if k in table.c})
        done = _execute(conn, ent, table, _statement(table, "update"), {
            **columns, "_crm_id": rid, "_crm_version": old["version"]})
        if done.rowcount == 0:
            current = load(inst, conn, entity, rid)
            if current is None:
                raise not_found(ent, rid)
            raise StaleVersion(to_json(ent, current, hidden), entity=entity)
        kind = "transition" if transition is not None else "update"
        updated(inst, conn, actor, ent, [(old, record, changed)], kind)
        if transition is not None:
            moved(inst, conn, actor, ent, [(old, record, transition)], comment)
        # a rollup over its own entity may have just changed this very row (a record made
        # its own parent): then it is read back
        written = writes(conn)
        derived.refresh_rollups(inst, conn, entity, old, record)
        if not any(f.rollup is not None and f.rollup.entity == entity
                   for f in ent.fields.values()):
            written = writes(conn)
        _fire(inst, conn, actor, WriteEvent(kind, entity, dict(record), dict(old), transition,
                                            depth))
        return _result(inst, actor, conn, ent, rid, record, written)

    return in_transaction(inst.engine, conn, work)


def known_transition(ent: Entity, transition: str) -> None:
    """Conflict unless `transition` is one of the entity's workflow transitions."""
    if ent.workflow is None or transition not in ent.workflow.transitions:
        raise Conflict(f"{ent.label} has no transition '{transition}'.")


def revised(inst: Instance, actor: Actor, ent: Entity, old: Mapping[str, Any],
            values: Mapping[str, Any], conn: Connection, *, transition: str | None = None,
            fetch: Fetcher | None = None) -> tuple[dict[str, Any], list[str], Errors]:
    """The record an update of `old` by `values` would write, the fields it changes and the
    problems found in it: the update rule (or a claim), the state lock and a pending
    approval (Forbidden, AwaitingApproval at once), input read and coerced (ValidationFailed
    at once when unreadable), assignment, formulas, field rules and validations, read-only
    fields, links, kind options and files. Unique values and duplicate rules are the
    caller's next steps (`checks.check_unique`, `checks.duplicates`), as they compare with
    other rows: `update` checks one record, `bulk.upsert_many` a batch."""
    claim = _is_claim(inst, actor, ent, old, values)
    if not claim and not can(inst, actor, ent.name, "update", old, conn=conn):
        raise Forbidden(f"You may not change this {ent.label}; ask its owner or an "
                        "administrator.")
    if transition is None:
        lock = state_lock(inst, actor, ent.name, old)
        if lock:
            raise Forbidden(lock)
        if not actor.system:
            approval = checks.pending_approval(inst, conn, ent.name, old["id"])
            if approval:
                raise AwaitingApproval(
                    f"This {ent.label} is awaiting approval ({approval}); it can be "
                    "changed once the request is decided or recalled.",
                    record_id=old["id"], entity=ent.name)
    errors: Errors = {}
    given = _read_input(inst, actor, ent, values, old=old, transition=transition
                        is not None, errors=errors)
    if "owner" in given and not same(given["owner"], old.get("owner")) and not claim:
        _check_assign(inst, actor, ent, old, conn, errors)
    if errors:
        raise ValidationFailed(errors)
    record = {**old, **given}
    if transition is not None and ent.workflow is not None \
            and ent.workflow.field not in given:
        record[ent.workflow.field] = ent.workflow.transitions[transition].to
    fetch = fetch or Fetcher(inst, conn)
    ctx = eval_context(inst, actor, ent.name, record, old=old, fetch=fetch)
    compute_formulas(ent, record, ctx, errors)
    check_fields(ent, record, ctx, errors, language=actor_language(actor))
    if not actor.system:
        _readonly_when(ent, record, given, old,
                       eval_context(inst, actor, ent.name, old, fetch=fetch), errors)
    changed = _changed(_compared(ent, inst.schema.table(ent.name)), old, record)
    checks.check_links(inst, actor, conn, ent, record, [n for n in changed if n in given],
                       errors, fetch)
    checks.check_kind_options(ent, record, [n for n in changed if n in given or (
        ent.kind_field in changed)], errors)
    attachments.check_files(inst, conn, actor, ent, record,  # the input fields changed
                            [n for n in changed if not ent.fields[n].computed], old["id"],
                            errors)
    return record, changed, errors


def _compared(ent: Entity, table: sa.Table) -> tuple[str, ...]:
    """The fields an update may change (`_changed`): those of the table's columns and the
    `links`, not the system's — once per entity, not per record."""
    return caches.ENTITY_PLANS.get(ent, "compared", lambda: tuple(
        n for n, f in ent.fields.items()
        if n not in AUTO_FIELDS and (n in table.c or f.type == "links")))


def _changed(names: tuple[str, ...], old: Mapping[str, Any], record: Mapping[str, Any]
             ) -> list[str]:
    """The fields of `names` whose value in `record` is not the `same` as in `old`. A value
    that is the very object `old` holds (a field the input left alone) or equal to it is the
    same without `same`, which only tells apart what `==` does not (blanks, lists as sets)."""
    return [n for n in names if (new := record.get(n)) is not (was := old.get(n))
            and new != was and not same(new, was)]


def updated(inst: Instance, conn: Connection, actor: Actor, ent: Entity,
            changes: list[tuple[Mapping[str, Any], Mapping[str, Any], list[str]]],
            kind: str = "update") -> None:
    """What follows the UPDATE of records, each (old, record, changed fields): `links` join
    rows, one audit entry per changed field (one statement for all) and the owner's change
    on the timeline. Rollups are the caller's (`derived.refresh_rollups`)."""
    for old, record, _ in changes:
        _write_links(inst, conn, ent, old["id"], record, old)
    now = inst.now()  # one moment for the records written together
    _insert_audit(inst, conn, [row for old, record, changed in changes
                               for row in _audit_rows(inst, actor, ent, old["id"], kind, [
                                   (n, old.get(n), record.get(n)) for n in changed], now)])
    for old, record, changed in changes:
        if "owner" in changed:
            record_reassignment(inst, conn, actor, ent.name, old["id"], old.get("owner"),
                                record.get("owner"))


def moved(inst: Instance, conn: Connection, actor: Actor, ent: Entity,
          moves: list[tuple[Mapping[str, Any], Mapping[str, Any], str]],
          comment: str | None) -> None:
    """The workflow transitions of records, each (old, record, transition), on their
    timelines (`comment` on each), as `update(..., transition=...)` keeps one."""
    if not moves:
        return
    assert ent.workflow is not None
    state = ent.workflow.field
    record_transitions(inst, conn, actor, ent.name, [
        (old["id"], transition, old.get(state), record.get(state))
        for old, record, transition in moves], comment)


def fire_updated(inst: Instance, conn: Connection, actor: Actor, ent: Entity,
                 record: Mapping[str, Any], old: Mapping[str, Any], depth: int = 0, *,
                 transition: str | None = None) -> None:
    """The `after_write` hooks of a changed record (automations `on: update`), or of one
    moved along its workflow `transition`."""
    _fire(inst, conn, actor, WriteEvent("transition" if transition else "update", ent.name,
                                        dict(record), dict(old), transition, depth))


def update_statement(table: sa.Table) -> Any:
    """UPDATE … WHERE id = :_crm_id AND version = :_crm_version (the columns come with the
    parameters), built once per table: one write or an executemany of many."""
    return _statement(table, "update")


def delete(inst: Instance, actor: Actor, entity: str, record_id: Any, *,
           conn: Connection | None = None, depth: int = 0) -> None:
    """Delete a record. Links to it follow their `on_delete`: `restrict` refuses (Conflict
    naming the linking entity), `cascade` deletes those records too (through this same path:
    audited, rollups kept, hooks fired), `set_null` empties the link."""
    ent = entity_of(inst, entity)
    rid = record_id_of(ent, record_id)
    _check_depth(depth)

    def work(conn: Connection) -> None:
        old = load(inst, conn, entity, rid, actor=actor, for_update=True)
        if old is None:
            raise not_found(ent, rid)
        if not can(inst, actor, entity, "delete", old, conn=conn):
            raise Forbidden(f"You may not delete this {ent.label}; ask an administrator.")
        lock = state_lock(inst, actor, entity, old)
        if lock:
            raise Forbidden(lock)
        if not actor.system and checks.pending_approval(inst, conn, entity, rid):
            raise AwaitingApproval(f"This {ent.label} is awaiting approval; it can be deleted "
                                   "once the request is decided or recalled.",
                                   record_id=rid, entity=entity)
        _delete_row(inst, actor, conn, ent, old, depth, set())

    in_transaction(inst.engine, conn, work)


def _delete_row(inst: Instance, actor: Actor, conn: Connection, ent: Entity,
                old: dict[str, Any], depth: int, seen: set[tuple[str, int]]) -> None:
    rid = old["id"]
    seen.add((ent.name, rid))
    for child_name, link in inst.model.reverse_links(ent.name):
        child = inst.model.entity(child_name)
        field = child.fields[link]
        if field.type != "link":
            continue  # `links` join rows go with the record (ON DELETE CASCADE)
        children = inst.schema.table(child_name)
        ids = [i for i in conn.execute(sa.select(children.c.id).where(
            children.c[link] == rid).order_by(children.c.id)).scalars()
            if (child_name, i) not in seen]
        if not ids:
            continue
        if field.on_delete == "restrict":
            raise Conflict(
                f"This {ent.label} cannot be deleted: {len(ids)} {child.plural if len(ids) > 1 else child.label} "  # noqa: E501
                f"record(s) link to it through '{link}' (#{', #'.join(map(str, ids[:5]))}). "
                f"Delete them or link them elsewhere first.", record_id=ids[0],
                entity=child_name)
        for child_id in ids:
            row = load(inst, conn, child_name, child_id, for_update=True)
            if row is None:
                continue
            if field.on_delete == "cascade":
                _delete_row(inst, actor, conn, child, row, depth + 1, seen)
            else:
                _set_null(inst, actor, conn, child, row, link, rid, depth + 1)
    table = inst.schema.table(ent.name)
    conn.execute(table.delete().where(table.c.id == rid))
    _audit(inst, conn, actor, ent, rid, "delete", [(None, {
        k: v for k, v in old.items() if not is_empty(v) and k in ent.fields
        and k not in AUTO_FIELDS}, None)])
    derived.refresh_rollups(inst, conn, ent.name, old, None)
    _fire(inst, conn, actor, WriteEvent("delete", ent.name, None, dict(old), None, depth))


def _set_null(inst: Instance, actor: Actor, conn: Connection, ent: Entity,
              row: dict[str, Any], link: str, parent_id: int, depth: int) -> None:
    table = inst.schema.table(ent.name)
    now = inst.now()
    values: dict[str, Any] = {link: None}
    values.update({k: v for k, v in {"version": row["version"] + 1, "updated_at": now,
                                     "updated_by": actor.user_id}.items() if k in table.c})
    conn.execute(table.update().where(table.c.id == row["id"]).values(values))
    mark_written(conn)
    _audit(inst, conn, actor, ent, row["id"], "update", [(link, parent_id, None)])
    after = {**row, **values}
    derived.refresh_rollups(inst, conn, ent.name, row, after)
    _fire(inst, conn, actor, WriteEvent("update", ent.name, after, dict(row), None, depth))

