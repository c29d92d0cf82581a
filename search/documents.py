"""The search documents: what feeds them (``SOURCES``), and how they are built from the database.

``SOURCES`` declares, once, which models and columns each document (advocate, opportunity) is built
from, and which of them the index follows as they change: search.indexing derives its listeners from
it (a change to a followed column queues the document in ``search_pending``, in the same transaction;
a change to any other column queues nothing), and tests check it against the columns the builders
below actually read.

The builders work in bulk, with plain SQL (Core) rows: building documents through the ORM (an object
per row, relationships loaded one by one) was most of a rebuild's time."""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select

from portal.models import (
    ENGAGED_STATUSES,
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    Blackout,
    Country,
    Industry,
    Opportunity,
    OpportunityStatus,
    Participation,
    Product,
    ProgramSetting,
    Region,
    Role,
    SizeBand,
    Status,
    Tag,
    User,
    profile_products,
    profile_tags,
    utcnow,
)
from portal.services import fatigue
from search.schema import ADVOCATES, OPPORTUNITIES

NEVER = 0  # day number used when an advocate never confirmed / never engaged
SEP = "~"  # between the packed facet values of a document; "|" between the values of one facet


# --- what feeds each document ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Rows of ``model`` feed documents of the ``kind`` index through the mapped attributes ``attrs``
    (columns, and the collections the builders read).

    Followed (``key`` or ``everyone`` given): a new or deleted row, or a change to one of ``attrs``
    (many-to-one relationships that set one of them count too), queues the document whose id is the
    row's ``key`` attribute (and the one it held before, when the change moved the row), or, with
    ``everyone``, every document that select gives (one INSERT ... SELECT in the same transaction: no
    rows are loaded). ``when``: only rows it accepts feed the documents at all. ``listed``: whether the
    row's document is in the index, from the row's values (a getter by attribute name): a new row, or a
    changed one, that is not listed before nor after queues nothing (a sign-up's unverified account: no
    document to add or remove, so the registration request does not write to the index).
    Not followed (``why`` says why): the builders read these, but a change to them alone is not
    queued."""

    model: type
    kind: str
    attrs: frozenset[str]
    key: str | None = None
    everyone: Callable[[], Select] | None = None
    when: Callable[[Any], bool] | None = None
    listed: Callable[[Callable[[str], Any]], bool] | None = None
    why: str = ""

    @property
    def followed(self) -> bool:
        return self.key is not None or self.everyone is not None


def active_advocates() -> Select:
    """The ids of the advocates who have a document: active ones."""
    return select(User.id).where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE)


def _attrs(*names: str) -> frozenset[str]:
    return frozenset(names)


LISTS = (
    "list names are read through a cache (NAMES_TTL); a rename by an admin (portal.services.lists) announces "
    "the advocates who have the item (signals.advocates_changed): they are queued and the cache is emptied"
)
SOURCES: tuple[Source, ...] = (
    # advocates: their account, profile, preferences, availability and engagements (the fatigue facet)
    Source(
        User,
        ADVOCATES,
        _attrs("name", "company", "job_title", "role", "status", "approved_at", "created_at"),
        key="id",
        listed=lambda value: value("role") == Role.ADVOCATE and value("status") == Status.ACTIVE,
    ),
    Source(
        AdvocateProfile,
        ADVOCATES,
        _attrs(
            "industry_id",
            "size_band_id",
            "country_code",
            "story",
            "confirmed_at",
            "products",
            "tags",
            # fatigue: pauses, the advocate's own ask limits, and their calendar day (time zone)
            "paused_until",
            "max_asks_per_month",
            "max_asks_per_quarter",
            "timezone",
        ),
        key="user_id",
    ),
    Source(ActivityPreference, ADVOCATES, _attrs("user_id", "activity_type_id", "opted_in"), key="user_id"),
    Source(Blackout, ADVOCATES, _attrs("user_id", "starts_on", "ends_on"), key="user_id"),
    Source(
        Participation,
        ADVOCATES,
        _attrs("user_id", "opportunity_id", "status", "engaged_at", "requested_at"),
        key="user_id",
    ),
    # the program's fatigue policy (a setting row with a fatigue key): every active advocate's status
    Source(
        ProgramSetting,
        ADVOCATES,
        _attrs("key", "value"),
        everyone=active_advocates,
        when=lambda setting: setting.key in fatigue.DEFAULTS,
    ),
    # opportunities
    Source(
        Opportunity,
        OPPORTUNITIES,
        _attrs("title", "description", "location", "activity_type_id", "status", "private"),
        key="id",
    ),
    # read, not followed
    Source(
        Opportunity,
        ADVOCATES,
        _attrs("event_date", "term_start", "deadline", "activity_type_id"),
        why="the day an engagement counts on (fatigue); 'flask search sync' requeues advocates whose "
        "fatigue status changed, daily",
    ),
    Source(Industry, ADVOCATES, _attrs("name"), why=LISTS),
    Source(SizeBand, ADVOCATES, _attrs("name"), why=LISTS),
    Source(Product, ADVOCATES, _attrs("name"), why=LISTS),
    Source(Region, ADVOCATES, _attrs("name"), why=LISTS),
    Source(Country, ADVOCATES, _attrs("name", "region_id"), why=LISTS),
    Source(ActivityType, ADVOCATES, _attrs("key", "name"), why=LISTS),
    Source(
        Tag,
        ADVOCATES,
        _attrs("name"),
        why="a tag's name: an admin's rename or merge (portal.services.lists) queues the advocates who have it "
        "(signals.advocates_changed)",
    ),
    Source(ActivityType, OPPORTUNITIES, _attrs("name"), why="an activity type's name; renamed rarely, by an admin"),
)


def digest(doc: dict) -> str:
    """A short hash of a document's fields (all but its key and the digest itself), in a fixed order:
    stored with the document, and compared by 'flask search check' with one built from the database."""
    h = hashlib.blake2b(digest_size=12)
    for name in sorted(doc):
        if name in ("uid", "oid", "digest"):
            continue
        h.update(name.encode())
        h.update(b"\x00")
        h.update(str(doc[name]).encode("utf-8", "surrogatepass"))
        h.update(b"\x01")
    return h.hexdigest()


def day(value: datetime | None) -> int:
    return value.date().toordinal() if value else NEVER


_cache: dict[tuple, tuple[float, dict]] = {}
NAMES_TTL = 30.0  # seconds; renaming a list item shows in documents written after this


def _cached(session, what: str, load):
    """Small lookup tables (list names), kept for NAMES_TTL per database."""
    key = (str(session.get_bind().url), what)
    hit = _cache.get(key)
    if hit and time.monotonic() - hit[0] < NAMES_TTL:
        return hit[1]
    value = load()
    _cache[key] = (time.monotonic(), value)
    return value


def forget_cached_names() -> None:
    """This process's list names are read again (a list item was renamed, a country moved)."""
    _cache.clear()


