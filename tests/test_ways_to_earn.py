"""The points, rewards and referral pages say how to earn points (issue 16), from the program as it is
now: each activity type's default points, a complete profile and a referral (program settings)."""

from __future__ import annotations

import re

from sqlalchemy import update

from portal.extensions import db
from portal.models import ActivityType
from portal.services import points, settings
from tests.support import text_of


def test_the_points_page_lists_each_way_to_earn_with_its_points(app, advocate_client):
    db.session.execute(update(ActivityType).where(ActivityType.key == "speaking").values(default_points=650))
    db.session.execute(update(ActivityType).where(ActivityType.key == "beta").values(active=False))
    db.session.commit()
    settings.save(db.session, {"points_referral": 275, "points_profile_complete": 0}, None)
    db.session.commit()
    page = text_of(advocate_client.get("/me/points"))
    earn = page[page.index("How to earn points") : page.index("History")]
    assert re.search(r"Speaking Speak at an event or conference 650", earn)
    assert re.search(r"Refer a colleague For each colleague .* 275", earn)
    assert "Complete your profile" not in earn  # 0 points: not offered, not listed
    assert "Beta" not in earn  # a retired activity type is not a way to earn
    ways = {w.what: w.points for w in points.ways_to_earn(db.session)}
    assert ways["Speaking"] == 650 and ways["Refer a colleague"] == 275 and "Beta" not in ways
    assert "How to earn points" in text_of(advocate_client.get("/rewards"))


def test_the_referral_page_says_what_a_referral_earns(app, advocate_client):
    assert "you earn 250 points" in text_of(advocate_client.get("/me/referrals"))
    settings.save(db.session, {"points_referral": 0}, None)
    db.session.commit()
    page = text_of(advocate_client.get("/me/referrals"))
    assert "referrals earn no points at the moment" in page and "you earn" not in page
