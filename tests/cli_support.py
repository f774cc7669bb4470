"""What the command tests share: `crmforge` (runtime.ops.cli.main) run in-process against the
test database, from a temporary folder with its own custom directory.

A test module wraps `cli_runner` in its own `run` fixture:

    @pytest.fixture
    def run(database_url, tmp_path, monkeypatch, capsys):
        return cli_runner(database_url, tmp_path, monkeypatch, capsys)

and calls `run("install", "core")` -> (exit status, stdout, stderr).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.ops.cli import main

Run = Callable[..., tuple[int, str, str]]


def cli_runner(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               capsys: pytest.CaptureFixture) -> Run:
    """A function that runs `crmforge ARGV… --database-url DATABASE_URL` in `tmp_path` (with
    `CRMFORGE_CUSTOM_DIR` there, `CRMFORGE_DATABASE_URL` unset) and returns (exit status,
    stdout, stderr); it fails the test when stderr holds a traceback."""
    monkeypatch.setenv("CRMFORGE_CUSTOM_DIR", str(tmp_path / "custom"))
    monkeypatch.delenv("CRMFORGE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)

    def call(*argv: str | Path) -> tuple[int, str, str]:
        code = main([*(str(a) for a in argv), "--database-url", database_url])
        out = capsys.readouterr()
        assert "Traceback" not in out.err
        return code, out.out, out.err
    return call
