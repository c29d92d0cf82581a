"""Accessibility is part of done: every page a person can reach passes axe-core without a serious or
critical violation, at 375 px and at 1280 px, and nothing scrolls sideways at 375 px.

The pages are listed per kind of visitor (signed out, applicant, advocate, staff, admin) and each list is
walked in one browser context signed in once; the data they show is built once for the module. axe-core
comes from axe-playwright-python (its bundled ``axe.min.js``), injected through the DevTools protocol, so the
Content-Security-Policy stays as strict as in production.

``test_every_page_is_listed`` compares the app's url_map with these lists: a GET route added without a
visit here (or a reason in ``NOT_PAGES``) fails the suite, routes with parameters included.

The data is ordinary but not tidy: long email addresses and a long one-word company name, as customers have.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import url_for
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from portal.database import begin_write
from portal.extensions import db
from portal.models import (
    ActivityType,
    ImportJob,
    Invitation,
    Participation,
    ParticipationStatus,
    Role,
    Status,
    User,
    utcnow,
)
from portal.services import accounts, imports, invitations, nominations, references, referrals, subscriptions
from search.indexing import apply_pending
from tests.support import (
    TEST_PASSWORD,
    FreshContextClient,
    fill_everything,
    fill_program_data,
    login,
    make_opp,
    sign_in,
)

BLOCKING = ("serious", "critical")
PHONE, DESKTOP = 375, 1280

# GET routes that are not pages a person reads, and why they are not visited.
NOT_PAGES = {
    "static": "CSS, JavaScript and images",
    "main.healthz": "JSON for the load balancer",
    "profile.export_data": "a JSON download of the advocate's data",
    "sso.start": "a redirect to the identity provider",
    "sso.callback": "the provider's redirect back: a heading and a Continue button that post themselves on at once",
    "sso.join": "reached only after a provider's sign-in: axe-checked at both widths in test_sso_journey.py",
    "sso.link_account": "reached only after a provider's sign-in: axe-checked at both widths in test_sso_journey.py",
    "sso.signed_out": "forwards at once (Refresh: 0) to the provider's sign-out: a heading, a sentence and a link",
}


@dataclass(frozen=True)
class Visit:
    """One page: an endpoint (with its URL values from the module's data), or a path for the error pages."""

    endpoint: str | None
    values: Callable[[SimpleNamespace], dict] = field(default=lambda w: {})
    status: int = 200
    lands_on: str | None = None  # the endpoint after redirects, when it is another one
    path: str | None = None  # a raw path (error pages), instead of an endpoint

    def url(self, w) -> str:
        if self.path:
            return self.path
        with w.app.test_request_context():
            return url_for(self.endpoint, **self.values(w))

    @property
    def name(self) -> str:
        return self.endpoint or self.path


PUBLIC = [
    Visit("main.index"),
    Visit("auth.login"),
    Visit("auth.register"),
    Visit("auth.forgot_password"),
    Visit("auth.check_email"),
    Visit("main.terms"),
    Visit("main.privacy_notice"),
    Visit("auth.verify_email", lambda w: {"token": w.verify_token}),
    Visit("auth.reset_password", lambda w: {"token": "no-such-token"}, status=400),  # "this link is not valid"
    Visit("auth.invited", lambda w: {"token": w.invitation_token}),
    Visit("auth.invited", lambda w: {"token": "no-such-token"}, status=400),
    Visit("profile.unsubscribe", lambda w: {"token": w.unsubscribe_token}),
    Visit("recognition.referred", lambda w: {"code": w.referral_code}, lands_on="auth.register"),
    Visit(None, path="/no-such-page", status=404),
    Visit(None, path="/auth/logout", status=405),
]
# Reached by following an emailed link in the journeys below (the link is the only way in).
FROM_EMAILS = {"auth.reset_password", "profile.confirm_email_change"}

APPLICANT = [
    Visit("main.account_status"),
    Visit("profile.delete_account"),
]

ADVOCATE = [
    Visit("main.dashboard"),
    Visit("opportunities.feed"),
    Visit("opportunities.detail", lambda w: {"opp_id": w.open_opp}),
    Visit("opportunities.commitments"),
    Visit("opportunities.my_boards"),
    Visit("search.opportunities", lambda w: {"q": "summit"}),
    Visit("profile.edit"),
    Visit("profile.preview"),
    Visit("profile.preferences"),
    Visit("profile.availability"),
    Visit("profile.privacy_page"),
    Visit("profile.change_email"),
    Visit("profile.delete_account"),
    Visit("profile.confirm_delete", lambda w: {"token": "a-link-from-the-email"}),  # the page asks; POST decides
    Visit("profile.confirm_current_address", lambda w: {"token": "a-link-from-the-email"}),
    Visit("recognition.my_points"),
    Visit("recognition.badges_page"),
    Visit("recognition.catalog"),
    Visit("recognition.redemptions"),
    Visit("recognition.my_referrals"),
    Visit("recognition.leaderboard_page"),
    Visit("account.change_password"),
    Visit("sso.identities"),
    Visit(None, path="/admin/", status=403),
    Visit("asks.index", lambda w: (_reference_request(w), {})[1]),  # with an ask waiting for an answer
]

STAFF = [
    Visit("main.dashboard", lands_on="staff.home"),
    Visit("staff.home"),
    Visit("search.advocates"),
    Visit("search.advocates", lambda w: {"q": "Ada"}),
    Visit("search.advocates", lambda w: {"q": "x" * 201}, status=422),  # too long: the page says so
    Visit("search.advocate_profile", lambda w: {"user_id": w.advocate_id}),
    Visit("recognition.leaderboard_page"),
    Visit("account.change_password"),
    Visit("sso.identities"),
    Visit("staff.nominations", lambda w: {} if _nomination(w) else {}),
    Visit("staff.nominate"),
    Visit("staff.nomination", lambda w: {"nomination_id": _nomination(w)}),
    Visit("staff.references_list"),
    Visit("staff.reference_new"),
    Visit("staff.reference_detail", lambda w: {"rr_id": _reference_request(w)}),
]

ADMIN = [
    Visit("admin.index"),
    Visit("admin.pending"),
    Visit("admin.advocates"),
    Visit("admin.advocate_profile", lambda w: {"user_id": w.advocate_id}),
    Visit("admin.advocate_edit", lambda w: {"user_id": w.advocate_id}),
    Visit("admin.opportunities_list"),
    Visit("admin.opportunity_new"),
    Visit("admin.opportunity_detail", lambda w: {"opp_id": w.seat_opp}),
    Visit("admin.opportunity_detail", lambda w: {"opp_id": w.open_opp}),
    Visit("admin.opportunity_edit", lambda w: {"opp_id": w.open_opp}),
    Visit("admin.activity_types"),
    Visit("admin.activity_type_edit", lambda w: {"type_id": w.speaking}),
    Visit("admin.rewards_list"),
    Visit("admin.reward_new"),
    Visit("admin.reward_edit", lambda w: {"reward_id": w.reward}),
    Visit("admin.badges_admin"),
    Visit("admin.points_adjust"),
    Visit("admin.redemptions_queue"),
    Visit("admin.boards"),
    Visit("admin.audit_log"),
    Visit("admin.imports_list"),
    Visit("admin.import_mapping", lambda w: {"job_id": w.import_job}),
    Visit("admin.import_job", lambda w: {"job_id": w.import_job}),
    Visit("admin.import_job", lambda w: {"job_id": w.import_job, "problems": 1}),
    Visit("admin.import_job", lambda w: {"job_id": w.done_import_job}),
    Visit("admin.settings"),
    Visit("admin.lists_index"),
    Visit("admin.list_items", lambda w: {"list_kind": "regions"}),
    Visit("admin.list_items", lambda w: {"list_kind": "industries"}),
    Visit("admin.list_tags", lambda w: {"tag_kind": "topics"}),
    Visit("admin.health"),
    Visit("admin.reports"),
    Visit("admin.reports", lambda w: {"period": "custom", "start": "2026-01-01", "end": "2026-03-31"}),
    Visit("admin.report_values"),
    Visit("admin.coverage_page"),
    Visit("admin.coverage_edit", lambda w: {"target_id": _coverage_target(w)}),
    Visit("search.health"),
    Visit("search.advocates", lambda w: {"q": "Ada"}),
    Visit("search.advocate_profile", lambda w: {"user_id": w.advocate_id}),
    Visit(None, path="/admin/opportunities/999999", status=404),
    Visit("admin.nominations", lambda w: {} if _nomination(w) else {}),
    Visit("staff.references_list"),
    Visit("staff.reference_detail", lambda w: {"rr_id": _reference_request(w)}),  # the ask form, the override
]


def _coverage_target(w) -> int:
    """A portfolio coverage target to edit (issue 14), made on first use."""
    from portal.services import coverage

    if not hasattr(w, "target_id"):
        target = coverage.create_target(db.session, coverage.TargetInput("Germany", country_code="DE", wanted=3), None)
        db.session.commit()
        w.target_id = target.id
    return w.target_id


def _nomination(w) -> int:
    """A customer nominated by the staff member, waiting for review (issue 13), made on first use."""
    if not hasattr(w, "nomination_id"):
        staff = db.session.scalar(select(User).where(User.email == w.staff_email))
        nominee = nominations.Nominee(
            name="Nadia Nominated",
            email="nadia.nominated@example.com",
            company="Versicherungsgesellschaftsrechtsabteilung",
            job_title="Head of claims",
            reason="Rolled the platform out to 40 teams; happy to speak at the summit.",
            account_owner="Olga Owner",
        )
        w.nomination_id = nominations.nominate(db.session, nominee, staff).id
        db.session.commit()
    return w.nomination_id


def _reference_request(w) -> int:
    """The staff member's reference request, with the advocate asked by the admin (issue 13), made on first use."""
    if not hasattr(w, "rr_id"):
        db.session.rollback()
        begin_write(db.session)
        staff = db.session.scalar(select(User).where(User.email == w.staff_email))
        admin = db.session.scalar(select(User).where(User.email == w.admin_email))
        call = db.session.scalar(select(ActivityType.id).where(ActivityType.key == "reference_call"))
        data = references.RequestInput(
            activity_type_id=call,
            account_name="Versicherungsgesellschaftsrechtsabteilung International",
            due_date=utcnow().date() + timedelta(days=21),
            need="A finance leader who moved their planning off spreadsheets",
            deal_amount=250_000,
        )
        rr = references.create(db.session, staff, data)
        references.ask(db.session, admin, rr.id, w.advocate_id, "Checking the pages")
        db.session.commit()
        w.rr_id = rr.id
    return w.rr_id


ROLES = {"public": PUBLIC, "applicant": APPLICANT, "advocate": ADVOCATE, "staff": STAFF, "admin": ADMIN}


def test_every_page_is_listed(live_server):
    """Every GET route of the app is visited by a test below, or named in NOT_PAGES with a reason."""
    get_routes = {r.endpoint for r in live_server.app.url_map.iter_rules() if "GET" in r.methods}
    visited = {v.endpoint for pages in ROLES.values() for v in pages if v.endpoint} | FROM_EMAILS
    missing = get_routes - visited - set(NOT_PAGES)
    assert not missing, f"GET routes no accessibility test visits (add a Visit, or a reason in NOT_PAGES): {missing}"
    stale = (set(NOT_PAGES) | visited) - get_routes
    assert not stale, f"listed but not routes of the app: {stale}"


# --- the data the pages show, built once -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(live_server):
    """An admin, a staff member, an applicant, an unverified account and an advocate with everything the
    program holds about them (profile, preferences, blackout, requests, a board seat, points, orders,
    badges, referrals); the ids and link tokens the pages need."""
    app = live_server.app
    ns = SimpleNamespace(app=app, base=live_server.url)
    ns.admin_email = "a11y.admin@example.com"
    ns.staff_email = "a11y.staff@example.com"
    ns.advocate_email = "ada.accessible-advocate.for.a11y@customer-subsidiary.example.com"
    ns.applicant_email = "petra.pending-applicant.for.accessibility@subsidiary.example.com"
    admin_id = live_server.make_user(ns.admin_email, role=Role.ADMIN, name="Alex Admin")
    live_server.make_user(ns.staff_email, role=Role.STAFF, name="Sam Staff")
    ns.advocate_id = live_server.make_user(ns.advocate_email, name="Ada Accessible")
    live_server.make_user(
        ns.applicant_email,
        status=Status.PENDING,
        name="Petra Pending",
        company="Versicherungsgesellschaftsrechtsabteilung",
    )
    unverified = live_server.make_user("a11y.unverified@example.com", status=Status.UNVERIFIED, name="Una Verified")

    def make_user(email, **fields):
        return SimpleNamespace(id=live_server.make_user(email, **fields))

    with app.app_context():
        client = FreshContextClient(app, app.response_class, use_cookies=True)
        assert login(client, ns.advocate_email).status_code == 302
        fill_everything(client, ns.advocate_id, name="Ada Accessible")
        data = fill_program_data(ns.advocate_id, admin_id, make_user, name="Ada Accessible")
        ns.seat_opp, ns.reward = data.seat_opp_id, data.hoodie_id
        ns.open_opp = make_opp("speaking", title="Accessibility summit keynote", capacity=4, location="Lisbon")
        board = make_opp("advisory_board", title="Customer advisory board")
        db.session.add(
            Participation(
                opportunity_id=board,
                user_id=ns.advocate_id,
                status=ParticipationStatus.APPROVED,
                holds_seat=True,
                engaged_at=utcnow(),
                decided_at=utcnow(),
            )
        )
        ns.speaking = db.session.scalar(select(ActivityType.id).where(ActivityType.key == "speaking"))
        db.session.commit()
        advocate = db.session.get(User, ns.advocate_id)
        ns.referral_code = _url_value(app, referrals.referral_link(advocate), "code")
        ns.unsubscribe_token = _url_value(app, subscriptions.unsubscribe_url(advocate, "digest"), "token")
        ns.verify_token = _url_value(app, accounts.verification_link(db.session.get(User, unverified)), "token")
        apply_pending(db.engine)  # staff search finds the advocate
        ns.import_job, ns.done_import_job, ns.invitation_token = _imports(admin_id)
    return ns


def _imports(admin_id: int) -> tuple[int, int, str]:
    """A CSV import mapped and waiting (with problems to show), one that has run, and an open invitation."""
    csv = (
        b"Full name,Email,Company,Industry\n"
        b"Iris Importable,iris.import@example.com,Versicherungsgesellschaftsrechtsabteilung,Helthcare\n"
        b"No Address,,Nowhere,\n"
    )
    db.session.rollback()  # end the fixture's reads: this is a writer's unit of work (SQLite: BEGIN IMMEDIATE)
    begin_write(db.session)
    jobs = []
    for _ in range(2):
        job = imports.upload(db.session, "advocates-from-the-spring-event.csv", csv, admin_id)
        imports.set_mapping(db.session, job, job.mapping, admin_id)
        jobs.append(job.id)
    imports.start(db.session, db.session.get(ImportJob, jobs[1]), admin_id)
    db.session.commit()
    imports.run(db.session, jobs[1])
    token = "a11y-invitation-token"
    begin_write(db.session)
    db.session.add(
        Invitation(
            email="ines.invited@example.com",
            name="Ines Invited",
            company="Versicherungsgesellschaftsrechtsabteilung",
            job_title="Head of claims",
            source="import",
            token_hash=invitations.token_hash(token),
            expires_at=utcnow() + timedelta(days=14),
        )
    )
    db.session.commit()
    return jobs[0], jobs[1], token


def _url_value(app, link: str, name: str) -> str:
    """A value of an emailed link's route (its token, its code), read with the app's own url_map."""
    return app.url_map.bind("localhost").match(urlsplit(link).path)[1][name]


# --- checking one page --------------------------------------------------------------------------------------------


@dataclass
class Checker:
    """Visits pages in one browser page and collects every problem, so one run reports them all."""

    page: object
    app: object
    role: str
    problems: list[str] = field(default_factory=list)

    def endpoint_of(self, url: str) -> str | None:
        try:
            return self.app.url_map.bind("localhost").match(urlsplit(url).path)[0]
        except HTTPException:  # the error pages' URLs match no GET route
            return None

    def visit(self, visit: Visit, w) -> None:
        self.page.set_viewport_size({"width": PHONE, "height": 800})
        response = self.page.goto(w.base + visit.url(w))
        where = f"{self.role} {visit.name} ({urlsplit(self.page.url).path})"
        status = response.status if response else None
        if status != visit.status:
            self.problems.append(f"{where}: answered {status}, expected {visit.status}")
        landed = self.endpoint_of(self.page.url)
        if visit.endpoint and landed != (visit.lands_on or visit.endpoint):
            self.problems.append(f"{where}: landed on {landed}, expected {visit.lands_on or visit.endpoint}")
        self.check(where)

    def check(self, where: str, widths=(PHONE, DESKTOP)) -> None:
        """The page as it is now, at both widths."""
        for width in widths:
            self.page.set_viewport_size({"width": width, "height": 800})
            if width == PHONE:
                scroll, inner = self.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                if scroll > inner:
                    wide = self.page.evaluate(WIDEST_JS, inner)
                    self.problems.append(f"{where} at {width}px: scrolls sideways ({scroll}px > {inner}px): {wide}")
            result = axe_run(self.page)
            for v in result.response["violations"]:
                if v["impact"] in BLOCKING:
                    targets = [" ".join(map(str, n["target"])) for n in v["nodes"]][:5]
                    self.problems.append(f"{where} at {width}px: {v['impact']} {v['id']} ({v['help']}) on {targets}")

    def check_open_menu(self) -> None:
        """The menu opened on a phone: its links (and the admin's dark header) are checked too."""
        self.page.set_viewport_size({"width": PHONE, "height": 800})
        self.page.get_by_role("button", name="Menu").click()
        expect(self.page.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "true")
        self.check(f"{self.role} {urlsplit(self.page.url).path} with the menu open", widths=(PHONE,))

    def assert_clean(self) -> None:
        if self.problems:
            pytest.fail("\n".join([f"{len(self.problems)} accessibility problem(s):", *self.problems]), pytrace=False)


# axe-playwright-python's Axe injects axe-core (500 kB) before every run; each page is checked at two widths
# (and one with the menu open), so the script goes in once per document and later runs only run it.
INJECT_AND_RUN = Axe()
RUN_ONLY = Axe(axe_script="0")


def axe_run(page):
    injected = page.evaluate("typeof window.axe === 'object' && typeof window.axe.run === 'function'")
    return (RUN_ONLY if injected else INJECT_AND_RUN).run(page)


# Elements wider than the viewport, innermost first: where a sideways scroll comes from.
WIDEST_JS = """inner => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > inner + 0.5)
  .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ' + Math.round(e.getBoundingClientRect().right))
  .slice(-5)"""


@pytest.fixture
def checker(browser, world):
    """Makes a Checker in a browser context of its own, signed in as ``email`` (or not signed in)."""
    contexts = []

    def make(role: str, email: str | None = None) -> Checker:
        contexts.append(browser.new_context(viewport={"width": PHONE, "height": 800}))
        page = contexts[-1].new_page()
        if email:
            sign_in(page, world.base, email)
            expect(page).not_to_have_url(re.compile(r"/auth/login"))
        return Checker(page, world.app, role)

    yield make
    for context in contexts:
        context.close()


def walk(check: Checker, pages: list[Visit], w) -> None:
    for i, visit in enumerate(pages):
        check.visit(visit, w)
        if i == 0:
            check.check_open_menu()


def test_public_pages(checker, world, mailbox):
    check = checker("public")
    walk(check, PUBLIC, world)
    # A wrong password, then the forgotten-password journey to the emailed reset form.
    page = check.page
    page.goto(world.base + "/auth/login")
    page.get_by_label("Email").fill(world.advocate_email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    check.check("public auth.login with a wrong password")
    page.goto(world.base + "/auth/register")
    page.get_by_role("button", name="Join the program").click()  # empty: every field says what it needs
    check.check("public auth.register with errors")
    page.goto(world.base + "/auth/forgot-password")
    page.get_by_label("Email").fill(world.advocate_email)
    page.get_by_role("button", name="Send me a reset link").click()
    check.check(f"public after asking for a reset ({urlsplit(page.url).path})")
    link = mailbox.last(world.advocate_email, subject="Reset your password").link("/auth/reset-password/")
    check.visit(Visit("auth.reset_password", path=urlsplit(link).path), world)
    check.assert_clean()


def test_applicant_pages(checker, world):
    check = checker("applicant", world.applicant_email)
    walk(check, APPLICANT, world)
    check.assert_clean()


def test_advocate_pages(checker, world, mailbox):
    check = checker("advocate", world.advocate_email)
    walk(check, ADVOCATE, world)
    # Changing the email address: the form, then the link sent to the new address.
    page = check.page
    page.goto(world.base + "/me/email")
    page.get_by_label("New email address").fill("a11y.advocate.new@example.com")
    page.get_by_label("Your password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Send confirmation link").click()
    check.check(f"advocate after asking for an email change ({urlsplit(page.url).path})")
    link = mailbox.last("a11y.advocate.new@example.com").link("/me/email/confirm/")
    check.visit(Visit("profile.confirm_email_change", path=urlsplit(link).path), world)
    check.assert_clean()


def test_staff_pages(checker, world):
    check = checker("staff", world.staff_email)
    walk(check, STAFF, world)
    check.assert_clean()


def test_admin_pages(checker, world):
    check = checker("admin", world.admin_email)
    walk(check, ADMIN, world)
    check.assert_clean()
