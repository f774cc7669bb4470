"""`crmforge backup PATH` and `crmforge restore PATH` (docs/cli.md, docs/deploy.md): the
instance's database and its attachments in one gzipped tar file.

| member | holds |
|---|---|
| `manifest.json` | format, when, the database kind, the method, the model hash, the tables |
| `database.sqlite` | SQLite: a copy made with SQLite's online backup API |
| `database.pgdump` | PostgreSQL: `pg_dump --format=custom` of the instance's schema |
| `uploads/<key>` | every attachment file, under its storage key |

Both copies are consistent while servers keep writing (SQLite's backup API and pg_dump read
one snapshot); an attachment uploaded while the backup runs may be in the file without its
row, never the other way round, because the files are copied after the database.

`restore` refuses an instance that has tables or attachments unless `--force`, which
replaces them; it checks afterwards that the database is at the backup's model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from runtime.core import searchindex
from runtime.core.db import database_url, make_engine
from runtime.core.instance import utcnow
from runtime.ops.commands import UserError, guarded
from runtime.process.setup import last_applied

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite"
PGDUMP_MEMBER = "database.pgdump"
UPLOADS = "uploads"


def add_backup_commands(sub: Any, command: Callable) -> None:
    """Add `backup` and `restore` to the `crmforge` sub-commands."""
    p = sub.add_parser("backup", help="write the database and the attachments to one file")
    p.add_argument("path", type=Path, metavar="PATH", help="the file to write (.tar.gz)")
    _folders(p)
    command("backup")(cmd_backup)
    p = sub.add_parser("restore", help="put a backup's database and attachments back")
    p.add_argument("path", type=Path, metavar="PATH", help="a file crmforge backup wrote")
    p.add_argument("--force", action="store_true",
                   help="replace the tables and attachments the instance has now")
    _folders(p)
    command("restore")(cmd_restore)


def _folders(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instance-dir", type=Path, default=Path("instance"), metavar="DIR",
                        help="the instance folder (default: instance)")
    parser.add_argument("--upload-dir", type=Path, metavar="DIR",
                        help="where the attachments are (default: INSTANCE_DIR/uploads)")


@guarded
def cmd_backup(args: argparse.Namespace) -> int:
    if args.path.exists():
        raise UserError(f"{args.path} exists already; name a new file")
    manifest = backup(database_url(getattr(args, "database_url", None)), args.path,
                      _uploads(args))
    print(f"backed up {len(manifest['tables'])} tables and {manifest['attachments']} "
          f"attachment file(s) to {args.path}")
    return 0


@guarded
def cmd_restore(args: argparse.Namespace) -> int:
    manifest = restore(database_url(getattr(args, "database_url", None)), args.path,
                       _uploads(args), force=args.force)
    print(f"restored {len(manifest['tables'])} tables and {manifest['attachments']} "
          f"attachment file(s) from {args.path} (made {manifest['made_at']})")
    return 0


def _uploads(args: argparse.Namespace) -> Path:
    return args.upload_dir or args.instance_dir / UPLOADS


# -- backup --------------------------------------------------------------------------------


def backup(url: str, path: Path, uploads: Path) -> dict[str, Any]:
    """Write the instance at `url` with the attachments in `uploads` to `path`; its manifest."""
    engine = make_engine(url)
    try:
        tables = sorted(sa.inspect(engine).get_table_names())
        if not tables:
            raise UserError(f"the database {_safe(engine)} has no tables: nothing to back up")
        manifest = {"format": FORMAT, "made_at": utcnow().isoformat() + "Z",
                    "backend": engine.dialect.name, "schema": _schema(engine),
                    "model": last_applied(engine), "tables": tables}
        with tempfile.TemporaryDirectory(prefix="crmforge-backup-") as work:
            folder = Path(work)
            if engine.dialect.name == "sqlite":
                _sqlite_copy(_sqlite_file(engine), folder / SQLITE_MEMBER)
            else:
                _pg_dump(engine, folder / PGDUMP_MEMBER)
            manifest["attachments"] = _copy_files(uploads, folder / UPLOADS)
            (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            _pack(folder, path)
        return manifest
    finally:
        engine.dispose()


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy one SQLite database to another file with SQLite's backup API (a snapshot)."""
    with _sqlite(source) as src, _sqlite(target) as dst:
        src.backup(dst)


@contextmanager
def _sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path)
    try:
        yield conn
    finally:
        conn.close()


def _pg_dump(engine: sa.Engine, target: Path) -> None:
    schema = _schema(engine)
    only = ["--schema", schema] if schema != "public" else []
    _run_pg(["pg_dump", "--format=custom", "--no-owner", "--no-acl", *only,
             "--file", str(target)], engine)


def _copy_files(source: Path, target: Path) -> int:
    target.mkdir()
    count = 0
    for file in sorted(source.iterdir()) if source.is_dir() else []:
        if file.is_file():
            shutil.copy2(file, target / file.name)
            count += 1
    return count


