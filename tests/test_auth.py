"""runtime.http.auth: passwords, actors, API tokens (hashed at rest), web sessions with CSRF."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from api_support import (
    CRM_PACK,
    SECRET,
    assert_error_shape,
    bearer,
    csrf_token,
    make_app,
    user_with_token,
)
from support import FIXTURES, insert_team

from runtime.core.instance import Instance
from runtime.http import auth
from runtime.http.app import create_app, load_or_create_secret_key


@pytest.fixture
def crm(make_instance, pack) -> Instance:
    return make_instance(pack(CRM_PACK))


def app_with_private_page(crm: Instance, tmp_path: Path, **config: str):  # noqa: ANN201
    application = make_app(crm, tmp_path, **config)

    @application.get("/private")
    @auth.login_required
    def private():  # noqa: ANN202
        return f"hello {auth.current_actor().username}"

    return application


@pytest.fixture
def app(crm, tmp_path):
    return app_with_private_page(crm, tmp_path)


def deactivate(inst: Instance, user_id: int) -> None:
    users = inst.schema.table("user")
    with inst.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == user_id).values(active=False))


# -- users and actors -------------------------------------------------------------------------

def test_authenticate_checks_password_and_activity(crm):
    anna, _ = user_with_token(crm, "anna", roles=("rep",), password="correct horse")
    actor = auth.authenticate(crm, "anna", "correct horse")
    assert actor is not None and actor.user_id == anna.user_id
    assert actor.roles == frozenset({"rep"}) and not actor.is_admin
    assert auth.authenticate(crm, "anna", "wrong") is None
    assert auth.authenticate(crm, "nobody", "correct horse") is None
    assert auth.authenticate(crm, "anna", "") is None
    deactivate(crm, anna.user_id)
    assert auth.authenticate(crm, "anna", "correct horse") is None


def test_user_without_password_cannot_sign_in(crm):
    user_with_token(crm, "bob")
    assert auth.authenticate(crm, "bob", "") is None
    assert auth.authenticate(crm, "bob", "anything") is None


def test_password_is_stored_as_argon2(crm):
    anna, _ = user_with_token(crm, "anna", password="s3cret pass")
    users = crm.schema.table("user")
    with crm.engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.password_hash).where(
            users.c.id == anna.user_id)).scalar_one()
    assert stored.startswith("$argon2id$") and "s3cret" not in stored


def test_actor_for_user_carries_roles_team_language_and_extra_fields(make_instance):
    inst = make_instance([FIXTURES / "core", FIXTURES / "spec"])  # extends user with region
    team = insert_team(inst, "North")
    anna, _ = user_with_token(inst, "anna", roles=("agent", "sales_manager"), team=team,
                              region="north")
    users = inst.schema.table("user")
    with inst.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == anna.user_id).values(language="es"))
    with inst.engine.connect() as conn:
        actor = auth.actor_for_user(inst, conn, anna.user_id)
        admin_id = conn.execute(sa.select(users.c.id).where(users.c.username == "admin")
                                ).scalar_one()
        admin = auth.actor_for_user(inst, conn, admin_id)
        with pytest.raises(LookupError):
            auth.actor_for_user(inst, conn, 999_999)
    assert actor.username == "anna" and actor.team == team
    assert actor.roles == frozenset({"agent", "sales_manager"})
    assert actor.language == "es" and not actor.is_admin and not actor.system
    assert dict(actor.fields)["region"] == "north"
    assert admin.is_admin and admin.language == "en"


# -- API tokens -------------------------------------------------------------------------------

def test_tokens_are_hashed_at_rest(crm):
    anna, token = user_with_token(crm, "anna")
    tokens = crm.schema.system("token")
    with crm.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(tokens))]
    assert len(rows) == 1
    row = rows[0]
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(value) for value in row.values())
    assert row["user_id"] == anna.user_id and row["label"] == "anna's test token"
    assert auth.actor_for_token(crm, token).user_id == anna.user_id
    assert auth.actor_for_token(crm, row["token_hash"]) is None  # the hash is not a token


def test_each_token_is_new_and_revocable(crm):
    anna, first = user_with_token(crm, "anna")
    second = auth.create_token(crm, anna.user_id)
    assert first != second and len(first) > 40
    assert auth.revoke_token(crm, first)
    assert not auth.revoke_token(crm, first)
    assert auth.actor_for_token(crm, first) is None
    assert auth.actor_for_token(crm, second) is not None
    with pytest.raises(LookupError):
        auth.create_token(crm, 999_999)


def test_token_use_is_recorded(crm, clock):
    _, token = user_with_token(crm, "anna")
    tokens = crm.schema.system("token")
    auth.actor_for_token(crm, token)
    with crm.engine.connect() as conn:
        assert conn.execute(sa.select(tokens.c.last_used_at)).scalar_one() == clock()


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Bearer ", "Basic YW5uYTpwYXNz", "Token abc", "Bearer not-a-token",
    "Bearer " + "x" * 5000,
])
def test_api_refuses_missing_or_bad_token(app, crm, header):
    user_with_token(crm, "anna")
    headers = {"Authorization": header} if header is not None else {}
    response = app.test_client().get("/api/v1/me", headers=headers)
    assert_error_shape(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_api_accepts_a_good_token(app, crm):
    anna, token = user_with_token(crm, "anna", roles=("rep",))
    response = app.test_client().get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == anna.user_id and body["username"] == "anna"
    assert body["roles"] == ["rep"] and body["is_admin"] is False


def test_token_of_inactive_user_is_refused(app, crm):
    anna, token = user_with_token(crm, "anna")
    deactivate(crm, anna.user_id)
    response = app.test_client().get("/api/v1/me", headers=bearer(token))
    body = assert_error_shape(response, 401)
    assert "inactive" in body["error"]["message"]


def test_session_cookie_does_not_authenticate_the_api(app, crm):
    user_with_token(crm, "anna", password="pw-anna-123")
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"username": "anna", "password": "pw-anna-123",
                                "csrf_token": csrf_token(page)})
    assert_error_shape(client.get("/api/v1/me"), 401)


# -- web sessions -----------------------------------------------------------------------------

def sign_in(client, username: str, password: str, **extra: str):  # noqa: ANN201
    page = client.get("/login").get_data(as_text=True)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_token(page), **extra})


def test_login_and_logout_with_csrf(app, crm):
    user_with_token(crm, "anna", password="pw-anna-123")
    client = app.test_client()
    assert client.get("/private").status_code == 302

    # no CSRF token: refused, with an HTML page that says what to do
    refused = client.post("/login", data={"username": "anna", "password": "pw-anna-123"})
    assert refused.status_code == 400 and refused.mimetype == "text/html"
    assert "reload the page" in refused.get_data(as_text=True)
    assert client.get("/private").status_code == 302

    wrong = sign_in(client, "anna", "nope")
    assert wrong.status_code == 401
    assert "Wrong username or password" in wrong.get_data(as_text=True)

    ok = sign_in(client, "anna", "pw-anna-123")
    assert ok.status_code == 302 and ok.headers["Location"] == "/"
    assert client.get("/private").get_data(as_text=True) == "hello anna"

    # logging out also needs the token
    assert client.post("/logout").status_code == 400
    assert client.get("/private").status_code == 200
    confirm = client.get("/logout").get_data(as_text=True)
    out = client.post("/logout", data={"csrf_token": csrf_token(confirm)})
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    assert client.get("/private").status_code == 302


def test_login_required_redirects_and_comes_back(app, crm):
    user_with_token(crm, "anna", password="pw-anna-123")
    client = app.test_client()
    response = client.get("/private?x=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/private?x%3D1"
    assert client.get("/private", headers={"Accept": "application/json"}).status_code == 401
    back = sign_in(client, "anna", "pw-anna-123", next="/private?x=1")
    assert back.headers["Location"] == "/private?x=1"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil",
                                    "javascript:alert(1)", "evil"])
def test_login_never_redirects_off_site(app, crm, target):
    user_with_token(crm, "anna", password="pw-anna-123")
    response = sign_in(app.test_client(), "anna", "pw-anna-123", next=target)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_failed_sign_ins_pause_that_username(crm, clock):
    user_with_token(crm, "anna", password="correct horse")
    user_with_token(crm, "bob", password="battery staple")
    for _ in range(auth.LOGIN_ATTEMPTS):
        assert auth.authenticate(crm, "anna", "guess", "10.0.0.9") is None
        clock.advance(minutes=1)
    # the next attempt is refused without looking at the password, the right one too
    with pytest.raises(auth.TooManyAttempts) as paused:
        auth.authenticate(crm, "anna", "correct horse")
    assert "try again in 10 minutes" in str(paused.value)
    assert auth.authenticate(crm, "bob", "battery staple") is not None  # others sign in
    clock.advance(minutes=10, seconds=1)  # the first failure is out of the window now
    assert auth.authenticate(crm, "anna", "correct horse") is not None
    # a success forgives earlier failures
    for _ in range(auth.LOGIN_ATTEMPTS - 1):
        assert auth.authenticate(crm, "anna", "guess") is None
    assert auth.authenticate(crm, "anna", "correct horse") is not None
    assert auth.authenticate(crm, "anna", "guess") is None
    assert auth.authenticate(crm, "anna", "correct horse") is not None


def test_unknown_usernames_are_paused_too(crm):
    for _ in range(auth.LOGIN_ATTEMPTS):
        assert auth.authenticate(crm, "nobody", "guess") is None
    with pytest.raises(auth.TooManyAttempts):
        auth.authenticate(crm, "nobody", "guess")


def test_login_page_answers_429_with_retry_after(app, crm):
    user_with_token(crm, "anna", password="pw-anna-123")
    client = app.test_client()
    for _ in range(auth.LOGIN_ATTEMPTS):
        assert sign_in(client, "anna", "nope").status_code == 401
    paused = sign_in(client, "anna", "pw-anna-123")
    assert paused.status_code == 429
    assert 0 < int(paused.headers["Retry-After"]) <= 15 * 60
    assert "Too many failed sign-ins" in paused.get_data(as_text=True)
    assert client.get("/private").status_code == 302  # not signed in


def test_login_page_escapes_what_it_echoes(app, crm):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"username": "<script>x</script>", "password": "p",
                                           "csrf_token": csrf_token(page)})
    text = response.get_data(as_text=True)
    assert "<script>x</script>" not in text and "&lt;script&gt;" in text


def test_session_ends_when_user_is_deactivated_or_password_changes(app, crm):
    anna, _ = user_with_token(crm, "anna", password="pw-anna-123")
    client = app.test_client()
    sign_in(client, "anna", "pw-anna-123")
    assert client.get("/private").status_code == 200
    auth.set_password(crm, anna.user_id, "a new password")
    assert client.get("/private").status_code == 302

    sign_in(client, "anna", "a new password")
    assert client.get("/private").status_code == 200
    deactivate(crm, anna.user_id)
    assert client.get("/private").status_code == 302


def test_session_cookie_is_signed_and_protected(app, crm, tmp_path):
    user_with_token(crm, "anna", password="pw-anna-123")
    client = app.test_client()
    response = sign_in(client, "anna", "pw-anna-123")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # the same cookie under another key is worthless
    value = cookie.split(";")[0].split("=", 1)[1]
    same = app_with_private_page(crm, tmp_path).test_client()
    same.set_cookie("crmforge_session", value)
    assert same.get("/private").status_code == 200
    other = app_with_private_page(crm, tmp_path, SECRET_KEY="another key").test_client()
    other.set_cookie("crmforge_session", value)
    assert other.get("/private").status_code == 302


# -- the secret key ---------------------------------------------------------------------------

def test_secret_key_is_generated_once_and_kept(crm, tmp_path, monkeypatch):
    monkeypatch.delenv("CRMFORGE_SECRET_KEY", raising=False)
    folder = tmp_path / "inst"
    first = create_app({"INSTANCE": crm, "INSTANCE_DIR": str(folder)})
    second = create_app({"INSTANCE": crm, "INSTANCE_DIR": str(folder)})
    key_file = folder / "secret_key"
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert key_file.read_text().strip() == first.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= 32
    if os.name == "posix":
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_or_create_secret_key(folder) == first.config["SECRET_KEY"]


def test_secret_key_from_environment_and_config(crm, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CRMFORGE_SECRET_KEY", "from-the-environment")
    app = create_app({"INSTANCE": crm, "INSTANCE_DIR": str(tmp_path / "i")})
    assert app.config["SECRET_KEY"] == "from-the-environment"
    assert not (tmp_path / "i").exists()
    app = create_app({"INSTANCE": crm, "SECRET_KEY": SECRET, "INSTANCE_DIR": str(tmp_path)})
    assert app.config["SECRET_KEY"] == SECRET
