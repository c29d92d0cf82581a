"""Reporting: what each activity type is worth to the program (a history: a change applies from its day
on, the past keeps its value) and the portfolio's segment targets (portal.services.reporting, .coverage)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, utcnow


class ActivityValue(Base):
    """One value of an activity type, in force from ``effective_from`` (a UTC day) until the next row of
    the same type. Rows are only added: the value of a past day never changes."""

    __tablename__ = "activity_values"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_type_id: Mapped[int] = mapped_column(ForeignKey("activity_types.id", ondelete="CASCADE"))
    value: Mapped[int]  # whole units of ``currency``
    currency: Mapped[str] = mapped_column(String(3))
    effective_from: Mapped[date] = mapped_column(Date)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("value >= 0", name="value_nonneg"),
        Index("ix_activity_values_type_from", "activity_type_id", "effective_from"),
    )


class SegmentTarget(Base):
    """ "Healthcare, EMEA, willing to speak: 10 advocates by 30 June": every dimension is optional (at
    least one is set, checked by the service), ``wanted`` advocates, an optional due day."""

    __tablename__ = "segment_targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    industry_id: Mapped[int | None] = mapped_column(ForeignKey("industries.id", ondelete="SET NULL"))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="SET NULL"))
    country_code: Mapped[str | None] = mapped_column(ForeignKey("countries.code", ondelete="SET NULL"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    size_band_id: Mapped[int | None] = mapped_column(ForeignKey("size_bands.id", ondelete="SET NULL"))
    activity_type_id: Mapped[int | None] = mapped_column(ForeignKey("activity_types.id", ondelete="SET NULL"))
    wanted: Mapped[int]
    due_on: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(default=True, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (CheckConstraint("wanted >= 1", name="wanted_positive"),)


class ReportFigures(Base):
    """The dashboard's figures for one period (and the one before it), computed at ``computed_at`` and kept
    as JSON (``portal.services.reporting.Figures``), so the page reads a long period in a few milliseconds.
    Kept by ``flask reports refresh`` (the current and the previous month, quarter and year) and by an
    admin's "Refresh now"; a row older than REPORT_FIGURES_MAX_AGE, or of another ``version`` of the
    figures' shape, is not read (the page computes the figures live instead)."""

    __tablename__ = "report_figures"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # the day after the period's last day
    version: Mapped[int]
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
    figures: Mapped[str] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("kind", "period_start", "period_end", name="uq_report_figures_period"),)
