"""The audit log: ``record`` appends an event in the caller's transaction; ``find`` and ``export_rows``
read it back filtered (the admin's audit page and its CSV export). The log is append-only (see
portal.models.audit)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import has_request_context, request
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from werkzeug.local import LocalProxy

from portal.models import AuditEvent, User
from portal.services import paging


def record(session: Session, action: str, actor_id: int | None, target: Any = None, **details: Any) -> AuditEvent:
    """Append an audit event in the caller's transaction."""
    if isinstance(target, LocalProxy):  # current_user passed on by a view: record the User it stands for
        target = target._get_current_object()
    event = AuditEvent(
        actor_id=actor_id,
        action=action,
        target_type=type(target).__name__.lower() if target is not None else None,
        target_id=getattr(target, "id", None),
        details=details,
        ip_address=request.remote_addr if has_request_context() else None,
    )
    session.add(event)
    return event


# --- reading the log -------------------------------------------------------------------------------------------------

AUDIT_PER_PAGE = 50
NEWEST_FIRST = (AuditEvent.created_at.desc(), AuditEvent.id.desc())


@dataclass(frozen=True)
class AuditQuery:
    """The audit page's filters. ``actor``: an email (any case) or "system" (no one acted);
    ``action``: exact ("user.suspend") or a family ending in a dot ("user."); ``since``/``until``: UTC
    days, both included."""

    actor: str = ""
    action: str = ""
    target_type: str = ""
    target_id: int | None = None
    since: date | None = None
    until: date | None = None


@dataclass
class AuditPage:
    rows: list[AuditEvent]
    actors: dict[int, User]  # who acted in the page's rows
    page: int
    pages: int
    total: int


def _filtered(q: AuditQuery) -> Select:
    stmt = select(AuditEvent)
    actor = q.actor.strip().lower()
    if actor == "system":
        stmt = stmt.where(AuditEvent.actor_id.is_(None))
    elif actor:
        stmt = stmt.where(AuditEvent.actor_id.in_(select(User.id).where(func.lower(User.email) == actor)))
    action = q.action.strip()
    if action.endswith("."):
        stmt = stmt.where(AuditEvent.action.startswith(action, autoescape=True))
    elif action:
        stmt = stmt.where(AuditEvent.action == action)
    if q.target_type:
        stmt = stmt.where(AuditEvent.target_type == q.target_type.strip().lower())
    if q.target_id is not None:
        stmt = stmt.where(AuditEvent.target_id == q.target_id)
    if q.since:
        stmt = stmt.where(AuditEvent.created_at >= datetime.combine(q.since, time.min, tzinfo=UTC))
    if q.until:
        stmt = stmt.where(AuditEvent.created_at < datetime.combine(q.until + timedelta(days=1), time.min, tzinfo=UTC))
    return stmt


def find(session: Session, q: AuditQuery, page: int = 1, per_page: int | None = None) -> AuditPage:
    """One page of the filtered log, newest first: three queries whatever its size (count, rows, actors).
    A page past the last is the last."""
    found = paging.paginate(session, _filtered(q).order_by(*NEWEST_FIRST), page, per_page or AUDIT_PER_PAGE)
    ids = {e.actor_id for e in found.rows if e.actor_id}
    actors = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return AuditPage(found.rows, actors, found.page, found.pages, found.total)


def actions(session: Session) -> list[str]:
    """The actions recorded so far (for the filter's suggestions)."""
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


EXPORT_HEADER = ("id", "time_utc", "actor_email", "action", "target_type", "target_id", "details", "ip_address")


def export_rows(session: Session, q: AuditQuery, batch: int = 1000) -> Iterator[tuple]:
    """Every filtered event, oldest first, as CSV rows; read ``batch`` at a time (memory stays flat)."""
    stmt = (
        select(AuditEvent, User.email)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .where(AuditEvent.id.in_(_filtered(q).with_only_columns(AuditEvent.id)))
        .order_by(AuditEvent.created_at, AuditEvent.id)
        .execution_options(yield_per=batch)
    )
    for event, email in session.execute(stmt):
        details = json.dumps(event.details or {}, ensure_ascii=False, sort_keys=True, default=str)
        yield (
            event.id,
            event.created_at,
            email or "system",
            event.action,
            event.target_type,
            event.target_id,
            details,
            event.ip_address,
        )
