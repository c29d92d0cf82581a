"""Admins' internal notes about an advocate: on the admin page and timeline, never shown to the advocate
nor in their data export, deleted with their account."""

from __future__ import annotations

from portal.extensions import db
from portal.models import AdvocateNote
from tests.support import TEST_PASSWORD, audits, fill_everything, post_form

SECRET = "Prefers not to speak about the 2025 outage <i>at all</i>"


def test_a_note_is_for_admins_only(app, advocate, advocate_client, admin, admin_client):
    fill_everything(advocate_client, advocate.id)
    page = f"/admin/advocates/{advocate.id}/profile"
    assert "they are not in their data export" in admin_client.get(page).get_data(as_text=True)
    resp = post_form(admin_client, f"/admin/advocates/{advocate.id}/notes", {"body": SECRET}, page=page)
    assert resp.status_code == 302
    html = admin_client.get(page).get_data(as_text=True)
    assert (
        "Note: Prefers not to speak about the 2025 outage &lt;i&gt;at all&lt;/i&gt;" in html and "by Alex Admin" in html
    )
    note = db.session.query(AdvocateNote).one()
    assert [(e.actor_id, e.details) for e in audits("note.add", advocate.id)] == [(admin.id, {"note_id": note.id})]
    for url in ("/dashboard", "/me/profile", "/me/profile/preview", "/me/data.json"):
        resp = advocate_client.get(url)
        assert resp.status_code == 200 and "2025 outage" not in resp.get_data(as_text=True), url


def test_an_empty_or_long_note_is_refused_on_the_page(app, advocate, admin_client):
    page = f"/admin/advocates/{advocate.id}/profile"
    for body, message in (("", "This field is required."), ("x" * 2001, "2000 characters")):
        resp = post_form(admin_client, f"/admin/advocates/{advocate.id}/notes", {"body": body}, page=page)
        assert resp.status_code == 422 and message in resp.get_data(as_text=True)
    assert db.session.query(AdvocateNote).count() == 0


def test_notes_go_with_the_account(app, advocate, advocate_client, admin, admin_client):
    from portal.services import privacy

    page = f"/admin/advocates/{advocate.id}/profile"
    post_form(admin_client, f"/admin/advocates/{advocate.id}/notes", {"body": SECRET}, page=page)
    assert db.session.query(AdvocateNote).count() == 1
    privacy.delete_account(db.session, db.session.get(type(advocate), advocate.id), TEST_PASSWORD)
    db.session.commit()
    assert db.session.query(AdvocateNote).count() == 0
