"""Reference requests: a staff member asks for the right advocate for a deal, by a date.

A request owns a private opportunity (closed, capacity = advocates needed, never in a feed, a search or a
digest) whose participations are the asks: ``asked`` (waiting for the advocate), then accepted (approved,
with a seat taken by ``participation.take_seat``'s conditional UPDATE, so twenty accepts at once fill a
one-advocate request once), declined (with an optional reason) or expired (not answered in ``ASK_DAYS``).
Whether an advocate may be asked is ``fatigue.may_ask`` alone (when asking, and again when accepting);
only an admin may ask past it, with a written reason, recorded and audited like an approval's override.
Completion goes through ``participation.complete``: the activity type's points, once per ask.

The request's status follows its asks (open, asked, accepted, scheduled, completed, cancelled) and its
requester is emailed at every change. Staff see and change only their own requests; admins all of them.
Staff may ask advocates themselves only when the program allows it (the ``self_service_requests``
setting); admins always."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import signals
from portal.models import (
    ActivityType,
    AdvocateProfile,
    Industry,
    Opportunity,
    OpportunityStatus,
    Participation,
    ParticipationStatus,
    Product,
    ReferenceOutcome,
    ReferenceRequest,
    ReferenceStatus,
    Region,
    Role,
    SelectionMode,
    SizeBand,
    Tag,
    User,
    utcnow,
)
from portal.services import audit, fatigue, paging, participation, profiles, settings
from portal.services.errors import Conflict, DomainError, NotAllowed, NotFound
from portal.services.outbox import external_url, queue_email

ASK_DAYS = 5  # an ask not answered in this many days expires
SELF_SERVICE = "self_service_requests"
CURRENCIES = ("USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD", "INR", "SGD", "BRL")
ACCEPTED_STATUSES = (ParticipationStatus.APPROVED, ParticipationStatus.COMPLETED)
CLOSED_STATUSES = (ReferenceStatus.COMPLETED, ReferenceStatus.CANCELLED)
STATUS_WORDS = {
    ReferenceStatus.OPEN: "open: nobody has been asked yet, or nobody has said yes",
    ReferenceStatus.ASKED: "asked: advocates have been asked and their answer is awaited",
    ReferenceStatus.ACCEPTED: "accepted: as many advocates as needed said yes",
    ReferenceStatus.SCHEDULED: "scheduled",
    ReferenceStatus.COMPLETED: "completed",
    ReferenceStatus.CANCELLED: "cancelled",
}


@dataclass
class RequestInput:
    activity_type_id: int
    account_name: str
    due_date: date
    advocates_needed: int = 1
    industry_id: int | None = None
    product_id: int | None = None
    region_id: int | None = None
    size_band_id: int | None = None
    topic_ids: list[int] = field(default_factory=list)
    need: str = ""
    crm_opportunity_id: str = ""
    deal_amount: int | None = None
    currency: str = "USD"


# --- who may see and do what ---------------------------------------------------------------------------------------


def is_admin(user: User) -> bool:
    return user.role == Role.ADMIN


def get_for(session: Session, user: User, rr_id: int) -> ReferenceRequest:
    """The request, if ``user`` may see it (their own; an admin: any); else as if unknown."""
    rr = session.get(ReferenceRequest, rr_id)
    if rr is None or (not is_admin(user) and rr.requester_id != user.id):
        raise NotFound("No such reference request.")
    return rr


def _locked_request(session: Session, user: User, rr_id: int) -> ReferenceRequest:
    get_for(session, user, rr_id)
    return session.scalars(
        select(ReferenceRequest)
        .where(ReferenceRequest.id == rr_id)
        .with_for_update(of=ReferenceRequest)
        .execution_options(populate_existing=True)
    ).one()


def self_service(session: Session) -> bool:
    return bool(settings.get(session, SELF_SERVICE))


def can_ask(session: Session, user: User, rr: ReferenceRequest) -> bool:
    """May ``user`` ask advocates for ``rr`` from its page? Admins always; its requester when the program
    allows staff to ask directly; nobody once it is completed or cancelled."""
    if rr.status in CLOSED_STATUSES:
        return False
    return is_admin(user) or (rr.requester_id == user.id and self_service(session))


# --- reading ---------------------------------------------------------------------------------------------------------

PER_PAGE = 25


def list_for(session: Session, user: User, page: int = 1, per_page: int = PER_PAGE) -> paging.Page:
    """A page of the user's requests (an admin: everyone's), the soonest due open ones first."""
    q = select(ReferenceRequest)
    if not is_admin(user):
        q = q.where(ReferenceRequest.requester_id == user.id)
    closed = ReferenceRequest.status.in_(CLOSED_STATUSES)
    q = q.order_by(closed, ReferenceRequest.due_date, ReferenceRequest.id.desc())
    return paging.paginate(session, q, page, per_page)


def recent_for(session: Session, user: User, limit: int = 10) -> list[ReferenceRequest]:
    return list(list_for(session, user, 1, limit).rows)


def names_of(session: Session, user_ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in user_ids if i}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def asks(session: Session, rr: ReferenceRequest) -> list[Participation]:
    """Every ask of the request (with its advocate), the oldest first."""
    return list(
        session.scalars(
            select(Participation)
            .where(Participation.opportunity_id == rr.opportunity_id)
            .order_by(Participation.requested_at, Participation.id)
        )
    )


def criteria(session: Session, rr: ReferenceRequest) -> list[tuple[str, str]]:
    """What the requester needs, in words: (label, value) for each criterion given."""
    out = []
    for label, model, value in (
        ("Industry", Industry, rr.industry_id),
        ("Product", Product, rr.product_id),
        ("Region", Region, rr.region_id),
        ("Company size", SizeBand, rr.size_band_id),
    ):
        if value:
            item = session.get(model, value)
            if item is not None:
                out.append((label, item.name))
    if rr.topic_ids:
        names = session.scalars(select(Tag.name).where(Tag.id.in_(rr.topic_ids)).order_by(Tag.name)).all()
        if names:
            out.append(("Topics", ", ".join(names)))
    return out


def topic_choices(session: Session) -> list[Tag]:
    return list(session.scalars(select(Tag).where(Tag.active.is_(True)).order_by(Tag.name)))


@dataclass
class AskRow:
    """One ask made of an advocate, as their asks page shows it."""

    p: Participation
    asked_by: str  # who asked, in words
    request: ReferenceRequest | None  # the reference request it belongs to, if any
    requester: str = ""
    scheduled: str = ""  # when it happens, in the advocate's time zone (``shown_at``), once scheduled

    @property
    def pending(self) -> bool:
        return self.p.status == ParticipationStatus.ASKED

    @property
    def answer(self) -> str:
        s = self.p.status
        if s == ParticipationStatus.ASKED:
            return "Waiting for your answer"
        if s == ParticipationStatus.REQUESTED:
            return "You asked; waiting for the program team"
        if s == ParticipationStatus.DECLINED and self.request and self.request.status == ReferenceStatus.CANCELLED:
            if self.p.decided_by_id:  # withdrawn by the cancel (``cancel``), whatever they had answered
                return "The request was cancelled" + (" after you said yes" if self.p.engaged_at else "")
        if s == ParticipationStatus.DECLINED and self.p.answered_at:
            return "You declined" + (f": {self.p.answer_reason}" if self.p.answer_reason else "")
        if s == ParticipationStatus.DECLINED:
            return "Not chosen, or cancelled"
        if s == ParticipationStatus.EXPIRED and self.p.decided_by_id:  # closed by ``complete``
            return "No longer needed: it took place with others who said yes"
        if s == ParticipationStatus.EXPIRED:
            return "Not answered in time"
        if s == ParticipationStatus.APPROVED:
            return "Yes: you're in"
        if s == ParticipationStatus.COMPLETED:
            return "Done"
        if s == ParticipationStatus.WITHDRAWN:
            return "You withdrew"
        return s.value.replace("_", " ").capitalize()


def asks_of(session: Session, user_id: int) -> list[AskRow]:
    """Every ask ever made of the advocate: the opportunities they asked for themselves, the ones an
    admin added them to, and the reference requests they were asked for; the newest first."""
    rows = session.execute(
        select(Participation, ReferenceRequest)
        .outerjoin(ReferenceRequest, ReferenceRequest.opportunity_id == Participation.opportunity_id)
        .where(Participation.user_id == user_id)
        .order_by(Participation.requested_at.desc(), Participation.id.desc())
    ).all()
    people = {p.asked_by_id for p, _ in rows} | {p.decided_by_id for p, _ in rows}
    names = names_of(session, people | {rr.requester_id for _, rr in rows if rr})
    zone = session.scalar(select(AdvocateProfile.timezone).where(AdvocateProfile.user_id == user_id))
    out = []
    for p, rr in rows:
        if p.asked_by_id:
            who = names.get(p.asked_by_id, "The program team")
        elif p.decided_by_id and p.decided_at == p.requested_at:  # an admin added them (add_by_admin)
            who = names.get(p.decided_by_id, "The program team")
        else:
            who = "You"  # they asked for a place themselves
        requester = names.get(rr.requester_id, "") if rr else ""
        when = shown_at(rr.scheduled_for, zone) if rr and rr.scheduled_for else ""
        out.append(AskRow(p, who, rr, requester, when))
    return out


# --- telling people --------------------------------------------------------------------------------------------------


def _detail_url(rr: ReferenceRequest) -> str:
    return external_url("staff.reference_detail", rr_id=rr.id)


def _tell_requester(session: Session, rr: ReferenceRequest, headline: str, detail: str = "") -> None:
    requester = session.get(User, rr.requester_id) if rr.requester_id else None
    if requester is None:
        return
    queue_email(
        session,
        to=requester.email,
        subject=f"Reference for {rr.account_name}: {headline}"[:200],
        template="reference_update",
        user_id=requester.id,
        name=requester.name,
        headline=headline,
        detail=detail,
        account=rr.account_name,
        activity=rr.activity_type.name,
        status=STATUS_WORDS[rr.status],
        url=_detail_url(rr),
    )


def _tell_advocate(session: Session, p: Participation, template: str, subject: str, **extra) -> None:
    advocate = session.get(User, p.user_id)
    rr = session.scalar(select(ReferenceRequest).where(ReferenceRequest.opportunity_id == p.opportunity_id))
    requester = session.get(User, rr.requester_id) if rr.requester_id else None
    queue_email(
        session,
        to=advocate.email,
        subject=subject,
        template=template,
        user_id=advocate.id,
        name=advocate.name,
        requester=requester.name if requester else "A colleague",
        activity=rr.activity_type.name,
        account=rr.account_name,
        need=rr.need,
        due=fatigue.fmt_day(rr.due_date),
        url=external_url("asks.index"),
        **extra,
    )


def _sync(session: Session, rr: ReferenceRequest) -> bool:
    """Bring the request's status in step with its asks; True when it changed."""
    if rr.status in CLOSED_STATUSES:
        return False
    counts = dict(
        session.execute(
            select(Participation.status, func.count())
            .where(Participation.opportunity_id == rr.opportunity_id)
            .group_by(Participation.status)
        ).all()
    )
    accepted = sum(counts.get(s, 0) for s in ACCEPTED_STATUSES)
    if accepted >= rr.advocates_needed:
        new = ReferenceStatus.SCHEDULED if rr.scheduled_for else ReferenceStatus.ACCEPTED
        if rr.fulfilled_at is None:
            rr.fulfilled_at = utcnow()
    elif accepted or counts.get(ParticipationStatus.ASKED, 0):
        new = ReferenceStatus.ASKED
    else:
        new = ReferenceStatus.OPEN
    changed = new != rr.status
    rr.status = new
    return changed


