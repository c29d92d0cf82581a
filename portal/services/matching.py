"""Matching advocates to a reference request: ranked by fit through the search index, each with the
criteria they match, the criteria relaxed when too few match them all, and the advocates left out by
the rules (fatigue's reasons, decided in bulk by ``fatigue.decide_many``) counted per reason.

The criteria are the request's industry, region, product, company size and topics (each labelled in
words); its free text (``need``) only orders those who match equally. Relaxing drops the least
important criterion first: topics, then company size, product, region, and industry last, one at a time,
until at least as many advocates who may be asked match what is left as the request needs. Advocates
already asked on the request (a participation in its private opportunity) are not proposed again."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import Industry, Participation, Product, ReferenceRequest, Region, SizeBand, Tag, User
from portal.services import fatigue
from search import service as search_service
from search.querying import Criterion, relax_level

DECIDE_AT_MOST = 500  # the best-fitting advocates decided by the rules (the counts of those left out are over them)
RELAX_ORDER = ("size", "product", "region", "industry")  # after the topics (least important first)

# The reasons as the page groups them: (the codes, words for "n advocates ...").
REASON_GROUPS = (
    ((fatigue.PAUSED, fatigue.BLACKOUT), "paused or in a blackout"),
    ((fatigue.MONTH_LIMIT, fatigue.QUARTER_LIMIT, fatigue.PROGRAM_LIMIT), "at their limit"),
    ((fatigue.REFERENCE_CALL_GAP,), "in a cool-down after a reference call"),
    ((fatigue.NOT_OPTED_IN,), "not opted in"),
    ((fatigue.NOT_ACTIVE,), "not active"),
)


@dataclass
class Candidate:
    user_id: int
    name: str
    company: str
    matched: list[str]  # the request's criteria this advocate matches, in words ("Industry: Healthcare")
    missing: list[str]  # the request's criteria they do not match (relaxed ones)
    decision: fatigue.Decision  # allowed, or the rules that leave them out (an admin may override)


@dataclass
class Matches:
    candidates: list[Candidate] = field(default_factory=list)  # may be asked, best fit first
    relaxed: list[str] = field(default_factory=list)  # criteria dropped because nobody matched them all
    # fatigue reason code -> how many were left out (of the DECIDE_AT_MOST best fits matching the relaxed criteria)
    excluded: dict[str, int] = field(default_factory=dict)
    excluded_people: list[Candidate] = field(default_factory=list)  # the best-fitting of those left out
    total_matching: int = 0  # advocates matching the (relaxed) criteria, before the rules
    criteria: list[str] = field(default_factory=list)  # every criterion of the request, in words
    excluded_summary: list[str] = field(default_factory=list)  # "3 paused or in a blackout", ... (people)
    notes: list[str] = field(default_factory=list)  # e.g. the index could not be read
    left_out: int = 0  # advocates left out by the rules (each counted once)


def criteria_of(session: Session, rr: ReferenceRequest) -> list[tuple[Criterion, str]]:
    """The request's criteria with their words, most important first (industry ... topics)."""
    out: list[tuple[Criterion, str]] = []
    for facet, model, ident, title in (
        ("industry", Industry, rr.industry_id, "Industry"),
        ("region", Region, rr.region_id, "Region"),
        ("product", Product, rr.product_id, "Product"),
        ("size", SizeBand, rr.size_band_id, "Company size"),
    ):
        item = session.get(model, ident) if ident is not None else None
        if item is not None:
            out.append((Criterion(facet, facet=facet, value=str(item.id)), f"{title}: {item.name}"))
    topic_ids = [int(t) for t in rr.topic_ids or []]
    if topic_ids:
        names = dict(session.execute(select(Tag.id, Tag.name).where(Tag.id.in_(topic_ids))).all())
        for tid in dict.fromkeys(topic_ids):
            if tid in names:
                out.append((Criterion(f"topic:{tid}", phrase=names[tid]), f"Topic: {names[tid]}"))
    return out


def for_request(session: Session, rr: ReferenceRequest, limit: int = 20) -> Matches:
    """The advocates to propose for ``rr`` (at most ``limit`` who may be asked, best fit first), the
    criteria relaxed to find them, and those left out by the rules (counted per reason; the best-fitting
    of them listed with their reasons, for an admin who may ask one anyway)."""
    crit = criteria_of(session, rr)
    words = {c.key: label for c, label in crit}
    topics = [c.key for c, _ in crit if c.key.startswith("topic:")]
    order = [*reversed(topics), *(k for k in RELAX_ORDER if k in words)]  # least important first
    asked = set(session.scalars(select(Participation.user_id).where(Participation.opportunity_id == rr.opportunity_id)))
    found = search_service.advocates_matching(
        session, [c for c, _ in crit], order, rr.need or "", asked, max(DECIDE_AT_MOST, limit)
    )
    matches = Matches(criteria=[label for _, label in crit], notes=list(found.notes))
    ranked = [(uid, keys) for uid, keys in found.ranked if uid not in asked]
    decisions = fatigue.decide_many(session, [uid for uid, _ in ranked], rr.activity_type, rr.due_date)

    levels = [(uid, keys, relax_level(order, keys)) for uid, keys in ranked if uid in decisions]
    needed = max(rr.advocates_needed or 0, 1)
    k = len(order)
    for j in range(len(order) + 1):
        if sum(1 for uid, _, lv in levels if lv <= j and decisions[uid].allowed) >= needed:
            k = j
            break
    within = [(uid, keys) for uid, keys, lv in levels if lv <= k]
    matches.relaxed = [words[key] for key in order[:k]]
    matches.total_matching = found.level_counts[k] if k < len(found.level_counts) else 0
    allowed = [(uid, keys) for uid, keys in within if decisions[uid].allowed]
    refused = [(uid, keys) for uid, keys in within if not decisions[uid].allowed]
    for uid, _ in refused:
        for code in dict.fromkeys(decisions[uid].codes):
            matches.excluded[code] = matches.excluded.get(code, 0) + 1
    for codes, words_of in REASON_GROUPS:
        n = sum(1 for uid, _ in refused if decisions[uid].has(codes))
        if n:
            matches.excluded_summary.append(f"{n:,} {words_of}")
    matches.left_out = len(refused)
    shown = allowed[:limit] + refused[:limit]
    people = {
        r.id: r
        for r in session.execute(
            select(User.id, User.name, User.company).where(User.id.in_([uid for uid, _ in shown]))
        ).all()
    }
    all_keys = [c.key for c, _ in crit]

    def candidate(uid: int, keys: frozenset[str]) -> Candidate:
        p = people[uid]
        return Candidate(
            uid,
            p.name,
            p.company or "",
            [words[key] for key in all_keys if key in keys],
            [words[key] for key in all_keys if key not in keys],
            decisions[uid],
        )

    matches.candidates = [candidate(uid, keys) for uid, keys in allowed[:limit] if uid in people]
    matches.excluded_people = [candidate(uid, keys) for uid, keys in refused[:limit] if uid in people]
    return matches
