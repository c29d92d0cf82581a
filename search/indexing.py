"""The index on disk, its writers, and the queue that keeps it following the database.

Layout under SEARCH_INDEX_DIR: ``current`` is a symlink to ``gen-<stamp>/`` which holds two Whoosh
indexes, ``advocates/`` and ``opportunities/``. A rebuild writes a new generation beside the live
one and swaps the symlink atomically (rename), so searches keep answering throughout.

How a change reaches the index (the one path): ``search.documents.SOURCES`` declares which models and
columns feed which document (advocate, opportunity), next to the builders that read them. The session
listeners below (registered by the factory, so the models never import search) derive everything from
it: before each flush, a new or deleted row of a followed model, or a row whose followed columns
changed, adds a ``search_pending`` row for the document it feeds, in the same transaction as the
change; a change to any other column (a sign-in's ``last_login_at``) queues nothing. A change of the
program's fatigue policy (a ``ProgramSetting`` row with a fatigue key) queues every active advocate
with one INSERT ... SELECT, for the next writer or ``flask search sync`` (the admin's request does not
wait for them). ``queue()`` adds rows by hand for what changes with time alone (``flask search sync``'s
fatigue refresh). Nothing outside ``search/`` writes ``search_pending``.

After the request (or CLI command) commits, the hooks below ask the search backend (search.backend())
to apply the pending rows; the Whoosh backend's apply_pending (below) writes them under the index lock,
reading the documents' state from the database *after* taking the lock, and deletes them only once
written. A failed write leaves them for the next writer or ``flask search sync``; nothing is lost and
the user's request never fails. A request waits at most REQUEST_WRITER_PATIENCE for the index lock;
the CLI and sync, WRITER_PATIENCE.

While a rebuild (or optimize) builds a new generation it holds ``rebuild.lock`` and writes the
``rebuilding`` marker: writers then keep the rows they applied, for the new generation, and read past
them next time. The marker counts only while the lock is held (rebuild_running): one left by a
killed rebuild is removed by the next writer.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import random
import shutil
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from flask import current_app, g, has_request_context
from sqlalchemy import String, cast, delete, event, insert, inspect, literal, select, update
from sqlalchemy.orm import MANYTOONE, Session
from whoosh import index as windex
from whoosh.index import LockError
from whoosh.reading import SegmentReader

from portal.extensions import db
from portal.models import SearchPending, utcnow
from search import backend, documents, whoosh_internals
from search.schema import ADVOCATES, KEYS, OPPORTUNITIES, SCHEMAS

log = logging.getLogger(__name__)

WRITER_PATIENCE = 30.0  # seconds a writer waits for the lock in all (CLI, sync, background merges)
REQUEST_WRITER_PATIENCE = 1.5  # in a request (SEARCH_REQUEST_WRITER_PATIENCE): then the change waits for sync


class IndexUnavailable(Exception):
    """The index is missing or cannot be read: callers fall back to the database."""


def root() -> Path:
    return Path(current_app.config["SEARCH_INDEX_DIR"])


def current_dir() -> Path:
    return root() / "current"


def rebuilding_marker() -> Path:
    return root() / "rebuilding"


def rebuild_lock_path() -> Path:
    return root() / "rebuild.lock"


@contextmanager
def rebuild_lock(wait: float = 1.0):
    """Held by ``flask search reindex`` / ``optimize`` while they build a generation beside the live one.
    ``wait`` covers a probe (rebuild_running) that holds it for a moment."""
    root().mkdir(parents=True, exist_ok=True)
    with open(rebuild_lock_path(), "a") as fh:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RuntimeError("Another rebuild is running.") from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def rebuilding():
    """The marker that tells writers to keep their pending rows for the generation being built.
    Written only while rebuild_lock is held; its content tells one rebuild from the next."""
    marker = rebuilding_marker()
    marker.write_text(f"{os.getpid()} {time.time_ns()} {random.randint(0, 10**9)}")
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def rebuild_running() -> bool:
    """Is a rebuild really running? Only while the marker exists AND rebuild.lock is held: a marker left
    by a rebuild that was killed (SIGKILL, OOM) is removed here, with a warning, so that the index goes
    back to following the database."""
    marker = rebuilding_marker()
    if not marker.exists():
        return False
    try:
        fh = open(rebuild_lock_path(), "a")
    except OSError:
        return marker.exists()
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True  # held: a rebuild is running (in this or another process)
        try:
            if marker.exists():  # nobody can create it while we hold the lock
                log.warning(
                    "removed a stale search rebuild marker (%s): no rebuild holds %s; "
                    "the rebuild that left it was interrupted",
                    marker,
                    rebuild_lock_path(),
                )
                marker.unlink(missing_ok=True)
                _stale_markers_removed[str(root())] = utcnow()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    return False


_stale_markers_removed: dict[str, datetime] = {}


def stale_marker_removed_at() -> datetime | None:
    """When this process last removed a marker left by an interrupted rebuild (for the health page)."""
    return _stale_markers_removed.get(str(root()))


def _marker_token() -> str | None:
    try:
        return rebuilding_marker().read_text()
    except OSError:
        return None


def open_index(kind: str):
    """The index of the generation ``current`` points at now, opened by its real path: Whoosh opens
    files by name as it goes, and through the symlink a writer that straddled a swap would write its
    segment and TOC into the new generation (which then lists segments it does not hold)."""
    path = Path(os.path.realpath(current_dir() / kind))
    for attempt in range(20):
        try:
            if not windex.exists_in(str(path)):
                raise IndexUnavailable(f"no {kind} index at {path}")
            return windex.open_dir(str(path))
        except IndexUnavailable:
            raise
        except FileNotFoundError as exc:  # another process's commit replaced the TOC just as we read it
            if attempt == 19 or not path.is_dir():
                raise IndexUnavailable(f"{kind} index unreadable: {exc}") from exc
            time.sleep(0.01)
        except Exception as exc:  # corrupt files, permissions, half-deleted directories
            raise IndexUnavailable(f"{kind} index unreadable: {exc}") from exc


def open_searcher(ix, attempts: int = 20):
    """A searcher whose segment files are all open before it is handed out.

    Whoosh opens a segment's column files (facets, field lengths, stored fields) only on first use,
    but a commit by another writer (a background merge, another worker process) deletes the files of
    the segments it merged away. A searcher opened before that commit then fails on first use of a
    column (FileNotFoundError), or worse, sees "no column" and reads empty values. Opening every file
    up front keeps them readable after their deletion (POSIX): the searcher stays a consistent
    snapshot for as long as it is used.

    A commit can also land between reading the TOC and pinning (its files then already gone, so the
    listing would silently miss them). Whoosh writes the new TOC before it deletes anything, so a
    searcher still up to date after pinning has pinned everything; one that is not is opened again."""
    for attempt in range(attempts):
        searcher = None
        try:
            searcher = ix.searcher()
            complete = pin_segment_files(searcher)
            if searcher.up_to_date() or (attempt == attempts - 1 and complete):
                return searcher
            searcher.close()  # a commit landed meanwhile: open the new generation instead
        except FileNotFoundError:
            if searcher is not None:
                searcher.close()
            if attempt == attempts - 1:
                raise
        time.sleep(0.01)
    raise FileNotFoundError("the index kept changing while a searcher was opened")


def pin_segment_files(searcher) -> bool:
    """Open every column file of each segment of ``searcher`` now (see open_searcher) and have it answer
    has_column from what was opened, not from the directory as it is later (whoosh_internals). False
    when a segment with documents has no stored-fields column (its files were deleted before they could
    be opened)."""
    complete = True
    listing = None
    for leaf, _ in searcher.reader().leaf_readers():
        if not isinstance(leaf, SegmentReader):
            continue  # an empty index's reader (EmptyReader) has no segment
        if listing is None:
            listing = leaf.storage().list()  # one directory listing for all segments
        pinned = whoosh_internals.pin_column_files(leaf, listing)
        if leaf.segment().doc_count_all() and "_stored" not in pinned:
            complete = False
    return complete


def new_generation_path() -> Path:
    return root() / f"gen-{datetime.now().strftime('%Y%m%d%H%M%S')}-{os.getpid()}-{random.randint(0, 9999):04d}"


def create_generation() -> Path:
    gen = new_generation_path()
    for kind, schema in SCHEMAS.items():
        (gen / kind).mkdir(parents=True)
        windex.create_in(str(gen / kind), schema())
    return gen


def swap_in(gen: Path) -> None:
    """Point ``current`` at ``gen`` atomically, then remove generations older than the previous one."""
    link = current_dir()
    previous = link.resolve() if link.is_symlink() else None
    tmp = root() / f".current-{os.getpid()}-{random.randint(0, 99999)}"
    os.symlink(gen.name, tmp)
    os.replace(tmp, link)
    keep = {gen.resolve(), previous}
    for old in root().glob("gen-*"):
        if old.resolve() not in keep:
            shutil.rmtree(old, ignore_errors=True)


def index_exists() -> bool:
    link = current_dir()
    return link.exists() and all(windex.exists_in(str(link / k)) for k in SCHEMAS)


def ensure_index() -> None:
    """Create an empty index if there is none (a new install); never touches an existing one."""
    if index_exists():
        return
    root().mkdir(parents=True, exist_ok=True)
    swap_in(create_generation())


TINY_SEGMENT = 2000  # documents; smaller segments are merged in the background, larger ones only by optimize
MERGE_AFTER = 4  # small segments left by updates before a background merge folds them together


def merge_tiny(writer, segments):
    """Merge policy for incremental writes: fold the small segments left by single-document updates
    into one, never rewrite a large one (that is 'flask search optimize', off the request path)."""
    small = [s for s in segments if s.doc_count_all() < TINY_SEGMENT]
    if len(small) < 2:
        return segments
    for seg in small:
        reader = SegmentReader(writer.storage, writer.schema, seg)
        writer.add_reader(reader)
        reader.close()
    return [s for s in segments if s.doc_count_all() >= TINY_SEGMENT]


def small_segments(kind: str) -> int:
    return sum(1 for s in whoosh_internals.segments(open_index(kind)) if s.doc_count_all() < TINY_SEGMENT)


_merging: dict[str, threading.Thread] = {}


def merge_in_background(kind: str) -> threading.Thread | None:
    """Fold the small segments together off the request path (a merge rewrites them: no user waits for it)."""
    key = f"{root()}:{kind}"
    running = _merging.get(key)
    if running is not None and running.is_alive():
        return running
    app = current_app._get_current_object()

    def run():
        with app.app_context():
            try:
                with writer_for(kind, merge=True):
                    pass
            except Exception as exc:  # a merge can always wait for the next one
                log.warning("background merge of the %s index failed: %s", kind, exc)

    t = threading.Thread(target=run, name=f"search-merge-{kind}", daemon=True)
    _merging[key] = t
    t.start()
    return t


def wait_for_merges() -> None:
    for t in list(_merging.values()):
        t.join()


@contextmanager
def writer_for(kind: str, merge: bool = False, optimize: bool = False, patience: float | None = None, **kwargs):
    """A writer that waits its turn: lock timeout with retry, never AsyncWriter. ``patience``: seconds
    to wait for the lock in all (WRITER_PATIENCE unless given), then LockError."""
    ix = open_index(kind)
    patience = WRITER_PATIENCE if patience is None else patience
    deadline = time.monotonic() + patience
    while True:
        left = deadline - time.monotonic()
        try:
            w = ix.writer(timeout=max(0.0, min(5.0, left)), delay=0.02, compound=False, **kwargs)
            break
        except LockError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(random.uniform(0.01, 0.1), max(0.0, deadline - time.monotonic())))
    try:
        yield w
    except BaseException:
        w.cancel()
        raise
    else:
        if optimize:
            w.commit(optimize=True)
        elif merge:
            w.commit(mergetype=merge_tiny)
        else:
            w.commit(merge=False)


# --- following the database ------------------------------------------------------------------------------
# documents.SOURCES says which models and attributes feed which document; everything below is derived
# from it (see the module's docstring).


@functools.cache
def _followed(model: type) -> tuple[tuple[documents.Source, frozenset[str]], ...]:
    """The followed sources of ``model``, each with the attributes whose change queues its documents:
    the declared ones, and the many-to-one relationships that set one of them (before the flush only the
    relationship shows the change: ``profile.industry = x`` sets ``industry_id`` during the flush)."""
    out = []
    for source in documents.SOURCES:
        if source.model is not model or not source.followed:
            continue
        mapper = inspect(model)
        setters = {
            rel.key
            for rel in mapper.relationships
            if rel.direction is MANYTOONE
            and any(mapper.get_property_by_column(col).key in source.attrs for col in rel.local_columns)
        }
        out.append((source, source.attrs | setters))
    return tuple(out)


def _changes_watched(session, obj, watched: frozenset[str]) -> bool:
    if not session.is_modified(obj, include_collections=True):
        return False
    attrs = inspect(obj).attrs
    return any(attrs[key].history.has_changes() for key in watched)


def _value_before(obj, name: str):
    """The attribute's value before the session's pending change (its current value if unchanged)."""
    history = inspect(obj).attrs[name].history
    return history.deleted[0] if history.deleted else getattr(obj, name)


def _fed_by(session, obj, changed: bool = True, new: bool = False):
    """(source, the ids of the documents it feeds, or None for all of them) of each followed source
    ``obj`` feeds now; ``changed``: ``obj`` is new or deleted (else only watched changes count); ``new``:
    it is new. A row whose key changed feeds the document it left as well as the one it joined."""
    for source, watched in _followed(type(obj)):
        if not changed and not _changes_watched(session, obj, watched):
            continue
        if source.when is not None and not source.when(obj):
            continue
        if source.listed is not None and not source.listed(lambda name: getattr(obj, name)):
            if new or (not changed and not source.listed(lambda name: _value_before(obj, name))):
                continue  # not in the index before nor after: nothing to write
        if source.everyone is not None:
            yield source, None
            continue
        before = inspect(obj).attrs[source.key].history.deleted
        yield source, {doc_id for doc_id in (getattr(obj, source.key), *before) if doc_id}


def _queue_changes(session, flush_context, instances):
    """before_flush: queue the documents that the session's new, changed and deleted rows feed."""
    keys, everyone = set(), set()
    dirty = session.dirty
    new = session.new
    for obj in [*new, *dirty, *session.deleted]:
        for source, doc_ids in _fed_by(session, obj, changed=obj not in dirty, new=obj in new):
            if doc_ids is None:
                everyone.add(source)
            else:
                keys.update((source.kind, doc_id) for doc_id in doc_ids)
    queued_all = session.info.setdefault("search_everyone", set())
    for source in everyone - queued_all:
        _queue_everyone(session, source)
    queued_all |= everyone
    if not keys:
        return
    already = session.info.setdefault("search_keys", set())
    for kind, doc_id in keys - already:
        session.add(SearchPending(doc_type=kind, doc_id=doc_id))
    already.update(keys)


