"""`make bench`: `crmforge import` ÷ a plain insert of the same rows into the same table.

One entity (benchmarks/import_pack: 8 fields, 2 validations, 1 unique field, no automations).
The same N rows are written twice, each into a fresh database of its own, in one run on the
same machine:

1. the fastest plain insert: SQLAlchemy Core `executemany` of ready-made Python values (on
   PostgreSQL psycopg2's `execute_values` through SQLAlchemy's insertmanyvalues), one
   transaction;
2. the import: `import_rows` over a `Reader` of the CSV file holding the same rows — every
   value parsed, coerced, validated, unique-checked, audited, in batches through
   `runtime.write.bulk`.

The ratio is rows/s of 2 ÷ rows/s of 1 (target ≥ 0.3). `--rows 1000000` gives the figure the
issue asks for; the default is the quick run. Peak memory (RSS) is that of the whole process.
`--database-url` measures PostgreSQL (an empty database: its tables are made and dropped;
run the import and the plain insert against it one after the other).
"""

from __future__ import annotations

import argparse
import csv
import platform
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from benchmarks.report import write_section
from builder.linker import build_model
from runtime.core.db import make_engine
from runtime.core.instance import Actor, Instance, utcnow
from runtime.core.schema import build_schema
from runtime.ops.transfer import Reader, import_rows
from runtime.process.setup import assemble

HERE = Path(__file__).resolve().parent
TARGET = 0.3
CITIES = ["Bristol", "Leeds", "York", "Bath", "Derby", "Hull", "Ely", "Wells"]
NAMES = ["Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon"]


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


def instance(url: str) -> Instance:
    model = build_model([HERE / "import_pack"])
    engine = make_engine(url)
    schema = build_schema(model)
    schema.private_metadata().drop_all(engine)
    schema.create_all(engine)
    return assemble(model, engine)


def plain(url: str, rows: list[dict]) -> tuple[float, float]:
    """Seconds (wall-clock, CPU) to insert `rows` with one executemany in one
    transaction."""
    inst = instance(url)
    table = inst.schema.table("person")
    now = utcnow()
    ready = [{**row, "created_at": now, "updated_at": now, "version": 1} for row in rows]
    started, cpu = time.perf_counter(), time.process_time()
    with inst.engine.begin() as conn:
        conn.execute(table.insert(), ready)
    seconds = time.perf_counter() - started, time.process_time() - cpu
    inst.engine.dispose()
    return seconds


def imported(url: str, path: Path, count: int) -> tuple[float, float]:
    """Seconds (wall-clock, CPU) for `import_rows` of the CSV file at `path` (reading it
    included)."""
    inst = instance(url)
    started, cpu = time.perf_counter(), time.process_time()
    with Reader(path) as reader:
        result = import_rows(inst, "person", reader.header, reader,
                             actor=Actor.system_actor("bench"))
    seconds = time.perf_counter() - started, time.process_time() - cpu
    inst.engine.dispose()
    if not result.kept or result.created != count:
        raise SystemExit(f"the import failed: {result.problems[:5]}")
    return seconds


def write_csv(path: Path, rows: Iterator[dict]) -> None:
    first = next(rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(first))
        writer.writeheader()
        writer.writerow(first)
        writer.writerows(rows)


def report(count: int, raw: tuple[float, float], bulk: tuple[float, float], peak_mb: float,
           backend: str) -> str:
    ratio = raw[0] / bulk[0]
    met = "yes" if ratio >= TARGET else "**no**"
    return "\n".join([
        f"## Importing rows ({backend})",
        "",
        "Measured by `python -m benchmarks.bulk_import` (part of `make bench`): "
        f"{count:,} valid rows of one entity (8 fields, 2 validations, 1 unique field), "
        "through `crmforge import`'s code from a CSV file, beside a plain executemany of the "
        "same rows into the same table. The CPU-time ratio is shown too: on a busy machine "
        "it is the steadier figure (SQLite runs in the process, so its work is counted).",
        "",
        f"Last run: {date.today().isoformat()}, {backend}, Python {platform.python_version()} "
        f"on {platform.machine()}.",
        "",
        "| measure | value | target | met |",
        "|---|---|---|---|",
        f"| plain executemany | {count / raw[0]:,.0f} rows/s | | |",
        f"| `crmforge import` | {count / bulk[0]:,.0f} rows/s | | |",
        f"| import ÷ plain insert (wall-clock) | {ratio:.2f} | ≥ {TARGET} | {met} |",
        f"| import ÷ plain insert (CPU time) | {raw[1] / bulk[1]:.2f} | | |",
        f"| peak memory (RSS) of the import | {peak_mb:.0f} MB | | |",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", help="an empty database (default: new SQLite files)")
    parser.add_argument("--no-write", action="store_true", help="print, do not update docs")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp())
    path = folder / "people.csv"
    write_csv(path, people(args.rows))
    # the import first, so that the peak memory is its own (it streams the file)
    bulk = imported(args.database_url or f"sqlite:///{folder / 'import.db'}", path, args.rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    raw = plain(args.database_url or f"sqlite:///{folder / 'plain.db'}",
                list(people(args.rows)))
    text = report(args.rows, raw, bulk, peak,
                  "PostgreSQL" if args.database_url else "SQLite")
    if not args.no_write:
        write_section("import" + ("_pg" if args.database_url else ""), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
