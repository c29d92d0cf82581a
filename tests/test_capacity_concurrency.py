"""Seats under concurrency, on SQLite and (with TEST_DATABASE_URL) on PostgreSQL.

HTTP races drive the real views: one logged-in test client per thread, the CSRF token fetched
first, then every POST released at once by a barrier (each request runs in its own app context
through the FreshContextClient; on SQLite a POST begins with BEGIN IMMEDIATE). Service races run
each thread in its own ``with app.app_context():`` and begin the write as a POST would.
"""

from collections import Counter
from datetime import timedelta

from portal.database import begin_write
from portal.extensions import db
from portal.models import (
    Opportunity,
    Participation,
    ParticipationStatus,
    PointsEntry,
    Role,
    SelectionMode,
    User,
    utcnow,
)
from portal.services import participation, points
from portal.services.errors import DomainError
from tests.support import client_for, csrf_from, make_advocate, make_opp, reload, run_threads


def _no_server_errors(results):
    crashes = [r for r in results if isinstance(r, BaseException)]
    assert not crashes, crashes
    codes = Counter(r.status_code for r in results)
    assert all(code < 500 for code in codes), codes
    return codes


def _statuses(oid):
    db.session.rollback()
    return Counter(p.status for p in db.session.query(Participation).filter_by(opportunity_id=oid))


def _armed(client, page):
    """A client with a CSRF token in hand, ready to POST at once."""
    return client, csrf_from(client.get(page).get_data(as_text=True))


def test_thirty_advocates_race_for_the_last_first_come_seat_over_http(app, make_user, mailbox):
    oid = make_opp("speaking", title="Last seat", capacity=2, seats_taken=1, mode=SelectionMode.FIRST_COME)
    ids = [make_advocate(make_user, f"racer{i}@example.com") for i in range(30)]
    armed = [_armed(client_for(app, uid), f"/opportunities/{oid}") for uid in ids]

    def go(i):
        c, token = armed[i]
        return c.post(f"/opportunities/{oid}/request", data={"csrf_token": token, "message": ""})

    results = run_threads(30, go)
    assert _no_server_errors(results) == {302: 30}
    o = reload(Opportunity, oid)
    assert o.seats_taken == o.capacity == 2
    assert _statuses(oid) == {ParticipationStatus.APPROVED: 1}
    [winner] = db.session.query(Participation).filter_by(opportunity_id=oid).all()
    assert winner.holds_seat and winner.user_id in ids
    winner_email = db.session.get(User, winner.user_id).email
    assert mailbox.last(winner_email, subject="You're in: Last seat")
    assert sum(1 for i in range(30) if mailbox.to(f"racer{i}@example.com")) == 1


def test_thirty_advocates_race_for_the_last_seat_in_services(app, make_user):
    oid = make_opp("speaking", title="Last seat", capacity=1, mode=SelectionMode.FIRST_COME)
    ids = [make_advocate(make_user, f"svc{i}@example.com") for i in range(30)]

    def go(i):
        with app.app_context():
            try:
                begin_write(db.session)
                participation.request(db.session, db.session.get(User, ids[i]), oid)
                db.session.commit()
                return "seat"
            except DomainError as err:
                db.session.rollback()
                return err.message

    results = run_threads(30, go)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert results.count("seat") == 1
    assert set(results) - {"seat"} <= {"All seats are taken.", "Sorry, the last seat was just taken."}
    o = reload(Opportunity, oid)
    assert o.seats_taken == o.capacity == 1
    assert _statuses(oid) == {ParticipationStatus.APPROVED: 1}


def test_ten_concurrent_approvals_fill_exactly_three_seats_over_http(app, make_user, admin, mailbox):
    oid = make_opp("webinar", title="Selective", capacity=3)
    ids = [make_advocate(make_user, f"cand{i}@example.com") for i in range(10)]
    for uid in ids:
        db.session.add(
            Participation(opportunity_id=oid, user_id=uid, status=ParticipationStatus.REQUESTED, requested_at=utcnow())
        )
    db.session.commit()
    pids = [p.id for p in db.session.query(Participation).order_by(Participation.id)]
    db.session.rollback()
    armed = [_armed(client_for(app, admin.email), f"/admin/opportunities/{oid}") for _ in range(10)]

    def go(i):
        c, token = armed[i]
        return c.post(f"/admin/participations/{pids[i]}/approve", data={"csrf_token": token, "message": ""})

    results = run_threads(10, go)
    assert _no_server_errors(results) == {302: 10}
    o = reload(Opportunity, oid)
    assert o.seats_taken == 3
    assert _statuses(oid) == {ParticipationStatus.APPROVED: 3, ParticipationStatus.REQUESTED: 7}
    assert db.session.query(Participation).filter_by(opportunity_id=oid, holds_seat=True).count() == 3
    approved_mail = [i for i in range(10) if any("You're in" in m.subject for m in mailbox.to(f"cand{i}@example.com"))]
    assert len(approved_mail) == 3


def test_ten_concurrent_approvals_in_services(app, make_user, admin):
    oid = make_opp("webinar", title="Selective", capacity=3)
    ids = [make_advocate(make_user, f"sel{i}@example.com") for i in range(10)]
    for uid in ids:
        participation.request(db.session, db.session.get(User, uid), oid)
    db.session.commit()
    pids = [p.id for p in db.session.query(Participation).order_by(Participation.id)]
    db.session.rollback()

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

    results = run_threads(10, go)
    assert results.count(True) == 3 and results.count(False) == 7, results
    assert reload(Opportunity, oid).seats_taken == 3
    assert _statuses(oid) == {ParticipationStatus.APPROVED: 3, ParticipationStatus.REQUESTED: 7}


