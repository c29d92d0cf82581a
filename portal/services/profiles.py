"""Advocate profile, preferences, availability and freshness rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from portal.extensions import db
from portal.models import (
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    Base,
    Blackout,
    Country,
    Digest,
    EntrySource,
    Industry,
    Product,
    Role,
    SizeBand,
    Status,
    Tag,
    TagKind,
    User,
    profile_tags,
    utcnow,
)
from portal.services import audit, points, settings
from portal.services.errors import DomainError, NotFound
from portal.services.fatigue import Availability, availability, local_today

MAX_TAGS = 15
MAX_TAG_LENGTH = 40
MAX_STORY = 5000
MAX_ASKS_MONTH = 50
MAX_ASKS_QUARTER = 150


def read_profile(session: Session, user: User) -> AdvocateProfile:
    """The advocate's profile, read only: a GET changes nothing. Profiles are created when an account
    becomes active; one activated before that (no profile yet) is shown as an empty profile that is
    never added to the session."""
    profile = session.get(AdvocateProfile, user.id)
    if profile is None:
        profile = AdvocateProfile(user_id=user.id)
        for column in AdvocateProfile.__table__.columns:  # the values a flush would give it
            if column.default is not None and column.default.is_scalar:
                setattr(profile, column.key, column.default.arg)
        set_committed_value(profile, "user", user)  # for is_stale; no backref, no cascade into the session
    return profile


def get_profile(session: Session, user: User) -> AdvocateProfile:
    """The advocate's profile, created empty on first use (for changes; pages use read_profile)."""
    profile = session.get(AdvocateProfile, user.id)
    if profile is None:
        profile = AdvocateProfile(user_id=user.id)
        session.add(profile)
        session.flush()
    return profile


# --- profile ---------------------------------------------------------------------------------------


@dataclass
class ProfileInput:
    name: str
    job_title: str
    company: str
    industry_id: int | None = None
    size_band_id: int | None = None
    country_code: str | None = None
    product_ids: list[int] = field(default_factory=list)
    use_cases: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    story: str = ""
    linkedin_url: str = ""
    show_in_directory: bool | None = None  # None: unchanged (no form offers it while there is no directory)
    show_on_leaderboard: bool = True


def parse_tags(raw: str | list[str] | None, label: str = "tags") -> list[str]:
    """Split "a, b ,c" into clean, case-insensitively unique tags; raise on too many or too long."""
    if raw is None:
        return []
    parts = raw if isinstance(raw, list) else raw.split(",")
    seen, out = set(), []
    for part in parts:
        tag = re.sub(r"\s+", " ", part).strip()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise DomainError(f"Each of your {label} can be at most {MAX_TAG_LENGTH} characters.")
        key = tag.casefold()
        if key not in seen:
            seen.add(key)
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise DomainError(f"Add at most {MAX_TAGS} {label}.")
    return out


def tag_slug(name: str) -> str:
    """The tag's identity within its kind: "Zero Trust" and "zero trust" are one tag."""
    return name.casefold()[:MAX_TAG_LENGTH]


