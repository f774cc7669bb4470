"""Dashboard widgets (SPEC §7b): values computed in one SQL query per widget under the
viewer's row filter, and drawn as server-side SVG that needs no JavaScript."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from web_support import make_app, seed, sign_in

from runtime.http.web import charts
from runtime.read import dashboards
from runtime.write import records


def widgets_of(inst) -> dict[str, object]:
    board = inst.model.dashboards["sales"]
    return {w.label.get(): w for w in board.widgets}


@pytest.fixture
def seeded(spec_instance, admin):
    inst = spec_instance
    who = admin(inst)
    return inst, who, seed(inst, who)


def test_number_widget_sums_with_where(seeded) -> None:
    inst, who, _ = seeded
    value = dashboards.compute(inst, who, widgets_of(inst)["Open pipeline"])
    assert Decimal(value.number) == Decimal("173000")  # won deals left out


def test_bar_chart_groups_by_choice_with_labels_and_list_filters(seeded) -> None:
    inst, who, _ = seeded
    value = dashboards.compute(inst, who, widgets_of(inst)["Leads by source"])
    points = {p.label: (p.value, p.filters) for p in value.points}
    assert points["Website"] == (3, {"source": "web"})
    assert points["Referral"][0] == 1 and points["Trade fair"][0] == 1


def test_line_chart_groups_by_month(seeded) -> None:
    inst, who, _ = seeded
    value = dashboards.compute(inst, who, widgets_of(inst)["Orders by month"])
    assert [p.key for p in value.points] == sorted(p.key for p in value.points)
    assert sum(Decimal(str(p.value)) for p in value.points) == Decimal("4770")
    assert all(len(str(p.key)) == 7 for p in value.points)  # YYYY-MM buckets


def test_table_widget_sorts_by_value_and_names_links(seeded) -> None:
    inst, who, _ = seeded
    value = dashboards.compute(inst, who, widgets_of(inst)["Top customers by profit"])
    assert [p.label for p in value.points] == ["Acme Holdings", "Globex Ltd"]
    assert Decimal(str(value.points[0].value)) == Decimal("910")


def test_list_widget_applies_user_in_where(seeded, make_user) -> None:
    inst, who, _ = seeded
    widget = widgets_of(inst)["My follow-ups due"]
    mine = dashboards.compute(inst, who, widget)
    assert len(mine.rows) == 5  # the admin owns the seeded leads
    agent = make_user(inst, "agnes", roles=["agent"])
    assert dashboards.compute(inst, agent, widget).rows == []


def test_row_filter_applies_to_aggregates(seeded, make_user) -> None:
    inst, who, _ = seeded
    agent = make_user(inst, "agnes", roles=["agent"])
    widget = widgets_of(inst)["Leads by source"]
    assert dashboards.compute(inst, agent, widget).points == []  # agents see their own only
    records.create(inst, who, "lead", {"name": "Agnes's lead", "source": "fair",
                                       "owner": agent.user_id})
    points = dashboards.compute(inst, agent, widget).points
    assert [(p.label, p.value) for p in points] == [("Trade fair", 1)]
    denied = dashboards.compute(inst, agent, widgets_of(inst)["Open pipeline"])
    assert denied.error  # no role on opportunity: nothing shown


def test_one_query_per_widget(seeded) -> None:
    inst, who, _ = seeded
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        statements.append(statement)

    sa.event.listen(inst.engine, "before_cursor_execute", count)
    try:
        for name in ("Open pipeline", "Leads by source", "Orders by month"):
            statements.clear()
            dashboards.compute(inst, who, widgets_of(inst)[name])
            selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
            assert len(selects) == 1, (name, selects)
    finally:
        sa.event.remove(inst.engine, "before_cursor_execute", count)


def test_dashboards_for_roles(seeded, make_user) -> None:
    inst, who, _ = seeded
    assert [d.name for d in dashboards.dashboards_for(inst, who)] == ["sales"]
    director = make_user(inst, "dora", roles=["director"])  # inherits agent
    assert [d.name for d in dashboards.dashboards_for(inst, director)] == ["sales"]
    nobody = make_user(inst, "nora", roles=[])
    assert dashboards.dashboards_for(inst, nobody) == []


def test_charts_are_svg_with_escaped_labels() -> None:
    def fmt(value: float) -> str:
        return f"{value:g}"

    points = [("<script>", 3.0, "/e/lead?source=web"), ("B & C", 1.0, None)]
    for kind in ("bar", "line", "pie"):
        svg = str(charts.draw(kind, points, fmt, "Leads <b>"))
        assert "<svg" in svg and "<script>" not in svg and "&lt;script&gt;" in svg
        assert "B &amp; C" in svg
        assert 'href="/e/lead?source=web"' in svg
    assert str(charts.draw("pie", [("a", 0.0, None)], fmt)) == ""
    assert str(charts.draw("bar", [], fmt)) == ""


def test_home_page_renders_every_widget_kind(seeded, tmp_path) -> None:
    inst, who, _ = seeded
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, who)
    html = client.get("/").get_data(as_text=True)
    for label in ("Open pipeline", "Leads by source", "Orders by month",
                  "Top customers by profit", "My follow-ups due"):
        assert label in html
    assert html.count("<svg class=\"chart") == 2
    assert "173,000.00" in html and "Acme Holdings" in html and "Northwind Traders" in html
    assert 'href="/e/lead?source=web"' in html  # a bar links to the list it summarises
    page = client.get("/dashboards/sales")
    assert page.status_code == 200 and "Open pipeline" in page.get_data(as_text=True)
    assert client.get("/dashboards/nope").status_code == 404
    assert inst.today() - timedelta(days=1)  # the seeded follow-ups were due yesterday


def test_pages_call_the_user_by_name(seeded, make_user, tmp_path) -> None:
    inst, _, _ = seeded
    dora = make_user(inst, "dora.m", roles=["director"], full_name="Dora <b>Mae</b> Smith")
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, dora)
    html = client.get("/").get_data(as_text=True)
    assert ", Dora</h1>" in html  # the greeting uses the first name
    assert "Dora &lt;b&gt;Mae&lt;/b&gt; Smith" in html and "<b>Mae</b>" not in html
    assert 'title="dora.m"' in html


def test_ratio_widget_divides_two_aggregates(seeded, make_user, tmp_path) -> None:
    """`divide_by` (a number widget's denominator): its own `where`, else the widget's; zero
    or nothing below the line shows as —; `format: percent` shows the ratio ×100."""
    import dataclasses

    from builder.expressions import parse
    from builder.model import Measure

    inst, who, _ = seeded
    pipeline = widgets_of(inst)["Open pipeline"]  # sum of amount, won deals left out
    same = dataclasses.replace(pipeline, divide_by=Measure("sum", "amount"))
    assert dashboards.compute(inst, who, same).number == pytest.approx(1.0)
    total = dataclasses.replace(pipeline, format="percent", divide_by=Measure(
        "sum", "amount", parse("amount > 0")))
    with inst.engine.connect() as conn:
        everything = conn.execute(sa.text("select sum(amount) from opportunity")).scalar()
    share = dashboards.compute(inst, who, total).number
    assert share == pytest.approx(100 * 173000 / float(everything))
    nothing = dataclasses.replace(pipeline, divide_by=Measure("count", None, parse(
        "amount < 0")))
    assert dashboards.compute(inst, who, nothing).number is None
    agent = make_user(inst, "agnes", roles=["agent"])  # may not read opportunities
    assert dashboards.compute(inst, agent, total).error

    from runtime.http.web.home import caption, formatter
    assert formatter(None, total)(share) == f"{share:,.1f}%"
    assert formatter(None, nothing)(None) == "—"
    deal = inst.model.entity("opportunity")
    with make_app(inst, tmp_path).test_request_context():
        assert caption(same, deal).endswith("· sum of amount ÷ sum of amount")
        assert caption(dataclasses.replace(pipeline, op="count", divide_by=Measure()),
                       deal).endswith("· share")
    assert formatter(deal.fields["amount"], pipeline)(None) == "—"
