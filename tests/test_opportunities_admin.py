"""Admin editing of opportunities: create, edit, duplicate, open and close; invalid input answers
422 with a message (never 500); the external link is http(s) only; user text is escaped on every
page; only admins reach the admin pages.

(tests/test_opportunities.py already existed in the repository, so these tests live here.)
"""

import re
from datetime import date, timedelta

import pytest

from portal.extensions import db
from portal.models import (
    AuditEvent,
    Industry,
    Opportunity,
    OpportunityStatus,
    Participation,
    ParticipationStatus,
    Product,
    Region,
    SelectionMode,
    SizeBand,
)
from tests.support import (
    admin_form,
    atype,
    client_for,
    item_id,
    make_advocate,
    make_opp,
    participation_of,
    post_form,
    reload,
    text_of,
)


def _only_opportunity() -> Opportunity:
    db.session.rollback()
    return db.session.query(Opportunity).one()


def _audit_actions() -> list[str]:
    db.session.rollback()
    return [e.action for e in db.session.query(AuditEvent).order_by(AuditEvent.id)]


# --- create -----------------------------------------------------------------------------------------------------


def test_create_saves_a_draft_with_targeting_and_is_audited(app, admin_client, make_user):
    t = atype("webinar")
    health, europe = item_id(Industry, "Healthcare"), item_id(Region, "Europe")
    suite, big = item_id(Product, "Security Suite"), item_id(SizeBand, "5,000+ employees")
    event = date.today() + timedelta(days=40)
    form = admin_form(
        t.id,
        title="Healthcare security webinar",
        capacity="5",
        points="450",
        selection_mode="first_come",
        event_date=event.isoformat(),
        deadline=(event - timedelta(days=10)).isoformat(),
        is_virtual="",
        location="Berlin",
        industry_ids=[str(health)],
        product_ids=[str(suite)],
        region_ids=[str(europe)],
        size_band_ids=[str(big)],
    )
    resp = post_form(admin_client, "/admin/opportunities/new", form)
    assert resp.status_code == 302
    o = _only_opportunity()
    assert resp.headers["Location"].endswith(f"/admin/opportunities/{o.id}")
    assert (o.title, o.capacity, o.points, o.effective_points) == ("Healthcare security webinar", 5, 450, 450)
    assert o.status == OpportunityStatus.DRAFT and o.opened_at is None and o.seats_taken == 0
    assert o.selection_mode == SelectionMode.FIRST_COME
    assert (o.event_date, o.deadline, o.is_virtual, o.location) == (event, event - timedelta(days=10), False, "Berlin")
    assert o.external_url == "https://example.com/summit"
    assert [i.id for i in o.industries] == [health] and [p.id for p in o.products] == [suite]
    assert [r.id for r in o.regions] == [europe] and [s.id for s in o.size_bands] == [big]
    assert "opportunity.create" in _audit_actions()
    # A draft is not visible to advocates, even one it targets.
    adv = make_advocate(
        make_user,
        "draft.reader@example.com",
        industry="Healthcare",
        country="DE",
        products=("Security Suite",),
        size="5,000+ employees",
    )
    c = client_for(app, adv)
    assert "Healthcare security webinar" not in c.get("/opportunities").get_data(as_text=True)
    assert c.get(f"/opportunities/{o.id}").status_code == 404


def test_points_left_empty_use_the_activity_default(app, admin_client):
    t = atype("review")
    assert post_form(admin_client, "/admin/opportunities/new", admin_form(t.id, points="")).status_code == 302
    o = _only_opportunity()
    assert o.points is None and o.effective_points == t.default_points == 200


SPACES = "The external link cannot contain spaces or control characters (write a space as %20)."
USERINFO = "The external link cannot contain a user name or password."
HOST = "The external link needs a valid host name, like https://www.example.com/."