def _insert(session: Session):
    """The dialect's INSERT, for ``ON CONFLICT DO NOTHING`` (PostgreSQL and SQLite)."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def tags_named(session: Session, kind: TagKind, names: list[str]) -> list[Tag]:
    """The tags of these names, created when new. Race-safe: two advocates adding the same new tag at
    once both end up with the one row (INSERT ... ON CONFLICT DO NOTHING, then read it back)."""
    if not names:
        return []
    slugs = {}
    for name in names:
        slugs.setdefault(tag_slug(name), name)
    wanted = select(Tag).where(Tag.kind == kind, Tag.slug.in_(slugs))
    existing = {t.slug: t for t in session.scalars(wanted)}
    missing = [{"kind": kind, "slug": slug, "name": name} for slug, name in slugs.items() if slug not in existing]
    if missing:
        session.execute(_insert(session)(Tag).values(missing).on_conflict_do_nothing(index_elements=["kind", "slug"]))
        existing = {t.slug: t for t in session.scalars(wanted)}
    return [existing[slug] for slug in slugs]


def tag_suggestions(session: Session, kind: TagKind, limit: int = 300) -> list[str]:
    """Tags that at least one active advocate's profile has now: a tag nobody uses any more is not
    suggested (it may name something that was removed on purpose)."""
    in_use = exists().where(
        profile_tags.c.tag_id == Tag.id,
        profile_tags.c.user_id == User.id,
        User.role == Role.ADVOCATE,
        User.status == Status.ACTIVE,
    )
    where = (Tag.kind == kind, Tag.active.is_(True), in_use)  # a retired tag is not offered for new choices
    return list(session.scalars(select(Tag.name).where(*where).order_by(Tag.name).limit(limit)))


# Real LinkedIn hosts (www, the bare domain, mobile and two-letter country sites) and the kinds of page an
# advocate can point to: a person (/in/...) or a company (/company/...).
_LINKEDIN_HOST = re.compile(r"(?:(?:www|m|[a-z]{2})\.)?linkedin\.com")
_LINKEDIN_KINDS = ("in", "company")
_LINKEDIN_SLUG = re.compile(r"[\w.\-]{1,100}")  # letters (any script), digits, '_', '.', '-'
_NOT_LINKEDIN = "That is not a LinkedIn address (https://www.linkedin.com/in/...)."


def check_linkedin(url: str) -> str | None:
    """The canonical https://www.linkedin.com/in/<slug> (or /company/<slug>) for what was typed, or None.

    Refused: another scheme, whitespace or control characters, backslashes and '@' (browsers read
    ``https://evil.example\\@www.linkedin.com/`` as a visit to evil.example), user info, any explicit
    port, hosts that are not LinkedIn's, and paths that are not a profile or company page. Query and
    fragment (tracking parameters) are dropped; the stored address is rebuilt from the parts checked."""
    url = (url or "").strip()
    if not url:
        return None
    if len(url) > 255:
        raise DomainError("The LinkedIn address is too long.")
    if any(c.isspace() or c in "\\@" or ord(c) < 32 or ord(c) == 127 for c in url):
        raise DomainError(_NOT_LINKEDIN)
    try:
        parts = urlsplit(url)
        port = parts.port  # "99999" or "x" raise here
    except ValueError:  # e.g. "https://[www.linkedin.com/..." (an unclosed IPv6 bracket)
        raise DomainError(_NOT_LINKEDIN) from None
    if parts.scheme.lower() != "https":
        raise DomainError("The LinkedIn address must start with https://")
    if port is not None or ":" in parts.netloc or parts.username is not None or parts.password is not None:
        raise DomainError(_NOT_LINKEDIN)
    if not _LINKEDIN_HOST.fullmatch(parts.hostname or ""):
        raise DomainError(_NOT_LINKEDIN)
    segments = parts.path.split("/")
    if segments and segments[-1] == "":
        segments.pop()  # one trailing slash
    if len(segments) < 3 or segments[0] != "" or segments[1].lower() not in _LINKEDIN_KINDS:
        raise DomainError(_NOT_LINKEDIN)
    try:
        slug = unquote(segments[2], errors="strict")
    except UnicodeDecodeError:
        raise DomainError(_NOT_LINKEDIN) from None
    if not _LINKEDIN_SLUG.fullmatch(slug) or set(slug) == {"."}:
        raise DomainError(_NOT_LINKEDIN)
    # Sub-pages (/in/ada/details/experience) lead to the same profile: keep the profile itself.
    canonical = f"https://www.linkedin.com/{segments[1].lower()}/{quote(slug, safe='-._')}"
    if len(canonical) > 255:
        raise DomainError("The LinkedIn address is too long.")
    return canonical


def _active(session: Session, model: type[Base], ident: int | None, current: int | None = None) -> Base | None:
    """The chosen item: an active one, or the one the profile already has (kept when it was retired)."""
    if ident in (None, "", 0):
        return None
    item = session.get(model, ident)
    if item is None or (hasattr(item, "active") and not item.active and item.id != current):
        raise DomainError(f"Choose a {model.__name__.lower().replace('sizeband', 'company size')} from the list.")
    return item


def update_profile(session: Session, user: User, data: ProfileInput) -> AdvocateProfile:
    """Validate and save the profile; saving counts as confirming it is current."""
    profile = get_profile(session, user)
    _apply_profile(session, user, profile, data)
    profile.confirmed_at = utcnow()
    session.flush()
    award_if_complete(session, user, profile)
    return profile


def _apply_profile(session: Session, user: User, profile: AdvocateProfile, data: ProfileInput) -> None:
    """The profile's rules (the advocate's own edit and an admin's edit alike): check everything in
    ``data`` first, then set it; a refused value changes nothing."""
    name, job_title, company = data.name.strip(), data.job_title.strip(), data.company.strip()
    if not name:
        raise DomainError("Your name cannot be empty.")
    industry = _active(session, Industry, data.industry_id, profile.industry_id)
    size_band = _active(session, SizeBand, data.size_band_id, profile.size_band_id)
    country = None
    if data.country_code:
        country = session.get(Country, data.country_code.upper())
        if country is None:
            raise DomainError("Choose a country from the list.")
    products = []
    if data.product_ids:
        ids = set(data.product_ids)
        had = {p.id for p in profile.products}  # a retired product stays on the profiles that have it
        chosen = select(Product).where(Product.id.in_(ids), Product.active.is_(True) | Product.id.in_(had))
        products = list(session.scalars(chosen))
        if len(products) != len(ids):
            raise DomainError("Choose products from the list.")
    story = (data.story or "").replace("\r\n", "\n").strip()
    if len(story) > MAX_STORY:
        raise DomainError(f"Your story can be at most {MAX_STORY} characters.")
    use_cases = parse_tags(data.use_cases, "use cases")
    topics = parse_tags(data.topics, "topics")
    linkedin_url = check_linkedin(data.linkedin_url)

    user.name, user.job_title, user.company = name[:120], job_title[:160] or None, company[:160] or None
    profile.industry, profile.size_band, profile.country = industry, size_band, country
    profile.products = sorted(products, key=lambda p: p.position)
    tags = tags_named(session, TagKind.USE_CASE, use_cases) + tags_named(session, TagKind.TOPIC, topics)
    had = {t.id for t in profile.tags}
    for tag in tags:  # a retired tag stays on the profiles that have it, and is not taken up anew
        if not tag.active and tag.id not in had:
            label = "use case" if tag.kind == TagKind.USE_CASE else "topic"
            raise DomainError(f"The {label} “{tag.name}” is no longer used; choose another.")
    profile.tags = tags
    profile.story = story
    profile.linkedin_url = linkedin_url
    if data.show_in_directory is not None:
        profile.show_in_directory = bool(data.show_in_directory)
    profile.show_on_leaderboard = bool(data.show_on_leaderboard)


def profile_values(user: User, profile: AdvocateProfile) -> dict:
    """The profile's fields as plain values, as the audit log records an edit (names, not ids; tags in
    one order whatever the database's collation or the order they were typed in)."""
    return {
        "name": user.name,
        "job_title": user.job_title or "",
        "company": user.company or "",
        "industry": profile.industry.name if profile.industry else None,
        "size_band": profile.size_band.name if profile.size_band else None,
        "country": profile.country_code,
        "products": [p.name for p in profile.products],
        "use_cases": sorted((t.name for t in profile.use_cases), key=str.casefold),
        "topics": sorted((t.name for t in profile.topics), key=str.casefold),
        "story": profile.story or "",
        "linkedin_url": profile.linkedin_url or "",
        "show_on_leaderboard": bool(profile.show_on_leaderboard),
    }


def edit_for_admin(session: Session, user: User, data: ProfileInput, actor_id: int) -> dict[str, tuple]:
    """An admin changes an advocate's profile (any account status but erased): the same rules as the
    advocate's own edit (``_apply_profile``). It does not count as the advocate confirming their profile
    (its freshness stays) and earns no completion points (those reward the advocate's own work). One
    audit entry, ``profile.edit``, holds the changed fields only, ``before`` and ``after``; nothing
    changed, no entry. Returns {field: (before, after)}."""
    profile = get_profile(session, user)
    before = profile_values(user, profile)
    _apply_profile(session, user, profile, data)
    session.flush()
    after = profile_values(user, profile)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    if changed:
        audit.record(
            session,
            "profile.edit",
            actor_id,
            user,
            before={k: b for k, (b, _) in changed.items()},
            after={k: a for k, (_, a) in changed.items()},
        )
    return changed


def award_if_complete(session: Session, user: User, profile: AdvocateProfile) -> bool:
    """Points for a completed profile, once per advocate (the ledger's idempotency key sees to "once")."""
    if completeness(user, profile).percent < 100:
        return False
    amount = settings.get(session, "points_profile_complete")
    if amount <= 0:  # the setting at 0: no points for it, and the ledger records no zero-point entry
        return False
    _, created = points.award(
        session,
        user.id,
        amount,
        key=f"profile-complete:{user.id}",
        reason="Completed your profile",
        source=EntrySource.PROFILE,
        source_id=user.id,
    )
    return created


def confirm_current(session: Session, user: User) -> AdvocateProfile:
    """The advocate says their profile is still right (recorded: the admins' timeline shows each one)."""
    profile = get_profile(session, user)
    profile.confirmed_at = utcnow()
    audit.record(session, "profile.confirm", user.id, user)
    return profile


@dataclass
class Completeness:
    percent: int
    missing: list[str]


def completeness(user: User, profile: AdvocateProfile) -> Completeness:
    checks = [
        ("your job title", bool(user.job_title)),
        ("your company", bool(user.company)),
        ("your industry", profile.industry_id is not None),
        ("your company size", profile.size_band_id is not None),
        ("your country", profile.country_code is not None),
        ("the products you use", bool(profile.products)),
        ("your use cases", bool(profile.use_cases)),
        ("topics you know well", bool(profile.topics)),
        ("your story (at least a few sentences)", len(profile.story or "") >= 80),
        ("your LinkedIn profile", bool(profile.linkedin_url)),
        (
            "at least one activity you are willing to do",
            any(p.opted_in and p.activity_type.active for p in profile.preferences),
        ),
    ]
    missing = [label for label, ok in checks if not ok]
    return Completeness(round(100 * (len(checks) - len(missing)) / len(checks)), missing)


def stale_days(session: Session | None = None) -> int:
    """Days after which a profile counts as stale (a program setting; PROFILE_STALE_DAYS until an admin
    saves one). Without a session: the app's (``db.session``). Read once per transaction (settings)."""
    return settings.get(session if session is not None else db.session, "profile_stale_days")


def freshness_days(profile: AdvocateProfile, now: datetime | None = None) -> int | None:
    if profile.confirmed_at is None:
        return None
    return ((now or utcnow()) - profile.confirmed_at).days


def is_stale(profile: AdvocateProfile, now: datetime | None = None) -> bool:
    days = freshness_days(profile, now)
    if days is None:  # never confirmed: count from approval
        since = profile.user.approved_at or profile.user.created_at
        days = ((now or utcnow()) - since).days if since else stale_days()
    return days >= stale_days()


@dataclass
class ProfileCard:
    """What the program's people see of an advocate (and what the advocate's "preview" shows)."""

    user: User
    profile: AdvocateProfile
    activities: list[ActivityPreference]  # the activity types the advocate opted in to, with their notes
    availability: Availability
    upcoming_blackouts: list[Blackout]
    freshness_days: int | None
    stale: bool
    completeness: Completeness


def profile_card(session: Session, user: User) -> ProfileCard:
    profile = read_profile(session, user)
    activities = sorted(
        (p for p in profile.preferences if p.opted_in and p.activity_type.active),
        key=lambda p: (p.activity_type.position, p.activity_type.name),
    )
    upcoming, _ = split_blackouts(profile)
    return ProfileCard(
        user=user,
        profile=profile,
        activities=activities,
        availability=availability(profile),
        upcoming_blackouts=upcoming,
        freshness_days=freshness_days(profile),
        stale=is_stale(profile),
        completeness=completeness(user, profile),
    )


def advocate_card(session: Session, user_id: int) -> ProfileCard | None:
    """The profile card of an advocate as the program's staff and admins see it; None when there is
    no such advocate (another role, an erased account). Read only: nothing is created."""
    user = session.get(User, user_id)
    if user is None or user.role != Role.ADVOCATE or user.status == Status.DELETED:
        return None
    return profile_card(session, user)


# --- preferences -------------------------------------------------------------------------------------


def activity_types(session: Session) -> list[ActivityType]:
    return list(
        session.scalars(
            select(ActivityType).where(ActivityType.active.is_(True)).order_by(ActivityType.position, ActivityType.name)
        )
    )


def set_activity_preferences(session: Session, user: User, choices: dict[int, tuple[bool, str]]) -> AdvocateProfile:
    """choices: activity type id -> (opted in, note). Unknown ids are refused."""
    profile = get_profile(session, user)
    types = {t.id: t for t in activity_types(session)}
    unknown = set(choices) - set(types)
    if unknown:
        raise DomainError("Unknown activity type.")
    current = {p.activity_type_id: p for p in profile.preferences}
    for type_id, (opted_in, note) in choices.items():
        note = (note or "").strip()
        if len(note) > 200:
            raise DomainError(f"The note for {types[type_id].name} can be at most 200 characters.")
        pref = current.get(type_id)
        if pref is None:
            pref = ActivityPreference(activity_type_id=type_id)
            profile.preferences.append(pref)
        pref.opted_in, pref.note = bool(opted_in), note
    session.flush()
    award_if_complete(session, user, profile)
    return profile


def set_communication(
    session: Session, user: User, digest: str, opportunities: bool, reminders: bool, news: bool
) -> AdvocateProfile:
    try:
        period = Digest(digest)
    except ValueError:
        raise DomainError("Choose how often you want the digest.") from None
    profile = get_profile(session, user)
    profile.digest = period
    profile.notify_opportunities, profile.notify_reminders, profile.notify_news = (
        bool(opportunities),
        bool(reminders),
        bool(news),
    )
    return profile


# --- availability -----------------------------------------------------------------------------------------

# IANA areas of real "Region/City" zones; everything else in the tz database is a legacy alias (US/Eastern,
# Etc/GMT+5, Japan), a POSIX rule (EST5EDT) or a pseudo zone (localtime, Factory).
_TZ_AREAS = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)


