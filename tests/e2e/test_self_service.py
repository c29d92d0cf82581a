"""Browser journey of the advocate's self-service: edit the profile, add a blackout, confirm the profile is
current, download the data, in the system Chromium against the live server."""

import json
import re
from datetime import timedelta

from playwright.sync_api import expect

from portal.extensions import db
from portal.models import AdvocateProfile, User, utcnow
from tests.support import sign_in

STORY = "We moved 40 clinics to the cloud 🚀\n\nשלום — downtime fell by 60%, and نعم it stayed there."


def _backdate(app, user_id, days):
    """Approval and last confirmation ``days`` ago: the profile is stale."""
    with app.app_context():
        past = utcnow() - timedelta(days=days)
        user = db.session.get(User, user_id)
        user.approved_at = past
        profile = db.session.get(AdvocateProfile, user_id) or AdvocateProfile(user_id=user_id)
        profile.confirmed_at = past
        db.session.add(profile)
        db.session.commit()


def test_edit_profile_add_blackout_confirm_and_download(live_server, browser):
    base = live_server.url
    uid = live_server.make_user("sasha.selfservice@example.com", name="Sasha Selfservice", job_title="Engineer")
    _backdate(live_server.app, uid, 200)
    page = browser.new_page()
    page.on("dialog", lambda d: d.accept())
    sign_in(page, base, "sasha.selfservice@example.com")
    expect(page.get_by_role("heading", name="Welcome, Sasha Selfservice")).to_be_visible()
    expect(page.get_by_text("You last confirmed your profile 200 days ago.")).to_be_visible()

    # Edit the profile.
    page.get_by_role("link", name="Edit my profile").click()
    expect(page.get_by_role("heading", name=re.compile(r"Profile \d+% complete"))).to_be_visible()
    expect(page.get_by_text(re.compile("Still missing: your industry"))).to_be_visible()
    page.get_by_label("Job title").fill("VP Engineering")
    page.get_by_label("Industry").select_option(label="Healthcare")
    page.get_by_label("Company size").select_option(label="1,000-4,999 employees")
    page.get_by_label("Country").select_option(label="Germany")
    page.get_by_label("LinkedIn profile").fill("https://www.linkedin.com/in/sasha")
    page.get_by_label("Analytics Cloud").check()
    page.get_by_label("Security Suite").check()
    page.get_by_label("Use cases").fill("patient records, cloud migration")
    page.get_by_label("Topics you know well").fill("zero trust, <b>HIPAA</b>")
    page.get_by_label("Your story and outcomes").fill(STORY)
    page.get_by_label("Show me on leaderboards").uncheck()
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_text("Your profile is saved and marked as current.")).to_be_visible()
    expect(page.get_by_text("Still missing: at least one activity you are willing to do.")).to_be_visible()
    expect(page.get_by_label("Your story and outcomes")).to_have_value(STORY)
    expect(page.get_by_label("Topics you know well")).to_have_value(re.compile(r"<b>HIPAA</b>"))
    assert page.locator("b", has_text="HIPAA").count() == 0  # shown as text, never as markup

    # Suggestions go on after a comma (portal.js): the options complete the last item, not the first.
    topics = page.get_by_label("Topics you know well")
    page.wait_for_load_state("load")  # portal.js runs once the page has loaded
    expect(topics).not_to_have_attribute("list", "topic-suggestions")  # the script gave it a list of its own
    topics.fill("")
    topics.press_sequentially("zero trust, ")
    options = page.evaluate(
        "el => Array.from(el.list ? el.list.options : []).map(o => o.value)", topics.element_handle()
    )
    # What is typed, plus each tag in use not yet chosen (other journeys on this live server add their own tags).
    assert "zero trust, <b>HIPAA</b>" in options, options
    assert all(o.startswith("zero trust, ") for o in options), options
    assert "zero trust, zero trust" not in options, options
    topics.fill("zero trust, <b>HIPAA</b>")

    # Preview it as the program's team sees it: the story in paragraphs, right-to-left text kept, no markup.
    page.get_by_role("link", name="Preview my profile").click()
    expect(page.get_by_role("heading", name="Preview my profile")).to_be_visible()
    story = page.locator(".profile-card .story p")
    expect(story).to_have_count(2)
    expect(story.nth(0)).to_have_text("We moved 40 clinics to the cloud 🚀")
    expect(story.nth(1)).to_have_text("שלום — downtime fell by 60%, and نعم it stayed there.")
    expect(page.get_by_text("<b>HIPAA</b>, zero trust")).to_be_visible()
    assert page.locator(".profile-card b").count() == 0
    page.set_viewport_size({"width": 375, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # fits a phone
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("link", name="Edit my profile").click()

    # A wrong blackout is refused with a message; a right one is added and shown as the status.
    page.get_by_role("link", name="Availability").click()
    start = utcnow().date() - timedelta(days=1)
    page.get_by_label("First day").fill((start + timedelta(days=5)).isoformat())
    page.get_by_label("Last day").fill(start.isoformat())
    page.get_by_role("button", name="Add blackout").click()
    expect(page.get_by_text("The last day cannot be before the first day.")).to_be_visible()
    page.get_by_label("First day").fill(start.isoformat())
    page.get_by_label("Last day").fill((start + timedelta(days=10)).isoformat())
    page.get_by_label("Note (optional)").fill("Clinic go-live 🏥")
    page.get_by_role("button", name="Add blackout").click()
    expect(page.get_by_text("Blackout added. Nobody will ask you during it.")).to_be_visible()
    expect(page.get_by_text("Clinic go-live 🏥")).to_be_visible()
    until = (start + timedelta(days=10)).strftime("%d %b %Y")
    expect(page.get_by_role("status").filter(has_text="In a blackout until")).to_have_text(
        f"In a blackout until {until}"
    )

    # Stale again (as if months had passed): confirm with "My profile is current".
    _backdate(live_server.app, uid, 190)
    page.goto(base + "/me/preferences")
    expect(page.get_by_text("Is your profile still current?")).to_be_visible()
    page.get_by_role("link", name="Confirm it or update it").click()
    expect(page.get_by_text(f"In a blackout until {until}")).to_be_visible()
    page.get_by_role("button", name="My profile is current").click()
    expect(page.get_by_text("Thanks! Your profile is marked as current.")).to_be_visible()
    expect(page.get_by_text("Confirmed today.")).to_be_visible()
    expect(page.get_by_text("You last confirmed your profile")).to_have_count(0)

    # Download my data.
    page.get_by_role("link", name="Edit my profile").click()
    page.get_by_role("link", name="Privacy and account").click()
    with page.expect_download() as info:
        page.get_by_role("link", name="Download my data").click()
    download = info.value
    assert download.suggested_filename == "my-advocate-data.json"
    with open(download.path(), encoding="utf-8") as fh:
        data = json.load(fh)
    assert data["account"]["email"] == "sasha.selfservice@example.com"
    assert data["account"]["job_title"] == "VP Engineering"
    profile = data["profile"]
    assert profile["industry"] == "Healthcare" and profile["company_size"] == "1,000-4,999 employees"
    assert profile["country"] == "Germany" and profile["region"] == "Europe"
    assert profile["products"] == ["Analytics Cloud", "Security Suite"]
    assert sorted(profile["use_cases"]) == ["cloud migration", "patient records"]
    assert sorted(profile["topics"]) == ["<b>HIPAA</b>", "zero trust"]
    assert profile["story"] == STORY
    assert profile["linkedin_url"] == "https://www.linkedin.com/in/sasha"
    assert profile["show_in_directory"] is True and profile["show_on_leaderboard"] is False
    assert profile["confirmed_at"].startswith(utcnow().date().isoformat())
    availability = profile["availability"]
    assert availability["blackouts"] == [
        {
            "starts_on": start.isoformat(),
            "ends_on": (start + timedelta(days=10)).isoformat(),
            "note": "Clinic go-live 🏥",
        }
    ]
    assert availability["status"] == f"In a blackout until {until}"
