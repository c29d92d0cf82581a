"""Engine wiring: SQLite pragmas and explicit transaction control.

SQLite: foreign keys on, WAL, a busy timeout, and transactions begun by us (pysqlite's own
implicit BEGIN is switched off, as SQLAlchemy's docs recommend) so that a unit of work that reads
and then writes can ask for ``BEGIN IMMEDIATE`` and take the write lock up front; otherwise a
concurrent writer makes it fail with "database is locked" despite the busy timeout.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

IMMEDIATE = "sqlite_begin_immediate"


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


def begin_write(session) -> None:
    """Start the session's transaction as a writer (SQLite: BEGIN IMMEDIATE).

    Call before the first query of a read-then-write unit of work (awarding points, taking stock,
    taking a seat). On PostgreSQL it is a no-op; use ``with_for_update`` or conditional updates there.
    """
    if hasattr(session, "registry"):  # a scoped_session: act on the current session
        session = session()
    if session.in_transaction():
        conn = session.connection()
        if conn.dialect.name == "sqlite" and not conn.get_execution_options().get(IMMEDIATE):
            # Already in a deferred transaction: end it so the next one starts as a writer.
            session.commit()
        else:
            return
    session.connection(execution_options={IMMEDIATE: True})


@contextmanager
def write_transaction(session):
    begin_write(session)
    yield


def begin_write_for_unsafe_methods():
    """before_request hook: on SQLite, a POST (or any unsafe method) starts as a writer.

    Such requests read (the user, the form's target) and then write. With deferred transactions a
    write committed by another request in between makes the upgrade fail at once with "database is
    locked"; taking the write lock first makes concurrent writers wait their turn (busy timeout).
    """
    from flask import request

    from portal.extensions import db

    if request.method not in ("GET", "HEAD", "OPTIONS") and db.engine.dialect.name == "sqlite":
        begin_write(db.session)
