"""runtime.http.auth: passwords, actors, API tokens (hashed at rest), web sessions with CSRF."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
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
from argon2 import PasswordHasher
from support import FIXTURES, insert_team

from runtime.core.instance import Actor, Instance
from runtime.core.passwords import hash_password
from runtime.http import auth
from runtime.http.app import create_app, load_or_create_secret_key
from runtime.process import migrate
from runtime.write import records


@pytest.fixture
def crm(make_instance, pack) -> Instance:
    return make_instance(pack(CRM_PACK))


def app_with_private_page(crm: Instance, tmp_path: Path, **config: str):  # noqa: ANN201
    application = make_app(crm, tmp_path, **config)

    @application.get("/private")
    def private():  # noqa: ANN202
        refused = auth.require_login()
        return refused if refused is not None else f"hello {auth.current_actor().username}"

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


def test_actor_carries_roles_team_language_and_extra_fields(make_instance):
    inst = make_instance([FIXTURES / "core", FIXTURES / "spec"])  # extends user with region
    team = insert_team(inst, "North")
    anna, anna_token = user_with_token(inst, "anna", roles=("agent", "sales_manager"), team=team,
                              region="north")
    users = inst.schema.table("user")
    with inst.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == anna.user_id).values(language="es"))
    with inst.engine.connect() as conn:
        admin_id = conn.execute(sa.select(users.c.id).where(users.c.username == "admin")
                                ).scalar_one()
    actor = auth.actor_for_token(inst, anna_token)
    admin = auth.actor_for_token(inst, auth.create_token(inst, admin_id))
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

# argon2 with the least cost: verification reads the cost from the hash, and these tests check
# many passwords (the real cost is tested above)
QUICK = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def quick_user(inst: Instance, username: str, password: str) -> tuple[Actor, str]:
    actor, token = user_with_token(inst, username)
    users = inst.schema.table("user")
    with inst.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == actor.user_id).values(
            password_hash=QUICK.hash(password)))
    return actor, token


def sign_in(client, username: str, password: str, **extra: str):  # noqa: ANN201
    page = client.get("/login").get_data(as_text=True)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_token(page), **extra})


def test_login_and_logout_with_csrf(app, crm):
    quick_user(crm, "anna", "pw-anna-123")
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
    quick_user(crm, "anna", "pw-anna-123")
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
    quick_user(crm, "anna", "pw-anna-123")
    response = sign_in(app.test_client(), "anna", "pw-anna-123", next=target)
    assert response.status_code == 302 and response.headers["Location"] == "/"


ATTACKER, OWNER = "198.51.100.66", "192.0.2.10"


def test_failed_sign_ins_pause_that_address_not_the_username(crm, clock):
    quick_user(crm, "anna", "correct horse")
    quick_user(crm, "bob", "battery staple")
    for _ in range(auth.LOGIN_ATTEMPTS):
        assert auth.authenticate(crm, "anna", "guess", ATTACKER) is None
        clock.advance(minutes=1)
    # the next attempt from that address is refused without looking at the password
    with pytest.raises(auth.TooManyAttempts) as paused:
        auth.authenticate(crm, "anna", "correct horse", ATTACKER)
    assert "try again in 10 minutes" in str(paused.value) and not paused.value.under_attack
    # the owner of the password, anywhere else, is not locked out; others are not either
    assert auth.authenticate(crm, "anna", "correct horse", OWNER) is not None
    assert auth.authenticate(crm, "bob", "battery staple", ATTACKER) is not None
    clock.advance(minutes=10, seconds=1)  # the address's window is over
    assert auth.authenticate(crm, "anna", "correct horse", ATTACKER) is not None
    # a success forgives that address's failures
    for _ in range(auth.LOGIN_ATTEMPTS - 1):
        assert auth.authenticate(crm, "anna", "guess", ATTACKER) is None
    assert auth.authenticate(crm, "anna", "correct horse", ATTACKER) is not None
    assert auth.authenticate(crm, "anna", "guess", ATTACKER) is None
    assert auth.authenticate(crm, "anna", "correct horse", ATTACKER) is not None


def test_unknown_usernames_are_paused_too(crm):
    for _ in range(auth.LOGIN_ATTEMPTS):
        assert auth.authenticate(crm, "nobody", "guess", ATTACKER) is None
    with pytest.raises(auth.TooManyAttempts):
        auth.authenticate(crm, "nobody", "guess", ATTACKER)


def test_a_username_under_attack_slows_every_address_but_never_locks_out_the_owner(crm, clock):
    quick_user(crm, "anna", "correct horse")
    per_address = auth.LOGIN_ATTEMPTS - 1  # no address is refused on the way
    for i in range(auth.USERNAME_FAILURES):
        assert auth.authenticate(crm, "anna", "guess", f"198.51.100.{i // per_address}") is None
    # from now on an address gets one attempt per window: one that failed gets none now ...
    with pytest.raises(auth.TooManyAttempts) as slowed:
        auth.authenticate(crm, "anna", "correct horse", "198.51.100.0")
    assert slowed.value.under_attack and "slowed down" in str(slowed.value)
    # ... and a fresh one gets its first: checked, then no second
    assert auth.authenticate(crm, "anna", "guess", "203.0.113.1") is None
    with pytest.raises(auth.TooManyAttempts):
        auth.authenticate(crm, "anna", "correct horse", "203.0.113.1")
    # the owner, from an address that has not failed, signs in
    assert auth.authenticate(crm, "anna", "correct horse", OWNER) is not None
    clock.advance(minutes=15)  # every window is over
    assert auth.authenticate(crm, "anna", "correct horse", "198.51.100.0") is not None


def test_attempts_are_counted_before_the_password_is_looked_at(crm):
    """What the counters hold: every attempt for the pair, checked failures for the username;
    an empty username is nobody's and counts nowhere."""
    quick_user(crm, "anna", "correct horse")
    for _ in range(auth.LOGIN_ATTEMPTS + 3):
        with contextlib.suppress(auth.TooManyAttempts):
            auth.authenticate(crm, "anna", "guess", ATTACKER)
    assert auth.authenticate(crm, "  ", "guess", ATTACKER) is None
    assert throttle_counts(crm) == {("anna", ATTACKER): auth.LOGIN_ATTEMPTS + 3,
                                    ("anna", auth.ANY_ADDRESS): auth.LOGIN_ATTEMPTS}


