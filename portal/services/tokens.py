"""Signed, expiring, single-use links.

A token carries the user id and a fingerprint of the state it acts on (the password hash for a
reset, the email and status for a verification). Once the action is done that state changes, so
the same link no longer matches: single use without a table of spent tokens.
"""

from __future__ import annotations

import hashlib

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from portal.services.errors import InvalidToken


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"portal.{purpose}")


def fingerprint(*parts: object) -> str:
    raw = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def make_token(purpose: str, user_id: int, state: str, **extra) -> str:
    return _serializer(purpose).dumps({"u": user_id, "s": state, **extra})


def read_token(purpose: str, token: str, max_age: int) -> dict:
    """Return the payload, or raise InvalidToken with a message a user can act on."""
    if not token or len(token) > 2048:
        raise InvalidToken("This link is not valid.")
    try:
        data = _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise InvalidToken("This link has expired. Ask for a new one.") from None
    except BadSignature:
        raise InvalidToken("This link is not valid.") from None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        raise InvalidToken("This link is not valid.")
    return data
