"""What the portal holds about an advocate: download it, change the email, delete the account.

Later domains (participations, points, redemptions) add their part of the export with
``register_export_section`` and their part of the erasure with ``register_erasure_step``.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import current_app
from sqlalchemy import delete, update

from portal.models import Consent, OutboxMessage, Status, User, utcnow
from portal.services import audit
from portal.services.accounts import get_by_email, normalize_email
from portal.services.errors import Conflict, DomainError, InvalidToken
from portal.services.outbox import external_url, queue_email
from portal.services.passwords import verify_password
from portal.services.profiles import availability, get_profile
from portal.services.tokens import fingerprint, make_token, read_token

ExportSection = Callable[[Any, User], tuple[str, Any]]
ErasureStep = Callable[[Any, User], None]
EXPORT_SECTIONS: list[ExportSection] = []
ERASURE_STEPS: list[ErasureStep] = []


def register_export_section(fn: ExportSection) -> ExportSection:
    EXPORT_SECTIONS.append(fn)
    return fn


def register_erasure_step(fn: ErasureStep) -> ErasureStep:
    ERASURE_STEPS.append(fn)
    return fn


def _iso(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


@register_export_section
def _account(session, user: User):
    return "account", {
        "id": user.id, "email": user.email, "name": user.name, "company": user.company,
        "job_title": user.job_title, "role": user.role.value, "status": user.status.value,
        "created_at": _iso(user.created_at), "email_verified_at": _iso(user.email_verified_at),
        "approved_at": _iso(user.approved_at), "last_login_at": _iso(user.last_login_at),
    }


@register_export_section
def _consents(session, user: User):
    return "consents", [{"kind": c.kind, "version": c.version, "given_at": _iso(c.given_at),
                         "ip_address": c.ip_address} for c in user.consents]


@register_export_section
def _profile(session, user: User):
    p = get_profile(session, user)
    upcoming = [{"starts_on": _iso(b.starts_on), "ends_on": _iso(b.ends_on), "note": b.note} for b in p.blackouts]
    return "profile", {
        "industry": p.industry.name if p.industry else None,
        "company_size": p.size_band.name if p.size_band else None,
        "country": p.country.name if p.country else None,
        "region": p.region.name if p.region else None,
        "products": [x.name for x in p.products],
        "use_cases": [t.name for t in p.use_cases],
        "topics": [t.name for t in p.topics],
        "story": p.story,
        "linkedin_url": p.linkedin_url,
        "show_in_directory": p.show_in_directory,
        "show_on_leaderboard": p.show_on_leaderboard,
        "confirmed_at": _iso(p.confirmed_at),
        "preferences": {
            "activities": [{"activity": pref.activity_type.name, "opted_in": pref.opted_in, "note": pref.note}
                           for pref in p.preferences],
            "digest": p.digest.value,
            "notify_opportunities": p.notify_opportunities,
            "notify_reminders": p.notify_reminders,
            "notify_news": p.notify_news,
        },
        "availability": {
            "max_asks_per_month": p.max_asks_per_month,
            "max_asks_per_quarter": p.max_asks_per_quarter,
            "paused_until": _iso(p.paused_until),
            "timezone": p.timezone,
            "blackouts": upcoming,
            "status": availability(p).label,
        },
    }


def export_user_data(session, user: User) -> dict:
    data: dict[str, Any] = {"exported_at": utcnow().isoformat(), "site": current_app.config["SITE_NAME"]}
    for section in EXPORT_SECTIONS:
        key, value = section(session, user)
        data[key] = value
    return data


# --- deletion -------------------------------------------------------------------------------------------


def delete_account(session, user: User, password: str) -> None:
    """Erase or anonymise personal data; keep the rows program totals need, without personal data."""
    if not verify_password(user.password_hash, password):
        raise DomainError("That password is not right.")
    original_email, name = user.email, user.name
    # Earlier queued mail to this person carries personal data: drop what was not sent yet, blank the rest.
    session.execute(delete(OutboxMessage).where(OutboxMessage.user_id == user.id, OutboxMessage.status != "sent"))
    session.execute(update(OutboxMessage).where(OutboxMessage.user_id == user.id)
                    .values(recipient="erased", body_text="", body_html="", subject="(erased)"))
    for step in ERASURE_STEPS:
        step(session, user)
    profile = get_profile(session, user)
    session.delete(profile)
    session.execute(delete(Consent).where(Consent.user_id == user.id))
    user.email = f"deleted-{user.id}@deleted.invalid"
    user.name = "Deleted advocate"
    user.company = user.job_title = None
    user.password_hash = None
    user.status = Status.DELETED
    user.referred_by_id = None
    user.rotate_session_token()
    audit.record(session, "user.delete_self", user.id, user)
    session.flush()
    # The goodbye message is the one mail that must still reach the old address.
    queue_email(session, to=original_email, subject="Your advocate account is deleted", template="account_deleted",
                user_id=None, name=name)


# --- email change -----------------------------------------------------------------------------------------------

CHANGE_EMAIL = "change-email"


def request_email_change(session, user: User, password: str, new_email: str) -> None:
    if not verify_password(user.password_hash, password):
        raise DomainError("That password is not right.")
    new_email = normalize_email(new_email)
    if new_email == user.email:
        raise DomainError("That is already your email address.")
    token = make_token(CHANGE_EMAIL, user.id, fingerprint(user.email), e=new_email)
    link = external_url("profile.confirm_email_change", token=token)
    if get_by_email(session, new_email) is None:
        queue_email(session, to=new_email, subject="Confirm your new email address", template="email_change_confirm",
                    user_id=user.id, name=user.name, confirm_url=link)
    # If the address is taken we say nothing different here (no enumeration); the link would fail anyway.
    queue_email(session, to=user.email, subject="A change of your email address was requested",
                template="email_change_notice", user_id=user.id, name=user.name, new_email=new_email)


def confirm_email_change(session, token: str) -> User:
    data = read_token(CHANGE_EMAIL, token, current_app.config["VERIFY_TOKEN_MAX_AGE"])
    user = session.get(User, data["u"])
    new_email = data.get("e")
    if user is None or user.status == Status.DELETED or not isinstance(new_email, str) \
            or data.get("s") != fingerprint(user.email):
        raise InvalidToken("This link has already been used or is no longer valid.")
    if get_by_email(session, new_email) is not None:
        raise Conflict("Another account already uses that address.")
    old = user.email
    user.email = new_email
    user.rotate_session_token()
    queue_email(session, to=old, subject="Your email address was changed", template="email_changed",
                user_id=user.id, name=user.name, new_email=new_email, support_url=external_url("main.index"))
    audit.record(session, "user.email_change", user.id, user)
    return user
