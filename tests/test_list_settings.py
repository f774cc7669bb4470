"""List settings through the pages (Flask test client, real tables): the column chooser and its
saved views, the calendar's week and agenda, and the active filters of a list opened filtered
(a dashboard's "View all"). The same journeys in a browser: test_list_settings_browser.py."""

from __future__ import annotations

import html as markup
import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from web_support import make_app, seed, sign_in, token_of

from runtime.write import records, views

HEADER = re.compile(r'<th class="[^"]*"[^>]*>\s*(?:<a [^>]*>)?([^<]+?)\s*(?:<span|</a>|</th>)')
CHIP = re.compile(r'<span class="chip filter-chip">([^<]*)<a class="chip-remove" href="([^"]*)"')


@pytest.fixture
def web(spec_instance, admin, tmp_path) -> dict[str, Any]:
    inst = spec_instance
    who = admin(inst)
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, who)
    return {"inst": inst, "client": client, "admin": who, "data": seed(inst, who),
            "app": make_app(inst, tmp_path)}


def headers(page: str) -> list[str]:
    """The list table's column headings, in order."""
    table = page[page.index("<thead>"):page.index("</thead>")]
    return [markup.unescape(h) for h in HEADER.findall(table)]


def chips(page: str) -> dict[str, str]:
    """{chip text: the address that removes it}."""
    return {markup.unescape(text): markup.unescape(url) for text, url in CHIP.findall(page)}


def text(answer: Any) -> str:
    assert answer.status_code == 200, answer.get_data(as_text=True)[:400]
    return answer.get_data(as_text=True)


# -- the column chooser -----------------------------------------------------------------------

def test_the_chooser_offers_every_readable_field_and_shows_the_view_columns(web) -> None:
    page = text(web["client"].get("/e/offer"))
    assert headers(page) == ["Reference", "Property", "Buyer", "Amount", "Status"]
    offered = re.findall(r'name="col" value="(\w+)" id="col-\w+"( checked)?', page)
    assert offered[:5] == [(n, " checked") for n in
                           ("reference", "property", "buyer", "amount", "status")]
    assert {"financing", "valid_until", "commission_pct", "owner", "created_at"} <= \
        {name for name, checked in offered if not checked}


def test_choosing_and_ordering_columns_without_javascript(web) -> None:
    client = web["client"]
    answer = client.get("/e/offer/columns?financing=cash&col=amount&col=reference&col=owner")
    assert answer.status_code == 302
    target = answer.headers["Location"]
    assert parse_qs(urlsplit(target).query) == {"financing": ["cash"],
                                                "columns": ["amount,reference,owner"]}
    page = text(client.get(target))
    assert headers(page) == ["Amount", "Reference", "Owner"]
    assert page.count('class="title"') == 2  # the filter still applies
    # an arrow moves one column and keeps the chooser open where it was
    moved = client.get("/e/offer/columns?col=amount&col=reference&col=owner&move=up:owner")
    assert moved.headers["Location"].endswith("#columns")
    query = parse_qs(urlsplit(moved.headers["Location"]).query)
    assert query == {"columns": ["amount,owner,reference"], "chooser": ["open"]}
    opened = text(client.get(moved.headers["Location"]))
    assert '<details class="column-chooser" id="columns" open>' in opened
    assert "chooser=open" not in opened.split('id="columns"')[0]  # links do not carry it
    # nothing ticked: the view's columns, and a word why; reset: the same
    empty = client.get("/e/offer/columns?col=", follow_redirects=True)
    assert headers(text(empty)) == ["Reference", "Property", "Buyer", "Amount", "Status"]
    assert "Tick at least one column" in empty.get_data(as_text=True)
    reset = client.get("/e/offer/columns?columns=amount&col=amount&reset=1")
    assert "columns" not in reset.headers["Location"]


def test_the_filter_form_and_sort_links_keep_the_columns(web) -> None:
    page = text(web["client"].get("/e/offer?columns=buyer,amount"))
    assert '<input type="hidden" name="columns" value="buyer,amount">' in page
    assert "sort=-amount&amp;" in page or "columns=buyer%2Camount" in page
    assert re.search(r'href="[^"]*columns=buyer%2Camount[^"]*sort=', page)


