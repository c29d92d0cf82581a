"""Advocate self-service: profile, preferences, availability, freshness, privacy (issue 3)."""

import json
from datetime import date, timedelta

import pytest
import time_machine

from portal.extensions import db
from portal.models import (
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    Blackout,
    Industry,
    Product,
    Role,
    Status,
    User,
    utcnow,
)
from tests.support import TEST_PASSWORD, login, post_form, reload

XSS = "<script>alert('x')</script>"


def profile_data(**over):
    ind = db.session.query(Industry).first()
    prods = db.session.query(Product).limit(2).all()
    data = {
        "name": "Ada Advocate",
        "job_title": "CISO",
        "company": "Bluefin Bank",
        "industry_id": str(ind.id),
        "size_band_id": "",
        "country_code": "DE",
        "product_ids": [str(p.id) for p in prods],
        "use_cases": "fraud detection, onboarding",
        "topics": "zero trust, GDPR, zero trust",
        "story": "We cut fraud losses by half.\n\nAnd onboarding went from weeks to days.",
        "linkedin_url": "https://www.linkedin.com/in/ada",
        "show_in_directory": "y",
        "show_on_leaderboard": "y",
    }
    data.update(over)
    return data


def test_profile_saves_confirms_and_derives_region(advocate_client, advocate):
    resp = post_form(advocate_client, "/me/profile", profile_data())
    assert resp.status_code == 302
    p = reload(AdvocateProfile, advocate.id)
    assert p.country.code == "DE" and p.region.name == "Europe"
    assert sorted(t.name for t in p.topics) == ["GDPR", "zero trust"]  # deduplicated
    assert p.confirmed_at is not None and len(p.products) == 2
    page = advocate_client.get("/me/profile").get_data(as_text=True)
    assert "zero trust" in page and 'list="topic-suggestions"' in page


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("industry_id", "99999", "Not a valid choice"),
        ("country_code", "ZZ", "Not a valid choice"),
        ("product_ids", ["99999"], "valid choice"),
        ("linkedin_url", "http://www.linkedin.com/in/x", "https://"),
        ("linkedin_url", "https://evil.example/in/x", "not a LinkedIn"),
        ("story", "x" * 5001, "5000"),
        ("name", "", "required"),
        ("topics", ",".join(f"t{i}" for i in range(16)), "at most 15"),
        ("topics", "x" * 41, "at most 40"),
    ],
)
def test_profile_invalid_input_is_422_and_nothing_saved(advocate_client, advocate, field, value, message):
    resp = post_form(advocate_client, "/me/profile", profile_data(**{field: value}))
    assert resp.status_code == 422 and message.lower() in resp.get_data(as_text=True).lower()
    p = reload(AdvocateProfile, advocate.id)
    assert p is None or p.confirmed_at is None


def test_html_escaped_and_unicode_kept(advocate_client, advocate, admin_client):
    post_form(advocate_client, "/me/profile", profile_data(name=f"Ada {XSS} שלום 😀", story=XSS, topics=XSS[:30]))
    for page in (advocate_client.get("/me/profile"), advocate_client.get("/dashboard")):
        body = page.get_data(as_text=True)
        assert XSS not in body and "&lt;script&gt;" in body
    data = json.loads(advocate_client.get("/me/data.json").data)
    assert data["account"]["name"] == f"Ada {XSS} שלום 😀" and data["profile"]["story"] == XSS


def test_completeness_says_what_is_missing(advocate_client):
    body = advocate_client.get("/me/profile").get_data(as_text=True)
    assert "your industry" in body and "your LinkedIn profile" in body
    post_form(advocate_client, "/me/profile", profile_data(size_band_id="1", story="A" * 100))
    types = db.session.query(ActivityType).all()
    post_form(advocate_client, "/me/preferences/activities", {f"opt_{types[0].id}": "y"}, page="/me/preferences")
    assert "100% complete" in advocate_client.get("/me/profile").get_data(as_text=True)


