"""Units of work: begin_write starts one as a writer and refuses work already open; a command's is
portal.cli.common.transaction (one commit, then its mail and index updates; a DomainError ends it)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from sqlalchemy import event

from portal.cli.common import transaction
from portal.database import WorkAlreadyOpen, begin_write
from portal.extensions import db
from portal.models import Status, User
from portal.services import accounts
from portal.services.errors import DomainError
from tests.support import reload


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


# --- commands: one unit of work each, committed in portal.cli.common.transaction -----------------------------

CLI = Path(__file__).resolve().parent.parent / "portal" / "cli"


def test_commands_commit_only_through_transaction():
    modules = sorted(p for p in CLI.glob("*.py") if p.name != "common.py")
    assert len(modules) >= 6
    uses = 0
    for path in modules:
        source = path.read_text()
        for needle in (".commit(", ".rollback(", "except DomainError", "begin_write("):
            assert needle not in source, f"{path.name}: {needle}"
        uses += source.count("with transaction()")  # "with transaction():" or "... as work:"
    assert uses >= 9  # every command that writes (demo seed, lists seed, users x3, digest, announce, ...)


def test_a_command_commits_once_then_sends(app, make_user, mailbox):
    uid = make_user(status=Status.PENDING, email="waiting@example.com").id
    ours, commits = set(), []

    def began(session, transaction, connection):
        ours.add(connection)

    def committed(connection):
        if connection in ours:  # the command's session (the outbox sends in its own)
            commits.append(len(mailbox.messages))

    event.listen(db.session, "after_begin", began)
    event.listen(db.engine, "commit", committed)
    try:
        with transaction():
            accounts.approve(db.session, db.session.get(User, uid), actor_id=None, via="cli")
    finally:
        event.remove(db.session, "after_begin", began)
        event.remove(db.engine, "commit", committed)
    assert commits == [0]  # one COMMIT, before any mail went out
    assert mailbox.last("waiting@example.com")  # sent right after it
    assert reload(User, uid).status == Status.ACTIVE
    db.session.rollback()


def test_a_refused_command_writes_nothing_and_says_why(app, make_user):
    uid = make_user(name="Before").id
    with pytest.raises(click.ClickException, match="Refused after writing."):
        with transaction():
            db.session.get(User, uid).name = "Half-way"
            db.session.flush()
            raise DomainError("Refused after writing.")
    assert reload(User, uid).name == "Before"
    db.session.rollback()


def test_a_command_does_not_begin_inside_open_work(app, make_user):
    uid = make_user().id
    db.session.get(User, uid)
    with pytest.raises(WorkAlreadyOpen):
        with transaction():
            pass
    db.session.rollback()


def test_cli_refusal_exits_1_with_the_message(runner, make_user):
    make_user(email="taken@example.com")
    result = runner.invoke(args=["users", "create-admin", "taken@example.com", "--password-stdin"], input="x" * 20)
    assert result.exit_code == 1
    assert "An account with taken@example.com already exists." in result.output
