"""Search work is bounded: no query can make the index walk its vocabulary or score every document
one by one (ranges, short wildcards, huge expansions, unscorable query kinds). The bounds are
asserted as work (terms expanded, candidates scanned, which ranking path ran) and as the notes the
page shows, never as timings (audit gap 1; timings are in bench/)."""

from __future__ import annotations

from datetime import date

import pytest
from whoosh import query as wq
from whoosh.searching import Searcher

from portal.extensions import db
from search import querying, ranking
from search.indexing import writer_for
from tests.support import staff_search

N = 3000


@pytest.fixture
def many(app):
    """3,000 documents written straight to the index: every one holds its own ``zetaNNNN`` word and
    the common words; confirmed ``i % 400`` days ago. No database rows: counts come from the index."""
    today = date.today().toordinal()
    with writer_for("advocates") as w:
        for i in range(N):
            w.add_document(
                uid=str(100_000 + i),
                content=f"zeta{i:04d} common words about security team",
                name=f"Gen {i}",
                company="Gen Corp",
                title="Engineer",
                facets=f"~~~~~~available~{today - i % 400}~0",
                digest="-",
            )
    querying.forget_searchers()
    return today


def _parse(text: str):
    st = querying.searcher_for("advocates")
    return querying.parse(st.searcher.schema, text, st.searcher.reader())


def _search(text: str, **kw):
    """(results, the page's uids, the query) straight from the index."""
    db.session.rollback()
    st = querying.searcher_for("advocates")
    with st.lock:
        return querying._search_index(
            db.session, querying.AdvocateSearch(q=text, **kw), date.today(), st.searcher, st.facets
        )


def _kinds(q) -> set[type]:
    out, todo = set(), [q]
    while todo:
        node = todo.pop()
        out.add(type(node))
        todo.extend(node.children())
    return out


CAPPED = "A wildcard matched too many words, so only the most common of them were searched."


def test_a_wildcard_expands_to_at_most_the_cap_with_a_note(many):
    q, notes = _parse("zeta*")
    assert ranking.expanded_terms(q) == ranking.MAX_EXPANSIONS == 200
    assert notes == [CAPPED]
    assert wq.Prefix not in _kinds(q) and wq.ConstantScoreQuery in _kinds(q)
    results, _, _ = _search("zeta*")
    assert results.total == 200 and CAPPED in results.notes  # one document per kept word

    q, notes = _parse("zeta0* zeta1* zeta2*")  # the cap is for the whole query, not per wildcard
    assert ranking.expanded_terms(q) <= ranking.MAX_EXPANSIONS and CAPPED in notes

    q, notes = _parse("zeta000*")  # few enough: all of them, no note
    assert ranking.expanded_terms(q) == 10 and notes == []
    assert _search("zeta000*")[0].total == 10


def test_every_wildcard_gets_its_share_of_the_budget(many):
    """The first wildcard used to take the whole budget: the second expanded to nothing and the And
    holding both matched nobody, although each alone matched."""
    q, notes = _parse("zeta* zeta00*")  # zeta* alone would take all 200 terms
    assert ranking.expanded_terms(q) <= ranking.MAX_EXPANSIONS and CAPPED in notes
    results, _, _ = _search("zeta* zeta00*")
    assert results.total > 0  # documents zeta00NN that the first wildcard's share also holds
    results, _, _ = _search("zeta* common")
    assert results.total == 200
    results, _, _ = _search("security* zeta000*")  # a small second wildcard is expanded whole
    assert results.total == 10


def test_wildcards_beyond_the_limit_are_plain_words(many):
    text = " OR ".join(f"zeta{i:02d}*" for i in range(ranking.MAX_WILDCARDS + 3))
    q, notes = _parse(text)
    assert ranking.expanded_terms(q) <= ranking.MAX_EXPANSIONS + ranking.MAX_WILDCARDS
    assert (
        f"A search may hold at most {ranking.MAX_WILDCARDS} wildcards, so the others were read as plain words." in notes
    )
    assert _search(text)[0].total > 0


