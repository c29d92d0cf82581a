"""Search follows the database after the commit: approval, profile, preferences, availability,
suspension, deletion, participation and the opportunity lifecycle.

Every change goes through the page (or the CLI command) an advocate, an admin or an operator uses;
the index is then read back through the staff search page, ``search.querying`` or the index itself.
"""

from __future__ import annotations

from datetime import date, timedelta

import time_machine

from portal.extensions import db
from portal.models import (
    AdvocateProfile,
    Blackout,
    Opportunity,
    OpportunityStatus,
    Participation,
    ParticipationStatus,
    Status,
    User,
    utcnow,
)
from portal.services import fatigue, profiles
from search import querying
from search.indexing import apply_pending, open_index, open_searcher
from tests.support import (
    TEST_PASSWORD,
    advocate_profile,
    atype,
    find,
    indexed,
    login,
    names,
    page_hits,
    pending_rows,
    post_form,
    profile_form,
    reload,
    staff_search,
)

# --- helpers ------------------------------------------------------------------------------------------------------


def indexed_opportunity_status(oid: int) -> str | None:
    """'open' / 'closed' / ... as indexed for the opportunity, or None when it has no document."""
    from whoosh.query import And, Term

    ix = open_index("opportunities")
    with open_searcher(ix) as s:
        if s.document_number(oid=str(oid)) is None:
            return None
        for status in OpportunityStatus:
            if s.search(And([Term("oid", str(oid)), Term("status", status.value)])).scored_length():
                return status.value
        return "?"


def today_n() -> int:
    return utcnow().date().toordinal()


# --- approval -----------------------------------------------------------------------------------------------


def test_approval_by_the_cli_and_by_the_admin_page_adds_the_advocate(
    app, runner, make_user, admin_client, staff_client
):
    cli = make_user(email="cli.pending@example.com", name="Corvina Waiting", status=Status.PENDING)
    page = make_user(email="page.pending@example.com", name="Pargo Waiting", status=Status.PENDING)
    apply_pending(db.engine)
    assert indexed(cli.id) is None and indexed(page.id) is None
    assert find("waiting", include_unavailable=True).total == 0

    result = runner.invoke(args=["users", "approve", "cli.pending@example.com"])
    assert result.exit_code == 0, result.output
    assert names(find("waiting")) == ["Corvina Waiting"]  # applied when the command's app context ended

    resp = post_form(admin_client, "/admin/pending/approve", {"user_id": str(page.id)}, page="/admin/pending")
    assert resp.status_code == 302
    assert sorted(names(find("waiting"))) == ["Corvina Waiting", "Pargo Waiting"]
    assert sorted(page_hits(staff_search(staff_client, "waiting"))) == ["Corvina Waiting", "Pargo Waiting"]
    assert indexed(page.id) is not None and pending_rows() == []


def test_a_declined_application_never_enters_the_index(app, make_user, admin_client):
    u = make_user(email="declined@example.com", name="Declan Nope", status=Status.PENDING)
    post_form(admin_client, "/admin/pending/decline", {"user_id": str(u.id), "reason": "x"}, page="/admin/pending")
    assert reload(User, u.id).status == Status.SUSPENDED
    assert indexed(u.id) is None and find("declan", include_unavailable=True).total == 0


# --- the advocate's own pages -------------------------------------------------------------------------------------


def test_profile_update_through_the_page_changes_what_is_found(advocate_client, advocate, staff_client):
    resp = post_form(advocate_client, "/me/profile", profile_form(story="We rolled out quokkaplatform worldwide."))
    assert resp.status_code == 302
    html = staff_search(staff_client, "quokkaplatform")
    assert page_hits(html) == ["Ada Advocate"]
    assert "<mark" in html and "quokkaplatform</mark>" in html
    assert pending_rows() == []  # written after the commit, queue emptied

    resp = post_form(
        advocate_client,
        "/me/profile",
        profile_form(story="Now it is all wombatsystems.", company="Northwind Traders", name="Ada Lovelace"),
    )
    assert resp.status_code == 302
    assert page_hits(staff_search(staff_client, "quokkaplatform")) == []
    assert page_hits(staff_search(staff_client, "wombatsystems")) == ["Ada Lovelace"]
    assert names(find("company:northwind")) == ["Ada Lovelace"]
    assert find("company:bluefin").total == 0

    # A refused save (422) is rolled back: nothing is queued and the index keeps the saved story.
    bad = post_form(advocate_client, "/me/profile", profile_form(story="x" * 5001 + " platypusword"))
    assert bad.status_code == 422
    assert pending_rows() == []
    assert find("platypusword").total == 0 and find("wombatsystems").total == 1


