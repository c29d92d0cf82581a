"""Badges: every rule, each badge earned once, manual grants by admins, the gallery and the email."""

import re
from datetime import timedelta
from html import unescape

import pytest
import time_machine
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import (
    ActivityType,
    AdvocateProfile,
    AuditEvent,
    Badge,
    EntrySource,
    Participation,
    ParticipationStatus,
    PointsEntry,
    Role,
    SelectionMode,
    Status,
    User,
    UserBadge,
    utcnow,
)
from portal.services import badges, fatigue, participation, points, referrals
from portal.services.outbox import send_due
from tests.support import (
    ALL_TYPES,
    activity_type_id,
    badge_keys,
    give,
    make_advocate,
    make_opp,
    page_text,
    participate,
    participation_of,
    participation_row,
    post_form,
    reload,
    user,
)


def _count_user_badges(user_id=None):
    db.session.rollback()
    q = select(func.count()).select_from(UserBadge)
    if user_id is not None:
        q = q.where(UserBadge.user_id == user_id)
    return db.session.scalar(q)


def _badge(key):
    return db.session.scalar(select(Badge).where(Badge.key == key))


# --- the rules ----------------------------------------------------------------------------------------------------


def test_first_activity_badge(app, advocate):
    give(advocate.id, 100, source=EntrySource.MANUAL)  # points, but no activity
    give(advocate.id, 100, source=EntrySource.PROFILE)
    assert badge_keys(advocate.id) == set()
    pid = participation_row(advocate.id, "review")
    points.award(
        db.session,
        advocate.id,
        50,
        key=f"participation:{pid}:complete",
        reason="Review on G2",
        source=EntrySource.PARTICIPATION,
        activity_type_id=activity_type_id("review"),
        source_id=pid,
    )
    db.session.commit()
    assert badge_keys(advocate.id) == {"first-activity", "first-review"}


def test_first_of_each_type(app, make_user):
    types = db.session.scalars(select(ActivityType).order_by(ActivityType.position)).all()
    assert len(types) >= 10
    for t in types:
        assert _badge(f"first-{t.key}") is not None, t.key
    user = make_user()
    earned = set()
    for t in types:
        participate(user.id, t.key)
        now = badge_keys(user.id)
        assert f"first-{t.key}" in now, t.key
        new = now - earned
        # only the badge of this type (and, the first time, "first activity" / a one-activity milestone)
        assert {k for k in new if k.startswith("first-") and k != "first-activity"} == {f"first-{t.key}"}
        earned = now
    assert {f"first-{t.key}" for t in types} <= earned


def test_five_reviews(app, advocate):
    participate(advocate.id, "speaking", 3)  # other types do not count
    participate(advocate.id, "review", 4)
    assert "five-reviews" not in badge_keys(advocate.id)
    assert badges.evaluate(db.session, advocate.id) == []
    db.session.commit()
    participate(advocate.id, "review", 1)
    assert "five-reviews" in badge_keys(advocate.id)


def test_a_reversed_activity_does_not_count(app, advocate):
    ids = participate(advocate.id, "review", 5 - 1)
    points.reverse(db.session, ids[0], reason="review was withdrawn")
    db.session.commit()
    participate(advocate.id, "review", 1)  # 5 awarded, 1 reversed: 4 count
    assert "five-reviews" not in badge_keys(advocate.id)
    participate(advocate.id, "review", 1)
    assert "five-reviews" in badge_keys(advocate.id)


def test_advisory_board_member(app, advocate):
    participate(advocate.id, "review")
    assert "board-member" not in badge_keys(advocate.id)
    participate(advocate.id, "advisory_board")
    assert {"board-member", "first-advisory_board"} <= badge_keys(advocate.id)


