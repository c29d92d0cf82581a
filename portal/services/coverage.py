"""Portfolio coverage: the segment targets admins set ("healthcare, EMEA, willing to speak: 10") against
the advocates who can answer them, and against the demand of the last 180 days.

An advocate covers a target when they are, now:

- active: an approved advocate whose account is active;
- in the segment: each dimension the target sets matches their profile (industry, country, the region
  of their country, company size, one of their products) and, when it names an activity type, they
  opted in to it (their activity preferences);
- fresh: their profile is not stale (``profiles.stale_condition``, PROFILE_STALE_DAYS);
- available for it: an undated ask today would not be refused as paused, in a blackout or at a limit
  (``fatigue.statuses`` not in ``fatigue.REFUSED_STATUSES``: the same rule the advocate search uses to
  hide advocates by default).

Demand: opportunities opened in the last 180 days whose targeting asks for the target's segment (the
activity type; each of industry, region (a target's country counts as its region), product and company
size the target sets is among the opportunity's targeting), and how many of them went unfulfilled (over:
closed, archived or past their deadline, with fewer seats taken than offered, one for unlimited).
Reference requests of the last 180 days count too (``reference_demand``): those whose activity type and
criteria are the target's (each dimension the target sets; a target's country counts as its region), and
how many went unfulfilled (cancelled, or past their due day without as many advocates as they needed).

``coverage`` reads every active target's members with one query (a UNION ALL of one select per target),
their fatigue with ``fatigue.statuses`` on those ids as a subquery, and the demand with one more: a
constant number of queries whatever the number of advocates.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, case, exists, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from portal.models import (
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    Base,
    Country,
    Industry,
    Opportunity,
    OpportunityStatus,
    Product,
    ReferenceRequest,
    ReferenceStatus,
    Region,
    Role,
    SegmentTarget,
    SizeBand,
    Status,
    User,
    profile_products,
    utcnow,
)
from portal.models.opportunities import (
    opportunity_industries,
    opportunity_products,
    opportunity_regions,
    opportunity_size_bands,
)
from portal.services import audit, fatigue, profiles
from portal.services.errors import DomainError, NotFound
from search import service as search_service

DEMAND_DAYS = 180
MAX_WANTED = 100_000
DIMENSIONS = ("industry_id", "region_id", "country_code", "product_id", "size_band_id", "activity_type_id")


@dataclass
class TargetInput:
    name: str
    industry_id: int | None = None
    region_id: int | None = None
    country_code: str | None = None
    product_id: int | None = None
    size_band_id: int | None = None
    activity_type_id: int | None = None
    wanted: int | None = None
    due_on: date | None = None


def _clean(session: Session, data: TargetInput) -> dict:
    name = (data.name or "").strip()
    if not name:
        raise DomainError("Give the target a name.")
    if len(name) > 120:
        raise DomainError("A target's name may have at most 120 characters.")
    values = {k: getattr(data, k) or None for k in DIMENSIONS}
    if not any(values.values()):
        raise DomainError("Choose at least one of industry, region, country, product, company size or activity.")
    for key, model in (
        ("industry_id", Industry),
        ("region_id", Region),
        ("country_code", Country),
        ("product_id", Product),
        ("size_band_id", SizeBand),
        ("activity_type_id", ActivityType),
    ):
        if values[key] is not None and session.get(model, values[key]) is None:
            raise DomainError("One of the chosen items no longer exists; reload the page.")
    if values["country_code"] and values["region_id"]:
        if session.get(Country, values["country_code"]).region_id != values["region_id"]:
            raise DomainError("That country is not in that region: choose one of them, or a matching pair.")
    if data.wanted is None or not 1 <= int(data.wanted) <= MAX_WANTED:
        raise DomainError(f"The number of advocates wanted must be from 1 to {MAX_WANTED:,}.")
    return {"name": name, **values, "wanted": int(data.wanted), "due_on": data.due_on}


def _facts(target: SegmentTarget) -> dict:
    out = {k: getattr(target, k) for k in ("name", *DIMENSIONS, "wanted")}
    out["due_on"] = target.due_on.isoformat() if target.due_on else None
    return out


def create_target(session: Session, data: TargetInput, actor_id: int) -> SegmentTarget:
    target = SegmentTarget(**_clean(session, data), created_by_id=actor_id)
    session.add(target)
    session.flush()
    audit.record(session, "coverage.target_create", actor_id, target, after=_facts(target))
    return target


def get_target(session: Session, target_id: int) -> SegmentTarget:
    target = session.get(SegmentTarget, target_id)
    if target is None or not target.active:
        raise NotFound("No such target.")
    return target


def update_target(session: Session, target_id: int, data: TargetInput, actor_id: int) -> SegmentTarget:
    target = get_target(session, target_id)
    before = _facts(target)
    for key, value in _clean(session, data).items():
        setattr(target, key, value)
    session.flush()
    audit.record(session, "coverage.target_edit", actor_id, target, before=before, after=_facts(target))
    return target


def retire_target(session: Session, target_id: int, actor_id: int) -> SegmentTarget:
    target = get_target(session, target_id)
    target.active = False
    session.flush()
    audit.record(session, "coverage.target_retire", actor_id, target, before=_facts(target))
    return target


# --- who covers a target, and the demand for it ---------------------------------------------------------------------


def _members(target: SegmentTarget, now: datetime):
    """Select (target id, user id) of the active, fresh advocates in the target's segment."""
    P = AdvocateProfile
    q = (
        select(literal(target.id).label("target_id"), User.id.label("user_id"))
        .join(P, P.user_id == User.id)
        .where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE, ~profiles.stale_condition(now))
    )
    if target.industry_id:
        q = q.where(P.industry_id == target.industry_id)
    if target.size_band_id:
        q = q.where(P.size_band_id == target.size_band_id)
    if target.country_code:
        q = q.where(P.country_code == target.country_code)
    if target.region_id:
        q = q.where(P.country_code.in_(select(Country.code).where(Country.region_id == target.region_id)))
    if target.product_id:
        q = q.where(
            exists().where(profile_products.c.user_id == User.id, profile_products.c.product_id == target.product_id)
        )
    if target.activity_type_id:
        q = q.where(
            exists().where(
                ActivityPreference.user_id == User.id,
                ActivityPreference.activity_type_id == target.activity_type_id,
                ActivityPreference.opted_in.is_(True),
            )
        )
    return q


