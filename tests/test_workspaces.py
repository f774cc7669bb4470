"""Workspaces (runtime/ops/workspaces.py, runtime/http/workspaces.py): the `crmforge workspace`
commands, routing by path prefix and by host, nothing crossing from one workspace to another on
any read path, and the worker running every workspace's schedules.

Two workspaces, `north` and `south`, each with the core pack and its own admin, account and
API token, are made once for the module through the real commands; every test reads them.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import sqlite3
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from web_support import PASSWORD, csrf
from werkzeug.routing import IntegerConverter
from werkzeug.test import Client

from runtime.core.instance import Actor
from runtime.ops.cli import main
from runtime.ops.workspaces import SETTINGS, dispatcher, load, opened
from runtime.write import records

SECRET = "s" * 40  # one server key for both: each workspace derives its own from it
NAMES = {"north": "North Star Trading", "south": "South Seas Shipping"}

Run = Callable[..., tuple[int, str, str]]


def cli(capsys: pytest.CaptureFixture) -> Run:
    def call(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out = capsys.readouterr()
        assert "Traceback" not in out.err
        return code, out.out, out.err
    return call


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> Run:
    """`run("workspace", "list")` -> (exit status, stdout, stderr), on a registry in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMFORGE_WORKSPACES_DIR", str(tmp_path / "ws"))
    monkeypatch.delenv("CRMFORGE_DATABASE_URL", raising=False)
    return cli(capsys)


# -- the commands ---------------------------------------------------------------------------


def test_workspace_commands_round_trip(run: Run, database_url: str, tmp_path: Path) -> None:
    code, out, _ = run("workspace", "create", "acme", "--packs", "core",
                       "--database-url", database_url, "--label", "Acme Ltd",
                       "--host", "CRM.acme.test")
    assert code == 0, out
    assert "created workspace acme (Acme Ltd): /w/acme/ and crm.acme.test" in out
    code, out, _ = run("workspace", "create", "globex")  # core, in its own folder
    assert code == 0
    assert (tmp_path / "ws" / "globex" / "crmforge.db").is_file()
    assert (tmp_path / "ws" / "globex" / SETTINGS).stat().st_mode & 0o077 == 0

    code, out, _ = run("workspace", "list")
    assert [line.split()[:2] for line in out.splitlines()] == [["acme", "Acme"],
                                                               ["globex", "Core"]]
    assert run("--workspace", "acme", "user", "create", "ann", "--admin",
               "--password", PASSWORD)[0] == 0
    inst = opened(load("acme"))
    users = inst.schema.table("user")
    with inst.engine.connect() as conn:
        assert conn.execute(sa.select(users.c.is_admin).where(users.c.username == "ann")
                            ).scalar() is True
    inst.engine.dispose()

    uploads = tmp_path / "ws" / "globex" / "uploads"
    uploads.mkdir()
    (uploads / "kept.txt").write_text("an attachment")
    assert run("--workspace", "globex", "backup", str(tmp_path / "globex.backup"))[0] == 0
    with tarfile.open(tmp_path / "globex.backup") as backup:
        assert "uploads/kept.txt" in backup.getnames()

    code, _, err = run("workspace", "delete", "globex")  # stdin is not a terminal here
    assert code == 1 and "add --yes" in err
    assert run("workspace", "delete", "globex", "--yes")[0] == 0
    assert not (tmp_path / "ws" / "globex").exists()
    code, out, _ = run("workspace", "delete", "acme", "--yes")
    assert code == 0 and "is kept: drop it yourself" in out
    assert "no workspaces" in run("workspace", "list")[1]


