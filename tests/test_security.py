"""Security defaults: response headers on every kind of page, templates the CSP can serve, cookie flags
(development and production), CSRF on every state change, friendly error pages, and no state change on GET.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import select

from portal import create_app
from portal.extensions import db
from portal.models import AdvocateProfile, Base, OutboxMessage, Reward, Role, Status, User
from portal.services import accounts, privacy, referrals, subscriptions
from portal.services.tokens import fingerprint, make_token
from tests.support import csrf_from, login, make_opp, post_form, reload

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
PROD_SECRET = "a-long-random-production-secret-0123456789abcdef"


# --- helpers -------------------------------------------------------------------------------------------------


def assert_security_headers(resp, where: str = "") -> None:
    h = resp.headers
    csp = h.get("Content-Security-Policy")
    assert csp, f"no CSP on {where} ({resp.status_code})"
    directives = {d.strip().split()[0]: d.strip().split()[1:] for d in csp.split(";") if d.strip()}
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, where
    assert directives.get("frame-ancestors") == ["'none'"], where
    assert directives.get("default-src") == ["'self'"], where
    assert directives.get("script-src") == ["'self'"], where
    assert directives.get("style-src") == ["'self'"], where
    assert directives.get("object-src") == ["'none'"], where
    assert h.get("X-Content-Type-Options") == "nosniff", where
    assert h.get("Referrer-Policy") in {
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    }, where
    assert h.get("X-Frame-Options") == "DENY", where


def dispose(other_app) -> None:
    """Close the pooled connections of an app built inside a test."""
    with other_app.app_context():
        db.engine.dispose()


def cookie(resp, name: str) -> str:
    for c in resp.headers.getlist("Set-Cookie"):
        if c.startswith(name + "="):
            return c
    raise AssertionError(f"no {name} cookie in {resp.headers.getlist('Set-Cookie')}")


def cookie_attrs(set_cookie: str) -> dict[str, str]:
    attrs = {}
    for part in set_cookie.split(";")[1:]:
        k, _, v = part.strip().partition("=")
        attrs[k.lower()] = v
    return attrs


def is_friendly(resp, title: str) -> None:
    body = resp.get_data(as_text=True)
    assert title in body, body[:800]
    assert f"Error {resp.status_code}" in body
    assert "Traceback" not in body and 'File "' not in body and "werkzeug" not in body.lower()
    assert resp.mimetype == "text/html"


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every table, as the database has it now."""
    db.session.rollback()
    out = {}
    for table in Base.metadata.sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        out[table.name] = [tuple(r) for r in db.session.execute(select(table).order_by(*order)).all()]
    db.session.rollback()
    return out


TITLES = {
    400: "Something in that request was not right",
    403: "You do not have access to this page",
    404: "We could not find that page",
    405: "That action is not allowed here",
    413: "That upload is too large",
    429: "Too many attempts",
    500: "Something went wrong on our side",
}


# --- headers on every kind of page -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path,status",
    [
        ("/", 200),
        ("/auth/login", 200),
        ("/auth/register", 200),
        ("/auth/forgot-password", 200),
        ("/healthz", 200),
        ("/dashboard", 302),
        ("/nope", 404),
        ("/auth/logout", 405),
        ("/static/css/portal.css", 200),
        ("/static/js/portal.js", 200),
        ("/static/img/favicon.svg", 200),
        ("/static/missing.css", 404),
    ],
)
def test_headers_on_public_static_redirect_and_error_pages(client, path, status):
    resp = client.get(path)
    assert resp.status_code == status
    assert_security_headers(resp, path)


@pytest.mark.parametrize(
    "path", ["/dashboard", "/me/profile", "/me/points", "/opportunities", "/rewards", "/account/password", "/admin/"]
)
def test_headers_on_logged_in_pages_and_no_caching(advocate_client, path):
    resp = advocate_client.get(path)
    assert resp.status_code in (200, 403)  # /admin/ is a 403 for an advocate: an error page while signed in
    assert_security_headers(resp, path)
    assert "no-store" in resp.headers.get("Cache-Control", "")


@pytest.mark.parametrize("path", ["/admin/", "/admin/pending", "/admin/audit", "/admin/nope"])
def test_headers_on_admin_pages(admin_client, path):
    resp = admin_client.get(path)
    assert resp.status_code in (200, 404)
    assert_security_headers(resp, path)


def test_headers_on_csrf_400_and_post_redirect(client, advocate):
    assert_security_headers(client.post("/auth/login", data={"email": advocate.email}), "csrf 400")
    resp = login(client, advocate.email)
    assert resp.status_code == 302
    assert_security_headers(resp, "login redirect")


def test_headers_on_500(app):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.route("/test-boom-headers")
    def boom():
        raise RuntimeError("kaboom")

    resp = app.test_client().get("/test-boom-headers")
    assert resp.status_code == 500
    assert_security_headers(resp, "500")


