"""Issue 13, item 4: no page shows a raw title template. For every shipped pack (installed with
its dependencies and a sample of its demo data), one record of each entity: its record page
(heading, cards, related lists, timeline), its list, its board and its calendar where the
entity has them — none may show `{field}` or `{link.field}` where a title belongs.

Core runs always; the vertical packs (more entities and records) are marked slow.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import build_instance
from permission_matrix import PACKS, sample_model
from support import admin_actor
from web_support import make_app, sign_in

from runtime.ops.demo import load_demo

RAW_TEMPLATE = re.compile(r"\{[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*\}")
NOT_SHOWN = re.compile(r"<(script|style)\b.*?</\1>", re.S)
PER_FILE = 4  # demo rows kept per data file (and every record they link to)


def raw_templates(body: str) -> list[str]:
    """The raw templates in a page (its scripts and styles left out), with some context."""
    shown = NOT_SHOWN.sub("", body)
    return [shown[max(m.start() - 60, 0):m.end() + 20].replace("\n", " ")
            for m in RAW_TEMPLATE.finditer(shown)]


def pages_of(inst: Any) -> list[str]:
    """Every page to look at: for each entity with records, one record, its list, its board
    and its calendar."""
    paths = []
    for entity in inst.model.entities.values():
        if entity.system:
            continue
        table = inst.schema.table(entity.name)
        with inst.engine.connect() as conn:
            record_id = conn.execute(sa.select(table.c.id).order_by(table.c.id).limit(1)
                                     ).scalar()
        if record_id is None:
            continue
        paths += [f"/e/{entity.name}/{record_id}", f"/e/{entity.name}"]
        if entity.views.kanban is not None:
            paths.append(f"/e/{entity.name}?view=kanban")
        if entity.views.calendar is not None:
            paths += [f"/e/{entity.name}?view=calendar",
                      f"/e/{entity.name}?view=calendar&mode=agenda"]
    return paths


PARAMS = [pytest.param(pack, marks=() if pack == "core" else pytest.mark.slow)
          for pack in PACKS]


@pytest.mark.parametrize("pack", PARAMS)
def test_no_page_shows_a_raw_title_template(pack: str, tmp_path: Path) -> None:
    model = sample_model(pack, PER_FILE)
    inst = build_instance(model, f"sqlite:///{tmp_path / 'crm.db'}")
    result = load_demo(inst, list(model.packs))
    assert not result.problems, result.problems[:5]
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, admin_actor(inst))
    paths = pages_of(inst)
    assert len(paths) >= len([e for e in model.entities.values() if not e.system])
    problems = []
    for path in paths:
        answer = client.get(path)
        if answer.status_code != 200:
            problems.append(f"{path}: {answer.status_code}")
            continue
        problems += [f"{path}: …{found}…" for found in raw_templates(
            answer.get_data(as_text=True))]
    assert not problems, "\n".join(problems[:20])


def test_the_check_finds_a_raw_template_where_a_title_belongs() -> None:
    page = ('<h1>{property} — 5</h1><a class="title">{buyer.first_name}</a>'
            '<script>let a = {x}</script><p>LD-{000000} {"a": 1}</p>')
    found = raw_templates(page)
    assert len(found) == 2 and "{property}" in found[0] and "{buyer.first_name}" in found[1]
