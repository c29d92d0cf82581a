"""What deleting an account does to each table that holds the advocate's data.

``privacy.delete_account`` runs ``STEPS`` in order, before it drops queued mail, deletes the profile
(preferences, blackouts, tags and products go with it) and the consents, and anonymises the user row.

What stays, and why (the documented exceptions ``tests/test_erasure.py`` allows):

- participations stay (activity reports, fatigue history) without any free text; open ones (requested
  or approved, not completed) are withdrawn first, through the participation service, so their seats
  are free again and they leave the admins' queues;
- redemptions stay (points and stock history) without their note; open ones are cancelled through the
  rewards service (points refunded by a reversal entry, stock returned) so nothing is shipped;
- points ledger rows stay untouched (points issued and redeemed are program totals; the ledger is
  append-only, enforced by database triggers). The reasons the program writes hold no personal data
  ("Speaking: <opportunity>", "Redeemed: <reward>", referrals without the colleague's name); the reason
  an admin types for a manual adjustment is kept as typed, so it must not name anyone;
- badges earned stay (how many were earned) without the reason text;
- audit events stay (who did what, when) without this person's IP addresses and without free-text
  reasons written about them or their participations and orders;
- digest deliveries stay (counts only);
- tags that only this advocate used are deleted: they were offered to everyone as suggestions;
- admins' internal notes about them are deleted (the audit log keeps that a note was added, not its text);
- their single sign-on identities are deleted (the provider's subject and address at link time).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.orm import Session

from portal.models import (
    ACTIVE_STATUSES,
    AdvocateNote,
    AdvocateProfile,
    AuditEvent,
    Identity,
    Participation,
    Redemption,
    RedemptionStatus,
    Tag,
    User,
    UserBadge,
    profile_tags,
)
from portal.services import participation, rewards

ERASED = "(erased)"


def withdraw_open_participations(session: Session, user: User) -> None:
    ids = list(
        session.scalars(
            select(Participation.id)
            .where(Participation.user_id == user.id, Participation.status.in_(ACTIVE_STATUSES))
            .order_by(Participation.id)
        )
    )
    for participation_id in ids:
        participation.withdraw(session, user, participation_id)


def cancel_open_redemptions(session: Session, user: User) -> None:
    ids = list(
        session.scalars(
            select(Redemption.id)
            .where(Redemption.user_id == user.id, Redemption.status == RedemptionStatus.REQUESTED)
            .order_by(Redemption.id)
        )
    )
    for redemption_id in ids:
        rewards.cancel(session, redemption_id, user, reason="")


def blank_free_text(session: Session, user: User) -> None:
    session.execute(
        update(Participation)
        .where(Participation.user_id == user.id)
        .values(
            message="",
            admin_message="",
            override_reason=case((Participation.override_reason.is_(None), None), else_=ERASED),
        )
    )
    session.execute(update(Redemption).where(Redemption.user_id == user.id).values(note=""))
    session.execute(update(UserBadge).where(UserBadge.user_id == user.id).values(reason=""))


def _scrub(value: Any, needles: list[str]) -> Any:
    if isinstance(value, str):
        for needle in needles:
            value = value.replace(needle, "the advocate")
        return value
    if isinstance(value, list):
        return [_scrub(v, needles) for v in value]
    if isinstance(value, dict):
        return {k: ERASED if k in ("reason", "reasons") else _scrub(v, needles) for k, v in value.items()}
    return value


def scrub_audit_log(session: Session, user: User) -> None:
    # Their own actions, and events about them that nobody acted in (a lock after failed sign-ins
    # records the address the attempts came from, usually theirs).
    session.execute(
        update(AuditEvent)
        .where(
            or_(
                AuditEvent.actor_id == user.id,
                AuditEvent.actor_id.is_(None) & (AuditEvent.target_type == "user") & (AuditEvent.target_id == user.id),
            )
        )
        .values(ip_address=None)
    )
    participation_ids = select(Participation.id).where(Participation.user_id == user.id)
    redemption_ids = select(Redemption.id).where(Redemption.user_id == user.id)
    about = session.scalars(
        select(AuditEvent).where(
            or_(
                AuditEvent.actor_id == user.id,
                (AuditEvent.target_type == "user") & (AuditEvent.target_id == user.id),
                (AuditEvent.target_type == "participation") & AuditEvent.target_id.in_(participation_ids),
                (AuditEvent.target_type == "redemption") & AuditEvent.target_id.in_(redemption_ids),
            )
        )
    )
    needles = [n for n in (user.name, user.email) if n and len(n) >= 2]
    for event in about:
        if event.details:
            event.details = _scrub(dict(event.details), needles)  # a new dict: the JSON column sees the change


def delete_unused_tags(session: Session, user: User) -> None:
    profile = session.get(AdvocateProfile, user.id)
    if profile is None or not profile.tags:
        return
    ids = [t.id for t in profile.tags]
    profile.tags = []
    session.flush()
    still_used = select(profile_tags.c.tag_id).where(profile_tags.c.tag_id.in_(ids))
    session.execute(delete(Tag).where(Tag.id.in_(ids), Tag.id.not_in(still_used)))


def delete_notes(session: Session, user: User) -> None:
    session.execute(delete(AdvocateNote).where(AdvocateNote.user_id == user.id))


def delete_identities(session: Session, user: User) -> None:
    session.execute(delete(Identity).where(Identity.user_id == user.id))


STEPS = [
    withdraw_open_participations,
    cancel_open_redemptions,
    blank_free_text,
    scrub_audit_log,
    delete_unused_tags,
    delete_notes,
    delete_identities,
]
