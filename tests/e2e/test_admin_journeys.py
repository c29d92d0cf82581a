"""The admin runs the day from the home page (issue 12, Tests: "an admin approves a registration from the
home queue"): the queue of registrations leads to the list, one applicant is approved with a click and a
second after selecting them (with the confirmation), each is emailed, and the queue empties."""

import re

import pytest
from playwright.sync_api import expect

from portal.models import Role, Status
from tests.support import sign_in

pytestmark = pytest.mark.e2e

ADMIN = "quinn.queue-admin@example.com"


def _queue(page, label: str):
    return page.locator("li.queue").filter(has=page.get_by_text(label))


def test_an_admin_approves_registrations_from_the_home_queue(live_server, page, mailbox):
    base = live_server.url
    live_server.make_user(ADMIN, role=Role.ADMIN, name="Quinn Admin")
    first = ("Ravi Applicant", "ravi.applicant@example.com")
    second = ("Sofia Applicant", "sofia.applicant@example.com")
    for name, email in (first, second):
        live_server.make_user(email, status=Status.PENDING, name=name, company="Initech")

    sign_in(page, base, ADMIN)
    page.goto(base + "/admin/")
    registrations = _queue(page, "Registrations awaiting approval")
    count = int(registrations.locator(".stat-value").inner_text().replace(",", ""))
    assert count >= 2  # other journeys share the live database: at least ours
    registrations.get_by_role("link").click()
    expect(page).to_have_url(base + "/admin/pending")
    expect(page.get_by_role("heading", name="Applications waiting for approval")).to_be_visible()

    # One with its own button.
    row = page.get_by_role("row", name=re.compile(first[0]))
    expect(row).to_contain_text(first[1])
    row.get_by_role("button", name=f"Approve {first[0]}").click()
    expect(page.get_by_text(f"{first[0]} is approved and has been emailed")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(first[0]))).to_have_count(0)

    # One selected, then "Approve selected", which asks first.
    page.get_by_label(f"Select {second[0]}").check()
    questions = []
    page.once("dialog", lambda d: (questions.append(d.message), d.accept()))
    page.get_by_role("button", name="Approve selected").click()
    expect(page.get_by_text(re.compile(r"Approved 1 applicant; each has been emailed"))).to_be_visible()
    assert questions == ["Approve the selected applicants? Each one is emailed."]
    expect(page.get_by_role("row", name=re.compile(second[0]))).to_have_count(0)

    for _name, email in (first, second):
        mail = mailbox.wait_for(email, subject="approved")[-1]
        assert mail.link("/auth/login").startswith(base + "/")

    # Back home, the queue has two fewer.
    page.goto(base + "/admin/")
    after = int(_queue(page, "Registrations awaiting approval").locator(".stat-value").inner_text().replace(",", ""))
    assert after == count - 2
