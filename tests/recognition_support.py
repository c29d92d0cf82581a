"""Builders and tools shared by the recognition tests (points, rewards, badges, leaderboard,
referrals, concurrency). Not a test module itself."""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from html import unescape

from sqlalchemy import event, select

from portal.extensions import db
from portal.models import (
    ActivityType,
    Badge,
    EntrySource,
    Opportunity,
    OpportunityStatus,
    Participation,
    ParticipationStatus,
    PointsEntry,
    Reward,
    SelectionMode,
    UserBadge,
    utcnow,
)
from portal.services import points
from tests.helpers import csrf_from, post_form

_seq = {"n": 0}


def give(
    user_id: int, amount: int, key: str | None = None, source: EntrySource = EntrySource.MANUAL, **kw
) -> tuple[int, bool]:
    """Award points through the service and commit; returns (entry id, created)."""
    _seq["n"] += 1
    entry, created = points.award(
        db.session,
        user_id,
        amount,
        key=key or f"test:{user_id}:{_seq['n']}",
        reason=kw.pop("reason", "test award"),
        source=source,
        **kw,
    )
    db.session.commit()
    return entry.id, created


def activity_type_id(key: str) -> int:
    return db.session.scalar(select(ActivityType.id).where(ActivityType.key == key))


def participation_row(
    user_id: int, type_key: str, status: ParticipationStatus = ParticipationStatus.COMPLETED, points: int | None = None
) -> int:
    """One participation of the advocate in a new opportunity of that type, straight in the database
    (no ledger entry, no badge evaluation); returns its id."""
    tid = activity_type_id(type_key)
    assert tid is not None, f"no activity type {type_key!r}"
    _seq["n"] += 1
    opp = Opportunity(
        activity_type_id=tid,
        title=f"{type_key} #{_seq['n']}",
        status=OpportunityStatus.OPEN,
        selection_mode=SelectionMode.SELECTION,
        points=points,
        opened_at=utcnow(),
    )
    db.session.add(opp)
    db.session.flush()
    now = utcnow()
    engaged = status in (ParticipationStatus.APPROVED, ParticipationStatus.COMPLETED)
    p = Participation(
        opportunity_id=opp.id,
        user_id=user_id,
        status=status,
        holds_seat=engaged,
        engaged_at=now if engaged else None,
        decided_at=now if engaged else None,
        completed_at=now if status == ParticipationStatus.COMPLETED else None,
    )
    db.session.add(p)
    db.session.commit()
    pid = p.id
    db.session.rollback()
    return pid


def participate(user_id: int, type_key: str, n: int = 1, amount: int = 10) -> list[int]:
    """n completed activities of one type, as the participation service records them: a completed
    participation and its ledger entry (whose award evaluates badges). Returns the entry ids."""
    tid = activity_type_id(type_key)
    ids = []
    for _ in range(n):
        pid = participation_row(user_id, type_key)
        entry_id, _ = give(
            user_id,
            amount,
            key=f"participation:{pid}:complete",
            source=EntrySource.PARTICIPATION,
            activity_type_id=tid,
            source_id=pid,
        )
        ids.append(entry_id)
    return ids


def make_reward(
    cost: int = 100,
    stock: int | None = None,
    limit: int | None = None,
    name: str = "Mug",
    active: bool = True,
    description: str = "A good mug",
) -> int:
    r = Reward(
        name=name, description=description, points_cost=cost, stock=stock, per_advocate_limit=limit, active=active
    )
    db.session.add(r)
    db.session.commit()
    rid = r.id
    db.session.rollback()
    return rid


def badge_keys(user_id: int) -> set[str]:
    db.session.rollback()
    return set(
        db.session.scalars(
            select(Badge.key).join(UserBadge, UserBadge.badge_id == Badge.id).where(UserBadge.user_id == user_id)
        )
    )