def _changed(session: Session, rr: ReferenceRequest, headline: str, detail: str = "") -> None:
    """After an ask changed: the status in step, and the requester told (one email per change)."""
    _sync(session, rr)
    session.flush()
    _tell_requester(session, rr, headline, detail)


# --- the requester ---------------------------------------------------------------------------------------------------


def _check_input(session: Session, data: RequestInput) -> ActivityType:
    activity_type = session.get(ActivityType, data.activity_type_id)
    if activity_type is None or not activity_type.active:
        raise DomainError("Choose an activity type from the list.")
    if not (data.account_name or "").strip():
        raise DomainError("Give the account or deal name.")
    if not 1 <= (data.advocates_needed or 0) <= 20:
        raise DomainError("Ask for between 1 and 20 advocates.")
    today = utcnow().date()
    if data.due_date is None or data.due_date < today:
        raise DomainError("The due date must be today or later.")
    if data.due_date > today + timedelta(days=730):
        raise DomainError("The due date must be within two years.")
    if data.deal_amount is not None and not 0 <= data.deal_amount <= 10**12:
        raise DomainError("The deal amount must be a whole number of at least 0.")
    if data.currency not in CURRENCIES:
        raise DomainError("Choose a currency from the list.")
    for model, value, label in (
        (Industry, data.industry_id, "an industry"),
        (Product, data.product_id, "a product"),
        (Region, data.region_id, "a region"),
        (SizeBand, data.size_band_id, "a company size"),
    ):
        if value and session.get(model, value) is None:
            raise DomainError(f"Choose {label} from the list.")
    topics = set(data.topic_ids or [])
    if topics and len(session.scalars(select(Tag.id).where(Tag.id.in_(topics))).all()) != len(topics):
        raise DomainError("Choose topics from the list.")
    if len(data.need or "") > 4000:
        raise DomainError("Describe what you need in at most 4,000 characters.")
    return activity_type


