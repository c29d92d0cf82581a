"""Builders shared by the privacy tests (test_privacy, test_erasure): the program's data about one advocate
in every table that holds it (participations, points, redemptions, badges, referrals, emails, digests,
audit events). Not a test module itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    ActivityType,
    AuditEvent,
    Badge,
    DigestDelivery,
    EntrySource,
    Participation,
    ParticipationStatus,
    SelectionMode,
    User,
    utcnow,
)
from portal.services import audit, badges, points, referrals, rewards
from tests.opportunity_support import make_opp
from tests.recognition_support import make_reward

ADVOCATE_IP = "198.51.100.23"


@dataclass
class ProgramData:
    requested_id: int = 0  # a request waiting for an admin (selection mode)
    approved_id: int = 0  # an approved place that holds a seat
    completed_id: int = 0
    seat_opp_id: int = 0
    open_order_id: int = 0
    fulfilled_order_id: int = 0
    hoodie_id: int = 0
    referred_id: int = 0  # a colleague the advocate referred
    referrer_id: int = 0  # the advocate who referred our advocate
    texts: dict[str, str] = field(default_factory=dict)  # free text planted, by where it was put


def fill_program_data(advocate_id: int, admin_id: int, make_user, name: str = "Ada Advocate") -> ProgramData:
    """Everything the other domains hold about the advocate (whose profile is already filled in)."""
    d = ProgramData()
    d.texts = {
        "requested message": "I can bring our fraud numbers from Lyon",
        "approved message": "Happy to present the Bluefin slides",
        "completed message": "Wrote it on G2 last night",
        "admin message": f"See you there, {name}",
        "override reason": f"{name} asked for it personally",
        "order note": "Ship to 12 Rue de Rivoli, 75001 Paris",
        "fulfil note": "Shipped to 12 Rue de Rivoli, 75001 Paris, tracking 1Z999",
        "badge reason": f"For {name}'s keynote",
        "manual reason": f"Welcome bonus for {name}",
    }
    referrer = make_user(email="rob.referrer@example.com", name="Rob Referrer")
    referred = make_user(email="rita.referred@example.com", name="Rita Referred", referred_by_id=advocate_id)
    d.referrer_id, d.referred_id = referrer.id, referred.id
    s = db.session
    me = s.get(User, advocate_id)
    me.referred_by_id = referrer.id
    s.flush()
    referrals.credit_referral(s, me)  # Rob's ledger: "Referral: <name> joined"
    referrals.credit_referral(s, s.get(User, referred.id))  # our advocate's ledger: a credit for Rita

    review = s.scalar(select(ActivityType).where(ActivityType.key == "review"))
    s.commit()
    requested_opp = make_opp("speaking", title="Fintech Summit panel", mode=SelectionMode.SELECTION)
    d.seat_opp_id = make_opp("webinar", title="Fraud webinar", capacity=2, seats_taken=1)
    done_opp = make_opp("review", title="G2 review")
    now = utcnow()
    rows = [
        Participation(
            opportunity_id=requested_opp,
            user_id=advocate_id,
            status=ParticipationStatus.REQUESTED,
            message=d.texts["requested message"],
        ),
        Participation(
            opportunity_id=d.seat_opp_id,
            user_id=advocate_id,
            status=ParticipationStatus.APPROVED,
            holds_seat=True,
            engaged_at=now,
            decided_at=now,
            decided_by_id=admin_id,
            message=d.texts["approved message"],
            admin_message=d.texts["admin message"],
            override_reason=d.texts["override reason"],
        ),
        Participation(
            opportunity_id=done_opp,
            user_id=advocate_id,
            status=ParticipationStatus.COMPLETED,
            engaged_at=now - timedelta(days=3),
            decided_at=now - timedelta(days=3),
            completed_at=now - timedelta(days=1),
            message=d.texts["completed message"],
        ),
    ]
    s.add_all(rows)
    s.flush()
    d.requested_id, d.approved_id, d.completed_id = (p.id for p in rows)
    audit.record(
        s,
        "participation.override",
        admin_id,
        rows[1],
        reasons=[f"{name} has paused all asks."],
        reason=d.texts["override reason"],
    )
    points.award(
        s,
        advocate_id,
        50,
        key=f"participation:{d.completed_id}:complete",
        reason="Review: G2 review",
        source=EntrySource.PARTICIPATION,
        source_id=d.completed_id,
        activity_type_id=review.id,
    )
    points.award(
        s,
        advocate_id,
        1000,
        key="welcome",
        reason=d.texts["manual reason"],
        source=EntrySource.MANUAL,
        actor_id=admin_id,
    )
    points.adjust(s, me, -25, "Duplicate award", admin_id, key="adj-1")

    d.hoodie_id = make_reward(cost=100, stock=3, name="Hoodie")
    mug = make_reward(cost=200, name="Mug")
    me = s.get(User, advocate_id)
    order, _ = rewards.redeem(s, me, d.hoodie_id, "order-open")
    order.note = d.texts["order note"]
    d.open_order_id = order.id
    shipped, _ = rewards.redeem(s, me, mug, "order-shipped")
    d.fulfilled_order_id = shipped.id
    rewards.fulfil(s, shipped.id, admin_id, note=d.texts["fulfil note"])

    champion = s.scalar(select(Badge).where(Badge.key == "champion"))
    badges.grant_manual(s, me, champion.id, admin_id, d.texts["badge reason"])
    s.add(DigestDelivery(user_id=advocate_id, period="weekly", period_key="2026-W10", opportunity_count=3))
    s.add(
        AuditEvent(
            actor_id=advocate_id,
            action="user.email_change",
            target_type="user",
            target_id=advocate_id,
            ip_address=ADVOCATE_IP,
        )
    )
    s.commit()
    return d
