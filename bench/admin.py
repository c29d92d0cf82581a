"""The admin pages at a size: ``python -m bench --admin`` (``make bench-admin``; ``make bench`` runs it after
the search benchmark).

    python -m bench --admin [--advocates 50000] [--participations 500000] [--opportunities 3000]
                            [--runs 10] [--database-url postgresql+psycopg://...] [--db-file PATH]
                            [--only TEXT ...]

Generates the program (bench.generate.generate_program: advocates, participations on a few thousand
opportunities, advisory boards, the points ledger, redemptions, audit events, registrations waiting),
rebuilds the search index, signs in an admin with the Flask test client and requests every GET route under
/admin/ from the app's URL map (URL arguments filled with real ids: the largest opportunity, a board, a
reward, an activity type, the advocate with the longest history; an argument it cannot fill stops the run),
plus the opportunity page's later pages and filtered views and a few other filtered lists. Each URL is
requested once to warm up, then timed ``--runs`` times in process; the SQL statements of each request are
counted (a ``before_cursor_execute`` listener). A page whose p50 is over 300 ms is flagged. ``--only TEXT``
measures only the pages whose label or URL contains TEXT (every URL is still built, so a route the bench
cannot fill still stops the run).

SQLite (a file in a temporary directory, or ``--db-file``: generated once, reused while it exists, with its
search index beside it: ``PATH.index/``, rebuilt only when missing) always;
PostgreSQL too when ``--database-url`` names a database: it is created if missing and must be empty (the
run refuses a database that has tables), then VACUUM ANALYZE after the load, as autovacuum would.
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from flask import url_for
from flask_migrate import upgrade
from sqlalchemy import create_engine, event, inspect, select, text
from sqlalchemy.engine import make_url

from bench.generate import BENCH_ADMIN_EMAIL, BENCH_ADMIN_PASSWORD, generate_program
from portal import create_app
from portal.database import refresh_statistics
from portal.extensions import db
from portal.models import ImportJob, SegmentTarget
from portal.services import coverage, imports, lists
from search import querying
from search.indexing import discard_pending
from search.rebuild import rebuild

BUDGET_MS = 300
RESULTS = Path(__file__).resolve().parent / "results"
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def pct(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def admin_rules(app) -> list:
    return sorted(
        (r for r in app.url_map.iter_rules() if r.rule.startswith("/admin/") and "GET" in r.methods),
        key=lambda r: r.rule,
    )


def _one_of_each(app) -> dict[str, int]:
    """An import job (its mapping and preview pages: a small file) and a coverage target (its edit page),
    made once in the bench's database if it has none."""
    with app.app_context():
        job_id = db.session.scalar(select(ImportJob.id).limit(1))
        if job_id is None:
            data = b"Name,Email\nAda Bench,ada.bench@example.com\nBad Row,not-an-address\n"
            job_id = imports.upload(db.session, "bench.csv", data, None).id
        target_id = db.session.scalar(select(SegmentTarget.id).limit(1))
        if target_id is None:
            target_id = coverage.create_target(db.session, coverage.TargetInput("Bench target", wanted=5), None).id
        db.session.commit()
        return {"job_id": job_id, "target_id": target_id}


