"""Security wiring: headers, role guards, safe redirects, session-token user loading."""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlsplit

from flask import abort, current_app, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.exceptions import SecurityError
from werkzeug.wsgi import get_host

from portal.extensions import db, login_manager
from portal.models import Role, Status, User

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'self'; "
    "object-src 'none'; frame-ancestors 'none'"
)


def set_security_headers(response):
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if current_app.config["SESSION_COOKIE_SECURE"]:
        h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if current_user.is_authenticated:
        h.setdefault("Cache-Control", "no-store")
    return response


class TrustedHostsMiddleware:
    """Answer a request for a host outside TRUSTED_HOSTS with a plain 400.

    Flask 3.1 refuses such a request too, but only once its request context exists without a URL
    adapter, so the friendly error page (which builds links) fails and the client gets a 500."""

    BODY = b"Bad Request: this server does not answer for that host name.\n"

    def __init__(self, wsgi_app, config):
        self.wsgi_app = wsgi_app
        self.config = config

    def __call__(self, environ, start_response):
        trusted = self.config.get("TRUSTED_HOSTS")
        if trusted:
            try:
                get_host(environ, trusted)
            except SecurityError:
                start_response(
                    "400 Bad Request",
                    [
                        ("Content-Type", "text/plain; charset=utf-8"),
                        ("Content-Length", str(len(self.BODY))),
                        ("X-Content-Type-Options", "nosniff"),
                        ("Content-Security-Policy", CSP),
                        ("Cache-Control", "no-store"),
                    ],
                )
                return [self.BODY]
        return self.wsgi_app(environ, start_response)


@login_manager.user_loader
def load_user(token: str) -> User | None:
    if not token or len(token) > 64:
        return None
    user = db.session.scalar(select(User).where(User.session_token == token))
    if user is None or not user.is_active:
        return None
    return user


def is_safe_next(target: str | None) -> bool:
    """Only a local path: no scheme, no host, no '//' or '\\' tricks."""
    if not target or not isinstance(target, str) or len(target) > 2000:
        return False
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return False
    if any(ord(c) < 32 for c in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def safe_next(target: str | None, default_endpoint: str = "main.dashboard") -> str:
    return target if is_safe_next(target) else url_for(default_endpoint)


def roles_required(*roles: Role, approved: bool = True, pending_too: bool = False):
    """Anonymous -> login (with a local next); wrong role -> 403; not yet approved -> status page.

    ``pending_too``: an applicant who confirmed their email and waits for approval gets in as well
    (their own data and account: download and delete, which the GDPR does not make wait)."""
    allowed = (Status.ACTIVE, Status.PENDING) if pending_too else (Status.ACTIVE,)

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if approved and current_user.status not in allowed:
                return redirect(url_for("main.account_status"))
            if roles and current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


login_required_active = roles_required()
advocate_required = roles_required(Role.ADVOCATE)
advocate_or_applicant_required = roles_required(Role.ADVOCATE, pending_too=True)
staff_required = roles_required(Role.STAFF, Role.ADMIN)
admin_required = roles_required(Role.ADMIN)


def client_ip() -> str | None:
    return request.remote_addr


def even_timing(view):
    """Answer a POST no sooner than AUTH_TIMING_FLOOR_SECONDS after it arrived (registration, password
    reset): defence in depth against telling who has an account by timing. The causes are removed at
    the root (no SMTP and no search index write in the request, the same lookups for both answers);
    what remains is the database writing an account for a new address and not for a taken one, a
    fraction of a millisecond that the floor hides. GET is not delayed."""

    @wraps(view)
    def run(*args, **kwargs):
        start = time.monotonic()
        try:
            return view(*args, **kwargs)
        finally:
            floor = float(current_app.config.get("AUTH_TIMING_FLOOR_SECONDS") or 0)
            if request.method == "POST" and floor > 0:
                left = start + floor - time.monotonic()
                if left > 0:
                    time.sleep(left)

    return run
