"""Search queries: any text answers, facet counts are exact, availability, sorting, pages, snippets,
escaping, who may search, and the advocates' opportunity search."""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import urlencode

import pytest

from portal.extensions import db
from portal.forms import clean_text
from portal.forms.search import MAX_QUERY_LENGTH
from portal.models import (
    ActivityType,
    AdvocateProfile,
    Country,
    Industry,
    Opportunity,
    OpportunityStatus,
    Participation,
    ParticipationStatus,
    Product,
    SizeBand,
    User,
    utcnow,
)
from portal.services import profiles
from search.indexing import apply_pending
from tests.support import find, login, member, names, page_hits, staff_search

# --- a small known population --------------------------------------------------------------------------------


@pytest.fixture
def population(app, make_user):
    """Five available advocates and three unavailable ones, all at Acme Corp."""
    people = {
        "Alder": member(
            make_user,
            "Alder",
            industry="Healthcare",
            country="DE",
            size="50-249 employees",
            products=("Data Platform", "Security Suite"),
            acts=("speaking", "review"),
            story="Alder runs the clinical data platform.",
        ),
        "Birch": member(
            make_user,
            "Birch",
            industry="Healthcare",
            country="FR",
            size="50-249 employees",
            products=("Data Platform",),
            acts=("speaking",),
            per_month=1,
            story="Birch story.",
        ),
        "Cedar": member(
            make_user,
            "Cedar",
            industry="Insurance",
            country="JP",
            size="5,000+ employees",
            products=("Security Suite",),
            acts=("review",),
            confirmed_days_ago=120,
            story="Cedar.",
        ),
        "Dogwood": member(
            make_user,
            "Dogwood",
            industry="Insurance",
            country="US",
            size="5,000+ employees",
            acts=("webinar",),
            confirmed_days_ago=200,
            joined_days_ago=200,
            story="Dogwood.",
        ),
        "Elm": member(
            make_user,
            "Elm",
            industry="Healthcare",
            country="DE",
            size="1-49 employees",
            products=("Analytics Cloud",),
            acts=("speaking",),
            per_month=0,
            story="Elm at its limit.",
        ),
        "Fir": member(
            make_user,
            "Fir",
            industry="Banking and capital markets",
            country="GB",
            size="250-999 employees",
            products=("Data Platform",),
            acts=("speaking",),
            paused_days=5,
            story="Fir is paused.",
        ),
        "Ginkgo": member(
            make_user,
            "Ginkgo",
            industry="Healthcare",
            country="JP",
            size="50-249 employees",
            products=("Security Suite",),
            acts=("review",),
            blackout_today=True,
            story="Ginkgo away.",
        ),
        "Hazel": member(make_user, "Hazel", confirmed_days_ago=None),  # approved today, no profile yet
    }
    apply_pending(db.engine)
    return people


def counts(results, facet: str) -> dict[str, int]:
    return {v.label: v.count for v in results.facets[facet]}


def value_of(model, name: str) -> str:
    if model is Country:
        return db.session.query(Country).filter_by(name=name).one().code
    return str(db.session.query(model).filter_by(name=name).one().id)


def test_facet_counts_are_exact(population):
    r = find("acme")
    assert r.total == 5 and sorted(names(r)) == ["Alder", "Birch", "Cedar", "Dogwood", "Hazel"]
    assert counts(r, "industry") == {"Healthcare": 2, "Insurance": 2}
    assert counts(r, "region") == {"Europe": 2, "Asia Pacific": 1, "North America": 1}
    assert counts(r, "country") == {"Germany": 1, "France": 1, "Japan": 1, "United States": 1}
    assert counts(r, "size") == {"50-249 employees": 2, "5,000+ employees": 2}
    assert counts(r, "product") == {"Data Platform": 2, "Security Suite": 2}
    assert counts(r, "activity") == {"Speaking": 2, "Peer review": 2, "Webinar": 1}
    assert counts(r, "freshness") == {
        "Confirmed in the last 90 days": 2,
        "90–180 days": 1,
        "180 days or more": 1,
        "Never confirmed": 1,
    }
    assert counts(r, "fatigue") == {"Available": 3, "Near limit": 1, "Under-used": 1}