INVALID = [
    ({"title": ""}, "This field is required."),
    ({"title": "   "}, "This field is required."),
    ({"title": "x" * 161}, "Field cannot be longer than 160 characters."),
    ({"capacity": "0"}, "Number must be between 1 and 10000."),
    ({"capacity": "-3"}, "Number must be between 1 and 10000."),
    ({"capacity": "lots"}, "Not a valid integer value."),
    ({"capacity": "99999999999999999999999"}, "That number is too large."),
    ({"points": "-1"}, "Number must be between 0 and 100000."),
    ({"activity_type_id": "999999"}, "Not a valid choice."),
    ({"activity_type_id": "speaking"}, "This field is required."),
    ({"selection_mode": "lottery"}, "Not a valid choice."),
    ({"industry_ids": ["999999"]}, "not a valid choice"),
    ({"event_date": "2026-02-30"}, "Not a valid date value."),
    ({"description": "y" * 5001}, "Field cannot be longer than 5000 characters."),
    ({"event_date": "2030-05-01", "deadline": "2030-05-02"}, "The deadline cannot be after the event date."),
    ({"is_virtual": "", "location": "  "}, "Give a location, or mark the opportunity as virtual."),
    ({"term_start": "2030-05-02", "term_end": "2030-05-01"}, "The term cannot end before it starts."),
    ({"external_url": "javascript:alert(1)"}, "The external link must be an http:// or https:// address."),
    (
        {"external_url": "JavaScript://example.com/%0Aalert(1)"},
        "The external link must be an http:// or https:// address.",
    ),
    (
        {"external_url": "data:text/html,<script>alert(1)</script>"},
        "The external link must be an http:// or https:// address.",
    ),
    ({"external_url": "ftp://example.com/file"}, "The external link must be an http:// or https:// address."),
    ({"external_url": "//evil.example.com/x"}, "The external link must be an http:// or https:// address."),
    ({"external_url": "https://"}, "The external link must be an http:// or https:// address."),
    ({"external_url": "http://[::1"}, "The external link must be an http:// or https:// address."),
    ({"external_url": "https://example.com/" + "a" * 600}, "Field cannot be longer than 500 characters."),
    # whitespace, user names and passwords, host names that cannot exist
    ({"external_url": "https://ex ample.com/a b"}, SPACES),
    ({"external_url": "https://example.com/a b"}, SPACES),
    ({"external_url": "https://example.com/\tx"}, SPACES),
    ({"external_url": "https://example.com/\u200bx"}, SPACES),
    ({"external_url": "https://user:secret@example.com/"}, USERINFO),
    ({"external_url": "https://www.g2.com@evil.example.net/"}, USERINFO),
    ({"external_url": "https://-bad-.example.com/"}, HOST),
    ({"external_url": "https://exa_mple.com/"}, HOST),
    ({"external_url": "https://exa%20mple.com/"}, HOST),
    ({"external_url": "https://localhost/x"}, HOST),
    ({"external_url": "https://example./x"}, HOST),
    ({"external_url": "https://..example.com/"}, HOST),
    ({"external_url": "https://1.2.3.4.5/"}, HOST),
    ({"external_url": "https://example.com:99999/"}, HOST),
    ({"external_url": "https://example.com:port/"}, HOST),
    ({"external_url": "https://" + "a" * 64 + ".example.com/"}, HOST),
    # dates that are typos, not plans
    ({"event_date": "0001-01-01"}, "The event date must be within ten years of today"),
    ({"event_date": "9999-12-31"}, "The event date must be within ten years of today"),
    ({"deadline": "0001-01-01"}, "The deadline must be within ten years of today"),
    ({"deadline": "9999-12-31"}, "The deadline must be within ten years of today"),
    ({"term_start": "0001-01-01", "term_end": "2027-01-01"}, "The term start must be within ten years of today"),
    ({"term_start": "2027-01-01", "term_end": "9999-12-31"}, "The term end must be within ten years of today"),
]


@pytest.mark.parametrize("bad,message", INVALID, ids=[str(i) for i in range(len(INVALID))])
def test_invalid_create_is_422_with_the_message(app, admin_client, bad, message):
    resp = post_form(admin_client, "/admin/opportunities/new", admin_form(atype("speaking").id, **bad))
    assert resp.status_code == 422
    assert message.lower() in text_of(resp).lower()
    db.session.rollback()
    assert db.session.query(Opportunity).count() == 0


def test_an_advisory_board_needs_a_term(app, admin_client):
    board = atype("advisory_board")
    resp = post_form(admin_client, "/admin/opportunities/new", admin_form(board.id, title="CAB 2027"))
    assert resp.status_code == 422
    assert "An advisory board needs a term: a start and an end date." in text_of(resp)
    ok = post_form(
        admin_client,
        "/admin/opportunities/new",
        admin_form(board.id, title="CAB 2027", term_start="2027-01-01", term_end="2027-12-31"),
    )
    assert ok.status_code == 302
    assert (_only_opportunity().term_start, _only_opportunity().term_end) == (date(2027, 1, 1), date(2027, 12, 31))


