"""Single sign-on with OpenID Connect: start, the provider's callback, a new advocate's terms, linking an
existing account by its password, and the signed-in user's linked identities.

The callback is the one GET that writes: the provider sends the browser back with a GET (response_mode
query), so after the provider has been heard it begins its own unit of work as a writer and commits once
(``_write``); what fails before or during it writes only its audit entry, and nothing else is left."""

from __future__ import annotations

import secrets
import time

from authlib.integrations.base_client import OAuthError
from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user
from joserfc.errors import ExpiredTokenError, JoseError

from portal.blueprints.auth import auth_limit
from portal.database import begin_write
from portal.errors import FLASH, refused_back_to, refused_form, unit_of_work
from portal.extensions import db, limiter
from portal.forms.auth import ConfirmForm
from portal.forms.sso import SsoJoinForm, SsoLinkForm
from portal.models import Role, User
from portal.security import client_ip, login_required_active, safe_next
from portal.services import accounts, sso
from portal.services.errors import DomainError, NotFound
from portal.services.outbox import external_url

bp = Blueprint("sso", __name__, url_prefix="/auth/sso")

PENDING = "sso_pending"  # a verified sign-in waiting for the terms (join) or the password (link)
PENDING_SECONDS = 15 * 60
SIGNED_IN = "sso"  # the provider and ID token of a session signed in through a provider (for sign-out)


@bp.app_context_processor
def sign_in_providers():
    """The "Sign in with ..." buttons of the sign-in and registration pages."""
    return {"sso_providers": sso.providers}


def _failure_page(err: sso.SsoFailed):
    return render_template("auth/sso_error.html", message=err.message), err.status_code


def _record_failure(reason: str, prov_name: str | None, user: User | None = None) -> None:
    """The audit entry of a refused sign-in, in its own unit of work (nothing else is written)."""
    db.session.rollback()
    begin_write(db.session)
    sso.failed(db.session, reason, prov_name, user)
    db.session.commit()


def _fail(err: sso.SsoFailed, prov_name: str | None):
    _record_failure(err.reason, prov_name)
    return _failure_page(err)


def _sign_in(user: User, prov_name: str, id_token: str | None, next_url: str | None = None):
    """After the commit: a fresh session for the user (no fixation), remembering the provider for sign-out."""
    session.clear()
    login_user(user)
    session[SIGNED_IN] = {"provider": prov_name, "id_token": id_token}
    if not user.is_approved:
        return redirect(url_for("main.account_status"))
    return redirect(safe_next(next_url))


def _provider_or_404(name):
    try:
        return sso.provider(name)
    except NotFound:
        abort(404)


@bp.route("/<name>/start")
def start(name):
    """Send the browser to the provider, with state, nonce and a PKCE S256 challenge kept in the session.
    ``link=1`` (signed in): link the identity to the current account instead of signing in."""
    prov = _provider_or_404(name)
    linking = request.args.get("link") == "1"
    if linking and not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if current_user.is_authenticated and not linking:
        return redirect(url_for("main.dashboard"))
    session.pop(PENDING, None)
    session["sso_link_for"] = current_user.id if linking else None
    session["sso_next"] = request.args.get("next") if request.args.get("next") else None
    try:
        return sso.client(name).authorize_redirect(
            external_url("sso.callback", name=name), nonce=secrets.token_urlsafe(24)
        )
    except (OSError, ValueError, OAuthError, RuntimeError):  # discovery unreachable, or a broken document
        return _fail(_unreachable(prov), name)


def _unreachable(prov) -> sso.SsoFailed:
    return sso.SsoFailed(
        "provider_unreachable",
        f"We could not reach {prov.label} just now. Please try again in a few minutes, or sign in with your password.",
        status=502,
    )