def test_facet_counts_with_unavailable_included(population):
    r = find("acme", include_unavailable=True)
    assert r.total == 8
    assert counts(r, "industry") == {"Healthcare": 4, "Insurance": 2, "Banking and capital markets": 1}
    assert counts(r, "region") == {"Europe": 4, "Asia Pacific": 2, "North America": 1}
    assert counts(r, "country") == {"Germany": 2, "Japan": 2, "France": 1, "United Kingdom": 1, "United States": 1}
    assert counts(r, "size") == {
        "50-249 employees": 3,
        "5,000+ employees": 2,
        "1-49 employees": 1,
        "250-999 employees": 1,
    }
    assert counts(r, "product") == {"Data Platform": 3, "Security Suite": 3, "Analytics Cloud": 1}
    assert counts(r, "activity") == {"Speaking": 4, "Peer review": 3, "Webinar": 1}
    assert counts(r, "freshness") == {
        "Confirmed in the last 90 days": 5,
        "90–180 days": 1,
        "180 days or more": 1,
        "Never confirmed": 1,
    }
    assert counts(r, "fatigue") == {
        "Available": 3,
        "Paused or in blackout": 2,
        "At limit": 1,
        "Near limit": 1,
        "Under-used": 1,
    }


def test_freshness_follows_the_stale_days_setting(app, population, staff_client):
    """The freshness facet, the fallback and the result badges count stale as the profile pages do."""
    from search import fallback, querying

    app.config["PROFILE_STALE_DAYS"] = 100
    expected = {"Confirmed in the last 50 days": 2, "100 days or more": 2, "Never confirmed": 1}
    assert counts(find("acme"), "freshness") == expected  # Cedar (120 days) is stale now
    req = querying.AdvocateSearch(q="acme", filters={}, include_unavailable=False)
    assert counts(fallback.search_advocates(db.session, req, utcnow().date()), "freshness") == expected
    assert find("acme", freshness="stale").total == 2
    html = staff_search(staff_client, "Cedar")
    assert re.search(r'<span class="status-pill stale">confirmed 120 days ago</span>', html)
    app.config["PROFILE_STALE_DAYS"] = 180
    assert 'status-pill fresh">confirmed 120 days ago' in staff_search(staff_client, "Cedar")


def test_facets_narrow_results_and_each_others_counts(population):
    health, insurance = value_of(Industry, "Healthcare"), value_of(Industry, "Insurance")
    security = value_of(Product, "Security Suite")

    r = find("acme", industry=health)
    assert sorted(names(r)) == ["Alder", "Birch"] and r.total == 2
    assert counts(r, "industry") == {"Healthcare": 2, "Insurance": 2}  # a facet's own values stay countable
    assert [v.label for v in r.facets["industry"] if v.selected] == ["Healthcare"]
    assert counts(r, "region") == {"Europe": 2}
    assert counts(r, "product") == {"Data Platform": 2, "Security Suite": 1}
    assert counts(r, "fatigue") == {"Available": 1, "Near limit": 1}

    r = find("acme", industry=health, product=security)
    assert names(r) == ["Alder"] and r.total == 1
    assert counts(r, "industry") == {"Healthcare": 1, "Insurance": 1}  # Security Suite users by industry
    assert counts(r, "product") == {"Data Platform": 2, "Security Suite": 1}  # Healthcare people by product
    assert counts(r, "country") == {"Germany": 1}

    assert find("acme", industry=[health, insurance]).total == 4  # values of one facet: either
    assert names(find("acme", freshness="aging")) == ["Cedar"]
    assert names(find("acme", fatigue="under_used")) == ["Dogwood"]
    assert names(find("acme", size=value_of(SizeBand, "5,000+ employees"), activity="webinar")) == ["Dogwood"]
    assert names(find("acme", country="JP")) == ["Cedar"]
    assert sorted(names(find("acme", country="JP", include_unavailable=True))) == ["Cedar", "Ginkgo"]
    assert find("alder", industry=insurance).total == 0  # text and facets combine
    assert find("acme", industry="no-such-value").total == 0

    r = find("acme", industry=health, include_unavailable=True)
    assert sorted(names(r)) == ["Alder", "Birch", "Elm", "Ginkgo"]
    assert counts(r, "fatigue") == {"Available": 1, "Near limit": 1, "At limit": 1, "Paused or in blackout": 1}


