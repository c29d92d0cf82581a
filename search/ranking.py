"""Matching and ranking fast enough for 50,000 advocates.

Matching: a parsed query is evaluated over posting bitsets (Term/And/Or/Not/Every), cached per
segment, so "which documents match" costs big-int ANDs instead of a Python walk over every match.
Phrases are checked with Whoosh's matcher only on the documents that hold all their words; other
query kinds (wildcards, ranges, fuzzy terms) ask Whoosh for their documents.

Ranking is BM25 (Whoosh's default parameters, its idf and average lengths) computed from cached
per-term lists sorted by score, with the threshold algorithm: walk every term's list best-first,
score each new document fully, and stop as soon as no unseen document can beat the current top N.
Query kinds it cannot decompose into terms are scored by Whoosh's own matcher, document by
document, over the (filtered) matches only, and only up to DIRECT_SCORE_LIMIT matches.

Bounded work (``bound``): a query is rewritten before it runs so that no query can make the index
walk its whole vocabulary or score every document one by one. Ranges (``[a TO z]``) on text are
read as plain words; a wildcard needs MIN_WILDCARD_PREFIX literal characters first (``a*`` is read as
the word ``a``); the wildcards of one query expand to at most MAX_EXPANSIONS terms in all (the most
frequent among the first EXPANSION_SCAN candidates), and match with a constant score. Each rewrite
leaves a note for the page.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right

from whoosh import query as wq

from search import whoosh_internals
from search.facets import FacetView, bits_from_positions, positions_of

MIN_WILDCARD_PREFIX = 3  # literal characters before the first * or ? of a wildcard
MAX_EXPANSIONS = 200  # terms all the wildcards of one query may expand to
MAX_WILDCARDS = 10  # wildcards one query may hold; further ones are read as plain words (each gets >= 20 terms)
EXPANSION_SCAN = 2000  # candidate terms looked at, at most, per wildcard
DIRECT_SCORE_LIMIT = 1000  # matches Whoosh's matcher may score one by one; more: cheap order, with a note
WILDCARD_CHARS = "*?"


class _Dropped(type(wq.NullQuery)):
    """A part of the query that was only stop words once read as plain words: removed from its parent
    (a NullQuery inside an And would make the whole And match nothing)."""


DROPPED = _Dropped()


def _plain(schema, fieldname: str, text: str):
    """The words of ``text`` as the field's analyzer makes them (stop words and short ones dropped)."""
    field = schema[fieldname] if fieldname in schema else schema["content"]
    words = [t.text for t in field.analyzer(text)] if getattr(field, "analyzer", None) else [text]
    words = list(dict.fromkeys(w for w in words if w))
    if not words:
        return DROPPED
    return wq.Term(fieldname, words[0]) if len(words) == 1 else wq.And([wq.Term(fieldname, w) for w in words])


def _prune(q):
    """Remove DROPPED parts; a compound left with no parts is DROPPED itself."""
    if isinstance(q, wq.CompoundQuery) and not isinstance(q, wq.BinaryQuery):
        subs = [s for s in (_prune(s) for s in q.subqueries) if s is not DROPPED]
        if not subs:
            return DROPPED
        return subs[0] if len(subs) == 1 else q.__class__(subs, boost=q.boost)
    if isinstance(q, wq.BinaryQuery):
        a, b = _prune(q.a), _prune(q.b)
        if a is DROPPED:
            return DROPPED if isinstance(q, (wq.AndNot, wq.Require, wq.AndMaybe)) or b is DROPPED else b
        if b is DROPPED:
            return a
        return q.__class__(a, b)
    if isinstance(q, wq.Not):
        child = _prune(q.query)
        return DROPPED if child is DROPPED else wq.Not(child)
    if isinstance(q, wq.WrappingQuery):
        child = _prune(q.child)
        return DROPPED if child is DROPPED else q.apply(lambda _old: child)
    return q


def _literal_prefix(text: str) -> str:
    for i, ch in enumerate(text):
        if ch in WILDCARD_CHARS:
            return text[:i]
    return text


