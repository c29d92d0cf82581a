"""The admin home: what needs a decision today, each queue a count linking to its filtered list;
decisions waiting longer than the service level (a program setting, 3 days by default) are overdue."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from portal.extensions import db
from portal.models import AdvocateProfile, Participation, ParticipationStatus, Redemption, Role, Status, User, utcnow
from portal.services import queues, rewards
from search import backend
from tests.support import (
    audits,
    engaged,
    give,
    make_advocate,
    make_opp,
    make_reward,
    post_form,
    settings_form,
    text_of,
)


@pytest.fixture
def program(app, make_user):
    now = utcnow()
    s = db.session
    old_applicant = make_user(Role.ADVOCATE, Status.PENDING, email="olive.old@example.com", name="Olive Old")
    make_user(Role.ADVOCATE, Status.PENDING, email="nina.new@example.com", name="Nina New")
    s.execute(update(User).where(User.id == old_applicant.id).values(created_at=now - timedelta(days=5)))
    fresh = make_advocate(make_user, "fred.fresh@example.com", name="Fred Fresh")
    stale = make_advocate(make_user, "stan.stale@example.com", name="Stan Stale")
    s.execute(update(AdvocateProfile).where(AdvocateProfile.user_id == fresh).values(confirmed_at=now))
    s.execute(
        update(AdvocateProfile).where(AdvocateProfile.user_id == stale).values(confirmed_at=now - timedelta(days=400))
    )
    busy = make_advocate(make_user, "bea.busy@example.com", name="Bea Busy")
    s.execute(update(AdvocateProfile).where(AdvocateProfile.user_id == busy).values(confirmed_at=now))
    s.commit()
    for days in (5, 20, 40, 60):  # the default policy: at most 4 engagements in 90 days
        engaged(busy, now - timedelta(days=days))
    waiting_opp = make_opp("speaking", title="Panel with a request waiting")
    make_opp("review", title="Review nobody asked for")
    s.add(Participation(opportunity_id=waiting_opp, user_id=fresh, status=ParticipationStatus.REQUESTED))
    s.commit()
    mug = make_reward(cost=10, name="Mug")
    give(fresh, 100)
    order, _ = rewards.redeem(s, s.get(User, fresh), mug, "home-order")
    s.flush()
    s.execute(update(Redemption).where(Redemption.id == order.id).values(created_at=now - timedelta(days=4)))
    s.commit()
    backend().apply_pending(db.engine)  # what the request that changed them does after its commit
    return {"fresh": fresh, "stale": stale, "busy": busy}


def _queues(html: str) -> dict[str, tuple[int, bool]]:
    """label -> (count, overdue) as the home page shows them."""
    out = {}
    for item in re.findall(r'<li class="card queue([^"]*)">(.*?)</li>', html, re.S):
        classes, body = item
        count = int(re.search(r'class="stat-value">([\d,]+)<', body).group(1).replace(",", ""))
        label = re.search(r'class="stat-label">([^<]+)<', body).group(1)
        out[label] = (count, "queue-overdue" in classes and "Overdue" in body)
    return out


def test_the_home_shows_each_queue_with_its_count_and_what_is_overdue(app, admin_client, program):
    html = admin_client.get("/admin/").get_data(as_text=True)
    assert _queues(html) == {
        "Registrations awaiting approval": (2, True),  # Olive has waited 5 days
        "Requests for a place waiting": (1, False),
        "Reward orders to fulfil": (1, True),  # 4 days
        "Nominations to review": (0, False),
        "Stale profiles": (1, False),  # states, never overdue
        "Advocates at their limit": (1, False),
    }
    assert "oldest waiting 5 days" in html and "longer than 3 days" in html


def test_each_queue_links_to_the_list_that_holds_it(app, admin_client, program):
    html = admin_client.get("/admin/").get_data(as_text=True)
    links = dict(
        (label, href.replace("&amp;", "&"))
        for href, label in re.findall(
            r'<a href="([^"]+)"><span class="stat-value">[^<]*</span> <span class="stat-label">([^<]+)<', html
        )
    )
    assert "Olive Old" in text_of(admin_client.get(links["Registrations awaiting approval"]))
    waiting = text_of(admin_client.get(links["Requests for a place waiting"]))
    assert "Panel with a request waiting" in waiting and "Review nobody asked for" not in waiting
    assert "Mug" in text_of(admin_client.get(links["Reward orders to fulfil"]))
    stale = text_of(admin_client.get(links["Stale profiles"]))
    assert "Stan Stale" in stale and "Fred Fresh" not in stale and "1 advocate with a stale profile" in stale
    at_limit = text_of(admin_client.get(links["Advocates at their limit"]))
    assert "Bea Busy" in at_limit and "Fred Fresh" not in at_limit


def test_the_service_level_is_a_setting_and_its_change_is_audited(app, admin, admin_client, program):
    page = admin_client.get("/admin/settings").get_data(as_text=True)
    assert re.search(r'id="service_level_days"[^>]*value="3"', page)
    resp = post_form(admin_client, "/admin/settings", settings_form(service_level_days="7"))
    assert resp.status_code == 302
    assert queues.service_level_days(db.session) == 7
    assert [e.details for e in audits("settings.update")] == [
        {"before": {"service_level_days": 3}, "after": {"service_level_days": 7}}
    ]
    assert {
        label: overdue for label, (_, overdue) in _queues(admin_client.get("/admin/").get_data(as_text=True)).items()
    } == {
        "Registrations awaiting approval": False,
        "Requests for a place waiting": False,
        "Reward orders to fulfil": False,
        "Nominations to review": False,
        "Stale profiles": False,
        "Advocates at their limit": False,
    }


@pytest.mark.parametrize(("value", "message"), [("0", "between 1 and 90"), ("91", "between 1 and 90"), ("x", "")])
def test_a_bad_service_level_is_refused_on_the_page(app, admin_client, value, message):
    resp = post_form(admin_client, "/admin/settings", settings_form(service_level_days=value))
    assert resp.status_code == 422 and message in resp.get_data(as_text=True)
    assert queues.service_level_days(db.session) == 3
    assert audits("settings.update") == []


def test_the_account_counts_count_advocates_as_the_advocate_list_does(app, admin_client, program, make_user):
    make_user(Role.STAFF, email="stella.staff@example.com", name="Stella Staff")  # active, not an advocate
    html = admin_client.get("/admin/").get_data(as_text=True)
    stats = dict(
        (label, int(value.replace(",", "")))
        for value, label in re.findall(
            r'<div class="stat card"><span class="stat-value">([\d,]+)</span><span class="stat-label">([^<]+)<', html
        )
    )
    listed = re.search(r"([\d,]+) advocates?", text_of(admin_client.get("/admin/advocates?status=active")))
    assert stats["Active advocates"] == 3 == int(listed.group(1).replace(",", ""))  # Fred, Stan, Bea
    assert stats["Waiting for approval"] == 2
