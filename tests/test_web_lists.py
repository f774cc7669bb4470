"""`/e/<entity>`: quick search, filters, sort, keyset pages, counts, saved views, CSV export,
bulk edit and delete, kanban moves (drag = plain form post) and the month calendar."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from web_support import make_app, seed, sign_in, token_of

from runtime.http.web import listdata
from runtime.write import records


@pytest.fixture
def web(spec_instance, admin, tmp_path) -> dict[str, Any]:
    inst = spec_instance
    who = admin(inst)
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, who)
    return {"inst": inst, "client": client, "admin": who, "data": seed(inst, who)}


def rows_of(html: str) -> list[str]:
    """The record links of a list's table, in order."""
    return re.findall(r'<a class="title" href="/e/\w+/\d+">([^<]*)</a>', html)


def test_columns_count_and_links(web) -> None:
    html = web["client"].get("/e/offer").get_data(as_text=True)
    for label in ("Reference", "Property", "Buyer", "Amount", "Status"):
        assert label in html
    assert "<strong" in html and ">4</strong> offers" in html
    assert "Riverside flat, 2 bed" in html and "Anna Schmidt" in html  # links by title
    assert "Pending" in html  # the workflow state's label


def test_quick_search_as_you_type_returns_only_the_results(web) -> None:
    client = web["client"]
    full = client.get("/e/contact?q=okafor").get_data(as_text=True)
    assert rows_of(full) == ["Ben"]
    part = client.get("/e/contact?q=okafor", headers={"HX-Request": "true",
                                                      "HX-Target": "results"})
    text = part.get_data(as_text=True)
    assert text.lstrip().startswith('<div id="results"') and rows_of(text) == ["Ben"]
    # a phone number written differently still finds the contact
    assert rows_of(client.get("/e/contact?q=20 7946-0958").get_data(as_text=True)) == ["Anna"]


def test_filters_choice_link_range_and_text(web) -> None:
    client, data = web["client"], web["data"]
    by_financing = client.get("/e/offer?financing=cash").get_data(as_text=True)
    assert set(rows_of(by_financing)) == {"OFF-00004", "OFF-00002"}
    by_buyer = client.get(f"/e/offer?buyer={data['ben']['id']}").get_data(as_text=True)
    assert set(rows_of(by_buyer)) == {"OFF-00002", "OFF-00004"}
    assert 'value="Ben Okafor"' in by_buyer  # the picker shows the chosen title
    typed = client.get("/e/offer?buyer__q=Okafor").get_data(as_text=True)  # JavaScript off
    assert set(rows_of(typed)) == {"OFF-00002", "OFF-00004"}
    ranged = client.get("/e/offer?amount__gte=500000&amount__lte=1200000").get_data(
        as_text=True)
    assert set(rows_of(ranged)) == {"OFF-00002", "OFF-00003"}
    unknown = client.get("/e/offer?nonsense=1").get_data(as_text=True)
    assert "is not a filter of this list" in unknown and len(rows_of(unknown)) == 4


def test_sortable_headers(web) -> None:
    client = web["client"]
    up = rows_of(client.get("/e/offer?sort=amount").get_data(as_text=True))
    down = rows_of(client.get("/e/offer?sort=-amount").get_data(as_text=True))
    assert up == ["OFF-00004", "OFF-00001", "OFF-00003", "OFF-00002"]
    assert down == list(reversed(up))
    html = client.get("/e/offer?sort=amount").get_data(as_text=True)
    assert 'aria-sort="ascending"' in html and "sort=-amount" in html


