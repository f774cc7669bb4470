"""The instance commands of `crmforge` (docs/cli.md): install, upgrade, migrate, demo,
user create, token create, import, export.

Each command is a small function over `runtime.process.setup` (which packs, which model),
`runtime.process.migrate` (plan and apply), `runtime.ops.demo`, `runtime.ops.transfer` and
`runtime.write.records`.
A person's mistake — an unknown pack, definitions with errors, a refused migration, a bad
file — is one clear message on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from builder.diagnostics import DefinitionError, did_you_mean
from builder.model import BUILTIN_ROLES
from builder.packs import SHIPPED_DIR, discover, search_dirs
from runtime.core.db import database_url, make_engine, write_transaction
from runtime.core.errors import RecordError
from runtime.core.instance import Actor, Instance
from runtime.core.passwords import hash_password
from runtime.ops.demo import load_demo
from runtime.ops.demo_languages import DEFAULT as DEMO_LANGUAGE
from runtime.ops.demo_languages import languages as demo_languages
from runtime.ops.serve import cmd_run
from runtime.ops.transfer import Reader, TransferError, export, import_rows, progress_line
from runtime.ops.worker import Ticker
from runtime.process import migrate, pack_upgrade
from runtime.process.setup import (
    SetupError,
    assemble,
    build,
    installed_packs,
    last_applied,
    locate,
    open_instance,
    pack_paths,
)
from runtime.read.export import FORMATS
from runtime.read.queries import entity_of
from runtime.write import records

Command = Callable[[argparse.Namespace], int]


def add_commands(sub: argparse._SubParsersAction, command: Callable[[str], Callable]) -> None:
    """Register the instance commands on the `crmforge` parser (`runtime/cli.py` calls this)."""
    p = sub.add_parser("install", help="install packs (and what they require), migrating the "
                       "database; idempotent")
    p.add_argument("packs", nargs="+", metavar="PACK_OR_PATH",
                   help="a pack name (see crmforge packs) or a pack directory")
    p.add_argument("--demo", action="store_true", help="load each pack's demo data (once)")
    _language_option(p)
    command("install")(cmd_install)

    p = sub.add_parser("upgrade", help="move installed packs to the version on disk")
    p.add_argument("packs", nargs="*", metavar="PACK", help="installed packs (default: all)")
    p.add_argument("--allow-destructive", action="store_true",
                   help="apply steps that remove or rewrite data (kept aside, never dropped)")
    p.add_argument("--resolve", action="append", default=[], metavar="ID=mine|theirs",
                   help="settle a conflict with a customisation: keep mine or take theirs")
    command("upgrade")(cmd_upgrade)

    p = sub.add_parser("migrate", help="apply definition changes to the database")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--allow-destructive", action="store_true",
                   help="apply steps that remove or rewrite data (kept aside, never dropped)")
    command("migrate")(cmd_migrate)

    p = sub.add_parser("user", help="manage users")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    c = actions.add_parser("create", help="create a user")
    c.add_argument("username")
    c.add_argument("--role", action="append", default=[], metavar="ROLE",
                   help="a role of the user (repeat for several)")
    c.add_argument("--team", help="team name (created when it does not exist)")
    c.add_argument("--manager", metavar="USERNAME", help="the user's manager")
    c.add_argument("--password", help="the password (asked for when omitted on a terminal)")
    c.add_argument("--admin", action="store_true", help="may do everything")
    c.add_argument("--full-name", help="display name (default: from the username)")
    c.add_argument("--email")
    _database_option(c)
    command("user")(cmd_user)

    p = sub.add_parser("token", help="manage API tokens")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    c = actions.add_parser("create", help="print a new API token for a user")
    c.add_argument("username")
    c.add_argument("--label", help="what the token is for")
    _database_option(c)
    c = actions.add_parser("revoke", help="stop a token from working, at once")
    c.add_argument("token", help="the token as it was printed (read from stdin when '-')")
    _database_option(c)
    command("token")(cmd_token)

    p = sub.add_parser("export", help="export an entity's records")
    p.add_argument("entity")
    p.add_argument("--format", choices=FORMATS,
                   help="default: from --output's extension, else csv")
    p.add_argument("--output", "-o", type=Path, metavar="FILE", help="default: stdout")
    p.add_argument("--codes", action="store_true",
                   help="choices as their codes (web), not their labels (Web)")
    command("export")(cmd_export)

    p = sub.add_parser("import", help="import records from CSV or XLSX")
    p.add_argument("entity")
    p.add_argument("file", type=Path)
    p.add_argument("--update-by", metavar="FIELD",
                   help="update the record whose FIELD matches the row (create when none)")
    p.add_argument("--dry-run", action="store_true", help="check every row, import nothing")
    p.add_argument("--skip-invalid", action="store_true",
                   help="import the good rows even when some are bad")
    command("import")(cmd_import)

    p = sub.add_parser("demo", help="install every shipped pack with its demo data, print "
                       "the admin login and serve the web app")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--no-serve", action="store_true", help="prepare the instance only")
    p.add_argument("--no-worker", action="store_true",
                   help="serve without running scheduled automations beside the server")
    p.add_argument("--tick", type=float, default=60.0, metavar="SECONDS",
                   help="how often the worker beside the server looks for due work "
                        "(default 60)")
    _language_option(p)
    command("demo")(cmd_demo)


def _language_option(parser: argparse.ArgumentParser) -> None:
    """`--language zh`: the demo data's names, companies, addresses and phone numbers."""
    parser.add_argument("--language", default=DEMO_LANGUAGE, choices=demo_languages(),
                        help="the language of the demo's people, companies and places "
                             f"({', '.join(demo_languages())}; default {DEMO_LANGUAGE})")


