"""`make bench`: `crmforge import` ÷ a plain insert of the same rows into the same table.

One entity (benchmarks/import_pack: 8 fields, 2 validations, 1 unique field, no automations).
The same N rows are written, each into a database of its own, in one run on the same
machine:

1. the fastest plain insert: SQLAlchemy Core `executemany` of ready-made Python values (on
   PostgreSQL psycopg2's `execute_values` through SQLAlchemy's insertmanyvalues), one
   transaction (100,000 rows a call, so that the rows in memory stay few);
2. the import: `import_rows` over a `Reader` of the CSV file holding the same rows — every
   value parsed, coerced, validated, unique-checked, audited, in batches through
   `runtime.write.bulk`;
3. the upsert: `import_rows(update_by="code")` of a second file over the table the import
   filled: the same N codes, each row with other names, city, birth date and score (drawn
   from another seed), so that nearly every row changes 4 or 5 fields — each a version bump
   and an audit entry per changed field;
4. the import of the same rows into the pack with one `on: create` automation (a `set` on
   the half of the rows with a score of 500 or more) and one rollup (an office's count of its
   people; the file names each row's office by its title).

5. a plain executemany `UPDATE … WHERE code = ?` of the upsert's changes over the plain
   insert's table: what the database itself takes for those writes (an UPDATE also removes
   each row's old entry from the search index and the unique index).

Each figure is rows/s ÷ the plain insert's (targets: the import and the upsert ≥ 0.3, the
automation figure is reported without one), and the upsert's ÷ the import's (the issue's
"at the same speed": ≥ 0.9). `--rows 1000000` gives the figure the issue asks
for; the default is the quick run. Peak memory (RSS) is that of the whole process after the
import and the upsert (the files are streamed; target < 300 MB). `--database-url` measures
PostgreSQL (an empty database: its tables are made and dropped; the runs use it one after
the other).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import platform
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.report import write_section
from builder.linker import build_model
from runtime.core.db import make_engine
from runtime.core.instance import Actor, Instance, utcnow
from runtime.core.schema import build_schema
from runtime.ops.transfer import Reader, import_rows
from runtime.process.setup import assemble
from runtime.write import records

HERE = Path(__file__).resolve().parent
TARGET = 0.3
MEMORY = 300  # MB
SAME = 0.9  # the upsert "at the same speed" as the import: within a tenth
PLAIN_CHUNK = 100_000
CITIES = ["Bristol", "Leeds", "York", "Bath", "Derby", "Hull", "Ely", "Wells"]
NAMES = ["Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon"]
OFFICE = """entity: office
label: Office
title_field: name
fields:
  name:   {type: text, required: true, unique: true}
  people: {type: integer, rollup: {from: person.office, op: count}}
"""
AUTOMATION = """automations:
  known:
    entity: person
    on: create
    when: "score >= 500"
    do:
      - set: {status: known}
"""
BENCH = Actor.system_actor("bench")


def people(count: int, seed: int = 11) -> Iterator[dict]:
    """`count` valid rows as Python values, the same every run."""
    rng = random.Random(seed)
    statuses = ["new", "known", "gone"]
    for n in range(1, count + 1):
        yield {"code": f"P{n:08d}", "first_name": rng.choice(NAMES),
               "last_name": f"{rng.choice(NAMES)}son{n % 997}",
               "email": f"person{n}@example.com", "city": rng.choice(CITIES),
               "born_on": date(1950, 1, 1) + timedelta(days=rng.randrange(0, 20_000)),
               "score": rng.randrange(0, 1001), "status": statuses[n % 3]}


def instance(url: str, pack: Path = HERE / "import_pack", fresh: bool = True) -> Instance:
    """The pack's instance on `url`: its tables made anew (`fresh`) or as they are."""
    model = build_model([pack])
    engine = make_engine(url)
    schema = build_schema(model)
    if fresh:
        if engine.dialect.name != "sqlite":  # (SQLite runs get new files) whatever the last
            old = sa.MetaData()              # run left, whichever pack it was of
            old.reflect(engine)
            old.drop_all(engine)
        schema.create_all(engine)
    return assemble(model, engine)