def throttle_counts(inst: Instance) -> dict[tuple[str, str], int]:
    table = inst.schema.system("login_throttle")
    with inst.engine.connect() as conn:
        return {(r.username, r.address): r.attempts for r in conn.execute(sa.select(table))}


def guess_in_parallel(application, count: int, username: str, password: str,
                      addresses: list[str]) -> list[int]:
    """`count` sign-ins at once, each in its own thread and client; their status codes."""
    start = threading.Barrier(count)

    def attempt(i: int) -> int:
        client = application.test_client()
        start.wait(timeout=60)
        return client.post("/login", data={"username": username, "password": password},
                           environ_base={"REMOTE_ADDR": addresses[i % len(addresses)]}
                           ).status_code

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(attempt, range(count)))


def test_parallel_guesses_are_all_counted(crm, tmp_path):
    quick_user(crm, "anna", "pw-anna-123")
    application = app_with_private_page(crm, tmp_path, WTF_CSRF_ENABLED=False)
    answers = guess_in_parallel(application, 40, "anna", "wrong", [ATTACKER])
    # exactly the allowed number reached the password check; the others were refused
    assert sorted(answers) == [401] * auth.LOGIN_ATTEMPTS + [429] * (40 - auth.LOGIN_ATTEMPTS)
    assert throttle_counts(crm) == {("anna", ATTACKER): 40,
                                    ("anna", auth.ANY_ADDRESS): auth.LOGIN_ATTEMPTS}
    # meanwhile the owner signs in from their own address
    owner = application.test_client()
    answer = owner.post("/login", data={"username": "anna", "password": "pw-anna-123"},
                        environ_base={"REMOTE_ADDR": OWNER})
    assert answer.status_code == 302 and owner.get("/private").status_code == 200


