"""Advocate self-service, preferences: per-activity-type opt-in with a note, the digest and notification
choices, and the one-click unsubscribe link every non-transactional email carries (no login, signed token)."""

import json
import re
from datetime import timedelta

import pytest
import time_machine
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from portal.extensions import db
from portal.models import ActivityPreference, ActivityType, AdvocateProfile, Digest, Status, User, utcnow
from portal.services import subscriptions
from portal.services.tokens import make_token
from tests.support import TEST_PASSWORD, login, path_of, post_form, reload, text

SCRIPT = '<script>alert("pwn")</script>'


def is_checked(page, field_id):
    m = re.search(rf'<input[^>]*\bid="{field_id}"[^>]*>', page)
    assert m, f"no input {field_id}"
    return " checked" in m.group(0)


def types():
    out = {t.key: t.id for t in db.session.scalars(select(ActivityType))}
    db.session.rollback()
    return out


def save_activities(client, data):
    return post_form(client, "/me/preferences/activities", data, page="/me/preferences")


def save_comm(client, data):
    return post_form(client, "/me/preferences/communication", data, page="/me/preferences")


def prefs(user_id):
    db.session.rollback()
    rows = db.session.scalars(select(ActivityPreference).where(ActivityPreference.user_id == user_id)).all()
    out = {p.activity_type.key: (p.opted_in, p.note) for p in rows}
    db.session.rollback()
    return out


def comm(user_id):
    p = reload(AdvocateProfile, user_id)
    state = (p.digest.value, p.notify_opportunities, p.notify_reminders, p.notify_news) if p else None
    db.session.rollback()
    return state


# --- activity preferences ---------------------------------------------------------------------------------------


def test_page_lists_every_activity_type(advocate_client):
    page = text(advocate_client.get("/me/preferences"))
    for t in db.session.scalars(select(ActivityType)):
        assert f'name="opt_{t.id}"' in page and f'name="note_{t.id}"' in page and t.name in page
    assert page.count('type="checkbox"') >= 13 + 3


