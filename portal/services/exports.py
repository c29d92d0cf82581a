"""What each CSV export holds: one place for the columns and the rows of every export of the admin
area (the audit log's is portal.services.audit.export_rows). Rows are read ``BATCH`` at a time with
core selects (no ORM objects kept), oldest first, and written by portal.exports (RFC 4180, formula
injection neutralised, streamed): memory stays flat at any size.

Each export is an admin action: the view records ``export.<kind>`` in the audit log with its filters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, aliased

from portal.models import (
    ActivityType,
    AdvocateProfile,
    Industry,
    Opportunity,
    Participation,
    ParticipationStatus,
    PointsEntry,
    Redemption,
    RedemptionStatus,
    Reward,
    Role,
    User,
)

BATCH = 1000


@dataclass(frozen=True)
class Export:
    kind: str
    title: str
    header: tuple[str, ...]


PARTICIPATIONS = Export(
    "participations",
    "Participations",
    (
        "id",
        "opportunity_id",
        "opportunity",
        "activity_type",
        "advocate_email",
        "advocate_name",
        "status",
        "requested_at_utc",
        "decided_at_utc",
        "completed_at_utc",
        "override_reason",
        "message",
    ),
)
LEDGER = Export(
    "ledger",
    "Points ledger",
    ("id", "time_utc", "advocate_email", "amount", "kind", "source", "reason", "actor_email", "reverses_id"),
)
REDEMPTIONS = Export(
    "redemptions",
    "Reward orders",
    (
        "id",
        "ordered_at_utc",
        "advocate_email",
        "advocate_name",
        "reward",
        "points_cost",
        "status",
        "note",
        "fulfilled_at_utc",
        "cancelled_at_utc",
    ),
)
ADVOCATES = Export(
    "advocates",
    "Advocates",
    (
        "id",
        "name",
        "email",
        "job_title",
        "company",
        "country",
        "industry",
        "status",
        "joined_at_utc",
        "approved_at_utc",
        "profile_confirmed_at_utc",
    ),
)
EXPORTS = {e.kind: e for e in (PARTICIPATIONS, LEDGER, REDEMPTIONS, ADVOCATES)}


def _stream(session: Session, stmt: Select) -> Iterator[tuple]:
    for row in session.execute(stmt.execution_options(yield_per=BATCH)):
        yield tuple(row)


def _value(v: object) -> object:
    return v.value if hasattr(v, "value") else v


def participation_rows(
    session: Session, opp_id: int | None = None, status: ParticipationStatus | None = None
) -> Iterator[tuple]:
    stmt = (
        select(
            Participation.id,
            Participation.opportunity_id,
            Opportunity.title,
            ActivityType.name,
            User.email,
            User.name,
            Participation.status,
            Participation.requested_at,
            Participation.decided_at,
            Participation.completed_at,
            Participation.override_reason,
            Participation.message,
        )
        .join(Opportunity, Opportunity.id == Participation.opportunity_id)
        .join(ActivityType, ActivityType.id == Opportunity.activity_type_id)
        .join(User, User.id == Participation.user_id)
        .order_by(Participation.id)
    )
    if opp_id is not None:
        stmt = stmt.where(Participation.opportunity_id == opp_id)
    if status is not None:
        stmt = stmt.where(Participation.status == status)
    for row in _stream(session, stmt):
        yield tuple(_value(v) for v in row)


def ledger_rows(session: Session) -> Iterator[tuple]:
    actor = aliased(User)
    stmt = (
        select(
            PointsEntry.id,
            PointsEntry.created_at,
            User.email,
            PointsEntry.amount,
            PointsEntry.kind,
            PointsEntry.source,
            PointsEntry.reason,
            actor.email,
            PointsEntry.reverses_id,
        )
        .join(User, User.id == PointsEntry.user_id)
        .outerjoin(actor, actor.id == PointsEntry.actor_id)
        .order_by(PointsEntry.id)
    )
    for row in _stream(session, stmt):
        yield tuple(_value(v) for v in row)


def redemption_rows(session: Session, status: RedemptionStatus | None = None) -> Iterator[tuple]:
    stmt = (
        select(
            Redemption.id,
            Redemption.created_at,
            User.email,
            User.name,
            Reward.name,
            Redemption.points_cost,
            Redemption.status,
            Redemption.note,
            Redemption.fulfilled_at,
            Redemption.cancelled_at,
        )
        .join(User, User.id == Redemption.user_id)
        .join(Reward, Reward.id == Redemption.reward_id)
        .order_by(Redemption.id)
    )
    if status is not None:
        stmt = stmt.where(Redemption.status == status)
    for row in _stream(session, stmt):
        yield tuple(_value(v) for v in row)


def advocate_rows(session: Session, ids: Select | list[int] | None = None) -> Iterator[tuple]:
    """Advocates (every status), or those ``ids`` selects or lists (the list's filters): a list is read
    BATCH ids at a time."""
    if isinstance(ids, list):
        for i in range(0, len(ids), BATCH):
            yield from advocate_rows(session, select(User.id).where(User.id.in_(ids[i : i + BATCH])))
        return
    stmt = (
        select(
            User.id,
            User.name,
            User.email,
            User.job_title,
            User.company,
            AdvocateProfile.country_code,
            Industry.name,
            User.status,
            User.created_at,
            User.approved_at,
            AdvocateProfile.confirmed_at,
        )
        .outerjoin(AdvocateProfile, AdvocateProfile.user_id == User.id)
        .outerjoin(Industry, Industry.id == AdvocateProfile.industry_id)
        .where(User.role == Role.ADVOCATE)
        .order_by(User.id)
    )
    if ids is not None:
        stmt = stmt.where(User.id.in_(ids))
    for row in _stream(session, stmt):
        yield tuple(_value(v) for v in row)
