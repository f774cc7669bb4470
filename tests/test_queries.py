"""Lists: keyset pagination (forward and back, ties, NULLs), filter operators, quick search,
counts, and the BadRequest answers for what a list cannot do — on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import BACKENDS, build_instance, provision_database
from record_packs import THING
from support import Clock, admin_actor, write_pack

from runtime.core.errors import BadRequest
from runtime.core.instance import Actor, Instance
from runtime.write import records

NAMES = ["alpha", "bravo", "charlie", "delta"]
TAGS = [[], ["red"], ["red", "blue"], ["green"]]
PHONES = [None, "+44 20 7946 0958", "(44) 20-7946-0958", "555 0100"]


@pytest.fixture(scope="module", params=BACKENDS)
def listed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Instance, Actor, list[dict]]]:
    """23 things with many ties and NULLs in their sort keys."""
    directory: Path = tmp_path_factory.mktemp("listed")
    with provision_database(request.param, directory) as url:
        inst = build_instance(write_pack(directory, {"entities/thing.yaml": THING}), url,
                              clock=Clock())
        actor = admin_actor(inst)
        made: list[dict] = []
        for i in range(23):
            values = {
                "name": NAMES[i % 4] if i % 5 else NAMES[(i // 5) % 4],
                "qty": None if i % 4 == 0 else i % 3,
                "price": None if i % 6 == 0 else str(Decimal(i % 5) / 2),
                "flag": [True, False, None][i % 3],
                "day": None if i % 7 == 0 else f"2026-0{1 + i % 3}-1{i % 2}",
                "moment": f"2026-03-0{1 + i % 3}T{10 + i % 4}:00:00",
                "size": [None, "s", "m", "l"][i % 4],
                "tags": TAGS[i % 4],
                "phone": PHONES[i % 4],
                "email": f"P{i}@Example.com" if i % 2 else None,
                "notes": f"note {i} about {NAMES[i % 4].upper()}",
            }
            if made and i % 3 == 0:
                values["other"] = made[0]["id"]
                values["friends"] = [made[1]["id"]] if len(made) > 1 else []
            made.append(records.create(inst, actor, "thing", values))
        yield inst, actor, made
        inst.engine.dispose()


def expected_order(rows: list[dict], keys: list[tuple[str, bool]]) -> list[int]:
    """The order the list must have: each key ascending or descending, NULLs last, id last."""
    def native(name: str, value):
        if value is None:
            return None
        if name in ("price",):
            return Decimal(value)
        return value

    ordered = sorted(rows, key=lambda r: r["id"])
    for name, desc in reversed(keys):
        present = [r for r in ordered if r[name] is not None]
        missing = [r for r in ordered if r[name] is None]
        present.sort(key=lambda r: native(name, r[name]), reverse=desc)
        ordered = present + missing
    return [r["id"] for r in ordered]


def walk(inst, actor, sort, limit, **kwargs):
    pages, cursor = [], None
    while True:
        page = records.query(inst, actor, "thing", sort=sort, limit=limit, cursor=cursor,
                             **kwargs)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(pages) < 100


SORTS = [["qty"], ["-qty"], ["name", "-qty"], ["-day"], ["flag", "-price"], ["-name"],
         ["size", "-moment"], ["-id"], None]


@pytest.mark.parametrize("limit", [1, 4, 7, 50])
@pytest.mark.parametrize("sort", SORTS, ids=[",".join(s) if s else "default" for s in SORTS])
def test_keyset_pages_walk_forward_and_back_without_gaps_or_repeats(listed, sort, limit):
    inst, actor, made = listed
    keys = [(s.lstrip("-"), s.startswith("-")) for s in (sort or ["name"])]
    want = expected_order(made, keys)
    pages = walk(inst, actor, sort, limit)
    got = [row["id"] for page in pages for row in page.rows]
    assert got == want
    assert all(len(p.rows) == limit for p in pages[:-1]) and len(pages[-1].rows) <= limit
    assert pages[0].prev_cursor is None and pages[-1].next_cursor is None
    # and back again from the last page
    back, page = [], pages[-1]
    while page.prev_cursor is not None:
        page = records.query(inst, actor, "thing", sort=sort, limit=limit,
                             cursor=page.prev_cursor)
        back.append([row["id"] for row in page.rows])
        assert len(back) < 100
    assert back == [[row["id"] for row in p.rows] for p in reversed(pages[:-1])]


def test_next_cursor_of_a_previous_page_continues_forward(listed):
    inst, actor, made = listed
    first = records.query(inst, actor, "thing", sort=["qty"], limit=5)
    second = records.query(inst, actor, "thing", sort=["qty"], limit=5,
                           cursor=first.next_cursor)
    back = records.query(inst, actor, "thing", sort=["qty"], limit=5, cursor=second.prev_cursor)
    assert [r["id"] for r in back.rows] == [r["id"] for r in first.rows]
    again = records.query(inst, actor, "thing", sort=["qty"], limit=5, cursor=back.next_cursor)
    assert [r["id"] for r in again.rows] == [r["id"] for r in second.rows]


def rows_where(made, predicate):
    return sorted(r["id"] for r in made if predicate(r))


def dt(value):
    return datetime.fromisoformat(value.removesuffix("Z")) if value else None


FILTERS = [
    ({"qty": "2"}, lambda r: r["qty"] == 2),
    ({"qty__ne": "2"}, lambda r: r["qty"] != 2),
    ({"qty__gt": "1"}, lambda r: r["qty"] is not None and r["qty"] > 1),
    ({"qty__gte": "1"}, lambda r: r["qty"] is not None and r["qty"] >= 1),
    ({"qty__lt": "1"}, lambda r: r["qty"] is not None and r["qty"] < 1),
    ({"qty__lte": "1"}, lambda r: r["qty"] is not None and r["qty"] <= 1),
    ({"qty__in": "0,2"}, lambda r: r["qty"] in (0, 2)),
    ({"qty__in": ["0", "2"]}, lambda r: r["qty"] in (0, 2)),
    ({"qty__isnull": "true"}, lambda r: r["qty"] is None),
    ({"qty__isnull": "false"}, lambda r: r["qty"] is not None),
    ({"price__gt": "1.2"}, lambda r: r["price"] is not None and Decimal(r["price"]) > 1),
    ({"price": "0.5"}, lambda r: r["price"] == "0.500"),
    ({"name": "bravo"}, lambda r: r["name"] == "bravo"),
    ({"name__contains": "RAV"}, lambda r: "rav" in r["name"]),
    ({"notes__contains": "about BR"}, lambda r: "about br" in r["notes"].lower()),
    ({"notes__contains": "%"}, lambda r: False),
    ({"notes__contains": "_"}, lambda r: False),
    ({"size": "m"}, lambda r: r["size"] == "m"),
    ({"size__in": "s,l"}, lambda r: r["size"] in ("s", "l")),
    ({"size__ne": "m"}, lambda r: r["size"] != "m"),
    ({"size__isnull": "true"}, lambda r: r["size"] is None),
    ({"tags": "red"}, lambda r: "red" in r["tags"]),
    ({"tags__contains": "blue"}, lambda r: "blue" in r["tags"]),
    ({"tags__in": "blue,green"}, lambda r: bool({"blue", "green"} & set(r["tags"]))),
    ({"tags__ne": "red"}, lambda r: "red" not in r["tags"]),
    ({"tags__isnull": "true"}, lambda r: not r["tags"]),
    ({"flag": "true"}, lambda r: r["flag"] is True),
    ({"flag": "no"}, lambda r: r["flag"] is False),
    ({"flag__isnull": "1"}, lambda r: r["flag"] is None),
    ({"day__gte": "2026-02-01"}, lambda r: r["day"] is not None and r["day"] >= "2026-02-01"),
    ({"day__lt": "2026-02-01", "qty": "1"},
     lambda r: r["day"] is not None and r["day"] < "2026-02-01" and r["qty"] == 1),
    ({"moment": "2026-03-02"}, lambda r: r["moment"].startswith("2026-03-02")),
    ({"moment__lte": "2026-03-02"}, lambda r: r["moment"] < "2026-03-03"),
    ({"moment__gt": "2026-03-02"}, lambda r: r["moment"] >= "2026-03-03"),
    ({"moment__gte": "2026-03-02T12:00:00"},
     lambda r: dt(r["moment"]) >= datetime(2026, 3, 2, 12)),
    ({"email": "p3@EXAMPLE.com"}, lambda r: r["email"] == "p3@example.com"),
    ({"email__isnull": "false"}, lambda r: r["email"] is not None),
    ({"phone": "442079460958"}, lambda r: r["phone"] in PHONES[1:3]),
    ({"phone__contains": "7946"}, lambda r: r["phone"] in PHONES[1:3]),
    ({"owner": "me"}, lambda r: True),
    ({"ref": "T-0003"}, lambda r: r["ref"] == "T-0003"),
]


@pytest.mark.parametrize(("filters", "predicate"), FILTERS,
                         ids=[json.dumps(f) for f, _ in FILTERS])
def test_filter_operators(listed, filters, predicate):
    inst, actor, made = listed
    page = records.query(inst, actor, "thing", filters=filters, limit=500)
    assert sorted(r["id"] for r in page.rows) == rows_where(made, predicate)
    assert records.count(inst, actor, "thing", filters=filters) == (
        len(rows_where(made, predicate)), True)


def test_link_and_links_filters(listed):
    inst, actor, made = listed
    first, second = made[0]["id"], made[1]["id"]
    cases = [
        ({"other": str(first)}, lambda r: r["other"] == first),
        ({"other__isnull": "true"}, lambda r: r["other"] is None),
        ({"friends": str(second)}, lambda r: second in r["friends"]),
        ({"friends__in": f"{second},{first}"}, lambda r: bool({first, second} &
                                                              set(r["friends"]))),
        ({"friends__isnull": "true"}, lambda r: not r["friends"]),
        ({"friends__ne": str(second)}, lambda r: second not in r["friends"]),
    ]
    for filters, predicate in cases:
        page = records.query(inst, actor, "thing", filters=filters, limit=500)
        assert sorted(r["id"] for r in page.rows) == rows_where(made, predicate), filters


SEARCHES = [
    ("bravo", lambda r: "bravo" in r["name"]),
    ("BRA", lambda r: "bra" in r["name"]),
    ("+44 20 7946", lambda r: r["phone"] in PHONES[1:3]),
    ("020-7946", lambda r: r["phone"] in PHONES[1:3]),  # national: +44 20 7946…
    ("7946 0958", lambda r: r["phone"] in PHONES[1:3]),
    ("5550100", lambda r: r["phone"] == PHONES[3]),
    ("T-0004", lambda r: False),  # `ref` is not a search field
    ("0958", lambda r: r["phone"] in PHONES[1:3]),
    ("alpha bravo", lambda r: False),
    ("   ", lambda r: True),
    ("%", lambda r: False),
]


@pytest.mark.parametrize(("q", "predicate"), SEARCHES, ids=[q for q, _ in SEARCHES])
def test_quick_search(listed, q, predicate):
    inst, actor, made = listed
    page = records.query(inst, actor, "thing", q=q, limit=500)
    assert sorted(r["id"] for r in page.rows) == rows_where(made, predicate)


def test_search_by_id(listed):
    inst, actor, made = listed
    rows = records.query(inst, actor, "thing", q=str(made[5]["id"]), limit=500).rows
    assert made[5]["id"] in [r["id"] for r in rows]


def test_count_stops_at_the_cap(listed):
    inst, actor, made = listed
    assert records.count(inst, actor, "thing") == (len(made), True)
    assert records.count(inst, actor, "thing", cap=10) == (10, False)
    assert records.count(inst, actor, "thing", cap=len(made)) == (len(made), True)
    assert records.count(inst, actor, "thing", q="bravo") == (
        len(rows_where(made, lambda r: r["name"] == "bravo")), True)


def cursor_of(payload) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_REQUESTS = [
    ({"filters": {"qty__foo": "1"}}, "Unknown filter operator '__foo'"),
    ({"filters": {"nope": "1"}}, "no such field"),
    ({"filters": {"nmae": "x"}}, "did you mean 'name'"),
    ({"filters": {"name__gt": "a"}}, "has no order"),
    ({"filters": {"flag__contains": "t"}}, "__contains works on text"),
    ({"filters": {"qty": "abc"}}, "whole number"),
    ({"filters": {"qty": ["1", "2"]}}, "__in"),
    ({"filters": {"qty__in": ""}}, "at least one value"),
    ({"filters": {"qty__isnull": "maybe"}}, "true or false"),
    ({"filters": {"size": "xl"}}, "must be one of"),
    ({"filters": {"day__gt": "yesterday"}}, "date like"),
    ({"filters": {"qty": ""}}, "__isnull"),
    ({"sort": ["nope"]}, "Cannot sort"),
    ({"sort": ["tags"]}, "no order"),
    ({"sort": ["-friends"]}, "no order"),
    ({"limit": 0}, "limit"),
    ({"limit": "many"}, "limit"),
    ({"cursor": "garbage!!"}, "cursor"),
    ({"cursor": "eyJ"}, "cursor"),
    ({"cursor": cursor_of([1, 2])}, "cursor"),
    ({"cursor": cursor_of({"s": ["name", "id"], "d": "n", "k": ["a"]})}, "cursor"),
    ({"cursor": cursor_of({"s": ["name", "id"], "d": "x", "k": ["a", 1]})}, "cursor"),
    ({"cursor": cursor_of({"s": ["name", "id"], "d": "n", "k": ["a", "1"]})}, "cursor"),
    ({"cursor": cursor_of({"s": ["name", "id"], "d": "n", "k": ["a", None]})}, "cursor"),
    ({"cursor": cursor_of({"s": ["-qty", "id"], "d": "n", "k": [1, 1]})}, "cursor"),
    ({"sort": ["day"], "cursor": cursor_of({"s": ["day", "id"], "d": "n",
                                            "k": ["not a date", 1]})}, "cursor"),
    ({"sort": ["price"], "cursor": cursor_of({"s": ["price", "id"], "d": "n",
                                              "k": ["Infinity", 1]})}, "cursor"),
    ({"sort": ["price"], "cursor": cursor_of({"s": ["price", "id"], "d": "n",
                                              "k": [1.5, 1]})}, "cursor"),
    ({"cursor": "W" * 10000}, "cursor"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_REQUESTS,
                         ids=[str(k)[:60] for k, _ in BAD_REQUESTS])
def test_what_a_list_cannot_do_is_a_bad_request(listed, kwargs, message):
    inst, actor, _ = listed
    with pytest.raises(BadRequest) as info:
        records.query(inst, actor, "thing", **kwargs)
    assert info.value.status == 400
    assert message in info.value.message


def test_a_valid_hand_made_cursor_works(listed):
    inst, actor, made = listed
    cursor = cursor_of({"s": ["name", "id"], "d": "n", "k": ["bravo", 0]})
    page = records.query(inst, actor, "thing", cursor=cursor, limit=500)
    assert all(r["name"] >= "bravo" for r in page.rows)


def test_huge_limits_are_capped(listed):
    inst, actor, made = listed
    assert len(records.query(inst, actor, "thing", limit=10**6).rows) == len(made)


def test_query_results_are_json_shaped(listed):
    inst, actor, made = listed
    row = records.query(inst, actor, "thing", filters={"id": str(made[1]["id"])}).rows[0]
    json.dumps(row)
    assert isinstance(row["tags"], list) and isinstance(row["friends"], list)
    assert isinstance(row["price"], str) and row["created_at"].endswith("Z")
    assert date.fromisoformat(row["day"])
