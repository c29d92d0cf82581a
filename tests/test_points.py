"""The points ledger: append-only entries, balances as sums, idempotent awards, reversals once,
`flask points verify`, profile-completion points once, and admin adjustments."""

import re
from html import unescape

import pytest
from sqlalchemy import func, select, text

from portal.extensions import db
from portal.models import (
    ActivityType,
    EntryKind,
    EntrySource,
    PointsBalance,
    PointsEntry,
    Role,
    User,
)
from portal.services import points, profiles, rewards
from portal.services.errors import Conflict, DomainError, NotFound
from tests.support import (
    assert_ledger_consistent,
    audits,
    cached,
    complete_profile_form,
    entries,
    give,
    ledger_rows,
    make_reward,
    page_text,
    post_form,
    recorded_sql,
    redeem,
    reload,
)


def ledger_balance(user_id: int) -> int:
    return sum(e.amount for e in entries(user_id))


def writes_to(statements: list[str], table: str) -> list[str]:
    """The UPDATE and DELETE statements on ``table`` among those recorded."""
    return [s for s in statements if re.match(rf'^(update\s+"?{table}"?\b|delete\s+from\s+"?{table}"?\b)', s)]


# --- balances are sums of entries ------------------------------------------------------------------------------


def test_balance_is_the_sum_of_entries_and_cache_agrees_after_each_operation(app, advocate):
    uid = advocate.id
    steps = [(300, EntryKind.EARNED), (-120, EntryKind.ADJUSTED), (45, EntryKind.ADJUSTED), (500, EntryKind.EARNED)]
    expected_balance = expected_lifetime = 0
    for i, (amount, kind) in enumerate(steps):
        points.award(db.session, uid, amount, key=f"step:{i}", reason="step", source=EntrySource.MANUAL, kind=kind)
        db.session.commit()
        expected_balance += amount
        expected_lifetime += amount
        assert ledger_balance(uid) == expected_balance
        assert cached(uid) == (expected_balance, expected_lifetime)
        assert_ledger_consistent(uid)
    assert [e.amount for e in entries(uid)] == [300, -120, 45, 500]
    assert points.ledger_sums(db.session, uid)[0][1:] == (725, 725)


def test_spending_lowers_the_balance_but_not_lifetime(app, advocate):
    give(advocate.id, 800)
    rid = make_reward(cost=300)
    rewards.redeem(db.session, reload(User, advocate.id), rid, "spend-1")
    db.session.commit()
    assert cached(advocate.id) == (500, 800)
    debit = entries(advocate.id, kind=EntryKind.REDEEMED)
    assert [(e.amount, e.counts_toward_lifetime, e.source) for e in debit] == [(-300, False, EntrySource.REDEMPTION)]
    assert debit[0].actor_id == advocate.id  # the advocate redeeming is the one acting
    assert_ledger_consistent(advocate.id)


def test_same_key_twice_yields_one_entry(app, advocate):
    first, created = points.award(
        db.session, advocate.id, 250, key="participation:7:complete", reason="Talk", source=EntrySource.PARTICIPATION
    )
    db.session.commit()
    # A retry of the same event, even with a different amount, records nothing new.
    again, created_again = points.award(
        db.session,
        advocate.id,
        999,
        key="participation:7:complete",
        reason="Talk (retry)",
        source=EntrySource.PARTICIPATION,
    )
    db.session.commit()
    assert created is True and created_again is False and again.id == first.id
    rows = entries(advocate.id)
    assert [(e.amount, e.idempotency_key) for e in rows] == [(250, "participation:7:complete")]
    assert cached(advocate.id) == (250, 250)
    assert_ledger_consistent(advocate.id)


def test_zero_and_wrong_kind_awards_are_refused(app, advocate):
    with pytest.raises(DomainError):
        points.award(db.session, advocate.id, 0, key="zero", reason="x", source=EntrySource.MANUAL)
    for kind in (EntryKind.REDEEMED, EntryKind.REVERSED):
        with pytest.raises(DomainError):
            points.award(
                db.session, advocate.id, 10, key=f"kind-{kind.value}", reason="x", source=EntrySource.MANUAL, kind=kind
            )
    db.session.rollback()
    assert entries(advocate.id) == []


