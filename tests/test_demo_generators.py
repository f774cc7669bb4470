"""Every demo data generator reproduces its pack's committed data files byte for byte.

The generators (tools/demo_generators/<pack>.py, see the README there) are run into a fresh
folder and their output compared with verticals/<pack>/data/: a changed generator whose output
was not committed, a hand edit of generated data, or a generator that is not deterministic all
fail here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GENERATORS = sorted(p for p in (ROOT / "tools" / "demo_generators").glob("*.py")
                    if not p.name.startswith("_"))
DATA_SUFFIXES = (".yaml", ".yml", ".csv")


def _data_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in DATA_SUFFIXES}


def _run(generator: Path, out: Path) -> None:
    result = subprocess.run([sys.executable, str(generator), str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{generator.name} failed:\n{result.stderr}"


def test_there_are_generators() -> None:
    assert GENERATORS, "no generators in tools/demo_generators/"


@pytest.mark.parametrize("generator", GENERATORS, ids=[g.stem for g in GENERATORS])
def test_generator_reproduces_committed_data(generator: Path, tmp_path: Path) -> None:
    committed_dir = ROOT / "verticals" / generator.stem / "data"
    assert committed_dir.is_dir(), f"no pack data folder {committed_dir} for {generator.name}"
    _run(generator, tmp_path / "data")
    generated = _data_files(tmp_path / "data")
    committed = _data_files(committed_dir)
    assert generated, f"{generator.name} wrote no data files"
    assert sorted(generated) == sorted(committed), (
        f"{generator.name} writes {sorted(generated)} but verticals/{generator.stem}/data holds "
        f"{sorted(committed)}; run `python tools/demo_generators/{generator.name}` and commit")
    changed = [name for name in generated if generated[name] != committed[name]]
    assert not changed, (
        f"{', '.join(changed)} differ from what {generator.name} writes; run "
        f"`python tools/demo_generators/{generator.name}` and commit its output")


@pytest.mark.parametrize("generator", GENERATORS, ids=[g.stem for g in GENERATORS])
def test_generator_is_deterministic(generator: Path, tmp_path: Path) -> None:
    _run(generator, tmp_path / "one")
    _run(generator, tmp_path / "two")
    assert _data_files(tmp_path / "one") == _data_files(tmp_path / "two")