def test_parallel_guesses_from_many_addresses_are_all_counted(crm, tmp_path):
    quick_user(crm, "anna", "pw-anna-123")
    application = app_with_private_page(crm, tmp_path, WTF_CSRF_ENABLED=False)
    addresses = [f"198.51.100.{i}" for i in range(30)]
    answers = guess_in_parallel(application, 30, "anna", "wrong", addresses)
    assert answers == [401] * 30  # a fresh address always gets its first attempt checked
    assert throttle_counts(crm)[("anna", auth.ANY_ADDRESS)] == 30
    # the username is under attack now: a second try from one of those addresses waits ...
    again = application.test_client().post(
        "/login", data={"username": "anna", "password": "pw-anna-123"},
        environ_base={"REMOTE_ADDR": addresses[0]})
    assert again.status_code == 429 and "slowed down" in again.get_data(as_text=True)
    # ... while the owner, from their own address, signs in
    owner = application.test_client()
    answer = owner.post("/login", data={"username": "anna", "password": "pw-anna-123"},
                        environ_base={"REMOTE_ADDR": OWNER})
    assert answer.status_code == 302 and owner.get("/private").status_code == 200


def test_login_page_answers_429_with_retry_after(app, crm):
    quick_user(crm, "anna", "pw-anna-123")
    client = app.test_client()
    for _ in range(auth.LOGIN_ATTEMPTS):
        assert sign_in(client, "anna", "nope").status_code == 401
    paused = sign_in(client, "anna", "pw-anna-123")
    assert paused.status_code == 429
    assert 0 < int(paused.headers["Retry-After"]) <= 15 * 60
    assert "Too many failed sign-ins" in paused.get_data(as_text=True)
    assert client.get("/private").status_code == 302  # not signed in
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = OWNER
    assert sign_in(elsewhere, "anna", "pw-anna-123").status_code == 302


def test_client_address_trusts_forwarded_for_only_behind_configured_proxies(crm, tmp_path):
    forwarded = {"X-Forwarded-For": "203.0.113.5, 198.51.100.7"}
    peer = {"REMOTE_ADDR": "10.0.0.2"}
    with make_app(crm, tmp_path).test_request_context(headers=forwarded, environ_base=peer):
        assert auth.client_address() == "10.0.0.2"  # anyone can write the header
    behind_one = make_app(crm, tmp_path, TRUSTED_PROXIES=1)
    with behind_one.test_request_context(headers=forwarded, environ_base=peer):
        assert auth.client_address() == "198.51.100.7"  # what our proxy saw
    with behind_one.test_request_context(environ_base=peer):
        assert auth.client_address() == "10.0.0.2"
    with make_app(crm, tmp_path, TRUSTED_PROXIES=2).test_request_context(
            headers=forwarded, environ_base=peer):
        assert auth.client_address() == "203.0.113.5"


@pytest.mark.parametrize(("raw", "key"), [
    ("192.0.2.1", "192.0.2.1"),
    ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.1", "192.0.2.1"),
    ("not an address", "unknown"),
    ("", "unknown"),
])
def test_address_key(raw, key):
    assert auth.address_key(raw) == key


def test_trusted_proxies_from_the_environment(crm, tmp_path, monkeypatch):
    monkeypatch.setenv("CRMFORGE_TRUSTED_PROXIES", "2")
    assert make_app(crm, tmp_path).config["TRUSTED_PROXIES"] == 2
    monkeypatch.setenv("CRMFORGE_TRUSTED_PROXIES", "two")
    with pytest.raises(ValueError, match="CRMFORGE_TRUSTED_PROXIES"):
        make_app(crm, tmp_path)


