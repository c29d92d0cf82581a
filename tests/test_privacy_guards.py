"""Guards around the privacy routes: the password on change-email and delete-account counts toward the
account lock and is rate limited like change-password; an applicant waiting for approval may download their
data and delete their account (and nothing else); an email change that loses a race for the address is
refused cleanly; the profile pages write nothing on GET."""

import json
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from portal.extensions import db
from portal.models import AdvocateProfile, AuditEvent, OutboxMessage, Role, Status, User, utcnow
from portal.services import privacy
from portal.services.errors import DomainError
from portal.services.outbox import send_due
from tests.support import (
    BACKENDS,
    TEST_PASSWORD,
    audits,
    client_for,
    csrf_from,
    login,
    path_of,
    post_form,
    reload,
    text,
)

WRONG = "not-the-password-0"


def change_email(client, password, new_email="new.address@example.com"):
    return post_form(client, "/me/email", {"new_email": new_email, "password": password})


def delete(client, password):
    return post_form(client, "/me/delete", {"password": password, "confirm": "y"})


ROUTES = {"email": change_email, "delete": delete}


def assert_untouched(advocate):
    u = reload(User, advocate.id)
    assert u.status == Status.ACTIVE and u.email == advocate.email and u.name == advocate.name
    assert u.password_hash is not None


# --- password guessing on change-email and delete-account ----------------------------------------------------------


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_wrong_passwords_lock_the_account_and_a_locked_account_takes_no_password(app, advocate, mailbox, route):
    act = ROUTES[route]
    c = app.test_client()
    login(c, advocate.email)
    for i in range(9):
        resp = act(c, f"{WRONG}{i}")
        assert resp.status_code == 422 and "That password is not right." in text(resp)
    # Counted although the action was refused (and rolled back): committed by the view.
    assert reload(User, advocate.id).failed_login_count == 9
    assert reload(User, advocate.id).locked_until is None
    assert mailbox.to(advocate.email) == []
    assert act(c, f"{WRONG}9").status_code == 422
    locked = reload(User, advocate.id)
    assert locked.locked_until is not None and locked.failed_login_count == 0
    assert mailbox.last(advocate.email, subject="locked").subject == "Your account is locked for a while"
    db.session.rollback()
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "user.locked", AuditEvent.target_id == advocate.id)
        )
        == 1
    )
    # Locked: the right password is refused here with the same plain message as change-password ...
    resp = act(c, TEST_PASSWORD)
    assert resp.status_code == 422
    assert "Too many wrong passwords: your account is locked for a while." in text(resp)
    assert_untouched(advocate)
    assert mailbox.to("new.address@example.com") == []
    # ... and at sign-in; more tries while locked send no second lock mail.
    assert login(app.test_client(), advocate.email).status_code == 401
    assert act(c, f"{WRONG}x").status_code == 422
    assert len(mailbox.wait_for(advocate.email, subject="locked")) == 1
    assert_untouched(advocate)


def test_failures_on_every_password_form_share_one_count(app, advocate, mailbox):
    c = app.test_client()
    login(c, advocate.email)
    for i in range(4):
        assert change_email(c, f"{WRONG}{i}").status_code == 422
        assert delete(c, f"{WRONG}{i}").status_code == 422
    assert (
        post_form(
            c,
            "/account/password",
            {"current_password": WRONG, "password": "fresh-lemon-river-9", "confirm": "fresh-lemon-river-9"},
        ).status_code
        == 422
    )
    assert reload(User, advocate.id).failed_login_count == 9
    assert change_email(c, WRONG).status_code == 422
    assert reload(User, advocate.id).locked_until is not None
    assert delete(c, TEST_PASSWORD).status_code == 422
    assert_untouched(advocate)


def test_a_right_password_after_failures_works_and_resets_the_count(app, advocate, mailbox):
    c = app.test_client()
    login(c, advocate.email)
    assert change_email(c, WRONG).status_code == 422
    assert reload(User, advocate.id).failed_login_count == 1
    assert change_email(c, TEST_PASSWORD).status_code == 302
    assert reload(User, advocate.id).failed_login_count == 0
    assert mailbox.last("new.address@example.com", subject="Confirm your new email address")


