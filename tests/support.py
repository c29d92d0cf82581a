"""Helpers shared by the test modules: the one place they import helpers from.

Fixtures live in the conftest.py files (which import what they need from here); a helper used by one
test module only stays in that module. Test modules never import other test modules or a conftest
(tests/test_habits.py checks it).

Sections:
  1. Settings and databases      base_config, PG_URL, BACKENDS, empty_tables, reload, audits
  2. Clients and forms           FreshContextClient, csrf_from, post_form, login, client_for, clone_client, ...
  3. Pages                       text, page_text, text_of, without_values, path_of
  4. Mail and servers            free_port, Mail, Mailbox (a real SMTP server), LiveServer (a real WSGI server)
  5. Users and profiles          user, user_by_email, has_profile, profile_data, save_profile, profile_form, ...
  6. Opportunities               ALL_TYPES, atype, make_advocate, make_opp, reference_request_record, ...
  7. Recognition                 give, participate, make_reward, redeem, badge_keys, entries, ...
  8. Privacy                     fill_everything, fill_program_data (the program's data about one advocate)
  9. Search                      find, names, staff_search, page_hits, indexed, pending_rows, member, ...
 10. Threads                     run_threads
 11. SQL recording               recorded_sql
 12. Browser (tests/e2e)         sign_in

Builders commit what they build and hand back plain ids (or detached objects), so that requests made
next (each in its own app context) see the data, and threads never share the test session's objects.
"""

from __future__ import annotations

import email
import email.policy
import html
import os
import re
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

import time_machine
from aiosmtpd.controller import Controller
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import event, select
from sqlalchemy import text as sql_text
from werkzeug.serving import make_server

from portal.extensions import db
from portal.models import (
    ActivityPreference,
    ActivityType,
    AdvocateProfile,
    AuditEvent,
    Badge,
    Base,
    Blackout,
    Consent,
    DigestDelivery,
    EntrySource,
    Industry,
    Opportunity,
    OpportunityStatus,
    Participation,
    ParticipationStatus,
    PointsEntry,
    Product,
    ReferenceRequest,
    ReferenceStatus,
    Region,
    Reward,
    SearchPending,
    SelectionMode,
    SizeBand,
    User,
    UserBadge,
    utcnow,
)
from portal.services import audit, badges, points, profiles, referrals, rewards
from search import querying
from search.indexing import apply_pending, open_index, open_searcher
from search.schema import PACKED

TEST_PASSWORD = "correct-horse-battery-9"


# === 1. Settings and databases ======================================================================================

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def base_config(db_uri: str, mailbox: Mailbox, tmp_path) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SQLALCHEMY_DATABASE_URI": db_uri,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": mailbox.port,
        "MAIL_SUPPRESS_SEND": False,  # Flask-Mail suppresses under TESTING otherwise
        # Mail is sent by the process that queued it, after the commit, so a test can read it at once;
        # production's "worker" delivery is tested in test_outbox_worker.py (and tests/timing/).
        "OUTBOX_DELIVERY": "inline",
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 1024,
        "ARGON2_PARALLELISM": 1,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_SINGLE_PROCESS": True,  # one process serves each test app (production would refuse memory://)
        "SEARCH_INDEX_DIR": str(tmp_path / "search-index"),
        "PUBLIC_BASE_URL": "http://localhost",
        # No background warm-up thread reading the database (it would race the table reset between
        # tests: a deadlock with TRUNCATE on PostgreSQL); tests that test the warm-up turn it on.
        "SEARCH_WARM": False,
    }


