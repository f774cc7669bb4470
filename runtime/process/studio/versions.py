"""Applying a customisation, and its history (`crm_studio_version`).

`prepare` checks a candidate text and plans the migration it needs (nothing changes);
`apply` writes the file, runs that migration — which records the new model in `crm_model`, so
every process serving the instance reopens it within a second or two
(`runtime.http.model_watch`) — and keeps the version: who, when, the text before and after.
When the migration fails the file is put back as it was. `revert_text` is the text of a
version, applied like any other change (so a revert is a version too, with its own plan).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from runtime.core.db import write_transaction
from runtime.core.instance import Actor, Instance
from runtime.process import migrate
from runtime.process.studio import layer
from runtime.process.studio.layer import Check, StudioError

AUDIT_ACTION = "studio"


@dataclass(frozen=True)
class Prepared:
    """A checked candidate: the builder's verdict, and the plan when it is valid."""

    entity: str
    text: str
    before: str
    check: Check
    plan: migrate.Plan | None
    refused: str | None = None  # why the migration cannot be planned (a field's rename)

    @property
    def ok(self) -> bool:
        return self.check.model is not None and self.plan is not None

    @property
    def unchanged(self) -> bool:
        return self.text.strip() == self.before.strip()

    def diff(self) -> str:
        return diff(self.before, self.text, layer.shown_path(self.entity))


@dataclass(frozen=True)
class Version:
    id: int
    entity: str
    file: str
    before_text: str
    after_text: str
    summary: str
    model_hash: str
    reverted_to: int | None
    user_id: int | None
    user: str
    created_at: datetime

    def diff(self) -> str:
        return diff(self.before_text, self.after_text, self.file)


def prepare(inst: Instance, entity: str, text: str) -> Prepared:
    """Check `text` as `entity`'s customisation and plan what applying it does."""
    text = _normal(text)
    checked = layer.check(inst.model, entity, text)
    try:
        plan = migrate.plan(checked.model, inst.engine) if checked.model is not None else None
    except migrate.MigrationFailed as exc:  # valid YAML the database cannot follow
        return Prepared(entity, text, layer.read_text(entity), checked, None, str(exc))
    return Prepared(entity, text, layer.read_text(entity), checked, plan)


def apply(inst: Instance, actor: Actor, entity: str, text: str, *, base: str, summary: str,
          allow_destructive: bool = False, reverted_to: int | None = None) -> int:
    """Apply `text` as `entity`'s customisation; the new version's id.

    `base` is the digest of the text the admin started from: another change applied since
    refuses this one (StudioError), as does a text with errors or an unchanged one.
    Raises migrate.MigrationRefused (nothing written) when the plan has steps that need
    `allow_destructive`, and migrate.MigrationFailed (the file put back) when the database
    refuses a step.
    """
    prepared = prepare(inst, entity, text)
    problem = stale(entity, base)
    if problem:
        raise StudioError(problem)
    if prepared.refused is not None:
        raise StudioError(prepared.refused)
    if not prepared.ok:
        raise StudioError(f"The customisation has {len(prepared.check.errors)} error(s); "
                          "nothing was applied.")
    if prepared.unchanged:
        raise StudioError("This is the customisation already applied; nothing to do.")
    refused = prepared.plan.refused(allow_destructive)
    if refused:
        raise migrate.MigrationRefused(refused)
    layer.write(entity, prepared.text)
    try:  # planned again from the real files: the checked model names the shadow copy
        written = layer.built(inst.model)
        migrate.apply(migrate.plan(written, inst.engine), inst.engine, allow_destructive)
    except BaseException:
        layer.write(entity, prepared.before)
        raise
    return _record(inst, actor, prepared, summary[:255], reverted_to)


def stale(entity: str, base: str) -> str | None:
    """Why a change started from the file with digest `base` may not be applied (someone
    applied another since), or None."""
    if layer.digest(layer.read_text(entity)) == base:
        return None
    return (f"{layer.shown_path(entity)} was changed by someone else since you opened it; "
            "open the studio again and redo your change.")


def _record(inst: Instance, actor: Actor, prepared: Prepared, summary: str,
            reverted_to: int | None) -> int:
    table = inst.schema.system("studio_version")
    now = inst.now()
    with write_transaction(inst.engine) as conn:
        version_id = int(conn.execute(table.insert().values(
            entity=prepared.entity, file=layer.shown_path(prepared.entity),
            before_text=prepared.before, after_text=prepared.text, summary=summary,
            model_hash=prepared.check.model.hash, reverted_to=reverted_to,
            user_id=actor.user_id, created_at=now).returning(table.c.id)).scalar_one())
        conn.execute(inst.schema.system("audit").insert().values(
            entity=prepared.entity, record_id=version_id, action=AUDIT_ACTION, field=None,
            old_value=None, new_value=json.dumps({"version": version_id, "summary": summary,
                                                  "file": layer.shown_path(prepared.entity)}),
            user_id=actor.user_id, at=now))
    return version_id


def history(inst: Instance, entity: str | None = None, limit: int = 200) -> list[Version]:
    """The applied versions, newest first (of one entity, when given)."""
    query = _select(inst).order_by(sa.desc("id")).limit(limit)
    if entity is not None:
        query = query.where(inst.schema.system("studio_version").c.entity == entity)
    return list(_versions(inst, query))


def get(inst: Instance, version_id: int) -> Version | None:
    query = _select(inst).where(inst.schema.system("studio_version").c.id == version_id)
    return next(_versions(inst, query), None)


def diff(before: str, after: str, name: str) -> str:
    """The unified diff of two texts of the file `name`."""
    return "".join(difflib.unified_diff(before.splitlines(keepends=True),
                                        after.splitlines(keepends=True),
                                        f"{name} (before)", f"{name} (after)"))


def _select(inst: Instance) -> sa.Select:
    table = inst.schema.system("studio_version")
    users = inst.schema.table("user")
    return sa.select(table, users.c.username).select_from(
        table.outerjoin(users, users.c.id == table.c.user_id))


def _versions(inst: Instance, query: sa.Select) -> Iterator[Version]:
    with inst.engine.connect() as conn:
        if not sa.inspect(conn).has_table("crm_studio_version"):
            return  # no change applied yet (the first one creates the table)
        rows = conn.execute(query).all()
    for r in rows:
        yield Version(r.id, r.entity, r.file, r.before_text, r.after_text, r.summary,
                      r.model_hash, r.reverted_to, r.user_id, r.username or "—", r.created_at)


def _normal(text: str) -> str:
    """A text as stored: Unix line ends, one final newline ("" stays "")."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.rstrip() + "\n" if text.strip() else ""
