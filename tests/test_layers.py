"""The runtime's layers, read from its imports: each layer imports only the layers below it,
no module imports another that (directly or through others) imports it back, and a project
module imported inside a function says why on that line.

    core  <  read  <  write  <  process  <  http  <  ops

(`runtime/app.py`, the WSGI entry point, re-exports `runtime.http.app.create_app`.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "runtime"
LAYERS = ("core", "read", "write", "process", "http", "ops")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


MODULES = {module_name(path): path for path in RUNTIME.rglob("*.py")}


def _target(node: ast.ImportFrom | ast.Import, module: str, is_package: bool) -> list[str]:
    """The runtime modules an import statement loads (the deepest known name of each)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[:len(package) - node.level + 1]
            base = ".".join(package + ([base] if base else []))
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                 for alias in node.names]
    return [name for name in names if name == "runtime" or name.startswith("runtime.")]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class Imports(ast.NodeVisitor):
    """Module-level imports (what runs at import time) and imports inside functions."""

    def __init__(self, module: str, path: Path):
        self.module, self.is_package = module, path.name == "__init__.py"
        self.lines = path.read_text(encoding="utf-8").splitlines()
        self.top: list[tuple[int, str]] = []
        self.local: list[tuple[int, str, str]] = []
        self.depth = 0

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        for target in _target(node, self.module, self.is_package):
            if self.depth:
                self.local.append((node.lineno, target, self.lines[node.end_lineno - 1]))
            else:
                self.top.append((node.lineno, target))

    visit_Import = visit_ImportFrom = _import


IMPORTS = {}
for _name, _path in sorted(MODULES.items()):
    IMPORTS[_name] = Imports(_name, _path)
    IMPORTS[_name].visit(ast.parse(_path.read_text(encoding="utf-8")))


def _loaded(target: str) -> list[str]:
    """Importing `a.b.c` runs `a.b`'s and `a.b.c`'s module code: every runtime package on
    the way counts as imported."""
    parts = target.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts) + 1)
            if ".".join(parts[:i]) in MODULES]


def test_every_runtime_module_is_in_a_layer():
    outside = sorted(name for name in MODULES
                     if layer_of(name) is None and name not in ("runtime", "runtime.app"))
    assert outside == [], f"put these in one of the layers {LAYERS}: {outside}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_layer_imports_a_higher_one(module):
    own = layer_of(module)
    if own is None:
        return
    imports = IMPORTS[module]
    wrong = [f"line {line}: {target} ({LAYERS[layer_of(target)]})"
             for line, target in imports.top + [(n, t) for n, t, _ in imports.local]
             if layer_of(target) is not None and layer_of(target) > own]
    assert wrong == [], f"{module} ({LAYERS[own]}) imports a higher layer: {wrong}"


def test_no_import_cycle_at_import_time():
    graph = {name: {loaded for _, target in imports.top for loaded in _loaded(target)
                    if loaded != name and not name.startswith(loaded + ".")}
             for name, imports in IMPORTS.items()}
    # A package's __init__ importing its own submodules is how a package re-exports.
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_project_imports_inside_functions_say_why():
    unexplained = [f"{module}:{line} imports {target}"
                   for module, imports in IMPORTS.items()
                   for line, target, text in imports.local if "#" not in text]
    assert unexplained == [], (
        "import at the top of the module; where that would make a cycle, fix the layering "
        f"(or say on the line why it must be local): {unexplained}")


def test_the_checker_sees_a_violation(tmp_path):
    """The checker itself: an upward import, a local import and a cycle are found."""
    source = ("from runtime.http.app import create_app\n"
              "def f():\n    from runtime.ops import cli\n")
    path = tmp_path / "probe.py"
    path.write_text(source)
    imports = Imports("runtime.core.probe", path)
    imports.visit(ast.parse(source))
    assert [target for _, target in imports.top] == ["runtime.http.app"]
    assert [target for _, target, _ in imports.local] == ["runtime.ops.cli"]
    assert layer_of("runtime.http.app") > layer_of("runtime.core.probe")
