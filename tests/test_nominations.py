"""Nominations (issue 13): a staff member nominates a customer; an admin accepts (the customer is invited)
or declines with a reason the nominator sees; the customer joins from the emailed link and the nomination
counts for its nominator, who is emailed. Duplicates are explained, staff see only their own, invitations
get one reminder after 7 days, and nominations waiting past the service level are overdue on the admin home."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select, update

from portal.database import begin_write
from portal.extensions import db
from portal.models import Invitation, Nomination, NominationStatus, Role, Status, SuppressedAddress, User, utcnow
from portal.services import invitations, nominations, privacy, reporting, settings
from portal.services.outbox import send_due
from tests.support import (
    TEST_PASSWORD,
    audits,
    client_for,
    clone_client,
    csrf_from,
    path_of,
    post_form,
    reload,
    run_threads,
    text_of,
)

NEW = "/staff/nominations/new"
PASSWORD = "violet otter canoe 42"


def nominate(client, email: str = "Nora.Nominee@Customer.example ", **over):
    data = {
        "name": "Nora Nominee",
        "email": email,
        "company": "Nominee GmbH",
        "job_title": "Head of data",
        "reason": "Cut reporting time from days to minutes <b>and</b> would speak at our summit.",
        "account_owner": "Olga Owner",
        **over,
    }
    return post_form(client, NEW, data)


def the_nomination(email: str = "nora.nominee@customer.example") -> Nomination:
    db.session.rollback()
    return db.session.scalar(select(Nomination).where(Nomination.email == email).order_by(Nomination.id.desc()))


def join_from_email(app, mailbox, email: str, subject: str = "invited"):
    """The nominee opens the link of their email and signs up (a fresh, anonymous browser)."""
    send_due()
    link = path_of(mailbox.last(email, subject=subject).link("/auth/invited/"))
    visitor = app.test_client()
    page = visitor.get(link)
    assert page.status_code == 200 and 'value="Nominee GmbH"' in page.get_data(as_text=True)
    data = {
        "csrf_token": csrf_from(page.get_data(as_text=True)),
        "name": "Nora Nominee",
        "company": "Nominee GmbH",
        "job_title": "Head of data",
        "password": PASSWORD,
        "confirm": PASSWORD,
        "accept_terms": "y",
    }
    resp = visitor.post(link, data=data)
    assert resp.status_code == 302, text_of(resp)[:500]
    welcome = visitor.get(resp.headers["Location"], follow_redirects=True)
    return link, text_of(welcome)


def save_settings(**values) -> None:
    settings.save(db.session, values, None)
    db.session.commit()


def test_nominated_reviewed_invited_joined(app, mailbox, staff, admin):
    sam = client_for(app, staff.id)
    home = sam.get("/staff/").get_data(as_text=True)
    assert 'href="/staff/nominations/new">Nominate a customer<' in home and "No nominations yet" in home
    resp = nominate(sam)
    nomination = the_nomination()
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/staff/nominations/{nomination.id}")
    assert (nomination.status, nomination.nominator_id, nomination.account_owner) == (
        NominationStatus.PENDING,
        staff.id,
        "Olga Owner",
    )
    assert [e.actor_id for e in audits("nomination.create", nomination.id)] == [staff.id]
    page = sam.get(f"/staff/nominations/{nomination.id}").get_data(as_text=True)
    assert "Waiting for review" in page and "&lt;b&gt;and&lt;/b&gt;" in page  # escaped
    assert "Nora Nominee" in sam.get("/staff/nominations").get_data(as_text=True)
    assert db.session.scalar(select(Invitation)) is None  # nobody invited before the review

    # The admin's queue, reached from the Approvals section; accepting invites the nominee.
    boss = client_for(app, admin.id)
    queue = boss.get("/admin/nominations").get_data(as_text=True)
    assert "Nora Nominee" in queue and staff.name in queue and "Olga Owner" in queue
    resp = post_form(boss, f"/admin/nominations/{nomination.id}/accept", page="/admin/nominations")
    assert resp.status_code == 302
    nomination = the_nomination()
    assert nomination.status == NominationStatus.INVITED and nomination.reviewed_by_id == admin.id
    assert [e.actor_id for e in audits("nomination.invite", nomination.id)] == [admin.id]
    again = post_form(boss, f"/admin/nominations/{nomination.id}/accept", page="/admin/nominations")
    assert "already decided" in text_of(boss.get(again.headers["Location"]))
    assert "No nominations are waiting" in boss.get("/admin/nominations").get_data(as_text=True)

    link, welcome = join_from_email(app, mailbox, "nora.nominee@customer.example")
    assert "Your account is ready" in welcome
    nomination = the_nomination()
    user = db.session.scalar(select(User).where(User.email == "nora.nominee@customer.example"))
    assert (user.status, user.role) == (Status.ACTIVE, Role.ADVOCATE) and user.approved_at  # approved at once
    assert (nomination.status, nomination.joined_user_id) == (NominationStatus.JOINED, user.id)
    assert nomination.joined_at is not None and audits("nomination.joined", nomination.id)
    send_due()
    told = mailbox.last(staff.email, subject="joined")
    assert "Nora Nominee" in told.text and f"/staff/nominations/{nomination.id}" in told.text
    assert "Joined" in sam.get("/staff/").get_data(as_text=True)
    assert app.test_client().get(link).status_code == 400  # single use
    # The nomination counts for its nominator in the program report (this month: they joined today).
    month = reporting.period_for("month", utcnow().date())
    assert [(t.user_id, t.joined) for t in reporting.top_nominators(db.session, month)] == [(staff.id, 1)]
    assert reporting.advocates(db.session, month).nominated == 1
    # The nominee deletes their account: the nomination still counts, and says nothing about them.
    privacy.delete_account(db.session, db.session.get(User, user.id), PASSWORD)
    db.session.commit()
    nomination = the_nomination("")
    assert (nomination.status, nomination.name, nomination.reason, nomination.company) == (
        NominationStatus.JOINED,
        "(a deleted account)",
        "",
        "",
    )
    assert "deleted their account" in text_of(nominate(sam))  # and never nominated again


def test_invited_at_once_and_waiting_for_approval_when_the_program_says_so(app, mailbox, staff, admin):
    save_settings(nominations_invite_at_once=True, nominees_approved_at_once=False)
    sam = client_for(app, staff.id)
    resp = nominate(sam, email="nora.nominee@customer.example")
    assert "has been sent their invitation" in text_of(sam.get(resp.headers["Location"]))
    nomination = the_nomination()
    assert nomination.status == NominationStatus.INVITED and nomination.reviewed_by_id is None
    invitation = db.session.get(Invitation, nomination.invitation_id)
    assert invitation.source == invitations.NOMINATION and invitation.company == "Nominee GmbH"
    assert (invitation.expires_at - invitation.created_at).days == 14
    _, welcome = join_from_email(app, mailbox, "nora.nominee@customer.example")
    assert "approves your account shortly" in welcome and "Your account is ready" not in welcome
    user = db.session.scalar(select(User).where(User.email == "nora.nominee@customer.example"))
    assert user.status == Status.PENDING and user.approved_at is None and user.email_verified_at
    assert the_nomination().status == NominationStatus.JOINED
    send_due()
    assert mailbox.last(admin.email, subject="waiting for approval")  # like a registration
    assert "Nora Nominee" in text_of(client_for(app, admin.id).get("/admin/pending"))


def test_duplicates_are_explained(app, make_user, staff, admin):
    advocate = make_user(email="ada@customer.example", name="Ada Advocate")
    make_user(Role.STAFF, email="pat@example.com", name="Pat Peer")
    db.session.add(SuppressedAddress(email_hash=invitations.email_hash("gone@customer.example"), reason="deleted"))
    db.session.commit()
    invitations.create(db.session, invitations.Invitee(email="ivy@customer.example", name="Ivy"), actor_id=None)
    db.session.commit()
    pat = client_for(app, "pat@example.com")
    assert nominate(pat, email="nora.nominee@customer.example").status_code == 302
    day = the_nomination().created_at.strftime("%d %b %Y")

    sam = client_for(app, staff.id)
    expected = {
        " ADA@customer.example": ("Ada Advocate is already an advocate.", f"/search/advocates/{advocate.id}"),
        "Nora.Nominee@customer.example": (f"was already nominated by Pat Peer on {day} (waiting for review)", None),
        "ivy@customer.example": ("An invitation to this address is already pending", None),
        "gone@customer.example": ("deleted their account or unsubscribed", None),
        staff.email: ("already has an account at the portal", None),
    }
    for email, (message, link) in expected.items():
        resp = nominate(sam, email=email)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 409 and message in text_of(resp), (email, text_of(resp)[:800])
        assert 'value="Nominee GmbH"' in html  # the form keeps what was typed
        if link:
            assert f'href="{link}"' in html
    # An admin is pointed to the advocate's admin profile, and to the earlier nomination.
    boss = client_for(app, admin.id)
    assert f'href="/admin/advocates/{advocate.id}/profile"' in nominate(boss, email="ada@customer.example").text
    earlier = nominate(boss, email="nora.nominee@customer.example")
    assert f'href="/staff/nominations/{the_nomination().id}"' in earlier.text
    invalid = nominate(sam, email="not an address", reason="")
    assert invalid.status_code == 422 and "Why them?" in invalid.text
    db.session.rollback()
    assert len(db.session.scalars(select(Nomination)).all()) == 1  # only Pat's


def test_declined_with_a_reason_and_nobody_else_sees_it(app, mailbox, make_user, staff, admin):
    sam = client_for(app, staff.id)
    nominate(sam)
    nomination = the_nomination()
    other = client_for(app, make_user(Role.STAFF, email="pat@example.com").id)
    assert other.get(f"/staff/nominations/{nomination.id}").status_code == 404  # another's nomination
    assert "Nora Nominee" not in other.get("/staff/nominations").get_data(as_text=True)
    assert "Nora Nominee" not in other.get("/staff/").get_data(as_text=True)
    assert other.get("/admin/nominations").status_code == 403  # staff do not review
    token = csrf_from(other.get("/staff/nominations").get_data(as_text=True))
    for action in ("accept", "decline"):
        resp = other.post(f"/admin/nominations/{nomination.id}/{action}", data={"csrf_token": token, "reason": "x"})
        assert resp.status_code == 403
    boss = client_for(app, admin.id)
    assert "Nora Nominee" in boss.get(f"/staff/nominations/{nomination.id}").get_data(as_text=True)  # admins: all
    url = f"/admin/nominations/{nomination.id}/decline"
    no_reason = post_form(boss, url, {"reason": "  "}, page="/admin/nominations")
    assert "Give the reason" in text_of(boss.get(no_reason.headers["Location"]))
    assert the_nomination().status == NominationStatus.PENDING
    post_form(boss, url, {"reason": "Their contract ends <soon>: ask again next year."}, page="/admin/nominations")
    nomination = the_nomination()
    assert (nomination.status, nomination.reviewed_by_id) == (NominationStatus.DECLINED, admin.id)
    [event] = audits("nomination.decline", nomination.id)
    assert event.actor_id == admin.id and event.details["reason"].startswith("Their contract")
    page = sam.get(f"/staff/nominations/{nomination.id}").get_data(as_text=True)
    assert "Their contract ends &lt;soon&gt;: ask again next year." in page and "Declined" in page
    assert "Their contract ends &lt;soon&gt;" in sam.get("/staff/").get_data(as_text=True)
    send_due()
    mail = mailbox.last(staff.email, subject="not invited")
    assert "Their contract ends &lt;soon&gt;: ask again next year." in mail.text  # no tag, even in text
    assert db.session.scalar(select(Invitation)) is None
    assert nominate(sam).status_code == 302  # a declined nomination does not block a new one


def test_one_reminder_after_seven_days_then_nothing(app, runner, mailbox, make_user, staff):
    save_settings(nominations_invite_at_once=True)
    sam = client_for(app, staff.id)
    nominate(sam, email="nora.nominee@customer.example")
    invitations.create(db.session, invitations.Invitee(email="old@customer.example"), actor_id=None)
    invitations.create(db.session, invitations.Invitee(email="self.made@customer.example"), actor_id=None)
    db.session.commit()
    make_user(email="self.made@customer.example")  # registered by themselves meanwhile: not reminded
    db.session.execute(
        update(Invitation)
        .where(Invitation.email == "old@customer.example")
        .values(created_at=utcnow() - timedelta(days=20), expires_at=utcnow() - timedelta(days=6))
    )
    db.session.commit()
    send_due()
    assert "0 invitation reminder(s)" in runner.invoke(args=["invitations", "remind"]).output  # too early
    with time_machine.travel(utcnow() + timedelta(days=8), tick=False):
        result = runner.invoke(args=["invitations", "remind"])
        assert result.exit_code == 0 and "1 invitation reminder(s) queued" in result.output, result.output
        assert "0 invitation reminder(s)" in runner.invoke(args=["invitations", "remind"]).output  # only once
        [reminded] = db.session.scalars(select(Invitation).where(Invitation.reminded_at.is_not(None))).all()
        assert reminded.email == "nora.nominee@customer.example"
        db.session.rollback()
        send_due()
        first = path_of(mailbox.last("nora.nominee@customer.example", subject="invited").link("/auth/invited/"))
        assert app.test_client().get(first).status_code == 200  # the first email's link still works
        join_from_email(app, mailbox, "nora.nominee@customer.example", subject="Reminder")
        assert app.test_client().get(first).status_code == 400  # one invitation: used through either link
    assert len(mailbox.to("nora.nominee@customer.example")) == 2 and len(mailbox.to("old@customer.example")) == 1
    assert len(mailbox.to("self.made@customer.example")) == 1
    assert the_nomination().status == NominationStatus.JOINED
    assert len(audits("invitation.remind")) == 1


def test_a_nomination_waiting_past_the_service_level_is_overdue_on_the_admin_home(app, staff, admin):
    sam = client_for(app, staff.id)
    nominate(sam)
    boss = client_for(app, admin.id)

    def queue() -> str:
        html = boss.get("/admin/").get_data(as_text=True)
        return next(
            (cls, body)
            for cls, body in re.findall(r'<li class="card queue([^"]*)">(.*?)</li>', html, re.S)
            if "Nominations to review" in body
        )

    classes, body = queue()
    assert "queue-overdue" not in classes and 'href="/admin/nominations"' in body and ">1<" in body
    db.session.execute(update(Nomination).values(created_at=utcnow() - timedelta(days=5)))
    db.session.commit()
    classes, body = queue()
    assert "queue-overdue" in classes and "Overdue" in body


def test_a_nomination_submitted_many_times_at_once_is_recorded_and_invited_once(app, staff, admin):
    """A double click (here eight at once, the program inviting at once) and admins accepting one nomination
    at once: one nomination, one invitation, no error page."""
    save_settings(nominations_invite_at_once=True)
    sam = client_for(app, staff.id)
    token = csrf_from(sam.get(NEW).get_data(as_text=True))
    clients = [clone_client(app, sam) for _ in range(8)]
    data = {"csrf_token": token, "name": "Nora Nominee", "email": "nora@customer.example", "company": "N"}
    data |= {"job_title": "CTO", "reason": "Great results."}
    db.session.rollback()
    statuses = sorted(r.status_code for r in run_threads(8, lambda i: clients[i].post(NEW, data=data)))
    assert statuses == [302] + [409] * 7
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Nomination)) == 1
    assert db.session.scalar(select(func.count()).select_from(Invitation)) == 1

    save_settings(nominations_invite_at_once=False)
    assert nominate(sam, "olga@customer.example").status_code == 302
    pending = the_nomination("olga@customer.example")
    boss = client_for(app, admin.id)
    token = csrf_from(boss.get("/admin/nominations").get_data(as_text=True))
    bosses = [clone_client(app, boss) for _ in range(6)]
    url = f"/admin/nominations/{pending.id}/accept"
    db.session.rollback()
    results = run_threads(6, lambda i: bosses[i].post(url, data={"csrf_token": token}))
    assert [r.status_code for r in results] == [302] * 6
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Invitation)) == 2
    assert len(audits("nomination.invite", pending.id)) == 1


def test_a_waiting_nomination_of_someone_erased_since_is_not_invited(app, make_user, staff, admin):
    """The nominee signed up by themselves meanwhile, then deleted their account: the nomination waiting for
    review keeps nothing about them, and accepting it is refused (no invitation to an empty address)."""
    sam = client_for(app, staff.id)
    assert nominate(sam, "nora@customer.example").status_code == 302
    pending = the_nomination("nora@customer.example")
    nora = make_user(email="nora@customer.example")
    privacy.delete_account(db.session, db.session.get(User, nora.id), TEST_PASSWORD)
    db.session.commit()
    boss = client_for(app, admin.id)
    resp = post_form(boss, f"/admin/nominations/{pending.id}/accept", page="/admin/nominations")
    assert resp.status_code == 302 and "deleted their account" in text_of(boss.get(resp.headers["Location"]))
    assert db.session.scalar(select(func.count()).select_from(Invitation)) == 0
    assert reload(Nomination, pending.id).status == NominationStatus.PENDING


def test_the_reminder_run_twice_at_once_reminds_each_invitation_once(app, mailbox):
    for i in range(6):
        invitations.create(db.session, invitations.Invitee(email=f"late{i}@customer.example"), actor_id=None)
    db.session.execute(update(Invitation).values(created_at=utcnow() - timedelta(days=8)))
    db.session.commit()

    def remind(i):
        with app.app_context():
            begin_write(db.session)
            count = invitations.remind_due(db.session)
            db.session.commit()
            return count

    assert sum(run_threads(3, remind)) == 6  # shared out or all to one run, never twice
    db.session.rollback()
    send_due()
    assert sum(len(mailbox.to(f"late{i}@customer.example")) for i in range(6)) == 12  # invitation + reminder each


def test_bad_input_is_refused_without_an_error_page(app, staff, admin):
    sam = client_for(app, staff.id)
    assert nominate(sam, "not an address").status_code == 422
    assert nominate(sam, name="N" * 121, reason="r" * 4001, company="c" * 161).status_code == 422
    assert nominate(sam, name=" \x00 ").status_code == 422
    for page in ("-5", "abc", "99999999999999999999"):
        assert sam.get(f"/staff/nominations?page={page}").status_code == 200
    assert sam.get("/staff/nominations/99999").status_code == 404
    boss = client_for(app, admin.id)
    assert boss.get("/admin/nominations?page=99999999999999999999").status_code == 200
    for action, data in (("accept", {}), ("decline", {"reason": "No."})):
        url = f"/admin/nominations/99999/{action}"
        assert post_form(boss, url, data, page="/admin/nominations").status_code == 404
    assert nominate(sam).status_code == 302
    url = f"/admin/nominations/{the_nomination().id}/decline"
    resp = post_form(boss, url, {"reason": "x" * 1001}, page="/admin/nominations")
    assert resp.status_code == 302 and the_nomination().status == NominationStatus.PENDING


@pytest.fixture
def nominations_limited(app_config):
    app_config.update(RATELIMIT_ENABLED=True, NOMINATION_RATE_LIMIT="2 per minute")
    return app_config


def test_nominating_is_rate_limited_per_staff_member(nominations_limited, app, make_user, staff):
    sam = client_for(app, staff.id)
    kim = client_for(app, make_user(role=Role.STAFF, email="kim@example.com").id)
    assert [nominate(sam, email=f"n{i}@customer.example").status_code for i in range(3)] == [302, 302, 429]
    assert nominate(kim, email="n9@customer.example").status_code == 302  # per staff member, not per address
    assert db.session.scalar(select(func.count()).select_from(Nomination)) == 3


def test_an_invitation_that_expired_unanswered_is_shown_and_the_person_may_be_nominated_again(app, staff, admin):
    save_settings(nominations_invite_at_once=True)
    sam = client_for(app, staff.id)
    assert nominate(sam, email="nora.nominee@customer.example").status_code == 302
    first = the_nomination()
    assert first.status == NominationStatus.INVITED
    assert nominate(sam, email="nora.nominee@customer.example").status_code == 409  # while the invitation is open
    assert "Invitation expired" not in text_of(sam.get("/staff/nominations"))
    db.session.execute(
        update(Invitation).where(Invitation.id == first.invitation_id).values(expires_at=utcnow() - timedelta(hours=1))
    )
    db.session.commit()
    assert nominations.lapsed(db.session, [first]) == {first.id: nominations.EXPIRED}
    for url in ("/staff/", "/staff/nominations", f"/staff/nominations/{first.id}"):
        assert "Invitation expired" in text_of(sam.get(url)), url
    assert "nominate them again" in text_of(sam.get(f"/staff/nominations/{first.id}"))
    assert nominate(sam, email="nora.nominee@customer.example").status_code == 302  # nominated, invited again
    second = the_nomination()
    assert second.id != first.id and second.status == NominationStatus.INVITED
    assert nominations.lapsed(db.session, [first, second]) == {first.id: nominations.EXPIRED}
    assert "Invitation expired" not in text_of(sam.get(f"/staff/nominations/{second.id}"))
    # The second one is answered "No thanks, don't invite me again": refused, and no link to nominate again.
    invitation = db.session.get(Invitation, second.invitation_id)
    invitation.token_hash = invitations.token_hash("no-thanks-token")
    db.session.commit()
    invitations.refuse(db.session, "no-thanks-token")
    db.session.commit()
    assert nominations.lapsed(db.session, [the_nomination()]) == {second.id: nominations.REFUSED}
    page = text_of(sam.get(f"/staff/nominations/{second.id}"))
    assert "Invitation refused" in page and "does not invite them again" in page and "nominate them again" not in page