@pytest.mark.parametrize(
    "path,body",
    [
        ("/me/email", {"new_email": "new.address@example.com", "password": WRONG}),
        ("/me/delete", {"password": WRONG, "confirm": "y"}),
    ],
)
def test_posts_are_rate_limited_like_change_password(limited, app, advocate, path, body):
    c = app.test_client()
    login(c, advocate.email)
    data = {"csrf_token": csrf_from(c.get(path).get_data(as_text=True)), **body}
    codes = [c.post(path, data=data).status_code for _ in range(10)]
    assert 429 not in codes and 500 not in codes
    blocked = c.post(path, data=data)
    assert blocked.status_code == 429 and "Too many attempts" in text(blocked)
    assert c.get(path).status_code == 200  # reading the page is not limited
    assert_untouched(advocate)


# --- an applicant waiting for approval: download and delete, nothing else ------------------------------------------


@pytest.fixture
def applicant(make_user):
    return make_user(Role.ADVOCATE, status=Status.PENDING, email="paula.pending@example.com", name="Paula Pending")


@pytest.fixture
def applicant_client(app, applicant):
    c = app.test_client()
    assert login(c, applicant.email).headers["Location"].endswith("/account/status")
    return c


def test_the_status_page_links_download_and_delete_for_an_applicant(applicant_client):
    page = text(applicant_client.get("/account/status"))
    assert 'href="/me/data.json"' in page and 'href="/me/delete"' in page


def test_an_applicant_downloads_their_data(applicant_client, applicant):
    resp = applicant_client.get("/me/data.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert "attachment" in resp.headers["Content-Disposition"]
    data = json.loads(resp.get_data(as_text=True))
    assert data["account"]["email"] == applicant.email and data["account"]["status"] == "pending_approval"
    assert data["profile"]["story"] in ("", None)
    db.session.rollback()
    assert db.session.get(AdvocateProfile, applicant.id) is None  # the download wrote nothing


def test_an_applicant_deletes_their_account(app, applicant_client, applicant, admin_client, mailbox):
    page = applicant_client.get("/me/delete")
    assert page.status_code == 200 and 'href="/account/status"' in text(page)  # Cancel goes back to their page
    assert delete(applicant_client, WRONG).status_code == 422
    assert reload(User, applicant.id).failed_login_count == 1
    resp = delete(applicant_client, TEST_PASSWORD)
    assert resp.status_code == 302
    u = reload(User, applicant.id)
    assert u.status == Status.DELETED and u.email == f"deleted-{applicant.id}@deleted.invalid"
    assert u.name == "Deleted advocate" and u.password_hash is None
    assert db.session.get(AdvocateProfile, applicant.id) is None
    assert mailbox.last(applicant.email, subject="Your advocate account is deleted")
    assert applicant_client.get("/account/status").status_code == 302  # signed out
    assert "Paula" not in text(admin_client.get("/admin/pending"))  # gone from the admins' queue


def test_an_applicants_deletion_erases_what_the_admins_were_told_about_them(app, make_user, admin, mailbox):
    """The 'new advocate waiting' email to admins names the applicant: it goes with their erasure,
    sent (blanked) or not yet sent (dropped); the admins' other mail is untouched."""
    from portal.services import accounts
    from portal.services.outbox import queue_email

    other = make_user(Role.ADMIN, email="second.admin@example.com", name="Second Admin")
    paula = make_user(
        Role.ADVOCATE,
        status=Status.PENDING,
        email="paula.told@example.com",
        name="Paula Told",
        company="Initech Health",
        job_title="Chief Nursing Officer",
    )
    user = db.session.get(User, paula.id)
    accounts._notify_admins_of_pending(db.session, user)
    db.session.commit()
    sent_to = {
        m.recipient for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.about_user_id == paula.id))
    }
    assert sent_to == {admin.email, other.email}
    db.session.execute(
        OutboxMessage.__table__.update().where(OutboxMessage.recipient == admin.email).values(status="sent")
    )  # one delivered, one still queued
    queue_email(
        db.session,
        to=admin.email,
        subject="Unrelated",
        template="admin_pending",
        user_id=admin.id,
        name="Alex",
        applicant=db.session.get(User, other.id),
        review_url="http://localhost/",
    )
    db.session.commit()

    c = app.test_client()
    login(c, paula.email)
    assert delete(c, TEST_PASSWORD).status_code == 302
    db.session.rollback()
    about = db.session.scalars(select(OutboxMessage).where(OutboxMessage.about_user_id == paula.id)).all()
    assert [(m.recipient, m.subject, m.body_text, m.body_html) for m in about] == [(admin.email, "(erased)", "", "")]
    everything = " ".join(m.body_text + m.body_html + m.subject for m in db.session.scalars(select(OutboxMessage)))
    assert "Paula" not in everything and "Initech" not in everything and "Chief Nursing" not in everything
    assert (
        db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.subject == "Unrelated"))
        == 1
    )


