"""The JSON API (INTERFACES.md) through Flask's test client, on SQLite and PostgreSQL: every
route and status, filters, pagination, permissions, bodies, the OpenAPI document — and one
test over real HTTP."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
from api_support import CRM_PACK, assert_error_shape, bearer, make_app, user_with_token
from jsonschema import Draft202012Validator
from support import FIXTURES, admin_actor
from werkzeug.serving import make_server

from runtime.core.instance import Instance
from runtime.http import auth

OPENAPI_SCHEMA = FIXTURES / "openapi-3.1-schema.json"


@pytest.fixture
def crm(make_instance, pack) -> Instance:
    return make_instance(pack(CRM_PACK))


@pytest.fixture
def app(crm, tmp_path):
    return make_app(crm, tmp_path)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def manager(crm) -> dict[str, str]:
    return bearer(user_with_token(crm, "manny", roles=("manager",))[1])


@pytest.fixture
def rep(crm) -> dict[str, str]:
    return bearer(user_with_token(crm, "rita", roles=("rep",))[1])


@pytest.fixture
def other_rep(crm) -> dict[str, str]:
    return bearer(user_with_token(crm, "rick", roles=("rep",))[1])


def create(client, headers, entity: str = "company", **values):  # noqa: ANN001, ANN201
    response = client.post(f"/api/v1/{entity}", json=values, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def names(response) -> list[str]:  # noqa: ANN001
    assert response.status_code == 200, response.get_data(as_text=True)
    return [r["name"] for r in response.get_json()["data"]]


# -- create, read, list -----------------------------------------------------------------------

def test_create_then_read(client, manager):
    response = client.post("/api/v1/company", headers=manager, json={
        "name": "ACME", "city": "Leeds", "revenue": 1250.5, "employees": 12,
        "founded": "2020-01-02", "tier": "gold", "tags": ["b2b"], "secret": "s"})
    assert response.status_code == 201
    record = response.get_json()
    assert response.headers["Location"] == f"/api/v1/company/{record['id']}"
    assert record["name"] == "ACME" and record["revenue"] == "1250.50"
    assert record["employees"] == 12 and record["founded"] == "2020-01-02"
    assert record["tags"] == ["b2b"] and record["vip"] is False and record["tier"] == "gold"
    assert record["version"] == 1 and record["created_at"].endswith("Z")
    assert isinstance(record["owner"], int)
    again = client.get(f"/api/v1/company/{record['id']}", headers=manager)
    assert again.status_code == 200 and again.get_json() == record
    listed = client.get("/api/v1/company", headers=manager).get_json()
    assert listed == {"data": [record], "next_cursor": None, "prev_cursor": None}


@pytest.mark.parametrize("text", [
    "<script>alert('x')</script>",
    "Robert'); DROP TABLE company;--",
    "100% _match_ \\ back\\slash",
    "\"quoted\" & <b>bold</b> 日本語 ✓",
])
def test_html_and_sql_strings_round_trip_verbatim(client, manager, crm, text):
    record = create(client, manager, name=text, city=text, notes=text + "\nline two")
    got = client.get(f"/api/v1/company/{record['id']}", headers=manager).get_json()
    assert got["name"] == text and got["city"] == text and got["notes"] == text + "\nline two"
    create(client, manager, name="Other")
    assert names(client.get("/api/v1/company", query_string={"name": text},
                            headers=manager)) == [text]
    assert names(client.get("/api/v1/company", query_string={"city__contains": text[3:9]},
                            headers=manager)) == [text]
    assert text in names(client.get("/api/v1/company", query_string={"q": text[:6]},
                                    headers=manager))
    with crm.engine.connect() as conn:  # the table is still there
        assert conn.execute(sa.select(sa.func.count()).select_from(
            crm.schema.table("company"))).scalar_one() == 2


@pytest.fixture
def companies(client, manager) -> None:
    rows = [
        ("Alpha", "Leeds", 10, "100.00", "gold", "2001-05-01"),
        ("Beta", "York", 20, "2000.50", "silver", "2010-01-01"),
        ("Gamma", None, 30, None, "gold", None),
        ("Delta", "Leeds", None, "50", None, "1999-12-31"),
    ]
    for name, city, employees, revenue, tier, founded in rows:
        create(client, manager, name=name, city=city, employees=employees, revenue=revenue,
               tier=tier, founded=founded)


@pytest.mark.parametrize(("query", "expected"), [
    ({"city": "Leeds"}, ["Alpha", "Delta"]),
    ({"city__ne": "Leeds"}, ["Beta", "Gamma"]),
    ({"employees__gt": "10"}, ["Beta", "Gamma"]),
    ({"employees__gte": "20"}, ["Beta", "Gamma"]),
    ({"employees__lt": "30"}, ["Alpha", "Beta"]),
    ({"employees__lte": "10"}, ["Alpha"]),
    ({"revenue__gt": "99.99"}, ["Alpha", "Beta"]),
    ({"founded__lt": "2001-01-01"}, ["Delta"]),
    ({"tier__in": "gold,silver"}, ["Alpha", "Beta", "Gamma"]),
    ({"name__contains": "ta"}, ["Beta", "Delta"]),
    ({"city__isnull": "true"}, ["Gamma"]),
    ({"employees__isnull": "false"}, ["Alpha", "Beta", "Gamma"]),
    ({"tier": "gold", "city": "Leeds"}, ["Alpha"]),
    ({"q": "alp"}, ["Alpha"]),
    ({"sort": "-employees"}, ["Gamma", "Beta", "Alpha", "Delta"]),
    ({"sort": "city,-name"}, ["Gamma", "Delta", "Alpha", "Beta"]),
])
def test_filters_search_and_sort(client, manager, companies, query, expected):
    query = {"sort": "name", **query}
    got = names(client.get("/api/v1/company", query_string=query, headers=manager))
    if query["sort"] == "name":
        assert got == sorted(expected)
    elif query["sort"] == "city,-name":
        # where nulls sort is the database's choice; the rest is fixed
        assert [n for n in got if n != "Gamma"] == ["Delta", "Alpha", "Beta"]
    else:
        assert [n for n in got if n != "Delta"] == [n for n in expected if n != "Delta"]


@pytest.mark.parametrize(("query", "words"), [
    ({"nope": "1"}, "nope"),
    ({"name__like": "x"}, "__like"),
    ({"name__gt__lt": "x"}, ""),
    ({"sort": "nope"}, "nope"),
    ({"sort": "-nope"}, "nope"),
    ({"employees__gt": "many"}, "employees"),
    ({"tier__gt": "gold"}, "no order"),
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"cursor": "not-a-cursor"}, ""),
    ({"cursor": base64.urlsafe_b64encode(b'{"k": [1]}').decode()}, ""),
    ({"cursor": base64.urlsafe_b64encode(b"\xff\xfe").decode()}, ""),
])
def test_bad_list_parameters_answer_400(client, manager, companies, query, words):
    response = client.get("/api/v1/company", query_string=query, headers=manager)
    body = assert_error_shape(response, 400)
    assert words in body["error"]["message"]


def test_repeated_parameter_answers_400(client, manager):
    response = client.get("/api/v1/company?city=a&city=b", headers=manager)
    assert "__in" in assert_error_shape(response, 400)["error"]["message"]


def test_keyset_pages_cover_everything_once(client, manager):
    for number in range(23):
        create(client, manager, name=f"Company {number:02d}", employees=number % 5)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        query = {"limit": 10, "sort": "-employees,name", **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/company", query_string=query, headers=manager).get_json()
        seen += [r["name"] for r in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 23 and len(set(seen)) == 23
    expected = sorted((f"Company {n:02d}" for n in range(23)),
                      key=lambda name: (-(int(name[-2:]) % 5), name))
    assert seen == expected
    assert client.get("/api/v1/company?limit=500", headers=manager).status_code == 200


def test_tampered_cursor_answers_400(client, manager):
    for number in range(3):
        create(client, manager, name=f"C{number}")
    cursor = client.get("/api/v1/company?limit=1&sort=name",
                        headers=manager).get_json()["next_cursor"]
    assert cursor
    padded = cursor + "=" * (-len(cursor) % 4)
    raw = base64.urlsafe_b64decode(padded).decode()
    forged = base64.urlsafe_b64encode(raw.replace("C0", "C0' OR 1=1").encode()).decode()
    for bad in (forged, cursor[:-3], cursor + "x"):
        response = client.get("/api/v1/company", query_string={"cursor": bad, "sort": "name",
                                                               "limit": 1}, headers=manager)
        assert response.status_code in (200, 400)
        if response.status_code == 200:  # a cursor that still decodes only moves the start
            assert len(response.get_json()["data"]) <= 1
        else:
            assert_error_shape(response, 400)
    # a cursor for another sort order does not fit
    response = client.get("/api/v1/company", query_string={"cursor": cursor, "sort": "-city"},
                          headers=manager)
    assert_error_shape(response, 400)


# -- permissions ------------------------------------------------------------------------------

def test_unreadable_record_is_404_like_a_missing_one(client, rep, other_rep):
    mine = create(client, rep, name="Rita's")
    path = f"/api/v1/company/{mine['id']}"
    assert client.get(path, headers=rep).status_code == 200
    for method, extra in (("get", {}), ("patch", {"json": {"version": 1, "name": "x"}}),
                          ("delete", {}), ("get", {"path": path + "/timeline"}),
                          ("post", {"path": path + "/timeline", "json": {"body": "hi"}})):
        target = extra.pop("path", path)
        forged = getattr(client, method)(target, headers=other_rep, **extra)
        missing_target = target.replace(f"/{mine['id']}", "/987654")
        missing = getattr(client, method)(missing_target, headers=other_rep, **extra)
        assert_error_shape(forged, 404)
        assert_error_shape(missing, 404)
    assert names(client.get("/api/v1/company", headers=other_rep)) == []
    assert client.get(path, headers=rep).get_json()["name"] == "Rita's"


def test_hidden_fields_are_invisible_and_unfilterable(client, manager, rep, crm):
    record = create(client, rep, name="Mine")
    assert "secret" not in record
    patched = client.patch(f"/api/v1/company/{record['id']}", headers=manager,
                           json={"version": 1, "secret": "classified"}).get_json()
    assert patched["secret"] == "classified"
    got = client.get(f"/api/v1/company/{record['id']}", headers=rep).get_json()
    assert "secret" not in got and "classified" not in json.dumps(got)
    for query in ({"secret": "classified"}, {"secret__isnull": "false"}, {"sort": "secret"}):
        body = assert_error_shape(client.get("/api/v1/company", query_string=query,
                                             headers=rep), 400)
        assert "classified" not in body["error"]["message"]
    assert client.get("/api/v1/company?secret=classified", headers=manager).status_code == 200


def test_entity_without_access(client, rep, manager):
    memo = create(client, manager, "memo", text="for managers")
    assert_error_shape(client.post("/api/v1/memo", json={"text": "x"}, headers=rep), 403)
    assert_error_shape(client.get(f"/api/v1/memo/{memo['id']}", headers=rep), 404)
    body = assert_error_shape(client.get("/api/v1/memo", headers=rep), 403)
    assert "Memos" in body["error"]["message"]


def test_forbidden_delete_and_update(client, rep, other_rep, manager):
    mine = create(client, rep, name="Mine")
    assert_error_shape(client.delete(f"/api/v1/company/{mine['id']}", headers=rep), 403)
    theirs = create(client, manager, name="Theirs", )
    deal = create(client, rep, "deal", title="D", company=mine["id"])
    # a rep may read every deal, but not change its company to one they cannot see
    response = client.patch(f"/api/v1/deal/{deal['id']}", headers=rep,
                            json={"version": 1, "company": theirs["id"]})
    assert response.status_code in (403, 404, 422)


# -- update and delete ------------------------------------------------------------------------

def test_patch_needs_the_version_and_catches_stale_ones(client, manager):
    record = create(client, manager, name="ACME", employees=5)
    path = f"/api/v1/company/{record['id']}"
    body = assert_error_shape(client.patch(path, json={"name": "x"}, headers=manager), 422,
                              "errors")
    assert "version" in body["errors"]
    for bad in ("1", True, 0, -1, 1.5, None):
        response = client.patch(path, json={"version": bad, "name": "x"}, headers=manager)
        assert "version" in assert_error_shape(response, 422, "errors")["errors"]
    first = client.patch(path, json={"version": 1, "employees": 6}, headers=manager)
    assert first.status_code == 200
    assert first.get_json()["version"] == 2 and first.get_json()["employees"] == 6
    stale = client.patch(path, json={"version": 1, "employees": 7}, headers=manager)
    body = assert_error_shape(stale, 409, "current")
    assert body["current"]["version"] == 2 and body["current"]["employees"] == 6
    assert "reload" in body["error"]["message"]
    whole = client.get(path, headers=manager).get_json()
    whole["city"] = "Hull"
    again = client.patch(path, json=whole, headers=manager)  # a record sent back as a whole
    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.get_json()["city"] == "Hull" and again.get_json()["version"] == 3


@pytest.mark.parametrize(("values", "field"), [
    ({"nope": 1}, "nope"),
    ({"employees": "many"}, "employees"),
    ({"tier": "platinum"}, "tier"),
    ({"founded": "yesterday"}, "founded"),
    ({"revenue": -5}, "revenue"),
    ({"name": ""}, "name"),
    ({"tags": ["b2b", "b2x"]}, "tags"),
    ({"id": 999}, "id"),
    ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
])
def test_invalid_values_answer_422_by_field(client, manager, values, field):
    created = client.post("/api/v1/company", headers=manager, json={"name": "N", **values})
    assert field in assert_error_shape(created, 422, "errors")["errors"]
    record = create(client, manager, name="ACME")
    patched = client.patch(f"/api/v1/company/{record['id']}", headers=manager,
                           json={"version": 1, **values})
    assert field in assert_error_shape(patched, 422, "errors")["errors"]


def test_delete_and_restrict(client, manager):
    company = create(client, manager, name="ACME")
    deal = create(client, manager, "deal", title="Big", company=company["id"], amount="10")
    restricted = client.delete(f"/api/v1/company/{company['id']}", headers=manager)
    assert "deal" in assert_error_shape(restricted, 409)["error"]["message"].lower()
    gone = client.delete(f"/api/v1/deal/{deal['id']}", headers=manager)
    assert gone.status_code == 204 and gone.get_data() == b""
    assert client.delete(f"/api/v1/company/{company['id']}", headers=manager).status_code == 204
    assert_error_shape(client.get(f"/api/v1/company/{company['id']}", headers=manager), 404)
    assert_error_shape(client.delete(f"/api/v1/company/{company['id']}", headers=manager), 404)


# -- bodies, addresses ------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    b"", b"   ", b"{nope", b"[1, 2]", b'"text"', b"null", b"42", b'{"name": NaN}',
    b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000,
])
def test_bad_bodies_answer_400(client, manager, body):
    for method, path in (("post", "/api/v1/company"), ("patch", "/api/v1/company/1"),
                         ("post", "/api/v1/company/1/timeline")):
        response = getattr(client, method)(path, data=body, headers=manager,
                                           content_type="application/json")
        assert_error_shape(response, 400)


def test_body_over_the_limit_answers_413(client, manager):
    big = json.dumps({"name": "x" * (2 * 1024 * 1024)})
    assert_error_shape(client.post("/api/v1/company", data=big, headers=manager,
                                   content_type="application/json"), 413)


@pytest.mark.parametrize("path", [
    "/api/v1/nothing", "/api/v1/nothing/1", "/api/v1/nothing/1/timeline",
    "/api/v1/company/0", "/api/v1/company/-1", "/api/v1/company/abc",
    "/api/v1/company/99999999999999999999999", "/api/v1/company/9223372036854775807",
    "/api/v1/company/1/nothing", "/api/v1", "/api/v2/company",
])
def test_unknown_entities_and_ids_answer_404(client, manager, path):
    assert_error_shape(client.get(path, headers=manager), 404)


def test_unknown_entity_on_writes(client, manager):
    assert_error_shape(client.post("/api/v1/nothing", json={}, headers=manager), 404)
    assert_error_shape(client.patch("/api/v1/nothing/1", json={"version": 1},
                                    headers=manager), 404)
    assert_error_shape(client.delete("/api/v1/nothing/1", headers=manager), 404)


def test_methods_not_allowed(client, manager):
    for method, path in (("put", "/api/v1/company/1"), ("delete", "/api/v1/company"),
                         ("patch", "/api/v1/company"), ("post", "/api/v1/me"),
                         ("delete", "/api/v1/openapi.json"),
                         ("delete", "/api/v1/company/1/timeline")):
        assert_error_shape(getattr(client, method)(path, headers=manager), 405)


def test_internal_errors_in_the_api_do_not_leak(client, manager, monkeypatch):
    from runtime.write import records

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise KeyError("column secret_internal_name")

    monkeypatch.setattr(records, "get", broken)
    response = client.get("/api/v1/company/1", headers=manager)
    assert_error_shape(response, 500)
    assert "secret_internal_name" not in response.get_data(as_text=True)


def test_api_is_exempt_from_csrf_but_needs_the_token(client, manager):
    assert client.post("/api/v1/company", json={"name": "No CSRF"},
                       headers=manager).status_code == 201
    assert_error_shape(client.post("/api/v1/company", json={"name": "x"}), 401)


# -- timeline, me -----------------------------------------------------------------------------

def test_timeline_log_and_read(client, manager, clock):
    record = create(client, manager, name="ACME")
    path = f"/api/v1/company/{record['id']}/timeline"
    note = client.post(path, json={"body": "<b>Called</b> & left a message"}, headers=manager)
    assert note.status_code == 201
    assert note.get_json()["kind"] == "note"
    assert note.get_json()["body"] == "<b>Called</b> & left a message"
    clock.advance(minutes=5)
    call = client.post(path, headers=manager, json={
        "kind": "call", "body": "Follow up on pricing", "follow_up_on": "2026-04-01",
        "data": {"minutes": 12}})
    assert call.status_code == 201
    assert call.get_json()["follow_up_on"] == "2026-04-01"
    entries = client.get(path, headers=manager).get_json()["data"]
    logged = [e for e in entries if e["kind"] in ("note", "call")]
    assert [e["kind"] for e in logged] == ["call", "note"]  # newest first
    assert client.get(path + "?limit=1", headers=manager).get_json()["data"][0]["kind"] == \
        "call"
    after = client.get(f"/api/v1/company/{record['id']}", headers=manager).get_json()
    assert after["last_activity_at"] is not None


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "tweet", "body": "x"}, "kind"),
    ({"kind": "call", "body": "x", "follow_up_on": "someday"}, "follow_up_on"),
    ({"body": "x", "data": [1]}, "data"),
    ({"body": "x", "mood": "happy"}, "mood"),
    ({"kind": "note"}, "body"),
])
def test_timeline_invalid_entries_answer_422(client, manager, body, field):
    record = create(client, manager, name="ACME")
    response = client.post(f"/api/v1/company/{record['id']}/timeline", json=body,
                           headers=manager)
    assert field in assert_error_shape(response, 422, "errors")["errors"]


@pytest.mark.parametrize("limit", ["0", "501", "x"])
def test_timeline_bad_limit_answers_400(client, manager, limit):
    record = create(client, manager, name="ACME")
    response = client.get(f"/api/v1/company/{record['id']}/timeline?limit={limit}",
                          headers=manager)
    assert_error_shape(response, 400)


def test_me(client, crm):
    anna, token = user_with_token(crm, "anna", roles=("rep",), email="anna@example.com")
    body = client.get("/api/v1/me", headers=bearer(token)).get_json()
    assert body["id"] == anna.user_id and body["username"] == "anna"
    assert body["email"] == "anna@example.com" and body["roles"] == ["rep"]
    assert body["is_admin"] is False and body["language"] == "en"
    admin_token = auth.create_token(crm, admin_actor(crm).user_id)
    assert client.get("/api/v1/me", headers=bearer(admin_token)).get_json()["is_admin"] is True


# -- OpenAPI ----------------------------------------------------------------------------------

def openapi_validator() -> Draft202012Validator:
    """The official OpenAPI 3.1 schema (spec.openapis.org/oas/3.1/schema/2022-10-07, as
    shipped in openapi-spec-validator), kept in tests/fixtures so the check runs offline."""
    return Draft202012Validator(json.loads(OPENAPI_SCHEMA.read_text()))


def component_validator(document: dict, name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                 "components": document["components"]})


@pytest.mark.parametrize("which", ["crm", "spec"])
def test_openapi_document_is_valid_and_covers_every_entity(make_instance, pack, tmp_path,
                                                           which):
    inst = make_instance(pack(CRM_PACK)) if which == "crm" else make_instance(
        [FIXTURES / "core", FIXTURES / "spec"])
    client = make_app(inst, tmp_path).test_client()
    token = auth.create_token(inst, admin_actor(inst).user_id)
    response = client.get("/api/v1/openapi.json", headers=bearer(token))
    assert response.status_code == 200
    document = response.get_json()
    errors = sorted(openapi_validator().iter_errors(document), key=lambda e: e.path)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": "/api/v1"}]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["security"] == [{"bearerAuth": []}]
    for name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema), name
    operations = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                operations.add(operation["operationId"])
                assert "401" in operation["responses"], (path, method)
    assert len(operations) == sum(len([m for m in item if m != "parameters"])
                                  for item in document["paths"].values())  # ids are unique
    for entity in inst.model.entities.values():
        name = entity.name
        schema = document["components"]["schemas"][name]
        assert set(schema["properties"]) == set(entity.fields)
        for suffix in ("create", "update", "page"):
            assert f"{name}.{suffix}" in document["components"]["schemas"]
        assert set(document["paths"][f"/{name}"]) == {"get", "post"}
        assert set(document["paths"][f"/{name}/{{id}}"]) == {"parameters", "get", "patch",
                                                              "delete"}
        assert set(document["paths"][f"/{name}/{{id}}/timeline"]) == {"parameters", "get",
                                                                       "post"}
    assert {"/me", "/openapi.json"} <= set(document["paths"])


def test_openapi_field_types(client, manager):
    document = client.get("/api/v1/openapi.json", headers=manager).get_json()
    props = document["components"]["schemas"]["company"]["properties"]
    assert props["name"]["type"] == ["string", "null"] and props["name"]["maxLength"] == 255
    assert props["employees"]["type"] == ["integer", "null"]
    assert props["revenue"]["type"] == ["string", "null"]
    assert props["revenue"]["format"] == "decimal"
    assert props["founded"]["format"] == "date"
    assert props["created_at"]["format"] == "date-time" and props["created_at"]["readOnly"]
    assert props["tier"]["enum"] == ["gold", "silver", "bronze", None]
    assert props["tags"]["items"]["enum"] == ["b2b", "b2c"]
    assert props["vip"]["type"] == ["boolean", "null"]
    assert props["id"] == {"type": "integer", "minimum": 1, "title": "ID", "readOnly": True}
    write = document["components"]["schemas"]["company.create"]
    assert write["required"] == ["name"] and write["additionalProperties"] is False
    assert "created_at" not in write["properties"] and "owner" in write["properties"]
    assert document["components"]["schemas"]["company.update"]["required"] == ["version"]
    deal = document["components"]["schemas"]["deal"]["properties"]["company"]
    assert deal["type"] == ["integer", "null"] and "company" in deal["description"]


def test_records_match_their_openapi_schema(client, manager):
    document = client.get("/api/v1/openapi.json", headers=manager).get_json()
    values = {"name": "ACME", "city": "Leeds", "revenue": "12.5", "employees": 3,
              "founded": "2020-02-29", "tier": "gold", "tags": ["b2b", "b2c"], "vip": True}
    component_validator(document, "company.create").validate(values)
    record = create(client, manager, **values)
    component_validator(document, "company").validate(record)
    page = client.get("/api/v1/company", headers=manager).get_json()
    component_validator(document, "company.page").validate(page)
    deal = create(client, manager, "deal", title="D", company=record["id"])
    component_validator(document, "deal").validate(deal)
    note = client.post(f"/api/v1/company/{record['id']}/timeline", json={"body": "hi"},
                       headers=manager).get_json()
    component_validator(document, "TimelineEntry").validate(note)
    client.patch(f"/api/v1/company/{record['id']}", json={"version": 1, "city": "York"},
                 headers=manager)
    entries = client.get(f"/api/v1/company/{record['id']}/timeline", headers=manager)
    assert {e["source"] for e in entries.get_json()["data"]} >= {"timeline", "audit"}
    for entry in entries.get_json()["data"]:
        component_validator(document, "TimelineEntry").validate(entry)
    me = client.get("/api/v1/me", headers=manager).get_json()
    component_validator(document, "Me").validate(me)


def test_openapi_needs_the_token(client):
    assert_error_shape(client.get("/api/v1/openapi.json"), 401)


# -- over real HTTP ---------------------------------------------------------------------------

def test_real_server_over_http(app, crm, tmp_path: Path):
    _, token = user_with_token(crm, "manny", roles=("manager",))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}/api/v1"

    def call(method: str, path: str, body: dict | None = None, token: str | None = token):
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(base + path, data=data, headers=headers,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, dict(response.headers), json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, dict(exc.headers), json.loads(exc.read())
            finally:
                exc.close()

    try:
        status, _, me = call("GET", "/me")
        assert status == 200 and me["username"] == "manny"
        status, headers, record = call("POST", "/company", {"name": "Über <GmbH>"})
        assert status == 201 and record["name"] == "Über <GmbH>"
        assert headers["Location"].endswith(f"/api/v1/company/{record['id']}")
        status, _, page = call("GET", "/company?name__contains=GmbH")
        assert status == 200 and [r["id"] for r in page["data"]] == [record["id"]]
        status, _, changed = call("PATCH", f"/company/{record['id']}",
                                  {"version": 1, "city": "Köln"})
        assert status == 200 and changed["version"] == 2
        status, _, error = call("PATCH", f"/company/{record['id']}", {"version": 1})
        assert status == 409 and set(error) == {"error", "current"}
        status, _, error = call("GET", "/company/424242")
        assert status == 404 and error["error"]["status"] == 404
        status, headers, error = call("GET", "/me", token=None)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        status, _, nothing = call("DELETE", f"/company/{record['id']}")
        assert status == 204 and nothing is None
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_other_api_modules_document_their_routes(crm, tmp_path, monkeypatch):
    import sys
    import types

    import runtime.http.api
    from runtime.core import caches

    fake = types.ModuleType("runtime.http.api.extra_resource")

    def register(bp) -> None:  # noqa: ANN001
        bp.add_url_rule("/extras", "extras", lambda: {"data": []}, methods=["GET"])

    fake.register = register  # type: ignore[attr-defined]
    fake.openapi = lambda model: {  # type: ignore[attr-defined]
        "paths": {"/extras": {"get": {"operationId": "extras", "responses": {
            "200": {"description": "ok"},
            "401": {"$ref": "#/components/responses/Unauthorized"}}}}},
        "schemas": {"Extra": {"type": "object"}}}
    monkeypatch.setitem(sys.modules, "runtime.http.api.extra_resource", fake)
    monkeypatch.setattr(runtime.http.api, "MODULES", [*runtime.http.api.MODULES, "extra_resource"])
    # a cache of its own: the document with the extra module must not be served elsewhere
    monkeypatch.setattr(caches, "OPENAPI", caches.Memo("openapi (this test)"))
    client = make_app(crm, tmp_path).test_client()
    token = bearer(auth.create_token(crm, admin_actor(crm).user_id))
    assert client.get("/api/v1/extras", headers=token).get_json() == {"data": []}
    document = client.get("/api/v1/openapi.json", headers=token).get_json()
    assert "/extras" in document["paths"] and "Extra" in document["components"]["schemas"]
    assert not list(openapi_validator().iter_errors(document))
