"""The experience pass in the browser (issue 16): the referral link copies with one click, staff search on a
phone shows results first with the filters behind a button, and long lists stay compact at 375 px."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from portal.models import AdvocateProfile, EntrySource, Role
from portal.services import points
from search.indexing import apply_pending
from tests.support import sign_in

pytestmark = pytest.mark.e2e

PHONE = {"width": 375, "height": 740}


def test_the_referral_link_copies_with_one_click(live_server, browser):
    email = "rita.referrer@example.com"
    live_server.make_user(email, name="Rita Referrer")
    context = browser.new_context(viewport=PHONE)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    sign_in(page, live_server.url, email)
    page.goto(live_server.url + "/me/referrals")
    link = page.get_by_label("Your link").input_value()
    assert "/r/" in link
    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_role("status").filter(has_text="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == link
    context.close()


def test_staff_search_on_a_phone_shows_results_first_and_filters_on_demand(live_server, browser):
    staff = "sasha.search-staff@example.com"
    live_server.make_user(staff, role=Role.STAFF, name="Sasha Staff")
    with live_server.app.app_context():
        for i in range(3):
            uid = live_server.make_user(f"phone.search{i}@example.com", name=f"Phoebe Phone{i}")
            db.session.add(AdvocateProfile(user_id=uid, country_code="DE", story="Zero trust rollout."))
        db.session.commit()
        apply_pending(db.engine)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    sign_in(page, live_server.url, staff)
    page.goto(live_server.url + "/search/advocates?q=Phoebe")
    first = page.get_by_role("link", name=re.compile("Phoebe Phone"), exact=False).first
    expect(first).to_be_visible()
    toggle = page.get_by_role("button", name=re.compile("^Filters"))
    filters = page.get_by_role("complementary", name="Filters")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(filters).to_be_hidden()
    assert first.bounding_box()["y"] < 740  # the first result is on the first screen
    sort = page.get_by_label("Sort")
    label_box, select_box = page.locator("label[for=sort]").bounding_box(), sort.bounding_box()
    assert abs(label_box["y"] + label_box["height"] / 2 - (select_box["y"] + select_box["height"] / 2)) < 12
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(filters).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    # On a wide screen the filters are simply there, beside the results.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.reload()
    expect(page.get_by_role("complementary", name="Filters")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Filters"))).to_be_hidden()
    context.close()


def test_the_leaderboard_keeps_one_line_per_row_on_a_phone(live_server, browser):
    email = "lena.leaderboard@example.com"
    uid = live_server.make_user(email, name="Lena Leaderboard")
    with live_server.app.app_context():
        points.award(db.session, uid, 40, key=f"e2e-board:{uid}", reason="Seed", source=EntrySource.MANUAL)
        db.session.commit()
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    sign_in(page, live_server.url, email)
    page.goto(live_server.url + "/leaderboard")
    mine = page.locator("table tbody tr").filter(has_text="Lena Leaderboard")
    expect(mine).to_have_count(1)
    assert mine.evaluate("row => getComputedStyle(row).display") == "table-row"
    assert mine.bounding_box()["height"] < 60  # one line, not a stacked card per row
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    context.close()


def test_the_admin_navigation_holds_one_row_at_1280_px(live_server, browser):
    email = "nora.nav-admin@example.com"
    live_server.make_user(email, role=Role.ADMIN, name="Nora Nav")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in(page, live_server.url, email)
    for path in ("/admin/", "/admin/advocates", "/admin/settings"):
        page.goto(live_server.url + path)
        links = page.get_by_role("navigation", name="Admin").get_by_role("link")
        tops = {round(box["y"]) for box in (links.nth(i).bounding_box() for i in range(links.count()))}
        assert len(tops) == 1, f"{path}: the admin bar wraps onto {len(tops)} rows"
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    context.close()
