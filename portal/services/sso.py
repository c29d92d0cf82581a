"""Single sign-on with OpenID Connect: the one place for the providers, the role a provider's claims give,
the rules for linking an identity to an account, the claims read into a new account, and whether staff
must sign in through a provider.

The protocol (state, nonce, PKCE S256, the ID token's signature, issuer, audience, expiry and nonce) is
Authlib's Flask client (``init_app`` registers one client per configured provider on each app); this
module decides what a verified sign-in may do. The accounts themselves (creation, the sign-in rules
for locked and suspended accounts) stay in ``portal.services.accounts``, which the blueprint calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.models import Identity, Role, User, utcnow
from portal.services import audit, settings
from portal.services.errors import Conflict, DomainError, NotFound

EXTENSION = "portal.sso"
LOGOUT_URL = "sso_logout_url"  # the browser session's key for the provider's end-session URL, after sign-out
REQUIRED_FOR_STAFF = "sso_required_for_staff"  # a ProgramSetting: 1 = staff and admins sign in through a provider


@dataclass(frozen=True)
class Provider:
    name: str
    label: str
    create_accounts: bool
    allowed_domains: tuple[str, ...]
    staff_domains: tuple[str, ...]
    staff_groups: tuple[str, ...]
    groups_claim: str
    claims: dict

    @property
    def allows_staff(self) -> bool:
        return bool(self.staff_domains or self.staff_groups)


def _provider(conf: dict) -> Provider:
    return Provider(
        name=conf["name"],
        label=conf["label"],
        create_accounts=conf["create_accounts"],
        allowed_domains=tuple(conf["allowed_domains"]),
        staff_domains=tuple(conf["staff_domains"]),
        staff_groups=tuple(conf["staff_groups"]),
        groups_claim=conf["groups_claim"],
        claims=dict(conf["claims"]),
    )


def providers() -> list[Provider]:
    """The configured providers, in their configured order (the buttons on the sign-in pages)."""
    return [_provider(conf) for conf in current_app.config["OIDC_PROVIDERS"]]


def find_provider(name: str) -> Provider | None:
    return next((p for p in providers() if p.name == name), None)


def provider(name: str) -> Provider:
    found = find_provider(name)
    if found is None:
        raise NotFound("There is no such sign-in provider.")
    return found


def init_app(app: Flask) -> None:
    """One Authlib client per provider, on this app (the discovery document is fetched at first use)."""
    oauth = OAuth()
    oauth.init_app(app)
    for conf in app.config["OIDC_PROVIDERS"]:
        oauth.register(
            conf["name"],
            client_id=conf["client_id"],
            client_secret=conf["client_secret"],
            server_metadata_url=conf["server_metadata_url"],
            client_kwargs={
                "scope": conf["scopes"],
                "code_challenge_method": "S256",
                "default_timeout": app.config["OIDC_TIMEOUT_SECONDS"],
            },
        )
    app.extensions[EXTENSION] = oauth


def client(name: str):
    """Authlib's Flask client of the provider ``name`` (FlaskOAuth2App)."""
    return current_app.extensions[EXTENSION].create_client(provider(name).name)


# --- what a verified sign-in says --------------------------------------------------------------------------------


class SsoFailed(DomainError):
    """A sign-in through a provider that cannot go on; ``reason`` is the audit log's machine-readable word.
    Raised by ``refuse``, which has written its audit entry: that entry stands, nothing else was written."""

    keeps_writes = True

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class SsoForbidden(SsoFailed):
    """The person is not let in this way (a domain, an unverified address, no account to create)."""

    status_code = 403


def refuse(session: Session, prov_name: str | None, reason: str, message: str, forbidden: bool = False) -> SsoFailed:
    """The refusal of a sign-in through a provider, with its audit entry written: ``raise refuse(...)``."""
    failed(session, reason, prov_name)
    return (SsoForbidden if forbidden else SsoFailed)(reason, message)