def test_no_hsts_in_development(client):
    assert "Strict-Transport-Security" not in client.get("/").headers


def test_hsts_and_secure_cookies_in_production(app_config, app):
    prod = create_app({**app_config, "PORTAL_ENV": "production", "SECRET_KEY": PROD_SECRET})
    resp = prod.test_client().get("/auth/login", base_url="https://localhost")
    hsts = resp.headers["Strict-Transport-Security"]
    assert "max-age=31536000" in hsts
    assert_security_headers(resp, "production")
    dispose(prod)


# --- templates the CSP can serve -----------------------------------------------------------------------------------


class _InlineFinder(HTMLParser):
    """Finds what a CSP without 'unsafe-inline' would block: inline scripts, style blocks and attributes,
    event-handler attributes and javascript: URLs."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_script = False
        self._script_text = ""

    def handle_starttag(self, tag, attrs):
        names = {k.lower(): (v or "") for k, v in attrs}
        if tag == "script":
            self._in_script = "src" not in names
            self._script_text = ""
            if "src" not in names and names.get("type", "") not in ("application/json", "application/ld+json"):
                self.problems.append("<script> without src")
        if tag == "style":
            self.problems.append("<style> block")
        if "style" in names:
            self.problems.append(f"style= attribute on <{tag}>")
        for k, v in names.items():
            if k.startswith("on"):
                self.problems.append(f"{k}= handler on <{tag}>")
            if k in ("href", "src", "action", "formaction") and v.strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL on <{tag}>")

    def handle_data(self, data):
        if self._in_script:
            self._script_text += data

    def handle_endtag(self, tag):
        if tag == "script" and self._in_script and self._script_text.strip():
            self.problems.append("inline script content")
        if tag == "script":
            self._in_script = False


def inline_problems(html: str) -> list[str]:
    finder = _InlineFinder()
    finder.feed(html)
    finder.close()
    return finder.problems


def web_templates() -> list[Path]:
    # email/ is rendered into messages, never served under the CSP; mail clients need inline styles there.
    return sorted(p for p in TEMPLATES.rglob("*.html") if "email" not in p.relative_to(TEMPLATES).parts)


def test_template_scan_finds_what_the_csp_forbids():
    """The scanner itself: it must catch each thing the CSP blocks."""
    assert inline_problems("<script>alert(1)</script>")
    assert inline_problems("<style>p{}</style>")
    assert inline_problems('<p style="color:red">x</p>')
    assert inline_problems('<a href="#" onclick="x()">x</a>')
    assert inline_problems('<a href="javascript:alert(1)">x</a>')
    assert inline_problems('<script src="/static/js/portal.js" defer></script>') == []
    # Jinja syntax inside attributes is fine for the scanner
    assert inline_problems('<a href="{{ url_for(\'x\') }}" class="{% if a %}b{% endif %}">x</a>') == []


def test_no_template_has_inline_script_or_style():
    files = web_templates()
    assert len(files) > 20 and (TEMPLATES / "base.html") in files
    found = {}
    for f in files:
        text = f.read_text()
        problems = inline_problems(text)
        # raw-text regexes too, in case a tag is split by Jinja in a way the parser reads differently
        if re.search(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>\s*\S", text, re.I):
            problems.append("inline <script> (regex)")
        if re.search(r"<style\b", text, re.I) or re.search(r"\sstyle\s*=", text, re.I):
            problems.append("style (regex)")
        if problems:
            found[str(f.relative_to(TEMPLATES))] = problems
    assert found == {}


def test_no_inline_script_or_style_in_templates():
    """Plain-text scan: no <script> tag without src at all (not even a data block), no <style>, no style=."""
    for f in TEMPLATES.rglob("*.html"):
        if "email" in f.parts:
            continue  # email clients need inline styles; emails are not served under the CSP
        body = f.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body), f
        assert "<style" not in body and " style=" not in body, f


def test_email_templates_have_no_script_at_all():
    for f in sorted((TEMPLATES / "email").glob("*.html")):
        assert not re.search(r"<script\b|\son[a-z]+\s*=|javascript:", f.read_text(), re.I), f.name


def test_base_templates_load_scripts_and_styles_from_self(client):
    html = client.get("/").get_data(as_text=True)
    scripts = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    styles = re.findall(
        r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"|<link[^>]*href="([^"]+)"[^>]*rel="stylesheet"', html
    )
    assert scripts and all(s.startswith("/static/") for s in scripts)
    hrefs = [a or b for a, b in styles]
    assert hrefs and all(h.startswith("/static/") for h in hrefs)


# --- cookies ---------------------------------------------------------------------------------------------------------


def test_session_cookie_httponly_samesite_lax(client, advocate):
    resp = login(client, advocate.email)
    assert resp.status_code == 302
    attrs = cookie_attrs(cookie(resp, "session"))
    assert "httponly" in attrs
    assert attrs["samesite"] == "Lax"
    assert attrs.get("path") == "/"
    assert "secure" not in attrs  # development runs on plain http


def test_remember_cookie_httponly_samesite_lax(client, advocate):
    resp = login(client, advocate.email, remember=True)
    assert resp.status_code == 302
    attrs = cookie_attrs(cookie(resp, "remember_token"))
    assert "httponly" in attrs
    assert attrs["samesite"] == "Lax"
    assert "secure" not in attrs
    assert "expires" in attrs  # it is a persistent cookie


def test_no_remember_cookie_without_remember(client, advocate):
    resp = login(client, advocate.email)
    assert not [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("remember_token=")]


def _https_post_form(client, url, data):
    page = client.get(url, base_url="https://localhost")
    token = csrf_from(page.get_data(as_text=True))
    return client.post(
        url,
        data={"csrf_token": token, **data},
        base_url="https://localhost",
        headers={"Referer": "https://localhost" + url},
    )


def test_production_cookies_are_secure(app_config, app, advocate):
    prod = create_app({**app_config, "PORTAL_ENV": "production", "SECRET_KEY": PROD_SECRET})
    assert prod.config["SESSION_COOKIE_SECURE"] is True
    assert prod.config["REMEMBER_COOKIE_SECURE"] is True
    assert prod.config["PREFERRED_URL_SCHEME"] == "https"
    c = prod.test_client()
    resp = _https_post_form(
        c, "/auth/login", {"email": advocate.email, "password": "correct-horse-battery-9", "remember": "y"}
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    for name in ("session", "remember_token"):
        attrs = cookie_attrs(cookie(resp, name))
        assert "secure" in attrs and "httponly" in attrs and attrs["samesite"] == "Lax", name
    assert c.get("/dashboard", base_url="https://localhost").status_code == 200
    dispose(prod)


def test_production_cookies_secure_even_if_the_mapping_says_otherwise(app_config, app):
    prod = create_app(
        {
            **app_config,
            "PORTAL_ENV": "production",
            "SECRET_KEY": PROD_SECRET,
            "SESSION_COOKIE_SECURE": False,
            "REMEMBER_COOKIE_SECURE": False,
        }
    )
    assert prod.config["SESSION_COOKIE_SECURE"] is True and prod.config["REMEMBER_COOKIE_SECURE"] is True
    resp = prod.test_client().get("/auth/login", base_url="https://localhost")
    assert "secure" in cookie_attrs(cookie(resp, "session"))
    dispose(prod)


def test_production_login_page_sets_secure_cookies_and_hsts(app_config):
    app_config.update(PORTAL_ENV="production", SECRET_KEY="a-long-random-production-secret")
    prod = create_app(app_config)
    assert prod.config["SESSION_COOKIE_SECURE"] and prod.config["REMEMBER_COOKIE_SECURE"]
    resp = prod.test_client().get("/auth/login")
    assert "Secure" in resp.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in resp.headers
    dispose(prod)


def test_production_https_post_without_referrer_is_refused(app_config, app, advocate):
    """Flask-WTF's strict referrer check on HTTPS: a cross-site form post with a stolen token is refused."""
    prod = create_app({**app_config, "PORTAL_ENV": "production", "SECRET_KEY": PROD_SECRET})
    c = prod.test_client()
    token = csrf_from(c.get("/auth/login", base_url="https://localhost").get_data(as_text=True))
    resp = c.post(
        "/auth/login",
        data={"csrf_token": token, "email": advocate.email, "password": "correct-horse-battery-9"},
        base_url="https://localhost",
        headers={"Referer": "https://evil.example.com/"},
    )
    assert resp.status_code == 400
    is_friendly(resp, TITLES[400])
    assert c.get("/dashboard", base_url="https://localhost").status_code == 302  # not signed in
    dispose(prod)


