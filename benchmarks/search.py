"""Quick search and filters at scale, measured on the rendered web list page (issue 14, items
3–5): `python -m benchmarks.search [--rows N] [--database-url URL]`.

A `person` entity (7 fields, benchmarks/person_pack) is filled with N rows (default 1,000,000)
whose last names come from 200 made-up surnames, so that one surname matches about 0.5% of
the rows (`--share 0.05`: the searched one on every 20th row instead, 5% — the size of answer
10,000,000 rows give, at a tenth of the load); the city (the list's declared filter) from 100
cities (1% each). Signed in as an admin, through the in-process WSGI client, the median time
of the whole HTML page of (the pages timed in turns, one of each per round, so that other work
on the machine weighs on each alike):

1. the list page with a quick search for one surname  ÷  the same page without a search;
2. the list page filtered by city (the list's default sort)  ÷  the same page unfiltered;
3. the global search page (`/search?q=`) for the surname  ÷  the list page (one entity here:
   the issue's figure is over every pack's entities);
4. PostgreSQL only: the list page (sorted by `last_name`, the list's sort) of a reader whose
   language has an ICU collation (`zh`: `zh-x-icu`, runtime/read/collation.py)  ÷  the same
   page of a reader whose language has none (`xx`: the database's default collation, the
   order the list's index `ix_person_last_name_id` is in; also what SQLite always does).

Loading: on SQLite through SQLAlchemy Core in batches, the FTS5 index kept by its triggers; on
PostgreSQL with COPY into the table without its indexes (the folded search columns are
computed as rows arrive), then every index built over the loaded rows — the list's indexes and
the trigram and prefix indexes (core/searchindex.py) — and VACUUM ANALYZE.

Results go to docs/performance.md (section `search`, or `search-postgresql`). `--reuse
FILE_OR_URL` keeps the database between runs: it is loaded only when it does not hold
`--rows` rows, and its search index brought up to date as `crmforge migrate` would (a run
that did not load prints its figures without writing them).
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from benchmarks.report import write_section
from builder.linker import build_model
from runtime.core import phones, searchindex
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
    "collation_vs_default": ("list page in a zh reader's ICU collation ÷ in the default "
                             "collation", "—", None),
}
COLUMNS = ("first_name", "last_name", "email", "phone", phones.shadow("phone"), "city",
           "birthday", "score", "created_at", "updated_at", "version", "owner", "created_by",
           "updated_by")
SEARCHED = 17  # the index of the searched surname in `surnames()`
EVERY = 200  # the searched surname on every 200th row: its own turn only (0.5%)
READERS = {1: "en", 2: "zh", 3: "xx"}  # user id: language ("xx": no ICU collation has it)
COPY_CHUNK = 50_000


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
        conn.execute(schema.table("user").insert(), [
            {"id": user, "username": f"reader_{language}", "full_name": f"Reader {language}",
             "language": language, "active": True, "is_admin": True, "created_at": now,
             "updated_at": now, "version": 1} for user, language in READERS.items()])
    return inst


def reused(url: str, count: int, every: int = EVERY) -> Instance | None:
    """The instance over a database an earlier run filled with `count` rows, the searched
    surname on those `surname` gives it (None: it holds something else), its search index
    brought up to date as `crmforge migrate` would."""
    model = build_model([HERE / "person_pack"])
    engine = make_engine(url)
    names = surnames()
    term = names[SEARCHED]
    expected = sum(1 for n in range(count) if surname(n, names, every) == term)
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("person") or conn.execute(
                sa.text("SELECT count(*) FROM person")).scalar() != count or conn.execute(
                sa.text("SELECT count(*) FROM person WHERE last_name = :t"),
                {"t": term}).scalar() != expected:
            engine.dispose()
            return None
    with engine.begin() as conn:
        searchindex.create_all(conn, model)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    return assemble(model, engine)


def surname(n: int, names: list[str], every: int) -> str:
    """Row `n`'s last name: the surnames in turn, and the searched one on every `every`-th
    row."""
    return names[SEARCHED] if n % every == SEARCHED % every else names[n % len(names)]


def rows(count: int, names: list[str], every: int = EVERY,
         seed: int = 11):  # noqa: ANN201 - a generator
    """`count` rows of `person`, values in `COLUMNS` order (the same for both databases)."""
    rng = random.Random(seed)
    now = utcnow()
    numbers: dict[str, str | None] = {}  # 10,000 distinct phones: parse each once
    for n in range(count):
        last, first = surname(n, names, every), rng.choice(FIRST)
        phone = f"0117 496 {rng.randrange(10000):04d}"
        if phone not in numbers:
            numbers[phone] = phones.normalized(phone)
        yield (first, last, f"{first}.{last}{n}@example.com".lower(), phone, numbers[phone],
               CITIES[rng.randrange(len(CITIES))],
               date(1950, 1, 1) + timedelta(days=rng.randrange(20000)), rng.randrange(100),
               now, now, 1, 1, 1, 1)


def load(inst: Instance, count: int, names: list[str], every: int = EVERY) -> float:
    """Fill `person` (see the module's docstring); returns the seconds it took."""
    start = time.perf_counter()
    if inst.engine.dialect.name == "postgresql":
        _copy(inst, rows(count, names, every))
    else:
        table = inst.schema.table("person")
        with inst.engine.begin() as conn:
            batch: list[dict] = []
            for row in rows(count, names, every):
                batch.append(dict(zip(COLUMNS, row, strict=True)))
                if len(batch) == 20_000:
                    conn.execute(table.insert(), batch)
                    batch.clear()
            if batch:
                conn.execute(table.insert(), batch)
    with inst.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if conn.dialect.name == "postgresql"
                             else "ANALYZE")
    return time.perf_counter() - start


