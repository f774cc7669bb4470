"""`crmforge serve` as operators run it: real gunicorn processes on 127.0.0.1, on one SQLite
file or one PostgreSQL schema, driven over HTTP.

Several processes serve one instance as one: a user signed in through one server is signed in
on the other and a sign-out on either ends it on both; a definition change applied by a third
process (`crmforge upgrade`) reaches every server within 5 seconds; `kill -HUP` replaces the
workers without dropping a request; the metrics of all workers are added up.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import write_pack

# real server and worker processes, about a minute or two each: `make test` runs them,
# `make test-fast` leaves them out
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SECRET = secrets.token_hex(32)
PASSWORD = "correct horse battery"
ITEM = """\
entity: item
fields:
  name: {type: text, required: true}
permissions:
  clerk: {read: true, create: true, update: true}
"""
ROLES = "roles:\n  clerk: {label: Clerk}\n"


@dataclass
class Site:
    """An instance on disk: its folder, database and environment, and the `crmforge`
    command run against them in a process of its own."""

    folder: Path
    url: str
    env: dict[str, str] = field(default_factory=dict)

    def crmforge(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "runtime.ops.cli", *argv,
                                 "--database-url", self.url], cwd=self.folder, env=self.env,
                                capture_output=True, text=True, timeout=120, check=False)
        assert not check or result.returncode == 0, result.stderr
        return result

    def pack(self, item: str = ITEM, version: str = "1.0.0") -> Path:
        path = write_pack(self.folder / "packs", {"entities/item.yaml": item,
                                                  "roles.yaml": ROLES})
        (path / "pack.yaml").write_text(
            f"pack: test\nformat: 1\nversion: {version}\nlabel: Test\n")
        return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """One `crmforge serve` (a gunicorn master and its workers)."""

    process: subprocess.Popen
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()
                if line.startswith("{")]


@pytest.fixture
def site(database_url: str, tmp_path: Path) -> Site:
    """The test pack installed on the test database, with a user `anna` (admin)."""
    env = {**os.environ, "CRMFORGE_SECRET_KEY": SECRET,
           "CRMFORGE_CUSTOM_DIR": str(tmp_path / "custom"), "PYTHONPATH": str(ROOT)}
    for name in ("CRMFORGE_DATABASE_URL", "CRMFORGE_QUEUE_URL", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    found = Site(tmp_path, database_url, env)
    found.crmforge("install", str(found.pack()))
    found.crmforge("user", "create", "anna", "--admin", "--password", PASSWORD)
    return found


@pytest.fixture
def serve(site: Site) -> Iterator[Callable[..., Server]]:
    """`serve("--workers", "2")`: a running `crmforge serve` on a free port; stopped after."""
    started: list[Server] = []

    def start(*options: str, env: dict[str, str] | None = None) -> Server:
        port = free_port()
        log = site.folder / f"serve-{port}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "runtime.ops.cli", "--database-url", site.url, "serve",
                 "--port", str(port), *options], cwd=site.folder, env=env or site.env,
                stdout=out, stderr=subprocess.STDOUT)
        server = Server(process, port, log)
        started.append(server)
        wait_until(lambda: get(server.base + "/healthz")[0] == 200, 60,
                   lambda: log.read_text())
        return server

    yield start
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def wait_until(condition: Callable[[], bool], seconds: float,
               explain: Callable[[], str] = lambda: "") -> float:
    """Poll `condition` until it holds; how long it took (fails after `seconds`)."""
    start = time.monotonic()
    while True:
        try:
            if condition():
                return time.monotonic() - start
        except OSError:
            pass
        if time.monotonic() - start > seconds:
            pytest.fail(f"not within {seconds} s\n{explain()[-3000:]}")
        time.sleep(0.1)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def browser() -> urllib.request.OpenerDirector:
    """A client with a cookie jar that shows redirects instead of following them."""
    return urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect())


def get(url: str, opener: urllib.request.OpenerDirector | None = None,
        data: dict[str, str] | None = None, headers: dict[str, str] | None = None
        ) -> tuple[int, str, dict[str, str]]:
    """(status, body, headers) of a GET (or a form POST with `data`)."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with (opener or urllib.request.build_opener(NoRedirect())).open(
                request, timeout=30) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(server: Server, client: urllib.request.OpenerDirector) -> None:
    _, page, _ = get(server.base + "/login", client)
    status, _, headers = get(server.base + "/login", client, {
        "username": "anna", "password": PASSWORD, "csrf_token": csrf(page)})
    assert status == 302 and not headers["Location"].endswith("/login"), status


def signed_in(server: Server, client: urllib.request.OpenerDirector) -> bool:
    status, _, headers = get(server.base + "/", client)
    assert status in (200, 302), status
    return status == 200


