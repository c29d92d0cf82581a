"""Advocate self-service, privacy: download my data, delete my account (password, erasure, sessions ended,
a final email) and change my email (password, link to the new address, the old one told, change on opening)."""

import json
import re
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    ActivityPreference,
    AdvocateProfile,
    AuditEvent,
    Blackout,
    Consent,
    Opportunity,
    OutboxMessage,
    Participation,
    ParticipationStatus,
    PointsEntry,
    Redemption,
    RedemptionStatus,
    Reward,
    Status,
    Tag,
    User,
    UserBadge,
    profile_products,
    profile_tags,
    utcnow,
)
from portal.services import privacy
from portal.services.privacy import CHANGE_EMAIL
from portal.services.tokens import fingerprint, make_token
from tests.support import (
    ADVOCATE_IP,
    TEST_PASSWORD,
    assert_ledger_consistent,
    fill_everything,
    fill_program_data,
    login,
    path_of,
    post_form,
    reload,
    text,
)

SCRIPT = '<script>alert("pwn")</script>'


# --- download my data --------------------------------------------------------------------------------------------


def test_export_holds_profile_preferences_availability_and_consents(advocate_client, advocate):
    fill_everything(advocate_client, advocate.id)
    page = text(advocate_client.get("/me/privacy"))
    assert 'href="/me/data.json"' in page and "Download my data" in page
    resp = advocate_client.get("/me/data.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="my-advocate-data.json"'
    assert "no-store" in resp.headers["Cache-Control"]
    data = json.loads(resp.get_data(as_text=True))
    assert set(data) >= {"exported_at", "site", "account", "consents", "profile"}
    assert data["account"]["email"] == advocate.email and data["account"]["name"] == "Ada Advocate"
    assert data["account"]["job_title"] == "CISO" and data["account"]["company"] == "Bluefin Bank"
    assert data["consents"] == [
        {
            "kind": "program_terms",
            "version": "2024-01",
            "given_at": data["consents"][0]["given_at"],
            "ip_address": "203.0.113.9",
        }
    ]
    p = data["profile"]
    assert p["industry"] == "Banking and capital markets" and p["country"] == "France" and p["region"] == "Europe"
    assert p["products"] == ["Analytics Cloud"] and p["use_cases"] == ["fraud detection"]
    assert p["topics"] == ["zero trust"] and p["story"] == "We cut fraud by half.\n\nOnboarding took days, not weeks."
    assert p["linkedin_url"] == "https://www.linkedin.com/in/ada"
    assert p["show_in_directory"] is True and p["show_on_leaderboard"] is False and p["confirmed_at"]
    prefs = p["preferences"]
    assert {"activity": "Speaking", "opted_in": True, "note": "remote only"} in prefs["activities"]
    assert (prefs["digest"], prefs["notify_news"], prefs["notify_reminders"], prefs["notify_opportunities"]) == (
        "weekly",
        True,
        False,
        False,
    )
    avail = p["availability"]
    assert (avail["max_asks_per_month"], avail["max_asks_per_quarter"], avail["timezone"]) == (2, 4, "Europe/Paris")
    assert avail["paused_until"] is None and avail["status"] == "Available"
    assert [b["note"] for b in avail["blackouts"]] == ["Paris trip"]
    # No secrets of the account itself.
    raw = resp.get_data(as_text=True)
    u = reload(User, advocate.id)
    assert u.password_hash not in raw and u.session_token not in raw
    assert "password" not in raw.lower() and "session_token" not in raw


def test_export_of_a_fresh_advocate_works(advocate_client, advocate):
    data = json.loads(advocate_client.get("/me/data.json").get_data(as_text=True))
    assert data["profile"]["story"] == "" and data["profile"]["preferences"]["activities"] == []
    assert data["consents"] == []
    assert data["participations"] == [] and data["redemptions"] == [] and data["badges"] == []
    assert data["points"] == {"balance": 0, "lifetime_earned": 0, "entries": []}
    assert data["referrals"] == {"you_were_referred": False, "referrals_made": []}
    assert data["digests"] == []


def test_export_holds_participations_points_redemptions_badges_referrals_emails_and_log(
    advocate_client, advocate, admin, make_user
):
    fill_everything(advocate_client, advocate.id)
    d = fill_program_data(advocate.id, admin.id, make_user)
    raw = advocate_client.get("/me/data.json").get_data(as_text=True)
    data = json.loads(raw)
    assert set(data) >= {
        "account",
        "consents",
        "profile",
        "participations",
        "points",
        "redemptions",
        "badges",
        "referrals",
        "emails",
        "digests",
        "activity_log",
    }

    parts = {p["opportunity"]: p for p in data["participations"]}
    assert set(parts) == {"Fintech Summit panel", "Fraud webinar", "G2 review"}
    assert (parts["Fintech Summit panel"]["status"], parts["Fintech Summit panel"]["message"]) == (
        "requested",
        d.texts["requested message"],
    )
    webinar = parts["Fraud webinar"]
    assert (webinar["status"], webinar["activity"], webinar["message"]) == (
        "approved",
        "Webinar",
        d.texts["approved message"],
    )
    assert webinar["message_from_the_program"] == d.texts["admin message"]
    assert webinar["limit_override_reason"] == d.texts["override reason"]
    assert webinar["requested_at"] and webinar["engaged_at"] and webinar["completed_at"] is None
    review = parts["G2 review"]
    assert (
        review["status"] == "completed" and review["completed_at"] and review["message"] == d.texts["completed message"]
    )

    pts = data["points"]
    # 250 for Rita + 50 for the review + 1000 welcome - 25 adjustment - 100 hoodie - 200 mug
    assert pts["balance"] == 250 + 50 + 1000 - 25 - 100 - 200 and pts["lifetime_earned"] == 250 + 50 + 1000 - 25
    assert sum(e["amount"] for e in pts["entries"]) == pts["balance"]
    by_reason = {e["reason"]: e for e in pts["entries"]}
    assert by_reason["Review: G2 review"]["amount"] == 50 and by_reason["Review: G2 review"]["kind"] == "earned"
    assert by_reason[d.texts["manual reason"]]["amount"] == 1000
    assert by_reason["Duplicate award"] == {
        "at": by_reason["Duplicate award"]["at"],
        "amount": -25,
        "kind": "adjusted",
        "source": "manual",
        "reason": "Duplicate award",
    }
    assert by_reason["Redeemed: Hoodie"]["amount"] == -100 and by_reason["Redeemed: Mug"]["amount"] == -200
    assert [e["amount"] for e in pts["entries"] if e["source"] == "referral"] == [250]

    orders = {r["reward"]: r for r in data["redemptions"]}
    assert (orders["Hoodie"]["status"], orders["Hoodie"]["note"], orders["Hoodie"]["points_cost"]) == (
        "requested",
        d.texts["order note"],
        100,
    )
    assert (orders["Mug"]["status"], orders["Mug"]["note"]) == ("fulfilled", d.texts["fulfil note"])
    assert orders["Mug"]["ordered_at"] and orders["Mug"]["fulfilled_at"] and orders["Mug"]["cancelled_at"] is None

    assert {
        "badge": "Champion",
        "description": "Granted by the program team for outstanding advocacy",
        "awarded_at": [b for b in data["badges"] if b["badge"] == "Champion"][0]["awarded_at"],
        "reason": d.texts["badge reason"],
    } in data["badges"]
    assert "First step" in {b["badge"] for b in data["badges"]}  # earned with the completed review

    # Referrals: the advocate's own part only. Rita's name and address are Rita's personal data.
    refs = data["referrals"]
    assert refs["you_were_referred"] is True and len(refs["referrals_made"]) == 1
    assert refs["referrals_made"][0]["points_credited"] == 250 and refs["referrals_made"][0]["signed_up_on"]
    assert "Rita" not in raw and "rita.referred@example.com" not in raw
    assert "Rob Referrer" not in raw and "rob.referrer@example.com" not in raw

    subjects = {m["subject"] for m in data["emails"]}
    assert "We received your order: Hoodie" in subjects and "On its way: Mug" in subjects
    assert all(set(m) == {"subject", "kind", "status", "created_at", "sent_at"} for m in data["emails"])
    assert data["digests"] == [
        {"period": "weekly", "period_key": "2026-W10", "opportunities": 3, "sent_at": data["digests"][0]["sent_at"]}
    ]
    log = {e["action"]: e for e in data["activity_log"]}
    assert log["user.email_change"]["ip_address"] == ADVOCATE_IP
    assert log["badge.grant"]["details"]["reason"] == d.texts["badge reason"]
    assert log["badge.grant"]["ip_address"] is None  # the admin's address is not the advocate's data
    assert log["points.adjust"]["details"]["amount"] == -25
    assert "alex.admin@example.com" not in raw and "Alex Admin" not in raw


def test_export_holds_only_the_advocates_own_program_data(app, advocate_client, advocate, admin, make_user):
    fill_everything(advocate_client, advocate.id)
    fill_program_data(advocate.id, admin.id, make_user)
    other = make_user(email="eve@example.com", name="Eve Other")
    oc = app.test_client()
    login(oc, other.email)
    data = json.loads(oc.get(f"/me/data.json?user_id={advocate.id}").get_data(as_text=True))
    assert data["participations"] == [] and data["redemptions"] == [] and data["badges"] == []
    assert data["points"]["entries"] == [] and data["digests"] == []
    assert [e["action"] for e in data["activity_log"]] == ["auth.sign_in"]  # Eve's own sign-in, nothing of Ada's
    assert data["referrals"]["referrals_made"] == []


def test_export_round_trips_emoji_and_right_to_left_text(advocate_client, advocate):
    name = "سارة 👩🏽\u200d🔬 שרה"
    fill_everything(advocate_client, advocate.id, name=name)
    story = "פסקה ראשונה 🚀\n\nالفقرة الثانية \u200f— 完成"
    assert (
        post_form(
            advocate_client,
            "/me/profile",
            {
                "name": name,
                "job_title": "رئيسة قسم",
                "company": "שם חברה",
                "story": story,
                "topics": "אבטחה, 🔐 crypto",
                "use_cases": "تحليلات",
            },
        ).status_code
        == 302
    )
    raw = advocate_client.get("/me/data.json").get_data(as_text=True)
    assert name in raw  # not \\u escapes: readable as typed
    data = json.loads(raw)
    assert data["account"]["name"] == name and data["account"]["job_title"] == "رئيسة قسم"
    assert data["account"]["company"] == "שם חברה" and data["profile"]["story"] == story
    assert sorted(data["profile"]["topics"]) == sorted(["אבטחה", "🔐 crypto"])
    assert data["profile"]["use_cases"] == ["تحليلات"]


def test_export_is_always_the_signed_in_advocates_own(app, advocate_client, advocate, make_user):
    fill_everything(advocate_client, advocate.id)
    other = make_user(email="eve@example.com", name="Eve Other")
    oc = app.test_client()
    login(oc, other.email)
    for path in ("/me/data.json", f"/me/data.json?user_id={advocate.id}", f"/me/data.json?id={advocate.id}"):
        raw = oc.get(path).get_data(as_text=True)
        data = json.loads(raw)
        assert data["account"]["email"] == "eve@example.com" and data["account"]["id"] == other.id
        assert "Bluefin" not in raw and "Paris trip" not in raw and advocate.email not in raw


def test_privacy_pages_are_for_advocates_only(client, staff_client, admin_client):
    for c in (staff_client, admin_client):
        for path in ("/me/privacy", "/me/data.json", "/me/delete", "/me/email"):
            assert c.get(path).status_code == 403, path
        assert post_form(c, "/me/delete", {"password": TEST_PASSWORD, "confirm": "y"}, page="/").status_code == 403
    for path in ("/me/privacy", "/me/data.json", "/me/delete", "/me/email"):
        resp = client.get(path)
        assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"], path


# --- delete my account --------------------------------------------------------------------------------------------


def count(table_or_model, user_id):
    col = table_or_model.c.user_id if hasattr(table_or_model, "c") else table_or_model.user_id
    db.session.rollback()
    return db.session.scalar(select(func.count()).where(col == user_id))


@pytest.mark.parametrize(
    "data,message",
    [
        ({"password": "not-the-password-1", "confirm": "y"}, "That password is not right."),
        ({"password": "", "confirm": "y"}, "This field is required."),
        ({"password": TEST_PASSWORD}, "Tick the box to confirm."),
        ({"password": "p" * 1025, "confirm": "y"}, "cannot be longer than 1024"),
    ],
)
def test_delete_refused_without_the_right_password_and_the_tick(advocate_client, advocate, mailbox, data, message):
    fill_everything(advocate_client, advocate.id)
    resp = post_form(advocate_client, "/me/delete", data)
    assert resp.status_code == 422 and message in text(resp)
    u = reload(User, advocate.id)
    assert u.status == Status.ACTIVE and u.email == advocate.email and u.name == "Ada Advocate"
    assert db.session.get(AdvocateProfile, advocate.id) is not None
    assert advocate_client.get("/dashboard").status_code == 200
    assert not mailbox.to(advocate.email)


def test_delete_erases_ends_every_session_and_says_goodbye(app, advocate_client, advocate, mailbox):
    fill_everything(advocate_client, advocate.id)
    # Mail already queued to this person but not sent yet carries personal data: it goes too.
    db.session.add(
        OutboxMessage(
            recipient=advocate.email,
            subject="Pending news for Ada",
            body_text="Hi Ada",
            body_html="<p>Hi Ada</p>",
            template="digest",
            user_id=advocate.id,
            next_attempt_at=utcnow() + timedelta(days=1),
        )
    )
    db.session.commit()
    phone = app.test_client()
    login(phone, advocate.email)
    remembered = app.test_client()
    login(remembered, advocate.email, remember=True)
    assert phone.get("/dashboard").status_code == 200 and remembered.get("/dashboard").status_code == 200

    page = text(advocate_client.get("/me/delete"))
    assert 'name="password"' in page and 'name="confirm"' in page
    resp = post_form(advocate_client, "/me/delete", {"password": TEST_PASSWORD, "confirm": "y"})
    assert resp.status_code == 302 and resp.headers["Location"] in ("/", "http://localhost/")

    u = reload(User, advocate.id)
    assert u.status == Status.DELETED
    assert u.email == f"deleted-{advocate.id}@deleted.invalid" and u.name == "Deleted advocate"
    assert u.company is None and u.job_title is None and u.password_hash is None
    for table in (AdvocateProfile, ActivityPreference, Blackout, Consent, profile_tags, profile_products):
        assert count(table, advocate.id) == 0, table
    leftovers = db.session.scalars(select(OutboxMessage).where(OutboxMessage.user_id == advocate.id)).all()
    assert all("Ada" not in (m.subject + m.body_text + m.body_html) and m.recipient == "erased" for m in leftovers)
    db.session.rollback()

    # Every session is over: this one, another device, a remember-me cookie.
    for c in (advocate_client, phone, remembered):
        resp = c.get("/dashboard")
        assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]
        assert c.get("/me/data.json").status_code == 302
    # The goodbye reaches the old address (without the name: its outbox row keeps only the address).
    goodbye = mailbox.last(advocate.email, subject="Your advocate account is deleted")
    assert "Your advocate account is deleted and your personal data erased" in goodbye.text
    assert "Ada" not in goodbye.text and "Ada" not in goodbye.part("html")
    # Nobody can sign in to it any more: not with the old address, not with the placeholder.
    assert login(app.test_client(), advocate.email).status_code != 302
    assert login(app.test_client(), u.email).status_code != 302


