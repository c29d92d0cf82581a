"""The points ledger: one function awards, one reverses; balances are sums of entries.

Idempotency: every entry has a unique key naming the event ("participation:42:complete"); the same
event awarded twice, from a double click, a retry or ten concurrent requests, yields one entry.
The cached balance row changes in the same transaction, by a relative UPDATE, and a CHECK
constraint (balance >= 0) backs the conditional debit.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import signals
from portal.models import ActivityType, EntryKind, EntrySource, PointsBalance, PointsEntry, User, utcnow
from portal.services import audit, settings
from portal.services.errors import Conflict, DomainError, NotFound

DEFAULT_LEVELS = [("Member", 0), ("Bronze", 500), ("Silver", 1500), ("Gold", 4000), ("Platinum", 10000)]


class InsufficientPoints(DomainError):
    pass


def _ensure_balance_row(session: Session, user_id: int) -> None:
    dialect = session.get_bind().dialect.name
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        ins(PointsBalance)
        .values(user_id=user_id, balance=0, lifetime_earned=0, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["user_id"])
    )


def lock_account(session: Session, user_id: int) -> PointsBalance:
    """Serialise point operations of one advocate (row lock on PostgreSQL; SQLite writers are serial)."""
    _ensure_balance_row(session, user_id)
    return session.scalars(
        select(PointsBalance)
        .where(PointsBalance.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _existing(session: Session, key: str) -> PointsEntry | None:
    return session.scalar(select(PointsEntry).where(PointsEntry.idempotency_key == key))


def _insert_entry(session: Session, entry: PointsEntry) -> tuple[PointsEntry, bool]:
    """Insert the entry and move the cached sums; (entry, False) if the key was already used."""
    found = _existing(session, entry.idempotency_key)
    if found is not None:
        return found, False
    _ensure_balance_row(session, entry.user_id)
    try:
        with session.begin_nested():
            session.add(entry)
            session.flush()
            lifetime = entry.amount if entry.counts_toward_lifetime else 0
            q = (
                update(PointsBalance)
                .where(PointsBalance.user_id == entry.user_id)
                .values(
                    balance=PointsBalance.balance + entry.amount,
                    lifetime_earned=PointsBalance.lifetime_earned + lifetime,
                    updated_at=utcnow(),
                )
            )
            if entry.amount < 0:
                q = q.where(PointsBalance.balance >= -entry.amount)
            if session.execute(q).rowcount != 1:
                raise InsufficientPoints("Not enough points for that.")
    except IntegrityError:
        # Lost a race on the idempotency key (or the balance check): the other writer's entry stands.
        found = _existing(session, entry.idempotency_key)
        if found is None:
            raise InsufficientPoints("Not enough points for that.") from None
        return found, False
    return entry, True


def award(
    session: Session,
    user_id: int,
    amount: int,
    *,
    key: str,
    reason: str,
    source: EntrySource,
    source_id: int | None = None,
    actor_id: int | None = None,
    kind: EntryKind = EntryKind.EARNED,
    activity_type_id: int | None = None,
) -> tuple[PointsEntry, bool]:
    """The one way points are credited (or, for adjustments, debited). Returns (entry, created).

    A new entry is announced (``signals.points_awarded``, in this transaction) for what follows a credit,
    such as badges; the ledger itself only writes entries."""
    if amount == 0:
        raise DomainError("An award of zero points records nothing.")
    if kind not in (EntryKind.EARNED, EntryKind.ADJUSTED):
        raise DomainError("Use redeem() or reverse() for that kind of entry.")
    entry, created = _insert_entry(
        session,
        PointsEntry(
            user_id=user_id,
            amount=amount,
            kind=kind,
            source=source,
            source_id=source_id,
            reason=reason[:255],
            actor_id=actor_id,
            idempotency_key=key,
            counts_toward_lifetime=True,
            activity_type_id=activity_type_id,
        ),
    )
    if created:  # only a new entry: the same credit twice is announced once
        signals.points_awarded.send(__name__, session=session, user_id=user_id, entry=entry)
    return entry, created


def debit_for_redemption(
    session: Session, user_id: int, cost: int, redemption_id: int, reward_name: str
) -> PointsEntry:
    """The advocate's own redemption: they are the one acting (``actor_id``)."""
    entry, created = _insert_entry(
        session,
        PointsEntry(
            user_id=user_id,
            amount=-cost,
            kind=EntryKind.REDEEMED,
            source=EntrySource.REDEMPTION,
            source_id=redemption_id,
            reason=f"Redeemed: {reward_name}"[:255],
            counts_toward_lifetime=False,
            actor_id=user_id,
            idempotency_key=f"redemption:{redemption_id}:debit",
        ),
    )
    if not created:
        raise Conflict("This redemption was already charged.")
    return entry


