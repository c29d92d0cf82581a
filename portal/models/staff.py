"""The staff workspace's records: nominations (a staff member tells the program about a happy customer)
and reference requests (a staff member asks for the right advocate for a deal, by a date).

A reference request owns a private opportunity (``Opportunity.private``: never in a feed, a search or a
digest; only its participants see it) whose participations are the asks: an ask is a participation in
the ``asked`` state, accepted (approved, with a seat: ``advocates_needed`` is the capacity), declined or
expired. So an accepted ask counts against the advocate's limits exactly like any participation, its
completion credits the activity type's points once through the ledger, and it shows on the advocate's
timeline, all by the code that already does it for opportunities."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.advocates import ActivityType
from portal.models.base import Base, str_enum, utcnow
from portal.models.opportunities import Opportunity


class NominationStatus(str, enum.Enum):
    PENDING = "pending"  # waiting for an admin's review
    INVITED = "invited"  # accepted: the nominee has an invitation
    JOINED = "joined"  # the nominee signed up from it
    DECLINED = "declined"  # an admin declined it, with a reason the nominator sees


class Nomination(Base):
    __tablename__ = "nominations"

    id: Mapped[int] = mapped_column(primary_key=True)
    nominator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    email: Mapped[str] = mapped_column(String(254), index=True)  # normalised
    name: Mapped[str] = mapped_column(String(120))
    company: Mapped[str] = mapped_column(String(160), default="")
    job_title: Mapped[str] = mapped_column(String(160), default="")
    reason: Mapped[str] = mapped_column(Text, default="")  # what they achieved, what they could do
    account_owner: Mapped[str] = mapped_column(String(120), default="")
    status: Mapped[NominationStatus] = mapped_column(
        str_enum(NominationStatus, "nomination_status", 12), default=NominationStatus.PENDING
    )
    decline_reason: Mapped[str] = mapped_column(String(1000), default="")
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None]
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id", ondelete="SET NULL"), index=True)
    joined_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    joined_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_nominations_status_created", "status", "created_at"),)


class ReferenceStatus(str, enum.Enum):
    OPEN = "open"  # nobody asked yet (or every ask was declined or expired)
    ASKED = "asked"  # asks are out, fewer accepted than needed
    ACCEPTED = "accepted"  # as many advocates accepted as needed
    SCHEDULED = "scheduled"  # the requester set the day it happens
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ReferenceOutcome(str, enum.Enum):
    WON = "won"
    LOST = "lost"
    STILL_OPEN = "still_open"


class ReferenceRequest(Base):
    __tablename__ = "reference_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    activity_type_id: Mapped[int] = mapped_column(ForeignKey("activity_types.id"))
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id", ondelete="CASCADE"), unique=True)
    # What they need: each criterion optional; topics are tag ids; ``need`` is free text.
    industry_id: Mapped[int | None] = mapped_column(ForeignKey("industries.id", ondelete="SET NULL"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="SET NULL"))
    size_band_id: Mapped[int | None] = mapped_column(ForeignKey("size_bands.id", ondelete="SET NULL"))
    topic_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    need: Mapped[str] = mapped_column(Text, default="")
    account_name: Mapped[str] = mapped_column(String(160))
    crm_opportunity_id: Mapped[str] = mapped_column(String(64), default="")
    deal_amount: Mapped[int | None]  # whole units of ``currency``
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    due_date: Mapped[date] = mapped_column(Date)
    advocates_needed: Mapped[int] = mapped_column(default=1)
    status: Mapped[ReferenceStatus] = mapped_column(
        str_enum(ReferenceStatus, "reference_status", 12), default=ReferenceStatus.OPEN
    )
    scheduled_for: Mapped[datetime | None]  # UTC
    scheduled_tz: Mapped[str | None] = mapped_column(String(64))  # the zone the requester gave the time in
    fulfilled_at: Mapped[datetime | None]  # when as many advocates had accepted as needed (time to fulfil)
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str] = mapped_column(String(1000), default="")
    outcome: Mapped[ReferenceOutcome | None] = mapped_column(str_enum(ReferenceOutcome, "reference_outcome", 12))
    final_amount: Mapped[int | None]
    outcome_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    activity_type: Mapped[ActivityType] = relationship(lazy="joined")
    opportunity: Mapped[Opportunity] = relationship()

    __table_args__ = (
        CheckConstraint("advocates_needed >= 1 AND advocates_needed <= 20", name="needed_range"),
        CheckConstraint("deal_amount IS NULL OR deal_amount >= 0", name="amount_nonneg"),
        CheckConstraint("final_amount IS NULL OR final_amount >= 0", name="final_nonneg"),
        Index("ix_reference_requests_status_due", "status", "due_date"),
        Index("ix_reference_requests_created_at", "created_at"),
    )