def test_delete_withdraws_open_commitments_cancels_open_orders_and_erases_free_text(
    app, advocate_client, advocate, admin, make_user, mailbox
):
    fill_everything(advocate_client, advocate.id)
    d = fill_program_data(advocate.id, admin.id, make_user)
    # Another advocate shares one of Ada's tags: that one stays a suggestion, Ada's own ones go.
    bob = make_user(email="bob@example.com", name="Bob Other")
    bc = app.test_client()
    login(bc, bob.email)
    assert (
        post_form(
            bc, "/me/profile", {"name": "Bob Other", "job_title": "CTO", "company": "Other Co", "topics": "zero trust"}
        ).status_code
        == 302
    )
    mailbox.clear()
    advocate_client.environ_base["REMOTE_ADDR"] = ADVOCATE_IP
    resp = post_form(advocate_client, "/me/delete", {"password": TEST_PASSWORD, "confirm": "y"})
    assert resp.status_code == 302
    db.session.rollback()

    # Open participations are withdrawn (out of the admins' queues), the seat is free again; done work stays.
    status = {p.id: p for p in db.session.scalars(select(Participation).where(Participation.user_id == advocate.id))}
    assert status[d.requested_id].status == ParticipationStatus.WITHDRAWN
    assert status[d.approved_id].status == ParticipationStatus.WITHDRAWN and not status[d.approved_id].holds_seat
    assert status[d.completed_id].status == ParticipationStatus.COMPLETED
    assert db.session.get(Opportunity, d.seat_opp_id).seats_taken == 0
    assert all(p.message == "" and p.admin_message == "" for p in status.values())
    assert status[d.approved_id].override_reason == "(erased)"
    # The open order is cancelled (points refunded through the ledger, stock back); no order keeps a note.
    orders = {r.id: r for r in db.session.scalars(select(Redemption).where(Redemption.user_id == advocate.id))}
    assert orders[d.open_order_id].status == RedemptionStatus.CANCELLED
    assert orders[d.fulfilled_order_id].status == RedemptionStatus.FULFILLED
    assert all(r.note == "" for r in orders.values())
    assert db.session.get(Reward, d.hoodie_id).stock == 3
    debit = db.session.scalar(
        select(PointsEntry).where(PointsEntry.idempotency_key == f"redemption:{d.open_order_id}:debit")
    )
    refund = db.session.scalar(select(PointsEntry).where(PointsEntry.reverses_id == debit.id))
    assert refund is not None and refund.amount == 100
    assert_ledger_consistent(advocate.id)
    assert (
        db.session.scalar(select(func.count()).select_from(PointsEntry).where(PointsEntry.user_id == advocate.id)) > 0
    )  # the ledger keeps its rows for the program's totals
    badge_reasons = list(db.session.scalars(select(UserBadge.reason).where(UserBadge.user_id == advocate.id)))
    assert badge_reasons and set(badge_reasons) == {""}  # the badges stay (how many were earned), the text goes
    # Tags only Ada used are gone (they were offered to everyone as suggestions); a shared one stays.
    tags = set(db.session.scalars(select(Tag.name)))
    assert "fraud detection" not in tags and "zero trust" in tags
    db.session.rollback()
    page = text(bc.get("/me/profile"))
    assert '<option value="fraud detection">' not in page and '<option value="zero trust">' in page
    # The audit log keeps what happened but not where from; the deletion is logged against the user row.
    db.session.rollback()
    assert db.session.scalars(select(AuditEvent.ip_address).where(AuditEvent.actor_id == advocate.id)).all()
    assert set(db.session.scalars(select(AuditEvent.ip_address).where(AuditEvent.actor_id == advocate.id))) == {None}
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.delete_self"))
    assert (event.target_type, event.target_id, event.actor_id) == ("user", advocate.id, advocate.id)
    override = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "participation.override"))
    assert override.details["reason"] == "(erased)" and "Ada" not in json.dumps(override.details)
    # Withdrawal and cancellation notices queued during the erasure are dropped: only the goodbye is sent.
    assert [m.subject for m in mailbox.wait_for(advocate.email)] == ["Your advocate account is deleted"]