def test_facets_on_the_staff_page(population, staff_client):
    html = staff_search(staff_client, "acme")
    assert re.search(r'>Healthcare</a> <span class="count">2</span>', html)
    assert re.search(r'>Under-used</a> <span class="count">1</span>', html)
    health = value_of(Industry, "Healthcare")
    narrowed = staff_search(staff_client, "acme", industry=health)
    assert sorted(page_hits(narrowed)) == ["Alder", "Birch"]
    assert 'aria-current="true">✓ Healthcare</a>' in narrowed
    assert "2 advocates available" in narrowed


def test_unavailable_hidden_by_default_and_shown_when_asked(population, staff_client):
    default = page_hits(staff_search(staff_client, "acme"))
    assert sorted(default) == ["Alder", "Birch", "Cedar", "Dogwood", "Hazel"]  # not Elm, Fir, Ginkgo
    everyone = page_hits(staff_search(staff_client, "acme", include_unavailable="1"))
    assert sorted(everyone) == ["Alder", "Birch", "Cedar", "Dogwood", "Elm", "Fir", "Ginkgo", "Hazel"]
    for who, q in (("Elm", "limit"), ("Fir", "paused"), ("Ginkgo", "away")):
        assert page_hits(staff_search(staff_client, q)) == []
        assert page_hits(staff_search(staff_client, q, include_unavailable="1")) == [who]


def test_a_blackout_starting_today_hides_even_if_the_index_is_a_day_old(population):
    """The index holds yesterday's fatigue; today's blackout is read from the database at query time."""
    from portal.models import Blackout

    cedar = population["Cedar"]
    db.session.add(Blackout(user_id=cedar.id, starts_on=date.today(), ends_on=date.today()))
    db.session.query(Blackout).filter_by(user_id=cedar.id).one()
    db.session.commit()  # not applied to the index: as if it had been written yesterday for today
    assert "Cedar" not in names(find("acme"))
    assert "Cedar" in names(find("acme", include_unavailable=True))


def test_each_result_shows_freshness_and_fatigue(population, staff_client):
    html = staff_search(staff_client, "acme", include_unavailable="1")
    cards = dict(
        re.findall(
            r'<article class="card hit">\s*<h2><a href="/search/advocates/\d+">(.*?)</a></h2>'
            r"(.*?)</article>",
            html,
            re.S,
        )
    )
    assert len(cards) == 8
    for name, card in cards.items():
        assert re.search(r'class="status-pill fatigue-\w+">[^<]+<', card), name
        assert re.search(r"confirmed \d+ days ago|never confirmed", card), name
    expect = {
        "Alder": ("Available", "confirmed 0 days ago"),
        "Birch": ("Near limit", "confirmed 0 days ago"),
        "Cedar": ("Available", "confirmed 120 days ago"),
        "Dogwood": ("Under-used", "confirmed 200 days ago"),
        "Elm": ("At limit", "confirmed 0 days ago"),
        "Fir": ("Paused or in blackout", "confirmed 0 days ago"),
        "Ginkgo": ("Paused or in blackout", "confirmed 0 days ago"),
        "Hazel": ("Available", "never confirmed"),
    }
    for name, (fatigue_label, fresh) in expect.items():
        assert f">{fatigue_label}</span>" in cards[name], (name, cards[name])
        assert fresh in cards[name], (name, cards[name])


# --- sorting and pages ------------------------------------------------------------------------------------------------


def _engaged(user_id: int, days_ago: int) -> None:
    t = db.session.query(ActivityType).filter_by(key="speaking").one()
    o = Opportunity(
        activity_type=t,
        title=f"past talk {user_id}-{days_ago}",
        status=OpportunityStatus.CLOSED,
        seats_taken=0,
        opened_at=utcnow(),
    )
    db.session.add(o)
    db.session.flush()
    when = utcnow() - timedelta(days=days_ago)
    db.session.add(
        Participation(
            opportunity_id=o.id,
            user_id=user_id,
            status=ParticipationStatus.COMPLETED,
            requested_at=when,
            engaged_at=when,
        )
    )
    db.session.commit()


