"""Registration (from the landing page's invitation), the password policy and its shipped list of common
passwords, email verification, approval states and the status page; the advocate profile exists from activation on."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, Consent, OutboxMessage, Role, Status, User, utcnow
from tests.support import (
    GOOD_PW,
    FreshContextClient,
    confirm,
    csrf_from,
    empty_tables,
    form_data,
    has_profile,
    login,
    path_of,
    post_form,
    register,
    reload,
    user_by_email,
    verify_path,
    without_values,
)


def count(model):
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


# --- registering ------------------------------------------------------------------------------------------


def test_landing_page(client):
    resp = client.get("/")
    assert resp.status_code == 200
    assert b"Join the program" in resp.data


def test_register_creates_unverified_advocate_with_consent(app, client, mailbox):
    before = utcnow()
    resp = register(client)
    assert resp.status_code == 302
    assert urlsplit(resp.headers["Location"]).path == "/auth/check-email"
    user = user_by_email("bea@example.com")
    assert user is not None
    assert user.role == Role.ADVOCATE
    assert user.status == Status.UNVERIFIED
    assert user.email_verified_at is None and user.approved_at is None
    assert user.name == "Bea Bold" and user.company == "Globex" and user.job_title == "CTO"
    assert user.password_hash and GOOD_PW not in user.password_hash
    assert user.password_hash.startswith("$argon2id$")
    consents = db.session.scalars(select(Consent).where(Consent.user_id == user.id)).all()
    assert len(consents) == 1
    consent = consents[0]
    assert consent.kind == "program_terms"
    assert consent.version == app.config["TERMS_VERSION"]
    assert consent.given_at is not None and consent.given_at >= before - timedelta(seconds=5)
    assert consent.ip_address == "127.0.0.1"

    page = client.get(resp.headers["Location"])
    assert page.status_code == 200
    assert "we have sent it an email" in page.get_data(as_text=True)


def test_register_uses_configured_terms_version(app_config, mailbox):
    app_config["TERMS_VERSION"] = "2099-07"
    from portal import create_app

    application = create_app(app_config)
    application.test_client_class = FreshContextClient
    with application.app_context():
        try:
            c = application.test_client()
            assert register(c).status_code == 302
            user = user_by_email("bea@example.com")
            consent = db.session.scalars(select(Consent).where(Consent.user_id == user.id)).one()
            assert consent.version == "2099-07"
        finally:
            db.session.remove()
            empty_tables(db.engine)
            db.engine.dispose()


def test_verification_email_arrives_through_smtp(client, mailbox):
    register(client, name="Bea Bold")
    mail = mailbox.last("bea@example.com", subject="Confirm your email address")
    assert mail.to == "bea@example.com"
    assert "Hello Bea Bold" in mail.text
    link = mail.link("/auth/verify/")
    assert link.startswith("http://localhost/auth/verify/")
    # the HTML part carries the same link
    assert link.replace("&", "&amp;") in mail.html or link in mail.html
    assert len(mailbox.to("bea@example.com")) == 1


def test_email_is_normalised(client, mailbox):
    assert register(client, email="Bea.Bold@Example.COM").status_code == 302
    assert user_by_email("bea.bold@example.com") is not None
    mailbox.last("bea.bold@example.com", subject="Confirm")


def test_verify_link_get_shows_button_and_changes_nothing(client, mailbox):
    register(client)
    path = verify_path(mailbox, "bea@example.com")
    for _ in range(3):  # link scanners may open it any number of times
        page = client.get(path)
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "Confirm my email" in html and 'method="post"' in html
        assert 'name="csrf_token"' in html
    assert user_by_email("bea@example.com").status == Status.UNVERIFIED


def test_verify_post_without_csrf_refused(client, mailbox):
    register(client)
    path = verify_path(mailbox, "bea@example.com")
    resp = client.post(path, data={})
    assert resp.status_code == 400
    assert user_by_email("bea@example.com").status == Status.UNVERIFIED


def test_verify_moves_to_pending_and_notifies_admins(client, mailbox, admin):
    register(client, name="Bea <b>Bold</b>")
    resp = confirm(client, verify_path(mailbox, "bea@example.com"))
    assert resp.status_code == 302
    assert urlsplit(resp.headers["Location"]).path == "/auth/login"  # not signed in: go sign in
    user = user_by_email("bea@example.com")
    assert user.status == Status.PENDING
    assert user.email_verified_at is not None and user.approved_at is None
    page = client.get("/auth/login").get_data(as_text=True)
    assert "will review your application" in page
    note = mailbox.last(admin.email, subject="waiting for approval")
    assert "Bea &lt;b&gt;Bold&lt;/b&gt;" in note.html and "<b>Bold</b>" not in note.html
    assert "<b>" not in note.text and "Bea" in note.text
    assert "/admin/pending" in note.text
    # no "approved" mail yet
    assert mailbox.to("bea@example.com")[-1].subject.startswith("Confirm")


def test_verify_while_signed_in_goes_to_status(client, mailbox):
    register(client)
    assert login(client, "bea@example.com", GOOD_PW).status_code == 302
    resp = confirm(client, verify_path(mailbox, "bea@example.com"))
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/account/status"
    page = client.get("/account/status").get_data(as_text=True)
    assert "Thanks for confirming your email" in page


def test_verify_with_auto_approve_activates(auto_approve, client, mailbox):
    register(client)
    resp = confirm(client, verify_path(mailbox, "bea@example.com"))
    assert resp.status_code == 302
    user = user_by_email("bea@example.com")
    assert user.status == Status.ACTIVE and user.approved_at is not None
    assert mailbox.last("bea@example.com", subject="approved")
    assert "account is ready" in client.get("/auth/login").get_data(as_text=True)
    signed = login(client, "bea@example.com", GOOD_PW)
    assert urlsplit(signed.headers["Location"]).path == "/dashboard"
    assert client.get("/dashboard").status_code == 200


def test_verification_with_auto_approve_creates_the_profile(auto_approve, client, mailbox):
    """The advocate profile exists from activation on (no page creates it on a GET)."""
    register(client)
    assert not has_profile(user_by_email("bea@example.com").id)  # not while unverified
    assert confirm(client, verify_path(mailbox, "bea@example.com")).status_code == 302
    user = user_by_email("bea@example.com")
    assert user.status == Status.ACTIVE and has_profile(user.id)


def test_verify_link_expires_after_48_hours(client, mailbox):
    register(client)
    path = verify_path(mailbox, "bea@example.com")
    with time_machine.travel(utcnow() + timedelta(hours=48, minutes=1)):
        resp = confirm(client, path)
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert "This link cannot be used" in html and "expired" in html
    assert user_by_email("bea@example.com").status == Status.UNVERIFIED


def test_verify_link_still_good_before_48_hours(client, mailbox):
    register(client)
    path = verify_path(mailbox, "bea@example.com")
    with time_machine.travel(utcnow() + timedelta(hours=47)):
        assert confirm(client, path).status_code == 302
    assert user_by_email("bea@example.com").status == Status.PENDING


def test_verify_link_single_use(client, mailbox):
    register(client)
    path = verify_path(mailbox, "bea@example.com")
    assert confirm(client, path).status_code == 302
    again = confirm(client, path)
    assert again.status_code == 400
    assert "already been used" in again.get_data(as_text=True)
    assert user_by_email("bea@example.com").status == Status.PENDING


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: "x" + t[1:] if t[0] != "x" else "y" + t[1:],  # payload changed
        lambda t: t.split(".")[0],  # signature dropped
        lambda t: "not-a-token",
        lambda t: "A" * 3000,  # absurdly long
    ],
)
def test_tampered_verify_token_refused(client, mailbox, mangle):
    register(client)
    path = verify_path(mailbox, "bea@example.com")
    token = path.rsplit("/", 1)[1]
    resp = confirm(client, "/auth/verify/" + mangle(token))
    assert resp.status_code == 400
    assert "This link cannot be used" in resp.get_data(as_text=True)
    assert user_by_email("bea@example.com").status == Status.UNVERIFIED


def test_reset_token_is_not_a_verify_token(client, mailbox):
    register(client)
    post_form(client, "/auth/forgot-password", {"email": "bea@example.com"})
    reset = path_of(mailbox.last("bea@example.com", subject="Reset").link("/auth/reset-password/"))
    token = reset.rsplit("/", 1)[1]
    resp = confirm(client, "/auth/verify/" + token)
    assert resp.status_code == 400
    assert user_by_email("bea@example.com").status == Status.UNVERIFIED


def test_verify_link_for_suspended_account_refused(client, mailbox, runner):
    register(client)
    path = verify_path(mailbox, "bea@example.com")
    assert runner.invoke(args=["users", "suspend", "bea@example.com", "--reason", "spam"]).exit_code == 0
    assert confirm(client, path).status_code == 400
    assert user_by_email("bea@example.com").status == Status.SUSPENDED


# --- existing email: same answer, owner told, nothing created ---------------------------------------------


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.PENDING, Status.UNVERIFIED, Status.SUSPENDED])
def test_existing_email_same_answer_and_owner_notified(app, make_user, mailbox, status):
    owner = make_user(email="owner@example.com", name="Olive Owner", status=status)
    users_before, consents_before = count(User), count(Consent)

    new_client, old_client = app.test_client(), app.test_client()
    fresh = register(new_client, email="newcomer@example.com")
    taken = register(old_client, email="Owner@Example.com", name="Mallory")

    assert fresh.status_code == taken.status_code == 302
    assert fresh.headers["Location"] == taken.headers["Location"]
    fresh_page = new_client.get(fresh.headers["Location"])
    taken_page = old_client.get(taken.headers["Location"])
    assert fresh_page.status_code == taken_page.status_code == 200
    assert without_values(fresh_page.get_data(as_text=True)) == without_values(taken_page.get_data(as_text=True))

    assert count(User) == users_before + 1  # only the newcomer
    assert count(Consent) == consents_before + 1
    owner_now = reload(User, owner.id)
    assert owner_now.name == "Olive Owner" and owner_now.status == status
    assert owner_now.password_hash == owner.password_hash

    mails = mailbox.wait_for("owner@example.com")
    assert len(mails) == 1
    notice = mails[0]
    assert "tried to register" in notice.subject
    assert "Hello Olive Owner" in notice.text
    assert "already have an account" in notice.text
    assert "/auth/verify/" not in notice.text and "/auth/verify/" not in notice.html
    assert "/auth/forgot-password" in notice.text
    assert mailbox.last("newcomer@example.com", subject="Confirm")


def test_existing_email_takes_as_long_as_a_new_one(real_hash_cost, app, make_user):
    """Timing must not tell whether an address has an account (the existing-email path skipped the
    password hash and answered much sooner)."""
    import statistics
    import time

    make_user(email="owner@example.com")

    def timed_post(email):
        c = app.test_client()
        token = csrf_from(c.get("/auth/register").get_data(as_text=True))
        start = time.perf_counter()
        resp = c.post("/auth/register", data={**form_data(email=email), "csrf_token": token})
        elapsed = time.perf_counter() - start
        assert resp.status_code == 302
        return elapsed

    new, taken = [], []
    for i in range(5):
        new.append(timed_post(f"new{i}@example.com"))
        taken.append(timed_post("owner@example.com"))
    assert statistics.median(taken) > 0.5 * statistics.median(new), (new, taken)


def test_existing_email_with_weak_password_same_answer(app, advocate):
    a, b = app.test_client(), app.test_client()
    fresh = register(a, email="x1@example.com", password="short")
    taken = register(b, email=advocate.email, password="short")
    assert fresh.status_code == taken.status_code == 422
    assert "at least 10 characters" in fresh.get_data(as_text=True)
    assert "at least 10 characters" in taken.get_data(as_text=True)


# --- validation: messages, never 500 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "password,message",
    [
        ("Short-1", "at least 10 characters"),
        ("a" * 129, "128"),
        ("password123", "too common"),
        ("qwertyuiop", "too common"),
        ("Password123", "too common"),
        ("beatrix-likes-otters", "must not contain your email name"),
        ("xx-BEATRIX-otters-9", "must not contain your email name"),
    ],
)
def test_password_policy_on_register(client, mailbox, password, message):
    resp = register(client, email="beatrix@example.com", password=password)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert message in html
    assert 'aria-invalid="true"' in html
    assert user_by_email("beatrix@example.com") is None
    assert mailbox.to("beatrix@example.com") == []


def test_common_password_list_is_shipped_and_large_enough():
    from portal.services.passwords import COMMON_PASSWORDS_FILE, common_passwords

    assert COMMON_PASSWORDS_FILE.exists()
    assert (COMMON_PASSWORDS_FILE.parent / "COMMON-PASSWORDS-LICENSE.txt").exists()
    words = common_passwords()
    assert len(words) >= 1000
    assert {"password", "123456", "qwerty", "letmein", "iloveyou"} <= words


@pytest.mark.parametrize("password", ["password123", "qwertyuiop", "1234567890", "Password1234", "iloveyou12"])
def test_known_common_passwords_are_refused(app, password):
    from portal.services.errors import PasswordRejected
    from portal.services.passwords import check_password_policy, common_passwords

    if password.lower() not in common_passwords():
        pytest.fail(f"{password!r} is expected on the shipped list")
    with pytest.raises(PasswordRejected, match="too common"):
        check_password_policy(password, "someone@example.com")


def test_password_exactly_at_limits_accepted(client):
    assert register(client, email="ten@example.com", password="gq7-zx!wp2").status_code == 302
    assert (
        register(client.application.test_client(), email="long@example.com", password="Zq9-" + "k" * 124).status_code
        == 302
    )
    assert user_by_email("ten@example.com") is not None and user_by_email("long@example.com") is not None


def test_spaces_in_a_password_are_part_of_it(app, client):
    """Any characters, spaces included: leading and trailing ones are kept, not stripped or refused."""
    from portal.services.passwords import verify_password

    spaced = "  quiet harbour lanterns  "
    assert register(client, email="spaces@example.com", password=spaced).status_code == 302
    stored = user_by_email("spaces@example.com").password_hash
    assert verify_password(stored, spaced) and not verify_password(stored, spaced.strip())
    only_spaces = register(app.test_client(), email="blank@example.com", password=" " * 12)
    assert only_spaces.status_code == 422 and "A password cannot be only spaces." in only_spaces.get_data(as_text=True)
    assert user_by_email("blank@example.com") is None


def test_passwords_must_match(client):
    resp = post_form(client, "/auth/register", form_data(confirm="something-else-entirely"))
    assert resp.status_code == 422
    assert "The passwords do not match." in resp.get_data(as_text=True)
    assert user_by_email("bea@example.com") is None


def test_terms_consent_required(client, mailbox):
    resp = post_form(client, "/auth/register", form_data(accept_terms=None))
    assert resp.status_code == 422
    assert "Please accept the program terms to join." in resp.get_data(as_text=True)
    assert user_by_email("bea@example.com") is None
    assert count(Consent) == 0
    assert mailbox.to("bea@example.com") == []


def test_terms_required_and_bad_input_never_500(client):
    resp = post_form(
        client,
        "/auth/register",
        {
            "name": "A",
            "email": "not-an-email",
            "company": "x" * 500,
            "job_title": "",
            "password": GOOD_PW,
            "confirm": "different1234",
        },
    )
    assert resp.status_code == 422
    for msg in (b"Invalid email", b"Please accept the program terms", b"do not match", b"160 characters"):
        assert msg in resp.data


@pytest.mark.parametrize(
    "field,value",
    [
        ("name", "N" * 121),
        ("company", "C" * 161),
        ("job_title", "J" * 161),
        ("email", "a" * 250 + "@example.com"),
        ("name", "N" * 200_000),
        ("password", "p" * 100_000),
    ],
)
def test_oversized_fields_are_422_with_message(client, field, value):
    data = form_data()
    data[field] = value
    if field == "password":
        data["confirm"] = value
    resp = post_form(client, "/auth/register", data)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "Please correct the highlighted fields." in html
    assert 'class="error"' in html
    assert user_by_email("bea@example.com") is None


@pytest.mark.parametrize(
    "field,value",
    [
        ("email", "not-an-email"),
        ("email", ""),
        ("email", "ada+\U0001f600@example.com"),  # needs SMTPUTF8, which the mailer cannot send: never deliverable
        ("email", "ada@b\u00fccher.example"),  # an internationalised domain, stored as typed: refused too
        ("name", "   "),
        ("company", ""),
    ],
)
def test_invalid_fields_are_422(client, field, value):
    data = form_data()
    data[field] = value
    resp = post_form(client, "/auth/register", data)
    assert resp.status_code == 422
    assert 'class="error"' in resp.get_data(as_text=True)
    assert count(User) == 0


def test_whole_body_over_limit_is_413_not_500(client):
    token = csrf_from(client.get("/auth/register").get_data(as_text=True))
    resp = client.post("/auth/register", data={**form_data(), "csrf_token": token, "name": "N" * (3 * 1024 * 1024)})
    assert resp.status_code == 413
    assert "too large" in resp.get_data(as_text=True)


@pytest.mark.parametrize("field", ["name", "company", "job_title", "email"])
def test_nul_and_control_characters_never_500(client, field):
    """PostgreSQL refuses NUL in text: it must never reach the database (it was a 500 there)."""
    data = form_data()
    data[field] = "Bea\x00Bold\x01\x7f" if field != "email" else "bea\x00@example.com"
    resp = post_form(client, "/auth/register", data)
    assert resp.status_code in (302, 422)
    db.session.rollback()
    for user in db.session.scalars(select(User)):
        for value in (user.email, user.name, user.company, user.job_title):
            assert not re.search(r"[\x00\x01\x7f]", value or "")


def test_name_of_only_control_characters_refused(client):
    resp = post_form(client, "/auth/register", form_data(name="\x00\x01\x7f"))
    assert resp.status_code == 422
    assert 'class="error"' in resp.get_data(as_text=True)
    assert count(User) == 0


def test_missing_csrf_refused(client):
    resp = client.post("/auth/register", data=form_data())
    assert resp.status_code == 400
    assert count(User) == 0


def test_html_in_name_escaped_in_pages_and_both_email_parts(client, mailbox, admin_client):
    evil = '<script>alert("x")</script><b>Bea</b>'
    assert register(client, name=evil).status_code == 302
    user = user_by_email("bea@example.com")
    assert user.name == evil  # stored as typed, escaped on output

    mail = mailbox.last("bea@example.com", subject="Confirm")
    for body in (mail.text, mail.html):
        assert "<script>" not in body and "<b>" not in body
    assert "&lt;script&gt;" in mail.html
    confirm(client, path_of(mail.link("/auth/verify/")))

    pending = admin_client.get("/admin/pending").get_data(as_text=True)
    assert "<script>alert" not in pending and "&lt;script&gt;" in pending
    assert "&lt;b&gt;Bea&lt;/b&gt;" in pending

    post_form(admin_client, "/admin/pending/approve", {"user_id": user.id}, page="/admin/pending")
    assert reload(User, user.id).status == Status.ACTIVE
    approved = mailbox.last("bea@example.com", subject="approved")
    assert "<script>" not in approved.text and "<script>" not in approved.html
    c = client.application.test_client()
    login(c, "bea@example.com", GOOD_PW)
    dash = c.get("/dashboard").get_data(as_text=True)
    assert "<script>alert" not in dash and "&lt;script&gt;" in dash


def test_quotes_and_ampersands_read_as_typed_in_text_mail(client, mailbox):
    register(client, name="Seán O'Brien & Co")
    mail = mailbox.last("bea@example.com", subject="Confirm")
    assert "Hello Seán O'Brien & Co" in mail.text


@pytest.mark.parametrize("name", ["Zoë 🚀 Ünïcødé", "مريم الحسن", "שרה כהן‎", "李小龙 👩🏽‍💻"])
def test_unicode_names_kept(client, mailbox, name):
    assert register(client, name=name).status_code == 302
    user = user_by_email("bea@example.com")
    assert user.name == name
    mail = mailbox.last("bea@example.com", subject="Confirm")
    assert f"Hello {name}" in mail.text
    assert name in mail.html


def test_signed_in_user_is_sent_away_from_register(advocate_client):
    resp = advocate_client.get("/auth/register")
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/dashboard"


def test_register_page_has_labelled_fields(client):
    html = client.get("/auth/register").get_data(as_text=True)
    for field in ("name", "email", "company", "job_title", "password", "confirm", "accept_terms"):
        assert f'for="{field}"' in html and f'id="{field}"' in html


# --- status page: unverified and pending -------------------------------------------------------------------


def test_unverified_login_goes_to_status_with_resend(client, mailbox):
    register(client)
    resp = login(client, "bea@example.com", GOOD_PW)
    assert resp.status_code == 302
    assert urlsplit(resp.headers["Location"]).path == "/account/status"
    page = client.get("/account/status").get_data(as_text=True)
    assert "We sent a confirmation link to" in page
    assert "Send me a new link" in page and "/auth/resend-verification" in page


def test_resend_sends_a_new_working_link(client, mailbox):
    register(client)
    login(client, "bea@example.com", GOOD_PW)
    resp = post_form(client, "/auth/resend-verification", {}, page="/account/status")
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/account/status"
    assert "We have sent you a new confirmation link." in client.get("/account/status").get_data(as_text=True)
    mails = mailbox.wait_for("bea@example.com", count=2, subject="Confirm")
    assert len(mails) == 2
    first, second = (path_of(m.link("/auth/verify/")) for m in mails)
    assert confirm(client, second).status_code == 302
    assert user_by_email("bea@example.com").status == Status.PENDING
    assert confirm(client, first).status_code == 400  # the older link is spent with the state it was for


def test_resend_requires_csrf_and_sign_in(client, mailbox):
    register(client)
    mailbox.wait_for("bea@example.com")
    anon = client.application.test_client()
    token = csrf_from(anon.get("/auth/login").get_data(as_text=True))
    resp = anon.post("/auth/resend-verification", data={"csrf_token": token})
    assert resp.status_code == 302
    login(client, "bea@example.com", GOOD_PW)
    assert client.post("/auth/resend-verification", data={}).status_code == 400
    assert len(mailbox.to("bea@example.com")) == 1


def test_resend_for_pending_sends_nothing(client, make_user, mailbox):
    user = make_user(status=Status.PENDING)
    login(client, user.email)
    post_form(client, "/auth/resend-verification", {}, page="/account/status")
    assert mailbox.to(user.email) == []


def test_pending_advocate_waits_on_status_page(client, make_user):
    user = make_user(status=Status.PENDING, email="penny@example.com")
    resp = login(client, user.email)
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/account/status"
    page = client.get("/account/status")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "The program team reviews every application" in html
    assert "penny@example.com" in html
    assert "Send me a new link" not in html


@pytest.mark.parametrize("status", [Status.PENDING, Status.UNVERIFIED])
@pytest.mark.parametrize("path", ["/dashboard", "/account/password", "/me/profile"])
def test_not_yet_approved_cannot_open_member_pages(client, make_user, status, path):
    user = make_user(status=status)
    login(client, user.email)
    resp = client.get(path)
    assert resp.status_code == 302, path
    assert urlsplit(resp.headers["Location"]).path == "/account/status"


def test_active_user_on_status_page_goes_to_dashboard(advocate_client):
    resp = advocate_client.get("/account/status")
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/dashboard"


def test_status_page_requires_login(client):
    resp = client.get("/account/status")
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/auth/login"


def test_register_verify_approve_login_journey(client, mailbox, admin_client, admin):
    register(client, name="Journey Jo", email="jo@example.com")
    confirm(client, verify_path(mailbox, "jo@example.com"))
    jo = user_by_email("jo@example.com")
    resp = post_form(admin_client, "/admin/pending/approve", {"user_id": jo.id}, page="/admin/pending")
    assert resp.status_code == 302
    assert mailbox.last("jo@example.com", subject="approved")
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.approve")).one()
    assert event.actor_id == admin.id and event.target_id == jo.id
    signed = login(client, "jo@example.com", GOOD_PW)
    assert urlsplit(signed.headers["Location"]).path == "/dashboard"
    assert "Welcome, Journey Jo" in client.get("/dashboard").get_data(as_text=True)


def test_emails_are_queued_in_outbox_and_marked_sent(client, mailbox):
    register(client)
    mailbox.wait_for("bea@example.com")
    db.session.rollback()
    msg = db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "bea@example.com")).one()
    assert msg.template == "verify_email"
    assert msg.status.value == "sent"


# --- links in emails come from PUBLIC_BASE_URL, never from the request's Host header ----------------------------------

PUBLIC = "https://advocates.example.com"
EVIL = "http://evil.example"


@pytest.fixture
def public_url(app_config):
    app_config["PUBLIC_BASE_URL"] = PUBLIC
    return app_config


def forged_post(client, url, data, page=None):
    """GET the form and POST it with a forged Host header (the test client's base_url sets Host)."""
    token = csrf_from(client.get(page or url, base_url=EVIL).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data}, base_url=EVIL)


