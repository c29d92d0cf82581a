"""Sign-up, email verification, sign-in, sign-out and password reset."""

from __future__ import annotations

from functools import partial

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from portal.errors import FLASH, refused_form, unit_of_work
from portal.extensions import db, limiter
from portal.forms.auth import ConfirmForm, ForgotPasswordForm, LoginForm, RegisterForm, ResetPasswordForm
from portal.forms.invitations import InvitedForm
from portal.security import client_ip, even_timing, safe_next
from portal.services import accounts, invitations, sso
from portal.services.errors import PasswordRejected
from portal.services.outbox import external_url

bp = Blueprint("auth", __name__, url_prefix="/auth")


def auth_limit():
    return current_app.config["AUTH_RATE_LIMIT"]


REGISTER_DONE = (
    "Thanks! If this address can be used, we have sent it an email. Open the link in it to confirm your address."
)
RESET_DONE = "If an account uses that address, we have sent it a link to reset the password. It is valid for one hour."


def _register_page(form):
    return render_template("auth/register.html", form=form)


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
@even_timing
@unit_of_work
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
        refused_form(form, _register_page, field=FLASH, fields={PasswordRejected: form.password})
        accounts.register_advocate(db.session, reg)
        return redirect(url_for("auth.check_email"))
    return _register_page(form), 422 if form.errors else 200


@bp.route("/check-email")
def check_email():
    return render_template("auth/check_email.html", message=REGISTER_DONE)


@bp.route("/verify/<token>")
def verify_email(token):
    """Show a button; the state change happens on POST so link scanners cannot consume the link."""
    form = ConfirmForm()
    return render_template("auth/verify.html", form=form, token=token)


@bp.route("/verify/<token>", methods=["POST"])
@unit_of_work
def verify_email_confirm(token):
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("auth/verify.html", form=form, token=token), 400
    user = accounts.verify_email(db.session, token)  # an InvalidToken: the "link not valid" page
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
@unit_of_work
def resend_verification():
    form = ConfirmForm()
    if current_user.is_authenticated and form.validate_on_submit():
        accounts.resend_verification(db.session, current_user)
        flash("We have sent you a new confirmation link.", "success")
    return redirect(url_for("main.account_status"))


def _login_page(form, next_url):
    return render_template(
        "auth/login.html", form=form, next=next_url if next_url and safe_next(next_url) == next_url else None
    )


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
@unit_of_work
def login():
    next_url = request.args.get("next")
    if current_user.is_authenticated:
        return redirect(safe_next(next_url))
    form = LoginForm()
    if form.validate_on_submit():
        # A refused sign-in keeps its failure count and any lock (accounts.LoginFailed keeps writes).
        refused_form(form, partial(_login_page, next_url=next_url), field=FLASH, status=401)
        user = accounts.authenticate(db.session, form.email.data, form.password.data)
        session.clear()  # no fixation: a fresh session for the signed-in user
        login_user(user, remember=form.remember.data)
        if not user.is_approved:
            return redirect(url_for("main.account_status"))
        return redirect(safe_next(next_url))
    return _login_page(form, next_url), 422 if request.method == "POST" else 200


@bp.route("/logout", methods=["POST"])
@unit_of_work
def logout():
    form = ConfirmForm()
    if not form.validate_on_submit():
        return redirect(url_for("main.index"))
    if current_user.is_authenticated:
        accounts.end_all_sessions(db.session, current_user)
    # Signed in through a provider that supports RP-initiated logout: end its session too.
    provider_logout = sso.logout_url(session.get("sso"), external_url("main.index"))
    session.clear()
    logout_user()  # after clear(): it leaves the note that tells Flask-Login to delete the remember cookie
    flash("You are signed out.", "success")
    if provider_logout:  # a page of ours sends the browser on (CSP form-action stops a form's redirect off-site)
        session[sso.LOGOUT_URL] = provider_logout
        return redirect(url_for("sso.signed_out"))
    return redirect(url_for("main.index"))


@bp.route("/forgot-password", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
@even_timing
@unit_of_work
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        accounts.request_password_reset(db.session, form.email.data)
        flash(RESET_DONE, "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot_password.html", form=form), 422 if form.errors else 200


def _reset_page(form, token):
    return render_template("auth/reset_password.html", form=form, token=token)


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
@unit_of_work
def reset_password(token):
    accounts.user_for_reset_token(db.session, token)  # an InvalidToken: the "link not valid" page
    form = ResetPasswordForm()
    if form.validate_on_submit():
        refused_form(form, partial(_reset_page, token=token), field=form.password)
        accounts.reset_password(db.session, token, form.password.data)
        session.clear()
        logout_user()  # after clear(), so the remember cookie is deleted too
        flash("Your password is changed. Sign in with the new one.", "success")
        return redirect(url_for("auth.login"))
    return _reset_page(form, token), 422 if form.errors else 200


def _invited_page(form, token, email):
    return render_template("auth/invited.html", form=form, token=token, email=email, refuse_form=ConfirmForm())


@bp.route("/invited/<token>/no-thanks", methods=["POST"])
@limiter.limit(auth_limit)
@unit_of_work
def invitation_refused(token):
    """ "No thanks, don't invite me again": the address is never invited (nor nominated) again."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    invitations.refuse(db.session, token)  # an InvalidToken: the "link not valid" page
    return render_template("auth/invitation_refused.html")


@bp.route("/invited/<token>", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
@unit_of_work
def invited(token):
    """Sign up from an invitation: the known name, company and job title (editable), the address fixed,
    their own password and consent; the account is ready at once and they are signed in."""
    invitation = invitations.for_token(db.session, token)  # an InvalidToken: the "link not valid" page
    if current_user.is_authenticated:
        flash("You are signed in already. Sign out first to accept an invitation for someone else.", "error")
        return redirect(url_for("main.dashboard"))
    email = invitation.email
    if request.method == "GET":
        form = InvitedForm(
            formdata=None,
            data={
                "name": invitation.name,
                "company": invitation.company or "",
                "job_title": invitation.job_title or "",
            },
        )
        return _invited_page(form, token, email)
    form = InvitedForm()
    if form.validate_on_submit():
        refused_form(
            form, partial(_invited_page, token=token, email=email), field=None, fields={PasswordRejected: form.password}
        )
        user = invitations.accept(
            db.session,
            token,
            invitations.Acceptance(
                name=form.name.data,
                company=form.company.data,
                job_title=form.job_title.data,
                password=form.password.data,
                accepted_terms=form.accept_terms.data,
                ip_address=client_ip(),
            ),
        )
        session.clear()  # no fixation: a fresh session for the new member
        login_user(user)
        ready = "Welcome to the advocate program! Your account is ready: complete your profile when you can."
        waiting = "Welcome! The program team approves your account shortly; we will email you."  # a setting
        flash(ready if user.is_approved else waiting, "success")
        return redirect(url_for("main.dashboard"))
    return _invited_page(form, token, email), 422
