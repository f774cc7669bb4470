"""Issue 13, items 13 and 10 as a user meets them: a menu without child entities or empty pack
headings, and a home page that agrees with itself (follow-ups, "View all", own work first).

Page tests run on both databases over a small two-pack model; the browser journey at the end
signs in as a sales rep of the shipped packs (tests/test_browser.py explains the set-up).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
from browser_support import DESKTOP, PHONE, require_browser, served, shoot
from browser_support import sign_in as browser_sign_in
from conftest import build_instance
from support import admin_actor, insert_user, write_pack
from web_support import PASSWORD, make_app, seed, sign_in

from runtime.http.auth import set_password
from runtime.read import dashboards
from runtime.write import records

SHOP = {
    "pack.yaml": "pack: shop\nformat: 1\nversion: 1.0.0\nlabel: Shop\n",
    "roles.yaml": """
        roles:
          rep: {label: Rep}
          clerk: {label: Clerk}
    """,
    "entities/deal.yaml": """
        entity: deal
        fields:
          name: {type: text, required: true}
          status: {type: choice, options: [new, open, done]}
          amount: {type: integer}
          next_follow_up: {type: date, label: Next follow-up}
        views:
          list: {columns: [name, status, amount]}
          related: [{entity: deal_line, field: deal}]
        permissions:
          rep: {read: true, create: true, update: true, delete: false}
    """,
    "entities/deal_line.yaml": """
        entity: deal_line
        label: Deal line
        plural: Deal lines
        menu: false
        fields:
          deal: {type: link, to: deal, required: true}
          item: {type: text}
        permissions:
          rep: {read: true, create: true, update: true, delete: false}
    """,
    "dashboards/money.yaml": """
        dashboard: money
        label: Money matters
        roles: [clerk, rep]
        widgets:
          - {type: number, label: Big deals, entity: deal, where: "amount > 100"}
    """,
    "dashboards/work.yaml": """
        dashboard: work
        label: Your work
        roles: [rep]
        widgets:
          - {type: number, label: Deals in the pool, entity: deal,
             where: "owner == null and status in ['new', 'open']"}
          - {type: list, label: My deals, entity: deal, where: "owner == user.id",
             columns: [name, status, amount]}
    """,
}
HOTEL = {
    "pack.yaml": "pack: hotel\nformat: 1\nversion: 1.0.0\nlabel: Hotel\nrequires: [shop]\n",
    "entities/booking.yaml": """
        entity: booking
        fields:
          guest: {type: text, required: true}
        permissions:
          rep: {read: "owner == user.id", create: false, update: false, delete: false}
    """,
}


@pytest.fixture
def shop(make_instance, admin, tmp_path) -> dict[str, Any]:
    packs = tmp_path / "packs"
    inst = make_instance([write_pack(packs, SHOP, name="shop"),
                          write_pack(packs, HOTEL, name="hotel")])
    boss = admin(inst)
    rep = insert_user(inst, "rita", roles=["rep"], full_name="Rita Rep")
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, rep)
    return {"inst": inst, "admin": boss, "rep": rep, "client": client}


def add(shop: dict[str, Any], entity: str, **values: Any) -> dict[str, Any]:
    return records.create(shop["inst"], shop["admin"], entity, values)


def nav_of(html: str) -> str:
    return html.split('<nav class="nav">', 1)[1].split("</nav>", 1)[0]


# -- item 13: the menu ------------------------------------------------------------------------

def test_menu_leaves_out_child_entities_which_the_parent_page_reaches(shop) -> None:
    deal = add(shop, "deal", name="Acme renewal", owner=shop["rep"].user_id)
    add(shop, "deal_line", deal=deal["id"], item="Support plan")
    client = shop["client"]
    nav = nav_of(client.get("/").get_data(as_text=True))
    assert ">Deals</a>" in nav
    assert "Deal lines" not in nav and "/e/deal_line" not in nav
    record = client.get(f"/e/deal/{deal['id']}").get_data(as_text=True)
    assert "Deal lines" in record and "Support plan" in record  # reached from its parent
    assert client.get("/e/deal_line").status_code == 200  # its list still opens


def test_pack_heading_shows_only_when_the_user_has_something_in_it(shop) -> None:
    client = shop["client"]
    nav = nav_of(client.get("/").get_data(as_text=True))
    assert '<div class="nav-group-title">Shop</div>' in nav
    assert "Hotel" not in nav  # bookings: read only their own, none yet, may not create
    add(shop, "booking", guest="Ms Holm", owner=shop["admin"].user_id)
    assert "Hotel" not in nav_of(client.get("/").get_data(as_text=True))  # not theirs
    add(shop, "booking", guest="Mr Berg", owner=shop["rep"].user_id)
    nav = nav_of(client.get("/").get_data(as_text=True))
    assert '<div class="nav-group-title">Hotel</div>' in nav and ">Bookings</a>" in nav


# -- item 10: the home page -------------------------------------------------------------------

def listed_names(client, url: str) -> set[str]:
    html = client.get(url).get_data(as_text=True)
    return {unescape(t) for t in re.findall(r'class="title"[^>]*>([^<]+)</a>', html)}


def view_all_of(html: str, label: str) -> str:
    card = html.split(f">{label}</a></h3>", 1)[1]
    return unquote(re.search(r'href="([^"]+)"[^>]*>View all', card).group(1)).replace(
        "&amp;", "&")


def test_view_all_opens_exactly_what_the_widget_counts(shop) -> None:
    rep = shop["rep"].user_id
    pool = {add(shop, "deal", name=f"Pool {i}", status=s, owner=None)["name"]
            for i, s in enumerate(["new", "open", "new"])}
    add(shop, "deal", name="Pool done", status="done", owner=None)
    add(shop, "deal", name="Rita's", status="new", owner=rep, amount=500)
    add(shop, "deal", name="Boss's big", status="open", owner=shop["admin"].user_id,
        amount=900)
    add(shop, "deal", name="Small", status="open", amount=50, owner=rep)
    client = shop["client"]
    html = client.get("/").get_data(as_text=True)
    card = html.split(">Deals in the pool</a></h3>", 1)[1]
    assert re.search(r'class="stat">3<', card)
    url = view_all_of(html, "Deals in the pool")
    assert url == "/e/deal?owner__isnull=true&status__in=new,open"  # as filters
    assert listed_names(client, url) == pool
    big = view_all_of(html, "Big deals")  # `>` is not a filter: the counted ids
    assert big.startswith("/e/deal?id__in=")
    assert listed_names(client, big) == {"Rita's", "Boss's big"}
    mine = view_all_of(html, "My deals")
    assert mine == "/e/deal?owner=me"
    assert listed_names(client, mine) == {"Rita's", "Small"}


def test_view_all_of_nothing_counted_opens_an_empty_list(shop) -> None:
    widget = shop["inst"].model.dashboards["money"].widgets[0]
    assert dashboards.list_filters(shop["inst"], shop["rep"], widget) == {"id__in": "0"}
    answer = shop["client"].get("/e/deal?id__in=0")
    assert answer.status_code == 200 and listed_names(shop["client"], "/e/deal?id__in=0") == set()


def test_records_next_follow_up_counts_as_a_follow_up_due(shop) -> None:
    inst, rep = shop["inst"], shop["rep"].user_id
    today = inst.today()
    add(shop, "deal", name="Call Acme back", owner=rep,
        next_follow_up=(today - timedelta(days=2)).isoformat())
    add(shop, "deal", name="Later", owner=rep,
        next_follow_up=(today + timedelta(days=3)).isoformat())
    add(shop, "deal", name="Not mine", owner=shop["admin"].user_id,
        next_follow_up=today.isoformat())
    html = shop["client"].get("/").get_data(as_text=True)
    assert re.search(r'class="stat">1</div>\s*<div class="stat-label">follow-ups due', html)
    section = html.split("My follow-ups", 1)[1].split("</ul>", 1)[0]
    assert "Call Acme back" in section and "Next follow-up" in section
    assert "Later" not in section and "Not mine" not in section
    assert "all caught up" not in html


def test_home_shows_the_roles_own_dashboards_first(shop) -> None:
    html = shop["client"].get("/").get_data(as_text=True)
    assert html.index("<h2>Your work</h2>") < html.index("<h2>Money matters</h2>")
    clerk = insert_user(shop["inst"], "carl", roles=["clerk"])
    assert [d.name for d in dashboards.dashboards_for(shop["inst"], clerk)] == ["money"]


# -- the journey in a browser, on the shipped packs -------------------------------------------

VERTICALS = Path(__file__).resolve().parent.parent / "verticals"

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the test extra installs it
    pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every shipped pack, a sales rep and seven leads: four in the pool, two taken, one lost."""
    require_browser()
    directory = tmp_path_factory.mktemp("menuhome")
    inst = build_instance([VERTICALS / p for p in
                           ("core", "real_estate", "finance", "telecom", "hotel")],
                          f"sqlite:///{directory / 'crm.db'}")
    rep = insert_user(inst, "emily", roles=["sales_rep"], full_name="Emily Walsh")
    set_password(inst, rep.user_id, PASSWORD)
    boss = admin_actor(inst)
    today = inst.today()
    leads = inst.schema.table("lead")
    made = []
    for i in range(7):
        lead = records.create(inst, boss, "lead", {
            "last_name": f"Poolson {i}", "company": f"A rather long company name number {i}",
            "source": "web", "received_on": today.isoformat(), "owner": None,
            "email": f"poolson{i}@example.com"})
        made.append(lead["id"])
    with inst.engine.begin() as conn:  # four in the pool, two taken, one lost
        conn.execute(sa.update(leads).values(owner=None, status="new")
                     .where(leads.c.id.in_(made[:4])))
        conn.execute(sa.update(leads).values(owner=rep.user_id, status="contacted",
                                             next_follow_up=today)
                     .where(leads.c.id.in_(made[4:6])))
        conn.execute(sa.update(leads).values(owner=None, status="lost")
                     .where(leads.c.id == made[6]))
    with served(inst, directory, pool=made[:4]) as running:
        yield running


