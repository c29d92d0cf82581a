"""Default points per activity type: admins set them (audit-logged); an opportunity without its own
points credits the type's default when completed."""

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import ActivityType, EntrySource, Opportunity, SelectionMode
from portal.services import participation, points
from portal.services.errors import DomainError
from tests.support import (
    audits,
    client_for,
    entries,
    make_advocate,
    make_opp,
    page_text,
    participation_of,
    post_form,
    reload,
    user,
)


def _type(key):
    db.session.rollback()
    return db.session.scalar(select(ActivityType).where(ActivityType.key == key))


def test_admin_sets_default_points_and_new_opportunities_use_them(app, admin_client, admin, make_user):
    review = _type("review")
    listing = page_text(admin_client.get("/admin/activity-types"))
    assert review.name in listing and f"{review.default_points:,}" in listing
    page = admin_client.get(f"/admin/activity-types/{review.id}")
    assert page.status_code == 200 and f'value="{review.default_points}"' in page.get_data(as_text=True)
    before = review.default_points

    resp = post_form(admin_client, f"/admin/activity-types/{review.id}", {"default_points": "333"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/admin/activity-types")
    assert f"{review.name}: 333 points by default." in page_text(admin_client.get("/admin/activity-types"))
    assert _type("review").default_points == 333
    (event,) = audits("activity_type.default_points")
    assert (event.actor_id, event.target_type, event.target_id) == (admin.id, "activitytype", review.id)
    assert (event.details["key"], event.details["before"], event.details["after"]) == ("review", before, 333)

    # An opportunity that does not set points credits the new default; one that does keeps its own.
    adv = make_advocate(make_user, "defaults@example.com")
    plain = make_opp("review", title="G2 review", mode=SelectionMode.FIRST_COME)
    own = make_opp("review", title="Gartner review", mode=SelectionMode.FIRST_COME, points=40)
    assert reload(Opportunity, plain).effective_points == 333
    for oid in (plain, own):
        participation.request(db.session, user(adv), oid)
        db.session.commit()
        participation.complete(db.session, participation_of(adv, oid).id, user(admin.id))
        db.session.commit()
    assert sorted(e.amount for e in entries(adv, source=EntrySource.PARTICIPATION)) == [40, 333]
    # Visible to the advocate on the opportunity page.
    post_form(admin_client, f"/admin/activity-types/{review.id}", {"default_points": "150"})
    later = make_opp("review", title="TrustRadius review")
    assert "150" in page_text(client_for(app, adv).get(f"/opportunities/{later}"))

    # Saving the same value again changes and logs nothing.
    post_form(admin_client, f"/admin/activity-types/{review.id}", {"default_points": "150"})
    assert len(audits("activity_type.default_points")) == 2


@pytest.mark.parametrize("value", ["", "-1", "100001", "ten", "1.5", "9" * 40])
def test_bad_default_points_are_refused_with_422(app, admin_client, value):
    review = _type("review")
    before = review.default_points
    resp = post_form(admin_client, f"/admin/activity-types/{review.id}", {"default_points": value})
    assert resp.status_code == 422
    assert 'class="error"' in resp.get_data(as_text=True)
    assert _type("review").default_points == before and audits("activity_type.default_points") == []


def test_zero_and_the_maximum_are_allowed(app, admin_client):
    review = _type("review")
    for value in ("0", "100000"):
        assert (
            post_form(admin_client, f"/admin/activity-types/{review.id}", {"default_points": value}).status_code == 302
        )
        assert _type("review").default_points == int(value)


def test_the_service_checks_the_range_too(app, admin):
    review = _type("review")
    for value in (-1, 100_001, None):
        with pytest.raises(DomainError):
            points.set_default_points(db.session, review, value, admin.id)
    db.session.rollback()


def test_only_admins_and_only_with_csrf(app, admin_client, advocate_client, staff_client):
    review = _type("review")
    before = review.default_points
    for c in (advocate_client, staff_client):
        assert c.get("/admin/activity-types").status_code == 403
        assert c.get(f"/admin/activity-types/{review.id}").status_code == 403
        assert (
            post_form(
                c,
                f"/admin/activity-types/{review.id}",
                {"default_points": "5"},
                page="/me/points" if c is advocate_client else "/staff/",
            ).status_code
            == 403
        )
    assert admin_client.post(f"/admin/activity-types/{review.id}", data={"default_points": "5"}).status_code == 400
    assert admin_client.get("/admin/activity-types/999999").status_code == 404
    assert admin_client.get("/admin/activity-types/99999999999").status_code == 404
    assert _type("review").default_points == before and audits("activity_type.default_points") == []
