"""make bench: search at 10,000 / 50,000 (/ 100,000) advocates, Whoosh and a SQL LIKE baseline.

    python -m bench [--sizes 10000,50000,100000] [--runs 10] [--procs 2]

Reports the full rebuild time and documents per second, p50/p95 latency per query class (each
query warmed once, then timed --runs times, through the same code the search page uses: parse,
facet counts, top 20, database rows for the page and snippets), the same for a SQL LIKE baseline
on the same data, and the time of one incremental update (write + commit + searcher reopen).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

from sqlalchemy import func, or_, select, text

RESULTS = Path(__file__).resolve().parent / "results"


def pct(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def like_baseline(session, query: str, filters: dict):
    """What a plain SQL search does: LIKE per word, facet filters, total, 3 facet counts, top 20."""
    from portal.models import (ActivityPreference, ActivityType, AdvocateProfile, Country, User, profile_products)

    words = [w.strip('"') for w in query.split() if w.strip('"')]
    q = select(User.id).join(AdvocateProfile, AdvocateProfile.user_id == User.id).where(
        User.role == "advocate", User.status == "active")
    for w in words:
        like = f"%{w}%"
        q = q.where(or_(User.name.like(like), User.company.like(like), User.job_title.like(like),
                        AdvocateProfile.story.like(like)))
    for facet, vals in filters.items():
        if facet == "industry":
            q = q.where(AdvocateProfile.industry_id.in_([int(v) for v in vals]))
        elif facet == "size":
            q = q.where(AdvocateProfile.size_band_id.in_([int(v) for v in vals]))
        elif facet == "region":
            q = q.where(AdvocateProfile.country_code.in_(
                select(Country.code).where(Country.region_id.in_([int(v) for v in vals]))))
        elif facet == "product":
            q = q.where(User.id.in_(select(profile_products.c.user_id).where(
                profile_products.c.product_id.in_([int(v) for v in vals]))))
        elif facet == "activity":
            q = q.where(User.id.in_(select(ActivityPreference.user_id).join(ActivityType).where(
                ActivityType.key.in_(vals), ActivityPreference.opted_in.is_(True))))
    sub = q.subquery()
    total = session.scalar(select(func.count()).select_from(sub))
    for col in (AdvocateProfile.industry_id, AdvocateProfile.size_band_id, AdvocateProfile.country_code):
        session.execute(select(col, func.count()).join(sub, sub.c.id == AdvocateProfile.user_id).group_by(col)).all()
    top = session.scalars(q.order_by(AdvocateProfile.confirmed_at.desc()).limit(20)).all()
    return total, top


def run_size(n: int, runs: int, procs: int, workdir: Path) -> dict:
    from flask_migrate import upgrade

    from bench.generate import generate
    from bench.queries import QUERIES
    from portal import create_app
    from portal.extensions import db
    from portal.models import AdvocateProfile, User
    from search import querying
    from search.indexing import _merging, apply_pending, current_dir, wait_for_merges
    from search.rebuild import rebuild
    from portal.services import reference

    dbfile = workdir / f"bench-{n}.db"
    dbfile.unlink(missing_ok=True)
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{dbfile}", "SEARCH_INDEX_DIR": str(workdir / f"index-{n}"),
                      "SECRET_KEY": "bench", "MAIL_SUPPRESS_SEND": True, "OUTBOX_SEND_AFTER_REQUEST": False})
    out = {"n": n}
    with app.app_context():
        upgrade()
        reference.ensure_defaults(db.session)
        db.session.commit()
        t = time.perf_counter()
        generate(db.session, n)
        db.session.execute(text("DELETE FROM search_pending"))
        db.session.commit()
        out["generate_s"] = time.perf_counter() - t
        print(f"  {n:,} advocates generated in {out['generate_s']:.1f} s", flush=True)

        t = time.perf_counter()
        rebuild(db.engine, procs=procs)
        out["rebuild_s"] = time.perf_counter() - t
        out["docs_per_s"] = n / out["rebuild_s"]
        print(f"  rebuild {out['rebuild_s']:.1f} s ({out['docs_per_s']:,.0f} docs/s)", flush=True)

        whoosh_times, like_times = defaultdict(list), defaultdict(list)
        totals = {}
        for cls, q, filters in QUERIES:
            req = querying.AdvocateSearch(q=q, filters=filters, include_unavailable=False)
            res = querying.search_advocates(db.session, req)  # warm
            totals[(cls, q)] = res.total
            for _ in range(runs):
                t = time.perf_counter()
                querying.search_advocates(db.session, req)
                whoosh_times[cls].append((time.perf_counter() - t) * 1000)
            like_baseline(db.session, q, filters)
            for _ in range(runs):
                t = time.perf_counter()
                like_baseline(db.session, q, filters)
                like_times[cls].append((time.perf_counter() - t) * 1000)
            db.session.rollback()
        out["whoosh"] = {c: (statistics.median(v), pct(v, 95)) for c, v in whoosh_times.items()}
        out["like"] = {c: (statistics.median(v), pct(v, 95)) for c, v in like_times.items()}
        allw = [x for v in whoosh_times.values() for x in v]
        alll = [x for v in like_times.values() for x in v]
        out["whoosh_all"] = (statistics.median(allw), pct(allw, 95))
        out["like_all"] = (statistics.median(alll), pct(alll, 95))
        out["totals"] = totals

        # One incremental update: change a story, commit, write the document (lock, write, commit),
        # then the next search reopens the searcher and rebuilds facet bits for the new segment only.
        upd, upd_search, merges = [], [], []
        ids = db.session.scalars(select(User.id).where(User.role == "advocate").limit(25)).all()
        for i, uid in enumerate(ids):
            p = db.session.get(AdvocateProfile, uid)
            p.story = p.story + f" benchmarktoken{i}"
            db.session.commit()
            t = time.perf_counter()
            apply_pending(db.engine)
            upd.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            merging = [th for th in _merging.values() if th.is_alive()]
            wait_for_merges()  # updates are spread out in real use; report the background merges apart
            if merging:
                merges.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            r = querying.search_advocates(db.session, querying.AdvocateSearch(q=f"benchmarktoken{i}",
                                                                              include_unavailable=True))
            upd_search.append((time.perf_counter() - t) * 1000)
            assert r.total == 1, (i, r.total)
        out["update_ms"] = (statistics.median(upd), pct(upd, 95))
        out["merges"] = (len(merges), statistics.median(merges) if merges else 0.0)
        out["first_search_after_update_ms"] = (statistics.median(upd_search), pct(upd_search, 95))
        out["index"] = str(current_dir().resolve())
        querying.forget_searchers()
        db.engine.dispose()
    return out


def report(results: list[dict]) -> str:
    classes = list(dict.fromkeys(c for r in results for c in r["whoosh"]))
    lines = ["# Search benchmark", "", f"Run on {date.today().isoformat()}; milliseconds p50 / p95 per query class "
             "(each query warmed once, then timed); the Whoosh column is the full search path (parse, facet counts "
             "for 8 facets, top 20, the page's rows and snippets from the database).", ""]
    for r in results:
        lines += [f"## {r['n']:,} advocates", "",
                  f"- full rebuild: **{r['rebuild_s']:.1f} s** ({r['docs_per_s']:,.0f} documents/s)",
                  f"- incremental update (write + commit): **{r['update_ms'][0]:.1f} / {r['update_ms'][1]:.1f} ms** "
                  f"p50/p95; first search after it: {r['first_search_after_update_ms'][0]:.1f} / "
                  f"{r['first_search_after_update_ms'][1]:.1f} ms; {r['merges'][0]} background merge(s) of the small "
                  f"segments during the 25 updates, median {r['merges'][1]:.0f} ms each (off the request path)",
                  f"- all queries: Whoosh **{r['whoosh_all'][0]:.1f} / {r['whoosh_all'][1]:.1f} ms**, "
                  f"SQL LIKE {r['like_all'][0]:.1f} / {r['like_all'][1]:.1f} ms", "",
                  "| query class | Whoosh p50 / p95 | SQL LIKE p50 / p95 |", "|---|---|---|"]
        for c in classes:
            w, lk = r["whoosh"][c], r["like"][c]
            lines.append(f"| {c} | {w[0]:.1f} / {w[1]:.1f} | {lk[0]:.1f} / {lk[1]:.1f} |")
        lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,50000")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--procs", type=int, default=2)
    args = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            print(f"== {n:,} advocates", flush=True)
            results.append(run_size(n, args.runs, args.procs, Path(tmp)))
    text_out = report(results)
    (RESULTS / "latest.md").write_text(text_out)
    print()
    print(text_out)


if __name__ == "__main__":
    main()
