"""An admin adds an advocate to an opportunity by hand (either selection mode): the advocate's own
request rules (eligibility, fatigue with their ask limits) are told in plain words and refuse it
unless an override reason is given, which is recorded and audit-logged; a full, draft or archived
opportunity or an inactive advocate is refused regardless; the advocate is emailed."""

import pytest

from portal.extensions import db
from portal.models import (
    Opportunity,
    OpportunityStatus,
    Participation,
    ParticipationStatus,
    Role,
    SelectionMode,
    Status,
    User,
)
from portal.services import participation
from portal.services.errors import Conflict
from tests.support import (
    audits,
    make_advocate,
    make_opp,
    participation_of,
    post_form,
    reload,
    run_threads,
    text_of,
    user,
)

MODES = [SelectionMode.FIRST_COME, SelectionMode.SELECTION]


def add(admin_client, oid, who, follow_redirects=True, **data):
    return post_form(
        admin_client,
        f"/admin/opportunities/{oid}/add",
        {"advocate": str(who), **data},
        page=f"/admin/opportunities/{oid}",
        follow_redirects=follow_redirects,
    )


@pytest.mark.parametrize("mode", MODES)
def test_an_admin_adds_an_advocate_by_email_in_either_mode(app, make_user, admin, admin_client, mailbox, mode):
    adv = make_advocate(make_user, "added@example.com", name="Addy Added")
    oid = make_opp(
        "speaking", title="Summit panel", capacity=2, mode=mode, external_url="https://events.example.com/panel"
    )
    page = text_of(admin_client.get(f"/admin/opportunities/{oid}"))
    assert "Add an advocate" in page and "Advocate's email address or id" in page

    resp = add(admin_client, oid, "ADDED@example.com", message="We need your story <b>here</b>")
    assert "Addy Added is in; they have been emailed." in text_of(resp)
    p = participation_of(adv, oid)
    assert p.status == ParticipationStatus.APPROVED and p.holds_seat and p.engaged_at and p.decided_by_id == admin.id
    assert p.override_reason is None and p.admin_message == "We need your story <b>here</b>"
    assert reload(Opportunity, oid).seats_taken == 1
    [event] = audits("participation.add")
    assert event.actor_id == admin.id and event.target_id == p.id
    assert event.details == {"opportunity_id": oid, "user_id": adv}
    assert audits("participation.override") == []
    mail = mailbox.last("added@example.com", subject="You're in: Summit panel")
    assert 'The program team has given you a place in "Summit panel" (Speaking).' in mail.text
    assert "We need your story" in mail.text and "<b>" not in mail.text  # no user-supplied tag in either part
    assert "&lt;b&gt;here&lt;/b&gt;" in mail.html and "<b>here</b>" not in mail.html
    assert "https://events.example.com/panel" in mail.text
    # it shows on the admin page, and the advocate can withdraw as from any place
    assert "Addy Added" in text_of(admin_client.get(f"/admin/opportunities/{oid}"))
    assert participation.withdraw(db.session, user(adv), p.id).status == ParticipationStatus.WITHDRAWN
    db.session.commit()
    assert reload(Opportunity, oid).seats_taken == 0


def test_an_advocate_can_be_picked_by_id(app, make_user, admin_client):
    adv = make_advocate(make_user, "byid@example.com", name="Ida Byid")
    oid = make_opp("speaking", title="By id", capacity=3)
    assert "Ida Byid is in" in text_of(add(admin_client, oid, f" {adv} "))
    assert participation_of(adv, oid).status == ParticipationStatus.APPROVED


