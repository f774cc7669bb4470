"""Pack upgrades keep the instance's customisations (runtime/process/pack_upgrade.py): a new pack
version lands on disk under an instance whose admin customised the old one, and
`crmforge upgrade` keeps what still applies, lists each conflict with both sides and
file:line, applies nothing while one is open, and loses no data either way — with real packs
in tmp_path, on SQLite and PostgreSQL."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from cli_support import Run, cli_runner
from support import write_pack

from runtime.core.db import make_engine
from runtime.process import pack_upgrade
from runtime.process.setup import installed_packs

DEAL_V1 = """\
entity: deal
fields:
  name: {type: text}
  code: {type: text}
  heat: {type: choice, options: {cold: Cold, warm: Warm}}
"""
BOAT = "entity: boat\nfields:\n  name: {type: text}\n"
MINE = """\
extends: deal
label: Opportunity
fields:
  code:
    type: text
    label: Reference
  region: {type: text, label: Region}
  heat:
    type: choice
    options:
      cold: Cold
      warm: Warm
      hot: Hot
"""
MY_BOAT = "extends: boat\nfields:\n  mooring: {type: text}\n"


def pack_manifest(version: str) -> str:
    return f"pack: sales\nformat: 1\nversion: {version}\nlabel: Sales\n"


@pytest.fixture
def run(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> Run:
    return cli_runner(database_url, tmp_path, monkeypatch, capsys)


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def ship(root: Path, version: str, deal: str = DEAL_V1, boat: str | None = BOAT) -> Path:
    """Version `version` of pack `sales` at root/sales (replacing the files that are there)."""
    pack = root / "sales"
    for old in pack.rglob("*.yaml") if pack.exists() else ():
        old.unlink()
    files = {"pack.yaml": pack_manifest(version), "entities/deal.yaml": deal}
    if boat is not None:
        files["entities/boat.yaml"] = boat
    return write_pack(root, files, name="sales")


def customise(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "custom" / "entities"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


@pytest.fixture
def installed(run: Run, engine: sa.Engine, tmp_path: Path) -> Path:
    """sales 1.0.0 installed and customised, with a deal and a boat in the database."""
    pack = ship(tmp_path / "packs", "1.0.0")
    customise(tmp_path, {"deal.yaml": MINE, "boat.yaml": MY_BOAT})
    code, out, err = run("install", pack)
    assert code == 0, err
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO deal (name, code, heat, region, created_at, "
                             "updated_at, version) VALUES ('Big', 'D-1', 'hot', 'North', "
                             "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"))
        conn.execute(sa.text("INSERT INTO boat (name, mooring, created_at, updated_at, "
                             "version) VALUES ('Sea', 'B12', CURRENT_TIMESTAMP, "
                             "CURRENT_TIMESTAMP, 1)"))
    return pack


def version(engine: sa.Engine) -> str:
    return installed_packs(engine)["sales"].version


def one(engine: sa.Engine, sql: str) -> object:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar()


def test_added_field_and_relabel_are_kept(run: Run, engine: sa.Engine, installed: Path,
                                          tmp_path: Path) -> None:
    ship(tmp_path / "packs", "2.0.0", DEAL_V1 + "  notes: {type: longtext}\n")
    code, out, err = run("upgrade")
    assert code == 0, err
    assert "upgraded sales 1.0.0 -> 2.0.0" in out
    assert "[safe] add column deal.notes" in out
    assert version(engine) == "2.0.0"
    # the admin's field and its value are there, and the relabel still applies
    assert one(engine, "SELECT region FROM deal") == "North"
    from runtime.process.setup import open_instance
    inst = open_instance(str(engine.url.render_as_string(hide_password=False)),
                         engine=engine)
    deal = inst.model.entity("deal")
    assert deal.fields["code"].label.get() == "Reference"
    assert deal.label.get() == "Opportunity"
    assert {"region", "notes", "heat"} <= set(deal.fields)
    assert [o.value for o in deal.fields["heat"].options] == ["cold", "warm", "hot"]


def test_conflicting_rename_blocks_until_resolved(run: Run, engine: sa.Engine,
                                                  installed: Path, tmp_path: Path) -> None:
    renamed = DEAL_V1.replace("  code: {type: text}", "  ref: {type: text, renamed_from: code}")
    ship(tmp_path / "packs", "2.0.0", renamed)
    code, out, err = run("upgrade")
    assert code == 1
    assert "nothing was changed" in err
    assert "[renamed_field:deal.code]" in err
    assert "custom/entities/deal.yaml:4" in err  # mine: where the admin changes code
    assert "sales/entities/deal.yaml:4" in err  # theirs: the pack's renamed_from
    assert "mine:" in err and "theirs:" in err
    assert version(engine) == "1.0.0" and one(engine, "SELECT code FROM deal") == "D-1"

    code, out, err = run("upgrade", "--resolve", "renamed_field:deal.code=mine")
    assert code == 0, err
    assert "resolved: custom/entities/deal.yaml rewritten" in out
    assert "rename column deal.code -> deal.ref" in out
    assert one(engine, "SELECT ref FROM deal") == "D-1"  # the data moved with the rename
    text = (tmp_path / "custom/entities/deal.yaml").read_text()
    assert "  ref:\n    type: text\n    label: Reference" in text
    backups = list((tmp_path / "custom/.replaced").rglob("deal.yaml"))
    assert len(backups) == 1 and "  code:\n" in backups[0].read_text()

    code, out, err = run("upgrade")  # a second upgrade: nothing to do
    assert code == 0 and "everything is up to date" in out, err


def test_rename_take_theirs_drops_my_change_keeps_data(run: Run, engine: sa.Engine,
                                                       installed: Path,
                                                       tmp_path: Path) -> None:
    renamed = DEAL_V1.replace("  code: {type: text}", "  ref: {type: text, renamed_from: code}")
    ship(tmp_path / "packs", "2.0.0", renamed)
    code, out, err = run("upgrade", "--resolve", "renamed_field:deal.code=theirs")
    assert code == 0, err
    text = (tmp_path / "custom/entities/deal.yaml").read_text()
    assert "code" not in text and "region" in text
    assert one(engine, "SELECT ref FROM deal") == "D-1"


def test_removed_entity_with_customisations(run: Run, engine: sa.Engine, installed: Path,
                                            tmp_path: Path) -> None:
    ship(tmp_path / "packs", "2.0.0", boat=None)
    conflicts = pack_upgrade.find_conflicts([installed])
    assert [c.id for c in conflicts] == ["entity_removed:boat"]
    assert conflicts[0].mine.where.endswith("custom/entities/boat.yaml:1")
    assert "mooring" in conflicts[0].mine.text
    code, _, err = run("upgrade", "--allow-destructive")
    assert code == 1 and "[entity_removed:boat]" in err and version(engine) == "1.0.0"

    # keep mine: the customisation becomes the entity's definition; the boat stays
    code, out, err = run("upgrade", "--resolve", "entity_removed:boat=mine",
                         "--allow-destructive")
    assert code == 0, err
    assert one(engine, "SELECT mooring FROM boat") == "B12"
    assert (tmp_path / "custom/entities/boat.yaml").read_text().startswith("entity: boat")


def test_removed_entity_take_theirs_keeps_the_rows_aside(run: Run, engine: sa.Engine,
                                                         installed: Path,
                                                         tmp_path: Path) -> None:
    ship(tmp_path / "packs", "2.0.0", boat=None)
    code, out, err = run("upgrade", "--resolve", "entity_removed:boat=theirs")
    assert code == 1 and "remove table boat" in err  # destructive: asks for consent
    assert not (tmp_path / "custom/entities/boat.yaml").exists()
    assert list((tmp_path / "custom/.replaced").rglob("boat.yaml"))
    code, out, err = run("upgrade", "--allow-destructive")
    assert code == 0, err
    aside = next(t for t in sa.inspect(engine).get_table_names()
                 if t.startswith("_removed_boat"))
    assert one(engine, f"SELECT mooring FROM {aside}") == "B12"


def test_option_now_under_another_key(run: Run, engine: sa.Engine, installed: Path,
                                      tmp_path: Path) -> None:
    ship(tmp_path / "packs", "2.0.0", DEAL_V1.replace("warm: Warm}", "warm: Warm, "
                                                      "very_hot: Hot}"))
    conflicts = pack_upgrade.find_conflicts([installed])
    assert [c.id for c in conflicts] == ["option_elsewhere:deal.heat.hot"]
    c = conflicts[0]
    assert c.mine.where.endswith("custom/entities/deal.yaml:13") and c.other == "very_hot"
    code, out, err = run("upgrade", "--resolve", "option_elsewhere:deal.heat.hot=mine")
    assert code == 0, err
    assert pack_upgrade.find_conflicts([installed]) == []  # kept on purpose: not asked again
    assert one(engine, "SELECT heat FROM deal") == "hot"
    code, out, err = run("upgrade")
    assert code == 0 and "everything is up to date" in out


def test_bad_resolution_is_a_clear_error(run: Run, installed: Path, tmp_path: Path
                                         ) -> None:
    ship(tmp_path / "packs", "2.0.0", boat=None)
    code, _, err = run("upgrade", "--resolve", "entity_removed:boat=maybe")
    assert code == 1 and "write ID=mine or ID=theirs" in err
    code, _, err = run("upgrade", "--resolve", "nothing:here=mine")
    assert code == 1 and "no conflict nothing:here" in err and "entity_removed:boat" in err
