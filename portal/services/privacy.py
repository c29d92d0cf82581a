"""What the portal holds about an advocate: download it, change the email, delete the account.

Every table that holds an advocate's data has a section in the export (below) and, where it holds
personal data, a step in the erasure (``portal.services.erasure``). A new table adds its part with
``register_export_section`` and ``register_erasure_step``; ``tests/test_erasure.py`` scans every
table and column after a deletion, so a forgotten one shows up there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import current_app
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.models import (
    AdvocateProfile,
    AuditEvent,
    Consent,
    DigestDelivery,
    EntrySource,
    Identity,
    OutboxMessage,
    OutboxStatus,
    Participation,
    PointsEntry,
    Redemption,
    Status,
    User,
    UserBadge,
    utcnow,
)
from portal.services import audit, erasure, points

# The same lock as sign-in and change-password (accounts keeps the rules; they are not repeated here).
from portal.services.accounts import CurrentPasswordWrong, _count_failure, _is_locked, get_by_email, normalize_email
from portal.services.errors import Conflict, DomainError, InvalidToken
from portal.services.fatigue import availability
from portal.services.outbox import external_url, queue_email
from portal.services.passwords import verify_password
from portal.services.profiles import read_profile
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


for _step in erasure.STEPS:
    register_erasure_step(_step)


def _iso(value: date | datetime | None) -> str | None:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


@register_export_section
def _account(session: Session, user: User):
    return "account", {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "company": user.company,
        "job_title": user.job_title,
        "role": user.role.value,
        "status": user.status.value,
        "created_at": _iso(user.created_at),
        "email_verified_at": _iso(user.email_verified_at),
        "approved_at": _iso(user.approved_at),
        "last_login_at": _iso(user.last_login_at),
        "updated_at": _iso(user.updated_at),
    }


@register_export_section
def _consents(session: Session, user: User):
    return "consents", [
        {"kind": c.kind, "version": c.version, "given_at": _iso(c.given_at), "ip_address": c.ip_address}
        for c in user.consents
    ]


@register_export_section
def _profile(session: Session, user: User):
    p = read_profile(session, user)
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
        "stale_reminder_sent_at": _iso(p.stale_reminder_sent_at),
        "preferences": {
            "activities": [
                {"activity": pref.activity_type.name, "opted_in": pref.opted_in, "note": pref.note}
                for pref in p.preferences
            ],
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


@register_export_section
def _participations(session: Session, user: User):
    rows = session.scalars(
        select(Participation)
        .where(Participation.user_id == user.id)
        .order_by(Participation.requested_at, Participation.id)
    )
    return "participations", [
        {
            "opportunity": p.opportunity.title,
            "activity": p.opportunity.activity_type.name,
            "event_date": _iso(p.opportunity.event_date),
            "status": p.status.value,
            "message": p.message,
            "message_from_the_program": p.admin_message,
            "limit_override_reason": p.override_reason,
            "requested_at": _iso(p.requested_at),
            "decided_at": _iso(p.decided_at),
            "engaged_at": _iso(p.engaged_at),
            "completed_at": _iso(p.completed_at),
        }
        for p in rows
    ]


@register_export_section
def _points(session: Session, user: User):
    rows = session.scalars(
        select(PointsEntry).where(PointsEntry.user_id == user.id).order_by(PointsEntry.created_at, PointsEntry.id)
    )
    return "points", {
        "balance": points.balance(session, user.id),
        "lifetime_earned": points.lifetime_earned(session, user.id),
        "entries": [
            {
                "at": _iso(e.created_at),
                "amount": e.amount,
                "kind": e.kind.value,
                "source": e.source.value,
                "reason": e.reason,
            }
            for e in rows
        ],
    }


@register_export_section
def _redemptions(session: Session, user: User):
    rows = session.scalars(
        select(Redemption).where(Redemption.user_id == user.id).order_by(Redemption.created_at, Redemption.id)
    )
    return "redemptions", [
        {
            "reward": r.reward.name,
            "points_cost": r.points_cost,
            "status": r.status.value,
            "note": r.note,
            "ordered_at": _iso(r.created_at),
            "fulfilled_at": _iso(r.fulfilled_at),
            "cancelled_at": _iso(r.cancelled_at),
        }
        for r in rows
    ]


@register_export_section
def _badges(session: Session, user: User):
    rows = session.scalars(
        select(UserBadge).where(UserBadge.user_id == user.id).order_by(UserBadge.awarded_at, UserBadge.id)
    )
    return "badges", [
        {
            "badge": b.badge.name,
            "description": b.badge.description,
            "awarded_at": _iso(b.awarded_at),
            "reason": b.reason,
        }
        for b in rows
    ]


@register_export_section
def _referrals(session: Session, user: User):
    """The advocate's own part of each referral: that it happened, when, and the points it brought.

    Not the colleague's name or address: that is the colleague's personal data, theirs to download (and
    to erase), and a file that leaves the portal should not carry it."""
    referred = session.execute(
        select(User.id, User.created_at).where(User.referred_by_id == user.id).order_by(User.created_at, User.id)
    ).all()
    credits = {
        e.source_id: e
        for e in session.scalars(
            select(PointsEntry).where(PointsEntry.user_id == user.id, PointsEntry.source == EntrySource.REFERRAL)
        )
    }
    made = []
    for ref_id, created_at in referred:
        credit = credits.get(ref_id)
        made.append(
            {
                "signed_up_on": _iso(created_at.date()),
                "points_credited": credit.amount if credit else 0,
                "credited_at": _iso(credit.created_at) if credit else None,
            }
        )
    return "referrals", {"you_were_referred": user.referred_by_id is not None, "referrals_made": made}


@register_export_section
def _emails(session: Session, user: User):
    """Email the portal sent (or will send) to the advocate: what and when, not the bodies (they hold
    one-time links)."""
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.user_id == user.id)
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    )
    return "emails", [
        {
            "subject": m.subject,
            "kind": m.template,
            "status": m.status.value,
            "created_at": _iso(m.created_at),
            "sent_at": _iso(m.sent_at),
        }
        for m in rows
    ]


@register_export_section
def _digests(session: Session, user: User):
    rows = session.scalars(
        select(DigestDelivery)
        .where(DigestDelivery.user_id == user.id)
        .order_by(DigestDelivery.sent_at, DigestDelivery.id)
    )
    return "digests", [
        {
            "period": d.period,
            "period_key": d.period_key,
            "opportunities": d.opportunity_count,
            "sent_at": _iso(d.sent_at),
        }
        for d in rows
    ]


@register_export_section
def _activity_log(session: Session, user: User):
    """Audit events done by the advocate or to their account (without who on the program's side did it)."""
    rows = session.scalars(
        select(AuditEvent)
        .where(
            or_(AuditEvent.actor_id == user.id, (AuditEvent.target_type == "user") & (AuditEvent.target_id == user.id))
        )
        .order_by(AuditEvent.created_at, AuditEvent.id)
    )
    return "activity_log", [
        {
            "action": e.action,
            "at": _iso(e.created_at),
            "details": e.details or {},
            "ip_address": e.ip_address if e.actor_id == user.id else None,
        }
        for e in rows
    ]


@register_export_section
def _identities(session: Session, user: User):
    """The single sign-on identities linked to the account."""
    rows = session.scalars(select(Identity).where(Identity.user_id == user.id).order_by(Identity.created_at))
    return "sign_in_identities", [
        {
            "provider": i.provider,
            "issuer": i.issuer,
            "subject": i.subject,
            "email": i.email,
            "linked_at": _iso(i.created_at),
            "last_used_at": _iso(i.last_used_at),
        }
        for i in rows
    ]


def export_user_data(session: Session, user: User) -> dict:
    data: dict[str, Any] = {"exported_at": utcnow().isoformat(), "site": current_app.config["SITE_NAME"]}
    for section in EXPORT_SECTIONS:
        key, value = section(session, user)
        data[key] = value
    return data


# --- the password that guards deletion and email change -------------------------------------------------------

LOCKED = "Too many wrong passwords: your account is locked for a while. Try again later, or reset your password."
WRONG_PASSWORD = "That password is not right."


def check_password(session: Session, user: User, password: str) -> None:
    """Check the password of the signed-in user as change-password does: a wrong one counts toward the
    account's lock (a hijacked session cannot guess without limit) and a locked account takes no guesses.

    Raises ``CurrentPasswordWrong``; the caller commits then (the failure count and any lock must stay
    although the action is refused)."""
    now = utcnow()
    if _is_locked(user, now):
        verify_password(None, password)  # the same work as a real check
        raise CurrentPasswordWrong(LOCKED)
    if not verify_password(user.password_hash, password):
        _count_failure(session, user, now)
        raise CurrentPasswordWrong(WRONG_PASSWORD)
    user.failed_login_count = 0


# --- deletion -------------------------------------------------------------------------------------------

# Mail not yet handed to SMTP is dropped at erasure; mail being sent right now (or sent) is blanked, so the
# sender's own update still finds its row.
UNSENT = (OutboxStatus.QUEUED, OutboxStatus.FAILED)


def delete_account(session: Session, user: User, password: str) -> None:
    """Erase or anonymise personal data; keep the rows program totals need, without personal data.

    ``user`` must be the User itself, not Flask-Login's ``current_user`` proxy (the audit row names
    the type of its target)."""
    if type(user) is not User:  # a LocalProxy passes isinstance(); its type does not
        raise TypeError(f"delete_account needs a User, not {type(user).__name__}")
    check_password(session, user, password)
    _erase(session, user)


DELETE_ACCOUNT = "delete-account"
OWNER_LINK_INVALID = "This link has already been used, has expired, or is not for the account you are signed in to."


def _owner_link(purpose: str, token: str, user: User, state: str) -> dict:
    """The payload of a link emailed to an account without a password (deletion, email change), if it was
    made for this signed-in user in this state and they still have no password; else InvalidToken."""
    data = read_token(purpose, token, current_app.config["RESET_TOKEN_MAX_AGE"])
    if data.get("u") != user.id or data.get("s") != state or user.password_hash:
        raise InvalidToken(OWNER_LINK_INVALID)
    return data


def request_deletion_link(session: Session, user: User) -> None:
    """An account without a password (it signs in only through single sign-on) confirms its deletion from a
    link emailed to its own address (valid RESET_TOKEN_MAX_AGE), as others confirm it with their password."""
    if user.password_hash:
        raise DomainError("Confirm the deletion with your password.")
    token = make_token(DELETE_ACCOUNT, user.id, fingerprint(user.email, user.status.value))
    queue_email(
        session,
        to=user.email,
        subject="Confirm deleting your advocate account",
        template="account_delete_confirm",
        user_id=user.id,
        name=user.name,
        confirm_url=external_url("profile.confirm_delete", token=token),
    )
    audit.record(session, "user.delete_link", user.id, user)


def delete_account_by_link(session: Session, user: User, token: str) -> None:
    """The deletion confirmed from ``request_deletion_link``'s link, by the signed-in owner of the account."""
    if type(user) is not User:
        raise TypeError(f"delete_account_by_link needs a User, not {type(user).__name__}")
    _owner_link(DELETE_ACCOUNT, token, user, fingerprint(user.email, user.status.value))
    _erase(session, user)


def _erase(session: Session, user: User) -> None:
    original_email = user.email
    # Open commitments are withdrawn, open orders cancelled, free text blanked, ... (erasure.py). The steps
    # run first: the mails they queue ("you withdrew from ...") are dropped with the rest just below.
    for step in ERASURE_STEPS:
        step(session, user)
    # Earlier queued mail to this person carries personal data: drop what was not sent yet, blank the rest.
    session.execute(delete(OutboxMessage).where(OutboxMessage.user_id == user.id, OutboxMessage.status.in_(UNSENT)))
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.user_id == user.id)
        .values(recipient="erased", body_text="", body_html="", subject="(erased)", headers=None, last_error=None)
    )
    # Mail to others about this person (admins told of an applicant): unsent is dropped, sent is blanked.
    session.execute(
        delete(OutboxMessage).where(OutboxMessage.about_user_id == user.id, OutboxMessage.status.in_(UNSENT))
    )
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.about_user_id == user.id)
        .values(body_text="", body_html="", subject="(erased)", last_error=None)
    )
    profile = session.get(AdvocateProfile, user.id)  # none for an applicant never approved
    if profile is not None:
        session.delete(profile)
    session.execute(delete(Consent).where(Consent.user_id == user.id))
    user.email = f"deleted-{user.id}@deleted.invalid"
    user.name = "Deleted advocate"
    user.company = user.job_title = None
    user.password_hash = None
    user.status = Status.DELETED
    user.referred_by_id = None
    user.last_login_at = None
    user.rotate_session_token()
    event = audit.record(session, "user.delete_self", user.id, user)
    event.ip_address = None  # the erasure clears this person's addresses from the log; this row too
    session.flush()
    # The goodbye message is the one mail that must still reach the old address. It carries no name: its
    # outbox row keeps only the address it must be sent to (see tests/test_erasure.py).
    queue_email(
        session, to=original_email, subject="Your advocate account is deleted", template="account_deleted", user_id=None
    )


