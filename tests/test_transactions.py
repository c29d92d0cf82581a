"""Units of work: begin_write starts one as a writer and refuses work already open."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from portal.database import WorkAlreadyOpen, begin_write
from portal.extensions import db
from portal.models import User
from tests.conftest import reload


def _statements():
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()).upper())

    return seen, before


def test_begin_write_starts_the_unit_of_work_as_a_writer(app, make_user):
    uid = make_user().id
    seen, before = _statements()
    event.listen(db.engine, "before_cursor_execute", before)
    try:
        begin_write(db.session)
        assert db.session.get(User, uid) is not None
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
        db.session.rollback()
    if db.engine.dialect.name == "sqlite":
        assert seen[0] == "BEGIN IMMEDIATE", seen
    assert any(s.startswith("SELECT") for s in seen)


def test_begin_write_refuses_a_transaction_already_open(app, make_user):
    uid = make_user().id
    db.session.get(User, uid)  # a read: the session's transaction is open
    assert db.session().in_transaction()
    with pytest.raises(RuntimeError, match="already has a transaction open"):
        begin_write(db.session)
    assert db.session().in_transaction()  # neither committed nor ended: the caller's work is the caller's
    db.session.rollback()


def test_begin_write_never_commits_the_callers_work(app, make_user):
    uid = make_user(name="Before").id
    db.session.get(User, uid).name = "Half-way"
    db.session.flush()
    with pytest.raises(WorkAlreadyOpen):
        begin_write(db.session)
    db.session.rollback()
    assert reload(User, uid).name == "Before"  # the refused call did not commit it (it used to, on SQLite)
    db.session.rollback()


def test_begin_write_refuses_pending_objects(app):
    db.session.add(User(email="pending@example.com", name="Pending"))
    with pytest.raises(WorkAlreadyOpen):
        begin_write(db.session)
    db.session.rollback()


def test_begin_write_after_the_work_ended_is_fine(app, make_user):
    uid = make_user().id
    db.session.get(User, uid)
    db.session.rollback()
    begin_write(db.session)
    assert db.session().in_transaction()
    db.session.rollback()
