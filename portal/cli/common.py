"""What every command that changes data does after its commit (a request does it after the response)."""

from portal.extensions import db


def commit() -> None:
    """Commit, then send the email it queued and bring the search index up to date."""
    from portal.services.outbox import deliver_after_appcontext
    from search.indexing import apply_after_appcontext

    db.session.commit()
    deliver_after_appcontext()
    apply_after_appcontext()
