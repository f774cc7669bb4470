"""Operations endpoints, answered without sign-in (docs/deploy.md):

- `GET /healthz` — the process is alive: `200 {"status": "ok"}`, touching nothing else.
- `GET /readyz` — the process can serve: the database answers, the model it serves is the
  one the database was last migrated to (`runtime.http.model_watch`), and the job queue
  answers when `CRMFORGE_QUEUE_URL` is set. `200` or `503`, with each check's result and, on
  `503`, the `reason`.
- `GET /metrics` — Prometheus text format: request latency by route template, requests by
  status, time in the database per request and per statement, the queue's depth, and the
  worker's failed jobs by kind and status (`crm_job_failure`, read when scraped).

Under `crmforge serve` (several gunicorn workers) the counters of every worker are added up
through prometheus_client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`, set by the server).
Without it, as under `crmforge run`, each process reports its own.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from threading import Lock
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    has_request_context,
    jsonify,
    request,
)
from huey.storage import RedisStorage, SqliteStorage
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import ConnectionPool
from sqlalchemy.engine import Engine

from runtime.http import requestlog
from runtime.http.current import get_instance
from runtime.http.model_watch import WATCH
from runtime.process import jobs
from runtime.process.setup import last_applied

QUEUE_NAME = "crmforge"  # the Huey queue `crmforge worker` reads (runtime.ops.worker)
QUEUE_TIMEOUT = 2.0  # seconds a readiness or metrics probe waits for the queue
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class Metrics:
    requests: Histogram
    statuses: Counter
    request_db: Histogram
    statements: Histogram


_MADE: list[Metrics] = []  # one set per process: prometheus_client refuses a name twice
_MAKING = Lock()


def metrics() -> Metrics:
    """Made on first use, not at import: `crmforge serve` chooses the multiprocess directory
    after this module is imported, and a metric reads it when it is made."""
    if not _MADE:
        with _MAKING:
            if not _MADE:
                _MADE.append(_make_metrics())
    return _MADE[0]


def _make_metrics() -> Metrics:
    return Metrics(
        Histogram("crmforge_http_request_duration_seconds", "Time to answer a request",
                  ["method", "route"]),
        Counter("crmforge_http_requests", "Requests answered", ["method", "route", "status"]),
        Histogram("crmforge_http_request_db_seconds", "Time a request spent in the database",
                  ["route"]),
        Histogram("crmforge_db_statement_duration_seconds", "Time of one SQL statement",
                  buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10)),
    )


def register(app: Flask, engine: Engine) -> None:
    """Add the endpoints, and count every request of `app` and every statement of `engine`."""
    app.register_blueprint(create_blueprint())
    app.after_request(_observe)
    time_statements(engine)


def create_blueprint() -> Blueprint:
    bp = Blueprint("ops", __name__)
    bp.add_url_rule("/healthz", "healthz", healthz)
    bp.add_url_rule("/readyz", "readyz", readyz)
    bp.add_url_rule("/metrics", "metrics", metrics_page)
    return bp


def healthz() -> Response:
    return jsonify(status="ok")


def readyz() -> tuple[Response, int]:
    checks = {"database": _database(), "migrations": _migrations(), "queue": _queue()}
    failed = [f"{name}: {result}" for name, result in checks.items()
              if result not in ("ok", "not configured")]
    body: dict[str, Any] = {"status": "unavailable" if failed else "ready", "checks": checks}
    if failed:
        body["reason"] = "; ".join(failed)
    return jsonify(body), 503 if failed else 200


def _database() -> str:
    try:
        with get_instance().engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        return f"unreachable ({_first_line(exc)})"
    return "ok"


def _migrations() -> str:
    inst = get_instance()
    watch = current_app.extensions.get(WATCH)
    if watch is not None and watch.problem:
        return watch.problem
    try:
        applied = last_applied(inst.engine)
    except sa.exc.SQLAlchemyError as exc:
        return f"cannot be read ({_first_line(exc)})"
    if applied is None:
        return "the database was never migrated: run crmforge install core"
    if applied != inst.model.hash:
        return (f"the database is at model {applied[:12]}, this process serves "
                f"{inst.model.hash[:12]}: run crmforge migrate, or restart the process")
    return "ok"


def _queue() -> str:
    url = os.environ.get("CRMFORGE_QUEUE_URL")
    if not url:
        return "not configured"
    try:
        queue_storage(url).queue_size()
    except Exception as exc:  # noqa: BLE001 - whatever the queue's client raises: not ready
        return f"unreachable ({_first_line(exc)})"
    return "ok"


@functools.cache  # one client (and connection pool) per queue URL and process
def queue_storage(url: str) -> Any:
    """The storage of the worker's Huey queue at `url` (redis://… or sqlite:///…)."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        # Huey takes a URL or connection options, not both: the timeouts go on the pool
        pool = ConnectionPool.from_url(url, socket_timeout=QUEUE_TIMEOUT,
                                       socket_connect_timeout=QUEUE_TIMEOUT)
        return RedisStorage(QUEUE_NAME, connection_pool=pool)
    if url.startswith("sqlite:///"):
        return SqliteStorage(QUEUE_NAME, filename=url[len("sqlite:///"):],
                             timeout=QUEUE_TIMEOUT)
    raise ValueError(f"CRMFORGE_QUEUE_URL must start with redis:// or sqlite:///, not {url!r}")


