"""A deterministic generator of realistic advocates, inserted in bulk (SQLAlchemy Core).

Besides profiles, products, topics and activity preferences, each run makes a few hundred past and
open opportunities and seeded participations: about a third of the advocates never took part, most
a few times, some often (up to 25 times over two years, more of them recently), so last-engagement
dates, "at limit" / "near limit" / "under-used" fatigue and the engagement sort have real data. A few
advocates are in a blackout today. Every list lookup is ordered, so the same seed gives the same data."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import bindparam, func, insert, select, text

from portal.models import (
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    AuditEvent,
    Blackout,
    Country,
    Industry,
    Opportunity,
    Participation,
    PointsBalance,
    PointsEntry,
    Product,
    Redemption,
    Reward,
    SizeBand,
    Tag,
    TagKind,
    User,
    profile_products,
    profile_tags,
    utcnow,
)
from portal.services.passwords import hash_password

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
        if parts:  # Core: one executemany (the ORM splits rows by which columns are None)
            session.execute(Participation.__table__.insert(), parts)
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


# --- The whole program, for the admin-page benchmark ----------------------------------------------------------------

BENCH_ADMIN_EMAIL = "bench-admin@example.com"
BENCH_ADMIN_PASSWORD = "bench-admin-password-2026"  # noqa: S105 (a throwaway database's only admin)
REWARDS = [
    ("Sticker pack", 100),
    ("Coffee voucher", 250),
    ("Notebook", 400),
    ("T-shirt", 600),
    ("Hoodie", 1200),
    ("Conference pass", 5000),
    ("Charity donation", 500),
    ("Headphones", 4000),
    ("Backpack", 1500),
    ("Book of the month", 300),
]
AUDIT_ACTIONS = [
    ("participation.approve", "participation"),
    ("participation.decline", "participation"),
    ("participation.complete", "participation"),
    ("participation.add", "participation"),
    ("user.approve", "user"),
    ("opportunity.update", "opportunity"),
    ("points.adjust", "user"),
    ("redemption.fulfil", "redemption"),
]


def generate_program(
    session,
    n: int = 50_000,
    participations: int = 500_000,
    opportunities: int = 3_000,
    seed: int = 42,
    batch: int = 20_000,
) -> dict:
    """Everything the admin pages list, at a size: ``generate(session, n)``'s advocates (and their
    participations), then more opportunities up to ``opportunities`` — a few large ones with thousands of
    participants (one open, with thousands of requests waiting), a handful of advisory boards with dozens
    of members, and a long tail — and more participations up to ``participations`` in all; one advocate
    with a long history; an earned points entry per completed participation, manual adjustments, rewards
    and redemptions (some waiting) with their debits and refunds, cached balances that match the ledger;
    audit events; registrations waiting for approval; and an admin who can sign in. All bulk inserts.

    Returns the ids the benchmark fills URLs with, and the counts made."""
    generate(session, n, seed=seed)
    rng = random.Random(seed + 2)
    now = utcnow()
    types = dict(session.execute(select(ActivityType.key, ActivityType.id)).all())
    default_points = dict(session.execute(select(ActivityType.id, ActivityType.default_points)).all())
    uids = list(session.scalars(select(User.id).where(User.role == "advocate").order_by(User.id)))
    focus = uids[0]  # the advocate with a long history
    # generate() picks any activity type for its opportunities; a program has a handful of advisory
    # boards (made below), so its opportunities of that type become speaking engagements here.
    session.execute(
        Opportunity.__table__.update()
        .where(Opportunity.activity_type_id == types["advisory_board"])
        .values(activity_type_id=types["speaking"])
    )
    others = uids[1:]

    def next_id(model) -> int:
        return (session.scalar(select(func.max(model.id))) or 0) + 1

    # Staff who act (the admin who signs in, and two more), with explicit ids like the advocates'.
    uid = next_id(User)
    admins = []
    for i, (email, name) in enumerate(
        [(BENCH_ADMIN_EMAIL, "Bench Admin"), ("ops1@example.com", "Olga Ops"), ("ops2@example.com", "Omar Ops")]
    ):
        admins.append(uid + i)
        session.execute(
            insert(User).values(
                id=uid + i,
                email=email,
                name=name,
                password_hash=hash_password(BENCH_ADMIN_PASSWORD) if i == 0 else "x",
                role="admin",
                status="active",
                session_token=f"bench-admin-{i}",
                failed_login_count=0,
                created_at=now - timedelta(days=800),
                updated_at=now,
                approved_at=now - timedelta(days=800),
                email_verified_at=now - timedelta(days=800),
            )
        )

    # Opportunities: large ones, boards, and a long tail up to `opportunities` in all.
    have = session.scalar(select(func.count()).select_from(Opportunity)) or 0
    have_parts = session.scalar(select(func.count()).select_from(Participation)) or 0
    large_sizes = [min(s, len(others)) for s in (8000, 6000, 5000, 4000, 3000, 2500)]
    board_sizes = [60, 48, 36, 30, 24, 12]
    tail = max(opportunities - have - len(large_sizes) - len(board_sizes), 1)
    room = max(participations - have_parts - sum(large_sizes) - sum(board_sizes), tail)
    # A long tail: most get tens of participants, some hundreds (a Pareto-like spread summing to `room`).
    weights = [rng.paretovariate(1.6) for _ in range(tail)]
    scale = room / sum(weights)
    tail_sizes = [max(1, min(len(others), round(w * scale))) for w in weights]
    tail_sizes[0] += room - sum(tail_sizes)  # the rounding's remainder, so the total is exact
    tail_sizes[0] = max(1, min(len(others), tail_sizes[0]))
    plan = (
        [("large", s, "webinar" if i % 2 else "event") for i, s in enumerate(large_sizes)]
        + [("board", s, "advisory_board") for s in board_sizes]
        + [("tail", s, None) for s in tail_sizes]
    )
    keys = sorted(k for k in types if k != "advisory_board")
    rows = []
    for i, (kind, _size, key) in enumerate(plan):
        key = key if key in types else rng.choice(keys)
        opened = now - timedelta(days=rng.randint(1 if i == 0 else 20, 700))
        is_open = i == 0 or (kind == "board" and i % 2 == 0) or (kind == "tail" and rng.random() < 0.15)
        term_start = (now - timedelta(days=rng.randint(30, 300))).date() if kind == "board" else None
        rows.append(
            dict(
                activity_type_id=types[key],
                title=f"{'Advisory board' if kind == 'board' else 'Program opportunity'} {have + i}",
                description=" ".join(rng.choices(WORDS, k=30)),
                capacity=None,
                seats_taken=0,
                is_virtual=rng.random() < 0.6,
                location="",
                status="open" if is_open else "closed",
                selection_mode="selection",
                term_start=term_start,
                term_end=term_start + timedelta(days=365) if term_start else None,
                opened_at=opened,
                created_at=opened,
                updated_at=opened,
            )
        )
    new_opps = list(session.execute(insert(Opportunity).returning(Opportunity.id), rows).scalars())
    session.commit()

    # Participations on the new opportunities (the old ones' stay as generate() made them): distinct
    # advocates per opportunity, never the focus advocate, who is added to 400 of the tail's.
    statuses, closed_w = zip(*STATUSES)
    open_w = [20, 25, 40, 10, 5, 0]
    seats: dict[int, int] = {}
    parts = []
    focus_in = set(new_opps[len(large_sizes) + len(board_sizes) :][:400])

    def flush_parts():
        if parts:  # Core: one executemany (the ORM splits rows by which columns are None)
            session.execute(Participation.__table__.insert(), parts)
            parts.clear()

    for opp_id, row, (kind, size, _key) in zip(new_opps, rows, plan):
        opened, is_open = row["opened_at"], row["status"] == "open"
        members = rng.sample(others, size - (opp_id in focus_in))
        if opp_id in focus_in:
            members.append(focus)
        taken = 0
        for who in members:
            if kind == "board":
                status = "approved" if is_open else "completed"
            else:
                status = rng.choices(statuses, weights=open_w if is_open else closed_w)[0]
            asked = opened + timedelta(hours=rng.randint(1, 24 * 30))
            asked = min(asked, now - timedelta(minutes=5))
            engaged = asked + timedelta(days=2) if status in ("approved", "completed") else None
            taken += status == "approved"
            parts.append(
                dict(
                    opportunity_id=opp_id,
                    user_id=who,
                    status=status,
                    holds_seat=status == "approved",
                    message="",
                    admin_message="",
                    requested_at=asked,
                    engaged_at=engaged,
                    decided_at=asked + timedelta(days=2) if status != "requested" else None,
                    decided_by_id=rng.choice(admins) if status != "requested" else None,
                    completed_at=asked + timedelta(days=9) if status == "completed" else None,
                    updated_at=asked,
                )
            )
        seats[opp_id] = taken
        if len(parts) >= batch:
            flush_parts()
    flush_parts()
    table = Opportunity.__table__
    session.execute(
        table.update().where(table.c.id == bindparam("oid")).values(seats_taken=bindparam("taken")),
        [{"oid": k, "taken": v} for k, v in seats.items() if v],
    )
    session.commit()

    # The ledger: an earned entry per completed participation, some adjustments, redemptions.
    entry_id = next_id(PointsEntry)
    entries, balance, lifetime = [], {}, {}

    def entry(user_id, amount, kind, source, source_id, reason, key, counts, when, actor=None, type_id=None, rev=None):
        nonlocal entry_id
        entries.append(
            dict(
                id=entry_id,
                user_id=user_id,
                amount=amount,
                kind=kind,
                source=source,
                source_id=source_id,
                activity_type_id=type_id,
                counts_toward_lifetime=counts,
                reason=reason,
                actor_id=actor,
                idempotency_key=key,
                reverses_id=rev,
                created_at=when,
            )
        )
        balance[user_id] = balance.get(user_id, 0) + amount
        if counts:
            lifetime[user_id] = lifetime.get(user_id, 0) + amount
        entry_id += 1
        if len(entries) >= batch:
            session.execute(PointsEntry.__table__.insert(), entries)
            entries.clear()
        return entry_id - 1

    done = session.execute(
        select(Participation.id, Participation.user_id, Participation.completed_at, Opportunity.activity_type_id)
        .join(Opportunity, Opportunity.id == Participation.opportunity_id)
        .where(Participation.status == "completed")
        .order_by(Participation.completed_at, Participation.id)
    ).all()
    for pid, who, when, type_id in done:
        entry(
            who,
            default_points[type_id],
            "earned",
            "participation",
            pid,
            "Took part",
            f"participation:{pid}:complete",
            True,
            when,
            type_id=type_id,
        )
    adjusted = 0
    for i in range(max(n // 25, 10)):
        who = rng.choice(uids)
        amount = rng.choice([25, 50, 100, 150, 250, -20])
        if balance.get(who, 0) + amount < 0:
            continue
        when = now - timedelta(days=rng.randint(0, 700), minutes=rng.randint(0, 1440))
        entry(who, amount, "adjusted", "manual", None, "Goodwill", f"adjust:bench:{i}", True, when, rng.choice(admins))
        adjusted += 1
    session.execute(
        insert(Reward),
        [
            dict(
                name=name,
                description="",
                points_cost=cost,
                stock=None,
                per_advocate_limit=None,
                active=True,
                created_at=now - timedelta(days=800),
                updated_at=now,
            )
            for name, cost in REWARDS
        ],
    )
    reward_rows = session.execute(select(Reward.id, Reward.name, Reward.points_cost).order_by(Reward.id)).all()
    redemption_id = next_id(Redemption)
    redemptions, waiting = [], 0
    rich = [u for u in uids if balance.get(u, 0) >= 100]
    for _ in range(min(n // 2, len(rich) * 2)):
        who = rng.choice(rich)
        affordable = [r for r in reward_rows if r.points_cost <= balance.get(who, 0)]
        if not affordable:
            continue
        reward = rng.choice(affordable)
        when = now - timedelta(days=int(rng.triangular(0, 700, 0)), minutes=rng.randint(0, 1440))
        status = "requested" if when > now - timedelta(days=14) and rng.random() < 0.7 else "fulfilled"
        status = "cancelled" if status == "fulfilled" and rng.random() < 0.05 else status
        debit = entry(
            who,
            -reward.points_cost,
            "redeemed",
            "redemption",
            redemption_id,
            f"Redeemed: {reward.name}",
            f"redemption:{redemption_id}:debit",
            False,
            when,
            actor=who,
        )
        if status == "cancelled":
            entry(
                who,
                reward.points_cost,
                "reversed",
                "redemption",
                redemption_id,
                "Cancelled",
                f"reverse:{debit}",
                False,
                when + timedelta(days=1),
                actor=admins[1],
                rev=debit,
            )
        waiting += status == "requested"
        redemptions.append(
            dict(
                id=redemption_id,
                user_id=who,
                reward_id=reward.id,
                points_cost=reward.points_cost,
                status=status,
                idempotency_key=f"bench-order-{redemption_id}",
                note="",
                created_at=when,
                fulfilled_at=when + timedelta(days=3) if status == "fulfilled" else None,
                cancelled_at=when + timedelta(days=1) if status == "cancelled" else None,
                handled_by_id=admins[1] if status != "requested" else None,
            )
        )
        redemption_id += 1
    if entries:
        session.execute(PointsEntry.__table__.insert(), entries)
    # The debits refer to their redemption by source_id only (no foreign key), so the order is free.
    for i in range(0, len(redemptions), batch):
        session.execute(Redemption.__table__.insert(), redemptions[i : i + batch])
    session.execute(
        insert(PointsBalance),
        [dict(user_id=u, balance=b, lifetime_earned=lifetime.get(u, 0), updated_at=now) for u, b in balance.items()],
    )
    session.commit()

    # Audit events (append-only history), and registrations waiting for approval.
    audit_n = n * 4
    events = []
    for i in range(audit_n):
        action, target = rng.choice(AUDIT_ACTIONS)
        events.append(
            dict(
                actor_id=rng.choice(admins),
                action=action,
                target_type=target,
                target_id=rng.randint(1, 400_000),
                details={},
                created_at=now - timedelta(seconds=(audit_n - i) * 300),
            )
        )
        if len(events) >= batch:
            session.execute(AuditEvent.__table__.insert(), events)
            events.clear()
    if events:
        session.execute(AuditEvent.__table__.insert(), events)
    pending_n = max(n // 200, 5)
    start = next_id(User)
    session.execute(
        insert(User),
        [
            dict(
                id=start + i,
                email=f"waiting{start + i}@bench.example.com",
                name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                company=f"{rng.choice(COMPANY_A)} {rng.choice(COMPANY_B)}",
                job_title=rng.choice(TITLES),
                password_hash="x",
                role="advocate",
                status="pending_approval",
                session_token=f"bench-waiting-{start + i}",
                failed_login_count=0,
                created_at=now - timedelta(hours=rng.randint(1, 24 * 30)),
                updated_at=now,
                email_verified_at=now,
            )
            for i in range(pending_n)
        ],
    )
    session.commit()
    if session.get_bind().dialect.name == "postgresql":  # explicit ids were given: move the sequences on
        for table in ("users", "points_entries", "redemptions"):
            session.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )
        session.commit()

    total_parts = session.scalar(select(func.count()).select_from(Participation))
    largest = new_opps[0]
    board = new_opps[len(large_sizes)]
    return {
        "advocates": n,
        "participations": total_parts,
        "opportunities": session.scalar(select(func.count()).select_from(Opportunity)),
        "points_entries": session.scalar(select(func.count()).select_from(PointsEntry)),
        "adjustments": adjusted,
        "redemptions": len(redemptions),
        "redemptions_waiting": waiting,
        "audit_events": audit_n,
        "registrations_waiting": pending_n,
        "largest_opp": largest,
        "largest_opp_participants": large_sizes[0],
        "board": board,
        "board_members": board_sizes[0],
        "reward": reward_rows[0].id,
        "activity_type": types.get("speaking", next(iter(types.values()))),
        "focus_advocate": focus,
        "focus_participations": session.scalar(
            select(func.count()).select_from(Participation).where(Participation.user_id == focus)
        ),
    }
