"""The CSV import at size: upload (decode, header, mapping), the preview's check of every row, and the
import itself (invitations in batches, their emails queued for the outbox worker).

    python -m bench.imports [--rows 10000] [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/NAME]

On SQLite it works in a temporary file; with --database-url, in that database, which must be empty (its
tables are made by the migrations and left there). The target: 10,000 rows in under a minute.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from flask_migrate import upgrade

from portal import create_app
from portal.extensions import db
from portal.models import ImportJob
from portal.services import imports, lists


def make_csv(rows: int) -> bytes:
    lines = ["First name;Last name;Email;Company;Job title;Industry;Country;Products"]
    for i in range(rows):
        lines.append(
            f"Person;Number {i};person{i}@example.com;Company {i % 397};Head of {i % 13};Healthcare;"
            f"{'DE' if i % 2 else 'France'};Data Platform, Security Suite"
        )
    lines += [f"Repeat;{i};person{i}@example.com;Again;;;;" for i in range(0, rows, 1000)]
    return ("\n".join(lines) + "\n").encode("utf-8-sig")


def run(uri: str, rows: int, workdir: Path) -> dict[str, float]:
    app = create_app(
        {
            "SECRET_KEY": "bench",
            "SQLALCHEMY_DATABASE_URI": uri,
            "PUBLIC_BASE_URL": "http://localhost",
            "RATELIMIT_SINGLE_PROCESS": True,
            "OUTBOX_DELIVERY": "worker",
            "SEARCH_INDEX_DIR": str(workdir / "index"),
            "SEARCH_WARM": False,
        }
    )
    data = make_csv(rows)
    with app.app_context():
        upgrade()
        lists.ensure_defaults(db.session)
        db.session.commit()
        t0 = time.perf_counter()
        job = imports.upload(db.session, "bench.csv", data, None)
        imports.set_mapping(db.session, job, job.mapping, None)
        job_id = job.id
        db.session.commit()
        t1 = time.perf_counter()
        imports.check(db.session, db.session.get(ImportJob, job_id))
        t2 = time.perf_counter()
        imports.start(db.session, db.session.get(ImportJob, job_id), None)
        db.session.commit()
        t3 = time.perf_counter()
        done = imports.run(db.session, job_id)
        t4 = time.perf_counter()
        assert done.invited == rows, (done.invited, rows)
        db.session.remove()
        db.engine.dispose()
    return {"upload": t1 - t0, "preview check": t2 - t1, "start": t3 - t2, "import": t4 - t3, "MB": len(data) / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--database-url", help="an empty PostgreSQL database to run in as well")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        backends = [("SQLite", f"sqlite:///{work / 'bench-import.db'}")]
        if args.database_url:
            backends.append(("PostgreSQL", args.database_url))
        for name, uri in backends:
            r = run(uri, args.rows, work)
            print(
                f"{name}: {args.rows:,} rows ({r['MB']:.1f} MB): upload {r['upload']:.1f} s, preview check "
                f"{r['preview check']:.1f} s, start {r['start']:.1f} s, import {r['import']:.1f} s"
            )


if __name__ == "__main__":
    main()