def test_delete_account_needs_the_user_not_the_login_proxy(app, advocate):
    from werkzeug.local import LocalProxy

    user = db.session.get(User, advocate.id)
    with pytest.raises(TypeError):
        privacy.delete_account(db.session, LocalProxy(lambda: user), TEST_PASSWORD)
    db.session.rollback()
    assert reload(User, advocate.id).status == Status.ACTIVE


def test_deleted_advocate_disappears_from_admin_and_search(app, advocate_client, advocate, admin_client, staff_client):
    fill_everything(advocate_client, advocate.id, name="Zed Zebrafish")
    assert "Zed Zebrafish" in text(admin_client.get("/admin/advocates"))
    assert "Zed Zebrafish" in text(staff_client.get("/search/advocates?q=Zebrafish&include_unavailable=1"))
    post_form(advocate_client, "/me/delete", {"password": TEST_PASSWORD, "confirm": "y"})
    assert "Zed Zebrafish" not in text(admin_client.get("/admin/advocates"))
    for q in ("Zebrafish", "Bluefin", "fraud"):
        page = text(staff_client.get(f"/search/advocates?q={q}&include_unavailable=1"))
        assert "Zed Zebrafish" not in page and "No advocates match" in page, q


def test_delete_needs_csrf(advocate_client, advocate):
    resp = advocate_client.post("/me/delete", data={"password": TEST_PASSWORD, "confirm": "y"})
    assert resp.status_code in (400, 422)
    assert reload(User, advocate.id).status == Status.ACTIVE


