"""builder.schema_check: the JSON Schemas and the diagnostics made from their errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from builder.diagnostics import Diagnostics
from builder.loader import load_file, load_text
from builder.schema_check import KINDS, SCHEMA_DIR, check_document, kind_for

FIXTURES = Path(__file__).parent / "fixtures" / "spec"
ENTITY = "entity: offer\n"


def check(kind: str, text: str) -> list:
    diags = Diagnostics()
    doc = load_text(text, "f.yaml", diags)
    assert doc is not None and not diags, [d.format() for d in diags]
    ok = check_document(doc, kind, diags)
    assert ok == (not diags)
    return list(diags)


# (kind, yaml, [(code, line, col)], words that the first message contains)
BROKEN = [
    (
        "entity",
        ENTITY + "fields:\n  amount: {type: money, requird: true}\n",
        [("E101", 3, 25)],
        "field 'amount': unknown key 'requird'",
    ),
    (
        "entity",
        ENTITY + "fields:\n  name: {type: text, max_length: abc}\n",
        [("E102", 3, 34)],
        "field 'name': 'max_length' must be an integer, got text 'abc'",
    ),
    (
        "entity",
        ENTITY + "fields:\n  amount: {type: moeny, currency: EUR}\n",
        [("E104", 3, 18)],
        "'type' must be one of text, longtext",
    ),
    (
        "entity",
        ENTITY + "fields:\n  amount: {required: true}\n",
        [("E103", 3, 3)],
        "field 'amount': missing required key 'type'",
    ),
    (
        "entity",
        ENTITY + "fields:\n  Amount: {type: text}\n",
        [("E105", 3, 3)],
        "invalid name 'Amount'",
    ),
    (
        "entity",
        ENTITY + "fields:\n  amount: {type: integer, currency: EUR}\n",
        [("E101", 3, 27)],
        "unknown key 'currency'",
    ),
    (
        "entity",
        ENTITY + "fields:\n  price:\n    type: decimal\n    precision: 60\n",
        [("E106", 5, 16)],
        "'precision' must be at most 38, got integer 60",
    ),
    (
        "entity",
        ENTITY + "fields:\n  price: {type: money, currency: euro}\n",
        [("E105", 3, 34)],
        "three-letter currency code",
    ),
    (
        "entity",
        ENTITY + "fields:\n  buyer: {type: link}\n",
        [("E103", 3, 3)],
        "missing required key 'to'",
    ),
    (
        "entity",
        ENTITY + "fields:\n  buyer: {type: link, to: contact, on_delete: nullify}\n",
        [("E104", 3, 47)],
        "restrict, set_null, cascade",
    ),
    (
        "entity",
        ENTITY + "fields:\n  c: {type: choice, options: []}\n",
        [("E106", 3, 30)],
        "'options' must list at least 1 item",
    ),
    (
        "entity",
        ENTITY + "fields:\n  c: {type: choice, options: [a, b, a]}\n",
        [("E106", 3, 37)],
        "'options' lists text 'a' twice",
    ),
    (
        "entity",
        ENTITY + "fields:\n  c: {type: choice}\n",
        [("E103", 3, 3)],
        "missing required key 'options'",
    ),
    (
        "entity",
        ENTITY + "fields:\n  n: {type: autonumber, format: OFF}\n",
        [("E105", 3, 33)],
        "run of zeros in braces",
    ),
    (
        "entity",
        ENTITY + "fields:\n  r: {type: money, rollup: {from: offer, op: sum}}\n",
        [("E103", 3, 20), ("E105", 3, 35)],
        "needs 'field'",
    ),
    (
        "entity",
        ENTITY + "fields:\n  r: {type: money, rollup: {from: offer.x, op: total}}\n",
        [("E104", 3, 48)],
        "count, sum, avg, min, max",
    ),
    (
        "entity",
        ENTITY + "fields:\n  t: {type: text, label: {english: T}}\n",
        [("E105", 3, 27)],
        "language code",
    ),
    (
        "entity",
        ENTITY + "fields:\n  t: {type: text, visible_when: true}\n",
        [("E102", 3, 33)],
        "'visible_when' must be an expression in quotes",
    ),
    ("entity", ENTITY + "fields: [a, b]\n", [("E102", 2, 9)], "'fields' must be a mapping"),
    (
        "entity",
        ENTITY + "fields:\n  notes:\n",
        [("E102", 3, 9)],
        "field 'notes' must be a mapping like {type: text}, got nothing",
    ),
    ("entity", "entity: Offer\n", [("E105", 1, 9)], "lowercase letters"),
    ("entity", "label: Offer\n", [("E103", 1, 1)], "needs 'entity: NAME'"),
    ("entity", "entity: offer\nextends: contact\n", [("E106", 1, 1)], "not both"),
    (
        "entity",
        "extends: contact\nworkflow: {initial: a, states: {a: {}}}\n",
        [("E101", 2, 1)],
        "'workflow' cannot be changed by an extension",
    ),
    ("entity", "- a\n", [("E102", 1, 1)], "the file must be a mapping"),
    ("entity", ENTITY + "titel: x\n", [("E101", 2, 1)], "unknown key 'titel'"),
    (
        "entity",
        ENTITY + "validations:\n  - {message: Nope}\n",
        [("E103", 3, 5)],
        "validation 1: missing required key 'rule'",
    ),
    (
        "entity",
        ENTITY + "duplicates:\n  - {match: [], action: merge}\n",
        [("E106", 3, 13), ("E104", 3, 25)],
        "duplicate rule 1",
    ),
    (
        "entity",
        ENTITY + "views:\n  list: {page_size: 1000}\n",
        [("E106", 3, 21)],
        "list view: 'page_size' must be at most 500",
    ),
    (
        "entity",
        ENTITY + "views:\n  list: {sort: created at}\n",
        [("E105", 3, 16)],
        "'-' in front for descending",
    ),
    (
        "entity",
        ENTITY + "views:\n  list: {sort: [-amount, 3]}\n",
        [("E102", 3, 26)],
        "'sort' item 2 must be text",
    ),
    (
        "entity",
        ENTITY + "views:\n  form:\n    sections:\n      - {label: A, columns: 5, fields: [a]}\n",
        [("E106", 5, 29)],
        "form view, section 'A': 'columns' must be at most 4",
    ),
    ("entity", ENTITY + "views:\n  grid: {}\n", [("E101", 3, 3)], "unknown key 'grid'"),
    (
        "entity",
        ENTITY + "views:\n  kanban: {card: [a]}\n",
        [("E103", 3, 3)],
        "kanban view: missing required key 'group_by'",
    ),
    (
        "entity",
        ENTITY + "views:\n  related: [a, {entity: b, x: 1}, 3]\n",
        [("E101", 3, 28), ("E102", 3, 35)],
        "related list 2: unknown key 'x'",
    ),
    (
        "entity",
        ENTITY + "workflow:\n  initial: a\n  states: {a: {final: yes}}\n",
        [("E102", 4, 23)],
        "state 'a': 'final' must be true or false, got text 'yes'",
    ),
    (
        "entity",
        ENTITY + "workflow:\n  initial: a\n  states: {a: {}}\n  transitions:\n    go: {from: a}\n",
        [("E103", 6, 5)],
        "transition 'go': missing required key 'to'",
    ),
    (
        "entity",
        ENTITY + "workflow:\n  states: {}\n",
        [("E103", 2, 1), ("E106", 3, 11)],
        "workflow: missing required key 'initial'",
    ),
    (
        "entity",
        ENTITY + "approvals:\n  x:\n    steps:\n      - name: s\n"
        "        approvers: {role: a, user: b}\n",
        [("E106", 6, 20)],
        "step 's': 'approvers': give exactly one of 'role', 'user' or 'field'",
    ),
    (
        "entity",
        ENTITY + "approvals:\n  x:\n    steps:\n      - name: s\n"
        "        approvers: {team: a}\n        escalate_after: 2 days\n",
        [("E101", 6, 21), ("E105", 7, 25)],
        "unknown key 'team'",
    ),
    (
        "entity",
        ENTITY + "approvals:\n  x:\n    steps:\n      - {name: s, approvers: {role: a},"
        " mode: majority}\n",
        [("E104", 5, 47)],
        "any, all",
    ),
    (
        "entity",
        ENTITY + "approvals:\n  x: {steps: [], on_reject: {require_comment: true}}\n",
        [("E106", 3, 14), ("E103", 3, 18)],
        "approval 'x': 'steps' must list at least 1 item",
    ),
    (
        "entity",
        ENTITY + "permissions:\n  agent: {read: 1, write: true}\n",
        [("E102", 3, 17), ("E101", 3, 20)],
        "'read' must be true, false or an expression",
    ),
    (
        "entity",
        ENTITY + "automations:\n  a:\n    on: creat\n    do: [{transition: x}]\n",
        [("E104", 4, 9)],
        "'on' must be one of create, update, delete",
    ),
    (
        "entity",
        ENTITY + "automations:\n  a:\n    on: {schedule: every day}\n    do: [{transition: x}]\n",
        [("E105", 4, 20)],
        "cron expression",
    ),
    (
        "entity",
        ENTITY + "automations:\n  a:\n    on: {transition: go, schedule: daily}\n"
        "    do: [{transition: x}]\n",
        [("E106", 4, 9)],
        "exactly one of 'transition'",
    ),
    (
        "entity",
        ENTITY + "automations:\n  a:\n    on: create\n    do:\n"
        "      - {set: {a: 1}, transition: x}\n      - sett: {a: 1}\n",
        [("E106", 6, 9), ("E101", 7, 9)],
        "action 1: an action has exactly one of",
    ),
    (
        "entity",
        ENTITY + "automations:\n  a:\n    on: create\n    do:\n      - set: {a: {b: 1}}\n",
        [("E102", 6, 18)],
        "'set.a' must be a value or a list of values",
    ),
    (
        "entity",
        ENTITY + "automations:\n  a:\n    on: create\n    do:\n"
        "      - assign: {field: owner, among: {role: agent}, strategy: random}\n",
        [("E104", 6, 64)],
        "round_robin, least_loaded",
    ),
    (
        "entity",
        ENTITY + "automations:\n  a:\n    on: create\n    do:\n"
        "      - notify: {to: {owner: false}, message: hi}\n",
        [("E104", 6, 30)],
        "'notify.to.owner' must be true",
    ),
    (
        "entity",
        ENTITY + 'automations:\n  a:\n    when: "x"\n',
        [("E103", 3, 3), ("E103", 3, 3)],
        "missing required key",
    ),
    (
        "pack",
        "pack: x\nformat: 2\nversion: 1.2\n",
        [("E105", 1, 7), ("E104", 2, 9), ("E102", 3, 10)],
        "2 to 40 lowercase letters",
    ),
    (
        "pack",
        "pack: demo\nformat: 1\nversion: 1.0.0\nrequire: [core]\n",
        [("E101", 4, 1)],
        "did you mean 'requires'?",
    ),
    (
        "roles",
        "roles:\n  admin: {label: A}\n  agent: {inherit: [x]}\n",
        [("E106", 2, 3), ("E101", 3, 11)],
        "'admin' is built in",
    ),
    ("roles", "roles:\n  agent: Agent\n", [("E102", 2, 10)], "role 'agent' must be a mapping"),
    (
        "dashboard",
        "dashboard: d\nwidgets:\n  - {type: chart, entity: lead, op: sum}\n"
        "  - {type: gauge, entity: x}\n  - {type: number, entity: lead, columns: [a]}\n",
        [("E103", 3, 5), ("E103", 3, 5), ("E103", 3, 5), ("E104", 4, 12), ("E101", 5, 34)],
        "widget 1: missing required key 'chart'",
    ),
    (
        "dashboard",
        "dashboard: d\nwidgets:\n  - {type: table, entity: order, group_by: month(), limit: 0}\n",
        [("E105", 3, 44), ("E106", 3, 60)],
        "month()",
    ),
    (
        "dashboard",
        "dashboard: d\nwidgets:\n  - {type: number, entity: x, format: euro}\n",
        [("E104", 3, 39)],
        "number, money, percent",
    ),
    (
        "data",
        "- {name: a, nested: {x: 1}}\n- {_key: 'a b'}\n",
        [("E102", 1, 21), ("E105", 2, 10)],
        "must be a value or a list of values",
    ),
    ("data", "records: []\n", [("E102", 1, 1)], "the file must be a list of records"),
    ("data", "- {Name: a}\n", [("E105", 1, 4)], "invalid name 'Name'"),
    (
        "automations",
        "automations:\n  a: {on: create, do: [{transition: x}]}\n",
        [("E103", 2, 3)],
        "needs 'entity'",
    ),
]


@pytest.mark.parametrize(
    ("kind", "text", "expected", "words"),
    BROKEN,
    ids=[f"{i}-{case[0]}" for i, case in enumerate(BROKEN)],
)
def test_broken_snippets(kind, text, expected, words):
    diags = check(kind, text)
    got = sorted((d.code, d.line, d.col) for d in diags)
    assert got == sorted(expected), [d.format() for d in diags]
    assert any(words in d.format() for d in diags), [d.format() for d in diags]
    for diag in diags:
        assert "$" not in diag.message and "{'" not in diag.message  # no schema gibberish


def test_message_and_hint_read_like_the_spec():
    (diag,) = check("entity", ENTITY + "fields:\n  amount: {type: money, requird: true}\n")
    assert diag.format() == (
        "f.yaml:3:25: error E101 field 'amount': unknown key 'requird' (did you mean 'required'?)"
    )


def test_unknown_key_lists_the_allowed_keys_when_nothing_is_close():
    (diag,) = check("entity", ENTITY + "views:\n  list: {zzz: 1}\n")
    assert diag.hint == "allowed keys: label, columns, filters, sort, page_size, group_by, op"


def test_type_specific_keys_are_not_reported_when_the_type_is_wrong():
    diags = check("entity", ENTITY + "fields:\n  a: {type: moeny, currency: EUR, x: 1}\n")
    assert [d.code for d in diags] == ["E104"]


def test_every_error_is_reported_once():
    text = ENTITY + "".join(f"f{i}: 1\n" for i in range(5)) + "fields:\n  a: {type: x}\n"
    diags = check("entity", text)
    assert sorted(d.code for d in diags) == ["E101"] * 5 + ["E104"]
    assert len({(d.line, d.col) for d in diags}) == 6


@pytest.mark.parametrize(
    "path", sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*.yaml"))
)
def test_spec_fixtures_are_valid(path):
    diags = Diagnostics()
    doc = load_file(FIXTURES / path, path, diags=diags)
    assert doc is not None
    kind = kind_for(path)
    assert kind is not None
    assert check_document(doc, kind, diags), [d.format() for d in diags]
    assert not diags


def test_fixture_pack_is_complete():
    names = {p.stem for p in (FIXTURES / "entities").glob("*.yaml")}
    assert {
        "offer",
        "lead",
        "contact_hotel",
        "user_region",
        "property",
        "contact",
        "viewing",
        "commission",
        "task",
        "opportunity",
        "order",
        "account",
    } <= names
    for folder in ("automations", "dashboards", "data"):
        assert list((FIXTURES / folder).glob("*.yaml"))


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("pack.yaml", "pack"),
        ("roles.yaml", "roles"),
        ("./pack.yaml", "pack"),
        ("entities/offer.yaml", "entity"),
        ("entities/offer.yml", "entity"),
        ("automations/leads.yaml", "automations"),
        ("dashboards/sales.yaml", "dashboard"),
        ("data/contact.yaml", "data"),
        ("data/contact.csv", None),
        ("entities/a/b.yaml", None),
        ("README.md", None),
        ("other.yaml", None),
        ("views/x.yaml", None),
        ("", None),
        ("entities\\offer.yaml", "entity"),
    ],
)
def test_kind_for(path, kind):
    assert kind_for(path) == kind


@pytest.mark.parametrize("name", sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json")))
def test_schemas_are_valid_draft_2020_12(name):
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_kind_has_a_schema():
    assert set(KINDS) == {"pack", "roles", "entity", "automations", "dashboard", "data",
                          "messages", "webhooks", "documents", "inbound"}
    for name in KINDS.values():
        assert (SCHEMA_DIR / name).is_file()


def test_unknown_kind_is_a_programming_error():
    doc = load_text("a: 1\n", "f.yaml", Diagnostics())
    with pytest.raises(ValueError):
        check_document(doc, "widget", Diagnostics())


def test_builder_imports_neither_flask_nor_sqlalchemy():
    code = (
        "import sys, builder.loader, builder.schema_check; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('flask', 'sqlalchemy')]; "
        "sys.exit(1 if bad else 0)"
    )
    root = Path(__file__).parent.parent
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0
