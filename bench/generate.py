"""A deterministic generator of realistic advocates, inserted in bulk (SQLAlchemy Core).

Besides profiles, products, topics and activity preferences, each run makes a few hundred past and
open opportunities and seeded participations: about a third of the advocates never took part, most
a few times, some often (up to 25 times over two years, more of them recently), so last-engagement
dates, "at limit" / "near limit" / "under-used" fatigue and the engagement sort have real data. A few
advocates are in a blackout today. Every list lookup is ordered, so the same seed gives the same data."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import insert, select

from portal.models import (
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    Blackout,
    Country,
    Industry,
    Opportunity,
    Participation,
    Product,
    SizeBand,
    Tag,
    TagKind,
    User,
    profile_products,
    profile_tags,
    utcnow,
)

FIRST = (
    "Maria James Aiko Oluwaseun Sofia Liam Priya Mateo Chloe Wei Fatima Noah Ingrid Rafael Amara Lucas Hana "
    "Diego Elena Kwame Zoe Arjun Isabel Tomasz Leila Samuel Mei Jonas Nadia Carlos Yuki Grace Omar Freya Ravi "
    "Lena Tariq Astrid Kofi Julia Hiro Ana Marek Sara Emeka Lotte Chen Paula Viktor Ines"
).split()
LAST = (
    "Garcia Okafor Tanaka Nielsen Rossi Kowalski Chen Haddad Silva Murphy Schmidt Patel Dubois Andersson Mensah "
    "Kim Novak Fernandes Brien Ivanova Nakamura Moreau Berg Adeyemi Lopez Wright Singh Costa Meyer Larsen Sato "
    "Horvat Jansen Romero Mbeki Quinn Fischer Petrov Akhtar Duarte"
).split()
COMPANY_A = (
    "North Blue Kestrel Aurora Helix Cobalt Meridian Lumen Orbit Sable Tidewater Quartz Juniper Atlas Vertex "
    "Pinecrest Harbor Nimbus Summit Cedar Granite Falcon Horizon Ember Willow Beacon Crescent Polar"
).split()
COMPANY_B = (
    "Health Bank Logistics Retail Biotech Insurance Energy Education Telecom Manufacturing Software Media Capital "
    "Foods Motors Labs Systems Group"
).split()
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
    "CIO",
    "Director of Digital Transformation",
    "Procurement Manager",
    "Head of Data",
    "Engineering Manager",
    "Chief Data Officer",
    "Head of IT Infrastructure",
]
TOPIC_ROOTS = (
    "zero trust|cloud migration|data governance|MLOps|FinOps|onboarding|incident response|API design|GDPR|"
    "HIPAA|transformation|change management|observability|cost optimisation|supply chain|fraud|"
    "developer experience|platform engineering|data mesh|retention|identity|compliance|analytics|"
    "automation|AI adoption|security operations|payments|e-commerce|mobile apps|customer experience"
).split("|")
TOPIC_SUFFIX = ["", " strategy", " at scale"]
WORDS = (
    "we our team the platform data customers security cloud process time teams reporting results months "
    "analytics integration costs migration dashboards users weeks faster visibility compliance automation "
    "pipeline insights revenue growth adoption rollout support partners audit risk quality scale operations "
    "workflows productivity onboarding infrastructure governance forecasting accuracy latency uptime storage "
    "regulators hospital clinicians patients bank branches stores warehouse fleet suppliers engineers analysts "
    "executives board budget savings licenses vendors legacy modern replaced consolidated automated reduced "
    "improved launched scaled migrated integrated standardised secured monitored measured delivered trained "
    "every across within without before after during since while because together finally quickly easily "
    "manual spreadsheets exports tickets incidents alerts outages backlog releases deployments features "
    "roadmap feedback champions sponsors stakeholders leadership culture trust confidence decisions real-time "
    "self-service single sign-on encryption identity access reviews policies controls evidence certification "
    "kubernetes terraform python warehouse lakehouse streaming batch events api mobile web portal chatbot "
    "forecast churn fraud claims invoices payments reconciliation close ledger payroll benefits hiring"
).split()


def story(rng: random.Random) -> str:
    n = rng.randint(60, 150)
    weights = [1 / (i + 1) ** 0.9 for i in range(len(WORDS))]
    words = rng.choices(WORDS, weights=weights, k=n)
    sentences, i = [], 0
    while i < n:
        k = rng.randint(8, 18)
        sentences.append(" ".join(words[i : i + k]).capitalize() + ".")
        i += k
    return " ".join(sentences)


def generate(session, n: int, seed: int = 42, batch: int = 2000) -> None:
    rng = random.Random(seed)
    prng = random.Random(seed + 1)  # participations: their own stream, so the advocates stay as they were
    industries = list(session.scalars(select(Industry.id).order_by(Industry.id)))
    sizes = list(session.scalars(select(SizeBand.id).order_by(SizeBand.id)))
    countries = list(session.scalars(select(Country.code).order_by(Country.code)))
    products = list(session.scalars(select(Product.id).order_by(Product.id)))
    types = list(session.scalars(select(ActivityType.id).order_by(ActivityType.id)))
    topics = [r + s for r in TOPIC_ROOTS for s in TOPIC_SUFFIX][:80]
    tag_ids = []
    for t in topics:
        tag_ids.append(
            session.execute(
                insert(Tag).values(kind=TagKind.TOPIC, name=t, slug=t.casefold()).returning(Tag.id)
            ).scalar_one()
        )
    now = utcnow()
    opportunities = _opportunities(session, prng, types, now, max(50, min(600, n // 100)))
    start = (session.scalar(select(User.id).order_by(User.id.desc()).limit(1)) or 0) + 1
    for offset in range(0, n, batch):
        users, profiles, prods, tags, prefs, parts, away = [], [], [], [], [], [], []
        for i in range(offset, min(n, offset + batch)):
            uid = start + i
            first, last = rng.choice(FIRST), rng.choice(LAST)
            company = f"{rng.choice(COMPANY_A)} {rng.choice(COMPANY_B)}"
            users.append(
                dict(
                    id=uid,
                    email=f"adv{uid}@bench.example.com",
                    name=f"{first} {last}",
                    company=company,
                    job_title=rng.choice(TITLES),
                    password_hash="x",
                    role="advocate",
                    status="active",
                    session_token=f"bench-{uid}",
                    failed_login_count=0,
                    created_at=now,
                    updated_at=now,
                    approved_at=now - timedelta(days=rng.randint(1, 900)),
                )
            )
            profiles.append(
                dict(
                    user_id=uid,
                    industry_id=rng.choice(industries),
                    size_band_id=rng.choice(sizes),
                    country_code=rng.choice(countries),
                    story=story(rng),
                    show_in_directory=True,
                    show_on_leaderboard=True,
                    digest="monthly",
                    notify_opportunities=True,
                    notify_reminders=True,
                    notify_news=True,
                    timezone="UTC",
                    paused_until=(now.date() + timedelta(days=10)) if rng.random() < 0.03 else None,
                    confirmed_at=now - timedelta(days=rng.randint(0, 400)) if rng.random() > 0.05 else None,
                    created_at=now,
                    updated_at=now,
                )
            )
            prods += [dict(user_id=uid, product_id=p) for p in rng.sample(products, rng.randint(1, 3))]
            tags += [dict(user_id=uid, tag_id=t) for t in rng.sample(tag_ids, rng.randint(2, 6))]
            prefs += [
                dict(user_id=uid, activity_type_id=t, opted_in=True, note="")
                for t in rng.sample(types, rng.randint(2, 6))
            ]
            parts += _participations(prng, uid, opportunities, now)
            if prng.random() < 0.01:
                away.append(
                    dict(
                        user_id=uid,
                        starts_on=now.date() - timedelta(days=prng.randint(0, 5)),
                        ends_on=now.date() + timedelta(days=prng.randint(0, 14)),
                        note="",
                    )
                )
        session.execute(insert(User), users)
        session.execute(insert(AdvocateProfile), profiles)
        session.execute(insert(profile_products), prods)
        session.execute(insert(profile_tags), tags)
        session.execute(insert(ActivityPreference), prefs)
        if parts:
            session.execute(insert(Participation), parts)
        if away:
            session.execute(insert(Blackout), away)
        session.commit()


STATUSES = [("completed", 70), ("approved", 10), ("requested", 8), ("declined", 6), ("withdrawn", 4), ("no_show", 2)]


def _opportunities(session, rng: random.Random, types: list[int], now, count: int) -> list[int]:
    """Past (closed) and current (open) opportunities for the participations to refer to."""
    rows = []
    for i in range(count):
        opened = now - timedelta(days=rng.randint(0, 760))
        rows.append(
            dict(
                activity_type_id=rng.choice(types),
                title=f"Bench opportunity {i}",
                description=" ".join(rng.choices(WORDS, k=30)),
                capacity=None,
                seats_taken=0,
                is_virtual=rng.random() < 0.6,
                location="",
                status="open" if i % 5 == 0 else "closed",
                selection_mode="selection",
                opened_at=opened,
                created_at=opened,
                updated_at=opened,
            )
        )
    return sorted(session.execute(insert(Opportunity).returning(Opportunity.id), rows).scalars())


def _participations(rng: random.Random, uid: int, opportunities: list[int], now) -> list[dict]:
    """About a third none, most a few, some many (recent ones more likely)."""
    r = rng.random()
    k = 0 if r < 0.35 else rng.randint(1, 3) if r < 0.80 else rng.randint(4, 8) if r < 0.95 else rng.randint(10, 25)
    out = []
    statuses, weights = zip(*STATUSES)
    for opp in rng.sample(opportunities, min(k, len(opportunities))):
        asked = now - timedelta(days=int(rng.triangular(1, 730, 1)), hours=rng.randint(0, 23))
        status = rng.choices(statuses, weights=weights)[0]
        engaged = asked + timedelta(days=2) if status in ("approved", "completed") else None
        out.append(
            dict(
                opportunity_id=opp,
                user_id=uid,
                status=status,
                holds_seat=status == "approved",
                message="",
                admin_message="",
                requested_at=asked,
                engaged_at=engaged,
                decided_at=asked + timedelta(days=2) if status != "requested" else None,
                completed_at=asked + timedelta(days=9) if status == "completed" else None,
                updated_at=asked,
            )
        )
    return out