def test_opt_in_per_activity_type_with_a_note(advocate_client, advocate):
    t = types()
    resp = save_activities(
        advocate_client,
        {
            f"opt_{t['speaking']}": "y",
            f"note_{t['speaking']}": "virtual events only",
            f"opt_{t['reference_call']}": "y",
            f"note_{t['case_study']}": "ask me in Q3",
        },
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/me/preferences")
    saved = prefs(advocate.id)
    assert saved["speaking"] == (True, "virtual events only")
    assert saved["reference_call"] == (True, "")
    assert saved["case_study"] == (False, "ask me in Q3")
    assert saved["beta"] == (False, "")
    page = text(advocate_client.get("/me/preferences"))
    assert "Your activity preferences are saved." in page
    assert is_checked(page, f"opt_{t['speaking']}") and is_checked(page, f"opt_{t['reference_call']}")
    assert not is_checked(page, f"opt_{t['case_study']}")
    assert 'value="virtual events only"' in page
    # Opting out again, and clearing the note.
    assert save_activities(advocate_client, {f"opt_{t['reference_call']}": "y"}).status_code == 302
    saved = prefs(advocate.id)
    assert saved["speaking"] == (False, "") and saved["reference_call"] == (True, "")


@pytest.mark.parametrize(
    "extra,message",
    [
        ({"opt_99999": "y"}, "Unknown activity type."),
        ({"note_99999": "hello"}, "Unknown activity type."),
        ({"opt_99999999999999999999999": "y"}, "Unknown activity type."),
        ({"opt_abc": "y"}, "Unknown activity type."),
        ("long-note", "cannot be longer than 200"),
    ],
)
def test_invalid_activity_input_is_refused_and_nothing_saved(advocate_client, advocate, extra, message):
    t = types()
    assert (
        save_activities(advocate_client, {f"opt_{t['review']}": "y", f"note_{t['review']}": "G2 only"}).status_code
        == 302
    )
    before = prefs(advocate.id)
    data = {f"opt_{t['speaking']}": "y", f"note_{t['speaking']}": "changed"}
    if extra == "long-note":
        data[f"note_{t['speaking']}"] = "x" * 201
    else:
        data.update(extra)
    resp = save_activities(advocate_client, data)
    assert resp.status_code == 422 and message in text(resp)
    assert prefs(advocate.id) == before


def test_retired_activity_type_cannot_be_chosen(advocate_client, advocate):
    t = types()
    beta = db.session.get(ActivityType, t["beta"])
    beta.active = False
    db.session.commit()
    assert f'name="opt_{beta.id}"' not in text(advocate_client.get("/me/preferences"))
    resp = save_activities(advocate_client, {f"opt_{beta.id}": "y", f"opt_{t['review']}": "y"})
    assert resp.status_code == 422
    assert prefs(advocate.id) == {}


def test_refused_form_keeps_the_other_form_as_saved(advocate_client, advocate):
    """After a refused submit the page shows both forms; the one not submitted must show what is saved,
    or saving it from that page would silently switch things off."""
    t = types()
    save_activities(advocate_client, {f"opt_{t['podcast']}": "y", f"note_{t['podcast']}": "audio only"})
    save_comm(
        advocate_client, {"digest": "weekly", "notify_opportunities": "y", "notify_reminders": "y", "notify_news": "y"}
    )
    page = text(save_comm(advocate_client, {"digest": "yearly"}))
    assert 'value="audio only"' in page
    assert is_checked(page, f"opt_{t['podcast']}")
    page = text(save_activities(advocate_client, {"opt_99999": "y"}))
    assert '<option selected value="weekly">' in page
    for name in ("notify_opportunities", "notify_reminders", "notify_news"):
        assert is_checked(page, name), name
    assert comm(advocate.id) == ("weekly", True, True, True)


def test_note_html_is_escaped_and_unicode_kept(advocate_client, advocate):
    t = types()
    note = "Only 🎤 virtual; בעברית; عربي"
    save_activities(
        advocate_client,
        {
            f"opt_{t['speaking']}": "y",
            f"note_{t['speaking']}": SCRIPT,
            f"opt_{t['webinar']}": "y",
            f"note_{t['webinar']}": note,
        },
    )
    page = text(advocate_client.get("/me/preferences"))
    assert SCRIPT not in page and "&lt;script&gt;alert(" in page
    assert prefs(advocate.id)["speaking"] == (True, SCRIPT)
    data = json.loads(advocate_client.get("/me/data.json").get_data(as_text=True))
    acts = {a["activity"]: a for a in data["profile"]["preferences"]["activities"]}
    assert acts["Webinar"] == {"activity": "Webinar", "opted_in": True, "note": note}
    assert acts["Speaking"]["note"] == SCRIPT


# --- communication -------------------------------------------------------------------------------------------


def test_defaults_digest_and_notifications(advocate_client, advocate):
    page = text(advocate_client.get("/me/preferences"))
    assert '<option selected value="monthly">' in page
    for period in ("off", "weekly", "monthly"):
        resp = save_comm(advocate_client, {"digest": period, "notify_news": "y"})
        assert resp.status_code == 302
        assert comm(advocate.id) == (period, False, False, True)
    save_comm(advocate_client, {"digest": "weekly", "notify_opportunities": "y", "notify_reminders": "y"})
    assert comm(advocate.id) == ("weekly", True, True, False)
    assert "Your email settings are saved." in text(advocate_client.get("/me/preferences"))


@pytest.mark.parametrize("data", [{"digest": "yearly"}, {"digest": ""}, {}, {"digest": "OFF"}, {"digest": "w" * 5000}])
def test_invalid_digest_is_refused_and_nothing_saved(advocate_client, advocate, data):
    save_comm(advocate_client, {"digest": "weekly", "notify_reminders": "y"})
    resp = save_comm(advocate_client, {**data, "notify_news": "y"})
    assert resp.status_code == 422 and "Not a valid choice" in text(resp)
    assert comm(advocate.id) == ("weekly", False, True, False)


# --- who may do what ------------------------------------------------------------------------------------------


def test_an_advocate_only_changes_their_own_preferences(app, advocate_client, advocate, make_user):
    t = types()
    other = make_user(email="oscar@example.com")
    oc = app.test_client()
    login(oc, other.email)
    save_activities(oc, {f"opt_{t['media']}": "y", f"note_{t['media']}": "Oscar's note"})
    save_comm(oc, {"digest": "weekly", "notify_news": "y"})
    before_prefs, before_comm = prefs(other.id), comm(other.id)
    resp = save_activities(advocate_client, {"user_id": str(other.id), f"opt_{t['beta']}": "y"})
    assert resp.status_code == 302
    resp = post_form(
        advocate_client,
        f"/me/preferences/communication?user_id={other.id}",
        {"user_id": str(other.id), "digest": "off"},
        page="/me/preferences",
    )
    assert resp.status_code == 302
    assert prefs(other.id) == before_prefs and comm(other.id) == before_comm
    assert prefs(advocate.id)["beta"] == (True, "") and comm(advocate.id)[0] == "off"
    assert "Oscar&#39;s note" not in text(advocate_client.get(f"/me/preferences?user_id={other.id}"))


def test_staff_admin_and_anonymous_are_kept_out(client, staff_client, admin_client, staff):
    for c in (staff_client, admin_client):
        assert c.get("/me/preferences").status_code == 403
        assert post_form(c, "/me/preferences/communication", {"digest": "off"}, page="/").status_code == 403
        assert post_form(c, "/me/preferences/activities", {}, page="/").status_code == 403
    assert db.session.get(AdvocateProfile, staff.id) is None
    for path in ("/me/preferences",):
        resp = client.get(path)
        assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]
    resp = client.post("/me/preferences/communication", data={"digest": "off"})
    assert resp.status_code in (302, 400)