@pytest.mark.parametrize("argv, message", [
    (["workspace", "create", "Acme"], "'Acme' cannot name a workspace"),
    (["workspace", "create", "a_b"], "cannot name a workspace"),
    (["workspace", "create", "acme-"], "not ending with a hyphen"),
    (["workspace", "create", "x" * 41], "1 to 40"),
    (["workspace", "create", "acme", "--packs", "core,nosuchpack"], "no pack 'nosuchpack'"),
    (["workspace", "create", "acme", "--packs", " , "], "give the packs"),
    (["workspace", "delete", "nobody", "--yes"], "there is no workspace 'nobody'"),
    (["--workspace", "nobody", "migrate"], "there is no workspace 'nobody'"),
    (["worker", "--workspaces", "--once"], "holds no workspace"),
    (["serve", "--workspace", "../etc"], "there is no workspace '../etc'"),
])
def test_workspace_mistakes_are_explained(run: Run, tmp_path: Path, argv: list[str],
                                          message: str) -> None:
    code, _, err = run(*argv)
    assert code == 1
    assert message in err
    assert not (tmp_path / "ws" / "acme").exists()  # a failed create leaves nothing


def test_creating_a_workspace_twice_is_refused(run: Run) -> None:
    assert run("workspace", "create", "acme")[0] == 0
    code, _, err = run("workspace", "create", "acme")
    assert code == 1 and "workspace 'acme' exists already" in err


def test_a_running_server_notices_a_workspace_made_or_deleted(run: Run) -> None:
    app = dispatcher()
    client = Client(app)
    assert client.get("/w/temp/login").status_code == 404
    assert run("workspace", "create", "temp")[0] == 0
    assert client.get("/w/temp/login").status_code == 200
    assert 'href="/w/temp/"' in client.get("/").get_data(True)
    assert run("workspace", "delete", "temp", "--yes")[0] == 0
    gone = client.get("/w/temp/login")
    assert gone.status_code == 404 and "There is no workspace here" in gone.get_data(True)
    app.close()


# -- two workspaces, served -----------------------------------------------------------------


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """north and south, each with core, an admin, an account and an API token; the
    dispatcher serving them (domain `example.test`)."""
    root = tmp_path_factory.mktemp("hosted")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("CRMFORGE_WORKSPACES_DIR", str(root / "ws"))
        patch.setenv("CRMFORGE_SECRET_KEY", SECRET)
        patch.setenv("CRMFORGE_WORKSPACE_DOMAIN", "example.test")
        patch.delenv("CRMFORGE_DATABASE_URL", raising=False)
        made: dict[str, Any] = {"root": root, "tokens": {}, "accounts": {}}
        for name, account in NAMES.items():
            assert main(["workspace", "create", name, "--host", f"crm.{name}.test"]) == 0
            assert main(["--workspace", name, "user", "create", "boss", "--admin",
                         "--password", PASSWORD]) == 0
            inst = opened(load(name))
            made["accounts"][name] = records.create(
                inst, Actor.system_actor("test"), "account",
                {"name": account, "region": "london"})["id"]
            inst.engine.dispose()
        for name in NAMES:
            made["tokens"][name] = _token(name)
        app = dispatcher()
        made["app"] = app
        yield made
        app.close()


def _token(name: str) -> str:
    """A new API token of the workspace's boss, as `crmforge token create` prints it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--workspace", name, "token", "create", "boss"]) == 0
    return out.getvalue().strip()


def signed_in(hosted: dict[str, Any], name: str, base: str = "") -> Client:
    """A browser's cookie jar signed in to workspace `name` through its login form."""
    client = Client(hosted["app"])
    base = base if base else f"/w/{name}"
    page = client.get(f"{base}/login")
    answer = client.post(f"{base}/login", data={
        "username": "boss", "password": PASSWORD, "csrf_token": csrf(page.get_data(True))})
    assert answer.status_code == 302, answer.get_data(True)[:300]
    assert answer.headers["Location"] == f"{base}/"
    return client


def fetched(client: Client, path: str) -> int:
    """The status of a file download (its response closed, the file with it)."""
    answer = client.get(path)
    answer.close()
    return answer.status_code


