"""Packs on disk: finding them, reading their files, ordering them by `requires`.

A pack is a directory with a `pack.yaml`. Shipped packs live in `verticals/`; an instance's own
packs and customisations live in `CRMFORGE_CUSTOM_DIR` (default `instance/custom`). A custom
directory without a `pack.yaml` of its own is read as the implicit pack `custom`, which
requires every pack it names in `extends:` and may only extend or add.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import Diagnostics, Mark, did_you_mean
from .loader import MAX_BYTES, LoadedDoc, _decode, load_file
from .schema_check import check_document, kind_for

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "verticals"
CUSTOM_PACK = "custom"
# the custom dir of the workspace being served or worked on, in this thread (one process may
# serve several workspaces: runtime/http/workspaces.py); unset, CRMFORGE_CUSTOM_DIR is used
_CUSTOM_DIR: ContextVar[Path | None] = ContextVar("crmforge_custom_dir", default=None)


def custom_dir() -> Path:
    return _CUSTOM_DIR.get() or Path(os.environ.get("CRMFORGE_CUSTOM_DIR", "instance/custom"))


@contextmanager
def custom_dir_as(path: Path) -> Iterator[Path]:
    """Read `path` as the custom dir in this thread until the block ends."""
    token = _CUSTOM_DIR.set(path)
    try:
        yield path
    finally:
        _CUSTOM_DIR.reset(token)


def search_dirs(first: list[Path] | None = None) -> list[Path]:
    """Where packs are looked for: `first` (such as the folders of the packs being checked,
    so a local copy of a pack wins), then the shipped verticals, then the custom dir."""
    return [*(first or []), SHIPPED_DIR, custom_dir()]


def display_name(path: Path) -> str:
    """How a file is named in diagnostics: relative to the working directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass
class CsvDoc:
    """A CSV demo data file: its header and rows, with the line number of each row."""

    file: str
    rows: list[tuple[int, dict[str, str]]]


@dataclass
class PackSource:
    """One pack's files, loaded and schema-checked."""

    name: str
    path: Path
    manifest: LoadedDoc | None
    docs: list[tuple[str, LoadedDoc]] = field(default_factory=list)  # (kind, doc)
    csv: list[CsvDoc] = field(default_factory=list)
    implicit: bool = False

    @property
    def requires(self) -> list[str]:
        if self.manifest is None or not isinstance(self.manifest.data, dict):
            return []
        value = self.manifest.data.get("requires") or []
        return [r for r in value if isinstance(r, str)] if isinstance(value, list) else []

    def of_kind(self, kind: str) -> list[LoadedDoc]:
        return [doc for k, doc in self.docs if k == kind]


def is_pack_dir(path: Path) -> bool:
    return (path / "pack.yaml").is_file() or (path / "pack.yml").is_file()


def discover(dirs: list[Path]) -> dict[str, Path]:
    """Pack name -> directory for every pack directly in (or directly under) `dirs`."""
    found: dict[str, Path] = {}
    for base in dirs:
        if not base.is_dir():
            continue
        candidates = [base] if is_pack_dir(base) else sorted(
            p for p in base.iterdir() if p.is_dir())
        for candidate in candidates:
            if is_pack_dir(candidate):
                found.setdefault(candidate.name, candidate)
        if base == custom_dir() and not is_pack_dir(base) and (base / "entities").is_dir():
            found.setdefault(CUSTOM_PACK, base)
    return found


def read_pack(path: Path, diags: Diagnostics, demo: bool = True) -> PackSource:
    """Load and schema-check every definition file of the pack at `path`; demo data only
    when `demo` (the running app never needs it)."""
    manifest_path = path / "pack.yaml" if (path / "pack.yaml").exists() else path / "pack.yml"
    manifest = None
    name = path.name
    implicit = not manifest_path.exists()
    if implicit:
        name = CUSTOM_PACK
    else:
        manifest = load_file(manifest_path, display_name(manifest_path), diags)
        if manifest is not None and check_document(manifest, "pack", diags):
            name = manifest.data["pack"]
    source = PackSource(name, path, manifest, implicit=implicit)
    for file in sorted(path.rglob("*")):
        if not file.is_file():
            continue
        rel = file.relative_to(path).as_posix()
        if rel in ("pack.yaml", "pack.yml") or any(p.startswith(".") for p in rel.split("/")):
            continue
        kind = kind_for(rel)
        if not demo and rel.startswith("data/"):
            continue
        if kind is None:
            if rel.startswith("data/") and rel.count("/") == 1 and rel.endswith(".csv"):
                source.csv.append(_read_csv(file, diags))
            elif file.suffix in (".yaml", ".yml"):
                diags.add("E407", f"'{rel}' is not where a definition file goes; it was ignored",
                          Mark(display_name(file), 1, 1),
                          "put entities in entities/, automations in automations/, dashboards "
                          "in dashboards/, message templates in messages/, webhooks in "
                          "webhooks/, documents in documents/, inbound e-mail rules in inbound/ "
                          "and demo data in data/",
                          severity="warning")
            continue
        doc = load_file(file, display_name(file), diags)
        if doc is None:
            continue
        if check_document(doc, kind, diags):
            source.docs.append((kind, doc))
    return source


