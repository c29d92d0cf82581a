"""Every list of the admin area is paged (issue 12: "Every list page is paginated"): the opportunities,
the reward orders and the applications waiting show a page at a time, keep their filter from page to
page, and a page past the last shows the last. (The advocate list, the audit log and an opportunity's
participants have their own tests.)"""

from __future__ import annotations

import re

import pytest

from portal.extensions import db
from portal.models import EntrySource, OpportunityStatus, Role, Status, User
from portal.services import accounts, opportunities, paging, points, rewards
from tests.support import make_opp, make_reward

PER_PAGE = 3


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(opportunities, "ADMIN_PER_PAGE", PER_PAGE)
    monkeypatch.setattr(rewards, "QUEUE_PER_PAGE", PER_PAGE)
    monkeypatch.setattr(paging, "PER_PAGE", PER_PAGE)


def _shown(html: str, names: list[str]) -> list[str]:
    """The names on the page, in the order the page shows them."""
    found = {n: m.start() for n in names if (m := re.search(rf">{re.escape(n)}<", html))}
    return sorted(found, key=found.get)


def _walk(client, url: str, names: list[str], pages: int, **params) -> list[list[str]]:
    seen = []
    for page in range(1, pages + 1):
        html = client.get(url, query_string={**params, "page": page}).get_data(as_text=True)
        assert f"Page {page} of {pages}" in html, html[:3000]
        seen.append(_shown(html, names))
    last = client.get(url, query_string={**params, "page": 99}).get_data(as_text=True)
    assert f"Page {pages} of {pages}" in last and _shown(last, names) == seen[-1]
    flat = [n for page in seen for n in page]
    assert sorted(flat) == sorted(names) and len(flat) == len(set(flat))  # each once, on one page
    return seen


def test_the_opportunity_list_is_paged_and_keeps_its_status(app, admin_client, small_pages):
    drafts = [f"Draft talk {i}" for i in range(4)]
    opens = [f"Open panel {i}" for i in range(7)]
    for title in drafts:
        make_opp(title=title, status=OpportunityStatus.DRAFT)
    for title in opens:
        make_opp(title=title)
    seen = _walk(admin_client, "/admin/opportunities", opens, 3, status="open")
    assert [len(p) for p in seen] == [3, 3, 1]
    assert seen[0] == opens[::-1][:3]  # newest first
    html = admin_client.get("/admin/opportunities?status=open").get_data(as_text=True)
    assert 'href="/admin/opportunities?page=2&amp;status=open"' in html
    _walk(admin_client, "/admin/opportunities", drafts + opens, 4)


def test_the_reward_orders_are_paged_oldest_first(app, admin_client, make_user, small_pages):
    reward_id = make_reward(cost=1, name="Pin")
    names = [f"Orderer {i}" for i in range(5)]
    for i, name in enumerate(names):
        user = make_user(email=f"orderer{i}@example.com", name=name)
        points.award(db.session, user.id, 5, key=f"pin:{i}", reason="Seed", source=EntrySource.MANUAL)
        db.session.commit()
        rewards.redeem(db.session, db.session.get(User, user.id), reward_id, f"pin-order-{i}")
        db.session.commit()
    seen = _walk(admin_client, "/admin/redemptions", names, 2, status="requested")
    assert seen[0] == names[:3]
    assert "No one" not in admin_client.get("/admin/redemptions?status=all&page=2").get_data(as_text=True)
    assert _shown(admin_client.get("/admin/redemptions?status=fulfilled").get_data(as_text=True), names) == []


def test_the_applications_waiting_are_paged_oldest_first(app, admin_client, make_user, small_pages):
    names = [f"Applicant {i}" for i in range(7)]
    for i, name in enumerate(names):
        make_user(Role.ADVOCATE, Status.PENDING, email=f"applicant{i}@example.com", name=name)
    seen = _walk(admin_client, "/admin/pending", names, 3)
    assert seen[0] == names[:3]
    assert accounts.waiting_for_approval(db.session, page=3).rows[0].name == names[6]
