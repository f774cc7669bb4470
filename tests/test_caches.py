"""The caches of the runtime (`runtime.core.caches`): a value is built once even when threads
ask for it together, a `TableMemo` never serves one object's value to another that happens to
get the same `id()`, `clear_all` empties every cache, a `limit` bounds a cache; and no module
of the runtime keeps a cache that caches.py does not declare."""

from __future__ import annotations

import ast
import gc
import threading
import time
import weakref
from pathlib import Path

import pytest

from runtime.core import caches

RUNTIME = Path(__file__).resolve().parent.parent / "runtime"


class Owner:
    """A small object, so that CPython hands a freed one's address to the next one made."""

    __slots__ = ("__weakref__",)


def test_a_memo_builds_once_when_threads_ask_together():
    memo: caches.Memo[object] = caches.Memo("test: concurrent")
    built: list[object] = []
    start = threading.Barrier(8)
    results: list[object] = []

    def build() -> object:
        time.sleep(0.05)  # long enough for every other thread to arrive while building
        value = object()
        built.append(value)
        return value

    def ask() -> None:
        start.wait()
        results.append(memo.get("key", build))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1
    assert len(results) == 8 and all(r is built[0] for r in results)


def test_a_table_memo_builds_once_per_object_when_threads_ask_together():
    memo: caches.TableMemo[object] = caches.TableMemo("test: concurrent tables")
    owner, calls = Owner(), []
    start = threading.Barrier(6)

    def build() -> object:
        calls.append(1)
        time.sleep(0.05)
        return object()

    def ask() -> None:
        start.wait()
        memo.get(owner, "stmt", build)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1


def test_a_table_memo_never_serves_a_value_built_for_another_object_at_a_reused_id():
    memo: caches.TableMemo[str] = caches.TableMemo("test: reused ids")
    first = Owner()
    alive = weakref.ref(first)
    assert memo.get(first, "stmt", lambda: "built for the first") == "built for the first"
    del first
    gc.collect()
    # The memo keeps its owner: while cached, no other object can be made at its address.
    assert alive() is not None
    # An entry under an id whose owner is another object (the address reused after the owner
    # went) is never served: the object asking gets a value built for it.
    second = Owner()
    memo._values[(id(second), "stmt")] = (alive(), "built for the first")
    assert memo.get(second, "stmt", lambda: "built for the second") == "built for the second"
    assert memo.get(second, "stmt", lambda: "built again") == "built for the second"


def test_a_table_memo_keeps_its_owners_addresses_its_own():
    memo: caches.TableMemo[str] = caches.TableMemo("test: owners kept")
    owners = [Owner() for _ in range(50)]
    for number, owner in enumerate(owners):
        memo.get(owner, "stmt", lambda n=number: f"value {n}")
    ids = {id(o) for o in owners}
    del owners
    gc.collect()
    fresh = [Owner() for _ in range(200)]
    assert not ids & {id(o) for o in fresh}
    assert {memo.get(o, "stmt", lambda: "fresh") for o in fresh} == {"fresh"}


def test_a_table_memo_tells_two_objects_apart_under_one_key():
    memo: caches.TableMemo[str] = caches.TableMemo("test: two owners")
    a, b = Owner(), Owner()
    assert memo.get(a, "k", lambda: "a") == "a"
    assert memo.get(b, "k", lambda: "b") == "b"
    assert memo.get(a, "k", lambda: "again") == "a"


@pytest.mark.parametrize("make", [caches.Memo, caches.TableMemo])
def test_a_limit_starts_the_cache_again_when_it_is_full(make):
    memo = make("test: limited", limit=3)
    owner = Owner()

    def get(key: int) -> int:
        if isinstance(memo, caches.TableMemo):
            return memo.get(owner, key, lambda: key)
        return memo.get(key, lambda: key)

    for key in range(3):
        get(key)
    assert len(memo) == 3
    get(3)
    assert len(memo) == 1
    assert get(3) == 3


def test_clear_all_empties_every_cache():
    memo: caches.Memo[int] = caches.Memo("test: cleared")
    tables: caches.TableMemo[int] = caches.TableMemo("test: cleared tables")
    owner, calls = Owner(), []
    memo.get("k", lambda: calls.append(1) or 1)
    tables.get(owner, "k", lambda: calls.append(1) or 2)
    caches.SCOPES.get("test: a model hash", lambda: 3)
    caches.clear_all()
    assert [len(cache) for cache in caches._ALL] == [0] * len(caches._ALL)
    memo.get("k", lambda: calls.append(1) or 1)
    tables.get(owner, "k", lambda: calls.append(1) or 2)
    assert len(calls) == 4  # built again after clearing


def test_every_declared_cache_is_registered_and_documented():
    doc = caches.__doc__ or ""
    declared = {name: value for name, value in vars(caches).items()
                if isinstance(value, caches.Memo | caches.TableMemo) and name.isupper()}
    assert declared and all(value in caches._ALL for value in declared.values())
    assert [name for name in declared if f"`{name}`" not in doc] == []


def _module_level_containers(path: Path) -> list[str]:
    found = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        empty = (isinstance(value, ast.Dict) and not value.keys) or (
            isinstance(value, ast.List | ast.Set) and not value.elts) or (
            isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
            and value.func.id in ("dict", "list", "set", "OrderedDict", "WeakKeyDictionary",
                                  "WeakValueDictionary"))
        if empty:
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            found.append(ast.unparse(target))
    return found


# Module-level containers that are not caches of a model: registries filled at import.
NOT_CACHES = {"runtime.core.caches._ALL", "runtime.ops.cli.COMMANDS",
              # one hash computed lazily, of no model; http/auth.py is being changed (left as is)
              "runtime.http.auth._dummy_hash",
              # the Prometheus metrics of the process, made once (prometheus_client refuses a
              # name twice), of no model
              "runtime.http.ops_routes._MADE"}


def test_no_module_keeps_a_cache_that_caches_py_does_not_declare():
    doc = caches.__doc__ or ""
    undeclared, unlisted = [], []
    for path in sorted(RUNTIME.rglob("*.py")):
        module = ".".join(path.relative_to(RUNTIME.parent).with_suffix("").parts)
        undeclared += [f"{module}.{name}" for name in _module_level_containers(path)
                       if f"{module}.{name}" not in NOT_CACHES]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(
                    "cache" in ast.unparse(d) for d in node.decorator_list):
                short = module.removeprefix("runtime.") + "." + node.name
                if f"`{short}`" not in doc:
                    unlisted.append(short)
    assert undeclared == [], f"declare these caches in runtime/core/caches.py: {undeclared}"
    assert unlisted == [], f"list these lru_caches in caches.py's docstring: {unlisted}"


def test_the_scan_finds_a_module_level_cache(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("_SEEN: dict[int, str] = {}\nNAMES = {'a': 1}\n_MORE = dict()\n")
    assert _module_level_containers(probe) == ["_SEEN", "_MORE"]
