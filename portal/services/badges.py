"""Badges: rules are data (Badge.rule), evaluated by a small set of metrics; each badge is earned once.

rule = {"metric": "activities", "activity_type": "review" | None, "count": 5,
        "statuses": ["completed"] (the default) | ["approved", "completed"]}
       {"metric": "tenure_days", "count": 365}
       {"metric": "referrals", "count": 3}
       {"metric": "manual"}                       (granted by admins only)
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from portal import signals
from portal.models import (
    ActivityType,
    AdvocateProfile,
    Badge,
    EntryKind,
    EntrySource,
    Opportunity,
    Participation,
    ParticipationStatus,
    PointsEntry,
    Role,
    Status,
    User,
    UserBadge,
    utcnow,
)
from portal.services import audit
from portal.services.errors import Conflict, DomainError, NotFound
from portal.services.outbox import external_url, queue_email
from portal.services.subscriptions import list_unsubscribe_headers, unsubscribe_url

# Two aliases of the ledger for _activities, built once: building them per call took about 25 ms each,
# most of a badge evaluation's time (the demo seed evaluates hundreds).
_EARNED = aliased(PointsEntry)
_REVERSAL = aliased(PointsEntry)


def _activities(session: Session, user: User, rule: dict) -> int:
    """Activities done: the advocate's participations in the rule's statuses (completed by default),
    optionally of one activity type. Counted from the participations themselves, not the ledger, so a
    0-point activity counts too; a completion whose points were reversed (work withdrawn) does not.
    ``"statuses": ["approved", "completed"]`` counts a place as soon as it is approved (board members)."""
    statuses = [ParticipationStatus(s) for s in rule.get("statuses") or ["completed"]]
    earned, reversal = _EARNED, _REVERSAL
    reversed_completion = (
        select(earned.id)
        .join(reversal, reversal.reverses_id == earned.id)
        .where(
            earned.source == EntrySource.PARTICIPATION,
            earned.kind == EntryKind.EARNED,
            earned.source_id == Participation.id,
        )
        .exists()
    )
    q = (
        select(func.count())
        .select_from(Participation)
        .join(Opportunity, Opportunity.id == Participation.opportunity_id)
        .where(Participation.user_id == user.id, Participation.status.in_(statuses), ~reversed_completion)
    )
    key = rule.get("activity_type")
    if key:
        q = q.join(ActivityType, ActivityType.id == Opportunity.activity_type_id).where(ActivityType.key == key)
    return session.scalar(q) or 0


def _tenure_days(session: Session, user: User, rule: dict) -> int:
    since = user.approved_at or user.created_at
    return (utcnow() - since).days if since else 0


def _referrals(session: Session, user: User, rule: dict) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(PointsEntry)
            .where(
                PointsEntry.user_id == user.id,
                PointsEntry.source == EntrySource.REFERRAL,
                PointsEntry.kind == EntryKind.EARNED,
            )
        )
        or 0
    )


METRICS = {"activities": _activities, "tenure_days": _tenure_days, "referrals": _referrals}


def earned_ids(session: Session, user_id: int) -> set[int]:
    return set(session.scalars(select(UserBadge.badge_id).where(UserBadge.user_id == user_id)))


def _grant(session: Session, user_id: int, badge: Badge, actor_id: int | None = None, reason: str = "") -> bool:
    try:
        with session.begin_nested():
            session.add(UserBadge(user_id=user_id, badge_id=badge.id, awarded_by_id=actor_id, reason=reason[:255]))
            session.flush()
    except IntegrityError:
        return False  # already has it (a concurrent evaluation won)
    return True


def evaluate(session: Session, user_id: int) -> list[Badge]:
    """Grant every automatic badge whose rule the advocate now meets; returns the new ones."""
    user = session.get(User, user_id)
    if user is None or user.role != Role.ADVOCATE:
        return []
    have = earned_ids(session, user_id)
    new = []
    for badge in session.scalars(select(Badge).where(Badge.active.is_(True)).order_by(Badge.position)):
        if badge.id in have:
            continue
        metric = METRICS.get((badge.rule or {}).get("metric"))
        if metric is None:
            continue
        if metric(session, user, badge.rule) >= int(badge.rule.get("count", 1)) and _grant(session, user_id, badge):
            new.append(badge)
    if new and _wants_news(session, user_id):
        unsubscribe = unsubscribe_url(user, "news")
        queue_email(
            session,
            to=user.email,
            subject=f"You earned a badge: {new[0].name}",
            template="badge_earned",
            user_id=user.id,
            name=user.name,
            badges=[(b.icon, b.name, b.description) for b in new],
            url=external_url("recognition.badges_page"),
            unsubscribe_url=unsubscribe,
            headers=list_unsubscribe_headers(unsubscribe),
        )
    return new


def connect() -> None:
    """Evaluate badges after every new ledger award (portal.signals.points_awarded). Called by the app
    factory; connecting again (a second app in the same process) changes nothing."""
    signals.points_awarded.connect(_after_points_awarded)


def _after_points_awarded(sender: object, *, session: Session, user_id: int, **_: object) -> None:
    evaluate(session, user_id)


def _wants_news(session: Session, user_id: int) -> bool:
    """Badge emails fall under "Program news and recognition" (notify_news; on unless switched off)."""
    wanted = session.scalar(select(AdvocateProfile.notify_news).where(AdvocateProfile.user_id == user_id))
    return wanted is None or bool(wanted)


def evaluate_all(session: Session) -> int:
    ids = session.scalars(select(User.id).where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE))
    return sum(len(evaluate(session, uid)) for uid in list(ids))


def grant_manual(session: Session, user: User, badge_id: int, actor_id: int, reason: str) -> UserBadge:
    badge = session.get(Badge, badge_id)
    if badge is None:
        raise NotFound("No such badge.")
    if user.role != Role.ADVOCATE:
        raise DomainError("Badges are for advocates.")
    if not _grant(session, user.id, badge, actor_id, reason):
        raise Conflict(f"{user.name} already has the {badge.name} badge.")
    audit.record(session, "badge.grant", actor_id, user, badge=badge.key, reason=reason)
    return session.scalar(select(UserBadge).where(UserBadge.user_id == user.id, UserBadge.badge_id == badge.id))


def gallery(session: Session, user_id: int) -> list[tuple[Badge, UserBadge | None]]:
    mine = {ub.badge_id: ub for ub in session.scalars(select(UserBadge).where(UserBadge.user_id == user_id))}
    badges = session.scalars(select(Badge).where(Badge.active.is_(True)).order_by(Badge.position, Badge.id))
    return [(b, mine.get(b.id)) for b in badges]


DEFAULT_BADGES = [
    # key, name, description, icon, rule
    ("first-activity", "First step", "Completed your first activity", "👣", {"metric": "activities", "count": 1}),
    (
        "five-reviews",
        "Reviewer",
        "Wrote five peer reviews",
        "✍️",
        {"metric": "activities", "activity_type": "review", "count": 5},
    ),
    # A member from approval on, not only once a term is completed (migration 0007 sets existing rows).
    (
        "board-member",
        "Advisory board member",
        "Served on the customer advisory board",
        "🏛️",
        {"metric": "activities", "activity_type": "advisory_board", "statuses": ["approved", "completed"], "count": 1},
    ),
    ("one-year", "One year strong", "One year as an advocate", "🎂", {"metric": "tenure_days", "count": 365}),
    ("three-referrals", "Connector", "Three colleagues joined through you", "🤝", {"metric": "referrals", "count": 3}),
    ("champion", "Champion", "Granted by the program team for outstanding advocacy", "🏆", {"metric": "manual"}),
]
FIRST_OF_TYPE_ICONS = {
    "speaking": "🎤",
    "review": "⭐",
    "reference_call": "📞",
    "case_study": "📄",
    "advisory_board": "🏛️",
    "quote": "💬",
    "media": "📰",
    "analyst": "📊",
    "webinar": "🖥️",
    "podcast": "🎧",
    "video": "🎬",
    "referral": "🔗",
    "beta": "🧪",
}


# Badge icons are SVG files in static/img/badges/ (Lucide, ISC licence: LICENSE-lucide.txt there), not emoji:
# Debian's Chromium, and many office machines, have no colour emoji font and show empty boxes. A badge keeps
# its emoji in the database (emails and the admin's list use it as a label); the pages draw the file it maps to.
ICON_FILES = {
    "👣": "footprints",
    "✍️": "pen-line",
    "🏛️": "landmark",
    "🎂": "cake",
    "🤝": "handshake",
    "🏆": "trophy",
    "🎤": "mic",
    "⭐": "star",
    "★": "star",
    "📞": "phone",
    "📄": "file-text",
    "💬": "message-square-quote",
    "📰": "newspaper",
    "📊": "chart-column",
    "🖥️": "monitor",
    "🎧": "headphones",
    "🎬": "clapperboard",
    "🔗": "link",
    "🧪": "flask-conical",
}
DEFAULT_ICON_FILE = "star"


def icon_file(icon: str | None) -> str:
    """The SVG (a name in static/img/badges/) drawn for a badge's icon; a star for any other icon."""
    return ICON_FILES.get(icon or "", DEFAULT_ICON_FILE)


def ensure_default_badges(session: Session) -> int:
    have = set(session.scalars(select(Badge.key)))
    added = 0
    pos = 0
    for key, name, desc, icon, rule in DEFAULT_BADGES:
        pos += 1
        if key not in have:
            session.add(Badge(key=key, name=name, description=desc, icon=icon, rule=rule, position=pos))
            added += 1
    for t in session.scalars(select(ActivityType).order_by(ActivityType.position)):
        pos += 1
        key = f"first-{t.key}"
        if key not in have:
            session.add(
                Badge(
                    key=key,
                    name=f"First {t.name.lower()}",
                    description=f"Completed your first {t.name.lower()}",
                    icon=FIRST_OF_TYPE_ICONS.get(t.key, "★"),
                    rule={"metric": "activities", "activity_type": t.key, "count": 1},
                    position=pos,
                )
            )
            added += 1
    session.flush()
    return added
