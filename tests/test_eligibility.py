"""Who sees what: the advocate's feed by targeting (industry, product, region, company size; an
empty dimension means everyone), opted-in activity types, seats, deadlines, pause and blackouts,
best fits first with the reason, the type filter, and a direct request for an ineligible
opportunity refused with a message."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from portal.extensions import db
from portal.models import ActivityPreference, AdvocateProfile, Blackout, OpportunityStatus, Participation, SelectionMode
from portal.services import fatigue, opportunities
from tests.support import atype, client_for, make_advocate, make_opp, participation_of, post_form, reload, text_of, user

# The advocate used on each dimension: healthcare, Analytics Cloud + Observability, Japan (Asia Pacific), 1-49.
PROFILE = dict(
    industry="Healthcare", products=("Analytics Cloud", "Observability"), country="JP", size="1-49 employees"
)
DIMENSIONS = {
    # dimension: (keyword for make_opp, matching value, non-matching value, word in the reason)
    "industry": ("industries", "Healthcare", "Insurance", "industry"),
    "product": ("products", "Observability", "Billing Engine", "product"),
    "region": ("regions", "Asia Pacific", "Europe", "region"),
    "size": ("size_bands", "1-49 employees", "5,000+ employees", "company size"),
}


def feed(user_id, **kw):
    return opportunities.feed(db.session, user(user_id), **kw)


def titles(user_id, **kw):
    return [m.opportunity.title for m in feed(user_id, **kw)]


@pytest.mark.parametrize("dimension", list(DIMENSIONS))
def test_each_targeting_dimension(app, make_user, dimension):
    kw, match, other, word = DIMENSIONS[dimension]
    adv = make_advocate(make_user, "target@example.com", **PROFILE)
    make_opp(title="For everyone")
    make_opp(title="For me", **{kw: (match,)})
    make_opp(title="For others", **{kw: (other,)})
    make_opp(title="Either", **{kw: (other, match)})  # any listed value in a dimension is enough
    got = {m.opportunity.title: m.why for m in feed(adv)}
    assert set(got) == {"For everyone", "For me", "Either"}
    assert got["For everyone"] == "Open to every advocate"
    assert got["For me"] == got["Either"] == f"Matches your {word}"

    c = client_for(app, adv)
    page = text_of(c.get("/opportunities"))
    assert "For me" in page and f"Matches your {word}" in page and "For others" not in page
    others_id = db.session.query(opportunities.Opportunity).filter_by(title="For others").one().id
    detail = text_of(c.get(f"/opportunities/{others_id}"))
    assert "This opportunity is for advocates with a different profile." in detail and "I'm in" not in detail


@pytest.mark.parametrize("dimension", list(DIMENSIONS))
def test_a_profile_missing_the_dimension_sees_only_untargeted(app, make_user, dimension):
    kw, match, _, _ = DIMENSIONS[dimension]
    blank = make_advocate(make_user, "blank@example.com", country=None)
    make_opp(title="For everyone")
    make_opp(title="Targeted", **{kw: (match,)})
    assert titles(blank) == ["For everyone"]


def test_all_targeted_dimensions_must_match_and_the_reason_names_them(app, make_user):
    adv = make_advocate(make_user, "all@example.com", **PROFILE)
    make_opp(
        title="Four of four",
        industries=("Healthcare",),
        products=("Observability",),
        regions=("Asia Pacific",),
        size_bands=("1-49 employees",),
    )
    make_opp(
        title="Three of four",
        industries=("Healthcare",),
        products=("Observability",),
        regions=("Asia Pacific",),
        size_bands=("5,000+ employees",),
    )
    [m] = feed(adv)
    assert m.opportunity.title == "Four of four"
    assert m.why == "Matches your industry, product, region and company size"


def test_only_activity_types_the_advocate_opted_in_to(app, make_user):
    adv = make_advocate(make_user, "picky@example.com", types=("speaking",))
    make_opp("speaking", title="Talk")
    rid = make_opp("review", title="Review")
    make_opp("webinar", title="Webinar")
    assert titles(adv) == ["Talk"]
    # An explicit opt-out row counts as not opted in; opting in later makes it appear.
    db.session.add(ActivityPreference(user_id=adv, activity_type_id=atype("review").id, opted_in=False))
    db.session.commit()
    assert titles(adv) == ["Talk"]
    c = client_for(app, adv)
    assert "You have not opted in to peer review activities." in text_of(c.get(f"/opportunities/{rid}"))
    db.session.query(ActivityPreference).filter_by(user_id=adv, activity_type_id=atype("review").id).update(
        {"opted_in": True}
    )
    db.session.commit()
    assert set(titles(adv)) == {"Talk", "Review"}


def test_seats_left(app, make_user):
    adv = make_advocate(make_user, "seats@example.com")
    make_opp(title="Unlimited")
    make_opp(title="Two left", capacity=3, seats_taken=1)
    full = make_opp(title="Full", capacity=2, seats_taken=2)
    assert set(titles(adv)) == {"Unlimited", "Two left"}
    c = client_for(app, adv)
    page = text_of(c.get("/opportunities"))
    assert "2 places left" in page and "Full" not in page
    assert "All seats are taken." in text_of(c.get(f"/opportunities/{full}"))


def test_past_deadline_is_hidden(app, make_user):
    adv = make_advocate(make_user, "late@example.com")
    with time_machine.travel(datetime(2030, 6, 10, 9, tzinfo=UTC), tick=False):
        make_opp(title="Closes today", deadline=date(2030, 6, 10))
        make_opp(title="Closed yesterday", deadline=date(2030, 6, 9))
        make_opp(title="No deadline")
        assert set(titles(adv)) == {"Closes today", "No deadline"}
    with time_machine.travel(datetime(2030, 6, 11, 0, 1, tzinfo=UTC), tick=False):
        assert titles(adv) == ["No deadline"]
        late = db.session.query(opportunities.Opportunity).filter_by(title="Closes today").one().id
        c = client_for(app, adv)
        assert "The deadline has passed." in text_of(c.get(f"/opportunities/{late}"))


def test_drafts_closed_and_archived_are_hidden(app, make_user):
    adv = make_advocate(make_user, "status@example.com")
    make_opp(title="Open")
    for status in (OpportunityStatus.DRAFT, OpportunityStatus.CLOSED, OpportunityStatus.ARCHIVED):
        make_opp(title=status.value, status=status)
    assert titles(adv) == ["Open"]


def test_paused_advocates_see_nothing_until_the_pause_ends(app, make_user):
    today = date.today()
    adv = make_advocate(make_user, "paused@example.com", paused_until=today)
    make_opp(title="Talk")
    assert titles(adv) == []
    c = client_for(app, adv)
    assert "Nothing open for you right now" in text_of(c.get("/opportunities"))
    db.session.query(AdvocateProfile).filter_by(user_id=adv).update({"paused_until": today - timedelta(days=1)})
    db.session.commit()
    assert titles(adv) == ["Talk"]


def test_blackout_on_the_event_date_hides_it(app, make_user):
    today = date.today()
    adv = make_advocate(
        make_user, "away@example.com", blackouts=[(today + timedelta(days=20), today + timedelta(days=30))]
    )
    make_opp(title="Starts of blackout", event_date=today + timedelta(days=20))
    make_opp(title="End of blackout", event_date=today + timedelta(days=30))
    make_opp(title="Day after", event_date=today + timedelta(days=31))
    make_opp(title="Before", event_date=today + timedelta(days=19))
    inside = make_opp(title="Inside", event_date=today + timedelta(days=25))
    make_opp(title="No date")  # engages today, which is outside the blackout
    assert set(titles(adv)) == {"Day after", "Before", "No date"}
    c = client_for(app, adv)
    span = f"from {fatigue.fmt_day(today + timedelta(days=20))} to {fatigue.fmt_day(today + timedelta(days=30))}"
    assert f"It falls in your blackout {span}." in text_of(c.get(f"/opportunities/{inside}"))
    # A blackout covering today hides what has no date of its own, not later events.
    db.session.add(Blackout(user_id=adv, starts_on=today - timedelta(days=1), ends_on=today + timedelta(days=1)))
    db.session.commit()
    assert set(titles(adv)) == {"Day after", "Before"}


def test_best_fits_first_then_by_deadline(app, make_user):
    adv = make_advocate(make_user, "order@example.com", **PROFILE)
    soon = date.today() + timedelta(days=5)
    make_opp(title="Everyone, soon", deadline=soon)
    make_opp(title="Everyone, later", deadline=soon + timedelta(days=10))
    make_opp(
        title="Two matches", industries=("Healthcare",), regions=("Asia Pacific",), deadline=soon + timedelta(days=20)
    )
    make_opp(title="One match", products=("Analytics Cloud",))
    make_opp(
        title="Three matches", industries=("Healthcare",), regions=("Asia Pacific",), size_bands=("1-49 employees",)
    )
    got = [(m.opportunity.title, m.why) for m in feed(adv)]
    assert got == [
        ("Three matches", "Matches your industry, region and company size"),
        ("Two matches", "Matches your industry and region"),
        ("One match", "Matches your product"),
        ("Everyone, soon", "Open to every advocate"),
        ("Everyone, later", "Open to every advocate"),
    ]
    c = client_for(app, adv)
    page = text_of(c.get("/opportunities"))
    assert (
        page.index("Three matches") < page.index("Two matches") < page.index("One match") < page.index("Everyone, soon")
    )
    dashboard = text_of(c.get("/dashboard"))  # the top three are recommended on the dashboard
    assert "Three matches" in dashboard and "Matches your industry, region and company size" in dashboard
    assert "Everyone, later" not in dashboard


def test_filter_by_type(app, make_user):
    adv = make_advocate(make_user, "filter@example.com")
    make_opp("speaking", title="A talk")
    make_opp("review", title="A review")
    assert titles(adv, activity_type_id=atype("review").id) == ["A review"]
    c = client_for(app, adv)
    page = text_of(c.get(f"/opportunities?type={atype('review').id}"))
    assert "A review" in page and "A talk" not in page
    body = c.get(f"/opportunities?type={atype('review').id}").get_data(as_text=True)
    assert f'<option value="{atype("review").id}" selected>' in body
    empty = text_of(c.get(f"/opportunities?type={atype('webinar').id}"))
    assert "Nothing open for you right now of this type" in empty
    for junk in ("abc", "999999", "-1"):  # ignored, all types shown, never a 500
        resp = c.get(f"/opportunities?type={junk}")
        assert resp.status_code == 200 and "A talk" in text_of(resp) and "A review" in text_of(resp)


def test_already_answered_opportunities_leave_the_feed(app, make_user):
    adv = make_advocate(make_user, "answered@example.com")
    oid = make_opp(title="Done that")
    make_opp(title="Still new")
    c = client_for(app, adv)
    post_form(c, f"/opportunities/{oid}/request", {}, page=f"/opportunities/{oid}")
    assert titles(adv) == ["Still new"]


def _ineligible_cases(adv_blackout_start):
    today = date.today()
    return {
        "not opted in": (dict(key="beta"), "You have not opted in to beta activities."),
        "other profile": (
            dict(industries=("Insurance",)),
            "This opportunity is for advocates with a different profile.",
        ),
        "full": (dict(capacity=1, seats_taken=1, mode=SelectionMode.FIRST_COME), "All seats are taken."),
        "deadline passed": (dict(deadline=today - timedelta(days=1)), "The deadline has passed."),
        "closed": (dict(status=OpportunityStatus.CLOSED), "This opportunity is not open."),
        "blackout": (
            dict(event_date=adv_blackout_start),
            f"It falls in your blackout from {fatigue.fmt_day(adv_blackout_start)} to "
            f"{fatigue.fmt_day(adv_blackout_start + timedelta(days=3))}.",
        ),
    }


@pytest.mark.parametrize("case", ["not opted in", "other profile", "full", "deadline passed", "closed", "blackout"])
def test_a_direct_request_for_an_ineligible_opportunity_is_refused(app, make_user, mailbox, case):
    start = date.today() + timedelta(days=10)
    adv = make_advocate(
        make_user, "direct@example.com", industry="Healthcare", blackouts=[(start, start + timedelta(days=3))]
    )
    fields, message = _ineligible_cases(start)[case]
    oid = make_opp(fields.pop("key", "speaking"), title="Not for you", **fields)
    c = client_for(app, adv)
    token_page = "/opportunities"  # the form is not offered on the detail page: take a token elsewhere
    resp = post_form(c, f"/opportunities/{oid}/request", {"message": "let me in"}, page=token_page)
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/opportunities/{oid}")
    assert message in text_of(c.get(resp.headers["Location"]))
    assert participation_of(adv, oid) is None
    assert reload(opportunities.Opportunity, oid).seats_taken == fields.get("seats_taken", 0)
    assert mailbox.to("direct@example.com") == []


def test_a_paused_advocate_cannot_request_directly(app, make_user):
    adv = make_advocate(make_user, "pausedpost@example.com", paused_until=date.today() + timedelta(days=7))
    oid = make_opp(title="Talk")
    c = client_for(app, adv)
    resp = post_form(c, f"/opportunities/{oid}/request", {}, page="/opportunities", follow_redirects=True)
    assert f"You have paused all asks until {fatigue.fmt_day(date.today() + timedelta(days=7))}." in text_of(resp)
    assert participation_of(adv, oid) is None


def test_requests_for_drafts_and_unknown_opportunities(app, make_user, staff_client):
    """What an advocate cannot see answers like an unknown id: 404, not "This opportunity is not open"
    (issue 11: a 302 for a draft or an archived id told them it exists)."""
    adv = make_advocate(make_user, "ghost@example.com")
    draft = make_opp(title="Secret draft", status=OpportunityStatus.DRAFT)
    archived = make_opp(title="Long gone", status=OpportunityStatus.ARCHIVED)
    c = client_for(app, adv)
    assert post_form(c, "/opportunities/999999/request", {}, page="/opportunities").status_code == 404
    for oid in (draft, archived):
        assert c.get(f"/opportunities/{oid}").status_code == 404
        resp = post_form(c, f"/opportunities/{oid}/request", {"message": "let me in"}, page="/opportunities")
        assert resp.status_code == 404 and "not open" not in text_of(resp)
        assert participation_of(adv, oid) is None
    # staff members are not advocates: the advocate pages are closed to them
    assert staff_client.get("/opportunities").status_code == 403
    assert post_form(staff_client, f"/opportunities/{draft}/request", {}, page="/staff/").status_code == 403
    assert db.session.query(Participation).count() == 0


def test_an_archived_opportunity_the_advocate_answered_stays_visible_and_says_why(app, make_user):
    """Their commitments link to it, so its page opens; asking again is refused with the reason."""
    from portal.services import participation

    adv = make_advocate(make_user, "answered@example.com")
    oid = make_opp(title="Past panel")
    pid = participation.request(db.session, user(adv), oid).id
    db.session.commit()
    participation.withdraw(db.session, user(adv), pid)
    db.session.query(opportunities.Opportunity).filter_by(id=oid).update({"status": OpportunityStatus.ARCHIVED})
    db.session.commit()
    c = client_for(app, adv)
    assert c.get(f"/opportunities/{oid}").status_code == 200
    resp = post_form(c, f"/opportunities/{oid}/request", {}, page="/opportunities")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/opportunities/{oid}")
    assert "This opportunity is not open." in text_of(c.get(resp.headers["Location"]))


# --- the advocate's own limits and the program's, told before the click -------------------------------------------


def test_an_advocate_at_their_own_limit_is_told_before_the_click(app, make_user):
    from portal.services import participation

    adv = make_advocate(make_user, "full@example.com", name="Fay Full", max_asks_per_month=1)
    asked = make_opp(title="Already asked", capacity=5)
    participation.request(db.session, user(adv), asked)
    db.session.commit()
    talk = make_opp(title="Keynote", capacity=5)
    make_opp("review", title="G2 review")
    assert titles(adv) == []  # nothing the advocate could say "I'm in" to now
    c = client_for(app, adv)
    said = "You asked for at most one ask a month and have one this month."
    page = text_of(c.get("/opportunities"))
    assert f"Not now: {said}" in page and page.count(said) == 1  # said once, not on every card
    assert "Keynote" in page and "G2 review" in page and "Fay Full" not in page
    body = c.get(f"/opportunities/{talk}").get_data(as_text=True)
    assert said in text_of(body)
    assert f"/opportunities/{talk}/request" not in body and "I&#39;m in</button>" not in body
    assert "Keynote" not in text_of(c.get("/dashboard"))  # not recommended either
    # next month the limit allows it again
    with time_machine.travel(datetime.now(UTC) + timedelta(days=32), tick=False):
        assert set(titles(adv)) == {"Keynote", "G2 review"}


def test_a_rule_for_one_opportunity_shows_on_its_card_only(app, make_user):
    from portal.models import ParticipationStatus, utcnow

    adv = make_advocate(make_user, "caller@example.com", name="Rey Ref")
    past = make_opp("reference_call", title="Last week's call")
    then = utcnow() - timedelta(days=7)
    db.session.add(
        Participation(
            opportunity_id=past, user_id=adv, status=ParticipationStatus.COMPLETED, requested_at=then, engaged_at=then
        )
    )
    db.session.commit()
    call = make_opp("reference_call", title="Bank call")
    make_opp("speaking", title="A talk")
    assert titles(adv) == ["A talk"]
    c = client_for(app, adv)
    body = c.get("/opportunities").get_data(as_text=True)
    cards = {
        t: text_of(card)
        for card in re.findall(r'<article class="card opp-card">.*?</article>', body, flags=re.S)
        for t in ("Bank call", "A talk")
        if t in card
    }
    last = then.strftime("%d %b %Y").lstrip("0")
    assert cards["Bank call"].count("Not now") == 1
    assert (
        f"The program keeps at least 30 days between reference calls, and your last one was on {last}."
        in cards["Bank call"]
    )
    assert "Not now" not in cards["A talk"]
    assert body.index("A talk") < body.index("Bank call")  # what can be taken now first
    assert "Not now:" not in text_of(body)  # no banner: the rule is about one opportunity
    detail = c.get(f"/opportunities/{call}").get_data(as_text=True)
    assert f"your last one was on {last}" in detail and f"/opportunities/{call}/request" not in detail


def test_the_feed_reads_the_fatigue_facts_once_per_advocate(app, make_user):
    """The number of queries does not grow with the number of open opportunities."""
    from sqlalchemy import event

    adv = make_advocate(
        make_user,
        "count@example.com",
        max_asks_per_month=5,
        max_asks_per_quarter=9,
        blackouts=[(date.today() + timedelta(days=50), date.today() + timedelta(days=51))],
    )
    for i in range(2):
        make_opp("reference_call", title=f"Call {i}", event_date=date.today() + timedelta(days=i + 3))

    def queries():
        seen = []

        def count(*_args):
            seen.append(1)

        u = user(adv)
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert len(opportunities.feed(db.session, u)) > 0
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(seen)

    few = queries()
    for i in range(10):
        make_opp(
            "reference_call" if i % 2 else "speaking",
            title=f"More {i}",
            event_date=date.today() + timedelta(days=i + 10),
        )
    assert queries() == few
