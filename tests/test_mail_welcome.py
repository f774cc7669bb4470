"""The one-time set-password link e-mailed to a user an administrator creates (issue 18) when
mail is set up: through the outbox and the worker to a real SMTP server (aiosmtpd on
127.0.0.1); the link in the message is the one the page shows, and it works. Without a mail
server nothing is queued and the page asks the administrator to pass the link on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from mail_support import queued_mail, run_worker, smtp_server
from support import admin_actor
from web_support import make_app, sign_in, token_of

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LINK = re.compile(r'id="password-link"[^>]*value="([^"]+)"')


@pytest.fixture
def admin_client(make_instance: Any, tmp_path: Path) -> dict[str, Any]:
    inst = make_instance([FIXTURES / "core", FIXTURES / "spec"])
    app = make_app(inst, tmp_path, WTF_CSRF_ENABLED=True)
    client = app.test_client()
    sign_in(client, inst, admin_actor(inst))
    return {"inst": inst, "client": client, "app": app}


def create_nina(client: Any) -> str:
    """Create the user nina on /admin/users/new; the page shown next."""
    answer = client.post("/admin/users/new", data={
        "username": "nina", "full_name": "Nina New", "email": "nina@example.com",
        "roles": ["agent"], "language": "en", "csrf_token": token_of(client, "/admin/users")})
    assert answer.status_code == 302
    return client.get(answer.headers["Location"]).get_data(as_text=True)


def test_the_link_is_also_e_mailed_when_mail_is_set_up(admin_client) -> None:
    inst = admin_client["inst"]
    with smtp_server() as (inbox, url):
        inst.settings.update(MAIL_URL=url, MAIL_FROM="CRM <crm@crm.test>")
        page = create_nina(admin_client["client"])
        assert "The link below was also e-mailed to them." in page
        shown = LINK.search(page).group(1)
        run_worker(inst)
    [mail] = inbox.messages
    assert (mail["To"], mail["Subject"]) == ("nina@example.com",
                                            "Your CRMForge account: choose your password")
    body = mail.get_body(("plain",)).get_content()
    assert shown in body and "your user name is nina" in body and "for 3 days" in body
    [row] = queued_mail(inst)
    assert (row["entity"], row["status"]) == ("user", "sent")
    form = admin_client["app"].test_client().get(shown.split("localhost", 1)[1])
    assert form.status_code == 200 and "Nina New" in form.get_data(as_text=True)


def test_without_a_mail_server_the_link_is_only_shown(admin_client) -> None:
    page = create_nina(admin_client["client"])
    assert "Send them the link below." in page and LINK.search(page)
    assert queued_mail(admin_client["inst"]) == []
