"""flask demo seed: a realistic demo community for a new machine."""

from __future__ import annotations

import random
from datetime import timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from portal.cli.common import transaction
from portal.extensions import db
from portal.models import (
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    Blackout,
    Consent,
    Country,
    Digest,
    EntrySource,
    Industry,
    Opportunity,
    OpportunityStatus,
    Product,
    Region,
    Reward,
    Role,
    SelectionMode,
    SizeBand,
    Status,
    TagKind,
    User,
    utcnow,
)
from portal.services import badges, lists, points
from portal.services.passwords import hash_password
from portal.services.profiles import tags_named
from search import backend as search_backend

demo_cli = AppGroup("demo", help="Demo data.")

DEMO_PASSWORD = "demo-advocacy-2026"

FIRST = [
    "Maria",
    "James",
    "Aiko",
    "Oluwaseun",
    "Sofia",
    "Liam",
    "Priya",
    "Mateo",
    "Chloe",
    "Wei",
    "Fatima",
    "Noah",
    "Ingrid",
    "Rafael",
    "Amara",
    "Lucas",
    "Hana",
    "Diego",
    "Elena",
    "Kwame",
    "Zoe",
    "Arjun",
    "Isabel",
    "Tomasz",
    "Leila",
    "Samuel",
    "Mei",
    "Jonas",
    "Nadia",
    "Carlos",
    "Yuki",
    "Grace",
]
LAST = [
    "Garcia",
    "Okafor",
    "Tanaka",
    "Nielsen",
    "Rossi",
    "Kowalski",
    "Chen",
    "Haddad",
    "Silva",
    "Murphy",
    "Schmidt",
    "Patel",
    "Dubois",
    "Andersson",
    "Mensah",
    "Kim",
    "Novak",
    "Fernandes",
    "O'Brien",
    "Ivanova",
    "Nakamura",
    "Moreau",
    "Berg",
    "Adeyemi",
    "Lopez",
    "Wright",
]
COMPANIES = [
    "Northwind Health",
    "Bluefin Bank",
    "Kestrel Logistics",
    "Aurora Retail Group",
    "Helix Biotech",
    "Cobalt Insurance",
    "Meridian Energy",
    "Lumen Education",
    "Orbit Telecom",
    "Sable Manufacturing",
    "Tidewater Public Services",
    "Quartz Software",
    "Juniper Hospitality",
    "Atlas Media",
    "Vertex Automotive",
    "Pinecrest Credit Union",
    "Harbor City Council",
    "Nimbus Cloud Co.",
]
TITLES = [
    "Chief Information Security Officer",
    "VP of Engineering",
    "IT Director",
    "Head of Customer Success",
    "Data Platform Lead",
    "Senior DevOps Engineer",
    "CTO",
    "Director of Operations",
    "Product Manager",
    "Head of Marketing Operations",
    "Solutions Architect",
    "CFO",
    "Security Analyst",
    "Director of Digital Transformation",
    "Procurement Manager",
]


def _email(first: str, last: str, company: str, n: int) -> str:
    domain = "".join(ch for ch in company.lower().split()[0] if ch.isalnum()) + ".example.com"
    local = f"{first}.{last}".lower().replace("'", "")
    return f"{local}{n if n else ''}@{domain}"


TOPICS = [
    "zero trust",
    "cloud migration",
    "data governance",
    "MLOps",
    "FinOps",
    "customer onboarding",
    "incident response",
    "API design",
    "GDPR",
    "HIPAA compliance",
    "digital transformation",
    "change management",
    "observability",
    "cost optimisation",
    "supply chain visibility",
    "fraud detection",
    "developer experience",
    "platform engineering",
    "data mesh",
    "customer retention",
]
USE_CASES = [
    "fraud detection",
    "real-time dashboards",
    "patient data exchange",
    "single sign-on",
    "payments reconciliation",
    "inventory forecasting",
    "claims automation",
    "log analytics",
    "partner integrations",
    "self-service reporting",
    "churn prediction",
    "access reviews",
]
STORIES = [
    "We replaced three legacy tools in six months. Our analysts now spend their mornings on questions, "
    "not on exports, and month-end close went from nine days to four.",
    "Security reviews used to block every release. With automated access reviews we passed our audit with no "
    "findings and cut onboarding time for new engineers from two weeks to two days.",
    "Our field teams finally see stock levels in real time. Stock-outs dropped by a third in the first quarter, "
    "and the store managers were the ones asking for more.",
    "We started small with one hospital ward. Eighteen months later every site shares patient data safely, "
    "and clinicians save about forty minutes a shift.",
]