def test_keyset_pages_next_and_previous(web) -> None:
    inst, who, client = web["inst"], web["admin"], web["client"]
    for i in range(55):
        records.create(inst, who, "task", {"subject": f"Task {i:02d}"})
    first = client.get("/e/task?sort=subject").get_data(as_text=True)
    assert len(rows_of(first)) == 50 and rows_of(first)[0] == "Task 00"
    match = re.search(r'href="([^"]*cursor=[^"]*)"[^>]*>Next', first)
    assert match
    second = client.get(match.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert rows_of(second) == [f"Task {i}" for i in range(50, 55)]
    back = re.search(r'href="([^"]*cursor=[^"]*)"[^>]*>← Previous', second)
    assert back
    again = client.get(back.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert rows_of(again) == rows_of(first)


def test_count_is_capped(web, monkeypatch) -> None:
    monkeypatch.setattr(listdata, "COUNT_CAP", 3)
    html = web["client"].get("/e/offer").get_data(as_text=True)
    assert ">3+</strong>" in html


def test_saved_views_per_user(web) -> None:
    client = web["client"]
    token = token_of(client, "/e/offer")
    answer = client.post("/e/offer/views", data={
        "csrf_token": token, "name": "Cash offers", "query": "financing=cash&sort=-amount"})
    assert answer.status_code == 302
    page = client.get("/e/offer").get_data(as_text=True)
    view_id = re.search(r'saved=(\d+)">Cash offers', page).group(1)
    opened = client.get(f"/e/offer?saved={view_id}")
    assert opened.status_code == 302
    assert "financing=cash" in opened.headers["Location"]
    assert rows_of(client.get(opened.headers["Location"]).get_data(as_text=True)) == [
        "OFF-00002", "OFF-00004"]  # sorted by -amount, as saved
    client.post(f"/e/offer/views/{view_id}/delete", data={"csrf_token": token})
    assert "Cash offers" not in client.get("/e/offer").get_data(as_text=True)
    assert client.get(f"/e/offer?saved={view_id}").status_code == 404


def test_csv_export_of_the_current_filter(web) -> None:
    inst, who, client = web["inst"], web["admin"], web["client"]
    records.create(inst, who, "lead", {"name": "=HYPERLINK(\"http://evil\")", "source": "web"})
    with client.get("/e/lead/export.csv?source=web") as answer:
        assert answer.status_code == 200
        assert answer.mimetype == "text/csv"
        assert "attachment" in answer.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    names = {r["name"] for r in rows}
    assert "Northwind Traders" in names and "Contoso Pharma" not in names
    assert "'=HYPERLINK(\"http://evil\")" in names  # never a live formula
    assert {r["source"] for r in rows} == {"Website"}  # labels, not codes (issue 13)
    with client.get("/e/offer/export.csv?financing=cash") as answer:
        offers = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert {o["buyer"] for o in offers} == {"Ben Okafor"}


def test_bulk_edit(web) -> None:
    inst, who, client = web["inst"], web["admin"], web["client"]
    ids = [r["id"] for r in records.query(inst, who, "lead", filters={"source": "web"}).rows]
    token = token_of(client, "/e/lead")
    answer = client.post("/e/lead/bulk", data={
        "csrf_token": token, "action": "edit", "field": "region", "value": "south",
        "ids": [str(i) for i in ids], "back": "/e/lead?source=web"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/e/lead?source=web"
    assert {records.get(inst, who, "lead", i)["region"] for i in ids} == {"south"}
    page = client.get("/e/lead").get_data(as_text=True)
    assert "3 records changed (Region)." in page
    bad = client.post("/e/lead/bulk", data={
        "csrf_token": token, "action": "edit", "field": "region", "value": "moon",
        "ids": [str(ids[0])]})
    assert bad.status_code == 302
    assert "1 not changed" in client.get("/e/lead").get_data(as_text=True)


def test_bulk_delete_asks_first(web) -> None:
    inst, who, client = web["inst"], web["admin"], web["client"]
    ids = [str(r["id"]) for r in records.query(inst, who, "lead", filters={"source": "web"},
                                               limit=2).rows]
    token = token_of(client, "/e/lead")
    confirm = client.post("/e/lead/bulk", data={"csrf_token": token, "action": "delete",
                                                 "ids": ids})
    assert confirm.status_code == 200
    assert "This cannot be undone" in confirm.get_data(as_text=True)
    assert records.count(inst, who, "lead")[0] == 5
    done = client.post("/e/lead/bulk", data={"csrf_token": token, "action": "delete",
                                              "ids": ids, "confirm": "yes"})
    assert done.status_code == 302
    assert records.count(inst, who, "lead")[0] == 3
    assert "2 records deleted." in client.get("/e/lead").get_data(as_text=True)


def test_kanban_columns_and_move_without_javascript(web) -> None:
    inst, who, client = web["inst"], web["admin"], web["client"]
    offer = web["data"]["offers"][0]
    board = client.get("/e/offer?view=kanban").get_data(as_text=True)
    for label in ("Pending", "Accepted", "Refused", "Expired"):
        assert f"<span>{label}</span>" in board
    assert 'class="move"' in board  # the no-JS move form on every card
    token = token_of(client, "/e/offer?view=kanban")
    answer = client.post(f"/e/offer/{offer['id']}/move", data={
        "csrf_token": token, "value": "accepted", "version": str(offer["version"])})
    assert answer.status_code == 302
    assert records.get(inst, who, "offer", offer["id"])["status"] == "accepted"
    # no transition leads back: refused, with the reason shown
    answer = client.post(f"/e/offer/{offer['id']}/move", data={
        "csrf_token": token, "value": "pending"}, follow_redirects=True)
    assert "Not moved" in answer.get_data(as_text=True)
    assert records.get(inst, who, "offer", offer["id"])["status"] == "accepted"


def test_kanban_drag_answers_the_board_fragment(web) -> None:
    inst, who, client = web["inst"], web["admin"], web["client"]
    offer = web["data"]["offers"][2]  # 3% below asking: no approval needed
    token = token_of(client, "/e/offer?view=kanban")
    answer = client.post(f"/e/offer/{offer['id']}/move?view=kanban", data={
        "value": "accepted", "version": str(offer["version"])},
        headers={"HX-Request": "true", "HX-Target": "board", "X-CSRFToken": token})
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="board"') and "Moved" in html
    assert records.get(inst, who, "offer", offer["id"])["status"] == "accepted"


def test_kanban_move_of_a_plain_choice_field(admin, pack, make_instance, tmp_path) -> None:
    path = pack({"entities/deal.yaml": """
        entity: deal
        label: Deal
        title_field: name
        fields:
          name: {type: text, required: true}
          stage: {type: choice, options: [new, won, lost], default: new}
          amount: {type: money, min: 0}
        validations:
          - rule: "stage != 'won' or amount > 0"
            message: A won deal needs an amount.
            field: amount
        views:
          kanban: {group_by: stage, card: [amount]}
        """}, name="deals")
    inst = make_instance(path)
    who = admin(inst)
    deal = records.create(inst, who, "deal", {"name": "Big one"})
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, who)
    token = token_of(client, "/e/deal?view=kanban")
    answer = client.post(f"/e/deal/{deal['id']}/move", data={
        "csrf_token": token, "value": "won", "version": "1"}, follow_redirects=True)
    assert "A won deal needs an amount." in answer.get_data(as_text=True)  # the form's checks
    assert records.get(inst, who, "deal", deal["id"])["stage"] == "new"
    client.post(f"/e/deal/{deal['id']}/move", data={"csrf_token": token, "value": "lost",
                                                   "version": "1"})
    assert records.get(inst, who, "deal", deal["id"])["stage"] == "lost"


def test_calendar_month_grid(web) -> None:
    client, inst = web["client"], web["inst"]
    html = client.get("/e/offer?view=calendar").get_data(as_text=True)
    assert inst.today().strftime("%B %Y") in html
    assert html.count('class="event"') == 4
    assert 'class="day today"' in html or "day today" in html
    later = client.get("/e/offer?view=calendar&month=2030-01").get_data(as_text=True)
    assert "January 2030" in later and 'class="event"' not in later
    viewings = client.get("/e/viewing?view=calendar").get_data(as_text=True)
    assert viewings.count('class="event"') == 2


def test_list_view_report_groups_the_current_filter(web) -> None:
    client = web["client"]
    html = client.get("/e/lead").get_data(as_text=True)  # lead's list: group_by source, count
    assert "By source:" in html
    assert re.search(r"Website <strong>3</strong>", html)
    assert "/e/lead?source=referral" in html
    narrowed = client.get("/e/lead?region=north").get_data(as_text=True)
    assert re.search(r"Website <strong>2</strong>", narrowed)
    assert "Referral <strong>" not in narrowed
    assert 'class="summary"' not in client.get("/e/offer").get_data(as_text=True)