def test_activity_preferences_change_the_activity_facet(advocate_client, advocate, staff_client):
    post_form(advocate_client, "/me/profile", profile_form(story="prefs story"))
    speaking, review = atype("speaking"), atype("review")
    assert indexed(advocate.id)["activity"] == ""

    resp = post_form(
        advocate_client,
        "/me/preferences/activities",
        {f"opt_{speaking.id}": "y", f"opt_{review.id}": "y"},
        page="/me/preferences",
    )
    assert resp.status_code == 302
    assert indexed(advocate.id)["activity"] == "review|speaking"
    assert find("prefs", activity="speaking").total == 1
    assert {v.value: v.count for v in find("prefs").facets["activity"]} == {"speaking": 1, "review": 1}
    assert "Willing to do" in staff_search(staff_client, "prefs")

    resp = post_form(advocate_client, "/me/preferences/activities", {f"opt_{review.id}": "y"}, page="/me/preferences")
    assert resp.status_code == 302
    assert indexed(advocate.id)["activity"] == "review"
    assert find("prefs", activity="speaking").total == 0 and find("prefs", activity="review").total == 1


def test_pause_blackout_and_own_limits_change_availability(advocate_client, advocate, staff_client):
    post_form(advocate_client, "/me/profile", profile_form(story="availability story"))
    assert indexed(advocate.id)["fatigue"] == "available"
    today = date.today()

    paused = post_form(
        advocate_client,
        "/me/availability",
        {"paused_until": (today + timedelta(days=9)).isoformat(), "timezone": "UTC"},
    )
    assert paused.status_code == 302
    assert indexed(advocate.id)["fatigue"] == "unavailable"
    assert page_hits(staff_search(staff_client, "availability")) == []
    assert page_hits(staff_search(staff_client, "availability", include_unavailable="1")) == ["Ada Advocate"]

    post_form(advocate_client, "/me/availability", {"timezone": "UTC"})  # pause lifted
    assert indexed(advocate.id)["fatigue"] == "available"
    assert page_hits(staff_search(staff_client, "availability")) == ["Ada Advocate"]

    add = post_form(
        advocate_client,
        "/me/availability/blackouts",
        {"starts_on": today.isoformat(), "ends_on": (today + timedelta(days=2)).isoformat()},
        page="/me/availability",
    )
    assert add.status_code == 302
    assert indexed(advocate.id)["fatigue"] == "unavailable"
    assert find("availability").total == 0 and find("availability", include_unavailable=True).total == 1
    blackout = db.session.query(Blackout).filter_by(user_id=advocate.id).one()
    post_form(advocate_client, f"/me/availability/blackouts/{blackout.id}/delete", {}, page="/me/availability")
    assert indexed(advocate.id)["fatigue"] == "available" and find("availability").total == 1

    post_form(advocate_client, "/me/availability", {"max_asks_per_month": "1", "timezone": "UTC"})
    assert indexed(advocate.id)["fatigue"] == "near_limit"  # 0 of 1 used: one ask left
    assert find("availability", fatigue="near_limit").total == 1
    post_form(advocate_client, "/me/availability", {"max_asks_per_month": "0", "timezone": "UTC"})
    assert indexed(advocate.id)["fatigue"] == "at_limit"
    assert find("availability").total == 0
    assert names(find("availability", include_unavailable=True)) == ["Ada Advocate"]


