"""Single sign-on with OpenID Connect: start, the provider's callback, finishing the sign-in, a new advocate's
terms, linking an existing account by its password, the signed-in user's linked identities, and the way on
to the provider's sign-out.

A GET never writes (the house rule): the provider sends the browser back with a GET, so the callback only
checks the answer (Authlib: state, PKCE verifier, the ID token's signature, issuer, audience, expiry and
nonce) and keeps the outcome, verified claims or the reason it failed, in the browser's signed session
for five minutes; its page posts itself on (static/js/sso-continue.js, or the person's click) to
``finish``, which acts on it in one unit of work: the sign-in, or the refusal's audit entry."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from authlib.integrations.base_client import OAuthError
from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user
from joserfc.errors import ExpiredTokenError, JoseError

from portal.blueprints.auth import auth_limit
from portal.errors import FLASH, refused_back_to, refused_form, unit_of_work
from portal.extensions import db, limiter
from portal.forms.auth import ConfirmForm
from portal.forms.sso import SsoJoinForm, SsoLinkForm
from portal.models import Role, User
from portal.security import client_ip, login_required_active, safe_next
from portal.services import accounts, sso
from portal.services.errors import Conflict, NotAllowed
from portal.services.outbox import external_url

bp = Blueprint("sso", __name__, url_prefix="/auth/sso")

RESULT = "sso_result"  # the callback's outcome, waiting for finish's POST
PENDING = "sso_pending"  # a verified sign-in waiting for the terms (join) or the password (link)
RESULT_SECONDS = 5 * 60
PENDING_SECONDS = 15 * 60
SIGNED_IN = "sso"  # the provider and ID token of a session signed in through a provider (for sign-out)


@bp.app_context_processor
def sign_in_providers():
    """The "Sign in with ..." buttons of the sign-in and registration pages."""
    return {"sso_providers": sso.providers}


def _provider_or_404(provider_id: str) -> sso.Provider:
    prov = sso.find_provider(provider_id)
    if prov is None:
        abort(404)
    return prov


@dataclass(frozen=True)
class Failure:
    reason: str
    message: str


def _continue_page(result: dict):
    """Keep the outcome for finish's POST and show the page that posts itself on."""
    session[RESULT] = {**result, "at": int(time.time())}
    return render_template("auth/sso_continue.html", form=ConfirmForm())


def _failed(prov: sso.Provider, failure: Failure):
    return _continue_page({"ok": False, "provider": prov.name, "reason": failure.reason, "message": failure.message})


def _unreachable(prov: sso.Provider) -> Failure:
    return Failure(
        "provider_unreachable",
        f"We could not reach {prov.label} just now. Please try again in a few minutes, or sign in with your password.",
    )


@bp.route("/<provider_id>/start")
def start(provider_id):
    """Send the browser to the provider, with state, nonce and a PKCE S256 challenge kept in the session.
    ``link=1`` (signed in): link the identity to the current account instead of signing in."""
    prov = _provider_or_404(provider_id)
    linking = request.args.get("link") == "1"
    if linking and not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if current_user.is_authenticated and not linking:
        return redirect(url_for("main.dashboard"))
    session.pop(PENDING, None)
    session["sso_link_for"] = current_user.id if linking else None
    session["sso_next"] = request.args.get("next") or None
    try:
        return sso.client(prov.name).authorize_redirect(
            external_url("sso.callback", provider_id=prov.name), nonce=secrets.token_urlsafe(24)
        )
    except (OSError, ValueError, OAuthError, RuntimeError):  # discovery unreachable, or a broken document
        return _failed(prov, _unreachable(prov))


def _verified(prov: sso.Provider) -> tuple[dict, str | None] | Failure:
    """Exchange the code (state checked, PKCE verifier sent) and check the ID token (signature, issuer,
    audience, expiry, nonce): Authlib does both. The claims kept and the ID token, or why it failed."""
    app_client = sso.client(prov.name)
    again = "Please start again."
    try:
        token = app_client.authorize_access_token()
        userinfo = None
        if token.get("userinfo") and app_client.load_server_metadata().get("userinfo_endpoint"):
            userinfo = dict(app_client.userinfo())
    except OAuthError as err:
        if err.error == "access_denied":
            return Failure("consent_refused", f"The sign-in with {prov.label} was cancelled, so you are not signed in.")
        if err.error == "mismatching_state":
            return Failure("state_mismatch", f"That sign-in has expired or was not started here. {again}")
        return Failure("provider_error", f"{prov.label} refused the sign-in. {again}")
    except ExpiredTokenError:
        return Failure("token_expired", f"The sign-in has expired. {again}")
    except (JoseError, KeyError, TypeError):
        return Failure("bad_token", f"We could not verify the answer from {prov.label}. {again}")
    except (OSError, ValueError):
        return _unreachable(prov)
    if not token.get("userinfo"):  # no ID token: not an OpenID Connect answer
        return Failure("bad_token", f"We could not verify the answer from {prov.label}. {again}")
    kept = {"id": sso.claims_kept(prov, dict(token["userinfo"])), "userinfo": sso.claims_kept(prov, userinfo)}
    return kept, token.get("id_token")


