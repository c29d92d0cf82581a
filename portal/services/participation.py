"""One advocate's part in one opportunity: request, withdraw, approve, decline, complete, no-show.

Seats are taken with a conditional UPDATE (``seats_taken < capacity``, row count checked) and
given back the same way, so concurrent requests or approvals can never pass capacity. One
participation per advocate and opportunity is a unique constraint. A participation row is locked
(``FOR UPDATE``) before its status changes, and completion credits points through the ledger with
a key per participation: completed twice, paid once.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import signals
from portal.models import (
    ActivityType,
    EntrySource,
    Opportunity,
    OpportunityStatus,
    Participation,
    ParticipationStatus,
    ReferenceRequest,
    Role,
    SelectionMode,
    Status,
    User,
    utcnow,
)
from portal.services import audit, badges, fatigue, opportunities, points
from portal.services.errors import Conflict, DomainError, NotAllowed, NotFound
from portal.services.outbox import external_url, queue_email


def take_seat(session: Session, opp: Opportunity) -> bool:
    res = session.execute(
        update(Opportunity)
        .where(
            Opportunity.id == opp.id,
            (Opportunity.capacity.is_(None)) | (Opportunity.seats_taken < Opportunity.capacity),
        )
        .values(seats_taken=Opportunity.seats_taken + 1)
    )
    session.refresh(opp, ["seats_taken"])
    return res.rowcount == 1


def release_seat(session: Session, p: Participation) -> None:
    if p.holds_seat:
        session.execute(
            update(Opportunity)
            .where(Opportunity.id == p.opportunity_id, Opportunity.seats_taken > 0)
            .values(seats_taken=Opportunity.seats_taken - 1)
        )
        p.holds_seat = False


def locked(session: Session, participation_id: int) -> Participation:
    p = session.scalars(
        select(Participation)
        .where(Participation.id == participation_id)
        .with_for_update(of=Participation)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if p is None:
        raise NotFound("No such participation.")
    return p


def insert_once(session: Session, p: Participation, conflict: str) -> None:
    """Add a new participation; the unique (opportunity, advocate) constraint turns a concurrent
    second one into ``Conflict(conflict)`` without ending the caller's transaction."""
    try:
        with session.begin_nested():
            session.add(p)
            session.flush()
    except IntegrityError:
        raise Conflict(conflict) from None


def lock_advocate(session: Session, user_id: int) -> None:
    """Serialise the fatigue-checked steps of one advocate: two requests (or approvals) at once must
    not both pass a limit that only one of them fits under. A row lock on PostgreSQL (taken after any
    participation lock, in the same order everywhere); SQLite writers are serial already."""
    session.execute(select(User.id).where(User.id == user_id).with_for_update())


def _mail(session: Session, p: Participation, template: str, subject: str, **extra) -> None:
    user = session.get(User, p.user_id)
    queue_email(
        session,
        to=user.email,
        subject=subject,
        template=template,
        user_id=user.id,
        name=user.name,
        title=p.opportunity.title,
        activity=p.opportunity.activity_type.name,
        url=external_url("opportunities.detail", opp_id=p.opportunity_id),
        commitments_url=external_url("opportunities.commitments"),
        external=p.opportunity.external_url,
        admin_message=p.admin_message,
        **extra,
    )


SEATED_STATUSES = (OpportunityStatus.OPEN, OpportunityStatus.CLOSED)


def can_take_part(opp: Opportunity, user: User | None, what: str) -> None:
    """A seat is given only on an open or closed opportunity, to an active advocate."""
    if opp.status not in SEATED_STATUSES:
        state = "a draft" if opp.status == OpportunityStatus.DRAFT else opp.status.value
        raise Conflict(f"This opportunity is {state}: only open or closed opportunities take participants.")
    if user is None or user.status == Status.DELETED:
        raise Conflict(f"This account was deleted: only active advocates can be {what}.")
    if user.role != Role.ADVOCATE:
        raise Conflict(f"This is not an advocate's account: only active advocates can be {what}.")
    if user.status != Status.ACTIVE:
        raise Conflict(
            f"This advocate's account is {user.status.value.replace('_', ' ')}: only active advocates can be {what}."
        )


