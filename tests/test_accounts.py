"""Account flows and their failures (issue: foundation)."""

import re
from datetime import timedelta

import pytest
import time_machine

from portal.extensions import db
from portal.models import AuditEvent, Consent, Role, Status, User, utcnow
from tests.support import TEST_PASSWORD, csrf_from, login, logout, post_form, reload

GOOD_PW = "purple-otter-skates-42"


def register(client, email="bea@example.com", name="Bea Bold", password=GOOD_PW, **extra):
    data = {
        "name": name,
        "email": email,
        "company": "Globex",
        "job_title": "CTO",
        "password": password,
        "confirm": password,
        "accept_terms": "y",
        **extra,
    }
    return post_form(client, "/auth/register", data)


def user_by_email(email):
    db.session.rollback()
    return db.session.query(User).filter_by(email=email).one_or_none()


def follow_verify(client, mailbox, email):
    link = mailbox.last(email, subject="Confirm your email").link("/auth/verify/")
    path = link.split("localhost", 1)[1]
    assert client.get(path).status_code == 200
    return post_form(client, path, {}), path


# --- registration and verification ----------------------------------------------------------------


def test_register_creates_unverified_advocate_with_consent_and_mails(client, mailbox, app):
    resp = register(client)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/auth/check-email")
    user = user_by_email("bea@example.com")
    assert user.status == Status.UNVERIFIED and user.role == Role.ADVOCATE
    consent = db.session.query(Consent).filter_by(user_id=user.id).one()
    assert consent.kind == "program_terms" and consent.version == app.config["TERMS_VERSION"] and consent.given_at
    assert user.password_hash.startswith("$argon2id$")
    assert "/auth/verify/" in mailbox.last("bea@example.com").text


def test_verification_link_moves_to_pending_then_is_single_use(client, mailbox):
    register(client)
    resp, path = follow_verify(client, mailbox, "bea@example.com")
    assert resp.status_code == 302
    assert user_by_email("bea@example.com").status == Status.PENDING
    again = post_form(client, path, {})
    assert again.status_code == 400 and b"already been used" in again.data


@pytest.fixture
def auto_approve(app_config):
    app_config["AUTO_APPROVE_ADVOCATES"] = True


def test_verification_with_auto_approve(auto_approve, client, mailbox):
    register(client)
    follow_verify(client, mailbox, "bea@example.com")
    assert user_by_email("bea@example.com").status == Status.ACTIVE


def test_verification_link_expires_after_48_hours(client, mailbox):
    register(client)
    link = mailbox.last("bea@example.com").link("/auth/verify/").split("localhost", 1)[1]
    with time_machine.travel(utcnow() + timedelta(hours=49)):
        resp = post_form(client, link, {})
    assert resp.status_code == 400 and b"expired" in resp.data
    assert user_by_email("bea@example.com").status == Status.UNVERIFIED


def test_tampered_verification_token_refused(client, mailbox):
    register(client)
    link = mailbox.last("bea@example.com").link("/auth/verify/").split("localhost", 1)[1]
    resp = post_form(client, link[:-3] + "abc", {}, page=link)
    assert resp.status_code == 400
    assert user_by_email("bea@example.com").status == Status.UNVERIFIED


def test_existing_email_same_answer_and_owner_notified(client, mailbox, advocate):
    new = register(client, email="new.person@example.com")
    other = register(client.application.test_client(), email=advocate.email)
    assert new.status_code == other.status_code == 302
    assert new.headers["Location"] == other.headers["Location"]
    assert "already have an account" in mailbox.last(advocate.email, subject="tried to register").text
    assert db.session.query(User).filter_by(email=advocate.email).count() == 1


@pytest.mark.parametrize(
    "password,message",
    [
        ("short1", b"at least 10"),
        ("x" * 129, b"128"),
        ("qwertyuiop", b"too common"),
        ("bea-secret-password", b"email name"),
    ],
)
def test_password_policy(client, password, message):
    resp = register(client, email="bea@example.com", password=password)
    assert resp.status_code == 422 and message in resp.data
    assert user_by_email("bea@example.com") is None


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


