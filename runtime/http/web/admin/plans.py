"""A migration plan in words, for the admin pages (`templates/admin/_plan.html`).

`plan_view(plan)` turns the migration planner's `Plan` (runtime/process/migrate/) into steps a
person reads: each with its safety (safe / needs data / destructive), the sentence the
planner wrote, and the entity and field it touches. A destructive step names what the admin
must type to confirm it (`Step.confirm`: the entity name, or `entity.field`); `unconfirmed`
checks the typed names of a submitted form (`confirm-<n>` for the n-th destructive step).

Used by `/admin/packs` (install and upgrade) and `/admin/studio` (apply a change).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from runtime.process.migrate import DESTRUCTIVE, NEEDS_DATA, SAFE, Op, Plan

SAFETY_WORDS = {SAFE: "safe", NEEDS_DATA: "needs data", DESTRUCTIVE: "destructive"}


@dataclass(frozen=True)
class Step:
    """One step of a plan as the admin reads it."""

    safety: str  # SAFE, NEEDS_DATA or DESTRUCTIVE
    text: str  # what happens, in words (the planner's own sentence)
    entity: str | None = None
    field: str | None = None
    confirm: str | None = None  # what to type to allow it (destructive steps only)
    data: bool = False  # reads or moves the rows already there

    @property
    def words(self) -> str:
        return SAFETY_WORDS.get(self.safety, self.safety)

    @property
    def target(self) -> str:
        """`entity.field`, `entity`, or "" when the step touches neither."""
        if self.entity and self.field:
            return f"{self.entity}.{self.field}"
        return self.entity or ""


@dataclass(frozen=True)
class PlanView:
    """The steps of a plan, with counts by safety."""

    steps: tuple[Step, ...]

    @property
    def empty(self) -> bool:
        return not self.steps

    def count(self, safety: str) -> int:
        return sum(1 for s in self.steps if s.safety == safety)

    @property
    def destructive(self) -> list[Step]:
        return [s for s in self.steps if s.safety == DESTRUCTIVE]

    @property
    def needs_data(self) -> bool:
        return any(s.safety == NEEDS_DATA for s in self.steps)

    @property
    def has_data_steps(self) -> bool:
        """True when applying reads or moves existing rows: shown with progress."""
        return any(s.data for s in self.steps)

    @property
    def allow_destructive(self) -> bool:
        """What `migrate.apply` needs: any step that is not safe."""
        return any(s.safety != SAFE for s in self.steps)


def plan_view(plan: Plan) -> PlanView:
    """The plan's steps in words, each with the entity and field it touches."""
    entities = {e.table: e.name for e in plan.model.entities.values()}
    return PlanView(tuple(_step(op, entities) for op in plan.ops))


def _step(op: Op, entities: Mapping[str, str]) -> Step:
    table = op.table
    entity = entities.get(table) or _removed_entity(op) or (table or None)
    column = getattr(op, "column", None) or getattr(op, "new", None) or None
    if "__" in (table or "") and table not in entities:  # a `links` field's join table
        owner, _, column = table.partition("__")
        entity = entities.get(owner, owner)
    if op.kind == "search_index":
        entity, column = None, None
    confirm = None
    if op.safety == DESTRUCTIVE:
        confirm = f"{entity}.{column}" if column else entity
    return Step(op.safety, op.describe(), entity, column, confirm, data=moves_data(op))


def moves_data(op: Op) -> bool:
    """True when `op` reads or writes the rows already there (not only the table's shape)."""
    if op.kind == "add_column":
        return bool(getattr(op, "backfill", False))
    if op.kind == "remove_choice_values":
        return bool(getattr(op, "values", ()))
    if op.kind in ("fill_phone_numbers", "replace_column", "remove_table"):
        return bool(getattr(op, "rows", 0))
    return op.kind in ("rename_table", "search_index")


def _removed_entity(op: Op) -> str | None:
    what = getattr(op, "what", "") or ""
    return what.removeprefix("entity ") if what.startswith("entity ") else None


def unconfirmed(view: PlanView, form: Mapping[str, str]) -> list[str]:
    """The names of destructive steps the admin did not type exactly (`confirm-<n>`)."""
    return [step.confirm or "" for n, step in enumerate(view.destructive)
            if (form.get(f"confirm-{n}") or "").strip() != step.confirm]