def test_sorting_by_least_recently_engaged_and_most_recently_confirmed(app, make_user, staff_client):
    s1 = member(make_user, "Sparrow", story="sortable", confirmed_days_ago=50)
    s2 = member(make_user, "Swift", story="sortable", confirmed_days_ago=5)
    s3 = member(make_user, "Stork", story="sortable", confirmed_days_ago=170)
    s4 = member(make_user, "Shrike", confirmed_days_ago=None)
    profiles.get_profile(db.session, db.session.get(User, s4.id)).story = "sortable"  # saved, never confirmed
    db.session.commit()
    _engaged(s1.id, 10)
    _engaged(s2.id, 100)
    _engaged(s4.id, 30)
    apply_pending(db.engine)
    assert db.session.get(AdvocateProfile, s4.id).confirmed_at is None

    assert names(find("sortable", sort="engaged")) == ["Stork", "Swift", "Shrike", "Sparrow"]
    assert names(find("sortable", sort="confirmed")) == ["Swift", "Sparrow", "Stork", "Shrike"]
    assert page_hits(staff_search(staff_client, "sortable", sort="engaged")) == ["Stork", "Swift", "Shrike", "Sparrow"]
    assert page_hits(staff_search(staff_client, "sortable", sort="confirmed")) == [
        "Swift",
        "Sparrow",
        "Stork",
        "Shrike",
    ]
    assert page_hits(staff_search(staff_client, "", sort="engaged")) == ["Stork", "Swift", "Shrike", "Sparrow"]
    assert sorted(page_hits(staff_search(staff_client, "sortable", sort="bogus"))) == [
        "Shrike",
        "Sparrow",
        "Stork",
        "Swift",
    ]
    assert s3


def test_relevance_puts_the_better_match_first(app, make_user):
    member(
        make_user,
        "Weak",
        story="We looked at kestrel once, among many other tools and many other ideas "
        "that were discussed at length over a long period of evaluation.",
    )
    member(make_user, "Strong", story="Kestrel kestrel kestrel.")
    apply_pending(db.engine)
    assert names(find("kestrel")) == ["Strong", "Weak"]


def test_pagination_gives_the_next_twenty(app, make_user, staff_client):
    start = utcnow()
    for i in range(45):
        u = make_user(email=f"p{i:02d}@example.com", name=f"Pager {i:02d}")
        db.session.add(
            AdvocateProfile(user_id=u.id, story="paginated story", confirmed_at=start - timedelta(days=i, hours=1))
        )
    db.session.commit()
    apply_pending(db.engine)
    everyone = [f"Pager {i:02d}" for i in range(45)]

    pages = [page_hits(staff_search(staff_client, "paginated", sort="confirmed", page=str(n))) for n in (1, 2, 3)]
    assert pages == [everyone[:20], everyone[20:40], everyone[40:]]
    p2 = staff_search(staff_client, "paginated", sort="confirmed", page="2")
    assert "Page 2 of 3" in p2 and "← Previous" in p2 and "Next →" in p2
    assert page_hits(staff_search(staff_client, "paginated", sort="confirmed", page="99")) == everyone[40:]
    assert page_hits(staff_search(staff_client, "paginated", sort="confirmed", page="abc")) == everyone[:20]
    assert find("paginated", sort="confirmed", page=2).page == 2

    by_relevance = [page_hits(staff_search(staff_client, "paginated", page=str(n))) for n in (1, 2, 3)]
    assert [len(p) for p in by_relevance] == [20, 20, 5]
    assert sorted(sum(by_relevance, [])) == everyone  # every advocate exactly once over the pages


# --- snippets and escaping -----------------------------------------------------------------------------------


