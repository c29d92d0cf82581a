"""Search documents built from the database in bulk, with plain SQL (Core) rows: building them through
the ORM (an object per row, relationships loaded one by one) was most of a rebuild's time."""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import func, select

from portal.models import (
    ENGAGED_STATUSES,
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    Country,
    Industry,
    Opportunity,
    OpportunityStatus,
    Participation,
    Product,
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

NEVER = 0  # day number used when an advocate never confirmed / never engaged
SEP = "~"  # between the packed facet values of a document; "|" between the values of one facet


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
    return list(
        session.scalars(
            select(User.id).where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE).order_by(User.id)
        )
    )


def opportunity_docs(session, ids: list[int]) -> tuple[list[dict], list[int]]:
    opps = {o.id: o for o in session.scalars(select(Opportunity).where(Opportunity.id.in_(ids)))}
    docs, remove = [], []
    for oid in ids:
        o = opps.get(oid)
        if o is None or o.status in (OpportunityStatus.DRAFT, OpportunityStatus.ARCHIVED):
            remove.append(oid)
            continue
        doc = {
            "oid": str(o.id),
            "title": o.title,
            "content": f"{o.title}\n{o.activity_type.name}\n{o.location}\n{o.description}",
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
            .where(Opportunity.status.in_((OpportunityStatus.OPEN, OpportunityStatus.CLOSED)))
            .order_by(Opportunity.id)
        )
    )