def _database_option(parser: argparse.ArgumentParser) -> None:
    """`--database-url` after a nested command too (`crmforge user create ... --database-url`);
    `runtime/cli.py` adds it to the first level."""
    parser.add_argument("--database-url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def installed_versions(args: argparse.Namespace) -> dict[str, str]:
    """Installed pack -> version, for `crmforge packs`; {} when there is no instance."""
    url = database_url(getattr(args, "database_url", None))
    if _missing_sqlite(url):
        return {}
    engine = make_engine(url)
    try:
        return {name: pack.version for name, pack in installed_packs(engine).items()}
    except (SetupError, sa.exc.SQLAlchemyError):
        return {}
    finally:
        engine.dispose()


# -- plumbing ------------------------------------------------------------------------------


class UserError(Exception):
    """A command-line mistake; the message says what to do."""


def guarded(fn: Command) -> Command:
    """Turn a person's mistake into one message on stderr and exit status 1."""
    @wraps(fn)
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (UserError, SetupError, migrate.MigrationFailed, TransferError,
                pack_upgrade.UpgradeConflicts, pack_upgrade.ResolveError) as exc:
            _error(str(exc))
        except migrate.MigrationRefused as exc:
            _error(exc.explain())
        except DefinitionError as exc:
            _error(str(exc))
        except RecordError as exc:
            _error(exc.message)
        except sa.exc.OperationalError as exc:
            _error(f"cannot use the database: {str(exc.orig or exc).strip().splitlines()[0]}")
        except sa.exc.ArgumentError as exc:
            _error(f"cannot use the database URL: {exc}")
        except OSError as exc:
            _error(str(exc))
        return 1
    return run


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _url(args: argparse.Namespace) -> str:
    return database_url(getattr(args, "database_url", None))


def _missing_sqlite(url: str) -> bool:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    return database not in ("", ":memory:") and not Path(database).exists()


def _engine(args: argparse.Namespace) -> sa.Engine:
    return make_engine(_url(args))


def _print_plan(plan: migrate.Plan) -> None:
    for line in plan.lines():
        print(f"  {line}")


def _summary(plan: migrate.Plan) -> str:
    counts = {s: sum(1 for op in plan.ops if op.safety == s)
              for s in (migrate.SAFE, migrate.NEEDS_DATA, migrate.DESTRUCTIVE)}
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    return f"{len(plan.ops)} step{'s' if len(plan.ops) != 1 else ''} ({', '.join(parts)})"


def _apply(plan: migrate.Plan, engine: sa.Engine, allow_destructive: bool = False) -> None:
    notes = migrate.apply(plan, engine, allow_destructive=allow_destructive)
    for note in notes:
        print(f"  note: {note}")


# -- install, upgrade, migrate --------------------------------------------------------------


def _targets(names: list[str], installed: dict) -> list[Path]:
    """The pack directories named: paths, installed packs (where they were installed from),
    or packs found in verticals/ and the custom dir."""
    known = discover(search_dirs())
    paths: list[Path] = []
    for name in names:
        path = Path(name)
        found = locate(name, installed[name].path, known) if name in installed else None
        if path.exists():
            paths.append(path)
        elif found is not None:
            paths.append(found)
        elif name in known:
            paths.append(known[name])
        else:
            hint = did_you_mean(name, known)
            raise UserError(f"no pack '{name}'" + (f" ({hint})" if hint else "")
                            + ": give a pack name from crmforge packs, or a pack directory")
    return paths


@guarded
def cmd_install(args: argparse.Namespace) -> int:
    return install_packs(args)[0]


def install_packs(args: argparse.Namespace) -> tuple[int, Any, sa.Engine]:
    """Install (and with `args.demo` load demo data): the exit code, the model, the engine."""
    started = time.perf_counter()
    engine = _engine(args)
    before = installed_packs(engine)
    wanted = _targets(args.packs, before)
    wanted_real = {p.resolve() for p in wanted}
    kept = [p for p in pack_paths(before.values()) if p.resolve() not in wanted_real]
    model = build([*kept, *wanted], demo=bool(getattr(args, "demo", False)))
    plan = migrate.plan(model, engine)
    if plan.ops:
        print(f"migrating: {_summary(plan)}")
        _print_plan(plan)
    _apply(plan, engine)
    new = [name for name in model.packs if name not in before]
    if new:
        print("installed " + ", ".join(f"{n} {model.packs[n].version}" for n in new)
              + f" in {time.perf_counter() - started:.1f}s")
    else:
        print("nothing to install: " + ", ".join(
            f"{n} {model.packs[n].version}" for n in model.packs) + " already installed")
    if args.demo:
        return _load_demo(model, engine, getattr(args, "language", DEMO_LANGUAGE)), model, engine
    return 0, model, engine


def _load_demo(model: Any, engine: sa.Engine, language: str = DEMO_LANGUAGE) -> int:

    installed = installed_packs(engine)
    todo = [name for name in model.packs if name in installed and not installed[name].demo]
    if not todo:
        print("demo data: already loaded")
        return 0
    started = time.perf_counter()
    result = load_demo(assemble(model, engine), todo, language=language)
    print(f"demo data: {result.total} records ({', '.join(todo)}) in "
          f"{time.perf_counter() - started:.1f}s"
          + (f"; demo users created: {', '.join(result.users)}" if result.users else ""))
    if result.problems:
        print(f"warning: {len(result.problems)} demo row(s) were skipped:", file=sys.stderr)
        for problem in result.problems:
            print(f"  {problem}", file=sys.stderr)
    return 0


def demo_logins(inst: Instance) -> list[tuple[str, str, str]]:
    """(role, username, password) for `admin` and every role of the installed packs: the
    first user (by username) who holds the role, or a new user named after it; each gets a
    new random password."""
    import secrets


    users, granted = inst.schema.table("user"), inst.schema.system("user_role")
    system = Actor.system_actor("demo")
    chosen: list[tuple[str, int, str]] = []  # role, user id, username
    with write_transaction(inst.engine) as conn:
        admin = conn.execute(sa.select(users.c.id).where(users.c.username == "admin")).scalar()
        if admin is None:
            admin = records.create(inst, system, "user", {
                "username": "admin", "full_name": "Administrator"}, conn=conn)["id"]
        conn.execute(users.update().where(users.c.id == admin).values(is_admin=True))
        chosen.append(("admin", admin, "admin"))
        holders = conn.execute(
            sa.select(granted.c.role, users.c.id, users.c.username)
            .join(users, users.c.id == granted.c.user_id)
            .where(users.c.active.is_not(False)).order_by(users.c.username)).all()
        for name in sorted(inst.model.roles, key=lambda r: (inst.model.roles[r].pack or "", r)):
            found = next(((uid, username) for role, uid, username in holders if role == name),
                         None)
            if found is None:
                role = inst.model.roles[name]
                uid = records.create(inst, system, "user", {
                    "username": name, "full_name": f"{role.label.get()} (demo)"},
                    conn=conn)["id"]
                conn.execute(granted.insert().values(user_id=uid, role=name))
                found = (uid, name)
            chosen.append((name, *found))
        passwords: dict[int, str] = {}
        for _, uid, _ in chosen:
            if uid not in passwords:
                passwords[uid] = secrets.token_urlsafe(9)
                conn.execute(users.update().where(users.c.id == uid).values(
                    password_hash=hash_password(passwords[uid])))
    return [(role, username, passwords[uid]) for role, uid, username in chosen]


def print_logins(logins: list[tuple[str, str, str]]) -> None:
    """The demo sign-ins as a table: role, username, password."""
    width = max(len(role) for role, _, _ in logins)
    name_width = max(len(username) for _, username, _ in logins)
    print(f"  {'role':<{width}}  {'username':<{name_width}}  password")
    for role, username, password in logins:
        print(f"  {role:<{width}}  {username:<{name_width}}  {password}")
    print()


def _installed_or_fail(engine: sa.Engine) -> dict:
    installed = installed_packs(engine)
    if not installed:
        raise SetupError(f"nothing is installed in {engine.url.render_as_string()}: run "
                         "crmforge install core")
    return installed


@guarded
def cmd_upgrade(args: argparse.Namespace) -> int:
    engine = _engine(args)
    installed = _installed_or_fail(engine)
    for name in args.packs:
        if name not in installed:
            hint = did_you_mean(name, installed)
            raise UserError(f"pack '{name}' is not installed" + (f" ({hint})" if hint else "")
                            + f"; install it with crmforge install {name}")
    paths = pack_paths(installed.values())
    for done in pack_upgrade.settle(paths, args.resolve):  # conflicts: nothing is applied
        print(f"resolved: {done}")
    model = build(paths)
    moves = [(n, installed[n].version, model.packs[n].version) for n in model.packs
             if n in installed and installed[n].version != model.packs[n].version]
    plan = migrate.plan(model, engine)
    if plan.ops:
        print(f"migrating: {_summary(plan)}")
        _print_plan(plan)
    _apply(plan, engine, args.allow_destructive)
    added = [n for n in model.packs if n not in installed]
    for name, old, new in moves:
        extra = "" if not args.packs or name in args.packs else " (changed on disk as well)"
        print(f"upgraded {name} {old} -> {new}{extra}")
    for name in added:
        print(f"installed {name} {model.packs[name].version} (now required)")
    if not moves and not added:
        print("everything is up to date" + (" (database migrated)" if plan.ops else ""))
    return 0


@guarded
def cmd_migrate(args: argparse.Namespace) -> int:
    engine = _engine(args)
    installed = _installed_or_fail(engine)
    model = build(pack_paths(installed.values()))
    plan = migrate.plan(model, engine)
    if not plan.ops:
        if not args.dry_run and last_applied(engine) != model.hash:
            _apply(plan, engine)
        print("nothing to migrate: the database matches the definitions")
        return 0
    print(f"plan: {_summary(plan)}")
    _print_plan(plan)
    refused = plan.refused(args.allow_destructive)
    if args.dry_run:
        if refused:
            print(f"{len(refused)} step(s) would be refused without --allow-destructive "
                  "(removed data is kept aside, never dropped)")
        print("dry run: nothing was changed")
        return 0
    _apply(plan, engine, args.allow_destructive)
    print(f"migrated: {_summary(plan)} applied")
    return 0


# -- users and tokens ----------------------------------------------------------------------


def _user_id(inst: Instance, conn: sa.Connection, username: str) -> int:
    users = inst.schema.table("user")
    found = conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar()
    if found is None:
        known = conn.execute(sa.select(users.c.username).limit(200)).scalars().all()
        hint = did_you_mean(username, known)
        raise UserError(f"there is no user '{username}'" + (f" ({hint})" if hint else ""))
    return int(found)


@guarded
def cmd_user(args: argparse.Namespace) -> int:

    inst = open_instance(_url(args))
    admin = args.admin or "admin" in args.role
    roles = [r for r in dict.fromkeys(args.role) if r != "admin"]
    for role in roles:
        if role not in inst.model.roles and role not in BUILTIN_ROLES:
            hint = did_you_mean(role, inst.model.roles)
            raise UserError(f"no role '{role}'" + (f" ({hint})" if hint else "")
                            + f"; the roles are: {', '.join(sorted(inst.model.roles)) or '-'}")
    if not roles and not admin:
        raise UserError("give the user a role (--role ROLE) or make them an admin (--admin)")
    password = args.password
    if password is None and sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.username}: ")
        if password != getpass.getpass("again: "):
            raise UserError("the two passwords differ; nothing was created")
    if password is not None and len(password) < 8:
        raise UserError("the password must have at least 8 characters")
    system = Actor.system_actor("cli")
    users, role_table = inst.schema.table("user"), inst.schema.system("user_role")
    with write_transaction(inst.engine) as conn:
        values: dict[str, Any] = {"username": args.username,
                                  "full_name": args.full_name or _full_name(args.username)}
        if args.email:
            values["email"] = args.email
        if args.manager:
            values["manager"] = _user_id(inst, conn, args.manager)
        if args.team:
            values["team"] = _team(inst, conn, system, args.team)
        record = records.create(inst, system, "user", values, conn=conn)
        conn.execute(users.update().where(users.c.id == record["id"]).values(
            is_admin=admin, password_hash=hash_password(password) if password else None))
        for role in roles:
            conn.execute(role_table.insert().values(user_id=record["id"], role=role))
    what = ", ".join([*(["admin"] if admin else []), *roles])
    print(f"created user {args.username} ({what})"
          + ("" if password else "; no password: the user signs in with an API token only"))
    return 0


