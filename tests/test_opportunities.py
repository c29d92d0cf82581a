"""Opportunities, participation, boards, fatigue protection and the digest (issue 5)."""

from datetime import UTC, date, timedelta

import pytest
import time_machine

from portal.database import begin_write
from portal.extensions import db
from portal.models import (
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    AuditEvent,
    Blackout,
    Industry,
    Opportunity,
    OpportunityStatus,
    Participation,
    ParticipationStatus,
    PointsEntry,
    Product,
    Region,
    SelectionMode,
    SizeBand,
    User,
    utcnow,
)
from portal.services import fatigue, opportunities, participation, points
from portal.services.errors import DomainError
from tests.support import login, post_form, reload, run_threads, text_of


def atype(key):
    return db.session.query(ActivityType).filter_by(key=key).one()


def advocate_with(
    make_user,
    email,
    types=("speaking", "review", "reference_call", "advisory_board", "webinar"),
    industry=None,
    country="DE",
    products=(),
    size=None,
    **profile,
):
    u = make_user(email=email, name=email.split("@")[0].title())
    p = AdvocateProfile(user_id=u.id, country_code=country, **profile)
    if industry:
        p.industry = db.session.query(Industry).filter_by(name=industry).one()
    if size:
        p.size_band = db.session.query(SizeBand).filter_by(name=size).one()
    p.products = [db.session.query(Product).filter_by(name=n).one() for n in products]
    db.session.add(p)
    for key in types:
        db.session.add(ActivityPreference(user_id=u.id, activity_type_id=atype(key).id, opted_in=True))
    db.session.commit()
    return u


def opp(key="speaking", mode=SelectionMode.SELECTION, capacity=None, status=OpportunityStatus.OPEN, **fields):
    o = Opportunity(
        activity_type=atype(key),
        title=fields.pop("title", f"{key} opportunity"),
        capacity=capacity,
        selection_mode=mode,
        status=status,
        opened_at=utcnow(),
        seats_taken=0,
        **fields,
    )
    if key == "advisory_board" and "term_start" not in fields:
        o.term_start, o.term_end = date.today(), date.today() + timedelta(days=365)
    db.session.add(o)
    db.session.commit()
    return o.id


def feed_titles(user):
    db.session.rollback()
    return [m.opportunity.title for m in opportunities.feed(db.session, db.session.get(User, user.id))]


# --- admin ------------------------------------------------------------------------------------------------


def test_admin_creates_edits_duplicates_opens_closes(admin_client, advocate_client):
    t = atype("webinar")
    form = {
        "activity_type_id": str(t.id),
        "title": "<b>Panel</b>",
        "description": "Talk\n\nabout it",
        "selection_mode": "first_come",
        "capacity": "3",
        "is_virtual": "y",
        "external_url": "https://example.com/x",
    }
    assert post_form(admin_client, "/admin/opportunities/new", form).status_code == 302
    db.session.rollback()
    o = db.session.query(Opportunity).one()
    assert o.status == OpportunityStatus.DRAFT and o.effective_points == t.default_points
    for bad in (
        {"external_url": "javascript:alert(1)"},
        {"capacity": "0"},
        {"title": ""},
        {"is_virtual": "", "location": ""},
    ):
        assert post_form(admin_client, f"/admin/opportunities/{o.id}/edit", {**form, **bad}).status_code == 422
    post_form(
        admin_client, f"/admin/opportunities/{o.id}/status", {"status": "open"}, page=f"/admin/opportunities/{o.id}"
    )
    assert reload(Opportunity, o.id).status == OpportunityStatus.OPEN
    post_form(admin_client, f"/admin/opportunities/{o.id}/duplicate", {}, page=f"/admin/opportunities/{o.id}")
    assert db.session.query(Opportunity).filter(Opportunity.title.like("Copy of%")).count() == 1
    bad_move = post_form(
        admin_client, f"/admin/opportunities/{o.id}/status", {"status": "draft"}, page=f"/admin/opportunities/{o.id}"
    )
    assert bad_move.status_code == 302 and reload(Opportunity, o.id).status == OpportunityStatus.OPEN
    page = admin_client.get(f"/admin/opportunities/{o.id}").get_data(as_text=True)
    assert "&lt;b&gt;Panel&lt;/b&gt;" in page and "<b>Panel</b>" not in page
    assert advocate_client.get("/admin/opportunities").status_code == 403
    assert {e.action for e in db.session.query(AuditEvent)} >= {
        "opportunity.create",
        "opportunity.open",
        "opportunity.duplicate",
    }


