"""Browser journey: an admin imports a small CSV whose email column has an odd header, fixes the mapping,
previews the problems, imports (following the job page), and the invited person signs up from the link in
the email, with their own password. Every page reached is checked with axe-core at 375 and 1280 px."""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.support import sign_in

pytestmark = pytest.mark.e2e

ADMIN = "iona.import-admin@example.com"
INVITEE = "quinn.quarterly@example.com"
PASSWORD = "amber-lantern-meadow-3"
CSV = (
    "Full name;Reach them at;Organisation;Role;Industry\n"
    "Quinn Quarterly;quinn.quarterly@example.com;Quarterly Ltd;VP Finance;Healthcare\n"
    "Rory Repeat;Quinn.Quarterly@example.com;Quarterly Ltd;CFO;Helthcare\n"
    "Nobody;not-an-address;Nowhere;;\n"
).encode("utf-8-sig")

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


def test_admin_imports_a_csv_and_the_invited_person_signs_up(live_server, page, new_context, mailbox, tmp_path):
    base = live_server.url
    live_server.make_user(ADMIN, role="admin", name="Iona Import")
    sign_in(page, base, ADMIN)
    page.on("dialog", lambda d: d.accept())

    # From the admin navigation to the upload form.
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Advocates").click()
    page.get_by_role("navigation", name="Advocates").get_by_role("link", name="Import advocates").click()
    expect(page.get_by_role("heading", name="Import advocates from a CSV file")).to_be_visible()
    accessible(page, "imports")
    path = tmp_path / "spring-event.csv"
    path.write_bytes(CSV)
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Upload and map the columns").click()

    # "Reach them at" is not recognised as the email column: the admin says so.
    expect(page.get_by_role("heading", name="Which field does each column fill?")).to_be_visible()
    expect(page.get_by_label("Reach them at")).to_have_value("")
    accessible(page, "mapping")
    page.get_by_role("button", name="Save the mapping and preview").click()
    expect(page.get_by_text("Choose the column that holds the email addresses")).to_be_visible()
    accessible(page, "mapping with an error")
    page.get_by_label("Reach them at").select_option("email")
    page.get_by_label("Organisation").select_option("company")
    page.get_by_role("button", name="Save the mapping and preview").click()

    # The preview: one to invite, two skipped, with the reasons and a suggestion.
    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    expect(page.get_by_text("the same address as line 2: skipped")).to_be_visible()
    expect(page.get_by_text('Did you mean "Healthcare"?')).to_be_visible()
    expect(page.get_by_text(re.compile(r"invalid email address"))).to_be_visible()
    accessible(page, "preview")
    page.get_by_role("button", name="Import and invite 1 person").click()

    # The job page follows the job until it is done.
    expect(page.get_by_role("heading", name="Done")).to_be_visible(timeout=20_000)
    expect(page.locator("#import-progress")).to_have_attribute("value", "3")
    accessible(page, "job done")

    # The invited person opens the link from the email and joins with their own password.
    mail = mailbox.last(INVITEE, subject="invited")
    link = mail.link("/auth/invited/")
    assert link.startswith(base + "/auth/invited/"), link
    person = new_context().new_page()
    person.goto(link)
    expect(person.get_by_label("Full name")).to_have_value("Quinn Quarterly")
    expect(person.get_by_label("Company")).to_have_value("Quarterly Ltd")
    expect(person.get_by_label("Job title")).to_have_value("VP Finance")
    expect(person.get_by_label("Email")).to_have_value(INVITEE)
    accessible(person, "invited sign-up")
    person.get_by_label("Job title").fill("Chief Financial Officer")
    person.get_by_label("Password", exact=True).fill(PASSWORD)
    person.get_by_label("Repeat the password").fill(PASSWORD)
    person.get_by_label(re.compile("I accept the program terms")).check()
    person.get_by_role("button", name="Join the program").click()
    expect(person).to_have_url(base + "/dashboard")
    expect(person.get_by_text("Welcome to the advocate program!")).to_be_visible()

    # The link is used up; the new member signs in with the password they chose.
    person.goto(link)
    expect(person.get_by_text("already been used")).to_be_visible()
    other = new_context().new_page()
    sign_in(other, base, INVITEE, PASSWORD)
    expect(other).to_have_url(base + "/dashboard")
