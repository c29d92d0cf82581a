"""An admin suspends (with a reason, emailed; sessions end; out of search), reactivates and changes the
role of an advocate from their page; an admin cannot take their own admin role or account, and the
last active admin stays one. Every step audited."""

from __future__ import annotations

import pytest

from portal.extensions import db
from portal.models import Role, Status, User
from portal.services import accounts
from portal.services.errors import Conflict
from search import backend
from tests.support import audits, find, make_advocate, names, post_form, reload


@pytest.fixture
def member(app, make_user):
    uid = make_advocate(make_user, "mia.member@example.com", name="Mia Member")
    backend().apply_pending(db.engine)
    return uid


def _page(uid):
    return f"/admin/advocates/{uid}/profile"


def test_suspend_with_a_reason_ends_sessions_hides_from_search_and_emails(app, admin, admin_client, member, mailbox):
    from tests.support import client_for

    theirs = client_for(app, member)
    assert names(find(include_unavailable=True)) == ["Mia Member"]
    resp = post_form(
        admin_client, f"/admin/advocates/{member}/suspend", {"reason": "Spam <b>links</b>"}, page=_page(member)
    )
    assert resp.status_code == 302
    assert reload(User, member).status == Status.SUSPENDED
    assert theirs.get("/dashboard").status_code == 302  # signed out
    backend().apply_pending(db.engine)
    assert names(find(include_unavailable=True)) == []
    mail = mailbox.wait_for("mia.member@example.com", subject="Your advocate account is suspended")[0]
    assert "The reason given: Spam" in mail.text and "<b>" not in mail.text  # no user tag in any part
    assert "Spam &lt;b&gt;links&lt;/b&gt;" in mail.html
    assert [(e.actor_id, e.details) for e in audits("user.suspend", member)] == [
        (admin.id, {"reason": "Spam <b>links</b>"})
    ]
    page = admin_client.get(_page(member)).get_data(as_text=True)
    assert "Reactivate" in page and "user.suspend" in page  # on the timeline


def test_a_suspension_needs_a_reason(app, admin_client, member):
    resp = post_form(admin_client, f"/admin/advocates/{member}/suspend", {"reason": ""}, page=_page(member))
    assert resp.status_code == 422 and "This field is required." in resp.get_data(as_text=True)
    assert reload(User, member).status == Status.ACTIVE


def test_reactivate_emails_and_lets_them_back_in(app, admin, admin_client, member, mailbox):
    post_form(admin_client, f"/admin/advocates/{member}/suspend", {"reason": "Check"}, page=_page(member))
    resp = post_form(admin_client, f"/admin/advocates/{member}/reactivate", {"reason": "All clear"}, page=_page(member))
    assert resp.status_code == 302 and reload(User, member).status == Status.ACTIVE
    assert (
        "All clear"
        in mailbox.wait_for("mia.member@example.com", subject="Your advocate account is active again")[0].text
    )
    assert [e.actor_id for e in audits("user.reactivate", member)] == [admin.id]
    again = post_form(admin_client, f"/admin/advocates/{member}/reactivate", {}, page=_page(member))
    assert again.status_code == 302  # refused: not suspended, said in a message
    assert len(audits("user.reactivate", member)) == 1


def test_change_role_ends_sessions_and_is_audited(app, admin, admin_client, member):
    from tests.support import client_for

    theirs = client_for(app, member)
    resp = post_form(admin_client, f"/admin/advocates/{member}/role", {"role": "staff"}, page=_page(member))
    assert resp.status_code == 302
    assert reload(User, member).role == Role.STAFF
    assert theirs.get("/dashboard").status_code == 302
    assert [e.details for e in audits("user.role", member)] == [{"before": "advocate", "after": "staff"}]
    bad = post_form(admin_client, f"/admin/advocates/{member}/role", {"role": "owner"}, page="/admin/")
    assert bad.status_code == 404  # no longer an advocate: not on the advocates' pages


def test_admins_cannot_take_their_own_role_or_account_and_the_last_admin_stays(app, admin, make_user):
    me = db.session.get(User, admin.id)
    with pytest.raises(Conflict, match="yourself"):
        accounts.change_role(db.session, me, Role.STAFF, admin.id)
    with pytest.raises(Conflict, match="yourself"):
        accounts.suspend(db.session, me, admin.id, "x")
    db.session.rollback()
    other = make_user(Role.STAFF, email="sue.staff@example.com", name="Sue Staff")
    with pytest.raises(Conflict, match="last active admin"):
        accounts.change_role(db.session, db.session.get(User, admin.id), Role.STAFF, other.id)
    db.session.rollback()
    second = make_user(Role.ADMIN, email="second.admin@example.com", name="Second Admin")
    accounts.change_role(db.session, db.session.get(User, admin.id), Role.STAFF, second.id)  # two admins: fine
    db.session.commit()
    assert reload(User, admin.id).role == Role.STAFF
