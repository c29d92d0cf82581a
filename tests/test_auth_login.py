"""Signing in: one answer for every failure, lockout, suspension, safe `next`, guards, rate limits."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import time_machine
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Status, User, utcnow
from tests.support import TEST_PASSWORD, csrf_from, post_form, reload, without_values

WRONG = "not-the-right-password-1"


def sign_in(client, email, password=TEST_PASSWORD, next=None, remember=False):
    """Like helpers.login, but `next` is URL-encoded the way a browser would send it."""
    data = {"email": email, "password": password}
    if remember:
        data["remember"] = "y"
    url = "/auth/login" + (f"?next={quote(next, safe='')}" if next is not None else "")
    return post_form(client, url, data, page="/auth/login")


def location_path(resp) -> str:
    return urlsplit(resp.headers["Location"]).path


def flashes(html: str) -> list[str]:
    return [m.strip() for m in re.findall(r'<div class="alert alert-\w+" role="\w+">(.*?)</div>', html, re.S)]


# --- one answer for every failure --------------------------------------------------------------------------


def test_wrong_password_and_unknown_email_answer_alike(app, advocate):
    a, b = app.test_client(), app.test_client()
    wrong = sign_in(a, advocate.email, WRONG)
    unknown = sign_in(b, "nobody-here@example.com", WRONG)
    assert wrong.status_code == unknown.status_code == 401
    wrong_html, unknown_html = wrong.get_data(as_text=True), unknown.get_data(as_text=True)
    assert flashes(wrong_html) == flashes(unknown_html)
    assert "The email or password is not right" in flashes(wrong_html)[0]
    # the pages differ only in the email typed back into the field
    assert without_values(wrong_html) == without_values(unknown_html)
    assert "nobody" not in flashes(unknown_html)[0]


@pytest.mark.parametrize("status", [Status.DELETED])
def test_deleted_account_answers_like_unknown(app, make_user, status):
    user = make_user(status=status)
    resp = sign_in(app.test_client(), user.email)
    assert resp.status_code == 401
    assert "The email or password is not right" in resp.get_data(as_text=True)


def test_email_is_case_insensitive(client, advocate):
    resp = sign_in(client, advocate.email.upper())
    assert resp.status_code == 302 and location_path(resp) == "/dashboard"


def test_successful_login_records_time_and_redirects_to_dashboard(client, advocate):
    resp = sign_in(client, advocate.email)
    assert resp.status_code == 302 and location_path(resp) == "/dashboard"
    assert reload(User, advocate.id).last_login_at is not None
    assert client.get("/dashboard").status_code == 200


def test_login_form_errors_are_422_not_500(client):
    token = csrf_from(client.get("/auth/login").get_data(as_text=True))
    assert client.post("/auth/login", data={"csrf_token": token}).status_code == 422
    assert (
        client.post(
            "/auth/login", data={"csrf_token": token, "email": "x@example.com", "password": "p" * 5000}
        ).status_code
        == 422
    )
    assert client.post("/auth/login", data={"email": "x@example.com", "password": "x"}).status_code == 400  # no CSRF


@pytest.mark.parametrize("email", ["ada\x00@example.com", "ghost\x00@example.com", "\x00", "x\x1f@example.com"])
def test_control_characters_in_login_email_never_500(client, advocate, email):
    resp = sign_in(client, email)
    assert resp.status_code in (401, 422)
    assert sign_in(client, email, WRONG).status_code in (401, 422)


def test_get_by_email_with_control_characters_finds_nobody(app, advocate):
    """Callers outside the forms (the CLI) hand emails straight to the service: no query with NUL
    (PostgreSQL raises on it), and no match."""
    from portal.services import accounts

    assert accounts.get_by_email(db.session, advocate.email) is not None
    assert accounts.get_by_email(db.session, advocate.email + "\x00") is None
    assert accounts.get_by_email(db.session, "ada\x00.advocate@example.com") is None
    db.session.rollback()


# --- lockout ------------------------------------------------------------------------------------------------


def fail(client, email, times):
    for _ in range(times):
        assert sign_in(client, email, WRONG).status_code == 401


def test_lockout_after_ten_failures(app, client, advocate, mailbox):
    assert app.config["LOGIN_MAX_FAILURES"] == 10
    fail(client, advocate.email, 9)
    assert mailbox.to(advocate.email) == []
    assert reload(User, advocate.id).failed_login_count == 9
    fail(client, advocate.email, 1)
    locked = reload(User, advocate.id)
    assert locked.locked_until is not None and locked.locked_until > utcnow() + timedelta(minutes=14)

    right = sign_in(client, advocate.email)  # the right password is refused while locked
    assert right.status_code == 401
    assert flashes(right.get_data(as_text=True)) == flashes(
        sign_in(app.test_client(), "nobody@example.com").get_data(as_text=True)
    )
    assert client.get("/dashboard").status_code == 302

    fail(client, advocate.email, 5)  # more tries while locked send nothing more
    mails = mailbox.wait_for(advocate.email)
    assert len(mails) == 1
    assert "locked" in mails[0].subject
    assert "15 minutes" in mails[0].text
    assert "/auth/forgot-password" in mails[0].text
    assert db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "user.locked", AuditEvent.target_id == advocate.id)
    ).one()

    with time_machine.travel(utcnow() + timedelta(minutes=14)):
        assert sign_in(app.test_client(), advocate.email).status_code == 401
    with time_machine.travel(utcnow() + timedelta(minutes=15, seconds=5)):
        c = app.test_client()
        resp = sign_in(c, advocate.email)
        assert resp.status_code == 302 and location_path(resp) == "/dashboard"
        assert c.get("/dashboard").status_code == 200
    user = reload(User, advocate.id)
    assert user.locked_until is None and user.failed_login_count == 0
    assert len(mailbox.to(advocate.email)) == 1


def test_after_lock_expires_counting_starts_again(app, advocate, mailbox):
    c = app.test_client()
    fail(c, advocate.email, 10)
    with time_machine.travel(utcnow() + timedelta(minutes=16)):
        c = app.test_client()
        fail(c, advocate.email, 9)  # a fresh count: nine more do not lock again
        assert sign_in(c, advocate.email).status_code == 302


def test_successful_login_resets_the_counter(app, advocate, mailbox):
    c = app.test_client()
    fail(c, advocate.email, 9)
    assert sign_in(c, advocate.email).status_code == 302
    assert reload(User, advocate.id).failed_login_count == 0
    c2 = app.test_client()
    fail(c2, advocate.email, 9)
    assert sign_in(c2, advocate.email).status_code == 302  # 18 failures in all, but never 10 in a row
    assert reload(User, advocate.id).locked_until is None
    assert mailbox.to(advocate.email) == []


def test_failures_on_one_account_do_not_lock_another(app, advocate, make_user):
    other = make_user()
    fail(app.test_client(), advocate.email, 10)
    assert sign_in(app.test_client(), other.email).status_code == 302


def test_unknown_email_failures_lock_nothing(app, advocate):
    fail(app.test_client(), "ghost@example.com", 12)
    assert sign_in(app.test_client(), advocate.email).status_code == 302


# --- suspended, pending, unverified -------------------------------------------------------------------------


def test_suspended_user_cannot_log_in(app, make_user):
    user = make_user(status=Status.SUSPENDED)
    c = app.test_client()
    resp = sign_in(c, user.email)
    assert resp.status_code == 401
    assert "suspended" in resp.get_data(as_text=True)
    assert c.get("/dashboard").status_code == 302
    assert location_path(c.get("/dashboard")) == "/auth/login"
    # a wrong password does not reveal the suspension
    wrong = sign_in(app.test_client(), user.email, WRONG)
    assert wrong.status_code == 401 and "suspended" not in wrong.get_data(as_text=True)


@pytest.mark.parametrize("status", [Status.PENDING, Status.UNVERIFIED])
def test_not_approved_login_goes_to_status_even_with_next(client, make_user, status):
    user = make_user(status=status)
    resp = sign_in(client, user.email, next="/opportunities")
    assert resp.status_code == 302 and location_path(resp) == "/account/status"


# --- next ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/me/profile",
        "/opportunities?q=data&page=2",
        "/dashboard",
        "/%2F%2Fevil.example",  # a path on this site, followed as given
    ],
)
def test_local_next_honoured(client, advocate, target):
    resp = sign_in(client, advocate.email, next=target)
    assert resp.status_code == 302
    loc = urlsplit(resp.headers["Location"])
    assert loc.netloc in ("", "localhost")
    assert loc.path + (f"?{loc.query}" if loc.query else "") == target


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "//evil.example/dashboard",
        "https://evil.example",
        "https://evil.example/dashboard",
        "/\\evil.example",
        "\\\\evil.example",
        "/\\/evil.example",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "/\t/evil.example",
        "/\r\nSet-Cookie: x=1",
        "evil.example",
        "http:evil.example",
        "///evil.example",
        "",
    ],
)
def test_unsafe_next_refused(client, advocate, target):
    resp = sign_in(client, advocate.email, next=target)
    assert resp.status_code == 302
    loc = urlsplit(resp.headers["Location"])
    assert loc.netloc in ("", "localhost")
    assert loc.path == "/dashboard"
    assert "evil" not in resp.headers["Location"]


def test_unsafe_next_not_echoed_into_login_form(client):
    html = client.get("/auth/login?next=" + quote("//evil.example", safe="")).get_data(as_text=True)
    assert "evil.example" not in html
    html = client.get("/auth/login?next=" + quote("/me/profile", safe="")).get_data(as_text=True)
    assert "/auth/login?next=/me/profile" in html or "/auth/login?next=%2Fme%2Fprofile" in html


def test_signed_in_user_visiting_login_follows_safe_next_only(advocate_client):
    resp = advocate_client.get("/auth/login?next=" + quote("https://evil.example", safe=""))
    assert resp.status_code == 302 and location_path(resp) == "/dashboard"
    assert "evil" not in resp.headers["Location"]
    resp = advocate_client.get("/auth/login?next=" + quote("/me/profile", safe=""))
    assert location_path(resp) == "/me/profile"


@pytest.mark.parametrize("path", ["/dashboard", "/admin/", "/admin/pending", "/account/password"])
def test_anonymous_redirected_to_login_with_local_next(client, advocate, path):
    resp = client.get(path)
    assert resp.status_code == 302
    loc = urlsplit(resp.headers["Location"])
    assert loc.path == "/auth/login"
    nxt = parse_qs(loc.query)["next"][0]
    assert nxt == path  # a local path, not an absolute URL
    assert resp.headers["Location"].endswith("/auth/login?next=" + quote(path, safe=""))  # and URL-encoded
    # following the whole loop lands where the user wanted to go (or is refused by role)
    after = sign_in(client, advocate.email, next=nxt)
    assert after.status_code == 302
    assert location_path(after) == path


def test_anonymous_post_to_admin_is_redirected_not_run(client, make_user):
    pending = make_user(status=Status.PENDING)
    resp = client.post("/admin/pending/approve", data={"user_id": pending.id})
    assert resp.status_code in (302, 400)
    assert reload(User, pending.id).status == Status.PENDING


# --- roles --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/", "/admin/pending", "/admin/audit"])
def test_advocate_and_staff_get_403_in_admin(advocate_client, staff_client, admin_client, path):
    for c in (advocate_client, staff_client):
        resp = c.get(path)
        assert resp.status_code == 403
        assert "You do not have access to this page" in resp.get_data(as_text=True)
    assert admin_client.get(path).status_code == 200


def test_staff_cannot_approve(staff_client, make_user):
    pending = make_user(status=Status.PENDING)
    resp = post_form(staff_client, "/admin/pending/approve", {"user_id": pending.id}, page="/staff/")
    assert resp.status_code == 403
    assert reload(User, pending.id).status == Status.PENDING


def test_roles_land_on_their_home(app, staff, admin):
    s = app.test_client()
    sign_in(s, staff.email)
    assert s.get("/dashboard").headers["Location"].endswith("/staff/")  # the staff workspace
    assert "Hello, Sam Staff" in s.get("/staff/").get_data(as_text=True)
    a = app.test_client()
    sign_in(a, admin.email)
    resp = a.get("/dashboard")
    assert resp.status_code == 302 and location_path(resp) == "/admin/"


# --- rate limits --------------------------------------------------------------------------------------------


LIMITED_FORMS = {
    "/auth/login": {"email": "someone@example.com", "password": WRONG},
    "/auth/register": {"name": "N", "email": "bad"},
    "/auth/forgot-password": {"email": "someone@example.com"},
}


@pytest.mark.parametrize("path", list(LIMITED_FORMS))
def test_eleventh_post_in_a_minute_is_429(limited, app, path):
    c = app.test_client()
    token = csrf_from(c.get(path).get_data(as_text=True))
    data = {"csrf_token": token, **LIMITED_FORMS[path]}
    codes = [c.post(path, data=data).status_code for _ in range(10)]
    assert 429 not in codes and 500 not in codes
    blocked = c.post(path, data=data)
    assert blocked.status_code == 429
    html = blocked.get_data(as_text=True)
    assert "Too many attempts" in html and "wait a minute" in html
    assert "Traceback" not in html
    # reading the page is not limited
    assert c.get(path).status_code == 200
    # another address is not affected
    other = app.test_client()
    other_token = csrf_from(other.get(path, environ_base={"REMOTE_ADDR": "10.9.8.7"}).get_data(as_text=True))
    ok = other.post(path, data={**data, "csrf_token": other_token}, environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert ok.status_code != 429


def test_rate_limit_lifts_after_a_minute(limited, app):
    c = app.test_client()
    token = csrf_from(c.get("/auth/login").get_data(as_text=True))
    data = {"csrf_token": token, **LIMITED_FORMS["/auth/login"]}
    for _ in range(10):
        c.post("/auth/login", data=data)
    assert c.post("/auth/login", data=data).status_code == 429
    with time_machine.travel(utcnow() + timedelta(seconds=61)):
        assert c.post("/auth/login", data=data).status_code == 401


def test_rate_limited_json_client_gets_json(limited, app):
    c = app.test_client()
    token = csrf_from(c.get("/auth/forgot-password").get_data(as_text=True))
    for _ in range(10):
        c.post("/auth/forgot-password", data={"csrf_token": token, "email": "a@example.com"})
    resp = c.post(
        "/auth/forgot-password",
        data={"csrf_token": token, "email": "a@example.com"},
        headers={"Accept": "application/json"},
    )
    assert resp.status_code == 429
    assert resp.get_json()["error"] == "Too many attempts"


def test_rate_limit_off_in_tests_by_default(app, advocate):
    c = app.test_client()
    for _ in range(12):
        assert sign_in(c, "ghost@example.com", WRONG).status_code == 401


# --- timing tells nothing ------------------------------------------------------------------------------------------


def test_unknown_email_takes_as_long_as_a_wrong_password(real_hash_cost, app, make_user):
    """An unknown address must cost what a known one with a wrong password does: the same hash work
    and the same failure-count statements (which match no row)."""
    import statistics
    import time

    owner = make_user(email="owner@example.com")  # hashed with the production parameters

    def timed_post(email):
        c = app.test_client()
        token = csrf_from(c.get("/auth/login").get_data(as_text=True))
        start = time.perf_counter()
        resp = c.post("/auth/login", data={"csrf_token": token, "email": email, "password": WRONG})
        elapsed = time.perf_counter() - start
        assert resp.status_code == 401
        return elapsed

    known, unknown = [], []
    for i in range(4):  # fewer than LOGIN_MAX_FAILURES: the owner's account does not lock
        known.append(timed_post(owner.email))
        unknown.append(timed_post(f"nobody{i}@example.com"))
    assert reload(User, owner.id).failed_login_count == 4
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2, (known, unknown)


# --- behind a reverse proxy (ProxyFix) -------------------------------------------------------------------------------


@pytest.fixture
def behind_proxy(limited):
    limited.update(PROXY_FIX_X_FOR=1, PROXY_FIX_X_PROTO=1)
    return limited


PROXY = {"REMOTE_ADDR": "10.0.0.2"}


def _hammer_login(c, forwarded_for: str, n: int, environ_base: dict | None = None) -> list[int]:
    environ_base = environ_base or {}
    token = csrf_from(c.get("/auth/login", environ_base=environ_base).get_data(as_text=True))
    data = {"csrf_token": token, **LIMITED_FORMS["/auth/login"]}
    return [
        c.post(
            "/auth/login", data=data, headers={"X-Forwarded-For": forwarded_for}, environ_base=environ_base
        ).status_code
        for _ in range(n)
    ]


def test_behind_a_proxy_the_rate_limit_counts_the_forwarded_client(behind_proxy, app):
    """All requests come from the proxy's address; X-Forwarded-For names the client."""
    a = app.test_client()
    assert 429 not in _hammer_login(a, "203.0.113.7", 10, PROXY)
    assert _hammer_login(a, "203.0.113.7", 1, PROXY) == [429]
    # another client behind the same proxy is not blocked by the first one's attempts
    assert _hammer_login(app.test_client(), "198.51.100.4", 1, PROXY) == [401]