def test_snippets_are_highlighted_and_user_content_is_escaped(app, make_user, staff_client):
    story = 'Our <script>alert("x")</script> rollout of zebrafish tooling & <img src=x onerror=alert(1)> went well.'
    member(make_user, "Mallory", story=story)
    u = db.session.query(User).filter_by(name="Mallory").one()
    u.name, u.company = "Mal <b>lory</b>", "<i>Evil</i> Corp"
    db.session.commit()
    apply_pending(db.engine)

    html = staff_search(staff_client, "zebrafish")
    assert '<mark class="match term0">zebrafish</mark>' in html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Mal &lt;b&gt;lory&lt;/b&gt;" in html and "&lt;i&gt;Evil&lt;/i&gt; Corp" in html

    marked = staff_search(staff_client, "script")  # the match is inside the markup itself
    assert '<mark class="match term0">script</mark>&gt;' in marked and "<script>" not in marked.split("<main")[-1]

    plain = staff_search(staff_client, "", include_unavailable="1")  # no words: the start of the story, escaped
    assert "&lt;script&gt;alert" in plain and "<script>alert" not in plain


def test_a_long_story_is_cut_around_the_match(app, make_user, staff_client):
    story = "filler words here. " * 60 + "The heron migration finished early. " + "more filler. " * 60
    member(make_user, "Longstory", story=story)
    apply_pending(db.engine)
    html = staff_search(staff_client, "heron")
    snippet = re.search(r'<p class="snippet">(.*?)</p>', html, re.S).group(1)
    assert '<mark class="match term0">heron</mark>' in snippet and len(snippet) < 600


# --- any query answers ---------------------------------------------------------------------------------------------

ODD_QUERIES = [
    '"',
    "(",
    ")",
    "a:",
    "*",
    "AND",
    "OR OR",
    "NOT",
    "x" * 10_000,
    "😀 שלום مرحبا",
    "company:acme",
    '"exact phrase"',
    "industry:healthcare",
    "title:",
    "[a TO",
    "~2",
    "\\",
    "%",
    "*ing",
    "name:(",
    "company:acme AND (",
    '"unclosed phrase',
    "a\x00b",
    "ü" * 600,
    "&lt;script&gt;",
    "<script>x</script>",
    "' OR 1=1 --",
    "{}[]^~",
    "field:value:other",
    "?",
    "a" * 501 + " zz",
]

TOO_LONG = "Your search is too long: use 200 characters at most."


@pytest.fixture
def query_people(app, make_user):
    people = {
        "Phrase": member(
            make_user,
            "Phrase Person",
            industry="Insurance",
            company="Globex",
            story="An exact phrase lives here, and acme is mentioned.",
        ),
        "Reversed": member(
            make_user, "Reversed Person", industry="Insurance", company="Globex", story="This phrase is not exact."
        ),
        "Acme": member(make_user, "Acme Person", industry="Healthcare", company="Acme Corp", story="Clinical work."),
        "Hebrew": member(
            make_user, "Hebrew Person", industry="Insurance", company="Globex", story="שלום עולם and مرحبا بالعالم"
        ),
    }
    apply_pending(db.engine)
    return people


def test_any_query_answers_with_a_page(query_people, staff_client):
    for q in ODD_QUERIES:
        find(q)  # the search itself copes with any of them, however long
        for extra in ({}, {"include_unavailable": "1", "sort": "engaged"}, {"page": "2", "industry": "x"}):
            resp = staff_client.get("/search/advocates", query_string={"q": q, **extra})
            if len(clean_text(q)) > MAX_QUERY_LENGTH:  # the page refuses it with a message (see below)
                assert resp.status_code == 422 and TOO_LONG in resp.get_data(as_text=True), (q[:40], extra)
                continue
            assert resp.status_code == 200, (q[:40], extra)
            html = resp.get_data(as_text=True)
            assert "simpler search of the database" not in html, q[:40]  # answered by the index
            assert re.search(r"\d+ advocates?( available)?</p>", html), q[:40]


@pytest.mark.parametrize("q", ["a:", "AND", "OR OR", "NOT", "[a TO", "~2", "a AND (b OR"])
def test_invalid_syntax_is_read_as_plain_words_with_a_quiet_note(query_people, staff_client, q):
    html = staff_search(staff_client, q)
    assert '<p class="alert alert-info" role="status">Your search was read as plain words.</p>' in html


