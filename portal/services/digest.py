"""Opportunity emails that are not about the advocate's own commitments.

The digest: each advocate who chose the period gets the new opportunities they are eligible for
since their last digest; nobody gets an empty one; one per advocate and period.

Announcements (``notify_opportunities``, "Tell me about new opportunities that match me"): each
opportunity first opened recently is announced to every advocate who wants announcements, is
eligible and could say "I'm in" now; at most once per advocate and opportunity. Run from cron
(``flask opportunities announce``), never in the admin's request: a large community would time it out.

Both leave out what a fatigue rule would refuse (an advocate at their own limit gets nothing), and
the digest leaves out what was already announced to that advocate.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.models import ActivityPreference, AdvocateProfile, Digest, DigestDelivery, Role, Status, User, utcnow
from portal.services import fatigue, opportunities
from portal.services.outbox import external_url, queue_email
from portal.services.subscriptions import list_unsubscribe_headers, unsubscribe_url

LOOKBACK = {"weekly": timedelta(days=7), "monthly": timedelta(days=31)}
# An announcement is recorded as a DigestDelivery row of this period, keyed by the opportunity id: its
# unique constraint (user, period, key) makes "at most once per advocate and opportunity" hold even
# when two runs overlap. (A table of its own would say it better; that needs a migration.)
ANNOUNCE = "announce"
ANNOUNCE_WINDOW = timedelta(days=7)
ANNOUNCED_MEMORY = timedelta(days=62)  # how far back the digest looks for announcements (> a month)


def period_key(period: str, now: datetime) -> str:
    if period == "weekly":
        year, week, _ = now.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "monthly":
        return f"{now.year}-{now.month:02d}"
    raise ValueError(period)


def _items(matches: list[opportunities.Match]) -> list[tuple]:
    return [
        (
            m.opportunity.title,
            m.opportunity.activity_type.name,
            m.why,
            external_url("opportunities.detail", opp_id=m.opportunity.id),
        )
        for m in matches
    ]


def send(session: Session, period: str, now: datetime | None = None) -> tuple[int, int]:
    """Queue this period's digests. Returns (sent, skipped because empty or already sent)."""
    if period not in LOOKBACK:
        raise ValueError("period must be weekly or monthly")
    now = now or utcnow()
    key = period_key(period, now)
    users = list(
        session.scalars(
            select(User)
            .join(AdvocateProfile, AdvocateProfile.user_id == User.id)
            .where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE, AdvocateProfile.digest == Digest(period))
            .order_by(User.id)
        )
    )
    already = set(
        session.scalars(
            select(DigestDelivery.user_id).where(DigestDelivery.period == period, DigestDelivery.period_key == key)
        )
    )
    last_sent = dict(
        session.execute(
            select(DigestDelivery.user_id, func.max(DigestDelivery.sent_at))
            .where(DigestDelivery.period.in_(list(LOOKBACK)))
            .group_by(DigestDelivery.user_id)
        ).all()
    )
    announced = set(
        session.execute(
            select(DigestDelivery.user_id, DigestDelivery.period_key).where(
                DigestDelivery.period == ANNOUNCE, DigestDelivery.sent_at >= now - ANNOUNCED_MEMORY
            )
        ).all()
    )
    open_now = opportunities.open_opportunities(session, now.date())  # once, for every advocate
    pol = fatigue.policy(session)
    sent = skipped = 0
    for user in users:
        if user.id in already:
            skipped += 1
            continue
        since = last_sent.get(user.id) or now - LOOKBACK[period]
        fresh = [o for o in open_now if o.opened_at and o.opened_at > since and (user.id, str(o.id)) not in announced]
        matches = opportunities.feed(session, user, now=now, opps=fresh, policy=pol) if fresh else []
        if not matches:
            skipped += 1
            continue
        try:
            with session.begin_nested():
                session.add(
                    DigestDelivery(
                        user_id=user.id, period=period, period_key=key, opportunity_count=len(matches), sent_at=now
                    )
                )
                session.flush()
        except IntegrityError:  # another run got there first
            skipped += 1
            continue
        url = unsubscribe_url(user, "digest")
        queue_email(
            session,
            to=user.email,
            subject=f"{len(matches)} new opportunit{'y' if len(matches) == 1 else 'ies'} for you",
            template="digest",
            user_id=user.id,
            name=user.name,
            period=period,
            items=_items(matches),
            feed_url=external_url("opportunities.feed"),
            unsubscribe_url=url,
            headers=list_unsubscribe_headers(url),
        )
        sent += 1
    return sent, skipped


