"""Registrations: an admin approves several applicants at once (each emailed and audited), with a
summary of what happened; those decided meanwhile are skipped, not approved twice."""

from __future__ import annotations

from portal.models import Role, Status, User
from tests.support import audits, csrf_from, reload


def _bulk(client, ids):
    token = csrf_from(client.get("/admin/pending").get_data(as_text=True))
    return client.post("/admin/pending/approve-selected", data={"csrf_token": token, "user_id": [str(i) for i in ids]})


def test_approve_selected_applicants_with_a_summary(app, admin, admin_client, make_user, mailbox):
    waiting = [
        make_user(Role.ADVOCATE, Status.PENDING, email=f"app{i}@example.com", name=f"Applicant {i}") for i in range(3)
    ]
    already = make_user(Role.ADVOCATE, Status.ACTIVE, email="already@example.com")
    page = admin_client.get("/admin/pending").get_data(as_text=True)
    assert 'form="bulk-approve"' in page and "Approve selected" in page
    resp = _bulk(admin_client, [u.id for u in waiting] + [already.id])
    assert resp.status_code == 302
    flashed = admin_client.get("/admin/pending").get_data(as_text=True)
    assert "Approved 3 applicants; each has been emailed. 1 skipped: already decided, or not waiting." in flashed
    for u in waiting:
        assert reload(User, u.id).status == Status.ACTIVE
        assert mailbox.wait_for(u.email)
        assert [(e.actor_id, e.details) for e in audits("user.approve", u.id)] == [(admin.id, {"via": "admin-bulk"})]
    assert audits("user.approve", already.id) == []
    again = _bulk(admin_client, [waiting[0].id])  # a second click: nothing approved twice
    assert again.status_code == 302 and len(audits("user.approve", waiting[0].id)) == 1


def test_nothing_selected_or_junk(app, admin_client):
    assert _bulk(admin_client, []).status_code == 302
    assert "Select the applicants to approve first." in admin_client.get("/admin/pending").get_data(as_text=True)
    token = csrf_from(admin_client.get("/admin/pending").get_data(as_text=True))
    assert (
        admin_client.post("/admin/pending/approve-selected", data={"csrf_token": token, "user_id": "x"}).status_code
        == 400
    )
