"""The instance commands end to end through `crmforge` (runtime.cli.main): install (idempotent,
demo data once), migrate (--dry-run, refusals), upgrade, user and token, import and export —
exit codes, messages, and what the database holds afterwards, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from cli_support import Run, cli_runner
from support import FIXTURES, write_pack

from runtime.core.db import make_engine
from runtime.core.instance import Actor, Instance
from runtime.core.passwords import verify_password
from runtime.ops.cli import build_parser
from runtime.ops.demo import load_demo
from runtime.process import migrate
from runtime.process.setup import SetupError, open_instance
from runtime.write import records

ROOT = Path(__file__).parent.parent
SPEC = [FIXTURES / "spec"]

ITEM = """\
entity: item
fields:
  name: {type: text, required: true}
  email: {type: email, unique: true}
  notes: {type: longtext}
  size: {type: choice, options: [small, large]}
  amount: {type: money}
  parent: {type: link, to: item}
workflow:
  initial: draft
  states:
    draft: {}
    active: {}
    closed: {final: true}
  transitions:
    activate: {from: draft, to: active}
    close: {from: [draft, active], to: closed}
permissions:
  clerk: {read: true, create: true, update: true}
"""
ROLES = "roles:\n  clerk: {label: Clerk}\n"


def with_field(line: str, entity: str = ITEM) -> str:
    """ITEM with one more field (`line` is its YAML, indented under `fields:`)."""
    return entity.replace("workflow:", f"  {line}\nworkflow:", 1)


@pytest.fixture
def run(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> Run:
    """`run("install", "core")` -> (exit status, stdout, stderr) against the test database."""
    return cli_runner(database_url, tmp_path, monkeypatch, capsys)


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def item_pack(tmp_path: Path) -> Callable[..., Path]:
    """`item_pack(entity_yaml, version=...)`: the test pack (re)written with that entity."""
    def write(entity: str = ITEM, version: str = "1.0.0",
              files: dict[str, str] | None = None) -> Path:
        root = tmp_path / "packs"
        path = write_pack(root, {"entities/item.yaml": entity, "roles.yaml": ROLES,
                                 **(files or {})})
        (path / "pack.yaml").write_text(
            f"pack: test\nformat: 1\nversion: {version}\nlabel: Test\n")
        return path
    return write


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one()


def columns(engine: sa.Engine, table: str) -> list[str]:
    return [c["name"] for c in sa.inspect(engine).get_columns(table)]


# -- install -------------------------------------------------------------------------------


def test_install_is_idempotent(run: Callable, engine: sa.Engine) -> None:
    code, out, _ = run("install", *SPEC)
    assert code == 0
    assert "[safe] create table offer for entity offer" in out
    assert "installed core 1.0.0, real_estate 1.2.0" in out
    code, out, _ = run("install", *SPEC)
    assert code == 0
    assert "nothing to install" in out and "[safe]" not in out
    assert count(engine, "crm_model") == 1
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT pack, version FROM crm_installed ORDER BY pack"))
        assert [tuple(r) for r in rows] == [("core", "1.0.0"), ("real_estate", "1.2.0")]
    inst = open_instance(str(engine.url.render_as_string(hide_password=False)))
    assert migrate.plan(inst.model, engine).empty
    code, out, _ = run("packs")
    assert code == 0 and "installed" in out


def test_install_demo_loads_once(run: Callable, engine: sa.Engine) -> None:
    code, out, err = run("install", *SPEC, "--demo")
    assert code == 0, err
    assert "demo data: 4 records" in out
    counts = {t: count(engine, t) for t in ("contact", "offer", "property")}
    assert counts == {"contact": 2, "offer": 1, "property": 1}
    code, out, _ = run("install", *SPEC, "--demo")
    assert code == 0 and "demo data: already loaded" in out
    assert {t: count(engine, t) for t in counts} == counts
    with engine.connect() as conn:
        offer = conn.execute(sa.text("SELECT property, buyer FROM offer")).one()
        anna = conn.execute(sa.text("SELECT id FROM contact WHERE first_name = 'Anna'")).one()
        villa = conn.execute(sa.text("SELECT id, listed_on FROM property")).one()
    assert offer.buyer == anna.id and offer.property == villa.id  # _key links resolved
    assert villa.listed_on is not None  # "=today() - days(40)"


@pytest.mark.parametrize(("argv", "message"), [
    (["install", "no_such_pack"], "no pack 'no_such_pack'"),
    (["migrate"], "run crmforge install core"),
    (["migrate", "--dry-run"], "run crmforge install core"),
    (["upgrade"], "run crmforge install core"),
    (["user", "create", "anna", "--role", "clerk"], "run crmforge install core"),
    (["token", "create", "anna"], "run crmforge install core"),
    (["export", "item"], "run crmforge install core"),
])
def test_commands_explain_mistakes(run: Callable, argv: list[str], message: str) -> None:
    code, out, err = run(*argv)
    assert code == 1
    assert message in err and err.startswith("error: ")


def test_install_reports_definition_errors(run: Callable, item_pack: Callable) -> None:
    pack = item_pack(ITEM.replace("to: item", "to: itme"))
    code, _, err = run("install", pack)
    assert code == 1
    assert "error E202" in err and "itme" in err and "entities/item.yaml:" in err


# -- migrate -------------------------------------------------------------------------------


def test_migrate_dry_run_prints_and_changes_nothing(run: Callable, engine: sa.Engine,
                                                    item_pack: Callable) -> None:
    assert run("install", item_pack())[0] == 0
    item_pack(with_field("color: {type: text, index: true}"))
    code, out, _ = run("migrate", "--dry-run")
    assert code == 0
    assert "[safe] add column item.color" in out
    assert "[safe] add index ix_item_color on item (color)" in out
    assert "[safe] build the search index of item" in out  # a new text field is searched
    assert "dry run: nothing was changed" in out
    assert "color" not in columns(engine, "item")
    code, out, _ = run("migrate")
    assert code == 0 and "migrated: 3 steps" in out
    assert "color" in columns(engine, "item")
    code, out, _ = run("migrate")
    assert code == 0 and "nothing to migrate" in out


def test_migrate_refuses_destructive_until_allowed(run: Callable, engine: sa.Engine,
                                                   item_pack: Callable) -> None:
    assert run("install", item_pack())[0] == 0
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO item (name, notes, created_at, updated_at, version) "
                             "VALUES ('a', 'keep me', '2026-01-01', '2026-01-01', 1)"))
    item_pack(ITEM.replace("  notes: {type: longtext}\n", ""))
    code, out, err = run("migrate")
    assert code == 1
    assert "[destructive] remove column item.notes" in out + err
    assert "--allow-destructive" in err and "nothing was changed" in err
    assert "notes" in columns(engine, "item")
    code, out, _ = run("migrate", "--dry-run")
    assert code == 0 and "would be refused without --allow-destructive" in out
    code, out, _ = run("migrate", "--allow-destructive")
    assert code == 0
    aside = [c for c in columns(engine, "item") if c.startswith("_removed_notes_")]
    assert len(aside) == 1 and "notes" not in columns(engine, "item")
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT {aside[0]} FROM item")).scalar() == "keep me"
    assert run("migrate")[1].startswith("nothing to migrate")


def test_open_instance_wants_a_migration_after_a_change(run: Callable, database_url: str,
                                                        item_pack: Callable) -> None:
    assert run("install", item_pack())[0] == 0
    assert open_instance(database_url).model.entity("item")
    item_pack(with_field("color: {type: text}"))
    with pytest.raises(SetupError, match="crmforge migrate"):
        open_instance(database_url)
    assert "color" in open_instance(database_url, check_migrated=False).model.entity(
        "item").fields


def test_upgrade_moves_to_the_version_on_disk(run: Callable, item_pack: Callable) -> None:
    assert run("install", item_pack())[0] == 0
    item_pack(with_field("color: {type: text}"), version="1.1.0")
    code, out, _ = run("packs")
    code, out, _ = run("upgrade", "test")
    assert code == 0
    assert "[safe] add column item.color" in out and "upgraded test 1.0.0 -> 1.1.0" in out
    code, out, _ = run("upgrade")
    assert code == 0 and "everything is up to date" in out
    code, _, err = run("upgrade", "nope")
    assert code == 1 and "pack 'nope' is not installed" in err


# -- users and tokens ----------------------------------------------------------------------


def test_user_create_and_token(run: Callable, engine: sa.Engine, item_pack: Callable) -> None:
    assert run("install", item_pack())[0] == 0
    code, out, err = run("user", "create", "anna", "--role", "clerk", "--team", "North",
                         "--password", "correct horse", "--full-name", "Anna Berg")
    assert code == 0, err
    assert "created team North" in out and "created user anna (clerk)" in out
    code, _, _ = run("user", "create", "boss", "--admin", "--password", "s3cret-pass",
                     "--manager", "anna")
    assert code == 0
    with engine.connect() as conn:
        anna = conn.execute(sa.text("SELECT * FROM crm_user WHERE username = 'anna'")).one()
        boss = conn.execute(sa.text("SELECT * FROM crm_user WHERE username = 'boss'")).one()
        roles = conn.execute(sa.text("SELECT role FROM crm_user_role WHERE user_id = :u"),
                             {"u": anna.id}).scalars().all()
        team = conn.execute(sa.text("SELECT name FROM crm_team WHERE id = :t"),
                            {"t": anna.team}).scalar()
    assert verify_password(anna.password_hash, "correct horse")
    assert not verify_password(anna.password_hash, "wrong")
    assert anna.password_hash.startswith("$argon2id$")
    assert roles == ["clerk"] and team == "North" and anna.full_name == "Anna Berg"
    assert boss.is_admin and boss.manager == anna.id

    code, out, _ = run("token", "create", "anna")
    token = out.strip()
    assert code == 0 and len(token) > 30
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_hash FROM crm_token")).scalars().all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    code, out, _ = run("token", "revoke", token)
    assert code == 0 and out.strip() == "revoked"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM crm_token")).scalar() == 0
    code, _, err = run("token", "revoke", token)
    assert code == 1 and "no such token" in err

    for argv, message in [
        (["user", "create", "anna", "--role", "clerk", "--password", "another-pass"],
         "username"),
        (["user", "create", "carl", "--role", "clerc", "--password", "another-pass"],
         "no role 'clerc' (did you mean 'clerk'?)"),
        (["user", "create", "carl", "--password", "another-pass"], "--role"),
        (["user", "create", "carl", "--role", "clerk", "--password", "short"], "8 characters"),
        (["user", "create", "carl", "--role", "clerk", "--manager", "nobody"],
         "no user 'nobody'"),
        (["token", "create", "nobody"], "no user 'nobody'"),
    ]:
        code, _, err = run(*argv)
        assert code == 1 and message in err, (argv, err)


# -- import and export ---------------------------------------------------------------------


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def names(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT name, email, size, amount, status FROM item ORDER BY id"))]


def test_import_all_or_nothing(run: Callable, engine: sa.Engine, item_pack: Callable,
                               tmp_path: Path) -> None:
    assert run("install", item_pack())[0] == 0
    data = write_csv(tmp_path / "items.csv", [
        ["name", "Email", "size", "amount", "status"],
        ["Ann", "ann@example.com", "small", "12.50", "active"],
        ["Bob", "not-an-email", "huge", "3", ""],
        ["", "cid@example.com", "large", "x", "closed"],
        ["Dan", "dan@example.com", "", "", ""],
    ])
    code, out, err = run("import", "item", data)
    assert code == 1
    assert "items.csv:3: email:" in err and "size: must be one of" in err
    assert "items.csv:4: amount: must be a number" in err
    assert "nothing was imported: 2 of 4 rows are bad" in err
    assert count(engine, "item") == 0

    code, out, err = run("import", "item", data, "--dry-run")
    assert code == 1 and "nothing was imported" in out and count(engine, "item") == 0

    code, out, err = run("import", "item", data, "--skip-invalid")
    assert code == 0 and "2 created, 0 updated; 2 bad rows skipped" in out
    rows = names(engine)
    assert [r[0] for r in rows] == ["Ann", "Dan"]
    assert rows[0][2:] == ("small", pytest.approx(12.5), "active")  # state via a transition
    assert rows[1][4] == "draft"

    update = write_csv(tmp_path / "update.csv", [
        ["email", "size", "status"], ["ann@example.com", "large", "closed"],
        ["eve@example.com", "small", ""]])
    code, out, err = run("import", "item", update, "--update-by", "email")
    assert code == 1 and "update.csv:3: name" in err  # Eve is new, and has no name
    update = write_csv(tmp_path / "update.csv", [
        ["email", "size", "status", "name"], ["ann@example.com", "large", "closed", "Ann"],
        ["eve@example.com", "small", "", "Eve"]])
    code, out, err = run("import", "item", update, "--update-by", "email")
    assert code == 0, err
    assert "1 created, 1 updated" in out
    assert [r[0::2] for r in names(engine)] == [("Ann", "large", "closed"),
                                                ("Dan", None, "draft"),
                                                ("Eve", "small", "draft")]


def test_import_refuses_unknown_columns(run: Callable, item_pack: Callable,
                                        tmp_path: Path) -> None:
    assert run("install", item_pack())[0] == 0
    data = write_csv(tmp_path / "x.csv", [["name", "emial"], ["Ann", "a@example.com"]])
    code, _, err = run("import", "item", data)
    assert code == 1 and "'emial' (did you mean 'email'?) is not a field of Item" in err
    code, _, err = run("import", "itme", data)
    assert code == 1 and "no entity 'itme'" in err
    code, _, err = run("import", "item", tmp_path / "missing.csv")
    assert code == 1 and "no such file" in err


def test_export_and_import_round_trip(run: Callable, engine: sa.Engine, item_pack: Callable,
                                      tmp_path: Path) -> None:
    from openpyxl import load_workbook

    assert run("install", item_pack())[0] == 0
    data = write_csv(tmp_path / "items.csv", [
        ["name", "email", "size", "amount", "parent"],
        ["Ann", "ann@example.com", "small", "12.50", ""],
        ["Bob", "bob@example.com", "large", "3", "Ann"],  # a link by its title field
    ])
    assert run("import", "item", data)[0] == 0
    code, out, err = run("export", "item", "--format", "json")
    assert code == 0 and "exported 2 item record(s)" in err
    records = json.loads(out)
    assert [(r["name"], r["amount"], r["parent"]) for r in records] == [
        ("Ann", "12.50", None), ("Bob", "3.00", records[0]["id"])]
    assert list(records[0])[0] == "id"

    assert run("export", "item", "--output", tmp_path / "out.csv")[0] == 0
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as handle:
        exported = list(csv.DictReader(handle))
    assert [r["email"] for r in exported] == ["ann@example.com", "bob@example.com"]

    assert run("export", "item", "--output", tmp_path / "out.xlsx")[0] == 0
    sheet = load_workbook(tmp_path / "out.xlsx").worksheets[0]
    header = [c.value for c in sheet[1]]
    assert header[0] == "id" and float(sheet[2][header.index("amount")].value) == 12.5

    # the exported XLSX imports again (ids and system columns are skipped, with a note);
    # links hold ids, which a new database does not have: this one forgets them
    book = load_workbook(tmp_path / "out.xlsx")
    for row in book.worksheets[0].iter_rows(min_row=2):
        row[header.index("parent")].value = None
    book.save(tmp_path / "out.xlsx")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE item SET parent = NULL"))
        conn.execute(sa.text("DELETE FROM item"))
    code, out, err = run("import", "item", tmp_path / "out.xlsx")
    assert code == 0, err
    assert "column 'id' is not imported" in err and "2 created" in out
    assert [r[:2] for r in names(engine)] == [("Ann", "ann@example.com"),
                                             ("Bob", "bob@example.com")]


# what a spreadsheet would run as a formula, each in a longtext (which keeps a leading tab)
FORMULAS = ['=HYPERLINK("http://evil.example")', "+1+cmd|' /C calc'!A0", "-2+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+2", "\r=1+2", "'=1+2"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_escapes_formulas_keeps_numbers_and_imports_back(
        run: Callable, engine: sa.Engine, item_pack: Callable, database_url: str,
        tmp_path: Path, fmt: str) -> None:
    """Every text cell that starts like a formula gets a leading quote (XLSX: in a string
    cell), negative numbers stay numbers, and importing the file gives the values back."""
    from openpyxl import load_workbook

    assert run("install", item_pack(with_field("qty: {type: integer}")))[0] == 0
    inst = open_instance(database_url)
    try:
        for text in FORMULAS:
            records.create(inst, Actor.system_actor("test"), "item", {
                "name": text.strip(), "notes": text, "amount": "-12.50", "qty": -3})
    finally:
        inst.engine.dispose()
    path = tmp_path / f"out.{fmt}"
    assert run("export", "item", "--output", path)[0] == 0
    if fmt == "csv":
        with open(path, newline="", encoding="utf-8") as handle:
            cells = [(r["name"], r["notes"], r["amount"], r["qty"]) for r in csv.DictReader(handle)]
        assert cells == [("'" + t.strip(), "'" + t, "-12.50", "-3") for t in FORMULAS]
    else:
        sheet = load_workbook(path).worksheets[0]
        header = [c.value for c in sheet[1]]
        for row, text in zip(sheet.iter_rows(min_row=2), FORMULAS, strict=True):
            name, notes, amount, qty = (row[header.index(n)] for n in
                                        ("name", "notes", "amount", "qty"))
            assert (name.data_type, name.value) == ("s", "'" + text.strip()), text
            # XML reads a carriage return as a line feed
            assert (notes.data_type, notes.value) == ("s", "'" + text.replace("\r", "\n"))
            assert (amount.data_type, float(amount.value)) == ("n", -12.5)
            assert (qty.data_type, qty.value) == ("n", -3)

    def stored() -> list[tuple]:
        with engine.connect() as conn:
            return [(r[0], r[1], float(r[2]), r[3]) for r in conn.execute(sa.text(
                "SELECT name, notes, amount, qty FROM item ORDER BY id"))]

    before = stored()
    if fmt == "xlsx":
        before = [(n, notes.replace("\r", "\n"), *rest) for n, notes, *rest in before]
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM item"))
    code, out, err = run("import", "item", path)
    assert code == 0, err
    assert stored() == before


# -- demo data -----------------------------------------------------------------------------


DEMO_ITEMS = """\
- {_key: a, name: Alpha, parent: b, owner: olivia}
- {_key: b, name: "Beta {size}", size: large, parent: a, status: active}
- {_key: c, amount: "=1 + 2"}
- {_key: d, name: Delta, email: d@example.com}
- {name: Epsilon, notes: "listed {name}", parent: a}
- {name: Zeta, parent: c}
"""


def test_demo_links_in_any_order_and_reports_bad_rows(make_instance: Callable,
                                                      item_pack: Callable) -> None:
    """Circular links load (created, then linked), users are created for usernames, values
    are slots, and each bad row is reported with its file and line."""
    pack = item_pack(files={"data/item.yaml": DEMO_ITEMS})
    inst: Instance = make_instance(pack)
    with inst.engine.begin() as conn:
        conn.execute(inst.schema.system("installed").insert().values(
            pack="test", version="1.0.0", demo=False, installed_at=inst.now()))
    result = load_demo(inst, ["test"])
    assert result.created == {"item": 4}
    assert result.users == ["olivia"]
    assert len(result.problems) == 2, result.problems
    assert "item.yaml:3: item: name:" in result.problems[0]
    assert result.problems[1].endswith("item.yaml:6: item: parent: no item record has the "
                                       "_key 'c'")
    with inst.engine.connect() as conn:
        rows = {r.name: r for r in conn.execute(sa.text(
            "SELECT i.id, i.name, i.parent, i.status, i.notes, u.username FROM item i "
            "LEFT JOIN crm_user u ON u.id = i.owner"))}
        demo_flag = conn.execute(sa.text("SELECT demo FROM crm_installed")).scalar()
    assert set(rows) == {"Alpha", "Beta large", "Delta", "Epsilon"}
    assert rows["Alpha"].parent == rows["Beta large"].id
    assert rows["Beta large"].parent == rows["Alpha"].id
    assert rows["Beta large"].status == "active" and rows["Alpha"].status == "draft"
    assert rows["Alpha"].username == "olivia"
    assert rows["Epsilon"].notes == "listed Epsilon"
    assert demo_flag


# -- the CLI is documented -----------------------------------------------------------------


def test_every_command_is_in_docs_cli_md() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    missing = [name for name in sub.choices if f"crmforge {name}" not in text]
    assert not missing, f"docs/cli.md does not document {', '.join(missing)}"


def test_migrations_doc_names_every_operation() -> None:
    from runtime.process.migrate import ops

    text = (ROOT / "docs" / "migrations.md").read_text(encoding="utf-8")
    kinds = {cls.kind for cls in vars(ops).values()
             if isinstance(cls, type) and issubclass(cls, ops.Op) and cls is not ops.Op}
    missing = sorted(k for k in kinds if f"`{k}`" not in text)
    assert not missing, f"docs/migrations.md does not explain {', '.join(missing)}"


def test_custom_definitions_join_the_model(run: Callable, engine: sa.Engine,
                                           item_pack: Callable, tmp_path: Path) -> None:
    """The instance's own extensions (CRMFORGE_CUSTOM_DIR, no pack.yaml) are part of every
    model; adding one is a migration like any other."""
    assert run("install", item_pack())[0] == 0
    custom = tmp_path / "custom" / "entities"
    custom.mkdir(parents=True)
    (custom / "item_extra.yaml").write_text(
        "extends: item\nfields:\n  internal_ref: {type: text}\n")
    code, out, _ = run("migrate")
    assert code == 0 and "[safe] add column item.internal_ref" in out
    assert "internal_ref" in columns(engine, "item")
    code, out, _ = run("packs")
    assert "custom" in out
    code, out, _ = run("install", "test")  # by name: found where it was installed from
    assert code == 0 and "nothing to install" in out


def test_demo_of_a_later_pack_links_to_earlier_demo_records(run: Callable, engine: sa.Engine,
                                                             tmp_path: Path) -> None:
    base = write_pack(tmp_path / "packs", {
        "entities/item.yaml": "entity: item\nfields:\n  name: {type: text}\n",
        "data/item.yaml": "- {_key: first, name: First}\n"}, name="base")
    more = write_pack(tmp_path / "packs", {
        "entities/thing.yaml": "entity: thing\nfields:\n  item: {type: link, to: item}\n",
        "data/thing.yaml": "- {item: first}\n"}, name="more", requires=("base",))
    assert run("install", base, "--demo")[0] == 0
    code, out, err = run("install", more, "--demo")
    assert code == 0 and "demo data: 1 records (more)" in out, err
    with engine.connect() as conn:
        item = conn.execute(sa.text("SELECT id FROM item")).scalar()
        assert conn.execute(sa.text("SELECT item FROM thing")).scalar() == item
