"""The program settings page: every setting with its help text, validation (422, nothing saved), a
confirmation of what changed, one audit entry with before and after, and each setting taking effect where
it is read (portal.services.settings is the one place)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from markupsafe import escape

from portal.extensions import db
from portal.models import ActivityPreference, AdvocateProfile, AuditEvent, ProgramSetting, Status, utcnow
from portal.services import fatigue, profiles, queues, settings
from tests.support import (
    atype,
    audits,
    client_for,
    complete_profile_form,
    confirm,
    entries,
    make_advocate,
    post_form,
    recorded_sql,
    register,
    settings_form,
    text_of,
    user_by_email,
    verify_path,
)


def saved_rows() -> dict[str, int]:
    db.session.rollback()
    return {row.key: row.value for row in db.session.query(ProgramSetting)}


def input_tag(html: str, field_id: str) -> str:
    [tag] = re.findall(rf'<input[^>]*id="{field_id}"[^>]*>', html)
    return tag


def checked(html: str, field_id: str) -> bool:
    return " checked" in input_tag(html, field_id)


def test_the_page_shows_every_setting_with_its_help_and_current_value(app, admin_client):
    app.config["PROFILE_STALE_DAYS"] = 120  # a deployment's configuration is the default
    html = admin_client.get("/admin/settings").get_data(as_text=True)
    for s in settings.SETTINGS:
        assert f'id="{s.key}"' in html and escape(s.label) in html and escape(s.help) in html, s.key
        assert f'<label for="{s.key}"' in html
    assert re.search(r'id="profile_stale_days"[^>]*value="120"', html)
    assert re.search(r'id="service_level_days"[^>]*value="3"', html)
    assert re.search(r'id="points_referral"[^>]*value="250"', html)
    assert not checked(html, "auto_approve_advocates")
    assert 'href="/admin/settings">Settings<' in admin_client.get("/admin/").get_data(as_text=True)
    assert 'href="/admin/lists">Lists<' in html  # the Settings section's own bar


def test_saving_confirms_what_changed_and_audits_it_once(app, admin, admin_client):
    resp = post_form(
        admin_client,
        "/admin/settings",
        settings_form(profile_stale_days="90", points_referral="300", auto_approve_advocates=True),
        follow_redirects=True,
    )
    page = text_of(resp)
    assert "Settings saved." in page
    assert "Days before a profile counts as stale: 180 days → 90 days" in page
    assert "Points for a referral: 250 points → 300 points" in page
    assert "Approve new advocates automatically: off → on" in page
    assert "Service level" not in page.split("Settings saved.")[1].split("Program settings")[0]  # unchanged
    assert saved_rows() == {"profile_stale_days": 90, "points_referral": 300, "auto_approve_advocates": 1}
    [event] = audits("settings.update")
    assert event.actor_id == admin.id
    assert event.details == {
        "before": {"profile_stale_days": 180, "points_referral": 250, "auto_approve_advocates": False},
        "after": {"profile_stale_days": 90, "points_referral": 300, "auto_approve_advocates": True},
    }
    html = admin_client.get("/admin/settings").get_data(as_text=True)
    assert re.search(r'id="profile_stale_days"[^>]*value="90"', html)
    assert checked(html, "auto_approve_advocates")

    # the same values again: nothing written, nothing audited
    resp = post_form(admin_client, "/admin/settings", settings_form(), follow_redirects=True)
    assert "Nothing changed." in text_of(resp)
    assert len(audits("settings.update")) == 1

    # switched off again: the checkbox left out is "off"
    post_form(admin_client, "/admin/settings", settings_form(auto_approve_advocates=False))
    assert saved_rows()["auto_approve_advocates"] == 0
    assert audits("settings.update")[-1].details == {
        "before": {"auto_approve_advocates": True},
        "after": {"auto_approve_advocates": False},
    }


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("profile_stale_days", "0", "Number must be between 1 and 3650."),
        ("profile_stale_days", "", "This field is required."),
        ("profile_stale_days", "ninety", "Not a valid integer value."),
        ("points_profile_complete", "-5", "Number must be between 0 and 100000."),
        ("points_referral", "100001", "Number must be between 0 and 100000."),
        ("service_level_days", "91", "Number must be between 1 and 90."),
        ("reference_call_gap_days", "1.5", "Not a valid integer value."),
    ],
)
def test_an_invalid_value_is_422_with_its_message_and_nothing_is_saved(app, admin_client, key, value, message):
    beside = {"points_referral": "1"} if key != "points_referral" else {"points_profile_complete": "1"}
    resp = post_form(admin_client, "/admin/settings", settings_form(**{key: value}, **beside))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and message in text_of(resp)
    assert 'aria-invalid="true"' in input_tag(html, key)
    assert saved_rows() == {}  # the valid change beside it is not saved either
    assert audits("settings.update") == []


def test_the_service_refuses_what_the_page_would(app, admin):
    with pytest.raises(settings.DomainError, match="between 1 and 3650"):
        settings.save(db.session, {"profile_stale_days": 0}, admin.id)
    with pytest.raises(settings.DomainError, match="no setting called"):
        settings.save(db.session, {"nonsense": 1}, admin.id)
    with pytest.raises(settings.DomainError):
        settings.save(db.session, {"points_referral": True}, admin.id)  # a bool is not a number of points
    assert saved_rows() == {}


def test_stale_days_changes_what_counts_as_stale(app, make_user, admin_client):
    uid = make_advocate(make_user, "forty@example.com", name="Forty Days")
    db.session.get(AdvocateProfile, uid).confirmed_at = utcnow() - timedelta(days=40)
    db.session.commit()

    def stale_queue() -> int:
        db.session.rollback()
        return next(q.count for q in queues.today(db.session) if q.label == "Stale profiles")

    assert stale_queue() == 0 and not profiles.is_stale(db.session.get(AdvocateProfile, uid))
    post_form(admin_client, "/admin/settings", settings_form(profile_stale_days="30"))
    assert stale_queue() == 1
    assert profiles.stale_days() == 30 and profiles.is_stale(db.session.get(AdvocateProfile, uid))
    advocate = client_for(app, uid)
    assert "You last confirmed your profile 40 days ago." in text_of(advocate.get("/dashboard"))


def test_auto_approval_changes_registration(app, client, mailbox, admin_client):
    post_form(admin_client, "/admin/settings", settings_form(auto_approve_advocates=True))
    register(client, email="auto@example.com")
    assert confirm(client, verify_path(mailbox, "auto@example.com")).status_code == 302
    assert user_by_email("auto@example.com").status == Status.ACTIVE

    post_form(admin_client, "/admin/settings", settings_form(auto_approve_advocates=False))
    other = app.test_client()
    register(other, email="waits@example.com")
    assert confirm(other, verify_path(mailbox, "waits@example.com")).status_code == 302
    assert user_by_email("waits@example.com").status == Status.PENDING


def test_points_for_a_complete_profile_come_from_the_setting(app, make_user, admin_client):
    post_form(admin_client, "/admin/settings", settings_form(points_profile_complete="7"))
    uid = make_advocate(make_user, "complete@example.com", types=())
    db.session.add(ActivityPreference(user_id=uid, activity_type_id=atype("speaking").id, opted_in=True))
    db.session.commit()
    resp = post_form(client_for(app, uid), "/me/profile", complete_profile_form())
    assert resp.status_code == 302
    assert [e.amount for e in entries(uid)] == [7]


def test_the_fatigue_and_service_level_readers_go_through_the_settings(app, admin):
    fatigue.set_policy(db.session, {"max_engagements_90d": 2}, admin.id)
    queues.set_service_level(db.session, 9, admin.id)
    db.session.commit()
    assert settings.values(db.session)["max_engagements_90d"] == 2
    assert fatigue.policy(db.session).max_engagements_90d == 2 and queues.service_level_days(db.session) == 9
    assert [e.details["after"] for e in db.session.query(AuditEvent).filter_by(action="settings.update")] == [
        {"max_engagements_90d": 2},
        {"service_level_days": 9},
    ]


def test_settings_are_read_once_per_transaction(app):
    db.session.rollback()
    with recorded_sql() as sql:
        for _ in range(20):
            profiles.stale_days()
            queues.service_level_days(db.session)
            fatigue.policy(db.session)
    assert len([s for s in sql if "program_settings" in s]) == 1
    db.session.rollback()  # a new transaction reads them again (another process may have saved)
    with recorded_sql() as sql:
        profiles.stale_days()
    assert len([s for s in sql if "program_settings" in s]) == 1


def test_single_sign_on_is_required_for_staff_only_when_a_provider_can_sign_them_in(app, admin_client):
    """The page offers the sign-in setting; without a provider for staff, turning it on is refused there
    (staff and admins could not sign in at all) and nothing is saved."""
    assert "Staff and admins sign in only with single sign-on" in text_of(admin_client.get("/admin/settings"))
    resp = post_form(admin_client, "/admin/settings", settings_form(sso_required_for_staff=True))
    assert resp.status_code == 422 and "No sign-in provider is configured for staff" in text_of(resp)
    assert settings.get(db.session, "sso_required_for_staff") is False and audits("settings.update") == []