def metrics_page() -> Response:
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
        metrics()  # so that the families show before the first request is counted
    text = generate_latest(registry) + generate_latest(_scraped())
    return Response(text, content_type=CONTENT_TYPE_LATEST)


class QueueCollector(Collector):
    """The worker queue's depth, read when scraped (only with CRMFORGE_QUEUE_URL)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        url = os.environ.get("CRMFORGE_QUEUE_URL")
        if not url:
            return
        up = GaugeMetricFamily("crmforge_queue_up", "1 when the job queue answers")
        depth = GaugeMetricFamily("crmforge_queue_depth", "Jobs waiting in the queue")
        try:
            depth.add_metric([], queue_storage(url).queue_size())
            up.add_metric([], 1)
            yield depth
        except Exception:  # noqa: BLE001 - a queue that does not answer is reported as down
            up.add_metric([], 0)
        yield up


class JobFailureCollector(Collector):
    """The worker's jobs that failed (`crm_job_failure`, written by every worker), by kind
    and status, read when scraped: one grouped query on the primary."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        failed = GaugeMetricFamily(
            "crmforge_job_failures", "Jobs that failed at least once, by kind and status "
            "(retrying, failed: gave up, recovered)", labels=["kind", "status"])
        attempts = GaugeMetricFamily(
            "crmforge_job_failed_attempts", "Failed attempts of those jobs",
            labels=["kind", "status"])
        try:
            found = jobs.by_kind(get_instance())
        except sa.exc.SQLAlchemyError:  # the database away: /readyz says so; no numbers
            return
        for (kind, status), (number, tries) in sorted(found.items()):
            failed.add_metric([kind, status], number)
            attempts.add_metric([kind, status], tries)
        yield failed
        yield attempts


def _scraped() -> CollectorRegistry:
    """The values read at scrape time, from the queue and the database."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector())
    registry.register(JobFailureCollector())
    return registry


def _observe(response: Response) -> Response:
    rule, method = requestlog.route(), request.method
    found = metrics()
    found.requests.labels(method, rule).observe(requestlog.elapsed())
    found.statuses.labels(method, rule, str(response.status_code)).inc()
    found.request_db.labels(rule).observe(g.get("db_seconds", 0.0))
    return response


def time_statements(engine: Engine) -> None:
    """Time every statement `engine` runs: into the statement histogram, and into the
    request's database time when a request runs."""
    if not sa.event.contains(engine, "before_cursor_execute", _before):
        sa.event.listen(engine, "before_cursor_execute", _before)
        sa.event.listen(engine, "after_cursor_execute", _after)


def _before(conn: Any, *_: Any) -> None:
    conn.info.setdefault("crm_started", []).append(time.perf_counter())


def _after(conn: Any, *_: Any) -> None:
    started = conn.info.get("crm_started")
    if not started:
        return
    seconds = time.perf_counter() - started.pop()
    metrics().statements.observe(seconds)
    if has_request_context():
        g.db_seconds = g.get("db_seconds", 0.0) + seconds


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