def _names(session, model) -> dict[int, str]:
    return _cached(session, model.__tablename__, lambda: dict(session.execute(select(model.id, model.name)).all()))


def _countries(session) -> dict[str, tuple[str, int]]:
    return _cached(
        session,
        "countries",
        lambda: {
            code: (name, region_id)
            for code, name, region_id in session.execute(select(Country.code, Country.name, Country.region_id)).all()
        },
    )


def _activity_names(session) -> dict[str, str]:
    return _cached(
        session, "activity_types", lambda: dict(session.execute(select(ActivityType.key, ActivityType.name)).all())
    )


def _grouped(rows) -> dict[int, list]:
    out = defaultdict(list)
    for key, value in rows:
        out[key].append(value)
    return out


def _fatigue_keys(session, ids: list[int], now: datetime) -> dict[int, str]:
    """The fatigue facet: portal.services.fatigue.statuses itself (a fixed number of plain-row
    queries for the chunk), so the index and every other page agree on each advocate's status."""
    return {uid: st.key for uid, st in fatigue.statuses(session, ids, now).items()}


def advocate_docs(session, user_ids: list[int], now: datetime | None = None) -> tuple[list[dict], list[int]]:
    """(documents for the active advocates among ``user_ids``, ids whose document must be removed)."""
    now = now or utcnow()
    U, P = User, AdvocateProfile
    rows = (
        session.execute(
            select(
                U.id,
                U.name,
                U.company,
                U.job_title,
                P.industry_id,
                P.size_band_id,
                P.country_code,
                P.story,
                P.confirmed_at,
            )
            .outerjoin(P, P.user_id == U.id)
            .where(U.id.in_(user_ids), U.role == Role.ADVOCATE, U.status == Status.ACTIVE)
        )
        .mappings()
        .all()
    )
    by_id = {r["id"]: r for r in rows}
    active = [uid for uid in user_ids if uid in by_id]
    remove = [uid for uid in user_ids if uid not in by_id]
    if not active:
        return [], remove
    industries, sizes, products = _names(session, Industry), _names(session, SizeBand), _names(session, Product)
    regions = _names(session, Region)
    countries = _countries(session)
    prods = _grouped(
        session.execute(
            select(profile_products.c.user_id, profile_products.c.product_id).where(
                profile_products.c.user_id.in_(active)
            )
        ).all()
    )
    tags = _grouped(
        session.execute(
            select(profile_tags.c.user_id, Tag.name)
            .join(Tag, Tag.id == profile_tags.c.tag_id)
            .where(profile_tags.c.user_id.in_(active))
        ).all()
    )
    acts = _grouped(
        session.execute(
            select(ActivityPreference.user_id, ActivityType.key)
            .join(ActivityType, ActivityType.id == ActivityPreference.activity_type_id)
            .where(ActivityPreference.user_id.in_(active), ActivityPreference.opted_in.is_(True))
        ).all()
    )
    act_names = _activity_names(session)
    engaged = dict(
        session.execute(
            select(Participation.user_id, func.max(Participation.engaged_at))
            .where(Participation.user_id.in_(active), Participation.status.in_(ENGAGED_STATUSES))
            .group_by(Participation.user_id)
        ).all()
    )
    fatigue_of = _fatigue_keys(session, active, now)
    docs = []
    for uid in active:
        r = by_id[uid]
        prod_ids = sorted(prods.get(uid, []))
        prod_names = [products[p] for p in prod_ids if p in products]
        topics = tags.get(uid, [])
        act_keys = sorted(acts.get(uid, []))
        industry = industries.get(r["industry_id"], "")
        size = sizes.get(r["size_band_id"], "")
        country, region_id = countries.get(r["country_code"], ("", None))
        region = regions.get(region_id, "")
        content = " \n".join(
            filter(
                None,
                [
                    r["name"],
                    r["company"] or "",
                    r["job_title"] or "",
                    industry,
                    size,
                    country,
                    region,
                    " ".join(prod_names),
                    " ".join(topics),
                    " ".join(act_names.get(k, k) for k in act_keys),
                    r["story"] or "",
                ],
            )
        )
        facets = SEP.join(
            [
                str(r["industry_id"] or ""),
                str(region_id or ""),
                r["country_code"] or "",
                str(r["size_band_id"] or ""),
                "|".join(map(str, prod_ids)),
                "|".join(act_keys),
                fatigue_of[uid],
                str(day(_aware(r["confirmed_at"]))),
                str(day(_aware(engaged.get(uid)))),
            ]
        )
        doc = {
            "uid": str(uid),
            "content": content,
            "name": r["name"],
            "company": r["company"] or "",
            "title": r["job_title"] or "",
            "facets": facets,
        }
        doc["digest"] = digest(doc)
        docs.append(doc)
    return docs, remove


