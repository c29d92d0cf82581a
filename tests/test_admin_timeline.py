"""The advocate's timeline on the admin page: everything that happened with them, newest first, who
did it, in pages of a fixed number of queries."""

from __future__ import annotations

import re
from datetime import timedelta

from portal.extensions import db
from portal.models import OutboxMessage, OutboxStatus, utcnow
from portal.services import timeline
from tests.support import fill_everything, fill_program_data, post_form


def _lines(html: str) -> list[str]:
    section = html.split('id="timeline-heading"', 1)[1]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", li)).strip()
        for li in re.findall(r"<li class=\"timeline-[a-z]+\">(.*?)</li>", section, re.S)
    ]


def test_the_timeline_shows_everything_newest_first_and_who_did_it(
    app, advocate, advocate_client, admin, admin_client, make_user
):
    fill_everything(advocate_client, advocate.id)
    fill_program_data(advocate.id, admin.id, make_user)
    assert post_form(advocate_client, "/me/profile/confirm", {}, page="/dashboard").status_code == 302
    db.session.add(
        OutboxMessage(
            recipient=advocate.email,
            subject="Your place at the Fintech Summit",
            body_text="body",
            body_html="body",
            template="t",
            user_id=advocate.id,
            status=OutboxStatus.SENT,
            sent_at=utcnow() + timedelta(seconds=5),
        )
    )
    db.session.commit()
    html = admin_client.get(f"/admin/advocates/{advocate.id}/profile").get_data(as_text=True)
    lines = _lines(html)
    text = "\n".join(lines)
    assert lines[0].endswith("Email sent: Your place at the Fintech Summit")  # the newest first
    for expected in (
        "Signed up by Ada Advocate",
        "Asked for a place: Fintech Summit panel by Ada Advocate",
        "Approved: Fraud webinar by Alex Admin override: Ada Advocate asked for it personally",
        "Completed: G2 review",
        "+1,000 points: Welcome bonus for Ada Advocate by Alex Admin",
        "-25 points: Duplicate award by Alex Admin",
        "Badge: Champion by Alex Admin",
        "Ordered: Hoodie by Ada Advocate",
        "Order fulfilled: Mug by Alex Admin",
        "profile.confirm by Ada Advocate",
        "participation.override by Alex Admin",
    ):
        assert any(line.endswith(expected) or expected in line for line in lines), (expected, text)
    stamps = [line[:16] for line in lines]
    assert stamps == sorted(stamps, reverse=True)
    assert "Wrote it on G2" not in text  # an ask's own message is not repeated on the timeline


def test_the_timeline_pages_through_everything_once(
    app, advocate, advocate_client, admin, admin_client, make_user, monkeypatch
):
    fill_program_data(advocate.id, admin.id, make_user)
    everything = timeline.timeline(db.session, advocate.id, limit=1000).entries
    monkeypatch.setattr(timeline, "PER_PAGE", 4)
    seen, url, pages = [], f"/admin/advocates/{advocate.id}/profile", 0
    while url and pages < 50:
        html = admin_client.get(url).get_data(as_text=True)
        lines = _lines(html)
        assert len(lines) <= 4
        seen += lines
        pages += 1
        m = re.search(r'<a href="([^"]+)">Older entries', html)
        url = m.group(1).replace("&amp;", "&") if m else None
    assert pages > 2 and len(seen) == len(everything)
    assert admin_client.get(f"/admin/advocates/{advocate.id}/profile?before=garbage").status_code == 200


def test_an_advocates_own_pages_do_not_show_the_timeline(app, advocate, advocate_client):
    assert advocate_client.get(f"/admin/advocates/{advocate.id}/profile").status_code == 403


def test_an_admin_reverses_one_ledger_entry_from_the_timeline(app, advocate, admin, admin_client):
    from portal.models import PointsEntry
    from portal.services import points
    from tests.support import audits, give

    entry_id, _ = give(advocate.id, 70, reason="Keynote")
    page = f"/admin/advocates/{advocate.id}/profile"
    html = admin_client.get(page).get_data(as_text=True)
    assert f"/points/{entry_id}/reverse" in html
    url = f"/admin/advocates/{advocate.id}/points/{entry_id}/reverse"
    assert post_form(admin_client, url, {"reason": ""}, page=page).status_code == 302  # refused: no reason
    assert points.balance(db.session, advocate.id) == 70
    assert post_form(admin_client, url, {"reason": "Counted twice"}, page=page).status_code == 302
    db.session.rollback()
    assert points.balance(db.session, advocate.id) == 0
    reversal = db.session.query(PointsEntry).filter_by(reverses_id=entry_id).one()
    assert (reversal.amount, reversal.reason, reversal.actor_id) == (-70, "Counted twice", admin.id)
    assert [e.details for e in audits("points.reverse", advocate.id)] == [
        {"entry_id": entry_id, "amount": -70, "reason": "Counted twice"}
    ]
    assert post_form(admin_client, url, {"reason": "Again"}, page=page).status_code == 302  # already reversed
    assert db.session.query(PointsEntry).filter_by(user_id=advocate.id).count() == 2
    html = admin_client.get(page).get_data(as_text=True)
    assert "/reverse" not in html  # nothing left to reverse: the entry is reversed, a reversal is final
    other = f"/admin/advocates/{advocate.id}/points/999999/reverse"
    assert post_form(admin_client, other, {"reason": "x"}, page=page).status_code == 404


def test_an_admin_adjusts_points_from_the_advocates_page(app, advocate, admin, admin_client):
    from portal.services import points
    from tests.support import audits, csrf_from

    page = f"/admin/advocates/{advocate.id}/profile"
    html = admin_client.get(page).get_data(as_text=True)
    key = re.search(r'name="idempotency_key"[^>]*value="([^"]+)"', html).group(1)
    ids = [i for i in re.findall(r"\sid=\"([^\"]+)\"", html) if i != "csrf_token"]  # hidden tokens: one per form
    assert len(ids) == len(set(ids)) and 'for="adjust-reason"' in html  # no clash with the suspension's reason
    data = {
        "csrf_token": csrf_from(html),
        "idempotency_key": key,
        "email": advocate.email,
        "amount": "120",
        "reason": "Speaker bonus",
    }
    url = f"/admin/points?return_to={advocate.id}"
    resp = admin_client.post(url, data=data)
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"{page}#timeline-heading")
    assert admin_client.post(url, data=data).status_code == 302  # a double click: recorded once
    db.session.rollback()
    assert points.balance(db.session, advocate.id) == 120
    assert len(audits("points.adjust", advocate.id)) == 1
    shown = re.sub(r"\s+", " ", admin_client.get(page).get_data(as_text=True))
    assert "+120 points: Speaker bonus" in shown and "by Alex Admin" in shown
    bad = admin_client.post(url, data=dict(data, reason="", idempotency_key="another-key-123"))
    assert bad.status_code == 422
