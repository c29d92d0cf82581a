"""Matching advocates to a reference request (portal.services.matching.for_request): ranked by fit through
the search index with the criteria each matches, the criteria relaxed when too few match them all, the
advocates the rules leave out counted per reason (and listed for an admin), those already asked never
proposed again, and a number of queries that does not grow with the program."""

from __future__ import annotations

import re
from datetime import date, timedelta

from flask import render_template
from flask_login import login_user
from sqlalchemy import select

from portal.extensions import db
from portal.forms import BaseForm
from portal.models import (
    AdvocateProfile,
    Industry,
    Participation,
    ParticipationStatus,
    Product,
    ReferenceRequest,
    Region,
    SizeBand,
    Tag,
    TagKind,
    User,
    utcnow,
)
from portal.services import fatigue, matching, references
from search.indexing import apply_pending
from search.seam import IndexUnavailable, WhooshBackend
from tests.support import activity_type_id, audits, engaged, item_id, make_advocate, make_opp, recorded_sql

SIZE = "1,000-4,999 employees"
TOPIC = "Data migration"


def topic_id(name: str) -> int:
    tag = db.session.query(Tag).filter_by(kind=TagKind.TOPIC, name=name).one_or_none()
    if tag is None:
        tag = Tag(kind=TagKind.TOPIC, name=name, slug=name.lower().replace(" ", "-"))
        db.session.add(tag)
        db.session.commit()
    return tag.id


def fits(make_user, name: str, *, industry="Healthcare", country="DE", topics=(TOPIC,), **kw) -> int:
    """An advocate opted in to reference calls (by default) matching every criterion of ``request``."""
    kw.setdefault("types", ("reference_call",))
    kw.setdefault("products", ("Data Platform",))
    kw.setdefault("size", SIZE)
    uid = make_advocate(make_user, f"{name.lower()}@example.com", name=name, industry=industry, country=country, **kw)
    if topics:
        profile = db.session.get(AdvocateProfile, uid)
        profile.tags = [db.session.get(Tag, topic_id(t)) for t in topics]
        db.session.commit()
    return uid


def request(requester_id: int, needed: int = 1, topics=(TOPIC,), need: str = "", **over) -> ReferenceRequest:
    rr = ReferenceRequest(
        requester_id=requester_id,
        activity_type_id=activity_type_id("reference_call"),
        opportunity_id=make_opp("reference_call", title="Reference for Globex", private=True),
        industry_id=item_id(Industry, "Healthcare"),
        region_id=item_id(Region, "Europe"),
        product_id=item_id(Product, "Data Platform"),
        size_band_id=item_id(SizeBand, SIZE),
        topic_ids=[topic_id(t) for t in topics],
        need=need,
        account_name="Globex",
        due_date=date.today() + timedelta(days=14),
        advocates_needed=needed,
        **over,
    )
    db.session.add(rr)
    db.session.commit()
    return rr


def ask(rr: ReferenceRequest, uid: int) -> None:
    db.session.add(Participation(opportunity_id=rr.opportunity_id, user_id=uid, status=ParticipationStatus.ASKED))
    db.session.commit()


def rendered(app, rr: ReferenceRequest, matches: matching.Matches, viewer_id: int, can_ask: bool = True) -> str:
    """The request page's partial as ``viewer_id`` sees it."""
    with app.test_request_context("/staff"):
        login_user(db.session.get(User, viewer_id))
        return render_template(
            "staff/_reference_matches.html", rr=rr, matches=matches, can_ask=can_ask, ask_form=BaseForm()
        )


ALL = ["Industry: Healthcare", "Region: Europe", "Product: Data Platform", f"Company size: {SIZE}", f"Topic: {TOPIC}"]


