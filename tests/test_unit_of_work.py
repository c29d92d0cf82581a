"""One commit per request, in one place (portal.errors.unit_of_work), and refused actions answered there.

Checked here: every view that takes an unsafe method is wrapped; no view module commits, rolls back or
catches a DomainError; a POST commits once; a refusal rolls back what the service wrote before it,
unless the error keeps it (a wrong password's failure count); forms keep the input with a 4xx, buttons
redirect for browsers and answer JSON clients with the error's 4xx; a failed commit sends no mail,
indexes nothing and leaves the browser's session as it was.
"""

from __future__ import annotations

import ast
import importlib
from contextlib import contextmanager
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import event

import search.indexing
from portal.blueprints.auth import RESET_DONE
from portal.database import SAFE_METHODS
from portal.errors import in_unit_of_work, unit_of_work
from portal.extensions import db
from portal.models import Participation, ParticipationStatus, Redemption, User
from portal.services import accounts, fatigue, profiles
from portal.services.errors import DomainError
from tests.support import (
    TEST_PASSWORD,
    csrf_from,
    give,
    login,
    make_advocate,
    make_opp,
    make_reward,
    post_form,
    profile_data,
    reload,
)

ROOT = Path(__file__).resolve().parent.parent
VIEW_MODULES = sorted(
    [*ROOT.glob("portal/blueprints/*.py"), *ROOT.glob("admin/*.py"), ROOT / "search" / "views.py"],
)


def text(resp) -> str:
    return unescape(resp.get_data(as_text=True))


@contextmanager
def commits():
    """The COMMITs of the request session (db.session): not its savepoints, nor the outbox's or the
    index's own sessions."""
    ours, seen = set(), []

    def began(session, transaction, connection):
        ours.add(connection)

    def committed(connection):
        if connection in ours:
            seen.append(connection)

    event.listen(db.session, "after_begin", began)
    event.listen(db.engine, "commit", committed)
    try:
        yield seen
    finally:
        event.remove(db.session, "after_begin", began)
        event.remove(db.engine, "commit", committed)


# --- the rule, checked on the whole app ------------------------------------------------------------------------


def test_every_view_taking_an_unsafe_method_is_a_unit_of_work(app):
    unsafe = {}
    for rule in app.url_map.iter_rules():
        if rule.methods - SAFE_METHODS:
            unsafe[rule.endpoint] = app.view_functions[rule.endpoint]
    assert len(unsafe) >= 30, sorted(unsafe)  # the walk found the app's forms and buttons
    missing = sorted(endpoint for endpoint, view in unsafe.items() if not in_unit_of_work(view))
    assert not missing, f"views that take POST without unit_of_work: {missing}"


def test_the_marker_is_only_on_wrapped_views():
    def plain():
        return "ok"

    assert not in_unit_of_work(plain)
    assert in_unit_of_work(unit_of_work(plain))


def _domain_error_handlers(source: str, namespace: dict) -> tuple[int, list[str]]:
    """(except clauses seen, those that catch a DomainError or a subclass), evaluating each clause's
    exception expression in the module's namespace."""
    caught, handlers = [], 0
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            handlers += 1
            value = eval(compile(ast.Expression(node.type), "<except>", "eval"), namespace)  # noqa: S307
            classes = value if isinstance(value, tuple) else (value,)
            if any(isinstance(c, type) and issubclass(c, DomainError) for c in classes):
                caught.append(ast.unparse(node.type))
    return handlers, caught


def test_view_modules_neither_commit_nor_roll_back_nor_catch_domain_errors(app):
    assert len(VIEW_MODULES) >= 12
    handlers_seen = 0
    for path in VIEW_MODULES:
        source = path.read_text()
        rel = path.relative_to(ROOT)
        for needle in ("session.commit(", "session.rollback(", ".commit()", ".rollback()", "except DomainError"):
            assert needle not in source, f"{rel}: {needle}"
        module = importlib.import_module(".".join(rel.with_suffix("").parts))
        handlers, caught = _domain_error_handlers(source, vars(module))
        handlers_seen += handlers
        assert not caught, f"{rel} catches domain errors itself: {caught}"
    assert handlers_seen >= 3  # the scan reads the except clauses that remain (ValueError for bad input)


