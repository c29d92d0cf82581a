"""Races on the recognition ledger, on SQLite and (with TEST_DATABASE_URL) on PostgreSQL: the same
award at once, the last item in stock, one balance spent by many requests, cancellations at once,
badges and referral credits under concurrency.

Requests go through the real views with one test client per thread (each request runs in its own
app context, as in production; on SQLite a POST starts with BEGIN IMMEDIATE). Service-level races
push their own app context per thread and begin the write as a POST would.
"""

from collections import Counter

from sqlalchemy import func, select

from portal.database import begin_write
from portal.extensions import db
from portal.models import (
    AuditEvent,
    EntryKind,
    EntrySource,
    ParticipationStatus,
    PointsEntry,
    Redemption,
    RedemptionStatus,
    Reward,
    Status,
    User,
    UserBadge,
)
from portal.services import participation, points, rewards
from portal.services.errors import DomainError
from tests.support import (
    activity_type_id,
    assert_ledger_consistent,
    badge_keys,
    cached,
    client_for,
    clone_client,
    csrf_from,
    entries,
    give,
    make_reward,
    page_text,
    participation_row,
    post_form,
    reload,
    run_threads,
)


def csrf_token(client, page: str) -> str:
    """The CSRF token of the form on ``page``."""
    return csrf_from(client.get(page).get_data(as_text=True))


def running_balances(user_id: int) -> list[int]:
    """The balance after each entry, in the order the entries were written."""
    out, total = [], 0
    for e in entries(user_id):
        total += e.amount
        out.append(total)
    return out


def _no_crashes(results):
    crashes = [r for r in results if isinstance(r, BaseException)]
    assert not crashes, crashes
    statuses = [getattr(r, "status_code", None) for r in results]
    assert all(s is not None and s < 500 for s in statuses), Counter(statuses)


def _in_own_context(app, fn):
    """fn(i) inside a fresh app context whose session starts as a writer, like a POST request."""

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


# --- the same award ten times at once ---------------------------------------------------------------------------


def test_ten_concurrent_awards_of_one_event_make_one_entry(app, advocate):
    pid = participation_row(advocate.id, "webinar")
    db.session.rollback()

    def award(i):
        entry, created = points.award(
            db.session,
            advocate.id,
            250,
            key=f"participation:{pid}:complete",
            reason=f"Webinar (attempt {i})",
            source=EntrySource.PARTICIPATION,
            activity_type_id=activity_type_id("webinar"),
            source_id=pid,
        )
        return created

    results = run_threads(10, _in_own_context(app, award))
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(results) == [False] * 9 + [True]
    assert len(entries(advocate.id)) == 1
    assert cached(advocate.id) == (250, 250)
    assert {"first-activity", "first-webinar"} <= badge_keys(advocate.id)
    assert_ledger_consistent(advocate.id)


def test_ten_concurrent_submits_of_one_adjustment_form(app, admin_client, admin, advocate):
    token = csrf_token(admin_client, "/admin/points")
    clients = [clone_client(app, admin_client) for _ in range(10)]
    data = {
        "csrf_token": token,
        "email": advocate.email,
        "amount": "120",
        "reason": "Conference talk",
        "idempotency_key": "adjust-form-race-1",
    }
    db.session.rollback()
    results = run_threads(10, lambda i: clients[i].post("/admin/points", data=data))
    _no_crashes(results)
    assert [r.status_code for r in results] == [302] * 10
    assert [(e.amount, e.kind) for e in entries(advocate.id)] == [(120, EntryKind.ADJUSTED)]
    db.session.rollback()
    assert (
        db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "points.adjust")) == 1
    )
    assert cached(advocate.id) == (120, 120)
    assert_ledger_consistent(advocate.id)


# --- the last item in stock ------------------------------------------------------------------------------------------