def test_one_year_as_an_advocate(app, runner, advocate, make_user, mailbox):
    staff = make_user(Role.STAFF)
    pending = make_user(status=Status.PENDING)
    approved_at = reload(User, advocate.id).approved_at
    with time_machine.travel(approved_at + timedelta(days=364, hours=23)):
        result = runner.invoke(args=["badges", "evaluate"])
        assert result.exit_code == 0 and "Granted 0 badge(s)." in result.output
    assert "one-year" not in badge_keys(advocate.id)
    with time_machine.travel(approved_at + timedelta(days=365, minutes=1)):
        result = runner.invoke(args=["badges", "evaluate"])
        assert result.exit_code == 0, result.output
        assert "Granted 1 badge(s)." in result.output
        again = runner.invoke(args=["badges", "evaluate"])
        assert again.exit_code == 0 and "Granted 0 badge(s)." in again.output
    assert "one-year" in badge_keys(advocate.id)
    assert badge_keys(staff.id) == set() and badge_keys(pending.id) == set()
    mail = mailbox.last(advocate.email, subject="You earned a badge")
    assert "One year strong" in mail.subject
    assert len(mailbox.to(advocate.email)) == 1


def test_three_referrals(app, advocate, make_user):
    for i in range(3):
        friend = make_user(name=f"Friend {i}", referred_by_id=advocate.id)
        assert referrals.credit_referral(db.session, reload(User, friend.id)) is True
        db.session.commit()
        if i < 2:
            assert "three-referrals" not in badge_keys(advocate.id)
    assert "three-referrals" in badge_keys(advocate.id)


def test_manual_badges_are_never_automatic(app, advocate):
    participate(advocate.id, "review", 5)
    participate(advocate.id, "advisory_board")
    assert "champion" not in badge_keys(advocate.id)


def test_inactive_badges_are_not_awarded_nor_shown(app, advocate_client, advocate):
    db.session.execute(Badge.__table__.update().where(Badge.key == "first-activity").values(active=False))
    db.session.commit()
    participate(advocate.id, "review")
    assert "first-activity" not in badge_keys(advocate.id) and "first-review" in badge_keys(advocate.id)
    assert "First step" not in page_text(advocate_client.get("/me/badges"))


def test_staff_earn_no_badges(app, staff):
    participate(staff.id, "review", 5)
    assert badge_keys(staff.id) == set()
    assert badges.evaluate(db.session, staff.id) == []


# --- once ----------------------------------------------------------------------------------------------------------


def test_each_badge_is_awarded_once(app, runner, advocate):
    participate(advocate.id, "review", 5)
    have = badge_keys(advocate.id)
    assert {"first-activity", "first-review", "five-reviews"} <= have
    count = _count_user_badges(advocate.id)
    assert count == len(have)
    assert badges.evaluate(db.session, advocate.id) == []
    db.session.commit()
    participate(advocate.id, "review", 3)
    assert runner.invoke(args=["badges", "evaluate"]).exit_code == 0
    assert _count_user_badges(advocate.id) == count
    rows = db.session.execute(
        select(UserBadge.badge_id, func.count()).where(UserBadge.user_id == advocate.id).group_by(UserBadge.badge_id)
    ).all()
    assert all(n == 1 for _, n in rows)


def test_the_database_refuses_a_second_copy(app, advocate):
    participate(advocate.id, "review")
    badge = _badge("first-review")
    db.session.add(UserBadge(user_id=advocate.id, badge_id=badge.id))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()
    assert _count_user_badges(advocate.id) == 2


# --- manual grants -------------------------------------------------------------------------------------------------


def test_admin_grants_a_badge_once_and_it_is_audited(app, admin_client, admin, advocate, advocate_client, staff):
    champion = _badge("champion")
    data = {"email": advocate.email, "badge_id": str(champion.id), "reason": "Keynote at the user conference"}
    resp = post_form(admin_client, "/admin/badges", data)
    assert resp.status_code == 302
    assert f"Badge granted to {advocate.name}." in page_text(admin_client.get("/admin/badges"))
    db.session.rollback()
    ub = db.session.scalar(select(UserBadge).where(UserBadge.user_id == advocate.id))
    assert (ub.badge_id, ub.awarded_by_id, ub.reason) == (champion.id, admin.id, "Keynote at the user conference")
    (event,) = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "badge.grant")).all()
    assert (event.actor_id, event.target_id, event.details["badge"]) == (admin.id, advocate.id, "champion")

    again = post_form(admin_client, "/admin/badges", data)
    assert again.status_code == 422
    assert f"{advocate.name} already has the Champion badge." in page_text(again)
    assert _count_user_badges(advocate.id) == 1
    assert (
        db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "badge.grant")) == 1
    )

    nobody = post_form(admin_client, "/admin/badges", {**data, "email": staff.email})
    assert nobody.status_code == 422 and "No advocate with that email." in page_text(nobody)
    assert _count_user_badges(staff.id) == 0

    assert advocate_client.get("/admin/badges").status_code == 403
    tiles = _tiles(advocate_client)
    assert tiles["Champion"] == "earned"


