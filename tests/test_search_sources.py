"""What feeds the search documents is declared once (search.documents.SOURCES), and the index follows
exactly that: each followed column queues its document when it changes, any other column does not,
the declaration names every column the document builders read, a fatigue policy change reaches every
advocate, and nothing outside search/ writes the queue (search_pending)."""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event, select
from sqlalchemy.orm import ColumnProperty, RelationshipProperty

from portal.extensions import db
from portal.models import (
    ActivityPreference,
    AdvocateProfile,
    Base,
    Blackout,
    Industry,
    Opportunity,
    Participation,
    ParticipationStatus,
    Product,
    ProgramSetting,
    Role,
    SearchPending,
    Status,
    Tag,
    TagKind,
    User,
    utcnow,
)
from portal.services import fatigue
from search import documents
from search.indexing import apply_pending
from search.schema import ADVOCATES, OPPORTUNITIES
from tests.support import engaged, indexed, make_advocate, make_opp

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def world(app, make_user):
    """Two advocates (one with everything the documents read), a staff member, two opportunities, an
    engagement and the fatigue policy, all indexed: ids by name."""
    today = utcnow().date()
    ada = make_advocate(
        make_user,
        "ada@example.com",
        industry="Healthcare",
        products=["Analytics"] if db.session.query(Product).filter_by(name="Analytics").count() else (),
        blackouts=[(today, today + timedelta(days=2))],
        story="We cut fraud losses by half.",
        max_asks_per_month=3,
        max_asks_per_quarter=6,
        paused_until=today - timedelta(days=1),
        confirmed_at=utcnow() - timedelta(days=3),
    )
    bob = make_advocate(make_user, "bob@example.com")
    staff = make_user(Role.STAFF, email="sam@example.com").id
    first, second = make_opp("speaking", title="Keynote", location="Berlin"), make_opp("review", title="Review")
    profile = db.session.get(AdvocateProfile, ada)
    profile.tags = [Tag(kind=TagKind.TOPIC, name="zero trust", slug="zero-trust")]
    if not profile.products:
        profile.products = [db.session.scalars(select(Product)).first()]
    now = utcnow()
    db.session.add(
        Participation(
            opportunity_id=first,
            user_id=ada,
            status=ParticipationStatus.APPROVED,
            requested_at=now - timedelta(days=2),
            engaged_at=now - timedelta(days=1),
            decided_at=now - timedelta(days=1),
        )
    )
    db.session.add(ProgramSetting(key="max_engagements_90d", value=4))
    db.session.commit()
    apply_pending(db.engine)
    return {"ada": ada, "bob": bob, "staff": staff, "first": first, "second": second}


def queued() -> set[tuple[str, int]]:
    """What the flush queued, in the test's transaction (rolled back by the caller)."""
    return {(r.doc_type, r.doc_id) for r in db.session.execute(select(SearchPending.doc_type, SearchPending.doc_id))}


def row_of(model, world):
    """The row of ``model`` the mutation tests change (ada's, or the first opportunity's)."""
    ada, first = world["ada"], world["first"]
    where = {
        User: User.id == ada,
        AdvocateProfile: AdvocateProfile.user_id == ada,
        ActivityPreference: ActivityPreference.user_id == ada,
        Blackout: Blackout.user_id == ada,
        Participation: Participation.user_id == ada,
        Opportunity: Opportunity.id == first,
        ProgramSetting: ProgramSetting.key == "max_engagements_90d",
    }[model]
    return db.session.scalars(select(model).where(where)).first()


