"""flask demo seed: a realistic demo community for a new machine.

Advocates work at hand-written fictional customers (``portal.cli.demo_data``): company, industry,
country, size, title, products, stories and topics belong together. Their histories are made by the
real services (participation requests, approvals, completions and no-shows, points, badges, reward
orders), so the ledger, balances, badges, audit log and timelines agree. The services date what they
write "now"; while the seed plays a past event, ``_Clock`` dates the rows written then (ledger entries,
audit events, badges, emails, orders, participations) on the event's day. The emails of that history
are recorded as sent then: nobody is mailed by the seed.
"""

from __future__ import annotations

import random
import unicodedata
from contextlib import contextmanager
from datetime import datetime, timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import event, func, select

from portal.cli import demo_data as data
from portal.cli.common import attempt, transaction
from portal.extensions import db
from portal.models import (
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    AuditEvent,
    Blackout,
    Consent,
    Country,
    Digest,
    EntrySource,
    Industry,
    Nomination,
    Opportunity,
    OpportunityStatus,
    OutboxMessage,
    Participation,
    ParticipationStatus,
    PointsEntry,
    Product,
    Redemption,
    ReferenceRequest,
    Region,
    Reward,
    Role,
    SelectionMode,
    SizeBand,
    Status,
    TagKind,
    User,
    UserBadge,
    utcnow,
)
from portal.models.mail import OutboxStatus
from portal.services import badges, lists, nominations, participation, points, profiles, references, rewards
from portal.services.passwords import hash_password
from portal.services.profiles import tags_named
from search import backend as search_backend

demo_cli = AppGroup("demo", help="Demo data.")

DEMO_PASSWORD = "demo-advocacy-2026"

# Advocates with a part to play (indexes among the active advocates).
DEMO, PAUSED, AT_LIMIT = 0, 1, 2
BOARD = (0, 3, 7, 12, 20)  # members of the current advisory board
# The advocate at their limit: these three in the last 90 days, and a fourth ahead (the open G2 review).
AT_LIMIT_PAST = (
    "Webinar: identity for the hybrid workforce",
    "Quote for the AI Assistant launch",
    "Review us on G2: winter reviews",
)
RECENT_DAYS = 120  # other advocates have at most two past engagements this recent (never at the program limit)


# --- dating the services' rows on the day the history says -------------------------------------------------------

STAMPS = {
    PointsEntry: ("created_at",),
    AuditEvent: ("created_at",),
    UserBadge: ("awarded_at",),
    OutboxMessage: ("created_at", "next_attempt_at"),
    Redemption: ("created_at", "fulfilled_at", "cancelled_at"),
    Participation: ("requested_at", "engaged_at", "decided_at", "completed_at", "updated_at"),
    Nomination: ("created_at", "updated_at"),
    ReferenceRequest: ("created_at", "updated_at", "fulfilled_at", "completed_at", "outcome_at"),
}
DEFAULTED = {"created_at", "awarded_at", "next_attempt_at", "updated_at", "requested_at"}


class _Clock:
    """While ``at`` is set, rows the services add or stamp in this flush are dated ``at`` instead of now
    (a before_flush listener on the seed's session, removed when the seed ends). Only stamps written
    since the seed began are moved, so nothing older is touched; ledger and audit rows are dated before
    they are inserted (they are append-only)."""

    def __init__(self, started: datetime):
        self.started, self.at = started, None

    def before_flush(self, session, flush_context, instances) -> None:
        if self.at is None:
            return
        for obj in list(session.new) + list(session.dirty):
            fields = STAMPS.get(type(obj))
            if not fields:
                continue
            new = obj in session.new
            for name in fields:
                value = getattr(obj, name)
                if (
                    (value is None and new and name in DEFAULTED)
                    or (value is not None and value >= self.started)
                    or (name == "updated_at" and not new)  # else its onupdate dates the change now
                ):
                    setattr(obj, name, self.at)
            if new and isinstance(obj, OutboxMessage):  # history: told then, not mailed now
                obj.status, obj.sent_at, obj.attempts = OutboxStatus.SENT, self.at, 1

    @contextmanager
    def on(self, at: datetime):
        self.at = at
        try:
            yield
            db.session.flush()
        finally:
            self.at = None


# --- people -------------------------------------------------------------------------------------------------------


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum())