def automated_pack(folder: Path) -> Path:
    """The import pack with an office entity (one rollup: its people), an `office` link on
    person and one `on: create` automation."""
    pack = folder / "automated_pack"
    shutil.copytree(HERE / "import_pack", pack)
    person = pack / "entities" / "person.yaml"
    text = person.read_text(encoding="utf-8")
    person.write_text(text.replace("validations:", "  office:     {type: link, to: office}\n"
                                   "validations:"), encoding="utf-8")
    (pack / "entities" / "office.yaml").write_text(OFFICE, encoding="utf-8")
    (pack / "automations").mkdir()
    (pack / "automations" / "bench.yaml").write_text(AUTOMATION, encoding="utf-8")
    return pack


def plain(url: str, rows: Iterable[dict]) -> tuple[float, float]:
    """Seconds (wall-clock, CPU) to insert `rows` with executemany in one transaction,
    PLAIN_CHUNK rows a call (see `_timed`)."""
    inst = instance(url)
    table = inst.schema.table("person")
    now = utcnow()
    ready = iter(rows)
    return _timed(inst, table.insert(), lambda: [
        {**row, "created_at": now, "updated_at": now, "version": 1}
        for row in itertools.islice(ready, PLAIN_CHUNK)])


def plain_update(url: str, rows: Iterable[dict]) -> tuple[float, float]:
    """Seconds (wall-clock, CPU) to change the rows `plain` inserted to `rows` (the same
    codes) with an executemany UPDATE … WHERE code = ?, PLAIN_CHUNK rows a call: the
    database's own cost of the upsert's writes (its search index and unique index too)."""
    inst = instance(url, fresh=False)
    table = inst.schema.table("person")
    now = utcnow()
    names = ["first_name", "last_name", "email", "city", "born_on", "score", "status"]
    stmt = table.update().where(table.c.code == sa.bindparam("_code")).values(
        {**{n: sa.bindparam(n) for n in names}, "updated_at": sa.bindparam("updated_at"),
         "version": table.c.version + 1})
    ready = iter(rows)
    return _timed(inst, stmt, lambda: [
        {**{n: row[n] for n in names}, "_code": row["code"], "updated_at": now}
        for row in itertools.islice(ready, PLAIN_CHUNK)])


def _timed(inst: Instance, stmt: Any, chunk: Callable[[], list[dict]]) -> tuple[float, float]:
    """Seconds (wall-clock, CPU) of `stmt` run with each `chunk()` of parameters until one is
    empty, and of the commit, in one transaction; the clocks run only while a call does (the
    rows are made beforehand, as the import's CSV file is, and few are in memory at once)."""
    seconds = [0.0, 0.0]
    with inst.engine.begin() as conn:
        while params := chunk():
            started, cpu = time.perf_counter(), time.process_time()
            conn.execute(stmt, params)
            seconds[0] += time.perf_counter() - started
            seconds[1] += time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
    seconds[0] += time.perf_counter() - started  # the commit
    seconds[1] += time.process_time() - cpu
    inst.engine.dispose()
    return seconds[0], seconds[1]


def imported(url: str, path: Path, count: int, *, pack: Path = HERE / "import_pack",
             update_by: str | None = None) -> tuple[float, float]:
    """Seconds (wall-clock, CPU) for `import_rows` of the CSV file at `path` (reading it
    included): into a new table, or (`update_by`) over the table as it is, every row
    naming a record."""
    inst = instance(url, pack, fresh=update_by is None)
    if "office" in inst.model.entities:
        for city in CITIES:
            records.create(inst, BENCH, "office", {"name": city})
    started, cpu = time.perf_counter(), time.process_time()
    with Reader(path) as reader:
        result = import_rows(inst, "person", reader.header, reader, actor=BENCH,
                             update_by=update_by)
    seconds = time.perf_counter() - started, time.process_time() - cpu
    inst.engine.dispose()
    print(f"{path.name}: {count:,} rows in {seconds[0]:.0f} s ({seconds[1]:.0f} s CPU), peak "
          f"RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
          file=sys.stderr, flush=True)  # a long run shows where it is
    done = result.updated if update_by else result.created
    if not result.kept or done != count:
        raise SystemExit(f"the import failed: {result.problems[:5]}")
    return seconds


def write_csv(path: Path, rows: Iterator[dict]) -> None:
    first = next(rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(first))
        writer.writeheader()
        writer.writerow(first)
        writer.writerows(rows)


