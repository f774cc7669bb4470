"""Pack upgrades that keep the instance's customisations (docs/packs.md "Upgrades and
customisations").

An admin customises installed packs with `extends:` files in `CRMFORGE_CUSTOM_DIR`. When a
pack's new version lands on disk, `find_conflicts(pack_dirs)` reads the packs as they are now
and every customisation, and reports where the pack changed or removed what a customisation
touches:

- `renamed_field`: the customisation changes field X; the pack renamed X (`renamed_from: X`).
- `option_elsewhere`: the customisation adds a choice option the pack now offers under
  another key (same label, or the same key written differently).
- `entity_removed`: the customisation extends an entity no installed pack defines any more.

Everything else is kept as it is (an added field, a relabel, a view change). Each conflict has
two sides with file:line, and three ways out (`resolve`): keep mine, take theirs, or edit the
file. Resolving rewrites the customisation file (never a pack's), after copying it to
`<custom dir>/.replaced/<stamp>/`; a file taken away moves there whole. No data is lost either
way: the migration renames, or keeps aside under `_removed_…`, whatever the model drops.

`crmforge upgrade` and `/admin/packs` both refuse to apply anything while a conflict is open
(`UpgradeConflicts`).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from builder.diagnostics import Diagnostics
from builder.linker import BUILTIN_ENTITIES
from builder.loader import LoadedDoc, load_file
from builder.packs import PackSource, custom_dir, read_pack, resolve
from builder.schema_check import check_document

MINE, THEIRS, EDIT = "mine", "theirs", "edit"
CHOICES = (MINE, THEIRS)
KEEP_MARK = "# crmforge: keep"  # on an option's line: kept over the pack's option, on purpose
BACKUP_DIR = ".replaced"  # hidden: the builder never reads it


class UpgradeConflicts(Exception):
    """The upgrade would override or drop customisations: nothing was applied."""

    def __init__(self, conflicts: list[Conflict]):
        self.conflicts = conflicts
        super().__init__(self.explain())

    def explain(self) -> str:
        n = len(self.conflicts)
        lines = [f"nothing was changed: the new pack versions conflict with {n} "
                 f"customisation{'s' if n != 1 else ''} in {custom_dir()}:"]
        for c in self.conflicts:
            lines += [f"  [{c.id}] {c.summary}",
                      f"    mine:   {c.mine.where}: {c.mine.text}",
                      f"    theirs: {c.theirs.where}: {c.theirs.text}"]
        lines.append("Resolve each one in /admin/packs, or with crmforge upgrade --resolve "
                     "ID=mine|theirs (keep mine / take theirs), or edit the customisation "
                     "file; then run crmforge upgrade again.")
        return "\n".join(lines)


@dataclass(frozen=True)
class Side:
    """One side of a conflict: what it says, and where."""

    text: str
    file: str  # as shown: relative to the pack or custom dir's parent
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Conflict:
    """A customisation the new pack version changed or removed the ground of."""

    id: str  # stable: "renamed_field:deal.stage", "option_elsewhere:deal.stage.hot", ...
    kind: str
    entity: str
    field: str | None
    mine: Side
    theirs: Side
    path: Path  # the customisation file (resolving rewrites it)
    line: int  # the line of the customisation in it
    other: str = ""  # the pack's new field name, or its option key
    option: str = ""  # my option key (option_elsewhere)

    @property
    def summary(self) -> str:
        if self.kind == "renamed_field":
            return (f"the pack renamed field {self.entity}.{self.field} to "
                    f"{self.entity}.{self.other}, which your customisation changes")
        if self.kind == "option_elsewhere":
            return (f"your option '{self.option}' of {self.entity}.{self.field} now exists in "
                    f"the pack as '{self.other}'")
        return f"no installed pack defines entity {self.entity} any more; you customised it"

    @property
    def outcomes(self) -> dict[str, str]:
        """What keep mine / take theirs do, in words."""
        if self.kind == "renamed_field":
            return {MINE: f"your changes move to the renamed field {self.other}",
                    THEIRS: f"your changes to {self.field} are dropped; the pack's field "
                            f"{self.other} is used as shipped"}
        if self.kind == "option_elsewhere":
            return {MINE: f"both options stay: your '{self.option}' and the pack's "
                          f"'{self.other}'",
                    THEIRS: f"your option '{self.option}' is dropped; records holding it keep "
                            "the value aside (_removed_…)"}
        return {MINE: f"your file becomes the definition of {self.entity}: the entity and "
                      "its records stay",
                THEIRS: f"your file is set aside; the table of {self.entity} is kept aside "
                        "(_removed_…), with every record"}


def read_manifest(path: Path) -> dict:
    """The pack.yaml of the pack at `path` as data; {} when it is missing or not a mapping.

    Only the manifest is read: listing packs must not load (and check) all their files.
    """
    for file in (path / "pack.yaml", path / "pack.yml"):
        if file.is_file():
            doc = load_file(file, str(file), Diagnostics())
            return doc.data if doc is not None and isinstance(doc.data, dict) else {}
    return {}


# -- finding conflicts ----------------------------------------------------------------------


@dataclass
class _PackField:
    raw: dict
    doc: LoadedDoc
    path: tuple


def find_conflicts(pack_dirs: Iterable[Path], custom: Path | None = None) -> list[Conflict]:
    """The conflicts between the packs at `pack_dirs` (as on disk now) and the
    customisations in `custom` (default: the custom dir)."""
    custom = custom or custom_dir()
    if not (custom / "entities").is_dir():
        return []
    diags = Diagnostics()
    own = custom.resolve()
    packs = [s for s in resolve([Path(p) for p in pack_dirs if Path(p).resolve() != own],
                                diags, demo=False) if s.path.resolve() != own]
    mine = read_pack(custom, diags, demo=False)
    index = _pack_fields(packs)
    defined = set(index) | set(BUILTIN_ENTITIES) | {
        d.data["entity"] for d in mine.of_kind("entity") if "entity" in d.data}
    found: list[Conflict] = []
    for doc in mine.of_kind("entity"):
        if "extends" not in doc.data:
            continue
        name = str(doc.data["extends"])
        if name not in defined:
            found.append(_entity_removed(doc, name, custom, packs))
            continue
        for fname, raw in (doc.data.get("fields") or {}).items():
            found.extend(_field_conflicts(doc, name, str(fname), raw, index.get(name, {}),
                                          custom))
    return found


def _pack_fields(packs: list[PackSource]) -> dict[str, dict[str, _PackField]]:
    """entity -> field -> where the packs define it (their `entity:` and `extends:` files)."""
    index: dict[str, dict[str, _PackField]] = {}
    for source in packs:
        for doc in source.of_kind("entity"):
            name = doc.data.get("entity") or doc.data.get("extends")
            fields = index.setdefault(str(name), {})
            for fname, raw in (doc.data.get("fields") or {}).items():
                fields[str(fname)] = _PackField(raw if isinstance(raw, dict) else {}, doc,
                                                ("fields", fname))
    return index


def _field_conflicts(doc: LoadedDoc, entity: str, fname: str, raw: Any,
                     pack: dict[str, _PackField], custom: Path) -> list[Conflict]:
    if fname not in pack:
        renamed = next(((n, f) for n, f in pack.items()
                        if f.raw.get("renamed_from") == fname), None)
        if renamed is None:
            return []  # a field of my own: kept
        new, where = renamed
        return [Conflict(
            f"renamed_field:{entity}.{fname}", "renamed_field", entity, fname,
            _side(doc, ("fields", fname), f"changes {fname}: {_keys(raw)}"),
            _side(where.doc, (*where.path, "renamed_from"), f"{new} (renamed_from: {fname})"),
            _file(doc, custom), doc.mark(("fields", fname), key=True).line, other=new)]
    if not isinstance(raw, dict) or "options" not in raw:
        return []
    theirs = _options(pack[fname].raw.get("options"))
    found = []
    lines = _lines(_file(doc, custom))
    for key, labels, path in _option_entries(raw.get("options")):
        line = doc.mark(("fields", fname, "options", *path)).line
        if key in theirs or any(KEEP_MARK in text for text in lines[line - 1:line]):
            continue
        other = next((k for k, their_labels in theirs.items()
                      if _same(key, k) or labels & their_labels), None)
        if other is None:
            continue
        where = pack[fname]
        found.append(Conflict(
            f"option_elsewhere:{entity}.{fname}.{key}", "option_elsewhere", entity, fname,
            _side(doc, ("fields", fname, "options", *path), f"option {key}"),
            _side(where.doc, (*where.path, "options"), f"option {other}"),
            _file(doc, custom), line, other=other, option=key))
    return found


def _entity_removed(doc: LoadedDoc, name: str, custom: Path,
                    packs: list[PackSource]) -> Conflict:
    moving = [s for s in packs if s.manifest is not None]
    manifest = moving[-1].manifest if moving else None
    theirs = (_side(manifest, ("version",), f"pack {moving[-1].name} "
                    f"{manifest.data.get('version')} does not define {name}")
              if manifest is not None else Side(f"no pack defines {name}", "-", 1))
    fields = ", ".join(str(f) for f in (doc.data.get("fields") or {})) or "no fields"
    return Conflict(f"entity_removed:{name}", "entity_removed", name, None,
                    _side(doc, ("extends",), f"extends {name} ({fields})"), theirs,
                    _file(doc, custom), doc.mark(("extends",)).line)


def _side(doc: LoadedDoc, path: tuple, text: str) -> Side:
    mark = doc.mark(path, key=True)
    return Side(text, mark.file, mark.line)


def _keys(raw: Any) -> str:
    if not isinstance(raw, dict):
        return str(raw)
    return ", ".join(f"{k}: {_short(v)}" for k, v in raw.items())


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _file(doc: LoadedDoc, custom: Path) -> Path:
    """The customisation file of `doc` on disk (marks show it relative to the dir's parent)."""
    shown = Path(doc.file)
    for candidate in (custom.parent / shown, custom / shown, shown):
        if candidate.is_file():
            return candidate
    return custom.parent / shown


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _options(raw: Any) -> dict[str, set[str]]:
    """key -> its labels (every language), casefolded."""
    return {key: labels for key, labels, _ in _option_entries(raw)}


def _option_entries(raw: Any) -> list[tuple[str, set[str], tuple]]:
    """(key, labels casefolded, path under `options`) of a list or mapping of options."""
    if isinstance(raw, dict):
        return [(str(k), _labels(v), (k,)) for k, v in raw.items()]
    if isinstance(raw, list):
        return [(str(v), {_norm(str(v))}, (i,)) for i, v in enumerate(raw)]
    return []


def _labels(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {_norm(str(v)) for v in value.values()}
    return {_norm(str(value))}


def _norm(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text).strip().casefold()


def _same(a: str, b: str) -> bool:
    return a != b and _norm(a) == _norm(b)


# -- resolving ------------------------------------------------------------------------------


class ResolveError(Exception):
    """A resolution that cannot be written safely; the message says what to do instead."""


def resolve_conflict(conflict: Conflict, choice: str, custom: Path | None = None,
                     now: datetime | None = None) -> str:
    """Apply keep mine / take theirs to the customisation file; what was done, in words."""
    custom = custom or custom_dir()
    if choice not in CHOICES:
        raise ResolveError(f"choose {MINE} or {THEIRS} for {conflict.id}, not '{choice}'")
    backup = _backup(conflict.path, custom, now)
    if conflict.kind == "entity_removed" and choice == THEIRS:
        conflict.path.unlink()
        return f"{_rel(conflict.path, custom)} set aside in {_rel(backup, custom)}"
    lines = _lines(conflict.path)
    edit = _EDITS[(conflict.kind, choice)]
    new = edit(lines, conflict)
    write_checked(conflict.path, "\n".join(new) + "\n")
    return f"{_rel(conflict.path, custom)} rewritten (the old text is in {_rel(backup, custom)})"


def _rename_key(lines: list[str], c: Conflict) -> list[str]:
    index = c.line - 1
    lines[index] = re.sub(rf"^(\s*){re.escape(c.field or '')}(\s*:)", rf"\g<1>{c.other}\2",
                          lines[index], count=1)
    return lines


def _drop_block(lines: list[str], c: Conflict) -> list[str]:
    """Remove the mapping entry at the conflict's line and the lines indented under it."""
    start = c.line - 1
    indent = _indent(lines[start])
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    kept = lines[:start] + lines[end:]
    parent = start - 1
    if 0 <= parent < len(kept) and kept[parent].rstrip().endswith(":") and (
            start >= len(kept) or _indent(kept[start]) <= _indent(kept[parent])):
        kept[parent] = kept[parent].rstrip() + " {}"  # the mapping is empty now
    return kept


def _keep_option(lines: list[str], c: Conflict) -> list[str]:
    index = c.line - 1
    if KEEP_MARK not in lines[index]:
        lines[index] = f"{lines[index].rstrip()}  {KEEP_MARK} (over the pack's {c.other})"
    return lines


def _drop_option(lines: list[str], c: Conflict) -> list[str]:
    index = c.line - 1
    text = lines[index]
    flow = re.sub(rf"(,\s*)?\b{re.escape(c.option)}\b\s*(:\s*[^,\]}}]*)?(,\s*)?",
                  lambda m: ", " if m.group(1) and m.group(3) else "", text, count=1)
    if "[" in text or "{" in text:
        lines[index] = flow
        return lines
    return _drop_block(lines, c)


def _to_entity(lines: list[str], c: Conflict) -> list[str]:
    index = c.line - 1
    lines[index] = re.sub(r"^(\s*)extends(\s*:)", r"\1entity\2", lines[index], count=1)
    return lines


_EDITS = {("renamed_field", MINE): _rename_key, ("renamed_field", THEIRS): _drop_block,
          ("option_elsewhere", MINE): _keep_option, ("option_elsewhere", THEIRS): _drop_option,
          ("entity_removed", MINE): _to_entity}


def write_checked(path: Path, text: str) -> None:
    """Write a customisation file after checking it reads as a definition (ResolveError, and
    nothing written, when it does not)."""
    probe = path.with_name(f".{path.name}.check")
    probe.write_text(text, encoding="utf-8")
    try:
        diags = Diagnostics()
        doc = load_file(probe, path.name, diags)
        ok = doc is not None and check_document(doc, "entity", diags) and not diags.errors
    finally:
        probe.unlink()
    if not ok:
        problems = "; ".join(d.format() for d in diags.errors) or "not an entity file"
        raise ResolveError(f"{path.name} would not read as a definition ({problems}); edit "
                           "it instead")
    path.write_text(text, encoding="utf-8")


def edit_file(conflict: Conflict, text: str, custom: Path | None = None,
              now: datetime | None = None) -> str:
    """"Edit": the admin's own text for the customisation file, checked, then written."""
    custom = custom or custom_dir()
    backup = _backup(conflict.path, custom, now)
    write_checked(conflict.path, text.replace("\r\n", "\n"))
    return f"{_rel(conflict.path, custom)} edited (the old text is in {_rel(backup, custom)})"


def _backup(path: Path, custom: Path, now: datetime | None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    target = custom / BACKUP_DIR / stamp / path.resolve().relative_to(custom.resolve())
    if not target.exists():  # two edits of one file in one go: the first copy is the original
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return target


def _rel(path: Path, custom: Path) -> str:
    try:
        return path.resolve().relative_to(custom.resolve().parent).as_posix()
    except ValueError:
        return str(path)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def parse_resolutions(items: Iterable[str]) -> dict[str, str]:
    """`ID=mine|theirs` items (the CLI's --resolve) as {id: choice}; ResolveError when bad."""
    chosen: dict[str, str] = {}
    for item in items:
        key, sep, choice = item.partition("=")
        if not sep or choice not in CHOICES:
            raise ResolveError(f"--resolve {item}: write ID=mine or ID=theirs (the ID in "
                               "brackets in the conflict list)")
        chosen[key.strip()] = choice
    return chosen


def resolve_all(conflicts: list[Conflict], chosen: dict[str, str],
                custom: Path | None = None) -> list[str]:
    """Resolve the conflicts named in `chosen`; ResolveError for an ID that is not one."""
    known = {c.id: c for c in conflicts}
    unknown = [k for k in chosen if k not in known]
    if unknown:
        raise ResolveError(f"no conflict {', '.join(unknown)}; the open ones are: "
                           + (", ".join(known) or "none"))
    # bottom up in each file: an edit never moves the lines of the ones still to come
    order = sorted(chosen, key=lambda k: (str(known[k].path), -known[k].line))
    return [resolve_conflict(known[k], chosen[k], custom) for k in order]


def settle(pack_dirs: list[Path], resolutions: Iterable[str] = (),
           custom: Path | None = None) -> list[str]:
    """Resolve the conflicts `resolutions` name (`ID=mine|theirs`), then check again: what was
    done, or UpgradeConflicts with the conflicts still open (nothing else was changed)."""
    chosen = parse_resolutions(resolutions)
    conflicts = find_conflicts(pack_dirs, custom)
    done = resolve_all(conflicts, chosen, custom) if chosen else []
    left = find_conflicts(pack_dirs, custom) if done else conflicts
    if left:
        raise UpgradeConflicts(left)
    return done