def _person(rng: random.Random, company: data.Company) -> tuple[str, str]:
    country = company.country if rng.random() < 0.85 else rng.choice(data.COUNTRIES)
    firsts, lasts = data.NAMES[country]
    return rng.choice(firsts), rng.choice(lasts)


def _title(rng: random.Random, industry: str) -> str:
    return rng.choice(data.TITLES[industry] if rng.random() < 0.8 else data.COMMON_TITLES)


def _advocates(rng: random.Random, n: int, now: datetime, stale: int, seen: set[str]) -> list[tuple[User, object]]:
    """(user, company) for n advocates: every company at least once, the last four applications waiting."""
    out, names = [], set()
    for i in range(n):
        company = data.COMPANIES[i] if i < len(data.COMPANIES) else rng.choice(data.COMPANIES)
        first, last = _person(rng, company)
        for _ in range(10):  # two people of the same name only when the lists run out
            if (first, last) not in names:
                break
            first, last = _person(rng, company)
        names.add((first, last))
        local = f"{_ascii(first)}.{_ascii(last)}"
        email, k = f"{local}@{company.domain}", 2
        while email in seen:
            email, k = f"{local}{k}@{company.domain}", k + 1
        seen.add(email)
        pending = i >= n - 4
        joined = now - (timedelta(days=rng.randint(1, 6)) if pending else timedelta(days=rng.randint(stale + 30, 720)))
        if i == DEMO:
            joined = now - timedelta(days=600)
        user = User(
            email=email,
            name=f"{first} {last}",
            company=company.name,
            job_title=_title(rng, company.industry),
            role=Role.ADVOCATE,
            status=Status.PENDING if pending else Status.ACTIVE,
            created_at=joined,
        )
        if not pending:
            user.approved_at = joined + timedelta(days=1)
        out.append((user, company))
    return out


def _profiles(rng, advocates, now, stale):
    lists.ensure_defaults(db.session)
    industries = {x.name: x for x in db.session.scalars(select(Industry))}
    sizes = {x.name: x for x in db.session.scalars(select(SizeBand))}
    countries = {x.code: x for x in db.session.scalars(select(Country))}
    products = {x.name: x for x in db.session.scalars(select(Product))}
    types = db.session.scalars(select(ActivityType).order_by(ActivityType.position)).all()
    by_key = {t.key: t for t in types}
    today = now.date()
    for i, (u, company) in enumerate(advocates):
        family = data.FAMILY[company.industry]
        special = i in (DEMO, AT_LIMIT)
        joined_days = (now - u.created_at).days
        if i % 12 == 5:  # a few stale profiles: last confirmed longer ago than the program's rule
            confirmed = rng.randint(stale + 5, min(joined_days - 2, stale + 150))
        else:
            confirmed = rng.randint(1, max(1, min(stale - 10, joined_days - 2)))
        slug = "-".join(_ascii(part) for part in u.name.split())
        p = AdvocateProfile(
            user_id=u.id,
            industry=industries[company.industry],
            size_band=sizes[company.size_band],
            country=countries[company.country],
            story="\n\n".join(rng.sample(data.STORIES[family], 2)),
            show_in_directory=special or rng.random() > 0.1,
            show_on_leaderboard=special or rng.random() > 0.15,
            digest=Digest.WEEKLY if special else rng.choice(list(Digest)),
            linkedin_url=f"https://www.linkedin.com/in/{slug}" if special or rng.random() > 0.3 else None,
            max_asks_per_month=None if special else rng.choice([None, None, 2, 3]),
            max_asks_per_quarter=None if special else rng.choice([None, None, 6, 8]),
            confirmed_at=now - timedelta(days=confirmed),
            timezone=data.TIMEZONES[company.country],
        )
        owned = list(company.products) if i == DEMO else rng.sample(company.products, rng.randint(1, 2))
        p.products = [products[name] for name in owned]
        topics = rng.sample(data.TOPICS[family], rng.randint(2, 4)) + rng.sample(data.COMMON_TOPICS, rng.randint(0, 1))
        p.tags = tags_named(db.session, TagKind.TOPIC, topics) + tags_named(
            db.session, TagKind.USE_CASE, rng.sample(data.USE_CASES[family], rng.randint(1, 3))
        )
        chosen = list(types) if special else rng.sample(types, rng.randint(4, 8))
        if i in BOARD and by_key["advisory_board"] not in chosen:
            chosen.append(by_key["advisory_board"])
        for t in chosen:
            note = "" if special else rng.choice(["", "", "", "virtual only", "not in Q4", "English or German"])
            p.preferences.append(ActivityPreference(activity_type=t, opted_in=True, note=note))
        if i == PAUSED:  # exactly one paused advocate
            p.paused_until = today + timedelta(days=24)
        elif not special and i % 9 == 4:  # blackouts, most of them ahead
            start = today + timedelta(days=-2 if i == 4 else rng.randint(10, 40))
            p.blackouts.append(
                Blackout(starts_on=start, ends_on=start + timedelta(days=rng.randint(5, 14)), note="travelling")
            )
        db.session.add(p)
    db.session.flush()


