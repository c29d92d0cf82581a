"""Invitations (a person the program asks to join: from an import now, a staff nomination later),
the CSV import jobs that create them, and the suppression list of erased addresses."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, str_enum, utcnow


class ImportStatus(str, enum.Enum):
    UPLOADED = "uploaded"
    MAPPED = "mapped"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportJob(Base):
    """One uploaded CSV: its decoded text (kept until the import has run, then cleared), how it was read,
    how its columns map to fields, and the progress and outcome of its import."""

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    content: Mapped[str] = mapped_column(Text, default="")
    encoding: Mapped[str] = mapped_column(String(40))
    delimiter: Mapped[str] = mapped_column(String(1))
    header: Mapped[list[str]] = mapped_column(JSON, default=list)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # csv column -> field
    status: Mapped[ImportStatus] = mapped_column(str_enum(ImportStatus, "import_status"), default=ImportStatus.UPLOADED)
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    invited: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    problems: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    # The running job's last sign of life (each batch): a job "running" without one for a while was cut off
    # (the process ended) and may be resumed (portal.services.imports.interrupted, resume).
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_import_jobs_created_at", "created_at"),)


class Invitation(Base):
    """An invitation to join: single use (only a hash of its token is kept), valid for a while.
    ``profile`` holds what is known of the person's profile: industry_id, country_code, product_ids."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    company: Mapped[str | None] = mapped_column(String(160))
    job_title: Mapped[str | None] = mapped_column(String(160))
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(20))  # "import"; "nomination" later
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    import_job_id: Mapped[int | None] = mapped_column(ForeignKey("import_jobs.id", ondelete="SET NULL"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]  # the one reminder (after 7 days), then nothing
    # The reminder's own link (the first link keeps working: only hashes are kept, so it cannot be resent).
    reminder_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    accepted_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # One open invitation per address, closed in the database (two imports at once cannot both invite);
    # an expired one is deleted when the address is invited again (invitations.create_many).
    __table_args__ = (
        Index(
            "uq_invitations_open_email",
            "email",
            unique=True,
            sqlite_where=text("accepted_at IS NULL"),
            postgresql_where=text("accepted_at IS NULL"),
        ),
    )


class SuppressedAddress(Base):
    """An address never to invite again (its owner deleted their account): only a hash of it is kept."""

    __tablename__ = "suppressed_addresses"

    email_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
