"""The seam between the portal and its search index.

Views (search/views.py), services (search/service.py), the CLI (search/cli.py and ``flask demo
seed``) and the hooks that apply queued changes after a commit call ``search.backend()``: the
SearchBackend below that the factory chose (``init_app``). How Whoosh is driven stays behind it, in
``indexing`` (the index on disk, writers, the queue), ``querying`` (searchers, facets, ranking) and
``rebuild`` (rebuild, optimize, check). A second backend implements these methods and is chosen in
``init_app``; no caller changes. What feeds the documents (search.documents.SOURCES) and the queue
that follows the database (``search_pending``) are the same for every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from flask import Flask
from sqlalchemy.orm import Session

from portal import signals
from search import indexing, querying
from search import rebuild as rb
from search.indexing import IndexUnavailable
from search.schema import ADVOCATES, OPPORTUNITIES
from search.whoosh_internals import verify_once

__all__ = ["IndexStatus", "IndexUnavailable", "SearchBackend", "SyncReport", "WhooshBackend", "init_app"]


@dataclass
class IndexStatus:
    """What the index says about itself (the health page adds the database's side)."""

    advocates: int | None  # documents in the advocate index; None when it cannot be read
    opportunities: int | None
    error: str | None  # why it cannot be read
    rebuilding: bool  # a rebuild (or optimize) is running
    location: str
    stale_marker_removed: datetime | None  # when a marker left by an interrupted rebuild was cleared


@dataclass
class SyncReport:
    rebuilt: int | None  # advocates indexed when there was no index (None: there was one)
    fatigue_changed: int  # advocates requeued because their fatigue status moved on with the date
    applied: int  # queued changes written


class SearchBackend(Protocol):
    """What the portal asks of a search index. Every method runs inside an app context."""

    # --- searching: raise IndexUnavailable when there is no readable index (callers fall back to the
    # database); any other error is a failure the caller may fall back from as well.

    def search_advocates(self, session, req: querying.AdvocateSearch, today: date) -> querying.Results:
        """One page of advocates for staff: count, facet counts, the page's hits with snippets."""

    def fatigue_uids(self, keys: tuple[str, ...], today: date, most: int | None = None) -> dict[str, set[int] | None]:
        """{fatigue status: ids of the advocates whose document holds it} for each of ``keys``; None for a
        status more than ``most`` hold (a backend without this is answered by the rules:
        search.service.advocate_ids_by_fatigue)."""

    def search_opportunity_ids(
        self, text: str, type_id: int | None, among: list[int] | None = None
    ) -> tuple[list[int] | None, list[str]]:
        """(opportunity ids matching ``text``, best first, only among ``among``; None when no text was
        given), and notes for the page."""

    def rank_by_criteria(
        self,
        criteria: list[querying.Criterion],
        relax_order: list[str],
        need: str,
        leave_out: set[int],
        limit: int,
        today: date,
    ) -> querying.CriteriaRanking:
        """The advocates matching a reference request's criteria best (querying.rank_by_criteria)."""

    # --- following the database: search_pending, filled by the listeners from documents.SOURCES

    def queue(self, session, kind: str, ids: Iterable[int]) -> None:
        """Queue these documents in the session's transaction (for what changes without a row changing)."""

    def apply_pending(self, engine, patience: float | None = None) -> int:
        """Write a batch of queued changes now; ``patience``: seconds to wait for the index (a request's
        is short). Returns how many were applied; raises on failure (the rows stay queued)."""

    # --- upkeep

    def ensure_index(self) -> None:
        """Create an empty index if there is none (a new install); never touches an existing one."""

    def rebuild(self, engine, progress: Callable[[int], None] | None = None, procs: int | None = None) -> dict:
        """Build the index again from the database (search keeps answering); counts by kind."""

    def sync(self, engine, refresh_fatigue: bool = True) -> SyncReport:
        """The cron job: build the index if it is missing, requeue what changed with the date (with
        ``refresh_fatigue``), and write everything queued."""

    def optimize(self, engine, progress: Callable[[str], None] | None = None) -> dict:
        """Compact the index (nightly, optional); counts by kind."""

    def check(self, session) -> list[str]:
        """Differences between the index and the database, in words (empty: none)."""

    def health(self) -> IndexStatus: ...

    def warm_up(self) -> None:
        """Start building, in the background, what a process's first search would (once per process,
        if SEARCH_WARM is on)."""


class WhooshBackend:
    """The Whoosh index under SEARCH_INDEX_DIR (search.indexing, querying, rebuild)."""

    def search_advocates(self, session, req: querying.AdvocateSearch, today: date) -> querying.Results:
        try:
            return querying.search_advocates(session, req, today)
        except IndexUnavailable:
            raise
        except Exception:  # a corrupt segment can fail late: open the index afresh next time
            querying.forget_searchers()
            raise

    def search_opportunity_ids(self, text, type_id, among=None):
        return querying.search_opportunity_ids(text, type_id, among)

    def rank_by_criteria(self, criteria, relax_order, need, leave_out, limit, today) -> querying.CriteriaRanking:
        try:
            return querying.rank_by_criteria(criteria, relax_order, need, leave_out, limit, today)
        except IndexUnavailable:
            raise
        except Exception:  # a corrupt segment: open the index afresh next time
            querying.forget_searchers()
            raise

    def fatigue_uids(self, keys: tuple[str, ...], today: date, most: int | None = None) -> dict[str, set[int] | None]:
        try:
            return querying.fatigue_uids(keys, today, most)
        except IndexUnavailable:
            raise
        except Exception:  # a corrupt segment: open the index afresh next time
            querying.forget_searchers()
            raise

    def queue(self, session, kind, ids) -> None:
        indexing.queue(session, kind, ids)

    def apply_pending(self, engine, patience=None) -> int:
        return indexing.apply_pending(engine, patience=patience)

    def ensure_index(self) -> None:
        indexing.ensure_index()

    def rebuild(self, engine, progress=None, procs=None) -> dict:
        return rb.rebuild(engine, progress=progress, procs=procs)

    def sync(self, engine, refresh_fatigue=True) -> SyncReport:
        rebuilt = None
        if not indexing.index_exists():  # lost (or a new install): an empty index would hide everyone not queued
            rebuilt = rb.rebuild(engine)[ADVOCATES]
        changed = []
        if refresh_fatigue:
            with Session(engine) as session:
                changed = rb.stale_fatigue(session)
                indexing.queue(session, ADVOCATES, changed)
                session.commit()
        # While a rebuild really runs (its lock is held) the rows applied are kept for its new generation
        # and it applies them itself; a marker left by a killed rebuild is removed and ignored.
        applied = indexing.apply_all_pending(engine)
        for kind in (ADVOCATES, OPPORTUNITIES):  # fold the small segments of the day's updates
            with indexing.writer_for(kind, merge=True):
                pass
        indexing.wait_for_merges()
        return SyncReport(rebuilt, len(changed), applied)

    def optimize(self, engine, progress=None) -> dict:
        return rb.optimize(engine, progress=progress)

    def check(self, session) -> list[str]:
        return rb.check(session)

    def health(self) -> IndexStatus:
        try:
            adv = querying.searcher_for(ADVOCATES).searcher.doc_count()
            opp = querying.searcher_for(OPPORTUNITIES).searcher.doc_count()
            error = None
        except Exception as exc:
            adv = opp = None
            error = str(exc)
        return IndexStatus(
            adv,
            opp,
            error,
            indexing.rebuild_running(),  # the marker counts only while a rebuild holds its lock
            str(indexing.current_dir()),
            indexing.stale_marker_removed_at(),
        )

    def warm_up(self) -> None:
        if querying.warm_enabled():
            querying.warm_in_background()


def init_app(app: Flask, session_factory) -> None:
    """The factory's search wiring: check the Whoosh internals the index relies on (a Whoosh upgrade
    that moved one stops the app here, naming it), choose the backend, and follow the database
    (listeners on ``session_factory``, derived from documents.SOURCES)."""
    verify_once()
    app.extensions["search"] = WhooshBackend()
    indexing.register_listeners(session_factory)
    signals.advocates_changed.connect(indexing.queue_selected_advocates)
