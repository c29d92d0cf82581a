"""The program dashboard (admins): what the program did in a period, against the period before it, and
what each activity type is worth (a value per type, with its history).

Periods are UTC calendar days: a month, a quarter or a year (the one holding a chosen day), or custom
dates (both included); each is compared with the period before it (the previous month, quarter or year;
for custom dates the same number of days just before). A period is ``[start, end)`` in UTC instants.

One function per block of the page, each a constant number of grouped queries whatever the data size
(``dashboard`` calls them for the period and for the one before):

- ``advocates``: new advocates (approved in the period) by source, advocates who completed an activity;
- ``participations``: requested in the period by type and outcome, with the completion, decline and
  no-show rates (of those requested in the period), completed ones by type and month, and their value;
- ``points``: points earned and redeemed, rewards fulfilled;
- ``top_advocates``: most activities completed in the period;
- ``reward_return``: per reward ordered in the period, the advocates' completed activities in the 90
  days before and after their order;
- now, not per period: ``membership`` (active advocates, stale profiles by ``profiles.stale_condition``)
  and ``fatigue_distribution`` (``fatigue.statuses`` itself, for every active advocate).

From the staff workspace and the imports: new advocates by the invitation they joined through
(``new_by_nomination``, ``new_by_import``), ``top_nominators`` (nominees who joined in the period),
``reference_requests`` (received, fulfilled, median days to fulfil) and ``influenced_revenue`` (won deals
with a completed reference, by activity type and industry, and the win rates with and without one, each
with the counts behind it).

Kept figures: ``figures`` computes a period's blocks (and the previous period's); ``keep`` stores them
(``flask reports refresh`` for the current and previous month, quarter and year; an admin's "Refresh now"
for any period) and ``dashboard`` reads them while younger than REPORT_FIGURES_MAX_AGE (``kept``), else
computes them on view. See the section "kept figures" below.

Activity values: ``set_value`` adds a row in force from today (UTC) on; the value of a completed activity
is the one in force on the day it was completed (``value_on``). Rows are never changed, so the past keeps
the value it had. Before any value is set a type is worth 0.
"""

from __future__ import annotations

import bisect
import calendar
from collections import Counter, defaultdict
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta

from cattrs.errors import BaseValidationError
from cattrs.preconf.json import make_converter
from flask import current_app
from sqlalchemy import ColumnElement, Interval, case, delete, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.models import (
    ActivityType,
    ActivityValue,
    AdvocateProfile,
    EntryKind,
    Industry,
    Invitation,
    Nomination,
    NominationStatus,
    Opportunity,
    Participation,
    ParticipationStatus,
    PointsEntry,
    Product,
    Redemption,
    RedemptionStatus,
    ReferenceOutcome,
    ReferenceRequest,
    ReferenceStatus,
    Region,
    ReportFigures,
    Reward,
    Role,
    SizeBand,
    Status,
    User,
    utcnow,
)
from portal.services import audit, invitations, profiles
from portal.services.errors import DomainError, NotFound
from search import service as search_service

KINDS = ("month", "quarter", "year", "custom")
MAX_CUSTOM_DAYS = 3 * 366
MAX_VALUE = 10_000_000
FATIGUE_ORDER = ("under_used", "available", "near_limit", "at_limit", "unavailable")
FATIGUE_LABELS = {
    "under_used": "Unused in 180 days",
    "available": "Available",
    "near_limit": "Near limit",
    "at_limit": "At limit",
    "unavailable": "Paused or in a blackout",
}
TOP = 10
TOP_SPARE = 10  # kept figures hold this many more top advocates, so one erased since leaves ten to show