def test_the_best_fit_first_relaxing_what_nobody_matches_and_the_rules_counted(
    app, make_user, staff, admin, monkeypatch
):
    now = utcnow()
    exact = fits(make_user, "Exact")
    no_topic = fits(make_user, "Notopic", topics=(), story="We moved our clinics to Kubernetes.")
    far = fits(make_user, "Far", country="US")  # North America: not the region
    other = fits(make_user, "Other", industry="Insurance")
    paused = fits(make_user, "Paused", paused_until=date.today() + timedelta(days=30))
    away = fits(make_user, "Away", blackouts=[(date.today() + timedelta(days=13), date.today() + timedelta(days=15))])
    busy = fits(make_user, "Busy")
    for days_ago in (3, 6, 9, 12):
        engaged(busy, now - timedelta(days=days_ago))
    caller = fits(make_user, "Caller")
    engaged(caller, now - timedelta(days=10), "reference_call")
    picky = fits(make_user, "Picky", types=("speaking",))
    asked = fits(make_user, "Asked")
    make_advocate(make_user, "nobody@example.com", industry="Insurance", country="JP", types=("reference_call",))
    rr = request(staff.id, needed=1)
    ask(rr, asked)
    apply_pending(db.engine)

    got = matching.for_request(db.session, rr)
    assert [c.name for c in got.candidates] == ["Exact"] and got.relaxed == []
    assert got.candidates[0].matched == ALL and got.candidates[0].missing == [] and got.candidates[0].decision.allowed
    assert got.criteria == ALL and got.total_matching == 6  # exact and the five the rules leave out
    assert got.excluded == {
        fatigue.PAUSED: 1,
        fatigue.BLACKOUT: 1,
        fatigue.PROGRAM_LIMIT: 1,
        fatigue.REFERENCE_CALL_GAP: 1,
        fatigue.NOT_OPTED_IN: 1,
    }
    assert got.left_out == 5
    assert got.excluded_summary == [
        "2 paused or in a blackout",
        "1 at their limit",
        "1 in a cool-down after a reference call",
        "1 not opted in",
    ]
    reasons = {c.user_id: c.decision.codes for c in got.excluded_people}
    assert reasons == {
        paused: [fatigue.PAUSED],
        away: [fatigue.BLACKOUT],
        busy: [fatigue.PROGRAM_LIMIT],
        caller: [fatigue.REFERENCE_CALL_GAP],
        picky: [fatigue.NOT_OPTED_IN],
    }
    assert all(c.matched == ALL for c in got.excluded_people)
    assert (
        "Caller's last one was on"
        in got.excluded_people[[c.user_id for c in got.excluded_people].index(caller)].decision.for_admin()[0]
    )

    # The page: the counts in words, each candidate's Ask; the people left out and their reasons for admins only.
    html = rendered(app, rr, got, staff.id)
    assert (
        "2 paused or in a blackout, 1 at their limit, 1 in a cool-down after a reference call, 1 not opted in" in html
    )
    assert (
        html.count('name="advocate_id"') == 1 and f'value="{exact}"' in html and "Matches: Industry: Healthcare" in html
    )
    assert f'action="/staff/references/{rr.id}/ask"' in html and 'name="csrf_token"' in html
    assert (
        "Left out by the rules" not in html and "Paused" not in html and "style=" not in html and "<script" not in html
    )
    html = rendered(app, rr, got, admin.id)
    assert html.count('name="override_reason" required') == 5 and "has paused all asks until" in html
    assert 'name="advocate_id"' not in rendered(app, rr, got, staff.id, can_ask=False)

    # Three needed: criteria are dropped one at a time (topics, size, product, region; industry last) until
    # three who may be asked match what is left; each says what they match and what they do not.
    rr.advocates_needed = 3
    db.session.commit()
    got = matching.for_request(db.session, rr)
    assert [c.user_id for c in got.candidates] == [exact, no_topic, far]
    assert got.relaxed == [f"Topic: {TOPIC}", f"Company size: {SIZE}", "Product: Data Platform", "Region: Europe"]
    assert got.candidates[1].missing == [f"Topic: {TOPIC}"] and got.candidates[2].missing == ["Region: Europe"]
    assert got.candidates[2].matched == [a for a in ALL if a != "Region: Europe"]
    assert got.total_matching == 8 and other not in {c.user_id for c in got.candidates + got.excluded_people}

    # Without a readable index the database answers alike (more simply: no relevance), and says so.
    def unreadable(*args, **kw):
        raise IndexUnavailable("gone")

    with monkeypatch.context() as m:
        m.setattr(WhooshBackend, "rank_by_criteria", unreadable)
        plain = matching.for_request(db.session, rr)
    assert [c.user_id for c in plain.candidates] == [exact, no_topic, far] and plain.relaxed == got.relaxed
    assert plain.excluded == got.excluded and plain.total_matching == 8 and "not available" in plain.notes[0]
    assert [(c.matched, c.missing) for c in plain.candidates] == [(c.matched, c.missing) for c in got.candidates]

    # A topic nobody has: relaxed first (the best of the rest: all but the topic).
    rr2 = request(staff.id, topics=("Quantum ledgers",))
    ask(rr2, exact)
    got = matching.for_request(db.session, rr2, limit=1)
    assert got.relaxed == ["Topic: Quantum ledgers"] and [c.user_id for c in got.candidates] == [no_topic]
    assert got.candidates[0].missing == ["Topic: Quantum ledgers"]

    # The free text orders those who match alike: the story that mentions it first.
    rr3 = request(staff.id, topics=(), need="Kubernetes rollout")
    got = matching.for_request(db.session, rr3)
    assert [c.user_id for c in got.candidates][:1] == [no_topic] and got.relaxed == []
    assert {c.user_id for c in got.candidates} == {no_topic, exact, asked}  # asked on another request only


def _grow(make_user, n: int, start: int) -> None:
    """n more of each: one who fits, one at their own limit, one paused, one in a blackout, one who nearly
    fits, one in a cool-down after a reference call (and so one more engagement)."""
    now = utcnow()
    for i in range(start, start + n):
        fits(make_user, f"Fit{i}")
        fits(make_user, f"Limited{i}", max_asks_per_month=0, timezone="Asia/Tokyo")
        fits(make_user, f"Paused{i}", paused_until=date.today() + timedelta(days=3))
        fits(make_user, f"Away{i}", blackouts=[(date.today(), date.today() + timedelta(days=30))])
        fits(make_user, f"Near{i}", country="US", topics=())
        engaged(fits(make_user, f"Caller{i}"), now - timedelta(days=5), "reference_call")
    apply_pending(db.engine)