# --- the gallery and the email -----------------------------------------------------------------------------------


def _tiles(client) -> dict[str, str]:
    html = client.get("/me/badges").get_data(as_text=True)
    found = re.findall(
        r'<li class="badge-tile (earned|locked)">.*?<strong>(.*?)</strong>.*?<span class="badge-state">'
        r"(.*?)</span>",
        html,
        re.S,
    )
    tiles = {}
    for state, name, label in found:
        assert (state == "earned") == label.startswith("Earned"), (name, label)
        assert (state == "locked") == (label == "Still to earn"), (name, label)
        tiles[unescape(name)] = state
    return tiles


def test_gallery_shows_earned_and_still_to_earn(app, advocate_client, advocate):
    tiles = _tiles(advocate_client)
    active = db.session.scalar(select(func.count()).select_from(Badge).where(Badge.active.is_(True)))
    assert len(tiles) == active and set(tiles.values()) == {"locked"}
    participate(advocate.id, "review")
    tiles = _tiles(advocate_client)
    assert tiles["First step"] == "earned" and tiles["First peer review"] == "earned"
    assert tiles["Reviewer"] == "locked" and tiles["One year strong"] == "locked"
    assert list(tiles.values()).count("earned") == 2
    assert "Earned " + utcnow().strftime("%d %b %Y") in page_text(advocate_client.get("/me/badges"))


def test_earning_badges_sends_one_email(app, advocate, mailbox):
    # As a job would: its own app context, which sends what it queued once it ends.
    first, second = participation_row(advocate.id, "review"), participation_row(advocate.id, "review")
    with app.app_context():
        points.award(
            db.session,
            advocate.id,
            40,
            key=f"participation:{first}:complete",
            reason="Reference call",
            source=EntrySource.PARTICIPATION,
            activity_type_id=activity_type_id("review"),
            source_id=first,
        )
        db.session.commit()
    mail = mailbox.last(advocate.email, subject="You earned a badge")
    assert mail.subject.endswith("First step")
    assert "First peer review" in mail.text and "First step" in mail.text and "new badges" in mail.text
    assert mail.link("/me/badges")
    with app.app_context():  # nothing new: no email
        points.award(
            db.session,
            advocate.id,
            40,
            key=f"participation:{second}:complete",
            reason="Another",
            source=EntrySource.PARTICIPATION,
            activity_type_id=activity_type_id("review"),
            source_id=second,
        )
        db.session.commit()
    assert len(mailbox.to(advocate.email)) == 1


# --- through the participation service (badges from participations, not from the ledger) --------------------------


@pytest.fixture
def roomy_policy(app, admin):
    """Room for many engagements in 90 days (the default program policy allows four)."""
    fatigue.set_policy(db.session, {"max_engagements_90d": 50, "reference_call_gap_days": 0}, admin.id)
    db.session.commit()


def _take_part(
    user_id: int,
    admin_id: int,
    key: str,
    *,
    points: int | None = None,
    complete: bool = True,
    mode: SelectionMode = SelectionMode.FIRST_COME,
) -> int:
    """Request, approve (if the opportunity selects) and complete, each step through the real service and
    committed as its request would be; returns the participation id."""
    oid = make_opp(key, points=points, mode=mode)
    p = participation.request(db.session, user(user_id), oid)
    db.session.commit()
    pid = p.id
    if reload(Participation, pid).status == ParticipationStatus.REQUESTED:
        participation.approve(db.session, pid, user(admin_id))
        db.session.commit()
    if complete:
        participation.complete(db.session, pid, user(admin_id))
        db.session.commit()
    return pid


def _svc_advocate(make_user, email="svc@example.com"):
    return make_advocate(make_user, email, types=ALL_TYPES + ("beta",))


