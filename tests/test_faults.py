"""Faults a production system must survive (issue 16), on real processes: `crmforge serve` and
`crmforge worker` against a PostgreSQL cluster and a Redis of the tests' own
(`fault_support`), which they stop, start and lock at will; attachments on a real, full tmpfs.

- PostgreSQL restarted under load: requests fail cleanly (503, Retry-After, never a 500) and
  the same processes serve again once it is back.
- Redis down: the web keeps serving, /readyz says why it is not ready, and the worker runs
  jobs queued once Redis returns.
- A worker killed in the middle of a job: the next tick runs the job again, and every record
  is acted on once.
- A web process killed in the middle of a request: no half-written record.
- A full disk under the attachments: a clear 507, no attachment row, no partial file.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import test_production
from fault_support import PrivatePostgres, PrivateRedis
from test_production import Site, get, wait_until
from web_support import make_app, sign_in, token_of

from runtime.core.db import normalize_url
from runtime.http.auth import actor_for_username
from runtime.ops.worker import Worker, make_huey
from runtime.process.setup import open_instance
from runtime.write import records

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TOUCH = "item.touch"
ITEM = """\
entity: item
fields:
  name: {type: text, required: true}
  touches: {type: integer}
permissions:
  clerk: {read: true, create: true, update: true}
automations:
  touch:
    on: {schedule: hourly}
    do:
      - set: {touches: "=coalesce(touches, 0) + 1"}
"""


# `crmforge serve` and an installed site as in test_production, on this file's database_url
site, serve = test_production.site, test_production.serve


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def database_url(postgres: PrivatePostgres) -> str:
    """Every test of this file runs on a new database of the private cluster."""
    return postgres.database()


@pytest.fixture
def redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    yield server
    server.close()


@pytest.fixture
def items(site: Site) -> Site:
    """The site with the item entity that has a scheduled automation (`item.touch`)."""
    site.pack(ITEM, "1.1.0")
    site.crmforge("upgrade")
    return site


def token(site: Site) -> dict[str, str]:
    made = site.crmforge("token", "create", "anna").stdout.strip().split()[-1]
    return {"Authorization": f"Bearer {made}"}


def call(url: str, auth: dict[str, str], body: dict[str, Any] | None = None
         ) -> tuple[int, dict[str, str]]:
    """(status, headers) of an API GET, or a POST of `body` as JSON."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={
        **auth, "Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code, dict(exc.headers)


def engine_of(site: Site) -> sa.Engine:
    return sa.create_engine(normalize_url(site.url))


def touches(site: Site) -> dict[str, int | None]:
    inst = open_instance(normalize_url(site.url))
    table = inst.schema.table("item")
    try:
        with inst.engine.connect() as conn:
            return dict(conn.execute(sa.select(table.c.name, table.c.touches)).all())
    finally:
        inst.engine.dispose()


# -- PostgreSQL restarted under load ----------------------------------------------------------

class Load:
    """Threads listing and creating items through the API until `stop()`; every answer is
    kept as (monotonic time, status, Retry-After)."""

    def __init__(self, base: str, auth: dict[str, str], threads: int = 4):
        self.base, self.auth, self.answers = base, auth, []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self, number: int) -> None:
        count = 0
        while not self._stop.is_set():
            count += 1
            body = {"name": f"load {number}.{count}"} if count % 2 else None
            status, headers = call(f"{self.base}/api/v1/item", self.auth, body)
            self.answers.append((time.monotonic(), status, headers.get("Retry-After")))

    def stop(self) -> list[tuple[float, int, str | None]]:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        return self.answers