def create(session: Session, requester: User, data: RequestInput) -> ReferenceRequest:
    """A new request and its private opportunity (closed: nobody signs up; capacity: the advocates needed)."""
    if requester.role not in (Role.STAFF, Role.ADMIN):
        raise NotAllowed("Only staff can request references.")
    activity_type = _check_input(session, data)
    account = data.account_name.strip()[:160]
    opp = Opportunity(
        activity_type=activity_type,
        title=f"{activity_type.name} for {account}"[:160],
        description=(data.need or "").strip(),
        capacity=data.advocates_needed,
        seats_taken=0,
        deadline=data.due_date,
        status=OpportunityStatus.CLOSED,
        selection_mode=SelectionMode.SELECTION,
        private=True,
        created_by_id=requester.id,
    )
    session.add(opp)
    session.flush()
    rr = ReferenceRequest(
        requester_id=requester.id,
        activity_type_id=activity_type.id,
        opportunity_id=opp.id,
        industry_id=data.industry_id or None,
        product_id=data.product_id or None,
        region_id=data.region_id or None,
        size_band_id=data.size_band_id or None,
        topic_ids=sorted(set(data.topic_ids or [])),
        need=(data.need or "").strip(),
        account_name=account,
        crm_opportunity_id=(data.crm_opportunity_id or "").strip()[:64],
        deal_amount=data.deal_amount,
        currency=data.currency,
        due_date=data.due_date,
        advocates_needed=data.advocates_needed,
        status=ReferenceStatus.OPEN,
    )
    session.add(rr)
    session.flush()
    audit.record(session, "reference.create", requester.id, rr, account=account, opportunity_id=opp.id)
    return rr