def test_the_number_of_queries_does_not_grow_with_the_program(app, make_user, staff):
    rr = request(staff.id, needed=2, need="platform")
    _grow(make_user, 2, 0)
    matching.for_request(db.session, rr)  # warm (list names)
    counts = []
    for size in (2, 8):
        if size > 2:
            _grow(make_user, size - 2, 100)
            ask(rr, db.session.query(AdvocateProfile.user_id).order_by(AdvocateProfile.user_id).first()[0])
        db.session.rollback()  # each call in its own transaction (settings are read once per transaction)
        with recorded_sql() as statements:
            got = matching.for_request(db.session, rr)
        counts.append(len(statements))
        assert len(got.candidates) == size - (size > 2) and got.left_out == 4 * size and len(got.excluded) == 4
    assert counts[0] == counts[1], counts


ASK_FORM = re.compile(
    r'<form method="post" action="(/staff/references/\d+/ask)"[^>]*>\s*'
    r'<input type="hidden" name="csrf_token" value="([^"]+)">\s*'
    r'<input type="hidden" name="advocate_id" value="(\d+)">'
)


def test_the_request_page_proposes_and_asks_and_an_admin_overrides_with_a_reason(
    app, make_user, staff, admin, admin_client
):
    """Through the pages: the staff member's request proposes the fitting advocate (the admin asks them
    with the page's own button), an advocate the rules leave out is listed for the admin with the reason,
    and asked anyway only with a written reason, recorded in the audit log."""
    gina = fits(make_user, "Gina")
    paula = fits(make_user, "Paula", paused_until=date.today() + timedelta(days=5))
    apply_pending(db.engine)
    rr = references.create(
        db.session,
        db.session.get(User, staff.id),
        references.RequestInput(
            activity_type_id=activity_type_id("reference_call"),
            account_name="Globex",
            due_date=date.today() + timedelta(days=14),
            advocates_needed=2,
            industry_id=item_id(Industry, "Healthcare"),
        ),
    )
    db.session.commit()
    page = admin_client.get(f"/staff/references/{rr.id}").get_data(as_text=True)
    forms = {int(uid): (url, token) for url, token, uid in ASK_FORM.findall(page)}
    assert set(forms) == {gina, paula} and "Industry: Healthcare" in page
    assert "1 matching advocate left out by the rules: 1 paused or in a blackout" in page
    assert "Paula" in page[page.index("Left out by the rules") :] and "has paused all asks" in page

    url, token = forms[gina]
    assert admin_client.post(url, data={"csrf_token": token, "advocate_id": gina}).status_code == 302
    url, token = forms[paula]
    admin_client.post(url, data={"csrf_token": token, "advocate_id": paula})  # no reason: refused
    asked = {
        p.user_id: p
        for p in db.session.scalars(select(Participation).where(Participation.opportunity_id == rr.opportunity_id))
    }
    assert set(asked) == {gina} and asked[gina].status == ParticipationStatus.ASKED
    reason = "Paula offered to take this one call while paused"
    admin_client.post(url, data={"csrf_token": token, "advocate_id": paula, "override_reason": reason})
    db.session.rollback()
    p = db.session.scalar(
        select(Participation).where(Participation.opportunity_id == rr.opportunity_id, Participation.user_id == paula)
    )
    assert p.status == ParticipationStatus.ASKED and p.override_reason == reason
    assert [e.details["reason"] for e in audits("participation.override", p.id)] == [reason]
    after = admin_client.get(f"/staff/references/{rr.id}").get_data(as_text=True)
    assert not ASK_FORM.findall(after)  # both asked: nobody proposed twice


def test_requests_at_the_edges_give_sensible_answers(app, make_user, staff, admin, monkeypatch):
    exact = fits(make_user, "Exact")
    other = fits(make_user, "Other", industry="Insurance", country="JP", topics=(), products=(), size=None)
    apply_pending(db.engine)
    gone = topic_id("Retired topic")
    # No criteria at all (nor free text): every advocate who may be asked, nothing relaxed.
    bare = request(staff.id, topics=())
    bare.industry_id = bare.region_id = bare.product_id = bare.size_band_id = None
    db.session.commit()
    got = matching.for_request(db.session, bare)
    assert {c.user_id for c in got.candidates} == {exact, other} and got.relaxed == [] and got.criteria == []
    # A topic deleted since, ids that never existed, more advocates needed than there are.
    rr = request(staff.id, needed=5)
    rr.topic_ids = [*rr.topic_ids, gone, 999999]
    db.session.commit()
    db.session.delete(db.session.get(Tag, gone))
    db.session.commit()
    got = matching.for_request(db.session, rr)
    assert [c.user_id for c in got.candidates] == [exact] and got.criteria == ALL  # other matches nothing
    # An activity type nobody opted in to: nobody proposed, everyone counted as not opted in.
    rr.activity_type_id = activity_type_id("speaking")
    db.session.commit()
    got = matching.for_request(db.session, rr)
    assert got.candidates == [] and got.excluded == {fatigue.NOT_OPTED_IN: 1} and got.left_out == 1