def _pack(folder: Path, path: Path) -> None:
    """Write the tar next to `path` and rename it there: no half-written backup under the
    name an operator will trust."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        for member in sorted(folder.iterdir()):
            tar.add(member, arcname=member.name)
    partial.replace(path)


# -- restore -------------------------------------------------------------------------------


def restore(url: str, path: Path, uploads: Path, *, force: bool = False) -> dict[str, Any]:
    """Put the backup at `path` into the instance at `url` and `uploads`; its manifest."""
    if not path.is_file():
        raise UserError(f"there is no backup file {path}")
    engine = make_engine(url)
    try:
        with tempfile.TemporaryDirectory(prefix="crmforge-restore-") as work:
            folder = Path(work)
            manifest = _unpack(path, folder)
            _check_target(engine, manifest, uploads, force)
            if manifest["backend"] == "sqlite":
                engine.dispose()  # no pooled connection may hold the file being replaced
                _sqlite_copy(folder / SQLITE_MEMBER, _sqlite_file(engine))
            else:
                _pg_restore(engine, folder / PGDUMP_MEMBER, clean=force)
            _replace_files(folder / UPLOADS, uploads)
        if last_applied(engine) != manifest["model"]:
            raise UserError("the restored database is not at the backup's model; the backup "
                            "may be damaged")
        return manifest
    finally:
        engine.dispose()


def _unpack(path: Path, folder: Path) -> dict[str, Any]:
    try:
        with tarfile.open(path, "r:gz") as tar:
            tar.extractall(folder, filter="data")  # no absolute paths, links out, devices
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a backup crmforge backup wrote ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise UserError(f"{path} has backup format {manifest.get('format')!r}; this "
                        f"crmforge reads format {FORMAT}")
    return manifest


def _check_target(engine: sa.Engine, manifest: dict[str, Any], uploads: Path,
                  force: bool) -> None:
    if manifest["backend"] != engine.dialect.name:
        raise UserError(f"the backup is of a {manifest['backend']} database and the target "
                        f"is {engine.dialect.name}; restore it into a {manifest['backend']} "
                        "database")
    if engine.dialect.name != "sqlite" and manifest["schema"] != _schema(engine):
        raise UserError(f"the backup holds the schema {manifest['schema']!r}, the target "
                        f"database uses {_schema(engine)!r}: restore into a database whose "
                        f"search_path is {manifest['schema']!r}")
    tables = sa.inspect(engine).get_table_names(schema=_schema(engine))
    files = list(uploads.iterdir()) if uploads.is_dir() else []
    if (tables or files) and not force:
        raise UserError(f"the instance is not empty ({len(tables)} tables in "
                        f"{_safe(engine)}, {len(files)} files in {uploads}); restore into an "
                        "empty one, or pass --force to replace what it holds")


def _pg_restore(engine: sa.Engine, dump: Path, *, clean: bool) -> None:
    options = ["--clean", "--if-exists"] if clean else []
    notes: list[str] = []
    with engine.begin() as conn:  # the search index names pg_trgm, which a dump leaves out
        searchindex.ensure_trgm(conn, notes)
    _run_pg(["pg_restore", "--no-owner", "--no-acl", "--exit-on-error", "--single-transaction",
             *options], engine, dump)


def _replace_files(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for file in target.iterdir():
        if file.is_file():
            file.unlink()
    for file in source.iterdir():
        shutil.copy2(file, target / file.name)


# -- helpers -------------------------------------------------------------------------------


def _run_pg(argv: list[str], engine: sa.Engine, *after: Path) -> None:
    """Run a PostgreSQL client tool on `engine`'s database (the password in the environment,
    not on the command line, where `ps` would show it)."""
    tool = shutil.which(argv[0])
    if tool is None:
        raise UserError(f"{argv[0]} is not on PATH: install the PostgreSQL client tools of the "
                        "server's version (Debian: apt-get install postgresql-client)")
    url = engine.url.set(drivername="postgresql", password=None)
    env = {**os.environ, **({"PGPASSWORD": engine.url.password} if engine.url.password else {})}
    command = [tool, *argv[1:], "--dbname", url.render_as_string(hide_password=False),
               *map(str, after)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise UserError(f"{argv[0]} failed: {result.stderr.strip() or result.returncode}")


def _schema(engine: sa.Engine) -> str | None:
    """The schema the instance's tables are in (PostgreSQL); None on SQLite."""
    if engine.dialect.name == "sqlite":
        return None
    with engine.connect() as conn:
        current = conn.execute(sa.text("SELECT current_schema()")).scalar()
        if current is None:  # the search_path names a schema that does not exist yet
            path = conn.execute(sa.text("SHOW search_path")).scalar() or ""
            current = path.split(",")[0].strip().strip('"')
    return current


def _sqlite_file(engine: sa.Engine) -> Path:
    database = engine.url.database or ""
    if database in ("", ":memory:"):
        raise UserError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def _safe(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