def test_html_in_name_escaped_and_unicode_kept(client, mailbox):
    register(client, name="<script>alert(1)</script> שלום 😀")
    mail = mailbox.last("bea@example.com")
    assert "<script>" not in mail.text and "<script>" not in mail.html
    assert "שלום 😀" in mail.text
    assert user_by_email("bea@example.com").name == "<script>alert(1)</script> שלום 😀"


def test_pending_and_unverified_see_their_status(client, mailbox, make_user):
    make_user(email="pending@example.com", status=Status.PENDING)
    resp = login(client, "pending@example.com")
    assert resp.headers["Location"].endswith("/account/status")
    assert b"reviews every application" in client.get("/account/status").data
    assert client.get("/dashboard").headers["Location"].endswith("/account/status")

    other = client.application.test_client()
    make_user(email="unverified@example.com", status=Status.UNVERIFIED)
    login(other, "unverified@example.com")
    page = other.get("/account/status")
    assert b"Send me a new link" in page.data
    post_form(other, "/auth/resend-verification", {}, page="/account/status")
    assert mailbox.wait_for("unverified@example.com", subject="Confirm your email")


# --- login, lockout, rate limit, next ------------------------------------------------------------------


def test_wrong_password_and_unknown_email_answer_alike(client, advocate):
    a = login(client, advocate.email, "wrong-password-123")
    b = login(client, "nobody@example.com", "wrong-password-123")
    assert a.status_code == b.status_code == 401

    def strip(r, email):
        body = re.sub(r'name="csrf_token"[^>]*>', "", r.get_data(as_text=True))
        return body.replace(email, "EMAIL")

    assert strip(a, advocate.email) == strip(b, "nobody@example.com")


def test_lockout_after_ten_failures_and_owner_emailed(client, advocate, mailbox):
    for _ in range(10):
        login(client, advocate.email, "wrong-password-123")
    assert login(client, advocate.email).status_code == 401  # right password, but locked
    assert len(mailbox.wait_for(advocate.email, subject="locked")) == 1
    assert reload(User, advocate.id).locked_until is not None
    with time_machine.travel(utcnow() + timedelta(minutes=16)):
        assert login(client, advocate.email).status_code == 302


def test_success_resets_failure_count(client, advocate):
    for _ in range(9):
        login(client, advocate.email, "wrong-password-123")
    assert login(client, advocate.email).status_code == 302
    assert reload(User, advocate.id).failed_login_count == 0


def test_suspended_user_cannot_log_in(client, make_user):
    make_user(email="sus@example.com", status=Status.SUSPENDED)
    resp = login(client, "sus@example.com")
    assert resp.status_code == 401 and b"suspended" in resp.data


@pytest.mark.parametrize(
    "target,ok",
    [
        ("/me/profile", True),
        ("//evil.example", False),
        ("https://evil.example", False),
        ("/\\evil.example", False),
        ("javascript:alert(1)", False),
        ("/%2F%2Fevil.example", True),
    ],
)
def test_next_only_local(client, advocate, target, ok):
    from urllib.parse import quote

    resp = login(client, advocate.email, next=quote(target, safe=""))
    assert resp.status_code == 302
    # A local path is followed as given ("/%2F%2Fevil.example" is a path on this site); anything else is dropped.
    assert resp.headers["Location"] == (target if ok else "/dashboard")


def test_guards(client, advocate_client, staff_client):
    resp = client.get("/admin/pending")
    assert resp.status_code == 302 and "/auth/login?next=%2Fadmin%2Fpending" in resp.headers["Location"]
    assert advocate_client.get("/admin/").status_code == 403
    assert staff_client.get("/admin/").status_code == 403
    assert staff_client.get("/me/profile").status_code == 403


@pytest.fixture
def limited(app_config):
    app_config["RATELIMIT_ENABLED"] = True
    return app_config


