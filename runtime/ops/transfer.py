"""Import and export of records from the command line: CSV, XLSX (openpyxl) and JSON.

`crmforge import` reads and writes through `runtime.process.imports` (the web's import pages
do too; see its docstring for how rows are matched, checked and kept) and shows its progress
on one line (`progress_line`); `crmforge export` writes what `runtime.read.export` gives.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO

from runtime.core.instance import Actor, Instance
from runtime.process.imports import (
    BATCH,
    ImportResult,
    Reader,
    TransferError,
    import_rows,
    problem_text,
    read_file,
    unsettable,
    write,
    write_many,
)
from runtime.read.export import Export, write_export

# `crmforge import`, the demo data and the tests reach the import through this module
__all__ = ["BATCH", "ImportResult", "Reader", "TransferError", "export", "import_rows",
           "problem_text", "progress_line", "read_file", "unsettable", "write", "write_many"]


# -- export --------------------------------------------------------------------------------


def export(inst: Instance, entity: str, fmt: str, out: IO[bytes],
           actor: Actor | None = None, codes: bool = False) -> int:
    """Write every record of `entity` the actor (default: the system) may read to `out` as
    `fmt`, in id order, links as ids (so the file imports back), choices as labels unless
    `codes`; returns how many. The columns, cells and formula escaping are those of
    `runtime.read.export`, the web's too."""
    return write_export(Export(inst, actor or Actor.system_actor("export"), entity,
                               codes=codes), fmt, out)



def progress_line(reader: Reader, out: IO[str] | None = None) -> Callable[[int], None]:
    """A `progress` for `import_rows` that keeps one line up to date on `out` (standard
    error): rows written, rows per second, how much of the file is read and the time left."""
    started = time.monotonic()

    def show(done: int) -> None:
        elapsed = max(time.monotonic() - started, 1e-6)
        fraction = reader.fraction()
        left = elapsed * (1 - fraction) / fraction if fraction > 0 else 0.0
        print(f"\r{done:,} rows · {done / elapsed:,.0f} rows/s · {fraction:.0%} · "
              f"about {left:,.0f} s left  ", end="", file=out or sys.stderr, flush=True)

    return show

