"""Reference requests: a staff member asks for an advocate for a deal; an admin (or the staff member, when
the program allows it) asks advocates; they accept or decline from their asks page; the requester follows
the status by email, completes it (the activity's points, once) and records the outcome."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from portal.database import begin_write
from portal.extensions import db
from portal.models import (
    Opportunity,
    OutboxMessage,
    Participation,
    ParticipationStatus,
    ReferenceOutcome,
    ReferenceRequest,
    ReferenceStatus,
    Role,
    User,
    utcnow,
)
from portal.services import fatigue, opportunities, participation, references, settings, timeline
from portal.services.errors import DomainError
from search import documents
from tests.support import (
    atype,
    audits,
    client_for,
    entries,
    make_advocate,
    page_text,
    post_form,
    reload,
    run_threads,
)

DUE = date.today() + timedelta(days=20)


def _new_request(client, account: str = "Globex", needed: int = 1) -> int:
    resp = post_form(
        client,
        "/staff/references/new",
        {
            "activity_type_id": str(atype("reference_call").id),
            "account_name": account,
            "crm_opportunity_id": "OPP-42",
            "deal_amount": "120000",
            "currency": "EUR",
            "due_date": DUE.isoformat(),
            "advocates_needed": str(needed),
            "industry_id": "0",
            "product_id": "0",
            "region_id": "0",
            "size_band_id": "0",
            "need": "A CFO who moved off spreadsheets",
        },
    )
    assert resp.status_code == 302, page_text(resp)[:800]
    return int(resp.headers["Location"].rstrip("/").split("/")[-1])


def _ask(client, rr_id: int, email: str, override: str = ""):
    return post_form(
        client,
        f"/staff/references/{rr_id}/ask",
        {"email": email, "override_reason": override},
        page=f"/staff/references/{rr_id}",
    )


def _ask_id(rr_id: int, user_id: int) -> Participation:
    db.session.rollback()
    rr = db.session.get(ReferenceRequest, rr_id)
    return db.session.query(Participation).filter_by(opportunity_id=rr.opportunity_id, user_id=user_id).one_or_none()


def _answer(client, pid: int, action: str, **data):
    return post_form(client, f"/me/asks/{pid}/{action}", data, page="/me/asks")


def test_request_ask_accept_schedule_complete_outcome(app, make_user, staff, staff_client, admin_client, mailbox):
    ada = make_advocate(make_user, "ada@example.com", name="Ada Lovelace")
    other = make_advocate(make_user, "other@example.com", name="Otto Other")
    rr_id = _new_request(staff_client)
    rr = reload(ReferenceRequest, rr_id)
    oid, points_each = rr.opportunity_id, atype("reference_call").default_points
    opp = db.session.get(Opportunity, oid)
    assert rr.status == ReferenceStatus.OPEN and opp.private and opp.capacity == 1 and opp.deadline == DUE
    assert audits("reference.create", rr_id)

    # the admin asks Ada: she is emailed, and the requester told
    assert _ask(admin_client, rr_id, "ada@example.com").status_code == 302
    ask = _ask_id(rr_id, ada)
    assert ask.status == ParticipationStatus.ASKED and ask.asked_by_id is not None
    mail = mailbox.last("ada@example.com", subject="Could you help?")
    assert "Sam Staff" in mail.text and "Globex" in mail.text and "/me/asks" in mail.text
    assert "was asked" in mailbox.last(staff.email, subject="Globex").text
    assert reload(ReferenceRequest, rr_id).status == ReferenceStatus.ASKED

    # the private opportunity is nowhere for another advocate: feed, page, opportunity search, index
    other_client = client_for(app, other)
    assert "Globex" not in page_text(other_client.get("/opportunities"))
    assert other_client.get(f"/opportunities/{oid}").status_code == 404
    assert "for Globex" not in page_text(other_client.get("/search/opportunities?q=Globex"))
    assert oid not in {o.id for o in opportunities.open_opportunities(db.session)}
    assert documents.opportunity_docs(db.session, [oid]) == ([], [oid])
    assert oid not in documents.all_opportunity_ids(db.session)
    db.session.rollback()

    # Ada accepts in one click from her asks page
    ada_client = client_for(app, ada)
    page = page_text(ada_client.get("/me/asks"))
    assert "Waiting for your answer" in page and "Sam Staff" in page and "Globex" in page
    assert ada_client.get(f"/opportunities/{oid}").status_code == 200  # she was asked: she sees it
    assert _answer(ada_client, ask.id, "accept").status_code == 302
    ask = _ask_id(rr_id, ada)
    assert ask.status == ParticipationStatus.APPROVED and ask.holds_seat and ask.answered_at and ask.engaged_at
    rr = reload(ReferenceRequest, rr_id)
    assert rr.status == ReferenceStatus.ACCEPTED and rr.fulfilled_at is not None
    assert reload(Opportunity, oid).seats_taken == 1
    assert "said yes" in mailbox.last(staff.email, subject="said yes").text
    # an accepted ask counts like a participation: another reference call within the gap is refused
    decision = fatigue.may_ask(db.session, ada, atype("reference_call"), DUE + timedelta(days=3))
    assert decision.has({fatigue.REFERENCE_CALL_GAP})
    db.session.rollback()

    # the requester schedules, completes (twice: paid once) and records the outcome
    url = f"/staff/references/{rr_id}"
    resp = post_form(staff_client, f"{url}/schedule", {"when": f"{DUE.isoformat()}T15:30"}, page=url)
    assert resp.status_code == 302
    assert reload(ReferenceRequest, rr_id).status == ReferenceStatus.SCHEDULED
    assert mailbox.last("ada@example.com", subject="Scheduled")
    assert post_form(staff_client, f"{url}/complete", page=url).status_code == 302
    again = post_form(staff_client, f"{url}/complete", page=url, follow_redirects=True)
    assert "already completed" in page_text(again)
    rr = reload(ReferenceRequest, rr_id)
    assert rr.status == ReferenceStatus.COMPLETED and rr.completed_at
    assert _ask_id(rr_id, ada).status == ParticipationStatus.COMPLETED
    credited = entries(ada)
    assert [e.amount for e in credited] == [points_each] and credited[0].source_id == ask.id
    resp = post_form(staff_client, f"{url}/outcome", {"outcome": "won", "final_amount": "150000"}, page=url)
    assert resp.status_code == 302
    rr = reload(ReferenceRequest, rr_id)
    assert rr.outcome == ReferenceOutcome.WON and rr.final_amount == 150000
    assert audits("reference.outcome", rr_id) and audits("reference.complete", rr_id)
    assert "completed" in mailbox.last(staff.email, subject="completed").text

    # Ada leaves a note; her asks page lists every ask ever made of her, her own requests too
    assert _answer(ada_client, ask.id, "note", note="Great call, they signed!").status_code == 302
    assert _ask_id(rr_id, ada).advocate_note == "Great call, they signed!"
    page = page_text(ada_client.get("/me/asks"))
    assert "Reference call for Globex" in page and "Done" in page and "Waiting for your answer" not in page
    detail = page_text(staff_client.get(url))
    assert "Ada Lovelace" in detail and "Great call, they signed!" in detail and "Won" in detail
    assert "Globex" in page_text(staff_client.get("/staff/"))


def test_rules_override_decline_expiry_and_access(
    app, make_user, staff, staff_client, admin, admin_client, mailbox, runner
):
    paused = make_advocate(make_user, "paused@example.com", name="Pat Paused", paused_until=DUE + timedelta(days=30))
    bea = make_advocate(make_user, "bea@example.com", name="Bea Busy")
    cyd = make_advocate(make_user, "cyd@example.com", name="Cyd Silent")
    rr_id = _new_request(staff_client, "Initech", needed=2)
    url = f"/staff/references/{rr_id}"

    # another staff member: as if it did not exist; staff cannot ask while self-service is off
    nosy = make_user(Role.STAFF, email="nosy@example.com", name="Nosy Staff")
    nosy_client = client_for(app, nosy.id)
    assert nosy_client.get(url).status_code == 404
    assert _ask(nosy_client, rr_id, "bea@example.com").status_code == 404
    assert rr_id not in [r.id for r in references.list_for(db.session, db.session.get(User, nosy.id)).rows]
    db.session.rollback()
    assert _ask(staff_client, rr_id, "bea@example.com").status_code == 403
    assert _ask_id(rr_id, bea) is None

    # the rules refuse a paused advocate; only an admin overrides, with a reason, audited
    resp = _ask(
        admin_client,
        rr_id,
        "paused@example.com",
    )
    assert resp.status_code == 302 and _ask_id(rr_id, paused) is None
    settings.save(db.session, {"self_service_requests": True}, admin.id)
    db.session.commit()
    _ask(staff_client, rr_id, "paused@example.com", override="They insisted")
    assert _ask_id(rr_id, paused) is None  # staff may ask now, but not override
    assert _ask(admin_client, rr_id, "paused@example.com", override="Asked us to call on this deal").status_code == 302
    p = _ask_id(rr_id, paused)
    assert p.status == ParticipationStatus.ASKED and p.override_reason == "Asked us to call on this deal"
    [event] = audits("participation.override", p.id)
    assert event.details["reason"] == "Asked us to call on this deal"

    # with self-service on, the requester asks Bea herself; Bea declines with a reason
    assert _ask(staff_client, rr_id, "bea@example.com").status_code == 302
    bea_ask = _ask_id(rr_id, bea)
    assert bea_ask.status == ParticipationStatus.ASKED
    assert _answer(client_for(app, bea), bea_ask.id, "decline", reason="On leave that week").status_code == 302
    bea_ask = _ask_id(rr_id, bea)
    assert bea_ask.status == ParticipationStatus.DECLINED and bea_ask.answer_reason == "On leave that week"
    assert "On leave that week" in mailbox.last(staff.email, subject="declined").text
    # a declined ask does not count: Bea may still be asked for another reference call
    assert fatigue.may_ask(db.session, bea, atype("reference_call"), DUE + timedelta(days=3))
    db.session.rollback()

    # Cyd never answers: after five days her ask expires and the requester is told
    assert _ask(admin_client, rr_id, "cyd@example.com").status_code == 302
    with time_machine.travel(utcnow() + timedelta(days=references.ASK_DAYS, hours=1)):
        result = runner.invoke(args=["references", "expire"])
    assert result.exit_code == 0 and "2 ask(s) expired" in result.output, result.output
    assert _ask_id(rr_id, cyd).status == ParticipationStatus.EXPIRED
    assert "did not answer in time" in mailbox.last(staff.email, subject="did not answer").text
    assert _ask_id(rr_id, paused).status == ParticipationStatus.EXPIRED  # asked first, not answered either
    assert reload(ReferenceRequest, rr_id).status == ReferenceStatus.OPEN  # nobody left to answer

    # the advocate's asks page says she did not answer; the requester cancels
    assert "Not answered in time" in page_text(client_for(app, cyd).get("/me/asks"))
    resp = post_form(staff_client, f"{url}/cancel", {"reason": "Deal slipped"}, page=url)
    assert resp.status_code == 302
    assert reload(ReferenceRequest, rr_id).status == ReferenceStatus.CANCELLED
    assert _ask_id(rr_id, cyd).status == ParticipationStatus.EXPIRED
    assert audits("reference.cancel", rr_id)


def test_twenty_concurrent_accepts_fill_a_one_advocate_request_once(app, make_user, staff, admin):
    ids = [make_advocate(make_user, f"racer{i}@example.com") for i in range(20)]
    begin_write(db.session)
    actor = db.session.get(User, admin.id)
    rr = references.create(
        db.session,
        db.session.get(User, staff.id),
        references.RequestInput(activity_type_id=atype("case_study").id, account_name="Race Corp", due_date=DUE),
    )
    asks = [references.ask(db.session, actor, rr.id, uid).id for uid in ids]
    rr_id, oid = rr.id, rr.opportunity_id
    db.session.commit()

    def go(i):
        with app.app_context():
            try:
                begin_write(db.session)
                references.accept(db.session, db.session.get(User, ids[i]), asks[i])
                db.session.commit()
                return "yes"
            except DomainError as err:
                db.session.rollback()
                return err.message

    results = run_threads(20, go)
    assert results.count("yes") == 1, results
    assert not [r for r in results if isinstance(r, BaseException)]
    assert reload(Opportunity, oid).seats_taken == 1
    statuses = [p.status for p in db.session.query(Participation).filter_by(opportunity_id=oid)]
    assert statuses.count(ParticipationStatus.APPROVED) == 1 and statuses.count(ParticipationStatus.ASKED) == 19
    assert reload(ReferenceRequest, rr_id).status == ReferenceStatus.ACCEPTED

    # the one who said yes withdraws (from their commitments): the seat is free, the request asked again
    winner = results.index("yes")
    db.session.rollback()
    begin_write(db.session)
    participation.withdraw(db.session, db.session.get(User, ids[winner]), asks[winner])
    db.session.commit()
    assert reload(Opportunity, oid).seats_taken == 0
    assert reload(ReferenceRequest, rr_id).status == ReferenceStatus.ASKED
    assert audits("reference.withdraw", asks[winner])


def test_concurrent_answers_keep_the_status_and_late_accepts_are_refused(app, make_user, staff, admin):
    """Answers lock the request before its ask (the order ask/cancel/complete use): ten advocates saying
    yes at once to a ten-advocate request leave it accepted (no lost status update); an ask past its five
    days is refused even before the expiry job ran, and the job then expires it once, requester told once."""
    ids = [make_advocate(make_user, f"team{i}@example.com") for i in range(11)]
    begin_write(db.session)
    actor = db.session.get(User, admin.id)
    rr = references.create(
        db.session,
        db.session.get(User, staff.id),
        references.RequestInput(
            activity_type_id=atype("case_study").id, account_name="Team Corp", due_date=DUE, advocates_needed=10
        ),
    )
    asks = [references.ask(db.session, actor, rr.id, uid).id for uid in ids]
    rr_id = rr.id
    db.session.commit()

    def go(i):
        with app.app_context():
            try:
                begin_write(db.session)
                references.accept(db.session, db.session.get(User, ids[i]), asks[i])
                db.session.commit()
                return "yes"
            except DomainError as err:
                db.session.rollback()
                return err.message

    assert run_threads(10, go) == ["yes"] * 10
    rr = reload(ReferenceRequest, rr_id)
    assert rr.status == ReferenceStatus.ACCEPTED and rr.fulfilled_at is not None
    db.session.rollback()

    # a cancel racing five accepts: whichever wins, no seat is left held by a cancelled request's ask
    racers = [make_advocate(make_user, f"racer-c{i}@example.com") for i in range(5)]
    begin_write(db.session)
    rr2 = references.create(
        db.session,
        db.session.get(User, staff.id),
        references.RequestInput(
            activity_type_id=atype("case_study").id, account_name="Race Co", due_date=DUE, advocates_needed=5
        ),
    )
    asks2 = [references.ask(db.session, db.session.get(User, admin.id), rr2.id, uid).id for uid in racers]
    rr2_id, oid2 = rr2.id, rr2.opportunity_id
    db.session.commit()

    def race(i):
        with app.app_context():
            try:
                begin_write(db.session)
                if i == 5:
                    references.cancel(db.session, db.session.get(User, staff.id), rr2_id)
                else:
                    references.accept(db.session, db.session.get(User, racers[i]), asks2[i])
                db.session.commit()
                return "ok"
            except DomainError as err:
                db.session.rollback()
                return err.message

    results = run_threads(6, race)
    assert results[5] == "ok" and not [r for r in results if isinstance(r, BaseException)], results
    assert reload(ReferenceRequest, rr2_id).status == ReferenceStatus.CANCELLED
    held = db.session.query(Participation).filter_by(opportunity_id=oid2, holds_seat=True).count()
    statuses = {p.status for p in db.session.query(Participation).filter_by(opportunity_id=oid2)}
    assert held == 0 and reload(Opportunity, oid2).seats_taken == 0 and statuses == {ParticipationStatus.DECLINED}
    db.session.rollback()

    # advocates withdrawing (My commitments) while the requester cancels: the same lock order, no deadlock
    quitters = [make_advocate(make_user, f"quitter{i}@example.com") for i in range(4)]
    begin_write(db.session)
    rr3 = references.create(
        db.session,
        db.session.get(User, staff.id),
        references.RequestInput(
            activity_type_id=atype("case_study").id, account_name="Quit Co", due_date=DUE, advocates_needed=4
        ),
    )
    asks3 = [references.ask(db.session, db.session.get(User, admin.id), rr3.id, uid).id for uid in quitters]
    for uid, ask_id in zip(quitters, asks3, strict=True):
        references.accept(db.session, db.session.get(User, uid), ask_id)
    rr3_id, oid3 = rr3.id, rr3.opportunity_id
    db.session.commit()

    def leave(i):
        with app.app_context():
            try:
                begin_write(db.session)
                if i == 4:
                    references.cancel(db.session, db.session.get(User, staff.id), rr3_id)
                else:
                    participation.withdraw(db.session, db.session.get(User, quitters[i]), asks3[i])
                db.session.commit()
                return "ok"
            except DomainError as err:
                db.session.rollback()
                return err.message

    results = run_threads(5, leave)
    assert results[4] == "ok" and not [r for r in results if isinstance(r, BaseException)], results
    assert reload(ReferenceRequest, rr3_id).status == ReferenceStatus.CANCELLED
    assert reload(Opportunity, oid3).seats_taken == 0
    db.session.rollback()

    # the eleventh ask (the request is full, so asks are no longer possible; this one was made before)
    late = ids[10]
    with time_machine.travel(utcnow() + timedelta(days=references.ASK_DAYS, minutes=5)):
        begin_write(db.session)
        try:
            references.accept(db.session, db.session.get(User, late), asks[10])
            raise AssertionError("a late accept must be refused")
        except DomainError as err:
            assert "expired" in err.message
        db.session.rollback()
        begin_write(db.session)
        assert references.expire_due(db.session) == 1
        assert references.expire_due(db.session) == 0  # exactly once
        db.session.commit()
    assert _ask_id(rr_id, late).status == ParticipationStatus.EXPIRED
    told = db.session.scalars(
        select(OutboxMessage.body_text)
        .where(OutboxMessage.recipient == staff.email, OutboxMessage.subject.contains("did not answer"))
        .order_by(OutboxMessage.id.desc())
    ).first()
    assert "nothing is needed" in told and "ask someone else" not in told  # the request is full already
    assert len(audits("reference.expire", asks[10])) == 1
    # an expired ask does not count against the advocate's limits (fatigue's ASK_STATUSES)
    assert ParticipationStatus.EXPIRED not in fatigue.ASK_STATUSES
    assert fatigue.may_ask(db.session, late, atype("reference_call"), DUE)
    db.session.rollback()


def test_another_advocates_ask_is_a_404_and_bad_ids_are_404s(app, make_user, staff, admin, staff_client):
    ada = make_advocate(make_user, "ada2@example.com", name="Ada Two")
    eve = make_advocate(make_user, "eve2@example.com", name="Eve Two")
    begin_write(db.session)
    rr = references.create(
        db.session,
        db.session.get(User, staff.id),
        references.RequestInput(activity_type_id=atype("case_study").id, account_name="Own Corp", due_date=DUE),
    )
    pid = references.ask(db.session, db.session.get(User, admin.id), rr.id, ada).id
    rr_id = rr.id
    db.session.commit()
    eve_client = client_for(app, eve)
    for action, data in (("accept", {}), ("decline", {"reason": "x"}), ("note", {"note": "x"})):
        assert _answer(eve_client, pid, action, **data).status_code == 404
        assert _answer(eve_client, 2**31 - 1, action, **data).status_code == 404
    assert _ask_id(rr_id, ada).status == ParticipationStatus.ASKED
    for step in ("schedule", "complete", "outcome", "cancel"):
        assert post_form(staff_client, f"/staff/references/{2**31 - 1}/{step}", {}, page="/staff/").status_code == 404
    assert staff_client.get(f"/staff/references/{2**40}").status_code == 404


def test_bad_input_and_illegal_steps_are_refused_with_a_message(app, make_user, staff, staff_client):
    base = {
        "activity_type_id": str(atype("reference_call").id),
        "account_name": "Bad Corp",
        "currency": "USD",
        "due_date": DUE.isoformat(),
        "advocates_needed": "1",
        "industry_id": "0",
        "product_id": "0",
        "region_id": "0",
        "size_band_id": "0",
    }
    new = "/staff/references/new"
    for bad in (
        {"advocates_needed": "0"},
        {"advocates_needed": "1000"},
        {"advocates_needed": "99999999999999999999"},
        {"currency": "EURO"},
        {"currency": "E\nU"},
        {"deal_amount": "-1"},
        {"deal_amount": "10000000000000000000000"},
        {"due_date": (date.today() - timedelta(days=1)).isoformat()},
        {"due_date": "2026-02-30"},
        {"due_date": "9999-12-31"},
        {"account_name": "x" * 161},
        {"account_name": "   "},
        {"need": "x" * 4001},
        {"crm_opportunity_id": "x" * 65},
        {"activity_type_id": "999999"},
        {"industry_id": "999999"},
        {"topic_ids": "999999"},
    ):
        resp = post_form(staff_client, new, {**base, **bad})
        assert resp.status_code == 422, (bad, resp.status_code)
    assert db.session.query(ReferenceRequest).count() == 0
    db.session.rollback()
    rr_id = _new_request(staff_client, "Step Corp")
    url = f"/staff/references/{rr_id}"
    # an open request cannot be scheduled, completed or given an outcome; bad values are refused
    for step, data, words in (
        ("schedule", {"when": f"{DUE.isoformat()}T10:00"}, "Only a request the advocates have accepted"),
        ("schedule", {"when": "not-a-time"}, "When it happens"),
        ("complete", {}, "Only a request the advocates have accepted"),
        ("outcome", {"outcome": "won"}, "once the reference is completed"),
        ("outcome", {"outcome": "won", "final_amount": "-5"}, "Final amount"),
        ("outcome", {"outcome": "maybe"}, "Outcome"),
        ("cancel", {"reason": "x" * 1001}, "Why"),
    ):
        resp = post_form(staff_client, f"{url}/{step}", data, page=url, follow_redirects=True)
        assert resp.status_code == 200 and words in page_text(resp), (step, data)
    assert reload(ReferenceRequest, rr_id).status == ReferenceStatus.OPEN
    assert post_form(staff_client, f"{url}/cancel", {}, page=url).status_code == 302
    again = post_form(staff_client, f"{url}/cancel", {}, page=url, follow_redirects=True)
    assert "already cancelled" in page_text(again)
    assert _ask(staff_client, rr_id, "x@example.com").status_code == 403  # nobody is asked for a closed one


def test_user_content_is_escaped_in_the_emails_and_subjects_stay_one_line(
    app, make_user, staff, staff_client, admin_client, mailbox
):
    make_advocate(make_user, "esc@example.com", name="Esc Advocate")
    rr_id = _new_request(staff_client, "<b>Acme</b>\r\nBcc: evil@example.com")
    assert _ask(admin_client, rr_id, "esc@example.com").status_code == 302
    for mail in (mailbox.last("esc@example.com"), mailbox.last(staff.email)):
        assert "\n" not in mail.subject and "\r" not in mail.subject
        assert "<b>Acme</b>" not in mail.html and "&lt;b&gt;Acme&lt;/b&gt;" in mail.html
    page = staff_client.get(f"/staff/references/{rr_id}").get_data(as_text=True)
    assert "<b>Acme</b>" not in page


def test_a_cancelled_request_is_not_shown_as_declined_by_the_advocate(app, make_user, staff, admin, staff_client):
    yes = make_advocate(make_user, "yes@example.com", name="Yes Advocate")
    wait = make_advocate(make_user, "wait@example.com", name="Wait Advocate")
    no = make_advocate(make_user, "no@example.com", name="No Advocate")
    begin_write(db.session)
    rr = references.create(
        db.session,
        db.session.get(User, staff.id),
        references.RequestInput(
            activity_type_id=atype("case_study").id, account_name="Gone Corp", due_date=DUE, advocates_needed=2
        ),
    )
    actor = db.session.get(User, admin.id)
    pids = {uid: references.ask(db.session, actor, rr.id, uid).id for uid in (yes, wait, no)}
    references.accept(db.session, db.session.get(User, yes), pids[yes])
    references.decline(db.session, db.session.get(User, no), pids[no], "Busy")
    references.cancel(db.session, db.session.get(User, staff.id), rr.id, "Deal lost")
    db.session.commit()
    answers = {uid: [r.answer for r in references.asks_of(db.session, uid)] for uid in (yes, wait, no)}
    assert answers == {
        yes: ["The request was cancelled after you said yes"],
        wait: ["The request was cancelled"],
        no: ["You declined: Busy"],
    }
    # Everyone still concerned is told: the one who said yes, the one who had not answered yet.
    told = {
        to: body
        for to, body in db.session.execute(
            select(OutboxMessage.recipient, OutboxMessage.body_text).where(
                OutboxMessage.subject.startswith("Cancelled")
            )
        )
    }
    assert set(told) == {"yes@example.com", "wait@example.com"}
    assert "that you said yes to" in told["yes@example.com"] and "we asked you about" in told["wait@example.com"]
    assert "Deal lost" in told["wait@example.com"]
    db.session.rollback()


def test_a_reference_is_scheduled_in_a_time_zone_and_each_advocate_is_told_in_their_own(
    app, make_user, staff, staff_client, admin_client, mailbox
):
    ada = make_advocate(make_user, "ada@example.com", name="Ada Lovelace", timezone="America/New_York")
    bob = make_advocate(make_user, "bob@example.com", name="Bob Silent")
    rr_id = _new_request(staff_client)
    assert _ask(admin_client, rr_id, "bob@example.com").status_code == 302
    assert _ask(admin_client, rr_id, "ada@example.com").status_code == 302
    ada_client = client_for(app, ada)
    assert _answer(ada_client, _ask_id(rr_id, ada).id, "accept").status_code == 302
    url = f"/staff/references/{rr_id}"
    page = staff_client.get(url).get_data(as_text=True)
    assert 'name="timezone"' in page and "Europe/Berlin" in page

    # 15:30 in Berlin on 14 January (CET, UTC+1) is 14:30 UTC and 09:30 in New York (EST, UTC-5).
    day = date(utcnow().year + 1, 1, 14)
    resp = post_form(staff_client, f"{url}/schedule", {"when": f"{day}T15:30", "timezone": "Europe/Berlin"}, page=url)
    assert resp.status_code == 302
    rr = reload(ReferenceRequest, rr_id)
    assert rr.scheduled_for.astimezone(UTC).replace(tzinfo=None) == datetime(day.year, 1, 14, 14, 30)
    assert rr.scheduled_tz == "Europe/Berlin" and rr.opportunity.event_date == day
    told = mailbox.last("ada@example.com", subject="Scheduled").text
    assert f"14 Jan {day.year} 09:30 (America/New_York)" in told
    assert f"14 Jan {day.year} 15:30 (Europe/Berlin)" in mailbox.last(staff.email, subject="scheduled").text
    assert f"14 Jan {day.year} 15:30 (Europe/Berlin)" in page_text(staff_client.get(url))
    assert f"Scheduled for 14 Jan {day.year} 09:30 (America/New_York)" in page_text(ada_client.get("/me/asks"))
    (event,) = audits("reference.schedule", rr_id)
    assert event.details["timezone"] == "Europe/Berlin"

    # A zone not on the list is refused with a message; the time stays as it was.
    bad = post_form(staff_client, f"{url}/schedule", {"when": f"{day}T18:00", "timezone": "Mars/Olympus"}, page=url)
    assert bad.status_code == 302 and "Time zone of that time: Not a valid choice" in page_text(staff_client.get(url))
    assert reload(ReferenceRequest, rr_id).scheduled_tz == "Europe/Berlin"
    with pytest.raises(DomainError, match="time zone"):
        references.schedule(db.session, db.session.get(User, staff.id), rr_id, datetime(day.year, 1, 15, 9), "Nowhere")
    db.session.rollback()
    # 02:30 on the last Sunday of March does not exist in Berlin (02:00 becomes 03:00): refused with a message.
    spring = max(date(day.year, 3, d) for d in range(25, 32) if date(day.year, 3, d).weekday() == 6)
    skipped = post_form(
        staff_client, f"{url}/schedule", {"when": f"{spring}T02:30", "timezone": "Europe/Berlin"}, page=url
    )
    assert skipped.status_code == 302 and "does not exist" in page_text(staff_client.get(url))
    assert reload(ReferenceRequest, rr_id).scheduled_for.astimezone(UTC).day == 14
    summer = post_form(
        staff_client, f"{url}/schedule", {"when": f"{spring}T03:30", "timezone": "Europe/Berlin"}, page=url
    )
    assert summer.status_code == 302
    assert reload(ReferenceRequest, rr_id).scheduled_for.astimezone(UTC).hour == 1  # CEST, UTC+2

    # It took place: Bob, who never answered, is told his ask is no longer needed (not that he was too late).
    assert post_form(staff_client, f"{url}/complete", page=url).status_code == 302
    assert _ask_id(rr_id, bob).status == ParticipationStatus.EXPIRED
    bobs = page_text(client_for(app, bob).get("/me/asks"))
    assert "No longer needed" in bobs and "Not answered in time" not in bobs
    told = [e.text for e in timeline.timeline(db.session, bob).entries]
    assert any(t.startswith("No longer needed:") for t in told) and not any(t.startswith("Approved:") for t in told)
    took = references.shown_at(reload(ReferenceRequest, rr_id).scheduled_for, "America/New_York")
    assert took.endswith("21:30 (America/New_York)")  # 03:30 in Berlin (CEST) is 21:30 the evening before (EDT)
    assert f"Took place {took}" in page_text(ada_client.get("/me/asks"))
