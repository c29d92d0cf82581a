"""The audit log: append-only in the database (migration 0010) and in the ORM, except the erasure's
redaction; its page filters and pages; its CSV export is streamed, safe and itself audited."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError

from portal.extensions import db
from portal.models import AuditEvent, Role, utcnow
from portal.models.audit import AuditLogIsAppendOnly
from portal.services import audit
from tests.support import post_form


def _event(actor_id, action="test.thing", target_id=7, **details) -> int:
    e = audit.record(db.session, action, actor_id, None, **details)
    e.target_type, e.target_id, e.ip_address = "user", target_id, "203.0.113.9"
    db.session.commit()
    eid = e.id
    db.session.rollback()
    return eid


def _rows():
    return db.session.execute(text("SELECT * FROM audit_events ORDER BY id")).all()


def _refused(sql: str, **params) -> str:
    with pytest.raises(DBAPIError) as info:
        with db.engine.begin() as conn:
            conn.execute(text(sql), params)
    return str(info.value.orig)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_events SET action = 'rewritten' WHERE id = :id",
        "UPDATE audit_events SET actor_id = NULL WHERE id = :id",
        "UPDATE audit_events SET target_id = 8 WHERE id = :id",
        "UPDATE audit_events SET target_type = 'opportunity' WHERE id = :id",
        "UPDATE audit_events SET created_at = '2020-01-01 00:00:00' WHERE id = :id",
        "UPDATE audit_events SET ip_address = '198.51.100.1' WHERE id = :id",
        "DELETE FROM audit_events WHERE id = :id",
        "DELETE FROM audit_events",
    ],
)
def test_the_database_refuses_to_rewrite_or_delete_an_event(app, admin, sql):
    eid = _event(admin.id)
    before = _rows()
    assert "append-only" in _refused(sql, id=eid)
    db.session.rollback()
    assert _rows() == before


def test_the_erasures_redaction_is_the_one_change_allowed(app, admin):
    eid = _event(admin.id, note="Ada's phone is 555-0100")
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET ip_address = NULL WHERE id = :id"), {"id": eid})
    e = db.session.get(AuditEvent, eid)
    e.details = {"note": "(erased)"}
    db.session.commit()
    db.session.expire_all()
    e = db.session.get(AuditEvent, eid)
    assert (e.ip_address, e.details, e.action, e.actor_id) == (None, {"note": "(erased)"}, "test.thing", admin.id)


def test_an_acting_account_cannot_be_deleted_from_under_its_events(app, make_user, admin):
    _event(admin.id)
    assert "foreign key" in _refused("DELETE FROM users WHERE id = :id", id=admin.id).lower()


@pytest.mark.parametrize(("attr", "value"), [("action", "x.y"), ("target_id", 99), ("ip_address", "198.51.100.1")])
def test_the_orm_refuses_to_change_what_an_event_records(app, admin, attr, value):
    eid = _event(admin.id)
    setattr(db.session.get(AuditEvent, eid), attr, value)
    with pytest.raises(AuditLogIsAppendOnly, match="cannot be changed"):
        db.session.flush()
    db.session.rollback()


def test_the_orm_refuses_to_delete_an_event(app, admin):
    eid = _event(admin.id)
    db.session.delete(db.session.get(AuditEvent, eid))
    with pytest.raises(AuditLogIsAppendOnly, match="cannot be deleted"):
        db.session.flush()
    db.session.rollback()
    assert db.session.get(AuditEvent, eid) is not None


# --- the page and its export ---------------------------------------------------------------------------------------


def _bulk(admin_id, other_id, n=120):
    """n events in one INSERT: every third by the other admin, every fifth by no one, dated one a day back."""
    now = utcnow()
    db.session.execute(
        insert(AuditEvent),
        [
            {
                "actor_id": None if i % 5 == 0 else (other_id if i % 3 == 0 else admin_id),
                "action": "user.suspend" if i % 2 else "opportunity.update",
                "target_type": "user" if i % 2 else "opportunity",
                "target_id": 1000 + i,
                "details": {"reason": f"r{i}"},
                "ip_address": "203.0.113.9",
                "created_at": now - timedelta(days=i),
            }
            for i in range(n)
        ],
    )
    db.session.commit()


@pytest.fixture
def logged(app, admin, make_user):
    other = make_user(Role.ADMIN, email="olga.other@example.com", name="Olga Other")
    _bulk(admin.id, other.id)
    return other


def _shown(client, **params) -> tuple[int, str]:
    resp = client.get("/admin/audit", query_string=params)
    return resp.status_code, resp.get_data(as_text=True)


def _count(html: str) -> int:
    m = re.search(r"([\d,]+) events?(?: match(?:es)? the filters)?\.", html)
    assert m, html[:2000]
    return int(m.group(1).replace(",", ""))


def test_the_audit_page_filters_by_actor_action_object_and_dates(app, admin_client, logged):
    assert _count(_shown(admin_client)[1]) == 120 + 1  # and the admin's own sign-in (auth.sign_in)
    assert _count(_shown(admin_client, actor="OLGA.other@example.com")[1]) == sum(
        1 for i in range(120) if i % 5 and i % 3 == 0
    )
    assert _count(_shown(admin_client, actor="system")[1]) == 24
    assert _count(_shown(admin_client, action="user.suspend")[1]) == 60
    assert _count(_shown(admin_client, action="user.")[1]) == 60
    assert _count(_shown(admin_client, action="user")[1]) == 0  # exact unless it ends in a dot
    status, html = _shown(admin_client, target_type="user", target_id=1001)
    assert status == 200 and _count(html) == 1 and "user #1001" in html
    today = utcnow().date()
    since, until = today - timedelta(days=9), today - timedelta(days=5)
    assert _count(_shown(admin_client, since=since.isoformat(), until=until.isoformat())[1]) == 5  # both included


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "2026-13-40"}, "Not a valid date value."),
        ({"since": "2026-12-06", "until": "2026-12-01"}, "The end date is before the start date."),
        ({"target_id": "x"}, "Not a valid integer value."),
        ({"target_id": "9" * 30}, ""),
    ],
)
def test_bad_filters_are_answered_on_the_page(app, admin_client, logged, params, message):
    status, html = _shown(admin_client, **params)
    assert status == 422 and message in html
    assert "Export" not in html


def test_the_audit_page_is_paged_newest_first(app, admin_client, logged):
    first = _shown(admin_client)[1]
    assert "Page 1 of 3" in first
    assert first.index("user #1001") < first.index("opportunity #1002")  # newest (1000 is today) first
    assert "Page 3 of 3" in _shown(admin_client, page=99)[1]
    last = _shown(admin_client, page=3, action="user.")[1]
    assert "Page 2 of 2" in last and "action=user." in last  # the pager keeps the filters


def test_the_export_streams_the_filtered_rows_and_is_audited(app, admin, admin_client, logged):
    page = admin_client.get("/admin/audit", query_string={"action": "user.", "actor": "system"}).get_data(as_text=True)
    resp = post_form(admin_client, "/admin/audit/export?action=user.&actor=system", {}, page=page)
    assert resp.status_code == 200 and resp.is_streamed
    assert resp.mimetype == "text/csv" and "attachment" in resp.headers["Content-Disposition"]
    body = resp.get_data(as_text=True)
    assert body.startswith("\ufeff") and "\r\n" in body
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0] == list(audit.EXPORT_HEADER)
    expected = [i for i in range(120) if i % 2 and i % 5 == 0]
    assert [int(r[5]) for r in rows[1:]] == [1000 + i for i in sorted(expected, reverse=True)]  # oldest first
    assert {r[2] for r in rows[1:]} == {"system"} and {r[3] for r in rows[1:]} == {"user.suspend"}
    exports = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.export")).all()
    assert [(e.actor_id, e.details["filters"]) for e in exports] == [(admin.id, {"action": "user.", "actor": "system"})]


def test_the_export_needs_a_post_with_a_csrf_token(app, admin_client, logged):
    assert admin_client.get("/admin/audit/export").status_code == 405
    assert admin_client.post("/admin/audit/export").status_code == 400
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "audit.export")) is None


def test_the_audit_page_and_export_are_for_admins_only(app, advocate_client, staff_client):
    for c in (advocate_client, staff_client):
        assert c.get("/admin/audit").status_code == 403
        assert c.post("/admin/audit/export").status_code in (400, 403)