def request(session: Session, user: User, opp_id: int, message: str = "") -> Participation:
    """The advocate says "I'm in". First-come: takes a seat at once; selection: waits for an admin."""
    if user.role != Role.ADVOCATE or user.status != Status.ACTIVE:
        raise NotAllowed("Only active advocates can take part.")
    message = (message or "").strip()
    if len(message) > 1000:
        raise DomainError("Your message can be at most 1,000 characters.")
    opp = opportunities.get(session, opp_id)
    if not opportunities.visible_to(session, user.id, opp):  # a draft or an archived one: as if unknown
        raise NotFound("No such opportunity.")
    existing = session.scalar(
        select(Participation)
        .where(Participation.opportunity_id == opp.id, Participation.user_id == user.id)
        .with_for_update(of=Participation)
    )
    if existing is not None and existing.status != ParticipationStatus.WITHDRAWN:
        raise Conflict("You have already answered this opportunity; see My commitments.")
    lock_advocate(session, user.id)
    decision = opportunities.may_take_part(session, user, opp)
    if not decision:
        raise fatigue.AskRefused(decision, for_advocate=True)
    p = existing or Participation(opportunity_id=opp.id, user_id=user.id)
    p.status, p.message, p.requested_at = ParticipationStatus.REQUESTED, message, utcnow()
    p.admin_message, p.decided_at, p.engaged_at, p.override_reason = "", None, None, None
    if existing is None:
        insert_once(session, p, "You have already answered this opportunity; see My commitments.")
    if opp.selection_mode == SelectionMode.FIRST_COME:
        if not take_seat(session, opp):
            raise Conflict("Sorry, the last seat was just taken.")
        p.status, p.holds_seat, p.engaged_at, p.decided_at = ParticipationStatus.APPROVED, True, utcnow(), utcnow()
        session.flush()
        _mail(session, p, "participation_approved", f"You're in: {opp.title}")
        badges.evaluate(session, p.user_id)  # e.g. a board member from approval on
    else:
        session.flush()
        _mail(session, p, "participation_requested", f"We received your request: {opp.title}")
    return p


def withdraw(session: Session, user: User, participation_id: int) -> Participation:
    # An accepted reference ask: its request is locked first, the order every step of a reference request
    # takes (request, then its asks), so a withdrawal and the requester's cancel cannot deadlock.
    session.execute(
        select(ReferenceRequest.id)
        .join(Participation, Participation.opportunity_id == ReferenceRequest.opportunity_id)
        .where(Participation.id == participation_id)
        .with_for_update(of=ReferenceRequest)
    )
    p = locked(session, participation_id)
    if p.user_id != user.id:
        raise NotFound("No such participation.")
    if p.status not in (ParticipationStatus.REQUESTED, ParticipationStatus.APPROVED):
        raise Conflict("Only a request or an approved place can be withdrawn.")
    release_seat(session, p)
    p.status = ParticipationStatus.WITHDRAWN
    _mail(session, p, "participation_withdrawn", f"You withdrew from: {p.opportunity.title}")
    signals.participation_withdrawn.send(None, session=session, participation=p)  # e.g. a reference request's ask
    return p


