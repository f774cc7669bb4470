"""`crmforge run`: the development server. Production runs
`gunicorn "runtime.http.app:create_app()"` with the same configuration (the environment)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from runtime.http.app import create_app


def add_serve_commands(sub: Any, command: Callable) -> None:
    """Add `run` to the `crmforge` sub-commands (unless another module already did)."""
    if "run" in sub.choices:
        return
    parser = sub.add_parser("run", help="serve the web app (development server)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    command("run")(cmd_run)


def cmd_run(args: argparse.Namespace) -> int:

    config = {"DATABASE_URL": args.database_url} if getattr(args, "database_url", None) else {}
    app = create_app(config)
    print(f"CRMForge on http://{args.host}:{args.port}/ (development server; production: "
          'gunicorn "runtime.http.app:create_app()"). Ctrl-C stops it.', file=sys.stderr)
    app.run(host=args.host, port=args.port, debug=False, use_reloader=False, threaded=True)
    return 0