@pytest.mark.parametrize("mode", MODES)
def test_a_limit_refuses_the_addition_until_an_override_reason_is_given(
    app, make_user, admin, admin_client, mailbox, mode
):
    adv = make_advocate(make_user, "lim@example.com", name="Lim", max_asks_per_month=1)
    busy = make_opp("speaking", title="Earlier ask", capacity=5)
    participation.request(db.session, user(adv), busy)
    db.session.commit()
    mailbox.clear()
    oid = make_opp("speaking", title="Launch video", capacity=2, mode=mode)

    for reason in ({}, {"override_reason": "   "}):
        resp = add(admin_client, oid, "lim@example.com", **reason)
        assert (
            "Not added: Lim asked for at most one ask a month and has one this month. "
            "To add Lim anyway, give an override reason."
        ) in text_of(resp)
        assert participation_of(adv, oid) is None and reload(Opportunity, oid).seats_taken == 0
    assert mailbox.to("lim@example.com") == [] and audits("participation.add") == []

    resp = add(admin_client, oid, "lim@example.com", override_reason="Only customer on the new product")
    assert "Lim is in; they have been emailed." in text_of(resp)
    p = participation_of(adv, oid)
    assert p.status == ParticipationStatus.APPROVED and p.override_reason == "Only customer on the new product"
    assert reload(Opportunity, oid).seats_taken == 1
    [event] = audits("participation.override")
    assert event.actor_id == admin.id and event.target_id == p.id
    assert event.details == {
        "reasons": ["Lim asked for at most one ask a month and has one this month."],
        "reason": "Only customer on the new product",
    }
    assert len(audits("participation.add")) == 1
    assert mailbox.last("lim@example.com", subject="You're in: Launch video")
    assert "override: Only customer on the new product" in text_of(admin_client.get(f"/admin/opportunities/{oid}"))


def test_the_program_limit_and_eligibility_are_overridable_too(app, make_user, admin_client):
    adv = make_advocate(make_user, "picky@example.com", name="Pia Picky", types=("review",), industry="Healthcare")
    oid = make_opp("speaking", title="Insurance panel", capacity=3, industries=("Insurance",))
    resp = text_of(add(admin_client, oid, "picky@example.com"))
    assert "Pia Picky has not opted in to speaking activities." in resp
    assert "Pia Picky's profile does not match the opportunity's targeting." in resp
    assert participation_of(adv, oid) is None
    add(admin_client, oid, "picky@example.com", override_reason="Asked for her by name")
    p = participation_of(adv, oid)
    assert p.status == ParticipationStatus.APPROVED and p.override_reason == "Asked for her by name"


def test_a_full_opportunity_is_refused_even_with_a_reason(app, make_user, admin_client, mailbox):
    first = make_advocate(make_user, "first@example.com")
    late = make_advocate(make_user, "late@example.com")
    oid = make_opp("speaking", title="One seat", capacity=1, mode=SelectionMode.FIRST_COME)
    participation.request(db.session, user(first), oid)
    db.session.commit()
    resp = add(admin_client, oid, "late@example.com", override_reason="VIP")
    assert "All seats are taken; raise the capacity or decline someone first." in text_of(resp)
    assert participation_of(late, oid) is None
    assert reload(Opportunity, oid).seats_taken == 1
    assert mailbox.to("late@example.com") == []


@pytest.mark.parametrize(
    "case,message",
    [
        ("unknown email", "No advocate has that email address or id."),
        ("unknown id", "No advocate has that email address or id."),
        ("huge id", "No advocate has that email address or id."),
        ("staff", "No advocate has that email address or id."),
        ("suspended", "This advocate's account is suspended: only active advocates can be added."),
        ("already requested", "Req Uested has already asked for a place: approve the request instead."),
        ("already approved", "App Roved is already approved here."),
        ("draft", "This opportunity is a draft: only open or closed opportunities take participants."),
        ("archived", "This opportunity is archived: only open or closed opportunities take participants."),
        ("empty", "Advocate's email address or id: This field is required."),
        (
            "too long reason",
            "Override reason (only to add beyond a limit or the targeting): "
            "Field cannot be longer than 500 characters.",
        ),
        ("too long message", "Message to the advocate: Field cannot be longer than 1000 characters."),
    ],
)
def test_refusals_are_messages_not_errors(app, make_user, admin_client, mailbox, case, message):
    oid = make_opp(
        "speaking",
        title="Talk",
        capacity=5,
        status={"draft": OpportunityStatus.DRAFT, "archived": OpportunityStatus.ARCHIVED}.get(
            case, OpportunityStatus.OPEN
        ),
    )
    adv = make_advocate(make_user, "target@example.com", name="Tar Get")
    who, data = "target@example.com", {}
    if case == "unknown email":
        who = "nobody@example.com"
    elif case == "unknown id":
        who = "999999"
    elif case == "huge id":
        who = "9" * 30
    elif case == "staff":
        who = make_user(Role.STAFF, email="staffer@example.com").email
    elif case == "suspended":
        db.session.query(User).filter_by(id=adv).update({"status": Status.SUSPENDED})
        db.session.commit()
    elif case == "already requested":
        uid = make_advocate(make_user, "req@example.com", name="Req Uested")
        db.session.add(Participation(opportunity_id=oid, user_id=uid, status=ParticipationStatus.REQUESTED))
        db.session.commit()
        who = "req@example.com"
    elif case == "already approved":
        uid = make_advocate(make_user, "app@example.com", name="App Roved")
        db.session.add(Participation(opportunity_id=oid, user_id=uid, status=ParticipationStatus.APPROVED))
        db.session.commit()
        who = "app@example.com"
    elif case == "empty":
        who = ""
    elif case == "too long reason":
        data = {"override_reason": "r" * 501}
    elif case == "too long message":
        data = {"message": "m" * 1001}
    before = db.session.query(Participation).count()
    resp = add(admin_client, oid, who, follow_redirects=False, **data)
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/admin/opportunities/{oid}")
    assert message in text_of(admin_client.get(f"/admin/opportunities/{oid}"))
    db.session.rollback()
    assert db.session.query(Participation).count() == before
    assert reload(Opportunity, oid).seats_taken == 0
    assert mailbox.to("target@example.com") == []
    assert audits("participation.add") == []