def _team(inst: Instance, conn: sa.Connection, actor: Actor, name: str) -> int:

    teams = inst.schema.table("team")
    found = conn.execute(sa.select(teams.c.id).where(teams.c.name == name)).scalar()
    if found is not None:
        return int(found)
    print(f"created team {name}")
    return int(records.create(inst, actor, "team", {"name": name}, conn=conn)["id"])


def _full_name(username: str) -> str:
    return " ".join(p.capitalize() for p in username.replace(".", " ").replace("_", " ")
                    .split()) or username


@guarded
def cmd_token(args: argparse.Namespace) -> int:
    from runtime.http.auth import create_token, revoke_token  # loads Flask: only here

    inst = open_instance(_url(args))
    if args.action == "revoke":
        token = sys.stdin.readline().strip() if args.token == "-" else args.token
        if not revoke_token(inst, token):
            raise UserError("no such token: it was revoked already, or never issued here")
        print("revoked")
        return 0
    with inst.engine.connect() as conn:
        user_id = _user_id(inst, conn, args.username)
    print(create_token(inst, user_id, args.label))
    return 0


# -- import and export ---------------------------------------------------------------------


@guarded
def cmd_export(args: argparse.Namespace) -> int:

    fmt = args.format or (args.output.suffix.lstrip(".").lower() if args.output and
                          args.output.suffix.lstrip(".").lower() in FORMATS else "csv")
    if fmt == "xlsx" and args.output is None and sys.stdout.isatty():
        raise UserError("an XLSX file is binary: give --output FILE")
    inst = open_instance(_url(args))
    entity_of(inst, args.entity)
    if args.output is None:
        count = export(inst, args.entity, fmt, sys.stdout.buffer, codes=args.codes)
        sys.stdout.flush()
    else:
        with open(args.output, "wb") as out:
            count = export(inst, args.entity, fmt, out, codes=args.codes)
    print(f"exported {count} {args.entity} record(s)"
          + (f" to {args.output}" if args.output else ""), file=sys.stderr)
    return 0


