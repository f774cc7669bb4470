"""Workspaces: several instances hosted by one server (docs/deploy.md#workspaces), and the
`crmforge workspace create|list|delete` commands (docs/cli.md).

The registry is a folder, `CRMFORGE_WORKSPACES_DIR` (default `instance/workspaces`), with one
folder per workspace, named after it. The folder holds `workspace.json` (its settings: label,
packs, database URL when it is not the default, host names) and everything else the workspace
keeps on disk: `crmforge.db` (its SQLite database, unless the settings name another),
`custom/` (its own definitions), `uploads/` (attachments) and `queue.db` (its worker's queue).
Deleting a workspace deletes its folder.

`run`, `serve` and `worker` take `--workspaces` (every workspace) or `--workspace NAME` (one),
and `demo --workspaces` makes one workspace per vertical; all of them are added here
(`add_workspace_commands`). Every other command works on one workspace with the global option,
`crmforge --workspace NAME COMMAND ...` (`chosen_workspace`).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial, wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from builder.diagnostics import did_you_mean
from builder.packs import SHIPPED_DIR, custom_dir_as, discover
from runtime.core.db import normalize_url
from runtime.core.instance import Instance
from runtime.ops import serve as serving
from runtime.ops.commands import (
    UserError,
    cmd_demo,
    demo_logins,
    guarded,
    install_packs,
    print_logins,
)
from runtime.ops.worker import Ticker, Worker, cmd_worker, make_huey, queue_url
from runtime.process.setup import SetupError, assemble, open_instance

if TYPE_CHECKING:
    from huey.consumer import Consumer

    from runtime.http.workspaces import Dispatcher, Site

DIR_ENV = "CRMFORGE_WORKSPACES_DIR"
DOMAIN_ENV = "CRMFORGE_WORKSPACE_DOMAIN"
SETTINGS = "workspace.json"
# a DNS label, so that `<name>.example.com` can name it too
NAME = re.compile(r"[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?")
log = logging.getLogger("crmforge.workspaces")


class WorkspaceError(Exception):
    """A workspace that cannot be made, found or used; the message says what to do."""


@dataclass(frozen=True)
class Workspace:
    name: str
    folder: Path
    label: str
    packs: tuple[str, ...]
    database: str | None = None  # None: the SQLite file in the folder
    hosts: tuple[str, ...] = ()
    created_at: str = ""

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.folder / 'crmforge.db'}"

    @property
    def custom_dir(self) -> Path:
        return self.folder / "custom"

    def site(self, secret_key: str) -> Site:
        """What the web dispatcher serves of this workspace: its own database, folder,
        session cookie and a signing key of its own, derived from the server's."""
        from runtime.http.workspaces import Site  # the web layer (Flask): only servers ask

        config = {"DATABASE_URL": self.database_url, "INSTANCE_DIR": str(self.folder),
                  "SECRET_KEY": derived_key(secret_key, self.name),
                  "SESSION_COOKIE_NAME": f"crmforge_session_{self.name}",
                  "READ_DATABASE_URL": None}  # a replica serves the main instance only
        return Site(self.name, self.label, config, self.custom_dir, self.hosts)


def derived_key(secret_key: str, name: str) -> str:
    """The key that signs one workspace's cookies: a cookie of another never verifies here."""
    return hmac.new(secret_key.encode(), f"crmforge workspace {name}".encode(),
                    hashlib.sha256).hexdigest()


# -- the registry -----------------------------------------------------------------------------

def workspaces_dir() -> Path:
    return Path(os.environ.get(DIR_ENV) or "instance/workspaces").absolute()


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise WorkspaceError(
            f"'{name}' cannot name a workspace: use 1 to 40 lower-case letters, digits and "
            "hyphens, starting with a letter and not ending with a hyphen (it becomes part "
            "of the address: /w/NAME/ or NAME.example.com)")
    return name


