"""Advocate and opportunity search over the Whoosh index, with facets, sorting, snippets and pages."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date

from flask import current_app
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session
from whoosh import highlight
from whoosh.qparser import QueryParser
from whoosh.query import And, Every, NullQuery, Or, Phrase, Term

from portal.extensions import db
from portal.models import (
    ActivityType,
    AdvocateProfile,
    Country,
    Industry,
    Product,
    Region,
    SizeBand,
    User,
    utcnow,
)
from portal.services import fatigue
from portal.services.profiles import stale_days
from search import ranking
from search.facets import FACETS, FacetCache, FacetView, bits_from_positions, freshness_labels, positions_of
from search.indexing import ADVOCATES, OPPORTUNITIES, IndexUnavailable, current_dir, open_index, open_searcher

PER_PAGE = 20
MAX_QUERY = 500
SORTS = {"relevance": "Relevance", "engaged": "Least recently engaged", "confirmed": "Most recently confirmed"}
FACET_FIELD_ALIASES = re.compile(
    r"\b(industry|region|country|size|product|topic|usecase|activity|story):", re.IGNORECASE
)
log = logging.getLogger(__name__)


# --- searcher cache (one per process and index directory) ----------------------------------------------


class _Open:
    def __init__(self, target: str, ix):
        self.target = target
        self.ix = ix
        self.searcher = open_searcher(ix)
        self.facets = FacetCache()
        self.lock = threading.Lock()


_open: dict[tuple[str, str], _Open] = {}
_open_lock = threading.Lock()
_warming: dict[tuple[str, str], tuple[str, threading.Thread]] = {}  # key -> (generation being warmed, thread)


def searcher_for(kind: str):
    """A persistent searcher, refreshed when the index changed or a rebuild swapped it.

    With SEARCH_WARM on, a swapped-in generation is opened and warmed (warm()) in a background thread
    while searches go on answering from the previous one, which the swap keeps on disk; the new one
    takes over once warm. Without it (tests), the new generation is used at once."""
    link = current_dir() / kind
    target = os.path.realpath(link)
    key = (current_app.config["SEARCH_INDEX_DIR"], kind)
    with _open_lock:
        st = _open.get(key)
        if st is None or st.target != target:
            if st is not None and warm_enabled() and os.path.isdir(st.target) and _warm_swap(key, kind, target):
                pass  # the previous generation answers until the new one is warm
            else:
                # The old searcher is not closed here: another thread may be searching with it (closed
                # readers answered "no matches" or raised). It closes its files when the last user drops it.
                st = _open[key] = _Open(target, open_index(kind))
    with st.lock:
        try:
            if not st.searcher.up_to_date():
                # A fresh reader, not searcher.refresh(): refresh() reuses the readers of unchanged
                # segments, and those keep their old deletions (an updated document showed twice).
                st.searcher = open_searcher(st.ix)  # the old one is left to its current users (see above)
        except Exception as exc:
            with _open_lock:
                _open.pop(key, None)
            raise IndexUnavailable(str(exc)) from exc
    return st


def forget_searchers() -> None:
    with _open_lock:
        _open.clear()  # not closed: searches in other threads may still use them (see searcher_for)


# --- warming: what a first search would build, built off the request path -------------------------------

WARM_TERMS = 24  # most frequent content terms whose posting bitsets and score lists are built ahead
_warmed_at_start: set[tuple[str, int]] = set()
_warm_start_lock = threading.Lock()


def warm_enabled() -> bool:
    return bool(current_app.config.get("SEARCH_WARM", not current_app.testing))


def warm(st: _Open | None = None, terms: int = WARM_TERMS) -> dict[str, float]:
    """Build what the first search of a process (or on a new generation) would otherwise build while
    a user waits: the facet bitsets of every segment, the content field lengths, the labels, and
    the posting bitsets and BM25 score lists of the most frequent content terms (the costliest to
    build on first use). Runs under the searcher's lock a step at a time, so searches interleave.
    Returns the milliseconds of each step."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    st = st or searcher_for(ADVOCATES)
    today = utcnow().date()
    with st.lock:
        view = st.facets.view(st.searcher, today, stale_days())
        for leaf, _, seg in view.leaves:
            seg.field_lengths(leaf, "content")
        reader = st.searcher.reader()
        avgdl = st.searcher.avg_field_length("content") or 1.0
        field = st.searcher.schema["content"]
        try:  # the terms as queries hold them (text, not the index's bytes), so the caches are hit
            top = (
                [
                    field.from_bytes(b) if isinstance(b, bytes) else b
                    for _, b in reader.most_frequent_terms("content", number=terms)
                ]
                if terms
                else []
            )
        except Exception:
            top = []
    timings["facets"] = (time.perf_counter() - t0) * 1000
    t1 = time.perf_counter()
    for text in top:
        with st.lock:
            for leaf, _, seg in view.leaves:
                seg.term_bits(leaf, "content", text)
                seg.term_stats(leaf, "content", text, avgdl)
    timings["terms"] = (time.perf_counter() - t1) * 1000
    with Session(db.engine) as session:  # its own session: the caller's (a test's, a request's) is left alone
        _labels(session)
    timings["total"] = (time.perf_counter() - t0) * 1000
    return timings


