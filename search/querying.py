"""Advocate and opportunity search over the Whoosh index, with facets, sorting, snippets and pages."""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from datetime import date

from flask import current_app
from markupsafe import Markup
from sqlalchemy import select
from whoosh import highlight
from whoosh.qparser import QueryParser
from whoosh.query import And, Every, NullQuery, Term

from portal.models import ActivityType, AdvocateProfile, Blackout, Country, Industry, Product, Region, SizeBand, User, utcnow
from search import ranking
from search.facets import FACETS, FRESHNESS, FacetCache, bits_from_positions
from search.indexing import ADVOCATES, OPPORTUNITIES, IndexUnavailable, current_dir, open_index

PER_PAGE = 20
MAX_QUERY = 500
SORTS = {"relevance": "Relevance", "engaged": "Least recently engaged", "confirmed": "Most recently confirmed"}
FACET_FIELD_ALIASES = re.compile(r"\b(industry|region|country|size|product|topic|usecase|activity|story):",
                                 re.IGNORECASE)
UNAVAILABLE_FATIGUE = ("at_limit", "unavailable")


# --- searcher cache (one per process and index directory) ----------------------------------------------


class _Open:
    def __init__(self, target: str, ix):
        self.target = target
        self.ix = ix
        self.searcher = ix.searcher()
        self.facets = FacetCache()
        self.lock = threading.Lock()


_open: dict[tuple[str, str], _Open] = {}
_open_lock = threading.Lock()


def searcher_for(kind: str):
    """A persistent searcher, refreshed when the index changed or a rebuild swapped it."""
    link = current_dir() / kind
    target = os.path.realpath(link)
    key = (current_app.config["SEARCH_INDEX_DIR"], kind)
    with _open_lock:
        st = _open.get(key)
        if st is None or st.target != target:
            # The old searcher is not closed here: another thread may be searching with it (closed
            # readers answered "no matches" or raised). It closes its files when the last user drops it.
            st = _open[key] = _Open(target, open_index(kind))
    with st.lock:
        try:
            if not st.searcher.up_to_date():
                # A fresh reader, not searcher.refresh(): refresh() reuses the readers of unchanged
                # segments, and those keep their old deletions (an updated document showed twice).
                st.searcher = st.ix.searcher()  # the old one is left to its current users (see above)
        except Exception as exc:
            with _open_lock:
                _open.pop(key, None)
            raise IndexUnavailable(str(exc)) from exc
    return st


def forget_searchers() -> None:
    with _open_lock:
        _open.clear()  # not closed: searches in other threads may still use them (see searcher_for)


# --- parsing ------------------------------------------------------------------------------------------------


def parse(schema, text: str) -> tuple[object | None, list[str]]:
    """(query or None for "everything", notes). Bad syntax is searched as plain words, quietly."""
    notes = []
    text = (text or "").strip()
    if len(text) > MAX_QUERY:
        text = text[:MAX_QUERY]
        notes.append(f"Only the first {MAX_QUERY} characters of the search were used.")
    if not text:
        return None, notes
    parser = QueryParser("content", schema)
    try:
        # Facet names used as fields search the content, which holds those values.
        q = parser.parse(FACET_FIELD_ALIASES.sub("", text) if "content" in schema and "facets" in schema else text)
        if q is NullQuery or isinstance(q, type(NullQuery)):
            q = None
        bad = q is not None and _has_unknown_field(q, schema)
    except Exception:
        q, bad = None, True
    if bad or (q is None and re.search(r"\w", text)):
        q = plain_words(schema, text)
        notes.append("Your search was read as plain words.")
    return q, notes


def _has_unknown_field(q, schema) -> bool:
    for fieldname, _ in q.iter_all_terms() if hasattr(q, "iter_all_terms") else []:
        if fieldname not in schema:
            return True
    return False


