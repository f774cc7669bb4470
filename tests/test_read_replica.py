"""`CRMFORGE_READ_DATABASE_URL`: lists, search, export and dashboards read from the replica,
record pages and every write from the primary, and a browser that wrote reads its lists from
the primary for a while (runtime.http.replica).

A second PostgreSQL schema stands in for the replica: the same pack installed in both, and a
marker record in each that the other lacks, so every answer shows which database gave it. With
SQLite the setting is refused."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from api_support import bearer, user_with_token
from conftest import build_instance, provision_database
from flask.testing import FlaskClient
from support import admin_actor, write_pack
from web_support import csrf, make_app, sign_in

from runtime.core.db import write_transaction
from runtime.core.instance import Instance
from runtime.http import replica
from runtime.ops.cli import main
from runtime.process.setup import SetupError
from runtime.write import records

LEAD = """
entity: lead
title_field: name
fields:
  name: {type: text, required: true}
"""
DASHBOARD = """
dashboard: leads
label: Leads
widgets:
  - {type: number, label: Leads, entity: lead, op: count}
"""


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    return write_pack(tmp_path / "packs", {"entities/lead.yaml": LEAD,
                                           "dashboards/leads.yaml": DASHBOARD})


@dataclass
class Pair:
    primary: Instance
    replica: Instance
    replica_url: str
    marker: int  # the record only the primary has


@pytest.fixture
def pair(pack: Path, tmp_path: Path) -> Iterator[Pair]:
    with provision_database("postgresql", tmp_path / "p") as primary_url, \
            provision_database("postgresql", tmp_path / "r") as replica_url:
        primary = build_instance(pack, primary_url)
        copy = build_instance(pack, replica_url)
        marker = records.create(primary, admin_actor(primary), "lead", {"name": "On the primary"})
        for name in ("On the replica", "Also on the replica"):
            records.create(copy, admin_actor(copy), "lead", {"name": name})
        try:
            yield Pair(primary, copy, replica_url, marker["id"])
        finally:
            for inst in (primary, copy):
                if inst.read_engine is not None:
                    inst.read_engine.dispose()
                inst.engine.dispose()


def client_of(pair: Pair, tmp_path: Path) -> FlaskClient:
    return make_app(pair.primary, tmp_path, READ_DATABASE_URL=pair.replica_url).test_client()


def names(answer) -> list[str]:  # noqa: ANN001 - a test client's response
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    return sorted(row["name"] for row in answer.json["data"])


@pytest.mark.postgres
def test_lists_search_and_dashboards_read_the_replica(pair: Pair, tmp_path: Path) -> None:
    client = client_of(pair, tmp_path)
    _actor, token = user_with_token(pair.primary, "ana", is_admin=True)
    auth = bearer(token)  # the token is checked on the primary, which alone has it
    assert names(client.get("/api/v1/lead", headers=auth)) == [
        "Also on the replica", "On the replica"]
    assert names(client.get("/api/v1/lead?q=also", headers=auth)) == ["Also on the replica"]
    dashboard = client.get("/api/v1/dashboards/leads", headers=auth)
    assert dashboard.status_code == 200, dashboard.json
    assert dashboard.json["widgets"][0]["value"] == 2
    # the record page reads the primary: the marker is there, though no list shows it
    record = client.get(f"/api/v1/lead/{pair.marker}", headers=auth)
    assert record.status_code == 200 and record.json["name"] == "On the primary"


@pytest.mark.postgres
def test_a_browser_that_wrote_reads_its_lists_from_the_primary(pair: Pair, tmp_path: Path,
                                                               monkeypatch) -> None:
    client = client_of(pair, tmp_path)
    sign_in(client, pair.primary, admin_actor(pair.primary))
    before = client.get("/e/lead").get_data(as_text=True)
    assert "On the replica" in before and "On the primary" not in before
    export = client.get("/e/lead/export.csv").get_data(as_text=True)
    assert "On the replica" in export and "On the primary" not in export
    saved = client.post("/e/lead/new", data={"csrf_token": csrf(client.get(
        "/e/lead/new").get_data(as_text=True)), "name": "Just saved"}, follow_redirects=True)
    assert saved.status_code == 200
    after = client.get("/e/lead").get_data(as_text=True)
    assert "Just saved" in after and "On the primary" in after and "On the replica" not in after
    monkeypatch.setattr(replica, "STICKY_SECONDS", 0)  # the while is over
    later = client.get("/e/lead").get_data(as_text=True)
    assert "On the replica" in later and "Just saved" not in later


@pytest.mark.postgres
def test_reads_after_a_write_in_the_same_request_go_to_the_primary(pair: Pair,
                                                                    tmp_path: Path) -> None:
    """Bookkeeping in a write transaction (a token's last use) leaves the lists on the replica;
    a record written sends them to the primary, for the rest of that context only."""
    client_of(pair, tmp_path)  # gives the primary its read engine

    def listed() -> list[str]:
        with pair.primary.reader() as conn:
            return sorted(conn.exec_driver_sql("SELECT name FROM lead").scalars())

    def request() -> list[list[str]]:
        seen = [listed()]
        with write_transaction(pair.primary.engine) as conn:
            conn.exec_driver_sql("SELECT 1")
        seen.append(listed())
        records.create(pair.primary, admin_actor(pair.primary), "lead", {"name": "New"})
        return [*seen, listed()]

    replica_rows = ["Also on the replica", "On the replica"]
    assert contextvars.Context().run(request) == [
        replica_rows, replica_rows, ["New", "On the primary"]]
    assert contextvars.Context().run(listed) == replica_rows


def test_sqlite_refuses_a_replica(tmp_path: Path, make_instance) -> None:  # noqa: ANN001
    inst = make_instance(write_pack(tmp_path / "packs", {"entities/lead.yaml": LEAD}))
    if inst.engine.dialect.name != "sqlite":
        pytest.skip("the refusal is SQLite's")
    with pytest.raises(SetupError, match="CRMFORGE_READ_DATABASE_URL .* SQLite"):
        make_app(inst, tmp_path, READ_DATABASE_URL="postgresql://127.0.0.1/other")


def test_serve_refuses_a_replica_of_sqlite(tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMFORGE_SECRET_KEY", "k" * 40)
    monkeypatch.setenv(replica.ENVIRONMENT, f"sqlite:///{tmp_path / 'copy.db'}")
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    assert main(["serve", "--database-url", url]) == 1
    assert "CRMFORGE_READ_DATABASE_URL names a read replica" in capsys.readouterr().err
