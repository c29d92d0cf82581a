"""Opportunities: editing by admins, status changes, and what each advocate is eligible for."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from portal.models import (
    ENGAGED_STATUSES,
    ActivityType,
    AdvocateProfile,
    Base,
    Industry,
    Opportunity,
    OpportunityStatus,
    Participation,
    ParticipationStatus,
    Product,
    Region,
    SelectionMode,
    SizeBand,
    User,
    utcnow,
)
from portal.services import audit, fatigue, paging
from portal.services.errors import Conflict, DomainError, NotFound

TRANSITIONS = {
    OpportunityStatus.DRAFT: {OpportunityStatus.OPEN, OpportunityStatus.ARCHIVED},
    OpportunityStatus.OPEN: {OpportunityStatus.CLOSED},
    OpportunityStatus.CLOSED: {OpportunityStatus.OPEN, OpportunityStatus.ARCHIVED},
    OpportunityStatus.ARCHIVED: set(),
}


@dataclass
class OpportunityInput:
    activity_type_id: int
    title: str
    description: str = ""
    capacity: int | None = None
    points: int | None = None
    event_date: date | None = None
    deadline: date | None = None
    is_virtual: bool = True
    location: str = ""
    external_url: str = ""
    selection_mode: str = SelectionMode.SELECTION.value
    term_start: date | None = None
    term_end: date | None = None
    industry_ids: list[int] = field(default_factory=list)
    product_ids: list[int] = field(default_factory=list)
    region_ids: list[int] = field(default_factory=list)
    size_band_ids: list[int] = field(default_factory=list)


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
NOT_A_LINK = "The external link must be an http:// or https:// address."


def _valid_host(host: str) -> bool:
    """A DNS name with a dot (international names allowed), or an IP address."""
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        return False
    labels = ascii_host.split(".")
    return (
        len(ascii_host) <= 253
        and len(labels) >= 2
        and all(_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()
    )


def check_external_url(url: str) -> str | None:
    url = (url or "").strip()
    if not url:
        return None
    if len(url) > 500:
        raise DomainError("The external link is too long.")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[::1": an unbalanced IPv6 bracket
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise DomainError(NOT_A_LINK)
    if any(c.isspace() or not c.isprintable() or c == "\\" for c in url):
        raise DomainError("The external link cannot contain spaces or control characters (write a space as %20).")
    if "@" in parts.netloc:
        raise DomainError("The external link cannot contain a user name or password.")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
        host = parts.hostname or ""
    except ValueError:
        host = ""
    if not _valid_host(host):
        raise DomainError("The external link needs a valid host name, like https://www.example.com/.")
    return url


def _items(session: Session, model: type[Base], ids: list[int], label: str) -> list:
    ids = set(ids or [])
    if not ids:
        return []
    items = list(session.scalars(select(model).where(model.id.in_(ids))))
    if len(items) != len(ids):
        raise DomainError(f"Choose {label} from the list.")
    return items


DATE_RANGE_DAYS = 3653  # new dates within ten years of today, either way
DATE_FIELDS = (
    ("event_date", "The event date"),
    ("deadline", "The deadline"),
    ("term_start", "The term start"),
    ("term_end", "The term end"),
)


def _check_dates(opp: Opportunity, data: OpportunityInput) -> None:
    """A new or changed date must be within ten years of today (0001-01-01 and 9999-12-31 are typos);
    a date already saved may stay as it is."""
    today = utcnow().date()
    lo, hi = today - timedelta(days=DATE_RANGE_DAYS), today + timedelta(days=DATE_RANGE_DAYS)
    for attr, label in DATE_FIELDS:
        value = getattr(data, attr)
        if value is not None and value != getattr(opp, attr, None) and not lo <= value <= hi:
            raise DomainError(
                f"{label} must be within ten years of today (between {fatigue.fmt_day(lo)} and {fatigue.fmt_day(hi)})."
            )


def _apply(session: Session, opp: Opportunity, data: OpportunityInput) -> None:
    title = (data.title or "").strip()
    if not title:
        raise DomainError("Give the opportunity a title.")
    activity_type = session.get(ActivityType, data.activity_type_id)
    if activity_type is None:
        raise DomainError("Choose an activity type from the list.")
    try:
        mode = SelectionMode(data.selection_mode)
    except ValueError:
        raise DomainError("Choose first-come or selection.") from None
    if data.capacity is not None and not 1 <= data.capacity <= 10_000:
        raise DomainError("Capacity must be between 1 and 10,000 (leave it empty for unlimited).")
    if data.capacity is not None and data.capacity < (opp.seats_taken or 0):
        raise DomainError(f"{opp.seats_taken} seats are already taken; capacity cannot be lower.")
    if data.points is not None and not 0 <= data.points <= 100_000:
        raise DomainError("Points must be between 0 and 100,000 (leave empty for the activity's default).")
    _check_dates(opp, data)
    if data.deadline and data.event_date and data.deadline > data.event_date:
        raise DomainError("The deadline cannot be after the event date.")
    if activity_type.key == "advisory_board":
        if not (data.term_start and data.term_end):
            raise DomainError("An advisory board needs a term: a start and an end date.")
    if data.term_start and data.term_end and data.term_end < data.term_start:
        raise DomainError("The term cannot end before it starts.")
    if not data.is_virtual and not (data.location or "").strip():
        raise DomainError("Give a location, or mark the opportunity as virtual.")
    opp.activity_type = activity_type
    opp.title, opp.description = title[:160], (data.description or "").strip()
    opp.capacity, opp.points = data.capacity, data.points
    opp.event_date, opp.deadline = data.event_date, data.deadline
    opp.is_virtual, opp.location = bool(data.is_virtual), (data.location or "").strip()[:160]
    opp.external_url = check_external_url(data.external_url)
    opp.selection_mode = mode
    opp.term_start, opp.term_end = data.term_start, data.term_end
    opp.industries = _items(session, Industry, data.industry_ids, "industries")
    opp.products = _items(session, Product, data.product_ids, "products")
    opp.regions = _items(session, Region, data.region_ids, "regions")
    opp.size_bands = _items(session, SizeBand, data.size_band_ids, "company sizes")


def create(session: Session, data: OpportunityInput, actor_id: int) -> Opportunity:
    opp = Opportunity(created_by_id=actor_id, status=OpportunityStatus.DRAFT, seats_taken=0)
    _apply(session, opp, data)
    session.add(opp)
    session.flush()
    audit.record(session, "opportunity.create", actor_id, opp, title=opp.title)
    return opp


def update(session: Session, opp: Opportunity, data: OpportunityInput, actor_id: int) -> Opportunity:
    if opp.status == OpportunityStatus.ARCHIVED:
        raise Conflict("Archived opportunities cannot be edited; duplicate it instead.")
    _apply(session, opp, data)
    audit.record(session, "opportunity.update", actor_id, opp, title=opp.title)
    session.flush()
    return opp


def duplicate(session: Session, opp: Opportunity, actor_id: int) -> Opportunity:
    copy = Opportunity(
        activity_type=opp.activity_type,
        title=f"Copy of {opp.title}"[:160],
        description=opp.description,
        capacity=opp.capacity,
        points=opp.points,
        event_date=opp.event_date,
        deadline=opp.deadline,
        is_virtual=opp.is_virtual,
        location=opp.location,
        external_url=opp.external_url,
        selection_mode=opp.selection_mode,
        term_start=opp.term_start,
        term_end=opp.term_end,
        industries=list(opp.industries),
        products=list(opp.products),
        regions=list(opp.regions),
        size_bands=list(opp.size_bands),
        status=OpportunityStatus.DRAFT,
        seats_taken=0,
        created_by_id=actor_id,
    )
    session.add(copy)
    session.flush()
    audit.record(session, "opportunity.duplicate", actor_id, copy, source_id=opp.id)
    return copy


def set_status(session: Session, opp: Opportunity, new: OpportunityStatus, actor_id: int) -> Opportunity:
    if new not in TRANSITIONS[opp.status]:
        raise Conflict(f"A {opp.status.value} opportunity cannot become {new.value}.")
    if new == OpportunityStatus.OPEN and opp.deadline and opp.deadline < utcnow().date():
        raise DomainError("The deadline has passed; change it before opening.")
    opp.status = new
    if new == OpportunityStatus.OPEN and opp.opened_at is None:
        opp.opened_at = utcnow()
    audit.record(session, f"opportunity.{new.value}", actor_id, opp, title=opp.title)
    return opp


def get(session: Session, opp_id: int) -> Opportunity:
    opp = session.get(Opportunity, opp_id)
    if opp is None:
        raise NotFound("No such opportunity.")
    return opp


# Opportunities advocates do not see: a draft is not ready, an archived one is over.
HIDDEN_FROM_ADVOCATES = frozenset({OpportunityStatus.DRAFT, OpportunityStatus.ARCHIVED})


def visible_to(session: Session, user_id: int, opp: Opportunity) -> bool:
    """May this advocate see ``opp`` at all (its page, a request for a seat)? Not a draft or an archived
    one, unless they answered it once (their commitments link there); to them the others do not exist,
    like an unknown id. What they may see can still refuse them (closed, full, deadline passed). A private
    one (a reference request's) only its participants (the advocates asked) see."""
    if opp.status not in HIDDEN_FROM_ADVOCATES and not opp.private:
        return True
    answered = select(Participation.id).where(Participation.opportunity_id == opp.id, Participation.user_id == user_id)
    return session.scalar(answered.limit(1)) is not None


# --- who may take part -----------------------------------------------------------------------------------------------


@dataclass
class Match:
    opportunity: Opportunity
    reasons: list[str]
    # Fatigue rules a request would break now, told to the advocate ("You asked for at most ..."):
    # the opportunity fits, but "I'm in" would be refused.
    blocked: list[str] = field(default_factory=list)

    @property
    def why(self) -> str:
        if not self.reasons:
            return "Open to every advocate"
        if len(self.reasons) == 1:
            return f"Matches your {self.reasons[0]}"
        return "Matches your " + ", ".join(self.reasons[:-1]) + " and " + self.reasons[-1]


def targeting(opp: Opportunity, profile: AdvocateProfile | None) -> list[str] | None:
    """None when the advocate is outside the opportunity's targeting; else the dimensions matched."""
    reasons = []
    checks = [
        ("industry", [i.id for i in opp.industries], [profile.industry_id] if profile and profile.industry_id else []),
        ("product", [p.id for p in opp.products], [p.id for p in profile.products] if profile else []),
        ("region", [r.id for r in opp.regions], [profile.region.id] if profile and profile.region else []),
        (
            "company size",
            [s.id for s in opp.size_bands],
            [profile.size_band_id] if profile and profile.size_band_id else [],
        ),
    ]
    for label, wanted, have in checks:
        if not wanted:
            continue
        if not set(wanted) & set(have):
            return None
        reasons.append(label)
    return reasons


def open_opportunities(session: Session, today: date | None = None) -> list[Opportunity]:
    today = today or utcnow().date()
    q = (
        select(Opportunity)
        .where(Opportunity.status == OpportunityStatus.OPEN, Opportunity.private.is_(False))
        .where((Opportunity.deadline.is_(None)) | (Opportunity.deadline >= today))
        .options(
            selectinload(Opportunity.industries),
            selectinload(Opportunity.products),
            selectinload(Opportunity.regions),
            selectinload(Opportunity.size_bands),
        )
        .order_by(Opportunity.deadline.is_(None), Opportunity.deadline, Opportunity.id)
    )
    return list(session.scalars(q))


# Machine-readable reasons of the opportunity itself (the advocate's own are fatigue's: NOT_OPTED_IN, ...).
NOT_OPEN = "not_open"
DEADLINE_PASSED = "deadline_passed"
FULL = "full"
NOT_TARGETED = "not_targeted"
# An opportunity refused for one of these is not offered at all (the feed, the digest leave it out); one
# refused only by limits (fatigue.LIMITS) is shown, held back, with the reason.
NOT_FOR_THEM = frozenset({NOT_OPEN, DEADLINE_PASSED, FULL, NOT_TARGETED, fatigue.NOT_ACTIVE, fatigue.NOT_OPTED_IN})


def may_take_part(
    session: Session,
    user: User,
    opp: Opportunity,
    *,
    snapshot: fatigue.Snapshot | None = None,
    now: datetime | None = None,
) -> fatigue.Decision:
    """May this advocate be asked to take part in ``opp`` (by themselves, by an admin, by the feed)?
    What the opportunity requires (open, before its deadline, a seat left, the advocate in its
    targeting), then every rule that protects the advocate, for its engagement day
    (``fatigue.may_ask``'s rules, through the advocate's ``snapshot`` when the caller decides many)."""
    snap = snapshot or fatigue.Snapshot(session, user, now=now)
    today = snap.now.date()
    reasons = []
    if opp.status != OpportunityStatus.OPEN:
        reasons.append(fatigue.Reason(NOT_OPEN, "This opportunity is not open.", "This opportunity is not open."))
    if opp.deadline and opp.deadline < today:
        reasons.append(
            fatigue.Reason(
                DEADLINE_PASSED,
                f"The sign-up deadline ({fatigue.fmt_day(opp.deadline)}) has passed.",
                "The deadline has passed.",
            )
        )
    if opp.seats_left == 0:
        reasons.append(
            fatigue.Reason(
                FULL, "All seats are taken; raise the capacity or decline someone first.", "All seats are taken."
            )
        )
    if targeting(opp, snap.profile) is None:
        reasons.append(
            fatigue.Reason(
                NOT_TARGETED,
                f"{user.name}'s profile does not match the opportunity's targeting.",
                "This opportunity is for advocates with a different profile.",
            )
        )
    return fatigue.Decision(tuple(reasons)) + snap.decide(opp.activity_type, opp.engagement_date)


def detail(session: Session, user: User, opp: Opportunity) -> tuple[fatigue.Decision, Match]:
    """For the opportunity's page: may the advocate say "I'm in" (with the reasons in their words when
    not), and the opportunity as the feed shows it (the dimensions of their profile it matches)."""
    snap = fatigue.Snapshot(session, user)
    decision = may_take_part(session, user, opp, snapshot=snap)
    return decision, Match(opp, targeting(opp, snap.profile) or [], decision.for_advocate())


def _matches(
    session: Session,
    user: User,
    activity_type_id: int | None,
    now: datetime,
    include_blocked: bool,
    opps: list[Opportunity] | None,
    snapshot: fatigue.Snapshot | None = None,
    policy: fatigue.Policy | None = None,
) -> list[Match]:
    taken = set(session.scalars(select(Participation.opportunity_id).where(Participation.user_id == user.id)))
    snap = snapshot
    matches = []
    for opp in opps if opps is not None else open_opportunities(session, now.date()):
        if opp.id in taken or (activity_type_id and opp.activity_type_id != activity_type_id):
            continue
        if snap is None:  # read once per advocate; each opportunity is then decided in Python
            snap = fatigue.Snapshot(session, user, now=now, pol=policy)
        decision = may_take_part(session, user, opp, snapshot=snap)
        if decision.has(NOT_FOR_THEM | fatigue.AWAY) or (decision.reasons and not include_blocked):
            continue
        matches.append(Match(opp, targeting(opp, snap.profile) or [], decision.for_advocate()))
    # requestable first, then best fits; stable: deadline order kept within a score
    matches.sort(key=lambda m: (bool(m.blocked), -len(m.reasons)))
    return matches


def feed(
    session: Session,
    user: User,
    activity_type_id: int | None = None,
    *,
    now: datetime | None = None,
    opps: list[Opportunity] | None = None,
    policy: fatigue.Policy | None = None,
) -> list[Match]:
    """Open opportunities this advocate is eligible for, not yet part of and could say "I'm in" to
    now (no rule against it), best fits first. ``opps``: the open opportunities, when the caller
    already has them (the digest, for every advocate)."""
    return _matches(session, user, activity_type_id, now or utcnow(), False, opps, policy=policy)


def feed_with_limits(
    session: Session, user: User, activity_type_id: int | None = None
) -> tuple[list[Match], list[str]]:
    """The feed page: what ``feed`` lists, then the fitting opportunities a limit holds back (each with
    its reason), and the reasons that hold back every one of them (a pause, the advocate's own ask
    limits), said once."""
    now = utcnow()
    snap = fatigue.Snapshot(session, user, now=now)
    general = [r.advocate for r in snap.general()]
    return _matches(session, user, activity_type_id, now, True, None, snap), general


PARTICIPANTS_PER_PAGE = 50


@dataclass
class ParticipantsPage:
    """One page of an opportunity's participants (each with its user loaded), and the counts by status."""

    rows: list[Participation]
    page: int
    pages: int
    total: int  # of the status asked for (all when none)
    by_status: dict[ParticipationStatus, int]


def participants_page(
    session: Session,
    opp_id: int,
    status: ParticipationStatus | None = None,
    page: int = 1,
    per_page: int | None = None,
) -> ParticipantsPage:
    """Two queries whatever the number of participants: the counts by status, and the page's rows with
    their users (oldest request first). A page past the last is the last. ``per_page``: PARTICIPANTS_PER_PAGE."""
    per_page = per_page or PARTICIPANTS_PER_PAGE
    of_opp = Participation.opportunity_id == opp_id
    by_status = dict(
        session.execute(select(Participation.status, func.count()).where(of_opp).group_by(Participation.status)).all()
    )
    total = sum(by_status.values()) if status is None else by_status.get(status, 0)
    q = select(Participation).options(joinedload(Participation.user)).where(of_opp)
    if status is not None:
        q = q.where(Participation.status == status)
    found = paging.paginate(session, q.order_by(Participation.requested_at, Participation.id), page, per_page, total)
    return ParticipantsPage(found.rows, found.page, found.pages, found.total, by_status)


def rosters(session: Session, opp_ids: list[int]) -> dict[int, list[Participation]]:
    """The members (approved or completed) of each opportunity, with their users: one query for all."""
    out: dict[int, list[Participation]] = {oid: [] for oid in opp_ids}
    if not opp_ids:
        return out
    q = (
        select(Participation)
        .options(joinedload(Participation.user))
        .where(Participation.opportunity_id.in_(opp_ids), Participation.status.in_(ENGAGED_STATUSES))
        .order_by(Participation.requested_at, Participation.id)
    )
    for p in session.scalars(q):
        out[p.opportunity_id].append(p)
    return out


ADMIN_PER_PAGE = 50


def admin_list(
    session: Session, status: str | None = None, waiting_only: bool = False, page: int = 1, per_page: int | None = None
) -> paging.Page:
    """A page of opportunities (of a status), newest first; ``waiting_only``: those with a request waiting.
    Reference requests' private opportunities are left out (their requests list them)."""
    q = select(Opportunity).order_by(Opportunity.created_at.desc(), Opportunity.id.desc())
    q = q.where(Opportunity.private.is_(False))  # a reference request's: on the request's page (staff workspace)
    if status:
        q = q.where(Opportunity.status == OpportunityStatus(status))
    if waiting_only:
        waiting = select(Participation.opportunity_id).where(Participation.status == ParticipationStatus.REQUESTED)
        q = q.where(Opportunity.id.in_(waiting))
    return paging.paginate(session, q, page, per_page or ADMIN_PER_PAGE)
