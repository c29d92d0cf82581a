"""Protection from over-use (and visibility of under-use).

Program policy (settings table, editable by admins): at most N engagements per advocate in any
90 days, at least D days between reference calls. The advocate's own limits: asks per calendar
month and quarter, blackouts and a pause. A request or an approval that would break any rule is
refused with the reason in plain words (third person for admins, second person for the advocate);
an admin may override with a recorded reason.

An engagement is counted on the day it happens, not the day it was approved: the opportunity's
event date, else its board term start, else its deadline, else the approval day (``engaged_at``).
A new engagement on day D breaks the program limit when some 90-day window holding D already holds
N engagements (past or future ones), and the reference-call gap when another reference call is
fewer than D days before *or after* it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, func, or_, select

from portal.models import (
    ACTIVE_STATUSES,
    ENGAGED_STATUSES,
    ActivityType,
    AdvocateProfile,
    Blackout,
    Opportunity,
    Participation,
    ParticipationStatus,
    ProgramSetting,
    User,
    utcnow,
)
from portal.services import audit, profiles
from portal.services.errors import DomainError

DEFAULTS = {"max_engagements_90d": 4, "reference_call_gap_days": 30}
LABELS = {
    "max_engagements_90d": "Most engagements per advocate in 90 days",
    "reference_call_gap_days": "Fewest days between two reference calls",
}
WINDOW_DAYS = 90
UNDER_USED_DAYS = 180
ASK_STATUSES = (ParticipationStatus.REQUESTED, ParticipationStatus.APPROVED, ParticipationStatus.COMPLETED)


@dataclass
class Policy:
    max_engagements_90d: int
    reference_call_gap_days: int


def policy(session) -> Policy:
    values = dict(DEFAULTS)
    values.update({s.key: s.value for s in session.scalars(select(ProgramSetting)) if s.key in DEFAULTS})
    return Policy(**values)


def set_policy(session, values: dict[str, int], actor_id: int) -> Policy:
    for key, value in values.items():
        if key not in DEFAULTS:
            raise DomainError(f"Unknown setting {key}.")
        if value is None or not 0 <= int(value) <= 365:
            raise DomainError(f"{LABELS[key]} must be between 0 and 365.")
        row = session.get(ProgramSetting, key)
        if row is None:
            session.add(ProgramSetting(key=key, value=int(value), updated_by_id=actor_id))
        else:
            row.value, row.updated_by_id = int(value), actor_id
    audit.record(session, "settings.fatigue", actor_id, None, **{k: int(v) for k, v in values.items()})
    session.flush()
    after = policy(session)
    return after


# --- plain words ---------------------------------------------------------------------------------------------


class Reason(str):
    """One broken rule. As a string it is the admins' wording (third person, stored in the audit log);
    ``.advocate`` is the same rule told to the advocate (second person)."""

    advocate: str

    def __new__(cls, admin: str, advocate: str):
        obj = super().__new__(cls, admin)
        obj.advocate = advocate
        return obj

    @property
    def admin(self) -> str:
        return str.__str__(self)


_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _num(n: int) -> str:
    return _WORDS[n] if 0 <= n < len(_WORDS) else f"{n:,}"


def _count(n: int, noun: str) -> str:
    """'one ask', 'two asks', '12 asks', 'no asks'."""
    return f"{_num(n)} {noun if n == 1 else noun + 's'}"


def _n(n: int, noun: str) -> str:
    """'1 engagement', '4 engagements' (policy figures stay digits)."""
    return f"{n:,} {noun if n == 1 else noun + 's'}"


def _fmt(d: date) -> str:
    return d.strftime("%d %b %Y").lstrip("0")


def _ask_limit(name: str, limit: int, used: int, period: str) -> Reason:
    if limit == 0:
        return Reason(f"{name} asked for no asks a {period}.", f"You asked for no asks a {period}.")
    have = _num(used) if used else "none"
    return Reason(
        f"{name} asked for at most {_count(limit, 'ask')} a {period} and has {have} this {period}.",
        f"You asked for at most {_count(limit, 'ask')} a {period} and have {have} this {period}.",
    )


# --- engagement days -------------------------------------------------------------------------------------------


def engagement_day(
    event_date: date | None, term_start: date | None, deadline: date | None, engaged_at: datetime | None
) -> date | None:
    """The day an engagement counts on: when it happens, else when it was approved."""
    d = event_date or term_start or deadline
    if d is None and engaged_at is not None:
        d = engaged_at.astimezone(UTC).date() if engaged_at.tzinfo else engaged_at.date()
    return d


def _window_peak(days: list[int], d: int, span: int = WINDOW_DAYS) -> int:
    """The most of ``days`` (day ordinals) in any ``span``-day window that also holds day ``d``."""
    near = sorted(x for x in days if d - span < x < d + span)
    if not near:
        return 0
    best, lo = 0, 0
    for start in range(d - span + 1, d + 1):
        end = start + span - 1
        while lo < len(near) and near[lo] < start:
            lo += 1
        hi = lo
        while hi < len(near) and near[hi] <= end:
            hi += 1
        best = max(best, hi - lo)
    return best


def _engagement_rows(session, user_ids: list[int], exclude_id: int | None = None, since: date | None = None):
    """(user_id, day, activity key) of the advocates' engagements (approved or completed)."""
    Opp, P = Opportunity, Participation
    q = (
        select(P.user_id, Opp.event_date, Opp.term_start, Opp.deadline, P.engaged_at, ActivityType.key)
        .join(Opp, Opp.id == P.opportunity_id)
        .join(ActivityType, ActivityType.id == Opp.activity_type_id)
        .where(P.user_id.in_(user_ids), P.status.in_(ENGAGED_STATUSES))
    )
    if exclude_id:
        q = q.where(P.id != exclude_id)
    if since is not None:  # only engagements on or after ``since`` (by the same coalesce, in SQL)
        since_at = datetime.combine(since, time.min, tzinfo=UTC)
        q = q.where(
            or_(
                Opp.event_date >= since,
                and_(Opp.event_date.is_(None), Opp.term_start >= since),
                and_(Opp.event_date.is_(None), Opp.term_start.is_(None), Opp.deadline >= since),
                and_(
                    Opp.event_date.is_(None), Opp.term_start.is_(None), Opp.deadline.is_(None), P.engaged_at >= since_at
                ),
            )
        )
    out = []
    for uid, event_date, term_start, deadline, engaged_at, key in session.execute(q).all():
        day = engagement_day(event_date, term_start, deadline, engaged_at)
        if day is not None:
            out.append((uid, day, key))
    return out