def test_fifty_advocates_race_for_the_last_item(app, make_user, mailbox):
    users = [make_user(name=f"Racer {i:02d}") for i in range(50)]
    for u in users:
        give(u.id, 500)
    rid = make_reward(cost=300, stock=1, name="Signed keyboard")
    clients = [client_for(app, u.email) for u in users]
    tokens = [csrf_token(c, "/rewards") for c in clients]
    db.session.rollback()

    def order(i):
        return clients[i].post(
            "/rewards/redeem",
            data={"csrf_token": tokens[i], "reward_id": str(rid), "idempotency_key": f"race-{i:04d}-key"},
        )

    results = run_threads(50, order)
    _no_crashes(results)
    codes = Counter(r.status_code for r in results)
    assert codes == {302: 1, 303: 49}, codes
    winner = next(i for i, r in enumerate(results) if r.status_code == 302)
    assert results[winner].headers["Location"].endswith("/me/redemptions")

    assert reload(Reward, rid).stock == 0
    (order_row,) = db.session.scalars(select(Redemption)).all()
    assert order_row.user_id == users[winner].id and order_row.status == RedemptionStatus.REQUESTED
    assert len(entries(kind=EntryKind.REDEEMED)) == 1
    for i, u in enumerate(users):
        assert cached(u.id) == ((200, 500) if i == winner else (500, 500))
    for i in [j for j in range(50) if j != winner][:10]:  # the others were told why, on the catalog
        assert "Signed keyboard is out of stock." in page_text(clients[i].get("/rewards"))
    assert "Your order for Signed keyboard is in" in page_text(clients[winner].get("/me/redemptions"))
    assert len(mailbox.wait_for(users[winner].email, subject="We received your order")) == 1
    assert_ledger_consistent(*(u.id for u in users))


def test_fifty_redemptions_of_the_last_item_in_services(app, make_user):
    users = [make_user(email=f"r{i}@example.com") for i in range(50)]
    for u in users:
        give(u.id, 500, key=f"seed:{u.id}")
    rid = make_reward(cost=100, stock=1)
    results = run_threads(
        50,
        _in_own_context(app, lambda i: rewards.redeem(db.session, db.session.get(User, users[i].id), rid, f"idem{i}")),
    )
    ok = [r for r in results if isinstance(r, tuple)]
    assert len(ok) == 1
    assert all(isinstance(r, DomainError) for r in results if not isinstance(r, tuple))
    db.session.rollback()
    assert db.session.get(Reward, rid).stock == 0
    assert db.session.query(Redemption).count() == 1 and points.verify(db.session) == []


# --- one balance, many requests ---------------------------------------------------------------------------------


def test_fifty_concurrent_redemptions_never_overdraw(app, advocate, advocate_client):
    balance = 1000
    give(advocate.id, balance)
    costs = [70, 130, 210]
    rids = {c: make_reward(cost=c, name=f"Item {c}") for c in costs}  # unlimited stock
    token = csrf_token(advocate_client, "/rewards")
    clients = [clone_client(app, advocate_client) for _ in range(50)]
    wanted = [costs[i % 3] for i in range(50)]
    assert sum(wanted) > balance
    db.session.rollback()

    def order(i):
        return clients[i].post(
            "/rewards/redeem",
            data={"csrf_token": token, "reward_id": str(rids[wanted[i]]), "idempotency_key": f"spend-{i:04d}-key"},
        )

    results = run_threads(50, order)
    _no_crashes(results)
    ok = [wanted[i] for i, r in enumerate(results) if r.status_code == 302]
    refused = [wanted[i] for i, r in enumerate(results) if r.status_code == 303]
    assert len(ok) + len(refused) == 50 and ok
    assert sum(ok) <= balance

    final = balance - sum(ok)
    assert cached(advocate.id) == (final, balance)
    assert final >= 0 and min(running_balances(advocate.id)) >= 0
    # Nobody was refused for any reason but the balance: whatever was refused costs more than what is left.
    assert all(cost > final for cost in refused), (final, Counter(refused))
    db.session.rollback()
    orders = db.session.scalars(select(Redemption).where(Redemption.user_id == advocate.id)).all()
    assert sorted(o.points_cost for o in orders) == sorted(ok)
    assert sorted(-e.amount for e in entries(advocate.id, kind=EntryKind.REDEEMED)) == sorted(ok)
    for i in [i for i, r in enumerate(results) if r.status_code == 303][:3]:
        assert "points; you have" in page_text(clients[i].get("/rewards"))
    assert_ledger_consistent(advocate.id)


