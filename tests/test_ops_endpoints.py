"""/healthz, /readyz and /metrics without sign-in, request ids, and the model version check,
on an instance installed by `crmforge install` (SQLite and PostgreSQL), through Flask's test
client. (Real gunicorn processes: tests/test_production.py.)"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from support import write_pack

from runtime.http import model_watch, ops_routes
from runtime.http.app import create_app
from runtime.http.current import EXTENSION
from runtime.http.requestlog import JSONFormatter
from runtime.ops import worker
from runtime.ops.cli import main

ITEM = """\
entity: item
fields:
  name: {type: text, required: true}
"""


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    return write_pack(tmp_path / "packs", {"entities/item.yaml": ITEM})


@pytest.fixture
def app(database_url: str, pack: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The app create_app() opens on an installed instance (the production path)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMFORGE_CUSTOM_DIR", str(tmp_path / "custom"))
    monkeypatch.delenv("CRMFORGE_QUEUE_URL", raising=False)
    assert main(["install", str(pack), "--database-url", database_url]) == 0
    made = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "s" * 32})
    yield made
    made.extensions[EXTENSION].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_healthz_answers_without_sign_in(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_reports_each_check(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json == {"status": "ready", "checks": {
        "database": "ok", "migrations": "ok", "queue": "not configured"}}


def test_readyz_is_503_when_the_database_is_at_a_model_this_machine_lacks(
        app: Flask, client: FlaskClient) -> None:
    """Another machine migrated to definitions this one does not have: keep serving the old
    model, and say why the process is not ready."""
    inst = app.extensions[EXTENSION]
    with inst.engine.begin() as conn:
        conn.execute(inst.schema.system("model").insert().values(
            hash="f" * 64, packs={}, applied_at=inst.now()))
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json
    assert body["status"] == "unavailable" and body["checks"]["database"] == "ok"
    assert "ffffffffffff" in body["checks"]["migrations"]
    assert body["reason"].startswith("migrations: the database is at model ffffffffffff")
    assert client.get("/healthz").status_code == 200


def test_a_migration_elsewhere_is_served_after_the_next_check(
        app: Flask, client: FlaskClient, pack: Path, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    first = app.extensions[EXTENSION]
    assert "color" not in first.model.entity("item").fields
    (pack / "entities" / "item.yaml").write_text(ITEM + "  color: {type: text}\n")
    assert main(["migrate", "--database-url", database_url]) == 0
    monkeypatch.setattr(app.extensions[model_watch.WATCH], "interval", 0.0)
    assert client.get("/readyz").status_code == 200
    served = app.extensions[EXTENSION]
    assert served is not first and "color" in served.model.entity("item").fields
    assert served.engine is first.engine


def test_the_model_is_looked_at_once_a_second_at_most(app: Flask, client: FlaskClient) -> None:
    assert model_watch.CHECK_EVERY == 1.0
    app.extensions[model_watch.WATCH].interval = 60.0  # a slow machine may take a second
    statements: list[str] = []
    engine = app.extensions[EXTENSION].engine
    listener = (lambda *args: statements.append(args[2]))  # noqa: E731 - (conn, cursor, sql…)
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        for _ in range(5):
            assert client.get("/healthz").status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    assert sum("FROM crm_model" in sql for sql in statements) <= 1


def test_readyz_checks_the_queue(client: FlaskClient, monkeypatch: pytest.MonkeyPatch,
                                 tmp_path: Path) -> None:
    monkeypatch.setenv("CRMFORGE_QUEUE_URL", f"sqlite:///{tmp_path / 'queue.db'}")
    assert client.get("/readyz").json["checks"]["queue"] == "ok"
    monkeypatch.setenv("CRMFORGE_QUEUE_URL", "redis://127.0.0.1:9/0")  # discard: nobody
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["queue"].startswith("unreachable")
    assert "queue: unreachable" in response.json["reason"]


def test_the_queue_name_is_the_workers() -> None:
    assert ops_routes.QUEUE_NAME == worker.QUEUE_NAME


def test_metrics_show_the_queue_depth(client: FlaskClient, monkeypatch: pytest.MonkeyPatch,
                                      tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    monkeypatch.setenv("CRMFORGE_QUEUE_URL", url)
    huey = worker.make_huey(url)
    job = huey.task(name="test.nothing")(lambda: None)
    job()
    job()
    text = client.get("/metrics").text
    assert "crmforge_queue_depth 2.0" in text and "crmforge_queue_up 1.0" in text
    monkeypatch.setenv("CRMFORGE_QUEUE_URL", "redis://127.0.0.1:9/0")
    assert "crmforge_queue_up 0.0" in client.get("/metrics").text


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when it is not there yet)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
        if not wanted and line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_group_requests_by_route_and_time_the_database(client: FlaskClient) -> None:
    before = client.get("/metrics")
    assert before.status_code == 200
    assert before.content_type.startswith("text/plain; version=")
    route = "/api/v1/<entity>/<id:record_id>"
    rule = next(r.rule for r in client.application.url_map.iter_rules()
                if r.endpoint == "api.get")
    assert rule == route
    old = sample(before.text, "crmforge_http_requests_total", route=route, status="401")
    for record in (1, 2, 3):
        assert client.get(f"/api/v1/item/{record}").status_code == 401  # no token
    client.get("/readyz")
    text = client.get("/metrics").text
    assert sample(text, "crmforge_http_requests_total", route=route, status="401") == old + 3
    assert sample(text, "crmforge_http_request_duration_seconds_count", route=route) >= 3
    assert sample(text, "crmforge_http_request_db_seconds_sum", route="/readyz") > 0
    assert sample(text, "crmforge_db_statement_duration_seconds_count") > 0
    assert "/api/v1/item/1" not in text  # addresses never become labels


@pytest.mark.parametrize(("sent", "kept"), [
    ("lb-1234.abc", True), ("x" * 64, True), ("x" * 65, False), ("has space", False),
    ("<script>", False), ("", False)])
def test_the_request_id_is_honoured_when_plausible(client: FlaskClient, sent: str,
                                                   kept: bool) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": sent})
    given = response.headers["X-Request-ID"]
    assert (given == sent) is kept
    assert kept or re.fullmatch(r"[0-9a-f]{16}", given)


def test_the_error_page_shows_the_request_id(client: FlaskClient) -> None:
    response = client.get("/no/such/page", headers={"X-Request-ID": "req-77",
                                                      "Accept": "text/html"})
    assert response.status_code == 404 and response.headers["X-Request-ID"] == "req-77"
    assert "Request id: <code>req-77</code>" in response.text


def test_log_lines_are_json_with_the_request_id(client: FlaskClient) -> None:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JSONFormatter())
    access = logging.getLogger("crmforge.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        client.get("/readyz", headers={"X-Request-ID": "abc-1"})
    finally:
        access.removeHandler(handler)
    entry = json.loads(lines[-1])
    assert entry["request_id"] == "abc-1" and entry["status"] == 200
    assert entry["route"] == "/readyz" and entry["db_ms"] > 0 and entry["level"] == "INFO"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])


def test_a_log_line_outside_a_request_has_no_id() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    entry = json.loads(JSONFormatter().format(record))
    assert entry == {"time": entry["time"], "level": "WARNING", "logger": "x",
                     "message": "hello you"}

