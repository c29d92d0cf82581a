"""What follows a credit: every way points are credited still grants the badges now due and sends the
badge email, in the credit's own transaction; a completion evaluates badges once; the same credit twice
evaluates once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from portal import create_app, signals
from portal.extensions import db
from portal.models import (
    ActivityType,
    EntrySource,
    Industry,
    OutboxMessage,
    PointsEntry,
    Product,
    SelectionMode,
    SizeBand,
    Status,
    User,
    UserBadge,
    utcnow,
)
from portal.services import accounts, badges, participation, points, profiles, referrals
from tests.support import badge_keys, give, make_advocate, make_opp, post_form, recorded_sql, reload, user


@pytest.fixture
def evaluations(monkeypatch):
    """The user ids badges were evaluated for, in order (the real evaluation runs)."""
    calls = []
    real = badges.evaluate

    def counting(session, user_id):
        calls.append(user_id)
        return real(session, user_id)

    monkeypatch.setattr(badges, "evaluate", counting)
    return calls


def badge_mails(user_id: int) -> list[tuple[str, str]]:
    db.session.rollback()
    return [
        (m.recipient, m.subject)
        for m in db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.template == "badge_earned", OutboxMessage.user_id == user_id)
            .order_by(OutboxMessage.id)
        )
    ]


def badge_queries(statements: list[str]) -> list[str]:
    """The statements that read the badge rules: one per evaluation."""
    return [s for s in statements if re.search(r"\bfrom badges\b", s)]


def one_year_ago(user_id: int) -> None:
    db.session.execute(update(User).where(User.id == user_id).values(approved_at=utcnow() - timedelta(days=400)))
    db.session.commit()


# --- a completion evaluates once ---------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [50, 0])
def test_completing_a_participation_evaluates_badges_once(app, make_user, admin, evaluations, amount):
    adv = make_advocate(make_user, "once@example.com")
    oid = make_opp("review", points=amount, mode=SelectionMode.SELECTION)
    pid = participation.request(db.session, user(adv), oid).id
    db.session.commit()
    participation.approve(db.session, pid, user(admin.id))
    db.session.commit()
    evaluations.clear()
    with recorded_sql() as statements:
        participation.complete(db.session, pid, user(admin.id))
        db.session.commit()
    assert evaluations == [adv]
    assert len(badge_queries(statements)) == 1
    assert badge_keys(adv) == {"first-activity", "first-review"}
    assert len(db.session.scalars(select(PointsEntry).where(PointsEntry.user_id == adv)).all()) == (amount > 0)


def test_approving_and_taking_a_seat_evaluate_once_each(app, make_user, admin, evaluations):
    adv = make_advocate(make_user, "board@example.com")
    board = make_opp("advisory_board", mode=SelectionMode.SELECTION)
    pid = participation.request(db.session, user(adv), board).id
    db.session.commit()
    assert evaluations == []  # a request waiting for selection is nobody's badge yet
    participation.approve(db.session, pid, user(admin.id))
    db.session.commit()
    assert evaluations == [adv] and badge_keys(adv) == {"board-member"}
    evaluations.clear()
    participation.request(db.session, user(adv), make_opp("review", mode=SelectionMode.FIRST_COME))
    db.session.commit()
    assert evaluations == [adv]


# --- every credit path: the badges and the email it gave before ---------------------------------------------------


def test_participation_completion_grants_badges_and_mails_them(app, make_user, admin):
    adv = make_advocate(make_user, "doer@example.com")
    pid = participation.request(db.session, user(adv), make_opp("review", points=50, mode=SelectionMode.FIRST_COME)).id
    db.session.commit()
    assert badge_keys(adv) == set()
    participation.complete(db.session, pid, user(admin.id))
    db.session.commit()
    assert badge_keys(adv) == {"first-activity", "first-review"}
    assert badge_mails(adv) == [("doer@example.com", "You earned a badge: First step")]  # one mail for both


def _complete_profile_input(u: User) -> profiles.ProfileInput:
    return profiles.ProfileInput(
        name=u.name,
        job_title="CISO",
        company="Bluefin Bank",
        industry_id=db.session.scalar(select(Industry.id).order_by(Industry.id)),
        size_band_id=db.session.scalar(select(SizeBand.id).order_by(SizeBand.id)),
        country_code="DE",
        product_ids=list(db.session.scalars(select(Product.id).order_by(Product.id).limit(2))),
        use_cases=["fraud detection"],
        topics=["zero trust"],
        story="We cut fraud losses by half in a year. Onboarding went from three weeks to two days, and more.",
        linkedin_url="https://www.linkedin.com/in/ada",
    )


def test_profile_completion_grants_badges_and_mails_them(app, advocate):
    """A completed profile credits points; the badges now due (here: a year as an advocate) come with it."""
    one_year_ago(advocate.id)
    review = db.session.scalar(select(ActivityType.id).where(ActivityType.key == "review"))
    profiles.set_activity_preferences(db.session, user(advocate.id), {review: (True, "")})  # not complete yet
    db.session.commit()
    assert badge_keys(advocate.id) == set()
    u = user(advocate.id)
    profiles.update_profile(db.session, u, _complete_profile_input(u))
    db.session.commit()
    assert [e.source for e in db.session.scalars(select(PointsEntry).where(PointsEntry.user_id == advocate.id))] == [
        EntrySource.PROFILE
    ]
    assert badge_keys(advocate.id) == {"one-year"}
    assert badge_mails(advocate.id) == [(advocate.email, "You earned a badge: One year strong")]


def test_referral_credit_grants_badges_and_mails_them(app, advocate, make_user):
    for i in range(2):
        friend = make_user(name=f"Friend {i}", referred_by_id=advocate.id)
        assert referrals.credit_referral(db.session, reload(User, friend.id)) is True
        db.session.commit()
    assert badge_keys(advocate.id) == set()
    third = make_user(name="Friend 3", status=Status.PENDING, referred_by_id=advocate.id)
    accounts.approve(db.session, reload(User, third.id), actor_id=None)  # approval credits the referrer
    db.session.commit()
    assert badge_keys(advocate.id) == {"three-referrals"}
    assert badge_keys(third.id) == set()
    assert badge_mails(advocate.id) == [(advocate.email, "You earned a badge: Connector")]


def test_admin_adjustment_grants_badges_and_mails_them(app, admin_client, advocate):
    one_year_ago(advocate.id)
    resp = post_form(
        admin_client,
        "/admin/points",
        {"email": advocate.email, "amount": "25", "reason": "Goodwill", "idempotency_key": "adj-signals-1"},
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    db.session.rollback()
    assert points.balance(db.session, advocate.id) == 25
    assert badge_keys(advocate.id) == {"one-year"}
    assert badge_mails(advocate.id) == [(advocate.email, "You earned a badge: One year strong")]


# --- once per credit, in the credit's transaction ----------------------------------------------------------------


def test_the_same_credit_twice_evaluates_once(app, advocate, evaluations):
    for _ in range(2):
        _, created = points.award(
            db.session, advocate.id, 10, key="same-event", reason="Once", source=EntrySource.MANUAL
        )
        db.session.commit()
    assert evaluations == [advocate.id]
    assert created is False


def test_what_follows_a_credit_is_rolled_back_with_it(app, advocate):
    one_year_ago(advocate.id)
    points.award(db.session, advocate.id, 10, key="rolled-back", reason="Not kept", source=EntrySource.MANUAL)
    db.session.flush()
    assert db.session.scalar(select(func.count()).select_from(UserBadge)) == 1  # granted in this transaction
    db.session.rollback()
    assert badge_keys(advocate.id) == set()
    assert badge_mails(advocate.id) == []
    assert db.session.scalar(select(func.count()).select_from(PointsEntry)) == 0


def test_a_reversal_evaluates_nothing(app, advocate, evaluations):
    """Badges are never taken back, and a reversal credits nothing: no evaluation (as before)."""
    entry_id, _ = give(advocate.id, 100)
    assert evaluations == [advocate.id]
    points.reverse(db.session, entry_id, reason="Mistake")
    db.session.commit()
    assert evaluations == [advocate.id]


# --- the signal ---------------------------------------------------------------------------------------------------


def test_a_new_entry_is_announced_once_with_the_callers_session(app, advocate):
    heard = []

    def listener(sender, **kw):
        heard.append(kw)

    with signals.points_awarded.connected_to(listener):
        first, created = points.award(db.session, advocate.id, 10, key="k1", reason="r", source=EntrySource.MANUAL)
        again, created_again = points.award(
            db.session, advocate.id, 10, key="k1", reason="r", source=EntrySource.MANUAL
        )
        points.reverse(db.session, first.id, reason="undo")  # a reversal awards nothing
    assert (created, created_again, again.id) == (True, False, first.id)
    assert [(kw["session"], kw["user_id"], kw["entry"]) for kw in heard] == [(db.session, advocate.id, first)]


def test_the_badge_receiver_is_connected_once_however_many_apps(app, app_config):
    second = create_app(app_config)  # the factory connects it again: still one connection
    with second.app_context():
        db.engine.dispose()
    badges.connect()
    connected = [r for r in signals.points_awarded.receivers_for("portal.services.points")]
    assert connected.count(badges._after_points_awarded) == 1


WIRING = """
import importlib, pkgutil, sys
import portal.services
for module in pkgutil.iter_modules(portal.services.__path__):
    importlib.import_module(f"portal.services.{module.name}")
from portal import create_app, signals
from portal.services import badges
assert not signals.points_awarded.receivers, "a receiver was connected at import time"
config = {"TESTING": True, "SECRET_KEY": "x" * 32, "SQLALCHEMY_DATABASE_URI": sys.argv[1]}
config["SEARCH_INDEX_DIR"] = sys.argv[2]
create_app(config)
create_app(config)
print(list(signals.points_awarded.receivers_for("portal.services.points")) == [badges._after_points_awarded])
"""


def test_importing_the_services_connects_nothing_and_the_factory_connects_once(tmp_path):
    """In a fresh process: a script that only imports services has no receivers (no work at import time;
    it needs an app for the database, config and emails anyway); create_app, twice, connects badges once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "FLASK_")) and k != "DATABASE_URL"}
    proc = subprocess.run(
        [sys.executable, "-c", WIRING, f"sqlite:///{tmp_path / 'wiring.db'}", str(tmp_path / "index")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