def shown_at(when: datetime, zone_name: str | None) -> str:
    """A moment as people read it where they are: "14 Jan 2027 15:00 (Europe/Berlin)"."""
    zone = fatigue.zone_named(zone_name)
    return f"{when.astimezone(zone):%d %b %Y %H:%M} ({zone.key})"


def schedule(session: Session, actor: User, rr_id: int, when: datetime, zone_name: str = "UTC") -> ReferenceRequest:
    """It happens at ``when``: a wall-clock time in ``zone_name`` (an aware ``when`` is taken as it is). Kept in
    UTC; each advocate who said yes is emailed the time in their own time zone, the requester in theirs."""
    rr = _locked_request(session, actor, rr_id)
    if rr.status not in (ReferenceStatus.ACCEPTED, ReferenceStatus.SCHEDULED):
        raise Conflict("Only a request the advocates have accepted can be scheduled.")
    if zone_name not in profiles.timezone_choices():
        raise DomainError("Choose the time zone from the list.")
    if when is None or when.date() < utcnow().date() - timedelta(days=365):
        raise DomainError("Give the day and time it happens.")
    if when.tzinfo is None:
        zone = fatigue.zone_named(zone_name)
        local = when.replace(tzinfo=zone)
        if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != when:  # skipped when the clocks went forward
            raise DomainError(f"{when:%H:%M} does not exist on {when:%d %b %Y} in {zone_name} (the clocks change).")
        when = local
    when = when.astimezone(UTC)
    rr.scheduled_for, rr.scheduled_tz = when, zone_name
    rr.opportunity.event_date = when.date()  # the rules count the engagement on the day it happens (UTC)
    audit.record(session, "reference.schedule", actor.id, rr, scheduled_for=when.isoformat(), timezone=zone_name)
    zones = dict(
        session.execute(
            select(AdvocateProfile.user_id, AdvocateProfile.timezone).where(
                AdvocateProfile.user_id.in_([p.user_id for p in asks(session, rr)])
            )
        ).all()
    )
    for p in asks(session, rr):
        if p.status == ParticipationStatus.APPROVED:
            _tell_advocate(
                session,
                p,
                "reference_scheduled",
                f"Scheduled: {rr.activity_type.name}",
                when=shown_at(when, zones.get(p.user_id)),
            )
    old = rr.status
    _sync(session, rr)
    if rr.status != old or old == ReferenceStatus.SCHEDULED:
        _tell_requester(session, rr, f"scheduled for {shown_at(when, zone_name)}")
    return rr