def _aware(value):
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def all_advocate_ids(session) -> list[int]:
    return list(session.scalars(active_advocates().order_by(User.id)))


def opportunity_docs(session, ids: list[int]) -> tuple[list[dict], list[int]]:
    """(documents for the listed opportunities among ``ids``, ids whose document must be removed)."""
    Opp = Opportunity
    opps = {
        r.id: r
        for r in session.execute(
            select(
                Opp.id,
                Opp.title,
                Opp.description,
                Opp.location,
                Opp.activity_type_id,
                Opp.status,
                Opp.private,
                ActivityType.name,
            )
            .join(ActivityType, ActivityType.id == Opp.activity_type_id)
            .where(Opp.id.in_(ids))
        ).all()
    }
    docs, remove = [], []
    for oid in ids:
        o = opps.get(oid)
        if o is None or o.private or o.status in (OpportunityStatus.DRAFT, OpportunityStatus.ARCHIVED):
            remove.append(oid)
            continue
        doc = {
            "oid": str(o.id),
            "title": o.title,
            "content": f"{o.title}\n{o.name}\n{o.location}\n{o.description}",
            "type": str(o.activity_type_id),
            "status": o.status.value,
        }
        doc["digest"] = digest(doc)
        docs.append(doc)
    return docs, remove


def all_opportunity_ids(session) -> list[int]:
    return list(
        session.scalars(
            select(Opportunity.id)
            .where(
                Opportunity.status.in_((OpportunityStatus.OPEN, OpportunityStatus.CLOSED)),
                Opportunity.private.is_(False),
            )
            .order_by(Opportunity.id)
        )
    )