# --- reversals -------------------------------------------------------------------------------------------------


def test_a_reversal_undoes_an_entry_once(app, advocate, admin):
    keep, _ = give(advocate.id, 200, key="good")
    wrong, _ = give(advocate.id, 300, key="mistake")
    assert cached(advocate.id) == (500, 500)

    rev, created = points.reverse(db.session, wrong, reason="Awarded to the wrong person", actor_id=admin.id)
    db.session.commit()
    assert created
    rev = reload(PointsEntry, rev.id)
    assert (rev.amount, rev.kind, rev.reverses_id, rev.actor_id) == (-300, EntryKind.REVERSED, wrong, admin.id)
    assert cached(advocate.id) == (200, 200)  # an earned entry reversed no longer counts toward the level

    again, created_again = points.reverse(db.session, wrong, reason="clicked twice", actor_id=admin.id)
    db.session.commit()
    assert created_again is False and again.id == rev.id
    assert len(entries(advocate.id, kind=EntryKind.REVERSED)) == 1
    assert cached(advocate.id) == (200, 200)

    with pytest.raises(DomainError):  # a reversal is not itself reversed (use an adjustment)
        points.reverse(db.session, rev.id, reason="undo the undo")
    db.session.rollback()
    with pytest.raises(NotFound):
        points.reverse(db.session, 987654, reason="nothing")
    db.session.rollback()
    # The original stays in the ledger, unchanged.
    original = reload(PointsEntry, wrong)
    assert (original.amount, original.kind, original.reverses_id) == (300, EntryKind.EARNED, None)
    assert [e.id for e in entries(advocate.id)] == [keep, wrong, rev.id]
    assert_ledger_consistent(advocate.id)


def test_a_reversal_cannot_take_the_balance_below_zero(app, advocate):
    earned, _ = give(advocate.id, 100)
    rewards.redeem(db.session, reload(User, advocate.id), make_reward(cost=80), "spent")
    db.session.commit()
    with pytest.raises(points.InsufficientPoints):
        points.reverse(db.session, earned, reason="too late")
    db.session.rollback()
    assert cached(advocate.id) == (20, 100)
    assert entries(advocate.id, kind=EntryKind.REVERSED) == []
    assert_ledger_consistent(advocate.id)


# --- append-only -----------------------------------------------------------------------------------------------


def test_the_ledger_is_append_only(app, advocate, advocate_client, admin, admin_client):
    """A whole life cycle (earn, retry, adjust, redeem, cancel, fulfil, reverse) only ever INSERTs ledger rows."""
    give(advocate.id, 1000, key="seed")
    before = ledger_rows()
    rid = make_reward(cost=200, stock=3, name="Hoodie")
    with recorded_sql() as sql:
        give(advocate.id, 1000, key="seed")  # retry: nothing
        earned, _ = give(advocate.id, 150, key="talk")
        assert (
            post_form(
                admin_client,
                "/admin/points",
                {"email": advocate.email, "amount": "-50", "reason": "Duplicate award", "idempotency_key": "adj-00001"},
            ).status_code
            == 302
        )
        assert redeem(advocate_client, rid, "order-cancel").status_code == 302
        first = db.session.scalar(select(func.max(PointsEntry.source_id)).where(PointsEntry.kind == EntryKind.REDEEMED))
        assert (
            post_form(advocate_client, f"/me/redemptions/{first}/cancel", {}, page="/me/redemptions").status_code == 302
        )
        assert redeem(advocate_client, rid, "order-keep").status_code == 302
        db.session.rollback()
        second = db.session.scalar(
            select(func.max(PointsEntry.source_id)).where(PointsEntry.kind == EntryKind.REDEEMED)
        )
        assert (
            post_form(
                admin_client, f"/admin/redemptions/{second}/fulfil", {"note": "sent"}, page="/admin/redemptions"
            ).status_code
            == 302
        )
        points.reverse(db.session, earned, reason="mistake", actor_id=admin.id)
        db.session.commit()
    assert any(s.startswith("insert into points_entries") for s in sql), "the workflow wrote nothing?"
    assert writes_to(sql, "points_entries") == []
    after = ledger_rows()
    assert {k: after[k] for k in before} == before  # rows written earlier are untouched
    kinds = [e.kind for e in entries(advocate.id)]
    assert kinds == [
        EntryKind.EARNED,
        EntryKind.EARNED,
        EntryKind.ADJUSTED,
        EntryKind.REDEEMED,
        EntryKind.REVERSED,
        EntryKind.REDEEMED,
        EntryKind.REVERSED,
    ]
    assert cached(advocate.id) == (1000 + 150 - 50 - 200 - 150, 1000 + 150 - 50 - 150)
    assert_ledger_consistent(advocate.id)