# --- email change -----------------------------------------------------------------------------------------------

CHANGE_EMAIL = "change-email"


def request_email_change(session: Session, user: User, password: str, new_email: str) -> None:
    check_password(session, user, password)
    _send_change_links(session, user, new_email)


CHANGE_EMAIL_OWNER = "change-email-owner"


def request_email_change_by_link(session: Session, user: User, new_email: str) -> None:
    """An account without a password (single sign-on only) proves it owns its current address instead: a link
    to it (valid RESET_TOKEN_MAX_AGE) confirms the change, and only then the new address is sent its own
    link (``confirm_current_address``), as after a password."""
    if user.password_hash:
        raise DomainError("Confirm the change with your password.")
    new_email = _new_address(user, new_email)
    token = make_token(CHANGE_EMAIL_OWNER, user.id, fingerprint(user.email), e=new_email)
    queue_email(
        session,
        to=user.email,
        subject="Confirm changing your email address",
        template="email_change_owner",
        user_id=user.id,
        name=user.name,
        new_email=new_email,
        confirm_url=external_url("profile.confirm_current_address", token=token),
    )
    audit.record(session, "user.email_change_link", user.id, user)


def confirm_current_address(session: Session, user: User, token: str) -> str:
    """The signed-in owner opened the link sent to their current address: the new address gets its link.
    Returns the new address."""
    new_email = _owner_link(CHANGE_EMAIL_OWNER, token, user, fingerprint(user.email)).get("e")
    if not isinstance(new_email, str):
        raise InvalidToken(OWNER_LINK_INVALID)
    _send_change_links(session, user, new_email)
    return new_email