@pytest.mark.parametrize("q", ["phrase", '"exact phrase"', "company:acme", "industry:healthcare", "*", ""])
def test_valid_syntax_gets_no_note(query_people, staff_client, q):
    assert 'role="status"' not in staff_search(staff_client, q)


def test_query_meanings(query_people, staff_client):
    assert names(find('"exact phrase"')) == ["Phrase Person"]  # the words in this order only
    assert sorted(names(find("exact phrase"))) == ["Phrase Person", "Reversed Person"]
    assert names(find("company:acme")) == ["Acme Person"]  # not the story that mentions acme
    assert sorted(names(find("acme"))) == ["Acme Person", "Phrase Person"]
    assert names(find("industry:healthcare")) == ["Acme Person"]
    assert sorted(names(find("industry:insurance"))) == ["Hebrew Person", "Phrase Person", "Reversed Person"]
    assert names(find("שלום")) == ["Hebrew Person"] and names(find("مرحبا")) == ["Hebrew Person"]
    assert names(find("exact NOT reversed")) == ["Phrase Person"]
    assert sorted(names(find("clinical OR עולם"))) == ["Acme Person", "Hebrew Person"]
    assert find("*").total == find("").total == 4
    assert find('"').total == 4 and find("(").total == 4  # no words at all: everything, as for an empty search
    # The page refuses queries over 200 characters (test_an_over_long_search_...); called directly, the
    # query is still bounded.
    assert "Only the first 500 characters of the search were used." in find("x" * 10_000).notes
    assert find("a:").total == 0  # "a" alone is a stop word: nothing to look for


# --- over-long queries are refused before gunicorn's request-line limit ---------------------------------------------


def _search_input(html: str, input_id: str = "q") -> str:
    found = re.search(rf'<input [^>]*id="{input_id}"[^>]*>', html)
    assert found, html
    return found.group(0)