def read(folder: Path) -> Workspace:
    """The workspace whose settings are in `folder`."""
    try:
        data = json.loads((folder / SETTINGS).read_text(encoding="utf-8"))
        return Workspace(folder.name, folder, str(data["label"]),
                         tuple(data["packs"]), data.get("database_url"),
                         tuple(data.get("hosts", ())), str(data.get("created_at", "")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WorkspaceError(f"the settings of workspace {folder.name} cannot be read "
                             f"({folder / SETTINGS}: {exc})") from None


def save(ws: Workspace) -> None:
    """Write the settings (owner-readable only: a database URL may hold a password), whole
    or not at all: a server reading them meanwhile sees the old file or the new one."""
    data = {"label": ws.label, "packs": list(ws.packs), "created_at": ws.created_at,
            **({"database_url": ws.database} if ws.database else {}),
            **({"hosts": list(ws.hosts)} if ws.hosts else {})}
    partial_file = ws.folder / f".{SETTINGS}.new"
    fd = os.open(partial_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(partial_file, ws.folder / SETTINGS)


def all_workspaces(root: Path | None = None) -> list[Workspace]:
    """Every workspace in the registry, by name; one whose settings are broken is logged and
    left out."""
    root = root or workspaces_dir()
    found = []
    for settings in sorted(root.glob(f"*/{SETTINGS}")):
        try:
            found.append(read(settings.parent))
        except WorkspaceError as exc:
            log.error("%s", exc)
    return found


def load(name: str, root: Path | None = None) -> Workspace:
    root = root or workspaces_dir()
    if NAME.fullmatch(name) and (root / name / SETTINGS).is_file():
        return read(root / name)
    names = [ws.name for ws in all_workspaces(root)]
    hint = did_you_mean(name, names)
    raise WorkspaceError(f"there is no workspace '{name}'" + (f" ({hint})" if hint else "")
                         + (f"; the workspaces are: {', '.join(names)}" if names else
                            f"; {root} holds none: crmforge workspace create NAME"))


def chosen(args: argparse.Namespace) -> list[Workspace]:
    """The workspace `--workspace` names, else every one (WorkspaceError when none)."""
    if getattr(args, "workspace", None):
        return [load(args.workspace)]
    found = all_workspaces()
    if not found:
        raise WorkspaceError(f"{workspaces_dir()} holds no workspace: create one with "
                             "crmforge workspace create NAME --packs core (or set "
                             f"{DIR_ENV})")
    return found


def opened(ws: Workspace) -> Instance:
    """The workspace's instance, its model read with its own custom dir."""
    with custom_dir_as(ws.custom_dir):
        return open_instance(ws.database_url)


@contextmanager
def chosen_workspace(args: argparse.Namespace) -> Iterator[None]:
    """`crmforge --workspace NAME COMMAND`: the command runs on that workspace's database,
    reads its custom dir, and `backup` and `restore` take its folder for the instance's."""
    name = getattr(args, "workspace", None)
    if not name:
        yield
        return
    ws = load(name)
    args.database_url = ws.database_url
    if getattr(args, "instance_dir", None) == Path("instance"):  # backup, restore: its files
        args.instance_dir = ws.folder
    with custom_dir_as(ws.custom_dir):
        yield


class Registry:
    """The registry as the web dispatcher reads it, on every request: read again only when a
    settings file was added, removed or rewritten (one `stat` each, no parsing)."""

    def __init__(self, root: Path, secret_key: str, only: Collection[str] | None = None):
        self.root = root
        self.secret_key = secret_key
        self.only = set(only) if only else None
        self._seen: tuple[tuple[tuple[str, int], ...], dict[str, Site]] = ((), {})

    def sites(self) -> dict[str, Site]:
        stamp = tuple((p.parent.name, p.stat().st_mtime_ns)
                      for p in sorted(self.root.glob(f"*/{SETTINGS}")))
        seen = self._seen
        if stamp != seen[0]:
            found = {ws.name: ws.site(self.secret_key) for ws in all_workspaces(self.root)
                     if self.only is None or ws.name in self.only}
            seen = self._seen = (stamp, found)
        return seen[1]

    def find(self, name: str) -> Site | None:
        return self.sites().get(name)

    def listing(self) -> list[Site]:
        return list(self.sites().values())


def dispatcher(only: Collection[str] | None = None) -> Dispatcher:
    """The WSGI app serving the registry's workspaces (`only` those, when given)."""
    from runtime.http.app import load_or_create_secret_key  # Flask (0.5 s): servers only
    from runtime.http.workspaces import Dispatcher  # the web layer: servers only

    root = workspaces_dir()
    key = os.environ.get("CRMFORGE_SECRET_KEY") or load_or_create_secret_key(root)
    registry = Registry(root, key, only)
    return Dispatcher(registry.find, registry.listing, domain=os.environ.get(DOMAIN_ENV))


# -- crmforge workspace create | list | delete ------------------------------------------------

def create(name: str, packs: list[str], *, database_url: str | None = None,
           label: str | None = None, hosts: tuple[str, ...] = (), demo: bool = False,
           root: Path | None = None, language: str = "en") -> tuple[Workspace, Any, sa.Engine]:
    """Make workspace `name` and install `packs` in its database (demo data with `demo`);
    the workspace, its model and its engine. Nothing is left behind when the install fails."""
    root = root or workspaces_dir()
    folder = root / check_name(name)
    if (folder / SETTINGS).exists():
        raise WorkspaceError(f"workspace '{name}' exists already (crmforge workspace list)")
    folder.mkdir(parents=True, exist_ok=True)
    ws = Workspace(name, folder, label or name, tuple(packs),
                   normalize_url(database_url) if database_url else None, hosts,
                   datetime.now(UTC).isoformat(timespec="seconds"))
    try:
        code, model, engine = install(ws, demo=demo, language=language)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if code != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise WorkspaceError(f"workspace '{name}' was not created")
    if label is None:  # named after its last pack: "Hotel" for core,hotel
        ws = replace(ws, label=model.packs[list(model.packs)[-1]].label.get())
    save(ws)
    return ws, model, engine


def install(ws: Workspace, *, demo: bool = False, language: str = "en"
            ) -> tuple[int, Any, sa.Engine]:
    """`crmforge install PACKS [--demo --language L]` in the workspace (idempotent)."""
    args = argparse.Namespace(packs=list(ws.packs), demo=demo, database_url=ws.database_url,
                              language=language)
    with custom_dir_as(ws.custom_dir):
        return install_packs(args)


def delete(name: str, root: Path | None = None) -> Workspace:
    ws = load(name, root)
    shutil.rmtree(ws.folder)
    return ws


@guarded
def cmd_workspace(args: argparse.Namespace) -> int:
    try:
        return WORKSPACE_ACTIONS[args.action](args)
    except WorkspaceError as exc:
        raise UserError(str(exc)) from None


def _create(args: argparse.Namespace) -> int:
    packs = [p.strip() for p in args.packs.split(",") if p.strip()]
    if not packs:
        raise WorkspaceError("give the packs to install: --packs core,hotel")
    hosts = tuple(h.strip().lower() for h in args.host)
    ws, _, engine = create(args.name, packs, database_url=args.new_database_url,
                           label=args.label, hosts=hosts, demo=args.demo)
    engine.dispose()
    print(f"created workspace {ws.name} ({ws.label}): /w/{ws.name}/ "
          + (f"and {', '.join(ws.hosts)} " if ws.hosts else "")
          + f"on {_safe_url(ws.database_url)}")
    print(f"next: crmforge --workspace {ws.name} user create USERNAME --admin")
    return 0


def _list(args: argparse.Namespace) -> int:
    found = all_workspaces()
    if not found:
        print(f"no workspaces in {workspaces_dir()} (crmforge workspace create NAME)")
        return 0
    rows = [(ws.name, ws.label, ",".join(ws.packs), _safe_url(ws.database_url))
            for ws in found]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(row[i].ljust(widths[i]) for i in range(3)) + "  " + row[3])
    return 0


def _delete(args: argparse.Namespace) -> int:
    ws = load(args.name)
    if not args.yes:
        if not sys.stdin.isatty():
            raise WorkspaceError(f"deleting workspace {ws.name} deletes {ws.folder} (its "
                                 "database file, attachments and custom definitions): add "
                                 "--yes to do it")
        answer = input(f"delete workspace {ws.name} and everything in {ws.folder}? "
                       "Type its name to confirm: ")
        if answer.strip() != ws.name:
            raise WorkspaceError("nothing was deleted")
    delete(ws.name)
    print(f"deleted workspace {ws.name} ({ws.folder})")
    if ws.database:
        print(f"note: its database {_safe_url(ws.database)} is kept: drop it yourself when it "
              "is no longer needed")
    return 0


WORKSPACE_ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "create": _create, "list": _list, "delete": _delete}


def _safe_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


# -- run, serve and worker for workspaces -----------------------------------------------------

def run_workspaces(args: argparse.Namespace) -> int:
    """`crmforge run --workspaces`: the development server for the workspaces."""
    from werkzeug.serving import run_simple  # a server's import, not every command's

    app = dispatcher(_only(args))
    print(f"CRMForge workspaces on http://{args.host}:{args.port}/ (development server; "
          "production: crmforge serve --workspaces). Ctrl-C stops it.", file=sys.stderr)
    run_simple(args.host, args.port, app, threaded=True)
    return 0


def serve_workspaces(args: argparse.Namespace) -> int:
    """`crmforge serve --workspaces`: the production server for the workspaces, after the
    checks `crmforge serve` makes, for each workspace."""
    found = chosen(args)
    sqlite = any(sa.make_url(ws.database_url).get_backend_name() == "sqlite" for ws in found)
    workers = args.workers or (1 if sqlite else 2)
    try:
        serving.check_secret_key(os.environ.get("CRMFORGE_SECRET_KEY"),
                                 args.allow_generated_key)
        for ws in found:
            serving.check_workers(ws.database_url, workers, args.allow_sqlite_workers)
            opened(ws).engine.dispose()  # a clear message now, not one per worker
    except (serving.ServeRefused, SetupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    only = _only(args)
    return serving.serve(args, workers, lambda: dispatcher(only))


def _only(args: argparse.Namespace) -> list[str] | None:
    return [args.workspace] if getattr(args, "workspace", None) else None


def workers_for(found: list[Workspace], queue: str | None) -> dict[str, Worker]:
    """A worker per workspace, each on a queue of its own: `<queue>` named
    `crmforge.<workspace>`, or the SQLite file in the workspace's folder."""
    return {ws.name: Worker(make_huey(queue_url(queue, ws.folder), name=f"crmforge.{ws.name}"),
                            partial(opened, ws))
            for ws in found}


def worker_workspaces(args: argparse.Namespace) -> int:
    """`crmforge worker --workspaces`: the schedules and jobs of every workspace."""
    workers = workers_for(chosen(args), args.queue_url)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.once:
        failed = 0
        for name, worker in workers.items():
            try:
                print(f"{name}: ran {worker.run_once()} task(s)")
            except SetupError as exc:
                failed += 1
                print(f"error: workspace {name}: {exc}", file=sys.stderr)
        return 1 if failed else 0
    consume([w.huey.create_consumer(workers=max(1, args.workers), worker_type="thread",
                                    periodic=True, check_worker_health=True)
             for w in workers.values()])
    return 0


def consume(consumers: list[Consumer]) -> None:
    """Run several Huey consumers in this process until a signal stops them. Each starts its
    threads; the last one started holds the signal handlers, and when it stops, all stop."""
    from huey.consumer import ConsumerStopped  # loads redis (0.1 s): only a worker needs it

    for consumer in consumers:
        consumer.start()
    checked = [time.monotonic()] * len(consumers)
    try:
        while True:
            for i, consumer in enumerate(consumers):
                checked[i] = consumer.loop(checked[i])
    except ConsumerStopped:
        for consumer in consumers[:-1]:
            consumer.stop(graceful=True)
    for consumer in consumers:
        consumer.huey.notify_interrupted_tasks()


# -- crmforge demo --workspaces ---------------------------------------------------------------

def demo_workspaces(args: argparse.Namespace) -> int:
    """`crmforge demo --workspaces`: a workspace per vertical, core and that vertical with
    their demo data, its sign-ins printed, then all of them served with their workers."""
    made = [_demo_workspace(vertical, args) for vertical in _verticals()]
    if args.no_serve:
        return 0
    tickers = [] if args.no_worker else [
        Ticker(partial(opened, ws), interval=max(1.0, args.tick),
               report=partial(_report, ws.name)).start() for ws in made]
    try:
        return run_workspaces(argparse.Namespace(**{**vars(args), "workspace": None}))
    finally:
        for ticker in tickers:
            ticker.stop(timeout=5)


def _verticals() -> list[str]:
    packs = sorted(discover([SHIPPED_DIR]))
    if "core" not in packs:
        raise UserError(f"no core pack in {SHIPPED_DIR}")
    return [name for name in packs if name != "core"]


def _demo_workspace(vertical: str, args: argparse.Namespace) -> Workspace:
    name = vertical.replace("_", "-")
    try:
        ws = load(name)
    except WorkspaceError:
        ws = None
    if ws is None:
        ws, model, engine = create(name, ["core", vertical], demo=True, language=args.language)
    else:
        code, model, engine = install(ws, demo=True, language=args.language)
        if code != 0:
            raise WorkspaceError(f"the demo data of workspace {name} could not be loaded")
    print(f"\n{ws.label}: http://{args.host}:{args.port}/w/{ws.name}/ — sign-ins, one user "
          "per role (new passwords each time this runs):\n")
    print_logins(demo_logins(assemble(model, engine)))
    engine.dispose()
    return ws


def _report(name: str, line: str) -> None:
    print(f"{name}: {line}", file=sys.stderr, flush=True)


# -- the commands -----------------------------------------------------------------------------

def add_workspace_commands(sub: argparse._SubParsersAction,
                           command: Callable[[str], Callable]) -> None:
    """`crmforge workspace ...`, and `--workspaces` on `run`, `serve`, `worker` and `demo`
    (`runtime/ops/cli.py` calls this after adding those)."""
    p = sub.add_parser("workspace", help="create, list or delete the workspaces one server "
                       "hosts")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    c = actions.add_parser("create", help="make a workspace and install its packs")
    c.add_argument("name", metavar="NAME")
    c.add_argument("--packs", default="core", help="packs to install, comma-separated "
                   "(default core)")
    c.add_argument("--database-url", dest="new_database_url", metavar="URL",
                   help="its database (default: crmforge.db in its folder)")
    c.add_argument("--label", help="its name on the chooser page (default: its last pack's)")
    c.add_argument("--host", action="append", default=[], metavar="HOST",
                   help="a host name that chooses it (repeat for several)")
    c.add_argument("--demo", action="store_true", help="load the packs' demo data")
    actions.add_parser("list", help="list the workspaces")
    c = actions.add_parser("delete", help="delete a workspace and its folder")
    c.add_argument("name", metavar="NAME")
    c.add_argument("--yes", action="store_true", help="do not ask")
    command("workspace")(cmd_workspace)
    modes = {"run": (serving.cmd_run, run_workspaces),
             "serve": (serving.cmd_serve, serve_workspaces),
             "worker": (cmd_worker, worker_workspaces), "demo": (cmd_demo, demo_workspaces)}
    for name, (one, many) in modes.items():
        sub.choices[name].add_argument(
            "--workspaces", action="store_true",
            help="every workspace (docs/deploy.md#workspaces); --workspace NAME: that one")
        command(name)(_either(one, many, by_name=name != "demo"))


def _either(one: Callable[[argparse.Namespace], int],
            many: Callable[[argparse.Namespace], int], by_name: bool) -> Callable:
    """The command `many` with `--workspaces` (or `--workspace NAME`, when `by_name`), else
    `one`."""
    @wraps(many)
    def run(args: argparse.Namespace) -> int:
        if args.workspaces or (by_name and getattr(args, "workspace", None)):
            try:
                return guarded(many)(args)
            except WorkspaceError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
        return one(args)
    return run
