"""`crmforge run`, the development server, and `crmforge serve`, the production server.

`serve` embeds gunicorn (docs/deploy.md): a master process and `--workers` processes of
`--threads` threads each, every one running `create_app()` with the environment's
configuration. `kill -HUP <master>` reloads gracefully: new workers start with the definitions
and environment of that moment while the old ones finish their requests. Logs are JSON lines
with the request id (`runtime.http.requestlog`); the workers' metrics are added up through a
prometheus_client multiprocess directory (`runtime.http.ops_routes`).

Before it starts, `serve` refuses what would break in production, each with what to do:
a secret key that is not `CRMFORGE_SECRET_KEY` (every machine must sign cookies with the same
key), and SQLite with more than one worker (one writer at a time).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from gunicorn.app.base import BaseApplication
from prometheus_client import multiprocess, values

from runtime.core.db import database_url
from runtime.process.setup import SetupError, open_instance

MIN_KEY_LENGTH = 32
DEFAULT_PORT = 8000
DEFAULT_THREADS = 2


class ServeRefused(Exception):
    """A configuration `serve` will not run with; the message says what to do."""


def add_serve_commands(sub: Any, command: Callable) -> None:
    """Add `run` and `serve` to the `crmforge` sub-commands (unless another module did)."""
    if "run" not in sub.choices:
        parser = sub.add_parser("run", help="serve the web app (development server)")
        parser.add_argument("--host", default="127.0.0.1",
                            help="address to listen on (default 127.0.0.1: this machine only)")
        parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
        command("run")(cmd_run)
    if "serve" not in sub.choices:
        _add_serve(sub)
        command("serve")(cmd_serve)


def _add_serve(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the web app in production (gunicorn)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--workers", type=_positive, metavar="N",
                   help="worker processes (default 2 on PostgreSQL, 1 on SQLite)")
    p.add_argument("--threads", type=_positive, default=DEFAULT_THREADS, metavar="N",
                   help=f"threads per worker (default {DEFAULT_THREADS})")
    p.add_argument("--connections", type=_positive, metavar="N",
                   help="connections a worker takes at once (default: its threads; the "
                        "others wait for the first free worker)")
    p.add_argument("--timeout", type=_positive, default=60, metavar="SECONDS",
                   help="restart a worker silent for this long (default 60)")
    p.add_argument("--allow-sqlite-workers", action="store_true",
                   help="run several workers on an SQLite database anyway")
    p.add_argument("--allow-generated-key", action="store_true",
                   help="sign cookies with instance/secret_key when CRMFORGE_SECRET_KEY is not "
                        "set (one machine only)")


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def cmd_run(args: argparse.Namespace) -> int:
    from runtime.http.app import create_app  # the web app (0.5 s to import): only a server

    try:
        app = create_app(_config(args))
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"CRMForge on http://{args.host}:{args.port}/ (development server; production: "
          "crmforge serve). Ctrl-C stops it.", file=sys.stderr)
    app.run(host=args.host, port=args.port, debug=False, use_reloader=False, threaded=True)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from runtime.http import replica  # the web layer: imported when a server starts
    from runtime.http.app import create_app  # (0.5 s), not by every command

    url = database_url(getattr(args, "database_url", None))
    workers = args.workers or (1 if _is_sqlite(url) else 2)
    try:
        check_secret_key(os.environ.get("CRMFORGE_SECRET_KEY"), args.allow_generated_key)
        check_workers(url, workers, args.allow_sqlite_workers)
        replica.check(url, os.environ.get(replica.ENVIRONMENT))
        open_instance(url).engine.dispose()  # a clear message now, not one per worker
    except (ServeRefused, SetupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    config = _config(args)
    return serve(args, workers, lambda: create_app(config))


def serve(args: argparse.Namespace, workers: int, load: Callable[[], Any]) -> int:
    """Run gunicorn with `args`' options: `workers` processes, each serving the WSGI app
    `load()` makes (one instance's app, or the workspaces' dispatcher)."""
    created = _metrics_dir()
    places = connections(args)
    options = {"bind": _bind(args.host, args.port), "workers": workers,
               "threads": args.threads, "timeout": args.timeout,
               "worker_connections": places,
               # none kept alive when no place is left for one (else gunicorn warns)
               **({"keepalive": 0} if places <= args.threads else {}),
               # in the master, at its end (a worker leaving must not take the folder along)
               "on_exit": lambda _arbiter: created and shutil.rmtree(created, True)}
    Server(options, load).run()
    return 0


def connections(args: argparse.Namespace) -> int:
    """The connections each worker takes at once: `--connections`, or as many as it has threads.
    A worker that took more would queue them behind its busy threads (and its one interpreter
    lock) while another worker sits idle; left in the listen queue, they go to whichever
    worker is free first. Keep-alive needs connections beyond the threads: without them each
    connection closes after its response, as a proxy in front expects."""
    return args.connections or args.threads


def check_secret_key(key: str | None, allow_generated: bool) -> None:
    """Refuse a missing or short `CRMFORGE_SECRET_KEY` (unless `allow_generated` and missing)."""
    if key is None or key == "":
        if allow_generated:
            return
        raise ServeRefused(
            "CRMFORGE_SECRET_KEY is not set, so the cookies would be signed with the "
            "development key in instance/secret_key, which no other machine has: set "
            "CRMFORGE_SECRET_KEY to the same long random value on every server (python -c "
            "'import secrets; print(secrets.token_hex(32))'), or pass --allow-generated-key "
            "to serve from this one machine")
    if len(key) < MIN_KEY_LENGTH:
        raise ServeRefused(
            f"CRMFORGE_SECRET_KEY is {len(key)} characters long; use at least "
            f"{MIN_KEY_LENGTH} random ones (python -c 'import secrets; "
            "print(secrets.token_hex(32))')")


def check_workers(url: str, workers: int, allow_sqlite: bool) -> None:
    if workers > 1 and _is_sqlite(url) and not allow_sqlite:
        raise ServeRefused(
            f"the database is SQLite, which lets one process write at a time, and {workers} "
            "workers would queue for it (and time out under load): use PostgreSQL "
            "(CRMFORGE_DATABASE_URL=postgresql://...), or --workers 1 (--threads still serve "
            "requests side by side), or --allow-sqlite-workers to run them anyway")


def _is_sqlite(url: str) -> bool:
    return sa.make_url(url).get_backend_name() == "sqlite"


def _config(args: argparse.Namespace) -> dict[str, Any]:
    url = getattr(args, "database_url", None)
    return {"DATABASE_URL": url} if url else {}


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _metrics_dir() -> str | None:
    """Point prometheus_client at a multiprocess directory (a new temporary one unless
    PROMETHEUS_MULTIPROC_DIR names one, emptied of an earlier run's files); the new one's path,
    to remove at exit. prometheus_client picks its value class when imported, before this
    ran, so it picks again: the workers forked afterwards make their metrics in the folder."""
    from runtime.http.ops_routes import MULTIPROC_ENV  # the web layer: only a server needs it

    existing = os.environ.get(MULTIPROC_ENV)
    if existing:
        for stale in Path(existing).glob("*.db"):
            stale.unlink()
    else:
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="crmforge-metrics-")
    values.ValueClass = values.get_value_class()
    return None if existing else os.environ[MULTIPROC_ENV]


def _child_exit(_server: Any, worker: Any) -> None:
    multiprocess.mark_process_dead(worker.pid)  # its live gauges stop counting


class Server(BaseApplication):
    """gunicorn running the app `load()` makes in each worker."""

    def __init__(self, options: Mapping[str, Any], load: Callable[[], Any]):
        from runtime.http.requestlog import LOGGING  # Flask: only a server needs it

        self.options = {"worker_class": "gthread" if options.get("threads", 1) > 1 else "sync",
                        "logconfig_dict": LOGGING, "accesslog": None, "proc_name": "crmforge",
                        "child_exit": _child_exit, "control_socket_disable": True, **options}
        self.make_app = load
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # control_socket_disable: gunicorn 25.1 and later
                self.cfg.set(key, value)

    def load(self) -> Any:
        return self.make_app()
