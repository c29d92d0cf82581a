"""Portfolio coverage in the browser (issue 14): an admin sets a target, sees its gap, and follows the link to
the advocate search already filtered to the segment, where the advocate who covers it is found."""

import re

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from portal.models import ActivityPreference, ActivityType, AdvocateProfile, Industry, Role
from search.indexing import apply_pending
from tests.support import sign_in

pytestmark = pytest.mark.e2e

ADMIN = "cora.coverage-admin@example.com"


def test_an_admin_sets_a_target_sees_its_gap_and_finds_advocates_for_it(live_server, page):
    base = live_server.url
    live_server.make_user(ADMIN, role=Role.ADMIN, name="Cora Admin")
    covering = live_server.make_user("lena.lifesciences@example.com", name="Lena Lifesciences")
    with live_server.app.app_context():
        industry = db.session.query(Industry).filter_by(name="Life sciences").one()
        review = db.session.query(ActivityType).filter_by(key="review").one()
        db.session.add(AdvocateProfile(user_id=covering, industry_id=industry.id, country_code="DE"))
        db.session.flush()
        db.session.add(ActivityPreference(user_id=covering, activity_type_id=review.id, opted_in=True))
        db.session.commit()
        apply_pending(db.engine)

    sign_in(page, base, ADMIN)
    page.goto(base + "/admin/reports")
    page.get_by_role("navigation", name="Reports").get_by_role("link", name="Portfolio coverage").click()
    expect(page.get_by_role("heading", name="Portfolio coverage", level=1)).to_be_visible()
    page.get_by_label("Name").fill("Life sciences reviewers")
    page.get_by_label("Industry").select_option(label="Life sciences")
    page.get_by_label("Willing to do").select_option(label="Peer review")
    page.get_by_label("Advocates wanted").fill("3")
    page.get_by_role("button", name="Add target").click()
    expect(page.get_by_text("Target “Life sciences reviewers” added.")).to_be_visible()

    row = page.get_by_role("row", name=re.compile("Life sciences reviewers"))
    expect(row.locator("td.gap")).to_have_text("2")  # 3 wanted, 1 covers it
    expect(row).to_contain_text("Industry: Life sciences; Activity: Peer review")
    row.get_by_role("link", name="Find advocates for Life sciences reviewers").click()
    expect(page).to_have_url(re.compile(r"/search/advocates\?.*industry=\d+"))
    assert "activity=review" in page.url
    expect(page.get_by_text("Lena Lifesciences").first).to_be_visible()
