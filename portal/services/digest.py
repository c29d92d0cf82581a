"""The opportunity digest: each advocate who chose the period gets the new opportunities they are
eligible for since their last digest; nobody gets an empty one; one per advocate and period."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.models import AdvocateProfile, Digest, DigestDelivery, Role, Status, User, utcnow
from portal.services import opportunities
from portal.services.outbox import external_url, queue_email
from portal.services.subscriptions import list_unsubscribe_headers, unsubscribe_url

LOOKBACK = {"weekly": timedelta(days=7), "monthly": timedelta(days=31)}


def period_key(period: str, now: datetime) -> str:
    if period == "weekly":
        year, week, _ = now.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "monthly":
        return f"{now.year}-{now.month:02d}"
    raise ValueError(period)


def send(session, period: str, now: datetime | None = None) -> tuple[int, int]:
    """Queue this period's digests. Returns (sent, skipped because empty or already sent)."""
    if period not in LOOKBACK:
        raise ValueError("period must be weekly or monthly")
    now = now or utcnow()
    key = period_key(period, now)
    users = list(session.scalars(
        select(User).join(AdvocateProfile, AdvocateProfile.user_id == User.id)
        .where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE, AdvocateProfile.digest == Digest(period))
        .order_by(User.id)))
    already = set(session.scalars(select(DigestDelivery.user_id).where(
        DigestDelivery.period == period, DigestDelivery.period_key == key)))
    last_sent = dict(session.execute(select(DigestDelivery.user_id, func.max(DigestDelivery.sent_at))
                                     .group_by(DigestDelivery.user_id)).all())
    sent = skipped = 0
    for user in users:
        if user.id in already:
            skipped += 1
            continue
        since = last_sent.get(user.id) or now - LOOKBACK[period]
        matches = [m for m in opportunities.feed(session, user, today=now.date())
                   if m.opportunity.opened_at and m.opportunity.opened_at > since]
        if not matches:
            skipped += 1
            continue
        try:
            with session.begin_nested():
                session.add(DigestDelivery(user_id=user.id, period=period, period_key=key,
                                           opportunity_count=len(matches), sent_at=now))
                session.flush()
        except IntegrityError:  # another run got there first
            skipped += 1
            continue
        url = unsubscribe_url(user, "digest")
        queue_email(session, to=user.email, subject=f"{len(matches)} new opportunit{'y' if len(matches) == 1 else 'ies'} for you",
                    template="digest", user_id=user.id, name=user.name, period=period,
                    items=[(m.opportunity.title, m.opportunity.activity_type.name, m.why,
                            external_url("opportunities.detail", opp_id=m.opportunity.id)) for m in matches],
                    feed_url=external_url("opportunities.feed"), unsubscribe_url=url,
                    headers=list_unsubscribe_headers(url))
        sent += 1
    return sent, skipped