def empty_tables(engine) -> None:
    """PostgreSQL: TRUNCATE (row triggers do not fire). SQLite: DELETE, with the append-only triggers of
    the ledger (migration 0007) dropped for the moment and re-created from their own SQL, in one transaction."""
    tables = [t.name for t in Base.metadata.sorted_tables]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sql_text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            triggers = conn.execute(sql_text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
            for name, _ in triggers:
                conn.execute(sql_text(f'DROP TRIGGER "{name}"'))
            for t in reversed(tables):
                conn.execute(sql_text(f'DELETE FROM "{t}"'))
            for _, sql in triggers:
                conn.exec_driver_sql(sql)


def audits(action: str, target_id: int | None = None) -> list[AuditEvent]:
    """The audit events of ``action`` (on ``target_id``, if given), oldest first, as the database has them now."""
    db.session.rollback()
    q = select(AuditEvent).where(AuditEvent.action == action)
    if target_id is not None:
        q = q.where(AuditEvent.target_id == target_id)
    return list(db.session.scalars(q.order_by(AuditEvent.id)))


def reload(model, ident):
    """Read a row again as the database has it now (ends the test's own transaction first)."""
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(model, ident)


# === 2. Clients and forms ===========================================================================================


class FreshContextClient(FlaskClient):
    """Each request runs in its own app context, as in production.

    The tests keep an app context open for convenience; without this, requests would reuse it and
    share ``g`` (Flask-Login caches the user there) and the SQLAlchemy session across clients.
    After a request, call ``db.session.rollback()`` (or ``reload``) before reading what it changed.
    """

    def open(self, *args, **kwargs):
        _end_test_transaction()
        try:
            with self.application.app_context():
                return super().open(*args, **kwargs)
        finally:
            _end_test_transaction()


class OwnTransactionCliRunner(FlaskCliRunner):
    """Each command begins its own unit of work, as `flask ...` does in its own process.

    Flask's CLI reuses the app context a test keeps open, and with it the test's session: the
    test's read transaction is ended first (``begin_write`` refuses to begin inside open work), and
    again afterwards so the test sees what the command committed.
    """

    def invoke(self, cli=None, args=None, **kwargs):
        _end_test_transaction()
        try:
            return super().invoke(cli, args, **kwargs)
        finally:
            _end_test_transaction()


def _end_test_transaction():
    """End the test's own read transaction around each request, so that the test's session sees
    what the request committed (SQLite keeps a snapshot per open transaction). Tests commit the
    data they set up before making requests."""
    from flask import has_app_context

    if has_app_context():
        session = db.session()
        if not (session.new or session.dirty or session.deleted):
            session.rollback()


CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1) or m.group(2)


def post_form(client, url: str, data: dict | None = None, page: str | None = None, **kw):
    """GET the page that holds the form (``page`` or ``url``), take its CSRF token and POST."""
    resp = client.get(page or url)
    token = csrf_from(resp.get_data(as_text=True))
    payload = {"csrf_token": token, **(data or {})}
    return client.post(url, data=payload, **kw)


def login(client, email: str, password: str = TEST_PASSWORD, remember: bool = False, next: str | None = None):
    data = {"email": email, "password": password}
    if remember:
        data["remember"] = "y"
    url = "/auth/login" + (f"?next={next}" if next else "")
    return post_form(client, url, data, page="/auth/login")


def ensure_login(client, email):
    """Sign in again if the session did not survive the time travel."""
    if client.get("/dashboard").status_code != 200:
        assert login(client, email).status_code == 302


def client_for(app, user_id_or_email):
    """A new test client signed in as the user (by id or email)."""
    email = user_id_or_email if isinstance(user_id_or_email, str) else user(user_id_or_email).email
    db.session.rollback()
    c = app.test_client()
    resp = login(c, email)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return c


def clone_client(app, source):
    """A second test client in the same signed-in session (same session cookie)."""
    c = app.test_client()
    cookie = source.get_cookie("session")
    assert cookie is not None, "the source client has no session"
    c.set_cookie("session", cookie.value, domain=cookie.domain or "localhost")
    return c


# --- registering through the form (the sign-up and what reads its emails) ---

GOOD_PW = "purple-otter-skates-42"


def form_data(email="bea@example.com", name="Bea Bold", password=GOOD_PW, **extra):
    data = {
        "name": name,
        "email": email,
        "company": "Globex",
        "job_title": "CTO",
        "password": password,
        "confirm": password,
        "accept_terms": "y",
    }
    data.update(extra)
    return {k: v for k, v in data.items() if v is not None}


def register(client, **kw):
    return post_form(client, "/auth/register", form_data(**kw))


def verify_path(mailbox, email, nth=-1):
    mails = mailbox.wait_for(email, subject="Confirm your email")
    parts = urlsplit(mails[nth].link("/auth/verify/"))
    return parts.path + (f"?{parts.query}" if parts.query else "")


def confirm(client, path):
    """The link's page shows a button; pressing it (POST with CSRF) confirms."""
    return post_form(client, path, {})


# === 3. Pages =======================================================================================================

html_unescape = html.unescape


def text(resp) -> str:
    """The response body as text (escaped as served)."""
    return resp.get_data(as_text=True)


def page_text(resp) -> str:
    """The response body with HTML entities decoded (tags kept)."""
    return html_unescape(resp.get_data(as_text=True))


def text_of(resp) -> str:
    """The page's visible text, roughly: tags removed, entities decoded, whitespace collapsed."""
    body = resp.get_data(as_text=True) if hasattr(resp, "get_data") else resp
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", html_unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def without_values(html: str) -> str:
    """The page with every value="..." emptied (the CSRF token, what was typed back), to compare two answers."""
    return re.sub(r'value="[^"]*"', 'value=""', html)


def path_of(url: str) -> str:
    """The path (and query) of a link in a mail, which points at http://localhost."""
    assert url.startswith("http://localhost/")
    return url[len("http://localhost") :]


