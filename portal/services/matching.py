"""Matching advocates to a reference request (to be built): ranked by fit through the search index, each
with the criteria they match, the criteria relaxed when nobody matches them all, and the advocates left
out by the rules (fatigue.may_ask's reasons) counted per reason."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from portal.models import ReferenceRequest
from portal.services import fatigue


@dataclass
class Candidate:
    user_id: int
    name: str
    company: str
    matched: list[str]  # the request's criteria this advocate matches, in words ("Industry: Healthcare")
    missing: list[str]  # the request's criteria they do not match (relaxed ones)
    decision: fatigue.Decision  # allowed, or the rules that leave them out (an admin may override)


@dataclass
class Matches:
    candidates: list[Candidate] = field(default_factory=list)  # may be asked, best fit first
    relaxed: list[str] = field(default_factory=list)  # criteria dropped because nobody matched them all
    excluded: dict[str, int] = field(default_factory=dict)  # fatigue reason code -> how many were left out
    excluded_people: list[Candidate] = field(default_factory=list)  # the best-fitting of those left out
    total_matching: int = 0  # advocates matching the (relaxed) criteria, before the rules


def for_request(session: Session, rr: ReferenceRequest, limit: int = 20) -> Matches:
    return Matches()