def urls(app, ids: dict) -> list[tuple[str, str]]:
    """(label, url) for every GET route under /admin/, then the extra views. An argument not known here
    stops the run: say in this function how to fill it."""
    values = {
        "opp_id": ids["largest_opp"],
        "user_id": ids["focus_advocate"],  # also /admin/advocates/<user_id>/edit
        "reward_id": ids["reward"],
        "type_id": ids["activity_type"],
        "list_kind": "regions",  # the lists' pages: regions also list every country
        "tag_kind": "topics",
        **_one_of_each(app),
    }
    out = []
    with app.test_request_context():
        for rule in admin_rules(app):
            missing = set(rule.arguments) - set(values)
            if missing:
                raise SystemExit(
                    f"bench --admin: no value for {sorted(missing)} in {rule.rule}; add it in bench/admin.py"
                )
            out.append(
                (
                    re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"<\1>", rule.rule),
                    url_for(rule.endpoint, **{k: values[k] for k in rule.arguments}),
                )
            )
        opp = url_for("admin.opportunity_detail", opp_id=ids["largest_opp"])
        last = -(-ids["largest_opp_participants"] // 50)
        out += [
            ("opportunity, page 2", f"{opp}?page=2"),
            ("opportunity, middle page", f"{opp}?page={max(last // 2, 1)}"),
            ("opportunity, last page", f"{opp}?page={last}"),
            ("opportunity, requested", f"{opp}?status=requested"),
            ("opportunity, requested, page 20", f"{opp}?status=requested&page=20"),
            ("opportunity, completed", f"{opp}?status=completed"),
            ("a board's opportunity page", url_for("admin.opportunity_detail", opp_id=ids["board"])),
            ("opportunities, open", url_for("admin.opportunities_list", status="open")),
            ("advocates, page 500", url_for("admin.advocates", page=500)),
            ("advocates, at limit", url_for("admin.advocates", fatigue="at_limit")),
            ("advocates, near limit", url_for("admin.advocates", fatigue="near_limit")),
            ("advocates, available", url_for("admin.advocates", fatigue="available")),
            ("advocates, paused or in blackout", url_for("admin.advocates", fatigue="unavailable")),
            ("advocates, under-used", url_for("admin.advocates", fatigue="under_used")),
            ("advocates, under-used, page 100", url_for("admin.advocates", fatigue="under_used", page=100)),
            ("advocates, at limit, newest first", url_for("admin.advocates", fatigue="at_limit", sort="newest")),
            ("advocates, suspended, at limit", url_for("admin.advocates", fatigue="at_limit", status="suspended")),
            ("advocates, level Member", url_for("admin.advocates", level="Member")),
            ("advocates, level Silver", url_for("admin.advocates", level="Silver")),
            ("advocates, level Gold, page 2", url_for("admin.advocates", level="Gold", page=2)),
            ("advocates, level Bronze, at limit", url_for("admin.advocates", level="Bronze", fatigue="at_limit")),
            ("redemptions, all", url_for("admin.redemptions_queue", status="all")),
            ("redemptions, fulfilled", url_for("admin.redemptions_queue", status="fulfilled")),
        ]
    return out


def sign_in(app):
    client = app.test_client()
    page = client.get("/auth/login").get_data(as_text=True)
    m = CSRF_RE.search(page)
    if not m:
        raise SystemExit("bench --admin: no CSRF token on /auth/login")
    resp = client.post(
        "/auth/login",
        data={"csrf_token": m.group(1) or m.group(2), "email": BENCH_ADMIN_EMAIL, "password": BENCH_ADMIN_PASSWORD},
    )
    if resp.status_code != 302:
        raise SystemExit(f"bench --admin: the admin could not sign in ({resp.status_code})")
    return client


def measure(app, ids: dict, runs: int, only: list[str] = ()) -> list[dict]:
    client = sign_in(app)
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    rows = []
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for label, url in urls(app, ids):
            if only and not any(o in label or o in url for o in only):
                continue
            t = time.perf_counter()
            resp = client.get(url)  # warm-up
            if resp.status_code != 200:
                raise SystemExit(f"bench --admin: {url} answered {resp.status_code}")
            slow = time.perf_counter() - t > 2  # a page of seconds: 3 timed runs say enough
            times, counts = [], []
            for _ in range(min(runs, 3) if slow else runs):
                statements.clear()
                t = time.perf_counter()
                resp = client.get(url)
                times.append((time.perf_counter() - t) * 1000)
                counts.append(len(statements))
                assert resp.status_code == 200, (url, resp.status_code)
            row = {
                "label": label,
                "url": url,
                "p50": statistics.median(times),
                "p95": pct(times, 95),
                "queries": max(counts),
                "queries_vary": min(counts) != max(counts),
                "runs": len(times),
                "bytes": len(resp.get_data()),
            }
            rows.append(row)
            flag = "  OVER 300 ms" if row["p50"] > BUDGET_MS else ""
            print(
                f"  {url:<60} {row['p50']:7.1f} / {row['p95']:7.1f} ms  {row['queries']:3d} queries{flag}", flush=True
            )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return rows


def _config(uri: str, workdir: Path, name: str, index_dir: Path | None = None) -> dict:
    return {
        "SQLALCHEMY_DATABASE_URI": uri,
        "SEARCH_INDEX_DIR": str(index_dir or workdir / f"index-{name}"),
        "SECRET_KEY": "bench",
        "MAIL_SUPPRESS_SEND": True,
        "OUTBOX_SEND_AFTER_REQUEST": False,
        "SEARCH_WARM": False,
    }


def _prepare_postgres(url: str) -> None:
    """Create the database if it is missing; refuse one that already has tables."""
    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": u.database}):
            conn.execute(text(f'CREATE DATABASE "{u.database}"'))
    admin.dispose()
    engine = create_engine(u)
    tables = inspect(engine).get_table_names()
    engine.dispose()
    if tables:
        raise SystemExit(f"bench --admin: {u.database} already has tables; give a new or empty database")


def run_backend(name: str, uri: str, workdir: Path, args, reuse_meta: Path | None = None) -> dict:
    index_dir = reuse_meta.with_suffix(".index") if reuse_meta is not None else None
    app = create_app(_config(uri, workdir, name, index_dir))
    out = {"backend": name}
    with app.app_context():
        upgrade()  # a reused database gets the migrations added since
        if reuse_meta is not None and reuse_meta.exists():
            ids = json.loads(reuse_meta.read_text())
            out["generate_s"] = ids.pop("generate_s", None)
            out["reused"] = True
            print(f"  reusing the data generated before ({reuse_meta})", flush=True)
        else:
            lists.ensure_defaults(db.session)
            db.session.commit()
            t = time.perf_counter()
            ids = generate_program(
                db.session, args.advocates, participations=args.participations, opportunities=args.opportunities
            )
            discard_pending(db.session)
            db.session.commit()
            out["generate_s"] = time.perf_counter() - t
            print(f"  generated in {out['generate_s']:.1f} s: {ids}", flush=True)
            if db.engine.dialect.name == "postgresql":
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE"))
            refresh_statistics(db.engine)  # as the daily `flask maintenance analyze` leaves a database
            if reuse_meta is not None:
                reuse_meta.write_text(json.dumps({**ids, "generate_s": out["generate_s"]}))
        if out.get("reused") and (index_dir / "current").exists():
            out["rebuild_s"] = 0.0
            print(f"  reusing the search index built before ({index_dir})", flush=True)
        else:
            t = time.perf_counter()
            rebuild(db.engine, procs=args.procs)
            out["rebuild_s"] = time.perf_counter() - t
            print(f"  search index rebuilt in {out['rebuild_s']:.1f} s", flush=True)
    out["ids"] = ids
    out["rows"] = measure(app, ids, args.runs, getattr(args, "only", []))
    with app.app_context():
        querying.forget_searchers()
        db.engine.dispose()
    return out


def report(results: list[dict], runs: int) -> str:
    lines = [
        "# Admin pages benchmark",
        "",
        f"Run on {date.today().isoformat()}. Every GET route under /admin/ (from the URL map) and the extra views, "
        f"requested in process with the Flask test client by a signed-in admin: one warm-up, then {runs} timed; "
        f"milliseconds p50 / p95, and the SQL statements of one request. Over {BUDGET_MS} ms at p50: **bold**.",
        "",
    ]
    for r in results:
        ids = r["ids"]
        over = [row for row in r["rows"] if row["p50"] > BUDGET_MS]
        gen = f"generated in {r['generate_s']:.0f} s" if r.get("generate_s") else "generated before"
        lines += [
            f"## {r['backend']}",
            "",
            f"{ids['advocates']:,} advocates, {ids['participations']:,} participations on {ids['opportunities']:,} "
            f"opportunities (the largest, #{ids['largest_opp']}: {ids['largest_opp_participants']:,} participants; "
            f"board #{ids['board']}: {ids['board_members']} members), {ids['points_entries']:,} points entries, "
            f"{ids['redemptions']:,} redemptions ({ids['redemptions_waiting']:,} waiting), {ids['audit_events']:,} "
            f"audit events, {ids['registrations_waiting']:,} registrations waiting; advocate #{ids['focus_advocate']} "
            f"has {ids['focus_participations']} participations ({gen}; search index rebuilt in "
            f"{r['rebuild_s']:.0f} s).",
            "",
            f"Pages over {BUDGET_MS} ms (p50): " + (", ".join(row["url"] for row in over) if over else "none") + ".",
            "",
            "| page | URL | p50 / p95 ms | SQL statements |",
            "|---|---|---|---|",
        ]
        for row in r["rows"]:
            ms = f"{row['p50']:.1f} / {row['p95']:.1f}"
            if row["p50"] > BUDGET_MS:
                ms = f"**{ms}**"
            if row["runs"] != runs:
                ms += f" ({row['runs']} runs)"
            q = f"{row['queries']}" + (" (varied)" if row["queries_vary"] else "")
            lines.append(f"| {row['label']} | `{row['url']}` | {ms} | {q} |")
        lines.append("")
    return "\n".join(lines)


def main(args) -> None:
    RESULTS.mkdir(exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="portal-bench-admin-") as tmp:
        workdir = Path(tmp)
        if args.db_file:
            dbfile = Path(args.db_file).resolve()
            meta = dbfile.with_suffix(".json")
            if dbfile.exists() != meta.exists():
                raise SystemExit(f"bench --admin: {dbfile} and {meta} go together; remove both to generate again")
        else:
            dbfile, meta = workdir / "admin.db", None
        print(f"== admin pages, SQLite ({args.advocates:,} advocates, {args.participations:,} participations)")
        results.append(run_backend("SQLite", f"sqlite:///{dbfile}", workdir, args, meta))
        if args.database_url:
            print(f"== admin pages, PostgreSQL ({make_url(args.database_url).database})")
            _prepare_postgres(args.database_url)
            results.append(run_backend("PostgreSQL", args.database_url, workdir, args))
    text_out = report(results, args.runs)
    (RESULTS / "admin-latest.md").write_text(text_out)
    print()
    print(text_out)
