"""Helpers of the HTTP tests (API, auth, error shape): a small CRM pack, apps, tokens, and the
assertion that locks the one JSON error shape."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Flask
from support import insert_user

from runtime.core.instance import Actor, Instance
from runtime.http.app import create_app
from runtime.http.auth import create_token, set_password

CRM_PACK = {
    "roles.yaml": """
        roles:
          rep:     {label: Sales rep}
          manager: {label: Sales manager}
    """,
    "entities/company.yaml": """
        entity: company
        label: Company
        plural: Companies
        title_field: name
        search: [name, city]
        fields:
          name:      {type: text, required: true}
          city:      {type: text}
          notes:     {type: longtext}
          revenue:   {type: money, min: 0}
          employees: {type: integer}
          founded:   {type: date}
          tier:      {type: choice, options: [gold, silver, bronze]}
          tags:      {type: multichoice, options: [b2b, b2c]}
          vip:       {type: boolean, default: false}
          secret:    {type: text}
        views:
          list: {columns: [name, city, revenue], sort: [name], page_size: 20}
        permissions:
          rep:
            read: "owner == user.id"
            create: true
            update: "owner == user.id"
            delete: false
            hidden: [secret]
          manager: {read: true, create: true, update: true, delete: true}
    """,
    "entities/deal.yaml": """
        entity: deal
        label: Deal
        title_field: title
        fields:
          title:   {type: text, required: true}
          company: {type: link, to: company, required: true, on_delete: restrict}
          amount:  {type: money}
        permissions:
          rep:     {read: true, create: true, update: true, delete: true}
          manager: {read: true, create: true, update: true, delete: true}
    """,
    "entities/memo.yaml": """
        entity: memo
        label: Memo
        fields:
          text: {type: text}
        permissions:
          manager: {read: true, create: true, update: true, delete: true}
    """,
}

SECRET = "test-secret-key"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_app(inst: Instance, tmp_path: Path, **config: Any) -> Flask:
    return create_app({"INSTANCE": inst, "TESTING": True, "SECRET_KEY": SECRET,
                       "INSTANCE_DIR": str(tmp_path / "instance"), **config})


def user_with_token(inst: Instance, username: str, *, roles: tuple[str, ...] = (),
                    password: str | None = None, **fields: Any) -> tuple[Actor, str]:
    actor = insert_user(inst, username, roles=roles, **fields)
    if password is not None:
        set_password(inst, actor.user_id, password)
    return actor, create_token(inst, actor.user_id, f"{username}'s test token")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def csrf_token(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "no csrf_token input on the page"
    return match.group(1)


def assert_error_shape(response: Any, status: int, *extra: str) -> dict:
    """The one JSON error shape: {"error": {"status", "code", "message"}} plus only `extra`."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.mimetype == "application/json", (response.mimetype, text)
    body = response.get_json()
    assert set(body) == {"error", *extra}, body
    assert set(body["error"]) == {"status", "code", "message"}, body
    assert body["error"]["status"] == status
    message = body["error"]["message"]
    assert isinstance(message, str) and len(message) > 10, body
    assert "Traceback" not in text and 'File "' not in text
    return body
