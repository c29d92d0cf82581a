"""One cold measurement in this (fresh) process: ``python -m bench.cold DB INDEX [--warm]``.

Prints JSON: with ``--warm``, the time search.querying.warm() took first (what a worker does in the
background at start); then the first search of the process and each of bench.queries.COLD_QUERIES run
once, through the same code the search page runs."""

from __future__ import annotations

import argparse
import json
import time

from bench.queries import COLD_QUERIES
from portal import create_app
from portal.extensions import db
from search import querying


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("index")
    ap.add_argument("--warm", action="store_true")
    args = ap.parse_args()
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{args.db}",
            "SEARCH_INDEX_DIR": args.index,
            "SECRET_KEY": "bench",
            "MAIL_SUPPRESS_SEND": True,
            "OUTBOX_DELIVERY": "worker",
        }
    )
    out = {"warm_ms": None, "queries": []}
    with app.app_context():
        if args.warm:
            t = time.perf_counter()
            out["warm_steps"] = querying.warm()
            out["warm_ms"] = (time.perf_counter() - t) * 1000
        for cls, q, filters in COLD_QUERIES:
            filters = dict(filters)
            sort = (filters.pop("_sort", None) or ["relevance"])[0]
            req = querying.AdvocateSearch(q=q, filters=filters, sort=sort)
            t = time.perf_counter()
            querying.search_advocates(db.session, req)
            out["queries"].append((cls, q, (time.perf_counter() - t) * 1000))
            db.session.rollback()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
