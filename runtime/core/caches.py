"""Every cache of the runtime, declared in one place.

What is cached is built from a model version (keyed by the model's hash) or from one table
object of it, never from a request, so a cache grows only with the model versions a process
has served. Each cache is a `Memo` (keyed by value) or a `TableMemo` (keyed by a table's
identity, holding the table so that a new table at a reused `id()` never gets another's value).
`clear_all()` empties them all.

| cache | key | holds |
|---|---|---|
| `SCHEMAS` | model hash | the `Schema` (SQLAlchemy tables) of a model |
| `SCOPES` | model hash | the expression scope of a model (`core.context`) |
| `OPENAPI` | model hash | the OpenAPI document (`http.api.openapi`) |
| `ROLLUPS` | model hash | the rollups over each parent entity (`write.derived`) |
| `STATEMENTS` | table, purpose | compiled statements (by id, insert, update, exists, ...) |
| `JSON_PLANS` | entity, hidden fields | which fields a record's JSON shows (`core.values`) |
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from threading import Lock
from typing import Any, Generic, TypeVar

V = TypeVar("V")

_ALL: list[Memo[Any] | TableMemo[Any]] = []


class Memo(Generic[V]):
    """Values built once per key; building runs under a lock, so two threads build once."""

    def __init__(self, name: str):
        self.name = name
        self._values: dict[Hashable, V] = {}
        self._lock = Lock()
        _ALL.append(self)

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        try:
            return self._values[key]
        except KeyError:
            pass
        with self._lock:
            if key not in self._values:
                self._values[key] = build()
            return self._values[key]

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


class TableMemo(Generic[V]):
    """Values built once per (object, key), keyed by the object's identity."""

    def __init__(self, name: str):
        self.name = name
        self._values: dict[tuple[int, Hashable], tuple[Any, V]] = {}
        self._lock = Lock()
        _ALL.append(self)

    def get(self, owner: Any, key: Hashable, build: Callable[[], V]) -> V:
        found = self._values.get((id(owner), key))
        if found is not None and found[0] is owner:
            return found[1]
        with self._lock:
            found = self._values.get((id(owner), key))
            if found is None or found[0] is not owner:
                found = self._values[(id(owner), key)] = (owner, build())
            return found[1]

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


def clear_all() -> None:
    """Empty every cache (a test that changes the model in place, or a reload)."""
    for cache in _ALL:
        cache.clear()


SCHEMAS: Memo[Any] = Memo("schemas")
SCOPES: Memo[Any] = Memo("scopes")
OPENAPI: Memo[Any] = Memo("openapi")
ROLLUPS: Memo[Any] = Memo("rollups")
STATEMENTS: TableMemo[Any] = TableMemo("statements")
JSON_PLANS: TableMemo[Any] = TableMemo("json_plans")
