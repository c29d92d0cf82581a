"""Advocate self-service, freshness: "My profile is current", saving counts as confirming, the stale banner
after PROFILE_STALE_DAYS, and `flask advocates remind-stale` (at most once every 30 days, respecting choices)."""

import time
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AdvocateProfile, OutboxMessage, OutboxStatus, Role, Status, User, utcnow
from tests.support import ensure_login, login, post_form, reload, text

BANNER = "Is your profile still current?"
SUBJECT = "Is your advocate profile still current?"


def confirm(client):
    return post_form(client, "/me/profile/confirm", {}, page="/dashboard")


def backdate(user_id, days, profile=True, **profile_fields):
    """Approval (and the profile's confirmation) ``days`` ago."""
    past = utcnow() - timedelta(days=days)
    u = db.session.get(User, user_id)
    u.approved_at = u.created_at = past
    if profile:
        p = db.session.get(AdvocateProfile, user_id) or AdvocateProfile(user_id=user_id)
        p.confirmed_at = past
        for key, value in profile_fields.items():
            setattr(p, key, value)
        db.session.add(p)
    db.session.commit()


def remind(runner):
    result = runner.invoke(args=["advocates", "remind-stale"])
    assert result.exit_code == 0, result.output
    return int(result.output.split("Queued ")[1].split(" ")[0])


def confirmed_at(user_id):
    p = reload(AdvocateProfile, user_id)
    value = p.confirmed_at if p else None
    db.session.rollback()
    return value


# --- confirming ------------------------------------------------------------------------------------------------


def test_new_advocate_is_not_confirmed_yet_but_not_stale(advocate_client, advocate):
    dash = text(advocate_client.get("/dashboard"))
    assert "Not confirmed yet." in dash and BANNER not in dash and "You last confirmed" not in dash
    assert ">My profile is current</button>" in dash
    assert BANNER not in text(advocate_client.get("/me/preferences"))
    assert confirmed_at(advocate.id) is None


def test_my_profile_is_current_sets_confirmed_at(advocate_client, advocate):
    before = utcnow()
    resp = confirm(advocate_client)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/dashboard")
    at = confirmed_at(advocate.id)
    assert at is not None and before - timedelta(seconds=1) <= at <= utcnow()
    dash = text(advocate_client.get("/dashboard"))
    assert "Thanks! Your profile is marked as current." in dash and "Confirmed today." in dash


def test_saving_the_profile_counts_as_confirming(advocate_client, advocate):
    backdate(advocate.id, 200)
    resp = post_form(
        advocate_client, "/me/profile", {"name": "Ada Advocate", "job_title": "CISO", "company": "Bluefin"}
    )
    assert resp.status_code == 302
    assert utcnow() - confirmed_at(advocate.id) < timedelta(minutes=1)
    assert BANNER not in text(advocate_client.get("/me/preferences"))


def test_refused_profile_save_does_not_confirm(advocate_client, advocate):
    backdate(advocate.id, 200)
    old = confirmed_at(advocate.id)
    resp = post_form(advocate_client, "/me/profile", {"name": "", "job_title": "CISO", "company": "Bluefin"})
    assert resp.status_code == 422
    assert confirmed_at(advocate.id) == old


def test_confirm_needs_csrf_and_an_advocate(client, advocate_client, advocate, staff_client, admin_client):
    assert advocate_client.post("/me/profile/confirm").status_code == 400
    assert confirmed_at(advocate.id) is None
    assert post_form(staff_client, "/me/profile/confirm", {}, page="/").status_code == 403
    assert post_form(admin_client, "/me/profile/confirm", {}, page="/").status_code == 403
    resp = client.post("/me/profile/confirm")
    assert resp.status_code in (302, 400)
    assert confirmed_at(advocate.id) is None


def test_confirming_only_touches_the_signed_in_advocate(app, advocate_client, advocate, make_user):
    other = make_user(email="other@example.com")
    backdate(other.id, 200)
    old = confirmed_at(other.id)
    post_form(advocate_client, f"/me/profile/confirm?user_id={other.id}", {"user_id": str(other.id)}, page="/dashboard")
    assert confirmed_at(other.id) == old and confirmed_at(advocate.id) is not None


# --- the stale banner ------------------------------------------------------------------------------------------


def test_banner_appears_after_180_days_and_goes_when_confirmed(advocate_client, advocate):
    confirm(advocate_client)
    with time_machine.travel(utcnow() + timedelta(days=179)):
        ensure_login(advocate_client, advocate.email)
        assert BANNER not in text(advocate_client.get("/me/preferences"))
        assert "Confirmed 179 days ago." in text(advocate_client.get("/dashboard"))
    with time_machine.travel(utcnow() + timedelta(days=181)):
        ensure_login(advocate_client, advocate.email)
        page = text(advocate_client.get("/me/preferences"))
        assert BANNER in page and 'href="/dashboard"' in page
        dash = text(advocate_client.get("/dashboard"))
        assert "You last confirmed your profile 181 days ago." in dash
        assert BANNER not in dash  # the dashboard says it in its own words
        assert confirm(advocate_client).status_code == 302
        assert BANNER not in text(advocate_client.get("/me/preferences"))
        assert "You last confirmed" not in text(advocate_client.get("/dashboard"))