@dataclass(frozen=True)
class Claims:
    """What a verified ID token (and the userinfo endpoint) said about the person."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    groups: tuple[str, ...] = ()
    profile: dict = field(default_factory=dict)  # name, company, job_title, as the provider's mapping reads them

    @property
    def domain(self) -> str | None:
        return self.email.rpartition("@")[2] if self.email and "@" in self.email else None


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _text(value: object, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def claims_kept(prov: Provider, claims: dict | None) -> dict | None:
    """Of a provider's claims, those the portal reads (kept in the browser's signed session between the
    callback and the POST that acts on them)."""
    if claims is None:
        return None
    wanted = {"iss", "sub", "email", "email_verified", prov.groups_claim, *prov.claims.values()}
    return {k: v for k, v in claims.items() if k in wanted}


def read_claims(session: Session, prov: Provider, id_claims: dict, userinfo: dict | None = None) -> Claims:
    """The person as the provider describes them: issuer and subject from the ID token (checked by Authlib),
    the rest from the userinfo endpoint when it answered for the same subject, else from the ID token."""
    issuer, subject = id_claims.get("iss"), id_claims.get("sub")
    if not isinstance(issuer, str) or not isinstance(subject, str) or not issuer or not subject:
        raise refuse(session, prov.name, "bad_token", "The provider's answer did not say who you are.")
    merged = dict(id_claims)
    if userinfo:
        if userinfo.get("sub") != subject:
            raise refuse(
                session, prov.name, "bad_token", "The provider's answer did not match the person who signed in."
            )
        merged.update({k: v for k, v in userinfo.items() if k not in ("iss", "sub", "aud", "exp", "iat", "nonce")})
    email = merged.get("email")
    email = email.strip().lower() if isinstance(email, str) and "@" in email else None
    groups = merged.get(prov.groups_claim) or ()
    groups = tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, (list, tuple)) else ()
    limits = {"name": 120, "company": 160, "job_title": 160}
    profile = {key: _text(merged.get(claim), limits[key]) for key, claim in prov.claims.items()}
    return Claims(issuer, subject, email, _truthy(merged.get("email_verified")), groups, profile)


def role_for(prov: Provider, claims: Claims) -> Role:
    """The role a first sign-in gives: admin only for a verified address on the OIDC_ADMIN_EMAILS allow-list
    (through a provider trusted for staff), staff for a verified address in the provider's staff domains or a
    staff group in its groups claim, otherwise advocate."""
    if not (claims.email and claims.email_verified and prov.allows_staff):
        return Role.ADVOCATE
    if claims.email in current_app.config["OIDC_ADMIN_EMAILS"]:
        return Role.ADMIN
    if claims.domain in prov.staff_domains or set(claims.groups) & set(prov.staff_groups):
        return Role.STAFF
    return Role.ADVOCATE


@dataclass(frozen=True)
class Decision:
    """What a verified sign-in leads to: ``sign_in`` (a linked identity), ``link`` (an account has the verified
    address: the person proves it is theirs with its password), ``join`` (a new advocate, after the terms),
    ``create`` (a new staff member or admin, ``role``)."""

    kind: str
    user: User | None = None
    identity: Identity | None = None
    role: Role = Role.ADVOCATE


def find_identity(session: Session, issuer: str, subject: str) -> Identity | None:
    return session.scalar(select(Identity).where(Identity.issuer == issuer, Identity.subject == subject))


def decide(session: Session, prov: Provider, claims: Claims) -> Decision:
    """The linking rules: an identity is found by (issuer, subject), never by email; an account with the same
    address is linked only when the provider verified the address (and the person then proves ownership);
    a new account only when the provider may create it."""
    if prov.allowed_domains and claims.domain not in prov.allowed_domains:
        domain = claims.domain or "this domain"
        message = f"Addresses at {domain} cannot sign in with {prov.label}."
        raise refuse(session, prov.name, "domain_not_allowed", message, forbidden=True)
    identity = find_identity(session, claims.issuer, claims.subject)
    if identity is not None:
        return Decision("sign_in", session.get(User, identity.user_id), identity)
    if not claims.email or not claims.email_verified:
        raise refuse(
            session,
            prov.name,
            "email_unverified",
            f"{prov.label} has not confirmed your email address, so we cannot connect it to an account. "
            "Confirm it with the provider, or sign in with your password.",
            forbidden=True,
        )
    existing = session.scalar(select(User).where(User.email == claims.email))
    if existing is not None:
        return Decision("link", existing)
    role = role_for(prov, claims)
    if role != Role.ADVOCATE:
        return Decision("create", role=role)
    if not prov.create_accounts:
        raise refuse(
            session,
            prov.name,
            "not_allowed",
            f"There is no account for {claims.email}, and {prov.label} cannot create one. "
            "Join the program with the registration form instead.",
            forbidden=True,
        )
    return Decision("join")


def link(session: Session, user: User, prov: Provider, claims: Claims, actor_id: int | None) -> Identity:
    """Link the identity to the account (audited); one that another account holds is refused."""
    held = find_identity(session, claims.issuer, claims.subject)
    if held is not None:
        if held.user_id == user.id:
            return held
        raise Conflict(f"This {prov.label} identity is already linked to another account.")
    identity = Identity(
        user_id=user.id,
        issuer=claims.issuer,
        subject=claims.subject,
        provider=prov.name,
        email=claims.email,
        last_used_at=utcnow(),
    )
    session.add(identity)
    session.flush()
    audit.record(session, "sso.link", actor_id, user, provider=prov.name, identity_id=identity.id)
    return identity


def used(identity: Identity) -> None:
    identity.last_used_at = utcnow()


def failed(session: Session, reason: str, prov_name: str | None, user: User | None = None) -> None:
    """A refused sign-in through a provider, in the audit log as password sign-ins' are."""
    audit.record(session, "auth.sign_in_failed", None, user, reason=reason, via="sso", provider=prov_name)