@cache
def timezone_choices() -> tuple[str, ...]:
    """The time zones an advocate can choose: UTC, then every Region/City zone, sorted."""
    zones = {z for z in available_timezones() if "/" in z and z.split("/", 1)[0] in _TZ_AREAS}
    return ("UTC", *sorted(zones))


def set_limits(
    session: Session,
    user: User,
    per_month: int | None,
    per_quarter: int | None,
    paused_until: date | None,
    timezone: str,
    today: date | None = None,
) -> AdvocateProfile:
    if timezone not in timezone_choices():
        raise DomainError("Choose a time zone from the list.")
    today = today or (utcnow().astimezone(ZoneInfo(timezone)).date())
    for value, top, label in ((per_month, MAX_ASKS_MONTH, "month"), (per_quarter, MAX_ASKS_QUARTER, "quarter")):
        if value is not None and not (0 <= value <= top):
            raise DomainError(f"Asks per {label} must be between 0 and {top}.")
    if per_month is not None and per_quarter is not None and per_quarter < per_month:
        raise DomainError("Asks per quarter cannot be fewer than asks per month.")
    if paused_until is not None and paused_until < today:
        raise DomainError("A pause must last until today or a later date.")
    if paused_until is not None and paused_until > today + timedelta(days=366 * 2):
        raise DomainError("A pause can last at most two years.")
    profile = get_profile(session, user)
    profile.max_asks_per_month, profile.max_asks_per_quarter = per_month, per_quarter
    profile.paused_until, profile.timezone = paused_until, timezone
    return profile