# === 4. Mail ========================================================================================================


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def to(self) -> str:
        return self.recipients[0]

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else ""

    @property
    def text(self) -> str:
        return self.part("plain")

    @property
    def html(self) -> str:
        return self.part("html")

    def links(self) -> list[str]:
        return re.findall(r"https?://[^\s<>\"']+", self.text)

    def link(self, contains: str) -> str:
        for url in self.links():
            if contains in url:
                return url
        raise AssertionError(f"no link with {contains!r} in {self.links()}")


class _Handler:
    def __init__(self, box: Mailbox):
        self.box = box

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.box.lock:
            self.box.messages.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"


@dataclass
class Mailbox:
    """A real SMTP server on 127.0.0.1 (aiosmtpd), on a port picked first."""

    port: int = 0
    messages: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Controller | None = None

    def start(self) -> Mailbox:
        self.port = free_port()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def to(self, address: str) -> list[Mail]:
        with self.lock:
            return [m for m in self.messages if address.lower() in (r.lower() for r in m.recipients)]

    def wait_for(self, address: str, count: int = 1, timeout: float = 5.0, subject: str | None = None) -> list[Mail]:
        deadline = time.monotonic() + timeout
        while True:
            got = [m for m in self.to(address) if subject is None or subject.lower() in m.subject.lower()]
            if len(got) >= count or time.monotonic() > deadline:
                assert len(got) >= count, f"expected {count} mail(s) to {address}, got {[m.subject for m in got]}"
                return got
            time.sleep(0.02)

    def last(self, address: str, subject: str | None = None) -> Mail:
        return self.wait_for(address, 1, subject=subject)[-1]


