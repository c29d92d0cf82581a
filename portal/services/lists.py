"""The lists admins manage (industries, products, size bands, regions, countries, activity types, tags),
with sensible defaults. ``ensure_defaults`` is idempotent: it adds what is missing and changes nothing.

Managing them (the admin's Lists pages): add, rename, reorder, retire and restore an item; move a country
to another region; rename, merge and retire a tag. Every change is audited. A retired item is never
removed: profiles, opportunities, history and search keep it; only new choices no longer offer it
(``offered``: the active items, plus those a profile or opportunity already has). A change that alters what
the advocates' search documents say (a name, a country's region, a tag merge) announces the advocates it
touches (``portal.signals.advocates_changed``), and search queues them for re-indexing in bulk."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Integer, Select, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from portal import signals
from portal.models import (
    ActivityType,
    AdvocateProfile,
    Base,
    Country,
    Industry,
    Product,
    Region,
    SizeBand,
    Tag,
    TagKind,
    profile_products,
    profile_tags,
)
from portal.services import audit
from portal.services.country_data import COUNTRIES
from portal.services.errors import Conflict, DomainError, NotFound
from portal.services.profiles import MAX_TAG_LENGTH, tag_slug

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


def offered(session: Session, model: type[Base], keep: Iterable[int | None] = ()) -> list:
    """What a picker offers: the active items, and the retired ones in ``keep`` (what the profile or
    opportunity being edited already has, so that it keeps them and its form still saves)."""
    keep = {i for i in keep if i}
    shown = model.active.is_(True) | model.id.in_(keep) if keep else model.active.is_(True)
    return session.scalars(select(model).where(shown).order_by(model.position, model.name)).all()


def countries(session: Session):
    return session.scalars(select(Country).order_by(Country.name)).all()


# --- managing the lists (admin) -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListKind:
    slug: str  # in URLs and audit entries
    model: type[Base]
    title: str  # "Industries"
    noun: str  # "industry"


KINDS: dict[str, ListKind] = {
    k.slug: k
    for k in (
        ListKind("industries", Industry, "Industries", "industry"),
        ListKind("products", Product, "Products", "product"),
        ListKind("size-bands", SizeBand, "Company size bands", "size band"),
        ListKind("regions", Region, "Regions", "region"),
    )
}
MAX_NAME = 80


def kind_of(slug: str) -> ListKind:
    if slug not in KINDS:
        raise NotFound("There is no such list.")
    return KINDS[slug]


def clean_name(raw: str | None, noun: str, max_length: int = MAX_NAME) -> str:
    name = re.sub(r"\s+", " ", raw or "").strip()
    if not name:
        raise DomainError(f"Give the {noun} a name.")
    if len(name) > max_length:
        raise DomainError(f"The name of a {noun} can be at most {max_length} characters.")
    return name


def _advocates_of(kind: ListKind, item_id: int) -> Select:
    """SELECT of the ids of the advocates whose profile has this item (directly, or through their country)."""
    model = kind.model
    if model is Industry:
        return select(AdvocateProfile.user_id).where(AdvocateProfile.industry_id == item_id)
    if model is SizeBand:
        return select(AdvocateProfile.user_id).where(AdvocateProfile.size_band_id == item_id)
    if model is Product:
        return select(profile_products.c.user_id).where(profile_products.c.product_id == item_id)
    return select(AdvocateProfile.user_id).join(Country).where(Country.region_id == item_id)


def _reindex(session: Session, user_ids: Select) -> None:
    signals.advocates_changed.send(None, session=session, user_ids=user_ids)


@dataclass
class ListRow:
    item: Base
    profiles: int  # how many profiles have it (regions: through their country)


def items_with_use(session: Session, kind: ListKind) -> list[ListRow]:
    """Every item, active first in their order, then the retired ones, with how many profiles use each:
    two queries whatever the size."""
    model = kind.model
    items = session.scalars(select(model).order_by(model.active.desc(), model.position, model.name)).all()
    if model is Industry:
        col = AdvocateProfile.industry_id
        counts = dict(session.execute(select(col, func.count()).where(col.is_not(None)).group_by(col)).all())
    elif model is SizeBand:
        col = AdvocateProfile.size_band_id
        counts = dict(session.execute(select(col, func.count()).where(col.is_not(None)).group_by(col)).all())
    elif model is Product:
        col = profile_products.c.product_id
        counts = dict(session.execute(select(col, func.count()).group_by(col)).all())
    else:
        by_region = (
            select(Country.region_id, func.count())
            .join(AdvocateProfile, AdvocateProfile.country_code == Country.code)
            .group_by(Country.region_id)
        )
        counts = dict(session.execute(by_region).all())
    return [ListRow(item, counts.get(item.id, 0)) for item in items]


def _taken(session: Session, model: type[Base], name: str, but: int | None = None) -> bool:
    where = [func.lower(model.name) == name.lower()]
    if but is not None:
        where.append(model.id != but)
    return session.scalar(select(func.count()).select_from(model).where(*where)) > 0


def _get(session: Session, kind: ListKind, item_id: int):
    item = session.get(kind.model, item_id)
    if item is None:
        raise NotFound(f"There is no such {kind.noun}.")
    return item


def add_item(session: Session, kind: ListKind, raw_name: str, actor_id: int):
    name = clean_name(raw_name, kind.noun)
    if _taken(session, kind.model, name):
        raise Conflict(f"There is already a {kind.noun} called “{name}”.")
    last = session.scalar(select(func.max(kind.model.position))) or 0
    item = kind.model(name=name, position=last + 1, active=True)
    session.add(item)
    session.flush()
    audit.record(session, "list.add", actor_id, item, list=kind.slug, name=name)
    return item


def rename_item(session: Session, kind: ListKind, item_id: int, raw_name: str, actor_id: int):
    item = _get(session, kind, item_id)
    name = clean_name(raw_name, kind.noun)
    if _taken(session, kind.model, name, but=item.id):
        raise Conflict(f"There is already a {kind.noun} called “{name}”.")
    before = item.name
    if name == before:
        return item
    item.name = name
    audit.record(session, "list.rename", actor_id, item, list=kind.slug, before={"name": before}, after={"name": name})
    session.flush()
    _reindex(session, _advocates_of(kind, item.id))
    return item


def set_active(session: Session, kind: ListKind, item_id: int, active: bool, actor_id: int):
    """Retire (active=False) or restore an item. Retiring keeps it on every profile and opportunity."""
    item = _get(session, kind, item_id)
    if item.active == active:
        return item
    item.active = active
    audit.record(
        session,
        "list.restore" if active else "list.retire",
        actor_id,
        item,
        list=kind.slug,
        name=item.name,
        before={"active": not active},
        after={"active": active},
    )
    session.flush()
    return item


def move_item(session: Session, kind: ListKind, item_id: int, up: bool, actor_id: int):
    """Move an active item one place up or down among the active ones (positions renumbered 0..n)."""
    item = _get(session, kind, item_id)
    if not item.active:
        raise DomainError(f"Restore the {kind.noun} before moving it.")
    order = list(active_items(session, kind.model))
    at = order.index(item)
    to = at - 1 if up else at + 1
    if not 0 <= to < len(order):
        return item
    before = [i.name for i in order]
    order[at], order[to] = order[to], order[at]
    for pos, each in enumerate(order):
        each.position = pos
    audit.record(session, "list.reorder", actor_id, item, list=kind.slug, before=before, after=[i.name for i in order])
    session.flush()
    return item


def countries_by_region(session: Session) -> dict[int, list[Country]]:
    out: dict[int, list[Country]] = {}
    for country in session.scalars(select(Country).order_by(Country.name)):
        out.setdefault(country.region_id, []).append(country)
    return out


def move_country(session: Session, code: str, region_id: int, actor_id: int) -> Country:
    country = session.get(Country, (code or "").upper())
    if country is None:
        raise NotFound("There is no such country.")
    region = session.get(Region, region_id)
    if region is None:
        raise DomainError("Choose a region from the list.")
    if country.region_id == region.id:
        return country
    before = country.region.name
    country.region_id, country.region = region.id, region
    audit.record(
        session,
        "list.country_region",
        actor_id,
        None,
        country=country.code,
        before={"region": before},
        after={"region": region.name},
    )
    session.flush()
    _reindex(session, select(AdvocateProfile.user_id).where(AdvocateProfile.country_code == country.code))
    return country


# --- tags (use cases and topics: advocates type them; admins tidy them) --------------------------------------------

TAGS_PER_PAGE = 50
TAG_NOUNS = {TagKind.USE_CASE: "use case", TagKind.TOPIC: "topic"}


@dataclass
class TagPage:
    rows: list[tuple[Tag, int]]  # (tag, how many profiles have it)
    page: int
    pages: int
    total: int


def tag_page(session: Session, kind: TagKind, page: int = 1, text: str = "") -> TagPage:
    """Tags of a kind, by name, with how many profiles have each: a constant number of queries."""
    where = [Tag.kind == kind]
    if text.strip():
        where.append(Tag.slug.contains(tag_slug(text.strip()), autoescape=True))
    total = session.scalar(select(func.count()).select_from(Tag).where(*where)) or 0
    pages = max(1, -(-total // TAGS_PER_PAGE))
    page = min(max(1, page), pages)
    used = select(profile_tags.c.tag_id, func.count().label("n")).group_by(profile_tags.c.tag_id).subquery("used")
    rows = session.execute(
        select(Tag, func.coalesce(used.c.n, 0))
        .outerjoin(used, used.c.tag_id == Tag.id)
        .where(*where)
        .order_by(Tag.active.desc(), Tag.slug)
        .limit(TAGS_PER_PAGE)
        .offset((page - 1) * TAGS_PER_PAGE)
    ).all()
    return TagPage([(tag, n) for tag, n in rows], page, pages, total)


def _tag(session: Session, tag_id: int) -> Tag:
    tag = session.get(Tag, tag_id)
    if tag is None:
        raise NotFound("There is no such tag.")
    return tag


def tag_kind_of(session: Session, tag_id: int) -> TagKind:
    return _tag(session, tag_id).kind


def tag_name(session: Session, tag_id: int) -> str:
    return _tag(session, tag_id).name


def tag_named(session: Session, kind: TagKind, raw_name: str | None) -> Tag:
    """The tag of this kind with this name (any case), for a merge's target."""
    noun = TAG_NOUNS[kind]
    name = re.sub(r"\s+", " ", raw_name or "").strip()
    if not name:
        raise DomainError(f"Name the {noun} to merge into.")
    tag = session.scalar(select(Tag).where(Tag.kind == kind, Tag.slug == tag_slug(name)))
    if tag is None:
        raise DomainError(f"There is no {noun} called “{name[:MAX_TAG_LENGTH]}”.")
    return tag


