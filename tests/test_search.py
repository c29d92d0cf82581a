"""Search: the index follows the database, survives failures, answers every query (issue 6)."""

import multiprocessing
import os
import shutil
import threading
from datetime import date, timedelta

import pytest

from portal.extensions import db
from portal.models import (
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    Industry,
    Opportunity,
    OpportunityStatus,
    Participation,
    ParticipationStatus,
    Product,
    SearchPending,
    SelectionMode,
    Status,
    utcnow,
)
from search import querying
from search.indexing import apply_pending, current_dir
from tests.support import TEST_PASSWORD, login, post_form, profile_data


def search(q="", **filters):
    db.session.rollback()
    include = filters.pop("include_unavailable", False)
    sort = filters.pop("sort", "relevance")
    return querying.search_advocates(
        db.session,
        querying.AdvocateSearch(
            q=q,
            filters={k: v if isinstance(v, list) else [v] for k, v in filters.items()},
            include_unavailable=include,
            sort=sort,
        ),
    )


def names(results):
    return [h.user.name for h in results.hits]


def person(make_user, email, story="", industry=None, country="DE", products=(), acts=("speaking",), **profile):
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


# --- following the database -----------------------------------------------------------------------------


def test_profile_update_through_the_page_is_searchable(advocate_client, advocate, staff_client):

    post_form(advocate_client, "/me/profile", profile_data(story="We deployed quokkaplatform everywhere."))
    page = staff_client.get("/search/advocates?q=quokkaplatform").get_data(as_text=True)
    assert "Ada Advocate" in page and "<mark" in page
    post_form(advocate_client, "/me/profile", profile_data(story="Now about wombatsystems."))
    assert search("quokkaplatform").total == 0 and search("wombatsystems").total == 1


def test_approval_suspension_and_deletion_follow(app, runner, make_user, advocate_client, advocate):
    pending = make_user(email="newbie@example.com", status=Status.PENDING, name="Newbie Person")
    apply_pending(db.engine)
    assert search("newbie").total == 0
    runner.invoke(args=["users", "approve", "newbie@example.com"])
    assert search("newbie").total == 1
    runner.invoke(args=["users", "suspend", "newbie@example.com", "--reason", "x"])
    assert search("newbie").total == 0
    assert search("ada").total == 1

    post_form(advocate_client, "/me/delete", {"password": TEST_PASSWORD, "confirm": "y"})
    assert search("ada").total == 0
    assert pending


def test_participation_and_opportunities_follow(app, make_user, admin):
    u = person(make_user, "eng@example.com", story="engagement story")
    t = db.session.query(ActivityType).filter_by(key="speaking").one()
    o = Opportunity(
        activity_type=t,
        title="Quasar summit keynote",
        status=OpportunityStatus.OPEN,
        seats_taken=0,
        selection_mode=SelectionMode.SELECTION,
        opened_at=utcnow(),
    )
    db.session.add(o)
    db.session.commit()
    apply_pending(db.engine)
    assert querying.search_opportunity_ids("quasar", None)[0] == [o.id]
    db.session.add(
        Participation(opportunity_id=o.id, user_id=u.id, status=ParticipationStatus.APPROVED, engaged_at=utcnow())
    )
    db.session.commit()
    apply_pending(db.engine)
    r = search("engagement", sort="engaged", include_unavailable=True)
    assert r.total == 1
    db.session.query(Opportunity).filter_by(id=o.id).update({"status": OpportunityStatus.ARCHIVED})
    db.session.add(SearchPending(doc_type="opportunities", doc_id=o.id))
    db.session.commit()
    apply_pending(db.engine)
    assert querying.search_opportunity_ids("quasar", None)[0] == []


def test_failed_index_write_is_kept_and_applied_later(advocate_client, advocate, runner, monkeypatch):
    import search.indexing as indexing

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(indexing, "writer_for", broken)
    resp = post_form(advocate_client, "/me/profile", profile_data(story="Hidden narwhaltoken here."))
    assert resp.status_code == 302  # the user's change is saved
    db.session.rollback()
    pending = db.session.query(SearchPending).all()
    assert pending and "disk full" in (pending[0].last_error or "")
    monkeypatch.undo()
    assert search("narwhaltoken").total == 0
    result = runner.invoke(args=["search", "sync"])
    assert result.exit_code == 0, result.output
    assert search("narwhaltoken").total == 1
    db.session.rollback()
    assert db.session.query(SearchPending).count() == 0


def _writer_process(config, user_ids, proc, queue):
    from portal import create_app
    from portal.extensions import db as pdb
    from portal.models import AdvocateProfile as P

    app = create_app(config)
    try:
        with app.app_context():
            from portal.database import begin_write

            for i in range(25):
                uid = user_ids[i % len(user_ids)]
                begin_write(pdb.session)  # as a POST request does: read-then-write takes the lock first
                p = pdb.session.get(P, uid)
                p.story = f"{p.story} proc{proc}tok{i}x"
                pdb.session.commit()
                apply_pending(pdb.engine)
            pdb.engine.dispose()
        queue.put(("ok", proc))
    except Exception as exc:  # report to the parent
        queue.put(("error", repr(exc)))