def test_activity_preferences_and_communication(advocate_client, advocate):
    t = db.session.query(ActivityType).filter_by(key="speaking").one()
    resp = post_form(
        advocate_client,
        "/me/preferences/activities",
        {f"opt_{t.id}": "y", f"note_{t.id}": "virtual events only"},
        page="/me/preferences",
    )
    assert resp.status_code == 302
    pref = reload(ActivityPreference, (advocate.id, t.id))
    assert pref.opted_in and pref.note == "virtual events only"
    too_long = post_form(
        advocate_client, "/me/preferences/activities", {f"note_{t.id}": "x" * 201}, page="/me/preferences"
    )
    assert too_long.status_code == 422
    bad = post_form(advocate_client, "/me/preferences/communication", {"digest": "yearly"}, page="/me/preferences")
    assert bad.status_code == 422
    ok = post_form(
        advocate_client,
        "/me/preferences/communication",
        {"digest": "weekly", "notify_news": "y"},
        page="/me/preferences",
    )
    assert ok.status_code == 302
    p = reload(AdvocateProfile, advocate.id)
    assert p.digest.value == "weekly" and p.notify_news and not p.notify_reminders


def test_availability_limits_pause_and_status(advocate_client, advocate):
    tomorrow = (date.today() + timedelta(days=10)).isoformat()
    resp = post_form(
        advocate_client,
        "/me/availability",
        {"max_asks_per_month": "2", "max_asks_per_quarter": "5", "paused_until": tomorrow, "timezone": "Europe/Berlin"},
    )
    assert resp.status_code == 302
    p = reload(AdvocateProfile, advocate.id)
    assert (p.max_asks_per_month, p.max_asks_per_quarter, p.timezone) == (2, 5, "Europe/Berlin")
    assert "Paused until" in advocate_client.get("/dashboard").get_data(as_text=True)
    for bad in (
        {"paused_until": "2001-01-01", "timezone": "UTC"},
        {"timezone": "Mars/Base"},
        {"max_asks_per_month": "5", "max_asks_per_quarter": "2", "timezone": "UTC"},
        {"max_asks_per_month": "-1", "timezone": "UTC"},
    ):
        assert post_form(advocate_client, "/me/availability", bad).status_code == 422


def test_blackouts_overlap_history_and_ownership(app, advocate_client, advocate, make_user):
    today = date.today()

    def add(c, s, e, note=""):
        data = {"starts_on": s.isoformat(), "ends_on": e.isoformat(), "note": note}
        return post_form(c, "/me/availability/blackouts", data, page="/me/availability")

    assert add(advocate_client, today + timedelta(days=5), today + timedelta(days=1)).status_code == 422
    assert add(advocate_client, today, today + timedelta(days=3), XSS).status_code == 302
    assert add(advocate_client, today + timedelta(days=2), today + timedelta(days=8)).status_code == 302
    body = advocate_client.get("/dashboard").get_data(as_text=True)
    assert "In a blackout until" in body and (today + timedelta(days=8)).strftime("%d %b %Y") in body
    assert XSS not in advocate_client.get("/me/availability").get_data(as_text=True)
    other = make_user(email="other@example.com")
    oc = app.test_client()
    login(oc, other.email)
    mine = db.session.query(Blackout).filter_by(user_id=advocate.id).first()
    resp = post_form(oc, f"/me/availability/blackouts/{mine.id}/delete", {}, page="/me/availability")
    assert resp.status_code == 404
    db.session.rollback()
    assert db.session.get(Blackout, mine.id) is not None
    with time_machine.travel(utcnow() + timedelta(days=30)):
        login(advocate_client, advocate.email)  # sessions last 14 days
        page = advocate_client.get("/me/availability").get_data(as_text=True)
        assert "Past blackouts (2)" in page


def test_other_roles_and_anonymous_cannot_reach_self_service(client, staff_client, admin_client):
    for path in ("/me/profile", "/me/data.json", "/me/availability"):
        assert staff_client.get(path).status_code == 403
        assert admin_client.get(path).status_code == 403
        assert client.get(path).status_code == 302


def test_export_contains_everything(advocate_client, advocate):
    post_form(advocate_client, "/me/profile", profile_data())
    resp = advocate_client.get("/me/data.json")
    assert resp.headers["Content-Disposition"].startswith("attachment")
    data = json.loads(resp.data)
    assert data["account"]["email"] == advocate.email
    assert {"profile", "consents", "account"} <= set(data)
    assert "availability" in data["profile"] and "preferences" in data["profile"]


