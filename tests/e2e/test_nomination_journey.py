"""Browser journey (issue 13): a staff member nominates a happy customer from their workspace, an admin
accepts the nomination in the Approvals section, the customer joins from the emailed link, and the staff
member sees (and is emailed) that their nominee joined. The nomination pages are checked with axe-core at
375 and 1280 px."""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.support import sign_in

pytestmark = pytest.mark.e2e

STAFF = "sandra.sales-nominator@example.com"
ADMIN = "ada.nomination-admin@example.com"
NOMINEE = "niko.nominee@customer.example"
PASSWORD = "copper-harbour-lantern-8"

AXE = Axe()


def accessible(page, where: str) -> None:
    problems = []
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 800})
        for v in AXE.run(page).response["violations"]:
            if v["impact"] in ("serious", "critical"):
                problems.append(f"{where} at {width}px: {v['impact']} {v['id']} ({v['help']})")
        if width == 375:
            scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if scroll > inner:
                problems.append(f"{where} at 375px scrolls sideways ({scroll} > {inner})")
    assert problems == []


def test_staff_nominates_an_admin_accepts_and_the_customer_joins(live_server, page, new_context, mailbox):
    base = live_server.url
    live_server.make_user(STAFF, role="staff", name="Sandra Sales")
    live_server.make_user(ADMIN, role="admin", name="Ada Admin")

    # The staff member nominates from the workspace's home.
    sign_in(page, base, STAFF)
    page.get_by_role("link", name="Nominate a customer").first.click()
    expect(page.get_by_role("heading", name="Nominate a customer")).to_be_visible()
    page.get_by_label("Name").fill("Niko Nominee")
    page.get_by_label("Work email").fill("Niko.Nominee@Customer.example")
    page.get_by_label("Company").fill("Nominee Networks")
    page.get_by_label("Job title").fill("VP Operations")
    page.get_by_label("Why them?").fill("Halved their support backlog; would gladly give a reference call.")
    page.get_by_role("button", name="Nominate").click()
    expect(page.get_by_text("the program team will review your nomination of Niko Nominee")).to_be_visible()
    expect(page.get_by_text("Waiting for review")).to_be_visible()
    accessible(page, "nomination")
    # The same customer again: explained, not recorded twice.
    page.get_by_role("navigation", name="Workspace").get_by_role("link", name="Nominations").click()
    page.get_by_role("link", name="Nominate a customer").first.click()
    page.get_by_label("Name").fill("Niko N.")
    page.get_by_label("Work email").fill(NOMINEE)
    page.get_by_label("Company").fill("Nominee Networks")
    page.get_by_label("Job title").fill("VP Operations")
    page.get_by_label("Why them?").fill("Again.")
    page.get_by_role("button", name="Nominate").click()
    expect(page.get_by_text(re.compile(r"already nominated by Sandra Sales on"))).to_be_visible()
    accessible(page, "duplicate nomination")

    # The admin accepts it from the Approvals section: the customer is invited.
    admin = new_context().new_page()
    sign_in(admin, base, ADMIN)
    admin.goto(base + "/admin/")
    admin.get_by_role("navigation", name="Admin").get_by_role("link", name="Approvals").click()
    admin.get_by_role("navigation", name="Approvals").get_by_role("link", name="Nominations").click()
    expect(admin.get_by_role("heading", name="Nominations to review")).to_be_visible()
    expect(admin.get_by_text("Halved their support backlog")).to_be_visible()
    accessible(admin, "nominations to review")
    admin.get_by_role("button", name="Accept and invite Niko Nominee").click()
    expect(admin.get_by_text("Niko Nominee has been sent their invitation.")).to_be_visible()

    # The customer joins from the emailed link (what was known filled in).
    link = mailbox.last(NOMINEE, subject="invited").link("/auth/invited/")
    person = new_context().new_page()
    person.goto(link)
    expect(person.get_by_label("Company")).to_have_value("Nominee Networks")
    person.get_by_label("Password", exact=True).fill(PASSWORD)
    person.get_by_label("Repeat the password").fill(PASSWORD)
    person.get_by_label(re.compile("I accept the program terms")).check()
    person.get_by_role("button", name="Join the program").click()
    expect(person).to_have_url(base + "/dashboard")

    # The nominator is told, and their nomination counts.
    told = mailbox.last(STAFF, subject="joined the program")
    assert "Niko Nominee" in told.text
    page.goto(base + "/staff/")
    expect(page.get_by_text("Joined")).to_be_visible()