# --- CSRF ---------------------------------------------------------------------------------------------------------


def test_login_without_csrf_is_friendly_400_and_does_not_sign_in(client, advocate):
    before = reload(User, advocate.id)
    failures = before.failed_login_count
    resp = client.post("/auth/login", data={"email": advocate.email, "password": "correct-horse-battery-9"})
    assert resp.status_code == 400
    is_friendly(resp, TITLES[400])
    assert "form expired" in resp.get_data(as_text=True)
    assert not [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("remember_token=")]
    assert client.get("/dashboard").status_code == 302
    after = reload(User, advocate.id)
    assert after.failed_login_count == failures and after.last_login_at == before.last_login_at


def test_login_with_wrong_password_and_no_csrf_counts_no_failure(client, advocate):
    resp = client.post("/auth/login", data={"email": advocate.email, "password": "wrong-password-123"})
    assert resp.status_code == 400
    assert reload(User, advocate.id).failed_login_count == 0


def test_register_without_csrf_creates_nothing(client, app, mailbox):
    before = snapshot()
    resp = client.post(
        "/auth/register",
        data={
            "name": "Nora",
            "email": "nora@example.com",
            "company": "Globex",
            "job_title": "CTO",
            "password": "purple-otter-skates-42",
            "confirm": "purple-otter-skates-42",
            "accept_terms": "y",
        },
    )
    assert resp.status_code == 400
    is_friendly(resp, TITLES[400])
    assert snapshot() == before
    assert db.session.scalar(select(User).where(User.email == "nora@example.com")) is None
    assert db.session.scalars(select(OutboxMessage)).all() == []
    assert mailbox.to("nora@example.com") == []