def _in_background(name: str, work) -> threading.Thread:
    app = current_app._get_current_object()

    def run():
        with app.app_context():
            try:
                work()
            except Exception as exc:  # a warm-up is only an optimisation: the first search builds instead
                log.warning("search warm-up (%s) did not finish: %s", name, exc)

    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    return t


def warm_in_background() -> threading.Thread | None:
    """Once per process and index: warm() in a daemon thread (called before the first request)."""
    key = (current_app.config["SEARCH_INDEX_DIR"], os.getpid())
    with _warm_start_lock:
        if key in _warmed_at_start:
            return None
        _warmed_at_start.add(key)
    return _in_background("search-warm", lambda: (warm(), searcher_for(OPPORTUNITIES)))


def _warm_swap(key, kind: str, target: str) -> bool:
    """Open and warm generation ``target`` in the background, then put it in place (called under
    _open_lock). False when that cannot be done (it failed before): open it now instead."""
    running = _warming.get(key)
    if running is not None and running[0] == target:
        return running[1].is_alive()

    def work():
        fresh = _Open(target, open_index(kind))
        if kind == ADVOCATES:
            warm(fresh)
        with _open_lock:
            current = _open.get(key)
            if current is None or current.target != target:
                _open[key] = fresh
            _warming.pop(key, None)

    _warming[key] = (target, _in_background(f"search-warm-{kind}-{os.path.basename(target)}", work))
    return True


# --- parsing ------------------------------------------------------------------------------------------------


def parse(schema, text: str, reader=None) -> tuple[object | None, list[str]]:
    """(query or None for "everything", notes). Bad syntax is searched as plain words, quietly.
    With the index's ``reader``, the query is also bounded (ranking.bound: no open ranges, no short
    wildcards, a cap on wildcard expansions), each rewrite with a quiet note."""
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
    if reader is not None and q is not None:
        q = ranking.bound(q, reader, notes)
    return q, notes


def _has_unknown_field(q, schema) -> bool:
    for fieldname, _ in q.iter_all_terms():
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
    key = str(session.get_bind().url)
    hit = _labels_cache.get(key)
    if hit and time.monotonic() - hit[0] < LABELS_TTL:
        return hit[1]
    labels = _load_labels(session)
    _labels_cache[key] = (time.monotonic(), labels)
    return labels


def _load_labels(session) -> dict[str, dict[str, str]]:
    """Plain rows, not ORM objects (cheaper to load: six lists, once a minute)."""

    def pairs(key, name):
        return {str(k): v for k, v in session.execute(select(key, name)).all()}

    return {
        "industry": pairs(Industry.id, Industry.name),
        "region": pairs(Region.id, Region.name),
        "country": pairs(Country.code, Country.name),
        "size": pairs(SizeBand.id, SizeBand.name),
        "product": pairs(Product.id, Product.name),
        "activity": pairs(ActivityType.key, ActivityType.name),
        "fatigue": dict(fatigue.STATUS_LABELS),
    }


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
    stale = stale_days()
    view = facet_cache.view(searcher, today, stale)
    q, notes = parse(searcher.schema, req.q, searcher.reader())
    try:
        matched = ranking.match_bits(searcher, view, q)
    except Exception:
        q = plain_words(searcher.schema, req.q[:MAX_QUERY])
        notes.append("Your search was read as plain words.")
        matched = ranking.match_bits(searcher, view, q)

    blocked = 0
    if not req.include_unavailable:
        for key in fatigue.REFUSED_STATUSES:
            blocked |= view.values["fatigue"].get(key, 0)
        # Paused or in a blackout right now (the facet holds the status as of the last write): the rules.
        away = fatigue.unavailable_on(session)
        blocked |= bits_from_positions(view.docnums_for_uids(set(away)), view.size)
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
    labels = {**_labels(session), "freshness": freshness_labels(stale)}
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
        docnums = ranking.top_docs(searcher, view, q, final, total, want, notes)[(page - 1) * PER_PAGE : want]
    else:
        order = "engaged" if sort == "engaged" else "confirmed"
        docnums = view.ordered(final, order, want)[(page - 1) * PER_PAGE : want]
    uids = [view.uid_of(d) for d in docnums]
    return Results(total, [], facets, page, pages, notes), uids, q