def test_never_confirmed_profile_counts_from_approval(advocate_client, advocate):
    with time_machine.travel(utcnow() + timedelta(days=181)):
        ensure_login(advocate_client, advocate.email)
        dash = text(advocate_client.get("/dashboard"))
        assert "Please confirm your profile so the program can trust it." in dash
        assert BANNER in text(advocate_client.get("/me/availability"))


def test_stale_days_is_configurable(app, advocate_client, advocate):
    app.config["PROFILE_STALE_DAYS"] = 30
    confirm(advocate_client)
    with time_machine.travel(utcnow() + timedelta(days=31)):
        ensure_login(advocate_client, advocate.email)
        assert BANNER in text(advocate_client.get("/me/preferences"))


def test_staff_never_see_the_banner(staff_client, staff):
    backdate(staff.id, 400, profile=False)
    assert BANNER not in text(staff_client.get("/"))


# --- remind-stale ----------------------------------------------------------------------------------------------


@pytest.fixture
def population(make_user):
    """Who should and should not get a reminder."""
    people = {
        "stale": make_user(email="stale@example.com", name="Stan Stale"),
        "no_profile": make_user(email="noprofile@example.com", name="Nora Noprofile"),
        "opted_out": make_user(email="optout@example.com"),
        "fresh": make_user(email="fresh@example.com"),
        "pending": make_user(email="pending@example.com", status=Status.PENDING),
        "suspended": make_user(email="suspended@example.com", status=Status.SUSPENDED),
        "deleted": make_user(email="deleted@example.com", status=Status.DELETED),
        "staff": make_user(email="staffer@example.com", role=Role.STAFF),
        "admin": make_user(email="boss@example.com", role=Role.ADMIN),
    }
    backdate(people["stale"].id, 200)
    backdate(people["no_profile"].id, 200, profile=False)
    backdate(people["opted_out"].id, 200, notify_reminders=False)
    backdate(people["fresh"].id, 10)
    for key in ("pending", "suspended", "deleted", "staff", "admin"):
        backdate(people[key].id, 400)
    return people


def reminded(mailbox):
    return sorted({m.to for m in mailbox.messages if m.subject == SUBJECT})


