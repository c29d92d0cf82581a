"""The admin home: what needs a decision today.

Each queue is a count with the filtered list that holds it. Queues of decisions (registrations,
requests for a place, reward orders) also say how long their oldest item has waited and are overdue
once it has waited longer than the program's service level (a program setting, SERVICE_LEVEL_DAYS by
default). The other two (stale profiles, advocates at their limit) are states, not waits.

Each count asks the rule's own home: who is stale (profiles.stale_condition), who is at their limit
(fatigue.statuses, as the search index holds it: at_limit_count); a fixed number of queries whatever
the program's size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from portal.models import (
    AdvocateProfile,
    Nomination,
    Participation,
    ParticipationStatus,
    Redemption,
    RedemptionStatus,
    Role,
    Status,
    User,
    utcnow,
)
from portal.services import accounts, nominations, profiles, settings
from portal.services.errors import DomainError
from search import service as search_service

SERVICE_LEVEL_KEY = "service_level_days"
SERVICE_LEVEL_DAYS = settings.BY_KEY[SERVICE_LEVEL_KEY].default
SERVICE_LEVEL_RANGE = (settings.BY_KEY[SERVICE_LEVEL_KEY].low, settings.BY_KEY[SERVICE_LEVEL_KEY].high)


def service_level_days(session: Session) -> int:
    """Days a decision may wait before its queue is marked overdue (a program setting)."""
    return settings.get(session, SERVICE_LEVEL_KEY)


def set_service_level(session: Session, days: int, actor_id: int) -> None:
    low, high = SERVICE_LEVEL_RANGE
    if isinstance(days, bool) or not isinstance(days, int) or not low <= days <= high:
        raise DomainError(f"The service level must be between {low} and {high} days.")
    settings.save(session, {SERVICE_LEVEL_KEY: days}, actor_id)


@dataclass
class Queue:
    key: str
    label: str
    count: int
    endpoint: str  # the admin list that holds it, filtered
    args: dict = field(default_factory=dict)
    oldest_at: datetime | None = None  # decisions only: when the oldest waiting item came in
    overdue: bool = False

    def waited_days(self, now: datetime) -> int | None:
        return None if self.oldest_at is None else (now - self.oldest_at).days


def _waiting(session: Session, model: type, created: InstrumentedAttribute, *where: Any) -> tuple[int, datetime | None]:
    count, oldest = session.execute(select(func.count(), func.min(created)).select_from(model).where(*where)).one()
    return count or 0, oldest


def today(session: Session, now: datetime | None = None) -> list[Queue]:
    now = now or utcnow()
    due = now - timedelta(days=service_level_days(session))
    queues = []
    for key, label, endpoint, args, (count, oldest) in (
        (
            "registrations",
            "Registrations awaiting approval",
            "admin.pending",
            {},
            _waiting(session, User, User.created_at, *accounts.AWAITING_APPROVAL),
        ),
        (
            "requests",
            "Requests for a place waiting",
            "admin.opportunities_list",
            {"waiting": "1"},
            _waiting(
                session,
                Participation,
                Participation.requested_at,
                Participation.status == ParticipationStatus.REQUESTED,
            ),
        ),
        (
            "redemptions",
            "Reward orders to fulfil",
            "admin.redemptions_queue",
            {"status": "requested"},
            _waiting(session, Redemption, Redemption.created_at, Redemption.status == RedemptionStatus.REQUESTED),
        ),
        (
            "nominations",
            "Nominations to review",
            "admin.nominations",
            {},
            _waiting(session, Nomination, Nomination.created_at, *nominations.WAITING),
        ),
    ):
        queues.append(Queue(key, label, count, endpoint, args, oldest, bool(count and oldest and oldest <= due)))
    active = select(User.id).where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE)
    stale = active.outerjoin(AdvocateProfile, AdvocateProfile.user_id == User.id).where(profiles.stale_condition(now))
    queues.append(
        Queue(
            "stale",
            "Stale profiles",
            session.scalar(select(func.count()).select_from(stale.subquery())) or 0,
            "admin.advocates",
            {"freshness": "stale"},
        )
    )
    queues.append(
        Queue(
            "at_limit", "Advocates at their limit", at_limit_count(session), "admin.advocates", {"fatigue": "at_limit"}
        )
    )
    return queues


def at_limit_count(session: Session) -> int:
    """Active advocates at their limit: search.service.advocate_ids_with_fatigue, which the advocate list's
    fatigue filter (where the count links) asks too, so the two agree. The index's fatigue facet holds each
    advocate's fatigue.statuses, refreshed on every change that moves it and by the daily 'flask search
    sync' (computing it here for 50,000 advocates takes seconds); pauses and blackouts are read live."""
    return len(search_service.advocate_ids_with_fatigue(session, "at_limit"))
