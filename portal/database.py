"""Engine wiring: SQLite pragmas and explicit transaction control.

SQLite: foreign keys on, WAL, a busy timeout, and transactions begun by us (pysqlite's own
implicit BEGIN is switched off, as SQLAlchemy's docs recommend) so that a unit of work that reads
and then writes can ask for ``BEGIN IMMEDIATE`` and take the write lock up front; otherwise a
concurrent writer makes it fail with "database is locked" despite the busy timeout.

A unit of work begins with ``begin_write`` before its first query and ends with one commit (a
request: ``portal.errors.unit_of_work``; a command: ``portal.cli.common.transaction``).
"""

from __future__ import annotations

from flask import request
from sqlalchemy import event, text

from portal.extensions import db

IMMEDIATE = "sqlite_begin_immediate"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def configure_engine(engine, busy_timeout_ms: int) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get(IMMEDIATE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class WorkAlreadyOpen(RuntimeError):
    """begin_write was called on a session that already has a transaction open."""


def begin_write(session) -> None:
    """Begin the session's unit of work as a writer (SQLite: BEGIN IMMEDIATE; PostgreSQL: a plain
    BEGIN, where ``with_for_update`` or conditional updates close the races).

    Call before the first query of a read-then-write unit of work (awarding points, taking stock,
    taking a seat). Work already open in the session is refused with ``WorkAlreadyOpen`` (a
    RuntimeError) on every backend: committing it here would end the caller's unit of work half-way
    and behind its back, and carrying on in it would keep SQLite's deferred read snapshot, which
    cannot become a writer once another writer has committed. End that work first.
    """
    if hasattr(session, "registry"):  # a scoped_session: act on the current session
        session = session()
    if session.in_transaction():
        raise WorkAlreadyOpen(
            "begin_write() was called while the session already has a transaction open; "
            "commit or roll back that work first (a unit of work begins as a writer before its first query)."
        )
    session.connection(execution_options={IMMEDIATE: True})


def begin_write_for_unsafe_methods() -> None:
    """before_request hook: a POST (or any unsafe method) begins its unit of work as a writer.

    Such requests read (the user, the form's target) and then write. With deferred transactions a
    write committed by another request in between makes the upgrade fail at once with "database is
    locked"; taking the write lock first makes concurrent writers wait their turn (busy timeout).
    App-level hooks run before the blueprints' guards and the view, and none registered before this
    one reads the database (``begin_write`` would refuse if one did); the view's ``unit_of_work``
    commits the work.
    """
    if request.method not in SAFE_METHODS:
        begin_write(db.session)


def refresh_statistics(engine) -> None:
    """Refresh the query planner's statistics (ANALYZE). SQLite keeps none until asked, and without them it
    chooses an index by its shape rather than by the data: at 50,000 advocates the coverage page read every
    active advocate once per target (0.9 s) where the profiles' indexes answer in 0.2 s. PostgreSQL's
    autovacuum keeps its own; ANALYZE brings them up to date at once. Run daily (`flask maintenance analyze`)."""
    with engine.begin() as conn:  # in a transaction (both run ANALYZE in one), committed on leaving
        conn.execute(text("ANALYZE"))