# --- change my email ----------------------------------------------------------------------------------------------


def request_change(client, new_email, password=TEST_PASSWORD):
    return post_form(client, "/me/email", {"new_email": new_email, "password": password})


@pytest.mark.parametrize(
    "new_email,password,message",
    [
        ("new@example.com", "wrong-password-42", "That password is not right."),
        ("new@example.com", "", "This field is required."),
        ("not-an-email", TEST_PASSWORD, "Invalid email address."),
        ("", TEST_PASSWORD, "This field is required."),
        ("ada.advocate@example.com", TEST_PASSWORD, "That is already your email address."),
        ("ADA.Advocate@Example.com", TEST_PASSWORD, "That is already your email address."),
        ("a" * 250 + "@example.com", TEST_PASSWORD, "cannot be longer than 254"),
        ("<script>@example.com", TEST_PASSWORD, "Invalid email address."),
        # The mailer speaks plain SMTP: an address it cannot send to would be retried and never arrive.
        ("ada+😀@example.com", TEST_PASSWORD, "Invalid email address."),
        ("zoë@example.com", TEST_PASSWORD, "Invalid email address."),
        ("ada@exämple.com", TEST_PASSWORD, "plain (ASCII) letters only"),
        ("ada@例え.jp", TEST_PASSWORD, "plain (ASCII) letters only"),
    ],
)
def test_email_change_refused(advocate_client, advocate, mailbox, new_email, password, message):
    resp = request_change(advocate_client, new_email, password)
    assert resp.status_code == 422 and message in text(resp)
    assert "<script>@" not in text(resp)
    assert reload(User, advocate.id).email == advocate.email
    assert mailbox.messages == []