def assert_links_are_public(mail):
    links = mail.links()
    assert links, mail.text
    assert all(u.startswith(PUBLIC + "/") for u in links), links
    assert "evil.example" not in mail.text and "evil.example" not in mail.html


def test_forged_host_does_not_reach_the_verification_link(public_url, client, mailbox, advocate):
    assert forged_post(client, "/auth/register", form_data()).status_code == 302
    mail = mailbox.last("bea@example.com", subject="Confirm")
    assert_links_are_public(mail)
    assert mail.link("/auth/verify/").startswith(PUBLIC + "/auth/verify/")
    # the notice to the owner of a taken address too
    assert (
        forged_post(client.application.test_client(), "/auth/register", form_data(email=advocate.email)).status_code
        == 302
    )
    assert_links_are_public(mailbox.last(advocate.email, subject="register"))


def test_forged_host_does_not_reach_the_resent_link(public_url, client, mailbox):
    assert forged_post(client, "/auth/register", form_data()).status_code == 302
    mailbox.wait_for("bea@example.com")
    assert forged_post(client, "/auth/login", {"email": "bea@example.com", "password": GOOD_PW}).status_code == 302
    resp = forged_post(client, "/auth/resend-verification", {}, page="/account/status")
    assert resp.status_code == 302
    mails = mailbox.wait_for("bea@example.com", count=2, subject="Confirm")
    for mail in mails:
        assert_links_are_public(mail)
