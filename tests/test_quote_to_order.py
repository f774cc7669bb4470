"""Quote → order keeps the lines (issue 13, item 7), on SQLite and PostgreSQL: the core pack's
`lines_from_quote` automation (a `create` with `for_each`, docs/automations.md) copies every
quote line onto the order made when the customer accepts, so the order has the quote's total
and "Confirm order" goes through; a quote line left without a price takes the product's list
price. Also the `for_each` action itself on a small pack: the children of this record, `item`
in templates, and no children at all."""

from __future__ import annotations

import textwrap

from support import admin_actor
from test_packs import PACKS, Api
from web_support import csrf, sign_in
from web_support import make_app as web_app

from runtime.core.instance import Actor
from runtime.process import workflow
from runtime.write import records


def _accepted_quote(a: Api) -> tuple[dict, dict]:
    a.user("rita", "sales_rep")
    a.user("rob", "sales_rep")
    a.user("mark", "sales_manager")
    account = a.create("mark", "account", name="Hart Ltd", region="north",
                       owner=a.ids["rita"])
    contact = a.create("rita", "contact", first_name="Nina", last_name="Hart",
                       email="nina@hart.example", account=account["id"])
    server = a.create("mark", "product", code="SRV-1", name="Server", category="hardware",
                      unit_price="1000.00", unit_cost="500.00")
    disk = a.create("mark", "product", code="DSK-1", name="Disk", category="hardware",
                    unit_price="100.00", unit_cost="40.00")
    quote = a.create("rita", "quote", account=account["id"], contact=contact["id"],
                     reviewer=a.ids["rob"])
    # no price typed: the line takes the product's list price
    line = a.create("rita", "quote_line", quote=quote["id"], product=server["id"], quantity="2")
    assert line["unit_price"] == "1000.00"
    a.create("rita", "quote_line", quote=quote["id"], product=disk["id"], quantity="10",
             unit_price="95.00", description="Spare disks")
    request = a.fire("rita", "quote", quote["id"], "submit", status=202)["approval"]
    a.approve("rob", request["id"])
    a.fire("rita", "quote", quote["id"], "send")
    quote = a.fire("rita", "quote", quote["id"], "accept")
    assert quote["status"] == "accepted" and quote["total"] == "2950.00"
    return quote, contact


def test_accepted_quote_gives_an_order_with_its_lines_that_can_be_confirmed(make_instance,
                                                                             tmp_path, clock):
    a = Api(make_instance(PACKS["core"]), tmp_path, clock)
    quote, _ = _accepted_quote(a)

    (order,) = a.list("rita", "order", quote=quote["id"])
    lines = sorted(a.list("rita", "order_line", order=order["id"]), key=lambda x: x["id"])
    assert [(x["quantity"], x["unit_price"], x["description"]) for x in lines] == [
        ("2.00", "1000.00", None), ("10.00", "95.00", "Spare disks")]
    assert order["total"] == "2950.00" and order["list_total"] == "3000.00"
    # the lines accrue commissions as lines typed by hand do
    assert len(a.list("mark", "commission", order=order["id"])) == 2

    answer = a.fire("rita", "order", order["id"], "confirm", status=202)
    a.approve("rob", answer["approval"]["id"])
    order = a.get("rita", "order", order["id"])
    assert order["status"] == "confirmed" and order["confirmed_on"] == "2026-03-02"


PARENT = """\
entity: basket
title_field: name
fields:
  name: {type: text, required: true}
automations:
  copy_items:
    on: {transition: close}
    do:
      - create:
          entity: note
          for_each: item
          values:
            text: "{item.label} in {name}"
            size: "=item.size * 2"
workflow:
  field: status
  initial: open
  states: {open: {}, closed: {}}
  transitions:
    close: {from: open, to: closed}
"""
ITEM = """\
entity: item
title_field: label
fields:
  label: {type: text}
  size: {type: integer}
  basket: {type: link, to: basket, on_delete: cascade}
"""
NOTE = """\
entity: note
fields:
  text: {type: text}
  size: {type: integer}
"""


def test_for_each_creates_one_record_per_child(make_instance, tmp_path):
    pack = tmp_path / "pack"
    (pack / "entities").mkdir(parents=True)
    (pack / "pack.yaml").write_text("pack: baskets\nformat: 1\nversion: 1.0.0\n")
    for name, text in (("basket", PARENT), ("item", ITEM), ("note", NOTE)):
        (pack / "entities" / f"{name}.yaml").write_text(textwrap.dedent(text))
    inst = make_instance(pack)
    admin = admin_actor(inst)
    full = records.create(inst, admin, "basket", {"name": "Full"})
    empty = records.create(inst, admin, "basket", {"name": "Empty"})
    for label, size in (("apple", 1), ("pear", 3)):
        records.create(inst, admin, "item", {"label": label, "size": size,
                                             "basket": full["id"]})
    workflow.fire(inst, admin, "basket", empty["id"], "close")
    with inst.engine.connect() as conn:
        assert conn.execute(inst.schema.table("note").select()).all() == []
    workflow.fire(inst, admin, "basket", full["id"], "close")
    with inst.engine.connect() as conn:
        notes = conn.execute(inst.schema.table("note").select()
                             .order_by(inst.schema.table("note").c.id)).mappings().all()
    assert [(n["text"], n["size"]) for n in notes] == [("apple in Full", 2), ("pear in Full", 6)]


def test_quote_line_form_left_without_a_price_takes_the_list_price(make_instance, tmp_path,
                                                                    clock):
    """A rep adds a line in the web form, typing no price: the line has the product's."""
    a = Api(make_instance(PACKS["core"]), tmp_path, clock)
    a.user("rita", "sales_rep")
    a.user("mark", "sales_manager")
    account = a.create("rita", "account", name="Hart Ltd", region="north")
    server = a.create("mark", "product", code="SRV-1", name="Server", category="hardware",
                      unit_price="1000.00", unit_cost="500.00")
    quote = a.create("rita", "quote", account=account["id"])
    client = web_app(a.inst, tmp_path).test_client()
    sign_in(client, a.inst, Actor(a.ids["rita"], "rita", frozenset({"sales_rep"})))
    page = client.get(f"/e/quote_line/new?quote={quote['id']}").get_data(as_text=True)
    assert "Left blank, the product&#39;s list price." in page
    answer = client.post("/e/quote_line/new", data={
        "csrf_token": csrf(page), "quote": quote["id"], "quote__q": "", "quote__shown": "",
        "product": server["id"], "product__q": "", "product__shown": "", "quantity": "3",
        "unit_price": ""})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    (line,) = a.list("rita", "quote_line", quote=quote["id"])
    assert (line["unit_price"], line["line_total"]) == ("1000.00", "3000.00")