# --- opportunities ------------------------------------------------------------------------------------------------

OPEN_OPPORTUNITIES = [
    ("review", "Share your experience on G2",
     "Tell peers what it is like to use the product day to day. Fifteen minutes, in your own words.",
     None, 10, "first_come", "https://www.g2.com/"),
    ("speaking", "Speak at the Customer Summit in Berlin",
     "A 20-minute session on your journey, with a Q&A.\n\nTravel and a hotel night are covered.",
     4, 45, "selection", None),
    ("reference_call", "Reference call with a European bank",
     "A 30-minute call with the CISO of a bank evaluating the Security Suite.", 2, 14, "selection", None),
    ("webinar", "Panel: data governance in practice",
     "Join two other customers on a one-hour webinar panel.", 3, 30, "first_come", None),
    ("beta", "Beta: the new AI Assistant",
     "Try the assistant before launch and give feedback in two short calls.", 25, 20, "first_come", None),
    ("case_study", "Case study: healthcare outcomes",
     "A written story of your results, reviewed by you before anything is published.", 2, 60, "selection", None),
]  # fmt: skip


def _open_opportunities(rng, admin, now) -> list[Opportunity]:
    types = {t.key: t for t in db.session.scalars(select(ActivityType))}
    today = now.date()
    out = []
    for key, title, desc, capacity, days, mode, url in OPEN_OPPORTUNITIES:
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
            opened_at=now - timedelta(days=rng.randint(1, 10)),
            created_by_id=admin.id,
        )
        if key == "reference_call":
            opp.regions = list(db.session.scalars(select(Region).where(Region.name == "Europe")))
        if key == "case_study":
            opp.industries = list(db.session.scalars(select(Industry).where(Industry.name == "Healthcare")))
        out.append(opp)
    out.append(
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
            opened_at=now - timedelta(days=3),
            created_by_id=admin.id,
        )
    )
    db.session.add_all(out)
    db.session.flush()
    return out


def _past_opportunities(admin, now) -> list[Opportunity]:
    """Opportunities of the last 18 months, open (no deadline yet) while their history is played, closed after."""
    types = {t.key: t for t in db.session.scalars(select(ActivityType))}
    today = now.date()
    out = []
    for key, title, desc, days_ago, mode in data.PAST_OPPORTUNITIES:
        out.append(
            Opportunity(
                activity_type=types[key],
                title=title,
                description=desc,
                event_date=today - timedelta(days=days_ago),
                is_virtual=key not in ("speaking", "video"),
                location={"speaking": "London" if days_ago > 300 else "Amsterdam", "video": "At your office"}.get(
                    key, ""
                ),
                selection_mode=SelectionMode(mode),
                status=OpportunityStatus.OPEN,
                opened_at=now - timedelta(days=days_ago + 35),
                created_at=now - timedelta(days=days_ago + 36),
                created_by_id=admin.id,
            )
        )
    out.append(
        Opportunity(
            activity_type=types["advisory_board"],
            title="Customer Advisory Board 2026",
            description="Meet quarterly with product leadership and shape the roadmap.",
            capacity=12,
            term_start=today - timedelta(days=150),
            term_end=today + timedelta(days=215),
            selection_mode=SelectionMode.SELECTION,
            status=OpportunityStatus.OPEN,
            opened_at=now - timedelta(days=200),
            created_at=now - timedelta(days=201),
            created_by_id=admin.id,
        )
    )
    db.session.add_all(out)
    db.session.flush()
    return out


