"""The one error handler: this file locks the JSON error shape for every status the app
answers with, and checks that no answer — JSON or HTML — ever carries a stack trace."""

from __future__ import annotations

import logging

import pytest
from api_support import CRM_PACK, assert_error_shape, bearer, make_app, user_with_token

from runtime.core import errors
from runtime.core.instance import Instance


class Boom(Exception):
    pass


SECRET_DETAIL = "password=hunter2 at /srv/secret/path.py"

RAISE = {
    "bad": lambda: errors.BadRequest("Unknown filter field 'x'; filter on one of: a, b."),
    "forbidden": lambda: errors.Forbidden("Your roles do not allow deleting companies."),
    "missing": lambda: errors.NotFound("There is no company 7; check the id."),
    "conflict": lambda: errors.Conflict("A deal links to this company; delete it first."),
    "stale": lambda: errors.StaleVersion({"id": 7, "version": 3, "name": "ACME"}),
    "invalid": lambda: errors.ValidationFailed({"name": ["is required"],
                                                "_record": ["Mortgage offers start at 10,000."]}),
    "crash": lambda: Boom(SECRET_DETAIL),
    "zero": lambda: ZeroDivisionError(SECRET_DETAIL),
}


@pytest.fixture
def crm(make_instance, pack) -> Instance:
    return make_instance(pack(CRM_PACK))


@pytest.fixture
def app(crm, tmp_path):
    application = make_app(crm, tmp_path)

    def raiser(kind: str):  # noqa: ANN202
        raise RAISE[kind]()

    application.add_url_rule("/api/test/<kind>", "api_raise", raiser)
    application.add_url_rule("/page/<kind>", "page_raise", raiser)
    return application


@pytest.fixture
def token(crm) -> str:
    return user_with_token(crm, "manny", roles=("manager",))[1]


@pytest.mark.parametrize(("kind", "status", "extra"), [
    ("bad", 400, ()),
    ("forbidden", 403, ()),
    ("missing", 404, ()),
    ("conflict", 409, ()),
    ("stale", 409, ("current",)),
    ("invalid", 422, ("errors",)),
    ("crash", 500, ()),
    ("zero", 500, ()),
])
def test_record_errors_have_the_one_shape(app, kind, status, extra):
    response = app.test_client().get(f"/api/test/{kind}")
    body = assert_error_shape(response, status, *extra)
    if kind == "invalid":
        assert body["errors"] == {"name": ["is required"],
                                  "_record": ["Mortgage offers start at 10,000."]}
    if kind == "stale":
        assert body["current"]["version"] == 3
    if status == 500:
        assert SECRET_DETAIL not in response.get_data(as_text=True)
        assert "Boom" not in response.get_data(as_text=True)
        assert "reference" in body["error"]["message"]


def test_every_status_from_the_real_api_has_the_one_shape(app, crm, token):
    client = app.test_client()
    auth = bearer(token)
    # 400: malformed JSON
    assert_error_shape(client.post("/api/v1/company", data="{nope", headers=auth), 400)
    # 401: no token
    assert_error_shape(client.get("/api/v1/company"), 401)
    # 404: unknown entity, unknown path, unknown record
    assert_error_shape(client.get("/api/v1/nothing", headers=auth), 404)
    assert_error_shape(client.get("/api/v1/company/1/x/y", headers=auth), 404)
    assert_error_shape(client.get("/api/v1/company/424242", headers=auth), 404)
    # 405: a method the address does not take, with the Allow header
    response = client.put("/api/v1/company", headers=auth, json={})
    assert_error_shape(response, 405)
    assert "POST" in response.headers["Allow"]
    # 413: a body past MAX_CONTENT_LENGTH
    big = b'{"name": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    response = client.post("/api/v1/company", data=big, headers=auth,
                           content_type="application/json")
    body = assert_error_shape(response, 413)
    assert "2 MB" in body["error"]["message"]
    # 422: values that cannot be saved
    body = assert_error_shape(client.post("/api/v1/company", json={"name": ""}, headers=auth),
                              422, "errors")
    assert "name" in body["errors"]


def test_403_and_409_from_the_real_api(app, crm, token):
    client = app.test_client()
    rep_token = user_with_token(crm, "rita", roles=("rep",))[1]
    company = client.post("/api/v1/company", json={"name": "Mine"},
                          headers=bearer(rep_token)).get_json()
    assert_error_shape(client.delete(f"/api/v1/company/{company['id']}",
                                     headers=bearer(rep_token)), 403)
    client.post("/api/v1/deal", json={"title": "D", "company": company["id"]},
                headers=bearer(token))
    assert_error_shape(client.delete(f"/api/v1/company/{company['id']}", headers=bearer(token)),
                       409)


def test_internal_error_is_logged_with_its_reference(app, caplog):
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/api/test/crash")
    message = response.get_json()["error"]["message"]
    reference = message.split("reference ")[1].split(".")[0]
    assert any(reference in r.getMessage() for r in caplog.records)
    assert any(r.exc_info and r.exc_info[0] is Boom for r in caplog.records)


def test_json_when_the_client_asks_for_it(app):
    client = app.test_client()
    response = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert_error_shape(response, 404)
    response = client.get("/page/invalid", headers={"Accept": "application/json"})
    assert_error_shape(response, 422, "errors")


@pytest.mark.parametrize(("path", "status", "words"), [
    ("/no/such/page", 404, "nothing at this address"),
    ("/page/forbidden", 403, "do not allow deleting"),
    ("/page/invalid", 422, "is required"),
    ("/page/crash", 500, "reference"),
])
def test_html_for_browsers_without_a_stack_trace(app, path, status, words):
    response = app.test_client().get(path, headers={"Accept": "text/html,*/*;q=0.8"})
    text = response.get_data(as_text=True)
    assert response.status_code == status and response.mimetype == "text/html"
    assert words in text and "<h1>" in text
    assert SECRET_DETAIL not in text and "Traceback" not in text


def test_html_error_page_escapes_messages(app):
    RAISE["html"] = lambda: errors.BadRequest("<script>alert(1)</script>")
    try:
        text = app.test_client().get("/page/html").get_data(as_text=True)
    finally:
        del RAISE["html"]
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text


def test_broken_error_template_still_answers(app, monkeypatch):
    import runtime.http.error_handler as handler

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("template exploded")

    monkeypatch.setattr(handler, "render_template", broken)
    response = app.test_client().get("/page/missing")
    assert response.status_code == 404 and "There is no company 7" in response.get_data(
        as_text=True)
    assert "exploded" not in response.get_data(as_text=True)


def test_trailing_slash_redirect_is_not_an_error(app):
    app.add_url_rule("/folder/", "folder", lambda: "ok")
    response = app.test_client().get("/folder")
    assert response.status_code == 308
