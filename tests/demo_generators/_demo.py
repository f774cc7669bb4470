"""Shared helpers of the demo data generators: relative dates and a deterministic YAML writer.

Not a generator itself (the leading underscore keeps it out of tests/test_demo_generators.py).
Records are written one per line as YAML flow mappings, with every string that could be read
as anything but text quoted, so the output does not depend on the PyYAML version.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9_ .'/&-]*$")
_WORDS = {"true", "false", "null", "none", "yes", "no", "on", "off", "y", "n", "nan", "inf"}


def money(value: float | Decimal | int) -> Decimal:
    """A money amount rounded half up to pennies."""
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def day(offset: int) -> str:
    """A date `offset` days from the install day (negative: in the past)."""
    if offset == 0:
        return "=today()"
    return f"=today() - days({-offset})" if offset < 0 else f"=today() + days({offset})"


def moment(hours: int) -> str:
    """A date and time `hours` hours from the install moment (negative: in the past)."""
    if hours == 0:
        return "=now()"
    return f"=now() - hours({-hours})" if hours < 0 else f"=now() + hours({hours})"


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return format(Decimal(str(value)), "f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    text = str(value)
    if (_PLAIN.match(text) and text == text.strip() and "  " not in text
            and text.lower() not in _WORDS and " -" not in text):
        return text
    return json.dumps(text, ensure_ascii=False)


def record_line(record: Mapping[str, Any]) -> str:
    fields = ", ".join(f"{key}: {scalar(value)}" for key, value in record.items()
                       if value is not None)
    return "- {" + fields + "}"


def write_records(folder: Path, entity: str, records: Iterable[Mapping[str, Any]],
                  generator: str) -> int:
    """Write data/<entity>.yaml; return the number of records."""
    rows = list(records)
    lines = [f"# Demo {entity} records, written by tests/demo_generators/{generator}.py;",
             "# do not edit by hand: change the generator and run it again.",
             *(record_line(r) for r in rows)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{entity}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(rows)


def output_dir(pack: str) -> Path:
    """The folder named on the command line, or the pack's data folder."""
    if len(sys.argv) > 2:
        raise SystemExit(f"usage: python tests/demo_generators/{pack}.py [OUTPUT_DIR]")
    if len(sys.argv) == 2:
        return Path(sys.argv[1])
    return Path(__file__).resolve().parents[2] / "verticals" / pack / "data"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower().replace("&", "and"))


def write_staff(folder: Path, pack: str, staff: Iterable[Mapping[str, Any]]) -> int:
    """data/team.yaml and data/user.yaml: the pack's demo staff with their roles, so that
    assignments, approvals, inboxes and dashboards have someone to work with on day one.

    Each person is a mapping with username, full_name, role, team (a team name) and any other
    user fields (manager as a username, region, district...). Teams are keyed `<pack>.<slug>`.
    """
    people = list(staff)
    teams = sorted({p["team"] for p in people if p.get("team")})
    key = {name: f"{pack}.{slug(name)}" for name in teams}
    write_records(folder, "team", [{"_key": key[name], "name": name} for name in teams], pack)
    users = []
    for person in people:
        record = {"username": person["username"], "full_name": person["full_name"],
                  "roles": [person["role"]]}
        if person.get("team"):
            record["team"] = key[person["team"]]
        record.update({k: v for k, v in person.items()
                       if k not in ("username", "full_name", "role", "team")})
        users.append(record)
    return write_records(folder, "user", users, pack)