@pytest.fixture
def whoami(app):
    from flask import request

    @app.route("/test-whoami")
    def whoami_view():
        return {"addr": request.remote_addr, "scheme": request.scheme, "host": request.host}

    return app


FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}


def test_behind_a_proxy_the_app_sees_the_client_and_the_scheme(behind_proxy, whoami, client):
    seen = client.get("/test-whoami", headers=FORWARDED, environ_base=PROXY).get_json()
    # X-Forwarded-Host is not trusted unless PROXY_FIX_X_HOST says so
    assert seen == {"addr": "203.0.113.7", "scheme": "https", "host": "localhost"}


def test_without_proxy_fix_forwarded_headers_are_ignored(whoami, client):
    seen = client.get("/test-whoami", headers=FORWARDED, environ_base=PROXY).get_json()
    assert seen == {"addr": "10.0.0.2", "scheme": "http", "host": "localhost"}


def test_without_proxy_fix_a_client_cannot_forge_its_address(limited, app):
    """Off by default: X-Forwarded-For is ignored, so rotating it does not escape the limit."""
    c = app.test_client()
    codes = [code for i in range(11) for code in _hammer_login(c, f"203.0.113.{i}", 1)]
    assert 429 not in codes[:10] and codes[10] == 429


REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def redis_limited(limited):
    """Limits in the machine's Redis, under a key prefix of this test's own (CI runs Redis beside
    PostgreSQL; without it this test skips, which CI counts as a failure)."""
    import uuid

    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    from portal.extensions import limiter

    limited.update(RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=f"portal-test-{uuid.uuid4().hex}")
    # The one Limiter object keeps the first key prefix any app gave it (init_app: `prefix or config`);
    # forget it so that this test's own prefix applies (and the SQLite and PostgreSQL runs do not count
    # each other's attempts).
    saved, limiter._key_prefix = limiter._key_prefix, ""
    yield limited
    limiter._key_prefix = saved


