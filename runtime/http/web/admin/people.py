"""`/admin/users`: the list of users, a new user, one user's page (details and roles, the
one-time password link, delegation, API tokens, deactivation). What is shown once — a new
password link, a new API token — is kept in the session until the next page shows it."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from werkzeug.datastructures import MultiDict

from runtime.core.errors import N_, BadRequest, NotFound, ValidationFailed
from runtime.http.current import get_instance
from runtime.http.web.admin.access import people_admin
from runtime.http.web.layout import language, render
from runtime.process.mail.welcome import mail_password_link
from runtime.read import accounts
from runtime.read.queries import reading
from runtime.read.titles import zone_names
from runtime.write import accounts as changes

SHOWN_ONCE = "admin_shown_once"
BASE_FIELDS = ("username", "full_name", "email", "team", "manager")


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/users", "users", users_page)
    bp.add_url_rule("/users/new", "new_user", new_user_page, methods=["GET", "POST"])
    bp.add_url_rule("/users/<int:user_id>", "user", user_page, methods=["GET", "POST"])
    for name, view in (("password_link", password_link), ("deactivate", deactivate),
                       ("reactivate", reactivate), ("delegation", delegation),
                       ("new_token", new_token)):
        bp.add_url_rule(f"/users/<int:user_id>/{name.replace('_', '-')}", name, view,
                        methods=["POST"])
    bp.add_url_rule("/users/<int:user_id>/tokens/<int:token_id>/revoke", "revoke_token",
                    revoke_token, methods=["POST"])


# -- the list ---------------------------------------------------------------------------------

def users_page() -> ResponseReturnValue:
    people_admin()
    q = request.args.get("q", "").strip()[:100]
    status = request.args.get("status", "active")
    if status not in accounts.STATUSES:
        raise BadRequest(f"status is one of {', '.join(accounts.STATUSES)}.")
    inst = get_instance()
    with reading(inst, None) as conn:
        found = accounts.accounts(inst, conn, q=q, status=status)
        teams = accounts.team_names(inst, conn)
    return render("admin/users.html", users=found, teams=teams, q=q, state=status,
                  statuses=accounts.STATUSES, roles=accounts.all_roles(inst),
                  limit=accounts.MAX_USERS)


# -- the form ---------------------------------------------------------------------------------

def extra_fields() -> list[Any]:
    """The fields packs add to users (region, claim limit...), shown as plain inputs."""
    ent = get_instance().model.entity("user")
    return [f for f in ent.fields.values() if not f.system and f.editable]


def read_form(form: MultiDict) -> tuple[dict[str, Any], list[str], str | None]:
    """(record values, roles, language) from a posted user form."""
    values: dict[str, Any] = {name: form.get(name, "").strip() or None
                              for name in BASE_FIELDS}
    for f in extra_fields():
        if f.type == "boolean":
            values[f.name] = f.name in form
        elif f.name in form:
            values[f.name] = form.get(f.name, "").strip() or None
    language = form.get("language") or None
    if language is not None and language not in accounts.LANGUAGES:
        raise BadRequest(N_("Pick a language from the list."))
    return values, form.getlist("roles"), language


def form_context(user: accounts.Account | None, values: dict[str, Any] | None = None,
                 errors: dict[str, list[str]] | None = None,
                 chosen: list[str] | None = None) -> dict[str, Any]:
    inst = get_instance()
    with reading(inst, None) as conn:
        people = accounts.people(inst, conn)
        teams = accounts.team_names(inst, conn)
    if values is None:
        values = dict(user.values) if user else {}
    return {"values": values, "errors": errors or {},
            "chosen": set(chosen if chosen is not None else (user.roles if user else ())),
            "roles": accounts.all_roles(inst), "people": people,
            "teams": sorted(teams.items(), key=lambda t: t[1].lower()),
            "languages": accounts.LANGUAGES, "zones": zone_names(), "extra": extra_fields()}


def new_user_page() -> ResponseReturnValue:
    who = people_admin()
    if request.method == "GET":
        return render("admin/user_new.html", **form_context(None))
    values, roles, language = read_form(request.form)
    zone = request.form.get("time_zone")
    try:
        user = changes.create_user(get_instance(), who, values, roles, language, zone)
    except ValidationFailed as exc:
        return render("admin/user_new.html", status=422, **form_context(
            None, {**values, "language": language, "time_zone": zone}, exc.errors, roles))
    link = _link_url(changes.issue_password_link(get_instance(), who, user["id"], _secret()))
    _show_once("link", user["id"], link)
    if mail_password_link(get_instance(), user["id"], link, changes.LINK_LIFETIME.days):
        flash(gettext("User %(name)s created. The link below was also e-mailed to them.",
                      name=values["username"]), "success")
    else:
        flash(gettext("User %(name)s created. Send them the link below.",
                      name=values["username"]), "success")
    return redirect(url_for("admin.user", user_id=user["id"]))


# -- one user ---------------------------------------------------------------------------------

def _account(user_id: int) -> accounts.Account:
    inst = get_instance()
    with reading(inst, None) as conn:
        found = accounts.account(inst, conn, user_id)
    if found is None:
        raise NotFound(gettext("There is no user with id %(id)s.", id=user_id))
    return found


def user_page(user_id: int) -> ResponseReturnValue:
    who = people_admin()
    user = _account(user_id)
    context: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        values, roles, language = read_form(request.form)
        zone = request.form.get("time_zone")
        try:
            changes.update_user(get_instance(), who, user_id, values, roles, language,
                                _version(request.form), zone)
        except ValidationFailed as exc:
            context, status = form_context(user, {
                **values, "language": language, "time_zone": zone}, exc.errors, roles), 422
        else:
            flash(gettext("Saved."), "success")
            return redirect(url_for("admin.user", user_id=user_id))
    return render("admin/user.html", status=status, **_user_context(user, context))


def _user_context(user: accounts.Account, context: dict[str, Any]) -> dict[str, Any]:
    inst = get_instance()
    with reading(inst, None) as conn:
        tokens = accounts.tokens(inst, conn, user.id)
        sessions = accounts.open_session_count(inst, conn, user.id)
        owned = accounts.open_records(inst, conn, user.id)
        names = accounts.names(inst, conn, [user.delegation.get("delegate")])
    shown = session.pop(SHOWN_ONCE, None)
    if not shown or shown.get("user") != user.id:
        shown = None
    labels = {name: inst.model.entity(name).plural.get(language()) for name in owned}
    return {**(context or form_context(user)), "user": user, "tokens": tokens,
            "sessions": sessions, "shown": shown, "delegate_name": names.get(
                user.delegation.get("delegate")),
            "owned": [(labels[n], len(ids)) for n, ids in owned.items()]}


def _version(form: MultiDict) -> int | None:
    text = form.get("version", "")
    if not text.isdigit() or len(text) > 9:
        raise BadRequest(N_("The form is missing its version: open the page again."))
    return int(text)


def password_link(user_id: int) -> ResponseReturnValue:
    who = people_admin()
    _show_once("link", user_id, _link_url(changes.issue_password_link(
        get_instance(), who, user_id, _secret())))
    flash(gettext("A new one-time link was made; earlier links no longer work."), "success")
    return redirect(url_for("admin.user", user_id=user_id))


def deactivate(user_id: int) -> ResponseReturnValue:
    who = people_admin()
    hand_to = _user_choice(request.form.get("hand_to"))
    done = changes.deactivate(get_instance(), who, user_id, hand_to)
    flash(gettext("Deactivated: %(sessions)s session(s) and %(tokens)s API token(s) ended; "
                  "%(records)s open record(s) handed over.", sessions=done.sessions,
                  tokens=done.tokens, records=done.handed_over) if hand_to else
          gettext("Deactivated: %(sessions)s session(s) and %(tokens)s API token(s) ended.",
                  sessions=done.sessions, tokens=done.tokens), "success")
    return redirect(url_for("admin.user", user_id=user_id))


def reactivate(user_id: int) -> ResponseReturnValue:
    changes.reactivate(get_instance(), people_admin(), user_id)
    flash(gettext("Active again. Give them a new password link if they need one."), "success")
    return redirect(url_for("admin.user", user_id=user_id))


def delegation(user_id: int) -> ResponseReturnValue:
    who = people_admin()
    form = request.form
    try:
        changes.set_delegation(get_instance(), who, user_id,
                               _user_choice(form.get("delegate")),
                               _day(form.get("away_from")), _day(form.get("away_until")))
    except ValidationFailed as exc:
        flash(gettext("Delegation not saved: %(problems)s.", problems="; ".join(
            gettext(m) for messages in exc.errors.values() for m in messages)), "error")
        return redirect(url_for("admin.user", user_id=user_id), 303)
    flash(gettext("Delegation saved."), "success")
    return redirect(url_for("admin.user", user_id=user_id))


def new_token(user_id: int) -> ResponseReturnValue:
    who = people_admin()
    label = request.form.get("label", "").strip()[:255] or None
    _show_once("token", user_id, changes.create_token(get_instance(), who, user_id, label))
    flash(gettext("API token created. Copy it now: it is not shown again."), "success")
    return redirect(url_for("admin.user", user_id=user_id))


def revoke_token(user_id: int, token_id: int) -> ResponseReturnValue:
    if not changes.revoke_token(get_instance(), people_admin(), user_id, token_id):
        raise NotFound(N_("That token does not exist (any more)."))
    flash(gettext("API token revoked: it stopped working at once."), "success")
    return redirect(url_for("admin.user", user_id=user_id))


# -- helpers ----------------------------------------------------------------------------------

def _show_once(kind: str, user_id: int, value: str) -> None:
    session[SHOWN_ONCE] = {"kind": kind, "user": user_id, "value": value}


def _secret() -> str:
    return str(current_app.config["SECRET_KEY"])


def _link_url(token: str) -> str:
    return url_for("password.set_password", token=token, _external=True)


def _user_choice(text: str | None) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 18:
        raise BadRequest(N_("Pick a user from the list."))
    return int(text)


def _day(text: str | None) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(gettext("'%(text)s' is not a date: write it as 2026-03-31.",
                                 text=text[:20])) from None
