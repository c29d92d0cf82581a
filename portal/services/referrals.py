"""Referrals: a personal link; a colleague who joins through it and is approved credits the referrer once."""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import EntrySource, Role, Status, User
from portal.services import points, settings
from portal.services.outbox import external_url

REFERRAL_REASON = "Referral of a colleague who joined"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="portal.referral")


def referral_link(user: User) -> str:
    return external_url("recognition.referred", code=_serializer().dumps(user.id))


def referrer_for_code(session: Session, code: str) -> User | None:
    try:
        user_id = _serializer().loads(code[:200])
    except BadSignature:
        return None
    user = session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or user.role != Role.ADVOCATE or user.status != Status.ACTIVE:
        return None
    return user


def credit_referral(session: Session, referred: User) -> bool:
    """Called when an advocate becomes active: credit whoever referred them, once."""
    if referred.referred_by_id is None or referred.referred_by_id == referred.id:
        return False
    referrer = session.get(User, referred.referred_by_id)
    if referrer is None or referrer.role != Role.ADVOCATE or referrer.status != Status.ACTIVE:
        return False
    amount = settings.get(session, "points_referral")
    if amount <= 0:  # the setting at 0: referrals earn nothing, and the ledger records no zero-point entry
        return False
    # The ledger keeps its rows forever, also after the colleague erases their account: no name in it.
    # Pages show the name while the account exists (PointsEntry.display_reason).
    _, created = points.award(
        session,
        referrer.id,
        amount,
        key=f"referral:{referred.id}",
        reason=REFERRAL_REASON,
        source=EntrySource.REFERRAL,
        source_id=referred.id,
    )
    return created


def referrals_of(session: Session, user_id: int) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .where(User.referred_by_id == user_id, User.status != Status.DELETED)
            .order_by(User.created_at.desc())
        )
    )


def credited_ids(session: Session, user_id: int) -> set[int]:
    return set(
        session.scalars(
            select(points.PointsEntry.source_id).where(
                points.PointsEntry.user_id == user_id, points.PointsEntry.source == EntrySource.REFERRAL
            )
        )
    )
