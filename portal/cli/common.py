"""A command that changes data is one unit of work (or one per batch): ``transaction``."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import click

from portal.database import begin_write
from portal.extensions import db
from portal.services.errors import DomainError
from portal.services.outbox import deliver_after_appcontext
from search.indexing import apply_after_appcontext


@dataclass
class Work:
    """What became of a command's mail: ``mail`` is (sent, failed) when it was sent by the command itself
    (OUTBOX_DELIVERY "inline"), None when the outbox worker sends it."""

    mail: tuple[int, int] | None = None


def mail_outcome(*works: Work) -> str:
    """The end of a command's summary: what happened to the mail its transactions queued."""
    results = [w.mail for w in works if w.mail is not None]
    if not results:
        return "the outbox worker sends the email"
    sent, failed = sum(r[0] for r in results), sum(r[1] for r in results)
    return f"{sent} email(s) sent, {failed} waiting for retry"


@contextmanager
def transaction():
    """A command's unit of work: the one place a command commits.

    Begun as a writer before its first query (SQLite: BEGIN IMMEDIATE; ``begin_write`` refuses work
    already open), committed once when the block ends, then the search index is brought up to date and,
    with "inline" delivery, the email it queued is sent (otherwise the outbox worker sends it); the
    ``Work`` it yields then says which (``mail_outcome``). A ``DomainError`` rolls back and ends the
    command with its message (exit status 1); any other error rolls back and propagates.
    """
    work = Work()
    begin_write(db.session)
    try:
        yield work
    except DomainError as err:
        db.session.rollback()
        raise click.ClickException(err.message) from None
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()
    work.mail = deliver_after_appcontext()
    apply_after_appcontext()


@contextmanager
def reading():
    """A command's long read before a short write: the read's transaction ends (nothing to commit) with the
    block, so the ``transaction`` after it begins as a writer only then (SQLite: other writers are not kept
    waiting while the command reads)."""
    try:
        yield
    finally:
        db.session.rollback()


def attempt(step, *args, **kwargs):
    """One service call in a savepoint of the command's transaction: refused by the rules (a DomainError), it
    leaves nothing behind and gives None (the demo seed plays a history the rules may refuse a step of)."""
    try:
        with db.session.begin_nested():
            return step(db.session, *args, **kwargs)
    except DomainError:
        return None