def _read_csv(file: Path, diags: Diagnostics) -> CsvDoc:
    name = display_name(file)
    doc = CsvDoc(name, [])
    if file.stat().st_size > MAX_BYTES * 8:
        diags.add("E003", "CSV file is too large (the limit is 16 MiB)", Mark(name, 1, 1),
                  "split it into several files")
        return doc
    try:
        raw = file.read_bytes()
    except OSError as exc:
        diags.add("E012", f"cannot read the file: {exc.strerror or type(exc).__name__}",
                  Mark(name, 1, 1), "check that the file is readable")
        return doc
    text = _decode(raw, name, diags)  # E006 at the first bad byte, as for YAML files
    if text is None:
        return doc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            if None in row:
                diags.add("E410", "this row has more values than the header has columns",
                          Mark(name, reader.line_num, 1))
                continue
            doc.rows.append((reader.line_num, {k: v for k, v in row.items() if k}))
    except csv.Error as exc:
        diags.add("E410", f"cannot read the CSV file: {exc}", Mark(name, reader.line_num, 1))
    return doc


def resolve(paths: list[Path], diags: Diagnostics,
            extra_dirs: list[Path] | None = None, demo: bool = True) -> list[PackSource]:
    """The packs named by `paths` plus every pack they require, in install order.

    A path may be a pack directory, a directory of packs, or a file inside a pack.
    """
    wanted: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_file():
            pack = next((p for p in path.resolve().parents if is_pack_dir(p)), None)
            if pack is None:
                diags.add("E406", "this file is not inside a pack (no pack.yaml above it)",
                          Mark(display_name(path), 1, 1),
                          "validate the pack's directory, which holds pack.yaml")
                continue
            wanted.append(pack)
        elif is_pack_dir(path):
            wanted.append(path)
        elif path.is_dir():
            subs = [p for p in sorted(path.iterdir()) if is_pack_dir(p)]
            if not subs and path.resolve() == custom_dir().resolve():
                wanted.append(path)
            elif not subs:
                diags.add("E406", "no pack here: a pack is a directory with a pack.yaml",
                          Mark(display_name(path), 1, 1))
            wanted.extend(subs)
        else:
            diags.add("E012", "no such file or directory", Mark(display_name(path), 1, 1))
    known = discover(search_dirs([*(p.parent for p in wanted), *(extra_dirs or [])]))
    loaded: dict[str, PackSource] = {}
    order: list[str] = []

    def visit(source: PackSource, chain: tuple[str, ...]) -> None:
        if source.name in order:
            return
        for index, required in enumerate(source.requires):
            mark = source.manifest.mark(("requires", index)) if source.manifest else None
            if required in chain or required == source.name:
                diags.add("E402", f"packs require each other in a circle: "
                          f"{' -> '.join([*chain, source.name, required])}", mark)
                continue
            if required not in loaded:
                if required not in known:
                    diags.add("E401", f"required pack '{required}' was not found", mark,
                              did_you_mean(required, known) or "install it, or put it in "
                              "verticals/ or CRMFORGE_CUSTOM_DIR")
                    continue
                loaded[required] = read_pack(known[required], diags, demo)
            visit(loaded[required], (*chain, source.name))
        if source.implicit:
            for other in list(loaded):
                if other != source.name and other not in order:
                    visit(loaded[other], (*chain, source.name))
        order.append(source.name)

    sources: list[PackSource] = []
    for path in wanted:
        source = read_pack(path, diags, demo)
        if source.name in loaded and loaded[source.name].path.resolve() != path.resolve():
            mark = source.manifest.mark(("pack",)) if source.manifest else None
            diags.add("E403", f"two packs are named '{source.name}' "
                      f"({display_name(loaded[source.name].path)} and {display_name(path)})",
                      mark, "rename one of them")
            continue
        loaded.setdefault(source.name, source)
        sources.append(loaded[source.name])
    for source in sources:
        visit(source, ())
    return [loaded[name] for name in order]
