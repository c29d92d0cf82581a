"""The staff workspace's navigation: Home, then what each part of the workspace adds (its ``NAV``:
(endpoint, label, also-marked endpoints)), then the advocate search. A link's words are the title of the
page it opens; the page you are on is marked (aria-current)."""

from __future__ import annotations

from types import ModuleType

from flask import has_request_context, request

HOME = ("staff.home", "Home", ())
SEARCH = ("search.advocates", "Find advocates", ("search.advocate_profile",))
# The parts of the workspace (staff/__init__.py fills it): modules with ``NAV`` and
# ``home_context(session, user) -> dict`` (what the home page shows of them).
PARTS: list[ModuleType] = []


def links() -> list[tuple[str, str, tuple[str, ...]]]:
    out = [HOME]
    for part in PARTS:
        out.extend(part.NAV)
    out.append(SEARCH)
    return out


def inject() -> dict:
    if not has_request_context():
        return {}
    endpoint = request.endpoint
    current = next((e for e, _, also in links() if endpoint == e or endpoint in also), None)
    return {"staff_links": links(), "staff_current": current}