def report(count: int, raw: tuple[float, float], runs: dict[str, tuple[float, float]],
           peak_mb: float, backend: str, raw_update: tuple[float, float]) -> str:
    def ratio(seconds: tuple[float, float]) -> tuple[float, float]:
        return raw[0] / seconds[0], raw[1] / seconds[1]

    def met(value: float, target: float) -> str:
        return "yes" if value >= target else "**no**"

    lines = [
        f"## Importing rows ({backend})",
        "",
        "Measured by `python -m benchmarks.bulk_import` (part of `make bench`): "
        f"{count:,} valid rows of one entity (8 fields, 2 validations, 1 unique field), "
        "through `crmforge import`'s code from a CSV file, beside a plain executemany of the "
        "same rows into the same table; then `--update-by code` of the same codes with new "
        "values over the imported table (nearly every row changes 4 or 5 fields), and the "
        "import into the same entity with one `on: create` automation and one rollup. The "
        "CPU-time ratios are shown too: on a busy machine they are the steadier figures "
        "(SQLite runs in the process, so its work is counted).",
        "",
        f"Last run: {date.today().isoformat()}, {backend}, Python {platform.python_version()} "
        f"on {platform.machine()}.",
        "",
        "| measure | value | target | met |",
        "|---|---|---|---|",
        f"| plain executemany | {count / raw[0]:,.0f} rows/s | | |",
    ]
    names = {"import": ("`crmforge import`", TARGET),
             "upsert": ("`crmforge import --update-by code` (every row a change)", TARGET),
             "automated": ("import with one `on: create` automation and one rollup", None)}
    for key, seconds in runs.items():
        label, target = names[key]
        wall, cpu = ratio(seconds)
        lines += [f"| {label} | {count / seconds[0]:,.0f} rows/s | | |",
                  f"| {label} ÷ plain insert (wall-clock) | {wall:.2f} | "
                  + (f"≥ {target} | {met(wall, target)} |" if target else "| |"),
                  f"| {label} ÷ plain insert (CPU time) | {cpu:.2f} | | |"]
    upsert = (runs["import"][0] / runs["upsert"][0], runs["import"][1] / runs["upsert"][1])
    lines += [f"| upsert ÷ import, rows/s (wall-clock) | {upsert[0]:.2f} | ≈ 1 (≥ {SAME}) "
              f"| {met(upsert[0], SAME)} |",
              f"| upsert ÷ import, rows/s (CPU time) | {upsert[1]:.2f} | | |"]
    floor = (raw[0] / raw_update[0], raw[1] / raw_update[1])
    lines += [f"| plain executemany UPDATE of the same changes ÷ plain insert (wall-clock) "
              f"| {floor[0]:.2f} | | |",
              f"| upsert ÷ plain UPDATE (wall-clock) | {raw_update[0] / runs['upsert'][0]:.2f} "
              "| | |"]
    lines.append(f"| peak memory (RSS) of the import and the upsert | {peak_mb:.0f} MB "
                 f"| < {MEMORY} MB | {'yes' if peak_mb < MEMORY else '**no**'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", help="an empty database (default: new SQLite files)")
    parser.add_argument("--no-write", action="store_true", help="print, do not update docs")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp())
    url = args.database_url or f"sqlite:///{folder / 'import.db'}"
    path, changed, offices = (folder / "people.csv", folder / "changes.csv",
                              folder / "offices.csv")
    write_csv(path, people(args.rows))
    write_csv(changed, people(args.rows, seed=12))
    write_csv(offices, ({**row, "office": row["city"]} for row in people(args.rows)))
    runs: dict[str, tuple[float, float]] = {}
    # the import and the upsert first, so that the peak memory is theirs (they stream)
    runs["import"] = imported(url, path, args.rows)
    runs["upsert"] = imported(url, changed, args.rows, update_by="code")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    runs["automated"] = imported(args.database_url or f"sqlite:///{folder / 'auto.db'}",
                                 offices, args.rows, pack=automated_pack(folder))
    plain_url = args.database_url or f"sqlite:///{folder / 'plain.db'}"
    raw = plain(plain_url, people(args.rows))
    raw_update = plain_update(plain_url, people(args.rows, seed=12))
    text = report(args.rows, raw, runs, peak,
                  "PostgreSQL" if args.database_url else "SQLite", raw_update)
    if not args.no_write:
        write_section("import" + ("_pg" if args.database_url else ""), text)
    print(text)
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
