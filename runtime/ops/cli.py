"""The `crmforge` command line (docs/cli.md). Each command is a small function; the
instance commands live in `runtime/commands.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from builder import translations
from builder.diagnostics import Diagnostic
from builder.linker import check_paths
from builder.packs import discover, search_dirs
from runtime.ops.backup import add_backup_commands
from runtime.ops.commands import add_commands, installed_versions
from runtime.ops.dedupe import add_duplicates_commands
from runtime.ops.mail_in import add_mail_in_commands
from runtime.ops.serve import add_serve_commands
from runtime.ops.worker import add_worker_commands
from runtime.ops.workspaces import WorkspaceError, add_workspace_commands, chosen_workspace
from runtime.process.pack_upgrade import read_manifest

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable:
        COMMANDS[name] = fn
        return fn
    return register


@command("validate")
def cmd_validate(args: argparse.Namespace) -> int:
    model, diags = check_paths(args.paths)
    if model is not None and args.languages:
        translations.check(args.paths, args.languages, diags)
    items = list(diags)
    if args.format == "json":
        print(json.dumps([d.to_dict() for d in items], indent=2, ensure_ascii=False))
    else:
        for diag in items:
            print(diag.format())
        if model is not None:
            entities = [e for e in model.entities.values() if not e.system]
            print(f"ok: {len(model.packs)} pack(s), {len(entities)} entities, "
                  f"{len(model.automations)} automations, {len(model.dashboards)} dashboards"
                  + _untranslated(items), file=sys.stderr)
        else:
            count = len(diags.errors)
            print(f"{count} error{'s' if count != 1 else ''}", file=sys.stderr)
    return 0 if model is not None else 1


def _untranslated(items: list[Diagnostic]) -> str:
    count = sum(1 for d in items if d.code == translations.CODE)
    return f"; {count} text(s) lack a translation" if count else ""


def _languages(text: str) -> tuple[str, ...]:
    try:
        return translations.parse_languages(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@command("packs")
def cmd_packs(args: argparse.Namespace) -> int:
    installed = installed_versions(args)
    rows = []
    for name, path in sorted(discover(search_dirs()).items()):
        manifest = read_manifest(path)
        version = str(manifest.get("version", "-"))
        label = manifest.get("label") or name
        if isinstance(label, dict):
            label = label.get("en", next(iter(label.values())))
        state = installed.get(name)
        status = "-" if state is None else (f"installed {state}" if state != version
                                            else "installed")
        rows.append((name, version, status, str(label), str(path)))
    if not rows:
        print("no packs found in " + ", ".join(str(d) for d in search_dirs()))
        return 0
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(row[i].ljust(widths[i]) for i in range(4)) + "  " + row[4])
    return 0






def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crmforge", description="CRMForge: a low-code CRM "
                                     "builder from YAML definitions.")
    parser.add_argument("--database-url", help="SQLAlchemy URL of the instance's database "
                        "(default: $CRMFORGE_DATABASE_URL or sqlite:///instance/crmforge.db)")
    parser.add_argument("--workspace", metavar="NAME", help="work on that workspace (its "
                        "database and custom dir; see crmforge workspace list)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("validate", help="check packs or definition files")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--languages", type=_languages, default=(), metavar="zh,es",
                   help="also report texts that lack these languages (W101)")
    sub.add_parser("packs", help="list available and installed packs")
    add_commands(sub, command)
    add_serve_commands(sub, command)
    add_backup_commands(sub, command)
    add_worker_commands(sub, command)
    add_duplicates_commands(sub, command)
    add_mail_in_commands(sub, command)
    add_workspace_commands(sub, command)  # last: it adds --workspaces to run, serve, worker
    for action in sub.choices.values():
        action.add_argument("--database-url", default=argparse.SUPPRESS,
                            help=argparse.SUPPRESS)
        action.add_argument("--workspace", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with chosen_workspace(args):
            return COMMANDS[args.command](args)
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
