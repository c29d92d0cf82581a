"""Sessions end when they should: logout, password change, suspension, decline; remember cookies too."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from portal.models import Status, User
from tests.support import TEST_PASSWORD, clone_client, csrf_from, login, post_form, reload


def logout(client):
    return post_form(client, "/auth/logout", {}, page="/dashboard")


NEW_PW = "fresh-lemon-river-9"


def signed_in(client) -> bool:
    resp = client.get("/dashboard")
    if resp.status_code == 200:
        return True
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/auth/login", resp.status_code
    return False


def with_remember(app, value):
    """A browser holding only a remember-me cookie."""
    c = app.test_client()
    c.set_cookie("remember_token", value)
    return c


def change_password(client, current=TEST_PASSWORD, new=NEW_PW, confirm=None):
    return post_form(
        client, "/account/password", {"current_password": current, "password": new, "confirm": confirm or new}
    )


# --- logout ----------------------------------------------------------------------------------------------------


def test_logout_is_post_only(app, advocate_client):
    resp = advocate_client.get("/auth/logout")
    assert resp.status_code == 405
    assert "POST" in resp.headers.get("Allow", "")
    assert signed_in(advocate_client)  # a GET (an <img src>, a prefetch) signs no one out


def test_logout_without_csrf_does_nothing(advocate_client):
    resp = advocate_client.post("/auth/logout", data={})
    assert resp.status_code == 400
    assert signed_in(advocate_client)


def test_logout_ends_the_session_and_copied_cookie(app, advocate):
    c = app.test_client()
    login(c, advocate.email)
    stolen = clone_client(app, c)
    assert signed_in(stolen)
    resp = logout(c)
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/"
    assert "You are signed out." in c.get("/").get_data(as_text=True)
    assert not signed_in(c)
    assert not signed_in(stolen)
    assert not signed_in(clone_client(app, stolen))


def test_logout_kills_remember_cookie(app, advocate):
    c = app.test_client()
    login(c, advocate.email, remember=True)
    remember = c.get_cookie("remember_token")
    assert remember is not None and remember.http_only
    assert signed_in(with_remember(app, remember.value))  # the cookie alone signs in ...
    logout(c)
    assert c.get_cookie("remember_token") is None  # ... the browser is told to drop it ...
    assert not signed_in(with_remember(app, remember.value))  # ... and a kept copy is dead


def test_logout_ends_sessions_on_other_devices(app, advocate):
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, advocate.email)
    login(phone, advocate.email, remember=True)
    phone_remember = phone.get_cookie("remember_token").value
    logout(laptop)
    assert not signed_in(phone)
    assert not signed_in(with_remember(app, phone_remember))


def test_login_after_logout_works_and_old_cookie_stays_dead(app, advocate):
    c = app.test_client()
    login(c, advocate.email)
    old = c.get_cookie("session").value
    logout(c)
    login(c, advocate.email)
    assert signed_in(c)
    thief = app.test_client()
    thief.set_cookie("session", old)
    assert not signed_in(thief)


def test_session_not_kept_from_before_login(app, advocate):
    """Sign-in starts a fresh session: data from the anonymous session is not carried over."""
    c = app.test_client()
    with c.session_transaction() as sess:
        sess["planted"] = "by-attacker"
    login(c, advocate.email)
    with c.session_transaction() as sess:
        assert "planted" not in sess


def test_forged_user_id_in_session_is_ignored(app, advocate):
    c = app.test_client()
    with c.session_transaction() as sess:
        sess["_user_id"] = str(advocate.id)  # a numeric id is not a session token
        sess["_fresh"] = True
    assert not signed_in(c)


def test_pages_for_signed_in_users_are_not_cached(advocate_client):
    assert advocate_client.get("/dashboard").headers.get("Cache-Control") == "no-store"


# --- password change ---------------------------------------------------------------------------------------------


def test_change_password_needs_the_current_one(app, advocate, mailbox):
    c = app.test_client()
    login(c, advocate.email)
    bad = change_password(c, current="not-my-password-0")
    assert bad.status_code == 422
    assert "Your current password is not right." in bad.get_data(as_text=True)
    assert signed_in(c)
    assert login(app.test_client(), advocate.email, TEST_PASSWORD).status_code == 302
    assert login(app.test_client(), advocate.email, NEW_PW).status_code == 401
    assert mailbox.to(advocate.email) == []


def test_change_password_ends_other_sessions_keeps_this_one(app, advocate, mailbox):
    mine, other, remembered = app.test_client(), app.test_client(), app.test_client()
    login(mine, advocate.email, remember=True)
    my_remember = mine.get_cookie("remember_token").value
    login(other, advocate.email)
    login(remembered, advocate.email, remember=True)
    their_remember = remembered.get_cookie("remember_token").value
    stolen = clone_client(app, mine)

    resp = change_password(mine)
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/dashboard"
    assert "signed out everywhere else" in mine.get("/dashboard").get_data(as_text=True)

    assert signed_in(mine)  # this browser stays signed in
    assert not signed_in(other)
    assert not signed_in(remembered)
    assert not signed_in(stolen)  # a copy of this browser's old cookie is dead
    assert not signed_in(with_remember(app, their_remember))
    assert not signed_in(with_remember(app, my_remember))

    assert login(app.test_client(), advocate.email, NEW_PW).status_code == 302
    assert login(app.test_client(), advocate.email, TEST_PASSWORD).status_code == 401
    mail = mailbox.last(advocate.email, subject="Your password was changed")
    assert "every other session was signed out" in mail.text
    assert reload(User, advocate.id).password_changed_at is not None


def test_change_password_renews_this_browsers_remember_cookie(app, advocate):
    c = app.test_client()
    login(c, advocate.email, remember=True)
    old = c.get_cookie("remember_token").value
    assert change_password(c).status_code == 302
    new = c.get_cookie("remember_token")
    assert new is not None and new.value != old
    assert signed_in(with_remember(app, new.value))  # "keep me signed in" still holds here
    assert not signed_in(with_remember(app, old))


def test_change_password_without_remember_sets_no_remember_cookie(app, advocate):
    c = app.test_client()
    login(c, advocate.email)
    assert change_password(c).status_code == 302
    assert c.get_cookie("remember_token") is None
    assert signed_in(c)


@pytest.mark.parametrize(
    "new,message",
    [
        ("short-1", "at least 10 characters"),
        ("password123", "too common"),
        ("ada.advocate-rocks", "must not contain your email name"),
        (TEST_PASSWORD, "different from the current one"),
    ],
)
def test_change_password_policy(app, advocate, new, message):
    c = app.test_client()
    login(c, advocate.email)
    other = app.test_client()
    login(other, advocate.email)
    resp = change_password(c, new=new)
    assert resp.status_code == 422
    assert message in resp.get_data(as_text=True)
    assert signed_in(other)  # nothing changed, nobody signed out
    assert login(app.test_client(), advocate.email, TEST_PASSWORD).status_code == 302


def test_change_password_mismatch(app, advocate):
    c = app.test_client()
    login(c, advocate.email)
    resp = change_password(c, confirm="not-the-same-pass-1")
    assert resp.status_code == 422 and "The passwords do not match." in resp.get_data(as_text=True)


def test_change_password_requires_sign_in(client):
    resp = client.get("/account/password")
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/auth/login"


# --- suspension and decline ----------------------------------------------------------------------------------------


def test_cli_suspension_ends_sessions_at_once(app, runner, advocate):
    c, remembered = app.test_client(), app.test_client()
    login(c, advocate.email)
    login(remembered, advocate.email, remember=True)
    cookie = remembered.get_cookie("remember_token").value
    assert signed_in(c) and signed_in(remembered)

    result = runner.invoke(args=["users", "suspend", advocate.email, "--reason", "spam links"])
    assert result.exit_code == 0, result.output
    assert f"Suspended {advocate.email}" in result.output

    assert not signed_in(c)
    assert not signed_in(remembered)
    assert not signed_in(with_remember(app, cookie))
    assert reload(User, advocate.id).status == Status.SUSPENDED
    resp = login(app.test_client(), advocate.email)
    assert resp.status_code == 401 and "suspended" in resp.get_data(as_text=True)


def test_suspended_user_forms_are_refused(app, runner, advocate):
    c = app.test_client()
    login(c, advocate.email)
    token = csrf_from(c.get("/account/password").get_data(as_text=True))
    runner.invoke(args=["users", "suspend", advocate.email, "--reason", "x"])
    resp = c.post(
        "/account/password",
        data={"csrf_token": token, "current_password": TEST_PASSWORD, "password": NEW_PW, "confirm": NEW_PW},
    )
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/auth/login"
    assert login(app.test_client(), advocate.email, NEW_PW).status_code == 401


def test_declined_applicant_is_signed_out(app, admin_client, make_user):
    applicant = make_user(status=Status.PENDING)
    c = app.test_client()
    login(c, applicant.email)
    assert c.get("/account/status").status_code == 200
    post_form(admin_client, "/admin/pending/decline", {"user_id": applicant.id}, page="/admin/pending")
    resp = c.get("/account/status")
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/auth/login"


def test_approval_keeps_the_session(app, admin_client, make_user):
    applicant = make_user(status=Status.PENDING)
    c = app.test_client()
    login(c, applicant.email)
    assert c.get("/dashboard").status_code == 302
    post_form(admin_client, "/admin/pending/approve", {"user_id": applicant.id}, page="/admin/pending")
    assert c.get("/dashboard").status_code == 200  # no need to sign in again


# --- guessing the current password from a signed-in session ----------------------------------------------------------


def test_wrong_current_passwords_count_toward_the_lock(app, advocate, mailbox):
    """A hijacked session must not guess the current password without limit: wrong guesses on the
    change-password form count like failed sign-ins, and a locked account takes no more guesses."""
    c = app.test_client()
    login(c, advocate.email)
    token = csrf_from(c.get("/account/password").get_data(as_text=True))
    guess = {"csrf_token": token, "password": NEW_PW, "confirm": NEW_PW}
    for i in range(9):
        resp = c.post("/account/password", data={**guess, "current_password": f"guess-number-{i:04d}"})
        assert resp.status_code == 422 and "Your current password is not right." in resp.get_data(as_text=True)
    assert reload(User, advocate.id).failed_login_count == 9
    assert mailbox.to(advocate.email) == []
    resp = c.post("/account/password", data={**guess, "current_password": "guess-number-0009"})
    assert resp.status_code == 422
    assert reload(User, advocate.id).locked_until is not None
    assert mailbox.last(advocate.email, subject="locked").subject == "Your account is locked for a while"
    # locked: even the right password is refused here, and at sign-in
    resp = c.post("/account/password", data={**guess, "current_password": TEST_PASSWORD})
    assert resp.status_code == 422 and "locked" in resp.get_data(as_text=True)
    assert login(app.test_client(), advocate.email, TEST_PASSWORD).status_code == 401
    assert login(app.test_client(), advocate.email, NEW_PW).status_code == 401
    assert reload(User, advocate.id).password_changed_at is None


def test_a_right_current_password_after_failures_works_and_resets_the_count(app, advocate):
    c = app.test_client()
    login(c, advocate.email)
    assert change_password(c, current="not-my-password-0").status_code == 422
    assert reload(User, advocate.id).failed_login_count == 1
    assert change_password(c).status_code == 302
    assert reload(User, advocate.id).failed_login_count == 0


def test_change_password_posts_are_rate_limited(limited, app, advocate):
    c = app.test_client()
    login(c, advocate.email)
    token = csrf_from(c.get("/account/password").get_data(as_text=True))
    data = {"csrf_token": token, "current_password": "not-my-password-0", "password": NEW_PW, "confirm": NEW_PW}
    codes = [c.post("/account/password", data=data).status_code for _ in range(10)]
    assert 429 not in codes and 500 not in codes
    assert c.post("/account/password", data=data).status_code == 429
    assert c.get("/account/password").status_code == 200  # reading the page is not limited
