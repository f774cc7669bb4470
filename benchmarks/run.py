"""`make bench`: list and create performance at a million records, measured side by side.

Every ratio compares two things measured in the same run, on the same machine and database,
through the same in-process WSGI client, so that the machine's speed cancels out:

1. list page through the JSON API  ÷  a hand-written Flask + SQLAlchemy Core endpoint that
   serves the same page (same sort, same 50 rows, JSON) with raw SQL;
2. a page 10,000 pages deep (keyset cursor)  ÷  page 1;
3. the list page with 1,000,000 rows  ÷  with 10,000 rows;
4. create throughput through the API  ÷  a hand-written Flask + Core endpoint doing the same
   insert (one row per request, one transaction each).

The results go to docs/performance.md. Run `python -m benchmarks.run --rows 100000` for a
quicker look; `--database-url` measures PostgreSQL instead of SQLite.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, jsonify, request

from benchmarks.report import write_section
from builder.linker import build_model
from runtime.core.db import make_engine, write_transaction
from runtime.core.instance import Instance, utcnow
from runtime.core.schema import build_schema
from runtime.process.setup import assemble

HERE = Path(__file__).resolve().parent
TARGETS = {
    "api_vs_raw_list": ("list page: API ÷ hand-written raw SQL endpoint", "≤ 1.5", 1.5, "le"),
    "deep_vs_first": ("page 10,000 pages deep ÷ page 1", "≤ 1.3", 1.3, "le"),
    "big_vs_small": ("list page at 1M rows ÷ at 10k rows", "≤ 1.5", 1.5, "le"),
    "create_api_vs_raw": ("create throughput: API ÷ hand-written endpoint", "≥ 0.7", 0.7, "ge"),
}


def median_ms(fn: Callable[[], object], repeat: int, warmup: int = 20) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def load_rows(inst: Instance, count: int, seed: int = 7) -> None:
    """Fill the `item` table with `count` rows through SQLAlchemy Core, in batches."""
    table = inst.schema.table("item")
    rng = random.Random(seed)
    now = utcnow()
    statuses = ["open", "won", "lost"]
    batch: list[dict] = []
    with inst.engine.begin() as conn:
        for number in range(1, count + 1):
            batch.append({
                "name": f"Item {number:07d}", "amount": Decimal(rng.randrange(0, 10_000_000)) / 100,
                "quantity": rng.randrange(1, 100), "status": statuses[number % 3],
                "closes_on": date(2026, 1, 1) + timedelta(days=number % 365),
                "created_at": now, "updated_at": now, "version": 1, "owner": 1,
                "created_by": 1, "updated_by": 1})
            if len(batch) == 20_000:
                conn.execute(table.insert(), batch)
                batch.clear()
        if batch:
            conn.execute(table.insert(), batch)


def make_instance(url: str) -> tuple[Instance, str]:
    """A fresh instance of the benchmark pack with an admin user and an API token."""
    from runtime.core.passwords import hash_password
    from runtime.http import auth

    model = build_model([HERE / "pack"])
    engine = make_engine(url)
    schema = build_schema(model)
    schema.private_metadata().drop_all(engine)
    schema.create_all(engine)
    inst = assemble(model, engine)
    now = utcnow()
    with write_transaction(engine) as conn:
        conn.execute(schema.table("user").insert().values(
            id=1, username="admin", full_name="Admin", active=True, is_admin=True,
            password_hash=hash_password("bench-admin"), created_at=now, updated_at=now,
            version=1))
    token = auth.create_token(inst, 1, "bench")
    return inst, token


def raw_app(inst: Instance) -> Flask:
    """The hand-written comparison: Flask + SQLAlchemy Core, no CRMForge in the request path.

    Like any real endpoint it checks the bearer token (one indexed query), so both sides pay
    for authentication and the ratio measures what CRMForge adds on top.
    """
    import hashlib

    app = Flask("raw")
    table = inst.schema.table("item")
    tokens = inst.schema.system("token")
    columns = [c for c in table.c]

    @app.before_request
    def authenticate():  # noqa: ANN202
        token = request.headers.get("Authorization", "").partition(" ")[2]
        digest = hashlib.sha256(token.encode()).hexdigest()
        with inst.engine.connect() as conn:
            user = conn.execute(sa.select(tokens.c.user_id).where(
                tokens.c.token_hash == digest)).scalar()
        if user is None:
            return jsonify({"error": "unauthorized"}), 401
        return None

    def row_json(row: sa.Row) -> dict:
        out = {}
        for key, value in row._mapping.items():
            out[key] = value.isoformat() if hasattr(value, "isoformat") else (
                str(value) if isinstance(value, Decimal) else value)
        return out

    @app.get("/items")
    def items():  # noqa: ANN202
        query = sa.select(*columns).order_by(table.c.amount.desc(), table.c.id.desc()).limit(51)
        with inst.engine.connect() as conn:
            rows = conn.execute(query).all()
        return jsonify({"data": [row_json(r) for r in rows[:50]],
                        "next_cursor": str(rows[-1].id) if len(rows) > 50 else None})

    @app.post("/items")
    def create():  # noqa: ANN202
        body = request.get_json()
        now = utcnow()
        values = {"name": str(body["name"]), "amount": Decimal(str(body["amount"])),
                  "quantity": int(body["quantity"]), "status": body.get("status", "open"),
                  "created_at": now, "updated_at": now, "version": 1, "owner": 1,
                  "created_by": 1, "updated_by": 1}
        with write_transaction(inst.engine) as conn:
            new_id = conn.execute(table.insert().values(**values)).inserted_primary_key[0]
        return jsonify({"id": new_id, **{k: str(v) for k, v in values.items()}}), 201

    return app


def api_client(inst: Instance, token: str):  # noqa: ANN201
    from runtime.http.app import create_app

    app = create_app({"INSTANCE": inst, "TESTING": False, "SECRET_KEY": "bench"})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    return client, headers


def measure(url_for: Callable[[str], str], rows: int, small_rows: int, repeat: int) -> dict:
    results: dict[str, float] = {}
    notes: dict[str, str] = {}

    # -- 3. small table first -----------------------------------------------------------
    inst, token = make_instance(url_for("small"))
    load_rows(inst, small_rows)
    client, headers = api_client(inst, token)
    small = median_ms(lambda: _ok(client.get("/api/v1/item?limit=50", headers=headers)), repeat)
    inst.engine.dispose()

    # -- the big table ----------------------------------------------------------------------
    inst, token = make_instance(url_for("big"))
    started = time.perf_counter()
    load_rows(inst, rows)
    notes["load"] = f"{rows:,} rows loaded in {time.perf_counter() - started:.1f} s"
    client, headers = api_client(inst, token)
    raw = raw_app(inst).test_client()
    raw.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    api_ms = median_ms(lambda: _ok(client.get("/api/v1/item?limit=50", headers=headers)), repeat)
    raw_ms = median_ms(lambda: _ok(raw.get("/items")), repeat)
    results["api_vs_raw_list"] = api_ms / raw_ms
    notes["api_vs_raw_list"] = f"API {api_ms:.2f} ms, raw {raw_ms:.2f} ms"
    results["big_vs_small"] = api_ms / small
    notes["big_vs_small"] = f"{rows:,} rows {api_ms:.2f} ms, {small_rows:,} rows {small:.2f} ms"

    # -- 2. deep page: walk 500 rows at a time to the 10,000th page of 50 --------------------
    depth_pages = min(10_000, rows // 50 - 1)
    cursor = None
    for _ in range(depth_pages * 50 // 500):
        query = "/api/v1/item?limit=500" + (f"&cursor={cursor}" if cursor else "")
        cursor = _ok(client.get(query, headers=headers)).get_json()["next_cursor"]
    deep_ms = median_ms(lambda: _ok(client.get(f"/api/v1/item?limit=50&cursor={cursor}",
                                               headers=headers)), repeat)
    results["deep_vs_first"] = deep_ms / api_ms
    notes["deep_vs_first"] = (f"page {depth_pages:,}: {deep_ms:.2f} ms, page 1: "
                              f"{api_ms:.2f} ms")

    # -- 4. create throughput, interleaved in rounds so drift hits both sides ----------------
    rng = random.Random(11)
    api_time = raw_time = 0.0
    per_round, rounds = 100, 10
    for _ in range(rounds):
        for side in ("api", "raw"):
            start = time.perf_counter()
            for number in range(per_round):
                body = {"name": f"New {number}", "amount": str(rng.randrange(1, 99999)),
                        "quantity": rng.randrange(1, 9), "status": "open"}
                if side == "api":
                    _ok(client.post("/api/v1/item", json=body, headers=headers), 201)
                else:
                    _ok(raw.post("/items", json=body), 201)
            elapsed = time.perf_counter() - start
            if side == "api":
                api_time += elapsed
            else:
                raw_time += elapsed
    total = per_round * rounds
    api_rate, raw_rate = total / api_time, total / raw_time
    results["create_api_vs_raw"] = api_rate / raw_rate
    notes["create_api_vs_raw"] = f"API {api_rate:.0f}/s, raw {raw_rate:.0f}/s"
    inst.engine.dispose()
    return {"results": results, "notes": notes}


def _ok(response, status: int = 200):  # noqa: ANN001, ANN202
    if response.status_code != status:
        raise SystemExit(f"benchmark request failed: {response.status_code} "
                         f"{response.get_data(as_text=True)[:500]}")
    return response


def write_report(measured: dict, rows: int, small_rows: int, backend: str) -> str:
    lines = [
        f"## The JSON API at a million records ({backend})",
        "",
        ("Measured by `python -m benchmarks.run` (part of `make bench`)" if backend == "SQLite"
         else "Measured by `python -m benchmarks.run --database-url postgresql://…/bench` (an "
         "empty database)")
        + "; see `benchmarks/run.py` for the method. Each ratio compares two measurements "
        "taken in the same run on the same machine, so the machine's speed cancels out. "
        "Latencies are medians through an in-process WSGI client.",
        "",
        f"Last run: {date.today().isoformat()}, {backend}, {rows:,} rows (small table "
        f"{small_rows:,}), Python {platform.python_version()} on {platform.machine()}.",
        "",
        "| measure | ratio | target | met | detail |",
        "|---|---|---|---|---|",
    ]
    for key, (label, shown, limit, way) in TARGETS.items():
        value = measured["results"][key]
        met = value <= limit if way == "le" else value >= limit
        lines.append(f"| {label} | {value:.2f} | {shown} | {'yes' if met else '**no**'} | "
                     f"{measured['notes'][key]} |")
    lines += ["", f"Loading: {measured['notes']['load']}.", ""]
    text = "\n".join(lines)
    write_section("api" if backend == "SQLite" else "api-" + backend.lower(), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--database-url", help="a PostgreSQL URL (its public schema is reset)")
    parser.add_argument("--no-write", action="store_true", help="print, do not update docs")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="crmforge-bench-"))

    def url_for(name: str) -> str:
        return args.database_url or f"sqlite:///{workdir / (name + '.db')}"

    measured = measure(url_for, args.rows, args.small_rows, args.repeat)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    if args.no_write:
        print(json.dumps(measured, indent=2))
        return 0
    print(write_report(measured, args.rows, args.small_rows, backend))
    return 0


if __name__ == "__main__":
    sys.exit(main())
