"""`flask demo seed`: the demo community `make run` creates on a new machine."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from portal.cli import demo_data as data
from portal.cli.demo import DEMO_PASSWORD
from portal.extensions import db
from portal.models import (
    AdvocateProfile,
    Consent,
    Industry,
    Nomination,
    NominationStatus,
    Opportunity,
    OpportunityStatus,
    OutboxMessage,
    Participation,
    ParticipationStatus,
    PointsEntry,
    Redemption,
    RedemptionStatus,
    ReferenceOutcome,
    ReferenceRequest,
    ReferenceStatus,
    Reward,
    Role,
    Status,
    User,
    UserBadge,
    utcnow,
)
from portal.models.mail import OutboxStatus
from portal.services import fatigue, lists, participation, points, profiles, queues
from tests.support import assert_ledger_consistent, login, page_text


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
    assert len({u.name for u in advocates}) == len(advocates)  # no two people of the same name
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

    # Company, industry, country, size and title belong together: each company is one hand-written customer.
    companies = {c.name: c for c in data.COMPANIES}
    assert len(companies) == len(data.COMPANIES) >= 25
    assert all(
        c.industry in lists.INDUSTRIES and c.size_band in lists.SIZE_BANDS and set(c.products) <= set(lists.PRODUCTS)
        for c in data.COMPANIES
    )
    by_user = {p.user_id: p for p in profiles}
    facts: dict[str, set] = {}
    for u in advocates:
        c = companies[u.company]
        assert u.email.endswith("@" + c.domain), u.email
        assert u.job_title in data.TITLES[c.industry] + data.COMMON_TITLES, (u.company, u.job_title)
        p = by_user.get(u.id)
        if p is None:
            continue
        assert (p.industry.name, p.country_code, p.size_band.name) == (c.industry, c.country, c.size_band), u.company
        assert {x.name for x in p.products} <= set(c.products)
        assert p.timezone == data.TIMEZONES[c.country]
        facts.setdefault(u.company, set()).add((p.industry_id, p.country_code))
    assert all(len(v) == 1 for v in facts.values())  # each company: exactly one industry and one country
    assert {p.country_code for p in profiles} <= set(data.COUNTRIES)  # no Svalbard
    assert len(facts) >= 25  # every company has someone


def test_demo_seed_if_empty_does_nothing_the_second_time(app, runner):
    assert seed(runner, "--if-empty", "--advocates", "12").exit_code == 0
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


def test_demo_histories_through_the_services_and_first_pages(app, runner):
    result = seed(runner)
    assert result.exit_code == 0, result.output
    now = utcnow()
    active = db.session.scalars(select(User.id).where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE)).all()

    parts = Counter(db.session.scalars(select(Participation.status)))
    assert parts[ParticipationStatus.COMPLETED] >= 40 and parts[ParticipationStatus.NO_SHOW] > 0
    assert parts[ParticipationStatus.DECLINED] > 0 and parts[ParticipationStatus.APPROVED] > 0
    assert parts[ParticipationStatus.REQUESTED] >= 5  # the admin's queue has work
    # Past opportunities are closed and dated in the last 18 months; their participations are dated with them.
    closed = db.session.scalars(
        select(Opportunity).where(Opportunity.status == OpportunityStatus.CLOSED, Opportunity.private.is_(False))
    ).all()
    assert len(closed) >= 10
    assert all(now.date().toordinal() - 550 <= o.engagement_date.toordinal() for o in closed)
    assert all(o.deadline and o.deadline < now.date() for o in closed)
    done = db.session.scalars(
        select(Participation)
        .join(Opportunity, Opportunity.id == Participation.opportunity_id)
        .where(Participation.status == ParticipationStatus.COMPLETED, Opportunity.private.is_(False))
    )
    assert all(p.completed_at < now and p.completed_at.date() > p.opportunity.engagement_date for p in done)

    # Points were awarded by the service, once per completion, and dated then; the ledger agrees with balances.
    earned = db.session.scalars(select(PointsEntry).where(PointsEntry.source_id.is_not(None))).all()
    keys = [e.idempotency_key for e in earned if e.idempotency_key.startswith("participation:")]
    assert len(keys) == len(set(keys)) == parts[ParticipationStatus.COMPLETED]
    assert min(e.created_at for e in earned) < now.replace(year=now.year - 1)
    assert_ledger_consistent(*active)
    assert count(model=UserBadge) > len(active) // 2  # badges followed the points
    orders = Counter(db.session.scalars(select(Redemption.status)))
    assert orders[RedemptionStatus.FULFILLED] > 0 and orders[RedemptionStatus.REQUESTED] > 0
    # History is not news: its emails are recorded as sent when they happened; nobody is mailed by the seed.
    assert count(model=OutboxMessage) > 0
    assert count(OutboxMessage.status != OutboxStatus.SENT, model=OutboxMessage) == 0
    # The staff have nominated customers, waiting for the admin's review; one is past the service level.
    noms = db.session.scalars(select(Nomination).order_by(Nomination.created_at)).all()
    assert [n.status for n in noms] == [NominationStatus.PENDING] * 3
    # Reference requests: a deal won with an advocate's reference, an ask waiting for its answer, a new one.
    refs = db.session.scalars(select(ReferenceRequest).order_by(ReferenceRequest.created_at)).all()
    assert [(r.status, r.outcome) for r in refs] == [
        (ReferenceStatus.COMPLETED, ReferenceOutcome.WON),
        (ReferenceStatus.ASKED, None),
        (ReferenceStatus.OPEN, None),
    ]
    assert refs[0].completed_at < now - timedelta(days=1) and refs[0].final_amount > 0
    assert (now - noms[0].created_at).days >= queues.service_level_days(db.session) > (now - noms[1].created_at).days

    # Exactly one paused, exactly one at their limit (the fatigue rules' own answer), a few stale profiles.
    paused = count(AdvocateProfile.paused_until >= now.date(), model=AdvocateProfile)
    assert paused == 1
    status = Counter(s.key for s in fatigue.statuses(db.session, list(active)).values())
    assert status["at_limit"] == 1, status
    stale = [p for p in db.session.scalars(select(AdvocateProfile)) if profiles.is_stale(p)]
    assert 3 <= len(stale) <= len(active) // 5
    boards = db.session.scalars(select(Opportunity).where(Opportunity.term_start < now.date())).all()
    assert [len(participation.boards_of(db.session, uid)[0]) > 0 for uid in active].count(True) >= 3  # members
    assert len(boards) == 1 and boards[0].term_end > now.date()  # one board in office
    today = {q.key: q.count for q in queues.today(db.session)}
    assert today["registrations"] >= 2 and today["requests"] >= 5 and today["redemptions"] > 0
    assert today["stale"] == len(stale)

    # The demo sign-in is the first advocate (as 'make run' names it again), rich in history and available.
    demo_email = result.output.strip().rsplit(" ", 1)[-1]
    demo = db.session.scalar(select(User).where(User.email == demo_email))
    db.session.rollback()
    assert demo is not None and demo.status == Status.ACTIVE
    balance = points.balance(db.session, demo.id)
    badge_count = count(UserBadge.user_id == demo.id, model=UserBadge)
    done = count(
        Participation.user_id == demo.id, Participation.status == ParticipationStatus.COMPLETED, model=Participation
    )
    assert balance > 0 and badge_count >= 2 and done >= 3  # a rich history
    status = fatigue.status(db.session, demo.id)
    assert status.key in ("available", "near_limit")  # available for what is open

    admin = app.test_client()
    login(admin, "admin@example.com", DEMO_PASSWORD)
    home = page_text(admin.get("/admin/"))
    assert "Requests for a place waiting" in home and "Reward orders to fulfil" in home

    c = app.test_client()
    assert login(c, demo_email, DEMO_PASSWORD).status_code == 302
    for url, expected in (
        ("/dashboard", f"{balance:,}"),
        ("/leaderboard", demo.name),
        ("/opportunities", "Panel: data governance in practice"),
        ("/me/commitments", "Speak at the Customer Summit in Berlin"),
        ("/me/badges", "First"),
    ):
        resp = c.get(url)
        assert resp.status_code == 200, url
        assert expected in page_text(resp), (url, expected)
    assert demo.id == db.session.scalar(
        select(func.min(User.id)).where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE)
    )
    advocate = db.session.scalars(
        select(User).where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE).order_by(User.id)
    ).first()
    db.session.rollback()
    for email, home in (
        ("admin@example.com", "/admin/"),
        ("sam.sales@example.com", "/staff/"),
        (advocate.email, "/dashboard"),
    ):
        c = app.test_client()
        resp = login(c, email, DEMO_PASSWORD)
        assert resp.status_code == 302, (email, resp.status_code)
        assert c.get("/dashboard").status_code in (200, 302)
        page = c.get(home)
        assert page.status_code == 200, (email, home)
    assert login(app.test_client(), "admin@example.com", "wrong-password-1").status_code == 401