def test_everything_else_still_waits_for_approval(applicant_client):
    for path in (
        "/dashboard",
        "/me/profile",
        "/me/preferences",
        "/me/availability",
        "/me/privacy",
        "/me/email",
        "/me/profile/preview",
        "/account/password",
        "/opportunities",
    ):
        resp = applicant_client.get(path)
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/account/status"), path


def test_an_unverified_account_still_waits(app, make_user):
    user = make_user(status=Status.UNVERIFIED, email="una.unverified@example.com")
    c = app.test_client()
    login(c, user.email)
    page = text(c.get("/account/status"))
    assert "/me/data.json" not in page and "/me/delete" not in page
    for path in ("/me/data.json", "/me/delete"):
        resp = c.get(path)
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/account/status"), path


def test_pending_staff_are_not_let_in(app, make_user):
    user = make_user(Role.STAFF, status=Status.PENDING, email="pat.pendingstaff@example.com")
    c = app.test_client()
    login(c, user.email)
    assert c.get("/me/data.json").status_code == 403


# --- an email change that loses the race for the address -------------------------------------------------------


def _issue_link(advocate_client, mailbox, new_email="wanted@example.com"):
    assert change_email(advocate_client, TEST_PASSWORD, new_email).status_code == 302
    return path_of(mailbox.last(new_email, subject="Confirm your new email").link("/me/email/confirm/"))


def _assert_refused_cleanly(app, resp, advocate, advocate_client, mailbox):
    assert resp.status_code == 400 and "Another account already uses that address." in text(resp)
    u = reload(User, advocate.id)
    assert u.email == advocate.email and u.session_token == advocate.session_token
    assert advocate_client.get("/dashboard").status_code == 200  # the session still stands
    assert login(app.test_client(), advocate.email).status_code == 302
    assert (
        db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "user.email_change"))
        == 0
    )
    assert (
        db.session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.template == "email_changed")
        )
        == 0
    )
    assert [m for m in mailbox.to(advocate.email) if "was changed" in m.subject] == []


def test_a_taken_address_the_check_misses_is_refused_by_the_constraint(
    app, advocate_client, advocate, mailbox, make_user, monkeypatch
):
    """The other account is created after the link was sent; the check before the write does not see it
    (as when the other sign-up commits between the check and the write): the unique constraint refuses it."""
    link = _issue_link(advocate_client, mailbox)
    make_user(email="wanted@example.com", name="Quick Registrant")
    monkeypatch.setattr(privacy, "get_by_email", lambda session, email: None)
    resp = post_form(app.test_client(), link, {})
    _assert_refused_cleanly(app, resp, advocate, advocate_client, mailbox)
    assert reload(User, advocate.id).email == advocate.email


