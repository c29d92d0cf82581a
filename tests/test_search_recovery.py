"""Search survives failures: a failed index write, a deleted or corrupt index, drift, and rebuilds that
swap generations while searches and writes go on."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time

import pytest

from portal.extensions import db
from portal.models import AdvocateProfile, Opportunity, OpportunityStatus, Role, User, utcnow
from search import documents, indexing, querying
from search import rebuild as rb
from search.indexing import apply_pending, current_dir, rebuilding_marker, root, writer_for
from tests.support import (
    advocate_profile,
    atype,
    find,
    login,
    names,
    page_hits,
    pending_rows,
    post_form,
    profile_form,
    reload,
    set_story,
    staff_search,
)

FALLBACK = "simpler search of the database"


def generation() -> str:
    return os.readlink(current_dir())


# --- a failed write never fails the request and is not lost -----------------------------------------------------


def test_a_failed_index_write_keeps_the_change_for_later(advocate_client, advocate, staff_client, runner, monkeypatch):
    post_form(advocate_client, "/me/profile", profile_form(story="The first story."))

    def broken(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(indexing, "writer_for", broken)
    resp = post_form(advocate_client, "/me/profile", profile_form(story="Now about pangolinplatform."))
    assert resp.status_code == 302  # the user's save succeeded
    assert "pangolinplatform" in reload(AdvocateProfile, advocate.id).story
    rows = pending_rows()
    assert [(r.doc_type, r.doc_id) for r in rows] == [("advocates", advocate.id)]
    assert "No space left on device" in rows[0].last_error and rows[0].attempts == 1
    assert page_hits(staff_search(staff_client, "pangolinplatform")) == []  # the index has the old story
    assert page_hits(staff_search(staff_client, "first")) == ["Ada Advocate"]

    # Still broken: the next request also fails to write, the row stays and counts the attempt.
    assert (
        post_form(advocate_client, "/me/availability", {"max_asks_per_quarter": "40", "timezone": "UTC"}).status_code
        == 302
    )
    assert [r.attempts for r in pending_rows()] == [2, 1]

    monkeypatch.undo()
    result = runner.invoke(args=["search", "sync"])
    assert result.exit_code == 0, result.output
    assert "Applied 2 pending change(s)." in result.output
    assert page_hits(staff_search(staff_client, "pangolinplatform")) == ["Ada Advocate"]
    assert page_hits(staff_search(staff_client, "first")) == []
    assert pending_rows() == []
    assert runner.invoke(args=["search", "check"]).exit_code == 0


def test_the_next_successful_writer_applies_what_an_earlier_one_could_not(
    app, advocate_client, advocate, make_user, monkeypatch
):
    other = advocate_profile(make_user, "other@example.com", story="other person")

    def broken(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(indexing, "writer_for", broken)
    assert post_form(advocate_client, "/me/profile", profile_form(story="ibexword")).status_code == 302
    assert len(pending_rows()) == 1 and find("ibexword").total == 0
    monkeypatch.undo()
    set_story(other.id, "other person now writes about oryxword")  # a later change, in another session
    apply_pending(db.engine)  # what that request's after_request hook does
    assert names(find("ibexword")) == ["Ada Advocate"] and names(find("oryxword")) == ["Other"]
    assert pending_rows() == []


def test_a_removed_index_directory_does_not_fail_the_request(
    app, advocate_client, advocate, make_user, staff_client, runner
):
    advocate_profile(make_user, "bystander@example.com", story="bystander gazelleword")
    querying.forget_searchers()
    shutil.rmtree(root())
    resp = post_form(advocate_client, "/me/profile", profile_form(story="Writing about tapirword."))
    assert resp.status_code == 302
    rows = pending_rows()
    assert len(rows) == 1 and "index" in rows[0].last_error
    html = staff_search(staff_client, "tapirword")
    assert FALLBACK in html and page_hits(html) == ["Ada Advocate"]  # the database still answers

    result = runner.invoke(args=["search", "sync"])
    assert result.exit_code == 0, result.output
    html = staff_search(staff_client, "tapirword")
    assert FALLBACK not in html and page_hits(html) == ["Ada Advocate"]
    # The index sync brought back holds everyone, not only the change that was waiting.
    assert page_hits(staff_search(staff_client, "gazelleword")) == ["Bystander"]
    assert pending_rows() == []
    check = runner.invoke(args=["search", "check"])
    assert check.exit_code == 0, check.output


# --- deleted or corrupt index --------------------------------------------------------------------------------------


def _damage(how: str) -> None:
    gen = os.path.realpath(current_dir())
    adv = os.path.join(gen, "advocates")
    if how == "delete root":
        shutil.rmtree(root())
    elif how == "delete generation":
        shutil.rmtree(gen)
    elif how == "delete advocates":
        shutil.rmtree(adv)
    elif how in ("garbage segments", "garbage everything"):
        for name in os.listdir(adv):
            if name.endswith("WRITELOCK") or (name.endswith(".toc") and how == "garbage segments"):
                continue
            with open(os.path.join(adv, name), "wb") as fh:
                fh.write(b"\x00garbage\xff" * 7)
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how", ["delete root", "delete generation", "delete advocates", "garbage segments", "garbage everything"]
)
def test_a_deleted_or_corrupt_index_falls_back_and_reindex_repairs_it(
    app, make_user, staff_client, admin_client, runner, how
):
    advocate_profile(make_user, "otter@example.com", story="The resilient otterword lives here.")
    advocate_profile(make_user, "seal@example.com", story="A seal.")
    assert "Healthy" in admin_client.get("/admin/search-index").get_data(as_text=True)
    querying.forget_searchers()  # as a worker that starts after the damage
    _damage(how)

    for q in ("otterword", "", '"resilient otterword"', "company:acme", "(", "a:"):
        resp = staff_client.get("/search/advocates", query_string={"q": q})
        assert resp.status_code == 200, q
        assert FALLBACK in resp.get_data(as_text=True), q
    html = staff_search(staff_client, "otterword")
    assert page_hits(html) == ["Otter"] and "<mark" not in html  # found in the database, no highlighting
    assert sorted(page_hits(staff_search(staff_client, ""))) == ["Otter", "Seal"]

    health = admin_client.get("/admin/search-index")
    assert health.status_code == 200
    body = health.get_data(as_text=True)
    assert "Needs attention" in body and "cannot be read" in body
    assert "flask search reindex" in body and "How to repair or rebuild" in body
    assert runner.invoke(args=["search", "check"]).exit_code != 0

    result = runner.invoke(args=["search", "reindex"])
    assert result.exit_code == 0, result.output
    assert "Indexed 2 advocates" in result.output
    html = staff_search(staff_client, "otterword")
    assert FALLBACK not in html and page_hits(html) == ["Otter"] and "otterword</mark>" in html
    assert "Healthy" in admin_client.get("/admin/search-index").get_data(as_text=True)
    assert runner.invoke(args=["search", "check"]).exit_code == 0


def test_corruption_under_a_warm_searcher_never_gives_a_500(app, make_user, staff_client, admin_client, runner):
    """A worker that already had the index open when its files were overwritten."""
    advocate_profile(make_user, "warm@example.com", story="warm walrusword")
    assert page_hits(staff_search(staff_client, "walrusword")) == ["Warm"]
    _damage("garbage everything")
    for q in ("walrusword", "", "warm", "*"):
        resp = staff_client.get("/search/advocates", query_string={"q": q})
        assert resp.status_code == 200, q
    assert page_hits(staff_search(staff_client, "walrusword")) == ["Warm"]  # from the index or the database
    assert admin_client.get("/admin/search-index").status_code == 200
    assert runner.invoke(args=["search", "reindex"]).exit_code == 0
    html = staff_search(staff_client, "walrusword")
    assert FALLBACK not in html and "walrusword</mark>" in html


def test_a_new_install_with_an_empty_index_answers_from_the_index(app, staff_client, admin_client, make_user):
    html = staff_search(staff_client, "anything")
    assert FALLBACK not in html and "0 advocates available" in html
    assert FALLBACK not in staff_search(staff_client, "", industry="1", sort="engaged")
    assert "Healthy" in admin_client.get("/admin/search-index").get_data(as_text=True)


# --- drift ------------------------------------------------------------------------------------------------------------


def test_check_reports_drift_and_reindex_clears_it(app, make_user, runner, admin_client):
    kept = advocate_profile(make_user, "kept@example.com", story="kept")
    lost = advocate_profile(make_user, "lost@example.com", story="lost")
    staffer = make_user(role=Role.STAFF, email="staffer@example.com")
    o = Opportunity(
        activity_type=atype("speaking"),
        title="Drift talk",
        status=OpportunityStatus.OPEN,
        seats_taken=0,
        opened_at=utcnow(),
    )
    db.session.add(o)
    db.session.commit()
    apply_pending(db.engine)
    clean = runner.invoke(args=["search", "check"])
    assert clean.exit_code == 0 and "The index matches the database." in clean.output

    with writer_for("advocates") as w:  # behind the app's back
        w.delete_by_term("uid", str(lost.id))
    bad = runner.invoke(args=["search", "check"])
    assert bad.exit_code == 1
    assert f"1 active advocate(s) missing from the index, e.g. [{lost.id}]" in bad.output
    assert "Needs attention" in admin_client.get("/admin/search-index").get_data(as_text=True)

    docs, _ = documents.advocate_docs(db.session, [kept.id])
    with writer_for("advocates") as w:
        w.add_document(**{**docs[0], "uid": str(staffer.id)})
    with writer_for("opportunities") as w:
        w.delete_by_term("oid", str(o.id))
    db.session.rollback()
    bad = runner.invoke(args=["search", "check"])
    assert bad.exit_code == 1
    assert f"1 document(s) in the index for advocates who are not active, e.g. [{staffer.id}]" in bad.output
    assert "opportunities: 1 missing, 0 extra" in bad.output

    before = generation()
    assert runner.invoke(args=["search", "reindex"]).exit_code == 0
    assert generation() != before
    again = runner.invoke(args=["search", "check"])
    assert again.exit_code == 0, again.output
    assert names(find("lost")) == ["Lost"]
    assert "Healthy" in admin_client.get("/admin/search-index").get_data(as_text=True)


# --- rebuild and swap -------------------------------------------------------------------------------------------------


def test_a_searcher_opened_before_a_merge_still_reads_the_segments_it_merged_away(app, make_user):
    """CI flake of 2026-12-01: a background merge deleted the segments a cached searcher was about to
    read (Whoosh opens column files on first use), and the search raised FileNotFoundError. A searcher
    now opens every segment file up front, so it stays a consistent snapshot however long it is used."""
    from portal.models import Industry
    from search.facets import FacetCache

    health = db.session.query(Industry).filter_by(name="Healthcare").one()
    for i in range(3):  # three updates: three small segments, below the background-merge threshold
        advocate_profile(make_user, f"snap{i}@example.com", story=f"snapshot story {i}", industry_id=health.id)
    indexing.wait_for_merges()
    old = querying.searcher_for("advocates").searcher
    old_segments = [leaf.segment().segment_id() for leaf, _ in old.reader().leaf_readers()]
    assert len(old_segments) >= 2

    with writer_for("advocates", merge=True):  # what the background merge does: fold them into one
        pass
    on_disk = os.listdir(os.path.realpath(current_dir() / "advocates"))
    assert not [n for n in on_disk if any(n.startswith(seg + ".") for seg in old_segments)]  # deleted

    req = querying.AdvocateSearch(q="snapshot", filters={}, include_unavailable=True)
    db.session.rollback()
    results, uids, _ = querying._search_index(db.session, req, utcnow().date(), old, FacetCache())
    assert results.total == 3 and len(uids) == 3
    assert {r.value: r.count for r in results.facets["industry"]} == {str(health.id): 3}
    assert find("snapshot").total == 3  # and the shared searcher moves on to the merged segment
    assert [
        leaf.segment().segment_id() for leaf, _ in querying.searcher_for("advocates").searcher.reader().leaf_readers()
    ] != old_segments


def test_reindex_builds_a_new_generation_and_old_searchers_keep_working(app, make_user, runner):
    for i in range(5):
        advocate_profile(make_user, f"gen{i}@example.com", story=f"generation story {i}")
    first = generation()
    old = querying.searcher_for("advocates").searcher  # a search in flight holds this one
    result = runner.invoke(args=["search", "reindex"])
    assert result.exit_code == 0, result.output
    assert "Indexed 5 advocates and 0 opportunities; swapped in." in result.output
    second = generation()
    assert second != first and second.startswith("gen-")
    assert os.path.isdir(root() / first)  # the previous generation stays for searches still using it
    from whoosh.qparser import QueryParser

    assert len(old.search(QueryParser("content", old.schema).parse("generation"))) == 5
    assert find("generation").total == 5 and querying.searcher_for("advocates").target.endswith(
        os.path.join(second, "advocates")
    )

    assert runner.invoke(args=["search", "reindex"]).exit_code == 0
    third = generation()
    assert third not in (first, second)
    assert sorted(p.name for p in root().glob("gen-*")) == sorted([second, third])  # older ones removed
    assert not rebuilding_marker().exists()
    assert find("generation").total == 5


def test_a_merge_between_opening_and_pinning_gives_a_complete_searcher(app, make_user, monkeypatch):
    """The other half of that race: the merge commits after Whoosh read the TOC but before the column
    files are pinned, so they are gone already. The searcher must not come back with "no columns"."""
    for i in range(3):
        advocate_profile(make_user, f"pin{i}@example.com", story=f"pinning story {i}")
    indexing.wait_for_merges()
    real_pin, calls = indexing.pin_segment_files, []

    def merge_first(searcher):
        if not calls:
            with writer_for("advocates", merge=True):  # commits a new TOC, deletes the small segments
                pass
        calls.append(searcher)
        return real_pin(searcher)

    monkeypatch.setattr(indexing, "pin_segment_files", merge_first)
    s = indexing.open_searcher(indexing.open_index("advocates"))
    assert len(calls) == 2 and s.up_to_date()  # the first, overtaken searcher was opened again
    leaves = [leaf for leaf, _ in s.reader().leaf_readers()]
    assert leaves and all(leaf.has_column("facets") for leaf in leaves)
    assert sorted(int(s.stored_fields(d)["uid"]) for d in s.reader().all_doc_ids()) == sorted(
        u.id for u in db.session.query(User).filter(User.email.like("pin%"))
    )


def test_reindex_reports_its_progress(app, make_user, runner):
    for i in range(7):
        advocate_profile(make_user, f"prog{i}@example.com", story=f"progress story {i}")
    steps: list[int] = []
    counts = rb.rebuild(db.engine, progress=steps.append)
    assert counts["advocates"] == 7 and steps and all(n > 0 for n in steps) and sum(steps) == 7
    result = runner.invoke(args=["search", "reindex"])
    assert result.exit_code == 0 and "Indexing advocates" in result.output, result.output


def test_searches_keep_answering_while_reindex_runs(app, make_user, runner):
    for i in range(40):
        u = make_user(email=f"rs{i}@example.com", name=f"Rebuild {i:02d}")
        db.session.add(AdvocateProfile(user_id=u.id, story=f"rebuildable story {i}", confirmed_at=utcnow()))
    db.session.commit()
    apply_pending(db.engine)
    stop = threading.Event()
    seen, problems = [], []

    def searching(n):
        c = app.test_client()
        login(c, "searcher@example.com")
        while not stop.is_set():
            resp = c.get("/search/advocates", query_string={"q": "rebuildable", "page": str(1 + n % 2)})
            body = resp.get_data(as_text=True)
            seen.append(resp.status_code)
            if resp.status_code != 200 or FALLBACK in body or "40 advocates available" not in body:
                problems.append(
                    (resp.status_code, FALLBACK in body, re.findall(r"[\d,]+ advocates? available", body)[:1])
                )

    make_user(role=Role.STAFF, email="searcher@example.com")
    threads = [threading.Thread(target=searching, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        generations = {generation()}
        for _ in range(3):
            result = runner.invoke(args=["search", "reindex"])
            assert result.exit_code == 0, result.output
            generations.add(generation())
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(generations) == 4
    assert len(seen) > 10 and problems == []


def test_changes_committed_during_a_rebuild_reach_the_new_index(app, make_user, runner, monkeypatch):
    people = [advocate_profile(make_user, f"mid{i}@example.com", story=f"mid story {i}") for i in range(3)]
    target = people[1]
    original = documents.advocate_docs
    state = {"done": False}

    def snapshot_then_change(session, ids, *args, **kwargs):
        docs = original(session, ids, *args, **kwargs)
        if not state["done"] and rebuilding_marker().exists():
            state["done"] = True
            # The rebuild has read the old story; a request now saves a new one and its writer
            # applies it to the live (old) index while the new one is being built.
            with app.app_context():
                set_story(target.id, "changed during the rebuild: caracalword")
            assert pending_rows() != []  # kept for the new index
        return docs

    monkeypatch.setattr(documents, "advocate_docs", snapshot_then_change)
    result = runner.invoke(args=["search", "reindex"])
    assert result.exit_code == 0, result.output
    assert state["done"]
    monkeypatch.undo()
    assert names(find("caracalword")) == ["Mid1"]
    assert find("mid story").total == 2
    assert pending_rows() == []
    assert runner.invoke(args=["search", "check"]).exit_code == 0


@pytest.mark.parametrize("moment", ["before writing", "before committing"])
def test_a_write_that_straddles_the_swap_is_neither_lost_nor_mixed_in(app, make_user, runner, monkeypatch, moment):
    """A writer (another request) holds the live index's lock while a rebuild swaps ``current``.

    Its write must land in the generation it locked, and the queued change must still reach the
    new generation, which must stay readable."""
    from contextlib import contextmanager

    people = [advocate_profile(make_user, f"st{i}@example.com", story=f"straddle story {i}") for i in range(3)]
    target = people[0]
    original_docs, original_writer = documents.advocate_docs, indexing.writer_for
    snapshot_taken, resume_rebuild = threading.Event(), threading.Event()
    errors = []
    first = generation()

    def rebuild_thread():
        try:
            with app.app_context():
                rb.rebuild(db.engine, procs=1)
        except BaseException as exc:  # reported below
            errors.append(exc)

    rebuilder = threading.Thread(target=rebuild_thread)

    def let_the_rebuild_swap():
        resume_rebuild.set()
        deadline = time.monotonic() + 30
        while (generation() == first or rebuilding_marker().exists()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert generation() != first  # swapped; the rebuild now waits to apply what is queued

    def docs_then_pause(session, ids, *args, **kwargs):
        docs = original_docs(session, ids, *args, **kwargs)
        if threading.current_thread() is rebuilder:
            snapshot_taken.set()  # the rebuild read the old story
            assert resume_rebuild.wait(30)
        elif moment == "before writing" and rebuilder.is_alive() and not resume_rebuild.is_set():
            let_the_rebuild_swap()
        return docs

    @contextmanager
    def writer_then_pause(kind, **kwargs):
        with original_writer(kind, **kwargs) as w:
            yield w
            if kind == "advocates" and rebuilder.is_alive() and not resume_rebuild.is_set():
                let_the_rebuild_swap()  # documents added, not committed yet

    monkeypatch.setattr(documents, "advocate_docs", docs_then_pause)
    if moment == "before committing":
        monkeypatch.setattr(indexing, "writer_for", writer_then_pause)
    rebuilder.start()
    assert snapshot_taken.wait(30)
    set_story(target.id, "saved while the index was rebuilt: okapiword")
    apply_pending(db.engine)  # the request's writer: straddles the swap
    rebuilder.join(60)
    monkeypatch.undo()
    assert not rebuilder.is_alive() and errors == []
    assert generation() != first and resume_rebuild.is_set()

    assert names(find("okapiword")) == ["St0"]
    assert find("straddle story").total == 2
    assert pending_rows() == []
    check = runner.invoke(args=["search", "check"])
    assert check.exit_code == 0, check.output


def test_only_one_rebuild_at_a_time(app, make_user, runner):
    advocate_profile(make_user, "solo@example.com", story="solo")
    import fcntl

    with open(root() / "rebuild.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another reindex is running
        result = runner.invoke(args=["search", "reindex"])
    assert result.exit_code != 0 and "Another rebuild is running." in str(result.exception)
    assert not rebuilding_marker().exists()
    assert find("solo").total == 1