# --- the account's identities ------------------------------------------------------------------------------------


def identities(session: Session, user: User) -> list[Identity]:
    return list(session.scalars(select(Identity).where(Identity.user_id == user.id).order_by(Identity.created_at)))


def remove_identity(session: Session, user: User, identity_id: int) -> Identity:
    """Unlink one of the user's identities, never the last way they can sign in (audited)."""
    identity = session.get(Identity, identity_id)
    if identity is None or identity.user_id != user.id:
        raise NotFound("That sign-in method is not linked to your account.")
    others = session.scalar(
        select(func.count()).select_from(Identity).where(Identity.user_id == user.id, Identity.id != identity.id)
    )
    password_counts = user.password_hash is not None and not (user.is_staff and required_for_staff(session))
    if not others and not password_counts:
        raise Conflict(
            "This is the only way you can sign in: link another provider"
            + ("" if user.is_staff else " or set a password")
            + " before you remove it."
        )
    session.delete(identity)
    audit.record(session, "sso.unlink", user.id, user, provider=identity.provider, identity_id=identity.id)
    return identity


# --- the program setting -----------------------------------------------------------------------------------------


def required_for_staff(session: Session) -> bool:
    """Whether staff and admins must sign in through a provider (their password sign-in is refused): the
    program setting "sso_required_for_staff" (Admin → Settings)."""
    return bool(settings.get(session, REQUIRED_FOR_STAFF))


def _staff_can_sign_in(value: int | bool) -> None:
    """On only with a provider that can sign staff in (staff domains or groups): otherwise no staff member
    or admin could sign in at all."""
    if value and not any(p.allows_staff for p in providers()):
        raise Conflict(
            "No sign-in provider is configured for staff (staff_domains or staff_groups): staff and admins "
            "could not sign in at all. Configure one first."
        )


settings.GUARDS[REQUIRED_FOR_STAFF] = _staff_can_sign_in


def set_required_for_staff(session: Session, value: bool, actor_id: int | None) -> None:
    """Turn the requirement on or off (through the settings: checked, audited as "settings.update")."""
    settings.save(session, {REQUIRED_FOR_STAFF: bool(value)}, actor_id)


# --- signing out -------------------------------------------------------------------------------------------------


def logout_url(signed_in: dict | None, return_to: str) -> str | None:
    """Where to send the browser to end the provider's session too (RP-initiated logout), when the session
    signed in through a provider that has an end_session_endpoint; None otherwise, or when the provider
    cannot be reached (the portal's own sign-out has happened either way)."""
    if not isinstance(signed_in, dict) or find_provider(signed_in.get("provider") or "") is None:
        return None  # not signed in through a provider, or one no longer configured
    try:
        app_client = client(signed_in["provider"])
        if not app_client.load_server_metadata().get("end_session_endpoint"):
            return None
        return app_client.create_logout_url(
            post_logout_redirect_uri=return_to,
            id_token_hint=signed_in.get("id_token"),
            client_id=app_client.client_id,
        )["url"]
    except (OSError, ValueError):  # unreachable, or a broken discovery document
        return None