def test_four_processes_writing_lose_nothing(app, app_config, make_user, runner):
    users = [person(make_user, f"mp{i}@example.com", story="start") for i in range(8)]
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_writer_process, args=(app_config, [users[2 * k].id, users[2 * k + 1].id], k, queue))
        for k in range(4)
    ]
    [p.start() for p in procs]
    [p.join(180) for p in procs]
    outcomes = [queue.get(timeout=5) for _ in procs]
    assert all(o[0] == "ok" for o in outcomes), outcomes
    for k in range(4):
        for i in range(25):
            assert search(f"proc{k}tok{i}x", include_unavailable=True).total == 1, (k, i)
    assert runner.invoke(args=["search", "check"]).exit_code == 0


# --- rebuild, drift, recovery --------------------------------------------------------------------------------------


def test_reindex_swaps_while_search_keeps_answering(app, make_user, runner, staff_client):
    for i in range(30):
        person(make_user, f"rb{i}@example.com", story=f"rebuild story {i}")
    before = os.path.realpath(current_dir() / "advocates")
    errors, answers, stop, answering = [], [], threading.Event(), threading.Event()

    def searching():  # the only user of staff_client, signed in as the staff member
        while not stop.is_set():
            r = staff_client.get("/search/advocates?q=rebuild")
            if r.status_code != 200 or "30 advocates" not in r.get_data(as_text=True):
                errors.append(r.status_code)
            else:
                answers.append(r.status_code)
            answering.set()

    t = threading.Thread(target=searching)
    t.start()
    try:
        assert answering.wait(30), "the searching thread never got an answer"
        answered_before = len(answers)
        for _ in range(2):
            assert runner.invoke(args=["search", "reindex"]).exit_code == 0
        answered_during = len(answers) - answered_before
    finally:
        stop.set()
        t.join()
    assert errors == []
    assert answered_during > 0  # searches were answered while the index was rebuilt and swapped
    assert os.path.realpath(current_dir() / "advocates") != before


def test_check_reports_drift(app, make_user, runner):
    u = person(make_user, "drift@example.com")
    assert runner.invoke(args=["search", "check"]).exit_code == 0
    from search.indexing import writer_for

    with writer_for("advocates") as w:
        w.delete_by_term("uid", str(u.id))
    bad = runner.invoke(args=["search", "check"])
    assert bad.exit_code == 1 and "missing from the index" in bad.output
    runner.invoke(args=["search", "reindex"])
    assert runner.invoke(args=["search", "check"]).exit_code == 0


@pytest.mark.parametrize("damage", ["delete", "corrupt"])
def test_missing_or_corrupt_index_falls_back(app, make_user, staff_client, admin_client, runner, damage):
    person(make_user, "fallback@example.com", story="resilient otter")
    target = os.path.realpath(current_dir() / "advocates")
    querying.forget_searchers()
    if damage == "delete":
        shutil.rmtree(os.path.dirname(target))
    else:
        for name in os.listdir(target):
            with open(os.path.join(target, name), "wb") as fh:
                fh.write(b"garbage" * 10)
    page = staff_client.get("/search/advocates?q=otter")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "simpler search of the database" in body and "Fallback" in body
    health = admin_client.get("/admin/search-index").get_data(as_text=True)
    assert "Needs attention" in health and "flask search reindex" in health
    assert runner.invoke(args=["search", "reindex"]).exit_code == 0
    again = staff_client.get("/search/advocates?q=otter").get_data(as_text=True)
    assert "simpler search" not in again and "Fallback" in again


# --- queries -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "q",
    [
        '"',
        "(",
        "a:",
        "*",
        "AND",
        "x" * 10000,
        "😀 شلום",
        "company:acme",
        '"exact phrase"',
        "industry:healthcare",
        "OR OR",
        "title:",
        "[a TO",
        "~2",
        "\\",
        "%",
        "*ing",
    ],
)
def test_any_query_returns_a_page(staff_client, make_user, q):
    person(make_user, "q@example.com", story="an exact phrase lives here")
    resp = staff_client.get("/search/advocates", query_string={"q": q})
    assert resp.status_code == 200


def test_invalid_syntax_gets_a_quiet_note(staff_client, make_user):
    person(make_user, "n@example.com", story="note story")
    assert "read as plain words" in staff_client.get("/search/advocates?q=a:").get_data(as_text=True)