def test_logout_without_csrf_keeps_the_session(advocate_client, advocate):
    token_before = reload(User, advocate.id).session_token
    resp = advocate_client.post("/auth/logout")
    assert resp.status_code == 400
    is_friendly(resp, TITLES[400])
    assert advocate_client.get("/dashboard").status_code == 200
    assert reload(User, advocate.id).session_token == token_before


def test_logout_with_another_sessions_token_is_refused(app, advocate_client, advocate, make_user):
    other = app.test_client()
    foreign_token = csrf_from(other.get("/auth/login").get_data(as_text=True))
    resp = advocate_client.post("/auth/logout", data={"csrf_token": foreign_token})
    assert resp.status_code == 400
    assert advocate_client.get("/dashboard").status_code == 200


def test_approve_without_csrf_changes_nothing(admin_client, make_user, mailbox):
    applicant = make_user(Role.ADVOCATE, Status.PENDING, email="pending.pat@example.com", name="Pending Pat")
    before = snapshot()
    resp = admin_client.post("/admin/pending/approve", data={"user_id": str(applicant.id)})
    assert resp.status_code == 400
    is_friendly(resp, TITLES[400])
    assert snapshot() == before
    assert reload(User, applicant.id).status == Status.PENDING
    assert mailbox.to("pending.pat@example.com") == []
    # the same form with its token does approve: the 400 was the missing token
    resp = post_form(admin_client, "/admin/pending/approve", {"user_id": str(applicant.id)}, page="/admin/pending")
    assert resp.status_code == 302
    assert reload(User, applicant.id).status == Status.ACTIVE


def test_decline_with_garbage_token_changes_nothing(admin_client, make_user):
    applicant = make_user(Role.ADVOCATE, Status.PENDING, email="pending.quinn@example.com")
    resp = admin_client.post("/admin/pending/decline", data={"user_id": str(applicant.id), "csrf_token": "x" * 40})
    assert resp.status_code == 400
    is_friendly(resp, TITLES[400])
    assert reload(User, applicant.id).status == Status.PENDING


@pytest.mark.parametrize("path", ["/auth/login", "/auth/register", "/auth/logout", "/admin/pending/approve"])
def test_csrf_missing_is_friendly_400(admin_client, path):
    resp = admin_client.post(path, data={"email": "x@example.com", "password": "x", "user_id": "1"})
    assert resp.status_code == 400
    assert b"form expired" in resp.data and b"Traceback" not in resp.data


def test_csrf_error_as_json_for_json_clients(client):
    resp = client.post("/auth/login", data={}, headers={"Accept": "application/json"})
    assert resp.status_code == 400
    assert resp.is_json and resp.get_json()["error"] == TITLES[400]


def test_every_post_form_on_served_pages_carries_a_csrf_token(admin_client, advocate_client, client):
    pages = {
        client: ["/", "/auth/login", "/auth/register", "/auth/forgot-password"],
        advocate_client: [
            "/dashboard",
            "/me/profile",
            "/account/password",
            "/me/preferences",
            "/me/availability",
            "/me/email",
            "/me/delete",
            "/rewards",
            "/account/status",
        ],
        admin_client: [
            "/admin/",
            "/admin/pending",
            "/admin/settings",
            "/admin/points",
            "/admin/rewards/new",
            "/admin/opportunities/new",
            "/admin/badges",
        ],
    }
    checked = 0
    for c, paths in pages.items():
        for path in paths:
            html = c.get(path).get_data(as_text=True)
            for form in re.findall(r"<form\b[^>]*>.*?</form>", html, re.S | re.I):
                if re.search(r'method="post"', form[:300], re.I):
                    assert 'name="csrf_token"' in form, (path, form[:300])
                    checked += 1
    assert checked >= 10


# --- friendly error pages ----------------------------------------------------------------------------------------


def test_400_friendly(admin_client, make_user):
    resp = post_form(admin_client, "/admin/pending/approve", {"user_id": "not-a-number"}, page="/admin/pending")
    assert resp.status_code == 400
    is_friendly(resp, TITLES[400])


def test_403_friendly(advocate_client, staff_client):
    for c in (advocate_client, staff_client):
        resp = c.get("/admin/pending")
        assert resp.status_code == 403
        is_friendly(resp, TITLES[403])


