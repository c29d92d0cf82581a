"""Nominations: a staff member (or an admin) tells the program about a happy customer.

A nomination waits for an admin's review (accept: the customer gets an invitation, through
``invitations``; decline: with a reason the nominator sees and is emailed), unless the program sends
invitations at once (a setting). When the customer signs up from the invitation (``invitations.accept``
announces it: ``signals.invitation_accepted``), the nomination counts as joined for its nominator, who is
emailed.

Nobody is nominated twice: an advocate (or any account), a nomination still open, an invitation still
open, or an address on the suppression list (a deleted account, an unsubscribe: never invited again
without their consent) is refused with the reason (``duplicate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from portal import signals
from portal.models import Invitation, Nomination, NominationStatus, Role, User, utcnow
from portal.services import audit, invitations, paging, settings
from portal.services.accounts import get_by_email, normalize_email
from portal.services.errors import Conflict, DomainError, NotFound
from portal.services.outbox import external_url, queue_email
from portal.services.privacy import register_erasure_step

INVITE_AT_ONCE_KEY = "nominations_invite_at_once"
HOME_ROWS = 10  # nominations on the workspace's home
WAITING = (Nomination.status == NominationStatus.PENDING,)  # what the admin's queue holds
ERASED_NAME = "(a deleted account)"
LOCK_SPACE = 13013  # PostgreSQL advisory locks of nominations: (LOCK_SPACE, hashtext(email))


@dataclass
class Nominee:
    """What the nominator tells about the customer."""

    name: str
    email: str
    company: str = ""
    job_title: str = ""
    reason: str = ""
    account_owner: str = ""


@dataclass
class Duplicate:
    """Why an address cannot be nominated: ``kind`` (suppressed, advocate, account, nominated, invited),
    the message to show, and what it is about (the advocate, the earlier nomination)."""

    kind: str
    message: str
    user_id: int | None = None
    nomination: Nomination | None = None


def _day(when: datetime) -> str:
    return when.strftime("%d %b %Y")


EXPIRED, REFUSED = "expired", "refused"


def lapsed(session: Session, rows: list[Nomination], now: datetime | None = None) -> dict[int, str]:
    """These nominations that were invited but whose invitation can no longer be used, by id: REFUSED when
    the address is on the suppression list (they answered "No thanks, don't invite me again", or left), else
    EXPIRED (it expired unanswered, or a newer invitation replaced it: the person may be nominated again).
    A fixed number of queries whatever the number of rows."""
    now = now or utcnow()
    invited = [n for n in rows if n.status == NominationStatus.INVITED]
    ids = {n.invitation_id for n in invited if n.invitation_id}
    still = set(session.scalars(select(Invitation.id).where(Invitation.id.in_(ids), invitations.still_open(now))))
    gone = [n for n in invited if n.invitation_id not in still]
    refused = invitations.taken(session, [n.email for n in gone], now).suppressed if gone else set()
    return {n.id: REFUSED if n.email in refused else EXPIRED for n in gone}


def _open_nomination(session: Session, email: str, now: datetime) -> Nomination | None:
    """The nomination of this address still open: waiting for review, or invited with the invitation open."""
    rows = session.scalars(
        select(Nomination)
        .where(Nomination.email == email, Nomination.status.in_([NominationStatus.PENDING, NominationStatus.INVITED]))
        .order_by(Nomination.id.desc())
    ).all()
    gone = lapsed(session, rows, now)
    return next((row for row in rows if row.id not in gone), None)


def duplicate(session: Session, email: str, now: datetime | None = None) -> Duplicate | None:
    """Why this address cannot be nominated, or None. The suppression list first: nothing else is told
    about someone who left."""
    now = now or utcnow()
    email = normalize_email(email)
    if invitations.is_suppressed(session, email):
        return Duplicate(
            "suppressed",
            "This person deleted their account or unsubscribed: the program does not invite them again "
            "without their consent.",
        )
    user = get_by_email(session, email)
    if user is not None:
        if user.role == Role.ADVOCATE:
            return Duplicate("advocate", f"{user.name} is already an advocate.", user_id=user.id)
        return Duplicate("account", "This address already has an account at the portal (not an advocate's).")
    nomination = _open_nomination(session, email, now)
    if nomination is not None:
        nominator = session.get(User, nomination.nominator_id) if nomination.nominator_id else None
        by = nominator.name if nominator is not None else "someone no longer with the program"
        state = "waiting for review" if nomination.status == NominationStatus.PENDING else "invited"
        return Duplicate(
            "nominated",
            f"{nomination.name} was already nominated by {by} on {_day(nomination.created_at)} ({state}).",
            nomination=nomination,
        )
    invitation = session.scalar(select(Invitation).where(Invitation.email == email, invitations.still_open(now)))
    if invitation is not None:
        return Duplicate(
            "invited",
            f"An invitation to this address is already pending: sent on {_day(invitation.created_at)}, "
            f"valid until {_day(invitation.expires_at)}.",
        )
    return None


# --- nominating and reviewing -------------------------------------------------------------------------------


def nominate(session: Session, nominee: Nominee, nominator: User) -> Nomination:
    """Record the nomination (refused with the reason when the address is taken, see ``duplicate``); when
    the program sends invitations without review, the customer is invited at once."""
    email = normalize_email(nominee.email)
    _lock_address(session, email)
    found = duplicate(session, email)
    if found is not None:
        raise Conflict(found.message)
    if not nominee.name.strip():
        raise DomainError("Give the customer's name.")
    nomination = Nomination(
        nominator_id=nominator.id,
        email=email,
        name=nominee.name.strip()[:120],
        company=nominee.company.strip()[:160],
        job_title=nominee.job_title.strip()[:160],
        reason=nominee.reason.strip(),
        account_owner=nominee.account_owner.strip()[:120],
        status=NominationStatus.PENDING,
    )
    session.add(nomination)
    session.flush()
    audit.record(session, "nomination.create", nominator.id, nomination, email=email)
    if settings.get(session, INVITE_AT_ONCE_KEY):
        _invite(session, nomination, nominator.id, via="at_once")
    return nomination


def _lock_address(session: Session, email: str) -> None:
    """Nominations of one address one at a time (a double click, two colleagues at once): on PostgreSQL a
    transaction-scoped advisory lock on the address, so the second reads the first's nomination (SQLite's
    writers already take turns: BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(LOCK_SPACE, func.hashtext(email))))


