"""Facet counts and filters as bitsets (Python ints), built per index segment and cached.

Whoosh's own grouping visits every match in Python, which made facet counts the slowest part of a
search. Here each facet value owns a bitset of the
documents that have it; a search turns its matches into one bitset, and a count is
``(matches & value_bits).bit_count()``: a C-level AND and popcount per value. Bitsets are built
once per segment (segments never change, only their deletions do), so a refresh after a one-document
update builds one tiny segment and re-combines the rest with shifts.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_right
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import date

from whoosh.reading import SegmentReader

from search import whoosh_internals
from search.schema import PACKED

FACETS = {  # facet name -> its position in the packed ``facets`` column (multi-valued: joined with '|')
    "industry": 0,
    "region": 1,
    "country": 2,
    "size": 3,
    "product": 4,
    "activity": 5,
    "fatigue": 6,
}
MULTI = {"product", "activity"}
TERM_CACHE = 4096  # posting bitsets kept per segment (one bit per document of the segment each)
SORT_DIRECTLY = 5000  # matches up to which a date sort sorts the matches instead of walking the sorted keys
STATS_CACHE = 256  # per-term score lists kept per segment (larger: one entry per posting)
RAW_CACHE = 4  # postings read for a bitset, kept until the same query asks for their score list
K1, B = 1.2, 0.75  # BM25 parameters (Whoosh's BM25F defaults)


@dataclass
class TermStats:
    """A term's BM25 length-normalised frequency per document, best first (times idf = its score).

    Compact arrays, not lists and dicts: a common term's stats hold an entry per document, and Python
    objects take several times the memory (``norm_of`` is dense: 0.0 for documents without the term)."""

    docs: array
    norms: array
    norm_of: array


STALE_DAYS = 180  # PROFILE_STALE_DAYS's default; "aging" starts at half of it


def freshness_labels(stale: int = STALE_DAYS) -> dict[str, str]:
    aging = max(1, stale // 2)
    return {
        "fresh": f"Confirmed in the last {aging} days",
        "aging": f"{aging}–{stale} days",
        "stale": f"{stale} days or more",
        "never": "Never confirmed",
    }


def freshness_bucket(confirmed_day: int, today: int, stale: int = STALE_DAYS) -> str:
    """fresh / aging / stale / never, by days since the advocate confirmed their profile: stale from
    PROFILE_STALE_DAYS on (as the profile pages and reminders count it), aging from half of it."""
    if not confirmed_day:
        return "never"
    age = today - confirmed_day
    if age < max(1, stale // 2):
        return "fresh"
    if age < stale:
        return "aging"
    return "stale"


def bits_from_positions(positions, size: int) -> int:
    buf = bytearray((size >> 3) + 1)
    for p in positions:
        buf[p >> 3] |= 1 << (p & 7)
    return int.from_bytes(buf, "little")


def positions_of(bits: int) -> list[int]:
    out = []
    raw = bits.to_bytes((bits.bit_length() + 7) >> 3 or 1, "little")
    for i, byte in enumerate(raw):
        if byte:
            base = i << 3
            for j in range(8):
                if byte >> j & 1:
                    out.append(base + j)
    return out


@dataclass
class SegmentFacets:
    """What one segment contributes; positions are local to the segment."""

    size: int
    values: dict[str, dict[str, int]]  # facet -> value -> bits
    uids: list[int]
    uid_pos: dict[int, int]
    confirmed: list[int]
    engaged: list[int]
    freshness: dict[str, int] = field(default_factory=dict)
    freshness_day: tuple[int, int] = (-1, -1)  # (day, stale days) the buckets were built for
    by_confirmed: list[tuple[int, int]] = field(default_factory=list)  # (-confirmed_day, local doc)
    by_engaged: list[tuple[int, int]] = field(default_factory=list)  # (engaged_day, local doc)
    terms: OrderedDict = field(default_factory=OrderedDict)  # (field, term) -> bits, least recently used first
    stats: OrderedDict = field(default_factory=OrderedDict)  # (field, term, avgdl) -> TermStats
    lengths: dict = field(default_factory=dict)  # field -> per-document length
    raw: OrderedDict = field(default_factory=OrderedDict)  # (field, term) -> postings just read, for term_stats

    def field_lengths(self, leaf, fieldname: str) -> list[int]:
        """Every document's length in the field (an empty segment, an empty index's reader: none)."""
        if fieldname not in self.lengths:
            self.lengths[fieldname] = whoosh_internals.field_lengths(leaf, fieldname, self.size) if self.size else []
        return self.lengths[fieldname]

    def term_stats(self, leaf, fieldname: str, text, avgdl: float) -> TermStats:
        key = (fieldname, text, round(avgdl, 1))
        st = self.stats.get(key)
        if st is not None:
            self.stats.move_to_end(key)
            return st
        raw = self.raw.pop((fieldname, text), None)
        if raw is not None:
            ids, tfs = raw
        elif (fieldname, text) in leaf:
            ids, tfs = whoosh_internals.read_postings(leaf, fieldname, text)
        else:
            ids, tfs = [], []
        lengths = self.field_lengths(leaf, fieldname)
        k1p1, base = K1 + 1, K1 * (1 - B)
        slope = K1 * B / (avgdl or 1)
        if lengths:
            norms = [tf * k1p1 / (tf + base + slope * lengths[d]) for d, tf in zip(ids, tfs)]
        else:
            norms = [tf * k1p1 / (tf + K1) for tf in tfs]
        order = sorted(range(len(ids)), key=norms.__getitem__, reverse=True)
        dense = array("d", bytes(8 * self.size))
        for d, n in zip(ids, norms):
            dense[d] = n
        st = TermStats(array("l", [ids[i] for i in order]), array("d", [norms[i] for i in order]), dense)
        self.stats[key] = st
        if len(self.stats) > STATS_CACHE:
            self.stats.popitem(last=False)
        return st

    def term_bits(self, leaf, fieldname: str, text) -> int:
        key = (fieldname, text)
        bits = self.terms.get(key)
        if bits is not None:
            self.terms.move_to_end(key)
            return bits
        if (fieldname, text) in leaf:
            # Read with the frequencies: a relevance search asks for the term's score list next, and
            # finds the postings here instead of reading them a second time.
            ids, tfs = whoosh_internals.read_postings(leaf, fieldname, text)
            self.raw[key] = (ids, tfs)
            if len(self.raw) > RAW_CACHE:
                self.raw.popitem(last=False)
            bits = bits_from_positions(ids, self.size)
        else:
            bits = 0
        self.terms[key] = bits
        if len(self.terms) > TERM_CACHE:
            self.terms.popitem(last=False)
        return bits


def _build_segment(reader) -> SegmentFacets:
    size = reader.doc_count_all()
    if not size:  # an index without segments (a new install): Whoosh's EmptyReader has no columns
        return SegmentFacets(0, {facet: {} for facet in FACETS}, [], {}, [], [])
    groups = {facet: defaultdict(list) for facet in FACETS}
    confirmed, engaged = [], []
    n_facets = len(FACETS)
    names = PACKED[:n_facets]
    for doc, raw in enumerate(whoosh_internals.column_values(reader, "facets")):
        parts = raw.split("~") if raw else [""] * len(PACKED)
        for facet, value in zip(names, parts):
            if not value:
                continue
            if facet in MULTI:
                for v in value.split("|"):
                    groups[facet][v].append(doc)
            else:
                groups[facet][value].append(doc)
        confirmed.append(int(parts[n_facets] or 0) if len(parts) > n_facets else 0)
        engaged.append(int(parts[n_facets + 1] or 0) if len(parts) > n_facets + 1 else 0)
    values = {facet: {v: bits_from_positions(docs, size) for v, docs in vals.items()} for facet, vals in groups.items()}
    uids = [int(x) if x else -1 for x in whoosh_internals.column_values(reader, "uid")]
    seg = SegmentFacets(size, values, uids, {u: d for d, u in enumerate(uids)}, confirmed, engaged)
    seg.by_confirmed = sorted((-c, d) for d, c in enumerate(confirmed))
    seg.by_engaged = sorted((e, d) for d, e in enumerate(engaged))
    return seg


class FacetCache:
    """Per-process cache of segment facets, combined for one searcher."""

    def __init__(self):
        self.segments: dict[str, SegmentFacets] = {}

    def view(self, searcher, today: date, stale: int = STALE_DAYS) -> FacetView:
        reader = searcher.reader()
        leaves = list(reader.leaf_readers())
        today_n = today.toordinal()
        combined: dict[str, dict[str, int]] = {f: defaultdict(int) for f in FACETS}
        combined["freshness"] = defaultdict(int)
        alive = 0
        parts = []
        leaves_out = []
        seen = set()
        for leaf, base in leaves:
            # An empty index's reader (EmptyReader) has no segment: it has no documents either.
            key = leaf.segment().segment_id() if isinstance(leaf, SegmentReader) else f"anon-{id(leaf)}"
            seen.add(key)
            seg = self.segments.get(key)
            if seg is None:
                seg = self.segments[key] = _build_segment(leaf)
            if seg.freshness_day != (today_n, stale):
                groups = defaultdict(list)
                for doc, c in enumerate(seg.confirmed):
                    groups[freshness_bucket(c, today_n, stale)].append(doc)
                seg.freshness = {b: bits_from_positions(d, seg.size) for b, d in groups.items()}
                seg.freshness_day = (today_n, stale)
            seg_alive = (1 << seg.size) - 1
            if leaf.has_deletions():
                seg_alive &= ~bits_from_positions(leaf.deleted_docs_set, seg.size)
            alive |= seg_alive << base
            for facet, vals in seg.values.items():
                target = combined[facet]
                for v, bits in vals.items():
                    target[v] |= bits << base
            for b, bits in seg.freshness.items():
                combined["freshness"][b] |= bits << base
            parts.append((base, seg))
            leaves_out.append((leaf, base, seg))
        for key in list(self.segments):
            if key not in seen:
                del self.segments[key]  # merged away
        return FacetView(alive, {f: dict(v) for f, v in combined.items()}, parts, reader.doc_count_all(), leaves_out)


@dataclass
class FacetView:
    alive: int
    values: dict[str, dict[str, int]]
    parts: list[tuple[int, SegmentFacets]]
    size: int
    leaves: list = field(default_factory=list)  # (segment reader, docbase, SegmentFacets)

    def term_bits(self, fieldname: str, text) -> int:
        """Documents containing a term, from cached per-segment posting bitsets."""
        bits = 0
        for leaf, base, seg in self.leaves:
            b = seg.term_bits(leaf, fieldname, text)
            if b:
                bits |= b << base
        return bits & self.alive

    def docnums_for_uids(self, uids: set[int]) -> list[int]:
        out = []
        for base, seg in self.parts:
            for uid in uids:
                doc = seg.uid_pos.get(uid)
                if doc is not None and self.alive >> (base + doc) & 1:
                    out.append(base + doc)
        return out

    def uid_of(self, docnum: int) -> int:
        for base, seg in reversed(self.parts):
            if docnum >= base:
                return seg.uids[docnum - base]
        raise KeyError(docnum)

    def ordered(self, bits: int, order: str, limit: int) -> list[int]:
        """The first ``limit`` documents of ``bits`` in the given order (confirmed desc / engaged asc)."""
        count = bits.bit_count()
        limit = min(limit, count)
        if not limit:
            return []  # (walking every document's key to find none is a pass over the whole index)
        if count <= SORT_DIRECTLY:  # few matches: sort them, rather than walk everyone's keys to find them
            keyed = []
            parts = self.parts
            bases = [base for base, _ in parts]
            for d in positions_of(bits):
                i = bisect_right(bases, d) - 1
                base, seg = parts[i]
                local = d - base
                keyed.append((-seg.confirmed[local] if order == "confirmed" else seg.engaged[local], d))
            keyed.sort()  # (key, document): the order of the merge below
            return [d for _, d in keyed[:limit]]
        raw = bits.to_bytes((self.size >> 3) + 1, "little")

        def member(d):
            return raw[d >> 3] >> (d & 7) & 1

        def stream(base, keyed):  # a function, so each generator keeps its own base
            return ((k, base + d) for k, d in keyed)

        streams = [
            stream(base, seg.by_confirmed if order == "confirmed" else seg.by_engaged) for base, seg in self.parts
        ]
        out = []
        for _, d in heapq.merge(*streams):
            if member(d):
                out.append(d)
                if len(out) >= limit:
                    break
        return out
