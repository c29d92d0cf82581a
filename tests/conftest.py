"""Fixtures: app (per test, on SQLite and, with TEST_DATABASE_URL, on PostgreSQL), client, runner,
a real SMTP server, user builders, per-role logged-in clients, the settings some tests turn on (limited,
auto_approve, after_response, worker_delivery, real_hash_cost) and a throwaway empty database for the
migrations (empty_db_url, mig_app).
Helpers (builders, form posting, the SMTP server's Mailbox, ...) live in tests/support.py.

The schema is built once per backend through the Alembic migrations (never create_all), and each
test starts from empty tables.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from portal import create_app
from portal.extensions import db
from portal.models import Role, Status, User, utcnow
from portal.services import lists
from portal.services.badges import ensure_default_badges
from portal.services.passwords import hash_password
from search.indexing import ensure_index
from tests.support import (
    BACKENDS,
    PG_URL,
    TEST_PASSWORD,
    FreshContextClient,
    Mailbox,
    OwnTransactionCliRunner,
    base_config,
    client_for,
    empty_tables,
)

IN_CI = os.environ.get("CI", "").lower() == "true"


def _pg_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def pytest_addoption(parser):
    parser.addoption("--timing", action="store_true", help="also run the slow timing tests (make test-timing)")


def pytest_collection_modifyitems(config, items):
    """The timing tests (marker ``timing``, tests/timing/) are slow: left out unless --timing is given."""
    if config.getoption("--timing"):
        return
    kept = [item for item in items if item.get_closest_marker("timing") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


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


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def app_config(backend, database_urls, mailbox, tmp_path):
    """Override in a test module to change settings: ``app_config.update(...)`` before ``app``."""
    return base_config(database_urls[backend], mailbox, tmp_path)


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


@pytest.fixture
def advocate_client(app, advocate):
    return client_for(app, advocate.email)


@pytest.fixture
def staff_client(app, staff):
    return client_for(app, staff.email)


@pytest.fixture
def admin_client(app, admin):
    return client_for(app, admin.email)


# --- settings some tests turn on (``app_config`` before ``app``) ----------------------------------------------------


@pytest.fixture
def limited(app_config):
    """The rate limits on, as in production."""
    app_config["RATELIMIT_ENABLED"] = True
    return app_config


@pytest.fixture
def auto_approve(app_config):
    """Advocates are approved as soon as they confirm their email."""
    app_config["AUTO_APPROVE_ADVOCATES"] = True
    return app_config


@pytest.fixture
def after_response(app_config):
    """As in production: a request's mail is sent once its response has gone out (tests send it before)."""
    app_config["OUTBOX_SEND_AFTER_RESPONSE"] = True
    return app_config


@pytest.fixture
def worker_delivery(app_config):
    """As in production: requests and commands only queue mail; `flask outbox worker` sends it."""
    app_config["OUTBOX_DELIVERY"] = "worker"
    return app_config


@pytest.fixture
def real_hash_cost(app_config):
    """Production argon2 parameters, so hashing shows up in the timing."""
    app_config.update(ARGON2_TIME_COST=3, ARGON2_MEMORY_COST=65536, ARGON2_PARALLELISM=4)
    return app_config


# --- a throwaway database, for the migrations -----------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def empty_db_url(request, tmp_path):
    """The URL of a brand-new, empty database on this backend; removed afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    server = _pg_url(PG_URL)
    name = f"portal_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def mig_app(empty_db_url, mailbox_server, tmp_path):
    """An app on an empty database (``empty_db_url``), in its app context; nothing migrated yet."""
    application = create_app(base_config(empty_db_url, mailbox_server, tmp_path))
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


# --- a real OpenID provider (tests/oidc_provider.py), for the single sign-on tests ---------------------------------


@pytest.fixture(scope="session")
def oidc_provider_server():
    """Built and served once per run on 127.0.0.1; ``oidc_provider`` hands it out reset for each test."""
    from tests.oidc_provider import OpenIDProvider

    provider = OpenIDProvider().start()
    yield provider
    provider.stop()


@pytest.fixture
def oidc_provider(oidc_provider_server):
    oidc_provider_server.reset()
    yield oidc_provider_server
    oidc_provider_server.reset()