def test_a_pause_that_ends_is_picked_up_by_the_daily_sync(app, runner, make_user):
    u = advocate_profile(make_user, "pauser@example.com", story="sabbatical story")
    profiles.set_limits(db.session, db.session.get(User, u.id), None, None, date.today() + timedelta(days=2), "UTC")
    db.session.commit()
    apply_pending(db.engine)
    assert find("sabbatical").total == 0
    with time_machine.travel(utcnow() + timedelta(days=4), tick=False):
        assert find("sabbatical").total == 0  # the index still says "paused"
        result = runner.invoke(args=["search", "sync"])
        assert result.exit_code == 0, result.output
        assert "1 advocate(s) changed fatigue status" in result.output
        assert names(find("sabbatical")) == ["Pauser"]
        assert indexed(u.id)["fatigue"] == "available"


# --- suspension and deletion ---------------------------------------------------------------------------------------


def test_suspension_removes_the_document(app, runner, make_user, staff_client):
    u = advocate_profile(make_user, "suspendme@example.com", story="suspension candidate")
    assert page_hits(staff_search(staff_client, "suspension")) == ["Suspendme"]
    result = runner.invoke(args=["users", "suspend", "suspendme@example.com", "--reason", "left the company"])
    assert result.exit_code == 0, result.output
    assert indexed(u.id) is None
    assert find("suspension", include_unavailable=True).total == 0
    assert page_hits(staff_search(staff_client, "suspension", include_unavailable="1")) == []
    assert runner.invoke(args=["search", "check"]).exit_code == 0


def test_account_deletion_removes_the_document(advocate_client, advocate, staff_client, runner):
    post_form(advocate_client, "/me/profile", profile_form(story="soon gone narwhalcorp"))
    assert page_hits(staff_search(staff_client, "narwhalcorp")) == ["Ada Advocate"]
    resp = post_form(advocate_client, "/me/delete", {"password": TEST_PASSWORD, "confirm": "y"})
    assert resp.status_code == 302 and reload(User, advocate.id).status == Status.DELETED
    assert indexed(advocate.id) is None
    assert find("narwhalcorp", include_unavailable=True).total == 0
    assert find("deleted", include_unavailable=True).total == 0
    assert runner.invoke(args=["search", "check"]).exit_code == 0


# --- participation ---------------------------------------------------------------------------------------------------


def _open_opportunity(title: str, key: str = "speaking") -> int:
    o = Opportunity(
        activity_type=atype(key), title=title, status=OpportunityStatus.OPEN, seats_taken=0, opened_at=utcnow()
    )
    db.session.add(o)
    db.session.commit()
    apply_pending(db.engine)
    return o.id


def test_participation_approval_changes_fatigue_and_engagement(app, make_user, admin, admin_client):
    fatigue.set_policy(db.session, {"max_engagements_90d": 2}, admin.id)
    db.session.commit()
    u = advocate_profile(make_user, "busy@example.com", story="engagement story")
    other = advocate_profile(make_user, "quiet@example.com", story="engagement story")
    profiles.set_activity_preferences(db.session, db.session.get(User, u.id), {atype("speaking").id: (True, "")})
    db.session.commit()
    apply_pending(db.engine)
    first, second = _open_opportunity("First keynote"), _open_opportunity("Second keynote")
    before = indexed(u.id)
    assert before["engaged_day"] == "0" and before["fatigue"] == "available"

    c = app.test_client()
    login(c, u.email)
    assert post_form(c, f"/opportunities/{first}/request", {}, page=f"/opportunities/{first}").status_code == 302
    assert indexed(u.id)["engaged_day"] == "0"  # asked, not engaged yet
    p1 = db.session.query(Participation).filter_by(user_id=u.id, opportunity_id=first).one()

    resp = post_form(admin_client, f"/admin/participations/{p1.id}/approve", {}, page=f"/admin/opportunities/{first}")
    assert resp.status_code == 302
    assert reload(Participation, p1.id).status == ParticipationStatus.APPROVED
    after = indexed(u.id)
    assert after["engaged_day"] == str(today_n()) and after["fatigue"] == "near_limit"
    assert names(find("engagement", sort="engaged")) == ["Quiet", "Busy"]  # never engaged first
    assert find("engagement", fatigue="near_limit").total == 1

    post_form(c, f"/opportunities/{second}/request", {}, page=f"/opportunities/{second}")
    p2 = db.session.query(Participation).filter_by(user_id=u.id, opportunity_id=second).one()
    post_form(admin_client, f"/admin/participations/{p2.id}/approve", {}, page=f"/admin/opportunities/{second}")
    assert indexed(u.id)["fatigue"] == "at_limit"
    assert names(find("engagement")) == ["Quiet"]  # at the program's limit: hidden by default
    assert sorted(names(find("engagement", include_unavailable=True))) == ["Busy", "Quiet"]

    post_form(admin_client, f"/admin/participations/{p2.id}/decline", {}, page=f"/admin/opportunities/{second}")
    assert indexed(u.id)["fatigue"] == "near_limit"
    assert sorted(names(find("engagement"))) == ["Busy", "Quiet"]
    assert indexed(other.id)["engaged_day"] == "0"