def _queue_everyone(session, source: documents.Source) -> None:
    """Queue every document ``source.everyone`` selects: one INSERT ... SELECT in the session's
    transaction. Not applied after this request's commit (it may be every advocate): the next writer,
    or 'flask search sync', applies them in batches."""
    ids = source.everyone()
    session.execute(
        insert(SearchPending.__table__).from_select(
            ["doc_type", "doc_id"], ids.with_only_columns(cast(literal(source.kind), String(20)), *ids.selected_columns)
        )
    )


def _new_ids_need_keys(session, flush_context):
    """New rows get their ids during the flush: queue them afterwards."""
    keys = set()
    for obj in session.new:
        for source, doc_ids in _fed_by(session, obj, new=True):
            keys.update((source.kind, doc_id) for doc_id in doc_ids or ())
    already = session.info.setdefault("search_keys", set())
    missing = keys - already
    if missing:
        session.info.setdefault("search_after_flush", set()).update(missing)


def _after_flush_postexec(session, flush_context):
    missing = session.info.pop("search_after_flush", set())
    already = session.info.setdefault("search_keys", set())
    for kind, doc_id in missing - already:
        session.add(SearchPending(doc_type=kind, doc_id=doc_id))
    already.update(missing)


def _after_commit(session):
    session.info.pop("search_everyone", None)
    if session.info.pop("search_keys", None):
        if has_request_context():
            g.search_dirty = True
        else:  # a CLI command or job: applied when its app context ends
            session.info["search_dirty"] = True


