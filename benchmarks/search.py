"""Quick search and filters at scale, measured on the rendered web list page (issue 14, items
3–5): `python -m benchmarks.search [--rows N] [--database-url URL]`.

A `person` entity (7 fields, benchmarks/person_pack) is filled with N rows (default 1,000,000)
whose last names come from 200 made-up surnames, so that one surname matches about 0.5% of
the rows; the city (the list's declared filter) from 100 cities (1% each). Signed in as an
admin, through the in-process WSGI client, the median time of the whole HTML page of:

1. the list page with a quick search for one surname  ÷  the same page without a search;
2. the list page filtered by city (the list's default sort)  ÷  the same page unfiltered;
3. the global search page (`/search?q=`) for the surname  ÷  the list page (one entity here:
   the issue's figure is over every pack's entities).

Results go to docs/performance.md (section `search`, or `search-postgresql`).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from benchmarks.report import write_section
from benchmarks.run import median_ms
from builder.linker import build_model
from runtime.core import phones
from runtime.core.db import make_engine
from runtime.core.instance import Instance, utcnow
from runtime.core.schema import build_schema
from runtime.http.app import create_app
from runtime.http.auth import SESSION_KEY, start_session
from runtime.process.setup import assemble

HERE = Path(__file__).resolve().parent
SYLLABLES = ["bar", "col", "den", "fir", "gal", "hov", "jun", "kel", "lom", "mar", "nox", "pel",
             "quin", "rad", "sol", "tav", "ulm", "vor", "wex", "yar"]
CITIES = [f"City {n:03d}" for n in range(100)]
FIRST = ["Ann", "Bob", "Cy", "Di", "Eve", "Finn", "Gus", "Hal", "Ida", "Jo", "Kit", "Lu"]
TARGETS = {
    "search_vs_list": ("list page with a quick search ÷ without", "≤ 1.5", 1.5),
    "filter_vs_list": ("list page filtered by city (default sort) ÷ page 1", "≤ 1.5", 1.5),
    "global_vs_list": ("global search page ÷ list page (one entity)", "≤ 3", 3.0),
}


def surnames() -> list[str]:
    """200 surnames, none inside another (a search for one finds only its rows)."""
    names = sorted({(a + b + c).title() for a in SYLLABLES for b in SYLLABLES[::3]
                    for c in ("ton", "ley", "more")})[:200]
    return [n for n in names if not any(n.lower() in m.lower() for m in names if m != n)]


def make(url: str) -> Instance:
    model = build_model([HERE / "person_pack"])
    engine = make_engine(url)
    schema = build_schema(model)
    schema.private_metadata().drop_all(engine)
    schema.create_all(engine)
    inst = assemble(model, engine)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(schema.table("user").insert().values(
            id=1, username="admin", full_name="Admin", active=True, is_admin=True,
            created_at=now, updated_at=now, version=1))
    return inst


def load(inst: Instance, count: int, names: list[str], seed: int = 11) -> float:
    """Fill `person` through SQLAlchemy Core (the search index follows by itself)."""
    table = inst.schema.table("person")
    rng = random.Random(seed)
    now = utcnow()
    start = time.perf_counter()
    batch: list[dict] = []
    with inst.engine.begin() as conn:
        for n in range(count):
            last, first = names[n % len(names)], rng.choice(FIRST)
            phone = f"0117 496 {rng.randrange(10000):04d}"
            batch.append({
                "first_name": first, "last_name": last,
                "email": f"{first}.{last}{n}@example.com".lower(), "phone": phone,
                phones.shadow("phone"): phones.normalized(phone),
                "city": CITIES[rng.randrange(len(CITIES))],
                "birthday": date(1950, 1, 1) + timedelta(days=rng.randrange(20000)),
                "score": rng.randrange(100), "created_at": now, "updated_at": now,
                "version": 1, "owner": 1, "created_by": 1, "updated_by": 1})
            if len(batch) == 20_000:
                conn.execute(table.insert(), batch)
                batch.clear()
        if batch:
            conn.execute(table.insert(), batch)
    with inst.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if conn.dialect.name == "postgresql"
                             else "ANALYZE")
    return time.perf_counter() - start


def signed_in(inst: Instance):  # noqa: ANN201
    app = create_app({"INSTANCE": inst, "TESTING": False, "SECRET_KEY": "bench"})
    client = app.test_client()
    key = start_session(inst, 1)
    with client.session_transaction() as session:
        session[SESSION_KEY] = key
    return client


def measure(inst: Instance, term: str, city: str, repeat: int) -> dict[str, float]:
    client = signed_in(inst)

    def page(path: str, must: str | None = None):  # noqa: ANN202
        def get() -> None:
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.status_code)
            if must is not None:
                assert must in answer.get_data(as_text=True), (path, must)
        return get

    times = {
        "list": median_ms(page("/e/person"), repeat),
        "search": median_ms(page(f"/e/person?q={term}", term), repeat),
        "filter": median_ms(page(f"/e/person?city={city.replace(' ', '+')}", city), repeat),
        "global": median_ms(page(f"/search?q={term}", term), repeat),
    }
    return times


def report(times: dict[str, float], rows: int, found: int, backend: str, loaded: float) -> str:
    ratios = {"search_vs_list": (times["search"], times["list"]),
              "filter_vs_list": (times["filter"], times["list"]),
              "global_vs_list": (times["global"], times["list"])}
    lines = [
        f"## Quick search and filters at scale ({backend})", "",
        "Measured by `python -m benchmarks.search` (part of `make bench`); see "
        "`benchmarks/search.py` for the method: the whole rendered HTML list page, signed in, "
        "through the in-process WSGI client; medians.", "",
        f"Last run: {date.today().isoformat()}, {backend}, {rows:,} `person` rows (7 fields); "
        f"the searched surname matches {found:,} of them ({found / rows:.2%}).", "",
        "| measure | ratio | target | met | detail |", "|---|---|---|---|---|"]
    for key, (mine, base) in ratios.items():
        label, target, bound = TARGETS[key]
        ratio = mine / base
        lines.append(f"| {label} | {ratio:.2f} | {target} | {'yes' if ratio <= bound else 'no'}"
                     f" | {mine:.1f} ms ÷ {base:.1f} ms |")
    lines += ["", f"Loading {rows:,} rows with the search index kept by the database: "
                  f"{loaded:.1f} s."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url", help="a PostgreSQL URL (its tables are reset)")
    parser.add_argument("--no-write", action="store_true", help="print, do not update docs")
    args = parser.parse_args(argv)
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'search.db'}"
    names = surnames()
    inst = make(url)
    loaded = load(inst, args.rows, names)
    term, city = names[17], CITIES[42]
    with inst.engine.connect() as conn:
        table = inst.schema.table("person")
        found = conn.execute(sa.select(sa.func.count()).where(
            table.c.last_name == term)).scalar_one()
    times = measure(inst, term, city, args.repeat)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    text = report(times, args.rows, found, backend, loaded)
    print(text)
    if not args.no_write:
        write_section("search" + ("-postgresql" if args.database_url else ""), text)
    inst.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