def test_an_ask_counts_against_the_advocates_own_monthly_limit(app, make_user):
    u = advocate_profile(make_user, "asked@example.com", story="monthly limit story")
    user = db.session.get(User, u.id)
    profiles.set_activity_preferences(db.session, user, {atype("review").id: (True, "")})
    profiles.set_limits(db.session, user, 1, None, None, "UTC")
    db.session.commit()
    apply_pending(db.engine)
    assert indexed(u.id)["fatigue"] == "near_limit"
    opp = _open_opportunity("Review us on G2", key="review")
    c = app.test_client()
    login(c, u.email)
    assert post_form(c, f"/opportunities/{opp}/request", {}, page=f"/opportunities/{opp}").status_code == 302
    assert indexed(u.id)["fatigue"] == "at_limit"
    assert find("monthly").total == 0 and find("monthly", include_unavailable=True).total == 1


# --- opportunities ----------------------------------------------------------------------------------------------------


def _opportunity_form(**over) -> dict:
    data = {
        "activity_type_id": str(atype("speaking").id),
        "title": "Keynote at Zanzibar summit",
        "description": "Tell the story of your rollout.",
        "selection_mode": "selection",
        "is_virtual": "y",
    }
    data.update(over)
    return data


def _set_status(admin_client, oid: int, status: str):
    resp = post_form(
        admin_client, f"/admin/opportunities/{oid}/status", {"status": status}, page=f"/admin/opportunities/{oid}"
    )
    assert resp.status_code == 302
    assert reload(Opportunity, oid).status.value == status


def test_opportunity_create_open_edit_close_archive_update_the_index(app, make_user, admin_client, runner):
    u = advocate_profile(make_user, "reader@example.com", story="reader")
    profiles.set_activity_preferences(db.session, db.session.get(User, u.id), {atype("speaking").id: (True, "")})
    db.session.commit()
    reader = app.test_client()
    login(reader, u.email)

    def advocate_sees(q):
        return "Zanzibar" in reader.get("/search/opportunities", query_string={"q": q}).get_data(as_text=True)

    assert post_form(admin_client, "/admin/opportunities/new", _opportunity_form()).status_code == 302
    oid = db.session.query(Opportunity).one().id
    assert indexed_opportunity_status(oid) is None  # a draft is not searchable
    assert querying.search_opportunity_ids("zanzibar", None)[0] == []

    _set_status(admin_client, oid, "open")
    assert indexed_opportunity_status(oid) == "open"
    assert querying.search_opportunity_ids("zanzibar", None)[0] == [oid]
    assert advocate_sees("zanzibar")

    edit = post_form(
        admin_client,
        f"/admin/opportunities/{oid}/edit",
        _opportunity_form(title="Keynote at Zanzibar summit", description="Now about kilimanjaro."),
    )
    assert edit.status_code == 302
    assert querying.search_opportunity_ids("kilimanjaro", None)[0] == [oid]
    assert querying.search_opportunity_ids("rollout", None)[0] == []
    assert advocate_sees("kilimanjaro") and not advocate_sees("rollout")

    _set_status(admin_client, oid, "closed")
    assert indexed_opportunity_status(oid) == "closed"  # still indexed ...
    assert not advocate_sees("zanzibar")  # ... but advocates only see what they can still answer
    _set_status(admin_client, oid, "open")
    assert indexed_opportunity_status(oid) == "open" and advocate_sees("zanzibar")
    _set_status(admin_client, oid, "closed")
    _set_status(admin_client, oid, "archived")
    assert indexed_opportunity_status(oid) is None
    assert querying.search_opportunity_ids("zanzibar", None)[0] == []
    assert pending_rows() == []
    assert runner.invoke(args=["search", "check"]).exit_code == 0


