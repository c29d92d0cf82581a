"""Protection from over-use (and visibility of under-use).

Program policy (settings table, editable by admins): at most N engagements per advocate in a
rolling 90 days, at least D days between reference calls. The advocate's own limits: asks per
calendar month and quarter, blackouts and a pause. A request or an approval that would break any
rule is refused with the reason in plain words; an admin may override with a recorded reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, select

from portal.models import (ACTIVE_STATUSES, ENGAGED_STATUSES, ActivityType, AdvocateProfile, Blackout, Opportunity,
                           Participation, ParticipationStatus, ProgramSetting, User, utcnow)
from portal.services import audit
from portal.services.errors import DomainError

DEFAULTS = {"max_engagements_90d": 4, "reference_call_gap_days": 30}
LABELS = {"max_engagements_90d": "Most engagements per advocate in 90 days",
          "reference_call_gap_days": "Fewest days between two reference calls"}
WINDOW_DAYS = 90
UNDER_USED_DAYS = 180
ASK_STATUSES = (ParticipationStatus.REQUESTED, ParticipationStatus.APPROVED, ParticipationStatus.COMPLETED)


@dataclass
class Policy:
    max_engagements_90d: int
    reference_call_gap_days: int


def policy(session) -> Policy:
    values = dict(DEFAULTS)
    values.update({s.key: s.value for s in session.scalars(select(ProgramSetting))
                   if s.key in DEFAULTS})
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
    return policy(session)


def _month_start(d: date) -> datetime:
    return datetime(d.year, d.month, 1, tzinfo=timezone.utc)


def _quarter_start(d: date) -> datetime:
    return datetime(d.year, 3 * ((d.month - 1) // 3) + 1, 1, tzinfo=timezone.utc)


def _asks_since(session, user_id: int, since: datetime, exclude_id: int | None) -> int:
    q = select(func.count()).select_from(Participation).where(
        Participation.user_id == user_id, Participation.status.in_(ASK_STATUSES), Participation.requested_at >= since)
    if exclude_id:
        q = q.where(Participation.id != exclude_id)
    return session.scalar(q) or 0


def _engagements_since(session, user_id: int, since: datetime, exclude_id: int | None) -> int:
    q = select(func.count()).select_from(Participation).where(
        Participation.user_id == user_id, Participation.status.in_(ENGAGED_STATUSES), Participation.engaged_at >= since)
    if exclude_id:
        q = q.where(Participation.id != exclude_id)
    return session.scalar(q) or 0


def _last_reference_call(session, user_id: int, exclude_id: int | None) -> datetime | None:
    q = (select(func.max(Participation.engaged_at)).join(Opportunity, Opportunity.id == Participation.opportunity_id)
         .join(ActivityType, ActivityType.id == Opportunity.activity_type_id)
         .where(Participation.user_id == user_id, Participation.status.in_(ENGAGED_STATUSES),
                ActivityType.key == "reference_call"))
    if exclude_id:
        q = q.where(Participation.id != exclude_id)
    return session.scalar(q)


def _fmt(d: date) -> str:
    return d.strftime("%d %b %Y").lstrip("0")


def check(session, user: User, opportunity: Opportunity, *, counts_as_ask: bool = True,
          exclude_participation_id: int | None = None, now: datetime | None = None) -> list[str]:
    """Every rule the engagement would break, in plain words (empty: allowed)."""
    now = now or utcnow()
    today = now.date()
    reasons: list[str] = []
    profile = session.get(AdvocateProfile, user.id)
    when = opportunity.engagement_date or today
    if profile is not None:
        if profile.paused_until and profile.paused_until >= today:
            reasons.append(f"{user.name} has paused all asks until {_fmt(profile.paused_until)}.")
        blackout = session.scalar(select(Blackout).where(Blackout.user_id == user.id, Blackout.starts_on <= when,
                                                         Blackout.ends_on >= when).limit(1))
        if blackout is not None:
            reasons.append(f"{user.name} is in a blackout from {_fmt(blackout.starts_on)} to "
                           f"{_fmt(blackout.ends_on)}.")
        if counts_as_ask:
            if profile.max_asks_per_month is not None:
                used = _asks_since(session, user.id, _month_start(today), exclude_participation_id)
                if used + 1 > profile.max_asks_per_month:
                    reasons.append(f"{user.name} asked for at most {profile.max_asks_per_month} ask(s) a month "
                                   f"and has {used} this month.")
            if profile.max_asks_per_quarter is not None:
                used = _asks_since(session, user.id, _quarter_start(today), exclude_participation_id)
                if used + 1 > profile.max_asks_per_quarter:
                    reasons.append(f"{user.name} asked for at most {profile.max_asks_per_quarter} ask(s) a quarter "
                                   f"and has {used} this quarter.")
    pol = policy(session)
    engaged = _engagements_since(session, user.id, now - timedelta(days=WINDOW_DAYS), exclude_participation_id)
    if engaged + 1 > pol.max_engagements_90d:
        reasons.append(f"The program allows at most {pol.max_engagements_90d} engagements in 90 days; "
                       f"{user.name} has {engaged}.")
    if opportunity.activity_type.key == "reference_call" and pol.reference_call_gap_days:
        last = _last_reference_call(session, user.id, exclude_participation_id)
        if last is not None and now - last < timedelta(days=pol.reference_call_gap_days):
            reasons.append(f"The program keeps at least {pol.reference_call_gap_days} days between reference calls; "
                           f"{user.name}'s last one was on {_fmt(last.date())}.")
    return reasons


# --- status for lists ----------------------------------------------------------------------------------------

STATUS_LABELS = {"available": "Available", "near_limit": "Near limit", "at_limit": "At limit",
                 "unavailable": "Paused or in blackout", "under_used": "Under-used"}


@dataclass
class FatigueStatus:
    key: str
    engagements_90d: int
    detail: str = ""

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.key]


def statuses(session, user_ids: list[int], now: datetime | None = None) -> dict[int, FatigueStatus]:
    """Fatigue status for many advocates in a fixed number of queries (for lists and search)."""
    now = now or utcnow()
    today = now.date()
    if not user_ids:
        return {}
    ids = list(set(user_ids))
    pol = policy(session)

    def grouped(q):
        return dict(session.execute(q).all())

    engaged = grouped(select(Participation.user_id, func.count()).where(
        Participation.user_id.in_(ids), Participation.status.in_(ENGAGED_STATUSES),
        Participation.engaged_at >= now - timedelta(days=WINDOW_DAYS)).group_by(Participation.user_id))
    last_engaged = grouped(select(Participation.user_id, func.max(Participation.engaged_at)).where(
        Participation.user_id.in_(ids), Participation.status.in_(ENGAGED_STATUSES)).group_by(Participation.user_id))
    asks_month = grouped(select(Participation.user_id, func.count()).where(
        Participation.user_id.in_(ids), Participation.status.in_(ASK_STATUSES),
        Participation.requested_at >= _month_start(today)).group_by(Participation.user_id))
    asks_quarter = grouped(select(Participation.user_id, func.count()).where(
        Participation.user_id.in_(ids), Participation.status.in_(ASK_STATUSES),
        Participation.requested_at >= _quarter_start(today)).group_by(Participation.user_id))
    in_blackout = set(session.scalars(select(Blackout.user_id).where(
        Blackout.user_id.in_(ids), Blackout.starts_on <= today, Blackout.ends_on >= today)))
    profiles = {p.user_id: p for p in session.scalars(select(AdvocateProfile).where(AdvocateProfile.user_id.in_(ids)))}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}

    out = {}
    for uid in ids:
        p = profiles.get(uid)
        n = engaged.get(uid, 0)
        if (p and p.paused_until and p.paused_until >= today) or uid in in_blackout:
            out[uid] = FatigueStatus("unavailable", n, "paused" if p and p.paused_until and p.paused_until >= today
                                     else "in a blackout")
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
        else:
            last = last_engaged.get(uid)
            user = users.get(uid)
            since = last or (user.approved_at or user.created_at if user else None)
            if since is None or now - since >= timedelta(days=UNDER_USED_DAYS):
                out[uid] = FatigueStatus("under_used", n, "no engagement in 180 days")
            else:
                out[uid] = FatigueStatus("available", n)
    return out


def status(session, user_id: int, now: datetime | None = None) -> FatigueStatus:
    return statuses(session, [user_id], now)[user_id]


def active_participation_exists(session, user_id: int, opportunity_id: int) -> bool:
    return session.scalar(select(func.count()).select_from(Participation).where(
        Participation.user_id == user_id, Participation.opportunity_id == opportunity_id,
        Participation.status.in_(ACTIVE_STATUSES))) > 0
