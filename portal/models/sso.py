"""Single sign-on: the identities at OpenID providers that sign a user in.

An identity is keyed by its provider's issuer and subject (the ``iss`` and ``sub`` claims of the ID
token), never by email: an address can change owner at a provider, a subject cannot."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, utcnow


class Identity(Base):
    __tablename__ = "identities"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(40))  # the configured provider's name when it was linked
    email: Mapped[str | None] = mapped_column(String(254))  # the provider's address for it at link time
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_identities_issuer_subject"),)
