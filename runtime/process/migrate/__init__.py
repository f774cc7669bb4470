"""Schema migrations (docs/migrations.md): compare the model with the database, plan, apply.

    plan = migrate.plan(model, engine)      # a Plan: a list of operations, nothing changed
    for line in plan.lines(): print(line)   # "[safe] add column offer.notes"
    migrate.apply(plan, engine)             # refuses destructive steps unless allowed

Split as Alembic is: `compare.py` decides what to do, `ops.py` holds the operations (each
knows its safety, how to describe and how to apply itself), `apply.py` runs them in one
transaction and records the applied model.
"""

from runtime.process.migrate.apply import MigrationFailed, MigrationRefused, apply, record
from runtime.process.migrate.compare import Plan, plan, type_signature, widens
from runtime.process.migrate.ops import ASIDE_PREFIX, DESTRUCTIVE, NEEDS_DATA, SAFE, Op

__all__ = [
    "ASIDE_PREFIX", "DESTRUCTIVE", "NEEDS_DATA", "SAFE", "MigrationFailed", "MigrationRefused",
    "Op", "Plan", "apply", "plan", "record", "type_signature", "widens",
]
