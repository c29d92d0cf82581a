"""Search documents built from the database, in bulk (a chunk of ids at a time)."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from portal.models import (ENGAGED_STATUSES, ActivityPreference, ActivityType, AdvocateProfile, Opportunity,
                           OpportunityStatus, Participation, Role, Status, User, utcnow)
from portal.services import fatigue

NEVER = 0  # day number used when an advocate never confirmed / never engaged


def day(value: datetime | None) -> int:
    return value.date().toordinal() if value else NEVER


def _join(values) -> str:
    return "|".join(str(v) for v in values)


def advocate_docs(session, user_ids: list[int], now: datetime | None = None) -> tuple[list[dict], list[int]]:
    """(documents for the active advocates among ``user_ids``, ids whose document must be removed)."""
    now = now or utcnow()
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))}
    active = [uid for uid in user_ids
              if uid in users and users[uid].role == Role.ADVOCATE and users[uid].status == Status.ACTIVE]
    remove = [uid for uid in user_ids if uid not in active]
    if not active:
        return [], remove
    profiles = {p.user_id: p for p in session.scalars(
        select(AdvocateProfile).where(AdvocateProfile.user_id.in_(active))
        .options(selectinload(AdvocateProfile.products), selectinload(AdvocateProfile.tags)))}
    activities = defaultdict(list)
    for uid, key, name in session.execute(
            select(ActivityPreference.user_id, ActivityType.key, ActivityType.name)
            .join(ActivityType, ActivityType.id == ActivityPreference.activity_type_id)
            .where(ActivityPreference.user_id.in_(active), ActivityPreference.opted_in.is_(True))):
        activities[uid].append((key, name))
    engaged = dict(session.execute(
        select(Participation.user_id, func.max(Participation.engaged_at))
        .where(Participation.user_id.in_(active), Participation.status.in_(ENGAGED_STATUSES))
        .group_by(Participation.user_id)).all())
    fatigue_of = fatigue.statuses(session, active, now)
    docs = []
    for uid in active:
        u, p = users[uid], profiles.get(uid)
        products = [x.name for x in p.products] if p else []
        topics = [t.name for t in p.tags] if p else []
        acts = activities.get(uid, [])
        industry = p.industry.name if p and p.industry else ""
        size = p.size_band.name if p and p.size_band else ""
        country = p.country.name if p and p.country else ""
        region = p.region.name if p and p.region else ""
        content = " \n".join(filter(None, [
            u.name, u.company or "", u.job_title or "", industry, size, country, region, " ".join(products),
            " ".join(topics), " ".join(n for _, n in acts), p.story if p else ""]))
        docs.append({
            "uid": str(uid), "content": content, "name": u.name, "company": u.company or "",
            "title": u.job_title or "", "industry": industry, "region": region, "country": country, "size": size,
            "product": ",".join(products), "topic": ",".join(topics), "activity": ",".join(k for k, _ in acts),
            "f_industry": str(p.industry_id) if p and p.industry_id else "",
            "f_region": str(p.region.id) if p and p.region else "",
            "f_country": p.country_code if p and p.country_code else "",
            "f_size": str(p.size_band_id) if p and p.size_band_id else "",
            "f_products": _join(sorted(x.id for x in p.products)) if p else "",
            "f_activities": _join(sorted(k for k, _ in acts)),
            "f_fatigue": fatigue_of[uid].key,
            "status": u.status.value,
            "confirmed_day": day(p.confirmed_at) if p else NEVER,
            "engaged_day": day(engaged.get(uid)),
        })
    return docs, remove


def all_advocate_ids(session) -> list[int]:
    return list(session.scalars(select(User.id).where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE)
                                .order_by(User.id)))


def opportunity_docs(session, ids: list[int]) -> tuple[list[dict], list[int]]:
    opps = {o.id: o for o in session.scalars(select(Opportunity).where(Opportunity.id.in_(ids)))}
    docs, remove = [], []
    for oid in ids:
        o = opps.get(oid)
        if o is None or o.status in (OpportunityStatus.DRAFT, OpportunityStatus.ARCHIVED):
            remove.append(oid)
            continue
        docs.append({"oid": str(o.id), "title": o.title,
                     "content": f"{o.title}\n{o.activity_type.name}\n{o.location}\n{o.description}",
                     "type": str(o.activity_type_id), "status": o.status.value})
    return docs, remove


def all_opportunity_ids(session) -> list[int]:
    return list(session.scalars(select(Opportunity.id).where(
        Opportunity.status.in_((OpportunityStatus.OPEN, OpportunityStatus.CLOSED))).order_by(Opportunity.id)))
