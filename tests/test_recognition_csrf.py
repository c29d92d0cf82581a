"""Every state-changing recognition form needs its CSRF token: without it the POST is refused (400) and
nothing changes. The admin's "Cancel and refund" asks for confirmation first."""

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import ActivityType, AuditEvent, Badge, Redemption, Reward, User, UserBadge
from portal.services import rewards
from tests.support import give, ledger_rows, make_reward, reload

STATIC = Path(__file__).resolve().parent.parent / "static"


def _snapshot():
    db.session.rollback()
    db.session.expire_all()
    return {
        "ledger": ledger_rows(),
        "orders": [(r.id, r.status, r.note) for r in db.session.scalars(select(Redemption).order_by(Redemption.id))],
        "rewards": [
            (r.id, r.name, r.points_cost, r.stock, r.active)
            for r in db.session.scalars(select(Reward).order_by(Reward.id))
        ],
        "badges": db.session.scalar(select(func.count()).select_from(UserBadge)),
        "types": [(t.id, t.default_points) for t in db.session.scalars(select(ActivityType).order_by(ActivityType.id))],
        "audit": db.session.scalar(select(func.count()).select_from(AuditEvent)),
    }


@pytest.fixture
def seeded(app, advocate):
    """An advocate with points and one open order of a reward in stock."""
    give(advocate.id, 1000)
    rid = make_reward(cost=100, stock=5, name="Mug")
    order, _ = rewards.redeem(db.session, reload(User, advocate.id), rid, "seed-order")
    db.session.commit()
    return {
        "reward_id": rid,
        "order_id": order.id,
        "champion": db.session.scalar(select(Badge.id).where(Badge.key == "champion")),
        "review": db.session.scalar(select(ActivityType.id).where(ActivityType.key == "review")),
    }


FORMS = [
    # (who, url, form data) — each a complete, valid submission except for the missing token
    ("advocate", "/rewards/redeem", lambda s, a: {"reward_id": str(s["reward_id"]), "idempotency_key": "no-csrf-01"}),
    ("advocate", "/me/redemptions/{order_id}/cancel", lambda s, a: {"reason": "changed my mind"}),
    ("admin", "/admin/redemptions/{order_id}/fulfil", lambda s, a: {"note": "shipped"}),
    ("admin", "/admin/redemptions/{order_id}/cancel", lambda s, a: {"reason": "out of stock"}),
    ("admin", "/admin/rewards/new", lambda s, a: {"name": "Cap", "points_cost": "50", "stock": "3", "active": "y"}),
    (
        "admin",
        "/admin/rewards/{reward_id}",
        lambda s, a: {"name": "Renamed", "points_cost": "50", "stock": "9", "stock_seen": "4", "active": "y"},
    ),
    ("admin", "/admin/badges", lambda s, a: {"email": a.email, "badge_id": str(s["champion"]), "reason": "keynote"}),
    (
        "admin",
        "/admin/points",
        lambda s, a: {"email": a.email, "amount": "500", "reason": "bonus", "idempotency_key": "no-csrf-adjust"},
    ),
    ("admin", "/admin/activity-types/{review}", lambda s, a: {"default_points": "7"}),
]


@pytest.mark.parametrize("who,url,data", FORMS, ids=[f[1] for f in FORMS])
def test_posts_without_a_csrf_token_are_refused_and_change_nothing(
    app, seeded, advocate, advocate_client, admin_client, who, url, data
):
    client = advocate_client if who == "advocate" else admin_client
    client.get("/dashboard" if who == "advocate" else "/admin/")  # a session exists, with its own token
    before = _snapshot()
    resp = client.post(url.format(**seeded), data=data(seeded, advocate))
    assert resp.status_code == 400, resp.get_data(as_text=True)[:300]
    assert _snapshot() == before
    # A wrong token is no better.
    resp = client.post(url.format(**seeded), data={**data(seeded, advocate), "csrf_token": "forged"})
    assert resp.status_code == 400
    assert _snapshot() == before


def test_cancel_and_refund_asks_for_confirmation(app, seeded, admin_client):
    html = admin_client.get("/admin/redemptions").get_data(as_text=True)
    action = f'action="/admin/redemptions/{seeded["order_id"]}/cancel"'
    (form,) = [f for f in re.findall(r"<form\b[^>]*>", html) if action in f]
    assert re.search(r'data-confirm="[^"]+"', form), form
    # The page loads the script that asks (no inline script: the CSP forbids it) ...
    assert re.search(r'<script src="/static/js/portal\.js"', html)
    assert "<script>" not in html
    # ... and the script handles data-confirm forms by asking before they are sent.
    js = (STATIC / "js" / "portal.js").read_text()
    assert "form[data-confirm]" in js and "window.confirm" in js and "preventDefault" in js
    served = admin_client.get("/static/js/portal.js")
    assert served.status_code == 200
    served.close()