def _demand(target: SegmentTarget, region_id: int | None, since: datetime, today: date):
    """Select (target id, unfulfilled 0/1) per opportunity of the last 180 days that asked for the segment."""
    Opp = Opportunity
    over = or_(Opp.status.in_((OpportunityStatus.CLOSED, OpportunityStatus.ARCHIVED)), Opp.deadline < today)
    short = Opp.seats_taken < func.coalesce(Opp.capacity, 1)
    q = select(literal(target.id).label("target_id"), case((and_(over, short), 1), else_=0).label("unfulfilled")).where(
        Opp.opened_at >= since
    )
    if target.activity_type_id:
        q = q.where(Opp.activity_type_id == target.activity_type_id)
    for value, table, column in (
        (target.industry_id, opportunity_industries, "industry_id"),
        (region_id, opportunity_regions, "region_id"),
        (target.product_id, opportunity_products, "product_id"),
        (target.size_band_id, opportunity_size_bands, "size_band_id"),
    ):
        if value:
            q = q.where(exists().where(table.c.opportunity_id == Opp.id, table.c[column] == value))
    return q


# A reference request that got as many advocates as it needed (or more: it went on from there).
FULFILLED = (ReferenceStatus.ACCEPTED, ReferenceStatus.SCHEDULED, ReferenceStatus.COMPLETED)


