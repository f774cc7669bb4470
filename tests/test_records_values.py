"""The write path's handling of every field type: coercion, errors, verbatim text, sanitised
rich text, unknown and read-only fields — table-driven, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import BACKENDS, build_instance, provision_database
from record_packs import THING
from support import Clock, admin_actor, write_pack

from runtime.core.errors import ValidationFailed
from runtime.core.instance import Actor, Instance
from runtime.core.sanitize import sanitize_html
from runtime.write import records


@pytest.fixture(scope="module", params=BACKENDS)
def thing(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Instance, Actor]]:
    """One instance per backend for the whole table (the cases only add records)."""
    directory: Path = tmp_path_factory.mktemp("thing")
    with provision_database(request.param, directory) as url:
        inst = build_instance(write_pack(directory, {"entities/thing.yaml": THING}), url,
                              clock=Clock())
        yield inst, admin_actor(inst)
        inst.engine.dispose()


def create(thing: tuple[Instance, Actor], **values: object) -> dict:
    inst, actor = thing
    return records.create(inst, actor, "thing", {"name": "x", **values})


def errors_of(thing: tuple[Instance, Actor], **values: object) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as info:
        create(thing, **values)
    assert info.value.status == 422
    return info.value.errors


# (field, input, the value read back as JSON)
GOOD = [
    ("name", "  padded  ", "padded"),
    ("name", 123, "123"),
    ("code", "ABC", "ABC"),
    ("notes", "two\nlines", "two\nlines"),
    ("notes", "   ", None),
    ("qty", "42", 42),
    ("qty", 42, 42),
    ("qty", "4.0", 4),
    ("qty", "1,000", 1000),
    ("qty", 0, 0),
    ("qty", "", None),
    ("qty", None, None),
    ("price", "1.2346", "1.235"),
    ("price", 2.5, "2.500"),
    ("price", "-7", "-7.000"),
    ("total", "$1,234.5", "1234.50"),
    ("total", "1234.567", "1234.57"),
    ("pct", "12.5%", "12.500000"),
    ("flag", "yes", True),
    ("flag", "0", False),
    ("flag", False, False),
    ("flag", 1, True),
    ("day", "2026-03-31", "2026-03-31"),
    ("day", "2026-03-31T10:00:00", "2026-03-31"),
    ("moment", "2026-03-31T14:30:00+02:00", "2026-03-31T12:30:00Z"),
    ("moment", "2026-03-31T14:30:00Z", "2026-03-31T14:30:00Z"),
    ("moment", "2026-03-31", "2026-03-31T00:00:00Z"),
    ("size", "m", "m"),
    ("size", "M", "m"),  # a label or another case names the option too
    ("tags", "Red, BLUE", ["red", "blue"]),
    ("tags", "red, blue", ["red", "blue"]),
    ("tags", ["green", "green"], ["green"]),
    ("tags", [], []),
    ("email", "Anna@Example.COM", "anna@example.com"),
    ("phone", "+44 (20) 7946-0958", "+44 (20) 7946-0958"),
    ("site", "example.com/x", "https://example.com/x"),
    ("site", "https://example.com", "https://example.com"),
]


@pytest.mark.parametrize(("field", "given", "stored"), GOOD,
                         ids=[f"{f}={g!r}" for f, g, _ in GOOD])
def test_values_are_coerced(thing, field, given, stored):
    record = create(thing, **{field: given})
    assert record[field] == stored
    inst, actor = thing
    # the answer of create is the record as stored: read back, every field is the same
    assert records.get(inst, actor, "thing", record["id"]) == record


# (field, input, a part of the message)
BAD = [
    ("name", "two\nlines", "one line"),
    ("name", "x" * 41, "at most 40"),
    ("name", True, "must be text"),
    ("name", {"a": 1}, "must be text"),
    ("name", None, "is required"),
    ("name", "   ", "is required"),
    ("code", "abc", "expected form"),
    ("qty", "abc", "whole number"),
    ("qty", "4.5", "whole number"),
    ("qty", True, "must be a number"),
    ("qty", [1], "must be a number"),
    ("qty", "1e30", "too large"),
    ("qty", -1, "at least 0"),
    ("qty", 1001, "at most 1000"),
    ("price", "abc", "must be a number"),
    ("price", "NaN", "finite"),
    ("price", "1e20", "too large"),
    ("total", "twelve", "must be a number"),
    ("flag", "maybe", "true or false"),
    ("flag", 2, "true or false"),
    ("day", "31/03/2026", "date like"),
    ("day", 20260331, "date like"),
    ("day", "2019-12-31", "at least 2020-01-01"),
    ("day", "2028-01-01", "at most 2027-03-02"),
    ("moment", "half past two", "date and time"),
    ("size", "xl", "must be one of: S, M, L"),
    ("size", 3, "must be one of"),
    ("tags", "pink", "must be one of"),
    ("tags", 5, "list of choices"),
    ("email", "not-an-address", "e-mail address"),
    ("phone", "call me", "phone number"),
    ("site", "javascript:alert(1)", "web address"),
    ("other", "abc", "id of a thing"),
    ("other", 0, "id of a thing"),
    ("other", 999999, "no Thing with id 999999"),
    ("friends", "x,y", "id of a thing"),
    ("friends", [999998], "no Thing with id 999998"),
    ("doc", "report.pdf", "id of a file attached to this record"),  # tests/test_file_fields.py
    ("pic", "../../etc/passwd", "id of a file attached to this record"),
    ("doc", "12345", "uploaded with the new Thing's form"),
    ("ref", "T-9999", "numbered automatically"),
    ("double", 4, "computed by a formula"),
    ("id", 5, "set by CRMForge"),
    ("created_at", "2020-01-01", "set by CRMForge"),
    ("version", 3, "set by CRMForge"),
    ("colour", "red", "not a field of Thing"),
    ("nmae", "x", "did you mean 'name'"),
]


@pytest.mark.parametrize(("field", "given", "message"), BAD,
                         ids=[f"{f}={str(g)[:20]!r}" for f, g, _ in BAD])
def test_bad_values_are_refused_with_a_message_at_the_field(thing, field, given, message):
    errors = errors_of(thing, **{field: given})
    assert field in errors, errors
    assert any(message in m for m in errors[field]), errors[field]


def test_every_error_is_reported_at_once(thing):
    errors = errors_of(thing, qty="x", flag="maybe", colour="red")
    assert set(errors) == {"qty", "flag", "colour"}


def test_nothing_is_written_when_a_value_is_bad(thing):
    inst, actor = thing
    before = records.count(inst, actor, "thing")[0]
    errors_of(thing, name="ok", qty="x")
    assert records.count(inst, actor, "thing")[0] == before


HOSTILE = [
    "<script>alert('x')</script>",
    "'; DROP TABLE thing; --",
    "\" OR 1=1 --",
    "Robert'); DELETE FROM crm_user;--",
    "<img src=x onerror=alert(1)>",
    "{name} {{braces}} %s %(x)s",
    "日本語 — ünïcödé ✓",
]


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("field", ["name", "notes", "subject"])
def test_html_and_sql_in_text_fields_are_stored_verbatim(thing, field, text):
    inst, actor = thing
    record = create(thing, **{field: text})
    assert records.get(inst, actor, "thing", record["id"])[field] == text
    assert records.query(inst, actor, "thing", filters={"id": str(record["id"]),
                                                        f"{field}": text}).rows
    with inst.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from crm_user")).scalar() >= 1


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_search_and_filter_values_are_just_values(thing, text):
    inst, actor = thing
    assert isinstance(records.query(inst, actor, "thing", q=text).rows, list)
    assert isinstance(records.query(inst, actor, "thing", filters={"notes__contains": text}
                                    ).rows, list)


RICH = [
    ("<p>Hello <b>world</b></p>", "<p>Hello <b>world</b></p>"),
    ("<p onclick='steal()'>hi</p>", "<p>hi</p>"),
    ("<script>alert(1)</script>after", "after"),
    ("<a href='javascript:alert(1)'>x</a>", "<a>x</a>"),
    ("<a href='https://example.com'>x</a>",
     '<a href="https://example.com" rel="noopener noreferrer nofollow">x</a>'),
    ("<img src=x onerror=alert(1)>text", "text"),
    ("<style>p{}</style><ul><li>one<li>two</ul>", "<ul><li>one<li>two</li></li></ul>"),
    ("1 < 2 & 3 > 2", "1 &lt; 2 &amp; 3 &gt; 2"),
    ("<p>unclosed", "<p>unclosed</p>"),
    ("<!-- comment --><br/>", "<br>"),
]


@pytest.mark.parametrize(("given", "stored"), RICH)
def test_richtext_is_sanitised(thing, given, stored):
    assert sanitize_html(given) == stored
    assert create(thing, body=given)["body"] == stored


def test_defaults_templates_and_formulas(thing):
    record = create(thing, name="Lamp", qty=21)
    assert record["subject"] == "About Lamp"
    assert record["double"] == 42
    assert record["ref"].startswith("T-") and len(record["ref"]) == 6
    explicit = create(thing, name="Lamp", subject="Mine")
    assert explicit["subject"] == "Mine"


def test_links_are_written_to_the_join_table(thing):
    inst, actor = thing
    a, b = create(thing, name="a"), create(thing, name="b")
    c = create(thing, name="c", other=a["id"], friends=[b["id"], a["id"], b["id"]])
    assert c["other"] == a["id"]
    assert c["friends"] == sorted([a["id"], b["id"]])
    c = records.update(inst, actor, "thing", c["id"], {"friends": [b["id"]]},
                       version=c["version"])
    assert c["friends"] == [b["id"]]
    join = inst.schema.link_table("thing", "friends")
    with inst.engine.connect() as conn:
        rows = conn.execute(sa.select(join.c.target_id).where(join.c.source_id == c["id"]))
        assert [r[0] for r in rows] == [b["id"]]


def test_read_only_fields_may_be_sent_back_unchanged(thing):
    inst, actor = thing
    record = create(thing, name="round trip", qty=3)
    again = records.update(inst, actor, "thing", record["id"], dict(record),
                           version=record["version"])
    assert again["version"] == record["version"]  # nothing changed: no new version
    changed = dict(record, name="renamed")
    again = records.update(inst, actor, "thing", record["id"], changed,
                           version=record["version"])
    assert again["name"] == "renamed" and again["version"] == record["version"] + 1
    with pytest.raises(ValidationFailed) as info:
        records.update(inst, actor, "thing", record["id"], {"double": 99},
                       version=again["version"])
    assert "double" in info.value.errors


UPDATES = [case for case in GOOD if case[0] != "code"]  # unique: created once already


@pytest.mark.parametrize(("field", "given", "stored"), UPDATES,
                         ids=[f"{f}={g!r}" for f, g, _ in UPDATES])
def test_the_answer_of_update_is_the_record_as_stored(thing, field, given, stored):
    inst, actor = thing
    record = create(thing, name="before", qty=1)
    changed = records.update(inst, actor, "thing", record["id"], {field: given, "qty": 2}
                             if field != "qty" else {field: given},
                             version=record["version"])
    assert changed[field] == stored
    assert records.get(inst, actor, "thing", record["id"]) == changed


def test_a_record_that_is_its_own_parent_shows_its_fresh_rollup(tmp_path, database_url):
    """A rollup over the entity itself: the row the update wrote is changed again by the
    rollup, so the answer is read back."""
    inst = build_instance(write_pack(tmp_path, {"entities/node.yaml": """\
entity: node
label: Node
title_field: name
fields:
  name: {type: text, required: true}
  up: {type: link, to: node}
  below: {type: integer, rollup: {from: node.up, op: count}}
"""}), database_url)
    actor = admin_actor(inst)
    node = records.create(inst, actor, "node", {"name": "loop"})
    node = records.update(inst, actor, "node", node["id"], {"up": node["id"]},
                          version=node["version"])
    assert node["below"] == 1
    assert records.get(inst, actor, "node", node["id"]) == node