@pytest.mark.browser
def test_a_sales_rep_finds_a_tidy_menu_and_a_home_page_that_agrees(browser, server) -> None:
    page = browser_sign_in(browser, server, "emily")
    nav = page.locator("nav.nav")
    for child in ("Order lines", "Quote lines", "Instalments"):
        expect(nav.get_by_role("link", name=child, exact=True)).to_have_count(0)
    expect(nav.get_by_role("link", name="Leads", exact=True)).to_have_count(1)
    for group in page.locator(".nav-group").all():
        assert group.locator("a").count() > 0  # no heading without items
    expect(nav.locator(".nav-group-title", has_text="Hotel")).to_have_count(0)
    # the rep's own work first, and one story about follow-ups
    expect(page.locator(".dash-title h2").first).to_have_text("Sales")
    expect(page.locator(".stats .stat").first).to_have_text("2")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    shoot(page, "desktop-home-own-work")
    tile = page.locator(".widget", has_text="Leads waiting in the pool")
    expect(tile.locator(".stat")).to_have_text("4")
    tile.locator("a", has_text="View all").click()
    page.wait_for_url(re.compile(r"/e/lead\?"))
    expect(page.locator("table.data tbody tr")).to_have_count(4)
    for n in range(4):
        expect(page.locator("table.data tbody")).to_contain_text(f"Poolson {n}")
    shoot(page, "desktop-list-pool")
    page.close()
    phone = browser_sign_in(browser, server, "emily", PHONE)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(phone, "phone-home-own-work")
    phone.locator("label.menu-toggle").click()
    phone.wait_for_timeout(400)
    shoot(phone, "phone-menu-no-children", full_page=False)
    phone.close()