def test_board_needs_term(admin_client):
    t = atype("advisory_board")
    resp = post_form(
        admin_client,
        "/admin/opportunities/new",
        {"activity_type_id": str(t.id), "title": "CAB", "selection_mode": "selection", "is_virtual": "y"},
    )
    assert resp.status_code == 422 and b"needs a term" in resp.data


# --- eligibility -------------------------------------------------------------------------------------------


def test_targeting_dimensions(app, make_user):
    health = db.session.query(Industry).filter_by(name="Healthcare").one()
    bank = advocate_with(
        make_user,
        "bank@example.com",
        industry="Banking and capital markets",
        country="GB",
        products=("Security Suite",),
        size="5,000+ employees",
    )
    doc = advocate_with(
        make_user,
        "doc@example.com",
        industry="Healthcare",
        country="JP",
        products=("Analytics Cloud",),
        size="1-49 employees",
    )
    everyone = opp(title="Everyone")
    o = Opportunity(
        activity_type=atype("speaking"),
        title="Healthcare only",
        status=OpportunityStatus.OPEN,
        selection_mode=SelectionMode.SELECTION,
        seats_taken=0,
        opened_at=utcnow(),
        industries=[health],
    )
    o2 = Opportunity(
        activity_type=atype("speaking"),
        title="Europe security",
        status=OpportunityStatus.OPEN,
        selection_mode=SelectionMode.SELECTION,
        seats_taken=0,
        opened_at=utcnow(),
        regions=[db.session.query(Region).filter_by(name="Europe").one()],
        products=[db.session.query(Product).filter_by(name="Security Suite").one()],
    )
    o3 = Opportunity(
        activity_type=atype("speaking"),
        title="Small companies",
        status=OpportunityStatus.OPEN,
        selection_mode=SelectionMode.SELECTION,
        seats_taken=0,
        opened_at=utcnow(),
        size_bands=[db.session.query(SizeBand).filter_by(name="1-49 employees").one()],
    )
    db.session.add_all([o, o2, o3])
    db.session.commit()
    assert set(feed_titles(bank)) == {"Everyone", "Europe security"}
    assert set(feed_titles(doc)) == {"Everyone", "Healthcare only", "Small companies"}
    matches = opportunities.feed(db.session, db.session.get(User, bank.id))
    assert matches[0].opportunity.title == "Europe security"  # best fit first
    assert matches[0].why == "Matches your product and region"
    assert everyone


def test_feed_excludes_unopted_full_late_and_unavailable(app, make_user):
    u = advocate_with(make_user, "a@example.com", types=("speaking",))
    opp(title="Open talk")
    opp(key="review", title="A review")  # not opted in
    full = opp(title="Full talk", capacity=1)
    db.session.query(Opportunity).filter_by(id=full).update({"seats_taken": 1})
    opp(title="Late talk", deadline=date.today() - timedelta(days=1))
    opp(title="Draft talk", status=OpportunityStatus.DRAFT)
    opp(title="Talk in blackout", event_date=date.today() + timedelta(days=20))
    db.session.add(
        Blackout(user_id=u.id, starts_on=date.today() + timedelta(days=15), ends_on=date.today() + timedelta(days=25))
    )
    db.session.commit()
    assert feed_titles(u) == ["Open talk"]
    db.session.query(AdvocateProfile).filter_by(user_id=u.id).update({"paused_until": date.today() + timedelta(days=3)})
    db.session.commit()
    assert feed_titles(u) == []


def test_filter_by_type_and_detail_page(app, make_user):
    u = advocate_with(make_user, "f@example.com")
    opp(title="Talk")
    rid = opp(key="review", title="Review")
    c = app.test_client()
    login(c, u.email)
    body = c.get(f"/opportunities?type={atype('review').id}").get_data(as_text=True)
    assert "Review" in body and "Talk</a>" not in body
    assert "I'm in" in c.get(f"/opportunities/{rid}").get_data(as_text=True)
    assert c.get("/opportunities?type=abc").status_code == 200


def test_detail_page_places_left_and_what_happens_next(app, make_user):
    """The facts and the next step an advocate reads before saying "I'm in"."""
    first = advocate_with(make_user, "first@example.com")
    reader = advocate_with(make_user, "reader@example.com")
    fc = opp(mode=SelectionMode.FIRST_COME, capacity=3, title="Three seats")
    participation.request(db.session, db.session.get(User, first.id), fc)  # takes one seat at once
    db.session.commit()
    assert reload(Opportunity, fc).seats_taken == 1
    sel = opp(title="Pick and choose")  # selection, no capacity
    c = app.test_client()
    login(c, reader.email)

    page = text_of(c.get(f"/opportunities/{fc}"))
    assert "Places left 2 " in page and "No limit" not in page
    assert "Places go to the first who sign up: your place is confirmed at once." in page
    assert "The program team picks participants" not in page

    page = text_of(c.get(f"/opportunities/{sel}"))
    assert "Places left No limit " in page
    assert "The program team picks participants and confirms by email." in page
    assert "Places go to the first who sign up" not in page


