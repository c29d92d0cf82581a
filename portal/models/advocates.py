"""Advocate self-service: profile, the lists admins manage, preferences, availability."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Column, Date, ForeignKey, String, Table, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, str_enum, utcnow

# --- the lists that admins manage (portal.services.lists) ------------------------------------------------------------


class _ListItem:
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)

    def __str__(self) -> str:
        return self.name


class Industry(_ListItem, Base):
    __tablename__ = "industries"


class Product(_ListItem, Base):
    __tablename__ = "products"


class SizeBand(_ListItem, Base):
    """Company size band, e.g. "1,000-4,999 employees"."""

    __tablename__ = "size_bands"


class Region(_ListItem, Base):
    __tablename__ = "regions"


class Country(Base):
    __tablename__ = "countries"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)  # ISO 3166-1 alpha-2
    name: Mapped[str] = mapped_column(String(80), unique=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)

    region: Mapped[Region] = relationship(lazy="joined")

    def __str__(self) -> str:
        return self.name


class ActivityType(Base):
    """speaking, review, reference call, ... (a table: admins may add)."""

    __tablename__ = "activity_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    default_points: Mapped[int] = mapped_column(default=100)
    active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)

    def __str__(self) -> str:
        return self.name


# --- the profile ---------------------------------------------------------------------------------------


class Digest(str, enum.Enum):
    OFF = "off"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class TagKind(str, enum.Enum):
    USE_CASE = "use_case"
    TOPIC = "topic"


profile_products = Table(
    "profile_products",
    Base.metadata,
    Column("user_id", ForeignKey("advocate_profiles.user_id", ondelete="CASCADE"), primary_key=True),
    Column("product_id", ForeignKey("products.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[TagKind] = mapped_column(str_enum(TagKind, "tag_kind", 10))
    name: Mapped[str] = mapped_column(String(40))
    slug: Mapped[str] = mapped_column(String(40))
    # Retired: kept on the profiles that have it (and in search), no longer suggested or taken for new choices.
    active: Mapped[bool] = mapped_column(default=True, server_default=true())

    __table_args__ = (UniqueConstraint("kind", "slug", name="uq_tags_kind_slug"),)

    def __str__(self) -> str:
        return self.name


profile_tags = Table(
    "profile_tags",
    Base.metadata,
    Column("user_id", ForeignKey("advocate_profiles.user_id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class AdvocateProfile(Base):
    __tablename__ = "advocate_profiles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    industry_id: Mapped[int | None] = mapped_column(ForeignKey("industries.id", ondelete="SET NULL"), index=True)
    size_band_id: Mapped[int | None] = mapped_column(ForeignKey("size_bands.id", ondelete="SET NULL"), index=True)
    country_code: Mapped[str | None] = mapped_column(ForeignKey("countries.code", ondelete="SET NULL"), index=True)
    story: Mapped[str] = mapped_column(Text, default="")
    linkedin_url: Mapped[str | None] = mapped_column(String(255))
    show_in_directory: Mapped[bool] = mapped_column(default=True)
    show_on_leaderboard: Mapped[bool] = mapped_column(default=True)
    # Communication
    digest: Mapped[Digest] = mapped_column(str_enum(Digest, "digest_period", 10), default=Digest.MONTHLY)
    notify_opportunities: Mapped[bool] = mapped_column(default=True)
    notify_reminders: Mapped[bool] = mapped_column(default=True)
    notify_news: Mapped[bool] = mapped_column(default=True)
    # Availability: the advocate's own limits, in a form queries can use
    max_asks_per_month: Mapped[int | None]
    max_asks_per_quarter: Mapped[int | None]
    paused_until: Mapped[date | None] = mapped_column(Date, index=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Freshness
    confirmed_at: Mapped[datetime | None] = mapped_column(index=True)
    stale_reminder_sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user = relationship("User", back_populates="profile")
    industry: Mapped[Industry | None] = relationship(lazy="joined")
    size_band: Mapped[SizeBand | None] = relationship(lazy="joined")
    country: Mapped[Country | None] = relationship(lazy="joined")
    products: Mapped[list[Product]] = relationship(secondary=profile_products, order_by=Product.position)
    tags: Mapped[list[Tag]] = relationship(secondary=profile_tags, order_by=Tag.name)
    preferences: Mapped[list[ActivityPreference]] = relationship(cascade="all, delete-orphan", back_populates="profile")
    blackouts: Mapped[list[Blackout]] = relationship(
        cascade="all, delete-orphan", back_populates="profile", order_by="Blackout.starts_on"
    )

    __table_args__ = (
        CheckConstraint("max_asks_per_month IS NULL OR max_asks_per_month >= 0", name="asks_month_nonneg"),
        CheckConstraint("max_asks_per_quarter IS NULL OR max_asks_per_quarter >= 0", name="asks_quarter_nonneg"),
    )

    @property
    def region(self) -> Region | None:
        return self.country.region if self.country else None

    @property
    def use_cases(self) -> list[Tag]:
        return [t for t in self.tags if t.kind == TagKind.USE_CASE]

    @property
    def topics(self) -> list[Tag]:
        return [t for t in self.tags if t.kind == TagKind.TOPIC]


class ActivityPreference(Base):
    __tablename__ = "activity_preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("advocate_profiles.user_id", ondelete="CASCADE"), primary_key=True)
    activity_type_id: Mapped[int] = mapped_column(
        ForeignKey("activity_types.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    opted_in: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(String(200), default="")

    profile: Mapped[AdvocateProfile] = relationship(back_populates="preferences")
    activity_type: Mapped[ActivityType] = relationship(lazy="joined")


class Blackout(Base):
    __tablename__ = "blackouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("advocate_profiles.user_id", ondelete="CASCADE"), index=True)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date, index=True)
    note: Mapped[str] = mapped_column(String(200), default="")

    profile: Mapped[AdvocateProfile] = relationship(back_populates="blackouts")

    __table_args__ = (CheckConstraint("ends_on >= starts_on", name="ends_after_start"),)
