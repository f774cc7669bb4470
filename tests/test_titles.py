"""Record titles (`runtime.read.titles`, the one renderer): a title template with dotted paths
through links (`{site.code}`, `{site.area.name}`), choice labels and linked titles reads the
same on every surface — record page, list, kanban, calendar, related list, search, link
pickers, dashboards, the approval inbox and the API; a linked record the reader may not read
gives nothing away through a title; and a page's titles cost a fixed number of queries,
however many rows it shows. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from api_support import bearer
from support import insert_user
from web_support import make_app, sign_in

from runtime.core.instance import Actor, Instance
from runtime.http.auth import create_token
from runtime.process import workflow
from runtime.read import titles
from runtime.write import records

PACK = {
    "roles.yaml": """
        roles:
          rep:     {label: Rep}
          manager: {label: Manager, inherits: [rep]}
    """,
    "entities/area.yaml": """
        entity: area
        label: Area
        title_field: name
        fields:
          name: {type: text, required: true}
        permissions:
          rep: {read: true, create: true, update: true, delete: false}
    """,
    "entities/site.yaml": """
        entity: site
        label: Site
        title: "{code} — {area}"
        search: [code]
        fields:
          code: {type: text, required: true}
          area: {type: link, to: area}
        views:
          related: [deal]
        permissions:
          rep: {read: true, create: true, update: true, delete: false}
    """,
    "entities/client.yaml": """
        entity: client
        label: Client
        title: "{first_name} {last_name}"
        search: [last_name]
        fields:
          first_name: {type: text}
          last_name:  {type: text, required: true}
        permissions:
          rep:     {read: "owner == user.id", create: true, update: "owner == user.id",
                    delete: false}
          manager: {read: true, create: true, update: true, delete: true}
    """,
    "entities/deal.yaml": """
        entity: deal
        label: Deal
        title: "{site.code} {kind} ({site.area.name}): {client.first_name} {client.last_name}"
        search: [reference]
        fields:
          reference: {type: text, required: true}
          site:      {type: link, to: site, required: true}
          client:    {type: link, to: client}
          kind:      {type: choice, options: {new: New business, renewal: Renewal},
                      default: new}
          amount:    {type: money, currency: EUR}
          due:       {type: date}
        workflow:
          field: stage
          initial: open
          states:
            open: {label: Open}
            won:  {label: Won, final: true}
          transitions:
            win: {label: Win, from: open, to: won, approval: sign_off}
        approvals:
          sign_off:
            label: Sign-off
            steps:
              - name: manager
                approvers: {role: manager}
        views:
          list: {columns: [reference, site, client, amount], filters: [client, kind],
                 sort: reference}
          kanban: {group_by: kind, card: [site, client, amount]}
          calendar: {date: due, title: "{site.code} due: {client.last_name}"}
          related: [visit]
        permissions:
          rep:     {read: true, create: true, update: true, delete: false}
          manager: {read: true, create: true, update: true, delete: true}
    """,
    "entities/visit.yaml": """
        entity: visit
        label: Visit
        title: "{note} at {deal}"
        search: [note]
        fields:
          note: {type: text, required: true}
          deal: {type: link, to: deal, required: true}
          on:   {type: date}
        views:
          list: {columns: [deal, note, on]}
        permissions:
          rep: {read: true, create: true, update: true, delete: false}
    """,
    "dashboards/desk.yaml": """
        dashboard: desk
        label: Desk
        widgets:
          - {type: list, label: Deals by client, entity: deal, columns: [client, amount],
             limit: 10}
          - {type: list, label: Visits, entity: visit, columns: [deal, note], limit: 10}
          - {type: table, label: Amount by client, entity: deal, group_by: client, op: sum,
             field: amount}
    """,
}

TITLE = "S-1 New business (North): Ann Lee"  # deal one, as every surface shows it
SECRET = "SecretCo"


@dataclass
class World:
    inst: Instance
    app: Any
    admin: Actor
    rita: Actor  # a rep: reads her own clients only
    mia: Actor  # a manager: approves
    ids: dict[str, int]

    def client_as(self, who: Actor) -> Any:
        client = self.app.test_client()
        sign_in(client, self.inst, who)
        return client


@pytest.fixture
def world(make_instance, pack, admin, tmp_path) -> World:
    inst = make_instance(pack(PACK, name="titles"))
    boss = admin(inst)
    rita = insert_user(inst, "rita", roles=["rep"], full_name="Rita Rep")
    mia = insert_user(inst, "mia", roles=["manager"], full_name="Mia Manager")

    def add(who: Actor, entity: str, **values: Any) -> int:
        return records.create(inst, who, entity, values)["id"]

    north, south = add(boss, "area", name="North"), add(boss, "area", name="South")
    site1 = add(boss, "site", code="S-1", area=north)
    site2 = add(boss, "site", code="S-2", area=south)
    ann = add(rita, "client", first_name="Ann", last_name="Lee")
    secret = add(boss, "client", first_name=SECRET, last_name="Holdings")
    one = add(boss, "deal", reference="D-1", site=site1, client=ann, amount="1000",
              due="2026-03-10")
    two = add(boss, "deal", reference="D-2", site=site2, client=secret, kind="renewal",
              amount="2500", due="2026-03-12")
    visit = add(boss, "visit", note="Walkround", deal=one, on="2026-03-03")
    ids = {"north": north, "site1": site1, "site2": site2, "ann": ann, "secret": secret,
           "one": one, "two": two, "visit": visit}
    return World(inst, make_app(inst, tmp_path), boss, rita, mia, ids)


def page(client: Any, url: str) -> str:
    answer = client.get(url)
    assert answer.status_code == 200, (url, answer.status_code)
    return html.unescape(answer.get_data(as_text=True))


# -- one renderer -----------------------------------------------------------------------------

def test_dotted_paths_choice_labels_and_linked_titles_render(world) -> None:
    inst, ids = world.inst, world.ids
    with inst.engine.connect() as conn:
        deal = records.get(inst, world.admin, "deal", ids["one"])
        assert titles.title(inst, "deal", deal, conn=conn) == TITLE
        assert titles.title_of(inst, conn, "deal", ids["one"]) == TITLE
        assert titles.title_of(inst, conn, "site", ids["site1"]) == "S-1 — North"
        assert titles.title_of(inst, conn, "visit", ids["visit"]) == f"Walkround at {TITLE}"
        assert titles.title_of(inst, conn, "deal", 999_999) is None
        assert titles.titles(inst, conn, "deal", [deal], template="{site.code} due") == {
            ids["one"]: "S-1 due"}
        assert titles.titles(inst, conn, "deal", [deal], template="{title}!") == {
            ids["one"]: f"{TITLE}!"}
    # without a connection nothing is looked up: a link reads "#id", its fields are empty
    assert titles.title(inst, "visit", {"id": 5, "note": "Call", "deal": 7}) == "Call at #7"
    assert titles.title(inst, "deal", {"id": 9, "kind": "renewal"}) == "Renewal"
    assert titles.title(inst, "deal", {"id": 9}) == "Deal #9"


def test_readable_values_and_trimming(world) -> None:
    deal = world.inst.model.entity("deal")
    assert titles.readable(deal.fields["amount"], 1234567) == "€1,234,567.00"
    assert titles.readable(deal.fields["kind"], "renewal") == "Renewal"
    assert titles.readable(deal.fields["due"], date(2026, 3, 10)) == "Mar 10, 2026"
    assert titles.readable(deal.fields["id"], 12345) == "12345"  # an id is not a number
    assert titles.readable(deal.fields["amount"], None) == ""
    with world.inst.engine.connect() as conn:  # an empty client leaves no dangling colon
        bare = records.create(world.inst, world.admin, "deal",
                              {"reference": "D-9", "site": world.ids["site1"]})
        assert titles.title_of(world.inst, conn, "deal", bare["id"]) == \
            "S-1 New business (North)"


# -- every surface ----------------------------------------------------------------------------

def test_a_dotted_title_reads_the_same_on_every_page(world) -> None:
    client, ids = world.client_as(world.admin), world.ids
    record = page(client, f"/e/deal/{ids['one']}")
    assert f"<h1>{TITLE}</h1>" in record
    assert f"<title>{TITLE} — Deal — CRMForge</title>" in record
    assert f'aria-label="Select {TITLE}"' in page(client, "/e/deal")  # the list row
    assert f">{TITLE}</a>" in page(client, "/e/deal?view=kanban")  # the card
    assert "S-1 due: Lee" in page(client, "/e/deal?view=calendar&month=2026-03")
    assert f">{TITLE}</a>" in page(client, f"/e/site/{ids['site1']}")  # related list
    assert f"<strong>{TITLE}</strong>" in page(client, "/search?q=D-1")
    assert f">{TITLE}</a>" in page(client, "/e/visit")  # a link column
    assert f'value="{TITLE}"' in page(client, f"/e/visit/{ids['visit']}/edit")  # the picker
    assert f'data-title="{TITLE}"' in page(client, "/e/deal/_options?q=D-1")
    home = page(client, "/")
    assert f">{TITLE}</a>" in home and "Ann Lee" in home
    for shown in (record, home):
        assert "{site." not in shown and "{client." not in shown  # no template shows raw


def test_the_approval_inbox_and_the_api_show_the_same_title(world) -> None:
    inst, ids = world.inst, world.ids
    result = workflow.fire(inst, world.rita, "deal", ids["one"], "win", version=1)
    assert result.status == 202
    assert TITLE in page(world.client_as(world.mia), "/approvals")
    token = create_token(inst, world.mia.user_id, "mia's test token")
    answer = world.app.test_client().get("/api/v1/approvals?status=pending",
                                         headers=bearer(token))
    assert answer.status_code == 200
    assert [r["record_title"] for r in answer.get_json()["data"]] == [TITLE]


# -- permissions ------------------------------------------------------------------------------

def test_a_linked_record_the_reader_may_not_read_is_not_revealed(world) -> None:
    inst, ids, rita = world.inst, world.ids, world.rita
    with inst.engine.connect() as conn:
        two = records.get(inst, rita, "deal", ids["two"])
        assert titles.title(inst, "deal", two, conn=conn, actor=rita) == \
            "S-2 Renewal (South)"
        assert titles.title(inst, "deal", two, conn=conn) == \
            f"S-2 Renewal (South): {SECRET} Holdings"  # the system reads everything
        assert titles.title_of(inst, conn, "client", ids["secret"], actor=rita) is None
        links = titles.link_titles(inst, conn, "deal", [two], actor=rita)
        assert links["client"] == {} and links["site"] == {ids["site2"]: "S-2 — South"}
    client = world.client_as(rita)
    for url in ("/e/deal", f"/e/deal/{ids['two']}", f"/e/deal/{ids['two']}/edit",
                "/e/deal?view=kanban", "/e/deal?view=calendar&month=2026-03",
                f"/e/site/{ids['site2']}", "/search?q=D-2", "/e/deal/_options?q=D-2",
                f"/e/deal?client={ids['secret']}", "/"):
        shown = page(client, url)
        assert SECRET not in shown, url
    assert "S-2 Renewal (South)" in page(client, f"/e/deal/{ids['two']}")
    edit = page(client, f"/e/deal/{ids['two']}/edit")
    assert f'value="#{ids["secret"]}"' in edit  # the picker shows the bare id
    assert f">#{ids['secret']}<" in page(client, "/e/deal")  # the link cell too


# -- queries ----------------------------------------------------------------------------------

@contextmanager
def counted(engine: sa.Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001 - SQLAlchemy's hook
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def add_deals(world: World, count: int) -> None:
    """`count` more deals, each with a site, area and client of its own."""
    inst, boss = world.inst, world.admin
    for i in range(count):
        area = records.create(inst, boss, "area", {"name": f"Area {i}"})["id"]
        site = records.create(inst, boss, "site", {"code": f"X-{i}", "area": area})["id"]
        who = records.create(inst, world.rita, "client", {"last_name": f"Client {i}"})["id"]
        records.create(inst, boss, "deal", {"reference": f"X-{i:03}", "site": site,
                                            "client": who})


def test_a_page_of_titles_costs_one_query_per_linked_entity_and_level(world) -> None:
    inst, rita = world.inst, world.rita
    add_deals(world, 12)
    rows = records.query(inst, rita, "deal", limit=100).rows
    assert len(rows) == 14
    with inst.engine.connect() as conn, counted(inst.engine) as statements:
        links, names = titles.page_titles(inst, conn, "deal", rows, actor=rita)
    # site, client and user (owner, created_by, updated_by); then area (site.area)
    assert len(statements) == 4, statements
    assert sum(1 for t in names.values() if t.startswith("X-")) == 12
    assert all(": Client" in t for t in names.values() if t.startswith("X-"))


def test_a_list_page_resolves_titles_in_queries_independent_of_its_rows(world) -> None:
    client = world.client_as(world.rita)
    page(client, "/e/deal")  # warm up (sessions, caches)
    with counted(world.inst.engine) as few:
        small = page(client, "/e/deal")
    add_deals(world, 20)
    with counted(world.inst.engine) as many:
        large = page(client, "/e/deal")
    assert large.count('aria-label="Select ') == small.count('aria-label="Select ') + 20
    assert "X-7 New business (Area 7): Client 7" in large
    assert len(many) == len(few), (len(few), len(many))