def _after_rollback(session):
    session.info.pop("search_keys", None)
    session.info.pop("search_after_flush", None)
    session.info.pop("search_everyone", None)


def register_listeners(session_factory) -> None:
    """Called by the factory with the scoped session (the models never import search)."""
    if event.contains(session_factory, "before_flush", _queue_changes):
        return  # the listeners are per Session class: once per process is enough
    event.listen(session_factory, "before_flush", _queue_changes)
    event.listen(session_factory, "after_flush", _new_ids_need_keys)
    event.listen(session_factory, "after_flush_postexec", _after_flush_postexec)
    event.listen(session_factory, "after_commit", _after_commit)
    event.listen(session_factory, "after_soft_rollback", lambda s, t: _after_rollback(s))


def queue_selected_advocates(sender, session, user_ids, **_) -> None:
    """Receiver of ``portal.signals.advocates_changed``: queue the selected advocates' documents with one
    INSERT ... SELECT in the caller's transaction (applied by the next writer or 'flask search sync', like a
    fatigue policy change), and forget the cached list names so the documents written next have the new ones."""
    ids = user_ids.subquery()
    session.execute(
        insert(SearchPending.__table__).from_select(
            ["doc_type", "doc_id"], select(cast(literal(documents.ADVOCATES), String(20)), ids.c[0])
        )
    )
    documents.forget_cached_names()


