"""Fixtures: app (per test, on SQLite and, with TEST_DATABASE_URL, on PostgreSQL), client, runner,
a real SMTP server, user builders and per-role logged-in clients.

The schema is built once per backend through the Alembic migrations (never create_all), and each
test starts from empty tables.
"""

from __future__ import annotations

import os

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, text

from portal import create_app
from portal.extensions import db
from portal.models import Base, Role, Status, User, utcnow
from portal.services import lists
from portal.services.badges import ensure_default_badges
from portal.services.passwords import hash_password
from search.indexing import ensure_index
from tests.helpers import TEST_PASSWORD, Mailbox, login

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _pg_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def pytest_sessionstart(session):
    if IN_CI and not PG_URL:
        pytest.exit("CI=true but TEST_DATABASE_URL is not set: the PostgreSQL run is required in CI.", returncode=1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI a skipped test is a failure (a missing browser or database must not pass silently)."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which counts as a failure: {report.longrepr}"


def base_config(db_uri: str, mailbox: Mailbox, tmp_path) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SQLALCHEMY_DATABASE_URI": db_uri,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": mailbox.port,
        "MAIL_SUPPRESS_SEND": False,  # Flask-Mail suppresses under TESTING otherwise
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 1024,
        "ARGON2_PARALLELISM": 1,
        "RATELIMIT_ENABLED": False,
        "SEARCH_INDEX_DIR": str(tmp_path / "search-index"),
        "PUBLIC_BASE_URL": "http://localhost",
        # No background warm-up thread reading the database (it would race the table reset between
        # tests: a deadlock with TRUNCATE on PostgreSQL); tests that test the warm-up turn it on.
        "SEARCH_WARM": False,
    }


@pytest.fixture(scope="session")
def mailbox_server():
    box = Mailbox().start()
    yield box
    box.stop()


@pytest.fixture
def mailbox(mailbox_server):
    mailbox_server.clear()
    yield mailbox_server
    mailbox_server.clear()


def migrate_to_head(uri: str, mailbox: Mailbox, tmp_path) -> None:
    from flask_migrate import upgrade

    app = create_app(base_config(uri, mailbox, tmp_path))
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory, mailbox_server):
    """One migrated database per backend for the whole run."""
    urls = {}
    tmp = tmp_path_factory.mktemp("db")
    urls["sqlite"] = f"sqlite:///{tmp / 'portal-test.db'}"
    if PG_URL:
        pg = _pg_url(PG_URL)
        eng = create_engine(pg)
        with eng.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        eng.dispose()
        urls["postgresql"] = pg
    for uri in urls.values():
        migrate_to_head(uri, mailbox_server, tmp)
    return urls


def empty_tables(engine) -> None:
    """PostgreSQL: TRUNCATE (row triggers do not fire). SQLite: DELETE, with the append-only triggers of
    the ledger (migration 0007) dropped for the moment and re-created from their own SQL, in one transaction."""
    tables = [t.name for t in Base.metadata.sorted_tables]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            triggers = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
            for name, _ in triggers:
                conn.execute(text(f'DROP TRIGGER "{name}"'))
            for t in reversed(tables):
                conn.execute(text(f'DELETE FROM "{t}"'))
            for _, sql in triggers:
                conn.exec_driver_sql(sql)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def app_config(backend, database_urls, mailbox, tmp_path):
    """Override in a test module to change settings: ``app_config.update(...)`` before ``app``."""
    return base_config(database_urls[backend], mailbox, tmp_path)


class FreshContextClient(FlaskClient):
    """Each request runs in its own app context, as in production.

    The tests keep an app context open for convenience; without this, requests would reuse it and
    share ``g`` (Flask-Login caches the user there) and the SQLAlchemy session across clients.
    After a request, call ``db.session.rollback()`` (or ``reload``) before reading what it changed.
    """

    def open(self, *args, **kwargs):
        _end_test_transaction()
        try:
            with self.application.app_context():
                return super().open(*args, **kwargs)
        finally:
            _end_test_transaction()


class OwnTransactionCliRunner(FlaskCliRunner):
    """Each command begins its own unit of work, as `flask ...` does in its own process.

    Flask's CLI reuses the app context a test keeps open, and with it the test's session: the
    test's read transaction is ended first (``begin_write`` refuses to begin inside open work), and
    again afterwards so the test sees what the command committed.
    """

    def invoke(self, cli=None, args=None, **kwargs):
        _end_test_transaction()
        try:
            return super().invoke(cli, args, **kwargs)
        finally:
            _end_test_transaction()


def _end_test_transaction():
    """End the test's own read transaction around each request, so that the test's session sees
    what the request committed (SQLite keeps a snapshot per open transaction). Tests commit the
    data they set up before making requests."""
    from flask import has_app_context

    if has_app_context():
        session = db.session()
        if not (session.new or session.dirty or session.deleted):
            session.rollback()


@pytest.fixture
def app(app_config):
    application = create_app(app_config)
    application.test_client_class = FreshContextClient
    application.test_cli_runner_class = OwnTransactionCliRunner
    with application.app_context():
        lists.ensure_defaults(db.session)  # the lists admins manage (industries, countries, ...)
        ensure_default_badges(db.session)
        db.session.commit()
        ensure_index()  # an empty search index in tmp_path that then follows the database
        yield application
        db.session.remove()
        empty_tables(db.engine)
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def reload(model, ident):
    """Read a row again as the database has it now (ends the test's own transaction first)."""
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(model, ident)


_counter = {"n": 0}


@pytest.fixture
def make_user(app):
    """Build a user straight in the database: make_user(role=..., status=..., email=..., **fields)."""

    def build(
        role: Role = Role.ADVOCATE,
        status: Status = Status.ACTIVE,
        email: str | None = None,
        password: str = TEST_PASSWORD,
        **fields,
    ) -> User:
        _counter["n"] += 1
        email = email or f"{role.value}{_counter['n']}@example.com"
        now = utcnow()
        user = User(
            email=email.lower(),
            name=fields.pop("name", f"Test {role.value.title()} {_counter['n']}"),
            company=fields.pop("company", "Acme Analytics"),
            job_title=fields.pop("job_title", "Engineer"),
            role=role,
            status=status,
            password_hash=hash_password(password),
            email_verified_at=None if status == Status.UNVERIFIED else now,
            approved_at=now if status == Status.ACTIVE else None,
            **fields,
        )
        db.session.add(user)
        db.session.commit()
        # Hand back a detached, fully loaded copy and end the read transaction, so the test's
        # session holds no SQLite snapshot while requests write.
        db.session.refresh(user)
        db.session.expunge(user)
        db.session.rollback()
        return user

    return build


@pytest.fixture
def advocate(make_user):
    return make_user(Role.ADVOCATE, email="ada.advocate@example.com", name="Ada Advocate")


@pytest.fixture
def staff(make_user):
    return make_user(Role.STAFF, email="sam.staff@example.com", name="Sam Staff")


@pytest.fixture
def admin(make_user):
    return make_user(Role.ADMIN, email="alex.admin@example.com", name="Alex Admin")


def _logged_in(app, user):
    c = app.test_client()
    resp = login(c, user.email)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return c


@pytest.fixture
def advocate_client(app, advocate):
    return _logged_in(app, advocate)


@pytest.fixture
def staff_client(app, staff):
    return _logged_in(app, staff)


@pytest.fixture
def admin_client(app, admin):
    return _logged_in(app, admin)