def test_404_friendly(client, advocate_client):
    for c, path in (
        (client, "/no/such/page"),
        (advocate_client, "/opportunities/987654"),
        (advocate_client, "/opportunities/99999999999999999999"),
    ):
        resp = c.get(path)
        assert resp.status_code == 404, path
        is_friendly(resp, TITLES[404])


def test_404_inside_admin_uses_admin_layout(admin_client):
    resp = post_form(admin_client, "/admin/pending/approve", {"user_id": "987654"}, page="/admin/pending")
    assert resp.status_code == 404
    is_friendly(resp, TITLES[404])


def test_405_friendly_with_allow_header(client, admin_client):
    resp = client.get("/auth/logout")
    assert resp.status_code == 405
    is_friendly(resp, TITLES[405])
    assert "POST" in resp.headers["Allow"] and "GET" not in resp.headers["Allow"]
    resp = admin_client.get("/admin/pending/approve")
    assert resp.status_code == 405
    is_friendly(resp, TITLES[405])


def test_413_friendly(client, app):
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit == 2 * 1024 * 1024
    resp = client.post("/auth/login", data={"email": "x@example.com", "password": "a" * (limit + 1)})
    assert resp.status_code == 413
    is_friendly(resp, TITLES[413])
    # just under the limit is not refused for size (it is a CSRF 400 instead)
    assert client.post("/auth/login", data={"password": "a" * (limit - 1000)}).status_code == 400


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xx",
        "application/json",
        "application/octet-stream",
    ],
)
def test_413_friendly_when_signed_in(app, advocate_client, content_type):
    """Regression: the error page's sign-out form read the oversized body again, inside the error
    handler, and the user got a bare 500 instead of this page."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    resp = advocate_client.post(
        "/me/profile", data=b"x" * (app.config["MAX_CONTENT_LENGTH"] + 10), content_type=content_type
    )
    assert resp.status_code == 413
    is_friendly(resp, TITLES[413])
    assert 'action="/auth/logout"' in resp.get_data(as_text=True)  # the page still offers sign-out
    assert advocate_client.get("/dashboard").status_code == 200


def test_malformed_json_body_gives_friendly_400_when_signed_in(app, advocate_client):
    """Regression: the sign-out form on the error page parsed the bad JSON again inside the handler."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    for url in ("/auth/logout", "/me/profile"):
        resp = advocate_client.post(url, data=b"{not json", content_type="application/json")
        assert resp.status_code == 400, url
        is_friendly(resp, TITLES[400])
    assert advocate_client.get("/dashboard").status_code == 200


def test_413_configurable(app_config):
    app_config["MAX_CONTENT_LENGTH"] = 1024
    small = create_app(app_config)
    resp = small.test_client().post("/auth/register", data={"name": "x" * 2000})
    assert resp.status_code == 413
    assert TITLES[413] in resp.get_data(as_text=True)
    dispose(small)


@pytest.fixture
def rate_limited(app_config):
    app_config.update(RATELIMIT_ENABLED=True, AUTH_RATE_LIMIT="3 per minute")
    return app_config


def test_429_friendly(rate_limited, app, client, advocate):
    codes = []
    for _ in range(3):
        codes.append(login(client, advocate.email, password="wrong-password-123").status_code)
    assert codes == [401, 401, 401]
    resp = login(client, advocate.email)  # even the right password waits now
    assert resp.status_code == 429
    is_friendly(resp, TITLES[429])
    assert_security_headers(resp, "429")
    assert int(resp.headers["Retry-After"]) > 0
    assert client.get("/dashboard").status_code == 302  # not signed in
    # GETs of the same page are not limited
    assert client.get("/auth/login").status_code == 200


def test_429_on_register_and_forgot_password(rate_limited, app, client):
    for url in ("/auth/forgot-password", "/auth/register"):
        statuses = [post_form(client, url, {"email": "nobody@example.com"}).status_code for _ in range(4)]
        assert statuses[-1] == 429 and 429 not in statuses[:3], (url, statuses)


def _boom_app(app, propagate_key: str):
    if propagate_key == "PROPAGATE_EXCEPTIONS":
        app.config["PROPAGATE_EXCEPTIONS"] = False
    else:
        app.config["TESTING"] = False

    @app.route("/test-boom")
    def boom():
        from portal.models import Reward

        db.session.add(Reward(name="Written before the crash", points_cost=10))
        db.session.flush()
        raise RuntimeError("secret internal detail 42")

    return app


@pytest.mark.parametrize("how", ["PROPAGATE_EXCEPTIONS", "TESTING"])
def test_500_friendly_no_traceback_and_rolled_back(app, how):
    _boom_app(app, how)
    resp = app.test_client().get("/test-boom")
    assert resp.status_code == 500
    is_friendly(resp, TITLES[500])
    body = resp.get_data(as_text=True)
    assert "secret internal detail" not in body and "RuntimeError" not in body
    db.session.rollback()
    assert db.session.scalars(select(Reward)).all() == []  # the half-done write was not committed


