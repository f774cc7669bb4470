"""One reader of a list's query string (`runtime.read.listrequest`): what it reads, what it
refuses and why; and that one address means the same list — the same `ListRequest` and the
same records — on the web page, its CSV export and the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

import pytest
from flask import g, request
from support import FIXTURES
from web_support import make_app, seed, sign_in
from werkzeug.datastructures import MultiDict

from builder.linker import build_model
from builder.model import AppModel
from runtime.core.errors import BadRequest
from runtime.http.api import crud
from runtime.http.auth import create_token
from runtime.http.web import listdata
from runtime.read.listrequest import OPERATORS, Filter, ListRequest, parse_list
from runtime.read.queries import entity_of

HIDDEN = frozenset({"commission_pct"})  # what an agent may not see of an offer
ME = 7


@pytest.fixture(scope="module")
def model() -> AppModel:
    return build_model([FIXTURES / "core", FIXTURES / "spec"])


def args_of(query: str) -> MultiDict:
    return MultiDict(parse_qsl(query, keep_blank_values=True))


def parse(model: AppModel, query: str, **options: Any) -> ListRequest:
    return parse_list(model.entity("offer"), args_of(query), hidden=HIDDEN, me=ME, **options)


# -- what is read -----------------------------------------------------------------------------

READS = [
    ("status=pending", [("status", "eq", "pending")]),
    ("status__eq=pending", [("status", "eq", "pending")]),
    ("financing__ne=cash", [("financing", "ne", "cash")]),
    ("amount__gt=1&amount__gte=2&amount__lt=9&amount__lte=8",
     [("amount", "gt", "1"), ("amount", "gte", "2"), ("amount", "lt", "9"),
      ("amount", "lte", "8")]),
    ("status__in=pending,accepted", [("status", "in", "pending,accepted")]),
    ("notes__contains=garden", [("notes", "contains", "garden")]),
    ("valid_until__isnull=true", [("valid_until", "isnull", "true")]),
    ("owner=me", [("owner", "eq", "me")]),
    ("created_at=2026-03-02", [("created_at", "eq", "2026-03-02")]),
    ("buyer=12&financing=cash", [("buyer", "eq", "12"), ("financing", "eq", "cash")]),
]


@pytest.mark.parametrize(("query", "filters"), READS, ids=[q for q, _ in READS])
def test_filters_are_field_operator_value_triples(model, query, filters):
    wanted = parse(model, query)
    assert wanted.problems == ()
    assert [(f.field, f.op, f.value) for f in wanted.filters] == filters
    assert wanted.filter_map() == {f.key: f.value for f in wanted.filters}


def test_every_operator_is_read(model):
    for op in OPERATORS:
        value = {"in": "1,2", "isnull": "false", "contains": "1"}.get(op, "1")
        field = "reference" if op == "contains" else "amount"
        wanted = parse(model, f"{field}__{op}={value}")
        assert wanted.filters == (Filter(field, op, value),), op


def test_search_sort_cursor_and_limit(model):
    wanted = parse(model, "q=+anna+&sort=-amount,%2Breference,valid_until&cursor=abc&limit=20")
    assert (wanted.q, wanted.cursor, wanted.limit) == ("anna", "abc", 20)
    assert wanted.sort == ("-amount", "+reference", "valid_until")  # a nullable field too
    assert wanted.filters == () and wanted.problems == ()


def test_defaults_are_the_list_views(model):
    wanted = parse(model, "q=&sort=&cursor=&limit=")
    assert wanted == ListRequest("offer", sort=("-created_at",), limit=50)


def test_a_mapping_of_lists_reads_like_a_query_string(model):
    offer = model.entity("offer")
    as_lists = parse_list(offer, {"amount__gte": ["100"], "sort": ["-amount"]}, hidden=HIDDEN)
    as_strings = parse_list(offer, {"amount__gte": "100", "sort": "-amount"}, hidden=HIDDEN)
    assert as_lists == as_strings == parse_list(offer, args_of("amount__gte=100&sort=-amount"),
                                                hidden=HIDDEN)


# -- what is refused --------------------------------------------------------------------------

PROBLEMS = [
    ("nonsense=1", "nonsense", "no such field", True),
    ("amont=1", "amont", "did you mean 'amount'", True),
    ("amount__like=1", "amount__like", "Unknown filter operator '__like'", True),
    ("commission_pct=1", "commission_pct", "no such field", True),  # hidden: does not exist
    ("commission_pct__isnull=false", "commission_pct__isnull", "no such field", True),
    ("amount=lots", "amount", "Filter 'amount': the value 'lots'", False),
    ("valid_until__gt=yesterday", "valid_until__gt", "the value 'yesterday'", False),
    ("status__gt=pending", "status__gt", "has no order", False),
    ("amount__contains=1", "amount__contains", "__contains works on text", False),
    ("valid_until__isnull=maybe", "valid_until__isnull", "true or false", False),
    ("status__in=", "status__in", "at least one value", False),
    ("financing=", "financing", "__isnull=true", False),
    ("financing=bitcoin", "financing", "must be one of", False),
    ("sort=nope", "sort", "Cannot sort", False),
    ("sort=-commission_pct", "sort", "Cannot sort", False),
    ("sort=notes", "sort", "no order", False),
    ("limit=0", "limit", "from 1 to 500", False),
    ("limit=501", "limit", "from 1 to 500", False),
    ("limit=ten", "limit", "from 1 to 500", False),
]


@pytest.mark.parametrize(("query", "key", "words", "unknown"), PROBLEMS,
                         ids=[q for q, *_ in PROBLEMS])
def test_what_cannot_be_used_is_a_problem_and_left_out(model, query, key, words, unknown):
    wanted = parse(model, query)
    assert [(p.key, p.unknown) for p in wanted.problems] == [(key, unknown)]
    assert words in wanted.problems[0].message
    assert wanted.filters == ()  # the rest is the default list
    assert (wanted.sort, wanted.limit) == (("-created_at",), 50)
    with pytest.raises(BadRequest) as info:
        wanted.check()
    assert info.value.status == 400 and words in info.value.message


def test_a_parameter_given_twice_is_a_problem_its_first_value_is_used(model):
    wanted = parse(model, "financing=cash&financing=mixed")
    assert wanted.filters == (Filter("financing", "eq", "cash"),)
    assert [p.key for p in wanted.problems] == ["financing"]
    assert "given 2 times" in wanted.problems[0].message
    assert "__in" in wanted.problems[0].message


def test_several_problems_are_one_error_naming_each(model):
    with pytest.raises(BadRequest) as info:
        parse(model, "nonsense=1&amount=lots&sort=nope").check()
    for words in ("nonsense", "lots", "Cannot sort"):
        assert words in info.value.message


def test_keys_starting_with_an_underscore_are_never_filters(model):
    assert parse(model, "_=1700000000&_method=PUT&financing=cash") == parse(
        model, "financing=cash")


def test_the_web_pages_own_keys_are_not_filters(model):
    web = "entity=offer&endpoint=web.list&_method=DELETE&view=kanban&month=2026-03&saved=3" \
          "&buyer__q=Ben&buyer__shown=Ben+Okafor&financing=cash"
    wanted = parse(model, web, ignore=listdata.web_key)
    assert wanted == parse(model, "financing=cash") and wanted.problems == ()
    # without the page, `entity` and `view` are filters like any other: none of an offer
    assert {p.key for p in parse(model, web).problems} >= {"entity", "endpoint", "view",
                                                           "buyer__q"}


def test_blank_boxes_of_a_form_are_no_filter_only_when_asked(model):
    form = "status=&financing=&amount__gte=&amount__lte=1000&q="
    assert parse(model, form, skip_blank=True).filters == (Filter("amount", "lte", "1000"),)
    assert {p.key for p in parse(model, form).problems} == {"status", "financing",
                                                             "amount__gte"}


# -- one address, one list: the web page, its CSV export and the API --------------------------

@pytest.fixture
def both(spec_instance, admin, tmp_path) -> dict[str, Any]:
    inst = spec_instance
    who = admin(inst)
    app = make_app(inst, tmp_path)
    client = app.test_client()
    sign_in(client, inst, who)
    data = seed(inst, who)
    token = create_token(inst, who.user_id, "test")
    return {"inst": inst, "who": who, "app": app, "client": client, "data": data,
            "api": {"Authorization": f"Bearer {token}"}}


def page_ids(text: str) -> list[int]:
    return [int(i) for i in re.findall(r'<a class="title" href="/e/\w+/(\d+)">', text)]


def api_pages(client, entity: str, query: str, headers: dict[str, str]) -> list[list[int]]:
    pages, cursor = [], None
    while True:
        params = MultiDict(args_of(query))
        if cursor:
            params["cursor"] = cursor
        answer = client.get(f"/api/v1/{entity}", query_string=params, headers=headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        body = answer.get_json()
        pages.append([r["id"] for r in body["data"]])
        cursor = body["next_cursor"]
        if not cursor:
            return pages


SAME = [
    ("offer", "financing=cash&sort=amount"),
    ("offer", "amount__gte=400000&amount__lte=600000&sort=-amount"),
    ("offer", "status__in=pending,accepted&q=okafor"),
    ("offer", "valid_until__isnull=false&sort=valid_until,reference&limit=2"),
    ("offer", "financing__ne=mixed&owner=me&limit=3"),
    ("contact", "sort=-birth_date&limit=1"),  # a nullable sort key: NULLs last, both ways
    ("lead", "source=web&region__in=north,west&sort=name"),
]


@pytest.mark.parametrize(("entity", "query"), SAME, ids=[q for _, q in SAME])
def test_one_address_is_one_list_on_the_web_and_in_the_api(both, entity, query):
    client, app = both["client"], both["app"]
    with app.test_request_context(f"/e/{entity}?{query}"):
        g.actor = both["who"]
        ent = entity_of(both["inst"], entity)
        web = listdata.list_request(ent, request.args)
        api = crud.list_request(ent)
        # the same list; only the page also carries the reader's zone for dates it reads
        assert replace(web, filters=()) == replace(api, filters=())
        assert [f[:3] for f in web.filters] == [f[:3] for f in api.filters]
        assert {f.zone for f in web.filters} <= {listdata.zone()}
        assert web.problems == ()
    pages = api_pages(client, entity, query, both["api"])
    listed = client.get(f"/e/{entity}?{query}").get_data(as_text=True)
    assert "flash-warning" not in listed
    assert page_ids(listed) == pages[0]
    with client.get(f"/e/{entity}/export.csv?{query}") as answer:
        exported = [int(r["id"]) for r in csv.DictReader(io.StringIO(
            answer.get_data(as_text=True)))]
    assert exported == [i for page in pages for i in page]
    assert exported  # every case lists something


def test_web_and_api_walk_the_same_pages_of_a_nullable_sort(both):
    client = both["client"]
    query = "sort=birth_date&limit=1"  # Anna has a birth date; Ben and Chen have none
    pages = api_pages(client, "contact", query, both["api"])
    assert len(pages) == 3
    walked, url = [], f"/e/contact?{query}"
    while url:
        text = client.get(url).get_data(as_text=True)
        walked.append(page_ids(text))
        found = re.search(r'href="([^"]*cursor=[^"]*)"[^>]*>Next', text)
        url = html.unescape(found.group(1)) if found else None
    assert walked == pages and pages[0] == [both["data"]["anna"]["id"]]


# -- each surface's answer to a problem -------------------------------------------------------

def test_the_api_answers_400_the_web_warns_and_lists_the_rest(both):
    client = both["client"]
    query = "financing=cash&amount__gte=lots&sort=notes"
    answer = client.get(f"/api/v1/offer?{query}", headers=both["api"])
    assert answer.status_code == 400
    message = answer.get_json()["error"]["message"]
    assert "amount__gte" in message and "no order" in message
    text = html.unescape(client.get(f"/e/offer?{query}").get_data(as_text=True))
    assert "Filter 'amount__gte': the value 'lots'" in text
    assert "Cannot sort by 'notes'" in text
    cash = [o["id"] for o in both["data"]["offers"] if o["financing"] == "cash"]
    assert sorted(page_ids(text)) == sorted(cash)  # the good filter still applies
    with client.get(f"/e/offer/export.csv?{query}") as exported:
        assert exported.status_code == 200
        rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert sorted(int(r["id"]) for r in rows) == sorted(cash)
    for view in ("kanban", "calendar"):
        page = client.get(f"/e/offer?view={view}&{query}")
        assert page.status_code == 200
        assert "the value 'lots'" in html.unescape(page.get_data(as_text=True))


def test_the_web_pages_keys_reach_no_filter_and_break_no_redirect(both):
    client, offer = both["client"], both["data"]["offers"][2]
    keys = "entity=contact&endpoint=web.home&_method=DELETE"
    text = client.get(f"/e/offer?{keys}&financing=mixed").get_data(as_text=True)
    assert page_ids(text) == [offer["id"]] and "not a filter" not in text
    token = re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)
    moved = client.post(f"/e/offer/{offer['id']}/move?{keys}&view=kanban", data={
        "csrf_token": token, "value": "accepted", "version": str(offer["version"])})
    assert moved.status_code == 302
    assert moved.headers["Location"].startswith("/e/offer?")
    assert "view=kanban" in moved.headers["Location"]


def test_an_unknown_entity_is_the_one_404_in_html_and_json(both):
    client = both["client"]
    page = client.get("/e/nothing")
    assert page.status_code == 404 and "There is no entity 'nothing'" in html.unescape(
        page.get_data(as_text=True))
    answer = client.get("/api/v1/nothing", headers=both["api"])
    assert answer.status_code == 404
    assert "There is no entity 'nothing'" in answer.get_json()["error"]["message"]


def test_the_board_and_the_calendar_read_the_same_address(both):
    client, offers = both["client"], both["data"]["offers"]
    by_amount = [o["id"] for o in sorted(offers, key=lambda o: float(o["amount"]))]
    for sort, expected in (("amount", by_amount), ("-amount", by_amount[::-1])):
        board = client.get(f"/e/offer?view=kanban&sort={sort}").get_data(as_text=True)
        assert [int(i) for i in re.findall(r'data-id="(\d+)"', board)] == expected
    ben = both["data"]["ben"]["id"]
    month = client.get("/e/offer?view=calendar&q=okafor").get_data(as_text=True)
    shown = {int(i) for i in re.findall(r'<a class="event" href="/e/offer/(\d+)"', month)}
    assert shown == {o["id"] for o in offers if o["buyer"] == ben}
