"""Security defaults, error pages, the outbox, configuration and migrations (issue: foundation)."""

import os
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from portal import create_app
from portal.config import ConfigError, _instance_secret
from portal.extensions import db
from portal.models import Base, OutboxMessage, OutboxStatus, User
from portal.services import outbox
from tests.support import PG_URL, base_config, free_port, login, pg_url, post_form

ROOT = Path(__file__).resolve().parent.parent


# --- headers, cookies, CSRF, GET safety ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/auth/login", "/nope", "/static/css/portal.css"])
def test_security_headers(client, path):
    h = client.get(path).headers
    csp = h["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp and "script-src 'self'" in csp
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"]


def test_no_inline_script_or_style_in_templates():
    for f in (ROOT / "templates").rglob("*.html"):
        if "email" in f.parts:
            continue  # email clients need inline styles; emails are not served under the CSP
        body = f.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body), f
        assert "<style" not in body and " style=" not in body, f


def test_session_and_remember_cookies(client, advocate):
    resp = login(client, advocate.email, remember=True)
    cookies = resp.headers.getlist("Set-Cookie")
    for name in ("session=", "remember_token="):
        c = next(c for c in cookies if c.startswith(name))
        assert "HttpOnly" in c and "SameSite=Lax" in c and "Secure" not in c


def test_production_cookies_secure(app_config):
    app_config.update(PORTAL_ENV="production", SECRET_KEY="a-long-random-production-secret")
    app = create_app(app_config)
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    resp = app.test_client().get("/auth/login")
    assert "Secure" in resp.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in resp.headers


@pytest.mark.parametrize("path", ["/auth/login", "/auth/register", "/auth/logout", "/admin/pending/approve"])
def test_csrf_missing_is_friendly_400(admin_client, path):
    resp = admin_client.post(path, data={"email": "x@example.com", "password": "x", "user_id": "1"})
    assert resp.status_code == 400
    assert b"form expired" in resp.data and b"Traceback" not in resp.data


def test_state_changing_routes_refuse_get(app):
    post_only = [
        "auth.logout",
        "auth.resend_verification",
        "auth.verify_email_confirm",
        "admin.approve",
        "admin.decline",
        "recognition.redeem",
        "profile.confirm",
        "opportunities.request_seat",
    ]
    rules = {r.endpoint: r.methods for r in app.url_map.iter_rules()}
    for endpoint in post_only:
        assert "GET" not in rules[endpoint], endpoint


def test_error_pages(app_config, client, advocate_client):
    assert client.get("/nope").status_code == 404
    assert b"could not find" in client.get("/nope").data
    assert client.get("/auth/logout").status_code == 405
    assert advocate_client.get("/admin/").status_code == 403
    big = client.post("/auth/login", data={"x": "a" * (3 * 1024 * 1024)})
    assert big.status_code == 413 and b"too large" in big.data

    fresh = create_app({**app_config, "PROPAGATE_EXCEPTIONS": False})

    @fresh.route("/boom")
    def boom():
        raise RuntimeError("boom")

    resp = fresh.test_client().get("/boom")
    assert resp.status_code == 500 and b"went wrong on our side" in resp.data and b"RuntimeError" not in resp.data


# --- the outbox ------------------------------------------------------------------------------------------------


@pytest.fixture
def smtp_down(app_config):
    app_config["MAIL_PORT"] = free_port()  # nothing listens there
    return app_config


def test_smtp_down_registration_succeeds_and_mail_is_delivered_once_later(smtp_down, app, client, runner, mailbox):
    resp = post_form(
        client,
        "/auth/register",
        {
            "name": "Dee",
            "email": "dee@example.com",
            "company": "Initech",
            "job_title": "CIO",
            "password": "copper-finch-valley-8",
            "confirm": "copper-finch-valley-8",
            "accept_terms": "y",
        },
    )
    assert resp.status_code == 302
    db.session.rollback()
    assert db.session.query(User).filter_by(email="dee@example.com").one()
    msg = db.session.query(OutboxMessage).filter_by(recipient="dee@example.com").one()
    assert msg.status == OutboxStatus.QUEUED and msg.attempts == 1 and msg.last_error
    assert msg.next_attempt_at > msg.created_at
    skipped = runner.invoke(args=["outbox", "send"])
    assert "Sent 0" in skipped.output  # not due yet: back-off
    up = create_app({**smtp_down, "MAIL_PORT": mailbox.port})
    with up.app_context():  # the CLI runs in the current app context when there is one
        assert up.test_cli_runner().invoke(args=["outbox", "send", "--all"]).exit_code == 0
        assert up.test_cli_runner().invoke(args=["outbox", "send", "--all"]).exit_code == 0
    assert len(mailbox.wait_for("dee@example.com")) == 1
    db.session.rollback()
    assert db.session.get(OutboxMessage, msg.id).status == OutboxStatus.SENT