def test_candidates_looked_at_per_wildcard_are_bounded(many, monkeypatch):
    monkeypatch.setattr(ranking, "EXPANSION_SCAN", 500)
    seen = {"n": 0}
    original = wq.Prefix.expanded_terms

    def counting(self, reader, phrases=False):
        for term in original(self, reader, phrases):
            seen["n"] += 1
            yield term

    monkeypatch.setattr(wq.Prefix, "expanded_terms", counting)
    q, notes = _parse("zeta*")
    assert seen["n"] <= 501  # not all 3,000 terms of the vocabulary that start with "zeta"
    assert ranking.expanded_terms(q) == 200 and CAPPED in notes


RANGE_NOTE = "Ranges such as [a TO z] are not supported here, so the range was read as plain words."


@pytest.mark.parametrize(
    "text", ["[a TO z]", "content:[a TO z]", "[zeta0000 TO zeta2999]", "{a TO}", "security [a TO z]", "name:[a TO z]"]
)
def test_open_ranges_on_text_are_read_as_plain_words(many, text):
    q, notes = _parse(text)
    assert RANGE_NOTE in notes
    assert not _kinds(q) & {wq.TermRange, wq.NumericRange}
    assert ranking.expanded_terms(q) <= 2  # the end words at most, never the vocabulary between them
    results, _, _ = _search(text)
    assert RANGE_NOTE in results.notes
    if text.startswith("security"):
        assert results.total == N  # the rest of the query still counts


@pytest.mark.parametrize("text", ["a*", "a* b* c*", "*ing", "ze*", "?", "z?ta*", "company:g*"])
def test_wildcards_with_too_few_letters_are_plain_words(many, text):
    q, notes = _parse(text)
    assert any(n.startswith("A wildcard needs at least 3 letters before * or ?") for n in notes), notes
    assert not _kinds(q) & {wq.Prefix, wq.Wildcard}
    assert ranking.expanded_terms(q) <= 1
    assert _search(text)[0].total == 0  # "a", "ze", "g" are no words of these documents


def test_short_wildcard_note_on_the_page(many, staff_client):
    html = staff_search(staff_client, "a* b* c*")
    assert (
        '<p class="alert alert-info" role="status">A wildcard needs at least 3 letters before * or ?, '
        "so “a*”, “b*”, “c*” were read as plain words.</p>"
    ) in html
    assert "0 advocates available" in html