def plain_words(schema, text: str):
    analyzer = schema["content"].analyzer
    words = [t.text for t in analyzer(text)]
    if not words:
        return NullQuery
    return And([Term("content", w) for w in dict.fromkeys(words)])


# --- advocate search -------------------------------------------------------------------------------------------


@dataclass
class AdvocateSearch:
    q: str = ""
    filters: dict[str, list[str]] = field(default_factory=dict)
    include_unavailable: bool = False
    sort: str = "relevance"
    page: int = 1


@dataclass
class Hit:
    user: User
    profile: AdvocateProfile | None
    snippet: Markup | str
    fatigue: str
    freshness_days: int | None


@dataclass
class FacetValue:
    value: str
    label: str
    count: int
    selected: bool


@dataclass
class Results:
    total: int
    hits: list[Hit]
    facets: dict[str, list[FacetValue]]
    page: int
    pages: int
    notes: list[str]
    fallback: bool = False


_labels_cache: dict[str, tuple[float, dict]] = {}
LABELS_TTL = 60.0


def _labels(session) -> dict[str, dict[str, str]]:
    """Display names of facet values (the lists admins manage), cached for a minute."""
    import time

    key = str(session.get_bind().url)
    hit = _labels_cache.get(key)
    if hit and time.monotonic() - hit[0] < LABELS_TTL:
        return hit[1]
    labels = _load_labels(session)
    _labels_cache[key] = (time.monotonic(), labels)
    return labels


def _load_labels(session) -> dict[str, dict[str, str]]:
    return {
        "industry": {str(i.id): i.name for i in session.scalars(select(Industry))},
        "region": {str(i.id): i.name for i in session.scalars(select(Region))},
        "country": {c.code: c.name for c in session.scalars(select(Country))},
        "size": {str(i.id): i.name for i in session.scalars(select(SizeBand))},
        "product": {str(i.id): i.name for i in session.scalars(select(Product))},
        "activity": {t.key: t.name for t in session.scalars(select(ActivityType))},
        "fatigue": {"available": "Available", "near_limit": "Near limit", "at_limit": "At limit",
                    "unavailable": "Paused or in blackout", "under_used": "Under-used"},
        "freshness": dict(FRESHNESS),
    }


def unavailable_today(session, today: date) -> set[int]:
    paused = set(session.scalars(select(AdvocateProfile.user_id).where(AdvocateProfile.paused_until >= today)))
    away = set(session.scalars(select(Blackout.user_id).where(Blackout.starts_on <= today, Blackout.ends_on >= today)))
    return paused | away


def search_advocates(session, req: AdvocateSearch, today: date | None = None) -> Results:
    today = today or utcnow().date()
    st = searcher_for(ADVOCATES)
    # One search at a time per searcher: Whoosh's readers share file positions between threads (two
    # threads reading a freshly opened segment at once cached "no documents" for a term), and the
    # per-segment caches are plain dicts.
    with st.lock:
        results, uids, q = _search_index(session, req, today, st.searcher, st.facets)
    results.hits = _hits(session, uids, _content_terms(q), st.searcher.schema, today)
    return results