@pytest.mark.parametrize(
    "url",
    [
        "https://www.g2.com/products/acme/reviews?utm_source=portal#write",
        "http://192.0.2.10:8080/form",
        "https://[2001:db8::1]/x",
        "https://bücher.example.org/review",
        "HTTPS://Events.Example.COM/Summit",
        "https://example.com./trailing-dot",
        "https://example.com/a%20b",
    ],
)
def test_valid_external_links_are_kept_as_typed(app, admin_client, url):
    resp = post_form(admin_client, "/admin/opportunities/new", admin_form(atype("speaking").id, external_url=url))
    assert resp.status_code == 302, text_of(resp)
    assert _only_opportunity().external_url == url


def test_dates_within_ten_years_and_an_old_saved_date_may_stay(app, admin_client):
    from portal.models import utcnow

    today = utcnow().date()
    t = atype("speaking")
    for days in (3652, -3652):
        ok = post_form(
            admin_client,
            "/admin/opportunities/new",
            admin_form(t.id, title=f"In {days} days", event_date=str(today + timedelta(days=days))),
        )
        assert ok.status_code == 302, text_of(ok)
    # a date saved before the rule (or by a data import) does not block editing other fields
    oid = make_opp("speaking", title="Legacy", event_date=date(1999, 5, 1), status=OpportunityStatus.DRAFT)
    resp = post_form(
        admin_client,
        f"/admin/opportunities/{oid}/edit",
        admin_form(t.id, title="Legacy, renamed", event_date="1999-05-01"),
    )
    assert resp.status_code == 302 and reload(Opportunity, oid).title == "Legacy, renamed"
    resp = post_form(
        admin_client, f"/admin/opportunities/{oid}/edit", admin_form(t.id, title="Legacy", event_date="1999-05-02")
    )
    assert resp.status_code == 422 and "The event date must be within ten years of today" in text_of(resp)
    assert reload(Opportunity, oid).event_date == date(1999, 5, 1)


# --- edit -----------------------------------------------------------------------------------------------------


def test_edit_shows_current_values_saves_valid_and_keeps_data_on_invalid(app, admin_client):
    oid = make_opp(
        "speaking",
        title="Keynote",
        capacity=4,
        status=OpportunityStatus.DRAFT,
        industries=("Healthcare",),
        external_url="https://example.com/old",
    )
    page = admin_client.get(f"/admin/opportunities/{oid}/edit")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'value="Keynote"' in body and 'value="https://example.com/old"' in body
    health = item_id(Industry, "Healthcare")
    checked = re.findall(
        r'<input checked id="industry_ids-\d+" name="industry_ids" type="checkbox" value="(\d+)">', body
    )
    assert checked == [str(health)]

    t = atype("speaking")
    resp = post_form(
        admin_client,
        f"/admin/opportunities/{oid}/edit",
        admin_form(t.id, title="Keynote at Summit", capacity="6", external_url="http://example.com/new"),
    )
    assert resp.status_code == 302
    o = reload(Opportunity, oid)
    assert (o.title, o.capacity, o.external_url) == ("Keynote at Summit", 6, "http://example.com/new")
    assert o.industries == []  # unticked: now open to every industry
    assert "opportunity.update" in _audit_actions()

    bad = post_form(
        admin_client,
        f"/admin/opportunities/{oid}/edit",
        admin_form(t.id, title="Hacked", external_url="javascript:alert(document.cookie)"),
    )
    assert bad.status_code == 422
    assert "The external link must be an http:// or https:// address." in text_of(bad)
    o = reload(Opportunity, oid)
    assert (o.title, o.external_url) == ("Keynote at Summit", "http://example.com/new")


def test_capacity_cannot_drop_below_seats_taken_and_archived_cannot_be_edited(app, admin_client):
    oid = make_opp("speaking", title="Busy", capacity=5, seats_taken=3)
    t = atype("speaking")
    resp = post_form(admin_client, f"/admin/opportunities/{oid}/edit", admin_form(t.id, title="Busy", capacity="2"))
    assert resp.status_code == 422
    assert "3 seats are already taken; capacity cannot be lower." in text_of(resp)
    assert reload(Opportunity, oid).capacity == 5
    archived = make_opp("speaking", title="Old one", status=OpportunityStatus.ARCHIVED)
    resp = post_form(admin_client, f"/admin/opportunities/{archived}/edit", admin_form(t.id, title="New life"))
    assert resp.status_code == 422
    assert "Archived opportunities cannot be edited; duplicate it instead." in text_of(resp)
    assert reload(Opportunity, archived).title == "Old one"