def other_value(obj, column, world):
    """A valid value for ``column`` other than ``obj``'s."""
    value = getattr(obj, sa.inspect(type(obj)).get_property_by_column(column).key)
    if column.foreign_keys:
        target = next(iter(column.foreign_keys)).column
        others = {
            "users.id": [world["staff"]] if column.table.name != "participations" else [world["bob"]],
            "advocate_profiles.user_id": [world["bob"]],
            "opportunities.id": [world["second"]],
        }.get(f"{target.table.name}.{target.name}")
        if others:
            return others[0]
        return (
            db.session.scalar(select(target).where(target != value).limit(1))
            if value is not None
            else (db.session.scalar(select(target).limit(1)))
        )
    if column.name == "timezone":
        return "Pacific/Auckland"
    kind = column.type
    if isinstance(kind, sa.Enum):
        return next(m for m in kind.enum_class if m != value)
    python = kind.python_type
    if python is bool:
        return not value
    if python is int:
        return (value or 0) + 1
    if python is str:
        return (value or "")[: (kind.length or 100) - 1] + "z"
    if python is date:
        return (value or utcnow().date()) - timedelta(days=1)  # (a blackout still ends after it starts)
    return (value or utcnow()) + timedelta(days=3)  # datetime


FOLLOWED_MODELS = sorted({s.model for s in documents.SOURCES if s.followed}, key=lambda m: m.__name__)


def _columns(model):
    mapper = sa.inspect(model)
    pk = set(mapper.primary_key)
    return [(prop.key, prop.columns[0]) for prop in mapper.column_attrs if prop.columns[0] not in pk]


def _followed_attrs(model) -> dict[str, set[str]]:
    """kind -> followed attributes of ``model``."""
    out: dict[str, set[str]] = {}
    for s in documents.SOURCES:
        if s.model is model and s.followed:
            out.setdefault(s.kind, set()).update(s.attrs)
    return out


def _expected(model, attr, world) -> set[tuple[str, int]]:
    """The documents a change of ``attr`` on ``row_of(model)`` should queue: its own, when ``attr`` is
    followed, and, when ``attr`` is the document's key (the row moved), the one it moved to as well."""
    docs = set()
    for s in documents.SOURCES:
        if s.model is model and s.key and attr in _followed_attrs(model).get(s.kind, ()):
            mine = world["first"] if s.kind == OPPORTUNITIES else world["ada"]
            moved_to = {"user_id": world["bob"], "id": None}.get(attr) if attr == s.key else None
            docs |= {(s.kind, mine)} | ({(s.kind, moved_to)} if moved_to else set())
    return docs


CASES = [(model, key) for model in FOLLOWED_MODELS for key, _ in _columns(model)]


@pytest.mark.parametrize("model, attr", CASES, ids=[f"{m.__name__}.{k}" for m, k in CASES])
def test_a_change_queues_its_document_exactly_when_the_column_is_declared(world, model, attr):
    """E.g. a sign-in's last_login_at queues nothing; a time zone (the advocate's own day) queues the
    advocate; an opportunity's seats queue nothing, its title queues it."""
    db.session.rollback()
    obj = row_of(model, world)
    column = dict(_columns(model))[attr]
    setattr(obj, attr, other_value(obj, column, world))
    db.session.flush()
    got = queued()
    db.session.rollback()
    if model is ProgramSetting:  # the policy feeds every active advocate
        expected = {(ADVOCATES, world["ada"]), (ADVOCATES, world["bob"])} if attr == "value" else set()
    else:
        expected = _expected(model, attr, world)
    assert got == expected


def test_the_examples_of_the_issue(world):
    db.session.rollback()
    db.session.get(User, world["ada"]).last_login_at = utcnow()  # a sign-in
    db.session.flush()
    assert queued() == set()
    db.session.rollback()
    db.session.get(AdvocateProfile, world["ada"]).timezone = "Asia/Tokyo"
    db.session.flush()
    assert queued() == {(ADVOCATES, world["ada"])}
    db.session.rollback()