def add_blackout(
    session: Session, user: User, starts_on: date, ends_on: date, note: str = "", today: date | None = None
) -> Blackout:
    profile = get_profile(session, user)
    today = today or local_today(profile)
    if starts_on is None or ends_on is None:
        raise DomainError("Give both the first and the last day.")
    if ends_on < starts_on:
        raise DomainError("The last day cannot be before the first day.")
    if ends_on < today:
        raise DomainError("That period is already over.")
    if (ends_on - starts_on).days > 366:
        raise DomainError("A blackout can last at most a year; use a pause for longer.")
    note = (note or "").strip()
    if len(note) > 200:
        raise DomainError("The note can be at most 200 characters.")
    blackout = Blackout(starts_on=starts_on, ends_on=ends_on, note=note)
    profile.blackouts.append(blackout)
    session.flush()
    return blackout


def remove_blackout(session: Session, user: User, blackout_id: int) -> None:
    blackout = session.get(Blackout, blackout_id)
    if blackout is None or blackout.user_id != user.id:  # another advocate's id: same answer as a missing one
        raise NotFound("That blackout period does not exist.")
    session.delete(blackout)


def split_blackouts(profile: AdvocateProfile, today: date | None = None) -> tuple[list[Blackout], list[Blackout]]:
    """(current and upcoming, past) — past ones collapse into history (days in the advocate's time zone)."""
    today = today or local_today(profile)
    upcoming = [b for b in profile.blackouts if b.ends_on >= today]
    past = sorted((b for b in profile.blackouts if b.ends_on < today), key=lambda b: b.starts_on, reverse=True)
    return upcoming, past


