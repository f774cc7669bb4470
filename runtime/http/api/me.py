"""`GET /api/v1/me`: who the token belongs to — the integrator's first call."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from runtime.http.api.common import actor, instance, static_route
from runtime.write import records


def register(bp: Blueprint) -> None:
    static_route(bp, "/me", "me", me)


def me() -> ResponseReturnValue:
    """The user's record (the fields every user may see) with roles, admin flag, language."""
    who, inst = actor(), instance()
    return {
        **records.get(inst, who, "user", who.user_id),
        "roles": sorted(who.roles),
        "all_roles": sorted(inst.model.role_closure(tuple(who.roles))),
        "is_admin": who.is_admin,
        "language": who.language,
    }