def _close(opps: list[Opportunity]) -> None:
    for opp in opps:
        day = opp.engagement_date
        opp.deadline = day - timedelta(days=10 if opp.term_start else 5)
        opp.status = OpportunityStatus.CLOSED
        if opp.selection_mode == SelectionMode.SELECTION and opp.capacity is None:
            opp.capacity = max(opp.seats_taken, 3)
    db.session.flush()


# --- histories ----------------------------------------------------------------------------------------------------


def _at(day, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=utcnow().tzinfo)


def _take_part(clock, rng, user, admin, opp, outcome: str) -> Participation | None:
    """Play one participation through the services: request, then (selection) approve or decline, then
    complete or no-show after the event; ``outcome`` is completed, no_show, declined or approved."""
    day = opp.engagement_date
    asked = _at(day - timedelta(days=rng.randint(12, 30)), rng.randint(8, 17))
    with clock.on(asked):
        p = attempt(participation.request, user, opp.id, rng.choice(["", "", "Happy to help!", "Count me in."]))
    if p is None:
        return None
    if p.status == ParticipationStatus.REQUESTED:
        with clock.on(asked + timedelta(days=2, hours=1)):
            approved = outcome != "declined" and attempt(participation.approve, p.id, admin) is not None
            if not approved:  # declined, or the rules refuse the approval: no request is left waiting in the past
                msg = "Thank you! We had more volunteers than places this time; we will ask you first next time."
                return attempt(participation.decline, p.id, admin, msg)
    elif outcome == "declined":  # first come, first served: a place taken is not declined
        outcome = "completed"
    if outcome in ("completed", "no_show"):
        with clock.on(_at(day + timedelta(days=1), 10)):
            step = participation.complete if outcome == "completed" else participation.no_show
            attempt(step, p.id, admin)
    return p


def _histories(clock, rng, active, admin, past, board, now):
    by_title = {o.title: o for o in past}
    opted = {
        u.id: set(
            db.session.scalars(select(ActivityPreference.activity_type_id).where(ActivityPreference.user_id == u.id))
        )
        for u in active
    }
    today = now.date()
    for i, u in enumerate(active):
        approved = u.approved_at
        if (now - approved).days > 500:
            with clock.on(approved + timedelta(days=2)):
                points.award(
                    db.session, u.id, 250, key=f"demo:{u.id}:founding", reason="Founding member bonus",
                    source=EntrySource.MANUAL, actor_id=admin.id,
                )  # fmt: skip
        if i in BOARD:
            _take_part(clock, rng, u, admin, board, "approved")
        if i == AT_LIMIT:  # three engagements in the last 90 days (a fourth, ahead, comes with the open ones)
            for title in AT_LIMIT_PAST:
                _take_part(clock, rng, u, admin, by_title[title], "completed")
            continue
        fits = [
            o
            for o in past
            if o.activity_type_id in opted[u.id] and _at(o.engagement_date, 0) > approved + timedelta(days=30)
        ]
        if i == DEMO:
            picks = [o for o in fits if 150 <= (today - o.event_date).days <= 480][:5]
        else:
            picks = sorted(
                rng.sample(fits, min(len(fits), rng.choice([0, 1, 2, 2, 3, 3, 4]))), key=lambda o: o.event_date
            )
            recent = [o for o in picks if (today - o.event_date).days <= RECENT_DAYS]
            picks = [o for o in picks if o not in recent[2:]]
        for opp in picks:
            roll = rng.random()
            if i == DEMO or roll < 0.75:
                outcome = "completed"
            elif roll < 0.87:
                outcome = "no_show"
            else:
                outcome = "declined"
            _take_part(clock, rng, u, admin, opp, outcome)
        if i != DEMO and rng.random() < 0.15:
            with clock.on(now - timedelta(days=rng.randint(20, 300))):
                points.award(
                    db.session, u.id, rng.choice([100, 150, 200]), key=f"demo:{u.id}:extra",
                    reason=rng.choice(["Spoke at the local user group", "Helped another advocate get started"]),
                    source=EntrySource.MANUAL, actor_id=admin.id,
                )  # fmt: skip


