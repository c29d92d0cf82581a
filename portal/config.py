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
import secrets
import time
from datetime import timedelta
from pathlib import Path


class ConfigError(SystemExit):
    """Raised when the portal must not start; SystemExit prints just the one-line message."""


DEFAULTS: dict[str, object] = {
    "PORTAL_ENV": "development",
    "SITE_NAME": "Advocate Portal",
    "COMPANY_NAME": "Example Corp",
    "TERMS_VERSION": "2026-01",
    "AUTO_APPROVE_ADVOCATES": False,
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
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_HEADERS_ENABLED": True,
    "AUTH_RATE_LIMIT": "10 per minute",
    # Mail
    "MAIL_SERVER": "127.0.0.1",
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_DEFAULT_SENDER": "Advocate Portal <advocates@example.com>",
    "MAIL_SUPPRESS_SEND": False,
    "OUTBOX_MAX_ATTEMPTS": 12,
    "OUTBOX_SEND_AFTER_REQUEST": True,
    # Public URL used in emails sent from the CLI (outside a request)
    "SERVER_NAME": None,
    "PREFERRED_URL_SCHEME": "http",
    "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
    # Advocates
    "PROFILE_STALE_DAYS": 180,
    # Recognition
    "POINTS_PROFILE_COMPLETE": 100,
    "POINTS_REFERRAL": 250,
    "POINTS_LEVELS": None,  # [["Member", 0], ["Bronze", 500], ...]; None: the defaults
    # Search (filled by the search issue)
    "SEARCH_INDEX_DIR": None,
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
        cfg["SESSION_COOKIE_SECURE"] = True
        cfg["REMEMBER_COOKIE_SECURE"] = True
        cfg["PREFERRED_URL_SCHEME"] = "https"
    else:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        if not cfg.get("SECRET_KEY"):
            cfg["SECRET_KEY"] = _instance_secret(Path(app.instance_path))

    uri = cfg.get("SQLALCHEMY_DATABASE_URI")
    if not uri:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        uri = "sqlite:///" + str(Path(app.instance_path) / "portal.db")
    # Heroku-style URLs name the old driver; we use psycopg 3.
    if uri.startswith("postgres://"):
        uri = "postgresql+psycopg://" + uri[len("postgres://"):]
    elif uri.startswith("postgresql://"):
        uri = "postgresql+psycopg://" + uri[len("postgresql://"):]
    cfg["SQLALCHEMY_DATABASE_URI"] = uri
    if not cfg.get("SEARCH_INDEX_DIR"):
        cfg["SEARCH_INDEX_DIR"] = str(Path(app.instance_path) / "search-index")