def test_collections_and_relationships_the_builders_read_queue_the_advocate(world):
    ada = world["ada"]
    changes = [
        lambda p: p.products.append(
            db.session.scalars(select(Product).where(Product.id.not_in([x.id for x in p.products]))).first()
        ),
        lambda p: p.tags.clear(),
        lambda p: setattr(
            p, "industry", db.session.scalars(select(Industry).where(Industry.id != p.industry_id)).first()
        ),
    ]
    for change in changes:
        db.session.rollback()
        change(db.session.get(AdvocateProfile, ada))
        db.session.flush()
        assert queued() == {(ADVOCATES, ada)}
    db.session.rollback()
    # new and deleted rows queue their document
    db.session.add(Blackout(user_id=world["bob"], starts_on=date(2031, 1, 1), ends_on=date(2031, 1, 2)))
    db.session.delete(db.session.scalars(select(Blackout).where(Blackout.user_id == ada)).one())
    db.session.flush()
    assert queued() == {(ADVOCATES, world["bob"]), (ADVOCATES, ada)}
    db.session.rollback()


# --- the declaration covers what the builders read ------------------------------------------------------------


def _declared(kind: str, keys: bool = True) -> set[tuple[str, str]]:
    """(table, column) of every source of ``kind``: its declared columns, the association tables of its
    declared collections, and (``keys``) the rows' primary keys, which identify rather than feed."""
    out = set()
    for s in documents.SOURCES:
        if s.kind != kind:
            continue
        mapper = sa.inspect(s.model)
        if keys:
            out |= {(c.table.name, c.name) for c in mapper.primary_key}
        for prop in mapper.attrs:
            if prop.key not in s.attrs:
                continue
            if isinstance(prop, ColumnProperty):
                out |= {(c.table.name, c.name) for c in prop.columns}
            elif isinstance(prop, RelationshipProperty) and prop.secondary is not None:
                out |= {(c.table.name, c.name) for c in prop.secondary.columns}
    return out


def _read_while(build) -> set[tuple[str, str]]:
    """(table, column) of every column named in the SQL that ``build`` runs."""
    tables = set(Base.metadata.tables)
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        build()
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    read = set()
    for sql in statements:
        for table, column in re.findall(r'"?\b([a-z_]+?)(?:_\d+)?"?\."?([a-z_]+)\b', sql):
            if table in tables and column in Base.metadata.tables[table].c:
                read.add((table, column))
    return read


def test_the_declaration_names_exactly_the_columns_the_builders_read(world):
    db.session.rollback()
    documents._cache.clear()  # the list names are read too, not only taken from the cache
    advocate_reads = _read_while(lambda: documents.advocate_docs(db.session, [world["ada"], world["bob"]]))
    opportunity_reads = _read_while(lambda: documents.opportunity_docs(db.session, [world["first"], world["second"]]))
    db.session.rollback()
    for expected in [("users", "name"), ("advocate_profiles", "timezone"), ("program_settings", "value")]:
        assert expected in advocate_reads  # the capture works
    assert ("opportunities", "title") in opportunity_reads
    assert advocate_reads - _declared(ADVOCATES) == set()  # nothing read that is not declared
    assert opportunity_reads - _declared(OPPORTUNITIES) == set()
    assert _declared(ADVOCATES, keys=False) - advocate_reads == set()  # nothing declared that is not read
    assert _declared(OPPORTUNITIES, keys=False) - opportunity_reads == set()


def test_every_source_is_followed_or_says_why_not():
    for s in documents.SOURCES:
        assert s.followed != bool(s.why), s
        assert s.kind in (ADVOCATES, OPPORTUNITIES)
        mapper = sa.inspect(s.model)
        assert s.attrs and s.attrs <= set(mapper.attrs.keys()), (s.model, s.attrs - set(mapper.attrs.keys()))


# --- the fatigue policy -------------------------------------------------------------------------------------------


