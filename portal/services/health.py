"""What the admin's health page says about the running portal: where the rate limits are counted, the
database, the outbox. Read-only facts, nothing secret (no credentials, no addresses); the search index
reports on itself (``search.service.health``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.config import LimiterStorage, limiter_storage
from portal.models import OutboxMessage, OutboxStatus


@dataclass(frozen=True)
class RateLimits:
    storage: LimiterStorage
    enabled: bool
    single_process: bool  # RATELIMIT_SINGLE_PROCESS: declared to run as one process
    auth_limit: str

    @property
    def counted_once(self) -> bool:
        """Every worker's requests count toward one limit (a shared storage, or a single process)."""
        return self.storage.shared or self.single_process


@dataclass(frozen=True)
class Database:
    backend: str  # SQLAlchemy's dialect name: "postgresql", "sqlite"
    server_version: str | None


@dataclass(frozen=True)
class Outbox:
    counts: dict[str, int]  # by status ("queued", "sending", "sent", "failed"), 0 included
    oldest_queued: datetime | None  # when the longest-waiting message was queued


def rate_limits(config: Mapping[str, Any]) -> RateLimits:
    return RateLimits(
        storage=limiter_storage(config.get("RATELIMIT_STORAGE_URI")),
        enabled=bool(config.get("RATELIMIT_ENABLED", True)),
        single_process=config.get("RATELIMIT_SINGLE_PROCESS") is True,
        auth_limit=str(config.get("AUTH_RATE_LIMIT", "")),
    )


def database(session: Session) -> Database:
    dialect = session.get_bind().dialect
    version = getattr(dialect, "server_version_info", None)
    return Database(dialect.name, ".".join(str(part) for part in version) if version else None)


def outbox(session: Session) -> Outbox:
    rows = session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
    counts = {status.value: 0 for status in OutboxStatus} | {status.value: n for status, n in rows}
    queued = OutboxMessage.status == OutboxStatus.QUEUED
    oldest = session.scalar(select(func.min(OutboxMessage.created_at)).where(queued))
    return Outbox(counts, oldest)
