"""Plain database search, used when the index is missing or unreadable (with a notice)."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import and_, or_, select

from portal.models import AdvocateProfile, Role, Status, User
from portal.services import fatigue
from portal.services.profiles import stale_days
from search import documents
from search.facets import FACETS, MULTI, freshness_bucket, freshness_labels
from search.querying import (
    PER_PAGE,
    AdvocateSearch,
    FacetValue,
    Results,
    _hits,
    _labels,
)
from search.schema import advocate_schema

LIMIT = 2000
MAX_WORDS = 10
OPERATORS = {"AND", "OR", "NOT", "ANDNOT", "ANDMAYBE", "REQUIRE", "TO"}
SYNTAX = re.compile(r"[()\[\]{}*?^~\"]")


def like_pattern(word: str) -> str:
    """``%word%`` with LIKE's own wildcards escaped (used with escape="\\"): ``%`` and ``_`` match
    themselves, not everyone."""
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def words_and_fields(text: str) -> list[tuple[str | None, str]]:
    """(field or None for every text column, word) from the index's query syntax, read plainly:
    ``company:acme`` looks in the company only; facet names and unknown prefixes are dropped
    (``industry:healthcare`` looks for healthcare everywhere); operators and syntax characters go."""
    out = []
    for token in (text or "").split():
        field = None
        if ":" in token:
            prefix, _, rest = token.partition(":")
            field = prefix.lower() if prefix.lower() in ("name", "company", "title") else None
            token = rest
        if token in OPERATORS:
            continue
        word = SYNTAX.sub(" ", token).strip(" :")
        for part in word.split():
            out.append((field, part[:100]))
    return out[:MAX_WORDS]


def search_advocates(session, req: AdvocateSearch, today: date) -> Results:
    q = (
        select(User.id)
        .outerjoin(AdvocateProfile, AdvocateProfile.user_id == User.id)
        .where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE)
    )
    columns = {"name": User.name, "company": User.company, "title": User.job_title}
    for field, w in words_and_fields(req.q):
        like = like_pattern(w)
        if field:
            q = q.where(columns[field].ilike(like, escape="\\"))
            continue
        q = q.where(
            or_(
                User.name.ilike(like, escape="\\"),
                User.company.ilike(like, escape="\\"),
                User.job_title.ilike(like, escape="\\"),
                and_(AdvocateProfile.user_id.is_not(None), AdvocateProfile.story.ilike(like, escape="\\")),
            )
        )
    ids = list(session.scalars(q.order_by(User.id).limit(LIMIT)))
    docs = []
    for i in range(0, len(ids), 500):
        docs.extend(documents.advocate_docs(session, ids[i : i + 500])[0])
    blocked = set() if req.include_unavailable else set(fatigue.unavailable_on(session))
    today_n = today.toordinal()
    stale = stale_days()

    for d in docs:
        d["packed"] = d["facets"].split(documents.SEP)

    def values(doc, facet):
        if facet == "freshness":
            return [freshness_bucket(int(doc["packed"][len(FACETS)] or 0), today_n, stale)]
        raw = doc["packed"][FACETS[facet]]
        return raw.split("|") if facet in MULTI and raw else ([raw] if raw else [])

    docs = [
        d
        for d in docs
        if req.include_unavailable
        or (int(d["uid"]) not in blocked and d["packed"][FACETS["fatigue"]] not in fatigue.REFUSED_STATUSES)
    ]
    chosen = {f: [v for v in req.filters.get(f, []) if v] for f in list(FACETS) + ["freshness"]}

    def keep(doc, skip=None):
        return all(not vals or f == skip or set(values(doc, f)) & set(vals) for f, vals in chosen.items())

    final = [d for d in docs if keep(d)]
    labels = {**_labels(session), "freshness": freshness_labels(stale)}
    facets = {}
    for f in chosen:
        counts: dict[str, int] = {}
        for d in docs:
            if keep(d, f):
                for v in values(d, f):
                    counts[v] = counts.get(v, 0) + 1
        facets[f] = sorted(
            (FacetValue(v, labels[f].get(v, v), n, v in chosen[f]) for v, n in counts.items()),
            key=lambda r: (-r.count, r.label),
        )
    if req.sort == "engaged":
        final.sort(key=lambda d: int(d["packed"][len(FACETS) + 1] or 0))
    else:
        final.sort(key=lambda d: -int(d["packed"][len(FACETS)] or 0))
    total = len(final)
    pages = max(1, -(-total // PER_PAGE))
    page = min(max(1, req.page), pages)
    uids = [int(d["uid"]) for d in final[(page - 1) * PER_PAGE : page * PER_PAGE]]
    notes = [
        "The search index is not available right now, so this is a simpler search of the database"
        + (f" (the first {LIMIT:,} matches)." if len(ids) >= LIMIT else ".")
    ]
    return Results(
        total, _hits(session, uids, set(), advocate_schema(), today), facets, page, pages, notes, fallback=True
    )