# --- flask points verify ------------------------------------------------------------------------------------------


def test_points_verify_command(app, runner, advocate, make_user):
    other = make_user()
    give(advocate.id, 400)
    give(other.id, 90)
    rewards.redeem(db.session, reload(User, advocate.id), make_reward(cost=150), "v1")
    db.session.commit()
    assert points.verify(db.session) == []
    ok = runner.invoke(args=["points", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "All balances agree" in ok.output

    # Someone edits a cached balance by hand: the command notices and says whose.
    db.session.execute(text("UPDATE points_balances SET balance = balance + 7 WHERE user_id = :u"), {"u": advocate.id})
    db.session.commit()
    problems = points.verify(db.session)
    assert len(problems) == 1 and f"user {advocate.id}" in problems[0]
    bad = runner.invoke(args=["points", "verify"])
    assert bad.exit_code == 1
    assert f"user {advocate.id}: cached (257, 400) but ledger says (250, 400)" in bad.output
    assert "All balances agree" not in bad.output

    # Put it back; then the lifetime column and a balance row without entries are caught too.
    db.session.execute(text("UPDATE points_balances SET balance = balance - 7 WHERE user_id = :u"), {"u": advocate.id})
    db.session.execute(text("UPDATE points_balances SET lifetime_earned = 5 WHERE user_id = :u"), {"u": other.id})
    db.session.commit()
    bad = runner.invoke(args=["points", "verify"])
    assert bad.exit_code == 1 and f"user {other.id}" in bad.output and f"user {advocate.id}" not in bad.output
    db.session.execute(text("UPDATE points_balances SET lifetime_earned = 90 WHERE user_id = :u"), {"u": other.id})
    ghost = make_user()
    db.session.add(PointsBalance(user_id=ghost.id, balance=10, lifetime_earned=10))
    db.session.commit()
    bad = runner.invoke(args=["points", "verify"])
    assert bad.exit_code == 1 and f"user {ghost.id}" in bad.output and "no ledger entries" in bad.output


# --- profile completion ------------------------------------------------------------------------------------------


def test_profile_completion_awards_points_once_through_the_pages(app, advocate_client, advocate):
    review = db.session.scalar(select(ActivityType).where(ActivityType.key == "review"))
    assert (
        post_form(
            advocate_client, "/me/preferences/activities", {f"opt_{review.id}": "y"}, page="/me/preferences"
        ).status_code
        == 302
    )
    # Almost complete (no LinkedIn): nothing yet.
    assert post_form(advocate_client, "/me/profile", complete_profile_form(linkedin_url="")).status_code == 302
    assert entries(advocate.id) == []
    for _ in range(2):  # complete, then saved again
        assert post_form(advocate_client, "/me/profile", complete_profile_form()).status_code == 302
    # Saving preferences again also checks completeness: still one award.
    post_form(advocate_client, "/me/preferences/activities", {f"opt_{review.id}": "y"}, page="/me/preferences")
    profile_entries = entries(advocate.id, source=EntrySource.PROFILE)
    assert [(e.amount, e.kind) for e in profile_entries] == [(app.config["POINTS_PROFILE_COMPLETE"], EntryKind.EARNED)]
    assert cached(advocate.id) == (100, 100)
    assert "+100" in page_text(advocate_client.get("/me/points"))
    assert_ledger_consistent(advocate.id)


def test_profile_completion_awards_points_once_through_the_service(app, advocate):
    review = db.session.scalar(select(ActivityType).where(ActivityType.key == "review"))
    form = complete_profile_form()
    data = profiles.ProfileInput(
        name=form["name"],
        job_title=form["job_title"],
        company=form["company"],
        industry_id=int(form["industry_id"]),
        size_band_id=int(form["size_band_id"]),
        country_code="DE",
        product_ids=[int(p) for p in form["product_ids"]],
        use_cases=form["use_cases"],
        topics=form["topics"],
        story=form["story"],
        linkedin_url=form["linkedin_url"],
    )
    user = db.session.get(User, advocate.id)
    profiles.update_profile(db.session, user, data)
    assert profiles.award_if_complete(db.session, user, profiles.get_profile(db.session, user)) is False  # 91 %
    profiles.set_activity_preferences(db.session, user, {review.id: (True, "")})  # now 100 %
    db.session.commit()
    user = db.session.get(User, advocate.id)
    profiles.update_profile(db.session, user, data)
    assert profiles.award_if_complete(db.session, user, profiles.get_profile(db.session, user)) is False
    db.session.commit()
    assert len(entries(advocate.id, source=EntrySource.PROFILE)) == 1
    assert cached(advocate.id) == (100, 100)


# --- admin adjustments --------------------------------------------------------------------------------------------


def _adjust(client, email, amount, reason, key):
    return post_form(
        client, "/admin/points", {"email": email, "amount": str(amount), "reason": reason, "idempotency_key": key}
    )


def test_admin_adjustment_needs_a_reason_and_is_audit_logged(app, admin_client, admin, advocate):
    for reason in ("", "   "):
        resp = _adjust(admin_client, advocate.email, 75, reason, "adj-noreason")
        assert resp.status_code == 422
        assert "This field is required" in page_text(resp)
    assert entries(advocate.id) == [] and audits("points.adjust") == []

    resp = _adjust(admin_client, advocate.email, 75, "Great webinar answers", "adj-000001")
    assert resp.status_code == 302
    (entry,) = entries(advocate.id)
    assert (entry.amount, entry.kind, entry.source, entry.actor_id, entry.reason) == (
        75,
        EntryKind.ADJUSTED,
        EntrySource.MANUAL,
        admin.id,
        "Great webinar answers",
    )
    (event,) = audits("points.adjust")
    assert (event.actor_id, event.target_type, event.target_id) == (admin.id, "user", advocate.id)
    assert event.details["amount"] == 75 and event.details["reason"] == "Great webinar answers"
    assert event.details["entry_id"] == entry.id
    assert "Great webinar answers" in page_text(admin_client.get("/admin/points"))

    # The same form submitted twice adjusts once.
    assert _adjust(admin_client, advocate.email, 75, "Great webinar answers", "adj-000001").status_code == 302
    assert len(entries(advocate.id)) == 1 and len(audits("points.adjust")) == 1
    assert cached(advocate.id) == (75, 75)

    # The service itself refuses a blank reason too (not only the form).
    with pytest.raises(DomainError, match="reason"):
        points.adjust(db.session, db.session.get(User, advocate.id), 10, "  ", admin.id, key="svc-1")
    db.session.rollback()
    assert_ledger_consistent(advocate.id)


def test_negative_adjustment_beyond_the_balance_is_refused(app, admin_client, advocate):
    give(advocate.id, 60)
    resp = _adjust(admin_client, advocate.email, -61, "Reclaim test points", "adj-over-01")
    assert resp.status_code == 422
    assert "Not enough points" in page_text(resp)
    assert cached(advocate.id) == (60, 60) and len(entries(advocate.id)) == 1
    assert audits("points.adjust") == []
    # Down to exactly zero is fine.
    assert _adjust(admin_client, advocate.email, -60, "Reclaim test points", "adj-over-02").status_code == 302
    assert cached(advocate.id) == (0, 0)
    assert len(audits("points.adjust")) == 1
    assert_ledger_consistent(advocate.id)


def test_a_used_adjustment_form_sent_again_with_other_values_is_refused_not_lost(
    app, admin_client, admin, advocate, make_user
):
    ben = make_user(name="Ben Second")
    assert _adjust(admin_client, advocate.email, 50, "Webinar panel", "adj-reused-1").status_code == 302
    assert f"Adjusted {advocate.name}'s points by +50." in page_text(admin_client.get("/admin/points"))
    # Back button, another advocate and amount, same form (same key): refused, with a clear message.
    resp = _adjust(admin_client, ben.email, 70, "Case study", "adj-reused-1")
    assert resp.status_code == 409
    body = page_text(resp)
    assert "This form was already used for another adjustment; reload the page and enter it again." in body
    assert "Adjusted" not in body
    assert entries(ben.id) == [] and [e.amount for e in entries(advocate.id)] == [50]
    # Same advocate, another amount or reason: refused too.
    assert _adjust(admin_client, advocate.email, 60, "Webinar panel", "adj-reused-1").status_code == 409
    assert _adjust(admin_client, advocate.email, 50, "Another reason", "adj-reused-1").status_code == 409
    # The very same form again (a double click): recorded once, and the page says so instead of "Adjusted".
    assert _adjust(admin_client, advocate.email, 50, "Webinar panel", "adj-reused-1").status_code == 302
    page = page_text(admin_client.get("/admin/points"))
    assert f"That adjustment of {advocate.name}'s points was already recorded." in page
    assert "points by +50." not in page
    assert [e.amount for e in entries(advocate.id)] == [50] and len(audits("points.adjust")) == 1
    # Through the service: a Conflict, and the flag tells a first adjustment from a repeat.
    with pytest.raises(Conflict):
        points.adjust(
            db.session, db.session.get(User, ben.id), 70, "Case study", admin.id, key=f"adjust:{admin.id}:adj-reused-1"
        )
    db.session.rollback()
    _, created = points.adjust(
        db.session,
        db.session.get(User, advocate.id),
        50,
        "Webinar panel",
        admin.id,
        key=f"adjust:{admin.id}:adj-reused-1",
    )
    assert created is False
    db.session.rollback()
    assert_ledger_consistent(advocate.id, ben.id)


@pytest.mark.parametrize("amount", ["0", "100001", "-100001", "ten"])
def test_adjustment_amount_is_checked(app, admin_client, advocate, amount):
    resp = _adjust(admin_client, advocate.email, amount, "because", "adj-amount-1")
    assert resp.status_code == 422
    assert entries(advocate.id) == []


def test_adjustment_only_for_advocates_and_only_by_admins(
    app, admin_client, staff, advocate, advocate_client, staff_client
):
    resp = _adjust(admin_client, staff.email, 10, "staff are not in the program", "adj-staff-1")
    assert resp.status_code == 422 and "No advocate with that email" in page_text(resp)
    resp = _adjust(admin_client, "nobody@example.com", 10, "who?", "adj-nobody-1")
    assert resp.status_code == 422
    for c in (advocate_client, staff_client):
        assert c.get("/admin/points").status_code == 403
        c.post(
            "/admin/points",
            data={"email": advocate.email, "amount": "500", "reason": "self-service", "idempotency_key": "adj-self-01"},
        )
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(PointsEntry)) == 0
    assert db.session.scalar(select(func.count()).select_from(PointsEntry).where(PointsEntry.user_id == staff.id)) == 0
    assert db.session.get(User, staff.id).role == Role.STAFF


# --- levels -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lifetime,name,next_name,to_next",
    [
        (0, "Member", "Bronze", 500),
        (499, "Member", "Bronze", 1),
        (500, "Bronze", "Silver", 1000),
        (1499, "Bronze", "Silver", 1),
        (1500, "Silver", "Gold", 2500),
        (3999, "Silver", "Gold", 1),
        (4000, "Gold", "Platinum", 6000),
        (9999, "Gold", "Platinum", 1),
        (10000, "Platinum", None, None),
        (250000, "Platinum", None, None),
    ],
)
def test_level_thresholds(app, lifetime, name, next_name, to_next):
    level = points.level_for(lifetime)
    assert (level.name, level.next_name, level.to_next) == (name, next_name, to_next)


