"""/metrics shows the worker's failed jobs (`crm_job_failure`) by kind and status, read from
the database when scraped: a real job of a real worker (Huey, in this process) fails because
its table is away, is retried, and gives up; SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from huey import MemoryHuey
from support import write_pack
from test_ops_endpoints import sample

from runtime.core.instance import Actor
from runtime.http.app import create_app
from runtime.http.current import EXTENSION
from runtime.ops.cli import main
from runtime.ops.worker import QUEUE_NAME, Worker
from runtime.write import records

LEAD = """
entity: lead
title_field: name
fields:
  name:    {type: text, required: true}
  touches: {type: integer}
automations:
  hourly_touch:
    on: {schedule: hourly}
    do:
      - set: {touches: "=coalesce(touches, 0) + 1"}
"""
KIND = "crmforge.run_automation"


@pytest.fixture
def app(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMFORGE_CUSTOM_DIR", str(tmp_path / "custom"))
    monkeypatch.delenv("CRMFORGE_QUEUE_URL", raising=False)
    pack = write_pack(tmp_path / "packs", {"entities/lead.yaml": LEAD})
    assert main(["install", str(pack), "--database-url", database_url]) == 0
    made = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "s" * 32})
    yield made
    made.extensions[EXTENSION].engine.dispose()


def test_failed_jobs_show_on_metrics_by_kind_and_status(app: Flask) -> None:
    inst = app.extensions[EXTENSION]
    records.create(inst, Actor.system_actor(), "lead", {"name": "Ada"})
    client = app.test_client()
    assert sample(client.get("/metrics").text, "crmforge_job_failures",
                  kind=KIND, status="retrying") == 0
    with inst.engine.begin() as conn:  # the job's table away, as in a migration
        conn.execute(sa.text("ALTER TABLE lead RENAME TO lead_away"))
    waits = Worker(MemoryHuey(QUEUE_NAME), lambda: inst, retry_delay=3600)
    waits.run_automation("lead.hourly_touch")
    assert waits.run_pending() == 1  # failed once; its retry waits an hour
    text = client.get("/metrics").text
    assert sample(text, "crmforge_job_failures", kind=KIND, status="retrying") == 1
    assert sample(text, "crmforge_job_failed_attempts", kind=KIND, status="retrying") == 1
    assert sample(text, "crmforge_job_failures", kind=KIND, status="failed") == 0
    quick = Worker(MemoryHuey(QUEUE_NAME), lambda: inst, retry_delay=0)
    quick.run_automation("lead.hourly_touch")
    assert quick.run_pending() == 5  # the first try and four retries at once: it gives up
    text = client.get("/metrics").text
    assert sample(text, "crmforge_job_failures", kind=KIND, status="retrying") == 1
    assert sample(text, "crmforge_job_failures", kind=KIND, status="failed") == 1
    assert sample(text, "crmforge_job_failed_attempts", kind=KIND, status="failed") == 5
    assert 'kind="crmforge.run_automation(' not in text  # the kind, never its arguments