@pytest.mark.parametrize("path", ["/auth/login", "/auth/register", "/auth/forgot-password"])
def test_rate_limit(limited, app, path):
    client = app.test_client()
    page = client.get(path)

    token = csrf_from(page.get_data(as_text=True))
    codes = [
        client.post(path, data={"csrf_token": token, "email": "x@example.com", "password": "x"}).status_code
        for _ in range(11)
    ]
    assert 429 not in codes[:10] and codes[10] == 429
    last = client.post(path, data={"csrf_token": token})
    assert last.status_code == 429 and b"Too many attempts" in last.data


# --- password reset -------------------------------------------------------------------------------------


def reset_link(mailbox, email):
    return mailbox.last(email, subject="Reset your password").link("/auth/reset-password/").split("localhost", 1)[1]


def test_reset_same_answer_known_unknown_and_single_use(client, advocate, mailbox):
    a = post_form(client, "/auth/forgot-password", {"email": advocate.email})
    b = post_form(client, "/auth/forgot-password", {"email": "ghost@example.com"})
    assert a.status_code == b.status_code == 302 and a.headers["Location"] == b.headers["Location"]
    assert mailbox.to("ghost@example.com") == []
    link = reset_link(mailbox, advocate.email)
    resp = post_form(client, link, {"password": "new-walrus-lantern-5", "confirm": "new-walrus-lantern-5"})
    assert resp.status_code == 302
    assert login(client.application.test_client(), advocate.email, "new-walrus-lantern-5").status_code == 302
    assert login(client.application.test_client(), advocate.email, TEST_PASSWORD).status_code == 401
    assert client.get(link).status_code == 400  # used


def test_reset_expires_after_an_hour_and_checks_policy(client, advocate, mailbox):
    post_form(client, "/auth/forgot-password", {"email": advocate.email})
    link = reset_link(mailbox, advocate.email)
    weak = post_form(client, link, {"password": "password", "confirm": "password"})
    assert weak.status_code == 422
    with time_machine.travel(utcnow() + timedelta(minutes=61)):
        assert client.get(link).status_code == 400


# --- sessions ------------------------------------------------------------------------------------------------


def test_logout_ends_sessions_and_remember_cookie(app, advocate):
    a = app.test_client()
    login(a, advocate.email, remember=True)
    remember = a.get_cookie("remember_token")
    assert remember is not None
    b = app.test_client()
    b.set_cookie("remember_token", remember.value)
    assert b.get("/dashboard").status_code == 200  # the remember cookie works...
    assert app.test_client().get("/auth/logout").status_code == 405  # logout is POST only
    logout(a)
    c = app.test_client()
    c.set_cookie("remember_token", remember.value)
    assert c.get("/dashboard").status_code == 302  # ...and no longer after logout
    assert b.get("/dashboard").status_code == 302  # the other session ended too


def test_password_change_ends_other_sessions_keeps_this_one(app, advocate, mailbox):
    mine, other = app.test_client(), app.test_client()
    login(mine, advocate.email)
    login(other, advocate.email)
    bad = post_form(
        mine,
        "/account/password",
        {"current_password": "nope-nope-nope", "password": "fresh-lemon-river-9", "confirm": "fresh-lemon-river-9"},
    )
    assert bad.status_code == 422 and b"current password is not right" in bad.data
    ok = post_form(
        mine,
        "/account/password",
        {"current_password": TEST_PASSWORD, "password": "fresh-lemon-river-9", "confirm": "fresh-lemon-river-9"},
    )
    assert ok.status_code == 302
    assert mine.get("/dashboard").status_code == 200
    assert other.get("/dashboard").status_code == 302
    assert mailbox.last(advocate.email, subject="password was changed")


def test_suspension_ends_sessions(app, runner, advocate):
    c = app.test_client()
    login(c, advocate.email)
    assert c.get("/dashboard").status_code == 200
    result = runner.invoke(args=["users", "suspend", advocate.email, "--reason", "spam"])
    assert result.exit_code == 0, result.output
    assert c.get("/dashboard").status_code == 302


# --- CLI and admin approval --------------------------------------------------------------------------------------