def test_a_duplicated_draft_stays_out_until_opened(app, admin_client):
    post_form(admin_client, "/admin/opportunities/new", _opportunity_form(title="Original okapi talk"))
    oid = db.session.query(Opportunity).one().id
    _set_status(admin_client, oid, "open")
    post_form(admin_client, f"/admin/opportunities/{oid}/duplicate", {}, page=f"/admin/opportunities/{oid}")
    copy = db.session.query(Opportunity).filter(Opportunity.id != oid).one()
    assert indexed_opportunity_status(copy.id) is None
    assert querying.search_opportunity_ids("okapi", None)[0] == [oid]
    _set_status(admin_client, copy.id, "open")
    assert sorted(querying.search_opportunity_ids("okapi", None)[0]) == sorted([oid, copy.id])


def test_profile_rows_written_by_a_service_outside_a_request_are_applied_at_context_end(app, make_user):
    """Outside a request (a job or a command) the change is applied when its app context ends."""
    u = make_user(email="job@example.com", name="Job Person")
    db.session.rollback()
    with app.app_context():  # what a CLI command or a job gets
        user = db.session.get(User, u.id)
        profiles.update_profile(
            db.session,
            user,
            profiles.ProfileInput(
                name=user.name, job_title="CTO", company="Acme", story="written by a background jacquard job"
            ),
        )
        db.session.commit()
    assert names(find("jacquard")) == ["Job Person"]
    assert db.session.get(AdvocateProfile, u.id) is not None


def test_an_advocate_without_a_profile_is_indexed_as_the_rules_say(app, runner, make_user):
    """The index and portal.services.fatigue agree, so the daily sync does not requeue them forever."""
    u = make_user(email="noprofile@example.com", name="Nemo Profile")
    apply_pending(db.engine)
    assert indexed(u.id)["fatigue"] == fatigue.status(db.session, u.id).key == "available"
    for _ in range(2):
        result = runner.invoke(args=["search", "sync"])
        assert result.exit_code == 0, result.output
        assert "changed fatigue status" not in result.output
    assert find("nemo", fatigue="available").total == 1


def test_the_indexed_fatigue_is_the_fatigue_services_own(app, runner, make_user, admin):
    """Engagements count on the day they happen: two approved calls 100 and 200 days out leave the
    advocate available today, in the index exactly as on every other page (the index used to count
    approval times, so it said "at limit" while fatigue.statuses said "available", and every daily
    sync re-queued the advocate)."""
    fatigue.set_policy(db.session, {"max_engagements_90d": 2}, admin.id)
    db.session.commit()
    u = advocate_profile(make_user, "planned@example.com", story="planned calls story")
    for days in (100, 200):
        o = Opportunity(
            activity_type=atype("reference_call"),
            title=f"Call in {days} days",
            status=OpportunityStatus.OPEN,
            seats_taken=1,
            opened_at=utcnow(),
            event_date=date.today() + timedelta(days=days),
        )
        db.session.add(o)
        db.session.flush()
        db.session.add(
            Participation(
                user_id=u.id,
                opportunity_id=o.id,
                status=ParticipationStatus.APPROVED,
                requested_at=utcnow(),
                engaged_at=utcnow(),
            )
        )
    db.session.commit()
    apply_pending(db.engine)
    assert fatigue.status(db.session, u.id).key == "available"
    assert indexed(u.id)["fatigue"] == "available"
    result = runner.invoke(args=["search", "sync", "--refresh-fatigue"])
    assert result.exit_code == 0, result.output
    assert "changed fatigue status" not in result.output  # nothing to correct: the index already agrees