def test_email_change_link_goes_to_the_new_address_and_changes_only_when_opened(
    app, advocate_client, advocate, mailbox
):
    resp = request_change(advocate_client, "Ada.New@Example.com")
    assert resp.status_code == 302
    assert "We have sent a confirmation link to the new address" in text(advocate_client.get("/me/privacy"))
    notice = mailbox.last(advocate.email, subject="A change of your email address was requested")
    assert "ada.new@example.com" in notice.text
    assert not re.search(r"/me/email/confirm/", notice.text)  # the old address never gets the link
    link = mailbox.last("ada.new@example.com", subject="Confirm your new email address").link("/me/email/confirm/")
    assert reload(User, advocate.id).email == advocate.email  # nothing changes before the link is opened
    assert advocate_client.get("/dashboard").status_code == 200

    anon = app.test_client()
    page = anon.get(path_of(link))
    assert page.status_code == 200 and "Use this address" in text(page)  # GET only shows a button
    assert reload(User, advocate.id).email == advocate.email
    resp = post_form(anon, path_of(link), {})
    assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]
    assert reload(User, advocate.id).email == "ada.new@example.com"
    assert mailbox.last(advocate.email, subject="Your email address was changed")
    # Sessions made with the old address are over; only the new address signs in.
    assert advocate_client.get("/dashboard").status_code == 302
    assert login(app.test_client(), advocate.email).status_code != 302
    assert login(app.test_client(), "ada.new@example.com").status_code == 302
    # The link works once.
    again = post_form(app.test_client(), path_of(link), {})
    assert again.status_code == 400 and "no longer valid" in text(again)
    assert reload(User, advocate.id).email == "ada.new@example.com"


