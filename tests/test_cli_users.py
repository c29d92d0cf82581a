"""`flask users ...` and approving or declining applications in the admin area; approval (web or CLI) creates
the advocate profile, staff and admins get none."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Role, Status, User
from tests.support import audits, has_profile, login, post_form, reload, user_by_email

PW = "granite-owl-meadow-3"


def users_count():
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(User))


def invoke(runner, *args, input=None):
    return runner.invoke(args=["users", *args], input=input)


# --- create-admin / create-staff -------------------------------------------------------------------------------


def test_create_admin_from_stdin(app, runner, mailbox):
    r = invoke(runner, "create-admin", "Boss@Example.com", "--name", "Bo Boss", "--password-stdin", input=PW + "\n")
    assert r.exit_code == 0, r.output
    assert "Created admin boss@example.com" in r.output
    assert PW not in r.output
    boss = user_by_email("boss@example.com")
    assert boss.role == Role.ADMIN and boss.status == Status.ACTIVE
    assert boss.name == "Bo Boss"
    assert boss.email_verified_at is not None and boss.approved_at is not None
    assert boss.password_hash and PW not in boss.password_hash
    assert len(audits("user.create_admin", boss.id)) == 1
    # the new admin can sign in and reach the admin area
    c = app.test_client()
    assert login(c, "boss@example.com", PW).status_code == 302
    assert c.get("/admin/").status_code == 200


def test_create_admin_password_with_crlf_and_spaces(app, runner):
    r = invoke(runner, "create-admin", "ops@example.com", "--password-stdin", input="  spaced out pass 42 \r\n")
    assert r.exit_code == 0, r.output
    assert login(app.test_client(), "ops@example.com", "  spaced out pass 42 ").status_code == 302


def test_create_admin_default_name_from_email(runner):
    assert invoke(runner, "create-admin", "jane.doe@example.com", "--password-stdin", input=PW + "\n").exit_code == 0
    assert user_by_email("jane.doe@example.com").name == "Jane Doe"


@pytest.mark.parametrize(
    "password,message",
    [
        ("123", "at least 10 characters"),
        ("", "at least 10 characters"),
        ("password123", "too common"),
        ("x" * 129, "at most 128"),
        ("my-root-password-1", "must not contain your email name"),
    ],
)
def test_create_admin_weak_password_fails_clearly(runner, password, message):
    r = invoke(runner, "create-admin", "root@example.com", "--password-stdin", input=password + "\n")
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output
    assert user_by_email("root@example.com") is None


@pytest.mark.parametrize("email", ["not-an-email", "", "two@@example.com", "a\x00@example.com", "a b@example.com"])
def test_create_admin_with_invalid_email_fails_clearly(runner, email):
    r = invoke(runner, "create-admin", email, "--password-stdin", input=PW + "\n")
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit)  # a ClickException, not a crash
    assert "is not a valid email address" in r.output
    assert users_count() == 0


def test_create_staff_with_invalid_email_and_link_fails(runner, mailbox):
    r = invoke(runner, "create-staff", "nobody-at-all", "--email-link")
    assert r.exit_code == 1 and "is not a valid email address" in r.output
    assert users_count() == 0


def test_create_admin_with_taken_email_fails(runner, advocate):
    r = invoke(runner, "create-admin", advocate.email.upper(), "--password-stdin", input=PW + "\n")
    assert r.exit_code != 0
    assert "already exists" in r.output
    assert reload(User, advocate.id).role == Role.ADVOCATE


def test_create_admin_prompts_twice_without_stdin_flag(app, runner):
    r = invoke(runner, "create-admin", "prompted@example.com", input=f"{PW}\n{PW}\n")
    assert r.exit_code == 0, r.output
    assert login(app.test_client(), "prompted@example.com", PW).status_code == 302
    mismatch = invoke(runner, "create-admin", "typo@example.com", input=f"{PW}\nother-thing-9\n{PW}\n{PW}\n")
    assert mismatch.exit_code == 0 and "do not match" in mismatch.output.lower()


def test_create_staff(app, runner):
    r = invoke(runner, "create-staff", "rep@example.com", "--password-stdin", input=PW + "\n")
    assert r.exit_code == 0, r.output
    rep = user_by_email("rep@example.com")
    assert rep.role == Role.STAFF and rep.status == Status.ACTIVE
    assert len(audits("user.create_staff", rep.id)) == 1
    c = app.test_client()
    login(c, "rep@example.com", PW)
    assert c.get("/dashboard", follow_redirects=True).status_code == 200  # the staff workspace
    assert c.get("/admin/").status_code == 403


def test_create_staff_with_email_link(app, runner, mailbox):
    r = invoke(runner, "create-staff", "linky@example.com", "--email-link")
    assert r.exit_code == 0, r.output
    assert "emailed" in r.output
    rep = user_by_email("linky@example.com")
    assert rep.password_hash is None
    # no password yet: nothing signs in
    assert login(app.test_client(), "linky@example.com", "").status_code in (401, 422)
    mail = mailbox.last("linky@example.com", subject="Reset your password")
    path = urlsplit(mail.link("/auth/reset-password/")).path
    assert mail.link("/auth/reset-password/").startswith("http://localhost/")  # PUBLIC_BASE_URL, outside a request
    c = app.test_client()
    assert post_form(c, path, {"password": PW, "confirm": PW}).status_code == 302
    assert login(app.test_client(), "linky@example.com", PW).status_code == 302


def test_create_staff_weak_password_fails(runner):
    r = invoke(runner, "create-staff", "weak@example.com", "--password-stdin", input="qwertyuiop\n")
    assert r.exit_code != 0 and "too common" in r.output
    assert user_by_email("weak@example.com") is None


# --- approve / suspend from the command line ----------------------------------------------------------------------


def test_cli_approve_pending(app, runner, make_user, mailbox):
    pending = make_user(status=Status.PENDING, email="wait@example.com", name="Wanda Wait")
    r = invoke(runner, "approve", "WAIT@example.com")
    assert r.exit_code == 0, r.output
    assert "Approved wait@example.com" in r.output
    user = reload(User, pending.id)
    assert user.status == Status.ACTIVE and user.approved_at is not None
    mail = mailbox.last("wait@example.com", subject="approved")
    assert "Hello Wanda Wait" in mail.text and "/auth/login" in mail.text
    events = audits("user.approve", pending.id)
    assert len(events) == 1
    assert events[0].actor_id is None
    assert events[0].target_type == "user"
    assert events[0].details.get("via") == "cli"
    c = app.test_client()
    login(c, "wait@example.com")
    assert c.get("/dashboard").status_code == 200


def test_cli_approve_already_active_fails(runner, advocate, mailbox):
    r = invoke(runner, "approve", advocate.email)
    assert r.exit_code != 0
    assert f"{advocate.email} is already active." in r.output
    assert audits("user.approve") == []
    assert mailbox.to(advocate.email) == []


def test_cli_approve_unknown_email_fails(runner):
    r = invoke(runner, "approve", "nobody@example.com")
    assert r.exit_code != 0
    assert "No account with nobody@example.com." in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize("command", [["approve"], ["suspend", "--reason", "x"]])
def test_cli_email_with_nul_is_a_clear_no_such_account(runner, advocate, command):
    r = invoke(runner, command[0], advocate.email + "\x00", *command[1:])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit)  # a ClickException, not a crash
    assert "No account with" in r.output
    assert reload(User, advocate.id).status == Status.ACTIVE


@pytest.mark.parametrize("status,words", [(Status.UNVERIFIED, "unverified"), (Status.SUSPENDED, "suspended")])
def test_cli_approve_not_pending_fails(runner, make_user, mailbox, status, words):
    user = make_user(status=status)
    r = invoke(runner, "approve", user.email)
    assert r.exit_code != 0
    assert "cannot be approved" in r.output and words in r.output
    assert reload(User, user.id).status == status
    assert mailbox.to(user.email) == []


def test_cli_suspend_writes_audit_with_reason(runner, advocate):
    r = invoke(runner, "suspend", advocate.email, "--reason", "spam links")
    assert r.exit_code == 0, r.output
    assert reload(User, advocate.id).status == Status.SUSPENDED
    [event] = audits("user.suspend", advocate.id)
    assert event.details.get("reason") == "spam links"


def test_cli_suspend_needs_reason_and_known_email(runner, advocate):
    r = invoke(runner, "suspend", advocate.email)
    assert r.exit_code != 0 and "--reason" in r.output
    assert reload(User, advocate.id).status == Status.ACTIVE
    r = invoke(runner, "suspend", "ghost@example.com", "--reason", "x")
    assert r.exit_code != 0 and "No account with ghost@example.com." in r.output


def test_staff_and_admins_get_no_advocate_profile(runner):
    assert runner.invoke(args=["users", "create-staff", "rep@example.com", "--email-link"]).exit_code == 0
    assert not has_profile(user_by_email("rep@example.com").id)


def test_cli_help_lists_commands(runner):
    r = runner.invoke(args=["users", "--help"])
    assert r.exit_code == 0
    for cmd in ("create-admin", "create-staff", "approve", "suspend"):
        assert cmd in r.output


# --- the admin area ------------------------------------------------------------------------------------------------


def test_admin_pending_lists_only_pending_advocates(admin_client, make_user):
    waiting = make_user(status=Status.PENDING, name="Wendy Waiting")
    make_user(status=Status.UNVERIFIED, name="Uma Unverified")
    make_user(status=Status.ACTIVE, name="Arne Active")
    make_user(role=Role.STAFF, status=Status.PENDING, name="Stan Staffpending")
    html = admin_client.get("/admin/pending").get_data(as_text=True)
    assert "Wendy Waiting" in html and waiting.email in html
    assert "Uma Unverified" not in html and "Arne Active" not in html and "Stan Staffpending" not in html


def test_admin_approves_on_the_web(admin_client, admin, make_user, mailbox):
    applicant = make_user(status=Status.PENDING, name="Paula Pending")
    resp = post_form(admin_client, "/admin/pending/approve", {"user_id": applicant.id}, page="/admin/pending")
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/admin/pending"
    page = admin_client.get("/admin/pending").get_data(as_text=True)
    assert "Paula Pending is approved and has been emailed." in page
    assert applicant.email not in page
    user = reload(User, applicant.id)
    assert user.status == Status.ACTIVE and user.approved_at is not None
    assert mailbox.last(applicant.email, subject="approved")
    [event] = audits("user.approve", applicant.id)
    assert event.actor_id == admin.id
    assert event.details.get("via") == "admin"
    assert "user.approve" in admin_client.get("/admin/audit").get_data(as_text=True)


def test_admin_approving_twice_is_a_message_not_a_second_event(admin_client, make_user, mailbox):
    applicant = make_user(status=Status.PENDING)
    post_form(admin_client, "/admin/pending/approve", {"user_id": applicant.id}, page="/admin/pending")
    again = post_form(admin_client, "/admin/pending/approve", {"user_id": applicant.id}, page="/admin/pending")
    assert again.status_code == 302
    assert "is already active" in admin_client.get("/admin/pending").get_data(as_text=True)
    assert len(audits("user.approve", applicant.id)) == 1
    assert len(mailbox.wait_for(applicant.email, subject="approved")) == 1


def test_admin_declines_on_the_web(admin_client, admin, make_user, mailbox):
    applicant = make_user(status=Status.PENDING, name="Dan Declined")
    resp = post_form(
        admin_client,
        "/admin/pending/decline",
        {"user_id": applicant.id, "reason": "We only accept customers <b>for now</b>."},
        page="/admin/pending",
    )
    assert resp.status_code == 302
    assert "application is declined" in admin_client.get("/admin/pending").get_data(as_text=True)
    assert reload(User, applicant.id).status == Status.SUSPENDED
    mail = mailbox.last(applicant.email, subject="About your advocate application")
    assert "We only accept customers" in mail.text
    assert "<b>" not in mail.text and "<b>" not in mail.html
    [event] = audits("user.decline", applicant.id)
    assert event.actor_id == admin.id and event.details.get("reason").startswith("We only accept customers")
    assert login(admin_client.application.test_client(), applicant.email).status_code == 401


def test_admin_decline_without_reason(admin_client, make_user, mailbox):
    applicant = make_user(status=Status.PENDING)
    post_form(admin_client, "/admin/pending/decline", {"user_id": applicant.id}, page="/admin/pending")
    assert reload(User, applicant.id).status == Status.SUSPENDED
    assert mailbox.last(applicant.email, subject="About your advocate application")


def test_admin_cannot_decline_an_active_member(admin_client, advocate, mailbox):
    post_form(admin_client, "/admin/pending/decline", {"user_id": advocate.id}, page="/admin/pending")
    assert "Only accounts waiting for approval can be declined." in admin_client.get("/admin/pending").get_data(
        as_text=True
    )
    assert reload(User, advocate.id).status == Status.ACTIVE
    assert audits("user.decline") == []
    assert mailbox.to(advocate.email) == []


def test_admin_decline_reason_too_long_is_400(admin_client, make_user):
    applicant = make_user(status=Status.PENDING)
    resp = post_form(
        admin_client, "/admin/pending/decline", {"user_id": applicant.id, "reason": "r" * 501}, page="/admin/pending"
    )
    assert resp.status_code == 400
    assert reload(User, applicant.id).status == Status.PENDING


def test_approval_creates_the_profile(admin_client, runner, make_user, mailbox):
    """The advocate profile exists from activation on, whether approved on the web or by the CLI."""
    on_web, on_cli = make_user(status=Status.PENDING), make_user(status=Status.PENDING)
    assert not has_profile(on_web.id) and not has_profile(on_cli.id)
    resp = post_form(admin_client, "/admin/pending/approve", {"user_id": on_web.id}, page="/admin/pending")
    assert resp.status_code == 302
    assert runner.invoke(args=["users", "approve", on_cli.email]).exit_code == 0
    assert has_profile(on_web.id) and has_profile(on_cli.id)
    # a fresh advocate's first dashboard shows the empty profile and writes nothing
    c = admin_client.application.test_client()
    assert login(c, on_web.email).status_code == 302
    assert c.get("/dashboard").status_code == 200


@pytest.mark.parametrize("user_id,status", [("abc", 400), ("", 400), ("999999", 404), ("1e3", 400)])
def test_admin_approve_bad_target(admin_client, user_id, status):
    resp = post_form(admin_client, "/admin/pending/approve", {"user_id": user_id}, page="/admin/pending")
    assert resp.status_code == status
    assert audits("user.approve") == []


def test_admin_approve_needs_csrf(admin_client, make_user):
    applicant = make_user(status=Status.PENDING)
    resp = admin_client.post("/admin/pending/approve", data={"user_id": applicant.id})
    assert resp.status_code == 400
    assert reload(User, applicant.id).status == Status.PENDING


def test_admin_approve_is_post_only(admin_client, make_user):
    applicant = make_user(status=Status.PENDING)
    assert admin_client.get(f"/admin/pending/approve?user_id={applicant.id}").status_code == 405
    assert reload(User, applicant.id).status == Status.PENDING


def test_users_count_unchanged_by_failed_commands(runner, advocate):
    before = users_count()
    invoke(runner, "create-admin", advocate.email, "--password-stdin", input=PW + "\n")
    invoke(runner, "create-admin", "weak@example.com", "--password-stdin", input="short\n")
    assert users_count() == before
