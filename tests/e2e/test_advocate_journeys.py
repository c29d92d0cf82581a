"""Browser journeys of an advocate: self-service, a reward, an opportunity through to points."""

import json
import re
from datetime import date, timedelta

from playwright.sync_api import expect

from portal.extensions import db
from portal.models import (
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    EntrySource,
    Opportunity,
    OpportunityStatus,
    Reward,
    Role,
    SelectionMode,
    utcnow,
)
from portal.services import points
from tests.support import sign_in


def test_profile_blackout_freshness_and_download(live_server, browser):
    base = live_server.url
    live_server.make_user("selina.self@example.com", name="Selina Self")
    page = browser.new_page()
    page.on("dialog", lambda d: d.accept())
    sign_in(page, base, "selina.self@example.com")
    page.goto(base + "/me/profile")
    page.get_by_label("Job title").fill("VP Engineering")
    page.get_by_label("Industry").select_option(label="Healthcare")
    page.get_by_label("Country").select_option(label="Germany")
    page.get_by_label("Topics you know well").fill("zero trust, observability")
    page.get_by_label("Your story and outcomes").fill("We moved 40 hospitals to the cloud.\n\nDowntime fell by 60%.")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_text("Your profile is saved")).to_be_visible()

    page.goto(base + "/me/availability")
    start = date.today() + timedelta(days=3)
    page.get_by_label("First day").fill(start.isoformat())
    page.get_by_label("Last day").fill((start + timedelta(days=7)).isoformat())
    page.get_by_label("Note (optional)").fill("Conference week")
    page.get_by_role("button", name="Add blackout").click()
    expect(page.get_by_text("Blackout added")).to_be_visible()
    expect(page.get_by_text("Conference week")).to_be_visible()

    page.goto(base + "/dashboard")
    page.get_by_role("button", name="My profile is current").click()
    expect(page.get_by_text("Your profile is marked as current")).to_be_visible()
    expect(page.get_by_text("Confirmed today")).to_be_visible()

    page.goto(base + "/me/privacy")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download my data").click()
    data = json.loads(open(info.value.path(), encoding="utf-8").read())
    assert data["account"]["job_title"] == "VP Engineering"
    assert data["profile"]["country"] == "Germany" and data["profile"]["region"] == "Europe"
    assert data["profile"]["availability"]["blackouts"][0]["note"] == "Conference week"


def test_redeem_a_reward_and_see_it_in_history(live_server, browser):
    base = live_server.url
    uid = live_server.make_user("rita.reward@example.com", name="Rita Reward")
    with live_server.app.app_context():
        points.award(db.session, uid, 700, key=f"e2e:{uid}", reason="Welcome", source=EntrySource.MANUAL)
        db.session.add(Reward(name="Program hoodie", description="Warm", points_cost=500, stock=3))
        db.session.commit()
    page = browser.new_page()
    page.on("dialog", lambda d: d.accept())
    sign_in(page, base, "rita.reward@example.com")
    page.goto(base + "/rewards")
    page.locator("article", has_text="Program hoodie").get_by_role("button", name="Redeem").click()
    expect(page.get_by_text("your order for Program hoodie is in")).to_be_visible()
    expect(page.get_by_role("cell", name="Program hoodie")).to_be_visible()
    expect(page.get_by_text("Requested")).to_be_visible()
    page.goto(base + "/me/points")
    expect(page.get_by_text("200 points to spend")).to_be_visible()


def test_request_approve_complete_then_points(live_server, browser):
    base = live_server.url
    uid = live_server.make_user("otto.opportunity@example.com", name="Otto Opportunity")
    live_server.make_user("olga.admin@example.com", role=Role.ADMIN, name="Olga Admin")
    with live_server.app.app_context():
        t = db.session.query(ActivityType).filter_by(key="webinar").one()
        db.session.add(AdvocateProfile(user_id=uid, country_code="FR", confirmed_at=utcnow()))
        db.session.add(ActivityPreference(user_id=uid, activity_type_id=t.id, opted_in=True))
        db.session.add(
            Opportunity(
                activity_type=t,
                title="Data governance panel",
                points=450,
                capacity=3,
                status=OpportunityStatus.OPEN,
                selection_mode=SelectionMode.SELECTION,
                seats_taken=0,
                opened_at=utcnow(),
            )
        )
        db.session.commit()
    page = browser.new_page()
    sign_in(page, base, "otto.opportunity@example.com")
    page.goto(base + "/opportunities")
    page.get_by_role("link", name="Data governance panel").click()
    page.get_by_label(re.compile("Message to the program team")).fill("Happy to join")
    page.get_by_role("button", name="I'm in").click()
    expect(page.get_by_text("Thanks! Your request is in.")).to_be_visible()

    admin = browser.new_context().new_page()
    admin.on("dialog", lambda d: d.accept())
    sign_in(admin, base, "olga.admin@example.com")
    admin.goto(base + "/admin/opportunities")
    admin.get_by_role("link", name="Data governance panel").click()
    admin.get_by_role("button", name="Approve").click()
    expect(admin.get_by_text("Approved; the advocate has been emailed")).to_be_visible()
    admin.get_by_role("button", name="Mark completed").click()
    expect(admin.get_by_text("Completed; points credited")).to_be_visible()

    page.goto(base + "/me/points")
    expect(page.get_by_text("450 points to spend")).to_be_visible()
    expect(page.get_by_role("cell", name=re.compile("Webinar: Data governance panel"))).to_be_visible()