def test_a_declined_advocate_can_be_added_later(app, make_user, admin_client):
    adv = make_advocate(make_user, "again@example.com", name="Aga In")
    oid = make_opp("speaking", title="Second thoughts", capacity=2)
    participation.request(db.session, user(adv), oid)
    db.session.commit()
    p = participation_of(adv, oid)
    participation.decline(db.session, p.id, user(make_user(Role.ADMIN).id))
    db.session.commit()
    assert "Aga In is in" in text_of(add(admin_client, oid, "again@example.com"))
    again = participation_of(adv, oid)
    assert again.id == p.id and again.status == ParticipationStatus.APPROVED and again.holds_seat
    assert db.session.query(Participation).count() == 1


def test_a_closed_opportunity_still_takes_an_added_advocate(app, make_user, admin_client):
    adv = make_advocate(make_user, "closed@example.com")
    oid = make_opp("speaking", title="Closed but short", capacity=2, status=OpportunityStatus.CLOSED)
    add(admin_client, oid, "closed@example.com")
    assert participation_of(adv, oid).status == ParticipationStatus.APPROVED


def test_concurrent_additions_never_pass_capacity(app, make_user, admin):
    """The seat is taken with the same conditional UPDATE as a request (SQLite and PostgreSQL)."""
    from portal.database import begin_write

    oid = make_opp("speaking", title="Two seats", capacity=2)
    ids = [make_advocate(make_user, f"rush{i}@example.com") for i in range(6)]
    admin_id = admin.id

    def go(i):
        with app.app_context():
            begin_write(db.session)
            try:
                participation.add_by_admin(db.session, oid, ids[i], db.session.get(User, admin_id), "rush")
                db.session.commit()
                return "in"
            except Conflict as err:
                db.session.rollback()
                return err.message
            finally:
                db.session.remove()

    results = run_threads(6, go)
    assert results.count("in") == 2, results
    assert all(r == "All seats are taken; raise the capacity or decline someone first." for r in results if r != "in")
    assert reload(Opportunity, oid).seats_taken == 2
    db.session.rollback()
    assert db.session.query(Participation).filter_by(opportunity_id=oid, holds_seat=True).count() == 2


def test_staff_cannot_add(app, make_user, staff_client):
    make_advocate(make_user, "x@example.com")
    oid = make_opp("speaking", title="Admins only")
    resp = post_form(staff_client, f"/admin/opportunities/{oid}/add", {"advocate": "x@example.com"}, page="/staff/")
    assert resp.status_code == 403
    db.session.rollback()
    assert db.session.query(Participation).count() == 0


def test_unknown_opportunity_is_404(app, admin_client):
    resp = post_form(
        admin_client, "/admin/opportunities/999999/add", {"advocate": "a@example.com"}, page="/admin/opportunities"
    )
    assert resp.status_code == 404