@pytest.mark.slow
def test_postgres_restarted_under_load_gets_503_then_the_same_processes_recover(
        site: Site, serve, postgres: PrivatePostgres):
    server = serve("--workers", "1", "--threads", "4")
    auth = token(site)
    load = Load(server.base, auth)
    wait_until(lambda: sum(a[1] == 201 for a in load.answers) >= 5, 20)
    postgres.stop("fast")  # every session is ended, as in a restart
    down_at = time.monotonic()
    wait_until(lambda: sum(a[1] == 503 and a[0] > down_at for a in load.answers) >= 5, 20)
    status, body, _ = get(server.base + "/readyz")
    assert status == 503 and "database: unreachable" in json.loads(body)["reason"]
    assert get(server.base + "/healthz")[0] == 200  # the process lives: no restart needed
    postgres.start()
    up_at = time.monotonic()
    wait_until(lambda: call(f"{server.base}/api/v1/item", auth)[0] == 200, 20)
    recovered = time.monotonic()
    time.sleep(1)
    answers = load.stop()
    assert {status for _, status, _ in answers} <= {200, 201, 503}, server.log.read_text()
    assert all(retry == "5" for _, status, retry in answers if status == 503)
    after = [status for at, status, _ in answers if at > recovered + 0.2]
    assert after and set(after) <= {200, 201}, after
    assert server.process.poll() is None
    booted = sum("Booting worker" in line["message"] for line in server.lines())
    assert booted == 1, "the worker was restarted"
    assert get(server.base + "/readyz")[0] == 200
    assert recovered - up_at < 10


# -- Redis down -------------------------------------------------------------------------------

def start_worker(site: Site, queue: str, *options: str) -> subprocess.Popen:
    with (site.folder / f"worker-{time.monotonic_ns()}.log").open("w") as log:
        return subprocess.Popen([sys.executable, "-m", "runtime.ops.cli", "--database-url",
                                 site.url, "worker", "--queue-url", queue, *options],
                                cwd=site.folder, env=site.env, stdout=log,
                                stderr=subprocess.STDOUT)


def enqueue(site: Site, queue: str, key: str = TOUCH) -> None:
    """Queue the scheduled automation `key` as the tick does (the test is the producer)."""
    worker = Worker(make_huey(queue), lambda: open_instance(normalize_url(site.url)))
    worker.run_automation(key)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(30)


@pytest.mark.slow
def test_redis_down_the_web_serves_and_jobs_queued_after_its_return_run(
        items: Site, serve, redis: PrivateRedis):
    auth = token(items)
    server = serve("--workers", "1", env={**items.env, "CRMFORGE_QUEUE_URL": redis.url})
    worker = start_worker(items, redis.url)
    try:
        assert call(f"{server.base}/api/v1/item", auth, {"name": "one"})[0] == 201
        redis.stop()
        assert call(f"{server.base}/api/v1/item", auth)[0] == 200
        assert call(f"{server.base}/api/v1/item", auth, {"name": "two"})[0] == 201
        status, body, _ = get(server.base + "/readyz")
        assert status == 503 and "queue: unreachable" in json.loads(body)["reason"]
        time.sleep(2)  # the worker meets the missing queue
        assert worker.poll() is None
        redis.start()
        wait_until(lambda: get(server.base + "/readyz")[0] == 200, 10)
        enqueue(items, redis.url)
        wait_until(lambda: touches(items) == {"one": 1, "two": 1}, 30)
    finally:
        stop(worker)


# -- a worker killed in the middle of a job ---------------------------------------------------

@pytest.mark.slow
def test_a_worker_killed_mid_job_runs_it_again_next_tick_once_per_record(
        items: Site, redis: PrivateRedis):
    inst = open_instance(normalize_url(items.url))
    anna = actor_for_username(inst, "anna")
    made = [records.create(inst, anna, "item", {"name": f"i{n}"}) for n in range(6)]
    table = inst.schema.table("item")
    worker = start_worker(items, redis.url)
    try:
        with inst.engine.connect() as holder, holder.begin() as held:
            holder.execute(sa.select(table.c.id).where(table.c.id == made[3]["id"])
                           .with_for_update())  # the job stops at the fourth record
            enqueue(items, redis.url)
            wait_until(lambda: waiting_on_a_lock(inst.engine), 30)
            assert touches(items) == {"i0": 1, "i1": 1, "i2": 1, "i3": None, "i4": None,
                                      "i5": None}
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
            held.rollback()
        again = start_worker(items, redis.url, "--once")  # what the next tick does
        assert again.wait(120) == 0
        assert touches(items) == {f"i{n}": 1 for n in range(6)}
    finally:
        stop(worker)
        inst.engine.dispose()