def fatigue_uids(keys: tuple[str, ...], today: date, most: int | None = None) -> dict[str, set[int] | None]:
    """The advocates whose document holds each fatigue status of ``keys`` (fatigue.statuses as of the
    document's last write): {status: user ids}, from the facet's bitsets (no per-document read); None
    for a status held by more than ``most`` (not read out: the caller names the others instead)."""
    st = searcher_for(ADVOCATES)
    with st.lock:
        view = st.facets.view(st.searcher, today, stale_days())
        out: dict[str, set[int] | None] = {}
        for key in keys:
            bits = view.values["fatigue"].get(key, 0) & view.alive
            if most is not None and bits.bit_count() > most:
                out[key] = None
                continue
            uids: set[int] = set()
            for base, seg in view.parts:
                local = (bits >> base) & ((1 << seg.size) - 1)
                if local:
                    uids.update(seg.uids[p] for p in positions_of(local))
            out[key] = uids
        return out


def _union(values: dict[str, int], chosen: list[str]) -> int:
    bits = 0
    for v in chosen:
        bits |= values.get(v, 0)
    return bits


def _content_terms(q) -> set[str]:
    if q is None or isinstance(q, Every):
        return set()
    try:
        return {
            text.decode() if isinstance(text, bytes) else text
            for fieldname, text in q.iter_all_terms()
            if fieldname == "content"
        }
    except Exception:
        return set()


def snippet(text: str, terms: set[str], schema) -> Markup | str:
    if not text:
        return ""
    if terms:
        try:
            frag = highlight.highlight(
                text,
                terms,
                schema["content"].analyzer,
                highlight.ContextFragmenter(maxchars=220, surround=60),
                highlight.HtmlFormatter(tagname="mark", between=" … "),
                top=2,
            )
            if frag:
                return Markup(frag)  # whoosh's HtmlFormatter escapes the text around the marks
        except Exception:
            pass
    return text[:220] + ("…" if len(text) > 220 else "")


def _hits(session, uids: list[int], terms: set[str], schema, today: date) -> list[Hit]:
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


def search_opportunity_ids(
    text: str, type_id: int | None, among: list[int] | None = None
) -> tuple[list[int] | None, list[str]]:
    """Opportunity ids matching the text (None: no text given), best first.

    ``among``: only these ids (the ones the advocate is eligible for), filtered inside Whoosh, so a
    match is never lost behind higher-ranked opportunities the advocate cannot take."""
    st = searcher_for(OPPORTUNITIES)
    with st.lock:  # see search_advocates
        q, notes = parse(st.searcher.schema, text, st.searcher.reader())
        if q is None:
            return None, notes
        parts = [Term("type", str(type_id))] if type_id else []
        if among is not None:
            if not among:
                return [], notes
            parts.append(Or([Term("oid", str(i)) for i in sorted(set(among))]))
        filt = None if not parts else parts[0] if len(parts) == 1 else And(parts)
        limit = len(set(among)) if among is not None else None
        results = st.searcher.search(q, limit=limit, filter=filt)
        return [int(hit["oid"]) for hit in results], notes


# --- matching advocates to criteria (reference requests) --------------------------------------------------------


NEED_WORDS = 20  # words of a request's free text that order the matches


@dataclass(frozen=True)
class Criterion:
    """One thing a reference request asks for: a facet value (``facet``, ``value``: as the documents hold
    it, e.g. ("industry", "3")), or, without a facet, a ``phrase`` in the content (a topic tag's name: the
    document's tags, or its story; the database fallback reads the tags only)."""

    key: str
    facet: str = ""
    value: str = ""
    phrase: str = ""


