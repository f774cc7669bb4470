"""The customisation layer the studio writes: one `extends:` file per entity in the instance's
custom dir (`CRMFORGE_CUSTOM_DIR/entities/<entity>.yaml`), never a pack's own files.

`check` builds the model the instance would have with a candidate text for that file: the
custom dir is copied to a temporary "shadow" directory, the text written there, and the
builder run on the instance's pack dirs plus the shadow. Its diagnostics name the real file
(`instance/custom/entities/lead.yaml:4:7`), not the shadow.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from builder.diagnostics import Diagnostic
from builder.linker import check_paths
from builder.loader import MAX_BYTES
from builder.model import AppModel
from builder.packs import custom_dir, custom_dir_as, display_name
from runtime.process.setup import custom_paths


class StudioError(Exception):
    """A change the studio cannot make; the message says why, for the admin."""


@dataclass(frozen=True)
class Check:
    """The model a candidate text makes (None when it has errors) and the builder's words."""

    model: AppModel | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def entity_file(entity: str) -> Path:
    """Where the customisation of `entity` is kept."""
    return custom_dir() / "entities" / f"{entity}.yaml"


def shown_path(entity: str) -> str:
    """The customisation file as diagnostics and pages name it."""
    return display_name(entity_file(entity))


def read_text(entity: str) -> str:
    """The current customisation of `entity` ("" when there is none)."""
    path = entity_file(entity)
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def digest(text: str) -> str:
    """A short fingerprint of a text: a form carries it to notice someone else's change."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def parse(entity: str, text: str) -> dict[str, Any]:
    """The data of a customisation text, `{"extends": entity}` when it is empty.
    StudioError when it is not YAML or not an extension of `entity` (the builder's
    diagnostics say more; this is for the forms, which edit a valid file)."""
    if not text.strip():
        return {"extends": entity}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict) or data.get("extends") != entity:
        raise StudioError(f"{shown_path(entity)} is not a valid extension of {entity}; fix it "
                          "in the YAML editor first.")
    return data


def dump(data: dict[str, Any]) -> str:
    """YAML text of a customisation, `extends:` first, keys in the order given."""
    ordered = {"extends": data["extends"], **{k: v for k, v in data.items() if k != "extends"}}
    return yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True, width=100,
                          default_flow_style=False)


def own_problems(entity: str, text: str) -> list[Diagnostic]:
    """What the studio itself refuses before the builder looks (codes S001, S002): a file
    that is not the extension of this entity (it would edit another entity, or define one);
    and E003, the builder's own code, for a file too large to copy."""
    where = shown_path(entity)
    if len(text.encode("utf-8")) > MAX_BYTES:
        return [Diagnostic(where, 1, 1, "E003", f"the file is larger than {MAX_BYTES} bytes")]
    try:
        data = yaml.safe_load(text) if text.strip() else {"extends": entity}
    except yaml.YAMLError:
        return []  # the builder reports the syntax error with its place
    if isinstance(data, dict) and data.get("extends") not in (None, entity):
        return [Diagnostic(where, 1, 1, "S001", f"this file customises {entity}: it must "
                           f"start with 'extends: {entity}', not "
                           f"'extends: {data.get('extends')}'")]
    if isinstance(data, dict) and "entity" in data:
        return [Diagnostic(where, 1, 1, "S002", "the studio writes extensions only: use "
                           f"'extends: {entity}' instead of 'entity:'")]
    return []


def pack_dirs(model: AppModel) -> list[Path]:
    """The directories of the packs that make `model`."""
    return [Path(p.path) for p in model.packs.values() if p.path]


def check(model: AppModel, entity: str, text: str) -> Check:
    """Build the model of the packs of `model` with `text` as `entity`'s customisation."""
    own = own_problems(entity, text)
    if own:
        return Check(None, tuple(own))
    with shadow_of(entity, text) as shadow:
        paths = [_moved(p, shadow) for p in pack_dirs(model)]
        with custom_dir_as(shadow):
            wanted = list(dict.fromkeys([*paths, *custom_paths()]))
            built, diags = check_paths(wanted, demo=False)
        return Check(built, tuple(_renamed(d, shadow) for d in diags))


def built(model: AppModel) -> AppModel:
    """The model of `model`'s packs and the custom dir as the files are now (after `write`),
    with the real paths (the ones `crm_installed` records); StudioError on errors."""
    wanted = list(dict.fromkeys([*pack_dirs(model), *custom_paths()]))
    found, diags = check_paths(wanted, demo=False)
    if found is None:
        raise StudioError("The definitions on disk have errors: "
                          + "; ".join(d.format() for d in diags.errors[:3]))
    return found


@contextmanager
def shadow_of(entity: str, text: str) -> Iterator[Path]:
    """A temporary copy of the custom dir with `text` as `entity`'s file ("" removes it)."""
    real = custom_dir()
    with tempfile.TemporaryDirectory(prefix="crmforge-studio-") as tmp:
        shadow = Path(tmp) / "custom"
        if real.is_dir():
            shutil.copytree(real, shadow, ignore=shutil.ignore_patterns(".*", "data"))
        target = shadow / "entities" / f"{entity}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        if text.strip():
            target.write_text(text, encoding="utf-8")
        elif target.exists():
            target.unlink()
        yield shadow


def write(entity: str, text: str) -> None:
    """Replace `entity`'s customisation with `text` in one step (a rename); "" deletes it."""
    path = entity_file(entity)
    if not text.strip():
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".studio-", suffix=".yaml", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def _moved(path: Path, shadow: Path) -> Path:
    """`path` inside the shadow when it is inside the real custom dir."""
    real = custom_dir().resolve()
    try:
        return shadow / path.resolve().relative_to(real)
    except ValueError:
        return path


def _renamed(diag: Diagnostic, shadow: Path) -> Diagnostic:
    """`diag` naming the real custom dir instead of the shadow."""
    real = display_name(custom_dir())
    for prefix in dict.fromkeys((str(shadow.resolve()), str(shadow))):
        if diag.file.startswith(prefix):
            return replace(diag, file=real + diag.file[len(prefix):])
    return diag


__all__ = ["Check", "StudioError", "built", "check", "digest", "dump", "entity_file",
           "pack_dirs", "parse", "read_text", "shown_path", "write"]