def test_ineligible_request_refused(app, make_user):
    u = advocate_with(make_user, "i@example.com", types=("speaking",))
    rid = opp(key="review", title="Review")
    c = app.test_client()
    login(c, u.email)
    post_form(c, f"/opportunities/{rid}/request", {}, page=f"/opportunities/{rid}")
    assert "not opted in" in c.get(f"/opportunities/{rid}").get_data(as_text=True)
    assert db.session.query(Participation).count() == 0


# --- lifecycle ------------------------------------------------------------------------------------------------


def test_lifecycle_with_emails_commitments_and_points_once(app, make_user, admin_client, mailbox):
    u = advocate_with(make_user, "l@example.com")
    oid = opp(title="Summit talk", capacity=2, points=321)
    c = app.test_client()
    login(c, u.email)
    post_form(c, f"/opportunities/{oid}/request", {"message": "Happy to <b>help</b>"}, page=f"/opportunities/{oid}")
    assert mailbox.last(u.email, subject="We received your request")
    db.session.rollback()
    p = db.session.query(Participation).one()
    assert p.status == ParticipationStatus.REQUESTED
    assert "Summit talk" in c.get("/me/commitments").get_data(as_text=True)
    assert "&lt;b&gt;help" in admin_client.get(f"/admin/opportunities/{oid}").get_data(as_text=True)
    post_form(
        admin_client,
        f"/admin/participations/{p.id}/approve",
        {"message": "See you there"},
        page=f"/admin/opportunities/{oid}",
    )
    assert "See you there" in mailbox.last(u.email, subject="You're in").text
    assert reload(Opportunity, oid).seats_taken == 1
    for _ in range(2):
        post_form(admin_client, f"/admin/participations/{p.id}/complete", {}, page=f"/admin/opportunities/{oid}")
    db.session.rollback()
    assert db.session.query(PointsEntry).filter_by(user_id=u.id, source_id=p.id).count() == 1
    assert points.balance(db.session, u.id) == 321 and points.verify(db.session) == []
    assert mailbox.last(u.email, subject="Thank you! 321 points")
    assert "321" in c.get("/me/points").get_data(as_text=True)


def test_withdraw_releases_seat_decline_and_no_show(app, make_user, admin_client, mailbox):
    u = advocate_with(make_user, "w@example.com")
    v = advocate_with(make_user, "v@example.com")
    oid = opp(title="First come", capacity=1, mode=SelectionMode.FIRST_COME)
    c = app.test_client()
    login(c, u.email)
    post_form(c, f"/opportunities/{oid}/request", {}, page=f"/opportunities/{oid}")
    db.session.rollback()
    p = db.session.query(Participation).filter_by(user_id=u.id).one()
    assert p.status == ParticipationStatus.APPROVED and reload(Opportunity, oid).seats_taken == 1
    other = app.test_client()
    login(other, v.email)
    assert feed_titles(v) == []  # no seat left
    post_form(c, f"/me/commitments/{p.id}/withdraw", {}, page="/me/commitments")
    assert reload(Opportunity, oid).seats_taken == 0
    assert mailbox.last(u.email, subject="You withdrew")
    assert post_form(other, f"/me/commitments/{p.id}/withdraw", {}, page="/me/commitments").status_code == 404
    post_form(other, f"/opportunities/{oid}/request", {}, page=f"/opportunities/{oid}")
    db.session.rollback()
    q = db.session.query(Participation).filter_by(user_id=v.id).one()
    post_form(admin_client, f"/admin/participations/{q.id}/no_show", {}, page=f"/admin/opportunities/{oid}")
    assert reload(Participation, q.id).status == ParticipationStatus.NO_SHOW
    assert mailbox.last(v.email, subject="We missed you")