@dataclass
class CriteriaRanking:
    ranked: list[tuple[int, frozenset[str]]]  # (advocate id, keys of the criteria they match), best fit first
    level_counts: list[int]  # [k]: advocates matching every criterion but the first k of the relaxation order
    notes: list[str] = field(default_factory=list)  # e.g. the database was searched instead of the index


def relax_level(order: list[str], keys: frozenset[str]) -> int:
    """How many criteria of ``order`` (least important first) must be dropped before an advocate matching
    ``keys`` matches all that are left."""
    missing = [i for i, key in enumerate(order) if key not in keys]
    return missing[-1] + 1 if missing else 0


def _criterion_bits(searcher, view: FacetView, c: Criterion) -> int:
    if c.facet:
        return view.values[c.facet].get(c.value, 0) & view.alive
    words = [t.text for t in searcher.schema["content"].analyzer(c.phrase)]
    if not words:
        return 0
    q = Term("content", words[0]) if len(words) == 1 else Phrase("content", words)
    return ranking.match_bits(searcher, view, q) & view.alive


def _count_groups(scope: int, sets: list[int]) -> list[int]:
    """The documents of ``scope`` grouped by how many of ``sets`` hold them, most first (one bitset per
    count, empty ones left out): a bit-sliced counter, so no document is visited one by one."""
    planes: list[int] = []  # planes[i]: bit i of each document's count
    for s in sets:
        carry = s & scope
        for i in range(len(planes)):
            if not carry:
                break
            planes[i], carry = planes[i] ^ carry, planes[i] & carry
        if carry:
            planes.append(carry)
    groups = []
    for n in range(len(sets), -1, -1):
        if n >> len(planes):
            continue
        bits = scope
        for i, plane in enumerate(planes):
            bits &= plane if n >> i & 1 else ~plane
        if bits:
            groups.append(bits)
    return groups


def rank_by_criteria(
    criteria: list[Criterion], relax_order: list[str], need: str, leave_out: set[int], limit: int, today: date
) -> CriteriaRanking:
    """The advocates who match the criteria best, at most ``limit``, over the index's facet bitsets.

    Those matching every criterion come first; then those matching all but the first criterion of
    ``relax_order`` (keys of ``criteria``, least important first), then all but the first two, and so on
    (the last: matching at least one criterion; everyone when there are no criteria). Within each of
    these, those matching more of the dropped criteria first, then by relevance to ``need`` (free text:
    any of its words), then least recently engaged. ``leave_out``: advocate ids never returned."""
    st = searcher_for(ADVOCATES)
    with st.lock:
        searcher = st.searcher
        view = st.facets.view(searcher, today, stale_days())
        by_key = {c.key: _criterion_bits(searcher, view, c) for c in criteria}
        pool = view.alive
        if leave_out:
            pool &= ~bits_from_positions(view.docnums_for_uids(set(leave_out)), view.size)
        union = 0
        for bits in by_key.values():
            union |= bits
        order = [k for k in relax_order if k in by_key] + [k for k in by_key if k not in relax_order]
        levels = []  # levels[k]: matching every criterion but order[:k]
        for k in range(len(order) + 1):
            bits = pool
            for key in order[k:]:
                bits &= by_key[key]
            levels.append(pool & union if order and k == len(order) else bits)
        words = [t.text for t in searcher.schema["content"].analyzer(need[:MAX_QUERY])] if need else []
        q = Or([Term("content", w) for w in list(dict.fromkeys(words))[:NEED_WORDS]]) if words else None
        q_bits = ranking.match_bits(searcher, view, q) if q is not None else 0
        docnums: list[int] = []
        before = 0
        for k, bits in enumerate(levels):
            layer = bits & ~before
            before |= bits
            for group in _count_groups(layer, [by_key[key] for key in order[: max(k - 1, 0)]]):
                for relevant, part in ((True, group & q_bits), (False, group & ~q_bits)):
                    want = limit - len(docnums)
                    if want <= 0 or not part:
                        continue
                    if relevant:
                        docnums += ranking.top_docs(searcher, view, q, part, part.bit_count(), want)[:want]
                    else:
                        docnums += view.ordered(part, "engaged", want)
        ranked = [
            (view.uid_of(d), frozenset(key for key, bits in by_key.items() if bits >> d & 1)) for d in docnums[:limit]
        ]
        return CriteriaRanking(ranked, [bits.bit_count() for bits in levels])
