"""Opportunities, participations (one per advocate and opportunity), program settings, digests."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, Date, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.advocates import ActivityType, Industry, Product, Region, SizeBand
from portal.models.base import Base, str_enum, utcnow


class OpportunityStatus(str, enum.Enum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"
    ARCHIVED = "archived"


class SelectionMode(str, enum.Enum):
    FIRST_COME = "first_come"  # a request takes a seat at once while seats remain
    SELECTION = "selection"  # requests wait; an admin approves up to capacity


def _targeting(name: str, target: str) -> Table:
    return Table(
        f"opportunity_{name}",
        Base.metadata,
        Column("opportunity_id", ForeignKey("opportunities.id", ondelete="CASCADE"), primary_key=True),
        Column(
            f"{name[:-1] if name != 'industries' else 'industry'}_id",
            ForeignKey(f"{target}.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        ),
    )


opportunity_industries = _targeting("industries", "industries")
opportunity_products = _targeting("products", "products")
opportunity_regions = _targeting("regions", "regions")
opportunity_size_bands = _targeting("size_bands", "size_bands")


class Opportunity(Base):
    __tablename__ = "opportunities"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_type_id: Mapped[int] = mapped_column(ForeignKey("activity_types.id"), index=True)
    title: Mapped[str] = mapped_column(String(160))
    description: Mapped[str] = mapped_column(Text, default="")
    capacity: Mapped[int | None]  # None: unlimited
    seats_taken: Mapped[int] = mapped_column(default=0)
    points: Mapped[int | None]  # None: the activity type's default
    event_date: Mapped[date | None] = mapped_column(Date)
    deadline: Mapped[date | None] = mapped_column(Date)
    is_virtual: Mapped[bool] = mapped_column(default=True)
    location: Mapped[str] = mapped_column(String(160), default="")
    external_url: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[OpportunityStatus] = mapped_column(
        str_enum(OpportunityStatus, "opportunity_status", 12), default=OpportunityStatus.DRAFT
    )
    selection_mode: Mapped[SelectionMode] = mapped_column(
        str_enum(SelectionMode, "selection_mode", 12), default=SelectionMode.SELECTION
    )
    # Advisory boards: members serve for a term
    term_start: Mapped[date | None] = mapped_column(Date)
    term_end: Mapped[date | None] = mapped_column(Date)
    opened_at: Mapped[datetime | None] = mapped_column(index=True)
    # A reference request's own opportunity: never in a feed, a search or a digest; only its participants
    # (the advocates asked) see it (portal.models.staff).
    private: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    activity_type: Mapped[ActivityType] = relationship(lazy="joined")
    industries: Mapped[list[Industry]] = relationship(secondary=opportunity_industries)
    products: Mapped[list[Product]] = relationship(secondary=opportunity_products)
    regions: Mapped[list[Region]] = relationship(secondary=opportunity_regions)
    size_bands: Mapped[list[SizeBand]] = relationship(secondary=opportunity_size_bands)

    __table_args__ = (
        CheckConstraint("capacity IS NULL OR capacity >= 1", name="capacity_positive"),
        CheckConstraint("seats_taken >= 0 AND (capacity IS NULL OR seats_taken <= capacity)", name="seats_within"),
        CheckConstraint("points IS NULL OR points >= 0", name="points_nonneg"),
        CheckConstraint("term_end IS NULL OR term_start IS NULL OR term_end >= term_start", name="term_order"),
        Index("ix_opportunities_status_deadline", "status", "deadline"),
    )

    @property
    def seats_left(self) -> int | None:
        return None if self.capacity is None else max(self.capacity - self.seats_taken, 0)

    @property
    def effective_points(self) -> int:
        return self.points if self.points is not None else self.activity_type.default_points

    @property
    def engagement_date(self) -> date | None:
        return self.event_date or self.term_start or self.deadline


class ParticipationStatus(str, enum.Enum):
    REQUESTED = "requested"
    APPROVED = "approved"
    COMPLETED = "completed"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    NO_SHOW = "no_show"
    ASKED = "asked"  # the program asked the advocate (a reference request): they accept or decline
    EXPIRED = "expired"  # an ask not answered in time


ACTIVE_STATUSES = (ParticipationStatus.REQUESTED, ParticipationStatus.APPROVED)
ENGAGED_STATUSES = (ParticipationStatus.APPROVED, ParticipationStatus.COMPLETED)


class Participation(Base):
    __tablename__ = "participations"

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[ParticipationStatus] = mapped_column(
        str_enum(ParticipationStatus, "participation_status", 12), default=ParticipationStatus.REQUESTED
    )
    holds_seat: Mapped[bool] = mapped_column(default=False)
    message: Mapped[str] = mapped_column(String(1000), default="")
    admin_message: Mapped[str] = mapped_column(String(1000), default="")
    override_reason: Mapped[str | None] = mapped_column(String(500))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the advocate was engaged (seat approved): what the fatigue rules count.
    engaged_at: Mapped[datetime | None] = mapped_column(index=True)
    decided_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # An ask (status asked): who asked, when the advocate answered, why they declined (optional), and the
    # advocate's note on how it went once completed.
    asked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    answered_at: Mapped[datetime | None]
    answer_reason: Mapped[str] = mapped_column(String(500), default="")
    advocate_note: Mapped[str] = mapped_column(String(1000), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    opportunity: Mapped[Opportunity] = relationship(lazy="joined")
    user = relationship("User", foreign_keys=[user_id])

    __table_args__ = (
        UniqueConstraint("opportunity_id", "user_id", name="uq_participations_opportunity_user"),
        # One advocate's participations by status, and their completed ones in a window of days (the report's
        # reward return); it leads with (user_id, status) as 0004's ix_participations_user_status did (0018).
        Index("ix_participations_user_status_completed", "user_id", "status", "completed_at"),
        # Requests waiting per opportunity (the admin list) without reading every participation.
        Index("ix_participations_status_opportunity", "status", "opportunity_id"),
        # The program report: activities completed and requests made in a period, read from the index alone
        # (covering: no table row is read); the status first, so that an equality and a range use one index
        # (0018, in place of 0016's single-column indexes on completed_at and requested_at).
        Index("ix_participations_status_completed", "status", "completed_at", "user_id", "opportunity_id"),
        Index("ix_participations_requested", "requested_at", "status", "opportunity_id"),
    )


class ProgramSetting(Base):
    """Program policy, editable by admins (fatigue limits, ...): one row per key, integer values."""

    __tablename__ = "program_settings"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class DigestDelivery(Base):
    """One digest per advocate and period (e.g. weekly 2026-W48): a second run sends nothing."""

    __tablename__ = "digest_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(10))
    period_key: Mapped[str] = mapped_column(String(12))
    opportunity_count: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("user_id", "period", "period_key", name="uq_digest_user_period"),
        Index("ix_digest_user_sent", "user_id", "sent_at"),
    )
