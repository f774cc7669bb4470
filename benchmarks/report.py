"""docs/performance.md is written by the benchmarks, one section each: a benchmark replaces
its own section (between `<!-- begin NAME -->` and `<!-- end NAME -->`) and leaves the others."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
HEADER = """# Performance

Measured by `make bench`, which runs every benchmark in `benchmarks/`; each one rewrites its
own section below (see the module named in it for the method).
"""


def write_section(name: str, text: str, doc: Path = DOC) -> str:
    """Put `text` in section `name` of `doc` (appended when the section is new)."""
    current = doc.read_text(encoding="utf-8") if doc.is_file() else HEADER
    if "<!-- begin " not in current:  # a report from before sections: start again
        current = HEADER
    block = f"<!-- begin {name} -->\n{text.strip()}\n<!-- end {name} -->"
    pattern = re.compile(rf"<!-- begin {re.escape(name)} -->.*?<!-- end {re.escape(name)} -->",
                         re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current)
    else:
        updated = current.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(updated, encoding="utf-8")
    return updated
