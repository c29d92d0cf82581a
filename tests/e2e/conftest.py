"""Browser journeys: the app served by a real WSGI server on 127.0.0.1, driven by Playwright in the
system Chromium (never `playwright install`)."""
from __future__ import annotations

import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from portal import create_app
from portal.extensions import db
from portal.models import Role, Status, User, utcnow
from portal.services import reference
from portal.services.badges import ensure_default_badges
from portal.services.passwords import hash_password
from search.indexing import ensure_index
from tests.conftest import base_config
from tests.helpers import TEST_PASSWORD, free_port

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser_type_launch_args():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    return {"executable_path": CHROMIUM, "headless": True, "args": FLAGS}


class LiveServer:
    def __init__(self, app, port):
        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=5)

    def make_user(self, email, role=Role.ADVOCATE, status=Status.ACTIVE, name=None, **fields) -> int:
        with self.app.app_context():
            now = utcnow()
            user = User(email=email, name=name or email.split("@")[0].title(), role=role, status=status,
                        company=fields.pop("company", "Acme Analytics"), job_title=fields.pop("job_title", "CTO"),
                        password_hash=hash_password(TEST_PASSWORD), email_verified_at=now,
                        approved_at=now if status == Status.ACTIVE else None, **fields)
            db.session.add(user)
            db.session.commit()
            return user.id


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, mailbox_server):
    from flask_migrate import upgrade

    tmp = tmp_path_factory.mktemp("e2e")
    port = free_port()
    cfg = base_config(f"sqlite:///{tmp / 'e2e.db'}", mailbox_server, tmp)
    cfg.update(PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", TESTING=False)
    app = create_app(cfg)
    with app.app_context():
        upgrade()
        reference.ensure_defaults(db.session)
        ensure_default_badges(db.session)
        db.session.commit()
        ensure_index()
    server = LiveServer(app, port).start()
    yield server
    server.stop()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def mailbox(mailbox_server):
    mailbox_server.clear()
    return mailbox_server


def sign_in(page, base, email, password=TEST_PASSWORD):
    page.goto(f"{base}/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