def test_link_for_an_address_taken_in_the_meantime_is_refused_clearly(
    app, advocate_client, advocate, mailbox, make_user
):
    request_change(advocate_client, "wanted@example.com")
    link = mailbox.last("wanted@example.com", subject="Confirm your new email").link("/me/email/confirm/")
    make_user(email="wanted@example.com", name="Quick Registrant")
    resp = post_form(app.test_client(), path_of(link), {})
    assert resp.status_code == 400 and "Another account already uses that address." in text(resp)
    assert reload(User, advocate.id).email == advocate.email
    assert login(app.test_client(), advocate.email).status_code == 302


def test_request_for_a_taken_address_looks_the_same_but_sends_no_link(advocate_client, advocate, mailbox, make_user):
    make_user(email="taken@example.com")
    resp = request_change(advocate_client, "taken@example.com")
    assert resp.status_code == 302  # no hint that the address exists
    assert mailbox.last(advocate.email, subject="A change of your email address was requested")
    assert mailbox.to("taken@example.com") == []
    assert reload(User, advocate.id).email == advocate.email


def test_an_older_link_dies_when_a_newer_one_is_used(app, advocate_client, advocate, mailbox):
    request_change(advocate_client, "first@example.com")
    request_change(advocate_client, "second@example.com")
    first = mailbox.last("first@example.com", subject="Confirm").link("/me/email/confirm/")
    second = mailbox.last("second@example.com", subject="Confirm").link("/me/email/confirm/")
    assert post_form(app.test_client(), path_of(second), {}).status_code == 302
    assert post_form(app.test_client(), path_of(first), {}).status_code == 400
    assert reload(User, advocate.id).email == "second@example.com"