def test_facets_counts_filters_and_availability(app, make_user):
    person(
        make_user,
        "h1@example.com",
        story="cloud",
        industry="Healthcare",
        country="DE",
        products=("Data Platform",),
        acts=("speaking", "review"),
    )
    person(
        make_user,
        "h2@example.com",
        story="cloud",
        industry="Healthcare",
        country="JP",
        products=("Data Platform", "Security Suite"),
    )
    person(make_user, "b1@example.com", story="cloud", industry="Insurance", country="DE", acts=("review",))
    person(
        make_user,
        "p1@example.com",
        story="cloud",
        industry="Insurance",
        country="FR",
        paused_until=date.today() + timedelta(days=3),
    )
    r = search("cloud")
    assert r.total == 3  # the paused one is hidden by default
    counts = lambda f: {v.label: v.count for v in r.facets[f]}  # noqa: E731
    assert counts("industry") == {"Healthcare": 2, "Insurance": 1}
    assert counts("country") == {"Germany": 2, "Japan": 1}
    assert counts("region") == {"Europe": 2, "Asia Pacific": 1}
    assert counts("product") == {"Data Platform": 2, "Security Suite": 1}
    assert counts("activity") == {"Speaking": 2, "Peer review": 2}
    assert counts("freshness") == {"Confirmed in the last 90 days": 3}
    assert sum(counts("fatigue").values()) == 3
    health = str(db.session.query(Industry).filter_by(name="Healthcare").one().id)
    both = search("cloud", industry=health, activity="review")
    assert names(both) == ["H1"] and both.total == 1
    narrowed = {v.label: v.count for v in both.facets["industry"]}
    assert narrowed == {"Healthcare": 1, "Insurance": 1}  # other values of the same facet stay visible
    assert search("cloud", include_unavailable=True).total == 4


def test_at_limit_hidden_and_sorts(app, make_user):
    a = person(make_user, "old@example.com", story="sorting")
    b = person(make_user, "new@example.com", story="sorting")
    db.session.query(AdvocateProfile).filter_by(user_id=a.id).update({"confirmed_at": utcnow() - timedelta(days=300)})
    db.session.add(SearchPending(doc_type="advocates", doc_id=a.id))
    db.session.commit()
    apply_pending(db.engine)
    assert names(search("sorting", sort="confirmed")) == ["New", "Old"]
    t = db.session.query(ActivityType).filter_by(key="speaking").one()
    for i in range(4):
        o = Opportunity(
            activity_type=t,
            title=f"o{i}",
            status=OpportunityStatus.OPEN,
            seats_taken=0,
            selection_mode=SelectionMode.SELECTION,
            opened_at=utcnow(),
        )
        db.session.add(o)
        db.session.flush()
        db.session.add(
            Participation(
                opportunity_id=o.id,
                user_id=b.id,
                status=ParticipationStatus.COMPLETED,
                engaged_at=utcnow() - timedelta(days=i + 1),
            )
        )
    db.session.commit()
    apply_pending(db.engine)
    assert names(search("sorting")) == ["Old"]  # "New" is at the program's limit
    assert names(search("sorting", include_unavailable=True, sort="engaged")) == ["Old", "New"]


def test_pagination_snippets_escaping_and_badges(staff_client, make_user):
    for i in range(25):
        person(make_user, f"pg{i:02d}@example.com", story=f"pagination <script>x</script> {i}")
    page1 = staff_client.get("/search/advocates?q=pagination").get_data(as_text=True)
    page2 = staff_client.get("/search/advocates?q=pagination&page=2").get_data(as_text=True)
    assert "Page 1 of 2" in page1 and "Page 2 of 2" in page2
    assert page1.count('class="card hit"') == 20 and page2.count('class="card hit"') == 5
    assert "<script>x</script>" not in page1 and "&lt;script&gt;" in page1 and "<mark" in page1
    assert "confirmed 0 days ago" in page1 and "fatigue-" in page1


def test_who_may_search(client, advocate_client, staff_client, admin_client):
    assert advocate_client.get("/search/advocates").status_code == 403
    assert client.get("/search/advocates").status_code == 302
    assert staff_client.get("/search/advocates").status_code == 200
    assert admin_client.get("/search/advocates").status_code == 200


def test_opportunity_search_for_advocates(app, make_user):
    u = person(make_user, "os@example.com", acts=("speaking",))
    t = db.session.query(ActivityType).filter_by(key="speaking").one()
    r = db.session.query(ActivityType).filter_by(key="review").one()
    for title, at in (("Security summit talk", t), ("Security review on G2", r), ("Cooking talk", t)):
        db.session.add(
            Opportunity(
                activity_type=at,
                title=title,
                status=OpportunityStatus.OPEN,
                seats_taken=0,
                selection_mode=SelectionMode.SELECTION,
                opened_at=utcnow(),
            )
        )
    db.session.commit()
    apply_pending(db.engine)
    c = app.test_client()

    login(c, u.email)
    body = c.get("/search/opportunities?q=security").get_data(as_text=True)
    assert "Security summit talk" in body and "Security review on G2" not in body and "Cooking" not in body
    assert c.get("/search/opportunities?q=(&type=abc").status_code == 200
