"""Gaps an audit of search found, each with the test that would have caught it: a stale rebuild marker,
request-path index writes that waited 30 s, optimize holding the writer lock, 'check' comparing ids only,
the warm-up, facets cut at 12 values, the database fallback's field prefixes and LIKE wildcards, and
advocate opportunity search dropping eligible matches behind 500 others."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import threading
import time
from contextlib import contextmanager

import pytest
from whoosh.writing import SegmentWriter

from portal.extensions import db
from portal.models import (
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    Country,
    Industry,
    Opportunity,
    OpportunityStatus,
    Product,
    SearchPending,
    utcnow,
)
from search import documents, indexing, querying, whoosh_internals
from search import rebuild as rb
from search.indexing import (
    apply_all_pending,
    apply_pending,
    current_dir,
    open_index,
    rebuild_lock_path,
    rebuild_running,
    rebuilding_marker,
    root,
    writer_for,
)
from tests.support import (
    advocate_profile,
    atype,
    find,
    login,
    member,
    names,
    page_hits,
    pending_rows,
    post_form,
    profile_form,
    set_story,
    staff_search,
)


def person(make_user, email, story="", industry=None, country="DE", products=(), acts=("speaking",), **profile):
    """An advocate with a confirmed profile written straight to the database, opted in to ``acts``, indexed."""
    u = make_user(email=email, name=email.split("@")[0].title())
    p = AdvocateProfile(user_id=u.id, story=story, country_code=country, confirmed_at=utcnow(), **profile)
    if industry:
        p.industry = db.session.query(Industry).filter_by(name=industry).one()
    p.products = [db.session.query(Product).filter_by(name=n).one() for n in products]
    db.session.add(p)
    for key in acts:
        t = db.session.query(ActivityType).filter_by(key=key).one()
        db.session.add(ActivityPreference(user_id=u.id, activity_type_id=t.id, opted_in=True))
    db.session.commit()
    apply_pending(db.engine)
    return u


FALLBACK = "simpler search of the database"


@contextmanager
def rebuild_lock_held_by_another_thread():
    """rebuild.lock held (flock) by another thread, as a running 'flask search reindex' holds it."""
    held, release = threading.Event(), threading.Event()
    path = rebuild_lock_path()

    def hold():
        with open(path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    assert held.wait(10)
    try:
        yield
    finally:
        release.set()
        t.join()


# --- gap 2: a rebuild marker counts only while the rebuild holds its lock ------------------------------------


def test_a_marker_left_by_a_killed_rebuild_is_removed_and_the_index_follows_again(
    app, make_user, admin_client, runner, caplog
):
    kept = advocate_profile(make_user, "stale@example.com", story="before the crash")
    rebuilding_marker().write_text("12345 left by a rebuild killed with SIGKILL")  # nobody holds the lock
    set_story(kept.id, "after the crash: lynxword")
    with caplog.at_level(logging.WARNING, logger="search.indexing"):
        apply_pending(db.engine)
    assert "stale search rebuild marker" in caplog.text
    assert not rebuilding_marker().exists()
    assert pending_rows() == [] and names(find("lynxword")) == ["Stale"]

    rebuilding_marker().write_text("another stale one")
    set_story(kept.id, "and again: civetword")
    result = runner.invoke(args=["search", "sync", "--no-refresh-fatigue"])
    assert result.exit_code == 0, result.output
    assert "Applied 1 pending change(s)." in result.output and pending_rows() == []
    assert names(find("civetword")) == ["Stale"]

    rebuilding_marker().write_text("a third one")
    body = admin_client.get("/admin/search-index").get_data(as_text=True)
    assert re.search(r"<dt>Rebuild running</dt><dd>no \(a marker left by an interrupted rebuild was cleared", body)
    assert not rebuilding_marker().exists()


def test_a_live_rebuild_keeps_rows_for_its_generation_without_starving_newer_ones(app, make_user, admin_client):
    people = [advocate_profile(make_user, f"live{i}@example.com", story=f"live story {i}") for i in range(3)]
    newcomer = advocate_profile(make_user, "newcomer@example.com", story="not yet")
    with rebuild_lock_held_by_another_thread():
        rebuilding_marker().write_text("a running rebuild")
        assert rebuild_running()
        db.session.add_all([SearchPending(doc_type="advocates", doc_id=people[i % 3].id) for i in range(600)])
        db.session.commit()
        assert apply_all_pending(db.engine) == 600  # applied to the live generation (two batches) ...
        assert len(pending_rows()) == 600  # ... and kept for the generation being built

        set_story(newcomer.id, "saved during the rebuild: quollword")
        assert apply_pending(db.engine) == 1  # not the 500 oldest kept rows again
        assert names(find("quollword")) == ["Newcomer"]
        assert len(pending_rows()) == 601 and rebuilding_marker().exists()  # a live marker stays
        body = admin_client.get("/admin/search-index").get_data(as_text=True)
        assert "<dt>Rebuild running</dt><dd>yes</dd>" in body
    # The rebuild ends: its marker goes, and the kept rows are applied (by it, or any writer) and removed.
    rebuilding_marker().unlink()
    assert apply_all_pending(db.engine) == 601
    assert pending_rows() == []


def test_a_second_rebuild_waits_for_a_probe_but_not_for_a_rebuild(app, make_user):
    advocate_profile(make_user, "probe@example.com", story="probe")
    with rebuild_lock_held_by_another_thread():
        with pytest.raises(RuntimeError, match="Another rebuild is running."):
            rb.rebuild(db.engine, procs=1)
    assert rb.rebuild(db.engine, procs=1)["advocates"] == 1


# --- gap 3: a request never waits long for the index lock; optimize does not hold it ---------------------------


def test_a_request_path_write_gives_up_quickly_and_sync_applies_it_later(
    app, advocate_client, advocate, runner, monkeypatch
):
    post_form(advocate_client, "/me/profile", profile_form(story="The first story."))
    app.config["SEARCH_REQUEST_WRITER_PATIENCE"] = 0.3
    patience = []
    original = indexing.writer_for

    @contextmanager
    def spy(kind, **kwargs):
        patience.append(kwargs.get("patience"))
        with original(kind, **kwargs) as w:
            yield w

    monkeypatch.setattr(indexing, "writer_for", spy)
    other = open_index("advocates").writer()  # another process's writer (e.g. an optimize) holds the lock
    try:
        started = time.monotonic()
        resp = post_form(advocate_client, "/me/profile", profile_form(story="Now about dugongword."))
        elapsed = time.monotonic() - started
    finally:
        other.cancel()
    assert resp.status_code == 302
    assert elapsed < 10  # the request gave up after its short patience, not after WRITER_PATIENCE (30 s)
    assert patience[-1] == 0.3
    rows = pending_rows()
    assert [(r.doc_type, r.doc_id) for r in rows] == [("advocates", advocate.id)] and "LockError" in rows[0].last_error
    assert find("dugongword").total == 0

    result = runner.invoke(args=["search", "sync", "--no-refresh-fatigue"])
    assert result.exit_code == 0, result.output
    assert patience[-1] is None  # the CLI keeps the long patience
    assert names(find("dugongword")) == ["Ada Advocate"] and pending_rows() == []


def test_the_request_patience_defaults_to_a_short_one(app, advocate_client, monkeypatch):
    patience = []
    original = indexing.writer_for

    @contextmanager
    def spy(kind, **kwargs):
        patience.append(kwargs.get("patience"))
        with original(kind, **kwargs) as w:
            yield w

    monkeypatch.setattr(indexing, "writer_for", spy)
    post_form(advocate_client, "/me/profile", profile_form(story="short patience"))
    assert patience and patience[-1] == indexing.REQUEST_WRITER_PATIENCE <= 2


def test_optimize_merges_beside_the_live_index_while_writes_go_on(
    app, make_user, advocate_client, advocate, runner, monkeypatch
):
    for i in range(6):  # several small segments (some folded together by background merges)
        advocate_profile(make_user, f"seg{i}@example.com", story=f"segment story {i}")
    post_form(advocate_client, "/me/profile", profile_form(story="before the merge"))
    indexing.wait_for_merges()
    first = os.readlink(current_dir())
    merging, resume = threading.Event(), threading.Event()
    original = SegmentWriter.add_reader
    errors = []

    def slow_add_reader(self, reader):
        if threading.current_thread() is optimizer:
            merging.set()
            assert resume.wait(30)
        return original(self, reader)

    def run():
        try:
            with app.app_context():
                rb.optimize(db.engine)
        except BaseException as exc:
            errors.append(exc)

    monkeypatch.setattr(SegmentWriter, "add_reader", slow_add_reader)
    optimizer = threading.Thread(target=run)
    optimizer.start()
    try:
        assert merging.wait(30)
        started = time.monotonic()
        resp = post_form(advocate_client, "/me/profile", profile_form(story="saved during the merge: tapirword"))
        assert resp.status_code == 302 and time.monotonic() - started < 10
        assert names(find("tapirword")) == ["Ada Advocate"]  # written to the live index at once
        assert len(pending_rows()) == 1  # and kept for the merged generation
    finally:
        resume.set()
        optimizer.join(60)
    assert errors == [] and not optimizer.is_alive()
    assert os.readlink(current_dir()) != first
    assert (
        len(whoosh_internals.segments(open_index("advocates"))) <= 2
    )  # the merged one (+ the change applied after the swap)
    assert names(find("tapirword")) == ["Ada Advocate"] and find("segment story").total == 6
    assert pending_rows() == [] and not rebuilding_marker().exists()
    check = runner.invoke(args=["search", "check"])
    assert check.exit_code == 0, check.output


def test_optimize_command(app, make_user, runner):
    for i in range(3):
        advocate_profile(make_user, f"opt{i}@example.com", story=f"optimize me {i}")
    result = runner.invoke(args=["search", "optimize"])
    assert result.exit_code == 0, result.output
    assert "Optimized: 3 advocates and 0 opportunities in one segment each; swapped in." in result.output
    assert len(whoosh_internals.segments(open_index("advocates"))) == 1 and find("optimize").total == 3


# --- gap 4: check compares content, not only ids --------------------------------------------------------------


def test_check_reports_documents_whose_content_or_facets_differ(app, make_user, runner):
    a = advocate_profile(make_user, "content@example.com", story="the current story")
    b = advocate_profile(make_user, "fatigue@example.com", story="another story")
    stale_docs, _ = documents.advocate_docs(db.session, [a.id])
    set_story(a.id, "a newer story")
    apply_pending(db.engine)
    clean = runner.invoke(args=["search", "check"])
    assert clean.exit_code == 0 and "The index matches the database." in clean.output, clean.output

    with writer_for("advocates") as w:  # a late writer put back an older version of a's document
        w.update_document(**stale_docs[0])
    bad = runner.invoke(args=["search", "check"])
    assert bad.exit_code == 1
    assert f"1 advocate document(s) hold other text than the database, e.g. [{a.id}]" in bad.output

    docs, _ = documents.advocate_docs(db.session, [b.id])
    doc = docs[0]
    parts = doc["facets"].split(documents.SEP)
    parts[6] = "at_limit"  # a wrong fatigue status, written consistently (its digest matches it)
    wrong = {**doc, "facets": documents.SEP.join(parts)}
    wrong["digest"] = documents.digest(wrong)
    with writer_for("advocates") as w:
        w.update_document(**wrong)
    db.session.rollback()
    bad = runner.invoke(args=["search", "check"])
    assert bad.exit_code == 1
    assert (
        f"1 advocate document(s) hold other facet values (industry, ..., fatigue, dates) than the database, "
        f"e.g. [{b.id}]" in bad.output
    )

    assert runner.invoke(args=["search", "reindex"]).exit_code == 0
    again = runner.invoke(args=["search", "check"])
    assert again.exit_code == 0, again.output


def test_check_reports_opportunities_with_other_content_and_documents_without_a_digest(app, make_user, runner):
    a = advocate_profile(make_user, "old@example.com", story="old index")
    o = Opportunity(
        activity_type=atype("speaking"),
        title="Check talk",
        status=OpportunityStatus.OPEN,
        seats_taken=0,
        opened_at=utcnow(),
    )
    db.session.add(o)
    db.session.commit()
    apply_pending(db.engine)
    assert runner.invoke(args=["search", "check"]).exit_code == 0
    docs, _ = documents.opportunity_docs(db.session, [o.id])
    with writer_for("opportunities") as w:
        w.update_document(
            **{
                **docs[0],
                "title": "Renamed behind the app's back",
                "digest": documents.digest({**docs[0], "title": "x"}),
            }
        )
    docs, _ = documents.advocate_docs(db.session, [a.id])
    with writer_for("advocates") as w:  # as an index written before digests existed
        w.update_document(**{k: v for k, v in docs[0].items() if k != "digest"})
    db.session.rollback()
    bad = runner.invoke(args=["search", "check"])
    assert bad.exit_code == 1
    assert f"1 opportunity document(s) differ from the database, e.g. [{o.id}]" in bad.output
    assert f"written without a content digest (an index from an older version), e.g. [{a.id}]" in bad.output


# --- gap 5: warming off the request path ------------------------------------------------------------------------


def _join_warmers():
    for t in threading.enumerate():
        if t.name.startswith("search-warm"):
            t.join(30)


def test_warm_builds_what_a_first_search_would(app, make_user):
    for i in range(5):
        advocate_profile(make_user, f"warm{i}@example.com", story=f"warm story common {i}")
    querying.forget_searchers()
    timings = querying.warm()
    assert set(timings) == {"facets", "terms", "total"}
    st = querying.searcher_for("advocates")
    segs = list(st.facets.segments.values())
    assert segs and all(s.lengths.get("content") for s in segs)
    assert any(("content", "common") in s.terms for s in segs)
    assert any(key[:2] == ("content", "common") for s in segs for key in s.stats)


def test_the_first_request_warms_the_index_in_the_background_when_enabled(app, make_user, client, monkeypatch):
    advocate_profile(make_user, "bg@example.com", story="background warm")
    querying.forget_searchers()
    monkeypatch.setattr(querying, "_warmed_at_start", set())
    client.get("/auth/login")  # warm-up is off under TESTING unless asked for
    _join_warmers()
    assert querying._open == {}
    app.config["SEARCH_WARM"] = True
    client.get("/auth/login")  # any page: the thread starts, the response does not wait for it
    _join_warmers()
    st = querying._open[(app.config["SEARCH_INDEX_DIR"], "advocates")]
    assert st.facets.segments  # built before any search
    client.get("/auth/login")
    assert sum(1 for t in threading.enumerate() if t.name == "search-warm") == 0  # once per process


def test_a_swapped_in_generation_is_warmed_before_it_answers(app, make_user, runner):
    advocate_profile(make_user, "swap@example.com", story="swap warm")
    app.config["SEARCH_WARM"] = True
    first = querying.searcher_for("advocates")
    assert runner.invoke(args=["search", "reindex"]).exit_code == 0
    meanwhile = querying.searcher_for("advocates")
    _join_warmers()
    after = querying.searcher_for("advocates")
    assert after.target == os.path.realpath(current_dir() / "advocates") != first.target
    assert meanwhile.target in (first.target, after.target)  # the old one answered until the new one was warm
    assert after.facets.segments  # warmed by the background thread
    assert names(find("swap")) == ["Swap"]


# --- gap 6: every facet value can be picked --------------------------------------------------------------------


def test_facets_show_the_top_values_and_the_rest_under_more(app, make_user, staff_client):
    codes = [c.code for c in db.session.query(Country).order_by(Country.name).limit(14)]
    labels = {c.code: c.name for c in db.session.query(Country)}
    for i, code in enumerate(codes):
        person(make_user, f"c{i}@example.com", story="global advocates", country=code)
    html = staff_search(staff_client, "global")
    block = html.split("<summary>Country</summary>", 1)[1].split('<details class="facet" open>', 1)[0]
    listed = re.findall(r'<a href="[^"]*country=([A-Z]{2})[^"]*"[^>]*>([^<]+)</a>', block)
    assert sorted(c for c, _ in listed) == sorted(codes)  # all 14, not 12
    top, more = block.split('<details class="facet-more">', 1)
    assert "<summary>2 more</summary>" in more
    in_more = re.findall(r"country=([A-Z]{2})", more)
    assert in_more == codes[12:] and not set(in_more) & set(re.findall(r"country=([A-Z]{2})", top))

    picked = staff_search(staff_client, "global", country=codes[13])  # a value from "more"
    assert page_hits(picked) == ["C13"]
    block = picked.split("<summary>Country</summary>", 1)[1].split('<details class="facet" open>', 1)[0]
    top = block.split('<details class="facet-more">', 1)[0]
    assert f'aria-current="true">✓ {labels[codes[13]]}</a>' in top  # a chosen value stays in view


# --- gap 7: the database fallback reads field prefixes and escapes LIKE wildcards ------------------------------


@pytest.fixture
def fallback_people(app, make_user):
    people = {
        "acme": member(make_user, "Acme Person", company="Acme Corp", story="Clinical work."),
        "mention": member(make_user, "Mention Person", company="Globex", story="We once met acme people."),
        "percent": member(make_user, "Percent Person", company="Initech", story="We grew 100% in a year."),
        "under": member(make_user, "Under Person", company="Umbrella", story="The snake_case config."),
    }
    querying.forget_searchers()
    shutil.rmtree(root())  # the index is gone: every search below is the database fallback
    return people


def test_fallback_reads_field_prefixes(fallback_people, staff_client):
    html = staff_search(staff_client, "company:acme")
    assert FALLBACK in html and page_hits(html) == ["Acme Person"]  # not the story that mentions acme
    assert sorted(page_hits(staff_search(staff_client, "acme"))) == ["Acme Person", "Mention Person"]
    assert page_hits(staff_search(staff_client, "name:mention")) == ["Mention Person"]
    assert len(page_hits(staff_search(staff_client, "title:engineer"))) == 4
    assert page_hits(staff_search(staff_client, "industry:clinical")) == ["Acme Person"]  # prefix dropped
    assert page_hits(staff_search(staff_client, "acme AND clinical")) == ["Acme Person"]  # operators dropped


@pytest.mark.parametrize(
    "q, expected",
    [
        ("%", ["Percent Person"]),
        ("_", ["Under Person"]),
        ("%%", []),
        ("a_b", []),
        ("\\", []),
        ("100%", ["Percent Person"]),
        ("snake_case", ["Under Person"]),
        ("e_c", ["Under Person"]),
    ],
)
def test_fallback_escapes_like_wildcards(fallback_people, staff_client, q, expected):
    """``%`` and ``_`` match themselves (only the stories that hold them), not everyone."""
    html = staff_search(staff_client, q)
    assert FALLBACK in html and page_hits(html) == expected, q


# --- gap 8: opportunity search filters to the advocate's eligible ones inside the index ------------------------


def test_eligible_opportunities_are_found_behind_more_than_500_better_matches(app, make_user):
    me = member(make_user, "Seeker", acts=("speaking",), story="me")
    speaking = atype("speaking")
    db.session.add_all(
        [
            Opportunity(
                activity_type=speaking,
                title=f"Security security summit {i}",
                description="security security security",
                status=OpportunityStatus.CLOSED,
                seats_taken=0,
                opened_at=utcnow(),
            )
            for i in range(520)
        ]
    )
    filler = " ".join(["community meetup agenda networking lunch"] * 40)
    wanted = [
        Opportunity(
            activity_type=speaking,
            title=f"Community talk {i}",
            description=f"{filler} security",
            status=OpportunityStatus.OPEN,
            seats_taken=0,
            opened_at=utcnow(),
        )
        for i in range(3)
    ]
    db.session.add_all(wanted)
    db.session.commit()
    apply_all_pending(db.engine)
    assert len(querying.search_opportunity_ids("security", None)[0]) == 523
    eligible = [o.id for o in wanted]
    ids, _ = querying.search_opportunity_ids("security", None, eligible)
    assert sorted(ids) == sorted(eligible)

    c = app.test_client()
    login(c, me.email)
    html = c.get("/search/opportunities", query_string={"q": "security"}).get_data(as_text=True)
    assert sorted(re.findall(r'<h2><a href="/opportunities/\d+">(.*?)</a></h2>', html)) == [
        "Community talk 0",
        "Community talk 1",
        "Community talk 2",
    ]
