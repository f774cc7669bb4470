"""A ranked search's first page and its count (read/queries.py `query(count_cap=…)`): read
from the exact and prefix matches alone when they fill the page (the prefix indexes of
core/searchindex.py), else the whole search with its count in the same query. Either way the
page is the first page of the whole ranking, the next pages follow on, row filters and hidden
fields hold, and the count is true ("N+": at least N)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from support import admin_actor, insert_user, write_pack

from runtime.core import searchindex
from runtime.core.instance import Actor, Instance
from runtime.http.app import create_app
from runtime.http.auth import SESSION_KEY, start_session
from runtime.write import bulk, records

PERSON = """\
entity: person
fields:
  first_name: {type: text}
  last_name: {type: text, required: true}
  city: {type: text}
  notes: {type: longtext}
search: [first_name, last_name]
views:
  list: {columns: [first_name, last_name, city], sort: [last_name], filters: [city],
         page_size: 50}
permissions:
  clerk: {read: "city == 'Bristol'", create: true, update: true, delete: true}
  viewer: {read: true, hidden: [first_name]}
"""
ROLES = "roles:\n  clerk: {label: Clerk}\n  viewer: {label: Viewer}\n"
PEOPLE = [  # (first, last, city)
    ("Ann", "Smith", "Leeds"), ("Bob", "Smith", "Bristol"), ("Cy", "smith", "Bristol"),
    ("Smith", "Evans", "Leeds"), ("Di", "Smithson", "Bristol"), ("Ed", "Smithers", "Leeds"),
    ("Fay", "Blacksmith", "Bristol"), ("Gus", "Goldsmith", "Leeds"), ("Hal", "Smíth", "Leeds"),
    ("伟", "张伟明", "Bristol"), ("Ida", "张伟", "Bristol"), ("Jo", "张伟华", "Leeds"),
    ("Kit", "老张伟", "Leeds"), ("Lu", "50% Smith", "Leeds"), ("Mo", "a_b\\c", "Leeds"),
]
LONG = "Smith" + "\ufdfa" * 60  # folds to more than SHORT_BYTES: kept out of the btree


@pytest.fixture
def people(make_instance: Callable[..., Instance], tmp_path) -> tuple[Instance, dict]:
    inst = make_instance(write_pack(tmp_path, {"entities/person.yaml": PERSON,
                                               "roles.yaml": ROLES}))
    actor = admin_actor(inst)
    ids = {}
    for first, last, city in [*PEOPLE, ("Ned", LONG, "Bristol")]:
        ids[(first, last)] = records.create(inst, actor, "person", {
            "first_name": first, "last_name": last, "city": city})["id"]
    return inst, ids


def ranking(inst: Instance, actor: Actor, q: str) -> list[int]:
    """The whole ranking, read as before: every page of the full search, no count asked."""
    return [r["id"] for r in records.query(inst, actor, "person", q=q, limit=500).rows]


def best(inst: Instance, actor: Actor, q: str, hidden: tuple[str, ...] = ()) -> int:
    """How many of the actor's matches have a visible search field equal to or starting
    with the search (accents and case aside)."""
    text = searchindex.fold(q.strip())
    rows = records.query(inst, actor, "person", q=q, limit=500).rows
    return sum(any((searchindex.fold(r.get(f)) or "").startswith(text)
                   for f in ("first_name", "last_name") if f not in hidden) for r in rows)


@pytest.mark.parametrize("q", ["smith", "SMITH", "smi", "Smíth", "张伟", "伟", "mith",
                               "bob smith", "smith bob", "50%", "a_b", "\\", "zzz"])
@pytest.mark.parametrize("limit", [1, 2, 3, 50])
def test_the_first_page_is_the_whole_rankings_first(people, q, limit) -> None:
    inst, _ = people
    actor = admin_actor(inst)
    whole = ranking(inst, actor, q)
    page = records.query(inst, actor, "person", q=q, limit=limit, count_cap=1000)
    assert [r["id"] for r in page.rows] == whole[:limit]
    ids = [r["id"] for r in page.rows]
    cursor = page.next_cursor
    while cursor:  # the next pages follow on from it, through the whole search
        more = records.query(inst, actor, "person", q=q, limit=limit, cursor=cursor)
        ids += [r["id"] for r in more.rows]
        cursor = more.next_cursor
    assert ids == whole
    count, exact = page.count
    if exact:  # counted with the whole search
        assert count == len(whole) == records.count(inst, actor, "person", q=q)[0]
    else:  # the exact and prefix matches filled the page: at least them
        assert limit < count == best(inst, actor, q) < len(whole)


def test_exact_then_prefix_then_inside_on_the_fast_page(people) -> None:
    inst, ids = people
    actor = admin_actor(inst)
    page = records.query(inst, actor, "person", q="smith", limit=6, count_cap=1000)
    names = [(r["first_name"], r["last_name"]) for r in page.rows]
    # exact (by the last name, Smíth by its folded one, Evans by the first name), each group
    # in the list's sort (the reader's collation: "smith" before or after "Smith"); then the
    # prefixes, the long name among them
    assert names[0] == ("Smith", "Evans")
    assert set(names[1:5]) == {("Ann", "Smith"), ("Bob", "Smith"), ("Cy", "smith"),
                               ("Hal", "Smíth")}
    assert names[5] in {("Ed", "Smithers"), ("Di", "Smithson"), ("Ned", LONG)}
    assert ("Ned", LONG) in [(r["first_name"], r["last_name"]) for r in records.query(
        inst, actor, "person", q="smith", limit=8, count_cap=1000).rows]


def test_row_filters_hold_on_the_fast_page(people) -> None:
    inst, ids = people
    clerk = insert_user(inst, "clerk", roles=["clerk"])
    whole = ranking(inst, clerk, "smith")
    page = records.query(inst, clerk, "person", q="smith", limit=2, count_cap=1000)
    assert [r["id"] for r in page.rows] == whole[:2]
    assert {r["city"] for r in records.query(inst, clerk, "person", q="smith",
                                             limit=500).rows} == {"Bristol"}
    count, exact = page.count
    assert count == best(inst, clerk, "smith") if not exact else count == len(whole)
    assert count <= records.count(inst, clerk, "person", q="smith")[0]


def test_a_hidden_field_neither_finds_nor_ranks(people) -> None:
    inst, ids = people
    viewer = insert_user(inst, "viewer", roles=["viewer"])
    page = records.query(inst, viewer, "person", q="smith", limit=2, count_cap=1000)
    whole = ranking(inst, viewer, "smith")
    assert [r["id"] for r in page.rows] == whole[:2]
    assert ids[("Smith", "Evans")] not in whole  # found only by the first name it may not see
    if not page.count[1]:
        assert page.count[0] == best(inst, viewer, "smith", hidden=("first_name",))


def test_a_full_fast_page_skips_the_substring_search(people) -> None:
    inst, _ = people
    # the substring search: the trigram index (SQLite), LIKE on the folded copies (PostgreSQL)
    substring = "MATCH" if inst.engine.dialect.name == "sqlite" else "LIKE '%%' ||"
    many = best(inst, admin_actor(inst), "smith")
    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        statements.append(statement)

    sa.event.listen(inst.engine, "before_cursor_execute", seen)
    try:
        page = records.query(inst, admin_actor(inst), "person", q="smith", limit=3,
                             count_cap=1000)
        assert page.count == (many, False)
        assert statements and not any(substring in s for s in statements)
        statements.clear()
        records.query(inst, admin_actor(inst), "person", q="mith", limit=3, count_cap=1000)
        assert any(substring in s for s in statements)  # none starts with "mith"
    finally:
        sa.event.remove(inst.engine, "before_cursor_execute", seen)


@pytest.mark.parametrize("q", ["a\x00b", "\x00", "smith\x00", "x" * 10_000, "%", "_", "\\",
                               "'", '"', "smith" * 2000])
def test_hostile_searches_answer(people, q) -> None:
    inst, _ = people
    actor = admin_actor(inst)
    page = records.query(inst, actor, "person", q=q, limit=2, count_cap=1000)
    whole = ranking(inst, actor, q)
    assert [r["id"] for r in page.rows] == whole[:2]
    if "\x00" in q.strip("\x00") or q.strip("\x00") == "":
        return
    assert page.count is not None


def test_the_list_page_shows_a_fast_count_as_at_least(people, tmp_path) -> None:
    inst, _ = people
    actor = admin_actor(inst)
    bulk.create_many(inst, actor, "person", [
        (n, {"first_name": "Zed", "last_name": f"Smith{n:02d}", "city": "Leeds"})
        for n in range(1, 61)])
    app = create_app({"INSTANCE": inst, "TESTING": True, "SECRET_KEY": "t"})
    client = app.test_client()
    with client.session_transaction() as session:
        session[SESSION_KEY] = start_session(inst, actor.user_id)
    html = client.get("/e/person", query_string={"q": "smith"}).get_data(as_text=True)
    total = records.count(inst, actor, "person", q="smith")[0]
    # 68 exact or prefix matches fill 50 rows: Blacksmith and Goldsmith are not counted
    assert best(inst, actor, "smith") < total
    assert f">{best(inst, actor, 'smith')}+</strong>" in html
    assert f"at least {best(inst, actor, 'smith')} in all" in html  # not "more than"
    for q in ("x" * 10_000, "%", "_", "\\", "张伟"):
        answer = client.get("/e/person", query_string={"q": q})
        assert answer.status_code == 200, q
    for q in ("\x00", "a\x00b"):  # refused with the request, before any search
        assert client.get("/e/person", query_string={"q": q}).status_code == 400
    found = client.get("/search", query_string={"q": "smith"})
    assert found.status_code == 200 and "Evans" in found.get_data(as_text=True)  # first