def test_fifty_redemptions_in_services_never_overdraw(app, advocate):
    give(advocate.id, 1000, key="seed")
    rid = make_reward(cost=150)
    results = run_threads(
        50, _in_own_context(app, lambda i: rewards.redeem(db.session, db.session.get(User, advocate.id), rid, f"k{i}"))
    )
    assert all(isinstance(r, DomainError) for r in results if not isinstance(r, tuple)), results
    ok = [r for r in results if isinstance(r, tuple)]
    assert len(ok) == 6  # 6 * 150 = 900 <= 1000 < 7 * 150
    db.session.rollback()
    assert points.balance(db.session, advocate.id) == 100
    assert points.verify(db.session) == []


def test_a_double_click_storm_orders_once(app, advocate, advocate_client):
    give(advocate.id, 500)
    rid = make_reward(cost=100, stock=10)
    token = csrf_token(advocate_client, "/rewards")
    clients = [clone_client(app, advocate_client) for _ in range(10)]
    db.session.rollback()
    results = run_threads(
        10,
        lambda i: clients[i].post(
            "/rewards/redeem",
            data={"csrf_token": token, "reward_id": str(rid), "idempotency_key": "one-form-many-clicks"},
        ),
    )
    _no_crashes(results)
    assert all(r.status_code == 302 for r in results)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Redemption)) == 1
    assert reload(Reward, rid).stock == 9 and cached(advocate.id) == (400, 500)
    assert_ledger_consistent(advocate.id)


def test_concurrent_orders_respect_the_per_advocate_limit(app, advocate, advocate_client):
    give(advocate.id, 1000)
    rid = make_reward(cost=100, stock=20, limit=2, name="Beanie")
    token = csrf_token(advocate_client, "/rewards")
    clients = [clone_client(app, advocate_client) for _ in range(10)]
    db.session.rollback()
    results = run_threads(
        10,
        lambda i: clients[i].post(
            "/rewards/redeem",
            data={"csrf_token": token, "reward_id": str(rid), "idempotency_key": f"limit-race-{i:03d}"},
        ),
    )
    _no_crashes(results)
    assert Counter(r.status_code for r in results) == {302: 2, 303: 8}
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Redemption)) == 2
    assert reload(Reward, rid).stock == 18 and cached(advocate.id) == (800, 1000)
    assert "as many times as allowed" in page_text(
        clients[next(i for i, r in enumerate(results) if r.status_code == 303)].get("/rewards")
    )
    assert_ledger_consistent(advocate.id)


# --- cancelling at once -----------------------------------------------------------------------------------------------


