"""The signed-in user's own account settings."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user

from portal.blueprints.auth import auth_limit
from portal.extensions import db, limiter
from portal.forms.auth import ChangePasswordForm
from portal.security import login_required_active
from portal.services import accounts
from portal.services.errors import DomainError, PasswordRejected

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.route("/password", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
@login_required_active
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            accounts.change_password(
                db.session, current_user._get_current_object(), form.current_password.data, form.password.data
            )
        except PasswordRejected as err:
            form.password.errors.append(err.message)
        except accounts.CurrentPasswordWrong as err:
            db.session.commit()  # keep the failure count and any lock
            form.current_password.errors.append(err.message)
        except DomainError as err:
            form.current_password.errors.append(err.message)
        else:
            db.session.commit()
            # The session token rotated: every other session is over; keep this one, and renew this
            # browser's remember cookie if it had one (the old one now names a dead token).
            remembered = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies
            login_user(current_user._get_current_object(), remember=remembered)
            flash("Your password is changed. You are signed out everywhere else.", "success")
            return redirect(url_for("main.dashboard"))
    return render_template("account/change_password.html", form=form), 422 if form.errors else 200
