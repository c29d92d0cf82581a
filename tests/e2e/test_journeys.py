"""Register, open the emailed link, be approved, sign in, sign out; and the layout at 375 px."""
import re

from playwright.sync_api import expect

from portal.models import Role
from tests.e2e.conftest import sign_in


def test_register_verify_approve_login_logout(live_server, browser, mailbox):
    base = live_server.url
    live_server.make_user("e2e.admin@example.com", role=Role.ADMIN, name="Erin Admin")
    page = browser.new_page()
    page.on("dialog", lambda d: d.accept())
    page.goto(base + "/")
    page.get_by_role("link", name="Join the program").first.click()
    page.get_by_label("Full name").fill("Jordan Journey")
    page.get_by_label("Work email").fill("jordan.journey@example.com")
    page.get_by_label("Company").fill("Globex")
    page.get_by_label("Job title").fill("Head of Data")
    page.get_by_label("Password", exact=True).fill("violet-kayak-harbour-7")
    page.get_by_label("Repeat the password").fill("violet-kayak-harbour-7")
    page.get_by_label(re.compile("I accept the program terms")).check()
    page.get_by_role("button", name="Join the program").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    link = mailbox.last("jordan.journey@example.com", subject="Confirm your email").link("/auth/verify/")
    page.goto(link)
    page.get_by_role("button", name="Confirm my email").click()
    expect(page.get_by_text("Your email is confirmed")).to_be_visible()

    sign_in(page, base, "jordan.journey@example.com", "violet-kayak-harbour-7")
    expect(page.get_by_role("heading", name="Your application")).to_be_visible()
    expect(page.get_by_text("reviews every application")).to_be_visible()

    admin = browser.new_context().new_page()
    admin.on("dialog", lambda d: d.accept())
    sign_in(admin, base, "e2e.admin@example.com")
    admin.goto(base + "/admin/pending")
    admin.get_by_role("button", name="Approve Jordan Journey").click()
    expect(admin.get_by_text("Jordan Journey is approved")).to_be_visible()
    assert mailbox.last("jordan.journey@example.com", subject="approved")

    page.goto(base + "/dashboard")
    expect(page.get_by_role("heading", name="Welcome, Jordan Journey")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out")).to_be_visible()
    page.goto(base + "/dashboard")
    expect(page).to_have_url(re.compile(r"/auth/login\?next="))


def test_small_screen_layout(live_server, browser):
    context = browser.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    for path in ("/", "/auth/login", "/auth/register"):
        page.goto(live_server.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} scrolls sideways at 375 px ({width}px)"
    page.goto(live_server.url + "/")
    nav_link = page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in")
    expect(nav_link).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    expect(nav_link).to_be_visible()
