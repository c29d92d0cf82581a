"""Configuration, loaded in one order.

1. the defaults below,
2. ``instance/config.py`` if present,
3. ``PORTAL_<KEY>`` environment variables (``Flask.config.from_prefixed_env``; values are parsed
   as JSON when they can be, so ``PORTAL_AUTO_APPROVE_ADVOCATES=true`` is a bool),
   plus ``DATABASE_URL`` as an alias for ``SQLALCHEMY_DATABASE_URI``,
4. the mapping a test passes to ``create_app``.

Nothing here runs at import time: ``load_config`` is called by the factory.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit


class ConfigError(SystemExit):
    """Raised when the portal must not start; SystemExit prints just the one-line message."""


DEFAULTS: dict[str, object] = {
    "PORTAL_ENV": "development",
    "SITE_NAME": "Advocate Portal",
    "COMPANY_NAME": "Example Corp",
    "TERMS_VERSION": "2026-01",
    "AUTO_APPROVE_ADVOCATES": False,
    # The footer's links: the program terms and privacy notice (None: the portal's own pages, /terms and
    # /privacy) and where people write to the program team (None: no contact link).
    "TERMS_URL": None,
    "PRIVACY_URL": None,
    "CONTACT_EMAIL": None,
    # Accounts
    "PASSWORD_MIN_LENGTH": 10,
    "PASSWORD_MAX_LENGTH": 128,
    # argon2id parameters (argon2-cffi's RFC 9106 low-memory profile); tests lower them.
    "ARGON2_TIME_COST": 3,
    "ARGON2_MEMORY_COST": 65536,
    "ARGON2_PARALLELISM": 4,
    "LOGIN_MAX_FAILURES": 10,
    "LOGIN_LOCK_MINUTES": 15,
    "VERIFY_TOKEN_MAX_AGE": 48 * 3600,
    "RESET_TOKEN_MAX_AGE": 3600,
    # Sessions and cookies
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": False,
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_SECURE": False,
    "REMEMBER_COOKIE_DURATION": timedelta(days=30),
    "PERMANENT_SESSION_LIFETIME": timedelta(days=14),
    "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
    # Forms
    "WTF_CSRF_TIME_LIMIT": 8 * 3600,
    # Database
    "SQLALCHEMY_DATABASE_URI": None,  # filled in from instance/ when unset
    "SQLALCHEMY_ENGINE_OPTIONS": {},
    "SQLITE_BUSY_TIMEOUT_MS": 15000,
    # Rate limits (Flask-Limiter); memory by default, Redis via RATELIMIT_STORAGE_URI
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": "memory://",  # production needs a shared one (Redis), unless RATELIMIT_SINGLE_PROCESS
    # True: one process serves the portal, so memory:// counts every request (production accepts it then).
    "RATELIMIT_SINGLE_PROCESS": False,
    "RATELIMIT_HEADERS_ENABLED": True,
    "AUTH_RATE_LIMIT": "10 per minute",
    # Nominations per staff member (each may send an invitation email at once, by a program setting).
    "NOMINATION_RATE_LIMIT": "30 per hour",
    # Mail
    "MAIL_SERVER": "127.0.0.1",
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_DEFAULT_SENDER": "Advocate Portal <advocates@example.com>",
    "MAIL_SUPPRESS_SEND": False,
    "MAIL_TIMEOUT": 10,  # seconds for connecting to and talking with the SMTP server
    "OUTBOX_MAX_ATTEMPTS": 12,
    # Seconds a sender keeps retrying the status write after a send while the database is locked: a sent
    # message left "sending" would be queued again by release_stuck and delivered twice.
    "OUTBOX_STATUS_WRITE_PATIENCE": 300,
    # Who sends mail: "worker" (`flask outbox worker`, its own process; a web worker never talks to SMTP)
    # or "inline" (the process that queued it, after its commit: for tests and browser journeys).
    "OUTBOX_DELIVERY": "worker",
    # Registration and password reset answer no sooner than this (portal.security.even_timing); None:
    # AUTH_TIMING_FLOOR default, 0 in tests (the timing tests set it as production has it).
    "AUTH_TIMING_FLOOR_SECONDS": None,
    "OUTBOX_WORKER_POLL_SECONDS": 1.0,  # SQLite: how often the worker looks for new mail (PostgreSQL: LISTEN)
    # "inline" only. True: a request's mail is sent once its response has gone out (when the WSGI server closes it),
    # so no page waits on SMTP. False: sent at the end of the request, before the response.
    # None: True, except under TESTING (Flask's test client never closes responses).
    "OUTBOX_SEND_AFTER_RESPONSE": None,
    "OUTBOX_SEND_GRACE_SECONDS": 2.0,  # send anyway if the server has not closed the response by then
    "OUTBOX_RETENTION_DAYS": 30,  # `flask outbox send` erases sent messages' address and body after this
    # The public URL: every link in an email is built from it, never from the request's Host header.
    "SERVER_NAME": None,
    "PREFERRED_URL_SCHEME": "http",
    "PUBLIC_BASE_URL": None,  # development: http://127.0.0.1:5000; production: required
    # Hosts the app answers to (Flask 3.1); None: in production, PUBLIC_BASE_URL's host. [] allows any.
    "TRUSTED_HOSTS": None,
    # Behind a reverse proxy: how many proxies set each X-Forwarded-* header (werkzeug ProxyFix).
    # 0 (the default) ignores the header, so a client cannot forge its address or scheme.
    "PROXY_FIX_X_FOR": 0,
    "PROXY_FIX_X_PROTO": 0,
    "PROXY_FIX_X_HOST": 0,
    "PROXY_FIX_X_PORT": 0,
    "PROXY_FIX_X_PREFIX": 0,
    # Advocates
    "PROFILE_STALE_DAYS": 180,
    # The program dashboard reads a period's kept figures (`flask reports refresh`, every 15 minutes from cron;
    # an admin's "Refresh now") while they are younger than this many seconds; older: computed on view.
    "REPORT_FIGURES_MAX_AGE": 3600,
    # Invitations and the CSV import (portal.services.invitations, portal.services.imports)
    "INVITATION_DAYS": 14,  # an invitation link is valid this long
    "IMPORT_MAX_BYTES": 10 * 1024 * 1024,  # the upload limit of the import page (MAX_CONTENT_LENGTH elsewhere)
    "IMPORT_BATCH_SIZE": 500,  # rows invited per commit (the job page's progress moves per batch)
    # A running import with no batch committed for this many seconds was cut off (a restart): it may be resumed.
    "IMPORT_STALL_SECONDS": 300,
    # How the web starts an import: "thread" (a background thread) or "inline" (in the request, after its
    # commit). None: "thread", except under TESTING.
    "IMPORT_RUN": None,
    # Recognition
    "POINTS_PROFILE_COMPLETE": 100,
    "POINTS_REFERRAL": 250,
    "POINTS_LEVELS": None,  # [["Member", 0], ["Bronze", 500], ...]; None: the defaults
    "PROGRAM_CURRENCY": "USD",  # activity values (admin reports): an ISO 4217 code, shown beside each amount
    # Search
    "SEARCH_INDEX_DIR": None,  # None: instance/search-index
    "SEARCH_REQUEST_WRITER_PATIENCE": 1.5,  # seconds a request waits for the index lock; then sync applies it
    # SEARCH_WARM: unset means on, off under TESTING (warm the index in a background thread at start)
    # Single sign-on (OpenID Connect): the providers (see README "Single sign-on"; checked at start by
    # check_oidc_providers) and the only addresses that a provider's sign-in may make admins.
    "OIDC_PROVIDERS": [],
    "OIDC_ADMIN_EMAILS": [],
    "OIDC_TIMEOUT_SECONDS": 10,  # how long the portal waits for a provider's answer
}


def _instance_secret(instance_path: Path, wait: float = 2.0) -> str:
    """Development only: a random SECRET_KEY created once and kept in instance/.

    Several processes may start at once (workers, the reloader): exactly one creates the file (O_EXCL);
    the others wait until its key is written rather than fail or read it empty.
    """
    key_file = instance_path / "secret_key"
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        deadline = time.monotonic() + wait
        while not (key := key_file.read_text().strip()):
            if time.monotonic() > deadline:
                raise ConfigError(f"{key_file} is empty: delete it to have a new key created.") from None
            time.sleep(0.01)
        return key
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _public_host(url) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            f"PUBLIC_BASE_URL must be an absolute http(s) URL such as https://advocates.example.com, not {url!r}."
        )
    return parts.hostname


# Registration and password reset answer no sooner than this after they arrive (portal.security.even_timing):
# longer than either takes on a loaded server, so that what is left of their difference cannot be timed.
AUTH_TIMING_FLOOR = 0.05

# Flask-Limiter storages (limits' schemes) that keep their counts inside one process.
PER_PROCESS_STORAGES = frozenset({"memory", "async+memory"})


@dataclass(frozen=True)
class LimiterStorage:
    """Where the rate limits are counted, safe to show: the scheme and the host(s), never the credentials,
    the path or the query of the URI."""

    scheme: str
    where: str  # host[:port] (several for a cluster or sentinel), a socket's path, or "" (memory)
    shared: bool  # counted together by every process that uses it

    @property
    def label(self) -> str:
        return f"{self.scheme}://{self.where}"


def limiter_storage(uri) -> LimiterStorage:
    text = uri if isinstance(uri, str) else ""
    scheme, sep, rest = text.partition("://")
    scheme = scheme.strip().lower() if sep else ""
    netloc, _, path = rest.split("?", 1)[0].split("#", 1)[0].partition("/")
    where = netloc.rpartition("@")[2]  # user:password@host -> host
    if not where and scheme.endswith("+unix"):
        where = "/" + path
    return LimiterStorage(scheme or "memory", where, bool(scheme) and scheme not in PER_PROCESS_STORAGES)


def _check_limiter_storage(cfg, production: bool) -> None:
    """Each process counts alone with memory:// (gunicorn -w 2 lets twice the sign-in tries through), so
    production needs a shared storage, unless RATELIMIT_SINGLE_PROCESS says one process serves it."""
    single = cfg.get("RATELIMIT_SINGLE_PROCESS")
    if not isinstance(single, bool):
        raise ConfigError(f"RATELIMIT_SINGLE_PROCESS must be true or false, not {single!r}.")
    if production and not single and not limiter_storage(cfg.get("RATELIMIT_STORAGE_URI")).shared:
        raise ConfigError(
            "Refusing to start: set PORTAL_RATELIMIT_STORAGE_URI=redis://host:6379/0 when PORTAL_ENV=production "
            "(each worker counts sign-in tries alone in memory), or PORTAL_RATELIMIT_SINGLE_PROCESS=true "
            "if one process serves the portal."
        )


def _require_count(cfg, key: str) -> None:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key} must be a whole number of 0 or more, not {value!r}.")


def _require_whole_at_least_one(cfg, key: str) -> None:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be a whole number of 1 or more, not {value!r}.")


def _require_positive_number(cfg, key: str) -> None:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{key} must be a number of seconds above 0, not {value!r}.")


def _check_points_levels(levels) -> None:
    """None (the defaults) or [[name, threshold], ...]: non-empty names, distinct whole thresholds of 0 or
    more, one of them 0 (so every advocate has a level)."""
    if levels is None:
        return
    usage = 'set POINTS_LEVELS like [["Member", 0], ["Bronze", 500]]'
    if not isinstance(levels, (list, tuple)) or not levels:
        raise ConfigError(f"POINTS_LEVELS must be a non-empty list of [name, points] pairs: {usage}.")
    seen: set[int] = set()
    for level in levels:
        if not isinstance(level, (list, tuple)) or len(level) != 2:
            raise ConfigError(f"POINTS_LEVELS: {level!r} is not a [name, points] pair: {usage}.")
        name, threshold = level
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"POINTS_LEVELS: {level!r} needs a non-empty name: {usage}.")
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise ConfigError(
                f"POINTS_LEVELS: the points of {name!r} must be a whole number of 0 or more, not {threshold!r}."
            )
        if threshold in seen:
            raise ConfigError(f"POINTS_LEVELS: two levels start at {threshold} points; each needs its own.")
        seen.add(threshold)
    if 0 not in seen:
        raise ConfigError(f"POINTS_LEVELS needs a level that starts at 0 points, or new advocates have none: {usage}.")


OIDC_REQUIRED = ("name", "label", "server_metadata_url", "client_id", "client_secret")
OIDC_OPTIONAL: dict[str, object] = {
    "scopes": "openid email profile",
    "create_accounts": False,  # a first sign-in may create an advocate account (pending approval)
    "allowed_domains": [],  # only these email domains may sign in through it ([]: any)
    "staff_domains": [],  # a verified email in these domains makes a staff member
    "staff_groups": [],  # ... or one of these values in the groups claim
    "groups_claim": "groups",
    "claims": {},  # {"name": "name", "company": "org", "job_title": "title"}: the claims read at first sign-in
}
OIDC_PROFILE_FIELDS = ("name", "company", "job_title")
_PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def check_oidc_providers(providers) -> list[dict]:
    """The providers as a list of complete dicts (defaults filled in), or a ConfigError saying what is wrong."""
    usage = "see the README, Single sign-on"
    if not isinstance(providers, (list, tuple)):
        raise ConfigError(f"OIDC_PROVIDERS must be a list of providers (JSON objects): {usage}.")
    checked, names = [], set()
    for i, raw in enumerate(providers):
        where = f"OIDC_PROVIDERS[{i}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where} must be an object with {', '.join(OIDC_REQUIRED)}: {usage}.")
        unknown = sorted(set(raw) - set(OIDC_REQUIRED) - set(OIDC_OPTIONAL))
        if unknown:
            raise ConfigError(f"{where} has unknown keys {unknown}: {usage}.")
        for key in OIDC_REQUIRED:
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                raise ConfigError(f"{where} needs {key} (a non-empty string): {usage}.")
        provider = {**OIDC_OPTIONAL, **raw}
        if not _PROVIDER_NAME.match(provider["name"]):
            raise ConfigError(f"{where}: name {provider['name']!r} must be lower-case letters, digits, - or _.")
        if provider["name"] in names:
            raise ConfigError(f"{where}: two providers are named {provider['name']!r}.")
        names.add(provider["name"])
        url = urlsplit(provider["server_metadata_url"])
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"{where}: server_metadata_url must be an http(s) URL of the discovery document.")
        scopes = provider["scopes"]
        if not isinstance(scopes, str) or "openid" not in scopes.split():
            raise ConfigError(f"{where}: scopes must be a space-separated string that includes openid.")
        if not isinstance(provider["create_accounts"], bool):
            raise ConfigError(f"{where}: create_accounts must be true or false.")
        for key in ("allowed_domains", "staff_domains", "staff_groups"):
            value = provider[key]
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
                raise ConfigError(f"{where}: {key} must be a list of non-empty strings.")
            provider[key] = [v.strip().lower() if key != "staff_groups" else v.strip() for v in value]
        if not isinstance(provider["groups_claim"], str) or not provider["groups_claim"]:
            raise ConfigError(f"{where}: groups_claim must be a claim name.")
        claims = provider["claims"]
        if not isinstance(claims, dict) or not all(
            k in OIDC_PROFILE_FIELDS and isinstance(v, str) and v for k, v in claims.items()
        ):
            raise ConfigError(f"{where}: claims maps {', '.join(OIDC_PROFILE_FIELDS)} to claim names.")
        provider["claims"] = {"name": "name", **claims}
        checked.append(provider)
    return checked


def _check_admin_emails(emails) -> list[str]:
    if not isinstance(emails, (list, tuple)) or not all(isinstance(e, str) and "@" in e for e in emails):
        raise ConfigError("OIDC_ADMIN_EMAILS must be a list of email addresses.")
    return [e.strip().lower() for e in emails]


def load_config(app, test_config: dict | None = None) -> None:
    cfg = app.config
    cfg.from_mapping(DEFAULTS)
    cfg.from_pyfile("config.py", silent=True)
    cfg.from_prefixed_env("PORTAL")
    if os.environ.get("DATABASE_URL") and "PORTAL_SQLALCHEMY_DATABASE_URI" not in os.environ:
        cfg["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    if os.environ.get("PORTAL_ENV"):
        cfg["PORTAL_ENV"] = os.environ["PORTAL_ENV"]
    if test_config:
        cfg.from_mapping(test_config)

    production = cfg["PORTAL_ENV"] == "production"
    if production:
        if not cfg.get("SECRET_KEY"):
            raise ConfigError(
                "Refusing to start: set PORTAL_SECRET_KEY (a long random string) when PORTAL_ENV=production."
            )
        if not cfg.get("PUBLIC_BASE_URL"):
            raise ConfigError(
                "Refusing to start: set PORTAL_PUBLIC_BASE_URL (e.g. https://advocates.example.com) "
                "when PORTAL_ENV=production; email links are built from it."
            )
        cfg["SESSION_COOKIE_SECURE"] = True
        cfg["REMEMBER_COOKIE_SECURE"] = True
        cfg["PREFERRED_URL_SCHEME"] = "https"
    else:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        if not cfg.get("SECRET_KEY"):
            cfg["SECRET_KEY"] = _instance_secret(Path(app.instance_path))
        if not cfg.get("PUBLIC_BASE_URL"):
            cfg["PUBLIC_BASE_URL"] = "http://127.0.0.1:5000"
    host = _public_host(cfg["PUBLIC_BASE_URL"])
    if production and cfg.get("TRUSTED_HOSTS") is None:
        cfg["TRUSTED_HOSTS"] = [host]
    if cfg.get("AUTH_TIMING_FLOOR_SECONDS") is None:
        cfg["AUTH_TIMING_FLOOR_SECONDS"] = 0.0 if cfg.get("TESTING") else AUTH_TIMING_FLOOR
    floor = cfg["AUTH_TIMING_FLOOR_SECONDS"]
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0 <= floor <= 5:
        raise ConfigError(f"AUTH_TIMING_FLOOR_SECONDS must be a number of seconds from 0 to 5, not {floor!r}.")
    if cfg.get("IMPORT_RUN") is None:
        cfg["IMPORT_RUN"] = "inline" if cfg.get("TESTING") else "thread"
    if cfg.get("IMPORT_RUN") not in ("thread", "inline"):
        raise ConfigError(f'IMPORT_RUN must be "thread" or "inline", not {cfg.get("IMPORT_RUN")!r}.')
    if cfg.get("OUTBOX_SEND_AFTER_RESPONSE") is None:
        cfg["OUTBOX_SEND_AFTER_RESPONSE"] = not cfg.get("TESTING")
    for key in (
        "PROXY_FIX_X_FOR",
        "PROXY_FIX_X_PROTO",
        "PROXY_FIX_X_HOST",
        "PROXY_FIX_X_PORT",
        "PROXY_FIX_X_PREFIX",
        "OUTBOX_RETENTION_DAYS",
        "POINTS_REFERRAL",
        "POINTS_PROFILE_COMPLETE",
    ):
        _require_count(cfg, key)
    _check_limiter_storage(cfg, production)
    _require_whole_at_least_one(cfg, "PROFILE_STALE_DAYS")
    _require_positive_number(cfg, "MAIL_TIMEOUT")
    _require_positive_number(cfg, "OUTBOX_WORKER_POLL_SECONDS")
    _require_positive_number(cfg, "OUTBOX_STATUS_WRITE_PATIENCE")
    if cfg.get("OUTBOX_DELIVERY") not in ("worker", "inline"):
        raise ConfigError(f'OUTBOX_DELIVERY must be "worker" or "inline", not {cfg.get("OUTBOX_DELIVERY")!r}.')
    _check_points_levels(cfg.get("POINTS_LEVELS"))
    cfg["OIDC_PROVIDERS"] = check_oidc_providers(cfg.get("OIDC_PROVIDERS"))
    cfg["OIDC_ADMIN_EMAILS"] = _check_admin_emails(cfg.get("OIDC_ADMIN_EMAILS"))
    _require_positive_number(cfg, "OIDC_TIMEOUT_SECONDS")

    uri = cfg.get("SQLALCHEMY_DATABASE_URI")
    if not uri:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        uri = "sqlite:///" + str(Path(app.instance_path) / "portal.db")
    # Heroku-style URLs name the old driver; we use psycopg 3.
    if uri.startswith("postgres://"):
        uri = "postgresql+psycopg://" + uri[len("postgres://") :]
    elif uri.startswith("postgresql://"):
        uri = "postgresql+psycopg://" + uri[len("postgresql://") :]
    cfg["SQLALCHEMY_DATABASE_URI"] = uri
    if not cfg.get("SEARCH_INDEX_DIR"):
        cfg["SEARCH_INDEX_DIR"] = str(Path(app.instance_path) / "search-index")
