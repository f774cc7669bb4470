"""`crmforge backup` / `crmforge restore` as a round trip, on SQLite and PostgreSQL: every
table of the restored instance holds what the backed-up one held, every attachment file comes
back byte for byte, a non-empty instance is restored over only with --force, and a file that
is not a backup is refused with a clear message."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import postgres_url
from support import write_pack

from runtime.core.db import make_engine
from runtime.core.instance import Actor
from runtime.ops.cli import main
from runtime.process.setup import open_instance
from runtime.write import attachments, records

ITEM = """\
entity: item
fields:
  name: {type: text, required: true}
  amount: {type: money}
  due: {type: date}
"""


@pytest.fixture
def crmforge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture) -> Callable[..., tuple[int, str, str]]:
    """`crmforge(url, "backup", path)` -> (exit status, stdout, stderr), run in tmp_path."""
    monkeypatch.setenv("CRMFORGE_CUSTOM_DIR", str(tmp_path / "custom"))
    monkeypatch.delenv("CRMFORGE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)

    def call(url: str, *argv: str | Path) -> tuple[int, str, str]:
        code = main([*(str(a) for a in argv), "--database-url", url])
        out = capsys.readouterr()
        assert "Traceback" not in out.err
        return code, out.out, out.err
    return call


@pytest.fixture
def filled(database_url: str, tmp_path: Path, crmforge: Callable) -> str:
    """The test pack installed on `database_url`, with records and attachment files in
    tmp_path/instance/uploads."""
    pack = write_pack(tmp_path / "packs", {"entities/item.yaml": ITEM})
    assert crmforge(database_url, "install", pack)[0] == 0
    inst = open_instance(database_url)
    system = Actor.system_actor()
    uploads = tmp_path / "instance" / "uploads"
    uploads.mkdir(parents=True)
    for number in range(1, 6):
        record = records.create(inst, system, "item", {
            "name": f"Item {number} ✓", "amount": f"{number}00.25", "due": f"2026-0{number}-1"
                                                                       f"{number}"})
        key = secrets.token_hex(16)
        (uploads / key).write_bytes(secrets.token_bytes(1000 * number))
        attachments.add(inst, system, "item", record["id"], filename=f"f{number}.pdf",
                        content_type="application/pdf", size=1000 * number, storage_key=key)
    inst.engine.dispose()
    return database_url


@pytest.fixture
def empty_target(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database to restore into, of the same kind: another SQLite file, or a new
    PostgreSQL database whose search_path names the source's schema (pg_restore recreates
    the schema of the dump)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = "r_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(postgres_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(database_url).set(database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def contents(url: str) -> dict[str, list[tuple]]:
    """Every table's rows, sorted."""
    engine = make_engine(url)
    try:
        found = {}
        with engine.connect() as conn:
            for name in sa.inspect(conn).get_table_names():
                rows = conn.execute(sa.text(f'SELECT * FROM "{name}"')).all()
                found[name] = sorted((tuple(row) for row in rows), key=repr)
        return found
    finally:
        engine.dispose()


def files(folder: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in folder.iterdir()} if folder.is_dir() else {}


def test_backup_and_restore_round_trip(filled: str, empty_target: str, crmforge: Callable,
                                       tmp_path: Path) -> None:
    archive = tmp_path / "backups" / "crm.tar.gz"
    code, out, err = crmforge(filled, "backup", archive)
    assert code == 0, err
    assert "5 attachment file(s)" in out and archive.is_file()
    code, out, err = crmforge(empty_target, "restore", archive, "--upload-dir",
                              tmp_path / "restored-uploads")
    assert code == 0, err
    before, after = contents(filled), contents(empty_target)
    assert set(after) == set(before) and "item" in after and "crm_attachment" in after
    assert after == before
    assert len(after["item"]) == 5
    assert files(tmp_path / "restored-uploads") == files(tmp_path / "instance" / "uploads")
    assert len(files(tmp_path / "restored-uploads")) == 5


def test_restore_over_an_instance_needs_force(filled: str, crmforge: Callable,
                                              tmp_path: Path) -> None:
    archive = tmp_path / "crm.tar.gz"
    assert crmforge(filled, "backup", archive)[0] == 0
    before = contents(filled)
    engine = make_engine(filled)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM item WHERE name = 'Item 1 ✓'"))
    engine.dispose()
    uploads = tmp_path / "instance" / "uploads"
    (uploads / "added-later").write_bytes(b"x")
    code, _, err = crmforge(filled, "restore", archive)
    assert code == 1 and "--force" in err and "not empty" in err
    assert len(contents(filled)["item"]) == 4  # nothing was touched
    code, _, err = crmforge(filled, "restore", archive, "--force")
    assert code == 0, err
    assert contents(filled) == before
    assert "added-later" not in files(uploads) and len(files(uploads)) == 5


@pytest.mark.parametrize("content", [b"not a tar file", b""])
def test_restore_refuses_what_is_not_a_backup(content: bytes, crmforge: Callable,
                                              tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(content)
    code, _, err = crmforge(f"sqlite:///{tmp_path / 'x.db'}", "restore", bogus)
    assert code == 1 and "is not a backup crmforge backup wrote" in err
    code, _, err = crmforge(f"sqlite:///{tmp_path / 'x.db'}", "restore", tmp_path / "none")
    assert code == 1 and "there is no backup file" in err


def test_backup_will_not_overwrite_a_file(filled: str, crmforge: Callable,
                                          tmp_path: Path) -> None:
    taken = tmp_path / "taken.tar.gz"
    taken.write_bytes(b"keep")
    code, _, err = crmforge(filled, "backup", taken)
    assert code == 1 and "exists already" in err and taken.read_bytes() == b"keep"
