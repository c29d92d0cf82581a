"""Join, confirm the email, wait for approval, be approved by an admin, sign in, sign out; and the
layout at 375 px. Everything the applicant and the admin do happens in the browser."""

import re

import pytest
from playwright.sync_api import expect

from tests.support import sign_in

pytestmark = pytest.mark.e2e

NAME = "Jordan Journey"
EMAIL = "jordan.journey@example.com"
PASSWORD = "violet-kayak-harbour-7"


def test_register_verify_approve_sign_in_and_out(live_server, page, new_context, mailbox):
    base = live_server.url
    live_server.create_admin("erin.admin@example.com", name="Erin Admin")  # `flask users create-admin`

    # The landing page leads to the form.
    page.goto(base + "/")
    page.get_by_role("main").get_by_role("link", name="Join the program").click()
    expect(page).to_have_url(base + "/auth/register")
    page.get_by_label("Full name").fill(NAME)
    page.get_by_label("Work email").fill(EMAIL)
    page.get_by_label("Company").fill("Globex")
    page.get_by_label("Job title").fill("Head of Data")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_label(re.compile("I accept the program terms")).check()
    page.get_by_role("button", name="Join the program").click()
    expect(page).to_have_url(base + "/auth/check-email")
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    # The emailed link (built from PUBLIC_BASE_URL) opens on the live server; confirming is a POST.
    link = mailbox.last(EMAIL, subject="Confirm your email").link("/auth/verify/")
    assert link.startswith(base + "/auth/verify/"), link
    page.goto(link)
    page.get_by_role("button", name="Confirm my email").click()
    expect(page.get_by_text("Your email is confirmed")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/auth/login$"))

    # Signed in but not yet approved: the status page, and no way into the dashboard.
    sign_in(page, base, EMAIL, PASSWORD)
    expect(page).to_have_url(base + "/account/status")
    expect(page.get_by_role("heading", name="Your application")).to_be_visible()
    expect(page.get_by_text("reviews every application")).to_be_visible()
    page.goto(base + "/dashboard")
    expect(page).to_have_url(base + "/account/status")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out")).to_be_visible()

    # The admin, in a browser context of their own, approves the applicant.
    admin = new_context().new_page()
    sign_in(admin, base, "erin.admin@example.com")
    expect(admin.get_by_role("link", name="Admin")).to_be_visible()
    admin.goto(base + "/admin/pending")
    row = admin.get_by_role("row", name=re.compile(NAME))
    expect(row).to_contain_text(EMAIL)
    expect(row).to_contain_text("Globex")
    row.get_by_role("button", name=f"Approve {NAME}").click()
    expect(admin.get_by_text(f"{NAME} is approved and has been emailed")).to_be_visible()
    expect(admin.get_by_role("row", name=re.compile(NAME))).to_have_count(0)

    # The approval email's sign-in link, then the dashboard.
    login_link = mailbox.last(EMAIL, subject="approved").link("/auth/login")
    assert login_link.startswith(base + "/"), login_link
    page.goto(login_link)
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(base + "/dashboard")
    expect(page).to_have_title(re.compile("My dashboard"))
    expect(page.get_by_role("heading", name=f"Welcome, {NAME}")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="My dashboard")).to_be_visible()

    # Sign out: the session is over, the dashboard asks to sign in again.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in")).to_be_visible()
    page.goto(base + "/dashboard")
    expect(page).to_have_url(re.compile(r"/auth/login\?next=%2Fdashboard$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_small_screen_has_no_sideways_scroll_and_the_menu_opens(live_server, new_context):
    page = new_context(viewport={"width": 375, "height": 740}).new_page()
    for path in ("/", "/auth/login", "/auth/register"):
        page.goto(live_server.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} scrolls sideways at 375 px ({width}px)"
        if path == "/auth/login":  # the whole form fits: fields and button inside the viewport
            for control in (
                page.get_by_label("Email"),
                page.get_by_label("Password"),
                page.get_by_role("button", name="Sign in"),
            ):
                box = control.bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375, (control, box)

    page.goto(live_server.url + "/")
    toggle = page.get_by_role("button", name="Menu")
    nav_link = page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(nav_link).to_be_hidden()
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(nav_link).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_admin_health_page_on_a_small_screen_and_search_boxes_stop_at_200(live_server, new_context):
    """The admin's health page, reached through the menu at 375 px; the staff search box lets no more than
    200 characters through, so the browser never builds a URL gunicorn would refuse itself (issue 11)."""
    live_server.create_admin("hana.health@example.com", name="Hana Health")
    page = new_context(viewport={"width": 375, "height": 740}).new_page()
    sign_in(page, live_server.url, "hana.health@example.com")
    page.goto(live_server.url + "/admin/")
    page.get_by_role("button", name="Menu").click()
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Health").click()
    expect(page).to_have_url(live_server.url + "/admin/health")
    expect(page.get_by_role("heading", name="Health", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Rate limits")).to_be_visible()
    expect(page.locator("dd code").first).to_have_text("memory://")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    page.goto(live_server.url + "/search/advocates")
    box = page.get_by_role("searchbox", name="Search advocates")
    box.press_sequentially("zero trust " * 25)
    assert len(box.input_value()) == 200
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"/search/advocates\?q="))
    expect(page.get_by_text("too long")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