def test_a_session_started_on_one_server_is_good_on_the_other_until_signed_out(serve):
    first, second = serve("--workers", "1"), serve("--workers", "1")
    client = browser()
    assert not signed_in(second, client)
    sign_in(first, client)
    assert signed_in(second, client) and signed_in(first, client)
    _, page, _ = get(second.base + "/logout", client)
    status, _, _ = get(second.base + "/logout", client, {"csrf_token": csrf(page)})
    assert status == 302
    assert not signed_in(first, client) and not signed_in(second, client)


def test_a_definition_change_reaches_every_server_within_five_seconds(site: Site, serve):
    servers = [serve("--workers", "1"), serve("--workers", "1")]
    token = site.crmforge("token", "create", "anna").stdout.strip().split()[-1]
    auth = {"Authorization": f"Bearer {token}"}

    def has_color(server: Server) -> bool:
        status, body, _ = get(server.base + "/api/v1/openapi.json", headers=auth)
        assert status == 200, body
        return '"color"' in body

    assert not any(has_color(server) for server in servers)
    site.pack(ITEM.replace("permissions:", "  color: {type: text}\npermissions:"), "1.1.0")
    site.crmforge("upgrade")
    for server in servers:
        took = wait_until(lambda server=server: has_color(server), 5, server.log.read_text)
        assert took <= 5


def test_sighup_replaces_the_workers_without_dropping_a_request(serve):
    server = serve("--workers", "1", "--threads", "2")
    booted = sum("Booting worker" in line["message"] for line in server.lines())
    server.process.send_signal(signal.SIGHUP)
    statuses = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        statuses.append(get(server.base + "/healthz")[0])
        if sum("Booting worker" in line["message"] for line in server.lines()) > booted \
                and len(statuses) > 20:
            break
    assert any("Hang up" in line["message"] for line in server.lines())
    assert sum("Booting worker" in line["message"] for line in server.lines()) > booted
    assert set(statuses) == {200}


def test_a_worker_takes_as_many_connections_as_it_has_threads(serve):
    """By default a worker holds no connection beyond its threads: each closes after its
    response, and the next goes to whichever worker is free. Clients that connect and send
    nothing hold those places for the keep-alive timeout, not for ever. `--connections` above
    the threads keeps connections alive."""
    server = serve("--workers", "1", "--threads", "2")
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
    try:
        status, _, headers = get(server.base + "/healthz")  # once they are dropped (5 s)
    finally:
        for sock in idle:
            sock.close()
    assert status == 200 and headers["Connection"] == "close"
    assert not [line for line in server.lines() if line["level"] == "WARNING"]

    roomy = serve("--workers", "1", "--threads", "2", "--connections", "8")
    conn = http.client.HTTPConnection("127.0.0.1", roomy.port, timeout=30)
    sockets = []
    try:
        for _ in range(3):
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read()) == {"status": "ok"}
            assert response.getheader("Connection") != "close"
            sockets.append(conn.sock)
    finally:
        conn.close()
    assert sockets[0] is sockets[1] is sockets[2]  # one connection served all three


def test_metrics_add_up_every_worker(site: Site, serve, tmp_path: Path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {**site.env, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    server = serve("--workers", "2", "--threads", "1", "--allow-sqlite-workers", env=env)
    before, sent = healthz_count(server), 0
    for _ in range(10):  # side by side, until both workers have answered some (the kernel
        # may hand a quick burst to one of them)
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: get(server.base + "/healthz")[0], range(40)))
        assert statuses == [200] * 40
        sent += 40
        workers = {re.search(r"_(\d+)\.db$", f.name).group(1) for f in folder.glob("*.db")}
        if len(workers) == 2:
            break
    assert len(workers) == 2  # both workers answered some of the requests
    assert healthz_count(server) == before + sent


def healthz_count(server: Server) -> float:
    """How many /healthz requests the server's metrics say it answered."""
    _, text, headers = get(server.base + "/metrics")
    assert headers["Content-Type"].startswith("text/plain")
    counted = re.search(r'crmforge_http_requests_total\{method="GET",route="/healthz",'
                        r'status="200"\} (\S+)', text)
    return float(counted.group(1))


def test_every_log_line_is_json_and_a_request_line_has_its_id(serve):
    server = serve("--workers", "1")
    status, _, headers = get(server.base + "/nowhere", headers={"X-Request-ID": "lb-42.a"})
    assert status == 404 and headers["X-Request-ID"] == "lb-42.a"
    wait_until(lambda: any(line.get("request_id") == "lb-42.a" for line in server.lines()), 5)
    text = server.log.read_text().strip().splitlines()
    assert text and all(line.startswith("{") for line in text), text[:5]
    access = next(line for line in server.lines() if line.get("request_id") == "lb-42.a")
    assert access["status"] == 404 and access["route"] == "unmatched"
