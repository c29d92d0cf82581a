"""Referrals: the personal link, registration through it, one credit on approval, the referrer's page,
and codes that must do nothing."""

import re
from urllib.parse import urlsplit

import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import EntrySource, PointsEntry, Role, Status, User
from portal.services import accounts, privacy, referrals
from portal.services.errors import Conflict
from tests.support import TEST_PASSWORD, cached, entries, login, page_text, post_form, reload

FRIEND = {
    "name": "Riley Referred",
    "email": "riley.referred@example.com",
    "company": "Globex",
    "job_title": "CTO",
    "password": "amber-crane-forest-6",
    "confirm": "amber-crane-forest-6",
    "accept_terms": "y",
}


def referral_code(client) -> str:
    html = client.get("/me/referrals").get_data(as_text=True)
    link = re.search(r'id="ref-link"[^>]*value="([^"]+)"', html).group(1)
    path = urlsplit(link).path
    assert path.startswith("/r/")
    return path[len("/r/") :]


def register_through(app, path: str, data=FRIEND):
    visitor = app.test_client()
    resp = visitor.get(path)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/auth/register")
    register_page = page_text(visitor.get("/auth/register"))
    resp = post_form(visitor, "/auth/register", data)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    db.session.rollback()
    user = db.session.scalar(select(User).where(User.email == data["email"]))
    return visitor, user, register_page


def confirm_email(visitor, mailbox, address):
    path = urlsplit(mailbox.last(address, subject="Confirm your email").link("/auth/verify/")).path
    assert post_form(visitor, path, {}).status_code == 302


def referral_entries(user_id):
    return entries(user_id, source=EntrySource.REFERRAL)


def test_referral_journey_credits_the_referrer_once(app, advocate_client, advocate, admin_client, admin, mailbox):
    code = referral_code(advocate_client)
    visitor, friend, register_page = register_through(app, f"/r/{code}")
    assert "Ada Advocate invited you to the advocate program" in register_page
    assert friend.referred_by_id == advocate.id and friend.status == Status.UNVERIFIED
    assert referral_entries(advocate.id) == []

    confirm_email(visitor, mailbox, FRIEND["email"])
    assert reload(User, friend.id).status == Status.PENDING
    assert referral_entries(advocate.id) == []  # not before approval
    page = page_text(advocate_client.get("/me/referrals"))
    assert "Riley Referred" in page and "Pending" in page and "points credited" not in page

    resp = post_form(admin_client, "/admin/pending/approve", {"user_id": str(friend.id)}, page="/admin/pending")
    assert resp.status_code == 302
    assert reload(User, friend.id).status == Status.ACTIVE
    (credit,) = referral_entries(advocate.id)
    assert (credit.amount, credit.source_id) == (app.config["POINTS_REFERRAL"], friend.id)
    assert cached(advocate.id) == (250, 250)
    page = page_text(advocate_client.get("/me/referrals"))
    assert "Riley Referred" in page and "Active" in page and "points credited" in page
    assert "Referral: Riley Referred joined" in page_text(advocate_client.get("/me/points"))

    # Approving again is impossible, and crediting again adds nothing.
    post_form(admin_client, "/admin/pending/approve", {"user_id": str(friend.id)}, page="/admin/pending")
    assert "already active" in page_text(admin_client.get("/admin/pending"))
    with pytest.raises(Conflict):
        accounts.approve(db.session, reload(User, friend.id), actor_id=admin.id)
    db.session.rollback()
    assert referrals.credit_referral(db.session, reload(User, friend.id)) is False
    db.session.commit()
    assert len(referral_entries(advocate.id)) == 1 and cached(advocate.id) == (250, 250)
    assert referral_entries(friend.id) == []


def test_auto_approved_referral_is_credited_once(app, advocate_client, advocate, mailbox):
    app.config["AUTO_APPROVE_ADVOCATES"] = True
    visitor, friend, _ = register_through(app, f"/r/{referral_code(advocate_client)}")
    confirm_email(visitor, mailbox, FRIEND["email"])
    assert reload(User, friend.id).status == Status.ACTIVE
    assert len(referral_entries(advocate.id)) == 1
    # the same link can be confirmed only once
    path = urlsplit(mailbox.last(FRIEND["email"], subject="Confirm your email").link("/auth/verify/")).path
    assert post_form(visitor, path, {}).status_code == 400
    assert len(referral_entries(advocate.id)) == 1


def test_one_referrer_many_friends(app, advocate_client, advocate, make_user):
    code = referral_code(advocate_client)
    friends = []
    for i in range(2):
        _, friend, _ = register_through(
            app, f"/r/{code}", {**FRIEND, "email": f"friend{i}@example.com", "name": f"Friend {i}"}
        )
        friends.append(friend)
    for f in friends:
        db.session.execute(update(User).where(User.id == f.id).values(status=Status.PENDING))
    db.session.commit()
    for f in friends:
        accounts.approve(db.session, reload(User, f.id), actor_id=None)
        db.session.commit()
    assert sorted(e.source_id for e in referral_entries(advocate.id)) == sorted(f.id for f in friends)
    assert cached(advocate.id) == (500, 500)