def complete(session: Session, actor: User, rr_id: int) -> ReferenceRequest:
    """It happened: every accepted ask is completed (the activity type's points, once per ask)."""
    rr = _locked_request(session, actor, rr_id)
    if rr.status == ReferenceStatus.COMPLETED:
        raise Conflict("This request is already completed; the advocates' points were credited then.")
    if rr.status not in (ReferenceStatus.ACCEPTED, ReferenceStatus.SCHEDULED):
        raise Conflict("Only a request the advocates have accepted can be completed.")
    if rr.opportunity.event_date is None:  # not scheduled: it happened by today, not on its due day
        rr.opportunity.event_date = utcnow().date()
    for p in _locked_asks(session, rr):
        if p.status == ParticipationStatus.APPROVED:
            participation.complete(session, p.id, actor)
        elif p.status == ParticipationStatus.ASKED:  # nobody waits on an ask that is no longer needed
            p.status, p.answered_at = ParticipationStatus.EXPIRED, None
            p.decided_at, p.decided_by_id = utcnow(), actor.id  # closed by the completion, not by the clock
    rr.status, rr.completed_at = ReferenceStatus.COMPLETED, utcnow()
    audit.record(session, "reference.complete", actor.id, rr)
    session.flush()
    _tell_requester(session, rr, "completed", "Record the outcome of the deal on the request's page.")
    return rr