def test_login_page_escapes_what_it_echoes(app, crm):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"username": "<script>x</script>", "password": "p",
                                           "csrf_token": csrf_token(page)})
    text = response.get_data(as_text=True)
    assert "<script>x</script>" not in text and "&lt;script&gt;" in text


def test_session_ends_when_user_is_deactivated_or_password_changes(app, crm):
    anna, _ = quick_user(crm, "anna", "pw-anna-123")
    client = app.test_client()
    sign_in(client, "anna", "pw-anna-123")
    assert client.get("/private").status_code == 200
    auth.set_password(crm, anna.user_id, "a new password")
    assert client.get("/private").status_code == 302

    sign_in(client, "anna", "a new password")
    assert client.get("/private").status_code == 200
    deactivate(crm, anna.user_id)
    assert client.get("/private").status_code == 302


# -- server-side sessions: a copied cookie is worth nothing once the session ends --------------

def session_cookie(client) -> str:  # noqa: ANN001
    cookie = client.get_cookie("crmforge_session")
    assert cookie is not None, "not signed in"
    return cookie.value


def replay(application, cookie: str):  # noqa: ANN001, ANN201
    """GET /private with a copy of a session cookie, from another browser."""
    thief = application.test_client()
    thief.set_cookie("crmforge_session", cookie)
    return thief.get("/private")


def assert_to_login(response) -> None:  # noqa: ANN001
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_sign_out_ends_the_session_on_the_server(app, crm):
    quick_user(crm, "anna", "pw-anna-123")
    client = app.test_client()
    sign_in(client, "anna", "pw-anna-123")
    copied = session_cookie(client)
    assert replay(app, copied).status_code == 200  # a copy works while the session is open
    confirm = client.get("/logout").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": csrf_token(confirm)}).status_code == 302
    assert_to_login(replay(app, copied))


def test_sign_out_everywhere_ends_every_session_of_the_user(app, crm):
    quick_user(crm, "anna", "pw-anna-123")
    quick_user(crm, "bob", "pw-bob-1234")
    laptop, phone, bobs = app.test_client(), app.test_client(), app.test_client()
    sign_in(laptop, "anna", "pw-anna-123")
    sign_in(phone, "anna", "pw-anna-123")
    sign_in(bobs, "bob", "pw-bob-1234")
    copies = [session_cookie(laptop), session_cookie(phone)]
    page = phone.get("/logout").get_data(as_text=True)
    assert 'action="/logout/everywhere"' in page and "Sign out everywhere" in page
    assert phone.post("/logout/everywhere").status_code == 400  # CSRF-protected
    assert replay(app, copies[0]).status_code == 200
    answer = phone.post("/logout/everywhere", data={"csrf_token": csrf_token(page)})
    assert_to_login(answer)
    assert "2 sessions ended" in phone.get("/login").get_data(as_text=True)
    for copy in copies:
        assert_to_login(replay(app, copy))
    assert_to_login(laptop.get("/private"))
    assert bobs.get("/private").status_code == 200  # nobody else's


def test_a_password_change_ends_every_session(app, crm):
    anna, _ = quick_user(crm, "anna", "pw-anna-123")
    client = app.test_client()
    sign_in(client, "anna", "pw-anna-123")
    copied = session_cookie(client)
    auth.set_password(crm, anna.user_id, "a new password")
    assert_to_login(replay(app, copied))
    assert open_sessions(crm, anna.user_id) == 0


def test_a_password_written_by_other_means_ends_sessions_too(app, crm):
    """Whatever writes the hash (the demo command resets passwords with SQL), the session
    remembers which password it signed in with."""
    quick_user(crm, "anna", "pw-anna-123")
    client = app.test_client()
    sign_in(client, "anna", "pw-anna-123")
    copied = session_cookie(client)
    users = crm.schema.table("user")
    with crm.engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "anna").values(
            password_hash=hash_password("another password")))
    assert_to_login(replay(app, copied))


