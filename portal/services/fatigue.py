"""The rules of asking an advocate: the one place that answers "may this advocate be asked?".

Questions and the function that answers each (nothing else answers them):

- ``may_ask(session, advocate_id, activity_type, on_date)``: may this advocate be asked for an
  activity of this type that happens on ``on_date``? A ``Decision`` with machine-readable reasons.
  Participation requests, approvals and admin additions, the feed, the digest and announcements (through
  ``portal.services.opportunities.may_take_part``, which adds what the opportunity itself requires) and
  reference requests all come here.
- ``unavailable_on(session, ...)``: who is paused or in a blackout (search, the fatigue status, may_ask).
- ``availability(profile)``: the same, told on the advocate's own pages (with the day it ends).
- ``statuses(session, user_ids)``: how close each advocate is to their limits (lists, search facets).

Program policy (settings table, editable by admins): at most N engagements per advocate in any
90 days, at least D days between reference calls. The advocate's own limits: asks per calendar
month and quarter, blackouts and a pause. A request or an approval that would break any rule is
refused with the reason in plain words (third person for admins, second person for the advocate);
an admin may override with a recorded reason.

Days are the advocate's own calendar days (their time zone): a pause runs to the end of its last day
where they live, a blackout covers their days, their month and quarter start at their midnight.

An engagement is counted on the day it happens, not the day it was approved: the opportunity's
event date, else its board term start, else its deadline, else the approval day (``engaged_at``).
A new engagement on day D breaks the program limit when some 90-day window holding D already holds
N engagements (past or future ones), and the reference-call gap when another reference call is
fewer than D days before *or after* it. A limit of N is reached when N are used: ``at_limit``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from portal.models import (
    ENGAGED_STATUSES,
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    Blackout,
    Opportunity,
    Participation,
    ParticipationStatus,
    Role,
    Status,
    User,
    utcnow,
)
from portal.services import settings
from portal.services.errors import DomainError, NotFound

# The fatigue policy's settings (portal.services.settings holds their bounds, defaults, labels and help).
DEFAULTS = {key: settings.BY_KEY[key].default for key in ("max_engagements_90d", "reference_call_gap_days")}
LABELS = {key: settings.BY_KEY[key].label for key in DEFAULTS}
WINDOW_DAYS = 90
UNDER_USED_DAYS = 180
# What counts against the advocate's own ask limits: their requests, their places, and the program's asks
# while they wait for an answer or once accepted (a declined or expired ask does not count).
ASK_STATUSES = (
    ParticipationStatus.REQUESTED,
    ParticipationStatus.APPROVED,
    ParticipationStatus.COMPLETED,
    ParticipationStatus.ASKED,
)


@dataclass
class Policy:
    max_engagements_90d: int
    reference_call_gap_days: int


def policy(session: Session) -> Policy:
    return Policy(**{key: settings.get(session, key) for key in DEFAULTS})


def set_policy(session: Session, values: dict[str, int], actor_id: int) -> Policy:
    """Save some of the policy's settings (through ``settings.save``: checked, audited once)."""
    for key, value in values.items():
        if key not in DEFAULTS:
            raise DomainError(f"Unknown setting {key}.")
        if value is None:
            raise DomainError(f"{LABELS[key]} is required.")
    settings.save(session, {key: int(value) for key, value in values.items()}, actor_id)
    return policy(session)


# --- reasons and decisions ------------------------------------------------------------------------------------

# Machine-readable reasons. What the advocate is or chose (``NOT_ACTIVE``, ``NOT_OPTED_IN``), whether they are
# away (``PAUSED``, ``BLACKOUT``), and the limits (``LIMITS``).
NOT_ACTIVE = "not_active"
NOT_OPTED_IN = "not_opted_in"
PAUSED = "paused"
BLACKOUT = "blackout"
MONTH_LIMIT = "month_limit"
QUARTER_LIMIT = "quarter_limit"
PROGRAM_LIMIT = "program_limit"
REFERENCE_CALL_GAP = "reference_call_gap"
AWAY = frozenset({PAUSED, BLACKOUT})
LIMITS = frozenset({MONTH_LIMIT, QUARTER_LIMIT, PROGRAM_LIMIT, REFERENCE_CALL_GAP})


