"""Documents waiting to be written to the search index (written in the transaction that changed them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, utcnow


class SearchPending(Base):
    __tablename__ = "search_pending"

    id: Mapped[int] = mapped_column(primary_key=True)
    doc_type: Mapped[str] = mapped_column(String(20))  # advocate | opportunity
    doc_id: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("ix_search_pending_doc", "doc_type", "doc_id"),)
