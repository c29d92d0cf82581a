"""The lists admins manage (industries, products, size bands, regions, countries, activity types),
with sensible defaults. ``ensure_defaults`` is idempotent: it adds what is missing and changes nothing."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import ActivityType, Base, Country, Industry, Product, Region, SizeBand
from portal.services.country_data import COUNTRIES

INDUSTRIES = [
    "Banking and capital markets",
    "Insurance",
    "Healthcare",
    "Life sciences",
    "Retail and e-commerce",
    "Manufacturing",
    "Energy and utilities",
    "Telecommunications",
    "Media and entertainment",
    "Public sector",
    "Education",
    "Transportation and logistics",
    "Hospitality and travel",
    "Software and internet",
    "Professional services",
    "Real estate",
    "Automotive",
    "Agriculture",
    "Non-profit",
    "Consumer goods",
]
PRODUCTS = [
    "Analytics Cloud",
    "Data Platform",
    "Security Suite",
    "Identity Manager",
    "Integration Hub",
    "Mobile SDK",
    "Customer 360",
    "Billing Engine",
    "Workflow Studio",
    "AI Assistant",
    "Edge Gateway",
    "Observability",
]
SIZE_BANDS = ["1-49 employees", "50-249 employees", "250-999 employees", "1,000-4,999 employees", "5,000+ employees"]
REGIONS = ["North America", "Latin America", "Europe", "Middle East", "Africa", "Asia Pacific"]
ACTIVITY_TYPES = [
    ("speaking", "Speaking", "Speak at an event or conference", 500),
    ("review", "Peer review", "Write a review on G2, Gartner Peer Insights or TrustRadius", 200),
    ("reference_call", "Reference call", "Talk with a prospect who is evaluating us", 300),
    ("case_study", "Case study", "Tell your story in a written case study", 600),
    ("advisory_board", "Advisory board", "Join the customer advisory board for a term", 800),
    ("quote", "Quote", "Give a quote for a press release or web page", 150),
    ("media", "Media", "Talk to journalists", 300),
    ("analyst", "Analyst", "Talk to an industry analyst", 400),
    ("webinar", "Webinar", "Present or join a panel in a webinar", 400),
    ("podcast", "Podcast", "Appear on a podcast", 300),
    ("video", "Video", "Appear in a customer video", 500),
    ("referral", "Referral", "Introduce a colleague who may benefit", 250),
    ("beta", "Beta", "Try new features early and give feedback", 200),
]


def _ensure_named(session: Session, model: type[Base], names: list[str]) -> int:
    have = set(session.scalars(select(model.name)).all())
    added = 0
    for pos, name in enumerate(names):
        if name not in have:
            session.add(model(name=name, position=pos))
            added += 1
    return added


def ensure_defaults(session: Session) -> int:
    """Add the default list items that are missing; returns how many were added."""
    added = _ensure_named(session, Industry, INDUSTRIES)
    added += _ensure_named(session, Product, PRODUCTS)
    added += _ensure_named(session, SizeBand, SIZE_BANDS)
    added += _ensure_named(session, Region, REGIONS)
    session.flush()
    regions = {r.name: r.id for r in session.scalars(select(Region)).all()}
    have = set(session.scalars(select(Country.code)).all())
    for region, countries in COUNTRIES.items():
        for code, name in countries:
            if code not in have:
                session.add(Country(code=code, name=name, region_id=regions[region]))
                added += 1
    have = set(session.scalars(select(ActivityType.key)).all())
    for pos, (key, name, desc, points) in enumerate(ACTIVITY_TYPES):
        if key not in have:
            session.add(ActivityType(key=key, name=name, description=desc, default_points=points, position=pos))
            added += 1
    session.flush()
    return added


def active_items(session: Session, model: type[Base]) -> list:
    return session.scalars(select(model).where(model.active.is_(True)).order_by(model.position, model.name)).all()


def countries(session: Session):
    return session.scalars(select(Country).order_by(Country.name)).all()
