"""Who may reach the program's side, generated from the URL map: every route of the admin area and of
the staff's pages, every method, for anonymous (sent to sign in), advocate (403), staff (403 on admin
pages, in on staff pages) and admin (in). A new route without an expectation here fails."""

from __future__ import annotations

import pytest
from flask import url_for

from tests.support import client_for, csrf_from

ADMIN, STAFF = "admin", "staff"  # who may use it: admins only, or staff and admins

# Routes of the program's side, by endpoint prefix or name. Anything under /admin/ is admin-only
# unless listed; the staff workspace (staff.*) and the staff pages listed by name are for staff and admins.
STAFF_PAGES = {"search.advocates", "search.advocate_profile"}


def program_routes(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if rule.endpoint in STAFF_PAGES or rule.endpoint.startswith("staff."):
            yield rule, STAFF
        elif rule.rule.startswith("/admin/") or rule.rule == "/admin" or rule.endpoint.startswith("admin."):
            yield rule, ADMIN


def _url(app, rule) -> str:
    named = {"action": "approve", "kind": "ledger", "step": "complete"}  # the <any(...)> arguments: one of their values
    args = {a: named.get(a, 1) for a in rule.arguments}
    with app.test_request_context():
        return url_for(rule.endpoint, **args)


@pytest.fixture
def clients(app, advocate, staff, admin):
    return {"anonymous": app.test_client()} | {
        who: client_for(app, user.id) for who, user in (("advocate", advocate), ("staff", staff), ("admin", admin))
    }


def _token(client) -> str:
    """A CSRF token of the client's session (so a refusal is about the role, not the token)."""
    return csrf_from(client.get("/auth/login" if client.get_cookie("session") is None else "/account/").get_data(True))


def test_every_program_route_answers_each_role_as_expected(app, clients):
    routes = list(program_routes(app))
    assert sum(1 for _, who in routes if who == ADMIN) >= 30 and len(routes) > 30
    tokens = {who: _token(c) for who, c in clients.items()}
    wrong = []
    for rule, allowed in routes:
        url = _url(app, rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for who, c in clients.items():
                data = {"csrf_token": tokens[who]} if method == "POST" else None
                resp = c.open(url, method=method, data=data)
                location = resp.headers.get("Location", "")
                if who == "anonymous":
                    ok = resp.status_code == 302 and "/auth/login" in location
                elif who == "advocate" or (who == "staff" and allowed == ADMIN):
                    ok = resp.status_code == 403
                else:  # let in: whatever the page answers (404 for id 1, 422 for an empty form), not a refusal
                    ok = resp.status_code not in (401, 403, 500) and "/auth/login" not in location
                if not ok:
                    wrong.append((who, method, url, resp.status_code, location))
    assert wrong == []
