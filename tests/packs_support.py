"""The `sales` pack the /admin/packs tests ship: version 1 with a deal (name, code, legacy),
and the helper that writes a version of it to disk."""

from __future__ import annotations

from pathlib import Path

from support import write_pack

DEAL = """\
entity: deal
label: Deal
fields:
  name: {type: text, label: Name}
  code: {type: text, label: Code}
  legacy: {type: text, label: Legacy note}
"""


def ship(root: Path, version: str, deal: str) -> Path:
    """Pack `sales` at `version` with `deal` as its deal entity, under `root`."""
    return write_pack(root, {"pack.yaml": f"pack: sales\nformat: 1\nversion: {version}\n"
                             "label: Sales\n", "entities/deal.yaml": deal}, name="sales")