def test_unknown_opportunity_is_404_for_every_admin_action(app, admin_client):
    assert admin_client.get("/admin/opportunities/999999").status_code == 404
    assert admin_client.get("/admin/opportunities/999999/edit").status_code == 404
    oid = make_opp()
    page = f"/admin/opportunities/{oid}"
    assert post_form(admin_client, "/admin/opportunities/999999/duplicate", {}, page=page).status_code == 404
    assert (
        post_form(admin_client, "/admin/opportunities/999999/status", {"status": "closed"}, page=page).status_code
        == 404
    )
    assert post_form(admin_client, "/admin/participations/999999/approve", {}, page=page).status_code == 404


# --- duplicate ------------------------------------------------------------------------------------------------


def test_duplicate_makes_a_draft_copy_with_the_same_targeting(app, admin_client, make_user):
    adv = make_advocate(make_user, "dup@example.com")
    oid = make_opp(
        "webinar",
        title="Panel",
        capacity=3,
        points=321,
        regions=("Europe",),
        products=("Data Platform",),
        external_url="https://example.com/p",
        description="About data",
    )
    db.session.add(Participation(opportunity_id=oid, user_id=adv, status=ParticipationStatus.APPROVED, holds_seat=True))
    db.session.query(Opportunity).filter_by(id=oid).update({"seats_taken": 1})
    db.session.commit()
    resp = post_form(admin_client, f"/admin/opportunities/{oid}/duplicate", {}, page=f"/admin/opportunities/{oid}")
    assert resp.status_code == 302
    db.session.rollback()
    copy = db.session.query(Opportunity).filter(Opportunity.id != oid).one()
    assert resp.headers["Location"].endswith(f"/admin/opportunities/{copy.id}/edit")
    assert copy.title == "Copy of Panel" and copy.status == OpportunityStatus.DRAFT and copy.opened_at is None
    assert (copy.capacity, copy.points, copy.seats_taken, copy.external_url) == (3, 321, 0, "https://example.com/p")
    assert copy.description == "About data" and copy.activity_type.key == "webinar"
    assert [r.name for r in copy.regions] == ["Europe"] and [p.name for p in copy.products] == ["Data Platform"]
    assert db.session.query(Participation).filter_by(opportunity_id=copy.id).count() == 0
    assert reload(Opportunity, oid).seats_taken == 1  # the original is untouched
    assert "opportunity.duplicate" in _audit_actions()


# --- open / close -------------------------------------------------------------------------------------------------


def _set_status(client, oid, status, **kw):
    return post_form(
        client, f"/admin/opportunities/{oid}/status", {"status": status}, page=f"/admin/opportunities/{oid}", **kw
    )


def test_open_and_close_change_what_advocates_see(app, admin_client, make_user):
    adv = make_advocate(make_user, "reader@example.com")
    oid = make_opp("speaking", title="Roundtable", status=OpportunityStatus.DRAFT)
    c = client_for(app, adv)
    assert "Roundtable" not in c.get("/opportunities").get_data(as_text=True)

    resp = _set_status(admin_client, oid, "open", follow_redirects=True)
    assert "The opportunity is now open." in text_of(resp)
    o = reload(Opportunity, oid)
    assert o.status == OpportunityStatus.OPEN and o.opened_at is not None
    first_opened = o.opened_at
    assert "Roundtable" in c.get("/opportunities").get_data(as_text=True)

    resp = _set_status(admin_client, oid, "closed", follow_redirects=True)
    assert "The opportunity is now closed." in text_of(resp)
    assert reload(Opportunity, oid).status == OpportunityStatus.CLOSED
    assert "Roundtable" not in c.get("/opportunities").get_data(as_text=True)
    refused = post_form(c, f"/opportunities/{oid}/request", {}, page=f"/opportunities/{oid}", follow_redirects=True)
    assert "This opportunity is not open." in text_of(refused)
    assert participation_of(adv, oid) is None

    _set_status(admin_client, oid, "open")  # reopened: opened_at keeps the first opening
    o = reload(Opportunity, oid)
    assert o.status == OpportunityStatus.OPEN and o.opened_at == first_opened
    assert _audit_actions().count("opportunity.open") == 2 and "opportunity.closed" in _audit_actions()


