"""Reference requests: a staff member asks for the right advocate for a deal (to be built)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from portal.models import User

NAV: list[tuple[str, str, tuple[str, ...]]] = []


def home_context(session: Session, user: User) -> dict:
    return {}
