"""Recognition: ledger, concurrency, rewards, levels, badges, leaderboard, referrals (issue 4)."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from portal.database import begin_write
from portal.extensions import db
from portal.models import (
    ActivityType,
    AuditEvent,
    Badge,
    EntryKind,
    EntrySource,
    PointsBalance,
    PointsEntry,
    Redemption,
    RedemptionStatus,
    Reward,
    Role,
    Status,
    User,
    UserBadge,
    utcnow,
)
from portal.services import badges, leaderboard, points, rewards
from portal.services.errors import DomainError
from tests.support import participate, post_form, profile_data, reload


def give(user_id, amount, key=None, source=EntrySource.MANUAL, **kw):
    entry, created = points.award(
        db.session,
        user_id,
        amount,
        key=key or f"test:{user_id}:{amount}:{utcnow()}",
        reason="test",
        source=source,
        **kw,
    )
    db.session.commit()
    return entry, created


def reward(cost=100, stock=None, limit=None, name="Mug", active=True):
    r = Reward(name=name, description="A mug", points_cost=cost, stock=stock, per_advocate_limit=limit, active=active)
    db.session.add(r)
    db.session.commit()
    return r.id


def run_threads(n, fn):
    barrier = threading.Barrier(n)
    results = [None] * n

    def wrap(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    return results


def in_context(app, fn):
    def run(i):
        with app.app_context():
            try:
                begin_write(db.session)
                out = fn(i)
                db.session.commit()
                return out
            except DomainError as err:
                db.session.rollback()
                return err

    return run


# --- ledger ---------------------------------------------------------------------------------------


def test_ledger_balance_reversal_and_verify(app, runner, advocate):
    e, created = give(advocate.id, 300, key="k1")
    again, created2 = give(advocate.id, 300, key="k1")
    assert created and not created2 and again.id == e.id
    assert points.balance(db.session, advocate.id) == 300
    rev, _ = points.reverse(db.session, e.id, reason="mistake")
    db.session.commit()
    _, twice = points.reverse(db.session, e.id, reason="again")
    db.session.commit()
    assert not twice and rev.kind == EntryKind.REVERSED
    assert points.balance(db.session, advocate.id) == 0
    assert points.verify(db.session) == []
    assert runner.invoke(args=["points", "verify"]).exit_code == 0
    db.session.query(PointsBalance).filter_by(user_id=advocate.id).update({"balance": 999})
    db.session.commit()
    bad = runner.invoke(args=["points", "verify"])
    assert bad.exit_code == 1 and f"user {advocate.id}" in bad.output


def test_admin_adjustment_needs_reason_is_audited_and_cannot_overdraw(admin_client, advocate, admin):
    page = "/admin/points"
    no_reason = post_form(
        admin_client, page, {"email": advocate.email, "amount": "50", "reason": "", "idempotency_key": "abcdefgh1"}
    )
    assert no_reason.status_code == 422
    ok = post_form(
        admin_client,
        page,
        {"email": advocate.email, "amount": "50", "reason": "Great webinar", "idempotency_key": "abcdefgh2"},
    )
    assert ok.status_code == 302
    dup = post_form(
        admin_client,
        page,
        {"email": advocate.email, "amount": "50", "reason": "Great webinar", "idempotency_key": "abcdefgh2"},
    )
    assert dup.status_code == 302
    db.session.rollback()
    assert points.balance(db.session, advocate.id) == 50
    assert db.session.query(AuditEvent).filter_by(action="points.adjust").count() == 1
    over = post_form(
        admin_client, page, {"email": advocate.email, "amount": "-80", "reason": "oops", "idempotency_key": "abcdefgh3"}
    )
    assert over.status_code == 422 and b"Not enough points" in over.data


def test_profile_completion_points_once(advocate_client, advocate):

    types = db.session.query(ActivityType).all()
    post_form(advocate_client, "/me/preferences/activities", {f"opt_{types[0].id}": "y"}, page="/me/preferences")
    for _ in range(2):
        post_form(advocate_client, "/me/profile", profile_data(size_band_id="1", story="A" * 100))
    db.session.rollback()
    assert db.session.query(PointsEntry).filter_by(user_id=advocate.id, source=EntrySource.PROFILE).count() == 1


# --- concurrency (SQLite and PostgreSQL) --------------------------------------------------------------------


def test_ten_concurrent_duplicate_awards_give_one_entry(app, advocate):
    results = run_threads(
        10,
        in_context(
            app,
            lambda i: points.award(
                db.session, advocate.id, 250, key="event:42", reason="dup", source=EntrySource.MANUAL
            )[1],
        ),
    )
    assert sum(1 for r in results if r is True) == 1
    db.session.rollback()
    assert db.session.query(PointsEntry).filter_by(idempotency_key="event:42").count() == 1
    assert points.balance(db.session, advocate.id) == 250 and points.verify(db.session) == []


def test_fifty_concurrent_redemptions_of_last_item(app, make_user):
    users = [make_user(email=f"r{i}@example.com") for i in range(50)]
    for u in users:
        give(u.id, 500, key=f"seed:{u.id}")
    rid = reward(cost=100, stock=1)
    results = run_threads(
        50, in_context(app, lambda i: rewards.redeem(db.session, db.session.get(User, users[i].id), rid, f"idem{i}"))
    )
    ok = [r for r in results if isinstance(r, tuple)]
    assert len(ok) == 1
    assert all(isinstance(r, DomainError) for r in results if not isinstance(r, tuple))
    db.session.rollback()
    assert db.session.get(Reward, rid).stock == 0
    assert db.session.query(Redemption).count() == 1 and points.verify(db.session) == []


def test_concurrent_redemptions_never_overdraw(app, advocate):
    give(advocate.id, 1000, key="seed")
    rid = reward(cost=150)
    results = run_threads(
        50, in_context(app, lambda i: rewards.redeem(db.session, db.session.get(User, advocate.id), rid, f"k{i}"))
    )
    ok = [r for r in results if isinstance(r, tuple)]
    assert len(ok) == 6  # 6 * 150 = 900 <= 1000 < 7 * 150
    db.session.rollback()
    assert points.balance(db.session, advocate.id) == 100
    assert points.verify(db.session) == []


def test_cancellation_refunds_exactly_once_even_concurrently(app, advocate, admin):
    give(advocate.id, 300, key="seed")
    rid = reward(cost=200, stock=3)
    red, _ = rewards.redeem(db.session, reload(User, advocate.id), rid, "one")
    db.session.commit()
    red_id, admin_id = red.id, admin.id  # plain values: threads must not touch this session's objects
    results = run_threads(
        2, in_context(app, lambda i: rewards.cancel(db.session, red_id, db.session.get(User, admin_id)))
    )
    assert sum(1 for r in results if not isinstance(r, DomainError)) == 1
    db.session.rollback()
    assert points.balance(db.session, advocate.id) == 300 and db.session.get(Reward, rid).stock == 3
    assert db.session.query(PointsEntry).filter_by(kind=EntryKind.REVERSED).count() == 1


# --- rewards through the pages ------------------------------------------------------------------------------------


def test_redeem_flow_emails_and_history(advocate_client, advocate, admin_client, mailbox):
    give(advocate.id, 500, key="seed")
    rid = reward(cost=200, stock=5, limit=1, name="<b>Hoodie</b>")
    catalog = advocate_client.get("/rewards").get_data(as_text=True)
    assert "&lt;b&gt;Hoodie&lt;/b&gt;" in catalog and "<b>Hoodie</b>" not in catalog
    data = {"reward_id": str(rid), "idempotency_key": "double-click-1"}
    assert post_form(advocate_client, "/rewards/redeem", data, page="/rewards").status_code == 302
    assert post_form(advocate_client, "/rewards/redeem", data, page="/rewards").status_code == 302  # double click
    db.session.rollback()
    assert db.session.query(Redemption).count() == 1 and points.balance(db.session, advocate.id) == 300
    limit = post_form(
        advocate_client, "/rewards/redeem", {"reward_id": str(rid), "idempotency_key": "second-1"}, page="/rewards"
    )
    assert limit.status_code == 303
    assert "as many times as allowed" in advocate_client.get("/rewards").get_data(as_text=True)
    assert mailbox.last(advocate.email, subject="We received your order")
    red = db.session.query(Redemption).one()
    post_form(admin_client, f"/admin/redemptions/{red.id}/fulfil", {"note": "Tracking 123"}, page="/admin/redemptions")
    assert "Tracking 123" in mailbox.last(advocate.email, subject="On its way").text
    assert "Hoodie" in advocate_client.get("/me/redemptions").get_data(as_text=True)
    assert reload(Redemption, red.id).status == RedemptionStatus.FULFILLED


def test_refusals_are_messages_not_errors(advocate_client, advocate, make_user, app):
    give(advocate.id, 100, key="seed")
    expensive = reward(cost=1000, name="Pass")
    empty = reward(cost=10, stock=0, name="Gone")
    hidden = reward(cost=10, active=False, name="Hidden")
    for rid, text in ((expensive, "costs 1,000 points"), (empty, "out of stock"), (hidden, "not available")):
        resp = post_form(
            advocate_client,
            "/rewards/redeem",
            {"reward_id": str(rid), "idempotency_key": f"refusal-{rid}"},
            page="/rewards",
        )
        assert resp.status_code == 303
        assert text in advocate_client.get("/rewards").get_data(as_text=True)
    other = make_user(email="o@example.com")
    give(other.id, 100, key="seed-o")
    red, _ = rewards.redeem(db.session, reload(User, other.id), reward(cost=50), "o1")
    db.session.commit()
    assert post_form(advocate_client, f"/me/redemptions/{red.id}/cancel", {}, page="/me/redemptions").status_code == 404


def test_advocate_cancels_own_order_and_gets_refund(advocate_client, advocate, mailbox):
    give(advocate.id, 300, key="seed")
    rid = reward(cost=200, stock=2)
    post_form(
        advocate_client, "/rewards/redeem", {"reward_id": str(rid), "idempotency_key": "cancelme1"}, page="/rewards"
    )
    db.session.rollback()
    red = db.session.query(Redemption).one()
    post_form(advocate_client, f"/me/redemptions/{red.id}/cancel", {}, page="/me/redemptions")
    db.session.rollback()
    assert points.balance(db.session, advocate.id) == 300 and db.session.get(Reward, rid).stock == 2
    assert mailbox.last(advocate.email, subject="Order cancelled")


def test_reward_admin_validation(admin_client):
    bad = post_form(admin_client, "/admin/rewards/new", {"name": "X", "points_cost": "0", "stock": "-1"})
    assert bad.status_code == 422
    ok = post_form(admin_client, "/admin/rewards/new", {"name": "<i>Cap</i>", "points_cost": "100", "active": "y"})
    assert ok.status_code == 302
    assert "&lt;i&gt;Cap&lt;/i&gt;" in admin_client.get("/admin/rewards").get_data(as_text=True)


# --- levels and badges ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lifetime,name",
    [
        (0, "Member"),
        (499, "Member"),
        (500, "Bronze"),
        (1499, "Bronze"),
        (1500, "Silver"),
        (4000, "Gold"),
        (9999, "Gold"),
        (10000, "Platinum"),
    ],
)
def test_level_thresholds(app, lifetime, name):
    assert points.level_for(lifetime).name == name


def test_level_uses_lifetime_not_balance(advocate_client, advocate):
    give(advocate.id, 600, key="seed")
    rid = reward(cost=500)
    rewards.redeem(db.session, reload(User, advocate.id), rid, "lvl")
    db.session.commit()
    assert points.level_for(points.lifetime_earned(db.session, advocate.id)).name == "Bronze"
    body = advocate_client.get("/dashboard").get_data(as_text=True)
    assert "Bronze" in body and "900 more points to reach Silver" in body


def _activity(user_id, key, n=1):
    """n more completed activities of a type (a completed participation each, credited through the ledger)."""

    participate(user_id, key, n)


def badge_keys(user_id):
    db.session.rollback()
    return {b.key for b in db.session.query(Badge).join(UserBadge).filter(UserBadge.user_id == user_id)}


def test_badge_rules(app, runner, advocate, mailbox):
    _activity(advocate.id, "review", 4)
    assert {"first-activity", "first-review"} <= badge_keys(advocate.id)
    assert "five-reviews" not in badge_keys(advocate.id)
    _activity(advocate.id, "review", 1)
    assert "five-reviews" in badge_keys(advocate.id)
    _activity(advocate.id, "advisory_board")
    assert "board-member" in badge_keys(advocate.id)
    from portal.services.outbox import send_due

    send_due(include_not_due=True)  # services called directly: no request sends the mail for us
    assert mailbox.last(advocate.email, subject="You earned a badge")
    count = db.session.query(UserBadge).count()
    assert badges.evaluate(db.session, advocate.id) == []
    assert db.session.query(UserBadge).count() == count
    with time_machine.travel(utcnow() + timedelta(days=366)):
        assert runner.invoke(args=["badges", "evaluate"]).exit_code == 0
    assert "one-year" in badge_keys(advocate.id)


def test_manual_badge_grant_audited_once(admin_client, advocate):
    champion = db.session.query(Badge).filter_by(key="champion").one()
    data = {"email": advocate.email, "badge_id": str(champion.id), "reason": "Keynote"}
    assert post_form(admin_client, "/admin/badges", data).status_code == 302
    again = post_form(admin_client, "/admin/badges", data)
    assert again.status_code == 422 and b"already has" in again.data
    assert "champion" in badge_keys(advocate.id)
    assert db.session.query(AuditEvent).filter_by(action="badge.grant").count() == 1


def test_badge_gallery(advocate_client, advocate):
    _activity(advocate.id, "speaking")
    body = advocate_client.get("/me/badges").get_data(as_text=True)
    assert "First speaking" in body and "Still to earn" in body and "Earned" in body


# --- leaderboard ---------------------------------------------------------------------------------------------------


def test_leaderboard_periods_ties_and_exclusions(app, make_user):
    a, b, c = (make_user(email=f"{n}@example.com", name=n.upper()) for n in "abc")
    hidden = make_user(email="hidden@example.com")
    staff = make_user(email="s@example.com", role=Role.STAFF)
    sus = make_user(email="sus@example.com")
    from portal.models import AdvocateProfile

    db.session.add(AdvocateProfile(user_id=hidden.id, show_on_leaderboard=False))
    db.session.commit()
    march_end = datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC)
    with time_machine.travel(march_end - timedelta(days=1), tick=False):
        give(a.id, 100, key="a1")
    with time_machine.travel(march_end, tick=False):
        give(b.id, 100, key="b1")
        give(hidden.id, 900, key="h1")
        give(staff.id, 900, key="s1")
        give(sus.id, 900, key="x1")
    with time_machine.travel(datetime(2026, 4, 1, 0, 0, 1, tzinfo=UTC), tick=False):
        give(c.id, 50, key="c1")
    db.session.query(User).filter_by(id=sus.id).update({"status": Status.SUSPENDED})
    db.session.commit()
    q1 = datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC)
    rows, _ = leaderboard.ranking(db.session, "quarter", now=q1)
    assert [r.name for r in rows] == ["A", "B"]  # tie at 100: A reached it first
    rows, _ = leaderboard.ranking(db.session, "quarter", now=datetime(2026, 4, 2, tzinfo=UTC))
    assert [r.name for r in rows] == ["C"]
    rows, _ = leaderboard.ranking(db.session, "month", now=datetime(2026, 4, 2, tzinfo=UTC))
    assert [r.name for r in rows] == ["C"]
    rows, _ = leaderboard.ranking(db.session, "all", now=datetime(2026, 4, 2, tzinfo=UTC))
    assert [r.name for r in rows] == ["A", "B", "C"]


def test_leaderboard_top_50_plus_own_rank(app, advocate_client, advocate, make_user):
    for i in range(55):
        u = make_user(email=f"lb{i}@example.com")
        give(u.id, 1000 + i, key=f"lb{i}")
    give(advocate.id, 5, key="me")
    rows, mine = leaderboard.ranking(db.session, "all", viewer_id=advocate.id)
    assert len(rows) == 50 and mine.rank == 56
    assert "You are <strong>#56</strong>" in advocate_client.get("/leaderboard").get_data(as_text=True)


# --- referrals --------------------------------------------------------------------------------------------------------


def test_referral_credited_once(app, advocate_client, advocate, runner, mailbox):
    link = advocate_client.get("/me/referrals").get_data(as_text=True)
    import re

    code = re.search(r'/r/([^"]+)"', link).group(1)
    visitor = app.test_client()
    assert visitor.get(f"/r/{code}").status_code == 302
    post_form(
        visitor,
        "/auth/register",
        {
            "name": "Ref Erred",
            "email": "referred@example.com",
            "company": "Co",
            "job_title": "CTO",
            "password": "amber-crane-forest-6",
            "confirm": "amber-crane-forest-6",
            "accept_terms": "y",
        },
    )
    new = db.session.query(User).filter_by(email="referred@example.com").one()
    assert new.referred_by_id == advocate.id
    db.session.query(User).filter_by(id=new.id).update({"status": Status.PENDING})
    db.session.commit()
    assert runner.invoke(args=["users", "approve", "referred@example.com"]).exit_code == 0
    from portal.services import referrals

    referrals.credit_referral(db.session, reload(User, new.id))
    db.session.commit()
    assert db.session.query(PointsEntry).filter_by(user_id=advocate.id, source=EntrySource.REFERRAL).count() == 1
    assert "points credited" in advocate_client.get("/me/referrals").get_data(as_text=True)
    forged = app.test_client()
    forged.get("/r/forged-code")
    with forged.session_transaction() as s:
        assert "referred_by" not in s