def test_invalid_status_changes_are_refused_with_a_message(app, admin_client):
    draft = make_opp("speaking", title="Draft", status=OpportunityStatus.DRAFT)
    resp = _set_status(admin_client, draft, "closed", follow_redirects=True)
    assert resp.status_code == 200 and "A draft opportunity cannot become closed." in text_of(resp)
    assert reload(Opportunity, draft).status == OpportunityStatus.DRAFT

    assert _set_status(admin_client, draft, "published").status_code == 400
    assert reload(Opportunity, draft).status == OpportunityStatus.DRAFT

    late = make_opp("speaking", title="Late", status=OpportunityStatus.DRAFT, deadline=date.today() - timedelta(days=1))
    resp = _set_status(admin_client, late, "open", follow_redirects=True)
    assert "The deadline has passed; change it before opening." in text_of(resp)
    assert reload(Opportunity, late).status == OpportunityStatus.DRAFT

    archived = make_opp("speaking", title="Gone", status=OpportunityStatus.ARCHIVED)
    resp = _set_status(admin_client, archived, "open", follow_redirects=True)
    assert "A archived opportunity cannot become open." in text_of(resp)
    assert reload(Opportunity, archived).status == OpportunityStatus.ARCHIVED


def test_admin_list_filters_by_status_and_counts_waiting_requests(app, admin_client, make_user):
    a = make_advocate(make_user, "waiting@example.com")
    open_id = make_opp("speaking", title="Open talk")
    make_opp("speaking", title="Draft talk", status=OpportunityStatus.DRAFT)
    db.session.add(Participation(opportunity_id=open_id, user_id=a, status=ParticipationStatus.REQUESTED))
    db.session.commit()
    everything = text_of(admin_client.get("/admin/opportunities"))
    assert "Open talk" in everything and "Draft talk" in everything
    drafts = text_of(admin_client.get("/admin/opportunities?status=draft"))
    assert "Draft talk" in drafts and "Open talk" not in drafts
    assert admin_client.get("/admin/opportunities?status=bogus").status_code == 200
    row = admin_client.get("/admin/opportunities?status=open").get_data(as_text=True)
    assert '<td data-label="Waiting">1</td>' in row


# --- the external link ------------------------------------------------------------------------------------------


def test_external_link_is_shown_only_to_approved_participants(app, admin_client, make_user):
    adv = make_advocate(make_user, "linked@example.com")
    oid = make_opp("review", title="Review us", external_url="https://reviews.example.com/acme")
    c = client_for(app, adv)
    assert "https://reviews.example.com/acme" not in c.get(f"/opportunities/{oid}").get_data(as_text=True)
    post_form(c, f"/opportunities/{oid}/request", {}, page=f"/opportunities/{oid}")
    p = participation_of(adv, oid)
    assert p.status == ParticipationStatus.REQUESTED
    assert "https://reviews.example.com/acme" not in c.get(f"/opportunities/{oid}").get_data(as_text=True)
    post_form(admin_client, f"/admin/participations/{p.id}/approve", {}, page=f"/admin/opportunities/{oid}")
    body = c.get(f"/opportunities/{oid}").get_data(as_text=True)
    assert 'href="https://reviews.example.com/acme"' in body and 'rel="noopener noreferrer"' in body


# --- escaping ---------------------------------------------------------------------------------------------------------


