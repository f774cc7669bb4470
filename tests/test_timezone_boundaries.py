"""Days are the reader's (issue 17, "times in the user's time zone"): a date given to filter a
datetime field is the reader's local day, from one local midnight to the next (stored UTC), on
the list page, its CSV export, the JSON API (the token user's own zone, else UTC), the
calendar (events on their local day, today the reader's) and dashboards grouped by day — with
a user in Asia/Shanghai (UTC+8) and one in America/Los_Angeles (UTC-8 in December, and a
25-hour 1 November 2026 when daylight saving ends). On SQLite and PostgreSQL.

`CRMFORGE_SCREENSHOTS=1` saves the calendar's week as the Shanghai user sees it, desktop and
phone, to docs/screenshots/ (`*-calendar-time-zone-shanghai.png`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from api_support import bearer, user_with_token
from browser_support import VIEWPORTS, require_browser, served, shoot
from browser_support import sign_in as browser_sign_in
from conftest import build_instance
from support import admin_actor, insert_user, write_pack
from web_support import PASSWORD, make_app, sign_in

from builder.model import Field
from runtime.core.errors import BadRequest
from runtime.http.auth import actor_for_username, set_password
from runtime.read import dashboards, listrequest, queries
from runtime.write import records

SHANGHAI, LOS_ANGELES = ZoneInfo("Asia/Shanghai"), ZoneInfo("America/Los_Angeles")
MEETING = """
entity: meeting
label: Meeting
title_field: name
fields:
  name:      {type: text, required: true}
  starts_at: {type: datetime}
views:
  list: {columns: [name, starts_at], sort: [name]}
  calendar: {date: starts_at, title: "{name}"}
"""
BOARD = """
dashboard: meetings
label: Meetings
widgets:
  - {type: table, label: Meetings by day, entity: meeting, group_by: day(starts_at), op: count}
