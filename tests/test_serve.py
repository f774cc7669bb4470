"""`crmforge run`: parses its options and serves create_app() with them (no real server)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from runtime.ops import serve
from runtime.ops.cli import build_parser, main


def test_run_is_a_command_with_host_and_port():
    args = build_parser().parse_args(["run"])
    assert (args.command, args.host, args.port) == ("run", "127.0.0.1", 5000)
    args = build_parser().parse_args(["--database-url", "sqlite:///x.db", "run", "--host",
                                      "0.0.0.0", "--port", "8080"])
    assert (args.host, args.port, args.database_url) == ("0.0.0.0", 8080, "sqlite:///x.db")


def test_run_serves_the_app_with_the_database_url(monkeypatch, capsys):
    seen: dict[str, Any] = {}

    def fake_create_app(config: dict | None = None) -> Flask:
        seen["config"] = config
        return Flask("fake")

    def fake_run(self: Flask, **kwargs: Any) -> None:
        seen["run"] = kwargs

    monkeypatch.setattr("runtime.ops.serve.create_app", fake_create_app)
    monkeypatch.setattr(Flask, "run", fake_run)
    assert main(["--database-url", "sqlite:///x.db", "run", "--port", "5055"]) == 0
    assert seen["config"] == {"DATABASE_URL": "sqlite:///x.db"}
    assert seen["run"]["host"] == "127.0.0.1" and seen["run"]["port"] == 5055
    assert seen["run"]["debug"] is False  # the debugger would show stack traces
    assert "gunicorn" in capsys.readouterr().err


def test_run_is_not_added_twice():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    serve.add_serve_commands(sub, lambda name: (lambda fn: fn))
    assert list(sub.choices).count("run") == 1


@pytest.mark.parametrize("argv", [["run", "--port", "notaport"]])
def test_run_rejects_bad_options(argv, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)


def test_create_app_opens_the_instance_of_the_environment(monkeypatch, tmp_path):
    """Without an Instance in the config, create_app() — gunicorn's entry — opens the one at
    $CRMFORGE_DATABASE_URL with runtime.process.setup.open_instance."""
    from runtime.http import app as app_module
    from runtime.http.app import create_app
    from runtime.http.current import get_instance

    opened: list[str] = []
    marker = object()
    monkeypatch.setattr(app_module, "open_instance",
                        lambda url: opened.append(url) or marker)
    monkeypatch.setenv("CRMFORGE_DATABASE_URL", "postgresql://db.example/crm")
    monkeypatch.setenv("CRMFORGE_SECRET_KEY", "k")
    app = create_app()
    assert opened == ["postgresql+psycopg2://db.example/crm"]
    with app.app_context():
        assert get_instance() is marker
    create_app({"DATABASE_URL": "sqlite:///other.db"})
    assert opened[-1] == "sqlite:///other.db"