def test_the_scan_finds_a_view_that_catches_a_subclass():
    source = "try:\n    pass\nexcept (ValueError, fatigue.AskRefused):\n    pass\n"
    assert _domain_error_handlers(source, {"fatigue": fatigue}) == (
        1,
        ["(ValueError, fatigue.AskRefused)"],
    )


# --- one commit, and what a refusal keeps --------------------------------------------------------------------


def _profile_name(user_id) -> str:
    name = reload(User, user_id).name
    db.session.rollback()
    return name


def test_a_post_commits_once_and_a_get_never(app, advocate_client, advocate):
    with commits() as seen:
        assert advocate_client.get("/me/profile").status_code == 200
    assert seen == []
    token = csrf_from(advocate_client.get("/me/profile").get_data(as_text=True))
    with commits() as seen:
        resp = advocate_client.post("/me/profile", data={"csrf_token": token, **profile_data(name="Ada Once")})
    assert resp.status_code == 302
    assert len(seen) == 1
    assert _profile_name(advocate.id) == "Ada Once"


def test_a_button_commits_once(app, make_user):
    uid = make_advocate(make_user, "button@example.com")
    oid = make_opp("review", title="One commit")
    c = app.test_client()
    assert login(c, "button@example.com").status_code == 302
    token = csrf_from(c.get(f"/opportunities/{oid}").get_data(as_text=True))
    with commits() as seen:
        resp = c.post(f"/opportunities/{oid}/request", data={"csrf_token": token, "message": ""})
    assert resp.status_code == 302 and len(seen) == 1
    db.session.rollback()
    assert db.session.query(Participation).filter_by(user_id=uid, opportunity_id=oid).count() == 1
    db.session.rollback()


def _writes_then_refuses(monkeypatch, error_class):
    """profiles.update_profile does its work (and flushes it), then refuses."""
    real = profiles.update_profile

    def update_then_refuse(session, user, data):
        real(session, user, data)
        session.flush()
        raise error_class("Refused after writing.")

    monkeypatch.setattr(profiles, "update_profile", update_then_refuse)


def test_a_refusal_rolls_back_what_the_service_wrote_before_it(app, advocate_client, advocate, monkeypatch):
    _writes_then_refuses(monkeypatch, DomainError)
    token = csrf_from(advocate_client.get("/me/profile").get_data(as_text=True))
    with commits() as seen:
        resp = advocate_client.post("/me/profile", data={"csrf_token": token, **profile_data(name="Ada Written")})
    assert resp.status_code == 422
    page = text(resp)
    assert "Refused after writing." in page
    assert 'value="Ada Written"' in page  # the form shows the user's input again
    assert seen == []
    assert _profile_name(advocate.id) == "Ada Advocate"


class Counted(DomainError):
    """A refusal after a write that must stand (as a wrong password's failure count)."""

    keeps_writes = True


def test_an_error_that_keeps_writes_commits_them_then_refuses(app, advocate_client, advocate, monkeypatch):
    _writes_then_refuses(monkeypatch, Counted)
    token = csrf_from(advocate_client.get("/me/profile").get_data(as_text=True))
    with commits() as seen:
        resp = advocate_client.post("/me/profile", data={"csrf_token": token, **profile_data(name="Ada Kept")})
    assert resp.status_code == 422 and "Refused after writing." in text(resp)
    assert len(seen) == 1
    assert _profile_name(advocate.id) == "Ada Kept"


def _failures(user_id) -> int:
    n = reload(User, user_id).failed_login_count
    db.session.rollback()
    return n


def test_a_wrong_current_password_keeps_its_failure_count(app, advocate_client, advocate):
    with commits() as seen:
        resp = post_form(
            advocate_client,
            "/account/password",
            {
                "current_password": "not-the-password",
                "password": "a-new-long-passphrase-7",
                "confirm": "a-new-long-passphrase-7",
            },
        )
    assert resp.status_code == 422
    assert "Your current password is not right." in text(resp)
    assert len(seen) == 1
    assert _failures(advocate.id) == 1