def bound(q, reader, notes: list[str], budget: list[int] | None = None):
    """``q`` rewritten so that its cost is bounded (see the module's docstring); notes for the page."""
    if q is None:
        return None
    schema = reader.schema
    short: list[str] = []
    extra: list[str] = []
    # [terms left, wildcards still to expand]: each wildcard gets its share of what is left, so an
    # early wildcard matching thousands of words cannot leave a later one with none (an And holding
    # a wildcard that expands to nothing would match nothing).
    wanted = min(_count_expandable(q), MAX_WILDCARDS)
    budget = budget if budget is not None else [MAX_EXPANSIONS, max(1, wanted)]

    def visit(node):
        if isinstance(node, (wq.TermRange, wq.NumericRange)):
            _note(notes, "Ranges such as [a TO z] are not supported here, so the range was read as plain words.")
            words = " ".join(str(x) for x in (node.start, node.end) if x)
            return _plain(schema, node.fieldname, words)
        if isinstance(node, (wq.Prefix, wq.Wildcard)):
            text = node.text + ("*" if isinstance(node, wq.Prefix) else "")
            if len(_literal_prefix(text)) < MIN_WILDCARD_PREFIX:
                short.append(text)
                return _plain(schema, node.fieldname, text.replace("*", " ").replace("?", " "))
            if budget[1] <= 0:
                extra.append(text)
                return _plain(schema, node.fieldname, text.replace("*", " ").replace("?", " "))
            return _expand(node, reader, notes, budget)
        if isinstance(node, wq.MultiTerm):  # fuzzy terms, regexes: not offered by the parser; expand with bounds
            if budget[1] <= 0:
                return DROPPED
            return _expand(node, reader, notes, budget)
        return node.apply(visit)

    out = _prune(visit(q))
    if extra:
        _note(notes, f"A search may hold at most {MAX_WILDCARDS} wildcards, so the others were read as plain words.")
    if short:
        shown = ", ".join(f"“{t}”" for t in dict.fromkeys(short))
        _note(
            notes,
            f"A wildcard needs at least {MIN_WILDCARD_PREFIX} letters before * or ?, so {shown} "
            f"{'was' if len(set(short)) == 1 else 'were'} read as plain words.",
        )
    return wq.NullQuery if out is DROPPED else out


def _count_expandable(q) -> int:
    """How many wildcards (and other multi-term queries) ``q`` holds that ``bound`` would expand."""
    if isinstance(q, (wq.TermRange, wq.NumericRange)):
        return 0
    if isinstance(q, (wq.Prefix, wq.Wildcard)):
        text = q.text + ("*" if isinstance(q, wq.Prefix) else "")
        return int(len(_literal_prefix(text)) >= MIN_WILDCARD_PREFIX)
    if isinstance(q, wq.MultiTerm):
        return 1
    return sum(_count_expandable(c) for c in q.children())


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