def test_boards_current_past_and_renewal(app, make_user, admin_client):
    u = advocate_with(make_user, "b@example.com")
    cur = opp(
        key="advisory_board",
        title="CAB 2027",
        term_start=date.today() - timedelta(days=300),
        term_end=date.today() + timedelta(days=30),
    )
    past = opp(
        key="advisory_board",
        title="CAB 2024",
        term_start=date.today() - timedelta(days=900),
        term_end=date.today() - timedelta(days=500),
    )
    admin = db.session.query(User).filter_by(email="alex.admin@example.com").one()
    for oid in (cur, past):
        db.session.add(
            Participation(
                opportunity_id=oid,
                user_id=u.id,
                status=ParticipationStatus.APPROVED,
                holds_seat=True,
                engaged_at=utcnow() - timedelta(days=400),
            )
        )
    db.session.commit()
    current, old = participation.boards_of(db.session, u.id)
    assert [p.opportunity.title for p in current] == ["CAB 2027"] and [p.opportunity.title for p in old] == ["CAB 2024"]
    page = admin_client.get("/admin/boards").get_data(as_text=True)
    assert "up for renewal" in page and "B" in page
    assert admin


# --- fatigue --------------------------------------------------------------------------------------------------


def engage(user_id, key="speaking", days_ago=0):
    oid = opp(key=key, title=f"past {key} {days_ago}")
    db.session.add(
        Participation(
            opportunity_id=oid,
            user_id=user_id,
            status=ParticipationStatus.COMPLETED,
            requested_at=utcnow() - timedelta(days=days_ago),
            engaged_at=utcnow() - timedelta(days=days_ago),
        )
    )
    db.session.commit()


def test_program_limit_rolling_90_days_and_override(app, make_user, admin_client):
    u = advocate_with(make_user, "f@example.com")
    for d in (10, 20, 30, 89):
        engage(u.id, days_ago=d)
    oid = opp(title="Fifth")
    c = app.test_client()
    login(c, u.email)
    post_form(c, f"/opportunities/{oid}/request", {}, page=f"/opportunities/{oid}")
    assert "take part more than 4 times in 90 days, and you already have 4" in text_of(c.get(f"/opportunities/{oid}"))
    with time_machine.travel(utcnow() + timedelta(days=2)):  # the oldest is now 91 days old
        post_form(c, f"/opportunities/{oid}/request", {}, page=f"/opportunities/{oid}")
    db.session.rollback()
    p = db.session.query(Participation).filter_by(opportunity_id=oid).one()
    assert p.status == ParticipationStatus.REQUESTED
    engage(u.id, days_ago=1)  # a fifth one within 90 days now
    refused = post_form(admin_client, f"/admin/participations/{p.id}/approve", {}, page=f"/admin/opportunities/{oid}")
    assert refused.status_code == 302 and reload(Participation, p.id).status == ParticipationStatus.REQUESTED
    post_form(
        admin_client,
        f"/admin/participations/{p.id}/approve",
        {"override_reason": "Key account asked"},
        page=f"/admin/opportunities/{oid}",
    )
    p = reload(Participation, p.id)
    assert p.status == ParticipationStatus.APPROVED and p.override_reason == "Key account asked"
    assert db.session.query(AuditEvent).filter_by(action="participation.override").count() == 1


@pytest.mark.parametrize("days,allowed", [(29, False), (30, True)])
def test_reference_call_gap(app, make_user, days, allowed):
    u = advocate_with(make_user, "r@example.com")
    engage(u.id, key="reference_call", days_ago=days)
    oid = opp(key="reference_call", title="Bank call")
    o = db.session.get(Opportunity, oid)
    decision = fatigue.may_ask(db.session, u.id, o.activity_type, o.engagement_date)
    assert decision.allowed == allowed
    if not allowed:
        assert decision.codes == [fatigue.REFERENCE_CALL_GAP]
        assert "at least 30 days between reference calls" in decision.for_admin()[0]


def test_own_monthly_and_quarterly_limits_at_boundaries(app, make_user):
    from datetime import datetime

    with time_machine.travel(datetime(2026, 3, 20, 12, tzinfo=UTC), tick=False):
        u = advocate_with(make_user, "m@example.com", max_asks_per_month=1, max_asks_per_quarter=2)
        first = opp(title="One")
        participation.request(db.session, db.session.get(User, u.id), first)
        db.session.commit()
        second = opp(title="Two")
        with pytest.raises(fatigue.AskRefused, match="at most one ask a month and have one this month"):
            participation.request(db.session, db.session.get(User, u.id), second)
        db.session.rollback()
    with time_machine.travel(datetime(2026, 3, 31, 23, 0, tzinfo=UTC), tick=False):
        with pytest.raises(fatigue.AskRefused):
            participation.request(db.session, db.session.get(User, u.id), second)
        db.session.rollback()
    with time_machine.travel(datetime(2026, 4, 1, 1, 0, tzinfo=UTC), tick=False):
        participation.request(db.session, db.session.get(User, u.id), second)  # new month and quarter
        db.session.commit()


