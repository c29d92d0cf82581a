"""The admin's health page: where the rate limits are counted (issue 11: per worker in production),
without ever showing a credential; the database, the search index and the outbox at a glance. Admins
only, GET only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from portal.extensions import db
from portal.models import OutboxMessage, OutboxStatus


def _fact(html: str, label: str) -> str:
    found = re.search(rf"<dt>{re.escape(label)}</dt><dd>(.*?)</dd>", html, re.S)
    assert found, label
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def _outbox(status: OutboxStatus, created_at: datetime | None = None) -> None:
    db.session.add(
        OutboxMessage(
            recipient="someone@example.com",
            subject="Hello",
            body_text="Hi",
            body_html="<p>Hi</p>",
            template="test",
            status=status,
            **({"created_at": created_at} if created_at else {}),
        )
    )


def test_the_health_page_shows_where_limits_are_counted_and_the_rest(app, admin_client, backend):
    queued_at = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
    _outbox(OutboxStatus.QUEUED, queued_at)
    _outbox(OutboxStatus.QUEUED, queued_at + timedelta(hours=1))
    _outbox(OutboxStatus.FAILED)
    for _ in range(3):
        _outbox(OutboxStatus.SENT)
    db.session.commit()

    resp = admin_client.get("/admin/health")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert re.search(r"<h1>Health</h1>", html)
    # rate limits: the tests' default, memory counted in one declared process
    assert _fact(html, "Storage") == "memory://"
    assert _fact(html, "Shared between processes") == "no"
    assert _fact(html, "Single process declared") == "yes"
    assert "One process" in html
    assert "Rate limits are turned off" in html  # as in these tests (RATELIMIT_ENABLED = False)
    # the database the app really uses
    assert _fact(html, "Backend") == backend
    assert re.fullmatch(r"\d+(\.\d+)*", _fact(html, "Server version"))
    # the search index (through the search backend) and a link to its own page
    assert _fact(html, "Advocates in the index") in ("0", "—")
    assert 'href="/admin/search-index"' in html
    # the outbox by status, and how long the oldest message has waited
    assert [_fact(html, label) for label in ("Waiting to be sent", "Being sent", "Sent", "Gave up")] == [
        "2",
        "0",
        "3",
        "1",
    ]
    assert "2026" in _fact(html, "Oldest waiting since")
    assert "flask outbox retry-failed" in html
    # the admin navigation leads there: Settings, then Health in the section's own bar
    home = admin_client.get("/admin/").get_data(as_text=True)
    assert '<a href="/admin/settings">Settings</a>' in home
    assert '<a href="/admin/health">Health</a>' in admin_client.get("/admin/settings").get_data(as_text=True)


@pytest.fixture
def per_process(app_config):
    """memory:// without RATELIMIT_SINGLE_PROCESS (what development runs with)."""
    app_config["RATELIMIT_SINGLE_PROCESS"] = False
    return app_config


def test_limits_counted_per_process_are_called_out(per_process, admin_client):
    html = admin_client.get("/admin/health").get_data(as_text=True)
    assert "Counted per process" in html and "PORTAL_RATELIMIT_STORAGE_URI=redis://host:6379/0" in html
    assert _fact(html, "Shared between processes") == "no" and _fact(html, "Single process declared") == "no"


@pytest.fixture(
    params=[
        ("redis://:s3cret@cache.internal:6380/0", "redis://cache.internal:6380"),
        ("rediss://portal:s3cret@cache.internal:6380/1?password=s3cret", "rediss://cache.internal:6380"),
        (
            "redis+sentinel://portal:s3cret@s1.internal:26379,s2.internal:26379/main",
            "redis+sentinel://s1.internal:26379,s2.internal:26379",
        ),
    ]
)
def redis_with_password(request, app_config):
    """A shared storage whose URI holds a password (the limiter connects only when it counts, and the
    limits are off in these tests, so no server is needed)."""
    uri, shown = request.param
    app_config["RATELIMIT_STORAGE_URI"] = uri
    return shown


def test_a_shared_storage_is_shown_without_its_credentials(redis_with_password, admin_client):
    html = admin_client.get("/admin/health").get_data(as_text=True)
    assert _fact(html, "Storage") == redis_with_password
    assert _fact(html, "Shared between processes") == "yes" and "Shared by every worker" in html
    assert "s3cret" not in html and "portal:" not in html


def test_only_admins_see_the_health_page(client, advocate_client, staff_client, admin_client):
    assert admin_client.get("/admin/health").status_code == 200
    assert staff_client.get("/admin/health").status_code == 403
    assert advocate_client.get("/admin/health").status_code == 403
    anon = client.get("/admin/health")
    assert anon.status_code == 302 and "/auth/login" in anon.headers["Location"]


def test_the_health_page_changes_nothing(admin_client):
    assert admin_client.post("/admin/health").status_code in (400, 405)
    assert db.session.query(OutboxMessage).count() == 0
