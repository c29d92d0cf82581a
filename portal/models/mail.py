"""The outbox: every email is a row written in the transaction that causes it, sent after commit."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, str_enum, utcnow


class OutboxStatus(str, enum.Enum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # gave up after OUTBOX_MAX_ATTEMPTS


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(255))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(80))
    headers: Mapped[dict | None] = mapped_column(JSON)  # extra headers, e.g. List-Unsubscribe
    # The Message-ID header, made once when the message is queued and sent with every attempt: a message
    # sent again after a crash between the SMTP hand-over and the status write is recognisably the same.
    message_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[int | None] = mapped_column(index=True)
    # The person a message is about when that is not its recipient (admins told of an applicant): their
    # erasure erases it too.
    about_user_id: Mapped[int | None] = mapped_column(index=True)
    status: Mapped[OutboxStatus] = mapped_column(
        str_enum(OutboxStatus, "outbox_status", 10), default=OutboxStatus.QUEUED
    )
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)
