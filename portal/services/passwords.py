"""Password hashing (argon2id via argon2-cffi) and the password policy."""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app

from portal.services.errors import PasswordRejected

COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt.gz"


def _hasher() -> PasswordHasher:
    cfg = current_app.config
    return _hasher_for(cfg["ARGON2_TIME_COST"], cfg["ARGON2_MEMORY_COST"], cfg["ARGON2_PARALLELISM"])


@lru_cache(maxsize=4)
def _hasher_for(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        # Spend the same time as a real check so unknown accounts cannot be told apart.
        _hasher().hash(password)
        return False
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip().lower() for line in fh if line.strip())


def check_password_policy(password: str, email: str | None = None) -> None:
    """Raise PasswordRejected with a plain-words reason, or return None."""
    cfg = current_app.config
    lo, hi = cfg["PASSWORD_MIN_LENGTH"], cfg["PASSWORD_MAX_LENGTH"]
    if len(password) < lo:
        raise PasswordRejected(f"Use at least {lo} characters.")
    if len(password) > hi:
        raise PasswordRejected(f"Use at most {hi} characters.")
    if not password.strip():
        raise PasswordRejected("A password cannot be only spaces.")
    lowered = password.lower()
    if lowered in common_passwords() or lowered.strip() in common_passwords():
        raise PasswordRejected("This password is too common; choose one that is harder to guess.")
    if email:
        local = email.split("@", 1)[0].lower()
        if len(local) >= 3 and local in lowered:
            raise PasswordRejected("The password must not contain your email name.")
