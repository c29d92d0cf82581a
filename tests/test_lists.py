"""The managed lists' defaults: every inhabited country, each in one program region."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Country
from portal.services import lists
from portal.services.country_data import COUNTRIES


def test_every_inhabited_country_can_be_chosen_with_its_region(app, runner):
    codes = [code for items in COUNTRIES.values() for code, _ in items]
    names = [name for items in COUNTRIES.values() for _, name in items]
    assert len(codes) == len(set(codes)) >= 240 and len(names) == len(set(names))
    assert set(COUNTRIES) == set(lists.REGIONS)
    assert runner.invoke(args=["lists", "seed"]).exit_code == 0
    db.session.rollback()
    region_of = {c.code: c.region.name for c in db.session.scalars(select(Country))}
    assert {k: region_of[k] for k in ("HR", "SK", "PK", "DE", "AE", "BR", "US", "JP", "KE", "CY")} == {
        "HR": "Europe",
        "SK": "Europe",
        "PK": "Asia Pacific",
        "DE": "Europe",
        "AE": "Middle East",
        "BR": "Latin America",
        "US": "North America",
        "JP": "Asia Pacific",
        "KE": "Africa",
        "CY": "Europe",
    }
    before = db.session.scalar(select(func.count()).select_from(Country))
    assert runner.invoke(args=["lists", "seed"]).exit_code == 0  # idempotent
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Country)) == before == len(codes)


def test_an_install_with_the_old_short_list_gains_the_missing_countries(app):
    db.session.execute(Country.__table__.delete().where(Country.code.in_(["HR", "SK", "PK"])))
    db.session.commit()
    assert lists.ensure_defaults(db.session) == 3
    db.session.commit()
    assert db.session.get(Country, "HR").name == "Croatia"
