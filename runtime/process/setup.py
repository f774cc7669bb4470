"""Opening an installed instance: which packs the database has installed (`crm_installed`),
where they are on disk, the instance's own customisations (`CRMFORGE_CUSTOM_DIR`), the model
they make together, and the `Instance` that serves it.

Every command that works on an instance (`migrate`, `user create`, `import`, `run`, `worker`)
starts here; `install` is the one that fills `crm_installed` in the first place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from builder.diagnostics import Diagnostics
from builder.linker import check_paths
from builder.model import AppModel
from builder.packs import custom_dir, discover, is_pack_dir, search_dirs
from runtime.core import sessions
from runtime.core.db import database_url, make_engine
from runtime.core.instance import Instance
from runtime.process import webhooks
from runtime.process.automations import install_hooks


class SetupError(Exception):
    """A problem with the instance that a person fixes; the message says how."""


@dataclass(frozen=True)
class InstalledPack:
    name: str
    version: str
    path: str | None
    demo: bool
    installed_at: datetime | None = None


def installed_packs(engine: Engine) -> dict[str, InstalledPack]:
    """The packs recorded in `crm_installed`, in install order; {} when there are none (or
    the database has no CRMForge tables yet)."""
    table = sa.table("crm_installed", sa.column("pack"), sa.column("version"),
                     sa.column("path"), sa.column("demo"), sa.column("installed_at"))
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("crm_installed"):
                return {}
            rows = conn.execute(sa.select(table).order_by(table.c.installed_at,
                                                          table.c.pack)).all()
    except sa.exc.OperationalError as exc:
        raise SetupError(f"cannot open the database {_safe(engine)}: "
                         f"{_first_line(exc.orig or exc)}") from None
    return {r.pack: InstalledPack(r.pack, r.version, r.path, bool(r.demo), r.installed_at)
            for r in rows}


def custom_paths() -> list[Path]:
    """The instance's own definitions, when `CRMFORGE_CUSTOM_DIR` holds any: a pack of its
    own, or extensions and entities kept without a pack.yaml (the implicit pack `custom`)."""
    base = custom_dir()
    if is_pack_dir(base) or (base / "entities").is_dir():
        return [base]
    return []


def locate(name: str, recorded: str | None = None,
           known: dict[str, Path] | None = None) -> Path | None:
    """Where pack `name` is on disk: where it was installed from when that still holds the
    pack, else the pack of that name in verticals/ or the custom dir."""
    if recorded:
        path = Path(recorded)
        if is_pack_dir(path) or (name == "custom" and path.is_dir()):
            return path
    known = discover(search_dirs()) if known is None else known
    return known.get(name)


def pack_paths(installed: Iterable[InstalledPack]) -> list[Path]:
    """The directories of the installed packs (SetupError when one cannot be found)."""
    known = discover(search_dirs())
    paths: list[Path] = []
    missing: list[str] = []
    for pack in installed:
        path = locate(pack.name, pack.path, known)
        if path is None:
            missing.append(pack.name)
        elif path not in paths:
            paths.append(path)
    if missing:
        raise SetupError(
            f"installed pack{'s' if len(missing) > 1 else ''} {', '.join(missing)} cannot be "
            "found on disk (looked where it was installed from, in verticals/ and in "
            f"{custom_dir()}); put it back, or set CRMFORGE_CUSTOM_DIR")
    return paths


def build(paths: list[Path], *, demo: bool = False) -> AppModel:
    """The model of `paths` (and the custom dir); SetupError listing every problem.

    Demo data files are read (and checked) only with `demo`."""
    wanted = list(dict.fromkeys([*paths, *(p for p in custom_paths() if p not in paths)]))
    model, diags = check_paths(wanted, demo=demo)
    if model is None:
        raise SetupError(format_problems(diags))
    return model


def format_problems(diags: Diagnostics) -> str:
    lines = [d.format() for d in diags.errors]
    count = len(lines)
    return "\n".join([f"the definitions have {count} error{'s' if count != 1 else ''} "
                      "(fix them, then run the command again):", *lines])


def last_applied(engine: Engine) -> str | None:
    """The hash of the model the database was last migrated to."""
    table = sa.table("crm_model", sa.column("id"), sa.column("hash"))
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("crm_model"):
            return None
        return conn.execute(sa.select(table.c.hash).order_by(table.c.id.desc())
                            .limit(1)).scalar()


def open_instance(url: str | None = None, *, check_migrated: bool = True,
                  clock: Callable[[], datetime] | None = None,
                  engine: Engine | None = None) -> Instance:
    """The instance at `url` (default: $CRMFORGE_DATABASE_URL): the model of its installed
    packs and custom definitions, on its database.

    Raises SetupError with what to do when nothing is installed, a pack is missing, the
    definitions have errors, or (with `check_migrated`) they changed since the last
    `crmforge migrate`.
    """
    engine = engine or make_engine(url)
    installed = installed_packs(engine)
    if not installed:
        raise SetupError(f"nothing is installed in {_safe(engine)}: run crmforge install core "
                         "(or crmforge install PACK for another pack)")
    model = build(pack_paths(installed.values()))
    if check_migrated and last_applied(engine) != model.hash:
        raise SetupError("the definitions changed since the database was last migrated: run "
                         "crmforge migrate --dry-run to see the changes, then crmforge migrate")
    kwargs = {"clock": clock} if clock is not None else {}
    return assemble(model, engine, **kwargs)


def assemble(model: AppModel, engine: Engine, **kwargs: Any) -> Instance:
    """The instance serving `model` on `engine`, with its hooks wired: the model's event
    automations run after every write (`runtime.core.hooks` lists the hooks), a user
    made inactive loses their web sessions (`runtime.core.sessions`), and the events the
    webhooks name are queued for the worker (`runtime.process.webhooks`)."""
    inst = Instance.create(model, engine, **kwargs)
    install_hooks(inst)
    inst.hooks.add_after_write(sessions.after_write)
    webhooks.install_hooks(inst)
    return inst


def _safe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["InstalledPack", "SetupError", "build", "custom_paths", "database_url",
           "installed_packs", "last_applied", "locate", "open_instance", "pack_paths"]