def test_five_reviews_through_the_participation_service(app, make_user, admin, roomy_policy):
    adv = _svc_advocate(make_user)
    _take_part(adv, admin.id, "speaking")  # another type does not count toward reviews
    for _ in range(3):
        _take_part(adv, admin.id, "review")
    _take_part(adv, admin.id, "review", points=0)  # a review is a review, whatever it paid
    _take_part(adv, admin.id, "review", complete=False)  # approved, not done yet
    assert "five-reviews" not in badge_keys(adv)
    _take_part(adv, admin.id, "review")
    assert {"five-reviews", "first-review", "first-speaking", "first-activity"} <= badge_keys(adv)


def test_first_activity_of_a_type_through_the_participation_service(app, make_user, admin):
    adv = _svc_advocate(make_user)
    pid = _take_part(adv, admin.id, "webinar", mode=SelectionMode.SELECTION, complete=False)
    assert badge_keys(adv) == set()  # approved is not done
    participation.complete(db.session, pid, user(admin.id))
    db.session.commit()
    assert badge_keys(adv) == {"first-activity", "first-webinar"}


def test_a_zero_point_completion_earns_its_badges(app, make_user, admin):
    adv = _svc_advocate(make_user)
    _take_part(adv, admin.id, "beta", points=0)
    db.session.rollback()
    assert db.session.query(PointsEntry).count() == 0  # no ledger entry at all
    assert badge_keys(adv) == {"first-activity", "first-beta"}


def test_an_approved_board_member_has_the_badge_before_the_term_ends(app, make_user, admin):
    adv = _svc_advocate(make_user)
    other = _svc_advocate(make_user, "requested.only@example.com")
    _take_part(adv, admin.id, "advisory_board", mode=SelectionMode.SELECTION, complete=False)
    assert badge_keys(adv) == {"board-member"}  # a member from approval on; not yet a completed activity
    oid = make_opp("advisory_board", title="Board 2028", mode=SelectionMode.SELECTION)
    participation.request(db.session, user(other), oid)  # asked, not approved: not a member
    db.session.commit()
    assert badge_keys(other) == set()


def test_a_withdrawn_or_declined_activity_earns_nothing(app, make_user, admin):
    adv = _svc_advocate(make_user)
    oid = make_opp("review", mode=SelectionMode.SELECTION)
    participation.request(db.session, user(adv), oid)
    db.session.commit()
    participation.decline(db.session, participation_of(adv, oid).id, user(admin.id))
    db.session.commit()
    assert badges.evaluate(db.session, adv) == []
    assert badge_keys(adv) == set()


# --- the badge email: under "Program news and recognition", with one-click unsubscribe ----------------------------


def test_badge_email_carries_unsubscribe_and_honours_notify_news(app, client, make_user, admin, mailbox):
    adv = _svc_advocate(make_user, "news.reader@example.com")
    with app.app_context():  # as a job would: mail goes out when its context ends
        _take_part(adv, admin.id, "review")
    mail = mailbox.last("news.reader@example.com", subject="You earned a badge")
    url = mail.link("/me/unsubscribe/")
    assert mail.message["List-Unsubscribe"] == f"<{url}>"
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url in mail.html and "Unsubscribe" in mail.html
    path = url[len("http://localhost") :]
    assert "program news and recognition emails" in page_text(client.get(path))
    assert client.post(path).status_code == 200
    assert reload(AdvocateProfile, adv).notify_news is False

    mailbox.clear()
    with app.app_context():
        _take_part(adv, admin.id, "speaking")
    assert "first-speaking" in badge_keys(adv)  # still earned and shown in the gallery ...
    with app.app_context():
        send_due(include_not_due=True)
    assert [m.subject for m in mailbox.to("news.reader@example.com") if "badge" in m.subject] == []  # ... not mailed
    # ... and the activity's own (transactional) email still is.
    assert mailbox.last("news.reader@example.com", subject="Thank you!")


def test_badge_email_goes_to_an_advocate_without_a_profile_row(app, advocate, mailbox):
    """notify_news is on by default: no profile yet means the default."""
    with app.app_context():
        participate(advocate.id, "review")
    mail = mailbox.last(advocate.email, subject="You earned a badge")
    assert mail.message["List-Unsubscribe"]
