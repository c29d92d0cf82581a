"""Full rebuild beside the live index, an atomic swap, and drift checks."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from whoosh import index as windex

from portal.models import Role, Status, User
from portal.services import fatigue
from search import documents
from search.indexing import (
    ADVOCATES,
    KEYS,
    OPPORTUNITIES,
    SCHEMAS,
    WRITER_PATIENCE,
    apply_all_pending,
    create_generation,
    current_dir,
    new_generation_path,
    open_index,
    open_searcher,
    rebuild_lock,
    rebuilding,
    root,
    swap_in,
)

log = logging.getLogger(__name__)
CHUNK = 1000


def rebuild(engine, progress: Callable[[int], None] | None = None, procs: int | None = None) -> dict[str, int]:
    """Build a new generation from the database, swap it in, then apply what changed meanwhile."""
    procs = procs or min(2, os.cpu_count() or 1)
    counts = {}
    with rebuild_lock():
        with rebuilding():
            gen = create_generation()
            with Session(engine) as session:
                ids = documents.all_advocate_ids(session)
                ix = windex.open_dir(str(gen / ADVOCATES))
                # Not compound: a compound segment's files are read through an in-memory copy, which
                # made every later single-document update re-read the large segment.
                kwargs = {"limitmb": 512, "compound": False}
                if procs > 1:
                    kwargs.update(procs=procs, multisegment=True)
                w = ix.writer(**kwargs)
                try:
                    for i in range(0, len(ids), CHUNK):
                        chunk = ids[i : i + CHUNK]
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
        apply_all_pending(engine)  # what changed while it was built (more than one batch, maybe)
    return counts


def optimize(engine, progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Merge each index into one segment without holding its writer lock meanwhile.

    Merging in place ('commit(optimize=True)') held the lock for the whole merge, and a profile saved
    meanwhile waited for it. Here, under the rebuild lock and marker (writers keep their changes
    queued for the new generation, as during a rebuild), the live index's files
    are hard-linked aside while its writer lock is held for a moment (so they are one consistent
    commit, and a background merge deleting them from the live index cannot pull them away), merged
    from there into a new generation beside the live one, and swapped in; then what changed meanwhile
    is applied. Searches and writes go on against the live generation throughout."""
    counts = {}
    with rebuild_lock():
        with rebuilding():
            live = Path(os.path.realpath(current_dir()))
            gen = new_generation_path()
            for kind in SCHEMAS:
                if progress:
                    progress(kind)
                staging = root() / f".optimize-{os.getpid()}-{kind}"
                shutil.rmtree(staging, ignore_errors=True)
                try:
                    _link_snapshot(kind, live / kind, staging)
                    src = windex.open_dir(str(staging))
                    (gen / kind).mkdir(parents=True)
                    dst = windex.create_in(str(gen / kind), src.schema)  # the index's own schema
                    with src.reader() as reader:
                        w = dst.writer(compound=False, limitmb=256)
                        try:
                            for leaf, _ in reader.leaf_readers():
                                w.add_reader(leaf)
                            w.commit(merge=False)
                        except BaseException:
                            w.cancel()
                            raise
                        counts[kind] = reader.doc_count()
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
            swap_in(gen)
        apply_all_pending(engine)
    return counts


def _link_snapshot(kind: str, folder: Path, staging: Path) -> None:
    """Hard links to the files of the index's latest commit, taken while holding its writer lock for
    the moment it takes (no commit can change or delete them meanwhile)."""
    staging.mkdir(parents=True)
    w = windex.open_dir(str(folder)).writer(timeout=WRITER_PATIENCE, delay=0.05)
    try:
        for name in os.listdir(folder):  # segment files and TOCs (not the lock, not a writer's temp folder)
            if "LOCK" not in name.upper() and (folder / name).is_file():
                os.link(folder / name, staging / name)
    finally:
        w.cancel()  # releases the lock without a commit


def _indexed(kind: str) -> dict[int, tuple[str | None, str | None]]:
    """doc id -> (stored digest, packed facets) of every live document of the index."""
    ix = open_index(kind)
    out = {}
    with open_searcher(ix) as s:
        reader = s.reader()
        has_facets = kind == ADVOCATES and s.doc_count_all() and reader.has_column("facets")
        col = reader.column_reader("facets") if has_facets else None
        for docnum, fields in reader.iter_docs():
            out[int(fields[KEYS[kind]])] = (fields.get("digest"), col[docnum] if col is not None else None)
    return out


def _sample(ids) -> list[int]:
    return sorted(ids)[:5]


def check(session, chunk: int = CHUNK) -> list[str]:
    """Differences between the index and the database (empty: no drift): which documents are missing
    or extra, and which hold other content than the database's rows would give them now (a digest of
    each document, computed from the same rows documents are built from, and the packed facets)."""
    problems = []
    indexed = _indexed(ADVOCATES)
    active = set(session.scalars(select(User.id).where(User.role == Role.ADVOCATE, User.status == Status.ACTIVE)))
    missing, extra = active - set(indexed), set(indexed) - active
    if missing:
        problems.append(f"{len(missing)} active advocate(s) missing from the index, e.g. {_sample(missing)}")
    if extra:
        problems.append(
            f"{len(extra)} document(s) in the index for advocates who are not active, e.g. {_sample(extra)}"
        )
    both = sorted(active & set(indexed))
    content, facets, undigested = [], [], []
    for i in range(0, len(both), chunk):
        docs, _ = documents.advocate_docs(session, both[i : i + chunk])  # plain rows: nothing kept in the session
        for doc in docs:
            uid = int(doc["uid"])
            stored_digest, stored_facets = indexed[uid]
            if stored_facets != doc["facets"]:
                facets.append(uid)
            elif stored_digest is None:
                undigested.append(uid)
            elif stored_digest != doc["digest"]:
                content.append(uid)
    if content:
        problems.append(
            f"{len(content)} advocate document(s) hold other text than the database, e.g. {_sample(content)}"
        )
    if facets:
        problems.append(
            f"{len(facets)} advocate document(s) hold other facet values (industry, ..., fatigue, dates) "
            f"than the database, e.g. {_sample(facets)}"
        )
    if undigested:
        problems.append(
            f"{len(undigested)} advocate document(s) were written without a content digest (an index "
            f"from an older version), e.g. {_sample(undigested)}: run 'flask search reindex'"
        )
    indexed_o = _indexed(OPPORTUNITIES)
    expected_o = set(documents.all_opportunity_ids(session))
    if set(indexed_o) != expected_o:
        problems.append(
            f"opportunities: {len(expected_o - set(indexed_o))} missing, {len(set(indexed_o) - expected_o)} extra"
        )
    both_o = sorted(expected_o & set(indexed_o))
    differ = []
    for i in range(0, len(both_o), chunk):
        docs, _ = documents.opportunity_docs(session, both_o[i : i + chunk])
        differ += [int(d["oid"]) for d in docs if indexed_o[int(d["oid"])][0] != d["digest"]]
    if differ:
        problems.append(f"{len(differ)} opportunity document(s) differ from the database, e.g. {_sample(differ)}")
    return problems


def stale_fatigue(session) -> list[int]:
    """Advocates whose fatigue status in the index is no longer what the rules say (time moves on)."""
    ix = open_index(ADVOCATES)
    with open_searcher(ix) as s:
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
        chunk = ids[i : i + 1000]
        for uid, st in fatigue.statuses(session, chunk).items():
            if st.key != current[uid]:
                changed.append(uid)
    return changed
