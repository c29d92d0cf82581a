"""Invitations: the program asks someone to join (an admin's import now, a staff nomination later).

An invitation carries what is known about the person (name, company, job title, profile fields); its
link is single use and expires (INVITATION_DAYS). Only a hash of the link's token is stored. Accepting
creates the advocate account with the password the person chooses and their consent to the terms; it is
approved at once (the program vouched for them; a nominee's waits for an admin when the program says so)
and its profile is filled with what was known, then announced (``signals.invitation_accepted``: a
nomination counts for its nominator). Nobody else ever sets an account's password. An invitation still
open after REMIND_AFTER_DAYS gets one reminder (``remind_due``, run daily), then nothing.

Nobody is invited who has an account, has a pending invitation, or deleted their account: an erasure
adds a hash of the address to the suppression list (``suppress``, registered as an erasure step).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, delete, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import signals
from portal.models import (
    AdvocateProfile,
    Country,
    Industry,
    Invitation,
    Product,
    Status,
    SuppressedAddress,
    User,
    utcnow,
)
from portal.services import audit, settings
from portal.services.accounts import (
    Registration,
    get_by_email,
    new_advocate,
    normalize_email,
    notify_admins_of_pending,
)
from portal.services.errors import Conflict, DomainError, InvalidToken
from portal.services.outbox import external_url, queue_emails
from portal.services.passwords import check_password_policy, hash_password
from portal.services.privacy import register_erasure_step
from portal.services.profiles import get_profile

IMPORT = "import"
NOMINATION = "nomination"
INVALID_LINK = "This invitation link is not valid. Ask the program team for a new one."
USED_LINK = "This invitation has already been used. Sign in, or reset your password if you forgot it."
EXPIRED_LINK = "This invitation has expired. Ask the program team for a new one."
CHUNK = 500  # addresses per IN (...) lookup
REMIND_AFTER_DAYS = 7  # one reminder this long after the invitation, then nothing
NOMINEES_APPROVED_KEY = "nominees_approved_at_once"


def email_hash(email: str) -> str:
    return hashlib.sha256(normalize_email(email).encode()).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- who may be invited ------------------------------------------------------------------------------------


def _chunks(values: list[str]):
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


@dataclass
class Taken:
    """Which of some addresses may not be invited, and why (one lookup per chunk of addresses)."""

    accounts: set[str] = field(default_factory=set)
    invited: set[str] = field(default_factory=set)
    suppressed: set[str] = field(default_factory=set)

    def reason(self, email: str) -> str | None:
        if email in self.suppressed:
            return "deleted their account: never invited again"
        if email in self.accounts:
            return "already has an account"
        if email in self.invited:
            return "already invited (the invitation is still open)"
        return None


def still_open(now: datetime) -> ColumnElement[bool]:
    """SQL: the invitation may still be used at ``now`` (not accepted, not expired): the rule ``for_token``
    applies to a link, as a condition for lists."""
    return Invitation.accepted_at.is_(None) & (Invitation.expires_at > now)


def taken(session: Session, emails: list[str], now: datetime | None = None) -> Taken:
    """Of these normalised addresses: those with an account (any status but deleted), those with a pending
    unexpired invitation, those on the suppression list."""
    now = now or utcnow()
    out = Taken()
    emails = sorted(set(emails))
    for chunk in _chunks(emails):
        out.accounts.update(session.scalars(select(User.email).where(User.email.in_(chunk))))
        out.invited.update(
            session.scalars(select(Invitation.email).where(Invitation.email.in_(chunk), still_open(now)))
        )
        hashes = {email_hash(e): e for e in chunk}
        found = session.scalars(select(SuppressedAddress.email_hash).where(SuppressedAddress.email_hash.in_(hashes)))
        out.suppressed.update(hashes[h] for h in found)
    return out


def is_suppressed(session: Session, email: str) -> bool:
    return session.get(SuppressedAddress, email_hash(email)) is not None


@register_erasure_step
def suppress(session: Session, user: User) -> None:
    """Erasure step: the address goes on the suppression list (hashed), and the invitations to it go."""
    if user.email and session.get(SuppressedAddress, email_hash(user.email)) is None:
        session.add(SuppressedAddress(email_hash=email_hash(user.email), reason="account deleted"))
    session.execute(
        delete(Invitation).where(or_(Invitation.accepted_user_id == user.id, Invitation.email == user.email))
    )


def refuse(session: Session, token: str) -> None:
    """The invited person says "no thanks": the address goes on the suppression list (hashed), never invited
    or nominated again without their consent, and the invitation is gone (its link stops working)."""
    invitation = for_token(session, token, lock=True)
    if session.get(SuppressedAddress, email_hash(invitation.email)) is None:
        session.add(SuppressedAddress(email_hash=email_hash(invitation.email), reason="declined invitation"))
    audit.record(session, "invitation.refused", None, invitation, source=invitation.source)
    session.delete(invitation)
    session.flush()


# --- creating and sending ----------------------------------------------------------------------------------


@dataclass
class Invitee:
    """What is known about a person to invite (the email normalised by the caller or here)."""

    email: str
    name: str = ""
    company: str = ""
    job_title: str = ""
    industry_id: int | None = None
    country_code: str | None = None
    product_ids: list[int] = field(default_factory=list)

    def profile(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.industry_id:
            data["industry_id"] = self.industry_id
        if self.country_code:
            data["country_code"] = self.country_code
        if self.product_ids:
            data["product_ids"] = sorted(set(self.product_ids))
        return data


def _expiry(now: datetime) -> datetime:
    return now + timedelta(days=current_app.config["INVITATION_DAYS"])


def _message(invitation_id: int, to: str, name: str, token: str, expires_at: datetime) -> dict:
    return {
        "to": to,
        "subject": "You are invited to join the advocate program",
        "template": "invitation",
        "name": name,
        "signup_url": external_url("auth.invited", token=token),
        "expires_on": expires_at.strftime("%d %B %Y"),
        "headers": {"X-Invitation": str(invitation_id)},
    }


def create_many(
    session: Session,
    invitees: list[Invitee],
    actor_id: int | None,
    source: str = IMPORT,
    import_job_id: int | None = None,
) -> int:
    """Invite each person whose address may be invited (bulk insert, then one email each); returns how many
    were invited. Addresses already taken (see ``taken``) and repeats are left out, silently: callers that
    must say why check ``taken`` first."""
    now = utcnow()
    expires = _expiry(now)
    seen: set[str] = set()
    wanted = []
    for person in invitees:
        email = normalize_email(person.email)
        if email and email not in seen:
            seen.add(email)
            wanted.append((email, person))
    blocked = taken(session, [e for e, _ in wanted], now)
    rows, tokens = [], {}
    for email, person in wanted:
        if blocked.reason(email):
            continue
        token = secrets.token_urlsafe(32)
        tokens[email] = token
        rows.append(
            {
                "email": email,
                "name": person.name.strip()[:120],
                "company": person.company.strip()[:160] or None,
                "job_title": person.job_title.strip()[:160] or None,
                "profile": person.profile(),
                "source": source,
                "created_by_id": actor_id,
                "import_job_id": import_job_id,
                "token_hash": token_hash(token),
                "expires_at": expires,
                "created_at": now,
            }
        )
    if not rows:
        return 0
    # Expired invitations to these addresses make way for the new ones (one open invitation per address).
    # In a savepoint: an invitation to one of these addresses committed meanwhile by another request (a
    # nomination invited at once racing an import) breaks the one-open-invitation rule in the database, and
    # is told as a conflict, the caller's transaction intact.
    try:
        with session.begin_nested():
            for chunk in _chunks([r["email"] for r in rows]):
                session.execute(delete(Invitation).where(Invitation.email.in_(chunk), Invitation.accepted_at.is_(None)))
            session.execute(insert(Invitation), rows)
    except IntegrityError:
        raise Conflict("One of these people was invited a moment ago by someone else; try again.") from None
    ids = dict(
        session.execute(
            select(Invitation.email, Invitation.id).where(Invitation.token_hash.in_([r["token_hash"] for r in rows]))
        ).all()
    )
    queue_emails(session, [_message(ids[r["email"]], r["email"], r["name"], tokens[r["email"]], expires) for r in rows])
    return len(rows)


def create(session: Session, invitee: Invitee, actor_id: int | None, source: str = IMPORT) -> Invitation:
    """Invite one person, or refuse with the reason (an account, a pending invitation, a deleted account)."""
    email = normalize_email(invitee.email)
    reason = taken(session, [email]).reason(email)
    if reason:
        raise Conflict(f"{email} cannot be invited: {reason}.")
    create_many(session, [invitee], actor_id, source)
    invitation = session.scalar(select(Invitation).where(Invitation.email == email).order_by(Invitation.id.desc()))
    audit.record(session, "invitation.create", actor_id, invitation, source=source)
    return invitation


# --- the reminder ------------------------------------------------------------------------------------------


def remind_due(session: Session, now: datetime | None = None) -> int:
    """One reminder for each invitation still open (not accepted, not expired) sent more than
    REMIND_AFTER_DAYS ago and not reminded yet; then nothing. A second link goes with it (only hashes are
    kept, so the first link cannot be sent again); both work until the invitation is used or expires.
    Returns how many were reminded."""
    now = now or utcnow()
    due = session.scalars(
        select(Invitation)
        .where(
            still_open(now),
            Invitation.reminded_at.is_(None),
            Invitation.created_at <= now - timedelta(days=REMIND_AFTER_DAYS),
            Invitation.email.not_in(select(User.email).where(User.email.is_not(None))),  # joined another way
        )
        .order_by(Invitation.id)
        .with_for_update(skip_locked=True)
    ).all()
    messages = []
    for invitation in due:
        token = secrets.token_urlsafe(32)
        invitation.reminder_token_hash = token_hash(token)
        invitation.reminded_at = now
        message = _message(invitation.id, invitation.email, invitation.name, token, invitation.expires_at)
        message.update(subject="Reminder: you are invited to join the advocate program", template="invitation_reminder")
        messages.append(message)
    session.flush()
    queue_emails(session, messages)
    if due:
        audit.record(session, "invitation.remind", None, None, count=len(due), ids=[i.id for i in due][:100])
    return len(due)


# --- the link ----------------------------------------------------------------------------------------------


def for_token(session: Session, token: str, lock: bool = False) -> Invitation:
    """The invitation the link stands for, or InvalidToken with a message the person can act on."""
    if not token or len(token) > 200:
        raise InvalidToken(INVALID_LINK)
    hashed = token_hash(token)
    stmt = select(Invitation).where(or_(Invitation.token_hash == hashed, Invitation.reminder_token_hash == hashed))
    if lock:
        stmt = stmt.with_for_update()
    invitation = session.scalar(stmt)
    if invitation is None:
        raise InvalidToken(INVALID_LINK)
    if invitation.accepted_at is not None:
        raise InvalidToken(USED_LINK)
    if invitation.expires_at <= utcnow():
        raise InvalidToken(EXPIRED_LINK)
    return invitation


@dataclass
class Acceptance:
    name: str
    company: str
    job_title: str
    password: str
    accepted_terms: bool
    ip_address: str | None = None


def accept(session: Session, token: str, answer: Acceptance) -> User:
    """Create the invited person's advocate account: their own password, their consent, approved at once,
    the profile filled with what was known. The invitation is used up."""
    invitation = for_token(session, token, lock=True)
    if not answer.accepted_terms:
        raise DomainError("Please accept the program terms to join.")
    check_password_policy(answer.password, invitation.email)
    if get_by_email(session, invitation.email) is not None:
        raise Conflict("An account with this address already exists. Sign in, or reset your password.")
    if is_suppressed(session, invitation.email):
        raise InvalidToken(INVALID_LINK)
    now = utcnow()
    reg = Registration(
        name=answer.name,
        email=invitation.email,
        password=answer.password,
        company=answer.company,
        job_title=answer.job_title,
        accepted_terms=True,
        ip_address=answer.ip_address,
    )
    user = new_advocate(session, reg, invitation.email, hash_password(answer.password))
    # The link came to this address, and the program invited them: verified and approved at once (a
    # nominee: unless the program says their account waits for an admin, like a registration).
    user.email_verified_at = now
    if invitation.source == NOMINATION and not settings.get(session, NOMINEES_APPROVED_KEY):
        user.status = Status.PENDING
    else:
        user.status, user.approved_at = Status.ACTIVE, now
    _fill_profile(session, get_profile(session, user), invitation.profile or {})
    invitation.accepted_at = now
    invitation.accepted_user_id = user.id
    audit.record(session, "invitation.accept", user.id, user, invitation_id=invitation.id, source=invitation.source)
    session.flush()
    if user.status == Status.PENDING:
        notify_admins_of_pending(session, user)
    signals.invitation_accepted.send(session=session, invitation=invitation, user=user)
    return user


def _fill_profile(session: Session, profile: AdvocateProfile, known: dict[str, Any]) -> None:
    """What the program knew, where it still exists (an industry retired since is left out)."""
    if known.get("industry_id") and session.get(Industry, known["industry_id"]) is not None:
        profile.industry_id = known["industry_id"]
    if known.get("country_code") and session.get(Country, known["country_code"]) is not None:
        profile.country_code = known["country_code"]
    if known.get("product_ids"):
        profile.products = list(session.scalars(select(Product).where(Product.id.in_(known["product_ids"]))))
