"""Plain database search, used when the index is missing or unreadable (with a notice)."""

from __future__ import annotations

import re
from datetime import date, datetime

from sqlalchemy import and_, case, exists, func, or_, select

from portal.models import (
    ENGAGED_STATUSES,
    AdvocateProfile,
    Country,
    Participation,
    Role,
    Status,
    Tag,
    User,
    profile_products,
    profile_tags,
)
from portal.services import fatigue
from portal.services.profiles import stale_days
from search import documents
from search.facets import FACETS, MULTI, freshness_bucket, freshness_labels
from search.querying import (
    PER_PAGE,
    AdvocateSearch,
    CriteriaRanking,
    Criterion,
    FacetValue,
    Results,
    _hits,
    _labels,
    relax_level,
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


MATCH_LIMIT = 5000  # advocates read when matching a request's criteria without the index


def rank_by_criteria(
    session, criteria: list[Criterion], relax_order: list[str], leave_out: set[int], limit: int
) -> CriteriaRanking:
    """querying.rank_by_criteria from the database (one query), when the index cannot answer: the same
    order of fit, least recently engaged next (no relevance to the free text). Reads at most MATCH_LIMIT
    advocates matching at least one criterion (every active advocate when there are none)."""
    P = AdvocateProfile
    tests = []
    for c in criteria:
        if c.facet == "industry":
            test = P.industry_id == int(c.value)
        elif c.facet == "size":
            test = P.size_band_id == int(c.value)
        elif c.facet == "region":
            test = P.country_code.in_(select(Country.code).where(Country.region_id == int(c.value)))
        elif c.facet == "product":
            pp = profile_products.c
            test = exists().where(pp.user_id == User.id, pp.product_id == int(c.value))
        elif c.phrase:
            pt = profile_tags.c
            test = exists().where(
                pt.user_id == User.id, pt.tag_id == Tag.id, func.lower(Tag.name) == c.phrase.strip().lower()
            )
        else:
            continue
        tests.append((c.key, test))
    last = (
        select(func.max(Participation.engaged_at))
        .where(Participation.user_id == User.id, Participation.status.in_(ENGAGED_STATUSES))
        .scalar_subquery()
    )
    q = (
        select(User.id, last, *(case((test, 1), else_=0) for _, test in tests))
        .outerjoin(P, P.user_id == User.id)
        .where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE)
    )
    if tests:
        q = q.where(or_(*(test for _, test in tests)))
    if leave_out:
        q = q.where(User.id.not_in(sorted(leave_out)))
    rows = session.execute(q.order_by(User.id).limit(MATCH_LIMIT)).all()
    order = [k for k in relax_order if any(k == key for key, _ in tests)] + [
        key for key, _ in tests if key not in relax_order
    ]
    found = []
    for uid, engaged_at, *hits in rows:
        keys = frozenset(key for (key, _), hit in zip(tests, hits) if hit)
        level = relax_level(order, keys)
        dropped = sum(1 for key in order[: max(level - 1, 0)] if key in keys)
        found.append(((level, -dropped, engaged_at is not None, engaged_at or datetime.min, uid), uid, keys))
    found.sort(key=lambda f: f[0])
    counts = [0] * (len(order) + 1)
    for (level, *_), _, _ in found:
        for k in range(level, len(order) + 1):
            counts[k] += 1
    return CriteriaRanking(
        [(uid, keys) for _, uid, keys in found[:limit]],
        counts,
        [
            "The search index is not available right now, so the database was searched more simply"
            + (f" (the first {MATCH_LIMIT:,} matches)." if len(rows) >= MATCH_LIMIT else ".")
        ],
    )
