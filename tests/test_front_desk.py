"""The hotel front desk (issue 13, items 8 and 9), on SQLite and PostgreSQL: the check-in form
picks the room with the same link picker as record forms, by a title that names the hotel
(never a database id); a title typed without JavaScript is looked up the same way. The
reservation shows its guest's preferences (a related list `through: guest`), and demo data
leaves its history's notifications read but for each user's newest few."""

from __future__ import annotations

import html
import re

import pytest
from support import admin_actor, write_pack
from test_packs import PACKS, Api
from web_support import csrf, sign_in
from web_support import make_app as web_app

from runtime.core.instance import Actor
from runtime.http.auth import create_token
from runtime.ops.demo import UNREAD_KEPT, load_demo
from runtime.process import notifications


@pytest.fixture
def desk(make_instance, tmp_path, clock):
    a = Api(make_instance(PACKS["hotel"]), tmp_path, clock)
    a.ids["admin"] = admin_actor(a.inst).user_id
    a.tokens["admin"] = {"Authorization": "Bearer " + create_token(a.inst, a.ids["admin"],
                                                                     "test")}
    a.user("ra", "reservations_agent")
    a.user("fd", "front_desk")
    rooms, sites = {}, {}
    for code, name in (("LDN", "Grand London"), ("BTH", "Bath Spa")):
        site = a.create("admin", "hotel_site", code=code, name=name, city=name.split()[-1])
        rtype = a.create("admin", "room_type", hotel_site=site["id"], code="DBL",
                         name="Double", base_rate="150.00")
        rooms[code] = a.create("admin", "room", hotel_site=site["id"], number="105",
                               room_type=rtype["id"], floor=1)
        sites[code] = (site, rtype)
    guest = a.create("ra", "contact", first_name="Grace", last_name="Hopper",
                     email="grace@example.com", hotel_guest=True)
    site, rtype = sites["LDN"]
    booking = a.create("ra", "reservation", hotel_site=site["id"], guest=guest["id"],
                       room_type=rtype["id"], arrival="2026-03-02", departure="2026-03-04",
                       rate_per_night="150.00", channel="direct_web", rate_plan="bar")
    booking = a.fire("ra", "reservation", booking["id"], "confirm")
    client = web_app(a.inst, tmp_path).test_client()
    sign_in(client, a.inst, Actor(a.ids["fd"], "fd", frozenset({"front_desk"})))
    return {"a": a, "client": client, "rooms": rooms, "booking": booking, "guest": guest}


def test_check_in_form_picks_the_room_by_a_title_naming_the_hotel(desk):
    client, booking = desk["client"], desk["booking"]
    text = client.get(f"/e/reservation/{booking['id']}").get_data(as_text=True)
    form = re.search(r'<form method="post" action="[^"]*/transitions/check_in">.*?</form>',
                     text, re.S)
    assert form, "no check-in form"
    assert 'name="value.room__q"' in form.group(0) and "data-picker" in form.group(0)
    assert "/e/room/_options" in form.group(0)
    assert 'type="text"' in form.group(0) and 'name="value.room" required' not in form.group(0)

    options = html.unescape(client.get("/e/room/_options?q=105&target=wf-check_in-room")
                            .get_data(as_text=True))
    assert "Room 105, Grand London" in options and "Room 105, Bath Spa" in options
    assert "#" + str(desk["rooms"]["LDN"]["id"]) not in options.replace("&#", "")

    title = "Room 105, Grand London"
    answer = client.post(f"/e/reservation/{booking['id']}/transitions/check_in", data={
        "csrf_token": csrf(text), "version": booking["version"],
        "value.room": desk["rooms"]["LDN"]["id"], "value.room__q": title,
        "value.room__shown": title})
    assert answer.status_code == 302
    moved = desk["a"].get("fd", "reservation", booking["id"])
    assert (moved["status"], moved["room"]) == ("checked_in", desk["rooms"]["LDN"]["id"])


def test_check_in_without_javascript_looks_up_the_typed_room(desk):
    client, booking = desk["client"], desk["booking"]
    url = f"/e/reservation/{booking['id']}"
    token = csrf(client.get(url).get_data(as_text=True))
    post = f"{url}/transitions/check_in"
    # "105" is a room in both hotels: refused, with the field's label, nothing moved
    answer = client.post(post, data={"csrf_token": token, "version": booking["version"],
                                     "value.room": "", "value.room__q": "105",
                                     "value.room__shown": ""}, follow_redirects=True)
    assert "Not moved: Room: no single room matches “105”" in html.unescape(
        answer.get_data(as_text=True))
    assert desk["a"].get("fd", "reservation", booking["id"])["status"] == "confirmed"


NOTICE_PACK = {
    "entities/parcel.yaml": """\
        entity: parcel
        title_field: name
        fields:
          name: {type: text, required: true}
        automations:
          tell_the_admin:
            on: create
            do:
              - notify: {to: {user: admin}, message: "{name} arrived"}
        """,
    "data/parcel.yaml": "".join(f"- {{name: Parcel {n}}}\n" for n in range(1, 9)),
}


def test_demo_history_leaves_only_the_newest_notifications_unread(make_instance, tmp_path):
    inst = make_instance(write_pack(tmp_path, NOTICE_PACK, name="parcels"))
    admin = admin_actor(inst)
    with inst.engine.begin() as conn:  # one notification from before the demo stays unread
        notifications.notify(inst, conn, [admin.user_id], "Welcome", "", None)
        conn.execute(inst.schema.system("installed").insert().values(
            pack="parcels", version="1.0.0", demo=False, installed_at=inst.now()))
    assert load_demo(inst, ["parcels"]).created == {"parcel": 8}
    with inst.engine.connect() as conn:
        assert notifications.unread_count(inst, conn, admin.user_id) == UNREAD_KEPT + 1
        unread = [n["subject"] for n in notifications.unread(inst, conn, admin.user_id)]
    assert sorted(unread) == ["Parcel 6 arrived", "Parcel 7 arrived", "Parcel 8 arrived",
                              "Welcome"]


def test_reservation_page_shows_the_guests_preferences(desk):
    """Item 9: the guest's preferences are on the reservation, beside the check-in form."""
    a, booking = desk["a"], desk["booking"]
    a.create("fd", "guest_preference", guest=desk["guest"]["id"], category="allergy",
             importance="must", detail="nut allergy")
    a.create("fd", "guest_preference", guest=desk["guest"]["id"], category="pillow",
             detail="feather-free pillows")
    text = html.unescape(desk["client"].get(f"/e/reservation/{booking['id']}")
                         .get_data(as_text=True))
    section = text[text.index("The guest's preferences"):]
    assert "nut allergy" in section and "feather-free pillows" in section
    assert text.index("transitions/check_in") < text.index("The guest's preferences")
    # "+ Add" makes a preference of this guest
    assert f"/e/guest_preference/new?guest={desk['guest']['id']}" in text