def test_policy_editable_and_audited(admin_client):
    assert post_form(admin_client, "/admin/settings", {"max_engagements_90d": "0"}).status_code == 422
    post_form(admin_client, "/admin/settings", {"max_engagements_90d": "6", "reference_call_gap_days": "45"})
    db.session.rollback()
    pol = fatigue.policy(db.session)
    assert (pol.max_engagements_90d, pol.reference_call_gap_days) == (6, 45)
    assert db.session.query(AuditEvent).filter_by(action="settings.fatigue").count() == 1


def test_fatigue_statuses_shown_to_admins(app, make_user, admin_client):
    at = advocate_with(make_user, "at@example.com")
    near = advocate_with(make_user, "near@example.com")
    paused = advocate_with(make_user, "paused@example.com", paused_until=date.today() + timedelta(days=5))
    old = make_user(email="old@example.com")
    db.session.query(User).filter_by(id=old.id).update({"approved_at": utcnow() - timedelta(days=400)})
    fresh = advocate_with(make_user, "fresh@example.com")
    for d in range(4):
        engage(at.id, days_ago=d + 1)
    for d in range(3):
        engage(near.id, days_ago=d + 1)
    engage(fresh.id, days_ago=5)
    got = {uid: s.key for uid, s in fatigue.statuses(db.session, [at.id, near.id, paused.id, old.id, fresh.id]).items()}
    assert got == {
        at.id: "at_limit",
        near.id: "near_limit",
        paused.id: "unavailable",
        old.id: "under_used",
        fresh.id: "available",
    }
    page = admin_client.get("/admin/advocates?fatigue=at_limit").get_data(as_text=True)
    assert "At@Example.Com" not in page and "at@example.com" in page and "near@example.com" not in page


# --- capacity under concurrency (SQLite and PostgreSQL) -----------------------------------------------------------


def test_thirty_concurrent_requests_for_the_last_seat(app, make_user):
    users = [advocate_with(make_user, f"c{i}@example.com") for i in range(30)]
    oid = opp(title="Last seat", capacity=1, mode=SelectionMode.FIRST_COME)

    def go(i):
        with app.app_context():
            try:
                begin_write(db.session)
                participation.request(db.session, db.session.get(User, users[i].id), oid)
                db.session.commit()
                return True
            except DomainError:
                db.session.rollback()
                return False

    results = run_threads(30, go)
    assert results.count(True) == 1
    db.session.rollback()
    assert db.session.get(Opportunity, oid).seats_taken == 1
    assert db.session.query(Participation).filter_by(status=ParticipationStatus.APPROVED).count() == 1


def test_concurrent_approvals_cannot_pass_capacity(app, make_user, admin):
    users = [advocate_with(make_user, f"s{i}@example.com") for i in range(10)]
    oid = opp(title="Selective", capacity=3)
    for u in users:
        participation.request(db.session, db.session.get(User, u.id), oid)
    db.session.commit()
    pids = [p.id for p in db.session.query(Participation).all()]

    def go(i):
        with app.app_context():
            try:
                begin_write(db.session)
                participation.approve(db.session, pids[i], db.session.get(User, admin.id))
                db.session.commit()
                return True
            except DomainError:
                db.session.rollback()
                return False

    assert run_threads(10, go).count(True) == 3
    db.session.rollback()
    assert db.session.get(Opportunity, oid).seats_taken == 3


# --- digest ---------------------------------------------------------------------------------------------------------


def test_digest_content_idempotent_and_unsubscribe(app, runner, make_user, mailbox, client):
    weekly = advocate_with(make_user, "weekly@example.com", digest="weekly")
    advocate_with(make_user, "monthly@example.com", digest="monthly")
    nothing = advocate_with(make_user, "nothing@example.com", types=("beta",), digest="weekly")
    opp(title="Fresh <talk>")
    r1 = runner.invoke(args=["digest", "send", "--period", "weekly"])
    assert r1.exit_code == 0 and "1 digest(s) queued" in r1.output
    mail = mailbox.last(weekly.email, subject="new opportunit")
    assert "Fresh <talk>" not in mail.html and "Fresh &lt;talk&gt;" in mail.html
    assert mail.message["List-Unsubscribe"]
    assert mailbox.to("monthly@example.com") == [] and mailbox.to(nothing.email) == []
    r2 = runner.invoke(args=["digest", "send", "--period", "weekly"])
    assert "0 digest(s) queued" in r2.output and len(mailbox.to(weekly.email)) == 1
    assert runner.invoke(args=["digest", "send", "--period", "yearly"]).exit_code != 0
    url = mail.link("/me/unsubscribe/").split("localhost", 1)[1]
    assert client.post(url, data={}).status_code == 200
    assert reload(AdvocateProfile, weekly.id).digest.value == "off"
