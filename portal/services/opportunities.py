"""Opportunities: editing by admins, status changes, and what each advocate is eligible for."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.models import (ActivityPreference, ActivityType, AdvocateProfile, Industry, Opportunity,
                           OpportunityStatus, Participation, Product, Region, SelectionMode, SizeBand, User, utcnow)
from portal.models.opportunities import ACTIVE_STATUSES
from portal.services import audit
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


def check_external_url(url: str) -> str | None:
    url = (url or "").strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[::1": an unbalanced IPv6 bracket
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise DomainError("The external link must be an http:// or https:// address.")
    if len(url) > 500:
        raise DomainError("The external link is too long.")
    return url


def _items(session, model, ids: list[int], label: str) -> list:
    ids = set(ids or [])
    if not ids:
        return []
    items = list(session.scalars(select(model).where(model.id.in_(ids))))
    if len(items) != len(ids):
        raise DomainError(f"Choose {label} from the list.")
    return items


def _apply(session, opp: Opportunity, data: OpportunityInput) -> None:
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


def create(session, data: OpportunityInput, actor_id: int) -> Opportunity:
    opp = Opportunity(created_by_id=actor_id, status=OpportunityStatus.DRAFT, seats_taken=0)
    _apply(session, opp, data)
    session.add(opp)
    session.flush()
    audit.record(session, "opportunity.create", actor_id, opp, title=opp.title)
    return opp


def update(session, opp: Opportunity, data: OpportunityInput, actor_id: int) -> Opportunity:
    if opp.status == OpportunityStatus.ARCHIVED:
        raise Conflict("Archived opportunities cannot be edited; duplicate it instead.")
    _apply(session, opp, data)
    audit.record(session, "opportunity.update", actor_id, opp, title=opp.title)
    session.flush()
    return opp


def duplicate(session, opp: Opportunity, actor_id: int) -> Opportunity:
    copy = Opportunity(
        activity_type=opp.activity_type, title=f"Copy of {opp.title}"[:160], description=opp.description,
        capacity=opp.capacity, points=opp.points, event_date=opp.event_date, deadline=opp.deadline,
        is_virtual=opp.is_virtual, location=opp.location, external_url=opp.external_url,
        selection_mode=opp.selection_mode, term_start=opp.term_start, term_end=opp.term_end,
        industries=list(opp.industries), products=list(opp.products), regions=list(opp.regions),
        size_bands=list(opp.size_bands), status=OpportunityStatus.DRAFT, seats_taken=0, created_by_id=actor_id)
    session.add(copy)
    session.flush()
    audit.record(session, "opportunity.duplicate", actor_id, copy, source_id=opp.id)
    return copy


def set_status(session, opp: Opportunity, new: OpportunityStatus, actor_id: int) -> Opportunity:
    if new not in TRANSITIONS[opp.status]:
        raise Conflict(f"A {opp.status.value} opportunity cannot become {new.value}.")
    if new == OpportunityStatus.OPEN and opp.deadline and opp.deadline < utcnow().date():
        raise DomainError("The deadline has passed; change it before opening.")
    opp.status = new
    if new == OpportunityStatus.OPEN and opp.opened_at is None:
        opp.opened_at = utcnow()
    audit.record(session, f"opportunity.{new.value}", actor_id, opp, title=opp.title)
    return opp


def get(session, opp_id: int) -> Opportunity:
    opp = session.get(Opportunity, opp_id)
    if opp is None:
        raise NotFound("No such opportunity.")
    return opp


# --- eligibility --------------------------------------------------------------------------------------------------


@dataclass
class Match:
    opportunity: Opportunity
    reasons: list[str]

    @property
    def why(self) -> str:
        if not self.reasons:
            return "Open to every advocate"
        if len(self.reasons) == 1:
            return f"Matches your {self.reasons[0]}"
        return "Matches your " + ", ".join(self.reasons[:-1]) + " and " + self.reasons[-1]


def _targeting_reasons(opp: Opportunity, profile: AdvocateProfile | None) -> list[str] | None:
    """None when the advocate is outside the targeting; else the specific dimensions matched."""
    reasons = []
    checks = [
        ("industry", [i.id for i in opp.industries], [profile.industry_id] if profile and profile.industry_id else []),
        ("product", [p.id for p in opp.products], [p.id for p in profile.products] if profile else []),
        ("region", [r.id for r in opp.regions], [profile.region.id] if profile and profile.region else []),
        ("company size", [s.id for s in opp.size_bands],
         [profile.size_band_id] if profile and profile.size_band_id else []),
    ]
    for label, wanted, have in checks:
        if not wanted:
            continue
        if not set(wanted) & set(have):
            return None
        reasons.append(label)
    return reasons


def open_opportunities(session, today: date | None = None) -> list[Opportunity]:
    today = today or utcnow().date()
    q = (select(Opportunity).where(Opportunity.status == OpportunityStatus.OPEN)
         .where((Opportunity.deadline.is_(None)) | (Opportunity.deadline >= today))
         .options(selectinload(Opportunity.industries), selectinload(Opportunity.products),
                  selectinload(Opportunity.regions), selectinload(Opportunity.size_bands))
         .order_by(Opportunity.deadline.is_(None), Opportunity.deadline, Opportunity.id))
    return list(session.scalars(q))


def eligibility(session, user: User, opp: Opportunity, profile: AdvocateProfile | None = None,
                today: date | None = None, opted_in: set[int] | None = None) -> tuple[bool, str, list[str]]:
    """(eligible, why not, matched dimensions) for one advocate and one opportunity."""
    today = today or utcnow().date()
    profile = profile if profile is not None else session.get(AdvocateProfile, user.id)
    if opp.status != OpportunityStatus.OPEN:
        return False, "This opportunity is not open.", []
    if opp.deadline and opp.deadline < today:
        return False, "The deadline has passed.", []
    if opp.seats_left == 0:
        return False, "All seats are taken.", []
    if opted_in is None:
        opted_in = set(session.scalars(select(ActivityPreference.activity_type_id).where(
            ActivityPreference.user_id == user.id, ActivityPreference.opted_in.is_(True))))
    if opp.activity_type_id not in opted_in:
        return False, f"You have not opted in to {opp.activity_type.name.lower()} activities.", []
    reasons = _targeting_reasons(opp, profile)
    if reasons is None:
        return False, "This opportunity is for advocates with a different profile.", []
    when = opp.engagement_date or today
    if profile is not None:
        if profile.paused_until and profile.paused_until >= today:
            return False, "You have paused asks.", reasons
        if any(b.starts_on <= when <= b.ends_on for b in profile.blackouts):
            return False, "It falls in one of your blackout periods.", reasons
    return True, "", reasons


def feed(session, user: User, activity_type_id: int | None = None, today: date | None = None) -> list[Match]:
    """Open opportunities this advocate is eligible for and not yet part of, best fits first."""
    today = today or utcnow().date()
    profile = session.get(AdvocateProfile, user.id)
    opted_in = set(session.scalars(select(ActivityPreference.activity_type_id).where(
        ActivityPreference.user_id == user.id, ActivityPreference.opted_in.is_(True))))
    taken = set(session.scalars(select(Participation.opportunity_id).where(Participation.user_id == user.id)))
    matches = []
    for opp in open_opportunities(session, today):
        if opp.id in taken or (activity_type_id and opp.activity_type_id != activity_type_id):
            continue
        ok, _, reasons = eligibility(session, user, opp, profile, today, opted_in)
        if ok:
            matches.append(Match(opp, reasons))
    matches.sort(key=lambda m: -len(m.reasons))  # stable: deadline order kept within a score
    return matches


def participants(session, opp_id: int) -> list[Participation]:
    return list(session.scalars(select(Participation).where(Participation.opportunity_id == opp_id)
                                .order_by(Participation.requested_at, Participation.id)))


def admin_list(session, status: str | None = None) -> list[Opportunity]:
    q = select(Opportunity).order_by(Opportunity.created_at.desc(), Opportunity.id.desc())
    if status:
        q = q.where(Opportunity.status == OpportunityStatus(status))
    return list(session.scalars(q.limit(500)))


def active_count(session, opp_id: int) -> int:
    return len([p for p in participants(session, opp_id) if p.status in ACTIVE_STATUSES])


def new_since(session, since: datetime | None) -> list[Opportunity]:
    return [o for o in open_opportunities(session) if since is None or (o.opened_at and o.opened_at > since)]