def announce(
    session: Session,
    now: datetime | None = None,
    window: timedelta = ANNOUNCE_WINDOW,
    after_id: int = 0,
    limit: int = 500,
) -> tuple[int, int, int | None]:
    """Queue announcements for the opportunities first opened within ``window`` to the advocates
    (ids above ``after_id``, at most ``limit`` of them: call again with the id returned until it is
    None) who want them, fit them and have not been told. Returns (emails, advocates skipped, last id).

    One email per advocate and run, listing every opportunity new to them; each (advocate,
    opportunity) pair is recorded first, so a second run, or one running at the same time, never
    tells anybody twice."""
    now = now or utcnow()
    opps = [
        o for o in opportunities.open_opportunities(session, now.date()) if o.opened_at and o.opened_at > now - window
    ]
    if not opps:
        return 0, 0, None
    type_ids = sorted({o.activity_type_id for o in opps})
    users = list(
        session.scalars(
            select(User)
            .join(AdvocateProfile, AdvocateProfile.user_id == User.id)
            .where(
                User.role == Role.ADVOCATE,
                User.status == Status.ACTIVE,
                User.id > after_id,
                AdvocateProfile.notify_opportunities.is_(True),
                exists().where(
                    ActivityPreference.user_id == User.id,
                    ActivityPreference.opted_in.is_(True),
                    ActivityPreference.activity_type_id.in_(type_ids),
                ),
            )
            .order_by(User.id)
            .limit(limit)
        )
    )
    if not users:
        return 0, 0, None
    keys = [str(o.id) for o in opps]
    told = set(
        session.execute(
            select(DigestDelivery.user_id, DigestDelivery.period_key).where(
                DigestDelivery.period == ANNOUNCE,
                DigestDelivery.period_key.in_(keys),
                DigestDelivery.user_id.in_([u.id for u in users]),
            )
        ).all()
    )
    pol = fatigue.policy(session)
    sent = skipped = 0
    for user in users:
        fresh = [o for o in opps if (user.id, str(o.id)) not in told]
        matches = opportunities.feed(session, user, now=now, opps=fresh, policy=pol) if fresh else []
        if matches:
            try:
                with session.begin_nested():
                    for m in matches:
                        session.add(
                            DigestDelivery(
                                user_id=user.id,
                                period=ANNOUNCE,
                                period_key=str(m.opportunity.id),
                                opportunity_count=1,
                                sent_at=now,
                            )
                        )
                    session.flush()
            except IntegrityError:  # a run at the same time told this advocate first
                matches = []
        if not matches:
            skipped += 1
            continue
        url = unsubscribe_url(user, "opportunities")
        first = matches[0].opportunity
        subject = (
            f"New opportunity for you: {first.title}"
            if len(matches) == 1
            else f"{len(matches)} new opportunities that match you"
        )
        queue_email(
            session,
            to=user.email,
            subject=subject,
            template="opportunity_announcement",
            user_id=user.id,
            name=user.name,
            items=_items(matches),
            feed_url=external_url("opportunities.feed"),
            preferences_url=external_url("profile.preferences"),
            unsubscribe_url=url,
            headers=list_unsubscribe_headers(url),
        )
        sent += 1
    return sent, skipped, users[-1].id