def entries(user_id: int | None = None, **filters) -> list[PointsEntry]:
    db.session.rollback()
    q = select(PointsEntry).order_by(PointsEntry.id)
    if user_id is not None:
        q = q.where(PointsEntry.user_id == user_id)
    for name, value in filters.items():
        q = q.where(getattr(PointsEntry, name) == value)
    return list(db.session.scalars(q))


def ledger_balance(user_id: int) -> int:
    return sum(e.amount for e in entries(user_id))


def cached(user_id: int) -> tuple[int, int]:
    db.session.rollback()
    return points.balance(db.session, user_id), points.lifetime_earned(db.session, user_id)


def assert_ledger_consistent(*user_ids: int) -> None:
    """The cached balance and lifetime equal the ledger's sums, for everyone and for the users named."""
    db.session.rollback()
    assert points.verify(db.session) == []
    for uid in user_ids:
        es = entries(uid)
        total = sum(e.amount for e in es)
        lifetime = sum(e.amount for e in es if e.counts_toward_lifetime)
        assert cached(uid) == (total, lifetime), f"user {uid}: cached {cached(uid)} != ledger ({total}, {lifetime})"


def running_balances(user_id: int) -> list[int]:
    """The balance after each entry, in the order the entries were written."""
    out, total = [], 0
    for e in entries(user_id):
        total += e.amount
        out.append(total)
    return out


def ledger_rows() -> dict[int, tuple]:
    """Every ledger row, all columns, to compare before and after."""
    cols = [c.key for c in PointsEntry.__table__.columns]
    db.session.rollback()
    return {row.id: tuple(getattr(row, c) for c in cols) for row in db.session.scalars(select(PointsEntry))}


@contextmanager
def recorded_sql():
    """Every SQL statement the engine runs inside the block (all sessions, all threads)."""
    statements: list[str] = []
    engine = db.engine

    def before(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()).lower())

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def writes_to(statements: list[str], table: str) -> list[str]:
    return [s for s in statements if re.match(rf'^(update\s+"?{table}"?\b|delete\s+from\s+"?{table}"?\b)', s)]


def run_threads(n: int, fn, timeout: float = 120) -> list:
    """Run fn(i) in n threads that start together; returns results (an exception counts as a result)."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def wrap(i):
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001  (reported to the test, which asserts on it)
            results[i] = exc

    threads = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread is still running"
    return results


def clone_client(app, source):
    """A second test client in the same signed-in session (same session cookie)."""
    c = app.test_client()
    cookie = source.get_cookie("session")
    assert cookie is not None, "the source client has no session"
    c.set_cookie("session", cookie.value, domain=cookie.domain or "localhost")
    return c


def page_text(resp) -> str:
    return unescape(resp.get_data(as_text=True))


def flashes(client, url: str = "/rewards") -> str:
    """The page where the redirect lands, unescaped (flash messages are shown once)."""
    return page_text(client.get(url))


def redeem(client, reward_id: int, key: str | None = None):
    _seq["n"] += 1
    return post_form(
        client,
        "/rewards/redeem",
        {"reward_id": str(reward_id), "idempotency_key": key or f"order-{_seq['n']:06d}"},
        page="/rewards",
    )


def csrf_token(client, page: str) -> str:
    return csrf_from(client.get(page).get_data(as_text=True))


def hidden_value(html: str, name: str) -> str:
    m = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert m, f"no {name} field on the page"
    value = re.search(r'value="([^"]*)"', m.group(0))
    return unescape(value.group(1)) if value else ""


def reward_edit_form(client, reward_id: int) -> dict:
    """The edit form as the browser has it when opened: CSRF token and the stock it was drawn with."""
    html = client.get(f"/admin/rewards/{reward_id}").get_data(as_text=True)
    return {"csrf_token": csrf_from(html), "stock_seen": hidden_value(html, "stock_seen")}


def edit_reward(client, reward_id: int, data: dict, opened: dict | None = None):
    """POST the reward edit form; ``opened`` is a form opened earlier (reward_edit_form), else it is opened now."""
    return client.post(f"/admin/rewards/{reward_id}", data={**(opened or reward_edit_form(client, reward_id)), **data})