def test_rolled_back_mail_never_sent(app, mailbox):
    outbox.queue_email(
        db.session, to="ghost@example.com", subject="x", template="approved", name="G", login_url="http://localhost/"
    )
    db.session.rollback()
    outbox.send_due(include_not_due=True)
    assert mailbox.to("ghost@example.com") == []


def test_concurrent_senders_send_once(app, mailbox):
    for i in range(10):
        outbox.queue_email(
            db.session,
            to=f"p{i}@example.com",
            subject="hello",
            template="approved",
            name="P",
            login_url="http://localhost/",
        )
    db.session.commit()
    barrier = threading.Barrier(3)

    def run():
        with app.app_context():
            barrier.wait()
            outbox.send_due(include_not_due=True)

    threads = [threading.Thread(target=run) for _ in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for i in range(10):
        assert len(mailbox.wait_for(f"p{i}@example.com")) == 1
    import time

    time.sleep(0.3)
    assert sum(len(mailbox.to(f"p{i}@example.com")) for i in range(10)) == 10


def test_gives_up_after_max_attempts(smtp_down, app):
    app.config["OUTBOX_MAX_ATTEMPTS"] = 2
    outbox.queue_email(
        db.session, to="z@example.com", subject="x", template="approved", name="Z", login_url="http://localhost/"
    )
    db.session.commit()
    outbox.send_due(include_not_due=True)
    outbox.send_due(include_not_due=True)
    db.session.rollback()
    assert db.session.query(OutboxMessage).one().status == OutboxStatus.FAILED


# --- configuration ---------------------------------------------------------------------------------------------


def test_config_order(monkeypatch, app_config):
    monkeypatch.setenv("PORTAL_SITE_NAME", "From env")
    monkeypatch.setenv("PORTAL_AUTO_APPROVE_ADVOCATES", "true")
    app = create_app(app_config)
    assert app.config["SITE_NAME"] == "From env" and app.config["AUTO_APPROVE_ADVOCATES"] is True
    app2 = create_app({**app_config, "SITE_NAME": "From test"})
    assert app2.config["SITE_NAME"] == "From test"


def test_database_url_alias(monkeypatch, app_config):
    cfg = {k: v for k, v in app_config.items() if k != "SQLALCHEMY_DATABASE_URI"}
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.example.com/portal")
    app = create_app(cfg)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db.example.com/portal"


def test_production_without_secret_refuses_to_start(app_config):
    cfg = {k: v for k, v in app_config.items() if k != "SECRET_KEY"}
    cfg["PORTAL_ENV"] = "production"
    with pytest.raises(ConfigError) as err:
        create_app(cfg)
    assert "PORTAL_SECRET_KEY" in str(err.value.code) and "\n" not in str(err.value.code)


def test_production_without_secret_cli_prints_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(PORTAL_ENV="production", FLASK_APP="portal")
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "routes"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("Refusing to start: set PORTAL_SECRET_KEY")


def test_development_secret_created_once(tmp_path):
    first = _instance_secret(tmp_path)
    assert len(first) >= 32 and _instance_secret(tmp_path) == first
    assert oct((tmp_path / "secret_key").stat().st_mode)[-3:] == "600"


# --- migrations ---------------------------------------------------------------------------------------------------


def _migrated_and_compared(uri, tmp_path, mailbox_server):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from flask_migrate import downgrade, upgrade

    app = create_app(base_config(uri, mailbox_server, tmp_path))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        downgrade(revision="base")
        upgrade()
        db.engine.dispose()
    return diff


def test_migrations_match_models_sqlite(tmp_path, mailbox_server):
    assert _migrated_and_compared(f"sqlite:///{tmp_path / 'm.db'}", tmp_path, mailbox_server) == []


def test_migrations_match_models_postgresql(tmp_path, mailbox_server):
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set")
    name = f"portal_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        uri = pg_url(PG_URL).rsplit("/", 1)[0] + "/" + name
        assert _migrated_and_compared(uri, tmp_path, mailbox_server) == []
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- SQLite connections are configured as documented ----------------------------------------------------------------


@pytest.mark.parametrize("busy_ms", [None, 1234])
def test_sqlite_pragmas_read_back_from_a_connection(database_urls, mailbox_server, tmp_path, busy_ms):
    """Whatever backend the suite runs on, the SQLite file (the default database) is set up as documented."""
    cfg = base_config(database_urls["sqlite"], mailbox_server, tmp_path)
    if busy_ms is not None:
        cfg["SQLITE_BUSY_TIMEOUT_MS"] = busy_ms
    application = create_app(cfg)
    with application.app_context():
        try:
            for _ in range(2):  # the first connection of the pool and a later one
                with db.engine.connect() as conn:
                    assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                    assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                    assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == (busy_ms or 15000)
                    assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
                db.engine.dispose()
        finally:
            db.engine.dispose()


# --- the shipped list of common passwords ---------------------------------------------------------------------------


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
