"""The program report and the coverage page at a size (issue 14): ``python -m bench --reports``.

    python -m bench --reports [--advocates 50000] [--participations 500000] [--opportunities 3000]
                              [--runs 10] [--database-url postgresql+psycopg://...] [--db-file PATH]

Generates the program as ``bench --admin`` does (bench.generate.generate_program; ``--db-file`` reuses a
SQLite file generated before, with its .json beside it), adds 20 segment targets (one to four dimensions
each) and a value per activity type (changed once, so the history is read), then signs in the admin and
requests the dashboard (this quarter, this month, this year, the last 365 days as custom dates), the
activity values page and the coverage page: one warm-up, then ``--runs`` timed, p50 / p95 and the SQL
statements of one request. Results in bench/results/reports-latest.md.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url

from bench.admin import BUDGET_MS, _config, _prepare_postgres, pct, sign_in
from bench.generate import generate_program
from portal import create_app
from portal.database import refresh_statistics
from portal.extensions import db
from portal.models import ActivityType, ActivityValue, Country, Industry, Product, Region, SegmentTarget, SizeBand
from portal.models import User as UserModel
from portal.services import coverage, lists, reporting
from search.indexing import discard_pending
from search.rebuild import rebuild

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = 20


def add_targets(session) -> int:
    """20 targets over the lists (one to four dimensions), and activity values with a change in their history."""
    if session.scalar(select(SegmentTarget.id).limit(1)) is None:
        industries = list(session.scalars(select(Industry.id).order_by(Industry.id)))
        regions = list(session.scalars(select(Region.id).order_by(Region.id)))
        countries = list(session.scalars(select(Country.code).where(Country.code.in_(["US", "DE", "FR", "GB", "JP"]))))
        products = list(session.scalars(select(Product.id).order_by(Product.id)))
        sizes = list(session.scalars(select(SizeBand.id).order_by(SizeBand.id)))
        types = list(session.scalars(select(ActivityType.id).order_by(ActivityType.id)))
        admin_id = session.scalar(select(UserModel.id).where(UserModel.role == "admin").order_by(UserModel.id))
        for i in range(TARGETS):
            dims = {"industry_id": industries[i % len(industries)]}
            if i % 2:
                dims["activity_type_id"] = types[i % len(types)]
            if i % 3 == 0:
                dims["region_id"] = regions[i % len(regions)]
            elif i % 3 == 1:
                dims["country_code"] = countries[i % len(countries)]
            if i % 4 == 0:
                dims["product_id"] = products[i % len(products)]
            if i % 5 == 0:
                dims["size_band_id"] = sizes[i % len(sizes)]
            if "region_id" in dims and "country_code" in dims:
                dims.pop("country_code")
            coverage.create_target(
                session, coverage.TargetInput(f"Target {i + 1}", wanted=50 + 10 * i, **dims), admin_id
            )
        today = date.today()
        for n, type_id in enumerate(session.scalars(select(ActivityType.id))):
            session.add(
                ActivityValue(
                    activity_type_id=type_id,
                    value=100 + 50 * n,
                    currency="USD",
                    effective_from=today - timedelta(days=400),
                )
            )
            session.add(
                ActivityValue(
                    activity_type_id=type_id,
                    value=150 + 50 * n,
                    currency="USD",
                    effective_from=today - timedelta(days=60),
                )
            )
        session.commit()
    return session.scalar(select(text("count(*)")).select_from(SegmentTarget))


def kept_custom() -> tuple[date, date]:
    """The custom dates the bench keeps as an admin's "Refresh now" would (the 365 days up to yesterday)."""
    yesterday = date.today() - timedelta(days=1)
    return yesterday - timedelta(days=364), yesterday


def urls() -> list[tuple[str, str]]:
    today = date.today()
    year_ago = today - timedelta(days=364)
    start, end = kept_custom()
    return [
        ("dashboard, this quarter (default)", "/admin/reports"),
        ("dashboard, this month", "/admin/reports?period=month"),
        ("dashboard, this year", "/admin/reports?period=year"),
        (
            "dashboard, last quarter",
            f"/admin/reports?period=quarter&on={reporting.period_for('quarter', today).start - timedelta(days=1)}",
        ),
        ("dashboard, 365 days kept (Refresh now)", f"/admin/reports?period=custom&start={start}&end={end}"),
        ("dashboard, last 365 days, computed on view", f"/admin/reports?period=custom&start={year_ago}&end={today}"),
        ("activity values", "/admin/reports/values"),
        ("coverage, 20 targets", "/admin/coverage"),
    ]


def measure(app, runs: int) -> list[dict]:
    client = sign_in(app)
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    rows = []
    try:
        for label, url in urls():
            resp = client.get(url)  # warm-up
            if resp.status_code != 200:
                raise SystemExit(f"bench --reports: {url} answered {resp.status_code}")
            times, counts = [], []
            for _ in range(runs):
                statements.clear()
                t = time.perf_counter()
                resp = client.get(url)
                times.append((time.perf_counter() - t) * 1000)
                counts.append(len(statements))
            row = {"label": label, "url": url, "p50": statistics.median(times), "p95": pct(times, 95)}
            row.update(queries=max(counts), vary=min(counts) != max(counts))
            rows.append(row)
            flag = "  OVER 300 ms" if row["p50"] > BUDGET_MS else ""
            print(
                f"  {label:<36} {row['p50']:7.1f} / {row['p95']:7.1f} ms  {row['queries']:3d} queries{flag}", flush=True
            )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return rows