def _current(clock, rng, active, admin, open_opps, now):
    """What is going on now: first-come places taken, requests waiting for an admin's decision."""
    by_key = {o.activity_type.key: o for o in open_opps if o.activity_type.key != "advisory_board"}
    board = next(o for o in open_opps if o.activity_type.key == "advisory_board")
    asked: set[int] = set()  # one current ask per advocate: nobody else ends up at their limit

    def ask(i, opp, hours_ago, again=False):
        u = active[i]
        if (u.id in asked and not again) or i == PAUSED:
            return None
        with clock.on(now - timedelta(hours=hours_ago)):
            p = attempt(participation.request, u, opp.id, rng.choice(["", "I would love to.", "Happy to help."]))
        if p is not None:
            asked.add(u.id)
        return p

    ask(AT_LIMIT, by_key["review"], 70)  # the fourth engagement in 90 days: at the program's limit
    ask(DEMO, by_key["beta"], 30)
    others = [i for i in range(len(active)) if i not in (DEMO, PAUSED, AT_LIMIT)]
    rng.shuffle(others)
    plan = [by_key["speaking"]] * 4 + [by_key["reference_call"]] * 3 + [by_key["case_study"]] * 2 + [board] * 4
    plan += [by_key["review"]] * 3 + [by_key["webinar"]] * 2 + [by_key["beta"]] * 3
    for opp in plan:
        while others:
            i = others.pop()
            if ask(i, opp, rng.randint(2, 120)) is not None:
                break
    ask(DEMO, by_key["speaking"], 20, again=True)  # the demo sign-in also waits for a decision


def _recognition(clock, rng, active, admin, now):
    for name, desc, cost, stock, limit in data.REWARDS:
        db.session.add(Reward(name=name, description=desc, points_cost=cost, stock=stock, per_advocate_limit=limit))
    db.session.flush()
    catalog = {r.name: r for r in db.session.scalars(select(Reward))}
    orders = [(active[DEMO], "Program hoodie", 60, True), (active[DEMO], "Coffee gift card", 2, False)]
    for u in rng.sample(active[3:], len(active) - 3):
        if len(orders) >= 12:
            break
        name = rng.choice(["Coffee gift card", "Donation to Code Club", "Program hoodie"])
        orders.append((u, name, rng.randint(1, 90), len(orders) % 2 == 0))
    for u, name, days_ago, fulfilled in orders:
        reward = catalog[name]
        if points.balance(db.session, u.id) < reward.points_cost:
            continue
        with clock.on(now - timedelta(days=days_ago)):
            r = attempt(rewards.redeem, u, reward.id, f"demo-{name}")
        if r is not None and fulfilled:
            with clock.on(now - timedelta(days=days_ago) + timedelta(days=3)):
                attempt(rewards.fulfil, r[0].id, admin.id, "Shipped")


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
        if advocates < 8:
            raise click.ClickException("The demo community needs at least 8 advocates.")
        search_backend().ensure_index()  # an empty index first, so the seeded people are indexed as they are committed
        rng = random.Random(2026)
        now = utcnow()
        clock = _Clock(now)
        session = db.session()
        event.listen(session, "before_flush", clock.before_flush)
        try:
            demo_advocate = _seed(rng, now, clock, advocates)
        finally:
            event.remove(session, "before_flush", clock.before_flush)
        session.info.pop("outbox_ids", None)  # the history's emails are recorded as sent: nothing to send
    click.echo(f"Seeded 1 admin, 2 staff and {advocates} advocates.")
    click.echo(f"Demo sign-ins (password for all: {DEMO_PASSWORD}):")
    click.echo("  admin     admin@example.com")
    click.echo("  staff     sam.sales@example.com, casey.cs@example.com")
    click.echo(f"  advocate  {demo_advocate}")


def _seed(rng, now, clock, n) -> str:
    pw = hash_password(DEMO_PASSWORD)
    stale = profiles.stale_days()
    founded = now - timedelta(days=900)
    staff = [
        User(email="admin@example.com", name="Alex Admin", role=Role.ADMIN, job_title="Customer Advocacy Manager"),
        User(email="sam.sales@example.com", name="Sam Seller", role=Role.STAFF, job_title="Account Executive"),
        User(email="casey.cs@example.com", name="Casey Success", role=Role.STAFF, job_title="Customer Success Manager"),
    ]
    for u in staff:
        u.company, u.status, u.created_at, u.approved_at = "Example Corp", Status.ACTIVE, founded, founded
    with click.progressbar(length=n, label="Creating advocates") as bar:
        community = _advocates(rng, n, now, stale, {u.email for u in staff})
        bar.update(n)
    for u in staff + [u for u, _ in community]:
        u.password_hash = pw
        u.email_verified_at = u.created_at
        db.session.add(u)
    db.session.flush()
    for u, _ in community:
        db.session.add(Consent(user_id=u.id, kind="program_terms", version="2026-01", given_at=u.created_at))
    active = [(u, c) for u, c in community if u.status == Status.ACTIVE]
    _profiles(rng, active, now, stale)
    badges.ensure_default_badges(db.session)
    admin, users = staff[0], [u for u, _ in active]
    open_opps = _open_opportunities(rng, admin, now)
    past = _past_opportunities(admin, now)
    _histories(clock, rng, users, admin, past[:-1], past[-1], now)
    _close(past)
    _current(clock, rng, users, admin, open_opps, now)
    _recognition(clock, rng, users, admin, now)
    _nominations(clock, staff[1:], now)
    _references(clock, staff, users, now)
    return users[DEMO].email


