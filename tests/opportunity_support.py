"""Builders shared by the opportunity tests (test_opportunities_admin, test_eligibility,
test_participation, test_fatigue, test_capacity_concurrency, test_digest).

Everything here commits what it builds and hands back plain ids, so that requests made next (each in
its own app context) see the data, and threads never share the test session's objects.
"""

from __future__ import annotations

import html
import re
import threading
from datetime import date, datetime, timedelta

from portal.extensions import db
from portal.models import (
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    Blackout,
    Industry,
    Opportunity,
    OpportunityStatus,
    Participation,
    Product,
    Region,
    SelectionMode,
    SizeBand,
    User,
    utcnow,
)
from tests.helpers import login

ALL_TYPES = ("speaking", "review", "reference_call", "advisory_board", "webinar", "case_study")


def atype(key: str) -> ActivityType:
    return db.session.query(ActivityType).filter_by(key=key).one()


def item_id(model, name: str) -> int:
    return db.session.query(model).filter_by(name=name).one().id


def make_advocate(
    make_user,
    email: str,
    *,
    types=ALL_TYPES,
    industry: str | None = None,
    country: str | None = "DE",
    products=(),
    size: str | None = None,
    blackouts=(),
    name: str | None = None,
    **profile,
) -> int:
    """An active advocate with a profile, opted in to ``types``; returns the user id."""
    u = make_user(email=email, name=name or email.split("@")[0].replace(".", " ").title())
    p = AdvocateProfile(user_id=u.id, country_code=country, **profile)
    if industry:
        p.industry_id = item_id(Industry, industry)
    if size:
        p.size_band_id = item_id(SizeBand, size)
    p.products = [db.session.get(Product, item_id(Product, n)) for n in products]
    db.session.add(p)
    db.session.flush()
    for key in types:
        db.session.add(ActivityPreference(user_id=u.id, activity_type_id=atype(key).id, opted_in=True))
    for starts, ends in blackouts:
        db.session.add(Blackout(user_id=u.id, starts_on=starts, ends_on=ends))
    db.session.commit()
    return u.id


def make_opp(
    key: str = "speaking",
    *,
    title: str | None = None,
    mode: SelectionMode = SelectionMode.SELECTION,
    capacity: int | None = None,
    status: OpportunityStatus = OpportunityStatus.OPEN,
    industries=(),
    products=(),
    regions=(),
    size_bands=(),
    opened_at: datetime | None = None,
    **fields,
) -> int:
    """An opportunity straight in the database (open by default); returns its id."""
    o = Opportunity(
        activity_type=atype(key),
        title=title or f"{key} opportunity",
        capacity=capacity,
        selection_mode=mode,
        status=status,
        seats_taken=fields.pop("seats_taken", 0),
        opened_at=opened_at or (utcnow() if status == OpportunityStatus.OPEN else None),
        **fields,
    )
    if key == "advisory_board" and "term_start" not in fields:
        o.term_start, o.term_end = date.today(), date.today() + timedelta(days=365)
    o.industries = [db.session.get(Industry, item_id(Industry, n)) for n in industries]
    o.products = [db.session.get(Product, item_id(Product, n)) for n in products]
    o.regions = [db.session.get(Region, item_id(Region, n)) for n in regions]
    o.size_bands = [db.session.get(SizeBand, item_id(SizeBand, n)) for n in size_bands]
    db.session.add(o)
    db.session.commit()
    return o.id


def user(user_id: int) -> User:
    """The user as the database has it now, in the test's session."""
    db.session.rollback()
    return db.session.get(User, user_id)


def participation_of(user_id: int, opp_id: int) -> Participation | None:
    db.session.rollback()
    db.session.expire_all()
    return db.session.query(Participation).filter_by(user_id=user_id, opportunity_id=opp_id).one_or_none()


def client_for(app, user_id_or_email):
    email = user_id_or_email if isinstance(user_id_or_email, str) else user(user_id_or_email).email
    db.session.rollback()
    c = app.test_client()
    resp = login(c, email)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    return c


def text_of(resp) -> str:
    """The page's visible text, roughly: tags removed, entities decoded, whitespace collapsed."""
    body = resp.get_data(as_text=True) if hasattr(resp, "get_data") else resp
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def run_threads(n: int, fn, timeout: float = 120):
    """Run fn(0..n-1) in n threads released together by a barrier; exceptions are returned, not lost."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def wrap(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the test to assert on
            results[i] = exc

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    return results


def admin_form(type_id: int, **overrides) -> dict:
    """A valid POST body for /admin/opportunities/new (and edit)."""
    data = {
        "activity_type_id": str(type_id),
        "title": "Customer panel at Summit",
        "description": "Tell the story.",
        "selection_mode": "selection",
        "capacity": "3",
        "points": "",
        "event_date": "",
        "deadline": "",
        "term_start": "",
        "term_end": "",
        "is_virtual": "y",
        "location": "",
        "external_url": "https://example.com/summit",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}