# --- periods -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    kind: str
    start: date  # first day (UTC)
    end: date  # the day after the last one

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        return datetime.combine(self.end, time.min, tzinfo=UTC)

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{self.start:%B %Y}"
        if self.kind == "quarter":
            return f"Q{(self.start.month - 1) // 3 + 1} {self.start.year}"
        if self.kind == "year":
            return str(self.start.year)
        return f"{self.start:%d %b %Y} – {self.last_day:%d %b %Y}"

    def months(self) -> list[str]:
        """The calendar months (YYYY-MM) the period touches, in order."""
        out, d = [], self.start.replace(day=1)
        while d < self.end:
            out.append(f"{d:%Y-%m}")
            d = _add_months(d, 1)
        return out

    def previous(self) -> Period:
        if self.kind == "month":
            return Period("month", _add_months(self.start, -1), self.start)
        if self.kind == "quarter":
            return Period("quarter", _add_months(self.start, -3), self.start)
        if self.kind == "year":
            return Period("year", self.start.replace(year=self.start.year - 1), self.start)
        return Period("custom", self.start - timedelta(days=self.days), self.start)


def _add_months(d: date, n: int) -> date:
    m = d.month - 1 + n
    y, m = d.year + m // 12, m % 12 + 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def period_for(kind: str, on: date, start: date | None = None, end: date | None = None) -> Period:
    """The month, quarter or year holding ``on`` (UTC day), or custom days ``start``..``end`` (both included)."""
    if kind == "month":
        first = on.replace(day=1)
        return Period(kind, first, _add_months(first, 1))
    if kind == "quarter":
        first = date(on.year, 3 * ((on.month - 1) // 3) + 1, 1)
        return Period(kind, first, _add_months(first, 3))
    if kind == "year":
        return Period(kind, date(on.year, 1, 1), date(on.year + 1, 1, 1))
    if kind == "custom":
        if start is None or end is None:
            raise DomainError("Give both the first and the last day.")
        if end < start:
            raise DomainError("The last day must not be before the first day.")
        if (end - start).days + 1 > MAX_CUSTOM_DAYS:
            raise DomainError("A custom period may cover at most three years.")
        return Period(kind, start, end + timedelta(days=1))
    raise DomainError("Choose a month, a quarter, a year or custom dates.")


def _utc_day(session: Session, column: ColumnElement) -> ColumnElement:
    """SQL: the UTC calendar day (YYYY-MM-DD text) of a UTC datetime column."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)  # SQLite keeps UTC datetimes as ISO text


def _in(column: ColumnElement, period: Period) -> ColumnElement:
    return (column >= period.start_at) & (column < period.end_at)


def rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


# --- activity values ---------------------------------------------------------------------------------------------


def currency() -> str:
    return str(current_app.config.get("PROGRAM_CURRENCY") or "USD")


@dataclass
class ValueHistory:
    """Every value row per type, oldest first: ``on(type_id, day)`` is the value in force that day."""

    rows: dict[int, list[ActivityValue]] = field(default_factory=dict)

    def on(self, type_id: int, day: date) -> int:
        rows = self.rows.get(type_id, [])
        i = bisect.bisect_right([r.effective_from for r in rows], day)
        return rows[i - 1].value if i else 0

    def current(self, type_id: int, today: date) -> ActivityValue | None:
        rows = [r for r in self.rows.get(type_id, []) if r.effective_from <= today]
        return rows[-1] if rows else None


def value_history(session: Session) -> ValueHistory:
    out: dict[int, list[ActivityValue]] = defaultdict(list)
    for row in session.scalars(
        select(ActivityValue).order_by(ActivityValue.activity_type_id, ActivityValue.effective_from, ActivityValue.id)
    ):
        # Several rows on one day: the last one set wins (bisect finds the last of equal days).
        out[row.activity_type_id].append(row)
    return ValueHistory(dict(out))


def set_value(session: Session, type_id: int, value: int | None, actor_id: int, today: date | None = None) -> int:
    """The activity type is worth ``value`` (whole units of PROGRAM_CURRENCY) from today (UTC) on."""
    atype = session.get(ActivityType, type_id)
    if atype is None:
        raise NotFound("No such activity type.")
    if value is None or not 0 <= int(value) <= MAX_VALUE:
        raise DomainError(f"A value must be a whole number from 0 to {MAX_VALUE:,}.")
    today = today or utcnow().date()
    before = value_history(session).on(type_id, today)
    session.add(
        ActivityValue(
            activity_type_id=type_id, value=int(value), currency=currency(), effective_from=today, set_by_id=actor_id
        )
    )
    audit.record(
        session,
        "activity_value.set",
        actor_id,
        atype,
        before=before,
        after=int(value),
        currency=currency(),
        effective_from=today.isoformat(),
    )
    forget_all(session)  # today's completions are worth the new value: kept figures are out of date
    session.flush()
    return int(value)


# --- blocks --------------------------------------------------------------------------------------------------------


def _advocates_q():
    return (User.role == Role.ADVOCATE) & (User.status == Status.ACTIVE)


@dataclass
class AdvocatesBlock:
    new: int
    self_registered: int  # signed up themselves (referred by a colleague or not)
    referred: int  # of which through a colleague's referral link
    nominated: int  # joined through a staff nomination's invitation
    imported: int  # joined through an imported list's invitation
    engaged: int  # advocates who completed at least one activity in the period


def _joined_through(session: Session, period: Period, source: str) -> int:
    """New advocates (approved in the period, as ``advocates`` counts them) who joined through an invitation
    of ``source``."""
    return session.scalar(
        select(func.count())
        .select_from(Invitation)
        .join(User, User.id == Invitation.accepted_user_id)
        .where(
            Invitation.source == source,
            User.role == Role.ADVOCATE,
            User.status != Status.DELETED,
            _in(User.approved_at, period),
        )
    )


def new_by_nomination(session: Session, period: Period) -> int:
    """New advocates who joined through a staff nomination's invitation."""
    return _joined_through(session, period, invitations.NOMINATION)


def new_by_import(session: Session, period: Period) -> int:
    """New advocates who joined through an imported list's invitation."""
    return _joined_through(session, period, invitations.IMPORT)


def advocates(session: Session, period: Period) -> AdvocatesBlock:
    new, referred = session.execute(
        select(func.count(), func.coalesce(func.sum(case((User.referred_by_id.is_not(None), 1), else_=0)), 0)).where(
            User.role == Role.ADVOCATE, User.status != Status.DELETED, _in(User.approved_at, period)
        )
    ).one()
    engaged = session.scalar(
        select(func.count(func.distinct(Participation.user_id))).where(
            Participation.status == ParticipationStatus.COMPLETED, _in(Participation.completed_at, period)
        )
    )
    nominated, imported = new_by_nomination(session, period), new_by_import(session, period)
    self_registered = new - nominated - imported
    return AdvocatesBlock(new, self_registered, referred, nominated, imported, engaged or 0)


@dataclass
class TypeRow:
    type_id: int
    name: str
    requested: int = 0
    completed: int = 0  # completed in the period (by completion day)
    value: int = 0


@dataclass
class ParticipationsBlock:
    requested: int
    by_status: dict[str, int]  # of the participations requested in the period
    completion_rate: float | None  # completed / (completed + no-show), of those requested in the period
    decline_rate: float | None  # declined / requested
    no_show_rate: float | None  # no-show / (completed + no-show)
    completed: int  # completed in the period
    by_type: list[TypeRow]
    months: list[str]
    by_month: dict[str, dict[int, int]]  # month -> type id -> completed
    value_by_month: dict[str, int]
    value: int


def _types(session: Session) -> list[tuple[int, str]]:
    return list(
        session.execute(select(ActivityType.id, ActivityType.name).order_by(ActivityType.position, ActivityType.id))
    )


def participations(
    session: Session, period: Period, history: ValueHistory | None = None, types: list | None = None
) -> ParticipationsBlock:
    history = history or value_history(session)
    types = types if types is not None else _types(session)
    rows = {tid: TypeRow(tid, name) for tid, name in types}
    P, Opp = Participation, Opportunity
    by_status: Counter[str] = Counter()
    for tid, status, n in session.execute(
        select(Opp.activity_type_id, P.status, func.count())
        .join(Opp, Opp.id == P.opportunity_id)
        .where(_in(P.requested_at, period))
        .group_by(Opp.activity_type_id, P.status)
    ):
        by_status[ParticipationStatus(status).value] += n
        rows.setdefault(tid, TypeRow(tid, "?")).requested += n
    day = _utc_day(session, P.completed_at)
    months = period.months()
    by_month: dict[str, dict[int, int]] = {m: {} for m in months}
    value_by_month: dict[str, int] = dict.fromkeys(months, 0)
    for tid, d, n in session.execute(
        select(Opp.activity_type_id, day, func.count())
        .join(Opp, Opp.id == P.opportunity_id)
        .where(P.status == ParticipationStatus.COMPLETED, _in(P.completed_at, period))
        .group_by(Opp.activity_type_id, day)
    ):
        d = date.fromisoformat(str(d)[:10])
        row = rows.setdefault(tid, TypeRow(tid, "?"))
        worth = n * history.on(tid, d)
        row.completed += n
        row.value += worth
        m = f"{d:%Y-%m}"
        by_month.setdefault(m, {})[tid] = by_month.get(m, {}).get(tid, 0) + n
        value_by_month[m] = value_by_month.get(m, 0) + worth
    requested = sum(by_status.values())
    done, no_show = by_status["completed"], by_status["no_show"]
    return ParticipationsBlock(
        requested=requested,
        by_status=dict(by_status),
        completion_rate=rate(done, done + no_show),
        decline_rate=rate(by_status["declined"], requested),
        no_show_rate=rate(no_show, done + no_show),
        completed=sum(r.completed for r in rows.values()),
        by_type=list(rows.values()),
        months=months,
        by_month=by_month,
        value_by_month=value_by_month,
        value=sum(r.value for r in rows.values()),
    )


@dataclass
class PointsBlock:
    earned: int
    redeemed: int
    rewards_fulfilled: int


def points(session: Session, period: Period) -> PointsBlock:
    E = PointsEntry
    earned, redeemed = session.execute(
        select(
            func.coalesce(func.sum(case((E.kind == EntryKind.EARNED, E.amount), else_=0)), 0),
            func.coalesce(func.sum(case((E.kind == EntryKind.REDEEMED, -E.amount), else_=0)), 0),
        ).where(_in(E.created_at, period))
    ).one()
    fulfilled = session.scalar(
        select(func.count()).where(
            Redemption.status == RedemptionStatus.FULFILLED, _in(Redemption.fulfilled_at, period)
        )
    )
    return PointsBlock(int(earned), int(redeemed), fulfilled or 0)


@dataclass
class TopAdvocate:
    user_id: int
    name: str
    completed: int


def top_advocates(session: Session, period: Period, limit: int = TOP) -> list[TopAdvocate]:
    P = Participation
    # Counted per advocate from the covering index first, then joined to the (far fewer) advocates: joining
    # every completed activity of a year to its advocate before grouping took four times as long.
    counts = (
        select(P.user_id, func.count().label("n"))
        .where(P.status == ParticipationStatus.COMPLETED, _in(P.completed_at, period))
        .group_by(P.user_id)
        .subquery()
    )
    q = (
        select(User.id, User.name, counts.c.n)
        .join(counts, counts.c.user_id == User.id)
        .where(User.status != Status.DELETED)
        .order_by(counts.c.n.desc(), User.name, User.id)
        .limit(limit)
    )
    return [TopAdvocate(uid, name, count) for uid, name, count in session.execute(q)]


@dataclass
class TopNominator:
    user_id: int | None
    name: str
    joined: int  # their nominees who joined in the period


def top_nominators(session: Session, period: Period, limit: int = TOP) -> list[TopNominator]:
    """The staff whose nominees joined in the period, most first."""
    n = func.count().label("n")
    q = (
        select(Nomination.nominator_id, User.name, n)
        .join(User, User.id == Nomination.nominator_id)
        .where(Nomination.status == NominationStatus.JOINED, _in(Nomination.joined_at, period))
        .group_by(Nomination.nominator_id, User.name)
        .order_by(n.desc(), User.name, Nomination.nominator_id)
        .limit(limit)
    )
    return [TopNominator(uid, name, count) for uid, name, count in session.execute(q)]


@dataclass
class ReferenceRequests:
    received: int  # asked for in the period
    fulfilled: int  # as many advocates accepted as were needed, in the period
    median_days_to_fulfil: float | None  # of those fulfilled in the period, from the request


def reference_requests(session: Session, period: Period) -> ReferenceRequests:
    R = ReferenceRequest
    received = session.scalar(select(func.count()).select_from(R).where(_in(R.created_at, period)))
    spans = sorted(
        (done - asked).total_seconds() / 86400
        for asked, done in session.execute(select(R.created_at, R.fulfilled_at).where(_in(R.fulfilled_at, period)))
    )
    median = None
    if spans:
        mid = len(spans) // 2
        median = spans[mid] if len(spans) % 2 else (spans[mid - 1] + spans[mid]) / 2
    return ReferenceRequests(received, len(spans), median)


@dataclass
class WinRate:
    won: int
    decided: int  # won or lost (still open ones are left out)

    @property
    def rate(self) -> float | None:
        return rate(self.won, self.decided)


@dataclass
class RevenueRow:
    label: str
    currency: str
    deals: int
    amount: int


@dataclass
class InfluencedRevenue:
    deals: int  # won deals where an advocate took part (the request was completed), outcome in the period
    amounts: dict[str, int]  # currency -> won amount (the final amount, else the deal amount)
    by_type: list[RevenueRow]
    by_industry: list[RevenueRow]  # the segment the request asked for, one dimension at a time
    by_region: list[RevenueRow]
    by_size: list[RevenueRow]
    by_product: list[RevenueRow]
    with_reference: WinRate  # outcomes in the period of requests with a completed reference
    without_reference: WinRate  # ... of requests that were not fulfilled (no completed reference)


def influenced_revenue(session: Session, period: Period) -> InfluencedRevenue:
    """Won deals where an advocate took part (a completed reference request whose outcome, recorded in the
    period, is won), by activity type and by the request's industry; the win rate of deals that had a
    completed reference against those whose request was not fulfilled, with the counts behind each."""
    R = ReferenceRequest
    amount = func.coalesce(R.final_amount, R.deal_amount, 0)
    took_part = (
        (R.status == ReferenceStatus.COMPLETED) & (R.outcome == ReferenceOutcome.WON) & _in(R.outcome_at, period)
    )
    by_type = [
        RevenueRow(name, cur, deals, int(total))
        for name, cur, deals, total in session.execute(
            select(ActivityType.name, R.currency, func.count(), func.sum(amount))
            .join(ActivityType, ActivityType.id == R.activity_type_id)
            .where(took_part)
            .group_by(ActivityType.name, R.currency)
            .order_by(func.sum(amount).desc(), ActivityType.name)
        )
    ]

    def by_segment(
        model: type[Industry | Region | SizeBand | Product], key: ColumnElement, anyone: str
    ) -> list[RevenueRow]:
        return [
            RevenueRow(name or anyone, cur, deals, int(total))
            for name, cur, deals, total in session.execute(
                select(model.name, R.currency, func.count(), func.sum(amount))
                .outerjoin(model, model.id == key)
                .where(took_part)
                .group_by(model.name, R.currency)
                .order_by(func.sum(amount).desc(), model.name)
            )
        ]

    amounts: dict[str, int] = defaultdict(int)
    for row in by_type:
        amounts[row.currency] += row.amount
    rates = {True: WinRate(0, 0), False: WinRate(0, 0)}
    completed = R.status == ReferenceStatus.COMPLETED
    for had_reference, outcome, count in session.execute(
        select(completed, R.outcome, func.count())
        .where(R.outcome.in_((ReferenceOutcome.WON, ReferenceOutcome.LOST)), _in(R.outcome_at, period))
        .group_by(completed, R.outcome)
    ):
        side = rates[bool(had_reference)]
        side.decided += count
        if outcome == ReferenceOutcome.WON:
            side.won += count
    return InfluencedRevenue(
        deals=sum(r.deals for r in by_type),
        amounts=dict(amounts),
        by_type=by_type,
        by_industry=by_segment(Industry, R.industry_id, "Any industry"),
        by_region=by_segment(Region, R.region_id, "Any region"),
        by_size=by_segment(SizeBand, R.size_band_id, "Any company size"),
        by_product=by_segment(Product, R.product_id, "Any product"),
        with_reference=rates[True],
        without_reference=rates[False],
    )


REWARD_RETURN_DAYS = 90


@dataclass
class RewardReturn:
    reward_id: int
    name: str
    orders: int  # orders placed in the period (not cancelled)
    before: int  # the ordering advocates' activities completed in the 90 days before each order
    after: int  # ... and in the 90 days after it (fewer while those days have not all passed)


def _shifted(session: Session, column: ColumnElement, days: int) -> ColumnElement:
    """SQL: a UTC datetime column moved by ``days`` days."""
    if session.get_bind().dialect.name == "postgresql":
        return column + literal(timedelta(days=days), type_=Interval())
    return func.strftime("%Y-%m-%d %H:%M:%f", column, f"{days:+d} days")


def reward_return(session: Session, period: Period) -> list[RewardReturn]:
    """For each reward ordered in the period: the ordering advocates' completed activities in the 90 days
    before and after each order (one grouped query)."""
    P = Participation
    # The orders of the period first (an indexed range), then each order's advocate's completed activities.
    R = (
        select(Redemption.id, Redemption.user_id, Redemption.reward_id, Redemption.created_at)
        .where(Redemption.status != RedemptionStatus.CANCELLED, _in(Redemption.created_at, period))
        .subquery()
    )
    near = (P.user_id == R.c.user_id) & (P.status == ParticipationStatus.COMPLETED)
    lo = _shifted(session, R.c.created_at, -REWARD_RETURN_DAYS)
    hi = _shifted(session, R.c.created_at, REWARD_RETURN_DAYS)
    before = case(((P.completed_at >= lo) & (P.completed_at < R.c.created_at), 1), else_=0)
    after = case(((P.completed_at >= R.c.created_at) & (P.completed_at < hi), 1), else_=0)
    q = (
        select(
            Reward.id,
            Reward.name,
            func.count(func.distinct(R.c.id)),
            func.coalesce(func.sum(before), 0),
            func.coalesce(func.sum(after), 0),
        )
        .select_from(R)
        .join(Reward, Reward.id == R.c.reward_id)
        .outerjoin(P, near & (P.completed_at >= lo) & (P.completed_at < hi))
        .group_by(Reward.id, Reward.name)
        .order_by(Reward.name, Reward.id)
    )
    return [RewardReturn(rid, name, n, int(b), int(a)) for rid, name, n, b, a in session.execute(q)]


@dataclass
class Membership:
    active: int
    stale: int

    @property
    def stale_share(self) -> float | None:
        return rate(self.stale, self.active)


def membership(session: Session, now: datetime | None = None) -> Membership:
    """Active advocates now and how many of their profiles are stale (``profiles.stale_condition``)."""
    active, stale = session.execute(
        select(func.count(), func.coalesce(func.sum(case((profiles.stale_condition(now), 1), else_=0)), 0))
        .select_from(User)
        .outerjoin(AdvocateProfile, AdvocateProfile.user_id == User.id)
        .where(_advocates_q())
    ).one()
    return Membership(active, int(stale))


def active_advocate_ids():
    """A Select of the active advocates' ids (for set-based rules: ``fatigue.statuses``)."""
    return select(User.id).where(_advocates_q())


def fatigue_distribution(session: Session) -> dict[str, int]:
    """How many active advocates are in each fatigue status now: the statuses the search index holds
    (``fatigue.statuses`` as of each advocate's last change, pauses and blackouts live), as the advocate
    list's fatigue tabs and the home page's "at their limit" count read them
    (``search.service.advocate_ids_by_fatigue``). The rules run over all 50,000 advocates took seconds."""
    found = search_service.advocate_ids_by_fatigue(session, FATIGUE_ORDER)
    return {key: len(found.get(key) or ()) for key in FATIGUE_ORDER}


# --- the page --------------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """Everything the dashboard says about a period and the one before it, computed at ``computed_at``: the
    part kept per period (``keep``, ``kept``)."""

    period: Period
    previous: Period
    currency: str
    advocates: AdvocatesBlock
    advocates_before: AdvocatesBlock
    participations: ParticipationsBlock
    participations_before: ParticipationsBlock
    points: PointsBlock
    points_before: PointsBlock
    top: list[TopAdvocate]
    reward_return: list[RewardReturn]
    reference_requests: ReferenceRequests
    influenced_revenue: InfluencedRevenue
    top_nominators: list[TopNominator]
    computed_at: datetime


@dataclass
class Dashboard(Figures):
    """The page: a period's figures (kept, or computed now) and the program now."""

    membership: Membership
    fatigue: dict[str, int]
    types: list[tuple[int, str]]
    kept: bool  # the figures were read as kept at ``computed_at`` (``kept``), not computed for this view


def figures(session: Session, period: Period, now: datetime | None = None) -> Figures:
    """The period's figures, computed now from the records (a constant number of grouped queries)."""
    history, types = value_history(session), _types(session)
    before = period.previous()
    return Figures(
        period=period,
        previous=before,
        currency=currency(),
        advocates=advocates(session, period),
        advocates_before=advocates(session, before),
        participations=participations(session, period, history, types),
        participations_before=participations(session, before, history, types),
        points=points(session, period),
        points_before=points(session, before),
        top=top_advocates(session, period, TOP + TOP_SPARE),
        reward_return=reward_return(session, period),
        reference_requests=reference_requests(session, period),
        influenced_revenue=influenced_revenue(session, period),
        top_nominators=top_nominators(session, period),
        computed_at=now or utcnow(),
    )


def dashboard(session: Session, period: Period, now: datetime | None = None) -> Dashboard:
    """The page for a period: its figures as kept when they are recent enough (``kept``), else computed now;
    the active advocates, stale profiles and fatigue statuses are always read now."""
    now = now or utcnow()
    found = kept(session, period, now)
    shown = found or figures(session, period, now)
    return Dashboard(
        **{f.name: getattr(shown, f.name) for f in fields(Figures) if f.name != "top"},
        top=shown.top[:TOP],
        membership=membership(session, now),
        fatigue=fatigue_distribution(session),
        types=_types(session),
        kept=found is not None,
    )


# --- kept figures ------------------------------------------------------------------------------------------------
#
# A quarter or a year holds tens or hundreds of thousands of participations; grouping them takes seconds at
# 50,000 advocates. So the figures of the current and the previous month, quarter and year are kept (JSON in
# report_figures, one row per period) by `flask reports refresh` (cron, every 15 minutes) and by an admin's
# "Refresh now" (any period, custom dates too), and the page reads them while they are younger than
# REPORT_FIGURES_MAX_AGE, saying as of when. Older ones (the job not running), another shape's (a newer
# version of the code) or another currency's are not read: the page computes the figures live, as before.
# People's names are not kept: the top advocates' and nominators' names are read when shown, and an advocate
# who erased their account meanwhile is left out (as the live query leaves them out).

FIGURES_VERSION = 2  # raise it when Figures (or a block in it) changes shape: older rows are then not read
_json = make_converter()


def max_age() -> timedelta:
    return timedelta(seconds=int(current_app.config.get("REPORT_FIGURES_MAX_AGE", 3600)))


def standard_periods(today: date) -> list[Period]:
    """The periods ``flask reports refresh`` keeps: the month, quarter and year holding ``today``, and the
    ones before them."""
    out = []
    for kind in ("month", "quarter", "year"):
        current = period_for(kind, today)
        out += [current, current.previous()]
    return out


def _row_of(period: Period) -> ColumnElement:
    return (
        (ReportFigures.kind == period.kind)
        & (ReportFigures.period_start == period.start)
        & (ReportFigures.period_end == period.end)
    )


def keep(session: Session, shown: Figures, actor_id: int | None = None) -> None:
    """Keep these figures for their period, replacing the ones kept before (an admin's refresh is audited)."""
    anonymous = replace(
        shown,
        top=[replace(t, name="") for t in shown.top],
        top_nominators=[replace(t, name="") for t in shown.top_nominators],
    )
    values = {"version": FIGURES_VERSION, "computed_at": shown.computed_at, "figures": _json.dumps(anonymous)}
    where = _row_of(shown.period)
    older = ReportFigures.computed_at <= shown.computed_at  # figures computed later are never replaced by these

    def replace_older() -> int:
        return session.execute(update(ReportFigures).where(where, older).values(**values)).rowcount

    if replace_older() == 0 and session.scalar(select(ReportFigures.id).where(where)) is None:
        try:
            with session.begin_nested():
                session.add(
                    ReportFigures(
                        kind=shown.period.kind, period_start=shown.period.start, period_end=shown.period.end, **values
                    )
                )
        except IntegrityError:  # kept meanwhile by another refresh: replaced if that one is older
            replace_older()
    if actor_id is not None:
        audit.record(
            session,
            "report.refresh",
            actor_id,
            None,
            kind=shown.period.kind,
            start=shown.period.start.isoformat(),
            last_day=shown.period.last_day.isoformat(),
        )
    session.flush()


def kept(session: Session, period: Period, now: datetime | None = None) -> Figures | None:
    """The period's kept figures if they are younger than REPORT_FIGURES_MAX_AGE and of this code's shape and
    the program's currency, with the names read now; else None."""
    now = now or utcnow()
    # Figures read before an activity value was set are out of date even if written after it (a refresh that
    # read, then wrote once set_value had forgotten the kept ones).
    value_set = select(func.max(ActivityValue.created_at)).scalar_subquery()
    row = session.execute(
        select(ReportFigures.figures).where(
            _row_of(period),
            ReportFigures.version == FIGURES_VERSION,
            ReportFigures.computed_at > now - max_age(),
            or_(value_set.is_(None), ReportFigures.computed_at > value_set),
        )
    ).first()
    if row is None:
        return None
    try:
        found = _json.loads(row.figures, Figures)
    except (ValueError, TypeError, BaseValidationError):  # not readable as this shape: computed live instead
        return None
    if found.currency != currency() or found.period != period:
        return None
    ids = {t.user_id for t in found.top} | {t.user_id for t in found.top_nominators if t.user_id is not None}
    people = {
        uid: (name, status)
        for uid, name, status in session.execute(select(User.id, User.name, User.status).where(User.id.in_(ids)))
    }
    found.top = [
        replace(t, name=people[t.user_id][0])
        for t in found.top
        if t.user_id in people and people[t.user_id][1] != Status.DELETED
    ]
    found.top_nominators = [
        replace(t, name=people[t.user_id][0] if t.user_id in people else "") for t in found.top_nominators
    ]
    return found


def forget_old(session: Session, now: datetime | None = None) -> int:
    """Remove kept figures too old to be read (the custom periods an admin refreshed once)."""
    now = now or utcnow()
    return session.execute(delete(ReportFigures).where(ReportFigures.computed_at <= now - max_age())).rowcount


def forget_all(session: Session) -> None:
    """Every kept figure is out of date (an activity's value changed): the page computes them live until the
    next refresh."""
    session.execute(delete(ReportFigures))


@dataclass
class ValueRow:
    type_id: int
    name: str
    current: int
    since: date | None
    history: list[ActivityValue]


def value_rows(session: Session, today: date | None = None) -> list[ValueRow]:
    today = today or utcnow().date()
    history = value_history(session)
    out = []
    for tid, name in _types(session):
        cur = history.current(tid, today)
        out.append(
            ValueRow(tid, name, cur.value if cur else 0, cur.effective_from if cur else None, history.rows.get(tid, []))
        )
    return out
