"""`GET /api/v1/me`: who the token belongs to — the integrator's first call."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from .common import actor, instance


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/me", "me", me, methods=["GET"])


def me() -> ResponseReturnValue:
    who = actor()
    return {
        "id": who.user_id,
        "username": who.username,
        **dict(who.fields),
        "team": who.team,
        "roles": sorted(who.roles),
        "all_roles": sorted(instance().model.role_closure(tuple(who.roles))),
        "is_admin": who.is_admin,
        "language": who.language,
    }