def waiting_on_a_lock(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()")).scalar_one() > 0


# -- a web process killed in the middle of a request ------------------------------------------

@pytest.mark.slow
def test_a_web_process_killed_mid_request_leaves_no_half_written_record(site: Site, serve):
    server = serve("--workers", "1", "--threads", "2")
    auth = token(site)
    inst = open_instance(normalize_url(site.url))
    item, audit = inst.schema.table("item"), inst.schema.system("audit")
    try:
        with inst.engine.connect() as holder, holder.begin() as held:
            # the create writes its row, then waits to write its audit entry
            holder.execute(sa.text(f"LOCK TABLE {audit.name} IN SHARE MODE"))
            answers: list[object] = []
            sent = threading.Thread(target=send, args=(
                f"{server.base}/api/v1/item", auth, {"name": "half"}, answers))
            sent.start()
            wait_until(lambda: holds_row_lock_on(inst.engine, item.name), 30)
            for pid in children(server.process.pid):
                os.kill(pid, signal.SIGKILL)
            held.rollback()
            sent.join(60)
        assert isinstance(answers[0], OSError)  # the connection dropped, no answer came
        with inst.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(item)).scalar_one() == 0
            assert conn.execute(sa.select(sa.func.count()).select_from(audit).where(
                audit.c.entity == "item")).scalar_one() == 0
        # gunicorn starts a new worker, which serves the same request whole
        wait_until(lambda: call(f"{server.base}/api/v1/item", auth, {"name": "whole"})[0]
                   == 201, 30)
        with inst.engine.connect() as conn:
            assert conn.execute(sa.select(item.c.name)).scalars().all() == ["whole"]
            assert conn.execute(sa.select(sa.func.count()).select_from(audit).where(
                audit.c.entity == "item")).scalar_one() >= 1
    finally:
        inst.engine.dispose()


def send(url: str, auth: dict[str, str], body: dict[str, Any], answers: list[object]) -> None:
    """`call`, keeping its answer, or the error of a connection that dropped, in `answers`."""
    try:
        answers.append(call(url, auth, body))
    except OSError as exc:
        answers.append(exc)


def holds_row_lock_on(engine: sa.Engine, table: str) -> bool:
    """Whether a session waiting on a lock has already written to `table` in its transaction."""
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE a.wait_event_type = 'Lock' AND l.granted AND l.mode = 'RowExclusiveLock' "
            "AND l.relation = CAST(:table AS regclass)"), {"table": table}).scalar_one() > 0


def children(pid: int) -> list[int]:
    found = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                           text=True, check=False).stdout.split()
    assert found, f"no worker process under {pid}"
    return [int(child) for child in found]


# -- a full disk under the attachments --------------------------------------------------------

@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KB tmpfs, filled to the last byte but for a file `filler` that can be removed."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        fill(folder / "filler")
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def fill(path: Path) -> None:
    with path.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_full_disk_refuses_an_attachment_clearly_and_stores_nothing(
        spec_instance, admin, tmp_path: Path, full_disk: Path):
    inst, who = spec_instance, admin(spec_instance)
    client = make_app(inst, tmp_path, UPLOAD_DIR=str(full_disk)).test_client()
    sign_in(client, inst, who)
    flat = records.create(inst, who, "property", {"title": "Flat", "price": "1"})
    page = f"/e/property/{flat['id']}"
    answer = client.post(f"{page}/attachments", data={
        "csrf_token": token_of(client, page), "file": (io.BytesIO(PDF), "plan.pdf")},
        content_type="multipart/form-data")
    assert answer.status_code == 507
    assert "attachment storage is full" in answer.get_data(as_text=True)
    created = client.post("/e/property/new", data={
        "csrf_token": token_of(client, "/e/property/new"), "title": "Barn", "price": "100",
        "brochure": (io.BytesIO(PDF), "barn.pdf")}, content_type="multipart/form-data")
    assert created.status_code == 507
    table, properties = inst.schema.system("attachment"), inst.schema.table("property")
    with inst.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0
        assert conn.execute(sa.select(properties.c.title)).scalars().all() == ["Flat"]
    assert [p.name for p in full_disk.iterdir()] == ["filler"]
    (full_disk / "filler").unlink()
    answer = client.post(f"{page}/attachments", data={
        "csrf_token": token_of(client, page), "file": (io.BytesIO(PDF), "plan.pdf")},
        content_type="multipart/form-data")
    assert answer.status_code == 302
    with inst.engine.connect() as conn:
        (key,) = conn.execute(sa.select(table.c.storage_key)).scalars().all()
    assert (full_disk / key).read_bytes() == PDF