def _verified_claims(prov):
    """Exchange the code (PKCE verifier, state checked) and check the ID token (signature, issuer, audience,
    expiry, nonce): Authlib does it; every way it can fail becomes an SsoFailed with its reason."""
    app_client = sso.client(prov.name)
    try:
        token = app_client.authorize_access_token()
    except OAuthError as err:
        if err.error == "access_denied":
            raise sso.SsoFailed(
                "consent_refused", f"The sign-in with {prov.label} was cancelled, so you are not signed in."
            ) from None
        if err.error == "mismatching_state":
            raise sso.SsoFailed(
                "state_mismatch", "That sign-in link has expired or was not started here. Please start again."
            ) from None
        raise sso.SsoFailed("provider_error", f"{prov.label} refused the sign-in. Please start again.") from None
    except ExpiredTokenError:
        raise sso.SsoFailed("token_expired", "The sign-in has expired. Please start again.") from None
    except (JoseError, KeyError, TypeError):
        raise sso.SsoFailed(
            "bad_token", f"We could not verify the answer from {prov.label}. Please start again."
        ) from None
    except (OSError, ValueError):
        raise _unreachable(prov) from None
    id_claims = token.get("userinfo")
    if not id_claims:
        raise sso.SsoFailed("bad_token", f"We could not verify the answer from {prov.label}. Please start again.")
    userinfo = None
    if app_client.load_server_metadata().get("userinfo_endpoint"):
        try:
            userinfo = dict(app_client.userinfo())
        except (OSError, ValueError):
            raise _unreachable(prov) from None
    return sso.read_claims(prov, dict(id_claims), userinfo), token.get("id_token")


@bp.route("/<name>/callback")
def callback(name):
    prov = _provider_or_404(name)
    link_for, next_url = session.pop("sso_link_for", None), session.pop("sso_next", None)
    try:
        claims, id_token = _verified_claims(prov)
    except sso.SsoFailed as err:
        return _fail(err, name)
    if link_for is not None:
        return _write(lambda: _link_signed_in(prov, claims, link_for), name)
    return _write(lambda: _finish(prov, claims, id_token, next_url), name)


def _write(work, prov_name):
    """The callback's unit of work: begun as a writer, committed once; a refusal keeps only its audit entry."""
    db.session.rollback()
    begin_write(db.session)
    try:
        after_commit = work()
    except sso.SsoFailed as err:
        db.session.rollback()
        return _fail(err, prov_name)
    except DomainError as err:  # locked, suspended (their audit entry stands), linked elsewhere
        if err.keeps_writes:
            db.session.commit()
        else:
            db.session.rollback()
        return render_template("auth/sso_error.html", message=err.message), err.status_code
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()
    return after_commit()


def _link_signed_in(prov, claims, user_id):
    """Linking from the account's settings: the person is signed in, and proved the identity at the provider."""
    if not current_user.is_authenticated or current_user.id != user_id:
        raise sso.SsoFailed("state_mismatch", "Sign in again, then link the provider from your account settings.")
    user = db.session.get(User, user_id)
    sso.link(db.session, user, prov, claims, actor_id=user.id)

    def done():
        flash(f"{prov.label} is linked: you can sign in with it.", "success")
        return redirect(url_for("sso.identities"))

    return done


def _pending_for(prov, claims, id_token, kind, next_url):
    session[PENDING] = {
        "kind": kind,
        "provider": prov.name,
        "iss": claims.issuer,
        "sub": claims.subject,
        "email": claims.email,
        "profile": claims.profile,
        "id_token": id_token,
        "next": next_url,
        "at": int(time.time()),
    }


def _finish(prov, claims, id_token, next_url):
    decision = sso.decide(db.session, prov, claims)
    if decision.kind == "sign_in":
        user = accounts.sign_in_external(db.session, decision.user, via="sso", provider=prov.name)
        sso.used(decision.identity)
    elif decision.kind == "create":
        user = accounts.create_internal_user(
            db.session, claims.email, decision.role, name=claims.profile.get("name") or None
        )
        for key in ("company", "job_title"):
            if claims.profile.get(key):
                setattr(user, key, claims.profile[key])
        sso.link(db.session, user, prov, claims, actor_id=user.id)
        accounts.sign_in_external(db.session, user, via="sso", provider=prov.name)
    else:  # link or join: a page of ours first; nothing is written yet
        _pending_for(prov, claims, id_token, decision.kind, next_url)
        target = url_for("sso.link_account") if decision.kind == "link" else url_for("sso.join")
        return lambda: redirect(target)
    return lambda: _sign_in(user, prov.name, id_token, next_url)


def _pending(kind: str):
    data = session.get(PENDING)
    if not isinstance(data, dict) or data.get("kind") != kind or time.time() - data.get("at", 0) > PENDING_SECONDS:
        return None, None
    try:
        prov = sso.provider(data["provider"])
    except NotFound:
        return None, None
    return data, prov