def run_backend(name: str, uri: str, workdir: Path, args, meta: Path | None) -> dict:
    # The search index the pages read the fatigue statuses from (beside a reused file: PATH.index/).
    index_dir = meta.with_suffix(".index") if meta is not None else None
    app = create_app(_config(uri, workdir, name, index_dir))
    out = {"backend": name}
    with app.app_context():
        upgrade()
        reused = meta is not None and meta.exists()
        if reused:
            ids = json.loads(meta.read_text())
            print(f"  reusing the data generated before ({meta})", flush=True)
        else:
            lists.ensure_defaults(db.session)
            db.session.commit()
            t = time.perf_counter()
            ids = generate_program(
                db.session, args.advocates, participations=args.participations, opportunities=args.opportunities
            )
            discard_pending(db.session)
            db.session.commit()
            ids["generate_s"] = time.perf_counter() - t
            print(f"  generated in {ids['generate_s']:.1f} s", flush=True)
            refresh_statistics(db.engine)  # as the daily `flask maintenance analyze` leaves a database
            if meta is not None:
                meta.write_text(json.dumps(ids))
        if reused and (index_dir / "current").exists():
            print(f"  reusing the search index built before ({index_dir})", flush=True)
        else:
            t = time.perf_counter()
            rebuild(db.engine, procs=args.procs)
            print(f"  search index rebuilt in {time.perf_counter() - t:.1f} s", flush=True)
        out["targets"] = add_targets(db.session)
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        # The figures kept as cron's `flask reports refresh` keeps them (the current and previous month, quarter
        # and year), and one custom period as an admin's "Refresh now" keeps it.
        t = time.perf_counter()
        result = app.test_cli_runner().invoke(args=["reports", "refresh"])
        if result.exit_code != 0:
            raise SystemExit(f"bench --reports: flask reports refresh failed: {result.output}")
        out["refresh_s"] = time.perf_counter() - t
        print(f"  flask reports refresh: {out['refresh_s']:.1f} s", flush=True)
        start, end = kept_custom()
        reporting.keep(db.session, reporting.figures(db.session, reporting.period_for("custom", end, start, end)))
        db.session.commit()
        rows = coverage.coverage(db.session)
        out["covered"] = [(r.name, r.wanted, r.covered, r.demand) for r in rows[:5]]
        out["active"] = reporting.membership(db.session).active
        db.session.rollback()
    out["ids"] = ids
    out["rows"] = measure(app, args.runs)
    with app.app_context():
        db.engine.dispose()
    return out


def report(results: list[dict], runs: int) -> str:
    lines = [
        "# Reports and coverage benchmark (issue 14)",
        "",
        f"Run on {date.today().isoformat()}: the admin's program report, activity values and coverage pages, requested "
        f"in process with the Flask test client by a signed-in admin, one warm-up then {runs} timed; milliseconds "
        f"p50 / p95 and the SQL statements of one request. Budget {BUDGET_MS} ms.",
        "",
    ]
    for r in results:
        ids = r["ids"]
        lines += [
            f"## {r['backend']}",
            "",
            f"{ids['advocates']:,} advocates ({r['active']:,} active), {ids['participations']:,} participations, "
            f"{ids['opportunities']:,} opportunities, {ids['points_entries']:,} points entries; {r['targets']} targets "
            f"(largest gaps first: {r['covered']}).",
            "",
            f"`flask reports refresh` (cron, every 15 minutes: the current and previous month, quarter and year "
            f"computed and kept) took {r['refresh_s']:.1f} s; the pages below read those kept figures, except the "
            "one computed on view (custom dates nobody kept).",
            "",
            "| page | URL | p50 / p95 ms | SQL statements |",
            "|---|---|---|---|",
        ]
        for row in r["rows"]:
            ms = f"{row['p50']:.1f} / {row['p95']:.1f}"
            if row["p50"] > BUDGET_MS:
                ms = f"**{ms}**"
            q = f"{row['queries']}" + (" (varied)" if row["vary"] else "")
            lines.append(f"| {row['label']} | `{row['url']}` | {ms} | {q} |")
        lines.append("")
    return "\n".join(lines)


def main(args) -> None:
    RESULTS.mkdir(exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="portal-bench-reports-") as tmp:
        workdir = Path(tmp)
        if args.db_file:
            dbfile = Path(args.db_file).resolve()
            meta = dbfile.with_suffix(".json")
        else:
            dbfile, meta = workdir / "reports.db", None
        print(f"== reports, SQLite ({args.advocates:,} advocates, {args.participations:,} participations)")
        results.append(run_backend("SQLite", f"sqlite:///{dbfile}", workdir, args, meta))
        if args.database_url:
            print(f"== reports, PostgreSQL ({make_url(args.database_url).database})")
            _prepare_postgres(args.database_url)
            results.append(run_backend("PostgreSQL", args.database_url, workdir, args, None))
    text_out = report(results, args.runs)
    (RESULTS / "reports-latest.md").write_text(text_out)
    print()
    print(text_out)
