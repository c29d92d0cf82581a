"""Matching and ranking fast enough for 50,000 advocates.

Matching: a parsed query is evaluated over posting bitsets (Term/And/Or/Not/Every), cached per
segment, so "which documents match" costs big-int ANDs instead of a Python walk over every match.
Phrases are checked with Whoosh's matcher only on the documents that hold all their words; other
query kinds (wildcards, ranges, fuzzy terms) ask Whoosh for their documents.

Ranking is BM25 (Whoosh's default parameters, its idf and average lengths) computed from cached
per-term lists sorted by score, with the threshold algorithm: walk every term's list best-first,
score each new document fully, and stop as soon as no unseen document can beat the current top N.
Query kinds it cannot decompose into terms are scored by Whoosh's own matcher, document by
document, over the (filtered) matches only.
"""
from __future__ import annotations

import heapq
from bisect import bisect_right

from whoosh import query as wq

from search.facets import FacetView, bits_from_positions, positions_of


def match_bits(searcher, view: FacetView, q) -> int:
    if q is None or isinstance(q, wq.Every):
        return view.alive
    if isinstance(q, wq.Term):
        return view.term_bits(q.fieldname, q.text)
    if isinstance(q, wq.And):
        bits = view.alive
        for sub in q.subqueries:
            bits &= match_bits(searcher, view, sub)
            if not bits:
                return 0
        return bits
    if isinstance(q, wq.Or):
        bits = 0
        for sub in q.subqueries:
            bits |= match_bits(searcher, view, sub)
        return bits
    if isinstance(q, wq.AndNot):
        return match_bits(searcher, view, q.a) & ~match_bits(searcher, view, q.b)
    if isinstance(q, wq.Not):
        return view.alive & ~match_bits(searcher, view, q.query)
    if q is wq.NullQuery or isinstance(q, type(wq.NullQuery)):
        return 0
    if isinstance(q, wq.Phrase):
        return phrase_bits(searcher, view, q)
    return bits_from_positions(searcher.docs_for_query(q), view.size) & view.alive


def phrase_bits(searcher, view: FacetView, q) -> int:
    """Documents holding the phrase: per segment, positions are checked only on documents holding
    every word, and the answer is cached with the segment (segments never change)."""
    bits = 0
    subs = list(searcher.leaf_searchers())
    for (leaf, base, seg), (sub, _) in zip(view.leaves, subs):
        key = ("phrase", q.fieldname, tuple(q.words), q.slop)
        local = seg.terms.get(key)
        if local is None:
            candidates = (1 << seg.size) - 1
            for w in q.words:
                candidates &= seg.term_bits(leaf, q.fieldname, w)
                if not candidates:
                    break
            found = []
            if candidates:
                m = q.matcher(sub, sub.boolean_context())
                for d in positions_of(candidates):
                    if not m.is_active():
                        break
                    if m.id() < d:
                        m.skip_to(d)
                        if not m.is_active():
                            break
                    if m.id() == d:
                        found.append(d)
            local = bits_from_positions(found, seg.size)
            seg.terms[key] = local
        if local:
            bits |= local << base
    return bits & view.alive


def _per_leaf(searcher, bits: int):
    docs = positions_of(bits)
    leaves = list(searcher.leaf_searchers())
    for i, (sub, offset) in enumerate(leaves):
        end = leaves[i + 1][1] if i + 1 < len(leaves) else float("inf")
        local = [d - offset for d in docs if offset <= d < end]
        if local:
            yield local, sub, offset


def _walk(searcher, q, bits: int, context_of):
    """(global doc, matcher) for each document of ``bits`` that the query's matcher lands on."""
    for local_docs, sub, offset in _per_leaf(searcher, bits):
        m = q.matcher(sub, context_of(sub))
        for d in local_docs:
            if not m.is_active():
                break
            if m.id() < d:
                m.skip_to(d)
                if not m.is_active():
                    break
            if m.id() == d:
                yield d + offset, m


def score_direct(searcher, q, final: int, limit: int) -> list[int]:
    """Top ``limit`` of ``final`` by Whoosh's own score, scoring only those documents."""
    scored = [(m.score(), -d) for d, m in _walk(searcher, q, final, lambda s: s.context(weighting=searcher.weighting))]
    return [-nd for _, nd in heapq.nlargest(limit, scored)]


def positive_terms(q) -> list[tuple[str, object]] | None:
    """The terms that add to a document's score, or None if the query has other kinds of parts."""
    if isinstance(q, wq.Term):
        return [(q.fieldname, q.text)]
    if isinstance(q, wq.Phrase):
        return [(q.fieldname, w) for w in q.words]
    if isinstance(q, (wq.And, wq.Or)):
        out = []
        for sub in q.subqueries:
            if isinstance(sub, wq.Not):
                continue
            got = positive_terms(sub)
            if got is None:
                return None
            out += got
        return out
    if isinstance(q, wq.AndNot):
        return positive_terms(q.a)
    return None


def _stream(base: int, idf: float, st):
    return ((-idf * n, base + d) for d, n in zip(st.docs, st.norms))


def top_docs(searcher, view: FacetView, q, final: int, total: int, want: int) -> list[int]:
    """The first ``want`` documents of ``final`` by relevance (BM25)."""
    terms = positive_terms(q)
    if not terms:
        return score_direct(searcher, q, final, want)
    raw = final.to_bytes((view.size >> 3) + 1, "little")
    bases = [base for _, base, _ in view.leaves]
    lists = []  # per term: (idf, per-segment stats, best-first stream of (-score, doc))
    for fieldname, text in dict.fromkeys(terms):
        idf = searcher.idf(fieldname, text)
        avgdl = searcher.avg_field_length(fieldname) or 1.0
        stats = [seg.term_stats(leaf, fieldname, text, avgdl) for leaf, base, seg in view.leaves]
        merged = heapq.merge(*(_stream(base, idf, st) for (_, base, _), st in zip(view.leaves, stats)))
        lists.append((idf, stats, merged))
    top: list[tuple[float, int]] = []  # min-heap of (score, -doc)
    seen: set[int] = set()
    frontier = [idf * max((st.norms[0] for st in stats if st.norms), default=0.0) for idf, stats, _ in lists]
    while True:
        moved = False
        for i, (_, _, merged) in enumerate(lists):
            item = next(merged, None)
            if item is None:
                frontier[i] = 0.0
                continue
            moved = True
            neg, d = item
            frontier[i] = -neg
            if d in seen or not raw[d >> 3] >> (d & 7) & 1:
                continue
            seen.add(d)
            seg_i = bisect_right(bases, d) - 1
            local = d - bases[seg_i]
            score = sum(idf * stats[seg_i].norm_of.get(local, 0.0) for idf, stats, _ in lists)
            if len(top) < want:
                heapq.heappush(top, (score, -d))
            elif (score, -d) > top[0]:
                heapq.heapreplace(top, (score, -d))
        if not moved or (len(top) >= want and top[0][0] >= sum(frontier)):
            break
    return [-nd for _, nd in sorted(top, reverse=True)]