# SQLite takes the write lock when the POST begins (BEGIN IMMEDIATE), so no other writer can commit between
# the check and the write there; the test above covers the constraint path on both backends.
@pytest.mark.parametrize("backend", [b for b in BACKENDS if b == "postgresql"])
def test_an_address_taken_between_the_check_and_the_write_is_refused(
    app, advocate_client, advocate, mailbox, make_user, monkeypatch, backend
):
    """PostgreSQL: another connection commits the address right after the check, as a concurrent sign-up
    would."""
    link = _issue_link(advocate_client, mailbox)
    real = privacy.get_by_email

    def check_then_lose_the_race(session, email):
        found = real(session, email)
        assert found is None
        with Session(db.engine) as other:  # its own connection and transaction, committed at once
            other.add(
                User(email="wanted@example.com", name="Quick Registrant", role=Role.ADVOCATE, status=Status.ACTIVE)
            )
            other.commit()
        return found

    monkeypatch.setattr(privacy, "get_by_email", check_then_lose_the_race)
    resp = post_form(app.test_client(), link, {})
    _assert_refused_cleanly(app, resp, advocate, advocate_client, mailbox)
    db.session.rollback()
    assert db.session.scalar(select(User.name).where(User.email == "wanted@example.com")) == "Quick Registrant"


# --- GET pages write nothing ----------------------------------------------------------------------------------------


def test_profile_pages_create_no_profile_and_write_nothing_on_get(app, advocate_client, advocate):
    db.session.rollback()
    assert db.session.get(AdvocateProfile, advocate.id) is None  # an account without its profile row
    db.session.rollback()
    writes = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        for path in ("/me/profile", "/me/preferences", "/me/availability"):
            resp = advocate_client.get(path)
            assert resp.status_code == 200, path
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert writes == []
    db.session.rollback()
    assert (
        db.session.scalar(
            select(func.count()).select_from(AdvocateProfile).where(AdvocateProfile.user_id == advocate.id)
        )
        == 0
    )


def test_refused_posts_render_without_creating_a_profile(app, advocate_client, advocate):
    resp = post_form(advocate_client, "/me/availability", {"max_asks_per_month": "-3"})
    assert resp.status_code == 422
    resp = post_form(
        advocate_client, "/me/availability/blackouts", {"starts_on": "", "ends_on": ""}, page="/me/availability"
    )
    assert resp.status_code == 422
    db.session.rollback()
    assert db.session.get(AdvocateProfile, advocate.id) is None


# --- an account without a password (single sign-on only) confirms its deletion from an emailed link ---------------


def _without_password(user_id: int) -> None:
    db.session.execute(User.__table__.update().where(User.id == user_id).values(password_hash=None))
    db.session.commit()


def test_an_account_without_a_password_deletes_itself_from_an_emailed_link(app, make_user, mailbox):
    ned = make_user(email="ned.sso@example.com", name="Ned Single")
    other = make_user(email="olga.sso@example.com", name="Olga Other")
    ned_client, olga_client = client_for(app, ned.id), client_for(app, other.id)
    _without_password(ned.id)
    _without_password(other.id)
    page = ned_client.get("/me/delete").get_data(as_text=True)
    assert "Email me the confirmation link" in page and 'name="password"' not in page
    assert post_form(ned_client, "/me/delete", {"password": "", "confirm": "y"}).status_code == 422  # no way in
    resp = post_form(ned_client, "/me/delete/link", page="/me/delete")
    assert resp.status_code == 302 and "emailed you a link" in text(ned_client.get("/me/delete"))
    send_due()
    link = path_of(mailbox.last("ned.sso@example.com", subject="Confirm deleting").link("/me/delete/confirm/"))
    assert audits("user.delete_link", ned.id)

    # Nobody else can use it, a changed link is not valid, and the box must be ticked.
    assert olga_client.get(link).status_code == 200  # the page asks; the POST decides
    refused = post_form(olga_client, link, {"confirm": "y"}, page=link)
    assert refused.status_code == 400 and "not for the account you are signed in to" in text(refused)
    assert reload(User, other.id).status == Status.ACTIVE
    assert post_form(ned_client, link + "x", {"confirm": "y"}, page=link).status_code == 400
    assert post_form(ned_client, link, {}, page=link).status_code == 422
    assert reload(User, ned.id).status == Status.ACTIVE

    # The owner confirms: deleted, signed out, the goodbye email sent; the link is used up.
    done = post_form(ned_client, link, {"confirm": "y"}, page=link)
    assert done.status_code == 302
    gone = reload(User, ned.id)
    assert gone.status == Status.DELETED and gone.email.endswith("@deleted.invalid")
    send_due()
    assert mailbox.last("ned.sso@example.com", subject="Your advocate account is deleted")
    assert ned_client.get("/me/delete").status_code in (302, 401)