@guarded
def cmd_import(args: argparse.Namespace) -> int:

    inst = open_instance(_url(args))
    entity_of(inst, args.entity)
    with Reader(args.file) as reader:
        result = import_rows(inst, args.entity, reader.header, reader,
                             update_by=args.update_by, dry_run=args.dry_run,
                             skip_invalid=args.skip_invalid,
                             progress=progress_line(reader) if sys.stderr.isatty() else None)
    rows = result.rows
    if sys.stderr.isatty():
        print(file=sys.stderr)
    for column in result.ignored:
        print(f"note: column '{column}' is not imported (CRMForge sets it: a system, computed "
              "or read-only field)", file=sys.stderr)
    for line, message in result.problems:
        print(f"{args.file}:{line}: {message}", file=sys.stderr)
    done = f"{result.created} created, {result.updated} updated"
    if args.dry_run:
        verdict = "bad" if result.problems else "good"
        print(f"dry run: {rows} rows checked, {result.bad_rows} bad; would have {done}"
              f" ({verdict}); nothing was imported")
        return 1 if result.problems else 0
    if not result.kept:
        print(f"nothing was imported: {result.bad_rows} of {rows} rows are bad (fix "
              "them, or import the good ones with --skip-invalid)", file=sys.stderr)
        return 1
    skipped = f"; {result.bad_rows} bad rows skipped" if result.problems else ""
    print(f"imported {args.file}: {done}{skipped}")
    return 0


# -- demo ----------------------------------------------------------------------------------


@guarded
def cmd_demo(args: argparse.Namespace) -> int:
    packs = sorted(discover([SHIPPED_DIR]))
    if not packs:
        raise UserError(f"no packs in {SHIPPED_DIR}")
    install_args = argparse.Namespace(**{**vars(args), "packs": packs, "demo": True})
    code, model, engine = install_packs(install_args)
    if code != 0:
        return code
    print("\nDemo sign-ins, one user per role (new passwords each time this runs):\n")
    print_logins(demo_logins(assemble(model, engine)))
    if args.no_serve:
        return 0
    if args.no_worker:
        return cmd_run(args)
    # the worker beside the server, so that the demo's schedules happen while someone looks
    url = _url(args)
    ticker = Ticker(lambda: open_instance(url), interval=max(1.0, args.tick),
                    report=lambda line: print(line, file=sys.stderr, flush=True)).start()
    print(f"worker: running scheduled automations now and every {args.tick:g} s "
          "(docs/cli.md, crmforge demo)", file=sys.stderr)
    try:
        return cmd_run(args)
    finally:
        ticker.stop(timeout=5)