def _claims_of(pending) -> sso.Claims:
    return sso.Claims(pending["iss"], pending["sub"], pending["email"], True, (), pending["profile"])


def _start_again():
    flash("That sign-in has expired. Please start again.", "error")
    return redirect(url_for("auth.login"))


def _join_page(form, prov=None, pending=None):
    return render_template("auth/sso_join.html", form=form, prov=prov, email=(pending or {}).get("email"))


@bp.route("/join", methods=["GET", "POST"])
@unit_of_work
def join():
    """A first sign-in that creates an advocate: the program terms, and the provider's name, company and job
    title to correct; then a registration like any other (consent recorded, pending approval)."""
    pending, prov = _pending("join")
    if pending is None or not prov.create_accounts:
        return _start_again()
    form = SsoJoinForm(data=pending["profile"]) if request.method == "GET" else SsoJoinForm()
    if form.validate_on_submit():
        refused_form(form, lambda f: _join_page(f, prov, pending), field=FLASH)
        reg = accounts.Registration(
            name=form.name.data,
            email=pending["email"],
            password="",
            company=form.company.data,
            job_title=form.job_title.data,
            accepted_terms=form.accept_terms.data,
            ip_address=client_ip(),
            referred_by_id=session.get("referred_by"),
        )
        user = accounts.register_verified_advocate(db.session, reg)
        sso.link(db.session, user, prov, _claims_of(pending), actor_id=user.id)
        accounts.sign_in_external(db.session, user, via="sso", provider=prov.name)
        return _sign_in(user, prov.name, pending["id_token"], pending["next"])
    return _join_page(form, prov, pending), 422 if form.errors else 200


def _link_page(form, prov=None, pending=None):
    return render_template("auth/sso_link.html", form=form, prov=prov, email=(pending or {}).get("email"))


@bp.route("/link", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
@unit_of_work
def link_account():
    """An account already has the address the provider verified: its password proves it is this person's."""
    pending, prov = _pending("link")
    if pending is None:
        return _start_again()
    user = accounts.get_by_email(db.session, pending["email"])
    if user is None:
        return _start_again()
    form = SsoLinkForm()
    if form.validate_on_submit():
        # A wrong password keeps its failure count and any lock (the errors keep writes).
        refused_form(form, lambda f: _link_page(f, prov, pending), field=form.password, status=401)
        accounts.prove_password(db.session, user, form.password.data)
        sso.link(db.session, user, prov, _claims_of(pending), actor_id=user.id)
        accounts.sign_in_external(db.session, user, via="sso", provider=prov.name)
        return _sign_in(user, prov.name, pending["id_token"], pending["next"])
    return _link_page(form, prov, pending), 422 if form.errors else 200


@bp.route("/identities")
@login_required_active
def identities():
    user = current_user._get_current_object()
    linked = sso.identities(db.session, user)
    labels = {p.name: p.label for p in sso.providers()}
    return render_template(
        "account/identities.html",
        linked=linked,
        labels=labels,
        providers=sso.providers(),
        required=user.role in (Role.STAFF, Role.ADMIN) and sso.required_for_staff(db.session),
        form=ConfirmForm(),
    )


@bp.route("/identities/<int:identity_id>/remove", methods=["POST"])
@login_required_active
@unit_of_work
def remove_identity(identity_id):
    form = ConfirmForm()
    back = url_for("sso.identities")
    if not form.validate_on_submit():
        return redirect(back)
    refused_back_to(back)
    identity = sso.remove_identity(db.session, current_user._get_current_object(), identity_id)
    label = {p.name: p.label for p in sso.providers()}.get(identity.provider, identity.provider)
    flash(f"{label} is no longer linked to your account.", "success")
    return redirect(back)


@bp.route("/signed-out")
def signed_out():
    """After the portal's sign-out: on to the provider's end-session endpoint (a Refresh header, no script),
    which sends the browser back to the start page."""
    target = session.pop(sso.LOGOUT_URL, None)
    if not isinstance(target, str) or not target.startswith(("https://", "http://")):
        return redirect(url_for("main.index"))
    response = make_response(render_template("auth/sso_signed_out.html", target=target))
    response.headers["Refresh"] = f"0; url={target}"
    return response