def _profiles(rng, advocates, now):

    lists.ensure_defaults(db.session)
    industries = db.session.scalars(select(Industry)).all()
    sizes = db.session.scalars(select(SizeBand)).all()
    countries = db.session.scalars(select(Country)).all()
    products = db.session.scalars(select(Product)).all()
    types = db.session.scalars(select(ActivityType)).all()
    today = now.date()
    for i, u in enumerate(advocates):
        p = AdvocateProfile(
            user_id=u.id,
            industry=rng.choice(industries),
            size_band=rng.choice(sizes),
            country=rng.choice(countries),
            story="\n\n".join(rng.sample(STORIES, 2)),
            show_in_directory=rng.random() > 0.1,
            show_on_leaderboard=rng.random() > 0.15,
            digest=rng.choice(list(Digest)),
            linkedin_url=f"https://www.linkedin.com/in/{u.name.lower().replace(' ', '-').replace(chr(39), '')}"
            if rng.random() > 0.3
            else None,
            max_asks_per_month=rng.choice([None, None, 1, 2, 3]),
            max_asks_per_quarter=rng.choice([None, 4, 6]),
            confirmed_at=now - timedelta(days=rng.choice([3, 20, 60, 120, 200, 260, 400])),
            timezone=rng.choice(["Europe/London", "America/New_York", "Asia/Tokyo", "Europe/Berlin", "UTC"]),
        )
        if p.max_asks_per_month and p.max_asks_per_quarter and p.max_asks_per_quarter < p.max_asks_per_month:
            p.max_asks_per_quarter = None
        p.products = rng.sample(products, rng.randint(1, 3))
        p.tags = tags_named(db.session, TagKind.TOPIC, rng.sample(TOPICS, rng.randint(2, 5))) + tags_named(
            db.session, TagKind.USE_CASE, rng.sample(USE_CASES, rng.randint(1, 3))
        )
        chosen = types if i == 1 else rng.sample(types, rng.randint(2, 6))  # the demo sign-in sees everything
        for t in chosen:
            p.preferences.append(
                ActivityPreference(
                    activity_type=t, opted_in=True, note=rng.choice(["", "", "virtual only", "not in Q4"])
                )
            )
        if i % 11 == 0:
            p.paused_until = today + timedelta(days=rng.randint(5, 60))
        if i % 7 == 0:
            start = today + timedelta(days=rng.randint(-3, 30))
            p.blackouts.append(
                Blackout(starts_on=start, ends_on=start + timedelta(days=rng.randint(3, 20)), note="travelling")
            )
        db.session.add(p)
        db.session.flush()


REWARDS = [
    ("Program hoodie", "A warm, soft hoodie with the advocate program logo.", 800, 40, 1),
    ("Coffee gift card", "A $15 gift card for your favourite coffee place.", 300, None, None),
    ("Donation to Code Club", "We donate $50 to Code Club in your name.", 1000, None, None),
    ("Conference pass", "A full pass to our annual user conference, travel not included.", 5000, 5, 1),
    ("Noise-cancelling headphones", "For deep work between calls.", 4000, 3, 1),
]


def _recognition(rng, advocates, admin):
    badges.ensure_default_badges(db.session)
    for name, desc, cost, stock, limit in REWARDS:
        db.session.add(Reward(name=name, description=desc, points_cost=cost, stock=stock, per_advocate_limit=limit))
    for u in advocates:
        for n in range(rng.randint(0, 4)):
            points.award(
                db.session,
                u.id,
                rng.choice([100, 150, 200, 300, 500, 800]),
                key=f"demo:{u.id}:{n}",
                reason=rng.choice(
                    [
                        "Founding member bonus",
                        "Spoke at the user group",
                        "Wrote a peer review",
                        "Joined a reference call",
                    ]
                ),
                source=EntrySource.MANUAL,
                actor_id=admin.id,
            )
    db.session.flush()


OPPORTUNITIES = [
    (
        "review",
        "Share your experience on G2",
        "Tell peers what it is like to use the product day to day. Fifteen minutes, in your own words.",
        None,
        10,
        "first_come",
        "https://www.g2.com/",
    ),
    (
        "speaking",
        "Speak at the Customer Summit in Berlin",
        "A 20-minute session on your journey, with a Q&A.\n\nTravel and a hotel night are covered.",
        4,
        45,
        "selection",
        None,
    ),
    (
        "reference_call",
        "Reference call with a European bank",
        "A 30-minute call with the CISO of a bank evaluating the Security Suite.",
        2,
        14,
        "selection",
        None,
    ),
    (
        "webinar",
        "Panel: data governance in practice",
        "Join two other customers on a one-hour webinar panel.",
        3,
        30,
        "first_come",
        None,
    ),
    (
        "beta",
        "Beta: the new AI Assistant",
        "Try the assistant before launch and give feedback in two short calls.",
        25,
        20,
        "first_come",
        None,
    ),
    (
        "case_study",
        "Case study: healthcare outcomes",
        "A written story of your results, reviewed by you before anything is published.",
        2,
        60,
        "selection",
        None,
    ),
]