def test_html_in_title_and_description_is_escaped_everywhere(app, admin_client, make_user):
    title = '<script>alert("t")</script><b>Bold</b>'
    description = '<img src=x onerror=alert(1)>\n\n<a href="javascript:alert(2)">click</a>'
    t = atype("advisory_board")
    resp = post_form(
        admin_client,
        "/admin/opportunities/new",
        admin_form(
            t.id,
            title=title,
            description=description,
            capacity="5",
            term_start=date.today().isoformat(),
            term_end=(date.today() + timedelta(days=30)).isoformat(),
        ),
    )
    assert resp.status_code == 302
    oid = _only_opportunity().id
    _set_status(admin_client, oid, "open")
    adv = make_advocate(make_user, "escape@example.com")
    c = client_for(app, adv)
    post_form(c, f"/opportunities/{oid}/request", {"message": "<i>me</i>"}, page=f"/opportunities/{oid}")
    p = participation_of(adv, oid)
    post_form(
        admin_client,
        f"/admin/participations/{p.id}/approve",
        {"message": "<u>welcome</u>"},
        page=f"/admin/opportunities/{oid}",
    )

    raw = ["<script>alert", "<b>Bold</b>", "<img src=x", 'href="javascript:', "<i>me</i>", "<u>welcome</u>"]
    pages = {
        "feed before request": None,
        "detail": c.get(f"/opportunities/{oid}"),
        "commitments": c.get("/me/commitments"),
        "dashboard": c.get("/dashboard"),
        "boards": c.get("/me/boards"),
        "admin list": admin_client.get("/admin/opportunities"),
        "admin detail": admin_client.get(f"/admin/opportunities/{oid}"),
        "admin edit": admin_client.get(f"/admin/opportunities/{oid}/edit"),
        "admin boards": admin_client.get("/admin/boards"),
    }
    pages.pop("feed before request")
    for name, resp in pages.items():
        body = resp.get_data(as_text=True)
        assert resp.status_code == 200, name
        for fragment in raw:
            assert fragment not in body, f"{fragment!r} unescaped on {name}"
        assert "&lt;script&gt;alert" in body or "&lt;script&gt;" in body, name
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages["detail"].get_data(as_text=True)
    assert "&lt;i&gt;me&lt;/i&gt;" in pages["admin detail"].get_data(as_text=True)
    # and in the feed of another advocate who can still take part
    other = client_for(app, make_advocate(make_user, "escape2@example.com"))
    feed = other.get("/opportunities").get_data(as_text=True)
    assert "&lt;script&gt;alert" in feed and "<script>alert" not in feed


# --- who may use the admin pages ---------------------------------------------------------------------------------


ADMIN_GETS = [
    "/admin/opportunities",
    "/admin/opportunities/new",
    "/admin/opportunities/{oid}",
    "/admin/opportunities/{oid}/edit",
    "/admin/boards",
    "/admin/settings",
    "/admin/advocates",
]
ADMIN_POSTS = [
    "/admin/opportunities/new",
    "/admin/opportunities/{oid}/edit",
    "/admin/opportunities/{oid}/duplicate",
    "/admin/opportunities/{oid}/status",
    "/admin/participations/{pid}/approve",
    "/admin/participations/{pid}/decline",
    "/admin/participations/{pid}/complete",
    "/admin/participations/{pid}/no_show",
    "/admin/settings",
]


@pytest.mark.parametrize("who", ["staff", "advocate"])
def test_staff_and_advocates_get_403_on_admin_pages(app, make_user, who, request):
    client = request.getfixturevalue(f"{who}_client")
    adv = make_advocate(make_user, "target@example.com")
    oid = make_opp("speaking", title="Protected", capacity=2)
    db.session.add(Participation(opportunity_id=oid, user_id=adv, status=ParticipationStatus.REQUESTED))
    db.session.commit()
    pid = participation_of(adv, oid).id
    for url in ADMIN_GETS:
        assert client.get(url.format(oid=oid)).status_code == 403, url
    token_page = "/me/commitments" if who == "advocate" else "/staff/"
    data = {**admin_form(atype("speaking").id, title="Taken over"), "status": "closed", "max_engagements_90d": "99"}
    for url in ADMIN_POSTS:
        resp = post_form(client, url.format(oid=oid, pid=pid), data, page=token_page)
        assert resp.status_code == 403, url
    db.session.rollback()
    o = reload(Opportunity, oid)
    assert (o.title, o.status, o.seats_taken) == ("Protected", OpportunityStatus.OPEN, 0)
    assert db.session.query(Opportunity).count() == 1
    assert participation_of(adv, oid).status == ParticipationStatus.REQUESTED
    assert db.session.query(AuditEvent).filter(AuditEvent.action.like("opportunity.%")).count() == 0


def test_anonymous_visitors_are_sent_to_sign_in(app, client):
    oid = make_opp()
    for url in (
        "/admin/opportunities",
        f"/admin/opportunities/{oid}",
        "/opportunities",
        f"/opportunities/{oid}",
        "/me/commitments",
        "/me/boards",
    ):
        resp = client.get(url)
        assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"], url
