"""Security events are in the audit log (issue 12, Audit log): every refused sign-in with why, the lock,
a refused suspended account, sign-in and sign-out, a password changed, reset, or guessed wrong while
signed in. Each with who it was about, the address it came from and the time; never the password, and
never an address typed for which there is no account."""

from __future__ import annotations

import json

from portal.extensions import db
from portal.models import Status, User
from tests.support import TEST_PASSWORD, audits, login, path_of, post_form, reload

WRONG = "not-the-right-password-1"
NEW_PW = "new-walrus-lantern-5"


def _reasons(user_id: int | None) -> list[str]:
    rows = [e for e in audits("auth.sign_in_failed") if e.target_id == user_id]
    return [e.details["reason"] for e in rows]


def test_refused_sign_ins_are_recorded_with_why_and_from_where(app, client, advocate):
    assert login(client, advocate.email, WRONG).status_code == 401
    assert login(client, "nobody-here@example.com", WRONG).status_code == 401
    assert _reasons(advocate.id) == ["wrong_password"]
    [unknown] = [e for e in audits("auth.sign_in_failed") if e.target_id is None]
    assert unknown.details == {"reason": "no_account"} and unknown.target_type is None and unknown.actor_id is None
    for event in audits("auth.sign_in_failed"):
        assert event.ip_address == "127.0.0.1" and event.created_at is not None
        stored = json.dumps(event.details)
        assert WRONG not in stored and "nobody-here" not in stored


def test_a_lockout_and_the_attempts_while_locked_are_recorded(app, client, advocate):
    app.config["LOGIN_MAX_FAILURES"] = 3
    for _ in range(3):
        login(client, advocate.email, WRONG)
    assert len(audits("user.locked", advocate.id)) == 1
    assert login(client, advocate.email, TEST_PASSWORD).status_code == 401  # right password, but locked
    assert _reasons(advocate.id) == ["wrong_password"] * 3 + ["locked"]
    assert audits("auth.sign_in", advocate.id) == []


def test_a_suspended_account_signing_in_is_refused_and_recorded(app, client, advocate):
    user = db.session.get(User, advocate.id)
    user.status = Status.SUSPENDED
    db.session.commit()
    resp = login(client, advocate.email, TEST_PASSWORD)
    assert resp.status_code == 401 and "suspended" in resp.get_data(as_text=True)
    assert _reasons(advocate.id) == ["suspended"]
    assert audits("auth.sign_in", advocate.id) == []


def test_sign_in_and_sign_out_are_recorded(app, client, advocate):
    assert login(client, advocate.email).status_code == 302
    [signed_in] = audits("auth.sign_in", advocate.id)
    assert signed_in.actor_id == advocate.id and signed_in.ip_address == "127.0.0.1"
    assert post_form(client, "/auth/logout", {}, page="/account/").status_code == 302
    [signed_out] = audits("auth.sign_out", advocate.id)
    assert signed_out.actor_id == advocate.id


def test_password_changes_resets_and_wrong_guesses_are_recorded(app, client, advocate, mailbox):
    login(client, advocate.email)
    data = {"current_password": WRONG, "password": NEW_PW, "confirm": NEW_PW}
    assert post_form(client, "/account/password", data).status_code == 422
    assert [e.actor_id for e in audits("auth.password_check_failed", advocate.id)] == [advocate.id]
    assert audits("auth.password_change", advocate.id) == []
    data["current_password"] = TEST_PASSWORD
    assert post_form(client, "/account/password", data).status_code == 302
    assert len(audits("auth.password_change", advocate.id)) == 1

    other = app.test_client()
    post_form(other, "/auth/forgot-password", {"email": advocate.email})
    link = mailbox.wait_for(advocate.email, subject="Reset your password")[-1].link("/auth/reset-password/")
    again = "yet-another-pass-8"
    post_form(other, path_of(link), {"password": again, "confirm": again})
    assert reload(User, advocate.id).password_changed_at is not None
    [reset] = audits("auth.password_reset", advocate.id)
    assert reset.actor_id == advocate.id and "yet-another" not in json.dumps(reset.details)