@bp.route("/<provider_id>/callback")
def callback(provider_id):
    prov = _provider_or_404(provider_id)
    link_for, next_url = session.pop("sso_link_for", None), session.pop("sso_next", None)
    outcome = _verified(prov)
    if isinstance(outcome, Failure):
        return _failed(prov, outcome)
    claims, id_token = outcome
    return _continue_page(
        {
            "ok": True,
            "provider": prov.name,
            "claims": claims,
            "id_token": id_token,
            "next": next_url,
            "link_for": link_for,
        }
    )


def _error_page(form):
    return render_template("auth/sso_error.html", message=form.form_errors[-1])


@bp.route("/finish", methods=["POST"])
@limiter.limit(auth_limit)
@unit_of_work
def finish():
    """Act on the callback's outcome, once: sign in (or go on to the terms or the password), or record why not."""
    form = ConfirmForm()
    result = session.pop(RESULT, None)
    if not form.validate_on_submit() or not isinstance(result, dict):
        return redirect(url_for("auth.login"))
    prov = sso.find_provider(result.get("provider") or "")
    if prov is None or time.time() - result.get("at", 0) > RESULT_SECONDS:
        flash("That sign-in has expired. Please start again.", "error")
        return redirect(url_for("auth.login"))
    if not result.get("ok"):
        sso.failed(db.session, result["reason"], prov.name)
        status = 502 if result["reason"] == "provider_unreachable" else 400
        return render_template("auth/sso_error.html", message=result["message"]), status
    # A refusal shows its message on the sign-in error page; its audit entry stands (the errors keep writes).
    refused_form(form, _error_page, statuses={sso.SsoForbidden: 403, NotAllowed: 403, Conflict: 409}, status=400)
    claims = sso.read_claims(db.session, prov, result["claims"]["id"], result["claims"]["userinfo"])
    if result.get("link_for") is not None:
        return _link_signed_in(prov, claims, result["link_for"])
    decision = sso.decide(db.session, prov, claims)
    if decision.kind == "sign_in":
        user = accounts.sign_in_external(db.session, decision.user, via="sso", provider=prov.name)
        sso.used(decision.identity)
    elif decision.kind == "create":
        user = accounts.create_internal_user(
            db.session, claims.email, decision.role, name=claims.profile.get("name") or None
        )
        user.company = claims.profile.get("company") or None
        user.job_title = claims.profile.get("job_title") or None
        sso.link(db.session, user, prov, claims, actor_id=user.id)
        accounts.sign_in_external(db.session, user, via="sso", provider=prov.name)
    else:  # link or join: a page of ours first; nothing is written yet
        _keep_pending(prov, claims, result, decision.kind)
        return redirect(url_for("sso.link_account" if decision.kind == "link" else "sso.join"))
    return _sign_in(user, prov.name, result.get("id_token"), result.get("next"))


def _link_signed_in(prov: sso.Provider, claims: sso.Claims, user_id: int):
    """Linking from the account's settings: the person is signed in and proved the identity at the provider."""
    if not current_user.is_authenticated or current_user.id != user_id:
        raise sso.refuse(db.session, prov.name, "state_mismatch", "Sign in again, then link the provider.")
    sso.link(db.session, current_user._get_current_object(), prov, claims, actor_id=user_id)
    flash(f"{prov.label} is linked: you can sign in with it.", "success")
    return redirect(url_for("sso.identities"))


def _sign_in(user: User, prov_name: str, id_token: str | None, next_url: str | None):
    """A fresh session for the user (no fixation), remembering the provider for sign-out. Inside the unit of
    work: if its commit fails, the browser's session is put back as it was."""
    session.clear()
    login_user(user)
    session[SIGNED_IN] = {"provider": prov_name, "id_token": id_token}
    if not user.is_approved:
        return redirect(url_for("main.account_status"))
    return redirect(safe_next(next_url))


def _keep_pending(prov: sso.Provider, claims: sso.Claims, result: dict, kind: str) -> None:
    session[PENDING] = {
        "kind": kind,
        "provider": prov.name,
        "iss": claims.issuer,
        "sub": claims.subject,
        "email": claims.email,
        "profile": claims.profile,
        "id_token": result.get("id_token"),
        "next": result.get("next"),
        "at": int(time.time()),
    }


def _pending(kind: str):
    data = session.get(PENDING)
    if not isinstance(data, dict) or data.get("kind") != kind or time.time() - data.get("at", 0) > PENDING_SECONDS:
        return None, None
    prov = sso.find_provider(data.get("provider") or "")
    return (data, prov) if prov is not None else (None, None)


def _claims_of(pending: dict) -> sso.Claims:
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
    user = accounts.get_by_email(db.session, pending["email"]) if pending is not None else None
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
    return render_template(
        "account/identities.html",
        linked=sso.identities(db.session, user),
        labels={p.name: p.label for p in sso.providers()},
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
    """After the portal's sign-out: on to the provider's end-session endpoint (a Refresh header, no script;
    a form's redirect off-site would be stopped by the CSP's form-action), which sends the browser back."""
    target = session.pop(sso.LOGOUT_URL, None)
    if not isinstance(target, str) or not target.startswith(("https://", "http://")):
        return redirect(url_for("main.index"))
    response = make_response(render_template("auth/sso_signed_out.html", target=target))
    response.headers["Refresh"] = f"0; url={target}"
    return response
