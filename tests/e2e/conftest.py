"""Browser journeys: the app served by a real WSGI server on 127.0.0.1, driven by Playwright in the
system Chromium (never `playwright install`).

The e2e fixtures are their own: one live server for the session, on a migrated SQLite file in a
temporary folder, sending mail to the session's real SMTP server (``mailbox_server``). They do not
use ``app``/``backend`` from tests/conftest.py, so these tests run once, also when
TEST_DATABASE_URL is set. Tests share the live database: give every user a unique email.
"""

from __future__ import annotations

import os
import threading

import pytest
from flask import got_request_exception
from werkzeug.serving import make_server

from portal import create_app
from portal.extensions import db
from portal.models import Role, Status, User, utcnow
from portal.services import lists
from portal.services.badges import ensure_default_badges
from portal.services.passwords import hash_password
from search.indexing import ensure_index
from tests.support import TEST_PASSWORD, base_config, free_port

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
E2E_DIR = os.path.dirname(os.path.abspath(__file__))


def pytest_collection_modifyitems(items):
    """Every test in tests/e2e/ carries the e2e marker (`-m e2e` / `-m "not e2e"`)."""
    for item in items:
        if str(item.path).startswith(E2E_DIR + os.sep):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser_type_launch_args():
    """pytest-playwright's fixture, pointed at Debian's Chromium. Skips without it (a failure in CI)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium chromium-driver)")
    return {"executable_path": CHROMIUM, "headless": True, "args": FLAGS}


class LiveServer:
    """werkzeug's threaded WSGI server in a daemon thread; records unhandled exceptions."""

    def __init__(self, app, port: int):
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.errors: list[BaseException] = []
        got_request_exception.connect(self._record, app, weak=False)
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="e2e-live-server", daemon=True)

    def _record(self, sender, exception, **extra):
        self.errors.append(exception)

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
        got_request_exception.disconnect(self._record, self.app)

    def make_user(self, email, role=Role.ADVOCATE, status=Status.ACTIVE, name=None, **fields) -> int:
        """An account straight in the database (password TEST_PASSWORD); returns its id."""
        with self.app.app_context():
            now = utcnow()
            user = User(
                email=email,
                name=name or email.split("@")[0].title(),
                role=role,
                status=status,
                company=fields.pop("company", "Acme Analytics"),
                job_title=fields.pop("job_title", "CTO"),
                password_hash=hash_password(TEST_PASSWORD),
                email_verified_at=now,
                approved_at=now if status == Status.ACTIVE else None,
                **fields,
            )
            db.session.add(user)
            db.session.commit()
            return user.id

    def cli(self, *args: str, input: str | None = None):
        """Run a `flask ...` command against the live database; fails the test if it fails."""
        result = self.app.test_cli_runner().invoke(args=list(args), input=input)
        assert result.exit_code == 0, f"flask {' '.join(args)} failed:\n{result.output}\n{result.exception!r}"
        return result

    def create_admin(self, email: str, name: str, password: str = TEST_PASSWORD) -> None:
        """Through the operators' command: `flask users create-admin EMAIL --name NAME --password-stdin`."""
        self.cli("users", "create-admin", email, "--name", name, "--password-stdin", input=password + "\n")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, mailbox_server):
    from flask_migrate import upgrade

    tmp = tmp_path_factory.mktemp("e2e")
    port = free_port()
    cfg = base_config(f"sqlite:///{tmp / 'e2e.db'}", mailbox_server, tmp)
    # Links in emails point at the live server; TESTING off so errors go through the app's handlers
    # (and got_request_exception) as in production.
    cfg.update(PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", TESTING=False)
    app = create_app(cfg)
    with app.app_context():
        upgrade()
        lists.ensure_defaults(db.session)
        ensure_default_badges(db.session)
        db.session.commit()
        ensure_index()
    server = LiveServer(app, port).start()
    yield server
    server.stop()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def base_url(live_server):
    """pytest-playwright's ``base_url`` (used by ``page``/``new_context``), set to the live server.

    Overriding it also avoids the plugin's fallback fixture, a session fixture defined on a plugin
    instance, which pytest 9 reports as PytestRemovedIn10Warning (an error under filterwarnings)."""
    return live_server.url


@pytest.fixture(autouse=True)
def _no_server_errors(request):
    """A 500 in the live server fails the test that caused it, with the server's exception."""
    if "live_server" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("live_server")
    seen = len(server.errors)
    yield
    new = server.errors[seen:]
    assert not new, f"the live server raised: {new!r}"


@pytest.fixture
def mailbox(mailbox_server):
    """The session's SMTP server, emptied; no database backend involved (unlike tests/conftest.py)."""
    mailbox_server.clear()
    return mailbox_server
