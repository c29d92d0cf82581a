"""A reference request end to end (issue 13): a staff member requests a reference call for a deal, an admin
asks an advocate from the request's page, the advocate says yes in one click from their asks page, and the
requester marks it completed and records a won deal; everyone is emailed along the way."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from portal.models import ActivityPreference, ActivityType, AdvocateProfile, Role, utcnow
from portal.services import points
from tests.support import sign_in

pytestmark = pytest.mark.e2e

STAFF = "rita.requester@example.com"
ADMIN = "andy.asker-admin@example.com"
ADVOCATE = "vera.voice@example.com"


def test_a_reference_request_from_request_to_won_deal(live_server, browser, mailbox):
    base = live_server.url
    live_server.make_user(STAFF, role=Role.STAFF, name="Rita Requester")
    live_server.make_user(ADMIN, role=Role.ADMIN, name="Andy Admin")
    vera = live_server.make_user(ADVOCATE, name="Vera Voice")
    with live_server.app.app_context():
        call = db.session.query(ActivityType).filter_by(key="reference_call").one()
        db.session.add(AdvocateProfile(user_id=vera, country_code="NL", confirmed_at=utcnow()))
        db.session.flush()
        db.session.add(ActivityPreference(user_id=vera, activity_type_id=call.id, opted_in=True))
        db.session.commit()
        db.session.refresh(call)
    due = (utcnow().date() + timedelta(days=14)).isoformat()

    # The staff member asks for a reference call.
    staff = browser.new_context().new_page()
    sign_in(staff, base, STAFF)
    staff.goto(base + "/staff/")
    staff.get_by_role("link", name="Request a reference").first.click()
    staff.get_by_label("What you need").select_option(label="Reference call")
    staff.get_by_label("Account or deal name").fill("Umbrella Corporation")
    staff.get_by_label("Deal amount (optional)").fill("80000")
    staff.get_by_label("Needed by").fill(due)
    staff.get_by_label("Anything else the advocate should bring").fill("Someone who rolled out to 500 seats")
    staff.get_by_role("button", name="Request a reference").click()
    expect(staff.get_by_text("Your request is in")).to_be_visible()
    expect(staff.get_by_role("heading", name="Reference call for Umbrella Corporation")).to_be_visible()
    request_url = staff.url

    # An admin asks the advocate from the request's page.
    admin = browser.new_context().new_page()
    sign_in(admin, base, ADMIN)
    admin.goto(base + "/staff/references")
    admin.get_by_role("link", name="Umbrella Corporation").click()
    admin.get_by_label("Advocate's email address").fill(ADVOCATE)
    admin.get_by_role("button", name="Ask this advocate").click()
    expect(admin.get_by_text("Vera Voice has been asked")).to_be_visible()
    ask_mail = mailbox.wait_for(ADVOCATE, subject="Could you help?")[-1]
    assert "Rita Requester" in ask_mail.text and "Umbrella Corporation" in ask_mail.text

    # The advocate says yes from the link in the email.
    advocate = browser.new_context().new_page()
    sign_in(advocate, base, ADVOCATE)
    advocate.goto(ask_mail.link("/me/asks"))
    expect(advocate.get_by_role("heading", name="My asks", level=1)).to_be_visible()
    expect(advocate.get_by_text("Someone who rolled out to 500 seats")).to_be_visible()
    advocate.get_by_role("button", name="Yes, I'll do it").click()
    expect(advocate.get_by_text("Thank you! You said yes")).to_be_visible()
    mailbox.wait_for(STAFF, subject="said yes")

    # The requester sees it accepted, marks it completed and records the won deal.
    staff.goto(request_url)
    expect(staff.get_by_text("Accepted", exact=True)).to_be_visible()
    staff.once("dialog", lambda d: d.accept())
    staff.get_by_role("button", name="Mark as completed").click()
    expect(staff.get_by_text("Completed; the advocates' points are credited")).to_be_visible()
    staff.get_by_role("combobox", name="Outcome").select_option(label="Won")
    staff.get_by_label("Final amount (optional)").fill("95000")
    staff.get_by_role("button", name="Save the outcome").click()
    expect(staff.get_by_text("Outcome saved")).to_be_visible()
    expect(staff.get_by_text(re.compile(r"Won: 95,000 USD"))).to_be_visible()

    # The advocate got the activity's points and sees the ask as done.
    advocate.goto(base + "/me/asks")
    expect(advocate.get_by_role("cell", name="Done")).to_be_visible()
    with live_server.app.app_context():
        assert points.balance(db.session, vera) == call.default_points