# -- item 12: lists and the board -------------------------------------------------------------

@pytest.fixture
def spec_web(spec_instance, admin, tmp_path) -> dict[str, Any]:
    who = admin(spec_instance)
    client = make_app(spec_instance, tmp_path).test_client()
    sign_in(client, spec_instance, who)
    return {"inst": spec_instance, "client": client, "data": seed(spec_instance, who)}


def test_kanban_columns_show_their_count_and_sum(spec_web) -> None:
    inst = spec_web["inst"]
    offers = inst.schema.table("offer")
    with inst.engine.connect() as conn:
        sums = dict(conn.execute(sa.select(offers.c.status, sa.func.sum(offers.c.amount))
                                 .group_by(offers.c.status)).all())
        counts = dict(conn.execute(sa.select(offers.c.status, sa.func.count())
                                   .group_by(offers.c.status)).all())
    html = spec_web["client"].get("/e/offer?view=kanban").get_data(as_text=True)
    assert sums  # offers in at least one column
    for state in inst.model.entity("offer").workflow.states:
        header = html.split(f'data-value="{state}"', 1)[1].split("</header>", 1)[0]
        shown = unescape(re.sub(r"<[^>]+>", "", header.split('class="n"', 1)[1]))
        total = f"{sums.get(state) or 0:,.2f}"
        assert f">{counts.get(state, 0)} · " in shown, (state, shown)
        assert total in shown, (state, shown)  # the money format of the amount field


def test_list_cells_are_one_line_with_the_full_value_on_hover(spec_web) -> None:
    html = spec_web["client"].get("/e/offer").get_data(as_text=True)
    assert 'class="data list-table' in html
    assert re.search(r'<th class="[^"]*title-col', html)  # kept in view (CSS sticky)
    assert 'title="Buyer is pre-approved."' in html or 'title="Anna Schmidt"' in html
    with spec_web["client"].get("/static/crmforge.css") as answer:
        css = answer.get_data(as_text=True)
    assert "text-overflow: ellipsis" in css and "position: sticky" in css


@pytest.mark.browser
def test_a_sales_rep_reads_a_dense_list_and_a_board_with_totals(browser, server) -> None:
    url = server["url"]
    for viewport, prefix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = browser_sign_in(browser, server, "emily", viewport)
        page.goto(url + "/e/lead")
        first = page.locator("table.list-table tbody tr").first
        title = first.locator("td.title-col")
        assert title.evaluate("e => getComputedStyle(e).position") == "sticky"
        company = first.locator("td:not(.title-col)", has_text="A rather long company")
        assert title.get_attribute("title").startswith("Poolson")
        if company.count():  # one line, the full value on hover
            assert company.first.evaluate("e => getComputedStyle(e).whiteSpace") \
                == "nowrap"
            assert company.first.get_attribute("title").startswith(
                "A rather long company name number")
        before = title.bounding_box()["x"]
        page.locator(".table-wrap").first.evaluate("e => e.scrollLeft = 400")
        assert abs(title.bounding_box()["x"] - before) < 1  # kept in view
        page.locator(".table-wrap").first.evaluate("e => e.scrollLeft = 0")
        shoot(page, f"{prefix}-list-dense")
        page.goto(url + "/e/lead?view=kanban")
        new = page.locator('.kanban-col[data-value="new"] header .n')
        expect(new).to_contain_text("4 · ")  # count · sum of estimated value
        shoot(page, f"{prefix}-kanban-totals")
        page.close()
