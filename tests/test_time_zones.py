"""Each user's time zone (issue 15 "People", issue 17 item 4): datetimes stored in UTC are
shown in the reader's zone (theirs, else the instance's `CRMFORGE_TIME_ZONE`), a datetime
typed in a form is read in it and stored in UTC, and a name that is no zone is refused with a
clear message — on the profile page (`POST /me/time-zone`) and the admin user page. With the
Flask test client on SQLite and PostgreSQL, and a Playwright journey in Chromium.

`CRMFORGE_SCREENSHOTS=1` saves the record page as the Shanghai and the Madrid user see it,
desktop and phone, to docs/screenshots/ (`*-time-zone-shanghai.png`, `*-time-zone-madrid.png`),
and the page where each picks their zone (`*-time-zone-profile-*.png`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from browser_support import VIEWPORTS, require_browser, served, shoot
from browser_support import sign_in as browser_sign_in
from conftest import build_instance
from support import admin_actor, insert_user, write_pack
from web_support import PASSWORD, make_app, sign_in, token_of

from runtime.core.errors import ValidationFailed
from runtime.http.auth import actor_for_username, set_password
from runtime.read.titles import zone_of
from runtime.write import accounts, records

MEETING = """
entity: meeting
label: Meeting
title_field: name
fields:
  name:      {type: text, required: true}
  starts_at: {type: datetime}
views:
  list: {columns: [name, starts_at], sort: [name]}