def test_level_progress(app):
    assert points.level_for(700).progress == 20  # (700 - 500) / (1500 - 500)
    assert points.level_for(500).progress == 0
    assert points.level_for(1499).progress == 99
    assert points.level_for(10000).progress == 100


def _dashboard_level(client):
    """(level name, level progress %, the points card's text) from the dashboard."""
    html = client.get("/dashboard").get_data(as_text=True)
    card = re.search(r'<section class="card" aria-labelledby="h-points">(.*?)</section>', html, re.S).group(1)
    level = re.search(r"level <strong>([^<]+)</strong>", card).group(1)
    meter = re.search(r'<progress class="meter" max="100" value="(\d+)"', card)
    return level, (int(meter.group(1)) if meter else None), unescape(card)


def test_level_follows_lifetime_points_not_the_balance(app, advocate, advocate_client):
    level, progress, text_ = _dashboard_level(advocate_client)
    assert (level, progress) == ("Member", 0) and "500 more points to reach Bronze" in text_
    give(advocate.id, 499)
    assert _dashboard_level(advocate_client)[0] == "Member"
    give(advocate.id, 101)  # 600 in all
    level, progress, text_ = _dashboard_level(advocate_client)
    assert (level, progress) == ("Bronze", 10) and "900 more points to reach Silver" in text_
    # Spending 500 leaves 100 to spend, and the level stays Bronze.
    assert redeem(advocate_client, make_reward(cost=500, name="Headphones"), "lvl-spend-1").status_code == 302
    assert cached(advocate.id) == (100, 600)
    level, progress, text_ = _dashboard_level(advocate_client)
    assert (level, progress) == ("Bronze", 10) and "900 more points to reach Silver" in text_
    assert "100</strong> points to spend" in text_
    points_page = page_text(advocate_client.get("/me/points"))
    assert "Level: Bronze" in points_page and "600 points earned in all" in points_page
    # Reaching the top: no progress bar, a thank-you.
    give(advocate.id, 9400)
    level, progress, text_ = _dashboard_level(advocate_client)
    assert (level, progress) == ("Platinum", None)
    assert "The highest level" in page_text(advocate_client.get("/me/points"))


@pytest.fixture
def custom_levels(app_config):
    app_config["POINTS_LEVELS"] = [["Legend", 1000], ["Rookie", 0], ["Pro", 100]]  # any order


def test_points_levels_config_overrides_the_defaults(custom_levels, app, advocate, advocate_client):
    assert [name for name, _ in points.levels()] == ["Rookie", "Pro", "Legend"]
    assert points.level_for(99).name == "Rookie" and points.level_for(100).name == "Pro"
    assert points.level_for(999).name == "Pro" and points.level_for(1000).name == "Legend"
    give(advocate.id, 550)
    level, progress, text_ = _dashboard_level(advocate_client)
    assert (level, progress) == ("Pro", 50) and "450 more points to reach Legend" in text_
    assert "Bronze" not in text_


def test_adjustment_reason_is_escaped(app, admin_client, advocate, advocate_client):
    reason = "<script>alert('r')</script> bonus"
    assert _adjust(admin_client, advocate.email, 30, reason, "adj-xss-0001").status_code == 302
    for resp in (admin_client.get("/admin/points"), advocate_client.get("/me/points")):
        body = resp.get_data(as_text=True)
        assert "<script>alert('r')" not in body and "&lt;script&gt;alert(" in body