def test_a_policy_change_queues_every_active_advocate_and_reaches_their_fatigue_facet(app, make_user):
    busy = [make_advocate(make_user, f"busy{i}@example.com") for i in range(3)]
    idle = make_advocate(make_user, "idle@example.com")
    gone = make_advocate(make_user, "gone@example.com")
    db.session.get(User, gone).status = Status.SUSPENDED
    admin = make_user(Role.ADMIN, email="boss@example.com").id
    db.session.commit()
    for uid in busy:
        engaged(uid, utcnow() - timedelta(days=5))
        engaged(uid, utcnow() - timedelta(days=4))
    apply_pending(db.engine)
    assert queued() == set()
    assert {indexed(uid)["fatigue"] for uid in busy} == {"available"}

    fatigue.set_policy(db.session, {"max_engagements_90d": 2}, admin)
    assert queued() == {(ADVOCATES, uid) for uid in [*busy, idle]}  # in the same transaction
    db.session.commit()
    apply_pending(db.engine)  # the next index writer, or 'flask search sync'
    assert queued() == set()
    assert {indexed(uid)["fatigue"] for uid in busy} == {"at_limit"}
    now = fatigue.statuses(db.session, [*busy, idle])
    assert {uid: indexed(uid)["fatigue"] for uid in [*busy, idle]} == {uid: st.key for uid, st in now.items()}
    assert indexed(gone) is None

    fatigue.set_policy(db.session, {"max_engagements_90d": 2}, admin)  # the same policy: nothing changes
    db.session.add(ProgramSetting(key="not_a_fatigue_setting", value=1))  # not the fatigue policy
    db.session.commit()
    assert queued() == set()


# --- one writer of the queue ----------------------------------------------------------------------------------------


def test_nothing_outside_search_names_the_queue():
    """Only search/ (and the model that defines the table, its package's export, the migrations and the
    tests) may name SearchPending or search_pending: everything else goes through the declaration."""
    allowed = {"portal/models/indexing.py", "portal/models/__init__.py"}
    skipped = ("search/", "migrations/", "tests/")
    scanned, offenders = [], []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("instance", "node_modules", "__pycache__")]
        for name in files:
            if not name.endswith(".py"):
                continue
            rel = (Path(folder) / name).relative_to(ROOT).as_posix()
            scanned.append(rel)
            if rel.startswith(skipped) or rel in allowed:
                continue
            if re.search(r"SearchPending|search_pending", (ROOT / rel).read_text()):
                offenders.append(rel)
    assert "portal/services/fatigue.py" in scanned and "search/indexing.py" in scanned  # the scan sees them
    assert offenders == []


def test_an_account_that_is_not_in_the_index_before_nor_after_queues_nothing(app, client, make_user):
    """A sign-up (unverified) and its verification (pending) have no document to add or remove: the
    registration request writes nothing to the index (its timing must not differ from a taken address's)."""
    from portal.models import Role, SearchPending, Status, User
    from tests.support import post_form, recorded_sql

    def pending() -> list[int]:
        db.session.rollback()
        return sorted(p.doc_id for p in db.session.scalars(select(SearchPending)))

    before = pending()
    with recorded_sql() as sql:
        resp = post_form(
            client,
            "/auth/register",
            {
                "name": "Nell New",
                "email": "nell.new@example.com",
                "company": "Initech",
                "job_title": "CIO",
                "password": "purple-otter-skates-42",
                "confirm": "purple-otter-skates-42",
                "accept_terms": "y",
            },
            page="/auth/register",
        )
    assert resp.status_code == 302
    assert [q for q in sql if "search_pending" in q] == []  # nothing queued, nothing applied
    nell = db.session.scalar(select(User).where(User.email == "nell.new@example.com"))
    assert nell.status == Status.UNVERIFIED and pending() == before
    nell.status = Status.PENDING  # verified: still no document
    db.session.commit()
    assert pending() == before
    nell = db.session.get(User, nell.id)
    nell.status = Status.ACTIVE  # approved: now it has one
    db.session.commit()
    assert nell.id in pending()
    member = make_user(Role.ADVOCATE, Status.ACTIVE, email="mo.member@example.com")
    db.session.query(SearchPending).delete()
    db.session.commit()
    db.session.get(User, member.id).status = Status.SUSPENDED  # leaves the index: its removal is queued
    db.session.commit()
    assert pending() == [member.id]