# --- unsubscribe ------------------------------------------------------------------------------------------------


def make_stale(user_id, days=200):
    """Move the advocate's approval (and confirmation, if any) back in time."""
    past = utcnow() - timedelta(days=days)
    u = db.session.get(User, user_id)
    u.approved_at = u.created_at = past
    p = db.session.get(AdvocateProfile, user_id)
    if p is not None:
        p.confirmed_at = past
    db.session.commit()


def reminder(runner, mailbox, user):
    make_stale(user.id)
    result = runner.invoke(args=["advocates", "remind-stale"])
    assert result.exit_code == 0 and "Queued 1 reminder(s)" in result.output, result.output
    return mailbox.last(user.email, subject="still current")


@pytest.fixture
def stale_advocate(make_user):
    user = make_user(email="stella.stale@example.com", name="Stella Stale")
    db.session.add(AdvocateProfile(user_id=user.id, digest=Digest.WEEKLY))
    db.session.commit()
    return user


def test_reminder_email_carries_a_working_unsubscribe_link(runner, mailbox, client, stale_advocate):
    mail = reminder(runner, mailbox, stale_advocate)
    url = mail.link("/me/unsubscribe/")
    assert mail.message["List-Unsubscribe"] == f"<{url}>"
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url in mail.html
    # GET (a mail scanner, a preview, a person) shows a button and changes nothing.
    page = client.get(path_of(url))
    assert page.status_code == 200
    body = text(page)
    assert "Stop receiving reminders to keep your profile current?" in body
    assert f'action="{path_of(url)}"' in body and ">Unsubscribe</button>" in body
    assert comm(stale_advocate.id) == ("weekly", True, True, True)
    # POST applies it at once, without a login and without a CSRF token; only that topic changes.
    resp = client.post(path_of(url))
    assert resp.status_code == 200 and "You are unsubscribed" in text(resp)
    assert comm(stale_advocate.id) == ("weekly", True, False, True)
    # Honoured at once: the next run, a month later, leaves this advocate out.
    with time_machine.travel(utcnow() + timedelta(days=31)):
        assert "Queued 0" in runner.invoke(args=["advocates", "remind-stale"]).output
    assert len(mailbox.to(stale_advocate.email)) == 1
    # Doing it again is harmless.
    assert client.post(path_of(url)).status_code == 200