def test_a_broad_wildcard_ranks_by_confirmed_date_not_by_scoring_each_match(many, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("scored match by match")

    monkeypatch.setattr(ranking, "score_direct", refuse)
    monkeypatch.setattr(Searcher, "docs_for_query", refuse)
    results, uids, _ = _search("comm*")  # every document
    assert results.total == N and results.notes == []
    # most recently confirmed first (i % 400 == 0, then 1, then 2), then by document order
    expected = [100_000 + i for k in range(3) for i in range(k, N, 400)][:20]
    assert uids == expected


def test_andmaybe_require_and_not_are_matched_from_bitsets(many, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("matched through Whoosh's matcher, document by document")

    monkeypatch.setattr(ranking, "score_direct", refuse)
    monkeypatch.setattr(Searcher, "docs_for_query", refuse)
    results, uids, _ = _search("security ANDMAYBE zeta0007")
    assert results.total == N and uids[0] == 100_007  # the optional word lifts its document
    assert _search("security REQUIRE zeta0007")[0].total == 1
    assert _search("NOT zeta0007")[0].total == N - 1


def test_unscorable_queries_over_the_limit_are_ordered_cheaply_with_a_note(many, monkeypatch):
    st = querying.searcher_for("advocates")
    view = st.facets.view(st.searcher, date.today())
    q = wq.DisjunctionMax([wq.Term("content", "common"), wq.Term("content", "zeta0001")])
    final = ranking.match_bits(st.searcher, view, q)
    assert final.bit_count() == N
    calls = []
    original = ranking.score_direct
    monkeypatch.setattr(ranking, "score_direct", lambda *a, **k: calls.append(1) or original(*a, **k))

    notes: list[str] = []
    docs = ranking.top_docs(st.searcher, view, q, final, N, 20, notes)
    assert len(docs) == 20 and calls == [] and notes == [ranking.CHEAP_ORDER_NOTE]

    monkeypatch.setattr(ranking, "DIRECT_SCORE_LIMIT", N)  # under the limit: Whoosh's own scores
    notes = []
    docs = ranking.top_docs(st.searcher, view, q, final, N, 20, notes)
    assert len(docs) == 20 and calls == [1] and notes == []


def test_many_anded_words_score_the_few_matches_directly(many, monkeypatch):
    """Long lists, few matches: the best-first walk gives up once it has cost what scoring the
    matches directly costs, with the same answer."""
    st = querying.searcher_for("advocates")
    view = st.facets.view(st.searcher, date.today())
    q, _ = _parse("common words security team zeta0042")
    final = ranking.match_bits(st.searcher, view, q)
    assert final.bit_count() == 1
    calls = []
    original = ranking._score_matches
    monkeypatch.setattr(ranking, "_score_matches", lambda *a, **k: calls.append(1) or original(*a, **k))
    docs = ranking.top_docs(st.searcher, view, q, final, 1, 20, [])
    assert [view.uid_of(d) for d in docs] == [100_042] and calls == [1]


def test_phrases_match_what_whooshs_own_phrase_matcher_matches(app):
    """Phrases are checked from the words' positions directly (faster on a first query): the same
    documents as Whoosh's span matcher, stop-word gaps and repeated words included."""
    from whoosh.qparser import QueryParser

    texts = [
        "zero trust strategy",
        "trust zero",
        "zero x trust",
        "zero trust zero trust",
        "head of data",
        "head data",
        "data data data",
        "data x data",
        "the zero trust of data",
        "zero\ntrust",
    ]
    with writer_for("advocates") as w:
        for i in range(300):
            w.add_document(
                uid=str(i),
                content=texts[i % len(texts)] + f" filler{i % 7}",
                name="n",
                company="c",
                title="t",
                facets="~~~~~~available~0~0",
                digest="-",
            )
    querying.forget_searchers()
    st = querying.searcher_for("advocates")
    view = st.facets.view(st.searcher, date.today())
    for text in [
        '"zero trust"',
        '"trust zero"',
        '"head of data"',
        '"head data"',
        '"data data"',
        '"zero trust strategy"',
        '"zero trust filler3"',
        '"data x data"',
        '"zero trust"~2',
    ]:
        q = QueryParser("content", st.searcher.schema).parse(text)
        expected = ranking.bits_from_positions(st.searcher.docs_for_query(q), view.size) & view.alive
        assert ranking.phrase_bits(st.searcher, view, q) == expected, text


def test_date_order_of_a_few_matches_is_the_order_of_the_full_walk(many, monkeypatch):
    from search import facets

    st = querying.searcher_for("advocates")
    view = st.facets.view(st.searcher, date.today())
    for text in ("zeta000*", "zeta0042", "comm*"):
        q, _ = _parse(text)
        bits = ranking.match_bits(st.searcher, view, q)
        for order in ("confirmed", "engaged"):
            direct = view.ordered(bits, order, 20)
            monkeypatch.setattr(facets, "SORT_DIRECTLY", -1)
            walked = view.ordered(bits, order, 20)
            monkeypatch.setattr(facets, "SORT_DIRECTLY", 5000)
            assert direct == walked and len(direct) == min(20, bits.bit_count()), (text, order)
    assert view.ordered(0, "confirmed", 20) == []


@pytest.mark.parametrize("text", ["zeta0001 OR NOT zeta0002", "zeta0001 OR zeta29*", "zeta0001 OR zeta0002 OR zeta1*"])
def test_matches_that_add_no_score_still_fill_the_page(many, text):
    """An OR whose other branch scores nothing (NOT, a constant-score wildcard): the scored lists end
    after a few documents; the page must still show as many advocates as the count promises."""
    results, uids, _ = _search(text)
    assert results.total > querying.PER_PAGE
    assert len(uids) == querying.PER_PAGE and len(set(uids)) == querying.PER_PAGE
    assert str(uids[0]) == "100001"  # the one that holds the scoring word comes first