def queue(session, kind: str, ids) -> None:
    """Queue these documents in the session's transaction (what changed without a row changing: a
    fatigue status that moved on with the date)."""
    session.add_all([SearchPending(doc_type=kind, doc_id=doc_id) for doc_id in ids])


def discard_pending(session) -> None:
    """Forget every queued change, in the session's transaction: only before a full rebuild (which
    reads everything) of data loaded in bulk, e.g. the benchmark's generated advocates."""
    session.execute(delete(SearchPending))


_apply_lock = threading.Lock()
# Per index root: (the running rebuild's marker token, the highest pending id this process applied to the
# live generation and had to keep for the new one). While that rebuild runs, the next call starts after
# it, so the kept rows never starve newer changes; the rebuild applies them all once it has swapped.
_kept_through: dict[str, tuple[str, int]] = {}


def apply_pending(engine, limit: int = 500, patience: float | None = None) -> int:
    """Write pending documents to the index; returns how many were applied (raises on failure).
    ``patience``: how long to wait for the index lock (see writer_for); a request passes a short one."""
    applied = 0
    written: set[str] = set()  # the generations written to
    if not _apply_lock.acquire(timeout=-1 if patience is None else patience):
        raise LockError("another thread of this process is writing the index")
    try:
        with Session(engine, expire_on_commit=False) as session:
            key = str(root())
            token = _marker_token() if rebuild_running() else None
            kept = _kept_through.get(key)
            after = kept[1] if kept and token is not None and kept[0] == token else 0
            rows = session.execute(
                select(SearchPending.id, SearchPending.doc_type, SearchPending.doc_id)
                .where(SearchPending.id > after)
                .order_by(SearchPending.id)
                .limit(limit)
            ).all()
            session.commit()
            for kind in (ADVOCATES, OPPORTUNITIES):
                mine = [(pid, doc_id) for pid, k, doc_id in rows if k == kind]
                if not mine:
                    continue
                ids = sorted({doc_id for _, doc_id in mine})
                with writer_for(kind, patience=patience) as w:  # documents are read after taking the lock
                    written.add(os.path.dirname(w.storage.folder))
                    session.expire_all()
                    if kind == ADVOCATES:
                        docs, remove = documents.advocate_docs(session, ids)
                    else:
                        docs, remove = documents.opportunity_docs(session, ids)
                    session.commit()
                    fields = set(w.schema.names())
                    doc_key = KEYS[kind]
                    for doc_id in remove:
                        w.delete_by_term(doc_key, str(doc_id))
                    for doc in docs:
                        # An index built by an older version may lack a newer field (e.g. digest):
                        # write what it holds; 'flask search reindex' brings it up to date.
                        w.update_document(**{k: v for k, v in doc.items() if k in fields})
                applied += len(mine)
                if small_segments(kind) >= MERGE_AFTER:
                    merge_in_background(kind)
            unknown = [pid for pid, k, _ in rows if k not in KEYS]
            # Keep the rows while a rebuild runs, or when a rebuild swapped in a new generation after we
            # opened the old one (checked in this order): the new generation still needs them.
            if rows:
                live_token = _marker_token() if rebuild_running() else None
                if live_token is not None:
                    _kept_through[key] = (live_token, max(pid for pid, _, _ in rows))
                elif written <= {os.path.realpath(current_dir())}:
                    session.execute(delete(SearchPending).where(SearchPending.id.in_([pid for pid, _, _ in rows])))
                    session.commit()
            applied += len(unknown)
    finally:
        _apply_lock.release()
    return applied


