"""One page of a list: the one place that counts, clamps the page number and slices (every paged list of
the admin area calls it). Two queries whatever the list's size: the count and the page's rows."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

PER_PAGE = 50


@dataclass
class Page:
    rows: list[Any]
    page: int
    pages: int
    total: int


def page_number(page: int, total: int, per_page: int) -> tuple[int, int]:
    """(page, pages): a page before the first is the first, a page past the last is the last."""
    pages = max(ceil(total / per_page), 1)
    return min(max(page, 1), pages), pages


def paginate(session: Session, stmt: Select, page: int = 1, per_page: int = PER_PAGE, total: int | None = None) -> Page:
    """The rows of ``stmt`` (already ordered) on ``page``; ``total``: the count when the caller has it."""
    if total is None:
        total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    page, pages = page_number(page, total, per_page)
    rows = list(session.scalars(stmt.offset((page - 1) * per_page).limit(per_page)))
    return Page(rows, page, pages, total)
