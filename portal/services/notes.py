"""Admins' internal notes about an advocate. Never shown to the advocate and not in their data export
(portal.services.privacy builds that export from its own list of tables); deleted with their account."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import AdvocateNote, User
from portal.services import audit
from portal.services.errors import DomainError

MAX_LENGTH = 2000


def add(session: Session, user: User, author_id: int, body: str) -> AdvocateNote:
    body = (body or "").strip()
    if not body:
        raise DomainError("Write the note first.")
    if len(body) > MAX_LENGTH:
        raise DomainError(f"A note can be at most {MAX_LENGTH:,} characters.")
    note = AdvocateNote(user_id=user.id, author_id=author_id, body=body)
    session.add(note)
    session.flush()
    audit.record(session, "note.add", author_id, user, note_id=note.id)  # the text stays in the note
    return note


def of(session: Session, user_id: int, limit: int = 100) -> list[AdvocateNote]:
    return list(
        session.scalars(
            select(AdvocateNote)
            .where(AdvocateNote.user_id == user_id)
            .order_by(AdvocateNote.created_at.desc(), AdvocateNote.id.desc())
            .limit(limit)
        )
    )
