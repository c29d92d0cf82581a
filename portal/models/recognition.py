"""Recognition: the points ledger (append-only), cached balances, badges, rewards and redemptions."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Session, mapped_column, object_session, relationship

from portal.models.accounts import Status, User
from portal.models.base import Base, str_enum, utcnow


class EntryKind(str, enum.Enum):
    EARNED = "earned"
    REDEEMED = "redeemed"
    ADJUSTED = "adjusted"
    REVERSED = "reversed"
    EXPIRED = "expired"


class EntrySource(str, enum.Enum):
    PARTICIPATION = "participation"
    REDEMPTION = "redemption"
    REFERRAL = "referral"
    PROFILE = "profile"
    MANUAL = "manual"


class PointsEntry(Base):
    """One line of the ledger. Never updated or deleted: a mistake is undone by a reversal entry."""

    __tablename__ = "points_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    amount: Mapped[int]
    kind: Mapped[EntryKind] = mapped_column(str_enum(EntryKind, "points_entry_kind", 12))
    source: Mapped[EntrySource] = mapped_column(str_enum(EntrySource, "points_entry_source", 14))
    source_id: Mapped[int | None]
    # RESTRICT, not SET NULL: the database must never rewrite a ledger row (triggers refuse it anyway).
    activity_type_id: Mapped[int | None] = mapped_column(ForeignKey("activity_types.id", ondelete="RESTRICT"))
    # Earned and adjusted points count toward levels and leaderboards; spending does not.
    counts_toward_lifetime: Mapped[bool]
    reason: Mapped[str] = mapped_column(String(255))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("points_entries.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        Index("ix_points_entries_user_created", "user_id", "created_at"),
        Index("ix_points_entries_created", "created_at"),
    )

    @property
    def display_reason(self) -> str:
        """The reason as pages show it. Referral entries store no name (the ledger outlives an erased
        account); the referred colleague's name is looked up when drawn, if the account still exists."""
        if self.source == EntrySource.REFERRAL and self.kind == EntryKind.EARNED and self.source_id is not None:
            session = object_session(self)
            referred = session.get(User, self.source_id) if session is not None else None
            if referred is not None and referred.status != Status.DELETED:
                return f"Referral: {referred.name} joined"
        return self.reason


class LedgerIsAppendOnly(RuntimeError):
    """Code tried to change or delete a ledger row: undo a mistake with a reversal entry instead."""


@event.listens_for(Session, "before_flush")
def _refuse_ledger_rewrites(session, flush_context, instances) -> None:
    """The ORM half of the append-only rule (triggers in the database are the other half)."""
    for obj in session.deleted:
        if isinstance(obj, PointsEntry):
            raise LedgerIsAppendOnly(f"Ledger entry {obj.id} cannot be deleted; add a reversal entry instead.")
    for obj in session.dirty:
        if isinstance(obj, PointsEntry) and session.is_modified(obj, include_collections=False):
            raise LedgerIsAppendOnly(f"Ledger entry {obj.id} cannot be changed; add a reversal entry instead.")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_ledger_rewrites(state) -> None:
    if (
        (state.is_update or state.is_delete)
        and state.bind_mapper is not None
        and state.bind_mapper.class_ is PointsEntry
    ):
        raise LedgerIsAppendOnly("Ledger entries cannot be updated or deleted; add a reversal entry instead.")


class PointsBalance(Base):
    """Cached sums of the ledger, changed in the same transaction as each entry (see `flask points verify`)."""

    __tablename__ = "points_balances"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True)
    balance: Mapped[int] = mapped_column(default=0)
    lifetime_earned: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (CheckConstraint("balance >= 0", name="balance_nonnegative"),)


class Badge(Base):
    """A badge and the rule that earns it: data, not code paths (rule = {"metric": ..., params})."""

    __tablename__ = "badges"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(String(255))
    icon: Mapped[str] = mapped_column(String(8), default="★")
    rule: Mapped[dict] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)


class UserBadge(Base):
    __tablename__ = "user_badges"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    badge_id: Mapped[int] = mapped_column(ForeignKey("badges.id", ondelete="CASCADE"))
    awarded_at: Mapped[datetime] = mapped_column(default=utcnow)
    awarded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(255), default="")

    badge: Mapped[Badge] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("user_id", "badge_id", name="uq_user_badges_user_badge"),)


class Reward(Base):
    __tablename__ = "rewards"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    points_cost: Mapped[int]
    stock: Mapped[int | None]  # None: unlimited
    per_advocate_limit: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint("points_cost > 0", name="cost_positive"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_nonnegative"),
        CheckConstraint("per_advocate_limit IS NULL OR per_advocate_limit > 0", name="limit_positive"),
    )


class RedemptionStatus(str, enum.Enum):
    REQUESTED = "requested"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class Redemption(Base):
    __tablename__ = "redemptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id", ondelete="RESTRICT"), index=True)
    points_cost: Mapped[int]
    status: Mapped[RedemptionStatus] = mapped_column(
        str_enum(RedemptionStatus, "redemption_status", 12), default=RedemptionStatus.REQUESTED
    )
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    fulfilled_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    reward: Mapped[Reward] = relationship(lazy="joined")
    user = relationship("User", foreign_keys=[user_id])

    __table_args__ = (Index("ix_redemptions_status_created", "status", "created_at"),)