def _expand(node, reader, notes: list[str], budget: list[int]):
    """The terms a wildcard stands for, at most ``budget[0]`` of them, as a constant-score Or."""
    fieldname = node.field()
    if fieldname not in reader.schema:
        return wq.NullQuery
    field = reader.schema[fieldname]
    candidates = []
    scanned_all = True
    for i, (_, btext) in enumerate(node.expanded_terms(reader)):
        if i >= EXPANSION_SCAN:
            scanned_all = False
            break
        candidates.append(btext)
    room = max(1, budget[0] // max(1, budget[1]))  # this wildcard's share of the terms left
    if len(candidates) > room or not scanned_all:
        if len(candidates) > room:
            candidates = sorted(candidates, key=lambda b: (-reader.doc_frequency(fieldname, b), b))[:room]
        _note(notes, "A wildcard matched too many words, so only the most common of them were searched.")
    budget[0] = max(0, budget[0] - len(candidates))
    budget[1] -= 1
    if not candidates:
        return wq.NullQuery
    terms = [wq.Term(fieldname, field.from_bytes(b)) for b in sorted(candidates)]
    return wq.ConstantScoreQuery(terms[0] if len(terms) == 1 else wq.Or(terms))


def expanded_terms(q) -> int:
    """How many terms a (bounded) query holds: what its matching costs."""
    if q is None:
        return 0
    try:
        return sum(1 for _ in q.iter_all_terms())
    except Exception:
        return 0


def match_bits(searcher, view: FacetView, q) -> int:
    if q is None or isinstance(q, wq.Every):
        return view.alive
    if isinstance(q, wq.ConstantScoreQuery):
        return match_bits(searcher, view, q.child)
    if isinstance(q, wq.AndMaybe):
        return match_bits(searcher, view, q.a)
    if isinstance(q, wq.Require):
        return match_bits(searcher, view, q.a) & match_bits(searcher, view, q.b)
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
    if isinstance(q, wq.MultiTerm):  # not bounded by the caller: bound it here
        return match_bits(searcher, view, bound(q, searcher.reader(), []))
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
            if candidates and q.slop == 1 and len(q.words) > 1:
                found = _adjacent(leaf, q.fieldname, q.words, positions_of(candidates))
            elif candidates:
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


def _adjacent(leaf, fieldname: str, words, docs: list[int]) -> list[int]:
    """The documents of ``docs`` (which hold every word) where the words occur at consecutive positions,
    in order: what Whoosh's phrase matcher (slop 1) answers, from each word's positions read directly
    (cheaper per candidate than its span machinery on a first query)."""
    wanted = set(docs)
    per_word = []
    for w in words:
        positions = whoosh_internals.term_positions(leaf, fieldname, w, wanted, docs)
        per_word.append(positions)
        wanted = set(positions)  # later words: only where the earlier ones are
    first, rest = per_word[0], per_word[1:]
    found = []
    for d in docs:
        starts = first.get(d)
        if not starts:
            continue
        following = [set(p.get(d, ())) for p in rest]
        for p0 in starts:
            if all(p0 + i in nxt for i, nxt in enumerate(following, 1)):
                found.append(d)
                break
    return found


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
        for d in _landed(m, local_docs):
            yield d + offset, m


def _landed(m, docs):
    """The documents of ``docs`` (ascending) that matcher ``m`` holds, skipping to each; ``m`` is
    positioned on each one as it is yielded."""
    for d in docs:
        if not m.is_active():
            return
        if m.id() < d:
            m.skip_to(d)
            if not m.is_active():
                return
        if m.id() == d:
            yield d


def score_direct(searcher, q, final: int, limit: int) -> list[int]:
    """Top ``limit`` of ``final`` by Whoosh's own score, scoring only those documents."""
    scored = [(m.score(), -d) for d, m in _walk(searcher, q, final, lambda s: s.context(weighting=searcher.weighting))]
    return [-nd for _, nd in heapq.nlargest(limit, scored)]


def positive_terms(q) -> list[tuple[str, object]] | None:
    """The terms that add to a document's score, or None if the query has other kinds of parts.
    Parts that only filter (wildcards, which score constantly; NOT; everything) add no term."""
    if isinstance(q, (wq.ConstantScoreQuery, wq.Not, wq.Every)):
        return []
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
    if isinstance(q, (wq.AndNot, wq.Require)):
        return positive_terms(q.a)
    if isinstance(q, wq.AndMaybe):
        a, b = positive_terms(q.a), positive_terms(q.b)
        return None if a is None or b is None else a + b
    return None


def _stream(base: int, idf: float, st):
    return ((-idf * n, base + d) for d, n in zip(st.docs, st.norms))


CHEAP_ORDER_NOTE = "So many advocates match that they are shown most recently confirmed first, not by relevance."


def top_docs(
    searcher, view: FacetView, q, final: int, total: int, want: int, notes: list[str] | None = None
) -> list[int]:
    """The first ``want`` documents of ``final`` by relevance (BM25)."""
    terms = positive_terms(q)
    if terms is None:
        if total > DIRECT_SCORE_LIMIT:  # scoring each match through Whoosh's matcher: bounded
            if notes is not None:
                _note(notes, CHEAP_ORDER_NOTE)
            return view.ordered(final, "confirmed", want)
        return score_direct(searcher, q, final, want)
    if not terms:  # nothing scores (wildcards only, NOT only): every match ranks the same
        return view.ordered(final, "confirmed", want)
    raw = final.to_bytes((view.size >> 3) + 1, "little")
    bases = [base for _, base, _ in view.leaves]
    lists = []  # per term: (idf, per-segment stats, best-first stream of (-score, doc))
    for fieldname, text in dict.fromkeys(terms):
        idf = searcher.idf(fieldname, text)
        avgdl = searcher.avg_field_length(fieldname) or 1.0
        stats = [seg.term_stats(leaf, fieldname, text, avgdl) for leaf, base, seg in view.leaves]
        merged = heapq.merge(*(_stream(base, idf, st) for (_, base, _), st in zip(view.leaves, stats)))
        lists.append((idf, stats, merged))
    # Walking the lists best-first usually stops after a few entries; with few matches for long lists
    # (many words ANDed, narrow facets) it may have to read them to the end. Once the walk has cost
    # what scoring every match directly would, score the matches directly instead (same result).
    budget = total * len(lists) + want
    steps = 0
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
            steps += 1
            neg, d = item
            frontier[i] = -neg
            if d in seen or not raw[d >> 3] >> (d & 7) & 1:
                continue
            seen.add(d)
            seg_i = bisect_right(bases, d) - 1
            local = d - bases[seg_i]
            score = sum(idf * stats[seg_i].norm_of[local] for idf, stats, _ in lists)
            if len(top) < want:
                heapq.heappush(top, (score, -d))
            elif (score, -d) > top[0]:
                heapq.heapreplace(top, (score, -d))
        if not moved or (len(top) >= want and top[0][0] >= sum(frontier)):
            break
        if steps > budget:
            return _score_matches(final, bases, lists, want)
    ranked = [-nd for _, nd in sorted(top, reverse=True)]
    if len(ranked) < want:
        # The lists ran out: the other matches hold none of the scoring terms (an OR with a wildcard
        # or a NOT branch). They score 0 and follow, most recently confirmed first, so that the page
        # shows as many advocates as the count says.
        have = set(ranked)
        for d in view.ordered(final, "confirmed", want + len(ranked)):
            if d not in have:
                ranked.append(d)
                if len(ranked) >= want:
                    break
    return ranked


def _score_matches(final: int, bases: list[int], lists, want: int) -> list[int]:
    scored = []
    for d in positions_of(final):
        seg_i = bisect_right(bases, d) - 1
        local = d - bases[seg_i]
        scored.append((sum(idf * stats[seg_i].norm_of[local] for idf, stats, _ in lists), -d))
    return [-nd for _, nd in heapq.nlargest(want, scored)]
