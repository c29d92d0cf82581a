"""Profile tags and completeness: suggestions only of tags in use, race-safe tag creation, the
comma-list suggestion script, retired activity types, and POINTS_PROFILE_COMPLETE=0."""

from pathlib import Path

from sqlalchemy import event, func, select, text

from portal.database import begin_write
from portal.extensions import db
from portal.models import ActivityPreference, ActivityType, AdvocateProfile, PointsEntry, Status, Tag, TagKind, User
from portal.services import points, profiles
from tests.support import (
    client_for,
    csrf_from,
    make_advocate,
    post_form,
    profile_data,
    reload,
    run_threads,
    save_profile,
)

STATIC = Path(__file__).resolve().parent.parent / "static"


def set_tags(user_id, use_cases="", topics=""):
    """Save an advocate's tags through the service, as the profile form would."""
    begin_write(db.session)  # before the first query: a unit of work begins as a writer
    user = db.session.get(User, user_id)
    profiles.update_profile(
        db.session,
        user,
        profiles.ProfileInput(name=user.name, job_title="CISO", company="Acme", use_cases=use_cases, topics=topics),
    )
    db.session.commit()


def suggestions(kind=TagKind.USE_CASE):
    db.session.rollback()
    out = profiles.tag_suggestions(db.session, kind)
    db.session.rollback()
    return out


def tag_count(slug, kind=TagKind.USE_CASE):
    db.session.rollback()
    n = db.session.scalar(select(func.count()).select_from(Tag).where(Tag.kind == kind, Tag.slug == slug))
    db.session.rollback()
    return n


# --- suggestions: only tags some active advocate has ----------------------------------------------------------


def test_a_removed_tag_is_no_longer_suggested(app, advocate_client, advocate, make_user):
    resp = save_profile(advocate_client, use_cases="Secret Project Falcon, fraud detection", topics="zero trust")
    assert resp.status_code == 302
    assert sorted(suggestions()) == ["Secret Project Falcon", "fraud detection"]
    assert save_profile(advocate_client, use_cases="fraud detection", topics="zero trust").status_code == 302
    assert tag_count("secret project falcon") == 1  # the row stays (tags are shared), unused
    assert suggestions() == ["fraud detection"]
    other = make_user(email="olive@example.com")
    page = client_for(app, other.email).get("/me/profile").get_data(as_text=True)
    assert '<option value="fraud detection">' in page and '<option value="zero trust">' in page
    assert "Falcon" not in page


def test_tags_of_advocates_who_are_not_active_are_not_suggested(app, make_user):
    ids = {
        status: make_user(email=f"{status.value}@example.com").id
        for status in (Status.ACTIVE, Status.SUSPENDED, Status.DELETED)
    }
    for status, uid in ids.items():
        set_tags(uid, use_cases=f"uc {status.value}", topics=f"topic {status.value}")
    for status in (Status.SUSPENDED, Status.DELETED):
        db.session.get(User, ids[status]).status = status
    db.session.commit()
    assert suggestions(TagKind.USE_CASE) == ["uc active"]
    assert suggestions(TagKind.TOPIC) == ["topic active"]
    # Shared by an active advocate again: suggested again, once.
    set_tags(ids[Status.ACTIVE], use_cases="uc active, uc suspended")
    assert suggestions(TagKind.USE_CASE) == ["uc active", "uc suspended"]
    assert suggestions(TagKind.TOPIC) == []


# --- creating a new tag is race-safe ----------------------------------------------------------------------------


def test_tag_created_by_another_writer_between_lookup_and_insert(app, make_user):
    """Deterministic interleaving: right before this save inserts the new tag, another writer inserts the
    same tag (PostgreSQL: another connection, committed; SQLite, whose writers are serial: the same
    transaction). The save uses that row instead of failing on the unique constraint (a 500 before)."""
    uid = make_user(email="racer@example.com").id
    fired = []
    postgres = db.engine.dialect.name == "postgresql"

    def other_writer_first(conn, cursor, statement, parameters, context, executemany):
        if fired or not statement.lstrip().upper().startswith("INSERT INTO TAGS"):
            return
        fired.append(statement)
        sql = "INSERT INTO tags (kind, name, slug) VALUES ('use_case', 'Brand New', 'brand new')"
        if postgres:
            with db.engine.connect() as other:
                other.execute(text(sql))
                other.commit()
        else:
            cursor.execute(sql)

    event.listen(db.engine, "before_cursor_execute", other_writer_first)
    try:
        set_tags(uid, use_cases="brand NEW, older idea")
    finally:
        event.remove(db.engine, "before_cursor_execute", other_writer_first)
    assert fired
    assert tag_count("brand new") == 1 and tag_count("older idea") == 1
    p = reload(AdvocateProfile, uid)
    assert sorted(t.name for t in p.use_cases) == ["Brand New", "older idea"]  # the first writer's spelling


