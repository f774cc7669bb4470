"""The builder is pure: importing every one of its modules pulls in no web framework, no ORM
and no database driver (builder/README.md, "The rule")."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import builder

ROOT = Path(__file__).parent.parent
FORBIDDEN = ("flask", "sqlalchemy", "alembic", "psycopg2", "sqlite3", "redis", "huey",
             "werkzeug", "runtime")
EXPECTED = {"builder.loader", "builder.schema_check", "builder.packs", "builder.linker",
            "builder.link_rules", "builder.model", "builder.fieldtypes", "builder.diagnostics",
            "builder.expressions", "builder.expressions.parser", "builder.expressions.checker",
            "builder.expressions.evaluator", "builder.expressions.slots"}


def builder_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(builder.__path__, "builder."))


def test_every_builder_module_is_found():
    assert EXPECTED <= set(builder_modules())


def test_builder_imports_no_framework_orm_or_database():
    code = (
        "import importlib, sys\n"
        f"for name in {builder_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(' '.join(bad))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"builder imports: {result.stdout} {result.stderr}"