def test_columns_are_saved_with_the_view_and_restored(web) -> None:
    client, inst, who = web["client"], web["inst"], web["admin"]
    client.post("/e/offer/views", data={
        "csrf_token": token_of(client, "/e/offer"), "name": "Money first",
        "query": "columns=amount,buyer&financing=cash&chooser=open&cursor=abc"})
    saved = views.saved_views(inst, who, "offer")
    assert [v["name"] for v in saved] == ["Money first"]
    settings = views.saved_settings(inst, who, "offer", saved[0]["id"])
    assert settings == {"columns": "amount,buyer", "financing": "cash"}
    opened = client.get(f"/e/offer?saved={saved[0]['id']}", follow_redirects=True)
    assert headers(text(opened)) == ["Amount", "Buyer"]


def test_a_column_gone_from_the_definition_is_skipped_silently(web) -> None:
    client, inst, who = web["client"], web["inst"], web["admin"]
    views.save_view(inst, who, "offer", "Old", {"columns": "amount,vanished,buyer,notes2"})
    view_id = views.saved_views(inst, who, "offer")[0]["id"]
    page = text(client.get(f"/e/offer?saved={view_id}", follow_redirects=True))
    assert headers(page) == ["Amount", "Buyer"]
    assert 'value="vanished"' not in page  # nor offered
    only_unknown = text(client.get("/e/offer?columns=vanished,,%20"))
    assert headers(only_unknown) == ["Reference", "Property", "Buyer", "Amount", "Status"]


def test_a_hidden_field_is_never_offered_nor_shown(web, make_user) -> None:
    inst = web["inst"]
    agent = make_user(inst, "agnes", roles=["agent"])
    records.create(inst, web["admin"], "offer", {
        "property": web["data"]["flat"]["id"], "buyer": web["data"]["anna"]["id"],
        "amount": "400000", "commission_pct": "3.25", "owner": agent.user_id})
    client = web["app"].test_client()
    sign_in(client, inst, agent)
    page = text(client.get("/e/offer?columns=commission_pct,amount"))
    assert headers(page) == ["Amount"]
    assert "commission_pct" not in page and "3.25" not in page
    assert page.count('class="title"') == 1
    chosen = client.get("/e/offer/columns?col=commission_pct&col=amount")
    assert parse_qs(urlsplit(chosen.headers["Location"]).query)["columns"] == ["amount"]


# -- the calendar: month, week, agenda ---------------------------------------------------------

def test_week_shows_the_seven_days_of_a_given_day(web) -> None:
    client, inst = web["client"], web["inst"]
    today = inst.today()
    monday = today - timedelta(days=today.weekday())
    page = text(client.get(f"/e/offer?view=calendar&mode=week&day={today.isoformat()}"))
    assert page.count('class="day-head"') == 7
    in_week = [d for d in (2, 5, 9, 14) if today + timedelta(days=d) <= monday + timedelta(6)]
    assert page.count('class="event"') == len(in_week)
    assert 'aria-current="page">Week</a>' in page
    assert f"day={(monday - timedelta(days=7)).isoformat()}" in page  # earlier
    assert f"day={(monday + timedelta(days=7)).isoformat()}" in page  # later
    viewings = text(client.get("/e/viewing?view=calendar&mode=week"
                               f"&day={(today + timedelta(days=1)).isoformat()}"))
    assert "10:00" in viewings  # a datetime shows its time


def test_agenda_lists_the_coming_days_with_records_grouped_by_day(web) -> None:
    client, inst = web["client"], web["inst"]
    today = inst.today()
    page = text(client.get("/e/offer?view=calendar&mode=agenda"))
    days = re.findall(r'<h3 id="day-([\d-]+)"', page)
    assert days == [(today + timedelta(days=d)).isoformat() for d in (2, 5, 9, 14)]
    assert page.count('class="event"') == 4
    narrowed = text(client.get("/e/offer?view=calendar&mode=agenda&financing=cash"))
    assert len(re.findall(r'<h3 id="day-', narrowed)) == 2
    later = text(client.get("/e/offer?view=calendar&mode=agenda&day=2031-01-01"))
    assert "Nothing from" in later and "Look further ahead" in later


def test_modes_switch_around_the_same_day_and_bad_periods_warn(web) -> None:
    client = web["client"]
    page = text(client.get("/e/offer?view=calendar&month=2030-05"))
    assert "May 2030" in page and "mode=week" in page and "day=2030-05-01" in page
    for bad, warning in [("mode=year", "There is no calendar &#39;year&#39;"),
                         ("mode=week&day=2030-02-30", "There is no day &#39;2030-02-30&#39;"),
                         ("mode=agenda&day=99999-01-01", "There is no day"),
                         ("mode=week&day=9999-12-31", "There is no day")]:
        shown = text(client.get(f"/e/offer?view=calendar&{bad}"))
        assert warning in shown, bad
    last = text(client.get("/e/offer?view=calendar&mode=week&day=9998-12-31"))
    assert "Later →" not in last and "← Earlier" in last
    first = text(client.get("/e/offer?view=calendar&mode=agenda&day=0002-01-01"))
    assert "← Earlier" not in first


