"""Security headers on every answer (a Content-Security-Policy without inline script, no
framing, Referrer-Policy, X-Content-Type-Options), and templates that need no inline script:
no <script> without src, no on*= event handler attribute, no javascript: URL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from web_support import make_app, seed, sign_in

from runtime.http import auth

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
WEB_CODE = ROOT / "runtime" / "http"

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE)  # tags span lines
IN_PYTHON = re.compile(r"<[a-z][^>\n]*\son[a-z]+\s*=", re.IGNORECASE)  # HTML in one string
SCRIPT_URL = re.compile(r"javascript:", re.IGNORECASE)
HTMX_EVAL = re.compile(r"\bhx-on|\bhx-vars\b|=\s*['\"]js:", re.IGNORECASE)


@pytest.fixture
def web(spec_instance, admin, tmp_path) -> dict[str, Any]:
    inst = spec_instance
    who = admin(inst)
    app = make_app(inst, tmp_path)
    client = app.test_client()
    sign_in(client, inst, who)
    return {"inst": inst, "app": app, "client": client, "data": seed(inst, who)}


def assert_security_headers(response: Any, where: str) -> None:
    headers = response.headers
    policy = headers.get("Content-Security-Policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    if directives.get("sandbox") is not None:  # a download: nothing may run in it at all
        assert directives["default-src"] == ["'none'"], where
    else:
        assert directives.get("script-src") == ["'self'"], (where, policy)
        assert directives.get("frame-ancestors") == ["'none'"], (where, policy)
        assert directives.get("object-src") == ["'none'"], (where, policy)
        assert "'unsafe-inline'" not in directives.get("default-src", []), (where, policy)
    assert "unsafe-eval" not in policy, where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("X-Frame-Options") == "DENY", where
    assert headers.get("Referrer-Policy") == "same-origin", where


def test_every_page_and_answer_carries_the_headers(web) -> None:
    client, app = web["client"], web["app"]
    offer = web["data"]["offers"][0]["id"]
    pages = {  # endpoint -> a path that reaches it (answers of any status count)
        "auth.login": "/login",
        "auth.logout": "/logout",
        "web.static": "/static/crmforge.js",
        "web.home": "/",
        "web.dashboard": "/dashboards/sales",
        "web.list": "/e/offer",
        "web.export": "/e/offer/export.csv",
        "web.new": "/e/offer/new",
        "web.edit": f"/e/offer/{offer}/edit",
        "web.options": "/e/contact/_options?q=a&target=x",
        "web.record": f"/e/offer/{offer}",
        "web.delete": f"/e/offer/{offer}/delete",
        "web.attachment": "/attachments/999999",
        "web.search": "/search?q=Anna",
        "approvals.inbox": "/approvals",
        "workflow.notifications": "/notifications",
        "workflow.open": "/notifications/999999",
        "email.send": f"/e/offer/{offer}/email",
        "mail.unsubscribe": "/unsubscribe/not-a-token",
        "api.me": "/api/v1/me",
        "api.openapi": "/api/v1/openapi.json",
        "api.approvals": "/api/v1/approvals",
        "api.approval": "/api/v1/approvals/1",
        "api.dashboards": "/api/v1/dashboards",
        "api.dashboard": "/api/v1/dashboards/sales",
        "api.list": "/api/v1/offer",
        "api.get": f"/api/v1/offer/{offer}",
        "api.timeline": f"/api/v1/offer/{offer}/timeline",
        "api.transitions": f"/api/v1/offer/{offer}/transitions",
        "web.columns": "/e/offer/columns",
        "web.duplicates": "/e/contact/duplicates",
        "web.merge": f"/e/offer/{offer}/merge",
        "calls.pop": "/calls/pop",
        "documents.pdf": f"/e/offer/{offer}/documents/nonesuch.pdf",
        "admin.index": "/admin",
        "admin.users": "/admin/users",
        "admin.new_user": "/admin/users/new",
        "admin.user": "/admin/users/1",
        "admin.teams": "/admin/teams",
        "admin.new_team": "/admin/teams/new",
        "admin.team": "/admin/teams/999999",
        "admin.roles": "/admin/roles",
        "admin.role": "/admin/roles/admin",
        "admin.audit": "/admin/audit",
        "admin.audit_csv": "/admin/audit.csv",
        "admin.webhooks": "/admin/webhooks",
        "admin.imports": "/admin/import",
        "admin.imports_job": "/admin/import/999999",
        "admin.imports_progress": "/admin/import/999999/progress",
        "admin.imports_rejected": "/admin/import/999999/rejected.csv",
        "admin.packs": "/admin/packs",
        "admin.packs_plan": "/admin/packs/plan?action=install&pack=nonesuch",
        "admin.packs_job": "/admin/packs/job/999999",
        "admin.packs_progress": "/admin/packs/job/999999/progress",
        "admin.studio": "/admin/studio",
        "admin.studio_entity": "/admin/studio/offer",
        "admin.studio_history": "/admin/studio/offer/history",
        "admin.studio_revert": "/admin/studio/versions/999999/revert",
        "documents.send": f"/e/offer/{offer}/documents/nonesuch/send",
        "password.set_password": "/set-password/not-a-token",
        "ops.healthz": "/healthz",
        "ops.readyz": "/readyz",
        "ops.metrics": "/metrics",
    }
    readable = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in rule.methods}
    assert readable <= set(pages), f"add a path for {sorted(readable - set(pages))}"
    for path in pages.values():
        for headers in ({}, {"HX-Request": "true"}):
            with client.get(path, headers=headers) as answer:  # a file answer is closed
                assert_security_headers(answer, path)
    # errors, refusals and redirects carry them too
    assert_security_headers(client.get("/e/nonsense"), "404")
    assert_security_headers(client.post("/e/lead/new", data={"name": "x"}), "400 csrf")
    assert_security_headers(client.delete("/"), "405")
    assert_security_headers(app.test_client().get("/"), "302 to login")


def test_a_throttled_sign_in_carries_the_headers(spec_instance, tmp_path) -> None:
    client = make_app(spec_instance, tmp_path, WTF_CSRF_ENABLED=False).test_client()
    for _ in range(auth.LOGIN_ATTEMPTS + 1):
        answer = client.post("/login", data={"username": "admin", "password": "wrong"})
    assert answer.status_code == 429
    assert_security_headers(answer, "429")


def test_an_attachment_download_keeps_its_own_sandbox(web) -> None:
    """The after_request hook sets the policy only where the view set none."""
    app = web["app"]

    @app.get("/sandboxed")
    def sandboxed():  # noqa: ANN202
        return "x", 200, {"Content-Security-Policy": "sandbox; default-src 'none'"}

    answer = web["client"].get("/sandboxed")
    assert answer.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert_security_headers(answer, "sandboxed")


def templates() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


def test_the_template_scan_finds_what_it_looks_for() -> None:
    """The patterns below would catch each kind of inline code."""
    assert INLINE_SCRIPT.search('<script>alert(1)</script>')
    assert INLINE_SCRIPT.search('<script type="module">x()</script>')
    assert not INLINE_SCRIPT.search('<script src="/static/crmforge.js" defer></script>')
    assert EVENT_HANDLER.search('<button class="b" onclick="go()">')
    assert EVENT_HANDLER.search('<body\n  onload="x()">')
    assert not EVENT_HANDLER.search('<form action="/x" method="post">')
    assert not EVENT_HANDLER.search('{% if a < b %}\n  <b>one</b>{% set one = 1 %}')
    assert IN_PYTHON.search('f\'<span class="x" onmouseover="{js}">\'')
    assert not IN_PYTHON.search("if a < b:\n    one = 1")
    assert SCRIPT_URL.search('<a href="javascript:void(0)">')
    assert HTMX_EVAL.search('<div hx-on:click="x()">')
    assert HTMX_EVAL.search("<div hx-vals='js:{a: b()}'>")


@pytest.mark.parametrize("path", templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_hold_no_inline_script(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for pattern in (INLINE_SCRIPT, EVENT_HANDLER, SCRIPT_URL, HTMX_EVAL):
        found = pattern.search(text)
        assert found is None, f"{path.name}: {found.group(0)[:80]!r} - move it to runtime/static/"


def test_html_built_in_python_holds_no_inline_script() -> None:
    for path in sorted(WEB_CODE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern in (INLINE_SCRIPT, IN_PYTHON, SCRIPT_URL):
            found = pattern.search(text)
            assert found is None, f"{path.name}: {found.group(0)[:80]!r}"


def test_htmx_is_told_not_to_eval_or_inject_styles(web) -> None:
    html = web["client"].get("/").get_data(as_text=True)
    meta = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', html)
    assert meta is not None
    assert '"allowEval": false' in meta.group(1)
    assert '"includeIndicatorStyles": false' in meta.group(1)
