"""Leaderboards: points earned in a period; ties go to whoever reached the score first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from portal.models import AdvocateProfile, PointsEntry, Role, Status, User, utcnow

PERIODS = {"all": "All time", "quarter": "This quarter", "month": "This month"}


def period_start(period: str, now: datetime | None = None) -> datetime | None:
    now = (now or utcnow()).astimezone(UTC)
    if period == "month":
        return datetime(now.year, now.month, 1, tzinfo=UTC)
    if period == "quarter":
        return datetime(now.year, 3 * ((now.month - 1) // 3) + 1, 1, tzinfo=UTC)
    if period == "all":
        return None
    raise ValueError(period)


@dataclass
class Row:
    rank: int
    user_id: int
    name: str
    company: str | None
    points: int


def ranking(
    session: Session, period: str = "all", viewer_id: int | None = None, top: int = 50, now: datetime | None = None
) -> tuple[list[Row], Row | None]:
    """(top rows, the viewer's own row or None). Left out: staff, inactive and opted-out advocates."""
    start = period_start(period, now)
    conds = [PointsEntry.counts_toward_lifetime.is_(True)]
    if start is not None:
        conds.append(PointsEntry.created_at >= start)
    if now is not None:
        conds.append(PointsEntry.created_at <= now)
    # "Reached at": the earliest moment the running sum (in the order entries were written) reached the
    # period's final total. Not the latest entry: +50 and its reversal later must not push an advocate
    # behind someone who reached the same score after them.
    running = (
        select(
            PointsEntry.user_id,
            PointsEntry.created_at,
            func.sum(PointsEntry.amount)
            .over(partition_by=PointsEntry.user_id, order_by=(PointsEntry.created_at, PointsEntry.id), rows=(None, 0))
            .label("running"),
            func.sum(PointsEntry.amount).over(partition_by=PointsEntry.user_id).label("total"),
        )
        .where(*conds)
        .subquery()
    )
    totals = (
        select(
            running.c.user_id.label("user_id"),
            func.max(running.c.total).label("points"),
            func.min(case((running.c.running >= running.c.total, running.c.created_at))).label("reached_at"),
        )
        .group_by(running.c.user_id)
        .subquery()
    )
    ranked = (
        select(
            totals.c.user_id,
            totals.c.points,
            User.name,
            User.company,
            func.row_number()
            .over(order_by=(totals.c.points.desc(), totals.c.reached_at.asc(), totals.c.user_id.asc()))
            .label("rank"),
        )
        .join(User, User.id == totals.c.user_id)
        .outerjoin(AdvocateProfile, AdvocateProfile.user_id == User.id)
        .where(
            totals.c.points > 0,
            User.role == Role.ADVOCATE,
            User.status == Status.ACTIVE,
            or_(AdvocateProfile.user_id.is_(None), AdvocateProfile.show_on_leaderboard.is_(True)),
        )
        .subquery()
    )
    q = select(ranked).where(or_(ranked.c.rank <= top, and_(viewer_id is not None, ranked.c.user_id == viewer_id)))
    rows = [
        Row(r.rank, r.user_id, r.name, r.company, int(r.points)) for r in session.execute(q.order_by(ranked.c.rank))
    ]
    mine = next((r for r in rows if r.user_id == viewer_id), None)
    return [r for r in rows if r.rank <= top], mine