def test_deactivating_a_user_ends_every_session_for_good(app, crm):
    anna, _ = quick_user(crm, "anna", "pw-anna-123")
    client = app.test_client()
    sign_in(client, "anna", "pw-anna-123")
    copied = session_cookie(client)
    system = Actor.system_actor("test")
    records.update(crm, system, "user", anna.user_id, {"active": False}, version=None)
    assert_to_login(replay(app, copied))
    assert open_sessions(crm, anna.user_id) == 0
    # made active again, the old cookie stays dead: a new sign-in is needed
    records.update(crm, system, "user", anna.user_id, {"active": True}, version=None)
    assert_to_login(replay(app, copied))
    assert sign_in(client, "anna", "pw-anna-123").status_code == 302
    assert client.get("/private").status_code == 200


def test_a_session_ends_after_its_lifetime(app, crm, clock):
    quick_user(crm, "anna", "pw-anna-123")
    client = app.test_client()
    sign_in(client, "anna", "pw-anna-123")
    clock.advance(days=30)
    assert client.get("/private").status_code == 200
    clock.advance(days=1)
    assert_to_login(client.get("/private"))


def test_the_cookie_holds_a_random_key_and_the_server_only_its_hash(app, crm, clock):
    anna, _ = quick_user(crm, "anna", "pw-anna-123")
    client = app.test_client()
    sign_in(client, "anna", "pw-anna-123")
    with client.session_transaction() as stored:
        key = stored[auth.SESSION_KEY]
        assert "uid" not in stored and anna.user_id not in stored.values()
    table = crm.schema.system("session")
    with crm.engine.connect() as conn:
        row = conn.execute(sa.select(table)).one()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(tuple(row)) and row.user_id == anna.user_id
    assert row.created_at == row.last_seen_at == clock() and row.revoked_at is None
    clock.advance(minutes=6)  # use is recorded, now and then
    client.get("/private")
    with crm.engine.connect() as conn:
        assert conn.execute(sa.select(table.c.last_seen_at)).scalar_one() == clock()


def test_signing_in_again_ends_the_previous_session(app, crm):
    quick_user(crm, "anna", "pw-anna-123")
    client = app.test_client()
    sign_in(client, "anna", "pw-anna-123")
    first = session_cookie(client)
    sign_in(client, "anna", "pw-anna-123")
    assert_to_login(replay(app, first))
    assert client.get("/private").status_code == 200


def open_sessions(inst: Instance, user_id: int) -> int:
    table = inst.schema.system("session")
    with inst.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(
            table.c.user_id == user_id, table.c.revoked_at.is_(None))).scalar_one()


def test_session_cookie_is_signed_and_protected(app, crm, tmp_path):
    quick_user(crm, "anna", "pw-anna-123")
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


def test_an_older_database_gets_the_new_tables_in_a_safe_migration(app, crm):
    """An instance from before server-side sessions: `crmforge migrate` adds crm_session and
    crm_login_throttle as safe steps, and leaves the old crm_login_failure alone."""
    with crm.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE crm_session"))
        conn.execute(sa.text("DROP TABLE crm_login_throttle"))
        conn.execute(sa.text("CREATE TABLE crm_login_failure (id INTEGER PRIMARY KEY, "
                             "username VARCHAR(255) NOT NULL, address VARCHAR(64), "
                             "at TIMESTAMP NOT NULL)"))
    plan = migrate.plan(crm.model, crm.engine)
    assert sorted(op.table for op in plan) == ["crm_login_throttle", "crm_session"]
    assert {op.safety for op in plan} == {migrate.SAFE}
    migrate.apply(plan, crm.engine)
    assert migrate.plan(crm.model, crm.engine).empty
    quick_user(crm, "anna", "pw-anna-123")
    client = app.test_client()
    assert sign_in(client, "anna", "pw-anna-123").status_code == 302
    assert client.get("/private").status_code == 200


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