def test_one_advocate_double_submitting_gets_one_participation(app, make_user, mailbox):
    uid = make_advocate(make_user, "clicker@example.com")
    oid = make_opp("speaking", title="Popular", capacity=5, mode=SelectionMode.FIRST_COME)
    armed = [_armed(client_for(app, uid), f"/opportunities/{oid}") for _ in range(8)]

    def go(i):
        c, token = armed[i]
        return c.post(f"/opportunities/{oid}/request", data={"csrf_token": token, "message": ""})

    _no_server_errors(run_threads(8, go))
    assert _statuses(oid) == {ParticipationStatus.APPROVED: 1}
    assert reload(Opportunity, oid).seats_taken == 1
    assert len(mailbox.wait_for("clicker@example.com", 1)) == 1


def test_concurrent_completions_credit_points_once(app, make_user, admin):
    uid = make_advocate(make_user, "done@example.com")
    oid = make_opp("case_study", title="Case study", points=600, mode=SelectionMode.FIRST_COME)
    p = participation.request(db.session, db.session.get(User, uid), oid)
    db.session.commit()
    pid = p.id
    db.session.rollback()
    armed = [_armed(client_for(app, admin.email), f"/admin/opportunities/{oid}") for _ in range(6)]

    def go(i):
        c, token = armed[i]
        return c.post(f"/admin/participations/{pid}/complete", data={"csrf_token": token})

    _no_server_errors(run_threads(6, go))
    db.session.rollback()
    assert db.session.query(PointsEntry).filter_by(user_id=uid).count() == 1
    assert points.balance(db.session, uid) == 600 and points.verify(db.session) == []
    assert reload(Participation, pid).status == ParticipationStatus.COMPLETED


def test_concurrent_requests_of_one_advocate_cannot_pass_the_program_limit(app, make_user):
    """Three engagements in 90 days and two first-come places asked for at once: only one may pass."""
    uid = make_advocate(make_user, "eager@example.com")
    for d in (1, 2, 3):
        past = make_opp("speaking", title=f"Past {d}")
        db.session.add(
            Participation(
                opportunity_id=past,
                user_id=uid,
                status=ParticipationStatus.COMPLETED,
                requested_at=utcnow() - timedelta(days=d),
                engaged_at=utcnow() - timedelta(days=d),
            )
        )
    db.session.commit()
    oids = [make_opp("speaking", title=f"Now {i}", mode=SelectionMode.FIRST_COME) for i in range(4)]

    def go(i):
        with app.app_context():
            try:
                begin_write(db.session)
                participation.request(db.session, db.session.get(User, uid), oids[i])
                db.session.commit()
                return True
            except DomainError:
                db.session.rollback()
                return False

    results = run_threads(4, go)
    assert results.count(True) == 1, results
    db.session.rollback()
    engaged = (
        db.session.query(Participation)
        .filter(
            Participation.user_id == uid,
            Participation.status.in_([ParticipationStatus.APPROVED, ParticipationStatus.COMPLETED]),
        )
        .count()
    )
    assert engaged == 4


def test_concurrent_approvals_for_one_advocate_cannot_pass_the_program_limit(app, make_user, admin):
    """Three engagements in 90 days and three requests approved by three admins at once: one fits."""
    uid = make_advocate(make_user, "wanted@example.com")
    for d in (1, 2, 3):
        past = make_opp("speaking", title=f"Past {d}")
        db.session.add(
            Participation(
                opportunity_id=past,
                user_id=uid,
                status=ParticipationStatus.COMPLETED,
                requested_at=utcnow() - timedelta(days=d),
                engaged_at=utcnow() - timedelta(days=d),
            )
        )
    db.session.commit()
    oids = [make_opp("webinar", title=f"Selective {i}", capacity=2) for i in range(3)]
    pids = [participation.request(db.session, db.session.get(User, uid), oid).id for oid in oids]
    db.session.commit()
    armed = [_armed(client_for(app, admin.email), f"/admin/opportunities/{oids[i]}") for i in range(3)]

    def go(i):
        c, token = armed[i]
        return c.post(f"/admin/participations/{pids[i]}/approve", data={"csrf_token": token, "message": ""})

    _no_server_errors(run_threads(3, go))
    db.session.rollback()
    got = Counter(db.session.get(Participation, pid).status for pid in pids)
    assert got == {ParticipationStatus.APPROVED: 1, ParticipationStatus.REQUESTED: 2}
    assert sum(reload(Opportunity, oid).seats_taken for oid in oids) == 1


def test_staff_cannot_take_seats(app, make_user):
    staff_id = make_user(Role.STAFF, email="staffrace@example.com").id
    oid = make_opp("speaking", title="Advocates only", capacity=1, mode=SelectionMode.FIRST_COME)
    with app.app_context():
        try:
            participation.request(db.session, db.session.get(User, staff_id), oid)
        except DomainError as err:
            assert err.status_code == 403
        else:  # pragma: no cover - the assertion below explains
            raise AssertionError("a staff member took a seat")
        finally:
            db.session.rollback()
    assert reload(Opportunity, oid).seats_taken == 0