def _opportunities(rng, admin, now):
    types = {t.key: t for t in db.session.scalars(select(ActivityType))}
    today = now.date()
    for key, title, desc, capacity, days, mode, url in OPPORTUNITIES:
        opp = Opportunity(
            activity_type=types[key],
            title=title,
            description=desc,
            capacity=capacity,
            deadline=today + timedelta(days=days - 3),
            event_date=today + timedelta(days=days),
            is_virtual=key != "speaking",
            location="Berlin" if key == "speaking" else "",
            external_url=url,
            selection_mode=SelectionMode(mode),
            status=OpportunityStatus.OPEN,
            opened_at=now - timedelta(days=rng.randint(0, 10)),
            created_by_id=admin.id,
        )
        if key == "reference_call":
            opp.regions = list(db.session.scalars(select(Region).where(Region.name == "Europe")))
        if key == "case_study":
            opp.industries = list(db.session.scalars(select(Industry).where(Industry.name == "Healthcare")))
        db.session.add(opp)
    db.session.add(
        Opportunity(
            activity_type=types["advisory_board"],
            title="Customer Advisory Board 2027",
            description="Meet quarterly with product leadership and shape the roadmap.",
            capacity=12,
            term_start=today + timedelta(days=40),
            term_end=today + timedelta(days=40 + 365),
            deadline=today + timedelta(days=30),
            selection_mode=SelectionMode.SELECTION,
            status=OpportunityStatus.OPEN,
            opened_at=now,
            created_by_id=admin.id,
        )
    )
    db.session.flush()


@demo_cli.command("seed")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has users.")
@click.option("--advocates", default=60, show_default=True, help="How many advocates.")
def seed(if_empty, advocates):
    """Create one admin, two staff and a community of advocates (demo password for all)."""
    with transaction():  # one unit of work: the seed is all there or not at all
        if db.session.scalar(select(func.count()).select_from(User)):
            if if_empty:
                click.echo("Database already has users; demo seed skipped.")
                advocate = db.session.scalar(
                    select(User.email)
                    .where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE, User.email.like("%@%.example.com"))
                    .order_by(User.id)
                    .limit(1)
                )
                if advocate:  # still the demo community: say who to sign in as
                    click.echo(f"Demo advocate sign-in (password {DEMO_PASSWORD}): {advocate}")
                return
            raise click.ClickException("The database already has users; seed only an empty database.")
        search_backend().ensure_index()  # an empty index first, so the seeded people are indexed as they are committed
        rng = random.Random(2026)
        pw = hash_password(DEMO_PASSWORD)
        now = utcnow()
        people = [
            User(
                email="admin@example.com",
                name="Alex Admin",
                role=Role.ADMIN,
                job_title="Customer Advocacy Manager",
                company="Example Corp",
            ),
            User(
                email="sam.sales@example.com",
                name="Sam Seller",
                role=Role.STAFF,
                job_title="Account Executive",
                company="Example Corp",
            ),
            User(
                email="casey.cs@example.com",
                name="Casey Success",
                role=Role.STAFF,
                job_title="Customer Success Manager",
                company="Example Corp",
            ),
        ]
        seen = {u.email for u in people}
        with click.progressbar(range(advocates), label="Creating advocates") as bar:
            for i in bar:
                first, last, company = rng.choice(FIRST), rng.choice(LAST), rng.choice(COMPANIES)
                email, n = _email(first, last, company, 0), 1
                while email in seen:
                    email, n = _email(first, last, company, n), n + 1
                seen.add(email)
                status = Status.ACTIVE if i < advocates - 4 else Status.PENDING
                joined = now - timedelta(days=rng.randint(5, 900))
                people.append(
                    User(
                        email=email,
                        name=f"{first} {last}",
                        company=company,
                        job_title=rng.choice(TITLES),
                        role=Role.ADVOCATE,
                        status=status,
                        created_at=joined,
                    )
                )
        for u in people:
            u.password_hash = pw
            u.email_verified_at = u.created_at or now
            if u.status is None or u.role != Role.ADVOCATE:
                u.status = Status.ACTIVE
            if u.status == Status.ACTIVE:
                u.approved_at = now
            db.session.add(u)
        db.session.flush()
        for u in people:
            if u.role == Role.ADVOCATE:
                db.session.add(Consent(user_id=u.id, kind="program_terms", version="2026-01", given_at=u.created_at))
        active = [u for u in people if u.role == Role.ADVOCATE and u.status == Status.ACTIVE]
        _profiles(rng, active, now)
        _recognition(rng, active, people[0])
        _opportunities(rng, people[0], now)
        demo_advocate = people[4].email
    click.echo(f"Seeded 1 admin, 2 staff and {advocates} advocates.")
    click.echo(f"Demo sign-ins (password for all: {DEMO_PASSWORD}):")
    click.echo("  admin     admin@example.com")
    click.echo("  staff     sam.sales@example.com, casey.cs@example.com")
    click.echo(f"  advocate  {demo_advocate}")