def test_confirm_current_and_stale_banner(advocate_client, advocate):
    post_form(advocate_client, "/me/profile", profile_data())
    with time_machine.travel(utcnow() + timedelta(days=181)):
        login(advocate_client, advocate.email)
        assert "Is your profile still current?" in advocate_client.get("/me/preferences").get_data(as_text=True)
        post_form(advocate_client, "/me/profile/confirm", {}, page="/dashboard")
        assert "Is your profile still current?" not in advocate_client.get("/me/preferences").get_data(as_text=True)


def test_remind_stale_once_per_30_days_with_working_unsubscribe(app, runner, mailbox, make_user, client):
    stale = make_user(email="stale@example.com")
    quiet = make_user(email="quiet@example.com")
    make_user(email="staffer@example.com", role=Role.STAFF)
    make_user(email="waiting@example.com", status=Status.PENDING)
    db.session.add_all([AdvocateProfile(user_id=stale.id), AdvocateProfile(user_id=quiet.id, notify_reminders=False)])
    db.session.commit()
    with time_machine.travel(utcnow() + timedelta(days=200)):
        assert "Queued 1" in runner.invoke(args=["advocates", "remind-stale"]).output
        assert "Queued 0" in runner.invoke(args=["advocates", "remind-stale"]).output
    mail = mailbox.last("stale@example.com", subject="still current")
    assert mailbox.to("quiet@example.com") == [] and mailbox.to("staffer@example.com") == []
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = mail.link("/me/unsubscribe/").split("localhost", 1)[1]
    with time_machine.travel(utcnow() + timedelta(days=232)):
        assert "Queued 1" in runner.invoke(args=["advocates", "remind-stale"]).output
        assert client.post(url[:-4] + "abcd", data={}).status_code == 400
        assert client.post(url.replace("/me/unsubscribe/eyJ", "/me/unsubscribe/eyK"), data={}).status_code == 400
        assert reload(AdvocateProfile, stale.id).notify_reminders
        assert client.get(url).status_code == 200  # shows the button, changes nothing
        assert reload(AdvocateProfile, stale.id).notify_reminders
        assert client.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
        assert not reload(AdvocateProfile, stale.id).notify_reminders


def test_delete_account(app, advocate_client, advocate, mailbox):
    post_form(advocate_client, "/me/profile", profile_data())
    other = app.test_client()
    login(other, advocate.email)
    wrong = post_form(advocate_client, "/me/delete", {"password": "nope-nope-nope", "confirm": "y"})
    assert wrong.status_code == 422 and reload(User, advocate.id).status == Status.ACTIVE
    ok = post_form(advocate_client, "/me/delete", {"password": TEST_PASSWORD, "confirm": "y"})
    assert ok.status_code == 302
    u = reload(User, advocate.id)
    assert u.status == Status.DELETED and advocate.email not in u.email and u.name == "Deleted advocate"
    assert db.session.get(AdvocateProfile, advocate.id) is None
    assert other.get("/dashboard").status_code == 302
    assert mailbox.last(advocate.email, subject="account is deleted")
    assert login(app.test_client(), advocate.email).status_code == 401


def test_change_email(app, advocate_client, advocate, mailbox, make_user):
    wrong = post_form(advocate_client, "/me/email", {"new_email": "new@example.com", "password": "bad-bad-bad1"})
    assert wrong.status_code == 422
    post_form(advocate_client, "/me/email", {"new_email": "new@example.com", "password": TEST_PASSWORD})
    assert reload(User, advocate.id).email == advocate.email  # not before the link is opened
    assert "new@example.com" in mailbox.last(advocate.email, subject="change of your email").text
    link = mailbox.last("new@example.com", subject="Confirm your new email").link("/me/email/confirm/")
    path = link.split("localhost", 1)[1]
    anon = app.test_client()
    assert post_form(anon, path, {}).status_code == 302
    assert reload(User, advocate.id).email == "new@example.com"
    assert mailbox.last(advocate.email, subject="was changed")
    assert login(app.test_client(), "new@example.com").status_code == 302
    assert login(app.test_client(), advocate.email).status_code == 401
    assert post_form(app.test_client(), path, {}).status_code == 400  # used