def reverse(session: Session, entry_id: int, *, reason: str, actor_id: int | None = None) -> tuple[PointsEntry, bool]:
    """Undo an entry with an opposite entry (at most once per entry)."""
    original = session.get(PointsEntry, entry_id)
    if original is None:
        raise NotFound("No such ledger entry.")
    if original.kind == EntryKind.REVERSED:
        raise DomainError("A reversal cannot itself be reversed; add an adjustment instead.")
    return _insert_entry(
        session,
        PointsEntry(
            user_id=original.user_id,
            amount=-original.amount,
            kind=EntryKind.REVERSED,
            source=original.source,
            source_id=original.source_id,
            activity_type_id=original.activity_type_id,
            counts_toward_lifetime=original.counts_toward_lifetime,
            reason=reason[:255],
            actor_id=actor_id,
            idempotency_key=f"reverse:{original.id}",
            reverses_id=original.id,
        ),
    )


def reverse_for_admin(session: Session, entry_id: int, reason: str, actor_id: int) -> PointsEntry:
    """An admin undoes one ledger entry: a new, opposite entry with their reason (the entry itself never
    changes), audited. Points spent on a reward come back by cancelling the order, not here."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Give a reason for the reversal.")
    original = session.get(PointsEntry, entry_id)
    if original is None:
        raise NotFound("No such ledger entry.")
    if original.source == EntrySource.REDEMPTION:
        raise DomainError("Points spent on a reward come back when the order is cancelled: cancel the order.")
    entry, created = reverse(session, entry_id, reason=reason, actor_id=actor_id)
    if not created:
        raise Conflict("This entry was already reversed.")
    user = session.get(User, original.user_id)
    audit.record(session, "points.reverse", actor_id, user, entry_id=original.id, amount=entry.amount, reason=reason)
    return entry


def reversible(session: Session, entry_ids: list[int]) -> set[int]:
    """Which of these entries an admin may still reverse (not a reversal, not spent on a reward, not
    reversed already): one query."""
    if not entry_ids:
        return set()
    reversed_ = select(PointsEntry.reverses_id).where(PointsEntry.reverses_id.in_(entry_ids))
    return set(
        session.scalars(
            select(PointsEntry.id).where(
                PointsEntry.id.in_(entry_ids),
                PointsEntry.kind != EntryKind.REVERSED,
                PointsEntry.source != EntrySource.REDEMPTION,
                PointsEntry.id.not_in(reversed_),
            )
        )
    )


def adjust(session: Session, user: User, amount: int, reason: str, actor_id: int, key: str) -> tuple[PointsEntry, bool]:
    """An admin's manual adjustment: a reason is required and the action is audit-logged.

    Returns (entry, created). The key comes from the rendered form: the same form sent twice (a double
    click, a retry) records one adjustment; the same form sent again for another advocate, amount or
    reason would silently record nothing, so that is refused with a Conflict.
    """
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Give a reason for the adjustment.")
    if not -100_000 <= amount <= 100_000 or amount == 0:
        raise DomainError("The adjustment must be a non-zero number between -100,000 and 100,000.")
    entry, created = award(
        session,
        user.id,
        amount,
        key=key,
        reason=reason,
        source=EntrySource.MANUAL,
        actor_id=actor_id,
        kind=EntryKind.ADJUSTED,
    )
    if created:
        audit.record(session, "points.adjust", actor_id, user, amount=amount, reason=reason, entry_id=entry.id)
    elif (entry.user_id, entry.amount, entry.reason, entry.kind) != (user.id, amount, reason[:255], EntryKind.ADJUSTED):
        raise Conflict("This form was already used for another adjustment; reload the page and enter it again.")
    return entry, created


# --- default points per activity type -------------------------------------------------------------------------

MAX_DEFAULT_POINTS = 100_000


def activity_types(session: Session) -> list[ActivityType]:
    return list(session.scalars(select(ActivityType).order_by(ActivityType.position, ActivityType.name)))


@dataclass(frozen=True)
class WayToEarn:
    what: str
    points: int
    detail: str = ""


def ways_to_earn(session: Session) -> list[WayToEarn]:
    """What earns points, as the program has it now (the points and rewards pages say so): each activity type
    an advocate can take part in, with its default points (an opportunity may offer another amount), then a
    complete profile and a referral (program settings; 0: not offered, not listed)."""
    ways = [
        WayToEarn(t.name, t.default_points, t.description)
        for t in activity_types(session)
        if t.active and t.default_points > 0
    ]
    for key, what, detail in (
        ("points_profile_complete", "Complete your profile", "Once, when every part of your profile is filled in."),
        ("points_referral", "Refer a colleague", "For each colleague who joins through your link and is approved."),
    ):
        amount = settings.get(session, key)
        if amount > 0:
            ways.append(WayToEarn(what, amount, detail))
    return ways


def set_default_points(session: Session, activity_type: ActivityType, value: int, actor_id: int) -> ActivityType:
    """What completing an activity of this type credits, unless the opportunity sets its own points.
    Read when an activity is completed, so it applies to opportunities that do not override it."""
    if value is None or not 0 <= value <= MAX_DEFAULT_POINTS:
        raise DomainError(f"Default points must be a whole number from 0 to {MAX_DEFAULT_POINTS:,}.")
    before = activity_type.default_points
    if before != value:
        activity_type.default_points = value
        audit.record(
            session,
            "activity_type.default_points",
            actor_id,
            activity_type,
            key=activity_type.key,
            before=before,
            after=value,
        )
    return activity_type


# --- reading ---------------------------------------------------------------------------------------------------


def balance(session: Session, user_id: int) -> int:
    return session.scalar(select(PointsBalance.balance).where(PointsBalance.user_id == user_id)) or 0


def lifetime_earned(session: Session, user_id: int) -> int:
    return session.scalar(select(PointsBalance.lifetime_earned).where(PointsBalance.user_id == user_id)) or 0


def ledger_sums(session: Session, user_id: int | None = None):
    """(user_id, balance, lifetime) computed from the entries themselves."""
    q = select(
        PointsEntry.user_id,
        func.sum(PointsEntry.amount),
        func.sum(case((PointsEntry.counts_toward_lifetime, PointsEntry.amount), else_=0)),
    ).group_by(PointsEntry.user_id)
    if user_id is not None:
        q = q.where(PointsEntry.user_id == user_id)
    return session.execute(q).all()


def verify(session: Session) -> list[str]:
    """Compare every cached balance with the ledger; return the differences (empty when all agree)."""
    cached = {b.user_id: (b.balance, b.lifetime_earned) for b in session.scalars(select(PointsBalance))}
    problems = []
    seen = set()
    for user_id, total, lifetime in ledger_sums(session):
        seen.add(user_id)
        if cached.get(user_id, (0, 0)) != (total, lifetime):
            problems.append(f"user {user_id}: cached {cached.get(user_id)} but ledger says ({total}, {lifetime})")
        if total < 0:
            problems.append(f"user {user_id}: ledger balance is negative ({total})")
    for user_id, values in cached.items():
        if user_id not in seen and values != (0, 0):
            problems.append(f"user {user_id}: cached {values} but has no ledger entries")
    return problems


def history(session: Session, user_id: int, limit: int = 200) -> list[PointsEntry]:
    return list(
        session.scalars(
            select(PointsEntry)
            .where(PointsEntry.user_id == user_id)
            .order_by(PointsEntry.created_at.desc(), PointsEntry.id.desc())
            .limit(limit)
        )
    )


# --- levels -------------------------------------------------------------------------------------------------------


@dataclass
class Level:
    name: str
    threshold: int
    next_name: str | None
    next_threshold: int | None
    lifetime: int

    @property
    def progress(self) -> int:
        if self.next_threshold is None:
            return 100
        span = self.next_threshold - self.threshold
        return max(0, min(100, int(100 * (self.lifetime - self.threshold) / span)))

    @property
    def to_next(self) -> int | None:
        return None if self.next_threshold is None else self.next_threshold - self.lifetime


def levels() -> list[tuple[str, int]]:
    configured = current_app.config.get("POINTS_LEVELS") or DEFAULT_LEVELS
    return sorted(((str(n), int(t)) for n, t in configured), key=lambda lv: lv[1])


def level_for(lifetime: int) -> Level:
    table = levels()
    current, nxt = table[0], None
    for i, (name, threshold) in enumerate(table):
        if lifetime >= threshold:
            current = (name, threshold)
            nxt = table[i + 1] if i + 1 < len(table) else None
    return Level(current[0], current[1], nxt[0] if nxt else None, nxt[1] if nxt else None, lifetime)


def level_range(name: str) -> tuple[int, int | None] | None:
    """The lifetime points a level spans, as ``level_for`` reads them: (its threshold, the next level's,
    or None for the top one); None for a name that is not a level. For filters in SQL (a range, not a
    level computed per row)."""
    table = levels()
    for i, (level, threshold) in enumerate(table):
        if level == name:
            return threshold, (table[i + 1][1] if i + 1 < len(table) else None)
    return None
