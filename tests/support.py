"""Helpers shared by the database tests: packs written into tmp_path, users, a settable clock.

`conftest.py` turns these into fixtures; tests may also import them directly
(`from support import write_pack`).
"""

from __future__ import annotations

import functools
import textwrap
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from builder.linker import build_model
from builder.model import AppModel
from builder.packs import custom_dir
from runtime.core.instance import Actor, Instance

FIXTURES = Path(__file__).parent / "fixtures"
START = datetime(2026, 3, 2, 9, 0, 0)  # a Monday


class Clock:
    """A clock the test moves by hand: `clock.advance(hours=2)`; `clock()` is the time."""

    def __init__(self, start: datetime = START):
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


def write_pack(root: Path, files: dict[str, str], *, name: str = "test",
               requires: tuple[str, ...] = ()) -> Path:
    """A pack directory under `root`: `files` maps relative paths to YAML text (dedented).

    `pack.yaml` is written for you unless `files` has one.
    """
    pack = root / name
    pack.mkdir(parents=True, exist_ok=True)
    if "pack.yaml" not in files:
        needs = f"requires: [{', '.join(requires)}]\n" if requires else ""
        (pack / "pack.yaml").write_text(
            f"pack: {name}\nformat: 1\nversion: 1.0.0\nlabel: Test\n{needs}")
    for relative, text in files.items():
        path = pack / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return pack


def insert_user(inst: Instance, username: str, *, roles: tuple[str, ...] | list[str] = (),
                team: int | None = None, manager: int | None = None, is_admin: bool = False,
                full_name: str | None = None, **fields: Any) -> Actor:
    """A user row (and its roles) written directly, returned as the Actor that acts as it."""
    users = inst.schema.table("user")
    now = inst.now()
    with inst.engine.begin() as conn:
        user_id = conn.execute(users.insert().values(
            username=username, full_name=full_name or username.title(), team=team,
            manager=manager, is_admin=is_admin, active=True, created_at=now, updated_at=now,
            version=1, **fields).returning(users.c.id)).scalar_one()
        roles_table = inst.schema.system("user_role")
        for role in roles:
            conn.execute(roles_table.insert().values(user_id=user_id, role=role))
    return Actor(user_id, username, frozenset(roles), team, is_admin,
                 fields=tuple(sorted(fields.items())))


def insert_team(inst: Instance, name: str) -> int:
    teams = inst.schema.table("team")
    now = inst.now()
    with inst.engine.begin() as conn:
        return conn.execute(teams.insert().values(
            name=name, created_at=now, updated_at=now, version=1).returning(
            teams.c.id)).scalar_one()


def admin_actor(inst: Instance) -> Actor:
    """The admin user `make_instance` created."""
    users = inst.schema.table("user")
    with inst.engine.connect() as conn:
        user_id = conn.execute(sa.select(users.c.id).where(
            users.c.username == "admin")).scalar_one()
    return Actor(user_id, "admin", frozenset(), None, True)


def run_together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(0..count-1) in threads released at the same moment; results or exceptions."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def runner(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
            results[index] = exc

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


READ_ONLY_PACKS = (Path(__file__).resolve().parent.parent / "verticals", FIXTURES.resolve())


def model_of(paths: list | tuple) -> AppModel:
    """The model of the packs at `paths`. The shipped packs and the fixtures are never written
    by a test and a model is immutable, so theirs is built once per worker."""
    resolved = tuple(Path(p).resolve() for p in paths)
    if all(any(p.is_relative_to(base) for base in READ_ONLY_PACKS) for p in resolved):
        return _read_only_model(resolved, str(custom_dir()))
    return build_model(list(paths))


@functools.cache
def _read_only_model(paths: tuple[Path, ...], custom: str) -> AppModel:
    """`custom`, the customisation folder of the moment, is part of the key: packs are read
    with it."""
    return build_model(list(paths))
