"""`/set-password/<token>`: where a user sets their password with the one-time link an
administrator gave them (`runtime.write.accounts.issue_password_link`). No sign-in: the
signed link is the proof; it works once, for LINK_LIFETIME, while it is the newest. Then
the user signs in as usual. The page is the plain sign-in card even in a browser where
someone is signed in (`actor=None`)."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from runtime.core.errors import ValidationFailed
from runtime.http.current import get_instance
from runtime.http.web.layout import render
from runtime.write import accounts as changes


def register(app: Flask) -> None:
    bp = Blueprint("password", __name__)
    bp.add_url_rule("/set-password/<token>", "set_password", set_password_page,
                    methods=["GET", "POST"])
    app.register_blueprint(bp)


def set_password_page(token: str) -> ResponseReturnValue:
    inst, secret = get_instance(), str(current_app.config["SECRET_KEY"])
    try:
        user = changes.check_password_link(inst, secret, token)
    except changes.LinkError as exc:
        return render("admin/set_password.html", problem=gettext(str(exc)), user=None,
                      actor=None, status=400)
    errors: list[str] = []
    if request.method == "POST":
        password = request.form.get("password", "")
        if password != request.form.get("again", ""):
            errors.append(gettext("The two passwords differ; type the same one twice."))
        else:
            try:
                changes.use_password_link(inst, secret, token, password)
            except ValidationFailed as exc:
                errors += [gettext("The password: %(problem)s.", problem=gettext(m))
                           for m in exc.errors.get("password", [])]
            else:
                flash(gettext("Your password is set. Sign in with it now."), "success")
                return redirect(url_for("auth.login"))
    return render("admin/set_password.html", problem=None, user=user, errors=errors,
                  actor=None, status=422 if errors else 200)