@pytest.mark.parametrize("kind", ["garbage", "other_secret", "string_payload", "unknown_user", "staff", "suspended"])
def test_a_forged_or_dead_code_does_nothing(app, advocate, make_user, kind):
    good = URLSafeSerializer(app.config["SECRET_KEY"], salt="portal.referral")
    if kind == "garbage":
        code = "forged-code"
    elif kind == "other_secret":
        code = URLSafeSerializer("not-the-secret", salt="portal.referral").dumps(advocate.id)
    elif kind == "string_payload":
        code = good.dumps(str(advocate.id))
    elif kind == "unknown_user":
        code = good.dumps(987654)
    elif kind == "staff":
        code = good.dumps(make_user(Role.STAFF).id)
    else:
        code = good.dumps(make_user(status=Status.SUSPENDED).id)
    visitor, friend, register_page = register_through(app, f"/r/{code}")
    with visitor.session_transaction() as s:
        assert "referred_by" not in s
    assert "invited you" not in register_page
    assert friend.referred_by_id is None
    # and the real code works the same way, so the test above can fail
    assert referrals.referrer_for_code(db.session, good.dumps(advocate.id)).id == advocate.id


def test_signed_in_visitors_are_not_referred(app, advocate_client, make_user):
    code = referral_code(advocate_client)
    other = make_user()

    c = app.test_client()
    login(c, other.email)
    c.get(f"/r/{code}")
    with c.session_transaction() as s:
        assert "referred_by" not in s


def test_a_referral_worth_zero_points_is_approved_without_a_ledger_entry(app, advocate_client, advocate, admin_client):
    """POINTS_REFERRAL=0 turns the credit off: approving the colleague used to fail with "An award of
    zero points records nothing."."""
    app.config["POINTS_REFERRAL"] = 0
    _, friend, _ = register_through(app, f"/r/{referral_code(advocate_client)}")
    db.session.execute(update(User).where(User.id == friend.id).values(status=Status.PENDING))
    db.session.commit()
    resp = post_form(admin_client, "/admin/pending/approve", {"user_id": str(friend.id)}, page="/admin/pending")
    assert resp.status_code == 302
    assert reload(User, friend.id).status == Status.ACTIVE
    assert referral_entries(advocate.id) == [] and entries(advocate.id) == []
    assert referrals.credit_referral(db.session, reload(User, friend.id)) is False
    page = page_text(advocate_client.get("/me/referrals"))
    assert "Riley Referred" in page and "Active" in page and "points credited" not in page


def test_no_credit_when_the_referrer_is_no_longer_active(app, advocate_client, advocate, make_user):
    _, friend, _ = register_through(app, f"/r/{referral_code(advocate_client)}")
    db.session.execute(update(User).where(User.id == friend.id).values(status=Status.PENDING))
    db.session.execute(update(User).where(User.id == advocate.id).values(status=Status.SUSPENDED))
    db.session.commit()
    accounts.approve(db.session, reload(User, friend.id), actor_id=None)
    db.session.commit()
    assert referral_entries(advocate.id) == []


def test_self_referral_is_not_credited(app, make_user):
    user = make_user(status=Status.PENDING)
    db.session.execute(update(User).where(User.id == user.id).values(referred_by_id=user.id))
    db.session.commit()
    accounts.approve(db.session, reload(User, user.id), actor_id=None)
    db.session.commit()
    assert referral_entries(user.id) == []


# --- the ledger keeps no name --------------------------------------------------------------------------------------


def test_the_ledger_keeps_no_name_and_pages_show_it_only_while_the_account_exists(
    app, advocate_client, advocate, make_user
):
    friend = make_user(name="Quinn Quietly", email="quinn@example.com", referred_by_id=advocate.id)
    assert referrals.credit_referral(db.session, reload(User, friend.id)) is True
    db.session.commit()
    (credit,) = referral_entries(advocate.id)
    assert credit.reason == "Referral of a colleague who joined"
    db.session.rollback()
    assert not [r for r in db.session.scalars(select(PointsEntry.reason)) if "Quinn" in r]
    # While Quinn's account exists, Ada's history names who joined (drawn from the account, not the ledger).
    assert "Referral: Quinn Quietly joined" in page_text(advocate_client.get("/me/points"))

    # Quinn erases the account: the ledger row stays (it is money), the name is gone from every page.
    privacy.delete_account(db.session, reload(User, friend.id), TEST_PASSWORD)
    db.session.commit()
    points_page = page_text(advocate_client.get("/me/points"))
    assert "Referral of a colleague who joined" in points_page and "Quinn" not in points_page
    assert "Deleted advocate" not in points_page
    assert "Quinn" not in page_text(advocate_client.get("/me/referrals"))
    (kept,) = referral_entries(advocate.id)
    assert (kept.id, kept.amount, kept.source_id) == (credit.id, credit.amount, friend.id)
    assert cached(advocate.id) == (250, 250)