def test_rfc8058_one_click_post_works_without_csrf(app, runner, mailbox, stale_advocate):
    mail = reminder(runner, mailbox, stale_advocate)
    url = mail.message["List-Unsubscribe"].strip("<>")
    mail_client = app.test_client()  # no cookies, no session: what a mail provider does
    resp = mail_client.post(
        path_of(url), data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert resp.status_code == 200
    assert not reload(AdvocateProfile, stale_advocate.id).notify_reminders


def test_unsubscribe_works_while_signed_in_as_someone_else_and_only_for_the_token_owner(
    runner, mailbox, stale_advocate, advocate_client, advocate
):
    url = reminder(runner, mailbox, stale_advocate).link("/me/unsubscribe/")
    assert advocate_client.post(path_of(url)).status_code == 200
    assert not reload(AdvocateProfile, stale_advocate.id).notify_reminders
    mine = db.session.get(AdvocateProfile, advocate.id)
    assert mine is None or mine.notify_reminders


def _mutations(token):
    payload, ts, sig = token.split(".")
    flip = lambda s, i: s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1 :]  # noqa: E731
    return {
        "truncated": token[:-5],
        "signature removed": f"{payload}.{ts}",
        "payload altered": f"{flip(payload, 3)}.{ts}.{sig}",
        "timestamp altered": f"{payload}.{flip(ts, 1)}.{sig}",
        "signature altered": f"{payload}.{ts}.{flip(sig, 4)}",
        "garbage": "not-a-token",
        "huge": "x" * 3000,
    }


def test_altered_truncated_or_forged_tokens_are_refused_and_change_nothing(
    app, runner, mailbox, client, stale_advocate, make_user
):
    url = reminder(runner, mailbox, stale_advocate).link("/me/unsubscribe/")
    token = path_of(url).rsplit("/", 1)[1]
    victim = stale_advocate.id
    forged = {
        **_mutations(token),
        "wrong secret": URLSafeTimedSerializer("guessed-secret", salt="portal.unsubscribe").dumps(
            {"u": victim, "s": "all"}
        ),
        "other purpose": make_token("change-email", victim, "all"),
        "unknown topic": make_token(subscriptions.UNSUBSCRIBE, victim, "everything"),
        "unknown user": make_token(subscriptions.UNSUBSCRIBE, 987654, "all"),
        "user id not a number": URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="portal.unsubscribe").dumps(
            {"u": str(victim), "s": "all"}
        ),
    }
    for label, bad in forged.items():
        for method in (client.get, client.post):
            resp = method(f"/me/unsubscribe/{bad}")
            assert resp.status_code in (400, 404), (label, method, resp.status_code)
            if resp.status_code == 400:
                assert "not valid" in text(resp) or "expired" in text(resp), label
        assert comm(victim) == ("weekly", True, True, True), label


def test_token_for_all_turns_every_non_essential_email_off(client, stale_advocate):
    url = subscriptions.unsubscribe_url(db.session.get(User, stale_advocate.id), "all")
    db.session.rollback()
    assert "all non-essential email" in text(client.get(path_of(url)))
    assert client.post(path_of(url)).status_code == 200
    assert comm(stale_advocate.id) == ("off", False, False, False)


@pytest.mark.parametrize(
    "topic,expected",
    [
        ("digest", ("off", True, True, True)),
        ("opportunities", ("weekly", False, True, True)),
        ("news", ("weekly", True, True, False)),
        ("reminders", ("weekly", True, False, True)),
    ],
)
def test_each_topic_changes_only_itself(client, stale_advocate, topic, expected):
    url = subscriptions.unsubscribe_url(db.session.get(User, stale_advocate.id), topic)
    db.session.rollback()
    assert client.post(path_of(url)).status_code == 200
    assert comm(stale_advocate.id) == expected


def test_link_of_a_deleted_account_recreates_nothing(app, client, stale_advocate):
    url = subscriptions.unsubscribe_url(db.session.get(User, stale_advocate.id), "all")
    db.session.rollback()
    c = app.test_client()
    login(c, stale_advocate.email)
    assert post_form(c, "/me/delete", {"password": TEST_PASSWORD, "confirm": "y"}).status_code == 302
    assert reload(User, stale_advocate.id).status == Status.DELETED
    resp = client.post(path_of(url))
    assert resp.status_code == 400
    db.session.rollback()
    assert db.session.get(AdvocateProfile, stale_advocate.id) is None
