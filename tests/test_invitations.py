"""Invitations: the invited person signs up from the link in the email (their own password and consent,
approved at once, the profile filled with what was known); links are single use and expire; nobody with an
account, an open invitation or an erased account is invited."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.database import begin_write
from portal.extensions import db
from portal.models import (
    AdvocateProfile,
    Consent,
    Industry,
    Invitation,
    Product,
    Status,
    SuppressedAddress,
    User,
    utcnow,
)
from portal.services import invitations, privacy
from portal.services.errors import Conflict
from portal.services.passwords import verify_password
from tests.support import TEST_PASSWORD, audits, client_for, csrf_from, path_of, run_threads, text_of

NEW_PASSWORD = "violet otter canoe 42"


def invite(email: str = "ivy@example.com", **known) -> None:
    """Invite through the service (committed), with a known industry, country and product."""
    industry = db.session.scalar(select(Industry.id).where(Industry.name == "Healthcare"))
    product = db.session.scalar(select(Product.id).where(Product.name == "Data Platform"))
    person = invitations.Invitee(
        email=email,
        name=known.get("name", "Ivy Invited"),
        company=known.get("company", "Ivy Labs"),
        job_title=known.get("job_title", "CISO"),
        industry_id=industry,
        country_code="DE",
        product_ids=[product],
    )
    invitations.create(db.session, person, actor_id=None)
    db.session.commit()


def link_for(mailbox, email: str) -> str:
    from portal.services.outbox import send_due

    send_due()
    return path_of(mailbox.last(email, subject="invited").link("/auth/invited/"))


def sign_up(client, link: str, **over):
    page = client.get(link)
    data = {
        "csrf_token": csrf_from(page.get_data(as_text=True)),
        "name": "Ivy I. Invited",
        "company": "Ivy Labs",
        "job_title": "CISO",
        "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD,
        "accept_terms": "y",
        **over,
    }
    return client.post(link, data=data)


def test_the_invited_person_signs_up_from_the_email(app, client, mailbox):
    invite()
    link = link_for(mailbox, "ivy@example.com")
    page = client.get(link)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'value="Ivy Invited"' in html and 'value="Ivy Labs"' in html and 'value="CISO"' in html
    assert 'value="ivy@example.com" readonly' in html
    resp = sign_up(client, link)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/dashboard")
    assert client.get("/dashboard").status_code == 200  # signed in
    db.session.rollback()
    user = db.session.scalar(select(User).where(User.email == "ivy@example.com"))
    assert (user.name, user.status, user.role.value) == ("Ivy I. Invited", Status.ACTIVE, "advocate")
    assert user.email_verified_at and user.approved_at
    assert verify_password(user.password_hash, NEW_PASSWORD)  # the password they chose
    [consent] = db.session.scalars(select(Consent).where(Consent.user_id == user.id)).all()
    assert consent.kind == "program_terms" and consent.version == app.config["TERMS_VERSION"]
    profile = db.session.get(AdvocateProfile, user.id)
    assert profile.industry.name == "Healthcare" and profile.country_code == "DE"
    assert [p.name for p in profile.products] == ["Data Platform"]
    inv = db.session.scalar(select(Invitation).where(Invitation.email == "ivy@example.com"))
    assert inv.accepted_user_id == user.id and inv.accepted_at is not None
    [event] = audits("invitation.accept", user.id)
    assert event.actor_id == user.id and event.details["invitation_id"] == inv.id
    # The link is used up.
    other = app.test_client()
    used = other.get(link)
    assert used.status_code == 400 and "already been used" in text_of(used)


def test_refusals_keep_the_form(app, client, mailbox):
    invite()
    link = link_for(mailbox, "ivy@example.com")
    no_terms = sign_up(client, link, accept_terms="")
    assert no_terms.status_code == 422 and "Please accept the program terms to join." in text_of(no_terms)
    weak = sign_up(client, link, password="password", confirm="password")
    assert weak.status_code == 422
    mismatch = sign_up(client, link, confirm="something else entirely")
    assert mismatch.status_code == 422 and "The passwords do not match." in text_of(mismatch)
    db.session.rollback()
    assert db.session.scalar(select(User).where(User.email == "ivy@example.com")) is None


def test_expired_unknown_and_tampered_links(app, client, mailbox):
    invite()
    link = link_for(mailbox, "ivy@example.com")
    for bad in ("/auth/invited/nope", link + "x", "/auth/invited/" + "a" * 500):
        resp = client.get(bad)
        assert resp.status_code == 400 and "not valid" in text_of(resp)
    inv = db.session.scalar(select(Invitation))
    inv.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    resp = client.get(link)
    assert resp.status_code == 400 and "has expired" in text_of(resp)


def test_an_account_created_meanwhile_wins(app, client, mailbox, make_user):
    invite()
    link = link_for(mailbox, "ivy@example.com")
    make_user(email="ivy@example.com")
    resp = sign_up(client, link)
    assert resp.status_code == 422
    assert "An account with this address already exists." in text_of(resp)


def test_who_may_not_be_invited(app, make_user):
    make_user(email="member@example.com")
    with pytest.raises(Conflict, match="already has an account"):
        invitations.create(db.session, invitations.Invitee(email="Member@Example.com"), actor_id=None)
    db.session.rollback()
    invite("open@example.com")
    with pytest.raises(Conflict, match="already invited"):
        invitations.create(db.session, invitations.Invitee(email="open@example.com"), actor_id=None)
    db.session.rollback()
    # An expired invitation does not block a new one.
    inv = db.session.scalar(select(Invitation).where(Invitation.email == "open@example.com"))
    inv.expires_at = utcnow() - timedelta(days=1)
    old_hash = inv.token_hash
    db.session.commit()
    invite("open@example.com")
    [fresh] = db.session.scalars(select(Invitation).where(Invitation.email == "open@example.com")).all()
    assert fresh.token_hash != old_hash and fresh.expires_at > utcnow()  # the expired one made way
    assert len(audits("invitation.create")) == 2


def test_one_open_invitation_per_address_in_the_database(app):
    invite("race@example.com")
    db.session.add(
        Invitation(
            email="race@example.com",
            source="import",
            token_hash=invitations.token_hash("another"),
            expires_at=utcnow() + timedelta(days=1),
        )
    )
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_someone_who_deleted_their_account_is_never_invited_again(app, make_user, mailbox):
    user = make_user(email="gone@example.com")
    invite("gone2@example.com")
    db.session.rollback()
    privacy.delete_account(db.session, db.session.get(User, user.id), TEST_PASSWORD)
    db.session.commit()
    with pytest.raises(Conflict, match="deleted their account"):
        invitations.create(db.session, invitations.Invitee(email="GONE@example.com"), actor_id=None)
    db.session.rollback()
    assert invitations.is_suppressed(db.session, "gone@example.com")
    assert not invitations.is_suppressed(db.session, "gone2@example.com")
    # Only a hash of the address is kept, and the invitations to it are gone.
    [kept] = db.session.scalars(select(SuppressedAddress)).all()
    assert kept.email_hash == invitations.email_hash("gone@example.com") and "gone" not in kept.email_hash


def test_no_thanks_means_never_invited_nor_nominated_again(app, client, mailbox, staff):
    invite("nope@example.com")
    link = link_for(mailbox, "nope@example.com")
    assert 'choose "No thanks"' in mailbox.last("nope@example.com", subject="invited").text
    page = client.get(link).get_data(as_text=True)
    assert "No thanks, don&#39;t invite me again" in page or "No thanks, don't invite me again" in page
    forms = re.findall(r'<form method="post" action="([^"]+/no-thanks)">\s*<input[^>]*value="([^"]+)"', page)
    [(action, token)] = forms
    assert client.post(action, data={}).status_code == 400  # no CSRF token: refused
    done = client.post(action, data={"csrf_token": token})
    assert done.status_code == 200 and "We will not invite you again" in text_of(done)
    assert client.get(link).status_code == 400  # the invitation is gone
    assert invitations.is_suppressed(db.session, "nope@example.com")
    assert db.session.scalar(select(Invitation).where(Invitation.email == "nope@example.com")) is None
    assert len(audits("invitation.refused")) == 1
    with pytest.raises(Conflict, match="cannot be invited"):
        invitations.create(db.session, invitations.Invitee(email="Nope@example.com"), actor_id=None)
    db.session.rollback()
    sam = client_for(app, staff.id)
    page = sam.get("/staff/nominations/new").get_data(as_text=True)
    resp = sam.post(
        "/staff/nominations/new",
        data={
            "csrf_token": csrf_from(page),
            "name": "Nora Nope",
            "email": "nope@example.com",
            "company": "Nope Ltd",
            "job_title": "CIO",
            "reason": "A fan",
        },
    )
    assert resp.status_code == 409 and "unsubscribed" in text_of(resp)


def test_an_invitation_committed_meanwhile_is_a_conflict_not_an_error(app):
    """Two requests invite one address at once (an import's batch and a nomination invited at once): the one
    that commits second is refused with a message, not a database error, and one invitation stands."""
    inserted = threading.Event()

    def first():
        with app.app_context():
            begin_write(db.session)
            invitations.create_many(db.session, [invitations.Invitee(email="both@example.com")], None)
            inserted.set()
            time.sleep(0.5)  # the second request reaches its insert while this one holds its row
            db.session.commit()
            return "invited"

    def second():
        inserted.wait(10)
        with app.app_context():
            try:
                begin_write(db.session)
                invitations.create(db.session, invitations.Invitee(email="both@example.com"), None)
                db.session.commit()
                return "invited"
            except Conflict as err:
                db.session.rollback()
                return err.message

    results = run_threads(2, lambda i: (first, second)[i]())
    assert results[0] == "invited" and isinstance(results[1], str) and results[1] != "invited", results
    assert len(db.session.scalars(select(Invitation).where(Invitation.email == "both@example.com")).all()) == 1
