"""Definition problems as values: every one has a code, a message and a place.

Problems are collected, never raised one at a time, so that `crmforge validate` reports
every mistake in one run. Codes are stable; tests and editors rely on them.

Code ranges:
  E0xx  reading files: YAML syntax, duplicate keys, size/depth/alias limits, encoding
  E1xx  structure: JSON Schema (unknown keys, wrong types, missing keys, bad values)
  E2xx  references: unknown entities, fields, states, roles, approvals, packs; workflow graphs
  E3xx  expressions: syntax, unknown names, forbidden constructs, not translatable to SQL
  E4xx  packs and data: manifests, requires, extends, demo data
  W2xx  warnings, once there is no error: permissions that formulas and rollups get around
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass


@dataclass(frozen=True, order=True)
class Diagnostic:
    file: str
    line: int
    col: int
    code: str
    message: str
    hint: str | None = None
    severity: str = "error"

    def format(self) -> str:
        text = f"{self.file}:{self.line}:{self.col}: {self.severity} {self.code} {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Mark:
    """A position in a source file; line and column are 1-based."""

    file: str
    line: int
    col: int


class Diagnostics:
    """An ordered collection of problems found while building an AppModel."""

    def __init__(self) -> None:
        self._items: list[Diagnostic] = []
        self._seen: set[Diagnostic] = set()

    def add(self, code: str, message: str, mark: Mark | None, hint: str | None = None,
            severity: str = "error") -> None:
        mark = mark or Mark("<unknown>", 1, 1)
        diag = Diagnostic(mark.file, mark.line, mark.col, code, message, hint, severity)
        if diag not in self._seen:
            self._seen.add(diag)
            self._items.append(diag)

    def extend(self, items: Iterable[Diagnostic]) -> None:
        for diag in items:
            if diag not in self._seen:
                self._seen.add(diag)
                self._items.append(diag)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self._items if d.severity == "error"]

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(sorted(self._items, key=lambda d: (d.file, d.line, d.col, d.code)))

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)


class DefinitionError(Exception):
    """Raised by the public entry points when definitions have errors; carries all of them."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.file, d.line, d.col, d.code))
        lines = [d.format() for d in self.diagnostics[:20]]
        more = len(self.diagnostics) - len(lines)
        if more > 0:
            lines.append(f"... and {more} more")
        super().__init__("\n".join(lines) or "invalid definitions")


MAX_HINT_CANDIDATES = 500


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None when nothing is close.

    No hint among more than MAX_HINT_CANDIDATES names: comparing is slow, and a file with
    thousands of mistakes among thousands of names must not take minutes to report.
    """
    names = list(candidates)
    if len(names) > MAX_HINT_CANDIDATES:
        return None
    matches = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None
