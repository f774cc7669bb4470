"""Issue 13, items 7-9 in a real browser (Playwright, Debian's Chromium; skipped visibly
without it): the front desk checks a guest in by typing the room number and picking "Room
105, Grand London" (not a database id) while the guest's preferences show on the
reservation; a rep sees the order made from an accepted quote with the quote's lines.

`CRMFORGE_SCREENSHOTS=1` saves the pages, desktop (1366 px) and phone (390 px), to
docs/screenshots/ (`*-check-in.png`, `*-order-lines.png`, `*-quote-line.png`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from browser_support import DESKTOP, PHONE, require_browser, served, shoot, sign_in
from conftest import build_instance
from support import admin_actor, insert_user
from test_packs import PACKS
from web_support import PASSWORD

from runtime.http.auth import set_password
from runtime.process import workflow
from runtime.write import records

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # pragma: no cover - the test extra installs it
    pass


def _hotel(inst, admin) -> dict[str, Any]:
    sites = {}
    for code, name in (("LDN", "Grand London"), ("BTH", "Bath Spa")):
        site = records.create(inst, admin, "hotel_site", {"code": code, "name": name,
                                                          "city": name.split()[-1]})
        rtype = records.create(inst, admin, "room_type", {
            "hotel_site": site["id"], "code": "DBL", "name": "Double", "base_rate": "150.00"})
        room = records.create(inst, admin, "room", {"hotel_site": site["id"], "number": "105",
                                                    "room_type": rtype["id"], "floor": 1})
        sites[code] = (site, rtype, room)
    guest = records.create(inst, admin, "contact", {
        "first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com",
        "hotel_guest": True})
    for category, detail, importance in (("allergy", "Nut allergy", "must"),
                                         ("pillow", "Feather-free pillows", "nice"),
                                         ("floor", "A high floor, away from the lift", "nice")):
        records.create(inst, admin, "guest_preference", {
            "guest": guest["id"], "category": category, "detail": detail,
            "importance": importance})
    site, rtype, _ = sites["LDN"]
    booking = records.create(inst, admin, "reservation", {
        "hotel_site": site["id"], "guest": guest["id"], "room_type": rtype["id"],
        "arrival": inst.today().isoformat(),
        "departure": (inst.today() + timedelta(days=2)).isoformat(),
        "rate_per_night": "150.00", "channel": "direct_web", "rate_plan": "bar"})
    workflow.fire(inst, admin, "reservation", booking["id"], "confirm")
    return {"booking": booking, "room": sites["LDN"][2]}


def _sale(inst, admin) -> dict[str, Any]:
    rep = insert_user(inst, "rita", roles=("sales_rep",), full_name="Rita Moreno")
    account = records.create(inst, admin, "account", {"name": "Hart Ltd", "region": "north",
                                                      "owner": rep.user_id})
    contact = records.create(inst, admin, "contact", {
        "first_name": "Nina", "last_name": "Hart", "email": "nina@hart.example",
        "account": account["id"], "owner": rep.user_id})
    quote = records.create(inst, admin, "quote", {
        "account": account["id"], "contact": contact["id"], "owner": rep.user_id})
    for code, name, price, quantity, typed in (("SRV-1", "Server", "1000.00", "2", None),
                                               ("DSK-1", "Disk", "100.00", "10", "95.00")):
        product = records.create(inst, admin, "product", {
            "code": code, "name": name, "category": "hardware", "unit_price": price,
            "unit_cost": "40.00"})
        price_typed = {"unit_price": typed} if typed else {}  # none: the list price
        records.create(inst, admin, "quote_line", {
            "quote": quote["id"], "product": product["id"], "quantity": quantity,
            **price_typed})
    # the system moves it along (the journey of the approvals is tests/test_packs.py's)
    table = inst.schema.table("quote")
    with inst.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == quote["id"]).values(status="sent"))
    workflow.fire(inst, admin, "quote", quote["id"], "accept")
    return {"quote": quote}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_browser()
    directory = tmp_path_factory.mktemp("front_desk")
    inst = build_instance(PACKS["hotel"], f"sqlite:///{directory / 'crm.db'}")
    admin = admin_actor(inst)
    desk = insert_user(inst, "frank", roles=("front_desk",), full_name="Frank Desk")
    set_password(inst, desk.user_id, PASSWORD)
    set_password(inst, admin.user_id, PASSWORD)
    data = {**_hotel(inst, admin), **_sale(inst, admin)}
    with served(inst, directory, **data) as running:
        yield running


def signed_in(browser: Browser, server: dict[str, Any], who: str,
              viewport: dict | None = None) -> Page:
    return sign_in(browser, server, who, viewport)


def test_front_desk_checks_in_picking_the_room_by_name(browser, server) -> None:
    url = f"{server['url']}/e/reservation/{server['booking']['id']}"
    phone = signed_in(browser, server, "frank", PHONE)
    phone.goto(url)
    phone.locator("summary", has_text="Check in").click()
    shoot(phone, "phone-check-in")
    phone.close()

    page = signed_in(browser, server, "frank")
    page.goto(url)
    preferences = page.locator(".related", has_text="The guest's preferences")
    expect(preferences).to_contain_text("Nut allergy")
    expect(preferences).to_contain_text("Feather-free pillows")
    page.locator("summary", has_text="Check in").click()
    box = page.locator("#wf-check_in-room")
    box.fill("105")
    options = page.locator("#wf-check_in-room-results .picker-option")
    expect(options).to_have_count(2)
    expect(options.nth(0)).not_to_contain_text("#")
    shoot(page, "desktop-check-in")
    page.locator("#wf-check_in-room-results .picker-option",
                 has_text="Room 105, Grand London").click()
    expect(box).to_have_value("Room 105, Grand London")
    page.locator("form[action$='/transitions/check_in'] button[type=submit]").click()
    expect(page.locator(".flash-success")).to_contain_text("moved to")
    with server["inst"].engine.connect() as conn:
        table = server["inst"].schema.table("reservation")
        row = conn.execute(table.select().where(
            table.c.id == server["booking"]["id"])).mappings().one()
    assert (row["status"], row["room"]) == ("checked_in", server["room"]["id"])


def test_the_order_of_an_accepted_quote_shows_its_lines(browser, server) -> None:
    inst = server["inst"]
    with inst.engine.connect() as conn:
        table = inst.schema.table("order")
        order_id = conn.execute(table.select().where(
            table.c.quote == server["quote"]["id"])).mappings().one()["id"]
    for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = signed_in(browser, server, "admin", viewport)
        page.goto(f"{server['url']}/e/order/{order_id}")
        lines = page.locator(".related", has_text="Lines")
        expect(lines).to_contain_text("Server")
        expect(lines).to_contain_text("Disk")
        expect(page.locator("body")).to_contain_text(re.compile(r"2,950"))
        shoot(page, f"{name}-order-lines")
        page.goto(f"{server['url']}/e/quote_line/new?quote={server['quote']['id']}")
        expect(page.locator("body")).to_contain_text("Left blank, the product's list price.")
        shoot(page, f"{name}-quote-line")
        page.close()
