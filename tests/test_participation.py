"""One advocate's part in one opportunity: the detail page (places left, what happens after "I'm in"),
request -> approve / decline (with a message) -> complete / no-show, withdraw before completion; every
step emails the advocate and shows on /me/commitments and the dashboard; one participation per advocate
and opportunity; points credited exactly once; advisory boards (terms, current vs past, renewal)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import (
    AuditEvent,
    EntrySource,
    Opportunity,
    Participation,
    ParticipationStatus,
    PointsEntry,
    SelectionMode,
)
from portal.services import participation, points
from portal.services.errors import Conflict
from tests.support import (
    admin_form,
    atype,
    client_for,
    make_advocate,
    make_opp,
    participation_of,
    post_form,
    reload,
    text_of,
    user,
)


def _act(admin_client, p, action, oid, data=None, **kw):
    return post_form(
        admin_client, f"/admin/participations/{p}/{action}", data or {}, page=f"/admin/opportunities/{oid}", **kw
    )


def _request(c, oid, message="", **kw):
    return post_form(c, f"/opportunities/{oid}/request", {"message": message}, page=f"/opportunities/{oid}", **kw)


def _subjects(mailbox, email):
    return [m.subject for m in mailbox.to(email)]


def _section(page_text, start, end=None):
    tail = page_text.split(start, 1)[1]
    return tail.split(end, 1)[0] if end and end in tail else tail


# --- the detail page -------------------------------------------------------------------------------------------


def test_detail_page_places_left_and_what_happens_next(app, make_user):
    """The facts and the next step an advocate reads before saying "I'm in"."""
    first = make_advocate(make_user, "first@example.com")
    reader = make_advocate(make_user, "reader@example.com")
    fc = make_opp(mode=SelectionMode.FIRST_COME, capacity=3, title="Three seats")
    participation.request(db.session, user(first), fc)  # takes one seat at once
    db.session.commit()
    assert reload(Opportunity, fc).seats_taken == 1
    sel = make_opp(title="Pick and choose")  # selection, no capacity
    c = client_for(app, reader)

    page = text_of(c.get(f"/opportunities/{fc}"))
    assert "Places left 2 " in page and "No limit" not in page
    assert "Places go to the first who sign up: your place is confirmed at once." in page
    assert "The program team picks participants" not in page

    page = text_of(c.get(f"/opportunities/{sel}"))
    assert "Places left No limit " in page
    assert "The program team picks participants and confirms by email." in page
    assert "Places go to the first who sign up" not in page


# --- the life cycle -----------------------------------------------------------------------------------------------


def test_selection_lifecycle_request_approve_complete(app, make_user, admin_client, mailbox):
    adv = make_advocate(make_user, "life@example.com", name="Lena Life")
    oid = make_opp(
        "speaking", title="Summit keynote", capacity=2, points=450, external_url="https://events.example.com/summit"
    )
    c = client_for(app, adv)

    # request: waits for the admin, emails a receipt, shows as requested
    resp = _request(c, oid, "I can do Tuesday", follow_redirects=True)
    assert "Thanks! Your request is in." in text_of(resp)
    p = participation_of(adv, oid)
    assert p.status == ParticipationStatus.REQUESTED and p.message == "I can do Tuesday" and not p.holds_seat
    assert reload(Opportunity, oid).seats_taken == 0
    receipt = mailbox.last("life@example.com", subject="We received your request: Summit keynote")
    assert "Summit keynote" in receipt.text
    commitments = text_of(c.get("/me/commitments"))
    assert "Summit keynote Requested" in _section(commitments, "My commitments", "History")
    dashboard = text_of(c.get("/dashboard"))
    assert "Summit keynote Requested" in _section(dashboard, "My commitments", "Recommended")
    admin_page = text_of(admin_client.get(f"/admin/opportunities/{oid}"))
    assert "Lena Life" in admin_page and "I can do Tuesday" in admin_page

    # approve with a message: takes a seat, emails it, shows as approved, reveals the link
    resp = _act(admin_client, p.id, "approve", oid, {"message": "See you in hall B"}, follow_redirects=True)
    assert "Approved; the advocate has been emailed." in text_of(resp)
    p = participation_of(adv, oid)
    assert p.status == ParticipationStatus.APPROVED and p.holds_seat and p.engaged_at and p.decided_at
    assert p.admin_message == "See you in hall B" and p.decided_by_id is not None
    assert reload(Opportunity, oid).seats_taken == 1
    approved = mailbox.last("life@example.com", subject="You're in: Summit keynote")
    assert "See you in hall B" in approved.text
    assert "Summit keynote Approved" in text_of(c.get("/me/commitments"))
    assert "Summit keynote Approved" in text_of(c.get("/dashboard"))
    assert "https://events.example.com/summit" in c.get(f"/opportunities/{oid}").get_data(as_text=True)

    # complete: points credited once, emailed, moves to history and off the dashboard's list
    resp = _act(admin_client, p.id, "complete", oid, follow_redirects=True)
    assert "Completed; points credited and the advocate emailed." in text_of(resp)
    p = participation_of(adv, oid)
    assert p.status == ParticipationStatus.COMPLETED and p.completed_at is not None
    thanks = mailbox.last("life@example.com", subject="Thank you! 450 points for Summit keynote")
    assert "450" in thanks.text
    commitments = text_of(c.get("/me/commitments"))
    assert "No current commitments." in commitments
    assert "Summit keynote · Completed on" in _section(commitments, "History")
    dashboard = text_of(c.get("/dashboard"))
    assert "Summit keynote" not in _section(dashboard, "My commitments", "Recommended")
    assert "450 points to spend" in dashboard
    assert "450" in text_of(c.get("/me/points")) and "Summit keynote" in text_of(c.get("/me/points"))
    assert [s for s in _subjects(mailbox, "life@example.com") if "badge" not in s] == [
        "We received your request: Summit keynote",
        "You're in: Summit keynote",
        "Thank you! 450 points for Summit keynote",
    ]
    db.session.rollback()
    assert {e.action for e in db.session.query(AuditEvent)} >= {"participation.approve", "participation.complete"}


def test_completing_twice_credits_points_once(app, make_user, admin_client, mailbox, admin):
    adv = make_advocate(make_user, "twice@example.com")
    oid = make_opp("review", title="G2 review", mode=SelectionMode.FIRST_COME)  # default points: 200
    c = client_for(app, adv)
    _request(c, oid)
    p = participation_of(adv, oid)
    assert p.status == ParticipationStatus.APPROVED
    _act(admin_client, p.id, "complete", oid)
    again = _act(admin_client, p.id, "complete", oid, follow_redirects=True)
    assert "Already marked completed; the points were credited then." in text_of(again)
    # and straight through the service, as a retried job would
    with pytest.raises(Conflict):
        participation.complete(db.session, p.id, user(admin.id))
    db.session.rollback()
    entries = db.session.query(PointsEntry).filter_by(user_id=adv).all()
    assert [(e.amount, e.source, e.source_id) for e in entries] == [(200, EntrySource.PARTICIPATION, p.id)]
    assert entries[0].idempotency_key == f"participation:{p.id}:complete"
    assert points.balance(db.session, adv) == 200 and points.lifetime_earned(db.session, adv) == 200
    assert points.verify(db.session) == []
    assert len([s for s in _subjects(mailbox, "twice@example.com") if s.startswith("Thank you!")]) == 1


def test_zero_point_opportunities_complete_without_a_ledger_entry(app, make_user, admin_client):
    adv = make_advocate(make_user, "zero@example.com", types=("beta",))
    oid = make_opp("beta", title="Beta", points=0, mode=SelectionMode.FIRST_COME)
    c = client_for(app, adv)
    _request(c, oid)
    p = participation_of(adv, oid)
    resp = _act(admin_client, p.id, "complete", oid)
    assert resp.status_code == 302
    assert participation_of(adv, oid).status == ParticipationStatus.COMPLETED
    assert db.session.query(PointsEntry).count() == 0 and points.verify(db.session) == []


def test_decline_with_a_message(app, make_user, admin_client, mailbox):
    adv = make_advocate(make_user, "no@example.com")
    oid = make_opp("speaking", title="Panel", capacity=1)
    c = client_for(app, adv)
    _request(c, oid)
    p = participation_of(adv, oid)
    resp = _act(
        admin_client, p.id, "decline", oid, {"message": "We picked a banking voice this time"}, follow_redirects=True
    )
    assert "Declined; the advocate has been emailed." in text_of(resp)
    p = participation_of(adv, oid)
    assert p.status == ParticipationStatus.DECLINED and p.admin_message == "We picked a banking voice this time"
    mail = mailbox.last("no@example.com", subject="About your request: Panel")
    assert "We picked a banking voice this time" in mail.text
    detail = text_of(c.get(f"/opportunities/{oid}"))
    assert "Your participation is declined. We picked a banking voice this time" in detail
    assert "Panel · Declined" in _section(text_of(c.get("/me/commitments")), "History")
    assert "Panel" not in _section(text_of(c.get("/dashboard")), "My commitments", "Recommended")
    # a declined advocate cannot simply ask again
    again = _request(c, oid, follow_redirects=True)
    assert "You have already answered this opportunity" in text_of(again)
    assert participation_of(adv, oid).status == ParticipationStatus.DECLINED


def test_declining_an_approved_place_gives_the_seat_back(app, make_user, admin_client):
    adv = make_advocate(make_user, "back@example.com")
    oid = make_opp("speaking", title="Full talk", capacity=1, mode=SelectionMode.FIRST_COME)
    _request(client_for(app, adv), oid)
    assert reload(Opportunity, oid).seats_taken == 1
    _act(admin_client, participation_of(adv, oid).id, "decline", oid)
    p = participation_of(adv, oid)
    assert p.status == ParticipationStatus.DECLINED and not p.holds_seat
    assert reload(Opportunity, oid).seats_taken == 0


def test_no_show(app, make_user, admin_client, mailbox):
    adv = make_advocate(make_user, "missing@example.com")
    oid = make_opp("webinar", title="Webinar", points=400)
    c = client_for(app, adv)
    _request(c, oid)
    p = participation_of(adv, oid)
    refused = _act(admin_client, p.id, "no_show", oid, follow_redirects=True)  # not approved yet
    assert "Only an approved participation can be marked as a no-show." in text_of(refused)
    _act(admin_client, p.id, "approve", oid)
    resp = _act(admin_client, p.id, "no_show", oid, follow_redirects=True)
    assert "Marked as a no-show." in text_of(resp)
    assert participation_of(adv, oid).status == ParticipationStatus.NO_SHOW
    assert mailbox.last("missing@example.com", subject="We missed you: Webinar")
    assert "Webinar · No show" in _section(text_of(c.get("/me/commitments")), "History")
    completed = _act(admin_client, p.id, "complete", oid, follow_redirects=True)
    assert "Only an approved participation can be completed." in text_of(completed)
    assert db.session.query(PointsEntry).count() == 0


def test_withdraw_before_completion_releases_the_seat(app, make_user, admin_client, mailbox):
    first = make_advocate(make_user, "first@example.com")
    second = make_advocate(make_user, "second@example.com")
    oid = make_opp("speaking", title="One seat", capacity=1, mode=SelectionMode.FIRST_COME)
    c1, c2 = client_for(app, first), client_for(app, second)
    resp = _request(c1, oid, follow_redirects=True)
    assert "You're in! Your place is confirmed" in text_of(resp)
    assert mailbox.last("first@example.com", subject="You're in: One seat")
    assert reload(Opportunity, oid).seats_taken == 1
    assert "All seats are taken." in text_of(_request(c2, oid, follow_redirects=True))
    p = participation_of(first, oid)

    resp = post_form(c1, f"/me/commitments/{p.id}/withdraw", {}, page="/me/commitments", follow_redirects=True)
    assert "You withdrew from One seat." in text_of(resp)
    p = participation_of(first, oid)
    assert p.status == ParticipationStatus.WITHDRAWN and not p.holds_seat
    assert reload(Opportunity, oid).seats_taken == 0
    assert mailbox.last("first@example.com", subject="You withdrew from: One seat")
    assert "One seat · Withdrawn" in _section(text_of(c1.get("/me/commitments")), "History")
    assert "One seat" not in _section(text_of(c1.get("/dashboard")), "My commitments", "Recommended")

    # the seat is free for the next advocate
    _request(c2, oid)
    assert participation_of(second, oid).status == ParticipationStatus.APPROVED
    assert reload(Opportunity, oid).seats_taken == 1


def test_withdraw_a_request_and_ask_again(app, make_user):
    adv = make_advocate(make_user, "again@example.com")
    oid = make_opp("speaking", title="Maybe", capacity=3)
    c = client_for(app, adv)
    _request(c, oid, "first try")
    p = participation_of(adv, oid)
    post_form(c, f"/me/commitments/{p.id}/withdraw", {}, page="/me/commitments")
    assert participation_of(adv, oid).status == ParticipationStatus.WITHDRAWN
    _request(c, oid, "second try")
    again = participation_of(adv, oid)
    assert again.id == p.id and again.status == ParticipationStatus.REQUESTED and again.message == "second try"
    assert db.session.query(Participation).count() == 1


def test_completed_participations_cannot_be_withdrawn(app, make_user, admin_client):
    adv = make_advocate(make_user, "kept@example.com")
    oid = make_opp("speaking", title="Done", mode=SelectionMode.FIRST_COME, capacity=2)
    c = client_for(app, adv)
    _request(c, oid)
    p = participation_of(adv, oid)
    _act(admin_client, p.id, "complete", oid)
    resp = post_form(c, f"/me/commitments/{p.id}/withdraw", {}, page="/me/commitments", follow_redirects=True)
    assert "Only a request or an approved place can be withdrawn." in text_of(resp)
    assert participation_of(adv, oid).status == ParticipationStatus.COMPLETED
    assert reload(Opportunity, oid).seats_taken == 1


def test_an_advocate_cannot_withdraw_another_advocates_participation(app, make_user, mailbox):
    owner = make_advocate(make_user, "owner@example.com")
    intruder = make_advocate(make_user, "intruder@example.com")
    oid = make_opp("speaking", title="Mine", capacity=1, mode=SelectionMode.FIRST_COME)
    _request(client_for(app, owner), oid)
    p = participation_of(owner, oid)
    resp = post_form(client_for(app, intruder), f"/me/commitments/{p.id}/withdraw", {}, page="/me/commitments")
    assert resp.status_code == 404
    assert participation_of(owner, oid).status == ParticipationStatus.APPROVED
    assert reload(Opportunity, oid).seats_taken == 1
    assert not [s for s in _subjects(mailbox, "owner@example.com") if s.startswith("You withdrew")]
    c = client_for(app, intruder)
    assert post_form(c, "/me/commitments/999999/withdraw", {}, page="/me/commitments").status_code == 404


def test_one_participation_per_advocate_and_opportunity(app, make_user, mailbox):
    adv = make_advocate(make_user, "once@example.com")
    oid = make_opp("speaking", title="Once", capacity=5)
    c = client_for(app, adv)
    _request(c, oid)
    resp = _request(c, oid, follow_redirects=True)
    assert "You have already answered this opportunity; see My commitments." in text_of(resp)
    db.session.rollback()
    assert db.session.query(Participation).filter_by(user_id=adv, opportunity_id=oid).count() == 1
    assert len(mailbox.to("once@example.com")) == 1
    # and the database itself refuses a second row
    db.session.add(Participation(opportunity_id=oid, user_id=adv, status=ParticipationStatus.REQUESTED))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_approving_twice_or_past_capacity_is_refused(app, make_user, admin_client):
    a = make_advocate(make_user, "a@example.com")
    b = make_advocate(make_user, "b@example.com")
    oid = make_opp("speaking", title="Tiny", capacity=1)
    _request(client_for(app, a), oid)
    _request(client_for(app, b), oid)
    pa, pb = participation_of(a, oid), participation_of(b, oid)
    _act(admin_client, pa.id, "approve", oid)
    again = _act(admin_client, pa.id, "approve", oid, follow_redirects=True)
    assert "This participation is already approved." in text_of(again)
    full = _act(admin_client, pb.id, "approve", oid, follow_redirects=True)
    assert "All seats are taken; raise the capacity or decline someone first." in text_of(full)
    assert participation_of(b, oid).status == ParticipationStatus.REQUESTED
    assert reload(Opportunity, oid).seats_taken == 1


# --- advisory boards ------------------------------------------------------------------------------------------


def test_board_opportunities_need_a_term(app, admin_client):
    resp = post_form(
        admin_client,
        "/admin/opportunities/new",
        admin_form(atype("advisory_board").id, title="CAB", term_start="2027-01-01"),
    )
    assert resp.status_code == 422 and "An advisory board needs a term" in text_of(resp)
    db.session.rollback()
    assert db.session.query(Opportunity).count() == 0


def test_board_members_current_then_past(app, make_user, admin):
    adv = make_advocate(make_user, "cab@example.com", name="Cara Board")
    start = datetime(2031, 1, 10, 12, tzinfo=UTC)
    with time_machine.travel(start, tick=False):  # sign in inside the travel: sessions expire
        admin_client = client_for(app, admin.email)
        cab = make_opp(
            "advisory_board", title="CAB 2031", capacity=12, term_start=date(2031, 2, 1), term_end=date(2031, 12, 31)
        )
        waiting = make_opp(
            "advisory_board", title="Product council", term_start=date(2031, 1, 1), term_end=date(2031, 6, 30)
        )
        c = client_for(app, adv)
        _request(c, cab)
        _request(c, waiting)  # stays requested: not a member
        _act(admin_client, participation_of(adv, cab).id, "approve", cab)
        page = text_of(c.get("/me/boards"))
        assert "CAB 2031 · 01 Feb 2031 – 31 Dec 2031" in _section(page, "Current", "Past")
        assert "None." in _section(page, "Past") and "Product council" not in page
        admin_page = text_of(admin_client.get("/admin/boards"))
        assert "CAB 2031" in admin_page and "1 of 12 seats" in admin_page and "Cara Board" in admin_page
        assert "up for renewal" not in admin_page
    with time_machine.travel(datetime(2032, 1, 1, 9, tzinfo=UTC), tick=False):
        page = text_of(client_for(app, adv).get("/me/boards"))
        assert "You are not on a board right now." in _section(page, "Current", "Past")
        assert "CAB 2031" in _section(page, "Past")


@pytest.mark.parametrize("days_left,due", [(0, True), (59, True), (60, True), (61, False), (-1, False)])
def test_admin_boards_flag_renewal_within_60_days(app, make_user, admin, days_left, due):
    adv = make_advocate(make_user, "renew@example.com", name="Rene Renew")
    today = date(2031, 3, 1)
    with time_machine.travel(datetime(2031, 3, 1, 12, tzinfo=UTC), tick=False):
        oid = make_opp(
            "advisory_board", title="CAB", term_start=date(2030, 3, 1), term_end=today + timedelta(days=days_left)
        )
        db.session.add(
            Participation(opportunity_id=oid, user_id=adv, status=ParticipationStatus.APPROVED, holds_seat=True)
        )
        db.session.commit()
        page = text_of(client_for(app, admin.email).get("/admin/boards"))
    assert "Rene Renew" in page
    assert ("up for renewal" in page) is due and ("renewal due" in page) is due


def test_admin_boards_list_only_approved_and_completed_members(app, make_user, admin_client):
    oid = make_opp("advisory_board", title="CAB roster", capacity=5)
    statuses = {
        "Ann Approved": ParticipationStatus.APPROVED,
        "Cam Completed": ParticipationStatus.COMPLETED,
        "Rita Requested": ParticipationStatus.REQUESTED,
        "Dan Declined": ParticipationStatus.DECLINED,
        "Wes Withdrawn": ParticipationStatus.WITHDRAWN,
    }
    for i, (name, status) in enumerate(statuses.items()):
        uid = make_advocate(make_user, f"roster{i}@example.com", name=name)
        db.session.add(Participation(opportunity_id=oid, user_id=uid, status=status))
    db.session.commit()
    page = text_of(admin_client.get("/admin/boards"))
    assert "Ann Approved" in page and "Cam Completed" in page
    for name in ("Rita Requested", "Dan Declined", "Wes Withdrawn"):
        assert name not in page


# --- approval checks the opportunity and the advocate -------------------------------------------------------


@pytest.mark.parametrize(
    "opp_status,user_status,message",
    [
        ("archived", "suspended", "This opportunity is archived: only open or closed opportunities take participants."),
        ("archived", "active", "This opportunity is archived: only open or closed opportunities take participants."),
        ("open", "suspended", "This advocate's account is suspended: only active advocates can be approved."),
        (
            "closed",
            "pending_approval",
            "This advocate's account is pending approval: only active advocates can be approved.",
        ),
    ],
)
def test_approval_needs_an_open_or_closed_opportunity_and_an_active_advocate(
    app, make_user, admin_client, mailbox, opp_status, user_status, message
):
    from portal.models import OpportunityStatus, Status, User

    adv = make_advocate(make_user, "late@example.com", name="Lee Late")
    oid = make_opp("speaking", title="Old talk", capacity=3)
    _request(client_for(app, adv), oid)
    mailbox.clear()
    db.session.query(Opportunity).filter_by(id=oid).update({"status": OpportunityStatus(opp_status)})
    db.session.query(User).filter_by(id=adv).update({"status": Status(user_status)})
    db.session.commit()
    p = participation_of(adv, oid)
    resp = _act(admin_client, p.id, "approve", oid, {"override_reason": "even so"}, follow_redirects=True)
    assert message in text_of(resp)
    p = participation_of(adv, oid)
    assert p.status == ParticipationStatus.REQUESTED and not p.holds_seat and p.override_reason is None
    assert reload(Opportunity, oid).seats_taken == 0
    assert mailbox.to("late@example.com") == []
    db.session.rollback()
    assert db.session.query(AuditEvent).filter_by(action="participation.approve").count() == 0


def test_a_closed_opportunity_can_still_approve_and_complete(app, make_user, admin_client):
    from portal.models import OpportunityStatus

    adv = make_advocate(make_user, "closing@example.com")
    oid = make_opp("speaking", title="Closing soon", capacity=3)
    _request(client_for(app, adv), oid)
    db.session.query(Opportunity).filter_by(id=oid).update({"status": OpportunityStatus.CLOSED})
    db.session.commit()
    p = participation_of(adv, oid)
    _act(admin_client, p.id, "approve", oid)
    assert participation_of(adv, oid).status == ParticipationStatus.APPROVED
    # archived after the event: the work was done, completion still credits it
    db.session.query(Opportunity).filter_by(id=oid).update({"status": OpportunityStatus.ARCHIVED})
    db.session.commit()
    _act(admin_client, p.id, "complete", oid)
    assert participation_of(adv, oid).status == ParticipationStatus.COMPLETED


# --- decision forms: too long is a message, not a bare 400 ---------------------------------------------------------


@pytest.mark.parametrize(
    "field,limit,label",
    [
        ("message", 1000, "Message to the advocate"),
        ("override_reason", 500, "Override reason (only to approve beyond a fatigue limit)"),
    ],
)
def test_an_over_long_message_or_reason_is_flashed_not_a_400(
    app, make_user, admin_client, mailbox, field, limit, label
):
    adv = make_advocate(make_user, "long@example.com")
    oid = make_opp("speaking", title="Wordy", capacity=3)
    _request(client_for(app, adv), oid)
    mailbox.clear()
    p = participation_of(adv, oid)
    for action in ("approve", "decline"):
        if field == "override_reason" and action == "decline":
            continue
        resp = _act(admin_client, p.id, action, oid, {field: "x" * (limit + 1)})
        assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/admin/opportunities/{oid}")
        page = text_of(admin_client.get(f"/admin/opportunities/{oid}"))
        assert f"{label}: Field cannot be longer than {limit} characters." in page
        assert participation_of(adv, oid).status == ParticipationStatus.REQUESTED
    assert mailbox.to("long@example.com") == []
    # a missing CSRF token is still a plain 400
    assert admin_client.post(f"/admin/participations/{p.id}/approve", data={}).status_code == 400


def test_board_roster_shows_each_members_fatigue(app, make_user, admin_client):
    import re
    from datetime import timedelta as td

    from portal.models import utcnow

    tired = make_advocate(make_user, "tired@example.com", name="Tia Tired")
    fresh = make_advocate(make_user, "fresh@example.com", name="Finn Fresh")
    oid = make_opp("advisory_board", title="CAB with fatigue", capacity=5)
    for uid in (tired, fresh):
        db.session.add(
            Participation(
                opportunity_id=oid,
                user_id=uid,
                status=ParticipationStatus.APPROVED,
                holds_seat=True,
                engaged_at=utcnow(),
            )
        )
    for i in range(3):  # three more engagements: four with the board, the program's limit
        other = make_opp("speaking", title=f"Talk {i}")
        db.session.add(
            Participation(
                opportunity_id=other,
                user_id=tired,
                status=ParticipationStatus.COMPLETED,
                engaged_at=utcnow() - td(days=i + 1),
            )
        )
    db.session.commit()
    page = admin_client.get("/admin/boards").get_data(as_text=True)
    items = {
        name: text_of(li)
        for li in re.findall(r"<li>.*?</li>", page, flags=re.S)
        for name in ("Tia Tired", "Finn Fresh")
        if name in li
    }
    assert "Fatigue: At limit" in items["Tia Tired"]
    assert "Fatigue: Available" in items["Finn Fresh"]