# -- the active filters ------------------------------------------------------------------------

def test_view_all_filters_show_as_words_with_a_way_to_remove_each(web) -> None:
    client, offers = web["client"], web["data"]["offers"]
    ids = f"{offers[0]['id']},{offers[2]['id']}"
    page = text(client.get(f"/e/offer?status__in=pending,accepted&owner__isnull=false"
                           f"&id__in={ids}&financing__ne=cash&amount__gte=500000"
                           "&q=OFF"))
    found = chips(page)
    assert set(found) == {"Status: Pending or Accepted", "Owner: set", "2 chosen offers",
                          "Financing: not Cash", "Amount: from €500,000.00",
                          "Search: “OFF”"}, found
    mine = chips(text(client.get("/e/offer?owner=me&status=pending")))
    assert set(mine) == {"Owner: me", "Status: Pending"}
    removed = parse_qs(urlsplit(found["Status: Pending or Accepted"]).query)
    assert "status__in" not in removed and removed["owner__isnull"] == ["false"]
    assert "Clear all" in page


def test_a_link_filter_reads_as_its_title_and_removal_drops_the_picker(web) -> None:
    client, ben = web["client"], web["data"]["ben"]
    page = text(client.get(f"/e/offer?buyer={ben['id']}&buyer__shown=Ben+Okafor"))
    found = chips(page)
    assert list(found) == ["Buyer: Ben Okafor"]
    assert found["Buyer: Ben Okafor"] == "/e/offer"
    nobody = chips(text(client.get("/e/lead?owner__isnull=true&view=kanban")))
    assert list(nobody) == ["Owner: not set"]
    assert parse_qs(urlsplit(nobody["Owner: not set"]).query) == {"view": ["kanban"]}


def test_the_calendar_and_board_show_their_filters_too(web) -> None:
    client = web["client"]
    cal = text(client.get("/e/offer?view=calendar&mode=agenda&financing__in=cash,mixed"))
    assert list(chips(cal)) == ["Financing: Cash or Mixed"]
    assert parse_qs(urlsplit(chips(cal)["Financing: Cash or Mixed"]).query) == {
        "view": ["calendar"], "mode": ["agenda"]}
    board = text(client.get("/e/offer?view=kanban&amount__lte=600000"))
    assert any(c.startswith("Amount: up to") for c in chips(board))
    unfiltered = text(client.get("/e/offer"))
    assert 'class="active-filters"' not in unfiltered


def test_a_dashboard_view_all_opens_a_list_that_says_it_is_filtered(web) -> None:
    client = web["client"]
    home = text(client.get("/"))
    links = [markup.unescape(u) for u in re.findall(r'href="(/e/[^"?]+\?[^"]+)"[^>]*>View all',
                                                     home)]
    assert links, "the home page has no filtered View all link"
    for link in links:
        page = text(client.get(link))
        assert 'class="active-filters"' in page, link
        assert not re.search(r"__(in|isnull|gte|lte|ne)\b", "".join(chips(page))), link


def test_dates_in_the_agenda_headings_are_words(web) -> None:
    day = date(2030, 3, 4)
    page = text(web["client"].get(f"/e/offer?view=calendar&mode=agenda&day={day}"))
    assert "4 – 31 March 2030" in page


def test_the_filter_chips_speak_the_readers_language(web) -> None:
    client = web["client"]
    zh = chips(text(client.get("/e/offer?financing__in=cash,mixed&amount__lte=5000&q=abc",
                               headers={"Accept-Language": "zh"})))
    assert "Financing：Cash 或 Mixed" in zh, zh
    assert any(c.startswith("Amount：至 ") for c in zh), zh
    assert "搜索：“abc”" in zh, zh
    es = chips(text(client.get("/e/lead?owner__isnull=true&id__in=1,2",
                               headers={"Accept-Language": "es"})))
    assert "Responsable: sin valor" in es, es
    assert any(c.startswith("Selección: 2 ") for c in es), es
    en = chips(text(client.get("/e/lead?owner__isnull=true")))
    assert "Owner: not set" in en, en