def record_outcome(
    session: Session, actor: User, rr_id: int, outcome: str, final_amount: int | None = None
) -> ReferenceRequest:
    rr = _locked_request(session, actor, rr_id)
    if rr.status != ReferenceStatus.COMPLETED:
        raise Conflict("Record the outcome once the reference is completed.")
    try:
        rr.outcome = ReferenceOutcome(outcome)
    except ValueError:
        raise DomainError("Choose won, lost or still open.") from None
    if final_amount is not None and not 0 <= final_amount <= 10**12:
        raise DomainError("The final amount must be a whole number of at least 0.")
    rr.final_amount, rr.outcome_at = final_amount, utcnow()
    audit.record(session, "reference.outcome", actor.id, rr, outcome=rr.outcome.value, final_amount=final_amount)
    return rr


def cancel(session: Session, actor: User, rr_id: int, reason: str = "") -> ReferenceRequest:
    """No longer needed: the asks still out are withdrawn, and every advocate asked (waiting to answer or
    having said yes) is told."""
    rr = _locked_request(session, actor, rr_id)
    if rr.status in CLOSED_STATUSES:
        raise Conflict(f"This request is already {rr.status.value}.")
    reason = (reason or "").strip()
    if len(reason) > 1000:
        raise DomainError("The reason can be at most 1,000 characters.")
    for p in _locked_asks(session, rr):
        if p.status in (ParticipationStatus.ASKED, ParticipationStatus.APPROVED):
            was_in = p.status == ParticipationStatus.APPROVED
            participation.release_seat(session, p)
            p.status, p.decided_at, p.decided_by_id = ParticipationStatus.DECLINED, utcnow(), actor.id
            p.admin_message = "The request was cancelled."
            _tell_advocate(
                session, p, "reference_cancelled", f"Cancelled: {rr.activity_type.name}", reason=reason, said_yes=was_in
            )
    rr.status, rr.cancelled_at, rr.cancel_reason = ReferenceStatus.CANCELLED, utcnow(), reason
    audit.record(session, "reference.cancel", actor.id, rr, reason=reason)
    session.flush()
    _tell_requester(session, rr, "cancelled", reason)
    return rr


# --- asking ----------------------------------------------------------------------------------------------------------


def ask(
    session: Session, actor: User, rr_id: int, advocate_id: int, override_reason: str | None = None
) -> Participation:
    """Ask an advocate: an ``asked`` participation in the request's private opportunity, an email to
    them, and the ask on their asks page. Refused by the rules (``fatigue.may_ask``) unless an admin
    gives an override reason, which is recorded and audited."""
    rr = _locked_request(session, actor, rr_id)
    if rr.status in CLOSED_STATUSES:
        raise Conflict(f"This request is {rr.status.value}; nobody can be asked for it.")
    if not can_ask(session, actor, rr):
        raise NotAllowed("Only the program team asks advocates for references; it will do so for you.")
    override_reason = (override_reason or "").strip() or None
    if override_reason and not is_admin(actor):
        raise NotAllowed("Only an admin can ask an advocate the rules leave out.")
    if override_reason and len(override_reason) > 500:
        raise DomainError("The override reason can be at most 500 characters.")
    opp = rr.opportunity
    if opp.seats_left == 0:
        raise Conflict("As many advocates as needed have already accepted.")
    existing = session.scalar(
        select(Participation)
        .where(Participation.opportunity_id == opp.id, Participation.user_id == advocate_id)
        .with_for_update(of=Participation)
    )
    participation.lock_advocate(session, advocate_id)
    user = session.get(User, advocate_id)
    participation.can_take_part(opp, user, "asked")
    if existing is not None and existing.status not in (ParticipationStatus.EXPIRED, ParticipationStatus.WITHDRAWN):
        raise Conflict(f"{user.name} was already asked for this request ({existing.status.value.replace('_', ' ')}).")
    decision = fatigue.may_ask(session, user.id, rr.activity_type, opp.engagement_date, counts_as_ask=True)
    if not decision and not override_reason:
        raise fatigue.AskRefused(decision)
    now = utcnow()
    p = existing or Participation(opportunity_id=opp.id, user_id=user.id)
    p.status, p.requested_at, p.asked_by_id, p.holds_seat = ParticipationStatus.ASKED, now, actor.id, False
    p.answered_at, p.answer_reason, p.engaged_at, p.decided_at, p.decided_by_id = None, "", None, None, None
    p.override_reason = override_reason[:500] if not decision else None
    if existing is None:
        participation.insert_once(session, p, f"{user.name} was asked for this request just now; reload the page.")
    session.flush()
    if not decision:
        audit.record(
            session, "participation.override", actor.id, p, reasons=decision.for_admin(), reason=override_reason
        )
    audit.record(session, "reference.ask", actor.id, rr, participation_id=p.id, user_id=user.id)
    _tell_advocate(
        session,
        p,
        "reference_ask",
        f"Could you help? {rr.activity_type.name} by {fatigue.fmt_day(rr.due_date)}",
        days=ASK_DAYS,
    )
    _changed(session, rr, f"{user.name} was asked", f"They have {ASK_DAYS} days to answer.")
    return p