def test_the_chooser_lists_the_workspaces_and_no_data(hosted: dict[str, Any]) -> None:
    client = Client(hosted["app"])
    page = client.get("/")
    html = page.get_data(True)
    assert page.status_code == 200
    assert 'href="/w/north/"' in html and 'href="/w/south/"' in html
    assert not any(account in html for account in NAMES.values())
    assert 'href="/static/crmforge.css"' in html
    assert fetched(client, "/static/crmforge.css") == 200
    missing = client.get("/w/nowhere/e/account")
    assert missing.status_code == 404 and "nowhere" in missing.get_data(True)
    assert client.get("/elsewhere").status_code == 404
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_a_path_prefix_serves_the_workspace_under_it(hosted: dict[str, Any]) -> None:
    client = Client(hosted["app"])
    first = client.get("/w/north/e/account")
    assert first.status_code == 302
    assert first.headers["Location"] == "/w/north/login?next=/w/north/e/account"
    client = signed_in(hosted, "north")
    page = client.get("/w/north/e/account").get_data(True)
    assert NAMES["north"] in page and NAMES["south"] not in page
    assert 'href="/w/north/static/crmforge.css"' in page
    assert f'href="/w/north/e/account/{hosted["accounts"]["north"]}"' in page
    assert 'action="/w/north/search"' in page
    assert fetched(client, "/w/north/static/crmforge.css") == 200
    # a form posts back under the prefix and redirects there
    form = client.get("/w/north/e/account/new").get_data(True)
    saved = client.post("/w/north/e/account/new", data={
        "name": "Northern Lights", "region": "north", "csrf_token": csrf(form)})
    assert saved.status_code == 302 and saved.headers["Location"].startswith("/w/north/e/account/")


@pytest.mark.parametrize("host", ["north.example.test", "crm.north.test:8443", "CRM.NORTH.TEST"])
def test_a_host_name_serves_the_workspace_at_the_root(hosted: dict[str, Any],
                                                      host: str) -> None:
    client = Client(hosted["app"])
    answer = client.get("/e/account", headers={"Host": host})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login?next=/e/account"
    token = hosted["tokens"]["north"]
    listed = client.get("/api/v1/account", headers={"Host": host,
                                                     "Authorization": f"Bearer {token}"})
    names = {r["name"] for r in listed.get_json()["data"]}
    assert NAMES["north"] in names and NAMES["south"] not in names
    unknown = client.get("/", headers={"Host": "west.example.test"})
    assert unknown.status_code == 404 and "west" in unknown.get_data(True)


def test_two_workspaces_in_one_browser_keep_both_sessions(hosted: dict[str, Any]) -> None:
    client = signed_in(hosted, "north")
    page = client.get("/w/south/login")
    client.post("/w/south/login", data={"username": "boss", "password": PASSWORD,
                                        "csrf_token": csrf(page.get_data(True))})
    assert client.get_cookie("crmforge_session_north") is not None
    assert client.get_cookie("crmforge_session_south") is not None
    for name, account in NAMES.items():
        assert account in client.get(f"/w/{name}/e/account").get_data(True)


# -- nothing crosses: every read path of south with north's session and token ---------------

PUBLIC = {"auth.login", "auth.logout", "ops.healthz", "ops.readyz", "ops.metrics",
          "web.static", "api.openapi", "mail.unsubscribe", "password.set_password"}
EXTRA = ["/e/account?view=kanban", "/e/contact?view=calendar", "/search?q=South",
         "/e/account/export.csv?format=xlsx", "/api/v1/account?q=South",
         "/api/v1/search?q=South"]


def read_paths(app: Any, values: dict[str, Any]) -> list[tuple[str, str]]:
    """(endpoint, path) for every GET route of `app`, filled with `values`."""
    paths = []
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if "GET" in (rule.methods or ()) and rule.endpoint not in PUBLIC:
            arguments = {name: values.get(name, 1 if isinstance(
                rule._converters.get(name), IntegerConverter) else "x")
                for name in rule.arguments}
            paths.append((rule.endpoint, adapter.build(rule.endpoint, arguments)))
    return paths + [("extra", path) for path in EXTRA]


