"""What the views call: search with a fallback, health, opportunity search for advocates (through
the search backend, search.backend())."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, select

from portal.models import Opportunity, Role, SearchPending, Status, User, utcnow
from portal.services import fatigue
from portal.services import opportunities as opps
from search import backend, fallback, querying
from search.seam import IndexUnavailable

log = logging.getLogger(__name__)


def advocates(session, req: querying.AdvocateSearch) -> querying.Results:
    today = utcnow().date()
    try:
        return backend().search_advocates(session, req, today)
    except IndexUnavailable as exc:
        log.warning("search index unavailable, using the database: %s", exc)
    except Exception:  # a corrupt segment can fail late; the page must still answer
        log.exception("search failed, using the database")
    return fallback.search_advocates(session, req, today)


CHUNK = 5_000  # ids one statement names as parameters (SQLite allows 32,766; fatigue.statuses names them 5 times)


def advocate_ids_by_fatigue(session, keys, most: int | None = None) -> dict[str, set[int] | None]:
    """{status: the active advocates whose fatigue status it is} for each of ``keys`` (keys of
    fatigue.STATUS_LABELS), in a fixed number of queries whatever the program's size: the home page's
    "at their limit" count and the advocate list's fatigue filter both ask here, so they agree.

    The index's fatigue facet holds fatigue.statuses as of each advocate's last change (every change that
    moves it requeues the advocate; 'flask search sync' requeues those whose status moved with the date,
    daily). Pauses and blackouts are read live, as search does (fatigue.unavailable_on): an advocate away
    now is "unavailable" whatever the index says, and one the index holds as unavailable who is no longer
    away gets their status from the rules now. Without a readable index: the rules over every active
    advocate (fatigue.ids_with_status; seconds at 50,000). ``most``: a status the index gives more
    advocates than this is None (not read out; the caller can name those with the other statuses)."""
    keys = [k for k in dict.fromkeys(keys) if k in fatigue.STATUS_LABELS]
    if not keys:
        return {}
    today = utcnow().date()
    away = set(fatigue.unavailable_on(session))
    try:
        found = backend().fatigue_uids(tuple(dict.fromkeys([*keys, "unavailable"])), today, most)
    except Exception as exc:  # no index (IndexUnavailable), a corrupt segment, a backend without facets
        log.warning("fatigue from the database, not the index: %s", exc)
        active = select(User.id).where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE)
        return {key: set(fatigue.ids_with_status(session, key, active)) for key in keys}
    if found["unavailable"] is None:  # (more than ``most`` away when written: read them all the same)
        found["unavailable"] = backend().fatigue_uids(("unavailable",), today)["unavailable"]
    back = found["unavailable"] - away  # unavailable when written, not now: the rules say what they are
    now_of: dict[int, str] = {}
    back_ids = sorted(back)
    for i in range(0, len(back_ids), CHUNK):  # one chunk unless the index has not been synced for long
        now_of.update((uid, st.key) for uid, st in fatigue.statuses(session, back_ids[i : i + CHUNK]).items())
    out = {}
    for key in keys:
        if key == "unavailable":
            out[key] = _active_among(session, away)
        elif found[key] is None:
            out[key] = None
        else:
            out[key] = (found[key] - away) | {uid for uid, k in now_of.items() if k == key}
    return out


def advocate_ids_with_fatigue(session, key: str) -> set[int]:
    """The active advocates whose fatigue status is ``key`` (advocate_ids_by_fatigue)."""
    return advocate_ids_by_fatigue(session, [key]).get(key) or set()


def _active_among(session, ids: set[int]) -> set[int]:
    """Those of ``ids`` who are active advocates (one query: by id, or, for many, every active advocate's)."""
    if not ids:
        return set()
    q = select(User.id).where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE)
    if len(ids) <= CHUNK:
        q = q.where(User.id.in_(ids))
    return ids & set(session.connection().execute(q).scalars())  # Core rows: thousands of ids


def advocates_matching(
    session, criteria: list[querying.Criterion], relax_order: list[str], need: str, leave_out: set[int], limit: int
) -> querying.CriteriaRanking:
    """The advocates matching a reference request's criteria best, through the index (see
    querying.rank_by_criteria); from the database, more simply, when the index cannot answer."""
    try:
        return backend().rank_by_criteria(criteria, relax_order, need, leave_out, limit, utcnow().date())
    except IndexUnavailable as exc:
        log.warning("matching: search index unavailable, using the database: %s", exc)
    except Exception:
        log.exception("matching: search failed, using the database")
    return fallback.rank_by_criteria(session, criteria, relax_order, leave_out, limit)


def opportunities_for(session, user, text: str, type_id: int | None):
    """(matches the advocate is eligible for, notes): text and type over the feed."""
    matches = opps.feed(session, user, type_id)
    notes: list[str] = []
    if not (text or "").strip():
        return matches, notes
    if not matches:
        return matches, notes
    try:
        ids, notes = backend().search_opportunity_ids(text, type_id, [m.opportunity.id for m in matches])
    except Exception as exc:
        log.warning("opportunity search fell back to the database: %s", exc)
        words = [w.lower() for w in text.split()[:10]]
        return [
            m for m in matches if all(w in f"{m.opportunity.title} {m.opportunity.description}".lower() for w in words)
        ], ["A simpler search was used."]
    if ids is None:
        return matches, notes
    rank = {oid: i for i, oid in enumerate(ids)}
    return sorted((m for m in matches if m.opportunity.id in rank), key=lambda m: rank[m.opportunity.id]), notes


@dataclass
class Health:
    ok: bool
    message: str
    indexed_advocates: int | None
    db_advocates: int
    indexed_opportunities: int | None
    pending: int
    rebuilding: bool
    location: str
    stale_marker_removed: str | None = None  # when a marker left by an interrupted rebuild was cleared


def health(session) -> Health:
    db_adv = (
        session.scalar(
            select(func.count()).select_from(User).where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE)
        )
        or 0
    )
    pending = session.scalar(select(func.count()).select_from(SearchPending)) or 0
    index = backend().health()
    adv, opp = index.advocates, index.opportunities
    if index.error is not None:
        ok, msg = False, f"The index cannot be read ({index.error}). Search falls back to the database."
    elif adv != db_adv:
        ok, msg = False, f"The index holds {adv:,} advocates but the database has {db_adv:,}."
    else:
        ok, msg = True, "The index is readable."
    removed = index.stale_marker_removed
    return Health(
        ok,
        msg,
        adv,
        db_adv,
        opp,
        pending,
        index.rebuilding,
        index.location,
        removed.strftime("%Y-%m-%d %H:%M UTC") if removed else None,
    )


def opportunity_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Opportunity)) or 0