def _lock_request_of(session: Session, opportunity_id: int) -> ReferenceRequest | None:
    """The request owning the opportunity, locked (the request first, then its asks: the same order
    as ``ask``, ``cancel`` and ``complete``), so two answers at once cannot both compute its status."""
    return session.scalars(
        select(ReferenceRequest)
        .where(ReferenceRequest.opportunity_id == opportunity_id)
        .with_for_update(of=ReferenceRequest)
        .execution_options(populate_existing=True)
    ).one_or_none()


def _own_ask(session: Session, advocate: User, participation_id: int) -> tuple[Participation, ReferenceRequest]:
    p = session.get(Participation, participation_id)
    if p is None or p.user_id != advocate.id:
        raise NotFound("No such ask.")
    rr = _lock_request_of(session, p.opportunity_id)
    if rr is None:
        raise NotFound("No such ask.")
    return participation.locked(session, participation_id), rr


def _locked_asks(session: Session, rr: ReferenceRequest) -> list[Participation]:
    """Every ask of the (already locked) request, each locked: an advocate answering at this moment waits."""
    return list(
        session.scalars(
            select(Participation)
            .where(Participation.opportunity_id == rr.opportunity_id)
            .order_by(Participation.requested_at, Participation.id)
            .with_for_update(of=Participation)
            .execution_options(populate_existing=True)
        )
    )


def accept(session: Session, advocate: User, participation_id: int) -> Participation:
    """The advocate says yes: a seat (the conditional UPDATE: never more than needed), counted against
    their limits from now on. The rules are checked again (an admin's override at the ask stands)."""
    p, rr = _own_ask(session, advocate, participation_id)
    if p.status != ParticipationStatus.ASKED:
        raise Conflict(f"You have already answered this ask ({p.status.value.replace('_', ' ')}).")
    if rr.status in CLOSED_STATUSES:
        raise Conflict(f"This request was {rr.status.value}; thank you all the same.")
    if p.requested_at <= utcnow() - timedelta(days=ASK_DAYS):
        raise Conflict(f"This ask was not answered within {ASK_DAYS} days and has expired; thank you all the same.")
    participation.lock_advocate(session, advocate.id)
    participation.can_take_part(p.opportunity, session.get(User, advocate.id), "asked")
    decision = fatigue.may_ask(
        session,
        advocate.id,
        rr.activity_type,
        p.opportunity.engagement_date,
        counts_as_ask=False,
        exclude_participation_id=p.id,
    )
    if not decision and not p.override_reason:
        raise fatigue.AskRefused(decision, for_advocate=True)
    if not participation.take_seat(session, p.opportunity):
        raise Conflict("Thank you! Enough advocates have already said yes to this one.")
    now = utcnow()
    p.status, p.holds_seat, p.engaged_at, p.decided_at, p.answered_at = (
        ParticipationStatus.APPROVED,
        True,
        now,
        now,
        now,
    )
    audit.record(session, "reference.accept", advocate.id, p, request_id=rr.id)
    _changed(session, rr, f"{advocate.name} said yes")
    return p


