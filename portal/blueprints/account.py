"""The signed-in user's own account settings."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user

from portal.blueprints.auth import auth_limit
from portal.errors import refused_form, unit_of_work
from portal.extensions import db, limiter
from portal.forms.auth import ChangePasswordForm
from portal.security import login_required_active
from portal.services import accounts
from portal.services.errors import PasswordRejected

bp = Blueprint("account", __name__, url_prefix="/account")


def _password_page(form):
    return render_template("account/change_password.html", form=form)


@bp.route("/password", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
@login_required_active
@unit_of_work
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        # A wrong current password keeps its failure count and any lock (CurrentPasswordWrong keeps writes).
        refused_form(form, _password_page, field=form.current_password, fields={PasswordRejected: form.password})
        accounts.change_password(
            db.session, current_user._get_current_object(), form.current_password.data, form.password.data
        )
        # The session token rotated: every other session is over; keep this one, and renew this
        # browser's remember cookie if it had one (the old one now names a dead token).
        remembered = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies
        login_user(current_user._get_current_object(), remember=remembered)
        flash("Your password is changed. You are signed out everywhere else.", "success")
        return redirect(url_for("main.dashboard"))
    return _password_page(form), 422 if form.errors else 200