def _copy(inst: Instance, source) -> None:  # noqa: ANN001 - rows' generator
    """PostgreSQL: COPY the rows into `person` without its indexes, then build them."""
    table = inst.schema.private_metadata().tables["person"]  # DDL from a private copy
    with inst.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        for name in searchindex.present(conn):
            if name.startswith((searchindex.TRGM_PREFIX, searchindex.PREFIX_PREFIX)) and \
                    not name.endswith(searchindex.SIZES_SUFFIX):  # statistics, no index
                conn.exec_driver_sql(f'DROP INDEX "{name}"')
        for index in table.indexes:
            conn.execute(sa.schema.DropIndex(index))
        cursor = conn.connection.dbapi_connection.cursor()
        statement = (f"COPY person ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv)")
        done = False
        while not done:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for _ in range(COPY_CHUNK):
                row = next(source, None)
                if row is None:
                    done = True
                    break
                writer.writerow(row)
            buffer.seek(0)
            cursor.copy_expert(statement, buffer)
        for index in table.indexes:
            conn.execute(sa.schema.CreateIndex(index))
        searchindex.create_all(conn, inst.model)  # the trigram indexes, over every row


def signed_in(inst: Instance, user: int = 1):  # noqa: ANN201
    app = create_app({"INSTANCE": inst, "TESTING": False, "SECRET_KEY": "bench"})
    client = app.test_client()
    key = start_session(inst, user)
    with client.session_transaction() as session:
        session[SESSION_KEY] = key
    return client


def measure(inst: Instance, term: str, city: str, repeat: int) -> dict[str, float]:
    client = signed_in(inst)
    readers = {user: signed_in(inst, user) for user in (2, 3)}

    def page(path: str, must: str | None = None, user: int = 1):  # noqa: ANN202
        def get() -> None:
            answer = (readers.get(user) or client).get(path)
            assert answer.status_code == 200, (path, answer.status_code)
            if must is not None:
                assert must in answer.get_data(as_text=True), (path, must)
        return get

    pages = {
        "list": page("/e/person"),
        "search": page(f"/e/person?q={term}", term),
        "filter": page(f"/e/person?city={city.replace(' ', '+')}", city),
        "global": page(f"/search?q={term}", term),
    }
    if inst.engine.dialect.name == "postgresql":
        pages["collated"] = page("/e/person", user=2)
        pages["default"] = page("/e/person", user=3)
    return interleaved(pages, repeat)


def interleaved(pages: dict[str, Callable[[], None]], repeat: int,
                warmup: int = 10) -> dict[str, float]:
    """The median milliseconds of each page, timed in turns (one of each per round): on a
    machine shared with other work, a busy spell then slows every page alike, and the
    ratios compare pages measured side by side."""
    for get in pages.values():
        for _ in range(warmup):
            get()
    times: dict[str, list[float]] = {name: [] for name in pages}
    for _ in range(repeat):
        for name, get in pages.items():
            start = time.perf_counter()
            get()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(spent) * 1000 for name, spent in times.items()}


def report(times: dict[str, float], rows: int, found: int, backend: str,
           loaded: float | None) -> str:
    ratios = {"search_vs_list": (times["search"], times["list"]),
              "filter_vs_list": (times["filter"], times["list"]),
              "global_vs_list": (times["global"], times["list"])}
    if "collated" in times:
        ratios["collation_vs_default"] = (times["collated"], times["default"])
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
        met = "—" if bound is None else "yes" if ratio <= bound else "no"
        lines.append(f"| {label} | {ratio:.2f} | {target} | {met} | {mine:.1f} ms ÷ "
                     f"{base:.1f} ms |")
    how = ("COPY, then every index built over the loaded rows" if backend == "PostgreSQL"
           else "the search index kept by the database")
    if loaded is not None:
        lines += ["", f"Loading {rows:,} rows ({how}): {loaded:.1f} s."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--share", type=float, default=1 / EVERY,
                        help="the share of rows the searched surname matches (default 0.005; "
                             "rounded to one row in a whole number)")
    parser.add_argument("--database-url", help="a PostgreSQL URL (its tables are reset)")
    parser.add_argument("--no-write", action="store_true", help="print, do not update docs")
    parser.add_argument("--reuse", metavar="SQLITE_FILE_OR_URL",
                        help="keep the database between runs: load it only when it does not "
                             "hold --rows rows yet (a PostgreSQL URL, or a SQLite file)")
    args = parser.parse_args(argv)
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'search.db'}"
    if args.reuse:
        url = args.reuse if "://" in args.reuse else f"sqlite:///{Path(args.reuse).resolve()}"
    names = surnames()
    every = max(1, round(1 / args.share))
    inst = reused(url, args.rows, every) if args.reuse else None
    loaded = None
    if inst is None:
        inst = make(url)
        loaded = load(inst, args.rows, names, every)
    term, city = names[SEARCHED], CITIES[42]
    with inst.engine.connect() as conn:
        table = inst.schema.table("person")
        found = conn.execute(sa.select(sa.func.count()).where(
            table.c.last_name == term)).scalar_one()
    times = measure(inst, term, city, args.repeat)
    backend = "PostgreSQL" if inst.engine.dialect.name == "postgresql" else "SQLite"
    text = report(times, args.rows, found, backend, loaded)
    print(text)
    if loaded is None:
        print("(rows loaded by an earlier run: not written to docs/performance.md)")
    elif not args.no_write:
        write_section("search" + ("-postgresql" if backend == "PostgreSQL" else ""), text)
    inst.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