NOMINEES = (  # (nominator index, days ago, name, email, company, job title, why)
    (
        0,
        6,
        "Priya Raman",
        "priya.raman@northwind.example",
        "Northwind Health",
        "Director of IT",
        "Rolled out our platform to 40 clinics in three months; happy to talk about it.",
    ),
    (
        0,
        1,
        "Tomasz Wójcik",
        "tomasz.wojcik@baltic-logistics.example",
        "Baltic Logistics",
        "CTO",
        "Cut their dispatch time by a third; spoke well of us at a partner event.",
    ),
    (
        1,
        2,
        "Grace Okafor",
        "grace.okafor@lagos-fintech.example",
        "Lagos Fintech",
        "Head of Data",
        "Renewed early and expanded; her team built three dashboards our sales team now shows.",
    ),
)


def _nominations(clock, staff: list[User], now: datetime) -> None:
    """Customers the staff nominated, waiting for the admin's review (one past the service level)."""
    for who, days, name, email, company, title, why in NOMINEES:
        with clock.on(now - timedelta(days=days)):
            attempt(
                nominations.nominate,
                nominations.Nominee(name=name, email=email, company=company, job_title=title, reason=why),
                staff[who],
            )


def _ask_someone(clock, admin: User, rr_id: int, users: list[User], at: datetime) -> Participation | None:
    """Ask the first advocate the rules let the program ask (a demo request names no criteria)."""
    for u in users:
        if u.id in (users[DEMO].id, users[PAUSED].id, users[AT_LIMIT].id):
            continue
        with clock.on(at):
            p = attempt(references.ask, admin, rr_id, u.id)
        if p is not None:
            return p
    return None


def _references(clock, staff: list[User], users: list[User], now: datetime) -> None:
    """Reference requests: a won deal two months back, an ask waiting for its answer, a new request."""
    admin, sam, casey = staff
    call = db.session.scalar(select(ActivityType.id).where(ActivityType.key == "reference_call"))
    story = db.session.scalar(select(ActivityType.id).where(ActivityType.key == "case_study"))
    # (requester, type, account, created days ago, due in days, amount, won): the service dates what it
    # checks by today, so the won deal is one whose call took place ahead of its due day.
    for requester, type_id, account, days_ago, due_in, amount, won in (
        (sam, call, "Umbrella Logistics", 6, 3, 120_000, True),
        (casey, story, "Initech Retail", 4, 20, 45_000, False),
        (sam, call, "Globex Manufacturing", 1, 14, 250_000, False),
    ):
        with clock.on(now - timedelta(days=days_ago)):
            rr = attempt(
                references.create,
                requester,
                references.RequestInput(
                    activity_type_id=type_id,
                    account_name=account,
                    due_date=(now + timedelta(days=due_in)).date(),
                    need="A customer who moved off spreadsheets and can speak to the rollout",
                    deal_amount=amount,
                ),
            )
        if rr is None or days_ago < 2:
            continue
        # Asked two days after the request (an ask is answered within 5 days, or expires).
        p = _ask_someone(clock, admin, rr.id, users, now - timedelta(days=days_ago - 2))
        if p is None or not won:
            continue  # the ask waits for the advocate's answer
        advocate = db.session.get(User, p.user_id)
        with clock.on(now - timedelta(days=days_ago - 3)):
            attempt(references.accept, advocate, p.id)
        with clock.on(now - timedelta(days=2)):
            attempt(references.complete, admin, rr.id)
            attempt(references.record_outcome, requester, rr.id, "won", amount)