def apply_all_pending(engine, patience: float | None = None, rounds: int = 1000) -> int:
    """apply_pending until nothing is left (or, while a rebuild runs, nothing this process has not kept)."""
    total = 0
    for _ in range(rounds):
        n = apply_pending(engine, patience=patience)
        total += n
        if n == 0:
            break
    return total


def _note_failure(engine, exc: Exception) -> None:
    try:
        with Session(engine) as session:
            session.execute(
                update(SearchPending).values(
                    attempts=SearchPending.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:500]
                )
            )
            session.commit()
    except Exception:
        log.exception("could not record the search index failure")


def apply_after_request(response):
    """after_request hook: the request committed changes to indexed data; bring the index up to date."""
    if not g.pop("search_dirty", False):
        return response
    try:
        # A short wait for the index lock: the user is waiting. If another writer (an optimize, a big
        # sync) holds it, the change stays queued for the next writer or 'flask search sync'.
        backend().apply_pending(
            db.engine, patience=float(current_app.config.get("SEARCH_REQUEST_WRITER_PATIENCE", REQUEST_WRITER_PATIENCE))
        )
    except Exception as exc:  # never fail the user's request; the pending rows stay for later
        log.warning("search index not updated now (will retry): %s", exc)
        _note_failure(db.engine, exc)
    return response


def apply_after_appcontext(exc=None):
    """teardown_appcontext hook: changes committed outside a request (CLI, jobs) are applied now."""
    try:
        session = db.session()
    except Exception:
        return
    if not session.info.pop("search_dirty", False):
        return
    try:
        backend().apply_pending(db.engine)
    except Exception as err:
        log.warning("search index not updated now (will retry): %s", err)
        _note_failure(db.engine, err)