def test_a_failed_sign_in_keeps_its_failure_count(app, client, advocate):
    with commits() as seen:
        resp = login(client, advocate.email, password="not-the-password")
    assert resp.status_code == 401
    assert "The email or password is not right" in text(resp)
    assert len(seen) == 1
    assert _failures(advocate.id) == 1


def test_a_refusal_that_keeps_nothing_is_rolled_back(app, advocate_client, advocate):
    """The same current password as the new one: refused after the check, nothing counted."""
    with commits() as seen:
        resp = post_form(
            advocate_client,
            "/account/password",
            {"current_password": TEST_PASSWORD, "password": TEST_PASSWORD, "confirm": TEST_PASSWORD},
        )
    assert resp.status_code == 422 and "Choose a password different from the current one." in text(resp)
    assert seen == []
    assert _failures(advocate.id) == 0


# --- buttons: flash and redirect for browsers, the error's 4xx for JSON clients -------------------------------


@pytest.fixture
def declined(app, make_user):
    """A signed-in advocate's declined request (which cannot be withdrawn): (client, participation id)."""
    uid = make_advocate(make_user, "json@example.com")
    oid = make_opp("review", title="JSON opp")
    p = Participation(user_id=uid, opportunity_id=oid, status=ParticipationStatus.DECLINED)
    db.session.add(p)
    db.session.commit()
    pid = p.id
    db.session.rollback()
    c = app.test_client()
    assert login(c, "json@example.com").status_code == 302
    return c, pid