"""
# Each meeting at a wall-clock time of one zone: the edges of 4 December in Shanghai and in
# Los Angeles, the minutes just outside them, and 23:30 UTC (07:30 on the 5th in Shanghai).
MEETINGS = {
    "Shanghai eve": (SHANGHAI, "2026-12-03T23:30"),
    "Shanghai early": (SHANGHAI, "2026-12-04T00:30"),
    "Shanghai late": (SHANGHAI, "2026-12-04T23:30"),
    "Shanghai next": (SHANGHAI, "2026-12-05T00:30"),
    "Pacific eve": (LOS_ANGELES, "2026-12-03T23:30"),
    "Pacific early": (LOS_ANGELES, "2026-12-04T00:30"),
    "Pacific late": (LOS_ANGELES, "2026-12-04T23:30"),
    "Pacific next": (LOS_ANGELES, "2026-12-05T00:30"),
    "UTC late": (UTC, "2026-12-04T23:30"),
    # 1 November 2026 in Los Angeles: 01:00-02:00 happens twice, the day lasts 25 hours
    "Fall eve": (LOS_ANGELES, "2026-10-31T23:30"),
    "Fall early": (LOS_ANGELES, "2026-11-01T00:30"),
    "Fall late": (LOS_ANGELES, "2026-11-01T23:30"),
    "Fall next": (LOS_ANGELES, "2026-11-02T00:30"),
}
FALL = {  # meetings per day around 1 November, by reader
    "li": {"2026-11-01": 2, "2026-11-02": 2},
    "bob": {"2026-10-31": 1, "2026-11-01": 2, "2026-11-02": 1},
    "utc": {"2026-11-01": 2, "2026-11-02": 2},
}
DECEMBER_4 = {  # who sees which meetings on "4 December"
    "li": {"Shanghai early", "Shanghai late", "Pacific eve", "Pacific early"},
    "bob": {"Pacific early", "Pacific late", "Shanghai late", "Shanghai next", "UTC late"},
    "utc": {"Shanghai late", "Shanghai next", "Pacific eve", "Pacific early", "UTC late"},
}


def utc_text(name: str) -> str:
    zone, local = MEETINGS[name]
    moment = datetime.fromisoformat(local).replace(tzinfo=zone).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def zones_pack(directory: Path) -> Path:
    return write_pack(directory, {"entities/meeting.yaml": MEETING,
                                  "dashboards/meetings.yaml": BOARD}, name="zoneday")


def add_meetings(inst) -> None:
    admin = admin_actor(inst)
    for name in MEETINGS:
        records.create(inst, admin, "meeting", {"name": name, "starts_at": utc_text(name)})


@pytest.fixture
def env(make_instance, tmp_path) -> dict[str, Any]:
    inst = make_instance(zones_pack(tmp_path / "packs"))
    add_meetings(inst)
    li, li_token = user_with_token(inst, "li", time_zone="Asia/Shanghai", is_admin=True)
    bob, bob_token = user_with_token(inst, "bob", time_zone="America/Los_Angeles",
                                     is_admin=True)
    _, utc_token = user_with_token(inst, "utc", is_admin=True)  # no zone of their own
    clients = {}
    for who in (li, bob):
        client = make_app(inst, tmp_path).test_client()
        sign_in(client, inst, who)
        clients[who.username] = client
    api = make_app(inst, tmp_path).test_client()
    return {"inst": inst, "web": clients, "api": api,
            "tokens": {"li": li_token, "bob": bob_token, "utc": utc_token}}


def listed(html: str) -> set[str]:
    """The meetings a page shows."""
    return {name for name in MEETINGS if name in html}


def api_names(env, who: str, query: str) -> set[str]:
    answer = env["api"].get(f"/api/v1/meeting?{query}&limit=100",
                            headers=bearer(env["tokens"][who]))
    assert answer.status_code == 200, answer.get_json()
    return {row["name"] for row in answer.get_json()["data"]}


# -- the day itself ---------------------------------------------------------------------------

def test_a_day_lasts_from_one_local_midnight_to_the_next() -> None:
    shanghai = listrequest.day_of(date(2026, 12, 4), SHANGHAI)
    assert shanghai == (datetime(2026, 12, 3, 16), datetime(2026, 12, 4, 16))
    fall_back = listrequest.day_of(date(2026, 11, 1), LOS_ANGELES)
    assert fall_back == (datetime(2026, 11, 1, 7), datetime(2026, 11, 2, 8))
    assert fall_back.end - fall_back.start == timedelta(hours=25)
    spring = listrequest.day_of(date(2026, 3, 8), LOS_ANGELES)
    assert spring.end - spring.start == timedelta(hours=23)
    assert listrequest.day_of(date(2026, 12, 4), UTC).end == datetime(2026, 12, 5)


def test_days_at_the_ends_of_the_calendar_are_refused_not_crashed() -> None:
    field = Field("starts_at", "datetime", "Starts at", "t")  # type: ignore[arg-type]
    for day, zone in (("0001-01-01", SHANGHAI), ("9999-12-31", LOS_ANGELES)):
        with pytest.raises(BadRequest):
            listrequest.filter_values("starts_at", field, "eq", day, None, days=zone)


# -- the list page, its export, the API -------------------------------------------------------

@pytest.mark.parametrize("who", ["li", "bob"])
def test_the_list_filters_by_the_readers_local_day(env, who) -> None:
    client = env["web"][who]
    page = client.get("/e/meeting?starts_at=2026-12-04").get_data(as_text=True)
    assert listed(page) == DECEMBER_4[who]
    ranged = client.get("/e/meeting?starts_at__gte=2026-12-04&starts_at__lte=2026-12-04")
    assert listed(ranged.get_data(as_text=True)) == DECEMBER_4[who]
    exported = client.get("/e/meeting/export.csv?starts_at=2026-12-04").get_data(as_text=True)
    assert listed(exported) == DECEMBER_4[who]


def test_the_25_hour_day_when_daylight_saving_ends(env) -> None:
    page = env["web"]["bob"].get("/e/meeting?starts_at=2026-11-01").get_data(as_text=True)
    assert listed(page) == {"Fall early", "Fall late"}
    assert api_names(env, "bob", "starts_at=2026-11-01") == {"Fall early", "Fall late"}
    before = api_names(env, "bob", "starts_at__lt=2026-11-01&starts_at__gte=2026-10-31")
    assert before == {"Fall eve"}


@pytest.mark.parametrize("who", ["li", "bob", "utc"])
def test_the_api_reads_a_date_in_the_token_users_zone_else_utc(env, who) -> None:
    assert api_names(env, who, "starts_at=2026-12-04") == DECEMBER_4[who]
    after = api_names(env, who, "starts_at__gt=2026-12-04&starts_at__lt=2026-12-06")
    assert "Pacific next" in after and not after & DECEMBER_4[who]


def test_a_time_without_an_offset_is_utc_in_the_api_and_local_on_a_page(env) -> None:
    # the API is zone-neutral: 15:00 is 15:00 UTC whoever asks
    later = api_names(env, "li", "starts_at__gte=2026-12-04T15:00&starts_at__lt=2026-12-04T16:00")
    assert later == {"Shanghai late"}  # 23:30 in Shanghai is 15:30 UTC
    # an offset is kept everywhere
    assert api_names(env, "bob", "starts_at__gte=2026-12-04T23:00-08:00"
                     "&starts_at__lt=2026-12-05T00:00-08:00") == {"Pacific late"}
    # what the page's datetime-local boxes send is the reader's wall-clock time
    inst = env["inst"]
    li = actor_for_username(inst, "li")
    entity = inst.model.entity("meeting")
    wanted = listrequest.parse_list(entity, {"starts_at__gte": "2026-12-04T23:00",
                                             "starts_at__lte": "2026-12-05T00:00"},
                                    zone=SHANGHAI)
    page = queries.query(inst, li, "meeting", filters=wanted.filters, limit=100)
    assert {row["name"] for row in page.rows} == {"Shanghai late"}


def test_the_instance_zone_reads_dates_for_a_page_not_for_the_api(env) -> None:
    """A user with no zone of their own: a page passes the instance's zone on its filters,
    the API answers in UTC."""
    inst = env["inst"]
    nobody = actor_for_username(inst, "utc")
    entity = inst.model.entity("meeting")
    wanted = listrequest.parse_list(entity, {"starts_at": "2026-12-04"}, zone=LOS_ANGELES)
    page = queries.query(inst, nobody, "meeting", filters=wanted.filters, limit=100)
    assert {row["name"] for row in page.rows} == DECEMBER_4["bob"]
    plain = queries.query(inst, nobody, "meeting", filters={"starts_at": "2026-12-04"},
                          limit=100)
    assert {row["name"] for row in plain.rows} == DECEMBER_4["utc"]


# -- the calendar -----------------------------------------------------------------------------

def week_days(html: str) -> dict[int, set[str]]:
    """{day of the month: the meetings on it} of a calendar week."""
    days = {}
    for section in html.split('<section class="day')[1:]:
        number = int(re.search(r'<span class="num">(\d+)</span>', section).group(1))
        days[number] = listed(section.split("</section>")[0])
    return days


def test_the_calendar_puts_an_event_on_the_readers_day(env, clock) -> None:
    clock.current = datetime(2026, 12, 4, 20, 0)  # already the 5th in Shanghai
    for who in ("li", "bob"):  # the sessions of March have ended
        sign_in(env["web"][who], env["inst"], actor_for_username(env["inst"], who))
    week = "/e/meeting?view=calendar&mode=week&day=2026-12-04"
    shanghai = env["web"]["li"].get(week).get_data(as_text=True)
    days = week_days(shanghai)
    assert days[4] == DECEMBER_4["li"]
    assert "UTC late" in days[5] and "UTC late" not in days[4]
    assert re.search(r'<span class="time">07:30</span> UTC late', shanghai)
    today = re.search(r'<section class="day today".*?<span class="num">(\d+)</span>', shanghai,
                      re.S)
    assert today and today.group(1) == "5"
    pacific = env["web"]["bob"].get(week).get_data(as_text=True)
    assert week_days(pacific)[4] == DECEMBER_4["bob"]
    assert re.search(r'<span class="time">15:30</span> UTC late', pacific)
    today = re.search(r'<section class="day today".*?<span class="num">(\d+)</span>', pacific,
                      re.S)
    assert today and today.group(1) == "4"


def test_the_calendar_of_a_user_without_a_zone_uses_the_instances(env, tmp_path,
                                                                   monkeypatch) -> None:
    monkeypatch.setenv("CRMFORGE_TIME_ZONE", "Asia/Shanghai")
    client = make_app(env["inst"], tmp_path).test_client()
    sign_in(client, env["inst"], actor_for_username(env["inst"], "utc"))
    page = client.get("/e/meeting?view=calendar&mode=week&day=2026-12-04").get_data(as_text=True)
    assert week_days(page)[4] == DECEMBER_4["li"]
    assert "UTC late" in week_days(page)[5]


def test_the_calendar_month_starts_at_the_readers_midnight(env) -> None:
    # the month grid of December 2026 runs from Monday 30 November to Sunday 3 January:
    # "Shanghai eve" (3 December local) is in it, and the 25-hour day of November is not
    page = env["web"]["li"].get("/e/meeting?view=calendar&month=2026-12").get_data(as_text=True)
    assert listed(page) == set(MEETINGS) - {"Fall eve", "Fall early", "Fall late", "Fall next"}
    fall = env["web"]["bob"].get("/e/meeting?view=calendar&mode=week&day=2026-11-01")
    assert week_days(fall.get_data(as_text=True))[1] == {"Fall early", "Fall late"}


# -- dashboards -------------------------------------------------------------------------------

@pytest.mark.parametrize(("who", "zone"), [("li", None), ("bob", None), ("utc", None),
                                           ("utc", LOS_ANGELES)])
def test_a_dashboard_groups_datetimes_by_the_readers_day(env, who, zone) -> None:
    inst = env["inst"]
    reader = actor_for_username(inst, who)
    widget = inst.model.dashboards["meetings"].widgets[0]
    points = dashboards.compute(inst, reader, widget, zone=zone).points
    by_day = {str(p.key)[:10]: p.value for p in points}
    reads_as = "bob" if zone is LOS_ANGELES else who
    assert by_day["2026-12-04"] == len(DECEMBER_4[reads_as])
    assert {day: n for day, n in by_day.items() if day < "2026-11-30"} == FALL[reads_as]
    assert sum(by_day.values()) == len(MEETINGS)


def test_offset_changes_are_found_to_the_second() -> None:
    changes = dashboards.offset_changes(LOS_ANGELES, datetime(2026, 1, 1), datetime(2027, 1, 1))
    assert changes == [(datetime(2026, 1, 1), -8 * 3600), (datetime(2026, 3, 8, 10), -7 * 3600),
                       (datetime(2026, 11, 1, 9), -8 * 3600)]
    assert dashboards.offset_changes(SHANGHAI, datetime(2026, 1, 1), datetime(2027, 1, 1)) == [
        (datetime(2026, 1, 1), 8 * 3600)]


# -- in a browser: the screenshots ------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict[str, Any]]:
    require_browser()
    root = tmp_path_factory.mktemp("zoneday")
    inst = build_instance(zones_pack(root / "packs"), f"sqlite:///{root / 'crm.db'}")
    add_meetings(inst)
    user = insert_user(inst, "li", is_admin=True, time_zone="Asia/Shanghai")
    set_password(inst, user.user_id, PASSWORD)
    with served(inst, root) as running:
        yield running


@pytest.mark.slow
def test_browser_calendar_week_in_shanghai(browser, server) -> None:
    for device, viewport in VIEWPORTS:
        page = browser_sign_in(browser, server, "li", viewport)
        page.goto(server["url"] + "/e/meeting?view=calendar&mode=week&day=2026-12-04")
        friday = page.locator("section.day").nth(4)
        saturday = page.locator("section.day").nth(5)
        assert "Shanghai late" in friday.inner_text()
        assert "07:30 UTC late" in " ".join(saturday.inner_text().split())
        shoot(page, f"{device}-calendar-time-zone-shanghai")
        page.close()


def test_a_days_filter_chip_shows_the_readers_date_without_a_time(env) -> None:
    page = env["web"]["li"].get("/e/meeting?starts_at=2026-12-04").get_data(as_text=True)
    chip = re.search(r'<span class="chip filter-chip">([^<]*)<a', page)
    assert chip is not None and chip.group(1) == "Starts at: Dec 4, 2026", page[:300]