@pytest.mark.parametrize("q", ["x" * 201, "security " * 30, "😀" * 201, "x" * 10_000])
def test_an_over_long_advocate_search_is_refused_with_a_message_not_run(population, staff_client, q):
    """Issue 11: a 10,000-character search built a request line gunicorn refuses with its own bare 400/414
    (no security headers, no friendly page); the box now stops at 200 characters and the app says so."""
    resp = staff_client.get("/search/advocates", query_string={"q": q, "include_unavailable": "1"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert f'<p class="alert alert-error" id="q-error" role="alert">{TOO_LONG}</p>' in html
    box = _search_input(html)
    assert 'aria-invalid="true"' in box and 'aria-describedby="q-error"' in box and 'maxlength="200"' in box
    assert page_hits(html) == [] and "advocates available" not in html and "No advocates match" not in html
    assert 'name="include_unavailable" value="1" checked' in html  # the rest of the search is kept


def test_a_search_of_200_characters_runs(population, staff_client):
    html = staff_search(staff_client, "acme " + "x" * 195)
    assert TOO_LONG not in html and 'maxlength="200"' in _search_input(html)
    assert "aria-invalid" not in _search_input(html)
    # control characters are dropped before counting, as in every form
    assert TOO_LONG not in staff_search(staff_client, "acme" + "\x01" * 300)


def test_the_longest_query_stays_far_below_gunicorns_request_line_limit():
    """gunicorn refuses a request line over 4,094 bytes (--limit-request-line) before the app sees it: the
    longest query the box accepts, in the widest characters, still fits with room for the filters."""
    line = f"GET /search/advocates?{urlencode({'q': '😀' * MAX_QUERY_LENGTH, 'sort': 'relevance'})} HTTP/1.1"
    assert len(line.encode()) < 4094 - 1500, len(line.encode())


def test_advocates_search_boxes_stop_at_200_characters(app, make_user):
    me = member(make_user, "Long Typer", industry="Healthcare", country="DE", acts=("speaking",), story="me")
    c = app.test_client()
    login(c, me.email)
    assert 'maxlength="200"' in _search_input(c.get("/opportunities").get_data(as_text=True), "feed-q")
    assert 'maxlength="200"' in _search_input(c.get("/search/opportunities?q=talk").get_data(as_text=True))
    resp = c.get("/search/opportunities", query_string={"q": "talk " * 100})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and TOO_LONG in html and 'aria-invalid="true"' in _search_input(html)
    assert "Nothing open for you matches." not in html


# --- who may search ---------------------------------------------------------------------------------------------------


def test_who_may_search_advocates(client, advocate_client, staff_client, admin_client):
    assert advocate_client.get("/search/advocates?q=x").status_code == 403
    anon = client.get("/search/advocates?q=x")
    assert anon.status_code == 302 and "/auth/login" in anon.headers["Location"]
    assert staff_client.get("/search/advocates?q=x").status_code == 200
    assert admin_client.get("/search/advocates?q=x").status_code == 200
    assert staff_client.get("/search/opportunities?q=x").status_code == 403
    assert admin_client.get("/search/opportunities?q=x").status_code == 403
    assert client.get("/search/opportunities?q=x").status_code == 302
    assert staff_client.get("/admin/search-index").status_code == 403
    assert advocate_client.get("/admin/search-index").status_code == 403
    assert client.get("/admin/search-index").status_code == 302


# --- advocates search opportunities -----------------------------------------------------------------------------------


def test_advocates_find_only_opportunities_they_are_eligible_for(app, make_user):
    me = member(make_user, "Seeker", industry="Healthcare", country="DE", acts=("speaking", "review"), story="me")
    types = {t.key: t for t in db.session.query(ActivityType)}
    insurance = db.session.query(Industry).filter_by(name="Insurance").one()

    def add(title, key, status=OpportunityStatus.OPEN, description="", **kw):
        kw.setdefault("seats_taken", 0)
        o = Opportunity(
            activity_type=types[key], title=title, description=description, status=status, opened_at=utcnow(), **kw
        )
        db.session.add(o)
        db.session.commit()
        return o.id

    summit = add("Quantum security summit talk", "speaking", description="Keynote on hospital security.")
    review = add("Security review on G2", "review")
    add("Security webinar", "webinar")  # not opted in
    targeted = add("Security panel for insurers", "speaking")
    db.session.get(Opportunity, targeted).industries = [insurance]  # targets another industry
    add("Security roundtable", "speaking", status=OpportunityStatus.CLOSED)
    add("Security draft", "speaking", status=OpportunityStatus.DRAFT)
    add("Security full house", "speaking", capacity=1, seats_taken=1)
    cooking = add("Cooking talk", "speaking", description="Pasta.")
    db.session.commit()
    apply_pending(db.engine)

    c = app.test_client()
    login(c, me.email)

    def titles(q="", type_id=None):
        resp = c.get("/search/opportunities", query_string={"q": q, **({"type": type_id} if type_id else {})})
        assert resp.status_code == 200
        return sorted(re.findall(r'<h2><a href="/opportunities/\d+">(.*?)</a></h2>', resp.get_data(as_text=True)))

    assert titles("security") == ["Quantum security summit talk", "Security review on G2"]
    assert titles("security", types["speaking"].id) == ["Quantum security summit talk"]
    assert titles("security", types["review"].id) == ["Security review on G2"]
    assert titles("security", types["webinar"].id) == []
    assert titles("hospital") == ["Quantum security summit talk"]  # the description is searched too
    assert titles("cooking") == ["Cooking talk"]
    assert titles("") == ["Cooking talk", "Quantum security summit talk", "Security review on G2"]
    assert titles("nothingmatchesthis") == []
    for odd in ("(", '"', "a:", "AND", "x" * 200, "😀"):
        assert c.get("/search/opportunities", query_string={"q": odd}).status_code == 200
    assert c.get("/search/opportunities?q=talk&type=abc").status_code == 200
    assert summit and review and cooking

    # The feed offers the search: its form goes to this page (keeping the chosen type).
    feed = c.get("/opportunities", query_string={"type": types["speaking"].id}).get_data(as_text=True)
    form = re.search(r'<form method="get" action="/search/opportunities"[^>]*>(.*?)</form>', feed, re.S)
    assert form and 'name="q"' in form.group(1)
    assert f'<input type="hidden" name="type" value="{types["speaking"].id}">' in form.group(1)