def test_a_refused_button_redirects_a_browser_with_the_message(declined):
    c, pid = declined
    token = csrf_from(c.get("/me/commitments").get_data(as_text=True))
    resp = c.post(f"/me/commitments/{pid}/withdraw", data={"csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/me/commitments")
    assert "Only a request or an approved place can be withdrawn." in text(c.get("/me/commitments"))


def test_a_refused_button_answers_json_with_the_errors_status(declined):
    c, pid = declined
    token = csrf_from(c.get("/me/commitments").get_data(as_text=True))
    resp = c.post(f"/me/commitments/{pid}/withdraw", data={"csrf_token": token}, headers={"Accept": "application/json"})
    assert resp.status_code == 409
    assert resp.get_json() == {"error": "Only a request or an approved place can be withdrawn."}
    assert "Only a request" not in text(c.get("/me/commitments"))  # no flash waiting for the next page


def test_a_button_on_something_missing_is_a_404_as_html_and_json(declined):
    c, pid = declined
    token = csrf_from(c.get("/me/commitments").get_data(as_text=True))
    assert c.post(f"/me/commitments/{pid + 1000}/withdraw", data={"csrf_token": token}).status_code == 404
    resp = c.post(
        f"/me/commitments/{pid + 1000}/withdraw", data={"csrf_token": token}, headers={"Accept": "application/json"}
    )
    assert resp.status_code == 404 and resp.get_json() == {"error": "No such participation."}


def test_a_refused_order_is_a_303_for_browsers_and_a_409_for_json(app, advocate_client, advocate):
    give(advocate.id, 500)
    rid = make_reward(cost=100, stock=0, name="Gone")
    token = csrf_from(advocate_client.get("/rewards").get_data(as_text=True))
    data = {"csrf_token": token, "reward_id": str(rid), "idempotency_key": "order-json-000001"}
    resp = advocate_client.post("/rewards/redeem", data=data)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/rewards")
    assert "Gone is out of stock." in text(advocate_client.get("/rewards"))
    resp = advocate_client.post("/rewards/redeem", data=data, headers={"Accept": "application/json"})
    assert resp.status_code == 409 and resp.get_json() == {"error": "Gone is out of stock."}


def test_an_order_for_a_retired_reward_is_a_refusal_not_a_404(app, advocate_client, advocate):
    """The reward comes from the form, not the URL: retired since the catalog was shown, it is refused
    on the catalog (303 and a message) for browsers; JSON clients get the NotFound's own 404."""
    give(advocate.id, 500)
    rid = make_reward(cost=100, active=False, name="Retired")
    token = csrf_from(advocate_client.get("/rewards").get_data(as_text=True))
    data = {"csrf_token": token, "reward_id": str(rid), "idempotency_key": "order-retired-0001"}
    resp = advocate_client.post("/rewards/redeem", data=data)
    assert resp.status_code == 303 and "That reward is not available." in text(advocate_client.get("/rewards"))
    resp = advocate_client.post("/rewards/redeem", data=data, headers={"Accept": "application/json"})
    assert resp.status_code == 404 and resp.get_json() == {"error": "That reward is not available."}


def test_admin_buttons_on_a_missing_order_are_404s(app, admin_client):
    """Before, the admin's fulfil and cancel flashed "No such redemption." and redirected (302) while the
    advocate's own cancel answered 404; a NotFound from any button is a 404 now."""
    token = csrf_from(admin_client.get("/admin/redemptions").get_data(as_text=True))
    db.session.rollback()
    assert db.session.get(Redemption, 999) is None
    for action in ("fulfil", "cancel"):
        resp = admin_client.post(f"/admin/redemptions/999/{action}", data={"csrf_token": token})
        assert resp.status_code == 404, action


def test_a_registration_refused_with_a_message_is_a_422(app, client, monkeypatch):
    """Before, a refusal shown as a flash message answered 200 (only field errors made it a 422)."""

    def refuse(session, reg):
        raise DomainError("Registrations are closed today.")

    monkeypatch.setattr(accounts, "register_advocate", refuse)
    resp = post_form(
        client,
        "/auth/register",
        {
            "name": "Rita Refused",
            "email": "rita@example.com",
            "password": "a-long-enough-passphrase-3",
            "confirm": "a-long-enough-passphrase-3",
            "company": "Acme",
            "job_title": "CTO",
            "accept_terms": "y",
        },
    )
    assert resp.status_code == 422
    page = text(resp)
    assert "Registrations are closed today." in page and 'value="Rita Refused"' in page


# --- a commit that fails: no mail, no index, no success message, no sign-in ------------------------------------


@contextmanager
def failing_commit():
    def fail(session):
        raise RuntimeError("the database went away at COMMIT")

    event.listen(db.session, "before_commit", fail)
    try:
        yield
    finally:
        event.remove(db.session, "before_commit", fail)


@pytest.fixture
def raising_app(app):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # the friendly 500 page, as in production
    return app


def test_a_failed_commit_sends_no_mail_and_shows_no_success(raising_app, client, advocate, mailbox):
    token = csrf_from(client.get("/auth/forgot-password").get_data(as_text=True))
    with failing_commit():
        resp = client.post("/auth/forgot-password", data={"csrf_token": token, "email": advocate.email})
    assert resp.status_code == 500
    assert mailbox.messages == []
    assert RESET_DONE not in text(client.get("/auth/login"))  # the flash was taken back with the work
    assert post_form(client, "/auth/forgot-password", {"email": advocate.email}).status_code == 302
    assert mailbox.last(advocate.email, subject="Reset your password")  # the same request, committed: sent


def test_a_failed_commit_does_not_sign_in(raising_app, client, advocate):
    token = csrf_from(client.get("/auth/login").get_data(as_text=True))
    with failing_commit():
        resp = client.post(
            "/auth/login", data={"csrf_token": token, "email": advocate.email, "password": TEST_PASSWORD}
        )
    assert resp.status_code == 500
    assert client.get("/dashboard").status_code == 302  # still signed out
    assert login(client, advocate.email).status_code == 302


def test_a_failed_commit_indexes_nothing(raising_app, advocate_client, advocate, monkeypatch):
    applied = []
    real = search.indexing.apply_pending
    monkeypatch.setattr(search.indexing, "apply_pending", lambda *a, **kw: applied.append(1) or real(*a, **kw))
    token = csrf_from(advocate_client.get("/me/profile").get_data(as_text=True))
    with failing_commit():
        resp = advocate_client.post("/me/profile", data={"csrf_token": token, **profile_data(name="Ada Lost")})
    assert resp.status_code == 500 and applied == []
    assert _profile_name(advocate.id) == "Ada Advocate"
    assert (
        advocate_client.post("/me/profile", data={"csrf_token": token, **profile_data(name="Ada Kept")}).status_code
        == 302
    )
    assert applied  # a committed save is indexed after the request
    assert _profile_name(advocate.id) == "Ada Kept"
