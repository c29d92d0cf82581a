"""make bench: search at 10,000 / 50,000 (/ 100,000) advocates, Whoosh and a SQL LIKE baseline.

    python -m bench [--sizes 10000,50000,100000] [--runs 10] [--procs 2] [--cold-runs 2]

With --admin, the admin pages instead (bench/admin.py; ``make bench-admin``, and ``make bench`` after
the search benchmark):

    python -m bench --admin [--advocates 50000] [--participations 500000] [--opportunities 3000]
                            [--runs 10] [--database-url postgresql+psycopg://...] [--db-file PATH]
                            [--only TEXT ...]

Reports the full rebuild time and documents per second; p50/p95 latency per query class, warm (each
query run once, then timed --runs times, through the same code the search page uses: parse, facet
counts, top 20, database rows for the page and snippets) and cold (fresh processes, 40 other queries
each run once, with and without the start-up warm-up; the first search of a process on its own);
the former worst queries (ranges, short wildcards); the same for a SQL LIKE baseline on the same
data; one incremental update's time; and 'flask search check' / 'optimize' times.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import func, or_, select

from bench import admin as admin_bench
from bench import reports as reports_bench
from bench.generate import generate
from bench.queries import QUERIES, WORST_QUERIES
from portal import create_app
from portal.extensions import db
from portal.models import ActivityPreference, ActivityType, AdvocateProfile, Country, User, profile_products
from portal.services import lists
from search import querying
from search.indexing import _merging, apply_pending, current_dir, discard_pending, wait_for_merges
from search.rebuild import check, optimize, rebuild

RESULTS = Path(__file__).resolve().parent / "results"


def pct(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def like_baseline(session, query: str, filters: dict):
    """What a plain SQL search does: LIKE per word, facet filters, total, 3 facet counts, top 20."""
    words = [w.strip('"') for w in query.split() if w.strip('"')]
    q = (
        select(User.id)
        .join(AdvocateProfile, AdvocateProfile.user_id == User.id)
        .where(User.role == "advocate", User.status == "active")
    )
    for w in words:
        like = f"%{w}%"
        q = q.where(
            or_(
                User.name.like(like),
                User.company.like(like),
                User.job_title.like(like),
                AdvocateProfile.story.like(like),
            )
        )
    for facet, vals in filters.items():
        if facet == "industry":
            q = q.where(AdvocateProfile.industry_id.in_([int(v) for v in vals]))
        elif facet == "size":
            q = q.where(AdvocateProfile.size_band_id.in_([int(v) for v in vals]))
        elif facet == "region":
            q = q.where(
                AdvocateProfile.country_code.in_(
                    select(Country.code).where(Country.region_id.in_([int(v) for v in vals]))
                )
            )
        elif facet == "product":
            q = q.where(
                User.id.in_(
                    select(profile_products.c.user_id).where(profile_products.c.product_id.in_([int(v) for v in vals]))
                )
            )
        elif facet == "activity":
            q = q.where(
                User.id.in_(
                    select(ActivityPreference.user_id)
                    .join(ActivityType)
                    .where(ActivityType.key.in_(vals), ActivityPreference.opted_in.is_(True))
                )
            )
    sub = q.subquery()
    total = session.scalar(select(func.count()).select_from(sub))
    for col in (AdvocateProfile.industry_id, AdvocateProfile.size_band_id, AdvocateProfile.country_code):
        session.execute(select(col, func.count()).join(sub, sub.c.id == AdvocateProfile.user_id).group_by(col)).all()
    top = session.scalars(q.order_by(AdvocateProfile.confirmed_at.desc()).limit(20)).all()
    return total, top


def cold(dbfile: Path, index: Path, warm: bool, runs: int) -> dict:
    """Fresh processes (``bench.cold``): the first search of each, and 40 distinct queries run once."""
    firsts, times, by_class, warm_ms = [], [], defaultdict(list), []
    root = Path(__file__).resolve().parent.parent
    for _ in range(runs):
        cmd = [sys.executable, "-m", "bench.cold", str(dbfile), str(index)] + (["--warm"] if warm else [])
        done = subprocess.run(
            cmd, cwd=root, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}
        )
        out = json.loads(done.stdout.strip().splitlines()[-1])
        qs = out["queries"]
        firsts.append(qs[0][2])
        for cls, _, ms in qs[1:]:
            times.append(ms)
            by_class[cls].append(ms)
        if out["warm_ms"] is not None:
            warm_ms.append(out["warm_ms"])
    return {
        "first": statistics.median(firsts),
        "all": (statistics.median(times), pct(times, 95)),
        "classes": {c: (statistics.median(v), pct(v, 95)) for c, v in by_class.items()},
        "warm_ms": statistics.median(warm_ms) if warm_ms else None,
    }


def run_size(n: int, runs: int, procs: int, workdir: Path, cold_runs: int = 2) -> dict:
    dbfile = workdir / f"bench-{n}.db"
    dbfile.unlink(missing_ok=True)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{dbfile}",
            "SEARCH_INDEX_DIR": str(workdir / f"index-{n}"),
            "SECRET_KEY": "bench",
            "MAIL_SUPPRESS_SEND": True,
            "OUTBOX_DELIVERY": "worker",
        }
    )
    out = {"n": n}
    with app.app_context():
        upgrade()
        lists.ensure_defaults(db.session)
        db.session.commit()
        t = time.perf_counter()
        generate(db.session, n)
        discard_pending(db.session)  # the rebuild below reads everything
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

        # The former worst queries (the slowest before their work was bounded): first run, then warm.
        out["worst"] = {}
        for q in WORST_QUERIES:
            req = querying.AdvocateSearch(q=q)
            t = time.perf_counter()
            res = querying.search_advocates(db.session, req)
            first = (time.perf_counter() - t) * 1000
            again = []
            for _ in range(3):
                t = time.perf_counter()
                querying.search_advocates(db.session, req)
                again.append((time.perf_counter() - t) * 1000)
            out["worst"][q] = (first, statistics.median(again), res.total, len(res.notes))
            db.session.rollback()
        print(f"  warm queries p50/p95 {out['whoosh_all'][0]:.1f} / {out['whoosh_all'][1]:.1f} ms", flush=True)

        # Cold: fresh processes against the same database and index (before the updates below change it).
        index_dir = Path(app.config["SEARCH_INDEX_DIR"])
        out["cold"] = cold(dbfile, index_dir, warm=False, runs=cold_runs)
        out["cold_warmed"] = cold(dbfile, index_dir, warm=True, runs=cold_runs)
        print(
            f"  cold: first search {out['cold']['first']:.0f} ms, distinct queries "
            f"{out['cold']['all'][0]:.1f} / {out['cold']['all'][1]:.1f} ms; after the warm-up "
            f"({out['cold_warmed']['warm_ms']:.0f} ms, in the background): first "
            f"{out['cold_warmed']['first']:.0f} ms, {out['cold_warmed']['all'][0]:.1f} / "
            f"{out['cold_warmed']['all'][1]:.1f} ms",
            flush=True,
        )

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
            r = querying.search_advocates(
                db.session, querying.AdvocateSearch(q=f"benchmarktoken{i}", include_unavailable=True)
            )
            upd_search.append((time.perf_counter() - t) * 1000)
            assert r.total == 1, (i, r.total)
        out["update_ms"] = (statistics.median(upd), pct(upd, 95))
        out["merges"] = (len(merges), statistics.median(merges) if merges else 0.0)
        out["first_search_after_update_ms"] = (statistics.median(upd_search), pct(upd_search, 95))
        out["index"] = str(current_dir().resolve())

        wait_for_merges()
        t = time.perf_counter()
        problems = check(db.session)
        out["check_s"] = (time.perf_counter() - t, len(problems))
        db.session.rollback()
        t = time.perf_counter()
        optimize(db.engine)
        out["optimize_s"] = time.perf_counter() - t
        print(
            f"  check {out['check_s'][0]:.1f} s ({out['check_s'][1]} problems), optimize {out['optimize_s']:.1f} s",
            flush=True,
        )
        querying.forget_searchers()
        db.engine.dispose()
    return out


def report(results: list[dict]) -> str:
    classes = list(dict.fromkeys(c for r in results for c in r["whoosh"]))
    lines = [
        "# Search benchmark",
        "",
        f"Run on {date.today().isoformat()}; milliseconds p50 / p95 per query class. "
        "Warm: each of 20 queries run once, then timed; cold: fresh processes, 40 other queries each run "
        "once (every term and facet value met for the first time), without and with the start-up warm-up "
        "that a web worker runs in the background; the first search of a fresh process on its own. The "
        "Whoosh columns are the full search path (parse, facet counts for 8 facets, top 20, the page's rows "
        "and snippets from the database).",
        "",
    ]
    for r in results:
        c, cw = r["cold"], r["cold_warmed"]
        lines += [
            f"## {r['n']:,} advocates",
            "",
            f"- full rebuild: **{r['rebuild_s']:.1f} s** ({r['docs_per_s']:,.0f} documents/s)",
            f"- incremental update (write + commit): **{r['update_ms'][0]:.1f} / {r['update_ms'][1]:.1f} ms** "
            f"p50/p95; first search after it: {r['first_search_after_update_ms'][0]:.1f} / "
            f"{r['first_search_after_update_ms'][1]:.1f} ms; {r['merges'][0]} background merge(s) of the small "
            f"segments during the 25 updates, median {r['merges'][1]:.0f} ms each (off the request path)",
            f"- warm queries: Whoosh **{r['whoosh_all'][0]:.1f} / {r['whoosh_all'][1]:.1f} ms**, "
            f"SQL LIKE {r['like_all'][0]:.1f} / {r['like_all'][1]:.1f} ms",
            f"- cold queries, no warm-up: **{c['all'][0]:.1f} / {c['all'][1]:.1f} ms**; first search of a "
            f"process **{c['first']:.0f} ms**",
            f"- cold queries after the warm-up ({cw['warm_ms']:.0f} ms in a background thread at start): "
            f"**{cw['all'][0]:.1f} / {cw['all'][1]:.1f} ms**; first search **{cw['first']:.0f} ms**",
            f"- flask search check (ids, content digests, facets): {r['check_s'][0]:.1f} s; "
            f"flask search optimize (beside the live index, no writer lock held): {r['optimize_s']:.1f} s",
            "",
            "| query class | warm p50 / p95 | cold p50 / p95 | cold after warm-up | SQL LIKE p50 / p95 |",
            "|---|---|---|---|---|",
        ]
        for cl in list(dict.fromkeys(classes + list(c["classes"]))):
            w, lk = r["whoosh"].get(cl), r["like"].get(cl)
            cc, ccw = c["classes"].get(cl), cw["classes"].get(cl)

            def f(x):
                return f"{x[0]:.1f} / {x[1]:.1f}" if x else "—"

            lines.append(f"| {cl} | {f(w)} | {f(cc)} | {f(ccw)} | {f(lk)} |")
        lines += ["", "| former worst query | first run ms | warm ms | matches | notes |", "|---|---|---|---|---|"]
        for q, (first, again, total, notes) in r["worst"].items():
            lines.append(f"| `{q}` | {first:.1f} | {again:.1f} | {total:,} | {notes} |")
        lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,50000,100000")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--cold-runs", type=int, default=2, help="fresh processes per cold measurement")
    admin = ap.add_argument_group("admin pages (--admin)")
    admin.add_argument("--admin", action="store_true", help="benchmark the admin pages, not search")
    admin.add_argument("--reports", action="store_true", help="the program report and coverage (bench/reports.py)")
    admin.add_argument("--advocates", type=int, default=50_000)
    admin.add_argument("--participations", type=int, default=500_000)
    admin.add_argument("--opportunities", type=int, default=3_000)
    admin.add_argument("--database-url", help="PostgreSQL too: a new or empty database (created if missing)")
    admin.add_argument("--db-file", help="SQLite file to generate once and reuse while it exists")
    admin.add_argument(
        "--only",
        action="append",
        default=[],
        help="measure only the pages whose label or URL contains this text (repeatable; e.g. --only advocates)",
    )
    args = ap.parse_args()
    if args.reports:
        reports_bench.main(args)
        return
    if args.admin:
        admin_bench.main(args)
        return
    RESULTS.mkdir(exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            print(f"== {n:,} advocates", flush=True)
            results.append(run_size(n, args.runs, args.procs, Path(tmp), args.cold_runs))
            (RESULTS / "latest.md").write_text(report(results))  # what is done so far
    text_out = report(results)
    (RESULTS / "latest.md").write_text(text_out)
    print()
    print(text_out)


if __name__ == "__main__":
    main()