def test_the_deletion_link_is_for_accounts_without_a_password_and_expires(app, make_user, mailbox):
    pat = make_user(email="pat.password@example.com", name="Pat Password")
    pat_client = client_for(app, pat.id)
    resp = post_form(pat_client, "/me/delete/link", page="/me/delete")
    assert resp.status_code == 302 and "Confirm the deletion with your password" in text(pat_client.get("/me/delete"))
    send_due()
    assert mailbox.to("pat.password@example.com") == []
    _without_password(pat.id)
    post_form(pat_client, "/me/delete/link", page="/me/delete")
    send_due()
    link = path_of(mailbox.last("pat.password@example.com", subject="Confirm deleting").link("/me/delete/confirm/"))
    with time_machine.travel(utcnow() + timedelta(seconds=app.config["RESET_TOKEN_MAX_AGE"] + 60)):
        late = post_form(pat_client, link, {"confirm": "y"}, page=link)
    assert late.status_code == 400 and "expired" in text(late)
    assert reload(User, pat.id).status == Status.ACTIVE


def test_an_account_without_a_password_changes_its_email_after_its_current_address_confirms(app, make_user, mailbox):
    ned = make_user(email="ned.sso@example.com", name="Ned Single")
    other = make_user(email="olga.sso@example.com", name="Olga Other")
    ned_client, olga_client = client_for(app, ned.id), client_for(app, other.id)
    _without_password(ned.id)
    _without_password(other.id)
    page = ned_client.get("/me/email").get_data(as_text=True)
    assert 'name="password"' not in page and "we first email your current address" in page
    resp = post_form(ned_client, "/me/email", {"new_email": "ned.new@example.com"})
    assert resp.status_code == 302
    send_due()
    assert mailbox.to("ned.new@example.com") == []  # nothing to the new address before the current one confirms
    link = path_of(mailbox.last("ned.sso@example.com", subject="Confirm changing").link("/me/email/owner/"))
    assert audits("user.email_change_link", ned.id)

    # Someone else, a changed link: refused; nothing is sent to the new address.
    assert olga_client.get(link).status_code == 200
    refused = post_form(olga_client, link, page=link)
    assert refused.status_code == 400 and "not for the account you are signed in to" in text(refused)
    assert post_form(ned_client, link + "x", page=link).status_code == 400
    send_due()
    assert mailbox.to("ned.new@example.com") == []

    # The owner confirms: the new address gets its link, and the usual confirmation changes the email.
    done = post_form(ned_client, link, page=link)
    assert done.status_code == 302 and "sent a confirmation link to ned.new@example.com" in text(
        ned_client.get("/me/privacy")
    )
    send_due()
    confirm = path_of(mailbox.last("ned.new@example.com", subject="Confirm your new email").link("/me/email/confirm/"))
    assert post_form(ned_client, confirm, page=confirm).status_code == 302
    assert reload(User, ned.id).email == "ned.new@example.com"


def test_an_account_with_a_password_cannot_use_the_link_and_the_same_address_is_refused(app, make_user, mailbox):
    pat = make_user(email="pat.password@example.com", name="Pat Password")
    pat_client = client_for(app, pat.id)
    with pytest.raises(DomainError, match="with your password"):
        privacy.request_email_change_by_link(db.session, reload(User, pat.id), "pat.new@example.com")
    db.session.rollback()
    _without_password(pat.id)
    same = post_form(pat_client, "/me/email", {"new_email": "Pat.Password@example.com"})
    assert same.status_code == 422 and "That is already your email address." in text(same)
    send_due()
    assert mailbox.to("pat.password@example.com") == []
