"""`crmforge run` parses its options and serves create_app() with them (no real server);
`crmforge serve` refuses, before it starts anything, what would break in production
(tests/test_production.py runs it for real)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from support import FIXTURES

from runtime.http.app import create_app
from runtime.http.current import EXTENSION, get_instance
from runtime.http.model_watch import WATCH
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

    monkeypatch.setattr("runtime.http.app.create_app", fake_create_app)  # read at run time
    monkeypatch.setattr(Flask, "run", fake_run)
    assert main(["--database-url", "sqlite:///x.db", "run", "--port", "5055"]) == 0
    assert seen["config"] == {"DATABASE_URL": "sqlite:///x.db"}
    assert seen["run"]["host"] == "127.0.0.1" and seen["run"]["port"] == 5055
    assert seen["run"]["debug"] is False  # the debugger would show stack traces
    assert "crmforge serve" in capsys.readouterr().err


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
    $CRMFORGE_DATABASE_URL (or the config's DATABASE_URL) and watches its model version."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMFORGE_CUSTOM_DIR", str(tmp_path / "custom"))
    urls = [f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db")]
    for url, pack in zip(urls, (FIXTURES / "core", FIXTURES / "spec"), strict=True):
        assert main(["install", str(pack), "--database-url", url]) == 0
    monkeypatch.setenv("CRMFORGE_DATABASE_URL", urls[0])
    monkeypatch.setenv("CRMFORGE_SECRET_KEY", "k")
    for app, spec in ((create_app(), False), (create_app({"DATABASE_URL": urls[1]}), True)):
        with app.app_context():
            assert ("offer" in get_instance().model.entities) is spec
        assert WATCH in app.extensions
        app.extensions[EXTENSION].engine.dispose()


def test_serve_options():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.workers, args.threads) == (
        "127.0.0.1", 8000, None, serve.DEFAULT_THREADS)
    assert serve.connections(args) == serve.DEFAULT_THREADS  # as many as it has threads
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "9000",
                                      "--workers", "3", "--threads", "1"])
    assert (args.host, args.port, args.workers, args.threads) == ("0.0.0.0", 9000, 3, 1)
    assert serve.connections(args) == 1
    args = build_parser().parse_args(["serve", "--threads", "3", "--connections", "50"])
    assert serve.connections(args) == 50


@pytest.mark.parametrize("argv", [["serve", "--workers", "0"], ["serve", "--threads", "x"],
                                  ["serve", "--port", "eighty"], ["serve", "--connections", "0"]])
def test_serve_rejects_bad_options(argv):
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)


GOOD_KEY = "0123456789abcdef" * 4


@pytest.mark.parametrize(("key", "argv", "message"), [
    (None, [], "CRMFORGE_SECRET_KEY is not set"),
    ("", [], "--allow-generated-key"),
    ("short-key", ["--allow-generated-key"], "9 characters long; use at least 32"),
    (GOOD_KEY, ["--workers", "2"], "--allow-sqlite-workers"),
    (GOOD_KEY, [], "nothing is installed"),
    (None, ["--allow-generated-key", "--workers", "2", "--allow-sqlite-workers"],
     "nothing is installed"),
])
def test_serve_refuses_before_it_starts(key, argv, message, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRMFORGE_SECRET_KEY", raising=False)
    if key is not None:
        monkeypatch.setenv("CRMFORGE_SECRET_KEY", key)
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    assert main(["serve", *argv, "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