def _search_index(session, req: AdvocateSearch, today: date, searcher, facet_cache: FacetCache):
    """(results without their hits, the page's advocate ids, the query); run under the searcher's lock."""
    view = facet_cache.view(searcher, today)
    q, notes = parse(searcher.schema, req.q)
    try:
        matched = ranking.match_bits(searcher, view, q)
    except Exception:
        q = plain_words(searcher.schema, req.q[:MAX_QUERY])
        notes.append("Your search was read as plain words.")
        matched = ranking.match_bits(searcher, view, q)

    blocked = 0
    if not req.include_unavailable:
        for key in UNAVAILABLE_FATIGUE:
            blocked |= view.values["fatigue"].get(key, 0)
        blocked |= bits_from_positions(view.docnums_for_uids(unavailable_today(session, today)), view.size)
    base = matched & ~blocked

    all_facets = list(FACETS) + ["freshness"]
    chosen = {f: [v for v in req.filters.get(f, []) if v] for f in all_facets}
    facet_bits = {f: (0 if not vals else _union(view.values[f], vals)) for f, vals in chosen.items()}

    def narrowed(skip: str | None) -> int:
        bits = base
        for f, vals in chosen.items():
            if vals and f != skip:
                bits &= facet_bits[f]
        return bits

    final = narrowed(None)
    total = final.bit_count()
    labels = _labels(session)
    facets = {}
    for f in all_facets:
        scope = narrowed(f)
        rows = []
        for value, bits in view.values[f].items():
            n = (scope & bits).bit_count()
            if n or value in chosen[f]:
                rows.append(FacetValue(value, labels[f].get(value, value), n, value in chosen[f]))
        rows.sort(key=lambda r: (-r.count, r.label))
        facets[f] = rows

    pages = max(1, -(-total // PER_PAGE))
    page = min(max(1, req.page), pages)
    want = page * PER_PAGE
    sort = req.sort if req.sort in SORTS else "relevance"
    if sort == "relevance" and q is not None and not isinstance(q, Every) and total:
        docnums = ranking.top_docs(searcher, view, q, final, total, want)[(page - 1) * PER_PAGE:want]
    else:
        order = "engaged" if sort == "engaged" else "confirmed"
        docnums = view.ordered(final, order, want)[(page - 1) * PER_PAGE:want]
    uids = [view.uid_of(d) for d in docnums]
    return Results(total, [], facets, page, pages, notes), uids, q


def _union(values: dict[str, int], chosen: list[str]) -> int:
    bits = 0
    for v in chosen:
        bits |= values.get(v, 0)
    return bits


def _content_terms(q) -> set[str]:
    if q is None or isinstance(q, Every):
        return set()
    try:
        return {text.decode() if isinstance(text, bytes) else text for fieldname, text in q.iter_all_terms()
                if fieldname == "content"}
    except Exception:
        return set()


def snippet(text: str, terms: set[str], schema) -> Markup | str:
    if not text:
        return ""
    if terms:
        try:
            frag = highlight.highlight(text, terms, schema["content"].analyzer,
                                       highlight.ContextFragmenter(maxchars=220, surround=60),
                                       highlight.HtmlFormatter(tagname="mark", between=" … "), top=2)
            if frag:
                return Markup(frag)  # whoosh's HtmlFormatter escapes the text around the marks
        except Exception:
            pass
    return text[:220] + ("…" if len(text) > 220 else "")


def _hits(session, uids: list[int], terms: set[str], schema, today: date) -> list[Hit]:
    from portal.services import fatigue

    if not uids:
        return []
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(uids)))}
    profiles = {p.user_id: p for p in session.scalars(select(AdvocateProfile).where(AdvocateProfile.user_id.in_(uids)))}
    status = fatigue.statuses(session, [u for u in uids if u in users])
    out = []
    for uid in uids:
        user = users.get(uid)
        if user is None:
            continue  # deleted since the index was written; the pending queue removes it
        p = profiles.get(uid)
        fresh = (today - p.confirmed_at.date()).days if p and p.confirmed_at else None
        out.append(Hit(user, p, snippet(p.story if p else "", terms, schema), status[uid].key, fresh))
    return out


# --- opportunity search (advocates) ---------------------------------------------------------------------------


def search_opportunity_ids(text: str, type_id: int | None) -> tuple[list[int] | None, list[str]]:
    """Opportunity ids matching the text (None: no text given), best first."""
    st = searcher_for(OPPORTUNITIES)
    q, notes = parse(st.searcher.schema, text)
    if q is None:
        return None, notes
    filt = Term("type", str(type_id)) if type_id else None
    with st.lock:  # see search_advocates
        results = st.searcher.search(q, limit=500, filter=filt)
        return [int(hit["oid"]) for hit in results], notes