def test_cli_create_admin_staff_and_approve(runner, mailbox, make_user):
    r = runner.invoke(
        args=["users", "create-admin", "boss@example.com", "--password-stdin"], input="granite-owl-meadow-3\n"
    )
    assert r.exit_code == 0, r.output
    boss = user_by_email("boss@example.com")
    assert boss.role == Role.ADMIN and boss.status == Status.ACTIVE
    weak = runner.invoke(args=["users", "create-admin", "b2@example.com", "--password-stdin"], input="123\n")
    assert weak.exit_code != 0 and "at least 10" in weak.output
    r = runner.invoke(
        args=["users", "create-staff", "rep@example.com", "--password-stdin"], input="granite-owl-meadow-3\n"
    )
    assert r.exit_code == 0 and user_by_email("rep@example.com").role == Role.STAFF
    pending = make_user(email="wait@example.com", status=Status.PENDING)
    r = runner.invoke(args=["users", "approve", "wait@example.com"])
    assert r.exit_code == 0, r.output
    assert reload(User, pending.id).status == Status.ACTIVE
    assert mailbox.last("wait@example.com", subject="approved")
    assert db.session.query(AuditEvent).filter_by(action="user.approve", target_id=pending.id).count() == 1
    again = runner.invoke(args=["users", "approve", "wait@example.com"])
    assert again.exit_code != 0 and "already active" in again.output
    unknown = runner.invoke(args=["users", "approve", "nobody@example.com"])
    assert unknown.exit_code != 0 and "No account" in unknown.output


def test_admin_approves_and_declines_in_admin_area(admin_client, make_user, mailbox):
    a = make_user(email="app1@example.com", status=Status.PENDING, name="<b>Ann</b>")
    b = make_user(email="app2@example.com", status=Status.PENDING)
    page = admin_client.get("/admin/pending")
    assert b"&lt;b&gt;Ann&lt;/b&gt;" in page.data and b"<b>Ann</b>" not in page.data
    post_form(admin_client, "/admin/pending/approve", {"user_id": a.id}, page="/admin/pending")
    post_form(
        admin_client, "/admin/pending/decline", {"user_id": b.id, "reason": "Not a customer"}, page="/admin/pending"
    )
    assert reload(User, a.id).status == Status.ACTIVE
    assert reload(User, b.id).status == Status.SUSPENDED
    assert "Not a customer" in mailbox.last("app2@example.com").text
    actions = {e.action for e in db.session.query(AuditEvent).all()}
    assert {"user.approve", "user.decline"} <= actions


# --- the advocate profile exists from activation (no page creates it on a GET) ----------------------------------------


def _has_profile(user_id: int) -> bool:
    from portal.models import AdvocateProfile

    db.session.rollback()
    return db.session.get(AdvocateProfile, user_id) is not None


def test_verification_with_auto_approve_creates_the_profile(auto_approve, client, mailbox):
    register(client)
    assert not _has_profile(user_by_email("bea@example.com").id)  # not while unverified
    follow_verify(client, mailbox, "bea@example.com")
    user = user_by_email("bea@example.com")
    assert user.status == Status.ACTIVE and _has_profile(user.id)


def test_approval_creates_the_profile(admin_client, runner, make_user, mailbox):
    on_web, on_cli = make_user(status=Status.PENDING), make_user(status=Status.PENDING)
    assert not _has_profile(on_web.id) and not _has_profile(on_cli.id)
    resp = post_form(admin_client, "/admin/pending/approve", {"user_id": on_web.id}, page="/admin/pending")
    assert resp.status_code == 302
    assert runner.invoke(args=["users", "approve", on_cli.email]).exit_code == 0
    assert _has_profile(on_web.id) and _has_profile(on_cli.id)
    # a fresh advocate's first dashboard shows the empty profile and writes nothing
    c = admin_client.application.test_client()
    assert login(c, on_web.email).status_code == 302
    assert c.get("/dashboard").status_code == 200


def test_staff_and_admins_get_no_advocate_profile(runner):
    assert runner.invoke(args=["users", "create-staff", "rep@example.com", "--email-link"]).exit_code == 0
    assert not _has_profile(user_by_email("rep@example.com").id)