def _local_midnight(zone, d: date) -> datetime:
    """The instant (in UTC) the advocate's calendar day ``d`` begins in ``zone``."""
    return datetime.combine(d, time.min, tzinfo=zone).astimezone(UTC)


def ask_periods(timezone_name: str | None, now: datetime) -> tuple[date, datetime, datetime]:
    """The advocate's own today, and the instants their calendar month and quarter began (their
    midnight on the 1st, in UTC): the advocate's own ask limits count asks from these."""
    zone = profiles.zone_named(timezone_name)
    today = now.astimezone(zone).date()
    month = today.replace(day=1)
    quarter = month.replace(month=3 * ((month.month - 1) // 3) + 1)
    return today, _local_midnight(zone, month), _local_midnight(zone, quarter)


def _asks_since(session, user_id: int, since: datetime, exclude_id: int | None) -> int:
    q = (
        select(func.count())
        .select_from(Participation)
        .where(
            Participation.user_id == user_id,
            Participation.status.in_(ASK_STATUSES),
            Participation.requested_at >= since,
        )
    )
    if exclude_id:
        q = q.where(Participation.id != exclude_id)
    return session.scalar(q) or 0


# --- the check -------------------------------------------------------------------------------------------------


class Snapshot:
    """One advocate's fatigue facts, read once (a handful of queries); the rules are then checked for
    any number of opportunities without another query (the feed, the digest, announcements)."""

    def __init__(
        self,
        session,
        user: User,
        *,
        counts_as_ask: bool = True,
        exclude_participation_id: int | None = None,
        now: datetime | None = None,
        pol: Policy | None = None,
    ):
        self.now = now or utcnow()
        self.name = user.name
        self.counts_as_ask = counts_as_ask
        self.policy = pol or policy(session)
        profile = session.get(AdvocateProfile, user.id)
        # Pauses, blackouts and the own ask limits' months and quarters are the advocate's calendar
        # days (as on their own pages).
        self.today, month_start, quarter_start = ask_periods(
            profile.timezone if profile is not None else None, self.now
        )
        self.paused_until = profile.paused_until if profile is not None else None
        self.blackouts = (
            []
            if profile is None
            else [
                (b.starts_on, b.ends_on)
                for b in session.scalars(
                    select(Blackout).where(Blackout.user_id == user.id).order_by(Blackout.starts_on)
                )
            ]
        )
        self.limits = []  # (limit, used, "month" | "quarter")
        if profile is not None and counts_as_ask:
            if profile.max_asks_per_month is not None:
                self.limits.append(
                    (
                        profile.max_asks_per_month,
                        _asks_since(session, user.id, month_start, exclude_participation_id),
                        "month",
                    )
                )
            if profile.max_asks_per_quarter is not None:
                self.limits.append(
                    (
                        profile.max_asks_per_quarter,
                        _asks_since(session, user.id, quarter_start, exclude_participation_id),
                        "quarter",
                    )
                )
        rows = _engagement_rows(session, [user.id], exclude_participation_id)
        self.days = [d.toordinal() for _, d, _ in rows]
        self.call_days = sorted(d.toordinal() for _, d, key in rows if key == "reference_call")

    def _pause(self) -> list[Reason]:
        if self.paused_until and self.paused_until >= self.today:
            until = _fmt(self.paused_until)
            return [
                Reason(f"{self.name} has paused all asks until {until}.", f"You have paused all asks until {until}.")
            ]
        return []

    def _limits(self) -> list[Reason]:
        return [_ask_limit(self.name, limit, used, period) for limit, used, period in self.limits if used + 1 > limit]

    def general(self) -> list[Reason]:
        """The rules that refuse every opportunity alike (a pause, the advocate's own ask limits)."""
        return self._pause() + self._limits()

    def reasons(self, opportunity: Opportunity) -> list[Reason]:
        """Every rule an engagement in ``opportunity`` would break (empty: allowed)."""
        when = opportunity.engagement_date or self.today
        reasons = self._pause()
        for starts, ends in self.blackouts:
            if starts <= when <= ends:
                span = f"from {_fmt(starts)} to {_fmt(ends)}"
                reasons.append(Reason(f"{self.name} is in a blackout {span}.", f"It falls in your blackout {span}."))
                break
        reasons += self._limits()
        pol, d = self.policy, when.toordinal()
        peak = _window_peak(self.days, d)
        if peak + 1 > pol.max_engagements_90d:
            most = _n(pol.max_engagements_90d, "engagement")
            around = "" if when == self.today else f" in the 90 days around {_fmt(when)}"
            reasons.append(
                Reason(
                    f"The program allows at most {most} in 90 days; {self.name} has {peak}{around}.",
                    f"The program asks nobody to take part more than {_n(pol.max_engagements_90d, 'time')} in 90 days, "
                    f"and you already have {peak}{around or ' in that time'}.",
                )
            )
        gap = pol.reference_call_gap_days
        if opportunity.activity_type.key == "reference_call" and gap:
            clashes = [x for x in self.call_days if abs(x - d) < gap]
            if clashes:
                x = min(clashes, key=lambda c: (abs(c - d), c))
                other = _fmt(date.fromordinal(x))
                rule = f"The program keeps at least {_n(gap, 'day')} between reference calls"
                if x <= self.today.toordinal():
                    reasons.append(
                        Reason(
                            f"{rule}; {self.name}'s last one was on {other}.",
                            f"{rule}, and your last one was on {other}.",
                        )
                    )
                else:
                    reasons.append(
                        Reason(f"{rule}; {self.name} has one on {other}.", f"{rule}, and you have one on {other}.")
                    )
        return reasons


def check(
    session,
    user: User,
    opportunity: Opportunity,
    *,
    counts_as_ask: bool = True,
    exclude_participation_id: int | None = None,
    now: datetime | None = None,
) -> list[Reason]:
    """Every rule the engagement would break, in plain words (empty: allowed)."""
    return Snapshot(
        session, user, counts_as_ask=counts_as_ask, exclude_participation_id=exclude_participation_id, now=now
    ).reasons(opportunity)


# --- status for lists ----------------------------------------------------------------------------------------

STATUS_LABELS = {
    "available": "Available",
    "near_limit": "Near limit",
    "at_limit": "At limit",
    "unavailable": "Paused or in blackout",
    "under_used": "Under-used",
}


@dataclass
class FatigueStatus:
    key: str
    engagements_90d: int
    detail: str = ""

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.key]


def statuses(session, user_ids: list[int], now: datetime | None = None) -> dict[int, FatigueStatus]:
    """Fatigue status for many advocates in a fixed number of queries, with plain rows (no ORM
    objects), so lists, search documents and bulk filters can call it for thousands of ids.

    ``engagements_90d`` is the most engagements in a 90-day window that holds today (what a new
    engagement today would be checked against); under-used: no engagement within the last 180 days
    (none ever: counted from the approval)."""
    now = now or utcnow()
    today = now.date()
    if not user_ids:
        return {}
    ids = list(set(user_ids))
    pol = policy(session)

    recent_from = today - timedelta(days=UNDER_USED_DAYS - 1)
    days: dict[int, list[int]] = {}
    for uid, day, _ in _engagement_rows(session, ids, since=min(recent_from, today - timedelta(days=WINDOW_DAYS))):
        days.setdefault(uid, []).append(day.toordinal())
    ever_engaged = set(
        session.scalars(
            select(Participation.user_id)
            .where(Participation.user_id.in_(ids), Participation.status.in_(ENGAGED_STATUSES))
            .distinct()
        )
    )
    # Blackouts are the advocate's calendar days: read the ones around today (every time zone's
    # today is within a day of UTC's), then compare each with the advocate's own date.
    near_blackouts: dict[int, list[tuple[date, date]]] = {}
    for uid, starts, ends in session.execute(
        select(Blackout.user_id, Blackout.starts_on, Blackout.ends_on).where(
            Blackout.user_id.in_(ids),
            Blackout.starts_on <= today + timedelta(days=1),
            Blackout.ends_on >= today - timedelta(days=1),
        )
    ).all():
        near_blackouts.setdefault(uid, []).append((starts, ends))
    profile_rows = {
        r.user_id: r
        for r in session.execute(
            select(
                AdvocateProfile.user_id,
                AdvocateProfile.paused_until,
                AdvocateProfile.max_asks_per_month,
                AdvocateProfile.max_asks_per_quarter,
                AdvocateProfile.timezone,
            ).where(AdvocateProfile.user_id.in_(ids))
        ).all()
    }
    # The own ask limits count from each advocate's local 1st of the month / quarter: one query for the
    # asks since the earliest of those starts (only of advocates with a limit), counted per advocate here.
    periods = {
        uid: ask_periods(r.timezone, now)
        for uid, r in profile_rows.items()
        if r.max_asks_per_month is not None or r.max_asks_per_quarter is not None
    }
    asks_month: dict[int, int] = {}
    asks_quarter: dict[int, int] = {}
    if periods:
        earliest = min(quarter_start for _, _, quarter_start in periods.values())
        for uid, requested_at in session.execute(
            select(Participation.user_id, Participation.requested_at).where(
                Participation.user_id.in_(list(periods)),
                Participation.status.in_(ASK_STATUSES),
                Participation.requested_at >= earliest,
            )
        ).all():
            _, month_start, quarter_start = periods[uid]
            if requested_at >= quarter_start:
                asks_quarter[uid] = asks_quarter.get(uid, 0) + 1
            if requested_at >= month_start:
                asks_month[uid] = asks_month.get(uid, 0) + 1
    joined = {
        r.id: r.approved_at or r.created_at
        for r in session.execute(select(User.id, User.approved_at, User.created_at).where(User.id.in_(ids))).all()
    }

    t, recent = today.toordinal(), recent_from.toordinal()
    out = {}
    for uid in ids:
        p = profile_rows.get(uid)
        mine = days.get(uid, [])
        n = _window_peak(mine, t)
        local = profiles.local_date(p.timezone if p else None, now)
        paused = bool(p and p.paused_until and p.paused_until >= local)
        if paused or any(s <= local <= e for s, e in near_blackouts.get(uid, ())):
            out[uid] = FatigueStatus("unavailable", n, "paused" if paused else "in a blackout")
            continue
        pairs = [(n, pol.max_engagements_90d)]
        if p and p.max_asks_per_month is not None:
            pairs.append((asks_month.get(uid, 0), p.max_asks_per_month))
        if p and p.max_asks_per_quarter is not None:
            pairs.append((asks_quarter.get(uid, 0), p.max_asks_per_quarter))
        if any(used >= limit for used, limit in pairs):
            out[uid] = FatigueStatus("at_limit", n)
        elif any(limit > 0 and used == limit - 1 for used, limit in pairs):
            out[uid] = FatigueStatus("near_limit", n)
        elif any(d >= recent for d in mine):
            out[uid] = FatigueStatus("available", n)
        else:
            since = joined.get(uid)
            if uid in ever_engaged or since is None or now - since >= timedelta(days=UNDER_USED_DAYS):
                out[uid] = FatigueStatus("under_used", n, "no engagement in 180 days")
            else:
                out[uid] = FatigueStatus("available", n)
    return out


def ids_with_status(session, key: str, ids_query, chunk: int = 1000, now: datetime | None = None) -> list[int]:
    """The user ids of ``ids_query`` (a select of ids, in the caller's order) whose status is ``key``.
    The status is computed, not stored, so all of them are checked: ``statuses`` per chunk of ids."""
    now = now or utcnow()
    ids = list(session.scalars(ids_query))
    out: list[int] = []
    for i in range(0, len(ids), chunk):
        part = ids[i : i + chunk]
        got = statuses(session, part, now)
        out += [uid for uid in part if got[uid].key == key]
    return out


def status(session, user_id: int, now: datetime | None = None) -> FatigueStatus:
    return statuses(session, [user_id], now)[user_id]


def active_participation_exists(session, user_id: int, opportunity_id: int) -> bool:
    return (
        session.scalar(
            select(func.count())
            .select_from(Participation)
            .where(
                Participation.user_id == user_id,
                Participation.opportunity_id == opportunity_id,
                Participation.status.in_(ACTIVE_STATUSES),
            )
        )
        > 0
    )
