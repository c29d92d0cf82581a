"""A command that changes data is one unit of work (or one per batch): ``transaction``."""

from __future__ import annotations

from contextlib import contextmanager

import click

from portal.database import begin_write
from portal.extensions import db
from portal.services.errors import DomainError
from portal.services.outbox import deliver_after_appcontext
from search.indexing import apply_after_appcontext


@contextmanager
def transaction():
    """A command's unit of work: the one place a command commits.

    Begun as a writer before its first query (SQLite: BEGIN IMMEDIATE; ``begin_write`` refuses work
    already open), committed once when the block ends, then the email it queued is sent and the search
    index brought up to date (a request does both after its response). A ``DomainError`` rolls back
    and ends the command with its message (exit status 1); any other error rolls back and propagates.
    """
    begin_write(db.session)
    try:
        yield
    except DomainError as err:
        db.session.rollback()
        raise click.ClickException(err.message) from None
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()
    deliver_after_appcontext()
    apply_after_appcontext()