def _reference_demand(target: SegmentTarget, region_id: int | None, since: datetime, today: date):
    """Select (target id, unfulfilled 0/1) per reference request of the last 180 days for the segment."""
    R = ReferenceRequest
    unfulfilled = or_(R.status == ReferenceStatus.CANCELLED, and_(R.status.not_in(FULFILLED), R.due_date < today))
    q = select(literal(target.id).label("target_id"), case((unfulfilled, 1), else_=0).label("unfulfilled")).where(
        R.created_at >= since
    )
    for value, column in (
        (target.activity_type_id, R.activity_type_id),
        (target.industry_id, R.industry_id),
        (region_id, R.region_id),
        (target.product_id, R.product_id),
        (target.size_band_id, R.size_band_id),
    ):
        if value:
            q = q.where(column == value)
    return q


def _grouped(session: Session, parts: list) -> dict[int, tuple[int, int]]:
    """{target id: (count, unfulfilled)} from the per-target selects, in one query."""
    d = union_all(*parts).subquery()
    return {
        tid: (n, int(unfulfilled))
        for tid, n, unfulfilled in session.execute(
            select(d.c.target_id, func.count(), func.coalesce(func.sum(d.c.unfulfilled), 0)).group_by(d.c.target_id)
        )
    }


def reference_demand(
    session: Session, targets: list[SegmentTarget], regions: dict[int, int | None], since: datetime, today: date
) -> dict[int, tuple[int, int]]:
    """Reference requests of the last 180 days per target: (asked, unfulfilled); a target nobody asked for
    is left out (0, 0)."""
    return _grouped(session, [_reference_demand(t, regions[t.id], since, today) for t in targets])


@dataclass
class CoverageRow:
    target_id: int
    name: str
    segment: list[tuple[str, str]]  # (dimension label, value name)
    search_args: dict[str, str]
    wanted: int
    due_on: date | None
    covered: int
    demand: int
    unfulfilled: int
    reference_requests: int  # reference requests for the segment in the last 180 days
    references_unfulfilled: int

    @property
    def gap(self) -> int:
        return max(self.wanted - self.covered, 0)

    @property
    def share(self) -> float:
        return min(self.covered / self.wanted, 1.0)

    def as_dict(self) -> dict:
        return {**asdict(self), "gap": self.gap}


def _names(session: Session) -> dict[str, dict]:
    return {
        "industry_id": dict(session.execute(select(Industry.id, Industry.name)).all()),
        "region_id": dict(session.execute(select(Region.id, Region.name)).all()),
        "country_code": {
            c: (n, r) for c, n, r in session.execute(select(Country.code, Country.name, Country.region_id))
        },
        "product_id": dict(session.execute(select(Product.id, Product.name)).all()),
        "size_band_id": dict(session.execute(select(SizeBand.id, SizeBand.name)).all()),
        "activity_type_id": {
            i: (n, k) for i, n, k in session.execute(select(ActivityType.id, ActivityType.name, ActivityType.key))
        },
    }


LABELS = {
    "industry_id": "Industry",
    "region_id": "Region",
    "country_code": "Country",
    "product_id": "Product",
    "size_band_id": "Company size",
    "activity_type_id": "Activity",
}
# The advocate search's URL parameters (search/views.py, search.facets.FACETS).
SEARCH_PARAMS = {
    "industry_id": "industry",
    "region_id": "region",
    "country_code": "country",
    "product_id": "product",
    "size_band_id": "size",
    "activity_type_id": "activity",
}


def active_targets(session: Session) -> list[SegmentTarget]:
    return list(session.scalars(select(SegmentTarget).where(SegmentTarget.active.is_(True)).order_by(SegmentTarget.id)))


