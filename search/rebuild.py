"""Full rebuild beside the live index, an atomic swap, and drift checks."""
from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.orm import Session
from whoosh import index as windex

from portal.models import Role, Status, User
from search import documents
from search.indexing import (ADVOCATES, KEYS, OPPORTUNITIES, apply_pending, create_generation, open_index,
                             rebuilding_marker, root, swap_in)

CHUNK = 1000


@contextmanager
def _rebuild_lock():
    root().mkdir(parents=True, exist_ok=True)
    with open(root() / "rebuild.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError("Another rebuild is running.") from None
        yield


def rebuild(engine, progress: Callable[[int], None] | None = None, procs: int | None = None) -> dict[str, int]:
    """Build a new generation from the database, swap it in, then apply what changed meanwhile."""
    procs = procs or min(2, os.cpu_count() or 1)
    counts = {}
    with _rebuild_lock():
        marker = rebuilding_marker()
        marker.touch()
        try:
            gen = create_generation()
            with Session(engine) as session:
                ids = documents.all_advocate_ids(session)
                ix = windex.open_dir(str(gen / ADVOCATES))
                # Not compound: a compound segment's files are read through an in-memory copy, which
                # made every later single-document update re-read the large segment (~90 ms at 50,000).
                kwargs = {"limitmb": 512, "compound": False}
                if procs > 1:
                    kwargs.update(procs=procs, multisegment=True)
                w = ix.writer(**kwargs)
                try:
                    for i in range(0, len(ids), CHUNK):
                        chunk = ids[i:i + CHUNK]
                        docs, _ = documents.advocate_docs(session, chunk)
                        for doc in docs:
                            w.add_document(**doc)
                        session.expunge_all()
                        if progress:
                            progress(len(chunk))
                    w.commit()
                except BaseException:
                    w.cancel()
                    raise
                counts[ADVOCATES] = len(ids)
                oids = documents.all_opportunity_ids(session)
                ix = windex.open_dir(str(gen / OPPORTUNITIES))
                with ix.writer(compound=False) as ow:
                    docs, _ = documents.opportunity_docs(session, oids)
                    for doc in docs:
                        ow.add_document(**doc)
                counts[OPPORTUNITIES] = len(docs)
            swap_in(gen)
        finally:
            marker.unlink(missing_ok=True)
        apply_pending(engine)
    return counts


def check(session) -> list[str]:
    """Differences between the index and the database (empty: no drift)."""
    problems = []
    ix = open_index(ADVOCATES)
    with ix.searcher() as s:
        indexed = {int(f["uid"]) for f in s.all_stored_fields()}
    active = set(session.scalars(select(User.id).where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE)))
    missing, extra = active - indexed, indexed - active
    if missing:
        problems.append(f"{len(missing)} active advocate(s) missing from the index, e.g. {sorted(missing)[:5]}")
    if extra:
        problems.append(f"{len(extra)} document(s) in the index for advocates who are not active, e.g. {sorted(extra)[:5]}")
    ix = open_index(OPPORTUNITIES)
    with ix.searcher() as s:
        indexed_o = {int(f[KEYS[OPPORTUNITIES]]) for f in s.all_stored_fields()}
    expected_o = set(documents.all_opportunity_ids(session))
    if indexed_o != expected_o:
        problems.append(f"opportunities: {len(expected_o - indexed_o)} missing, {len(indexed_o - expected_o)} extra")
    return problems


def stale_fatigue(session) -> list[int]:
    """Advocates whose fatigue status in the index is no longer what the rules say (time moves on)."""
    from portal.services import fatigue

    ix = open_index(ADVOCATES)
    with ix.searcher() as s:
        if not s.doc_count_all():  # no segment yet: Whoosh's empty reader has no columns
            return []
        indexed = {}
        for docnum in s.reader().all_doc_ids():
            f = s.stored_fields(docnum)
            indexed[int(f["uid"])] = docnum
        col = s.reader().column_reader("facets")
        current = {uid: (col[d] or "").split(documents.SEP)[6] if col[d] else "" for uid, d in indexed.items()}
    ids = list(current)
    changed = []
    for i in range(0, len(ids), 1000):
        chunk = ids[i:i + 1000]
        for uid, st in fatigue.statuses(session, chunk).items():
            if st.key != current[uid]:
                changed.append(uid)
    return changed