def test_500_as_json(app):
    _boom_app(app, "PROPAGATE_EXCEPTIONS")
    resp = app.test_client().get("/test-boom", headers={"Accept": "application/json"})
    assert resp.status_code == 500
    assert resp.get_json() == {"error": TITLES[500], "detail": "We have been told. Please try again in a moment."}


def test_404_as_json(client):
    resp = client.get("/nope", headers={"Accept": "application/json"})
    assert resp.status_code == 404 and resp.get_json()["error"] == TITLES[404]


def test_500_page_renders_for_signed_in_user(app, advocate):
    _boom_app(app, "PROPAGATE_EXCEPTIONS")
    c = app.test_client()
    assert login(c, advocate.email).status_code == 302
    resp = c.get("/test-boom")
    assert resp.status_code == 500
    is_friendly(resp, TITLES[500])
    assert c.get("/dashboard").status_code == 200  # the session survives a server error


# --- no state change on GET -------------------------------------------------------------------------------------------


POST_ONLY = {
    "auth.logout",
    "auth.resend_verification",
    "auth.verify_email_confirm",
    "admin.approve",
    "admin.decline",
    "admin.opportunity_duplicate",
    "admin.opportunity_status",
    "admin.participation_action",
    "admin.redemption_cancel",
    "admin.redemption_fulfil",
    "opportunities.request_seat",
    "opportunities.withdraw",
    "profile.add_blackout",
    "profile.confirm",
    "profile.delete_blackout",
    "profile.save_activities",
    "profile.save_communication",
    "recognition.cancel_redemption",
    "recognition.redeem",
}
GET_ALLOWED = {"static", "main.healthz"}


def test_state_changing_endpoints_refuse_get(app):
    rules = {}
    for rule in app.url_map.iter_rules():
        rules.setdefault(rule.endpoint, set()).update(rule.methods)
    missing = POST_ONLY - rules.keys()
    assert not missing, f"endpoints renamed? {missing}"
    for endpoint in POST_ONLY:
        assert "GET" not in rules[endpoint] and "POST" in rules[endpoint], endpoint
    for endpoint in GET_ALLOWED:
        assert rules[endpoint] <= {"GET", "HEAD", "OPTIONS"}, endpoint
    # anything with an action-like name must be POST-only
    action = re.compile(
        r"^(logout|approve|decline|confirm|resend_verification|redeem|cancel_redemption|withdraw|"
        r"redemption_fulfil|redemption_cancel|opportunity_duplicate|opportunity_status|"
        r"participation_action|add_blackout|delete_blackout|save_.*|request_seat|verify_email_confirm)$"
    )
    matched = 0
    for endpoint, methods in rules.items():
        if action.match(endpoint.split(".", 1)[-1]):
            matched += 1
            assert "GET" not in methods, endpoint
    assert matched >= len(POST_ONLY)


def test_no_get_route_allows_put_patch_delete(app):
    for rule in app.url_map.iter_rules():
        assert not rule.methods & {"PUT", "PATCH", "DELETE"}, rule


@pytest.mark.parametrize(
    "endpoint,url",
    [
        ("auth.logout", "/auth/logout"),
        ("admin.approve", "/admin/pending/approve"),
        ("admin.decline", "/admin/pending/decline"),
        ("auth.resend_verification", "/auth/resend-verification"),
    ],
)
def test_get_on_post_only_endpoint_is_405_and_changes_nothing(admin_client, endpoint, url):
    before = snapshot()
    resp = admin_client.get(url)
    assert resp.status_code == 405
    assert snapshot() == before
    assert admin_client.get("/admin/").status_code == 200  # still signed in after GET /auth/logout


def test_get_verify_link_does_not_verify(client, make_user):
    u = make_user(Role.ADVOCATE, Status.UNVERIFIED, email="unv@example.com")
    token = make_token(accounts.VERIFY, u.id, accounts._verify_state(u))
    resp = client.get(f"/auth/verify/{token}")
    assert resp.status_code == 200
    assert reload(User, u.id).status == Status.UNVERIFIED
    # the POST with the form's token does
    resp = post_form(client, f"/auth/verify/{token}", {})
    assert resp.status_code == 302
    assert reload(User, u.id).status == Status.PENDING


