"""The benchmark's generator (bench/generate.py) makes realistic, deterministic data: participations
(most advocates a few, some many, some none), so last engagement and every fatigue status occur, and
the same seed gives the same data (audit gap 9)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from bench.generate import generate
from portal.extensions import db
from portal.models import Opportunity, Participation, User
from portal.services import lists
from search import documents
from tests.support import empty_tables

N = 400


def _signature() -> list[tuple]:
    """The generated data without its ids: per advocate (by email), their participations."""
    titles = dict(db.session.execute(select(Opportunity.id, Opportunity.title)).all())
    per = {}
    for email, opp, status in db.session.execute(
        select(User.email, Participation.opportunity_id, Participation.status).join(
            Participation, Participation.user_id == User.id
        )
    ).all():
        per.setdefault(email, []).append((titles[opp], str(status)))
    return sorted((email, sorted(v)) for email, v in per.items())


def test_generated_advocates_have_realistic_participations(app):
    generate(db.session, N)
    counts = dict(db.session.execute(select(Participation.user_id, func.count()).group_by(Participation.user_id)).all())
    ids = documents.all_advocate_ids(db.session)
    assert len(ids) == N
    per_advocate = [counts.get(uid, 0) for uid in ids]
    none, few, many = (
        sum(1 for n in per_advocate if cond(n)) for cond in (lambda n: n == 0, lambda n: 1 <= n <= 3, lambda n: n >= 10)
    )
    assert 0.25 * N < none < 0.45 * N and few > 0.35 * N and 0 < many < 0.12 * N

    docs, _ = documents.advocate_docs(db.session, ids)
    fatigue = Counter(d["facets"].split(documents.SEP)[6] for d in docs)
    engaged = [d["facets"].split(documents.SEP)[8] for d in docs]
    assert {"available", "under_used", "at_limit", "near_limit", "unavailable"} <= set(fatigue), fatigue
    assert sum(1 for e in engaged if e != "0") > N // 3  # last engagement dates exist


def test_the_same_seed_gives_the_same_data(app):
    generate(db.session, 150)
    first = _signature()
    db.session.remove()
    empty_tables(db.engine)
    lists.ensure_defaults(db.session)
    db.session.commit()
    generate(db.session, 150)
    assert _signature() == first and len(first) > 50