def approve(
    session: Session, participation_id: int, actor: User, message: str = "", override_reason: str | None = None
) -> Participation:
    p = locked(session, participation_id)
    if p.status != ParticipationStatus.REQUESTED:
        raise Conflict(f"This participation is already {p.status.value.replace('_', ' ')}.")
    lock_advocate(session, p.user_id)
    user = session.get(User, p.user_id)
    can_take_part(p.opportunity, user, "approved")
    # The advocate's own request: their opt-in and own ask limits were checked when they asked.
    opp = p.opportunity
    decision = fatigue.may_ask(
        session, user.id, opp.activity_type, opp.engagement_date, counts_as_ask=False, exclude_participation_id=p.id
    )
    override_reason = (override_reason or "").strip() or None
    if not decision and not override_reason:
        raise fatigue.AskRefused(decision)
    if not take_seat(session, p.opportunity):
        raise Conflict("All seats are taken; raise the capacity or decline someone first.")
    p.status, p.holds_seat, p.engaged_at, p.decided_at = ParticipationStatus.APPROVED, True, utcnow(), utcnow()
    p.decided_by_id, p.admin_message = actor.id, (message or "").strip()[:1000]
    if not decision:
        p.override_reason = override_reason[:500]
        audit.record(
            session, "participation.override", actor.id, p, reasons=decision.for_admin(), reason=override_reason
        )
    audit.record(session, "participation.approve", actor.id, p, opportunity_id=p.opportunity_id, user_id=p.user_id)
    _mail(session, p, "participation_approved", f"You're in: {p.opportunity.title}")
    badges.evaluate(session, p.user_id)  # e.g. a board member from approval on
    return p


def add_by_admin(
    session: Session, opp_id: int, user_id: int, actor: User, override_reason: str | None = None, message: str = ""
) -> Participation:
    """An admin adds an advocate to an opportunity (either selection mode): approved, with a seat.

    The rules of the advocate's own request (``opportunities.may_take_part``: the deadline, their
    opt-in, the targeting, a pause or blackout, their own ask limits and the program's) are told in plain
    words and refuse the addition unless an override reason is given, which is then recorded and
    audit-logged. A draft or archived opportunity, an advocate who is not active, a
    full opportunity or an existing place are refused regardless; the seat is taken with the same
    conditional UPDATE as a request, so capacity is never exceeded."""
    message = (message or "").strip()
    override_reason = (override_reason or "").strip() or None
    if len(message) > 1000:
        raise DomainError("The message can be at most 1,000 characters.")
    if override_reason and len(override_reason) > 500:
        raise DomainError("The override reason can be at most 500 characters.")
    opp = opportunities.get(session, opp_id)
    existing = session.scalar(
        select(Participation)
        .where(Participation.opportunity_id == opp.id, Participation.user_id == user_id)
        .with_for_update(of=Participation)
    )
    lock_advocate(session, user_id)
    user = session.get(User, user_id)
    can_take_part(opp, user, "added")
    if existing is not None:
        if existing.status == ParticipationStatus.REQUESTED:
            raise Conflict(f"{user.name} has already asked for a place: approve the request instead.")
        if existing.status not in (ParticipationStatus.DECLINED, ParticipationStatus.WITHDRAWN):
            raise Conflict(f"{user.name} is already {existing.status.value.replace('_', ' ')} here.")
    if opp.seats_left == 0:
        raise Conflict("All seats are taken; raise the capacity or decline someone first.")
    # The opportunity's state, the account and the seats were checked above, and refuse regardless.
    decision = opportunities.may_take_part(session, user, opp).ignoring(
        opportunities.NOT_OPEN, opportunities.FULL, fatigue.NOT_ACTIVE
    )
    if not decision and not override_reason:
        raise fatigue.AskRefused(decision)
    now = utcnow()
    p = existing or Participation(opportunity_id=opp.id, user_id=user.id)
    p.status, p.message, p.requested_at = ParticipationStatus.APPROVED, "", now
    p.engaged_at, p.decided_at, p.decided_by_id, p.completed_at = now, now, actor.id, None
    p.admin_message, p.override_reason = message, (override_reason if not decision else None)
    if existing is None:
        insert_once(session, p, f"{user.name} answered this opportunity just now; reload the page.")
    if not take_seat(session, opp):
        raise Conflict("All seats are taken; raise the capacity or decline someone first.")
    p.holds_seat = True
    session.flush()
    if not decision:
        audit.record(
            session, "participation.override", actor.id, p, reasons=decision.for_admin(), reason=override_reason
        )
    audit.record(session, "participation.add", actor.id, p, opportunity_id=opp.id, user_id=user.id)
    _mail(session, p, "participation_added", f"You're in: {opp.title}")
    badges.evaluate(session, p.user_id)  # as on approval
    return p


