"""The pages and the JSON API run no SQL of their own: they call the read, write and process
layers, which own every query. A module of `runtime/http/web/` or `runtime/http/api/` that
imports SQLAlchemy or the database helpers (`runtime.core.db`) is taking that back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HTTP = Path(__file__).resolve().parent.parent / "runtime" / "http"
FORBIDDEN = ("sqlalchemy", "runtime.core.db")
MODULES = sorted([*(HTTP / "web").rglob("*.py"), *(HTTP / "api").rglob("*.py")])


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_modules_are_found() -> None:
    names = {path.stem for path in MODULES}
    assert {"lists", "home", "workflow_pages", "attachments", "dashboards", "crud"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_sql_in_the_http_layer(path: Path) -> None:
    found = sorted(name for name in imported(path)
                   if any(name == f or name.startswith(f + ".") for f in FORBIDDEN))
    assert not found, f"{path.name} imports {', '.join(found)}; call a lower layer instead"
