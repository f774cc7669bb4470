"""`crmforge demo` on SQLite and PostgreSQL: every shipped pack's demo data loads with no row
skipped (each seed record passes the write path's validation, its automations included),
every role gets a demo user who can sign in, assignments find someone, and a second run
changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from builder.packs import SHIPPED_DIR, discover
from runtime.core.passwords import verify_password
from runtime.ops.cli import main
from runtime.process.setup import build


@pytest.fixture
def demo_run(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture):
    monkeypatch.setenv("CRMFORGE_CUSTOM_DIR", str(tmp_path / "custom"))
    monkeypatch.delenv("CRMFORGE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)

    def call() -> tuple[int, str, str]:
        code = main(["demo", "--no-serve", "--database-url", database_url])
        out = capsys.readouterr()
        return code, out.out, out.err
    return call


def _logins(out: str) -> dict[str, tuple[str, str]]:
    """role -> (username, password) from the printed table."""
    table = out.split("Demo sign-ins", 1)[1].splitlines()[3:]
    rows = [line.split() for line in table if line.strip()]
    return {role: (username, password) for role, username, password in rows}


@pytest.mark.slow
def test_demo_loads_every_seed_record_and_signs_in_every_role(demo_run, database_url):
    code, out, err = demo_run()
    assert code == 0, err
    assert "Traceback" not in err
    assert "skipped" not in err, err  # no seed record failed validation
    assert "nobody to assign" not in err

    packs = sorted(discover([SHIPPED_DIR]))
    model = build([SHIPPED_DIR / name for name in packs], demo=True)
    rows = sum(len(demo.records) for demo in model.demo)
    loaded = re.search(r"demo data: (\d+) records", out)
    assert loaded is not None, out
    assert int(loaded.group(1)) == rows  # every row of every data file became a record

    logins = _logins(out)
    assert set(logins) == {"admin", *model.roles}
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            users = {username: (uid, hashed) for uid, username, hashed in conn.execute(
                sa.text("select id, username, password_hash from crm_user"))}
            held = {(uid, role) for uid, role in conn.execute(
                sa.text("select user_id, role from crm_user_role"))}
            unassigned = conn.execute(sa.text(
                "select count(*) from crm_timeline where body like '%nobody to assign%'")
            ).scalar()
        for role, (username, password) in logins.items():
            uid, hashed = users[username]
            assert verify_password(hashed, password), role
            assert role == "admin" or (uid, role) in held
        assert unassigned == 0  # the staff was there before the records that need them
    finally:
        engine.dispose()

    code, again, err = demo_run()  # a second run: nothing to install, nothing to load
    assert code == 0, err
    assert "demo data: already loaded" in again
    assert "nothing to install" in again
