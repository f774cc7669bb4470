"""`crmforge duplicates ENTITY`: scan an entity with its duplicate rules and list the groups
(`runtime.read.duplicates`), with a progress line on stderr — one step per rule — and the
groups on stdout: the ids (oldest first, the suggested survivor) and what ties them, or JSON
with `--format json`. Merging is the web page `/e/<entity>/<id>/merge` or the API.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from builder.model import DuplicateRule
from runtime.core.db import database_url
from runtime.core.instance import Actor
from runtime.ops.commands import UserError, guarded
from runtime.process.setup import open_instance
from runtime.read import duplicates
from runtime.read.queries import entity_of


def add_duplicates_commands(sub: Any, command: Callable) -> None:
    """Add `duplicates` to the `crmforge` sub-commands."""
    p = sub.add_parser("duplicates", help="list the groups of records an entity's duplicate "
                       "rules call the same")
    p.add_argument("entity", metavar="ENTITY")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="at most N groups per rule (default: all)")
    command("duplicates")(cmd_duplicates)


@guarded
def cmd_duplicates(args: argparse.Namespace) -> int:
    inst = open_instance(database_url(getattr(args, "database_url", None)))
    ent = entity_of(inst, args.entity)
    if not ent.duplicates:
        raise UserError(f"{ent.name} has no duplicate rules; add `duplicates:` to its "
                        "definition (docs/definition-files.md)")
    found = duplicates.groups(inst, Actor.system_actor("cli"), ent.name, limit=args.limit,
                              progress=_progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)  # end the progress line
    if args.format == "json":
        print(json.dumps([{"ids": list(g.ids), "rules": [list(r) for r in g.rules]}
                          for g in found], indent=2))
    else:
        for group in found:
            ties = "; ".join(" + ".join(rule) for rule in group.rules)
            print(f"{' '.join(f'#{i}' for i in group.ids)}\tsame {ties}")
    print(f"{len(found)} group(s) of duplicate {ent.name} records "
          f"({sum(len(g.ids) for g in found)} records)", file=sys.stderr)
    return 0


def _progress(done: int, total: int, rule: DuplicateRule, found: int) -> None:
    """One line, rewritten in place on a terminal: the rules scanned so far."""
    end = "\r" if sys.stderr.isatty() else "\n"
    print(f"scanning: rule {done}/{total} ({' + '.join(rule.match)}): {found} group(s)",
          end=end, file=sys.stderr, flush=True)