def decline(session: Session, advocate: User, participation_id: int, reason: str = "") -> Participation:
    p, rr = _own_ask(session, advocate, participation_id)
    if p.status != ParticipationStatus.ASKED:
        raise Conflict(f"You have already answered this ask ({p.status.value.replace('_', ' ')}).")
    reason = (reason or "").strip()
    if len(reason) > 500:
        raise DomainError("Your reason can be at most 500 characters.")
    p.status, p.answered_at, p.answer_reason = ParticipationStatus.DECLINED, utcnow(), reason
    audit.record(session, "reference.decline", advocate.id, p, request_id=rr.id)
    _changed(session, rr, f"{advocate.name} declined", f"Their reason: {reason}" if reason else "")
    return p


def leave_note(session: Session, advocate: User, participation_id: int, note: str) -> Participation:
    """The advocate's short note on how it went, once the reference is completed."""
    p, _ = _own_ask(session, advocate, participation_id)
    if p.status != ParticipationStatus.COMPLETED:
        raise Conflict("You can leave a note once the reference is completed.")
    note = (note or "").strip()
    if len(note) > 1000:
        raise DomainError("Your note can be at most 1,000 characters.")
    p.advocate_note = note
    return p


def expire_due(session: Session, now: datetime | None = None) -> int:
    """Asks not answered in ``ASK_DAYS`` expire (they no longer count); each requester is told, once.
    Each is locked as every other path locks it (its request first, then the ask) and checked again:
    an ask answered, or a request completed or cancelled, meanwhile is left alone."""
    now = now or utcnow()
    cutoff = now - timedelta(days=ASK_DAYS)
    due = session.execute(
        select(Participation.id, Participation.opportunity_id)
        .join(ReferenceRequest, ReferenceRequest.opportunity_id == Participation.opportunity_id)
        .where(Participation.status == ParticipationStatus.ASKED, Participation.requested_at < cutoff)
        .order_by(Participation.id)
    ).all()
    n = 0
    for pid, opportunity_id in due:
        rr = _lock_request_of(session, opportunity_id)
        p = participation.locked(session, pid)
        if rr is None or p.status != ParticipationStatus.ASKED or not p.requested_at < cutoff:
            continue
        p.status = ParticipationStatus.EXPIRED
        n += 1
        advocate = session.get(User, p.user_id)
        audit.record(session, "reference.expire", None, p, request_id=rr.id)
        full = rr.status in (ReferenceStatus.ACCEPTED, ReferenceStatus.SCHEDULED)
        _changed(
            session,
            rr,
            f"{advocate.name} did not answer in time",
            f"The ask expired after {ASK_DAYS} days; "
            + ("enough advocates have said yes already, so nothing is needed." if full else "ask someone else."),
        )
    return n


def connect() -> None:
    """Follow an advocate withdrawing from an accepted ask (``portal.signals.participation_withdrawn``).
    Called by the app factory; connecting again changes nothing."""
    signals.participation_withdrawn.connect(_after_withdrawn)


def _after_withdrawn(sender: object, *, session: Session, participation: Participation, **_: object) -> None:
    rr = session.scalar(select(ReferenceRequest).where(ReferenceRequest.opportunity_id == participation.opportunity_id))
    if rr is None or rr.status in CLOSED_STATUSES:
        return
    advocate = session.get(User, participation.user_id)
    audit.record(session, "reference.withdraw", advocate.id, participation, request_id=rr.id)
    _changed(session, rr, f"{advocate.name} withdrew", "Ask someone else, or cancel the request if it is not needed.")