def test_remind_stale_says_how_many_reminders_were_sent(runner, mailbox, population):
    """Issue 11, item 4: the summary said "sent 0" while every reminder had gone out."""
    result = runner.invoke(args=["advocates", "remind-stale"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Queued 2 reminder(s); 2 email(s) sent, 0 waiting for retry."
    assert len(reminded(mailbox)) == 2


def test_remind_stale_with_the_outbox_worker_says_the_worker_sends(worker_delivery, runner, mailbox, population):
    result = runner.invoke(args=["advocates", "remind-stale"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Queued 2 reminder(s); the outbox worker sends the email."
    time.sleep(0.2)
    assert reminded(mailbox) == []
    db.session.rollback()
    queued = db.session.scalars(select(OutboxMessage.status).where(OutboxMessage.template == "stale_reminder")).all()
    assert queued == [OutboxStatus.QUEUED, OutboxStatus.QUEUED]


def test_remind_stale_picks_exactly_the_stale_active_advocates_who_want_it(runner, mailbox, population):
    assert remind(runner) == 2
    assert reminded(mailbox) == ["noprofile@example.com", "stale@example.com"]
    mail = mailbox.last("stale@example.com", subject=SUBJECT)
    assert "Hello Stan Stale" in mail.text
    assert mail.link("/me/profile") == "http://localhost/me/profile"
    assert mail.link("/me/unsubscribe/") and mail.message["List-Unsubscribe"]
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    stamp = reload(AdvocateProfile, population["stale"].id).stale_reminder_sent_at
    assert stamp is not None and utcnow() - stamp < timedelta(minutes=1)
    # The advocate without a profile row got one, with the stamp.
    assert reload(AdvocateProfile, population["no_profile"].id).stale_reminder_sent_at is not None


def test_second_run_the_same_day_sends_nothing(runner, mailbox, population):
    assert remind(runner) == 2
    assert remind(runner) == 0
    with time_machine.travel(utcnow() + timedelta(hours=20)):
        assert remind(runner) == 0
    assert len([m for m in mailbox.messages if m.subject == SUBJECT]) == 2
    db.session.rollback()
    assert db.session.scalar(select(func.count()).where(OutboxMessage.template == "stale_reminder")) == 2


def test_reminders_are_at_least_30_days_apart_while_still_stale(runner, mailbox, population):
    assert remind(runner) == 2
    with time_machine.travel(utcnow() + timedelta(days=29)):
        assert remind(runner) == 0
    with time_machine.travel(utcnow() + timedelta(days=30, minutes=1)):
        assert remind(runner) == 2
        assert remind(runner) == 0
    assert len(mailbox.to("stale@example.com")) == 2
    assert mailbox.to("optout@example.com") == [] and mailbox.to("fresh@example.com") == []
    for key in ("pending", "suspended", "deleted", "staff", "admin"):
        assert mailbox.to(population[key].email) == [], key


def test_fresh_advocate_becomes_due_when_stale(runner, mailbox, population):
    assert remind(runner) == 2
    with time_machine.travel(utcnow() + timedelta(days=171)):  # fresh was confirmed 10 days ago
        assert remind(runner) == 3
    assert mailbox.to("fresh@example.com")


def test_confirming_resets_staleness(app, runner, mailbox, population):
    assert remind(runner) == 2
    stale = population["stale"]
    c = app.test_client()
    login(c, stale.email)
    assert confirm(c).status_code == 302
    with time_machine.travel(utcnow() + timedelta(days=31)):
        assert remind(runner) == 1  # only the advocate without a profile, who never confirmed
        assert len(mailbox.to(stale.email)) == 1
    with time_machine.travel(utcnow() + timedelta(days=181)):
        assert remind(runner) == 3  # stale again 180 days after confirming (and so is "fresh" by now)
        assert len(mailbox.to(stale.email)) == 2


def test_saving_the_profile_also_resets_staleness(app, runner, mailbox, population):
    stale = population["stale"]
    c = app.test_client()
    login(c, stale.email)
    post_form(c, "/me/profile", {"name": "Stan Stale", "job_title": "CTO", "company": "Acme"})
    assert remind(runner) == 1
    assert mailbox.to(stale.email) == []


def test_reminders_respect_the_choice_made_in_preferences(app, runner, mailbox, population):
    stale = population["stale"]
    c = app.test_client()
    login(c, stale.email)
    assert (
        post_form(
            c, "/me/preferences/communication", {"digest": "monthly", "notify_news": "y"}, page="/me/preferences"
        ).status_code
        == 302
    )
    assert remind(runner) == 1
    assert mailbox.to(stale.email) == []
    assert (
        post_form(
            c, "/me/preferences/communication", {"digest": "monthly", "notify_reminders": "y"}, page="/me/preferences"
        ).status_code
        == 302
    )
    assert remind(runner) == 1
    assert len(mailbox.to(stale.email)) == 1


def test_unsubscribing_from_the_reminder_stops_the_next_one(app, runner, mailbox, population):
    assert remind(runner) == 2
    url = mailbox.last("stale@example.com", subject=SUBJECT).link("/me/unsubscribe/")
    assert app.test_client().post(url.replace("http://localhost", "")).status_code == 200
    with time_machine.travel(utcnow() + timedelta(days=31)):
        assert remind(runner) == 1
    assert len(mailbox.to("stale@example.com")) == 1


def test_configurable_stale_days_apply_to_reminders(app, runner, mailbox, make_user):
    app.config["PROFILE_STALE_DAYS"] = 30
    user = make_user(email="month@example.com")
    backdate(user.id, 31)
    assert remind(runner) == 1
    assert mailbox.last("month@example.com", subject=SUBJECT)


def test_nothing_stale_nothing_sent(runner, mailbox, advocate):
    assert remind(runner) == 0
    assert mailbox.messages == []


def test_overlapping_runs_send_one_reminder_per_advocate(app, runner, mailbox, population, monkeypatch):
    """Run B reads who is due, then run A runs start to finish before B stamps anyone. B's stamps are
    conditional UPDATEs that find A's stamps, so B queues nothing. (On PostgreSQL that interleaving
    happens; on SQLite B holds the write lock from its start, so A waits for B and finds nothing due.)"""
    import threading

    from portal.cli.common import transaction
    from portal.services import subscriptions

    real = subscriptions.stale_for_reminder
    calls, runs = [], {}

    def run_a():
        # Run A is the command's unit of work, not the CLI runner: two CliRunners in two threads swap the
        # one sys.stdout between them, and a run's "Queued n" could land in the other's output.
        with app.app_context():
            with transaction():
                runs["a"] = subscriptions.remind_stale(db.session)

    def b_reads_then_a_runs(session, now=None):
        due = real(session, now)
        if not calls:  # run B (this thread) only; run A uses the real query
            calls.append([u.email for u in due])
            a = threading.Thread(target=run_a)
            a.start()
            a.join(timeout=30 if db.engine.dialect.name == "postgresql" else 0.3)
            runs["thread"] = a
        return due

    monkeypatch.setattr(subscriptions, "stale_for_reminder", b_reads_then_a_runs)
    queued_b = remind(runner)
    runs["thread"].join(timeout=60)
    assert not runs["thread"].is_alive()
    queued_a = runs["a"]
    assert sorted(calls[0]) == ["noprofile@example.com", "stale@example.com"]  # B saw both as due
    assert sorted([queued_a, queued_b]) == [0, 2]
    assert [m.to for m in mailbox.messages if m.subject == SUBJECT].count("stale@example.com") == 1
    assert sorted(m.to for m in mailbox.messages if m.subject == SUBJECT) == [
        "noprofile@example.com",
        "stale@example.com",
    ]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).where(OutboxMessage.template == "stale_reminder")) == 2
    assert reload(AdvocateProfile, population["no_profile"].id).stale_reminder_sent_at is not None
