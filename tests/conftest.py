"""Shared fixtures: one `database_url` over SQLite and PostgreSQL, and instance factories.

PostgreSQL comes from $CRMFORGE_TEST_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/test). Each test gets a fresh schema of its own — the
URL carries `options=-csearch_path=<schema>` — so tests run in parallel under pytest-xdist and
leave nothing behind. When the server is unreachable the PostgreSQL cases are skipped with the
reason shown.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from axe_support import check_watched
from support import FIXTURES, Clock, admin_actor, insert_team, insert_user, model_of, write_pack

from builder.model import AppModel
from runtime.core.db import make_engine, normalize_url
from runtime.core.instance import Actor, Instance
from runtime.process.setup import assemble

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
_postgres_problem: list[str] = []  # cached per worker: "" when reachable, else the reason


def postgres_url() -> str:
    return normalize_url(os.environ.get("CRMFORGE_TEST_DATABASE_URL") or DEFAULT_POSTGRES_URL)


def _postgres_unreachable() -> str:
    if not _postgres_problem:
        engine = sa.create_engine(postgres_url(), connect_args={"connect_timeout": 3})
        try:
            with engine.connect():
                pass
            _postgres_problem.append("")
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            _postgres_problem.append(
                f"PostgreSQL not reachable at {sa.make_url(postgres_url()).render_as_string()}"
                f" ({type(exc).__name__}: {first_line[:120]}); set CRMFORGE_TEST_DATABASE_URL")
        finally:
            engine.dispose()
    return _postgres_problem[0]


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextmanager
def provision_database(kind: str, directory: Path) -> Iterator[str]:
    """An empty database of `kind` ("sqlite" or "postgresql") for as long as the block runs:
    an SQLite file in `directory`, or a fresh PostgreSQL schema (skips when unreachable)."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'crm.db'}"
        return
    problem = _postgres_unreachable()
    if problem:
        pytest.skip(problem)
    schema = "t_" + uuid.uuid4().hex[:16]
    admin = sa.create_engine(postgres_url())
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(postgres_url()).update_query_dict(
        {"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        drop_schema(admin, schema)
        admin.dispose()


DROP_BATCH = 50  # tables dropped per transaction


def drop_schema(engine: sa.Engine, schema: str, batch: int = DROP_BATCH) -> None:
    """Drop `schema` and everything in it, `batch` tables per transaction.

    One `DROP SCHEMA ... CASCADE` of a whole pack (a few hundred tables, each with its indexes
    and sequences) takes a lock per object in one transaction, which can exhaust the server's
    shared lock table ("out of shared memory; increase max_locks_per_transaction") when other
    clients hold locks too. Small transactions never need many at once.
    """
    with engine.connect() as conn:
        tables = conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s"),
                              {"s": schema}).scalars().all()
    for start in range(0, len(tables), batch):
        names = ", ".join(f'"{schema}"."{_quoted(t)}"' for t in tables[start:start + batch])
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {names} CASCADE"))
    with engine.begin() as conn:  # what is left: sequences, types, views
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{_quoted(schema)}" CASCADE'))


def _quoted(name: str) -> str:
    return name.replace('"', '""')


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that drives the browser is a `browser` test (`make test-fast` leaves them out):
    it uses the `browser` fixture or lives in a *_browser.py module."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()) or item.path.stem.endswith("_browser"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: an SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    with provision_database(request.param, tmp_path) as url:
        yield url


def build_instance(model: AppModel | str | Path | list, url: str, **kwargs: Any
                   ) -> Instance:
    """An Instance of `model` (or of the packs at the given paths) on `url`, with every table
    created and an `admin` user. The caller disposes of `inst.engine`."""
    if not isinstance(model, AppModel):
        model = model_of(model if isinstance(model, list | tuple) else [model])
    engine = make_engine(url)
    inst = assemble(model, engine, **kwargs)
    inst.schema.create_all(engine)
    insert_user(inst, "admin", is_admin=True, full_name="Administrator")
    return inst


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_instance(database_url: str, clock: Clock
                  ) -> Iterator[Callable[..., Instance]]:
    """`make_instance(model_or_pack_path, ...)`: an Instance on `database_url` with every table
    created and an `admin` user. A path (or list of paths) is built with build_model; the
    clock is the test's `clock` fixture unless `clock=` is given."""
    engines: list[sa.Engine] = []

    def factory(model: AppModel | str | Path | list, **kwargs: Any) -> Instance:
        kwargs.setdefault("clock", clock)
        inst = build_instance(model, database_url, **kwargs)
        engines.append(inst.engine)
        return inst

    yield factory
    for engine in engines:
        engine.dispose()


@pytest.fixture
def pack(tmp_path: Path) -> Callable[..., Path]:
    """`pack({"entities/x.yaml": "...", "roles.yaml": "..."})`: a pack dir in tmp_path."""
    def factory(files: dict[str, str], **kwargs: Any) -> Path:
        return write_pack(tmp_path / "packs", files, **kwargs)
    return factory


@pytest.fixture
def spec_instance(make_instance: Callable[..., Instance]) -> Instance:
    """The SPEC fixture pack (offer, property, contact, ...) on top of the core stand-in."""
    return make_instance([FIXTURES / "core", FIXTURES / "spec"])


@pytest.fixture
def make_user() -> Callable[..., Actor]:
    """`make_user(inst, "anna", roles=["agent"], team=None, ...)` -> the Actor of a new user."""
    return insert_user


@pytest.fixture
def make_team() -> Callable[[Instance, str], int]:
    return insert_team


@pytest.fixture
def admin() -> Callable[[Instance], Actor]:
    """`admin(inst)`: the Actor of the admin user every instance has."""
    return admin_actor



@pytest.fixture(scope="module")
def browser(server: dict[str, Any]) -> Iterator[Any]:
    """Debian's Chromium for a browser test module; the module defines `server`
    (tests/browser_support.py)."""
    from browser_support import chromium  # Playwright is imported only by browser modules

    with chromium() as launched:
        yield launched


@pytest.fixture(autouse=True)
def accessible_pages() -> Iterator[None]:
    """Every page a test watched (tests/axe_support.py) passes axe, WCAG 2 A/AA."""
    yield
    check_watched()