@pytest.fixture
def crawl_data(app, make_user, advocate, admin):
    """Rows for every GET route with an id or a token in its URL."""

    unverified = make_user(Role.ADVOCATE, Status.UNVERIFIED, email="crawl.unverified@example.com")
    # No profile for the advocate: an account activated before profiles were created at activation has
    # none, and a page that creates one on a GET (as the dashboard once did) must show up here.
    opp_id = make_opp("speaking", title="Crawl talk")
    reward = Reward(name="Crawl mug", points_cost=50, stock=5)
    db.session.add(reward)
    db.session.commit()
    values = {
        "opp_id": opp_id,
        "reward_id": reward.id,
        "participation_id": 1,
        "redemption_id": 1,
        "blackout_id": 1,
        "user_id": advocate.id,
        "list_kind": "regions",  # the admin's Lists pages
        "tag_kind": "topics",
    }
    tokens = {
        "auth.verify_email": make_token(accounts.VERIFY, unverified.id, accounts._verify_state(unverified)),
        "auth.reset_password": make_token(accounts.RESET, advocate.id, accounts._reset_state(advocate)),
        "profile.confirm_email_change": make_token(
            privacy.CHANGE_EMAIL, advocate.id, fingerprint(advocate.email), e="ada.new@example.com"
        ),
        "profile.unsubscribe": make_token(subscriptions.UNSUBSCRIBE, advocate.id, "all"),
        "profile.confirm_current_address": make_token(
            privacy.CHANGE_EMAIL_OWNER, advocate.id, fingerprint(advocate.email), e="ada.new@example.com"
        ),
        "profile.confirm_delete": make_token(
            privacy.DELETE_ACCOUNT, advocate.id, fingerprint(advocate.email, advocate.status.value)
        ),
        "auth.invited": "no-such-invitation",  # a link that is not valid: its page, and no write
    }
    code = referrals.referral_link(reload(User, advocate.id)).rsplit("/", 1)[-1]
    db.session.rollback()
    return values, tokens, code


def _get_urls(app, values, tokens, code):
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        args = {}
        for arg in rule.arguments:
            if arg == "token":
                args[arg] = tokens[rule.endpoint]
            elif arg == "code":
                args[arg] = code
            elif arg == "action":
                args[arg] = "approve"
            elif arg in values:
                args[arg] = values[arg]
            else:
                assert arg.endswith("_id"), (rule.endpoint, arg)
                args[arg] = 1  # ids of rows this fixture does not make: the page answers 404, and writes nothing
        with app.test_request_context():
            from flask import url_for

            urls.append((rule.endpoint, url_for(rule.endpoint, **args)))
    return urls


def test_no_get_request_changes_the_database(app, crawl_data, advocate, admin, staff):
    values, tokens, code = crawl_data
    urls = _get_urls(app, values, tokens, code)
    assert len(urls) > 30
    clients = {
        "anonymous": app.test_client(),
        "advocate": app.test_client(),
        "staff": app.test_client(),
        "admin": app.test_client(),
    }
    for who, user in (("advocate", advocate), ("staff", staff), ("admin", admin)):
        assert login(clients[who], user.email).status_code == 302
    before = snapshot()
    seen_ok = 0
    for who, c in clients.items():
        for endpoint, url in urls:
            resp = c.get(url)
            assert resp.status_code < 500, (who, endpoint, url, resp.status_code)
            assert_security_headers(resp, f"{who} {url}")
            if resp.status_code == 200 and resp.mimetype == "text/html":
                seen_ok += 1
                problems = inline_problems(resp.get_data(as_text=True))
                assert problems == [], (who, url, problems)
    after = snapshot()
    # search_pending is the search index's own work queue: requests drain it (rows only go away)
    assert set(after.pop("search_pending")) <= set(before.pop("search_pending"))
    changed = {t for t in before if before[t] != after[t]}
    assert changed == set(), {t: (before[t], after[t]) for t in changed}
    assert seen_ok > 40
    # the signed-in clients are still signed in: no GET signed anyone out
    for who in ("advocate", "staff", "admin"):
        assert clients[who].get("/dashboard").status_code in (200, 302)
        assert clients[who].get("/auth/login").status_code == 302  # signed in users are sent on
    assert reload(User, advocate.id).email == advocate.email  # the email-change link was not applied


def test_dashboard_of_an_advocate_without_a_profile_writes_nothing(app, advocate_client, advocate):
    """The dashboard used to create the missing profile and commit, on a GET."""
    db.session.rollback()
    before = snapshot()
    resp = advocate_client.get("/dashboard")
    assert resp.status_code == 200 and "My profile" in resp.get_data(as_text=True)
    assert snapshot() == before
    assert db.session.get(AdvocateProfile, advocate.id) is None


@pytest.mark.parametrize(
    "endpoint",
    ["profile.preview", "profile.export_data", "profile.edit", "profile.preferences", "profile.availability"],
)
def test_profile_pages_of_an_advocate_without_a_profile_write_nothing(app, advocate_client, advocate, endpoint):
    with app.test_request_context():
        from flask import url_for

        url = url_for(endpoint)
    db.session.rollback()
    before = snapshot()
    assert advocate_client.get(url).status_code == 200
    assert snapshot() == before


def test_referral_get_only_touches_the_session(app, client, advocate):
    code = referrals.referral_link(reload(User, advocate.id)).rsplit("/", 1)[-1]
    db.session.rollback()
    before = snapshot()
    resp = client.get(f"/r/{code}")
    assert resp.status_code == 302
    assert snapshot() == before
    with client.session_transaction() as sess:
        assert sess["referred_by"] == advocate.id