def test_expired_altered_or_forged_links_change_nothing(app, advocate_client, advocate, mailbox):
    request_change(advocate_client, "later@example.com")
    link = path_of(mailbox.last("later@example.com", subject="Confirm").link("/me/email/confirm/"))
    token = link.rsplit("/", 1)[1]
    forged = make_token("unsubscribe", advocate.id, fingerprint(advocate.email), e="evil@example.com")
    other_secret = make_token(CHANGE_EMAIL, advocate.id, "0" * 20, e="evil@example.com")
    for bad in (
        token[:-3],
        token[:10] + ("x" if token[10] != "x" else "y") + token[11:],
        forged,
        other_secret,
        "garbage",
    ):
        resp = post_form(app.test_client(), f"/me/email/confirm/{bad}", {}, page=link)
        assert resp.status_code == 400, bad
    with time_machine.travel(utcnow() + timedelta(hours=49)):
        resp = post_form(app.test_client(), link, {})
        assert resp.status_code == 400 and "expired" in text(resp)
    assert reload(User, advocate.id).email == advocate.email


def test_confirm_without_csrf_changes_nothing(app, advocate_client, advocate, mailbox):
    request_change(advocate_client, "later@example.com")
    link = path_of(mailbox.last("later@example.com", subject="Confirm").link("/me/email/confirm/"))
    resp = app.test_client().post(link)
    assert resp.status_code in (200, 400)
    assert reload(User, advocate.id).email == advocate.email


def test_email_change_page_escapes_input(advocate_client):
    resp = request_change(advocate_client, f"x{SCRIPT}@example.com")
    assert resp.status_code == 422 and SCRIPT not in text(resp)
