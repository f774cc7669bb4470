"""`/admin/teams`: teams with their manager and members; a new team; editing one (its name,
manager and members, who are checked in a list of the active users)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from runtime.core.errors import N_, BadRequest, NotFound, ValidationFailed
from runtime.http.current import get_instance
from runtime.http.web.admin.access import people_admin
from runtime.http.web.layout import render
from runtime.read import accounts
from runtime.read.queries import reading
from runtime.write import accounts as changes


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/teams", "teams", teams_page)
    bp.add_url_rule("/teams/new", "new_team", team_page, methods=["GET", "POST"])
    bp.add_url_rule("/teams/<int:team_id>", "team", team_page, methods=["GET", "POST"])


def teams_page() -> ResponseReturnValue:
    people_admin()
    inst = get_instance()
    with reading(inst, None) as conn:
        found = accounts.teams(inst, conn)
        names = accounts.names(inst, conn, [t.manager for t in found])
    return render("admin/teams.html", teams=found, names=names)


def team_page(team_id: int | None = None) -> ResponseReturnValue:
    who = people_admin()
    inst = get_instance()
    with reading(inst, None) as conn:
        team = accounts.team(inst, conn, team_id) if team_id is not None else None
        people = accounts.people(inst, conn)
    if team_id is not None and team is None:
        raise NotFound(gettext("There is no team with id %(id)s.", id=team_id))
    values: dict[str, Any] = {"name": team.name if team else "",
                              "manager": team.manager if team else None}
    members = {m for m, _ in team.members} if team else set()
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = {"name": request.form.get("name", "").strip() or None,
                  "manager": _id(request.form.get("manager"))}
        members = {_id(text) for text in request.form.getlist("members")} - {None}
        try:
            saved = changes.save_team(inst, who, team_id, values, sorted(members),
                                      team.version if team else None)
        except ValidationFailed as exc:
            errors = exc.errors
        else:
            flash(gettext("Team %(name)s saved.", name=saved.get("name") or values["name"]),
                  "success")
            return redirect(url_for("admin.teams"))
    return render("admin/team.html", status=422 if errors else 200, team=team,
                  values=values, members=members, people=people, errors=errors)


def _id(text: str | None) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 18:
        raise BadRequest(N_("Pick people from the list."))
    return int(text)
