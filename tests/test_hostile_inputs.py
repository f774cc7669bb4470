"""Hostile inputs (issue 12, defect 8): each answers 400, 404 or 422 with the one error shape —
JSON for the API, the HTML error page or a list warning for the web — never a 500.

One table of cases, each run against a real app over the SPEC fixture pack with demo records,
on SQLite and PostgreSQL (the app is built once per database for the whole table): decimals
too big or not finite, integers past 2⁶³ (and digits that are no number, "²") in addresses,
forms and cursors, NUL characters, lone surrogates in JSON, dates and calendar months at the
ends of the calendar, a newline in `next`, and a CSV export with a filter it cannot use (the
records the list shows beside its warning). Then saved views and kanban moves whose query
string holds url_for's own names, and an import of hostile numbers.
"""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_support import assert_error_shape, bearer
from conftest import BACKENDS, build_instance, provision_database
from flask.testing import FlaskClient
from support import FIXTURES, admin_actor
from web_support import make_app, seed, sign_in, token_of
from werkzeug.test import TestResponse

from runtime.core.instance import Instance
from runtime.http.auth import create_token
from runtime.ops import transfer

HUGE = "99999999999999999999"  # 2⁶⁶ and more: no database integer holds it
THIRTY_NINES = "9" * 30


def cursor(sort: list[str], keys: list[Any], direction: str = "n") -> str:
    """A cursor as `queries.encode_cursor` writes one, with the key values given."""
    raw = json.dumps({"s": sort, "d": direction, "k": keys}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass
class World:
    inst: Instance
    api: FlaskClient
    web: FlaskClient
    anon: FlaskClient
    token: str
    csrf: str
    ids: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    """One app per database for the whole table: the cases only read, or fail to write."""
    directory = tmp_path_factory.mktemp(f"hostile-{request.param}")
    with provision_database(request.param, directory) as url:
        inst = build_instance([FIXTURES / "core", FIXTURES / "spec"], url)
        try:
            admin = admin_actor(inst)
            data = seed(inst, admin)
            app = make_app(inst, directory)
            web = app.test_client()
            sign_in(web, inst, admin)
            yield World(inst, app.test_client(), web, app.test_client(),
                        create_token(inst, admin.user_id, "hostile inputs"), token_of(web),
                        {"offer": data["offers"][0]["id"], "flat": data["flat"]["id"],
                         "anna": data["anna"]["id"]})
        finally:
            inst.engine.dispose()


# -- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One request. `who`: "api" (admin bearer token), "web" (signed-in admin, CSRF token
    added to forms) or "anon". `path` may hold `{offer}`, `{flat}`, `{anna}`. `json` is the raw
    body text; `form` a form body. `status`: what it must answer. `warning`: a web list answers
    200 and shows this text instead of failing."""

    who: str
    method: str
    path: str
    json: str | None = None
    form: dict[str, str] | None = None
    status: tuple[int, ...] = (400,)
    warning: str | None = None


def offer_body(**changes: Any) -> str:
    """An offer as raw JSON text, with `changes` pasted in verbatim (numbers JSON cannot
    hold as Python writes them, surrogate escapes)."""
    values = {"property": "{flat}", "buyer": "{anna}", "amount": '"1000"',
              "financing": '"cash"', **changes}
    return "{" + ", ".join(f'"{k}": {v}' for k, v in values.items()) + "}"


API_DECIMALS = {
    f"api-body-{name}": Case("api", "POST", "/api/v1/offer", json=offer_body(amount=value),
                             status=(422,))
    for name, value in [("1e27", "1e27"), ("1e27-text", '"1e27"'),
                        ("thirty-nines", THIRTY_NINES), ("thirty-nines-text", f'"{THIRTY_NINES}"'),
                        ("1e999999", "1e999999"), ("1e999999-text", '"1e999999"'),
                        ("-1e999999", "-1e999999"), ("nan-text", '"NaN"')]
}

CASES: dict[str, Case] = {
    **API_DECIMALS,
    # decimals in filters and cursors
    "api-filter-1e27": Case("api", "GET", "/api/v1/offer?amount__gte=1e27"),
    "api-filter-thirty-nines": Case("api", "GET", f"/api/v1/offer?amount={THIRTY_NINES}"),
    "api-filter-1e999999": Case("api", "GET", "/api/v1/offer?amount__lt=1e999999"),
    "api-filter-in-1e999999": Case("api", "GET", "/api/v1/offer?amount__in=1,1e999999"),
    "api-filter-integer-1e999999": Case("api", "GET", "/api/v1/property?offer_count=1e999999"),
    "api-cursor-decimal-1e999999": Case(
        "api", "GET", "/api/v1/offer?sort=amount&cursor="
        + cursor(["amount", "id"], ["1e999999", 1])),
    "api-cursor-decimal-1e27": Case(
        "api", "GET", "/api/v1/offer?sort=amount&cursor=" + cursor(["amount", "id"], ["1e27", 1])),
    "web-filter-1e27": Case("web", "GET", "/e/offer?amount__gte=1e27", status=(200,),
                            warning="is too large"),
    "web-filter-1e999999": Case("web", "GET", "/e/offer?amount=1e999999", status=(200,),
                                warning="is too large"),
    "web-cursor-1e999999": Case(
        "web", "GET", "/e/offer?sort=amount&cursor=" + cursor(["amount", "id"], ["1e999999", 1]),
        status=(200,), warning="The cursor is not valid"),
    # integers past 2⁶³ in addresses and cursors
    "api-cursor-id-huge": Case("api", "GET", "/api/v1/offer?sort=id&cursor="
                               + cursor(["id"], [int(HUGE)])),
    "api-cursor-integer-huge": Case(
        "api", "GET", "/api/v1/property?sort=offer_count&cursor="
        + cursor(["offer_count", "id"], [int(HUGE), 1])),
    "api-cursor-link-huge": Case(
        "api", "GET", "/api/v1/offer?sort=buyer&cursor=" + cursor(["buyer", "id"], [int(HUGE), 1])),
    "web-cursor-id-huge": Case("web", "GET", "/e/offer?sort=id&cursor="
                               + cursor(["id"], [int(HUGE)]), status=(200,),
                               warning="The cursor is not valid"),
    "api-record-huge": Case("api", "GET", f"/api/v1/offer/{HUGE}", status=(404,)),
    "api-update-huge": Case("api", "PATCH", f"/api/v1/offer/{HUGE}",
                            json='{"notes": "x", "version": 1}', status=(404,)),
    "api-timeline-huge": Case("api", "POST", f"/api/v1/offer/{HUGE}/timeline",
                              json='{"body": "x"}', status=(404,)),
    "api-record-zero": Case("api", "DELETE", "/api/v1/offer/0", status=(404,)),
    "api-q-superscript": Case("api", "GET", "/api/v1/offer?q=²", status=(200,)),
    "web-search-superscript": Case("web", "GET", "/search?q=²", status=(200,)),
    "api-approval-huge": Case("api", "GET", f"/api/v1/approvals/{HUGE}", status=(404,)),
    "api-approve-huge": Case("api", "POST", f"/api/v1/approvals/{HUGE}/approve", json="{}",
                             status=(404,)),
    "api-filter-link-huge": Case("api", "GET", f"/api/v1/offer?buyer={HUGE}"),
    "api-body-version-huge": Case("api", "PATCH", "/api/v1/offer/{offer}",
                                  json=f'{{"notes": "x", "version": {HUGE}}}',
                                  status=(409, 422)),
    "api-body-link-huge": Case("api", "POST", "/api/v1/offer", json=offer_body(buyer=HUGE),
                               status=(422,)),
    "web-attachment-huge": Case("web", "GET", f"/attachments/{HUGE}", status=(404,)),
    "web-notification-huge": Case("web", "GET", f"/notifications/{HUGE}", status=(404,)),
    "web-approve-huge": Case("web", "POST", f"/approvals/{HUGE}/approve", form={},
                             status=(404,)),
    "web-record-huge": Case("web", "GET", f"/e/offer/{HUGE}", status=(404,)),
    "web-edit-huge": Case("web", "GET", f"/e/offer/{HUGE}/edit", status=(404,)),
    "web-follow-up-huge": Case("web", "POST", f"/e/offer/{{offer}}/follow-ups/{HUGE}/done",
                               form={}, status=(404,)),
    "web-saved-view-huge": Case("web", "GET", f"/e/offer?saved={HUGE}", status=(404,)),
    "web-saved-view-superscript": Case("web", "GET", "/e/offer?saved=²", status=(404,)),
    "web-bulk-ids": Case("web", "POST", "/e/offer/bulk",
                         form={"action": "delete", "ids": "²", "back": "/e/offer"},
                         status=(302,)),
    "web-move-version": Case("web", "POST", "/e/offer/{offer}/move",
                             form={"value": "pending", "version": "²"}, status=(302,)),
    "web-form-state-huge": Case("web", "POST", "/e/offer/_state",
                                form={"_record_id": HUGE}, status=(200,)),
    "web-form-state-superscript": Case("web", "POST", "/e/offer/_state",
                                       form={"_record_id": "²"}, status=(200,)),
    "web-transition-version": Case("web", "POST", "/e/offer/{offer}/transitions/refuse",
                                   form={"version": "²"}, status=(302,)),
    "web-delete-view-huge": Case("web", "POST", f"/e/offer/views/{HUGE}/delete", form={},
                                 status=(404,)),
    "web-filter-link-huge": Case("web", "GET", f"/e/offer?buyer={HUGE}", status=(200,),
                                 warning="must be the id of a contact record"),
    # NUL characters (PostgreSQL refuses them in any string)
    "api-q-nul": Case("api", "GET", "/api/v1/offer?q=%00"),
    "api-filter-nul": Case("api", "GET", "/api/v1/offer?notes__contains=a%00b"),
    "api-filter-text-nul": Case("api", "GET", "/api/v1/property?title=%00"),
    "api-body-nul": Case("api", "POST", "/api/v1/offer", json=offer_body(notes='"a\\u0000b"'),
                         status=(400, 422)),
    "api-note-nul": Case("api", "POST", "/api/v1/offer/{offer}/timeline",
                         json='{"kind": "note", "body": "a\\u0000b"}', status=(400, 422)),
    "web-q-nul": Case("web", "GET", "/e/offer?q=%00"),
    "web-q-surrogate-bytes": Case("web", "GET", "/e/offer?q=%ED%A0%80", status=(200,)),
    "web-filter-nul": Case("web", "GET", "/e/property?title__contains=%00"),
    "web-search-nul": Case("web", "GET", "/search?q=a%00"),
    "web-picker-nul": Case("web", "GET", "/e/contact/_options?q=%00&target=buyer"),
    "web-form-nul": Case("web", "POST", "/e/property/new",
                         form={"title": "a\x00b", "price": "1"}, status=(400, 422)),
    "anon-login-nul": Case("anon", "POST", "/login",
                           form={"username": "ad\x00min", "password": "x\x00"}),
    # lone surrogates in JSON strings
    "api-body-surrogate": Case("api", "POST", "/api/v1/offer",
                               json=offer_body(notes='"\\ud800"')),
    "api-body-surrogate-key": Case("api", "POST", "/api/v1/offer",
                                   json=offer_body(**{"\\udfff": '"x"'})),
    "api-note-surrogate": Case("api", "POST", "/api/v1/offer/{offer}/timeline",
                               json='{"kind": "note", "body": "\\ud800"}'),
    "api-transition-surrogate": Case("api", "POST", "/api/v1/offer/{offer}/transitions/refuse",
                                     json='{"comment": "\\udc00", "version": 1}'),
    # dates at the ends of the calendar
    "api-filter-datetime-last-day": Case("api", "GET", "/api/v1/viewing?starts_at=9999-12-31"),
    "api-filter-datetime-last-day-lte": Case(
        "api", "GET", "/api/v1/viewing?starts_at__lte=9999-12-31"),
    "api-filter-datetime-first-day": Case(
        "api", "GET", "/api/v1/viewing?starts_at__lt=0001-01-01", status=(200,)),
    "api-filter-date-last-day": Case("api", "GET", "/api/v1/offer?valid_until__gt=9999-12-31",
                                     status=(200,)),
    "web-filter-datetime-last-day": Case("web", "GET", "/e/viewing?starts_at__gt=9999-12-31",
                                         status=(200,), warning="must be a day before"),
    "web-calendar-last-month": Case("web", "GET", "/e/viewing?view=calendar&month=9999-12",
                                    status=(200,), warning="month"),
    "web-calendar-first-month": Case("web", "GET", "/e/viewing?view=calendar&month=0001-01",
                                     status=(200,), warning="month"),
    "web-calendar-last-day-filter": Case(
        "web", "GET", "/e/offer?view=calendar&valid_until__gte=9999-12-31", status=(200,)),
    # a newline in `next`
    "web-next-newline": Case("web", "POST", "/e/property/new?next=/e/property%0D%0AX-Evil:%201",
                             form={"title": "Newline", "price": "1"}, status=(302,)),
    # a CSV export with a filter it cannot use
    # (the records the list page shows beside its warning: without the filter it cannot use)
    "web-export-bad-filter": Case("web", "GET", "/e/offer/export.csv?amount__gte=abc",
                                  status=(200,), warning="reference,"),
    "web-export-huge-filter": Case("web", "GET", "/e/offer/export.csv?amount__gte=1e27",
                                   status=(200,), warning="reference,"),
    "web-export-nul": Case("web", "GET", "/e/offer/export.csv?q=%00"),
}


def fill(text: str, world: World) -> str:
    for name, value in world.ids.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def send(world: World, case: Case) -> TestResponse:
    client = {"api": world.api, "web": world.web, "anon": world.anon}[case.who]
    headers = bearer(world.token) if case.who == "api" else {}
    kwargs: dict[str, Any] = {"headers": headers}
    if case.json is not None:
        kwargs.update(data=fill(case.json, world).encode("utf-8", "surrogatepass"),
                      content_type="application/json")
    if case.form is not None:
        form = dict(case.form)
        if case.who == "web":
            form["csrf_token"] = world.csrf
        elif case.who == "anon":
            form["csrf_token"] = token_of(world.anon, "/login")
        kwargs["data"] = form
    return client.open(fill(case.path, world), method=case.method, **kwargs)


def assert_answer(response: TestResponse, case: Case) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code != 500, text[:2000]
    assert response.status_code in case.status, (response.status_code, text[:2000])
    assert "Traceback" not in text
    if response.status_code >= 400:
        if case.who == "api":
            extra = {422: ("errors",), 409: ("current",)}.get(response.status_code, ())
            assert_error_shape(response, response.status_code, *extra)
        elif response.status_code != 422:  # a form shows its messages on the form itself
            assert response.mimetype == "text/html" and "<h1>" in text, text[:2000]
    if 300 <= response.status_code < 400:  # to a page of this site, on one line
        location = response.headers["Location"]
        assert location.startswith("/") and not location.startswith("//"), location
        assert "\n" not in location and "\r" not in location, location
    if case.warning is not None:
        assert case.warning in text, text[:3000]


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_answered_not_crashed(world: World, name: str) -> None:
    assert_answer(send(world, CASES[name]), CASES[name])


def test_a_saved_view_holding_url_for_names_saves_and_opens(world: World) -> None:
    """`entity=`, `endpoint=` and `_method=` in a view's query string are not list settings:
    saving it and opening it again show the list, with its real settings kept."""
    client = world.web
    saved = client.post("/e/offer/views", data={
        "name": "Hostile", "csrf_token": world.csrf,
        "query": "entity=contact&endpoint=web.home&_method=DELETE&financing=cash"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    assert saved.headers["Location"] == "/e/offer?financing=cash"
    views = world.inst.schema.system("saved_view")
    with world.inst.engine.connect() as conn:
        view_id, settings = conn.execute(sa.select(views.c.id, views.c.settings).where(
            views.c.name == "Hostile")).one()
    assert (json.loads(settings) if isinstance(settings, str) else settings) == {
        "financing": "cash"}
    opened = client.get(f"/e/offer?saved={view_id}")
    assert opened.status_code == 302 and opened.headers["Location"] == "/e/offer?financing=cash"
    assert client.get(opened.headers["Location"]).status_code == 200


def test_a_kanban_move_keeps_url_for_names_as_the_boards_address(world: World) -> None:
    moved = world.web.post(fill("/e/offer/{offer}/move?entity=contact&endpoint=x&_method=PUT",
                                world), data={"value": "pending", "csrf_token": world.csrf})
    assert moved.status_code == 302, moved.get_data(as_text=True)[:2000]
    assert moved.headers["Location"].startswith("/e/offer?")


def test_import_reports_hostile_numbers_on_their_lines(world: World, tmp_path: Path) -> None:
    """What `crmforge import` reads: each bad value is a problem on its line (the command
    prints them), never an exception; nothing is kept."""
    flat, anna = world.ids["flat"], world.ids["anna"]
    path = tmp_path / "offers.csv"
    lines = [["property", "buyer", "amount"]] + [
        [flat, anna, amount] for amount in ("1e27", THIRTY_NINES, "1e999999", "-1e999999",
                                            "NaN", "Infinity")] + [
        [flat, HUGE, "1000"], [flat, "Anna Schmidt\0", "1000"], [flat, anna, "1000"]]
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(lines)
    header, rows = transfer.read_file(path)
    # an XLSX cell is a float: an infinite one is no id either
    rows.append((99, {"property": flat, "buyer": float("inf"), "amount": 1000.0}))
    result = transfer.import_rows(world.inst, "offer", header, rows)
    assert not result.kept and result.created == 1
    assert sorted({line for line, _ in result.problems}) == [2, 3, 4, 5, 6, 7, 8, 9, 99]
    messages = dict(result.problems)
    assert "is too large" in messages[2] and "is too large" in messages[3]
    assert "must be a finite number" in messages[6]
    assert "buyer: must be the id of a contact record" in messages[8]
    assert "NUL" in messages[9]