def _new_address(user: User, new_email: str) -> str:
    new_email = normalize_email(new_email)
    if new_email == user.email:
        raise DomainError("That is already your email address.")
    return new_email


def _send_change_links(session: Session, user: User, new_email: str) -> None:
    new_email = _new_address(user, new_email)
    token = make_token(CHANGE_EMAIL, user.id, fingerprint(user.email), e=new_email)
    link = external_url("profile.confirm_email_change", token=token)
    if get_by_email(session, new_email) is None:
        queue_email(
            session,
            to=new_email,
            subject="Confirm your new email address",
            template="email_change_confirm",
            user_id=user.id,
            name=user.name,
            confirm_url=link,
        )
    # If the address is taken we say nothing different here (no enumeration); the link would fail anyway.
    queue_email(
        session,
        to=user.email,
        subject="A change of your email address was requested",
        template="email_change_notice",
        user_id=user.id,
        name=user.name,
        new_email=new_email,
    )


def confirm_email_change(session: Session, token: str) -> User:
    data = read_token(CHANGE_EMAIL, token, current_app.config["VERIFY_TOKEN_MAX_AGE"])
    user = session.get(User, data["u"])
    new_email = data.get("e")
    if (
        user is None
        or user.status == Status.DELETED
        or not isinstance(new_email, str)
        or data.get("s") != fingerprint(user.email)
    ):
        raise InvalidToken("This link has already been used or is no longer valid.")
    if get_by_email(session, new_email) is not None:
        raise Conflict("Another account already uses that address.")
    old = user.email
    try:
        # The check above reads; another account can still take the address before this write (a sign-up
        # committed in between): the unique constraint decides, and the loser is refused like above.
        with session.begin_nested():
            user.email = new_email
            session.flush()
    except IntegrityError:
        raise Conflict("Another account already uses that address.") from None
    user.rotate_session_token()
    queue_email(
        session,
        to=old,
        subject="Your email address was changed",
        template="email_changed",
        user_id=user.id,
        name=user.name,
        new_email=new_email,
        support_url=external_url("main.index"),
    )
    audit.record(session, "user.email_change", user.id, user)
    return user