def _invite(session: Session, nomination: Nomination, actor_id: int | None, via: str) -> None:
    invitee = invitations.Invitee(
        email=nomination.email, name=nomination.name, company=nomination.company, job_title=nomination.job_title
    )
    invitation = invitations.create(session, invitee, actor_id, source=invitations.NOMINATION)
    nomination.status = NominationStatus.INVITED
    nomination.invitation_id = invitation.id
    if via == "review":
        nomination.reviewed_by_id, nomination.reviewed_at = actor_id, utcnow()
    audit.record(session, "nomination.invite", actor_id, nomination, via=via, invitation_id=invitation.id)
    session.flush()


def _waiting(session: Session, nomination: Nomination) -> None:
    # Lock the row and read it again: two admins deciding at once must not both succeed.
    session.refresh(nomination, with_for_update=True)
    if nomination.status != NominationStatus.PENDING:
        raise Conflict(f"The nomination of {nomination.name} was already decided ({nomination.status.value}).")


def accept(session: Session, nomination: Nomination, actor_id: int) -> Nomination:
    """The admin accepts: the nominee gets their invitation (refused if the address was taken since)."""
    _waiting(session, nomination)
    if not nomination.email:  # erased since (they joined another way, then deleted their account)
        raise Conflict(
            "This person deleted their account: the program does not invite them again without their consent. "
            "Decline the nomination to close it."
        )
    _invite(session, nomination, actor_id, via="review")
    return nomination