def decline(session: Session, participation_id: int, actor: User, message: str = "") -> Participation:
    p = locked(session, participation_id)
    if p.status not in (ParticipationStatus.REQUESTED, ParticipationStatus.APPROVED):
        raise Conflict(f"This participation is already {p.status.value.replace('_', ' ')}.")
    release_seat(session, p)
    p.status, p.decided_at, p.decided_by_id = ParticipationStatus.DECLINED, utcnow(), actor.id
    p.admin_message = (message or "").strip()[:1000]
    audit.record(session, "participation.decline", actor.id, p, opportunity_id=p.opportunity_id, user_id=p.user_id)
    _mail(session, p, "participation_declined", f"About your request: {p.opportunity.title}")
    return p


def complete(session: Session, participation_id: int, actor: User) -> Participation:
    """Mark done and credit the points, exactly once per participation."""
    p = locked(session, participation_id)
    if p.status == ParticipationStatus.COMPLETED:
        raise Conflict("Already marked completed; the points were credited then.")
    if p.status != ParticipationStatus.APPROVED:
        raise Conflict("Only an approved participation can be completed.")
    p.status, p.completed_at = ParticipationStatus.COMPLETED, utcnow()
    amount = p.opportunity.effective_points
    credited = False
    if amount > 0:
        _, credited = points.award(
            session,
            p.user_id,
            amount,
            key=f"participation:{p.id}:complete",
            reason=f"{p.opportunity.activity_type.name}: {p.opportunity.title}"[:255],
            source=EntrySource.PARTICIPATION,
            source_id=p.id,
            actor_id=actor.id,
            activity_type_id=p.opportunity.activity_type_id,
        )
    audit.record(session, "participation.complete", actor.id, p, points=amount)
    _mail(session, p, "participation_completed", f"Thank you! {amount} points for {p.opportunity.title}", points=amount)
    if not credited:  # a new credit is announced and evaluates badges (portal.signals); a 0-point activity counts too
        badges.evaluate(session, p.user_id)
    return p


def no_show(session: Session, participation_id: int, actor: User) -> Participation:
    p = locked(session, participation_id)
    if p.status != ParticipationStatus.APPROVED:
        raise Conflict("Only an approved participation can be marked as a no-show.")
    p.status, p.decided_by_id = ParticipationStatus.NO_SHOW, actor.id
    audit.record(session, "participation.no_show", actor.id, p)
    _mail(session, p, "participation_no_show", f"We missed you: {p.opportunity.title}")
    return p


def of_user(session: Session, user_id: int) -> list[Participation]:
    return list(
        session.scalars(
            select(Participation)
            .where(Participation.user_id == user_id)
            .order_by(Participation.updated_at.desc(), Participation.id.desc())
        )
    )


def boards_of(session: Session, user_id: int):
    """(current, past) advisory board memberships: approved or completed board participations."""
    rows = list(
        session.scalars(
            select(Participation)
            .join(Opportunity, Opportunity.id == Participation.opportunity_id)
            .join(ActivityType, ActivityType.id == Opportunity.activity_type_id)
            .where(
                Participation.user_id == user_id,
                ActivityType.key == "advisory_board",
                Participation.status.in_((ParticipationStatus.APPROVED, ParticipationStatus.COMPLETED)),
            )
            .order_by(Opportunity.term_start.desc())
        )
    )
    today = utcnow().date()
    current = [p for p in rows if p.opportunity.term_end is None or p.opportunity.term_end >= today]
    past = [p for p in rows if p.opportunity.term_end is not None and p.opportunity.term_end < today]
    return current, past