class LiveServer:
    """The app on werkzeug's threaded server: real WSGI, which closes each response after sending it."""

    def __init__(self, application):
        self.server = make_server("127.0.0.1", free_port(), application, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


# === 5. Users and profiles ==========================================================================================


def user(user_id: int) -> User:
    """The user as the database has it now, in the test's session."""
    db.session.rollback()
    return db.session.get(User, user_id)


def user_by_email(email):
    db.session.rollback()
    return db.session.scalar(select(User).where(User.email == email))


def has_profile(user_id: int) -> bool:
    """Whether the user has an advocate profile row, as the database has it now."""
    db.session.rollback()
    return db.session.get(AdvocateProfile, user_id) is not None


def active_ids(model, n=1, **where):
    """The ids of the first ``n`` active items of a list admins manage (industries, products, ...)."""
    q = select(model.id).where(model.active.is_(True)).order_by(model.position).limit(n)
    for key, value in where.items():
        q = q.where(getattr(model, key) == value)
    out = list(db.session.scalars(q))
    db.session.rollback()
    return out


def first_id(model):
    value = db.session.scalar(select(model.id).order_by(model.position).limit(1))
    db.session.rollback()
    return value


def ids_by_name(model) -> dict[str, int]:
    return {row.name: row.id for row in db.session.query(model)}


def profile_data(**over):
    """A valid /me/profile form with every field filled in; a field given as None is left out."""
    data = {
        "name": "Ada Advocate",
        "job_title": "CISO",
        "company": "Bluefin Bank",
        "industry_id": str(active_ids(Industry)[0]),
        "size_band_id": str(active_ids(SizeBand)[0]),
        "country_code": "DE",
        "product_ids": [str(i) for i in active_ids(Product, 2)],
        "use_cases": "fraud detection, customer onboarding",
        "topics": "zero trust, GDPR",
        "story": "We cut fraud losses by half within a year.\r\n\r\nOnboarding went from three weeks to two days.",
        "linkedin_url": "https://www.linkedin.com/in/ada-advocate",
        "show_in_directory": "y",
        "show_on_leaderboard": "y",
    }
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def save_profile(client, **over):
    """POST /me/profile with ``profile_data(**over)``."""
    return post_form(client, "/me/profile", profile_data(**over))


def complete_profile_form(**over):
    """A /me/profile form that, with one activity type opted in, makes the profile complete (a story long
    enough for the completeness meter)."""
    ind = db.session.scalar(select(Industry).order_by(Industry.id))
    size = db.session.scalar(select(SizeBand).order_by(SizeBand.id))
    prods = db.session.scalars(select(Product).order_by(Product.id).limit(2)).all()
    data = {
        "name": "Ada Advocate",
        "job_title": "CISO",
        "company": "Bluefin Bank",
        "industry_id": str(ind.id),
        "size_band_id": str(size.id),
        "country_code": "DE",
        "product_ids": [str(p.id) for p in prods],
        "use_cases": "fraud detection, onboarding",
        "topics": "zero trust, GDPR",
        "story": "We cut fraud losses by half in a year. Onboarding went from three weeks to two days, "
        "and the audit team finally sleeps at night.",
        "linkedin_url": "https://www.linkedin.com/in/ada",
        "show_in_directory": "y",
        "show_on_leaderboard": "y",
    }
    data.update(over)
    return data


def profile_form(**over) -> dict:
    """A valid, small /me/profile form (Healthcare, no products, no LinkedIn), used by the search tests."""
    ind = db.session.query(Industry).filter_by(name="Healthcare").one()
    data = {
        "name": "Ada Advocate",
        "job_title": "CISO",
        "company": "Bluefin Bank",
        "industry_id": str(ind.id),
        "size_band_id": "",
        "country_code": "DE",
        "product_ids": [],
        "use_cases": "fraud detection",
        "topics": "zero trust",
        "story": "We cut fraud losses by half.",
        "linkedin_url": "",
        "show_in_directory": "y",
        "show_on_leaderboard": "y",
    }
    data.update(over)
    return data


# === 6. Opportunities ===============================================================================================

ALL_TYPES = ("speaking", "review", "reference_call", "advisory_board", "webinar", "case_study")


def atype(key: str) -> ActivityType:
    return db.session.query(ActivityType).filter_by(key=key).one()


def item_id(model, name: str) -> int:
    return db.session.query(model).filter_by(name=name).one().id


def make_advocate(
    make_user,
    email: str,
    *,
    types=ALL_TYPES,
    industry: str | None = None,
    country: str | None = "DE",
    products=(),
    size: str | None = None,
    blackouts=(),
    name: str | None = None,
    **profile,
) -> int:
    """An active advocate with a profile, opted in to ``types``; returns the user id."""
    u = make_user(email=email, name=name or email.split("@")[0].replace(".", " ").title())
    p = AdvocateProfile(user_id=u.id, country_code=country, **profile)
    if industry:
        p.industry_id = item_id(Industry, industry)
    if size:
        p.size_band_id = item_id(SizeBand, size)
    p.products = [db.session.get(Product, item_id(Product, n)) for n in products]
    db.session.add(p)
    db.session.flush()
    for key in types:
        db.session.add(ActivityPreference(user_id=u.id, activity_type_id=atype(key).id, opted_in=True))
    for starts, ends in blackouts:
        db.session.add(Blackout(user_id=u.id, starts_on=starts, ends_on=ends))
    db.session.commit()
    return u.id


def make_opp(
    key: str = "speaking",
    *,
    title: str | None = None,
    mode: SelectionMode = SelectionMode.SELECTION,
    capacity: int | None = None,
    status: OpportunityStatus = OpportunityStatus.OPEN,
    industries=(),
    products=(),
    regions=(),
    size_bands=(),
    opened_at: datetime | None = None,
    **fields,
) -> int:
    """An opportunity straight in the database (open by default); returns its id."""
    o = Opportunity(
        activity_type=atype(key),
        title=title or f"{key} opportunity",
        capacity=capacity,
        selection_mode=mode,
        status=status,
        seats_taken=fields.pop("seats_taken", 0),
        opened_at=opened_at or (utcnow() if status == OpportunityStatus.OPEN else None),
        **fields,
    )
    if key == "advisory_board" and "term_start" not in fields:
        o.term_start, o.term_end = date.today(), date.today() + timedelta(days=365)
    o.industries = [db.session.get(Industry, item_id(Industry, n)) for n in industries]
    o.products = [db.session.get(Product, item_id(Product, n)) for n in products]
    o.regions = [db.session.get(Region, item_id(Region, n)) for n in regions]
    o.size_bands = [db.session.get(SizeBand, item_id(SizeBand, n)) for n in size_bands]
    db.session.add(o)
    db.session.commit()
    return o.id


def engaged(user_id: int, when, key: str = "speaking", status=ParticipationStatus.COMPLETED, title=None) -> int:
    """A past engagement of the advocate, as the rules see it (approved at ``when``); returns the opportunity id."""
    oid = make_opp(key, title=title or f"{key} at {when:%Y-%m-%d %H:%M}")
    db.session.add(
        Participation(
            opportunity_id=oid, user_id=user_id, status=status, requested_at=when, engaged_at=when, decided_at=when
        )
    )
    db.session.commit()
    return oid


def reference_request_record(
    key: str, status: ReferenceStatus, created: datetime, requester_id: int | None = None, **fields
) -> int:
    """A reference request straight in the database (with its private opportunity), as the reports and the
    coverage page read it: ``fields`` are its columns (industry_id, outcome, fulfilled_at, ...)."""
    type_id = atype(key).id
    opp = Opportunity(activity_type_id=type_id, title="Reference", status=OpportunityStatus.CLOSED, private=True)
    db.session.add(opp)
    db.session.flush()
    rr = ReferenceRequest(
        requester_id=requester_id,
        activity_type_id=type_id,
        opportunity_id=opp.id,
        account_name=fields.pop("account_name", "Acme"),
        due_date=fields.pop("due_date", created.date() + timedelta(days=30)),
        status=status,
        created_at=created,
        **fields,
    )
    db.session.add(rr)
    db.session.commit()
    return rr.id


def participation_of(user_id: int, opp_id: int) -> Participation | None:
    db.session.rollback()
    db.session.expire_all()
    return db.session.query(Participation).filter_by(user_id=user_id, opportunity_id=opp_id).one_or_none()


def admin_form(type_id: int, **overrides) -> dict:
    """A valid POST body for /admin/opportunities/new (and edit)."""
    data = {
        "activity_type_id": str(type_id),
        "title": "Customer panel at Summit",
        "description": "Tell the story.",
        "selection_mode": "selection",
        "capacity": "3",
        "points": "",
        "event_date": "",
        "deadline": "",
        "term_start": "",
        "term_end": "",
        "is_virtual": "y",
        "location": "",
        "external_url": "https://example.com/summit",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# === 7. Recognition: points, rewards, badges ========================================================================

_seq = {"n": 0}


def give(
    user_id: int, amount: int, key: str | None = None, source: EntrySource = EntrySource.MANUAL, **kw
) -> tuple[int, bool]:
    """Award points through the service and commit; returns (entry id, created)."""
    _seq["n"] += 1
    entry, created = points.award(
        db.session,
        user_id,
        amount,
        key=key or f"test:{user_id}:{_seq['n']}",
        reason=kw.pop("reason", "test award"),
        source=source,
        **kw,
    )
    db.session.commit()
    return entry.id, created


def activity_type_id(key: str) -> int:
    return db.session.scalar(select(ActivityType.id).where(ActivityType.key == key))


def participation_row(
    user_id: int, type_key: str, status: ParticipationStatus = ParticipationStatus.COMPLETED, points: int | None = None
) -> int:
    """One participation of the advocate in a new opportunity of that type, straight in the database
    (no ledger entry, no badge evaluation); returns its id."""
    tid = activity_type_id(type_key)
    assert tid is not None, f"no activity type {type_key!r}"
    _seq["n"] += 1
    opp = Opportunity(
        activity_type_id=tid,
        title=f"{type_key} #{_seq['n']}",
        status=OpportunityStatus.OPEN,
        selection_mode=SelectionMode.SELECTION,
        points=points,
        opened_at=utcnow(),
    )
    db.session.add(opp)
    db.session.flush()
    now = utcnow()
    engaged = status in (ParticipationStatus.APPROVED, ParticipationStatus.COMPLETED)
    p = Participation(
        opportunity_id=opp.id,
        user_id=user_id,
        status=status,
        holds_seat=engaged,
        engaged_at=now if engaged else None,
        decided_at=now if engaged else None,
        completed_at=now if status == ParticipationStatus.COMPLETED else None,
    )
    db.session.add(p)
    db.session.commit()
    pid = p.id
    db.session.rollback()
    return pid


def participate(user_id: int, type_key: str, n: int = 1, amount: int = 10) -> list[int]:
    """n completed activities of one type, as the participation service records them: a completed
    participation and its ledger entry (whose award evaluates badges). Returns the entry ids."""
    tid = activity_type_id(type_key)
    ids = []
    for _ in range(n):
        pid = participation_row(user_id, type_key)
        entry_id, _ = give(
            user_id,
            amount,
            key=f"participation:{pid}:complete",
            source=EntrySource.PARTICIPATION,
            activity_type_id=tid,
            source_id=pid,
        )
        ids.append(entry_id)
    return ids


def make_reward(
    cost: int = 100,
    stock: int | None = None,
    limit: int | None = None,
    name: str = "Mug",
    active: bool = True,
    description: str = "A good mug",
) -> int:
    r = Reward(
        name=name, description=description, points_cost=cost, stock=stock, per_advocate_limit=limit, active=active
    )
    db.session.add(r)
    db.session.commit()
    rid = r.id
    db.session.rollback()
    return rid


def redeem(client, reward_id: int, key: str | None = None):
    """Order a reward through the catalog page's form."""
    _seq["n"] += 1
    return post_form(
        client,
        "/rewards/redeem",
        {"reward_id": str(reward_id), "idempotency_key": key or f"order-{_seq['n']:06d}"},
        page="/rewards",
    )


def badge_keys(user_id: int) -> set[str]:
    db.session.rollback()
    return set(
        db.session.scalars(
            select(Badge.key).join(UserBadge, UserBadge.badge_id == Badge.id).where(UserBadge.user_id == user_id)
        )
    )


def entries(user_id: int | None = None, **filters) -> list[PointsEntry]:
    db.session.rollback()
    q = select(PointsEntry).order_by(PointsEntry.id)
    if user_id is not None:
        q = q.where(PointsEntry.user_id == user_id)
    for name, value in filters.items():
        q = q.where(getattr(PointsEntry, name) == value)
    return list(db.session.scalars(q))


def cached(user_id: int) -> tuple[int, int]:
    """The cached (balance, lifetime earned) of the user."""
    db.session.rollback()
    return points.balance(db.session, user_id), points.lifetime_earned(db.session, user_id)


def assert_ledger_consistent(*user_ids: int) -> None:
    """The cached balance and lifetime equal the ledger's sums, for everyone and for the users named."""
    db.session.rollback()
    assert points.verify(db.session) == []
    for uid in user_ids:
        es = entries(uid)
        total = sum(e.amount for e in es)
        lifetime = sum(e.amount for e in es if e.counts_toward_lifetime)
        assert cached(uid) == (total, lifetime), f"user {uid}: cached {cached(uid)} != ledger ({total}, {lifetime})"


def ledger_rows() -> dict[int, tuple]:
    """Every ledger row, all columns, to compare before and after."""
    cols = [c.key for c in PointsEntry.__table__.columns]
    db.session.rollback()
    return {row.id: tuple(getattr(row, c) for c in cols) for row in db.session.scalars(select(PointsEntry))}


# === 8. Privacy: everything the program holds about one advocate ====================================================

ADVOCATE_IP = "198.51.100.23"


def fill_everything(client, user_id, name="Ada Advocate"):
    """A full profile, preferences, availability and a consent: everything the export and the erasure cover."""
    assert (
        post_form(
            client,
            "/me/profile",
            {
                "name": name,
                "job_title": "CISO",
                "company": "Bluefin Bank",
                "industry_id": str(first_id(Industry)),
                "size_band_id": "",
                "country_code": "FR",
                "product_ids": [str(first_id(Product))],
                "use_cases": "fraud detection",
                "topics": "zero trust",
                "story": "We cut fraud by half.\n\nOnboarding took days, not weeks.",
                "linkedin_url": "https://www.linkedin.com/in/ada",
                "show_in_directory": "y",
            },
        ).status_code
        == 302
    )
    speaking = db.session.scalar(select(ActivityType.id).where(ActivityType.key == "speaking"))
    db.session.rollback()
    assert (
        post_form(
            client,
            "/me/preferences/activities",
            {f"opt_{speaking}": "y", f"note_{speaking}": "remote only"},
            page="/me/preferences",
        ).status_code
        == 302
    )
    assert (
        post_form(
            client, "/me/preferences/communication", {"digest": "weekly", "notify_news": "y"}, page="/me/preferences"
        ).status_code
        == 302
    )
    assert (
        post_form(
            client,
            "/me/availability",
            {"max_asks_per_month": "2", "max_asks_per_quarter": "4", "timezone": "Europe/Paris"},
        ).status_code
        == 302
    )
    start = utcnow().date() + timedelta(days=5)
    assert (
        post_form(
            client,
            "/me/availability/blackouts",
            {"starts_on": start.isoformat(), "ends_on": (start + timedelta(days=2)).isoformat(), "note": "Paris trip"},
            page="/me/availability",
        ).status_code
        == 302
    )
    db.session.add(Consent(user_id=user_id, kind="program_terms", version="2024-01", ip_address="203.0.113.9"))
    db.session.commit()


@dataclass
class ProgramData:
    requested_id: int = 0  # a request waiting for an admin (selection mode)
    approved_id: int = 0  # an approved place that holds a seat
    completed_id: int = 0
    seat_opp_id: int = 0
    open_order_id: int = 0
    fulfilled_order_id: int = 0
    hoodie_id: int = 0
    referred_id: int = 0  # a colleague the advocate referred
    referrer_id: int = 0  # the advocate who referred our advocate
    texts: dict[str, str] = field(default_factory=dict)  # free text planted, by where it was put


def fill_program_data(advocate_id: int, admin_id: int, make_user, name: str = "Ada Advocate") -> ProgramData:
    """Everything the other domains hold about the advocate (whose profile is already filled in):
    participations, points, redemptions, badges, referrals, digests and audit events."""
    d = ProgramData()
    d.texts = {
        "requested message": "I can bring our fraud numbers from Lyon",
        "approved message": "Happy to present the Bluefin slides",
        "completed message": "Wrote it on G2 last night",
        "admin message": f"See you there, {name}",
        "override reason": f"{name} asked for it personally",
        "order note": "Ship to 12 Rue de Rivoli, 75001 Paris",
        "fulfil note": "Shipped to 12 Rue de Rivoli, 75001 Paris, tracking 1Z999",
        "badge reason": f"For {name}'s keynote",
        "manual reason": f"Welcome bonus for {name}",
    }
    referrer = make_user(email="rob.referrer@example.com", name="Rob Referrer")
    referred = make_user(email="rita.referred@example.com", name="Rita Referred", referred_by_id=advocate_id)
    d.referrer_id, d.referred_id = referrer.id, referred.id
    s = db.session
    me = s.get(User, advocate_id)
    me.referred_by_id = referrer.id
    s.flush()
    referrals.credit_referral(s, me)  # Rob's ledger: "Referral: <name> joined"
    referrals.credit_referral(s, s.get(User, referred.id))  # our advocate's ledger: a credit for Rita

    review = s.scalar(select(ActivityType).where(ActivityType.key == "review"))
    s.commit()
    requested_opp = make_opp("speaking", title="Fintech Summit panel", mode=SelectionMode.SELECTION)
    d.seat_opp_id = make_opp("webinar", title="Fraud webinar", capacity=2, seats_taken=1)
    done_opp = make_opp("review", title="G2 review")
    now = utcnow()
    rows = [
        Participation(
            opportunity_id=requested_opp,
            user_id=advocate_id,
            status=ParticipationStatus.REQUESTED,
            message=d.texts["requested message"],
        ),
        Participation(
            opportunity_id=d.seat_opp_id,
            user_id=advocate_id,
            status=ParticipationStatus.APPROVED,
            holds_seat=True,
            engaged_at=now,
            decided_at=now,
            decided_by_id=admin_id,
            message=d.texts["approved message"],
            admin_message=d.texts["admin message"],
            override_reason=d.texts["override reason"],
        ),
        Participation(
            opportunity_id=done_opp,
            user_id=advocate_id,
            status=ParticipationStatus.COMPLETED,
            engaged_at=now - timedelta(days=3),
            decided_at=now - timedelta(days=3),
            completed_at=now - timedelta(days=1),
            message=d.texts["completed message"],
        ),
    ]
    s.add_all(rows)
    s.flush()
    d.requested_id, d.approved_id, d.completed_id = (p.id for p in rows)
    audit.record(
        s,
        "participation.override",
        admin_id,
        rows[1],
        reasons=[f"{name} has paused all asks."],
        reason=d.texts["override reason"],
    )
    points.award(
        s,
        advocate_id,
        50,
        key=f"participation:{d.completed_id}:complete",
        reason="Review: G2 review",
        source=EntrySource.PARTICIPATION,
        source_id=d.completed_id,
        activity_type_id=review.id,
    )
    points.award(
        s,
        advocate_id,
        1000,
        key="welcome",
        reason=d.texts["manual reason"],
        source=EntrySource.MANUAL,
        actor_id=admin_id,
    )
    points.adjust(s, me, -25, "Duplicate award", admin_id, key="adj-1")

    d.hoodie_id = make_reward(cost=100, stock=3, name="Hoodie")
    mug = make_reward(cost=200, name="Mug")
    me = s.get(User, advocate_id)
    order, _ = rewards.redeem(s, me, d.hoodie_id, "order-open")
    order.note = d.texts["order note"]
    d.open_order_id = order.id
    shipped, _ = rewards.redeem(s, me, mug, "order-shipped")
    d.fulfilled_order_id = shipped.id
    rewards.fulfil(s, shipped.id, admin_id, note=d.texts["fulfil note"])

    champion = s.scalar(select(Badge).where(Badge.key == "champion"))
    badges.grant_manual(s, me, champion.id, admin_id, d.texts["badge reason"])
    s.add(DigestDelivery(user_id=advocate_id, period="weekly", period_key="2026-W10", opportunity_count=3))
    s.add(
        AuditEvent(
            actor_id=advocate_id,
            action="user.email_change",
            target_type="user",
            target_id=advocate_id,
            ip_address=ADVOCATE_IP,
        )
    )
    s.commit()
    return d


# === 9. Search ======================================================================================================


def find(q: str = "", include_unavailable: bool = False, sort: str = "relevance", page: int = 1, **filters):
    """search.querying.search_advocates over the live index, as the test's session sees the database now."""
    db.session.rollback()
    return querying.search_advocates(
        db.session,
        querying.AdvocateSearch(
            q=q,
            filters={k: v if isinstance(v, list) else [v] for k, v in filters.items()},
            include_unavailable=include_unavailable,
            sort=sort,
            page=page,
        ),
    )


def names(results) -> list[str]:
    """The advocates' names of a search's hits, in order."""
    return [h.user.name for h in results.hits]


def page_hits(html: str) -> list[str]:
    """The advocate names of the result cards on the staff search page, in order."""
    return re.findall(r'<article class="card hit">\s*<h2><a href="/search/advocates/\d+">(.*?)</a></h2>', html)


def staff_search(client, q: str = "", **params) -> str:
    resp = client.get("/search/advocates", query_string={"q": q, **params})
    assert resp.status_code == 200, resp.status_code
    return resp.get_data(as_text=True)


def indexed(uid: int) -> dict | None:
    """The advocate's document as the index holds it now (packed facet values), or None."""
    ix = open_index("advocates")
    with open_searcher(ix) as s:
        docnum = s.document_number(uid=str(uid))
        if docnum is None:
            return None
        raw = s.reader().column_reader("facets")[docnum]
        return dict(zip(PACKED, raw.split("~")))


def pending_rows() -> list[SearchPending]:
    db.session.rollback()
    return list(db.session.query(SearchPending).order_by(SearchPending.id))


def advocate_profile(make_user, email: str, story: str = "", name: str | None = None, **data):
    """An active advocate with a profile saved through portal.services.profiles (and indexed)."""
    user = make_user(email=email, name=name or email.split("@")[0].title(), company=data.pop("company", "Acme Corp"))
    u = db.session.get(User, user.id)
    profiles.update_profile(
        db.session,
        u,
        profiles.ProfileInput(
            name=u.name, job_title=data.pop("job_title", "Engineer"), company=u.company, story=story, **data
        ),
    )
    db.session.commit()
    apply_pending(db.engine)
    return user


def member(
    make_user,
    name: str,
    *,
    industry=None,
    country=None,
    size=None,
    products=(),
    acts=(),
    story="",
    company="Acme Corp",
    confirmed_days_ago: int | None = 0,
    per_month=None,
    paused_days=None,
    blackout_today=False,
    joined_days_ago: int = 0,
):
    """An advocate built through portal.services.profiles, as the profile pages would save it (not yet indexed)."""
    start = utcnow()
    with time_machine.travel(start - timedelta(days=joined_days_ago), tick=False):
        user = make_user(email=f"{name.lower()}@example.com", name=name, company=company)
    u = db.session.get(User, user.id)
    if confirmed_days_ago is not None:
        with time_machine.travel(start - timedelta(days=confirmed_days_ago), tick=False):
            profiles.update_profile(
                db.session,
                u,
                profiles.ProfileInput(
                    name=name,
                    job_title="Engineer",
                    company=company,
                    industry_id=ids_by_name(Industry)[industry] if industry else None,
                    size_band_id=ids_by_name(SizeBand)[size] if size else None,
                    country_code=country,
                    product_ids=[ids_by_name(Product)[p] for p in products],
                    story=story,
                ),
            )
            db.session.commit()
    if acts:
        types = {t.key: t.id for t in db.session.query(ActivityType)}
        profiles.set_activity_preferences(db.session, u, {types[k]: (True, "") for k in acts})
    if per_month is not None or paused_days is not None:
        paused = date.today() + timedelta(days=paused_days) if paused_days is not None else None
        profiles.set_limits(db.session, u, per_month, None, paused, "UTC")
    if blackout_today:
        profiles.add_blackout(db.session, u, date.today(), date.today() + timedelta(days=3))
    db.session.commit()
    return user


def set_story(user_id: int, story: str) -> None:
    """Save an advocate's story through the profile service (queued for the index, not yet applied)."""
    u = db.session.get(User, user_id)
    profiles.update_profile(
        db.session, u, profiles.ProfileInput(name=u.name, job_title="Engineer", company=u.company or "", story=story)
    )
    db.session.commit()


# === 10. Threads ====================================================================================================


def run_threads(n: int, fn, timeout: float = 120) -> list:
    """Run fn(0..n-1) in n threads released together by a barrier; returns the results in order, an exception
    raised by fn counting as its result (the test asserts on it). Fails if a thread does not finish."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def wrap(i):
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001  (handed to the test, which asserts on it)
            results[i] = exc

    threads = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    return results


# === 11. SQL recording ==============================================================================================


@contextmanager
def recorded_sql():
    """Every SQL statement the engine runs inside the block (all sessions, all threads), lower case."""
    statements: list[str] = []
    engine = db.engine

    def before(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()).lower())

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


# === 12. Browser (tests/e2e) ========================================================================================


def sign_in(page, base, email, password=TEST_PASSWORD):
    """Sign in through the login page in the browser (Playwright ``page``) on the server at ``base``."""
    page.goto(f"{base}/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def settings_form(**changes) -> dict:
    """The settings page's fields with the current values (what the page shows), and ``changes``; an
    on/off setting is sent only when on (a checkbox)."""
    from portal.services import settings

    values = {**settings.values(db.session), **changes}
    out = {}
    for key, value in values.items():
        if settings.BY_KEY[key].kind == settings.BOOL:
            if value:
                out[key] = "y"
        else:
            out[key] = str(value)
    return out