def decline(session: Session, nomination: Nomination, actor_id: int, reason: str) -> Nomination:
    """The admin declines, with a reason the nominator sees on their page and is emailed."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Give the reason: the nominator sees it.")
    _waiting(session, nomination)
    nomination.status = NominationStatus.DECLINED
    nomination.decline_reason = reason[:1000]
    nomination.reviewed_by_id, nomination.reviewed_at = actor_id, utcnow()
    audit.record(session, "nomination.decline", actor_id, nomination, reason=nomination.decline_reason)
    _tell_nominator(session, nomination, "declined")
    session.flush()
    return nomination


def _tell_nominator(session: Session, nomination: Nomination, what: str, about_user_id: int | None = None) -> None:
    nominator = session.get(User, nomination.nominator_id) if nomination.nominator_id else None
    if nominator is None or not nominator.is_active or not nominator.email:
        return
    queue_email(
        session,
        to=nominator.email,
        subject=f"Your nomination of {nomination.name}: "
        + ("they joined the program" if what == "joined" else "not invited"),
        template=f"nomination_{what}",
        user_id=nominator.id,
        about_user_id=about_user_id,  # erased with the nominee
        name=nominator.name,
        nominee=nomination.name,
        company=nomination.company,
        nominated_on=_day(nomination.created_at),
        reason=nomination.decline_reason,
        nominations_url=external_url("staff.nomination", nomination_id=nomination.id),
    )


# --- when the nominee joins ---------------------------------------------------------------------------------


def joined(session: Session, invitation: Invitation, user: User) -> Nomination | None:
    """The nominee signed up from their invitation: the nomination counts for its nominator, who is told.
    Its own invitation, or (when that one expired and another invited them since) the nomination of
    the address that is still waiting for them."""
    nomination = session.scalar(select(Nomination).where(Nomination.invitation_id == invitation.id))
    if nomination is None:
        nomination = session.scalar(
            select(Nomination)
            .where(Nomination.email == invitation.email, Nomination.status == NominationStatus.INVITED)
            .order_by(Nomination.id.desc())
            .limit(1)
        )
    if nomination is None:
        return None
    nomination.status = NominationStatus.JOINED
    nomination.joined_user_id, nomination.joined_at = user.id, utcnow()
    audit.record(session, "nomination.joined", user.id, nomination, nominator_id=nomination.nominator_id)
    _tell_nominator(session, nomination, "joined", about_user_id=user.id)
    session.flush()
    return nomination


def _on_invitation_accepted(sender: object, session: Session, invitation: Invitation, user: User, **_kw) -> None:
    joined(session, invitation, user)


@register_erasure_step
def erase_nominee(session: Session, user: User) -> None:
    """Erasure step: the nominations of the erased person keep their outcome (they count for their
    nominator) but nothing about the person."""
    about = [Nomination.joined_user_id == user.id]
    if user.email:
        about.append(Nomination.email == normalize_email(user.email))
    session.execute(
        update(Nomination)
        .where(or_(*about))
        .values(name=ERASED_NAME, email="", company="", job_title="", reason="", account_owner="", decline_reason="")
    )


def connect() -> None:
    """Listen to ``signals.invitation_accepted`` (once per process: connecting again changes nothing)."""
    signals.invitation_accepted.connect(_on_invitation_accepted)


# --- reading ------------------------------------------------------------------------------------------------


def visible_to(user: User) -> Select:
    """The nominations ``user`` may see, newest first: their own; an admin, everyone's."""
    stmt = select(Nomination).order_by(Nomination.created_at.desc(), Nomination.id.desc())
    if user.role != Role.ADMIN:
        stmt = stmt.where(Nomination.nominator_id == user.id)
    return stmt


def may_see(user: User, nomination: Nomination) -> bool:
    """Their own nominations; an admin, everyone's (``visible_to`` is the same rule as a query)."""
    return user.role == Role.ADMIN or nomination.nominator_id == user.id


def get_for(session: Session, nomination_id: int, user: User) -> Nomination:
    """One nomination, if ``user`` may see it (another staff member's: NotFound, as if it did not exist)."""
    nomination = session.get(Nomination, nomination_id)
    if nomination is None or not may_see(user, nomination):
        raise NotFound("No such nomination.")
    return nomination


def page_for(session: Session, user: User, page: int = 1) -> paging.Page:
    return paging.paginate(session, visible_to(user), page)


def recent_for(session: Session, user: User, limit: int = HOME_ROWS) -> list[Nomination]:
    return list(session.scalars(visible_to(user).limit(limit)))


def waiting(session: Session, page: int = 1) -> paging.Page:
    """The admin's queue: nominations waiting for review, oldest first (the order they are decided in)."""
    stmt = select(Nomination).where(*WAITING).order_by(Nomination.created_at, Nomination.id)
    return paging.paginate(session, stmt, page)


def people(session: Session, nominations: list[Nomination]) -> dict[int, User]:
    """The nominators and reviewers of these nominations, by id (one query)."""
    ids = {i for n in nominations for i in (n.nominator_id, n.reviewed_by_id, n.joined_user_id) if i}
    if not ids:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}