# --- freshness reminders --------------------------------------------------------------------------------------

REMIND_EVERY = timedelta(days=30)


def stale_condition(now: datetime | None = None):
    """SQL for is_stale, on a query of users outer-joined to their profile: last confirmed (never
    confirmed: approved, then signed up) PROFILE_STALE_DAYS ago or longer."""
    confirmed = func.coalesce(AdvocateProfile.confirmed_at, User.approved_at, User.created_at)
    return confirmed <= (now or utcnow()) - timedelta(days=stale_days())


def stale_for_reminder(session: Session, now: datetime | None = None) -> list[User]:
    """Active advocates whose profile is stale (stale_condition) who accept reminders and were not
    reminded in the last 30 days."""
    now = now or utcnow()
    q = (
        select(User)
        .outerjoin(AdvocateProfile, AdvocateProfile.user_id == User.id)
        .where(
            User.role == Role.ADVOCATE,
            User.status == Status.ACTIVE,
            or_(AdvocateProfile.user_id.is_(None), AdvocateProfile.notify_reminders.is_(True)),
            stale_condition(now),
            or_(
                AdvocateProfile.stale_reminder_sent_at.is_(None),
                AdvocateProfile.stale_reminder_sent_at <= now - REMIND_EVERY,
            ),
        )
        .order_by(User.id)
    )
    return list(session.scalars(q))


def claim_stale_reminder(session: Session, user_id: int, now: datetime) -> bool:
    """Stamp the advocate as reminded now, unless another run did in the last 30 days; True when this
    call stamped (and so must send). A conditional UPDATE: of two overlapping runs only one changes the
    row (on PostgreSQL the second waits for the first's commit, then finds the stamp and changes nothing)."""
    session.execute(
        _insert(session)(AdvocateProfile).values(user_id=user_id).on_conflict_do_nothing(index_elements=["user_id"])
    )  # never-saved profile: the row first
    result = session.execute(
        update(AdvocateProfile)
        .where(
            AdvocateProfile.user_id == user_id,
            or_(
                AdvocateProfile.stale_reminder_sent_at.is_(None),
                AdvocateProfile.stale_reminder_sent_at <= now - REMIND_EVERY,
            ),
        )
        .values(stale_reminder_sent_at=now)
    )
    return result.rowcount == 1
