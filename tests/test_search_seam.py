"""The seam (search/seam.py): views, services, the CLI and the after-commit hooks reach the index only
through search.backend(), so another backend chosen in the factory serves every caller unchanged."""

from __future__ import annotations

import inspect

import pytest

import search
from portal.extensions import db
from portal.models import User
from search import querying
from search.facets import FACETS
from search.seam import IndexStatus, IndexUnavailable, SearchBackend, SyncReport, WhooshBackend
from tests.support import login, make_advocate, make_opp, post_form, profile_form, staff_search

METHODS = [name for name, _ in inspect.getmembers(SearchBackend, inspect.isfunction) if not name.startswith("_")]


def test_the_interface_is_small_and_the_whoosh_backend_implements_all_of_it():
    assert sorted(METHODS) == sorted(
        [
            "search_advocates",
            "search_opportunity_ids",
            "fatigue_uids",
            "rank_by_criteria",
            "queue",
            "apply_pending",
            "ensure_index",
            "rebuild",
            "sync",
            "optimize",
            "check",
            "health",
            "warm_up",
        ]
    )
    for name in METHODS:
        declared = inspect.signature(getattr(SearchBackend, name))
        implemented = inspect.signature(getattr(WhooshBackend, name))
        assert list(declared.parameters) == list(implemented.parameters), name


def test_the_app_uses_the_whoosh_backend(app):
    assert isinstance(search.backend(), WhooshBackend)


class Recording:
    """A second backend: answers from nothing and records what it was asked."""

    def __init__(self):
        self.calls: list[str] = []

    def search_advocates(self, session, req, today):
        self.calls.append("search_advocates")
        facets = {f: [] for f in [*FACETS, "freshness"]}
        return querying.Results(0, [], facets, 1, 1, ["Answered by the recording backend."])

    def search_opportunity_ids(self, text, type_id, among=None):
        self.calls.append("search_opportunity_ids")
        return [], ["Opportunities answered by the recording backend."]

    def queue(self, session, kind, ids):
        self.calls.append("queue")

    def apply_pending(self, engine, patience=None):
        self.calls.append("apply_pending")
        return 0

    def ensure_index(self):
        self.calls.append("ensure_index")

    def rebuild(self, engine, progress=None, procs=None):
        self.calls.append("rebuild")
        return {"advocates": 7, "opportunities": 3}

    def sync(self, engine, refresh_fatigue=True):
        self.calls.append("sync")
        return SyncReport(None, 2, 5)

    def optimize(self, engine, progress=None):
        self.calls.append("optimize")
        return {"advocates": 7, "opportunities": 3}

    def check(self, session):
        self.calls.append("check")
        return ["1 advocate document(s) differ, as the recording backend says"]

    def health(self):
        self.calls.append("health")
        return IndexStatus(None, None, "the recording backend has no index", False, "nowhere", None)

    def warm_up(self):
        self.calls.append("warm_up")


@pytest.fixture
def recording(app):
    fake = Recording()
    app.extensions["search"] = fake
    return fake


def test_every_caller_goes_through_the_backend(app, recording, make_user, staff_client, admin_client, runner):
    html = staff_search(staff_client, "anything")
    assert "Answered by the recording backend." in html
    assert "recording backend has no index" in admin_client.get("/admin/search-index").get_data(as_text=True)

    advocate = make_advocate(make_user, "ada.seam@example.com")
    make_opp("speaking", title="Security summit talk")
    c = app.test_client()
    login(c, db.session.get(User, advocate).email)
    body = c.get("/search/opportunities?q=security").get_data(as_text=True)
    assert "Opportunities answered by the recording backend." in body
    recording.calls.clear()
    assert post_form(c, "/me/profile", profile_form(story="A new story.")).status_code == 302
    # every request asks for the warm-up (the backend starts it once per process, if configured); the
    # profile's change, queued in the request's transaction, is written through the backend after its commit
    assert [c for c in recording.calls if c != "warm_up"] == ["apply_pending"] and "warm_up" in recording.calls

    result = runner.invoke(args=["search", "check"])
    assert result.exit_code == 1 and "as the recording backend says" in result.output
    result = runner.invoke(args=["search", "sync"])
    assert result.exit_code == 0 and "2 advocate(s) changed fatigue status" in result.output
    assert "Applied 5 pending change(s)." in result.output
    assert "Indexed 7 advocates" in runner.invoke(args=["search", "reindex"]).output
    assert "Optimized: 7 advocates" in runner.invoke(args=["search", "optimize"]).output
    assert [c for c in recording.calls if c not in ("apply_pending", "warm_up")] == [
        "check",
        "sync",
        "rebuild",
        "optimize",
    ]


def test_an_unavailable_index_falls_back_to_the_database(app, recording, staff_client, monkeypatch):
    def unavailable(session, req, today):
        raise IndexUnavailable("no index here")

    monkeypatch.setattr(recording, "search_advocates", unavailable)
    html = staff_search(staff_client, "anything")
    assert "simpler search of the database" in html
