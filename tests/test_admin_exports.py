"""The admin area's CSV exports (advocates with the list's filters, participations, the points ledger,
reward orders), checked cell by cell on a hand-built program; formulas in user content neutralised;
every export audited; POST only, admins only."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import update

from portal.extensions import db
from portal.models import AdvocateProfile, Participation, ParticipationStatus, User, utcnow
from portal.services import rewards
from search.indexing import apply_pending
from tests.support import audits, engaged, give, make_advocate, make_opp, make_reward, post_form

EVIL = '=HYPERLINK("http://evil.example","click")'


@pytest.fixture
def program(app, make_user, admin):
    s = db.session
    ada = make_advocate(make_user, "ada.export@example.com", name="Ada Export")
    evil = make_advocate(make_user, "eve.export@example.com", name=EVIL)
    s.execute(update(User).where(User.id == ada).values(company="Acme, Inc."))
    s.execute(update(User).where(User.id == evil).values(company="+cmd|calc"))
    now = utcnow()
    s.execute(update(AdvocateProfile).where(AdvocateProfile.user_id == ada).values(confirmed_at=now))
    s.execute(
        update(AdvocateProfile).where(AdvocateProfile.user_id == evil).values(confirmed_at=now - timedelta(days=400))
    )
    s.commit()
    for days in (5, 20, 40, 60):  # Eve is at her limit (4 in 90 days by default)
        engaged(evil, now - timedelta(days=days))
    opp = make_opp("speaking", title="Panel, with a comma")
    s.add(
        Participation(
            opportunity_id=opp, user_id=ada, status=ParticipationStatus.REQUESTED, message='I said "yes"\nand more'
        )
    )
    s.add(Participation(opportunity_id=opp, user_id=evil, status=ParticipationStatus.DECLINED, message="-1+1"))
    s.commit()
    give(ada, 100, reason="@welcome")
    mug = make_reward(cost=30, name="Mug")
    rewards.redeem(s, s.get(User, ada), mug, "export-order")
    s.commit()
    return {"ada": ada, "evil": evil, "opp": opp}


def _export(client, url, page):
    resp = post_form(client, url, {}, page=page)
    assert resp.status_code == 200 and resp.mimetype == "text/csv" and resp.is_streamed, resp.status_code
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"), newline="")))
    return rows[0], [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def test_advocates_with_the_lists_filters_and_formulas_neutralised(app, admin, admin_client, program):
    header, rows = _export(admin_client, "/admin/exports/advocates", "/admin/advocates")
    assert header[:3] == ["id", "name", "email"]
    by_email = {r["email"]: r for r in rows}
    assert by_email["ada.export@example.com"]["company"] == "Acme, Inc."
    assert by_email["eve.export@example.com"]["name"] == "'" + EVIL
    assert by_email["eve.export@example.com"]["company"] == "'+cmd|calc"
    _, stale = _export(admin_client, "/admin/exports/advocates?freshness=stale", "/admin/advocates?freshness=stale")
    assert [r["email"] for r in stale] == ["eve.export@example.com"]
    apply_pending(db.engine)  # the fatigue filter reads the statuses the search index holds
    _, limited = _export(admin_client, "/admin/exports/advocates?fatigue=at_limit", "/admin/advocates?fatigue=at_limit")
    assert [r["email"] for r in limited] == ["eve.export@example.com"]
    assert [e.details["filters"] for e in audits("export.advocates")] == [
        {},
        {"freshness": "stale"},
        {"fatigue": "at_limit"},
    ]
    assert {e.actor_id for e in audits("export.advocates")} == {admin.id}


def test_participations_of_one_opportunity_and_one_status(app, admin_client, program):
    page = f"/admin/opportunities/{program['opp']}"
    _, rows = _export(admin_client, f"/admin/exports/participations?opp_id={program['opp']}", page)
    assert [(r["advocate_email"], r["status"], r["opportunity"], r["message"]) for r in rows] == [
        ("ada.export@example.com", "requested", "Panel, with a comma", 'I said "yes"\nand more'),
        ("eve.export@example.com", "declined", "Panel, with a comma", "'-1+1"),
    ]
    _, declined = _export(admin_client, f"/admin/exports/participations?opp_id={program['opp']}&status=declined", page)
    assert [r["advocate_name"] for r in declined] == ["'" + EVIL]
    _, everything = _export(admin_client, "/admin/exports/participations", "/admin/opportunities")
    assert len(everything) == 6  # and Eve's four past engagements


def test_the_ledger_and_reward_orders(app, admin_client, program):
    _, ledger = _export(admin_client, "/admin/exports/ledger", "/admin/points")
    ada = [r for r in ledger if r["advocate_email"] == "ada.export@example.com"]
    assert [(r["amount"], r["kind"], r["reason"]) for r in ada] == [
        ("100", "earned", "'@welcome"),
        ("-30", "redeemed", ada[1]["reason"]),  # a number stays a number: -30, not '-30
    ]
    _, orders = _export(admin_client, "/admin/exports/redemptions?status=requested", "/admin/redemptions")
    assert [(r["advocate_email"], r["reward"], r["points_cost"], r["status"]) for r in orders] == [
        ("ada.export@example.com", "Mug", "30", "requested")
    ]
    _, none = _export(admin_client, "/admin/exports/redemptions?status=fulfilled", "/admin/redemptions")
    assert none == []
    assert len(audits("export.ledger")) == 1 and len(audits("export.redemptions")) == 2


def test_exports_are_posts_for_admins(app, admin_client, advocate_client, staff_client, program):
    assert admin_client.get("/admin/exports/ledger").status_code == 405
    assert admin_client.post("/admin/exports/ledger").status_code == 400  # no CSRF token
    for c in (advocate_client, staff_client):
        assert post_form(c, "/admin/exports/ledger", {}, page="/account/").status_code == 403
    assert audits("export.ledger") == []


@pytest.mark.parametrize("page", ["/admin/advocates", "/admin/opportunities", "/admin/points", "/admin/redemptions"])
def test_the_lists_offer_their_export(app, admin_client, program, page):
    assert 'action="/admin/' in admin_client.get(page).get_data(as_text=True)
    assert "as CSV" in admin_client.get(page).get_data(as_text=True)