def test_redemption_routes_post_only(app):
    # redemption ids are handled by POST routes only; GETting one is 405 for every id-bearing action
    c = app.test_client()
    for url in ("/me/redemptions/1/cancel", "/admin/redemptions/1/fulfil", "/admin/redemptions/1/cancel"):
        assert c.get(url).status_code == 405, url


# --- production answers only for its own host ------------------------------------------------------------------------


def test_production_refuses_a_forged_host_with_a_plain_400(app_config, app, advocate, mailbox):
    prod = create_app(
        {
            **app_config,
            "PORTAL_ENV": "production",
            "SECRET_KEY": PROD_SECRET,
            "PUBLIC_BASE_URL": "https://advocates.example.com",
        }
    )
    try:
        c = prod.test_client()
        for path in ("/auth/forgot-password", "/", "/no-such-page"):
            resp = c.get(path, base_url="https://evil.example")
            assert resp.status_code == 400, path
            assert "host" in resp.get_data(as_text=True) and resp.headers["X-Content-Type-Options"] == "nosniff"
        resp = c.post("/auth/forgot-password", data={"email": advocate.email}, base_url="https://evil.example")
        assert resp.status_code == 400
        ok = c.get("/auth/forgot-password", base_url="https://advocates.example.com")
        assert ok.status_code == 200
        assert_security_headers(ok, "production, own host")
    finally:
        with prod.app_context():
            db.engine.dispose()


def test_production_behind_a_proxy_checks_the_forwarded_host(app_config, app):
    prod = create_app(
        {
            **app_config,
            "PORTAL_ENV": "production",
            "SECRET_KEY": PROD_SECRET,
            "PUBLIC_BASE_URL": "https://advocates.example.com",
            "PROXY_FIX_X_HOST": 1,
            "PROXY_FIX_X_PROTO": 1,
        }
    )
    try:
        c = prod.test_client()
        inner = {"base_url": "http://127.0.0.1:8000"}  # the proxy talks to the app on loopback
        evil = c.get("/auth/login", headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}, **inner)
        assert evil.status_code == 400
        ok = c.get(
            "/auth/login", headers={"X-Forwarded-Host": "advocates.example.com", "X-Forwarded-Proto": "https"}, **inner
        )
        assert ok.status_code == 200
    finally:
        with prod.app_context():
            db.engine.dispose()


def test_audit_events_name_the_user_behind_current_user(app, advocate_client, advocate):
    """Views pass current_user (a LocalProxy) on to services: the audit row names a "user", not a
    "localproxy" (the erasure finds events about a person by that name)."""
    from flask_login import current_user

    from portal.models import AuditEvent
    from portal.services import audit

    with app.test_request_context():
        from flask_login import login_user

        login_user(db.session.get(User, advocate.id))
        event = audit.record(db.session, "test.proxy", None, current_user)
        assert (event.target_type, event.target_id) == ("user", advocate.id)
    db.session.rollback()
    assert db.session.query(AuditEvent).filter_by(target_type="localproxy").count() == 0


def test_registration_and_reset_answer_no_sooner_than_the_floor(app_config, tmp_path, monkeypatch):
    """portal.security.even_timing: a POST to either waits out AUTH_TIMING_FLOOR_SECONDS; GET does not wait
    (told by the waits even_timing asks for, not by a clock: a slow first GET on a busy machine is no failure)."""
    import time as _time

    from portal import create_app, security
    from portal.config import AUTH_TIMING_FLOOR, ConfigError

    assert create_app(dict(app_config)).config["AUTH_TIMING_FLOOR_SECONDS"] == 0.0  # tests: no floor
    assert AUTH_TIMING_FLOOR == 0.05
    floored = create_app(dict(app_config, AUTH_TIMING_FLOOR_SECONDS=0.3, RATELIMIT_ENABLED=False))
    c = floored.test_client()
    waits: list[float] = []
    real_sleep = _time.sleep

    def recorded_sleep(seconds):
        waits.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(security.time, "sleep", recorded_sleep)
    for path in ("/auth/forgot-password", "/auth/register"):
        waits.clear()
        assert c.get(path).status_code == 200
        assert waits == []  # GET is not delayed
        token = csrf_from(c.get(path).get_data(as_text=True))
        start = _time.monotonic()
        c.post(path, data={"csrf_token": token, "email": "nobody@example.com"})
        assert _time.monotonic() - start >= 0.3, path
        assert len(waits) == 1 and 0 < waits[0] <= 0.3, (path, waits)
    for bad in (-1, 6, "soon", True):
        with pytest.raises(ConfigError, match="AUTH_TIMING_FLOOR_SECONDS"):
            create_app(dict(app_config, AUTH_TIMING_FLOOR_SECONDS=bad))
