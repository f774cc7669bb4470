"""Every cache of the runtime, declared in one place.

What is cached is built from a model version (keyed by the model's hash) or from one object of
it (a table, an entity), never from a request, so a cache grows only with the model versions a
process has served. Each cache is a `Memo` (keyed by value) or a `TableMemo` (keyed by an
object's identity, holding the object so that a new one at a reused `id()` never gets
another's value). A cache whose keys also come from what users choose (a sort, a date) has a
`limit`: past it, the cache starts again empty. `clear_all()` empties them all.

| cache | key | holds |
|---|---|---|
| `SCHEMAS` | model hash | the `Schema` (SQLAlchemy tables) of a model |
| `SCOPES` | model hash | the expression scope of a model (`core.context`) |
| `OPENAPI` | model hash | the OpenAPI document (`http.api.openapi`) |
| `ROLLUPS` | model hash | the rollups over each child entity (`write.derived`) |
| `HOOK_ORDER` | model hash, entity, transitions | whether a batch's moves wait for every |
| | | creation hook (`process.hook_effects`) |
| `ENTITY_PATHS` | model hash, entity | the field paths its expressions name |
| | | (`process.hook_effects`) |
| `ROLLUP_GROUPS` | model hash, child | the rollup fields of a child, by parent and link |
| `ROLLUP_ALIASES` | child table | the alias of a child table for rollup subqueries |
| `ROLLUP_UPDATES` | parent table, child, link, date | the UPDATE of a parent's rollups (4096) |
| `STATEMENTS` | table, purpose | by id (`core.schema`), insert, update (`write.records`), |
| | | exists, duplicates (`write.checks`), logins, tokens, sessions (`http.auth`), |
| | | a record's workflow state (`process.imports`) |
| `PAGE_STATEMENTS` | table, sort, direction, NULLs, collation | a list page's SELECTs |
| | | (`read.queries`; 4096) |
| `JSON_PLANS` | entity, hidden fields | the fields a record's JSON shows (`core.values`; 4096) |
| `ENTITY_PLANS` | entity, purpose | what each record's write asks of its entity: the fields |
| | | checked and the formulas' passes (`core.values`), those an update compares, why |
| | | fields are read-only (`write.records`) |
| `TRIGGERS` | model hash, entity, kind, transition | the automations a write sets off |
| | | (`process.automations`) |

Pure parse caches of a string, with nothing of a model in them, stay `functools.lru_cache`s
(bounded, and right for any model):

| function | parses |
|---|---|
| `core.values._bound_slot` | a field's `min`/`max` slot |
| `read.people._path` | a user path such as `owner.manager` |
| `process.automations._cron` | a cron schedule |
| `core.phones.e164` | a phone number, in the instance's default region, to E.164 |
| `read.titles._locale` | a language code, to its Babel `Locale` |
| `http.ops_routes.queue_storage` | the queue URL, to the storage `/readyz` and `/metrics` ask |
| `read.titles._known_zones` | the system's IANA time zone names (read once) |
| `read.titles.zone_names` | the same names, sorted for the time zone pickers |
| `process.documents.sandbox` | a document's bases, to a sandbox that loads only them |
| `process.studio.origins._linked` | a model's hash and files, to the linker with positions |
| `ops.demo_languages.load` | a language code, to its demo names (`ops/demo_names/`) |
| `core.catalogs._say` | a language code, to `say` over its compiled message catalog |
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from threading import RLock
from typing import Any, Generic, TypeVar

V = TypeVar("V")

_ALL: list[Memo[Any] | TableMemo[Any]] = []


class Memo(Generic[V]):
    """Values built once per key; building runs under a lock, so two threads build once (a
    reentrant one: a build may read the same cache for another key)."""

    def __init__(self, name: str, limit: int | None = None):
        self.name = name
        self.limit = limit
        self._values: dict[Hashable, V] = {}
        self._lock = RLock()
        _ALL.append(self)

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        try:
            return self._values[key]
        except KeyError:
            pass
        with self._lock:
            if key not in self._values:
                value = build()
                if self.limit is not None and len(self._values) >= self.limit:
                    self._values.clear()
                self._values[key] = value
            return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


class TableMemo(Generic[V]):
    """Values built once per (object, key), keyed by the object's identity: a table, or an
    entity of a model. The object is kept with its value, so it stays alive while cached and
    a new object at a reused `id()` builds its own."""

    def __init__(self, name: str, limit: int | None = None):
        self.name = name
        self.limit = limit
        self._values: dict[tuple[int, Hashable], tuple[Any, V]] = {}
        self._lock = RLock()
        _ALL.append(self)

    def get(self, owner: Any, key: Hashable, build: Callable[[], V]) -> V:
        found = self._values.get((id(owner), key))
        if found is not None and found[0] is owner:
            return found[1]
        with self._lock:
            found = self._values.get((id(owner), key))
            if found is None or found[0] is not owner:
                value = build()
                if self.limit is not None and len(self._values) >= self.limit:
                    self._values.clear()
                found = self._values[(id(owner), key)] = (owner, value)
            return found[1]

    def __len__(self) -> int:
        return len(self._values)

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
HOOK_ORDER: Memo[bool] = Memo("hook_order", limit=4096)
ENTITY_PATHS: Memo[Any] = Memo("entity_paths", limit=4096)
ROLLUP_GROUPS: Memo[Any] = Memo("rollup_groups")
ROLLUP_ALIASES: TableMemo[Any] = TableMemo("rollup_aliases")
ROLLUP_UPDATES: TableMemo[Any] = TableMemo("rollup_updates", limit=4096)
STATEMENTS: TableMemo[Any] = TableMemo("statements")
ENTITY_PLANS: TableMemo[Any] = TableMemo("entity_plans")
TRIGGERS: Memo[Any] = Memo("triggers", limit=4096)
PAGE_STATEMENTS: TableMemo[Any] = TableMemo("page_statements", limit=4096)
JSON_PLANS: TableMemo[Any] = TableMemo("json_plans", limit=4096)
