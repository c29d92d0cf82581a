"""Non-transactional email: who wants what, one-click unsubscribe, freshness reminders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from portal.models import AdvocateProfile, Digest, Status, User, utcnow
from portal.services.errors import InvalidToken
from portal.services.outbox import external_url, queue_email
from portal.services.profiles import claim_stale_reminder, get_profile, stale_days, stale_for_reminder
from portal.services.tokens import make_token, read_token

UNSUBSCRIBE = "unsubscribe"
TOPICS = {
    "digest": "the opportunity digest",
    "opportunities": "announcements of opportunities that match you",
    "reminders": "reminders to keep your profile current",
    "news": "program news and recognition emails",
    "all": "all non-essential email from the program",
}
UNSUBSCRIBE_MAX_AGE = 400 * 24 * 3600  # links in old emails keep working for over a year


def unsubscribe_url(user: User, topic: str) -> str:
    assert topic in TOPICS
    return external_url("profile.unsubscribe", token=make_token(UNSUBSCRIBE, user.id, topic))


def read_unsubscribe(session: Session, token: str) -> tuple[User, str]:
    data = read_token(UNSUBSCRIBE, token, UNSUBSCRIBE_MAX_AGE)
    topic = data.get("s")
    user = session.get(User, data["u"])
    if user is None or user.status == Status.DELETED or topic not in TOPICS:  # an erased account stays erased
        raise InvalidToken("This unsubscribe link is not valid.")
    return user, topic


def apply_unsubscribe(session: Session, user: User, topic: str) -> AdvocateProfile:
    profile = get_profile(session, user)
    if topic in ("digest", "all"):
        profile.digest = Digest.OFF
    if topic in ("opportunities", "all"):
        profile.notify_opportunities = False
    if topic in ("reminders", "all"):
        profile.notify_reminders = False
    if topic in ("news", "all"):
        profile.notify_news = False
    return profile


def list_unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe for mail clients."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def remind_stale(session: Session, now: datetime | None = None) -> int:
    """Queue a reminder to each stale advocate not reminded in the last 30 days; returns how many.

    Safe when two runs overlap: an advocate's email is queued only by the run whose conditional
    UPDATE stamped the profile (claim_stale_reminder), in the same transaction as the email."""
    now = now or utcnow()
    count = 0
    for user in stale_for_reminder(session, now):
        if not claim_stale_reminder(session, user.id, now):
            continue  # another run reminded this advocate a moment ago
        queue_stale_reminder(session, user)
        count += 1
    session.flush()
    return count


def queue_stale_reminder(session: Session, user: User) -> None:
    """The "is your profile still current?" email (the cron's reminder and an admin's nudge alike)."""
    url = unsubscribe_url(user, "reminders")
    queue_email(
        session,
        to=user.email,
        subject="Is your advocate profile still current?",
        template="stale_reminder",
        user_id=user.id,
        name=user.name,
        days=stale_days(),
        profile_url=external_url("profile.edit"),
        unsubscribe_url=url,
        headers=list_unsubscribe_headers(url),
    )
