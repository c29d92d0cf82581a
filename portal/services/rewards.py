"""The rewards catalog and redemptions.

Redeeming debits the ledger and takes one from stock in one transaction. Stock is taken with a
conditional UPDATE (stock > 0, row count checked), points with a conditional debit backed by a
CHECK constraint, and an advocate's point operations are serialised by locking their balance row,
so no number of concurrent requests can overdraw a balance, oversell stock or pass a per-advocate
limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload

from portal.models import Redemption, RedemptionStatus, Reward, Role, Status, User, utcnow
from portal.services import audit, paging, points
from portal.services.errors import Conflict, DomainError, NotAllowed, NotFound
from portal.services.outbox import external_url, queue_email

# Ids come from forms and URLs; beyond the column's range PostgreSQL raises instead of finding nothing.
MAX_ID = 2**31 - 1


@dataclass
class RewardInput:
    name: str
    description: str
    points_cost: int
    stock: int | None
    per_advocate_limit: int | None
    active: bool = True


def _validate(data: RewardInput) -> None:
    if not data.name.strip():
        raise DomainError("Give the reward a name.")
    if data.points_cost is None or not 1 <= data.points_cost <= 1_000_000:
        raise DomainError("The cost must be between 1 and 1,000,000 points.")
    if data.stock is not None and not 0 <= data.stock <= 1_000_000:
        raise DomainError("Stock must be between 0 and 1,000,000 (leave it empty for unlimited).")
    if data.per_advocate_limit is not None and not 1 <= data.per_advocate_limit <= 1000:
        raise DomainError("The per-advocate limit must be between 1 and 1,000 (leave it empty for none).")


def create_reward(session: Session, data: RewardInput, actor_id: int) -> Reward:
    _validate(data)
    reward = Reward(
        name=data.name.strip()[:120],
        description=data.description.strip(),
        points_cost=data.points_cost,
        stock=data.stock,
        per_advocate_limit=data.per_advocate_limit,
        active=data.active,
    )
    session.add(reward)
    session.flush()
    audit.record(session, "reward.create", actor_id, reward, name=reward.name, cost=reward.points_cost)
    return reward


MAX_STOCK = 1_000_000


class StockChanged(Conflict):
    pass


def _apply_stock(session: Session, reward: Reward, seen: int | None, wanted: int | None) -> None:
    """Apply the admin's stock change to the stock as it is now, in one conditional UPDATE.

    ``seen`` is the stock the form was drawn with. Orders placed while the form was open took stock;
    writing ``wanted`` back as an absolute number would hand that stock out again. So a change from
    5 to 8 adds 3 to whatever is left; an unchanged field changes nothing; the result is never below
    zero (refused instead).
    """
    if wanted == seen:
        return
    q = update(Reward).where(Reward.id == reward.id)
    if wanted is None:  # unlimited from now on
        q = q.values(stock=None)
    elif seen is None:  # it was unlimited: nothing was taken from it, set the number (unless someone else did)
        q = q.where(Reward.stock.is_(None)).values(stock=wanted)
    else:
        delta = wanted - seen
        q = q.where(Reward.stock.is_not(None), Reward.stock + delta >= 0, Reward.stock + delta <= MAX_STOCK).values(
            stock=Reward.stock + delta
        )
    if session.execute(q).rowcount != 1:
        now = session.scalar(select(Reward.stock).where(Reward.id == reward.id))
        now_text = "unlimited" if now is None else f"{now:,}"
        raise StockChanged(
            f"The stock changed since you opened this form (it is now {now_text}). "
            "Reload the page and enter the stock again."
        )
    session.refresh(reward, ["stock"])


def update_reward(
    session: Session, reward: Reward, data: RewardInput, actor_id: int, *, stock_seen: int | None
) -> Reward:
    """Save the edit form. ``stock_seen`` is the stock the form showed when it was opened (see _apply_stock)."""
    _validate(data)
    before = reward.stock
    _apply_stock(session, reward, stock_seen, data.stock)
    reward.name, reward.description = data.name.strip()[:120], data.description.strip()
    reward.points_cost = data.points_cost
    reward.per_advocate_limit, reward.active = data.per_advocate_limit, data.active
    audit.record(
        session,
        "reward.update",
        actor_id,
        reward,
        name=reward.name,
        cost=reward.points_cost,
        stock=reward.stock,
        stock_before=before,
        stock_seen=stock_seen,
        stock_entered=data.stock,
        active=reward.active,
    )
    return reward


def catalog(session: Session, include_inactive: bool = False) -> list[Reward]:
    q = select(Reward).order_by(Reward.points_cost, Reward.name)
    if not include_inactive:
        q = q.where(Reward.active.is_(True))
    return list(session.scalars(q))


def _held(session: Session, user_id: int, reward_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Redemption)
            .where(
                Redemption.user_id == user_id,
                Redemption.reward_id == reward_id,
                Redemption.status != RedemptionStatus.CANCELLED,
            )
        )
        or 0
    )


def redeem(session: Session, user: User, reward_id: int, idempotency_key: str) -> tuple[Redemption, bool]:
    """Order a reward. Returns (redemption, created); the same key returns the first order again."""
    if user.role != Role.ADVOCATE or user.status != Status.ACTIVE:
        raise NotAllowed("Only active advocates can redeem rewards.")
    key = f"redeem:{user.id}:{idempotency_key}"[:160]
    points.lock_account(session, user.id)  # one point operation per advocate at a time
    existing = session.scalar(select(Redemption).where(Redemption.idempotency_key == key))
    if existing is not None:
        return existing, False
    reward = session.get(Reward, reward_id) if 0 < reward_id <= MAX_ID else None
    if reward is None or not reward.active:
        raise NotFound("That reward is not available.")
    if reward.per_advocate_limit is not None and _held(session, user.id, reward.id) >= reward.per_advocate_limit:
        raise Conflict(f"You have already redeemed {reward.name} as many times as allowed.")
    if points.balance(session, user.id) < reward.points_cost:
        raise points.InsufficientPoints(
            f"{reward.name} costs {reward.points_cost:,} points; you have {points.balance(session, user.id):,}."
        )
    if reward.stock is not None:
        taken = session.execute(
            update(Reward).where(Reward.id == reward.id, Reward.stock > 0).values(stock=Reward.stock - 1)
        ).rowcount
        if taken != 1:
            raise Conflict(f"{reward.name} is out of stock.")
    redemption = Redemption(user_id=user.id, reward_id=reward.id, points_cost=reward.points_cost, idempotency_key=key)
    session.add(redemption)
    session.flush()
    points.debit_for_redemption(session, user.id, reward.points_cost, redemption.id, reward.name)
    queue_email(
        session,
        to=user.email,
        subject=f"We received your order: {reward.name}",
        template="redemption_requested",
        user_id=user.id,
        name=user.name,
        reward=reward.name,
        cost=reward.points_cost,
        url=external_url("recognition.redemptions"),
    )
    return redemption, True


def _get_for_update(session: Session, redemption_id: int) -> Redemption:
    if not 0 < redemption_id <= MAX_ID:
        raise NotFound("No such redemption.")
    redemption = session.scalars(
        select(Redemption)
        .where(Redemption.id == redemption_id)
        .with_for_update(of=Redemption)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if redemption is None:
        raise NotFound("No such redemption.")
    return redemption


def fulfil(session: Session, redemption_id: int, actor_id: int, note: str = "") -> Redemption:
    redemption = _get_for_update(session, redemption_id)
    if redemption.status != RedemptionStatus.REQUESTED:
        raise Conflict(f"This order is already {redemption.status.value}.")
    redemption.status, redemption.fulfilled_at = RedemptionStatus.FULFILLED, utcnow()
    redemption.handled_by_id, redemption.note = actor_id, (note or "").strip()[:500]
    user = session.get(User, redemption.user_id)
    audit.record(session, "redemption.fulfil", actor_id, redemption, reward=redemption.reward.name)
    queue_email(
        session,
        to=user.email,
        subject=f"On its way: {redemption.reward.name}",
        template="redemption_fulfilled",
        user_id=user.id,
        name=user.name,
        reward=redemption.reward.name,
        note=redemption.note,
        url=external_url("recognition.redemptions"),
    )
    return redemption


def cancel(session: Session, redemption_id: int, actor: User, reason: str = "") -> Redemption:
    """Cancel a requested order: refund through a reversal entry (once) and return the stock."""
    redemption = _get_for_update(session, redemption_id)
    if actor.role != Role.ADMIN and actor.id != redemption.user_id:
        raise NotFound("No such redemption.")
    if redemption.status != RedemptionStatus.REQUESTED:
        raise Conflict(f"This order is already {redemption.status.value}.")
    redemption.status, redemption.cancelled_at = RedemptionStatus.CANCELLED, utcnow()
    redemption.handled_by_id, redemption.note = actor.id, (reason or "").strip()[:500]
    debit = session.scalar(
        select(points.PointsEntry).where(points.PointsEntry.idempotency_key == f"redemption:{redemption.id}:debit")
    )
    _, refunded = points.reverse(
        session, debit.id, reason=f"Refund: {redemption.reward.name} cancelled", actor_id=actor.id
    )
    if not refunded:
        raise Conflict("This order was already refunded.")
    session.execute(
        update(Reward)
        .where(Reward.id == redemption.reward_id, Reward.stock.is_not(None))
        .values(stock=Reward.stock + 1)
    )
    user = session.get(User, redemption.user_id)
    if actor.role == Role.ADMIN:
        audit.record(
            session, "redemption.cancel", actor.id, redemption, reward=redemption.reward.name, reason=redemption.note
        )
    queue_email(
        session,
        to=user.email,
        subject=f"Order cancelled: {redemption.reward.name}",
        template="redemption_cancelled",
        user_id=user.id,
        name=user.name,
        reward=redemption.reward.name,
        cost=redemption.points_cost,
        note=redemption.note,
        url=external_url("recognition.redemptions"),
    )
    return redemption


def history(session: Session, user_id: int) -> list[Redemption]:
    return list(
        session.scalars(
            select(Redemption)
            .where(Redemption.user_id == user_id)
            .order_by(Redemption.created_at.desc(), Redemption.id.desc())
        )
    )


QUEUE_PER_PAGE = 50


def queue(
    session: Session,
    status: RedemptionStatus | None = RedemptionStatus.REQUESTED,
    page: int = 1,
    per_page: int | None = None,
) -> paging.Page:
    """A page of redemptions (of a status), oldest first (the order they are fulfilled in), each with its user."""
    q = select(Redemption).options(joinedload(Redemption.user)).order_by(Redemption.created_at, Redemption.id)
    if status is not None:
        q = q.where(Redemption.status == status)
    return paging.paginate(session, q, page, per_page or QUEUE_PER_PAGE)