def test_no_read_path_answers_another_workspaces_session_or_token(
        hosted: dict[str, Any]) -> None:
    app = hosted["app"]
    north, south = (app.app(app.find(name)) for name in NAMES)
    client = signed_in(hosted, "north")
    cookie = client.get_cookie("crmforge_session_north").value
    payload = north.session_interface.get_signing_serializer(north).loads(cookie)
    # even signed with south's own key, north's session key means nothing in south
    resigned = south.session_interface.get_signing_serializer(south).dumps(payload)
    values = {"entity": "account", "record_id": hosted["accounts"]["south"], "name": "sales",
              "user_id": 1, "team_id": 1, "role": "sales_rep", "request_id": 1,
              "attachment_id": 1, "notification_id": 1}
    attempts = {"north's cookie": cookie, "north's session re-signed": resigned}
    checked = 0
    for endpoint, path in read_paths(south, values):
        for what, value in attempts.items():
            thief = Client(app)
            thief.set_cookie("crmforge_session_south", value)
            thief.set_cookie("crmforge_session_north", cookie)
            refused(thief.get(f"/w/south{path}"), f"{endpoint} {path} with {what}")
        bearer = Client(app).get(f"/w/south{path}", headers={
            "Authorization": f"Bearer {hosted['tokens']['north']}"})
        refused(bearer, f"{endpoint} {path} with north's token")
        checked += 1
    assert checked > 40
    # the same session and token do work where they belong
    assert NAMES["north"] in client.get("/w/north/e/account").get_data(True)
    mine = Client(app).get("/w/north/api/v1/account", headers={
        "Authorization": f"Bearer {hosted['tokens']['north']}"})
    assert mine.status_code == 200


STOP_POLLING = 286  # htmx's "stop polling": what a poller signed out gets, with no body


def refused(answer: Any, where: str) -> None:
    body = answer.get_data(True)
    if answer.status_code == STOP_POLLING:
        assert body == "", where
        return
    assert answer.status_code in (302, 401, 404), f"{where}: {answer.status_code}"
    if answer.status_code == 302:
        assert answer.headers["Location"].startswith("/w/south/login"), where
    assert NAMES["south"] not in body, where


# -- the production server ------------------------------------------------------------------


def test_serve_checks_every_workspace_then_serves_them(hosted: dict[str, Any],
                                                       capsys: pytest.CaptureFixture,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    root = hosted["root"]
    monkeypatch.chdir(root)
    monkeypatch.setenv("CRMFORGE_WORKSPACES_DIR", str(root / "ws"))
    code, _, err = cli(capsys)("serve", "--workspaces", "--workers", "2")
    assert code == 1 and "the database is SQLite" in err
    port = free_port()
    env = {**os.environ, "CRMFORGE_WORKSPACES_DIR": str(root / "ws"),
           "CRMFORGE_SECRET_KEY": SECRET}
    with (root / "serve.log").open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "runtime.ops.cli", "serve",
                                   "--workspaces", "--port", str(port)], cwd=root, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while status(base + "/healthz") != 200:
            assert server.poll() is None and time.monotonic() < deadline, \
                (root / "serve.log").read_text()
            time.sleep(0.3)
        assert status(base + "/") == 200
        assert status(base + "/w/south/login") == 200
        assert status(base + "/w/south/readyz") == 200
        assert status(base + "/w/west/") == 404
    finally:
        server.terminate()
        server.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code
    except OSError:
        return 0


# -- the worker -----------------------------------------------------------------------------


def test_the_worker_runs_every_workspace_or_the_one_named(hosted: dict[str, Any],
                                                          capsys: pytest.CaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    root = hosted["root"]
    monkeypatch.chdir(root)
    monkeypatch.setenv("CRMFORGE_WORKSPACES_DIR", str(root / "ws"))
    run = cli(capsys)
    code, out, _ = run("worker", "--workspace", "south", "--once")
    assert code == 0 and out.startswith("south: ran ") and "north" not in out
    assert runs(root, "north") == 0 < runs(root, "south")
    code, out, _ = run("worker", "--workspaces", "--once")
    assert code == 0
    assert [line.split(":")[0] for line in out.splitlines()] == ["north", "south"]
    assert runs(root, "north") > 0
    assert (root / "ws" / "north" / "queue.db").is_file()


def runs(root: Path, name: str) -> int:
    """Scheduled automation periods finished in the workspace's database."""
    with sqlite3.connect(root / "ws" / name / "crmforge.db") as conn:
        return conn.execute("SELECT count(*) FROM crm_schedule_run").fetchone()[0]
