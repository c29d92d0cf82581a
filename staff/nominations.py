"""Nominations: a staff member tells the program about a happy customer (to be built)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from portal.models import User

NAV: list[tuple[str, str, tuple[str, ...]]] = []


def home_context(session: Session, user: User) -> dict:
    return {}
