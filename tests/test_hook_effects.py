"""What the hooks after a write may touch (runtime/process/hook_effects.py): whether the
moves of a batch of new records may wait for every record's creation hooks. The analysis is
checked here on small models, one way of meeting at a time; test_bulk_write.py checks that a
batch it lets through leaves the same database as the rows written one at a time."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from support import write_pack

from builder.model import AppModel
from runtime.process import hook_effects
from runtime.process.setup import build

CLUB = """
entity: club
title_field: name
fields:
  name:  {type: text, required: true}
  motto: {type: text}
"""
MEMBER = """
entity: member
title_field: name
fields:
  code:     {type: text, unique: true}
  name:     {type: text, required: true}
  email:    {type: email}
  club:     {type: link, to: club}
  greeting: {type: text}
  motto:    {type: text}
duplicates:
  - {match: [email], action: block}
workflow:
  field: stage
  initial: new
  states:
    new:    {label: New}
    left:   {label: Left, final: true}
  transitions:
    leave: {from: new, to: left}
"""
BADGE = """
entity: badge
title_field: label
fields:
  label:  {type: text}
  member: {type: link, to: member}
  stage:  {type: text, formula: "member.stage"}
"""


def model(tmp_path: Path, on_create: str, on_leave: str) -> AppModel:
    """The club, member and badge entities with one automation on the creation of members
    and one on their move by `leave` (each given as its `do:` list)."""
    automations = textwrap.dedent("""
        automations:
          created:
            entity: member
            on: create
            do:
        {create}
          left:
            entity: member
            on: {{transition: leave}}
            do:
        {leave}
    """).format(create=textwrap.indent(textwrap.dedent(on_create), "      "),
                leave=textwrap.indent(textwrap.dedent(on_leave), "      "))
    pack = write_pack(tmp_path, {"entities/club.yaml": CLUB, "entities/member.yaml": MEMBER,
                                 "entities/badge.yaml": BADGE,
                                 "automations/test.yaml": automations})
    return build([pack])


def meetings(tmp_path: Path, on_create: str, on_leave: str) -> list[str]:
    m = model(tmp_path, on_create, on_leave)
    return hook_effects.meetings(m, m.entity("member"), {"leave"})


CREATE_CLUB = '- create: {entity: club, values: {name: "{name} fans"}}'
SET_GREETING = '- set: {greeting: "Hello {name}"}'


@pytest.mark.parametrize(("on_create", "on_leave", "meeting"), [
    (CREATE_CLUB, CREATE_CLUB, "both add club rows"),
    (SET_GREETING, '- update: {entity: club, record: "=club", values: {motto: "Bye"}}',
     None),
    ('- set: {motto: "=club.motto"}',
     '- update: {entity: club, record: "=club", values: {motto: "Bye"}}',
     "changes club.motto, which the other reads"),
    ('- update: {entity: club, record: "=club", values: {motto: "Hi"}}',
     '- update: {entity: club, record: "=club", values: {motto: "Bye"}}',
     "changes club.motto of another record"),
    ('- set: {code: "x"}', '- set: {code: "y"}', "changes member.code, which the other reads"),
    ('- set: {email: "a@example.com"}', '- set: {greeting: "Bye"}', None),
    ('- set: {email: "a@example.com"}', '- set: {email: "b@example.com"}',
     "changes member.email, which the other reads"),
    ('- notify: {message: "New"}', '- notify: {message: "Gone"}',
     "both add crm_notification rows"),
    ('- notify: {message: "New"}', SET_GREETING, None),
    # a badge of the member itself reads its stage: the member's own move comes after it
    ('- create: {entity: badge, values: {label: "b", member: "=id"}}', SET_GREETING, None),
    ('- create: {entity: badge, values: {label: "b", member: "=id"}}', CREATE_CLUB, None),
    ('- create: {entity: badge, values: {label: "b"}}',
     '- create: {entity: badge, values: {label: "c"}}', "both add badge rows"),
])
def test_how_creation_hooks_and_moves_meet(tmp_path: Path, on_create: str, on_leave: str,
                                           meeting: str | None) -> None:
    found = meetings(tmp_path, on_create, on_leave)
    if meeting is None:
        assert found == []
    else:
        assert meeting in found


def test_a_move_changes_the_state_a_linked_record_reads(tmp_path: Path) -> None:
    """A badge made for a member's club reads its own member's stage through a link the
    analysis cannot pin to the member that set the chain off: another member's move may
    change it."""
    found = meetings(tmp_path, '- create: {entity: badge, values: {label: "b", '
                     'member: "=id + 0"}}', SET_GREETING)
    assert "changes member.stage, which the other reads" in found


def test_the_answer_is_kept_per_model_and_transitions(tmp_path: Path) -> None:
    m = model(tmp_path, CREATE_CLUB, CREATE_CLUB)
    member = m.entity("member")
    assert hook_effects.interfere(m, member, {"leave"}) is True
    assert hook_effects.interfere(m, member, set()) is False  # nothing moves
