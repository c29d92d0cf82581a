"""Sign-up, email verification, sign-in, sign-out and password reset."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from portal.extensions import db, limiter
from portal.forms.auth import ConfirmForm, ForgotPasswordForm, LoginForm, RegisterForm, ResetPasswordForm
from portal.security import client_ip, safe_next
from portal.services import accounts
from portal.services.errors import DomainError, InvalidToken, PasswordRejected

bp = Blueprint("auth", __name__, url_prefix="/auth")


def auth_limit():
    return current_app.config["AUTH_RATE_LIMIT"]


REGISTER_DONE = (
    "Thanks! If this address can be used, we have sent it an email. Open the link in it to confirm your address."
)
RESET_DONE = "If an account uses that address, we have sent it a link to reset the password. It is valid for one hour."


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    form = RegisterForm()
    if form.validate_on_submit():
        reg = accounts.Registration(
            name=form.name.data,
            email=form.email.data,
            password=form.password.data,
            company=form.company.data,
            job_title=form.job_title.data,
            accepted_terms=form.accept_terms.data,
            ip_address=client_ip(),
            referred_by_id=session.get("referred_by"),
        )
        try:
            accounts.register_advocate(db.session, reg)
        except PasswordRejected as err:
            form.password.errors.append(err.message)
        except DomainError as err:
            flash(err.message, "error")
        else:
            db.session.commit()
            return redirect(url_for("auth.check_email"))
    return render_template("auth/register.html", form=form), 200 if request.method == "GET" or not form.errors else 422


@bp.route("/check-email")
def check_email():
    return render_template("auth/check_email.html", message=REGISTER_DONE)


@bp.route("/verify/<token>")
def verify_email(token):
    """Show a button; the state change happens on POST so link scanners cannot consume the link."""
    form = ConfirmForm()
    return render_template("auth/verify.html", form=form, token=token)


@bp.route("/verify/<token>", methods=["POST"])
def verify_email_confirm(token):
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("auth/verify.html", form=form, token=token), 400
    try:
        user = accounts.verify_email(db.session, token)
    except InvalidToken as err:
        db.session.rollback()
        return render_template("auth/link_invalid.html", message=err.message), 400
    db.session.commit()
    if user.status.value == "active":
        flash("Your email is confirmed and your account is ready. Welcome!", "success")
    else:
        flash(
            "Your email is confirmed. The program team will review your application shortly; "
            "we will email you when you are approved.",
            "success",
        )
    return redirect(url_for("main.account_status") if current_user.is_authenticated else url_for("auth.login"))


@bp.route("/resend-verification", methods=["POST"])
@limiter.limit(auth_limit)
def resend_verification():
    form = ConfirmForm()
    if current_user.is_authenticated and form.validate_on_submit():
        accounts.resend_verification(db.session, current_user)
        db.session.commit()
        flash("We have sent you a new confirmation link.", "success")
    return redirect(url_for("main.account_status"))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
def login():
    next_url = request.args.get("next")
    if current_user.is_authenticated:
        return redirect(safe_next(next_url))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(db.session, form.email.data, form.password.data)
        except DomainError as err:
            db.session.commit()  # keep the failure count and any lock
            flash(err.message, "error")
            status = 401
        else:
            db.session.commit()
            session.clear()  # no fixation: a fresh session for the signed-in user
            login_user(user, remember=form.remember.data)
            if not user.is_approved:
                return redirect(url_for("main.account_status"))
            return redirect(safe_next(next_url))
    elif request.method == "POST":
        status = 422
    return render_template(
        "auth/login.html", form=form, next=next_url if next_url and safe_next(next_url) == next_url else None
    ), status


@bp.route("/logout", methods=["POST"])
def logout():
    form = ConfirmForm()
    if not form.validate_on_submit():
        return redirect(url_for("main.index"))
    if current_user.is_authenticated:
        accounts.end_all_sessions(db.session, current_user)
        db.session.commit()
    session.clear()
    logout_user()  # after clear(): it leaves the note that tells Flask-Login to delete the remember cookie
    flash("You are signed out.", "success")
    return redirect(url_for("main.index"))


@bp.route("/forgot-password", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        accounts.request_password_reset(db.session, form.email.data)
        db.session.commit()
        flash(RESET_DONE, "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot_password.html", form=form), 422 if form.errors else 200


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
def reset_password(token):
    try:
        accounts.user_for_reset_token(db.session, token)
    except InvalidToken as err:
        return render_template("auth/link_invalid.html", message=err.message), 400
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(db.session, token, form.password.data)
        except PasswordRejected as err:
            form.password.errors.append(err.message)
        except InvalidToken as err:
            return render_template("auth/link_invalid.html", message=err.message), 400
        else:
            db.session.commit()
            session.clear()
            logout_user()  # after clear(), so the remember cookie is deleted too
            flash("Your password is changed. Sign in with the new one.", "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/reset_password.html", form=form, token=token), 422 if form.errors else 200
