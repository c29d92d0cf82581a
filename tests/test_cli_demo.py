"""`flask demo seed`: the demo community `make run` creates on a new machine."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.cli.demo import DEMO_PASSWORD
from portal.extensions import db
from portal.models import (
    AdvocateProfile,
    Consent,
    Industry,
    Opportunity,
    OpportunityStatus,
    PointsEntry,
    Reward,
    Role,
    Status,
    User,
)
from tests.support import login


def count(*where, model=User) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def seed(runner, *args):
    result = runner.invoke(args=["demo", "seed", *args])
    db.session.rollback()
    return result


def test_demo_seed_creates_a_varied_community(app, runner):
    result = seed(runner)
    assert result.exit_code == 0, result.output
    assert "Seeded 1 admin, 2 staff and 60 advocates." in result.output and DEMO_PASSWORD in result.output

    assert count(User.role == Role.ADMIN) == 1
    assert count(User.role == Role.STAFF) == 2
    advocates = db.session.scalars(select(User).where(User.role == Role.ADVOCATE)).all()
    assert 55 <= len(advocates) <= 65
    statuses = {u.status for u in advocates}
    assert Status.ACTIVE in statuses and Status.PENDING in statuses  # some wait for approval
    assert len({u.email for u in advocates}) == len(advocates)
    assert len({u.company for u in advocates}) >= 10 and len({u.job_title for u in advocates}) >= 10
    assert count(model=Consent) == len(advocates)  # every advocate consented to the terms

    profiles = db.session.scalars(select(AdvocateProfile)).all()
    active = [u for u in advocates if u.status == Status.ACTIVE]
    assert len(profiles) == len(active)
    assert len({p.industry_id for p in profiles}) >= 5 and len({p.country_code for p in profiles}) >= 5
    assert len({p.timezone for p in profiles}) >= 3
    assert any(p.paused_until for p in profiles) and any(p.blackouts for p in profiles)
    assert any(p.linkedin_url for p in profiles) and any(not p.linkedin_url for p in profiles)
    assert all(p.story and p.products and p.tags and p.preferences for p in profiles)
    assert len({len(p.products) for p in profiles}) > 1  # not all alike

    assert count(Opportunity.status == OpportunityStatus.OPEN, model=Opportunity) >= 5
    assert count(model=Reward) >= 3
    assert count(model=PointsEntry) > 0
    assert count(model=Industry) > 0


def test_demo_seed_if_empty_does_nothing_the_second_time(app, runner):
    assert seed(runner, "--if-empty").exit_code == 0
    before = (
        count(),
        count(model=AdvocateProfile),
        count(model=Opportunity),
        count(model=Reward),
        count(model=PointsEntry),
    )
    again = seed(runner, "--if-empty")
    assert again.exit_code == 0 and "demo seed skipped" in again.output
    first = seed(runner, "--if-empty")  # make run's second start still names an advocate to sign in as
    advocate = db.session.scalar(
        select(User.email).where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE).order_by(User.id).limit(1)
    )
    assert f"Demo advocate sign-in (password {DEMO_PASSWORD}): {advocate}" in first.output
    assert (
        count(),
        count(model=AdvocateProfile),
        count(model=Opportunity),
        count(model=Reward),
        count(model=PointsEntry),
    ) == before
    refused = seed(runner)  # without --if-empty, a database with users is an error, not a second community
    assert refused.exit_code != 0 and "already has users" in refused.output
    assert count() == before[0]


def test_demo_admin_staff_and_advocate_can_sign_in(app, runner):
    assert seed(runner).exit_code == 0
    advocate = db.session.scalars(
        select(User).where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE).order_by(User.id)
    ).first()
    db.session.rollback()
    for email, home in (
        ("admin@example.com", "/admin/"),
        ("sam.sales@example.com", "/dashboard"),
        (advocate.email, "/dashboard"),
    ):
        c = app.test_client()
        resp = login(c, email, DEMO_PASSWORD)
        assert resp.status_code == 302, (email, resp.status_code)
        assert c.get("/dashboard").status_code in (200, 302)
        page = c.get(home)
        assert page.status_code == 200, (email, home)
    assert login(app.test_client(), "admin@example.com", "wrong-password-1").status_code == 401