def coverage(session: Session, now: datetime | None = None) -> list[CoverageRow]:
    """Every active target with the advocates covering it and the demand, the largest gap first."""
    now = now or utcnow()
    targets = active_targets(session)
    if not targets:
        return []
    names = _names(session)
    members = union_all(*(_members(t, now) for t in targets)).subquery()
    in_segment: dict[int, set[int]] = defaultdict(set)
    for tid, uid in session.execute(select(members.c.target_id, members.c.user_id)):
        in_segment[tid].add(uid)
    # Refused today (at a limit, paused, in a blackout): as the index holds the statuses, pauses live, the
    # same reading as the advocate list's fatigue tabs (the rules over every member took over a second).
    refused = set().union(
        *(s or set() for s in search_service.advocate_ids_by_fatigue(session, fatigue.REFUSED_STATUSES).values())
    )
    since = now - timedelta(days=DEMAND_DAYS)
    regions = {
        t.id: t.region_id or (names["country_code"].get(t.country_code, (None, None))[1] if t.country_code else None)
        for t in targets
    }
    demand = _grouped(session, [_demand(t, regions[t.id], since, now.date()) for t in targets])
    refs = reference_demand(session, targets, regions, since, now.date())
    rows = []
    for t in targets:
        covered = sum(1 for uid in in_segment.get(t.id, ()) if uid not in refused)
        segment, args = [], {}
        for key in DIMENSIONS:
            value = getattr(t, key)
            if not value:
                continue
            known = names[key].get(value)
            if key == "country_code":
                label = known[0] if known else value
                args[SEARCH_PARAMS[key]] = value
            elif key == "activity_type_id":
                label = known[0] if known else "?"
                if known:
                    args[SEARCH_PARAMS[key]] = known[1]
            else:
                label = known or "?"
                args[SEARCH_PARAMS[key]] = str(value)
            segment.append((LABELS[key], label))
        n, unfulfilled = demand.get(t.id, (0, 0))
        rows.append(
            CoverageRow(
                target_id=t.id,
                name=t.name,
                segment=segment,
                search_args=args,
                wanted=t.wanted,
                due_on=t.due_on,
                covered=covered,
                demand=n,
                unfulfilled=unfulfilled,
                reference_requests=refs.get(t.id, (0, 0))[0],
                references_unfulfilled=refs.get(t.id, (0, 0))[1],
            )
        )
    rows.sort(key=lambda r: (-r.gap, r.name.lower(), r.target_id))
    return rows


CSV_HEADER = (
    "Target",
    "Industry",
    "Region",
    "Country",
    "Product",
    "Company size",
    "Activity",
    "Wanted",
    "Due",
    "Covered (active, fresh, available)",
    "Gap",
    f"Opportunities asking (last {DEMAND_DAYS} days)",
    "Unfulfilled",
    f"Reference requests (last {DEMAND_DAYS} days)",
    "Reference requests unfulfilled",
)


def csv_rows(rows: list[CoverageRow]):
    """The coverage page's rows, in its order, as CSV rows (the same numbers)."""
    for r in rows:
        seg = dict(r.segment)
        yield (
            r.name,
            *(seg.get(LABELS[k], "") for k in DIMENSIONS),
            r.wanted,
            r.due_on,
            r.covered,
            r.gap,
            r.demand,
            r.unfulfilled,
            r.reference_requests,
            r.references_unfulfilled,
        )


def dimension_choices(session: Session) -> dict[str, list[tuple[str, str]]]:
    """The target form's choices per dimension: the active list items, in their order."""

    def items(model: type[Base]) -> list[tuple[str, str]]:
        return [
            (str(i), n)
            for i, n in session.execute(
                select(model.id, model.name).where(model.active.is_(True)).order_by(model.position, model.name)
            )
        ]

    return {
        "industry_id": items(Industry),
        "region_id": items(Region),
        "country_code": [(c, n) for c, n in session.execute(select(Country.code, Country.name).order_by(Country.name))],
        "product_id": items(Product),
        "size_band_id": items(SizeBand),
        "activity_type_id": items(ActivityType),
    }