def test_with_redis_the_limit_is_shared_by_every_worker(redis_limited, app):
    """Two workers (two app instances, each with its own connection to the storage) count the same
    address together: 6 failures on one and 4 on the other, and the 11th on either is refused. With
    the default memory storage each worker would count alone."""
    from portal import create_app

    path, body = "/auth/login", LIMITED_FORMS["/auth/login"]
    first = app.test_client()
    token = csrf_from(first.get(path).get_data(as_text=True))
    assert [first.post(path, data={"csrf_token": token, **body}).status_code for _ in range(6)].count(429) == 0

    other_worker = create_app(redis_limited)  # re-initialises the limiter: a new storage connection
    second = other_worker.test_client()
    with other_worker.app_context():
        token = csrf_from(second.get(path).get_data(as_text=True))
        codes = [second.post(path, data={"csrf_token": token, **body}).status_code for _ in range(4)]
        assert 429 not in codes
        assert second.post(path, data={"csrf_token": token, **body}).status_code == 429
        db.engine.dispose()


def test_with_memory_storage_a_new_worker_counts_alone(limited, app):
    """The contrast that makes the test above mean something: memory storage is per process."""
    from portal import create_app

    path, body = "/auth/login", LIMITED_FORMS["/auth/login"]
    first = app.test_client()
    token = csrf_from(first.get(path).get_data(as_text=True))
    for _ in range(6):
        first.post(path, data={"csrf_token": token, **body})
    other_worker = create_app(limited)
    second = other_worker.test_client()
    with other_worker.app_context():
        token = csrf_from(second.get(path).get_data(as_text=True))
        codes = [second.post(path, data={"csrf_token": token, **body}).status_code for _ in range(5)]
        assert 429 not in codes
        db.engine.dispose()
