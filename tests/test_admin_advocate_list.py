"""The admins' advocate list: filters (account status, industry, region, country, product, activity
type opted in, freshness, fatigue, joined between), sort, pages, and bulk actions on a selection
(nudge, add a tag, export), each with a summary; the export takes the same filters."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest.mock import patch

import pytest
from sqlalchemy import update

from portal.extensions import db
from portal.models import AdvocateProfile, Country, EntrySource, Industry, Product, Region, Status, User, utcnow
from portal.services import points, queues, rewards
from search.indexing import apply_pending
from tests.support import ALL_TYPES, activity_type_id, audits, csrf_from, item_id, make_advocate, make_reward, text_of


@pytest.fixture
def people(app, make_user):
    now = utcnow()
    s = db.session
    ids = {
        "ana": make_advocate(
            make_user,
            "ana@example.com",
            name="Ana Bank",
            industry="Banking and capital markets",
            country="DE",
            products=["Data Platform"],
        ),
        "bo": make_advocate(
            make_user, "bo@example.com", name="Bo Care", industry="Healthcare", country="US", types=("review",)
        ),
        "cy": make_advocate(
            make_user,
            "cy@example.com",
            name="Cy Shop",
            industry="Healthcare",
            country="JP",
            products=["Data Platform"],
            types=ALL_TYPES,
        ),
        "di": make_advocate(make_user, "di@example.com", name="Di Gone", country="DE"),
    }
    s.execute(update(User).where(User.id == ids["di"]).values(status=Status.SUSPENDED))
    for i, key in enumerate(("ana", "bo", "cy", "di")):
        s.execute(update(User).where(User.id == ids[key]).values(created_at=now - timedelta(days=10 * (i + 1))))
    s.execute(update(AdvocateProfile).values(confirmed_at=now))
    s.execute(
        update(AdvocateProfile)
        .where(AdvocateProfile.user_id == ids["bo"])
        .values(confirmed_at=now - timedelta(days=400))
    )
    s.commit()
    return ids


def _names(client, **params) -> list[str]:
    resp = client.get("/admin/advocates", query_string=params)
    assert resp.status_code == 200, resp.status_code
    return re.findall(r'<a href="/admin/advocates/\d+/profile">([^<]+)</a>', resp.get_data(as_text=True))


def test_each_filter_and_the_sort(app, admin_client, people):
    europe = item_id(Region, "Europe")
    assert _names(admin_client) == ["Ana Bank", "Bo Care", "Cy Shop"]  # active ones, by name
    assert _names(admin_client, status="suspended") == ["Di Gone"]
    assert _names(admin_client, industry=item_id(Industry, "Healthcare")) == ["Bo Care", "Cy Shop"]
    assert _names(admin_client, country="JP") == ["Cy Shop"]
    assert _names(admin_client, region=europe) == ["Ana Bank"]
    assert _names(admin_client, product=item_id(Product, "Data Platform")) == ["Ana Bank", "Cy Shop"]
    assert _names(admin_client, activity=activity_type_id("speaking")) == ["Ana Bank", "Cy Shop"]
    assert _names(admin_client, freshness="stale") == ["Bo Care"]
    today = utcnow().date()
    since, until = (today - timedelta(days=25)).isoformat(), (today - timedelta(days=15)).isoformat()
    assert _names(admin_client, joined_since=since, joined_until=until) == ["Bo Care"]
    assert _names(admin_client, sort="newest") == ["Ana Bank", "Bo Care", "Cy Shop"]
    assert _names(admin_client, sort="oldest") == ["Cy Shop", "Bo Care", "Ana Bank"]
    assert _names(
        admin_client, industry=item_id(Industry, "Healthcare"), product=item_id(Product, "Data Platform")
    ) == ["Cy Shop"]
    assert db.session.get(Country, "DE").region_id == europe


def test_the_level_filter_is_the_range_of_lifetime_points_level_for_reads(app, admin_client, people, make_user):
    """Levels come from lifetime points (points.level_for); the filter is that range in SQL. A redemption
    lowers the balance, not the level; no ledger yet is the first level."""
    s = db.session
    for key, amount in (("ana", 499), ("bo", 1500), ("di", 20000)):
        points.award(s, people[key], amount, key=f"level-test:{key}", reason="Test", source=EntrySource.MANUAL)
    points.award(s, people["cy"], 4000, key="level-test:cy", reason="Test", source=EntrySource.MANUAL)
    reward = make_reward(cost=3999, name="Big prize")
    s.commit()
    rewards.redeem(s, s.get(User, people["cy"]), reward, "level-test-order")
    s.commit()
    assert (
        points.balance(s, people["cy"]) == 1
        and points.level_for(points.lifetime_earned(s, people["cy"])).name == "Gold"
    )
    assert _names(admin_client, level="Member") == ["Ana Bank"]
    assert _names(admin_client, level="Bronze") == []
    assert _names(admin_client, level="Silver") == ["Bo Care"]
    assert _names(admin_client, level="Gold") == ["Cy Shop"]
    assert _names(admin_client, level="Platinum") == []
    assert _names(admin_client, level="Platinum", status="suspended") == ["Di Gone"]
    assert _names(admin_client, level="Silver", industry=item_id(Industry, "Healthcare")) == ["Bo Care"]
    # an advocate with no points at all is a Member
    nobody = make_advocate(make_user, "nobody@example.com", name="Al Zero")
    assert points.lifetime_earned(s, nobody) == 0
    assert _names(admin_client, level="Member") == ["Al Zero", "Ana Bank"]


@pytest.mark.parametrize(
    "params",
    [
        {"industry": "999999"},
        {"joined_since": "2026-02-30"},
        {"joined_since": "2026-12-06", "joined_until": "2026-12-01"},
        {"level": "Diamond"},
    ],
)
def test_bad_filters_are_answered_on_the_page(app, admin_client, people, params):
    resp = admin_client.get("/admin/advocates", query_string=params)
    assert resp.status_code == 422 and "Fix the filters above." in resp.get_data(as_text=True)


def _bulk(client, action, ids, **extra):
    token = csrf_from(client.get("/admin/advocates").get_data(as_text=True))
    return client.post(
        "/admin/advocates/bulk", data={"csrf_token": token, "action": action, "user_id": [str(i) for i in ids], **extra}
    )


def test_nudge_the_selection(app, admin, admin_client, people, mailbox):
    db.session.execute(
        update(AdvocateProfile).where(AdvocateProfile.user_id == people["cy"]).values(notify_reminders=False)
    )
    db.session.commit()
    resp = _bulk(admin_client, "nudge", [people["ana"], people["cy"], people["di"]])
    assert resp.status_code == 302
    page = admin_client.get("/admin/advocates").get_data(as_text=True)
    assert "Sent the email to 1 advocate. 2 skipped: not active, or they turned reminders off." in page
    assert mailbox.wait_for("ana@example.com", subject="Is your advocate profile still current?")
    assert mailbox.to("cy@example.com") == [] and mailbox.to("di@example.com") == []
    assert [e.details["sent"] for e in audits("advocates.nudge")] == [1]


def test_approve_the_selection(app, admin, admin_client, people, make_user, mailbox):
    waiting = make_user(status=Status.PENDING, email="wanda.waiting@example.com", name="Wanda Waiting")
    resp = _bulk(admin_client, "approve", [waiting.id, people["ana"]])
    assert resp.status_code == 302
    page = text_of(admin_client.get("/admin/advocates"))
    assert "Approved 1 advocate; each has been emailed. 1 skipped: not waiting for approval." in page
    db.session.rollback()
    assert db.session.get(User, waiting.id).status == Status.ACTIVE
    assert db.session.get(User, people["ana"]).status == Status.ACTIVE  # unchanged
    assert mailbox.wait_for("wanda.waiting@example.com", subject="approved")
    assert [e.target_id for e in audits("user.approve")] == [waiting.id]


def test_tag_the_selection(app, admin_client, people):
    resp = _bulk(admin_client, "tag", [people["ana"], people["bo"]], tag="  Q3 Launch  ")
    assert resp.status_code == 302
    assert "Tagged 2 advocates “Q3 Launch”." in admin_client.get("/admin/advocates").get_data(as_text=True)
    tags = {uid: [t.name for t in db.session.get(AdvocateProfile, uid).tags] for uid in (people["ana"], people["bo"])}
    assert tags == {people["ana"]: ["Q3 Launch"], people["bo"]: ["Q3 Launch"]}
    _bulk(admin_client, "tag", [people["ana"]], tag="q3 launch")  # the same tag, another spelling
    assert "Tagged 0 advocates" in admin_client.get("/admin/advocates").get_data(as_text=True)
    assert len(audits("advocates.tag")) == 2


def test_export_the_selection_and_nothing_selected(app, admin_client, people):
    resp = _bulk(admin_client, "export", [people["cy"], people["ana"]])
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    emails = [line.split(",")[2] for line in resp.get_data(as_text=True).splitlines()[1:]]
    assert emails == ["ana@example.com", "cy@example.com"]
    assert audits("export.advocates")[0].details == {"selection": sorted([people["cy"], people["ana"]])}
    assert _bulk(admin_client, "nudge", []).status_code == 302
    assert "Select advocates first" in admin_client.get("/admin/advocates").get_data(as_text=True)


def test_the_filtered_export_matches_the_list(app, admin_client, people):
    token = csrf_from(admin_client.get("/admin/advocates").get_data(as_text=True))
    hc = item_id(Industry, "Healthcare")
    resp = admin_client.post(f"/admin/exports/advocates?industry={hc}&sort=oldest", data={"csrf_token": token})
    emails = [line.split(",")[2] for line in resp.get_data(as_text=True).splitlines()[1:]]
    assert sorted(emails) == ["bo@example.com", "cy@example.com"]


def test_the_fatigue_filter_reads_the_index_and_pauses_live(app, admin_client, make_user):
    """The fatigue tab and the home page's "at their limit" count ask the same function: the statuses the
    search index holds (search.service.advocate_ids_by_fatigue), with pauses and blackouts read now."""
    today = utcnow().date()
    make_advocate(make_user, "held@example.com", name="Held Limit", max_asks_per_month=0)
    away = make_advocate(make_user, "away@example.com", name="Away Limit", max_asks_per_month=0)
    back = make_advocate(
        make_user, "back@example.com", name="Back Limit", max_asks_per_month=0, paused_until=today + timedelta(days=5)
    )
    make_advocate(make_user, "free@example.com", name="Free Rider")
    apply_pending(db.engine)
    assert _names(admin_client, fatigue="at_limit") == ["Away Limit", "Held Limit"]
    assert _names(admin_client, fatigue="unavailable") == ["Back Limit"]
    assert _names(admin_client, fatigue="under_used") == []
    assert _names(admin_client, fatigue="available") == ["Free Rider"]
    # Pauses change behind the index's back (bulk updates queue no index write): read live all the same.
    db.session.execute(
        update(AdvocateProfile).where(AdvocateProfile.user_id == away).values(paused_until=today + timedelta(days=5))
    )
    db.session.execute(update(AdvocateProfile).where(AdvocateProfile.user_id == back).values(paused_until=None))
    db.session.commit()
    assert _names(admin_client, fatigue="at_limit") == ["Back Limit", "Held Limit"]
    assert _names(admin_client, fatigue="unavailable") == ["Away Limit"]
    assert queues.at_limit_count(db.session) == 2
    assert "2 advocates at limit" in text_of(admin_client.get("/admin/advocates?fatigue=at_limit"))
    # the large side is named by the others (NOT IN): the same answer
    with patch("admin.advocates.FEW", 0):
        assert _names(admin_client, fatigue="available") == ["Free Rider"]
        assert _names(admin_client, fatigue="at_limit") == ["Back Limit", "Held Limit"]
        assert _names(admin_client, fatigue="near_limit") == []