class Reason(str):
    """One broken rule. ``code`` is machine-readable; as a string it is the admins' wording (third
    person, stored in the audit log); ``.advocate`` is the same rule told to the advocate (second person)."""

    code: str
    advocate: str

    def __new__(cls, code: str, admin: str, advocate: str):
        obj = super().__new__(cls, admin)
        obj.code = code
        obj.advocate = advocate
        return obj

    @property
    def admin(self) -> str:
        return str.__str__(self)


@dataclass(frozen=True)
class Decision:
    """The answer to "may this advocate be asked (for this)?": allowed when no rule is broken."""

    reasons: tuple[Reason, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.reasons

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def has(self, codes: Iterable[str]) -> bool:
        wanted = set(codes)
        return any(r.code in wanted for r in self.reasons)

    def ignoring(self, *codes: str) -> Decision:
        """The same decision without the given reasons (a caller that checks those another way)."""
        return Decision(tuple(r for r in self.reasons if r.code not in codes))

    def __add__(self, other: Decision) -> Decision:
        return Decision(self.reasons + other.reasons)

    def for_advocate(self) -> list[str]:
        return [r.advocate for r in self.reasons]

    def for_admin(self) -> list[str]:
        return [r.admin for r in self.reasons]


class AskRefused(DomainError):
    """An ask refused by the rules. ``reasons`` are ``Reason``s (str: the admins' words); the message is
    in the advocate's words when ``for_advocate``."""

    def __init__(self, decision: Decision, for_advocate: bool = False):
        words = decision.for_advocate() if for_advocate else decision.for_admin()
        super().__init__(" ".join(words))
        self.decision = decision
        self.reasons = list(decision.reasons)


def at_limit(used: int, limit: int) -> bool:
    """A limit of ``limit`` asks (or engagements) is reached once ``used`` of them are taken: one more
    would break it. The one comparison every limit uses."""
    return used >= limit


def near_limit(used: int, limit: int) -> bool:
    """One ask (or engagement) left before the limit."""
    return limit > 0 and used == limit - 1


_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _num(n: int) -> str:
    return _WORDS[n] if 0 <= n < len(_WORDS) else f"{n:,}"


def _count(n: int, noun: str) -> str:
    """'one ask', 'two asks', '12 asks', 'no asks'."""
    return f"{_num(n)} {noun if n == 1 else noun + 's'}"


def _n(n: int, noun: str) -> str:
    """'1 engagement', '4 engagements' (policy figures stay digits)."""
    return f"{n:,} {noun if n == 1 else noun + 's'}"


def fmt_day(d: date) -> str:
    return d.strftime("%d %b %Y").lstrip("0")


def _ask_limit(name: str, limit: int, used: int, period: str) -> Reason:
    code = MONTH_LIMIT if period == "month" else QUARTER_LIMIT
    if limit == 0:
        return Reason(code, f"{name} asked for no asks a {period}.", f"You asked for no asks a {period}.")
    have = _num(used) if used else "none"
    return Reason(
        code,
        f"{name} asked for at most {_count(limit, 'ask')} a {period} and has {have} this {period}.",
        f"You asked for at most {_count(limit, 'ask')} a {period} and have {have} this {period}.",
    )


# --- the advocate's own calendar -------------------------------------------------------------------------------


@cache
def zone_named(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):  # a value stored before the list was narrowed, or garbage
        return ZoneInfo("UTC")


def local_date(timezone_name: str | None, now: datetime | None = None) -> date:
    """Today's date where the advocate is (from their time zone's name): pauses, blackouts and their
    own months and quarters are the advocate's calendar days."""
    return (now or utcnow()).astimezone(zone_named(timezone_name)).date()


def local_today(profile: AdvocateProfile, now: datetime | None = None) -> date:
    return local_date(profile.timezone, now)


def _local_midnight(zone: ZoneInfo, d: date) -> datetime:
    """The instant (in UTC) the advocate's calendar day ``d`` begins in ``zone``."""
    return datetime.combine(d, time.min, tzinfo=zone).astimezone(UTC)


def ask_periods(timezone_name: str | None, now: datetime) -> tuple[date, datetime, datetime]:
    """The advocate's own today, and the instants their calendar month and quarter began (their
    midnight on the 1st, in UTC): the advocate's own ask limits count asks from these."""
    zone = zone_named(timezone_name)
    today = now.astimezone(zone).date()
    month = today.replace(day=1)
    quarter = month.replace(month=3 * ((month.month - 1) // 3) + 1)
    return today, _local_midnight(zone, month), _local_midnight(zone, quarter)


# --- paused or in a blackout ---------------------------------------------------------------------------------


def _away(
    paused_until: date | None, spans: Iterable[tuple[date, date]], today: date, on: date
) -> tuple[bool, tuple[date, date] | None]:
    """(paused, the blackout covering ``on``): the one test of "paused or in a blackout". A pause holds
    every ask made while it lasts (through ``paused_until``, on the advocate's ``today``); a blackout
    holds what would happen on one of its days (``on``: the engagement's day, or today)."""
    paused = paused_until is not None and paused_until >= today
    covering = next(((s, e) for s, e in spans if s <= on <= e), None)
    return paused, covering


def unavailable_on(
    session: Session, user_ids: Iterable[int] | None = None, on_date: date | None = None, now: datetime | None = None
) -> dict[int, str]:
    """The advocates (of ``user_ids``; everyone when None) who are paused, or in a blackout on
    ``on_date`` (default: each one's own today), at ``now``: {user id: PAUSED | BLACKOUT}.

    Every time zone's date is within a day of UTC's: the candidates around UTC's date are read with
    two indexed lookups (pauses not over, blackouts near the day), and only those whose pause or
    blackout ends or starts within a day of it need their own date (their time zone)."""
    now = now or utcnow()
    utc_today = now.astimezone(UTC).date()
    before, after = utc_today - timedelta(days=1), utc_today + timedelta(days=1)
    lo, hi = (before, after) if on_date is None else (on_date, on_date)
    # A Select of ids is used as a subquery (any number of advocates, no bound parameter per id).
    ids = None if user_ids is None else user_ids if isinstance(user_ids, Select) else list(set(user_ids))
    if isinstance(ids, list) and not ids:
        return {}
    pq = select(AdvocateProfile.user_id, AdvocateProfile.paused_until).where(AdvocateProfile.paused_until >= before)
    bq = select(Blackout.user_id, Blackout.starts_on, Blackout.ends_on).where(
        Blackout.starts_on <= hi, Blackout.ends_on >= lo
    )
    if ids is not None:
        pq = pq.where(AdvocateProfile.user_id.in_(ids))
        bq = bq.where(Blackout.user_id.in_(ids))
    paused = dict(session.execute(pq).all())
    spans: dict[int, list[tuple[date, date]]] = {}
    for uid, starts, ends in session.execute(bq).all():
        spans.setdefault(uid, []).append((starts, ends))
    out: dict[int, str] = {}
    # Sure whatever the zone: a pause through ``after`` or later; a blackout over all of [lo, hi].
    for uid, until in paused.items():
        if until >= after:
            out[uid] = PAUSED
    for uid, found in spans.items():
        if uid not in out and any(s <= lo and e >= hi for s, e in found):
            out[uid] = BLACKOUT
    unsure = (set(paused) | set(spans)) - set(out)
    if unsure:
        zones = dict(
            session.execute(
                select(AdvocateProfile.user_id, AdvocateProfile.timezone).where(AdvocateProfile.user_id.in_(unsure))
            ).all()
        )
        for uid in unsure:
            today = local_date(zones.get(uid), now)
            is_paused, covering = _away(paused.get(uid), spans.get(uid, ()), today, on_date or today)
            if is_paused or covering:
                out[uid] = PAUSED if is_paused else BLACKOUT
    return out


@dataclass
class Availability:
    kind: str  # available | paused | blackout
    until: date | None = None
    note: str = ""

    @property
    def label(self) -> str:
        if self.kind == "paused":
            return f"Paused until {self.until:%d %b %Y}"
        if self.kind == "blackout":
            return f"In a blackout until {self.until:%d %b %Y}"
        return "Available"


def availability(profile: AdvocateProfile, today: date | None = None) -> Availability:
    """Available, paused or in a blackout on ``today`` (by default: today in the advocate's time zone),
    as the advocate's own pages and the program's profile card tell it."""
    today = today or local_today(profile)
    spans = [(b.starts_on, b.ends_on) for b in profile.blackouts]
    paused, covering = _away(profile.paused_until, spans, today, today)
    if paused:
        return Availability(PAUSED, profile.paused_until)
    if covering:
        # Overlapping blackouts chain: the advocate is away until the last day of the connected run.
        current = [b for b in profile.blackouts if b.starts_on <= today <= b.ends_on]
        until = max(b.ends_on for b in current)
        changed = True
        while changed:
            changed = False
            for s, e in spans:
                if s <= until + timedelta(days=1) and e > until:
                    until, changed = e, True
        return Availability(BLACKOUT, until, current[0].note)
    return Availability("available")


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
    # The count of a window only grows when its end reaches an engagement day, so the most is found among
    # the first window and those ending on an engagement day (a few bisections, not one step per day:
    # the reports count this for every advocate of the program).
    first = d - span + 1
    starts = {first} | {x - span + 1 for x in near if first <= x - span + 1 <= d}
    return max(bisect_right(near, s + span - 1) - bisect_left(near, s) for s in starts)


def _engagement_rows(
    session: Session, user_ids: list[int] | Select, exclude_id: int | None = None, since: date | None = None
):
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


def _asks_since(session: Session, user_id: int, since: datetime, exclude_id: int | None) -> int:
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


# --- may this advocate be asked? ------------------------------------------------------------------------------


class Snapshot:
    """One advocate's facts for the rules, read once (a handful of queries); any number of asks are then
    decided without another query (the feed, the digest, announcements). ``decide_many`` builds them for
    many advocates at once from facts read in bulk (``Snapshot.of_facts``); both decide with ``decide``.

    ``counts_as_ask=False`` decides the advocate's own earlier request (an approval): it was an ask when
    it was made, so their opt-in and their own ask limits were checked then and are not checked again."""

    def __init__(
        self,
        session: Session,
        user: User,
        *,
        counts_as_ask: bool = True,
        exclude_participation_id: int | None = None,
        now: datetime | None = None,
        pol: Policy | None = None,
    ):
        now = now or utcnow()
        profile = session.get(AdvocateProfile, user.id)
        _, month_start, quarter_start = ask_periods(profile.timezone if profile else None, now)
        blackouts: list[tuple[date, date]] = []
        if profile is not None:
            blackouts = [
                tuple(row)
                for row in session.execute(
                    select(Blackout.starts_on, Blackout.ends_on)
                    .where(Blackout.user_id == user.id)
                    .order_by(Blackout.starts_on)
                ).all()
            ]
        opted_in: set[int] = set()
        limits: list[tuple[int, int, str]] = []
        if counts_as_ask:
            opted_in = set(
                session.scalars(
                    select(ActivityPreference.activity_type_id).where(
                        ActivityPreference.user_id == user.id, ActivityPreference.opted_in.is_(True)
                    )
                )
            )
            for limit, since, period in (
                (profile.max_asks_per_month if profile else None, month_start, "month"),
                (profile.max_asks_per_quarter if profile else None, quarter_start, "quarter"),
            ):
                if limit is not None:
                    limits.append((limit, _asks_since(session, user.id, since, exclude_participation_id), period))
        rows = _engagement_rows(session, [user.id], exclude_participation_id)
        self._set(
            user.name,
            _is_active(user.role, user.status),
            profile,
            blackouts,
            opted_in,
            limits,
            [(d, key) for _, d, key in rows],
            counts_as_ask=counts_as_ask,
            now=now,
            pol=pol or policy(session),
        )

    @classmethod
    def of_facts(
        cls,
        name: str,
        active: bool,
        profile: AdvocateProfile | None,
        blackouts: list[tuple[date, date]],
        opted_in: set[int],
        limits: list[tuple[int, int, str]],
        engagements: list[tuple[date, str]],
        *,
        counts_as_ask: bool,
        now: datetime,
        pol: Policy,
    ) -> Snapshot:
        """A snapshot from facts already read (``decide_many`` reads them for many advocates at once):
        blackouts by start day, the opted-in activity type ids, the own ask limits as (limit, asks used,
        "month" | "quarter"), the engagements as (day, activity key)."""
        snap = cls.__new__(cls)
        snap._set(
            name,
            active,
            profile,
            blackouts,
            opted_in,
            limits,
            engagements,
            counts_as_ask=counts_as_ask,
            now=now,
            pol=pol,
        )
        return snap

    def _set(
        self,
        name: str,
        active: bool,
        profile: AdvocateProfile | None,
        blackouts: list[tuple[date, date]],
        opted_in: set[int],
        limits: list[tuple[int, int, str]],
        engagements: list[tuple[date, str]],
        *,
        counts_as_ask: bool,
        now: datetime,
        pol: Policy,
    ) -> None:
        self.now = now
        self.name = name
        self.active = active
        self.counts_as_ask = counts_as_ask
        self.policy = pol
        self.profile = profile
        self.today, _, _ = ask_periods(profile.timezone if profile else None, now)
        self.paused_until = profile.paused_until if profile is not None else None
        self.blackouts = blackouts if profile is not None else []
        self.opted_in = opted_in if counts_as_ask else set()
        self.limits = limits if counts_as_ask else []  # (limit, used, "month" | "quarter")
        self.days = [d.toordinal() for d, _ in engagements]
        self.call_days = sorted(d.toordinal() for d, key in engagements if key == "reference_call")

    def _pause(self) -> list[Reason]:
        paused, _ = _away(self.paused_until, (), self.today, self.today)
        if not paused:
            return []
        until = fmt_day(self.paused_until)
        return [
            Reason(
                PAUSED, f"{self.name} has paused all asks until {until}.", f"You have paused all asks until {until}."
            )
        ]

    def _limits(self) -> list[Reason]:
        return [
            _ask_limit(self.name, limit, used, period) for limit, used, period in self.limits if at_limit(used, limit)
        ]

    def general(self) -> list[Reason]:
        """The rules that refuse every ask alike, whatever it is for (a pause, the own ask limits)."""
        return self._pause() + self._limits()

    def decide(self, activity_type: ActivityType, on_date: date | None = None) -> Decision:
        """May this advocate be asked for an activity of ``activity_type`` happening on ``on_date``
        (None: not dated, counted on the advocate's today)?"""
        when = on_date or self.today
        reasons: list[Reason] = []
        if not self.active:
            reasons.append(Reason(NOT_ACTIVE, f"{self.name}'s account is not active.", "Your account is not active."))
        if self.counts_as_ask and activity_type.id not in self.opted_in:
            kind = activity_type.name.lower()
            reasons.append(
                Reason(
                    NOT_OPTED_IN,
                    f"{self.name} has not opted in to {kind} activities.",
                    f"You have not opted in to {kind} activities.",
                )
            )
        reasons += self._pause()
        _, covering = _away(None, self.blackouts, self.today, when)
        if covering:
            span = f"from {fmt_day(covering[0])} to {fmt_day(covering[1])}"
            reasons.append(
                Reason(BLACKOUT, f"{self.name} is in a blackout {span}.", f"It falls in your blackout {span}.")
            )
        reasons += self._limits()
        pol, d = self.policy, when.toordinal()
        peak = _window_peak(self.days, d)
        if at_limit(peak, pol.max_engagements_90d):
            most = _n(pol.max_engagements_90d, "engagement")
            around = "" if when == self.today else f" in the 90 days around {fmt_day(when)}"
            reasons.append(
                Reason(
                    PROGRAM_LIMIT,
                    f"The program allows at most {most} in 90 days; {self.name} has {peak}{around}.",
                    f"The program asks nobody to take part more than {_n(pol.max_engagements_90d, 'time')} "
                    f"in 90 days, and you already have {peak}{around or ' in that time'}.",
                )
            )
        gap = pol.reference_call_gap_days
        if activity_type.key == "reference_call" and gap:
            clashes = [x for x in self.call_days if abs(x - d) < gap]
            if clashes:
                x = min(clashes, key=lambda c: (abs(c - d), c))
                other = fmt_day(date.fromordinal(x))
                rule = f"The program keeps at least {_n(gap, 'day')} between reference calls"
                if x <= self.today.toordinal():
                    admin, advocate = (
                        f"{rule}; {self.name}'s last one was on {other}.",
                        f"{rule}, and your last one was on {other}.",
                    )
                else:
                    admin, advocate = (
                        f"{rule}; {self.name} has one on {other}.",
                        f"{rule}, and you have one on {other}.",
                    )
                reasons.append(Reason(REFERENCE_CALL_GAP, admin, advocate))
        return Decision(tuple(reasons))


def may_ask(
    session: Session,
    advocate_id: int,
    activity_type: ActivityType,
    on_date: date | None = None,
    *,
    counts_as_ask: bool = True,
    exclude_participation_id: int | None = None,
    now: datetime | None = None,
) -> Decision:
    """May the advocate be asked for an activity of ``activity_type`` that happens on ``on_date`` (None:
    undated)? Every rule that protects an advocate: an active account, opted in to the type, not paused,
    no blackout on that day, under their own ask limits, under the program's limit in any 90 days around
    that day, and the gap between reference calls. ``counts_as_ask=False``: deciding the advocate's own
    earlier request (see ``Snapshot``); ``exclude_participation_id``: the engagement being decided."""
    user = session.get(User, advocate_id)
    if user is None:
        raise NotFound("No such advocate.")
    snap = Snapshot(
        session, user, counts_as_ask=counts_as_ask, exclude_participation_id=exclude_participation_id, now=now
    )
    return snap.decide(activity_type, on_date)


DECIDE_CHUNK = 1000  # ids one statement names as parameters when deciding many advocates


def decide_many(
    session: Session,
    user_ids: Iterable[int],
    activity_type: ActivityType,
    on_date: date | None = None,
    *,
    now: datetime | None = None,
    chunk: int = DECIDE_CHUNK,
) -> dict[int, Decision]:
    """``may_ask`` for many advocates at once ({user id: Decision}; ids without an account are left out),
    in a fixed number of queries per ``chunk`` of ids: their accounts, profiles, blackouts, opt-ins to
    ``activity_type``, asks and engagements, each read for the whole chunk with one IN query. The rules are
    ``Snapshot.decide``'s, the same code ``may_ask`` runs."""
    now = now or utcnow()
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return {}
    pol = policy(session)
    out: dict[int, Decision] = {}
    for i in range(0, len(ids), chunk):
        part = ids[i : i + chunk]
        for uid, snap in _snapshots(session, part, activity_type, now, pol).items():
            out[uid] = snap.decide(activity_type, on_date)
    return out


def _is_active(role: Role, status: Status) -> bool:
    return role == Role.ADVOCATE and status == Status.ACTIVE


def _snapshots(
    session: Session, ids: list[int], activity_type: ActivityType, now: datetime, pol: Policy
) -> dict[int, Snapshot]:
    """Snapshots (counting as an ask) of the advocates ``ids``, from one query per kind of fact."""
    users = {
        r.id: r for r in session.execute(select(User.id, User.name, User.role, User.status).where(User.id.in_(ids)))
    }
    if not users:
        return {}
    profiles = {p.user_id: p for p in session.scalars(select(AdvocateProfile).where(AdvocateProfile.user_id.in_(ids)))}
    blackouts: dict[int, list[tuple[date, date]]] = {}
    for uid, starts, ends in session.execute(
        select(Blackout.user_id, Blackout.starts_on, Blackout.ends_on)
        .where(Blackout.user_id.in_(ids))
        .order_by(Blackout.user_id, Blackout.starts_on)
    ):
        blackouts.setdefault(uid, []).append((starts, ends))
    opted = set(
        session.scalars(
            select(ActivityPreference.user_id).where(
                ActivityPreference.user_id.in_(ids),
                ActivityPreference.activity_type_id == activity_type.id,
                ActivityPreference.opted_in.is_(True),
            )
        )
    )
    # The own ask limits count from each advocate's local 1st of the month / quarter: one query for the asks
    # since the earliest of those starts (only of advocates with a limit), counted per advocate here.
    periods = {
        uid: ask_periods(p.timezone, now)
        for uid, p in profiles.items()
        if p.max_asks_per_month is not None or p.max_asks_per_quarter is not None
    }
    asks: dict[int, list[datetime]] = {}
    if periods:
        earliest = min(quarter_start for _, _, quarter_start in periods.values())
        for uid, requested_at in session.execute(
            select(Participation.user_id, Participation.requested_at).where(
                Participation.user_id.in_(list(periods)),
                Participation.status.in_(ASK_STATUSES),
                Participation.requested_at >= earliest,
            )
        ):
            asks.setdefault(uid, []).append(requested_at)
    engagements: dict[int, list[tuple[date, str]]] = {}
    for uid, day, key in _engagement_rows(session, ids):
        engagements.setdefault(uid, []).append((day, key))
    out = {}
    for uid in ids:
        u = users.get(uid)
        if u is None:
            continue
        p = profiles.get(uid)
        limits: list[tuple[int, int, str]] = []
        if uid in periods:
            _, month_start, quarter_start = periods[uid]
            for limit, since, period in (
                (p.max_asks_per_month, month_start, "month"),
                (p.max_asks_per_quarter, quarter_start, "quarter"),
            ):
                if limit is not None:
                    limits.append((limit, sum(1 for at in asks.get(uid, ()) if at >= since), period))
        out[uid] = Snapshot.of_facts(
            u.name,
            _is_active(u.role, u.status),
            p,
            blackouts.get(uid, []),
            {activity_type.id} if uid in opted else set(),
            limits,
            engagements.get(uid, []),
            counts_as_ask=True,
            now=now,
            pol=pol,
        )
    return out


# --- status for lists ----------------------------------------------------------------------------------------

STATUS_LABELS = {
    "available": "Available",
    "near_limit": "Near limit",
    "at_limit": "At limit",
    "unavailable": "Paused or in blackout",
    "under_used": "Under-used",
}


# The statuses of advocates that an undated ask today would be refused (search hides them by default).
REFUSED_STATUSES = ("at_limit", "unavailable")


@dataclass
class FatigueStatus:
    key: str
    engagements_90d: int
    detail: str = ""

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.key]


def statuses(session: Session, user_ids: list[int] | Select, now: datetime | None = None) -> dict[int, FatigueStatus]:
    """Fatigue status for many advocates in a fixed number of queries, with plain rows (no ORM
    objects), so lists, search documents and bulk filters can call it for thousands of ids.

    The same rules as ``may_ask`` for an undated ask today: "unavailable" when it would be refused as
    paused or in a blackout, "at limit" when refused by a limit. ``engagements_90d`` is the most
    engagements in a 90-day window that holds the advocate's today (what a new engagement today would be
    checked against); under-used: no engagement within the last 180 days
    (none ever: counted from the approval).

    ``user_ids`` may be a Select of ids (the whole program: the reports' fatigue distribution, coverage):
    it is then used as a subquery in each of the same queries, whatever the number of advocates."""
    now = now or utcnow()
    today = now.date()
    if isinstance(user_ids, Select):
        in_ids = user_ids
        ids = list(dict.fromkeys(session.scalars(user_ids)))
    else:
        ids = in_ids = list(set(user_ids))
    if not ids:
        return {}
    pol = policy(session)

    recent_from = today - timedelta(days=UNDER_USED_DAYS - 1)
    days: dict[int, list[int]] = {}
    for uid, day, _ in _engagement_rows(session, in_ids, since=min(recent_from, today - timedelta(days=WINDOW_DAYS))):
        days.setdefault(uid, []).append(day.toordinal())
    ever_engaged = set(
        session.scalars(
            select(Participation.user_id)
            .where(Participation.user_id.in_(in_ids), Participation.status.in_(ENGAGED_STATUSES))
            .distinct()
        )
    )
    away = unavailable_on(session, in_ids, now=now)
    profile_rows = {
        r.user_id: r
        for r in session.execute(
            select(
                AdvocateProfile.user_id,
                AdvocateProfile.max_asks_per_month,
                AdvocateProfile.max_asks_per_quarter,
                AdvocateProfile.timezone,
            ).where(AdvocateProfile.user_id.in_(in_ids))
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
        for r in session.execute(select(User.id, User.approved_at, User.created_at).where(User.id.in_(in_ids))).all()
    }

    recent = recent_from.toordinal()
    out = {}
    for uid in ids:
        p = profile_rows.get(uid)
        mine = days.get(uid, [])
        # The program's window around the advocate's own today, as may_ask counts an undated ask.
        n = _window_peak(mine, local_date(p.timezone if p else None, now).toordinal())
        if uid in away:
            out[uid] = FatigueStatus("unavailable", n, "paused" if away[uid] == PAUSED else "in a blackout")
            continue
        pairs = [(n, pol.max_engagements_90d)]
        if p and p.max_asks_per_month is not None:
            pairs.append((asks_month.get(uid, 0), p.max_asks_per_month))
        if p and p.max_asks_per_quarter is not None:
            pairs.append((asks_quarter.get(uid, 0), p.max_asks_per_quarter))
        if any(at_limit(used, limit) for used, limit in pairs):
            out[uid] = FatigueStatus("at_limit", n)
        elif any(near_limit(used, limit) for used, limit in pairs):
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


def ids_with_status(
    session: Session, key: str, ids_query: Select, chunk: int = 1000, now: datetime | None = None
) -> list[int]:
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


def status(session: Session, user_id: int, now: datetime | None = None) -> FatigueStatus:
    return statuses(session, [user_id], now)[user_id]