def _holders(tag_id: int) -> Select:
    return select(profile_tags.c.user_id).where(profile_tags.c.tag_id == tag_id)


def rename_tag(session: Session, tag_id: int, raw_name: str, actor_id: int) -> Tag:
    tag = _tag(session, tag_id)
    noun = TAG_NOUNS[tag.kind]
    name = clean_name(raw_name, noun, MAX_TAG_LENGTH)
    slug = tag_slug(name)
    other = session.scalar(select(Tag).where(Tag.kind == tag.kind, Tag.slug == slug, Tag.id != tag.id))
    if other is not None:
        raise Conflict(f"There is already a {noun} called “{other.name}”: merge this one into it instead.")
    if name == tag.name:
        return tag
    before = tag.name
    tag.name, tag.slug = name, slug
    audit.record(
        session, "tag.rename", actor_id, tag, kind=tag.kind.value, before={"name": before}, after={"name": name}
    )
    session.flush()
    _reindex(session, _holders(tag.id))
    return tag


def merge_tags(session: Session, source_id: int, target_id: int, actor_id: int) -> int:
    """Merge tag ``source`` into ``target`` (same kind): every profile with the source gets the target
    (once: a profile with both keeps one), then the source is deleted. Bulk SQL, whatever the number of
    profiles. Returns how many profiles had the source."""
    if source_id == target_id:
        raise DomainError("Choose two different tags to merge.")
    source, target = _tag(session, source_id), _tag(session, target_id)
    if source.kind != target.kind:
        raise DomainError(
            "Only tags of the same kind can be merged (a use case with a use case, a topic with a topic)."
        )
    holders = _holders(source.id)
    moved = session.scalar(select(func.count()).select_from(holders.subquery())) or 0
    # Queued before the rows move (the SELECT runs in the INSERT, now): everyone who had the source.
    _reindex(session, holders)
    has_target = select(profile_tags.c.user_id).where(profile_tags.c.tag_id == target.id)
    session.execute(
        insert(profile_tags).from_select(
            ["user_id", "tag_id"],
            select(profile_tags.c.user_id, literal(target.id, Integer)).where(
                profile_tags.c.tag_id == source.id, profile_tags.c.user_id.not_in(has_target)
            ),
        )
    )
    session.execute(delete(profile_tags).where(profile_tags.c.tag_id == source.id))
    audit.record(
        session,
        "tag.merge",
        actor_id,
        target,
        kind=target.kind.value,
        merged={"id": source.id, "name": source.name},
        into={"id": target.id, "name": target.name},
        profiles=moved,
    )
    session.execute(delete(Tag).where(Tag.id == source.id))
    session.expire_all()  # profiles loaded in this session no longer show the source
    return moved


def set_tag_active(session: Session, tag_id: int, active: bool, actor_id: int) -> Tag:
    tag = _tag(session, tag_id)
    if tag.active == active:
        return tag
    tag.active = active
    audit.record(
        session,
        "tag.restore" if active else "tag.retire",
        actor_id,
        tag,
        kind=tag.kind.value,
        name=tag.name,
        before={"active": not active},
        after={"active": active},
    )
    session.flush()
    return tag


def tag_choices(session: Session, kind: TagKind, limit: int = 500) -> list[tuple[int, str]]:
    """Every active tag of a kind (merge targets), by name."""
    return list(
        session.execute(
            select(Tag.id, Tag.name).where(Tag.kind == kind, Tag.active.is_(True)).order_by(Tag.slug).limit(limit)
        ).all()
    )
