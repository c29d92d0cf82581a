"""One advocate's timeline: everything that happened with this person, newest first, and who did it.

Sources: the account (sign-up, approval), every ask made of them (participations: requested, decided,
completed, with the decision's author), points entries, badges, reward orders (ordered, fulfilled,
cancelled), emails sent to them (subject and time, never the body), admins' internal notes, and the
audit log's events by
them or about them, their participations and their orders (profile confirmations, suspensions,
overrides, notes, ...). Reference requests will add theirs here.

A page is ``limit`` entries older than ``before``: each source is asked for at most ``limit`` of its
newest such rows (one query each, a fixed number whatever the history's length), the union is sorted
and cut, and the last entry's time is the next page's ``before``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from portal.models import (
    AdvocateNote,
    AuditEvent,
    Badge,
    Opportunity,
    OutboxMessage,
    OutboxStatus,
    Participation,
    ParticipationStatus,
    PointsEntry,
    Redemption,
    Reward,
    User,
    UserBadge,
)
from portal.services import points

PER_PAGE = 50
# A decision as the participation's status tells it now (approved ones may since be completed or no-shows).
DECIDED = {
    ParticipationStatus.DECLINED: "Declined",
    ParticipationStatus.WITHDRAWN: "Withdrawn",
    # an ask still unanswered when its reference request was completed (references.complete closes it)
    ParticipationStatus.EXPIRED: "No longer needed",
}


@dataclass
class Entry:
    at: datetime
    kind: str  # account, ask, points, badge, order, email, audit
    text: str
    actor_id: int | None = None  # who did it (None: the system or the advocate themself, as ``by_self`` says)
    by_self: bool = False
    details: dict = field(default_factory=dict)
    reversible_entry: int | None = None  # a ledger entry an admin may still reverse (points.reversible)


@dataclass
class Timeline:
    entries: list[Entry]
    actors: dict[int, User]
    next_before: datetime | None  # the next (older) page's cursor; None on the last page


def _newest(stmt: Select, column: InstrumentedAttribute, before: datetime | None, limit: int) -> Select:
    if before is not None:
        stmt = stmt.where(column < before)
    return stmt.order_by(column.desc()).limit(limit)


def timeline(session: Session, user_id: int, before: datetime | None = None, limit: int | None = None) -> Timeline:
    limit = limit or PER_PAGE
    user = session.get(User, user_id)
    entries: list[Entry] = []
    if user is None:
        return Timeline([], {}, None)
    if before is None or user.created_at < before:
        entries.append(Entry(user.created_at, "account", "Signed up", by_self=True))
    if user.approved_at and (before is None or user.approved_at < before):
        entries.append(Entry(user.approved_at, "account", "Approved"))

    # Asks: each participation's moments (requested, decided, completed) are entries of their own.
    asks = select(Participation, Opportunity.title).join(Opportunity, Opportunity.id == Participation.opportunity_id)
    asks = asks.where(Participation.user_id == user_id)
    for column, what in (
        (Participation.requested_at, "requested"),
        (Participation.decided_at, "decided"),
        (Participation.completed_at, "completed"),
    ):
        for p, title in session.execute(_newest(asks.where(column.is_not(None)), column, before, limit)):
            if what == "requested" and p.asked_by_id:  # a reference request's ask: the program asked them
                details = {"override": p.override_reason} if p.override_reason else {}
                entries.append(Entry(p.requested_at, "ask", f"Asked: {title}", actor_id=p.asked_by_id, details=details))
            elif what == "requested":
                entries.append(Entry(p.requested_at, "ask", f"Asked for a place: {title}", by_self=True))
            elif what == "decided" and p.answered_at and p.decided_by_id is None:  # they accepted an ask
                entries.append(Entry(p.decided_at, "ask", f"Accepted the ask: {title}", by_self=True))
            elif what == "decided":
                entries.append(
                    Entry(
                        p.decided_at,
                        "ask",
                        f"{DECIDED.get(p.status, 'Approved')}: {title}",
                        actor_id=p.decided_by_id,
                        details={"override": p.override_reason} if p.override_reason else {},
                    )
                )
            else:
                entries.append(Entry(p.completed_at, "ask", f"Completed: {title}"))

    ledger = _newest(select(PointsEntry).where(PointsEntry.user_id == user_id), PointsEntry.created_at, before, limit)
    ledger_entries = list(session.scalars(ledger))
    can_reverse = points.reversible(session, [e.id for e in ledger_entries])
    for e in ledger_entries:
        entries.append(
            Entry(
                e.created_at,
                "points",
                f"{e.amount:+,} points: {e.reason}",
                actor_id=e.actor_id,
                reversible_entry=e.id if e.id in can_reverse else None,
            )
        )

    earned = select(UserBadge, Badge.name).join(Badge, Badge.id == UserBadge.badge_id)
    earned = _newest(earned.where(UserBadge.user_id == user_id), UserBadge.awarded_at, before, limit)
    for ub, name in session.execute(earned):
        entries.append(Entry(ub.awarded_at, "badge", f"Badge: {name}", actor_id=ub.awarded_by_id))

    orders = select(Redemption, Reward.name).join(Reward, Reward.id == Redemption.reward_id)
    orders = orders.where(Redemption.user_id == user_id)
    for column, what in (
        (Redemption.created_at, "Ordered"),
        (Redemption.fulfilled_at, "Order fulfilled"),
        (Redemption.cancelled_at, "Order cancelled"),
    ):
        for r, reward in session.execute(_newest(orders.where(column.is_not(None)), column, before, limit)):
            at = getattr(r, column.key)
            by = None if what == "Ordered" else r.handled_by_id
            entries.append(Entry(at, "order", f"{what}: {reward}", actor_id=by, by_self=what == "Ordered"))

    mail = select(OutboxMessage.sent_at, OutboxMessage.subject).where(
        OutboxMessage.user_id == user_id, OutboxMessage.status == OutboxStatus.SENT
    )
    for sent_at, subject in session.execute(_newest(mail, OutboxMessage.sent_at, before, limit)):
        entries.append(Entry(sent_at, "email", f"Email sent: {subject}"))

    notes = select(AdvocateNote).where(AdvocateNote.user_id == user_id)
    for n in session.scalars(_newest(notes, AdvocateNote.created_at, before, limit)):
        entries.append(Entry(n.created_at, "note", f"Note: {n.body}", actor_id=n.author_id))

    mine = select(Participation.id).where(Participation.user_id == user_id)
    my_orders = select(Redemption.id).where(Redemption.user_id == user_id)
    about = select(AuditEvent).where(
        or_(
            AuditEvent.actor_id == user_id,
            (AuditEvent.target_type == "user") & (AuditEvent.target_id == user_id),
            (AuditEvent.target_type == "participation") & AuditEvent.target_id.in_(mine),
            (AuditEvent.target_type == "redemption") & AuditEvent.target_id.in_(my_orders),
        )
    )
    for ev in session.scalars(_newest(about, AuditEvent.created_at, before, limit)):
        entries.append(
            Entry(
                ev.created_at,
                "audit",
                ev.action,
                actor_id=ev.actor_id if ev.actor_id != user_id else None,
                by_self=ev.actor_id == user_id,
                details=dict(ev.details or {}),
            )
        )

    entries.sort(key=lambda e: e.at, reverse=True)
    more = len(entries) > limit
    entries = entries[:limit]
    ids = {e.actor_id for e in entries if e.actor_id}
    actors = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return Timeline(entries, actors, entries[-1].at if more and entries else None)