def test_advocates_adding_the_same_new_tags_at_once_over_http(app, make_user):
    n = 8
    uids = [make_advocate(make_user, f"same{i}@example.com") for i in range(n)]
    armed = []
    for uid in uids:
        c = client_for(app, uid)
        armed.append((c, csrf_from(c.get("/me/profile").get_data(as_text=True))))
    data = profile_data(use_cases="Quantum Widgets, Edge Mesh", topics="Hyper Scale")

    def go(i):
        c, token = armed[i]
        return c.post("/me/profile", data={**data, "name": f"Racer {i}", "csrf_token": token})

    results = run_threads(n, go)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert [r.status_code for r in results] == [302] * n
    assert tag_count("quantum widgets") == tag_count("edge mesh") == 1
    assert tag_count("hyper scale", TagKind.TOPIC) == 1
    for uid in uids:
        p = reload(AdvocateProfile, uid)
        assert sorted(t.slug for t in p.tags) == ["edge mesh", "hyper scale", "quantum widgets"]
    db.session.rollback()


# --- the comma-list suggestions script -------------------------------------------------------------------------


def test_comma_separated_inputs_get_suggestions_for_the_last_item(advocate_client, advocate):
    save_profile(advocate_client, use_cases="fraud detection", topics="zero trust")
    page = advocate_client.get("/me/profile").get_data(as_text=True)
    # Without the script the page still works: each input points at its page datalist.
    assert 'list="use-case-suggestions"' in page and 'list="topic-suggestions"' in page
    assert '<datalist id="use-case-suggestions" data-comma-list>' in page
    assert '<datalist id="topic-suggestions" data-comma-list>' in page
    assert '<script src="/static/js/portal.js"' in page and "<script>" not in page
    js = (STATIC / "js" / "portal.js").read_text()
    assert "datalist[data-comma-list]" in js and 'lastIndexOf(",")' in js
    assert 'addEventListener("input"' in js


# --- completeness: retired activity types do not count -----------------------------------------------------------


def test_opting_in_only_to_a_retired_activity_type_is_not_complete(app, advocate_client, advocate):
    review = db.session.scalar(select(ActivityType).where(ActivityType.key == "review"))
    review_id = review.id
    db.session.rollback()
    post_form(advocate_client, "/me/preferences/activities", {f"opt_{review_id}": "y"}, page="/me/preferences")
    db.session.get(ActivityType, review_id).active = False  # an admin retires the activity type
    db.session.commit()
    assert save_profile(advocate_client).status_code == 302
    user, profile = reload(User, advocate.id), db.session.get(AdvocateProfile, advocate.id)
    assert [p.activity_type_id for p in profile.preferences if p.opted_in] == [review_id]
    result = profiles.completeness(user, profile)
    assert result.missing == ["at least one activity you are willing to do"] and result.percent == 91
    assert points.balance(db.session, advocate.id) == 0  # not complete: no points
    db.session.rollback()
    page = advocate_client.get("/me/profile").get_data(as_text=True)
    assert "Profile 91% complete" in page
    db.session.get(ActivityType, review_id).active = True  # brought back: it counts again
    db.session.commit()
    user, profile = reload(User, advocate.id), db.session.get(AdvocateProfile, advocate.id)
    assert profiles.completeness(user, profile).percent == 100
    db.session.rollback()


# --- POINTS_PROFILE_COMPLETE=0 -----------------------------------------------------------------------------------


def test_no_points_for_a_complete_profile_when_the_setting_is_zero(app, advocate_client, advocate):
    """Saving a complete profile used to fail: the ledger refuses an award of zero points."""
    app.config["POINTS_PROFILE_COMPLETE"] = 0
    t = db.session.scalar(select(ActivityType).where(ActivityType.key == "review"))
    db.session.rollback()
    post_form(advocate_client, "/me/preferences/activities", {f"opt_{t.id}": "y"}, page="/me/preferences")
    assert save_profile(advocate_client).status_code == 302
    page = advocate_client.get("/me/profile").get_data(as_text=True)
    assert "Profile 100% complete" in page
    db.session.rollback()
    assert (
        db.session.scalar(select(func.count()).select_from(PointsEntry).where(PointsEntry.user_id == advocate.id)) == 0
    )
    assert points.balance(db.session, advocate.id) == 0
    assert db.session.get(ActivityPreference, (advocate.id, t.id)).opted_in
    db.session.rollback()
