"""Dashboards over the API (`GET /api/v1/dashboards[/<name>]`) and on the home page, on SQLite
and PostgreSQL: each reader's row filters, 404 for a dashboard that is not theirs, JSON
numbers that follow the widget's definition, and the routes in the OpenAPI document."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from api_support import CRM_PACK, assert_error_shape, bearer, user_with_token
from jsonschema import Draft202012Validator
from support import admin_actor, insert_user
from web_support import make_app, seed, sign_in

from builder.expressions import parse
from builder.model import Measure
from runtime.http import auth
from runtime.http.api.dashboards import widget_json
from runtime.read import dashboards
from runtime.write import records


@pytest.fixture
def crm(spec_instance):
    inst = spec_instance
    seed(inst, admin_actor(inst))  # five leads (three from the web), orders, opportunities
    agnes = insert_user(inst, "agnes", roles=["agent"])  # reads her own leads and unowned ones
    sam = insert_user(inst, "sam", roles=["sales_manager"])  # reads every lead
    nora = insert_user(inst, "nora", roles=[])  # no dashboard is hers
    records.create(inst, admin_actor(inst), "lead", {"name": "Agnes's lead", "source": "fair",
                                                     "owner": agnes.user_id})
    return inst, {who.username: who for who in (admin_actor(inst), agnes, sam, nora)}


@pytest.fixture
def api(crm, tmp_path):
    inst, people = crm
    client = make_app(inst, tmp_path).test_client()
    tokens = {name: bearer(auth.create_token(inst, who.user_id))
              for name, who in people.items()}

    def get(path: str, as_user: str):  # noqa: ANN202
        return client.get(f"/api/v1{path}", headers=tokens[as_user])

    return get


def widgets(answer) -> dict[str, dict]:  # noqa: ANN001
    body = answer.get_json()
    assert answer.status_code == 200, body
    return {w["label"]: w for w in body["widgets"]}


def test_each_reader_gets_the_numbers_of_their_row_filter(api) -> None:
    agent = widgets(api("/dashboards/sales", "agnes"))
    manager = widgets(api("/dashboards/sales", "sam"))
    assert agent["Leads by source"]["groups"] == [
        {"key": "fair", "label": "Trade fair", "value": 1, "filters": {"source": "fair"}}]
    groups = {g["key"]: g for g in manager["Leads by source"]["groups"]}
    assert {k: g["value"] for k, g in groups.items()} == {"web": 3, "fair": 2, "referral": 1}
    assert groups["web"]["label"] == "Website" and groups["web"]["filters"] == {"source": "web"}
    for who in (agent, manager):  # only admins read opportunities
        pipeline = who["Open pipeline"]
        assert pipeline["error"] and "value" not in pipeline
    assert agent["My follow-ups due"]["rows"] == []  # `owner == user.id`: she has none due


def test_values_are_json_numbers_or_exact_decimal_strings(api) -> None:
    board = widgets(api("/dashboards/sales", "admin"))
    pipeline = board["Open pipeline"]
    assert pipeline == {**pipeline, "type": "number", "entity": "opportunity", "op": "sum",
                        "field": "amount", "format": "money", "error": None}
    assert pipeline["value"] == "173000.00"  # money: an exact string, as in records
    top = board["Top customers by profit"]["groups"]
    assert [(g["label"], g["value"]) for g in top] == [("Acme Holdings", "910.00"),
                                                       ("Globex Ltd", "190.00")]
    assert all(isinstance(g["key"], int) for g in top)  # the linked account's id
    months = board["Orders by month"]["groups"]
    assert all(len(g["key"]) == 7 and g["filters"] == {} for g in months)  # "2026-03"
    assert sum(Decimal(g["value"]) for g in months) == Decimal("4770")
    rows = board["My follow-ups due"]["rows"]
    assert len(rows) == 5 and {"id", "name", "next_follow_up"} <= set(rows[0])
    assert isinstance(rows[0]["next_follow_up"], str)  # an ISO date, as in records


def test_counts_ratios_and_averages_have_one_type_on_every_database(crm) -> None:
    inst, people = crm
    who = people["admin"]
    pipeline = inst.model.dashboards["sales"].widgets[0]
    count = dataclasses.replace(pipeline, op="count", field=None, format=None)
    share = dataclasses.replace(pipeline, format="percent", divide_by=Measure(
        "sum", "amount", parse("amount > 0")))
    average = dataclasses.replace(pipeline, op="avg", format=None)
    values = {name: widget_json(dashboards.compute(inst, who, widget), "en")["value"]
              for name, widget in (("count", count), ("share", share), ("avg", average))}
    assert values["count"] == 2  # a JSON number
    assert isinstance(values["share"], str)
    assert Decimal(values["share"]).quantize(Decimal("0.01")) == Decimal("95.05")
    assert values["avg"] == "86500"  # (48000 + 125000) / 2, without trailing zeros


def test_unknown_and_hidden_dashboards_answer_404(api) -> None:
    for path, user in (("/dashboards/nope", "admin"), ("/dashboards/sales", "nora")):
        body = assert_error_shape(api(path, user), 404)
        assert "GET /api/v1/dashboards" in body["error"]["message"]
    assert api("/dashboards", "nora").get_json() == {"data": []}
    assert api("/dashboards", "agnes").get_json() == {"data": [
        {"name": "sales", "label": "Sales", "description": None}]}


def test_the_openapi_document_lists_the_routes_and_the_answer_fits(api) -> None:
    document = api("/openapi.json", "admin").get_json()
    assert set(document["paths"]["/dashboards"]) == {"get"}
    operation = document["paths"]["/dashboards/{name}"]["get"]
    assert operation["operationId"] == "get_dashboard"
    assert {"200", "401", "404"} <= set(operation["responses"])
    for user in ("admin", "agnes"):
        answer = api("/dashboards/sales", user).get_json()
        schema = Draft202012Validator({"$ref": "#/components/schemas/Dashboard",
                                       "components": document["components"]})
        assert not list(schema.iter_errors(answer)), user


def test_the_home_page_draws_each_readers_dashboards(crm, tmp_path) -> None:
    inst, people = crm
    app = make_app(inst, tmp_path)
    pages = {}
    for name in ("agnes", "sam", "nora"):
        client = app.test_client()
        sign_in(client, inst, people[name])
        pages[name] = (client.get("/").get_data(as_text=True),
                       client.get("/dashboards/sales"))
    agent_home, agent_board = pages["agnes"]
    assert "Leads by source" in agent_home and "Trade fair" in agent_home
    assert "Website" not in agent_home  # the web leads are not hers
    assert agent_board.status_code == 200 and "Leads by source" in agent_board.get_data(
        as_text=True)
    assert "Website" in pages["sam"][0] and 'href="/e/lead?source=web"' in pages["sam"][0]
    assert "Leads by source" not in pages["nora"][0] and pages["nora"][1].status_code == 404


def test_group_labels_name_only_the_linked_records_the_reader_may_read(make_instance, pack,
                                                                        tmp_path) -> None:
    """A table grouped by a link names each group by its record's title — a record the reader
    may not read shows as "#id", its title is not given away by the dashboard."""
    inst = make_instance(pack({**CRM_PACK, "dashboards/deals.yaml": """
        dashboard: deals
        label: Deals
        roles: [rep, manager]
        widgets:
          - {type: table, label: Deals by company, entity: deal, group_by: company, op: sum,
             field: amount}
    """}))
    rita, rita_token = user_with_token(inst, "rita", roles=("rep",))
    _, manny_token = user_with_token(inst, "manny", roles=("manager",))
    admin = admin_actor(inst)
    mine = records.create(inst, admin, "company", {"name": "Rita's Co", "owner": rita.user_id})
    other = records.create(inst, admin, "company", {"name": "Secret Co"})
    for company, amount in ((mine, "100"), (other, "250")):
        records.create(inst, admin, "deal", {"title": "D", "company": company["id"],
                                             "amount": amount})
    client = make_app(inst, tmp_path).test_client()

    def labels(token: str) -> dict[int, tuple[str, str]]:
        answer = client.get("/api/v1/dashboards/deals", headers=bearer(token))
        (widget,) = answer.get_json()["widgets"]
        return {g["key"]: (g["label"], g["value"]) for g in widget["groups"]}

    assert labels(manny_token) == {mine["id"]: ("Rita's Co", "100.00"),
                                   other["id"]: ("Secret Co", "250.00")}
    assert labels(rita_token) == {mine["id"]: ("Rita's Co", "100.00"),
                                  other["id"]: (f"#{other['id']}", "250.00")}