def test_concurrent_cancellations_refund_once(app, advocate, advocate_client, admin_client, mailbox):
    give(advocate.id, 1000)
    rid = make_reward(cost=150, stock=10, name="Tote bag")
    rounds = 4
    for k in range(rounds):
        assert (
            post_form(
                advocate_client,
                "/rewards/redeem",
                {"reward_id": str(rid), "idempotency_key": f"cancel-race-{k}"},
                page="/rewards",
            ).status_code
            == 302
        )
    db.session.rollback()
    order_ids = list(db.session.scalars(select(Redemption.id).order_by(Redemption.id)))
    assert len(order_ids) == rounds and cached(advocate.id) == (1000 - 150 * rounds, 1000)
    assert reload(Reward, rid).stock == 10 - rounds
    adv_token = csrf_token(advocate_client, "/me/redemptions")
    adm_token = csrf_token(admin_client, "/admin/redemptions")
    second_admin = clone_client(app, admin_client)
    second_advocate = clone_client(app, advocate_client)
    pairs = [
        (advocate_client, "/me/redemptions/{}/cancel", adv_token),  # the advocate and an admin at once
        (admin_client, "/admin/redemptions/{}/cancel", adm_token),
        (second_admin, "/admin/redemptions/{}/cancel", adm_token),  # two admins at once
        (second_advocate, "/me/redemptions/{}/cancel", adv_token),
    ]  # a double click
    combos = [(0, 1), (1, 2), (0, 3), (2, 0)]
    for order_id, (a, b) in zip(order_ids, combos):
        db.session.rollback()
        chosen = [pairs[a], pairs[b]]
        results = run_threads(
            2, lambda i: chosen[i][0].post(chosen[i][1].format(order_id), data={"csrf_token": chosen[i][2]})
        )
        _no_crashes(results)
        assert [r.status_code for r in results] == [302, 302]
        refunds = entries(advocate.id, kind=EntryKind.REVERSED)
        assert len([e for e in refunds if e.source_id == order_id]) == 1
    assert reload(Reward, rid).stock == 10
    assert cached(advocate.id) == (1000, 1000)
    assert len(entries(advocate.id, kind=EntryKind.REVERSED)) == rounds
    db.session.rollback()
    assert all(r.status == RedemptionStatus.CANCELLED for r in db.session.scalars(select(Redemption)))
    mailbox.wait_for(advocate.email, count=rounds, subject="Order cancelled")
    assert len([m for m in mailbox.to(advocate.email) if "Order cancelled" in m.subject]) == rounds
    assert_ledger_consistent(advocate.id)


def test_two_cancellations_in_services_refund_once(app, advocate, admin):
    give(advocate.id, 300, key="seed")
    rid = make_reward(cost=200, stock=3)
    red, _ = rewards.redeem(db.session, reload(User, advocate.id), rid, "one")
    db.session.commit()
    red_id, admin_id = red.id, admin.id  # plain values: threads must not touch this session's objects
    results = run_threads(
        2, _in_own_context(app, lambda i: rewards.cancel(db.session, red_id, db.session.get(User, admin_id)))
    )
    assert not [r for r in results if isinstance(r, BaseException) and not isinstance(r, DomainError)], results
    assert sum(1 for r in results if not isinstance(r, DomainError)) == 1
    db.session.rollback()
    assert points.balance(db.session, advocate.id) == 300 and db.session.get(Reward, rid).stock == 3
    assert db.session.query(PointsEntry).filter_by(kind=EntryKind.REVERSED).count() == 1


# --- badges and referral credits under concurrency -----------------------------------------------------------------


def test_concurrent_activities_grant_each_badge_once(app, advocate, admin):
    """Ten approved reviews completed at once through the participation service: each badge once."""
    pids = [participation_row(advocate.id, "review", status=ParticipationStatus.APPROVED, points=20) for _ in range(10)]
    db.session.rollback()

    def award(i):
        participation.complete(db.session, pids[i], db.session.get(User, admin.id))
        return True

    results = run_threads(10, _in_own_context(app, award))
    assert results == [True] * 10, results
    assert {"first-activity", "first-review", "five-reviews"} <= badge_keys(advocate.id)
    rows = db.session.execute(
        select(UserBadge.badge_id, func.count()).where(UserBadge.user_id == advocate.id).group_by(UserBadge.badge_id)
    ).all()
    assert all(n == 1 for _, n in rows)
    assert cached(advocate.id) == (200, 200)
    assert_ledger_consistent(advocate.id)


def test_concurrent_approvals_credit_the_referrer_once(app, advocate, make_user, admin_client):
    friend = make_user(status=Status.PENDING, name="Pat Pending", referred_by_id=advocate.id)
    token = csrf_token(admin_client, "/admin/pending")
    clients = [admin_client, clone_client(app, admin_client)]
    db.session.rollback()
    results = run_threads(
        2, lambda i: clients[i].post("/admin/pending/approve", data={"csrf_token": token, "user_id": str(friend.id)})
    )
    _no_crashes(results)
    assert reload(User, friend.id).status == Status.ACTIVE
    credits = entries(advocate.id, source=EntrySource.REFERRAL)
    assert [(e.source_id, e.amount) for e in credits] == [(friend.id, app.config["POINTS_REFERRAL"])]
    assert_ledger_consistent(advocate.id)
