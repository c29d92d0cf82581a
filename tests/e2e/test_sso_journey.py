"""Browser journey: a customer joins with their company account through the provider's own login page
(tests/oidc_provider.py, Authlib's server side on 127.0.0.1), accepts the terms with the details the provider
sent (corrected), signs out of the portal and of the provider, and signs in again through the provider.

The portal here is a live server of its own (the shared one has no provider configured), on a migrated
SQLite file; the pages only this journey reaches are checked with axe-core at 375 and 1280 px."""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import got_request_exception
from playwright.sync_api import expect
from werkzeug.serving import make_server

from portal import create_app
from portal.extensions import db
from portal.models import Consent, Identity, Role, Status, User, utcnow
from portal.services import lists
from portal.services.badges import ensure_default_badges
from portal.services.passwords import hash_password
from search.indexing import ensure_index
from tests.support import TEST_PASSWORD, base_config, free_port

PHONE, DESKTOP = 375, 1280


@pytest.fixture(scope="module")
def sso_server(tmp_path_factory, mailbox_server, oidc_provider_server):
    from flask_migrate import upgrade

    tmp = tmp_path_factory.mktemp("sso-e2e")
    port = free_port()
    cfg = base_config(f"sqlite:///{tmp / 'sso.db'}", mailbox_server, tmp)
    cfg.update(
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        TESTING=False,
        OIDC_PROVIDERS=[oidc_provider_server.provider_config(create_accounts=True)],
    )
    app = create_app(cfg)
    with app.app_context():
        upgrade()
        lists.ensure_defaults(db.session)
        ensure_default_badges(db.session)
        db.session.commit()
        ensure_index()
    errors: list[BaseException] = []

    def record(sender, exception, **extra):
        errors.append(exception)

    got_request_exception.connect(record, app, weak=False)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="sso-e2e-server", daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{port}", errors
    server.shutdown()
    server.server_close()
    thread.join(10)
    got_request_exception.disconnect(record, app)
    with app.app_context():
        db.engine.dispose()


def assert_accessible(page, where: str) -> None:
    problems = []
    for width in (PHONE, DESKTOP):
        page.set_viewport_size({"width": width, "height": 800})
        if width == PHONE:
            scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if scroll > inner:
                problems.append(f"{where} at {width}px scrolls sideways ({scroll} > {inner})")
        for v in Axe().run(page).response["violations"]:
            if v["impact"] in ("serious", "critical"):
                problems.append(f"{where} at {width}px: {v['impact']} {v['id']} ({v['help']})")
    assert not problems, "\n".join(problems)


def sign_in_at_provider(page, email: str, password: str) -> None:
    page.get_by_label("Username").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Allow").click()


def test_join_with_a_company_account_sign_out_everywhere_and_back(sso_server, oidc_provider, browser):
    app, base, errors = sso_server
    provider_host = urlsplit(oidc_provider.url).netloc
    oidc_provider.add_account(
        "journey.nia@example.com", password="nia-at-acme-1", name="Nia Journey", org="Globex", title="SRE"
    )
    context = browser.new_context(viewport={"width": DESKTOP, "height": 800})
    page = context.new_page()

    page.goto(f"{base}/auth/login")
    page.get_by_role("link", name="Sign in with Acme ID").click()
    expect(page.get_by_role("heading", name="Acme ID")).to_be_visible()
    assert urlsplit(page.url).netloc == provider_host  # the provider's own login page
    sign_in_at_provider(page, "journey.nia@example.com", "nia-at-acme-1")

    # Back at the portal: the terms, with what the provider said, to correct.
    expect(page.get_by_role("heading", name="Join the advocate program")).to_be_visible()
    expect(page.get_by_label("Full name")).to_have_value("Nia Journey")
    expect(page.get_by_label("Company")).to_have_value("Globex")
    assert_accessible(page, "sso.join")
    page.get_by_label("Company").fill("Globex Corporation")
    page.get_by_label("I accept the program terms").check()
    page.get_by_role("button", name="Join the program").click()
    expect(page).to_have_url(f"{base}/account/status")

    with app.app_context():
        nia = db.session.query(User).filter_by(email="journey.nia@example.com").one()
        assert (nia.role, nia.status, nia.company) == (Role.ADVOCATE, Status.PENDING, "Globex Corporation")
        assert db.session.query(Consent).filter_by(user_id=nia.id).count() == 1
        assert db.session.query(Identity).filter_by(user_id=nia.id).count() == 1
        db.session.rollback()

    # Signing out of the portal ends the provider's session too, then comes back to the portal.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(re.escape(f"{base}/") + r"(\?state=.*)?$"))  # via the provider and back
    assert oidc_provider.logged_out, "the provider's session was not ended"
    assert oidc_provider.logged_out and oidc_provider.logged_out[-1].get("id_token_hint")

    # So the next sign-in asks for the provider's password again, and signs straight in.
    page.goto(f"{base}/auth/login")
    page.get_by_role("link", name="Sign in with Acme ID").click()
    expect(page.get_by_label("Username")).to_be_visible()
    sign_in_at_provider(page, "journey.nia@example.com", "nia-at-acme-1")
    expect(page).to_have_url(f"{base}/account/status")
    context.close()
    assert not errors, f"the live server raised: {errors!r}"


def test_an_existing_member_links_with_their_password(sso_server, oidc_provider, browser):
    app, base, errors = sso_server
    with app.app_context():
        now = utcnow()
        db.session.add(
            User(
                email="journey.ada@example.com",
                name="Ada Journey",
                role=Role.ADVOCATE,
                status=Status.ACTIVE,
                password_hash=hash_password(TEST_PASSWORD),
                email_verified_at=now,
                approved_at=now,
            )
        )
        db.session.commit()
    oidc_provider.add_account("journey.ada@example.com", password="ada-at-acme-1", name="Ada Journey")
    context = browser.new_context(viewport={"width": DESKTOP, "height": 800})
    page = context.new_page()
    page.goto(f"{base}/auth/login")
    page.get_by_role("link", name="Sign in with Acme ID").click()
    sign_in_at_provider(page, "journey.ada@example.com", "ada-at-acme-1")
    expect(page.get_by_role("heading", name="Link Acme ID to your account")).to_be_visible()
    assert_accessible(page, "sso.link_account")
    page.get_by_label("Your portal password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Link and sign in").click()
    expect(page).to_have_url(f"{base}/dashboard")
    page.goto(f"{base}/auth/sso/identities")
    expect(page.get_by_role("cell", name="Acme ID")).to_be_visible()
    assert_accessible(page, "sso.identities with a linked provider")
    context.close()
    assert not errors, f"the live server raised: {errors!r}"
