"""Portfolio coverage (issue 14): targets with one and several dimensions against a hand-built set of
advocates (active, fresh, available, opted in: or not) and opportunities (the demand), the page in the
order of the gaps, its links to the filtered search, the CSV (the same numbers), add / edit / retire
with their validation and audit entries."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from portal.extensions import db
from portal.models import (
    ActivityType,
    Country,
    Industry,
    OpportunityStatus,
    Product,
    ReferenceStatus,
    Region,
    SegmentTarget,
    SizeBand,
    Status,
    User,
    utcnow,
)
from portal.services import coverage
from search.indexing import apply_pending
from tests.support import audits, csrf_from, engaged, item_id, make_advocate, make_opp, reference_request_record


def _target(name, wanted, **dims) -> int:
    t = SegmentTarget(name=name, wanted=wanted, **dims)
    db.session.add(t)
    db.session.commit()
    return t.id


@pytest.fixture
def portfolio(app, make_user):
    """Targets: "Healthcare" (one dimension, 5 wanted), "Healthcare speakers in Europe" (three, 2 wanted,
    due), "Data Platform at large companies" (two, 1 wanted).

    Advocates, by hand: h1 (Healthcare, DE, speaking) covers the first two; h2 (Healthcare, US) the first;
    h3 (Healthcare, FR, review only: not willing to speak) the first; h4 stale, h5 paused, h6 suspended,
    h8 at the program's limit (4 engagements in 90 days) cover nothing; h7 (Insurance, DE, Data Platform,
    5,000+) the third. Covered 3 / 1 / 1, gaps 2 / 1 / 0.

    Opportunities: o1 speaking for Healthcare in Europe (open, 10 days ago) asks for the first two; o2
    speaking for Healthcare (closed with 1 of 3 seats taken: unfulfilled) for the first; o3 Healthcare
    200 days ago (too old) and o4 without targeting for none; o5 for Data Platform at 5,000+ for the third."""
    now = utcnow()
    hc = item_id(Industry, "Healthcare")
    europe = item_id(Region, "Europe")
    speaking = db.session.query(ActivityType).filter_by(key="speaking").one().id
    ids = {}
    common = {"industry": "Healthcare", "country": "DE", "types": ("speaking",)}
    ids["h1"] = make_advocate(make_user, "h1@example.com", name="Hana One", **common)
    ids["h2"] = make_advocate(make_user, "h2@example.com", name="Hugo Two", **{**common, "country": "US"})
    ids["h3"] = make_advocate(
        make_user, "h3@example.com", name="Hedy Three", **{**common, "country": "FR", "types": ("review",)}
    )
    ids["h4"] = make_advocate(
        make_user, "h4@example.com", name="Hal Four", confirmed_at=now - timedelta(days=400), **common
    )
    db.session.execute(update(User).where(User.id == ids["h4"]).values(approved_at=now - timedelta(days=500)))
    ids["h5"] = make_advocate(
        make_user, "h5@example.com", name="Hope Five", paused_until=(now + timedelta(days=20)).date(), **common
    )
    ids["h6"] = make_advocate(make_user, "h6@example.com", name="Hank Six", **common)
    db.session.execute(update(User).where(User.id == ids["h6"]).values(status=Status.SUSPENDED))
    db.session.commit()
    ids["h7"] = make_advocate(
        make_user,
        "h7@example.com",
        name="Hilda Seven",
        industry="Insurance",
        country="DE",
        products=("Data Platform",),
        size="5,000+ employees",
    )
    ids["h8"] = make_advocate(make_user, "h8@example.com", name="Hans Eight", **common)
    for days in (5, 15, 25, 35):
        engaged(ids["h8"], now - timedelta(days=days))
    ids["o1"] = make_opp(
        "speaking", industries=("Healthcare",), regions=("Europe",), opened_at=now - timedelta(days=10)
    )
    ids["o2"] = make_opp(
        "speaking",
        industries=("Healthcare",),
        status=OpportunityStatus.CLOSED,
        capacity=3,
        seats_taken=1,
        opened_at=now - timedelta(days=20),
    )
    make_opp("review", industries=("Healthcare",), opened_at=now - timedelta(days=200))
    make_opp("webinar")
    make_opp("speaking", products=("Data Platform",), size_bands=("5,000+ employees",))
    ids["t1"] = _target("Healthcare", 5, industry_id=hc)
    ids["t2"] = _target(
        "Healthcare speakers in Europe",
        2,
        industry_id=hc,
        region_id=europe,
        activity_type_id=speaking,
        due_on=date(2027, 6, 30),
    )
    ids["t3"] = _target(
        "Data Platform at large companies",
        1,
        product_id=item_id(Product, "Data Platform"),
        size_band_id=item_id(SizeBand, "5,000+ employees"),
    )
    # Reference requests of the last 180 days: a Healthcare speaker in Europe (fulfilled), a Healthcare
    # reference call past its due day without an advocate, one from 200 days ago, and a cancelled case study
    # for Data Platform at large companies.
    reference_request_record(
        "speaking", ReferenceStatus.COMPLETED, now - timedelta(days=10), industry_id=hc, region_id=europe
    )
    reference_request_record(
        "reference_call",
        ReferenceStatus.ASKED,
        now - timedelta(days=30),
        industry_id=hc,
        due_date=now.date() - timedelta(days=5),
    )
    reference_request_record(
        "speaking", ReferenceStatus.OPEN, now - timedelta(days=200), industry_id=hc, region_id=europe
    )
    reference_request_record(
        "case_study",
        ReferenceStatus.CANCELLED,
        now - timedelta(days=3),
        product_id=item_id(Product, "Data Platform"),
        size_band_id=item_id(SizeBand, "5,000+ employees"),
    )
    db.session.rollback()
    apply_pending(db.engine)  # the search index follows the database (as `flask search sync` does)
    return ids


def test_coverage_against_the_hand_built_portfolio(app, portfolio):
    rows = coverage.coverage(db.session)
    got = [
        (r.name, r.wanted, r.covered, r.gap, r.demand, r.unfulfilled, r.reference_requests, r.references_unfulfilled)
        for r in rows
    ]
    assert got == [
        ("Healthcare", 5, 3, 2, 2, 1, 2, 1),
        ("Healthcare speakers in Europe", 2, 1, 1, 1, 0, 1, 0),
        ("Data Platform at large companies", 1, 1, 0, 1, 0, 1, 1),
    ]
    t2 = rows[1]
    assert t2.segment == [("Industry", "Healthcare"), ("Region", "Europe"), ("Activity", "Speaking")]
    assert t2.search_args == {
        "industry": str(item_id(Industry, "Healthcare")),
        "region": str(item_id(Region, "Europe")),
        "activity": "speaking",
    }


def test_the_page_sorts_by_gap_links_to_the_filtered_search_and_the_csv_matches(app, portfolio, admin_client):
    html = admin_client.get("/admin/coverage").get_data(as_text=True)
    names = re.findall(r'<tr data-target="\d+">\s*<th scope="row">([^<]+)</th>', html)
    assert names == ["Healthcare", "Healthcare speakers in Europe", "Data Platform at large companies"]
    cells = re.findall(r'<td class="num gap">(\d+)</td>', html)
    assert cells == ["2", "1", "0"]
    chart = html[html.index('id="chart-coverage"') :]
    assert chart.index("<table") > chart.index("</svg>") and "<script" not in chart[: chart.index("</svg>")]
    link = re.search(
        r'href="(/search/advocates\?[^"]+)">Find advocates<span class="visually-hidden"> for Healthcare speakers', html
    )
    url = link.group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(url).query) == {
        "industry": [str(item_id(Industry, "Healthcare"))],
        "region": [str(item_id(Region, "Europe"))],
        "activity": ["speaking"],
    }
    found = admin_client.get(url).get_data(as_text=True)
    assert "Hana One" in found and "Hugo Two" not in found and "Hedy Three" not in found

    resp = admin_client.post("/admin/coverage/export", data={"csrf_token": csrf_from(html)})
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert table[0] == list(coverage.CSV_HEADER)
    assert [r[0] for r in table[1:]] == names
    for row, gap in zip(table[1:], cells, strict=True):
        assert row[10] == gap
    assert table[1][1:] == ["Healthcare", "", "", "", "", "", "5", "", "3", "2", "2", "1", "2", "1"]
    assert (
        'href="/staff/nominations/new">Nominate a customer' in html and 'href="/admin/imports">Import advocates' in html
    )
    assert table[2][1:8] == ["Healthcare", "Europe", "", "", "", "Speaking", "2"] and table[2][8] == "2027-06-30"
    assert len(audits("export.coverage")) == 1


def _form(page: str, **over) -> dict:
    data = {
        "csrf_token": csrf_from(page),
        "name": "Banking speakers",
        "industry_id": "",
        "region_id": "",
        "country_code": "",
        "product_id": "",
        "size_band_id": "",
        "activity_type_id": "",
        "wanted": "4",
        "due_on": "",
    }
    data.update(over)
    return data


def test_add_edit_and_retire_a_target_with_audit_entries(app, admin_client):
    banking = str(item_id(Industry, "Banking and capital markets"))
    page = admin_client.get("/admin/coverage").get_data(as_text=True)
    assert "No targets yet" in page
    resp = admin_client.post("/admin/coverage/new", data=_form(page, industry_id=banking, due_on="2027-01-31"))
    assert resp.status_code == 302
    target = db.session.query(SegmentTarget).one()
    assert (target.name, target.industry_id, target.wanted, target.due_on) == (
        "Banking speakers",
        int(banking),
        4,
        date(2027, 1, 31),
    )
    (created,) = audits("coverage.target_create", target.id)
    assert created.details["after"]["wanted"] == 4
    edit = admin_client.get(f"/admin/coverage/{target.id}/edit").get_data(as_text=True)
    assert f'<option selected value="{banking}">' in edit
    resp = admin_client.post(
        f"/admin/coverage/{target.id}/edit", data=_form(edit, industry_id=banking, country_code="FR", wanted="6")
    )
    assert resp.status_code == 302
    (edited,) = audits("coverage.target_edit", target.id)
    assert (edited.details["before"]["wanted"], edited.details["after"]["wanted"]) == (4, 6)
    assert edited.details["after"]["country_code"] == "FR"
    page = admin_client.get("/admin/coverage").get_data(as_text=True)
    assert "Country: France" in page
    resp = admin_client.post(f"/admin/coverage/{target.id}/retire", data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 302
    assert "No targets yet" in admin_client.get("/admin/coverage").get_data(as_text=True)
    assert len(audits("coverage.target_retire", target.id)) == 1
    assert admin_client.get(f"/admin/coverage/{target.id}/edit").status_code == 404


@pytest.mark.parametrize(
    "over, message",
    [
        ({}, "at least one of industry"),
        ({"industry_id": "__banking__", "wanted": "0"}, "Number must be between 1 and 100000"),
        ({"industry_id": "__banking__", "wanted": ""}, "Say how many advocates you want."),
        ({"industry_id": "__banking__", "name": ""}, "Give the target a name."),
        ({"region_id": "__asia__", "country_code": "FR"}, "That country is not in that region"),
        ({"industry_id": "999999"}, "Not a valid choice"),
        ({"industry_id": "__banking__", "due_on": "31/01/2027"}, "Not a valid date value"),
    ],
)
def test_a_wrong_target_is_refused_with_a_message(app, admin_client, over, message):
    subs = {
        "__banking__": str(item_id(Industry, "Banking and capital markets")),
        "__asia__": str(item_id(Region, "Asia Pacific")),
    }
    over = {k: subs.get(v, v) for k, v in over.items()}
    page = admin_client.get("/admin/coverage").get_data(as_text=True)
    resp = admin_client.post("/admin/coverage/new", data=_form(page, **over))
    assert resp.status_code == 422
    assert message in resp.get_data(as_text=True)
    assert db.session.query(SegmentTarget).count() == 0 and audits("coverage.target_create") == []


def test_an_empty_portfolio(app, admin_client):
    assert coverage.coverage(db.session) == []
    html = admin_client.get("/admin/coverage").get_data(as_text=True)
    assert "No targets yet" in html and 'id="chart-coverage"' not in html
    assert db.session.get(Country, "FR").region_id == item_id(Region, "Europe")  # the region test above relies on it