"""
UTC_START = "2026-12-04T10:00:00"  # 18:00 in Shanghai, 11:00 in Madrid


def meeting_pack(directory: Path) -> Path:
    return write_pack(directory, {"entities/meeting.yaml": MEETING}, name="zones")


@pytest.fixture
def env(make_instance, tmp_path) -> dict[str, Any]:
    inst = make_instance(meeting_pack(tmp_path / "packs"))
    admin = admin_actor(inst)
    meeting = records.create(inst, admin, "meeting", {"name": "Kick-off",
                                                      "starts_at": UTC_START + "Z"})
    li = insert_user(inst, "li", is_admin=True, time_zone="Asia/Shanghai")
    ana = insert_user(inst, "ana", is_admin=True, time_zone="Europe/Madrid")
    clients = {}
    for who in (admin, li, ana):
        client = make_app(inst, tmp_path).test_client()
        sign_in(client, inst, who)
        clients[who.username] = client
    return {"inst": inst, "meeting": meeting["id"], **clients}


def test_a_datetime_is_shown_in_each_readers_zone(env) -> None:
    path = f"/e/meeting/{env['meeting']}"
    shanghai = env["li"].get(path).get_data(as_text=True)
    madrid = env["ana"].get(path).get_data(as_text=True)
    assert "18:00" in shanghai and "11:00" not in shanghai
    assert "11:00" in madrid and "18:00" not in madrid
    listed = env["li"].get("/e/meeting").get_data(as_text=True)
    assert "18:00" in listed


def test_the_instance_default_and_the_environment(env, monkeypatch) -> None:
    inst = env["inst"]
    admin = actor_for_username(inst, "admin")
    assert str(zone_of(inst, admin)) == "UTC"
    monkeypatch.setenv("CRMFORGE_TIME_ZONE", "America/Mexico_City")
    page = env["admin"].get(f"/e/meeting/{env['meeting']}").get_data(as_text=True)
    assert "04:00" in page  # 10:00 UTC in Mexico City
    assert str(zone_of(inst, actor_for_username(inst, "li"))) == "Asia/Shanghai"


def test_a_typed_datetime_is_read_in_the_writers_zone(env) -> None:
    inst, client = env["inst"], env["li"]
    path = f"/e/meeting/{env['meeting']}/edit"
    form = client.get(path).get_data(as_text=True)
    assert 'value="2026-12-04T18:00"' in form  # the stored UTC time, as Shanghai reads it
    answer = client.post(path, data={"csrf_token": token_of(client, path), "version": "1",
                                     "name": "Kick-off", "starts_at": "2026-12-05T09:30"})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    stored = records.get(inst, admin_actor(inst), "meeting", env["meeting"])
    assert stored["starts_at"].startswith("2026-12-05T01:30")  # UTC
    madrid = env["ana"].get(f"/e/meeting/{env['meeting']}").get_data(as_text=True)
    assert "02:30" in madrid
    # a form shown again after an error keeps what was typed, in the writer's zone
    again = client.post(path, data={"csrf_token": token_of(client, path), "version": "2",
                                    "name": "", "starts_at": "2026-12-06T07:15"})
    assert again.status_code == 422
    assert 'value="2026-12-06T07:15"' in again.get_data(as_text=True)


def test_the_profile_sets_and_clears_the_users_zone(env) -> None:
    inst, client = env["inst"], env["admin"]
    page = client.get("/logout").get_data(as_text=True)
    assert 'name="time_zone"' in page and '<option value="Asia/Shanghai">' in page
    answer = client.post("/me/time-zone", data={"csrf_token": token_of(client, "/logout"),
                                                "time_zone": "Asia/Shanghai"})
    assert answer.status_code == 302
    assert actor_for_username(inst, "admin").time_zone == "Asia/Shanghai"
    assert "Time zone saved: Asia/Shanghai." in client.get("/logout").get_data(as_text=True)
    assert "18:00" in client.get(f"/e/meeting/{env['meeting']}").get_data(as_text=True)
    client.post("/me/time-zone", data={"csrf_token": token_of(client, "/logout"),
                                       "time_zone": ""})
    assert actor_for_username(inst, "admin").time_zone is None


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "asia/shanghai", "../etc/passwd",
                                  "x" * 300])
def test_an_unknown_zone_is_refused(env, name) -> None:
    inst, client = env["inst"], env["li"]
    answer = client.post("/me/time-zone", data={"csrf_token": token_of(client, "/logout"),
                                                "time_zone": name}, follow_redirects=True)
    assert answer.status_code == 200
    assert "is not a time zone" in answer.get_data(as_text=True)
    assert actor_for_username(inst, "li").time_zone == "Asia/Shanghai"  # unchanged
    with pytest.raises(ValidationFailed) as refused:
        accounts.checked_zone(name)
    assert list(refused.value.errors) == ["time_zone"]


def test_the_admin_user_page_sets_the_zone(env) -> None:
    inst, client = env["inst"], env["admin"]
    li = actor_for_username(inst, "li")
    path = f"/admin/users/{li.user_id}"
    page = client.get(path).get_data(as_text=True)
    assert 'id="f-time_zone"' in page and 'value="Asia/Shanghai"' in page
    data = {"csrf_token": token_of(client, path), "version": "1", "username": "li",
            "full_name": "Li", "roles": ["admin"]}
    bad = client.post(path, data={**data, "time_zone": "Asia/Beijing"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "is not a time zone" in html and 'value="Asia/Beijing"' in html
    assert actor_for_username(inst, "li").time_zone == "Asia/Shanghai"
    good = client.post(path, data={**data, "time_zone": "Europe/Madrid"})
    assert good.status_code == 302, good.get_data(as_text=True)[:500]
    assert actor_for_username(inst, "li").time_zone == "Europe/Madrid"
    new = client.post("/admin/users/new", data={
        "csrf_token": token_of(client, "/admin/users/new"), "username": "wei",
        "full_name": "Wei", "time_zone": "Asia/Shanghai"})
    assert new.status_code == 302, new.get_data(as_text=True)[:500]
    assert actor_for_username(inst, "wei").time_zone == "Asia/Shanghai"


# -- in a browser ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict[str, Any]]:
    require_browser()
    root = tmp_path_factory.mktemp("zones")
    inst = build_instance(meeting_pack(root / "packs"), f"sqlite:///{root / 'crm.db'}")
    admin = admin_actor(inst)
    meeting = records.create(inst, admin, "meeting", {"name": "Kick-off",
                                                      "starts_at": UTC_START + "Z"})
    for username, zone, language in (("li", "Asia/Shanghai", "zh"),
                                     ("ana", "Europe/Madrid", "es")):
        user = insert_user(inst, username, is_admin=True, time_zone=zone, language=language)
        set_password(inst, user.user_id, PASSWORD)
    with served(inst, root, meeting=meeting["id"]) as running:
        yield running


@pytest.mark.slow
def test_browser_record_page_in_two_zones(browser, server) -> None:
    path = f"{server['url']}/e/meeting/{server['meeting']}"
    for username, shown, name in (("li", "18:00", "shanghai"), ("ana", "11:00", "madrid")):
        for device, viewport in VIEWPORTS:
            page = browser_sign_in(browser, server, username, viewport)
            page.goto(path)
            assert shown in page.inner_text("main")
            shoot(page, f"{device}-time-zone-{name}")
            page.goto(server["url"] + "/logout")  # where the user picks their zone
            assert page.input_value("#time_zone") == ("Asia/Shanghai" if name == "shanghai"
                                                      else "Europe/Madrid")
            shoot(page, f"{device}-time-zone-profile-{name}")
            page.close()
    # the Shanghai user types a time: it is stored in UTC, and Madrid reads it in theirs
    page = browser_sign_in(browser, server, "li")
    page.goto(path + "/edit")
    assert page.input_value("#f-starts_at") == "2026-12-04T18:00"
    page.fill("#f-starts_at", "2026-12-05T09:30")
    page.click("#form button[type=submit]")
    page.wait_for_url(path)
    page.close()
    stored = records.get(server["inst"], admin_actor(server["inst"]), "meeting",
                         server["meeting"])
    assert datetime.fromisoformat(stored["starts_at"].removesuffix("Z")).hour == 1
