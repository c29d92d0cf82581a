"""The admins' advocate list: which advocates a set of filters selects, in which order, and what the
bulk actions do to a selection. The list page, its CSV export and its bulk actions all start from
``ids`` (one SQL select), so they always agree on who is in it. The fatigue filter is computed by the
rules (fatigue.ids_with_status) on top of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from portal.models import (
    ActivityPreference,
    AdvocateProfile,
    Country,
    PointsBalance,
    Role,
    Status,
    TagKind,
    User,
    profile_products,
)
from portal.services import audit, points, profiles, subscriptions
from portal.services.errors import DomainError

STATUSES = {"active": Status.ACTIVE, "suspended": Status.SUSPENDED}
SORTS = {
    "name": "Name",
    "newest": "Newest members first",
    "oldest": "Oldest members first",
}
FRESHNESS = {"stale": "Stale profiles"}
BULK_LIMIT = 1000


@dataclass(frozen=True)
class Filters:
    status: str = "active"
    industry_id: int | None = None
    region_id: int | None = None
    country: str = ""
    product_id: int | None = None
    activity_type_id: int | None = None  # opted in to it
    freshness: str = ""
    level: str = ""  # a points level's name (points.level_range: a range of lifetime points)
    joined_since: date | None = None
    joined_until: date | None = None
    sort: str = "name"


def ids(f: Filters, now: datetime | None = None) -> Select:
    """``select(User.id)`` of the advocates the filters select, in the list's order."""
    stmt = (
        select(User.id)
        .outerjoin(AdvocateProfile, AdvocateProfile.user_id == User.id)
        .where(User.role == Role.ADVOCATE, User.status == STATUSES.get(f.status, Status.ACTIVE))
    )
    if f.industry_id:
        stmt = stmt.where(AdvocateProfile.industry_id == f.industry_id)
    if f.country:
        stmt = stmt.where(AdvocateProfile.country_code == f.country.upper())
    if f.region_id:
        stmt = stmt.where(
            AdvocateProfile.country_code.in_(select(Country.code).where(Country.region_id == f.region_id))
        )
    if f.product_id:
        stmt = stmt.where(
            User.id.in_(select(profile_products.c.user_id).where(profile_products.c.product_id == f.product_id))
        )
    if f.activity_type_id:
        stmt = stmt.where(
            User.id.in_(
                select(ActivityPreference.user_id).where(
                    ActivityPreference.activity_type_id == f.activity_type_id, ActivityPreference.opted_in.is_(True)
                )
            )
        )
    if f.freshness == "stale":
        stmt = stmt.where(profiles.stale_condition(now))
    if f.level:
        span = points.level_range(f.level)
        if span is None:
            raise DomainError("Choose a level from the list.")
        lo, hi = span
        stmt = stmt.outerjoin(PointsBalance, PointsBalance.user_id == User.id)
        lifetime = func.coalesce(PointsBalance.lifetime_earned, 0)  # no ledger yet: 0 points, the first level
        stmt = stmt.where(lifetime >= lo)
        if hi is not None:
            stmt = stmt.where(lifetime < hi)
    if f.joined_since:
        stmt = stmt.where(User.created_at >= datetime.combine(f.joined_since, time.min, tzinfo=UTC))
    if f.joined_until:
        stmt = stmt.where(User.created_at < datetime.combine(f.joined_until + timedelta(days=1), time.min, tzinfo=UTC))
    if f.sort == "newest":
        return stmt.order_by(User.created_at.desc(), User.id.desc())
    if f.sort == "oldest":
        return stmt.order_by(User.created_at, User.id)
    return stmt.order_by(User.name, User.id)


def _selected(session: Session, user_ids: list[int]) -> list[User]:
    if len(set(user_ids)) > BULK_LIMIT:
        raise DomainError(f"Select at most {BULK_LIMIT:,} advocates at once.")
    return list(
        session.scalars(select(User).where(User.id.in_(set(user_ids)), User.role == Role.ADVOCATE).order_by(User.id))
    )


def nudge(session: Session, user_ids: list[int], actor_id: int) -> tuple[int, int]:
    """Send each selected active advocate who accepts reminders the "is your profile still current?"
    email (the freshness reminder's); returns (sent, skipped: not active, or reminders turned off)."""
    selected = _selected(session, user_ids)
    sent = 0
    for user in selected:
        profile = session.get(AdvocateProfile, user.id)
        if user.status != Status.ACTIVE or (profile is not None and not profile.notify_reminders):
            continue
        subscriptions.queue_stale_reminder(session, user)
        sent += 1
    audit.record(session, "advocates.nudge", actor_id, None, sent=sent, user_ids=[u.id for u in selected])
    return sent, len(set(user_ids)) - sent


def add_tag(session: Session, user_ids: list[int], name: str, actor_id: int) -> int:
    """Give each selected advocate the topic tag ``name`` (created if new, as an advocate's own would
    be: profiles.tags_named); returns how many gained it."""
    name = " ".join((name or "").split())
    if not name or len(name) > profiles.MAX_TAG_LENGTH:
        raise DomainError(f"Give a tag of 1 to {profiles.MAX_TAG_LENGTH} characters.")
    (tag,) = profiles.tags_named(session, TagKind.TOPIC, [name])
    added = 0
    selected = _selected(session, user_ids)
    for user in selected:
        profile = session.get(AdvocateProfile, user.id)
        if profile is None or tag in profile.tags:
            continue
        profile.tags.append(tag)
        added += 1
    audit.record(session, "advocates.tag", actor_id, None, tag=tag.name, added=added, user_ids=[u.id for u in selected])
    return added
