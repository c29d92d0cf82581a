"""The points ledger is append-only in the database itself (migration 0007), not only by convention:
raw UPDATE and DELETE are refused by triggers on SQLite and PostgreSQL, the ORM refuses to flush a
changed or deleted entry, and no foreign key lets the database rewrite a ledger row."""

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import delete, inspect, select, text, update
from sqlalchemy.exc import DBAPIError

from portal.extensions import db
from portal.models import ActivityType, EntryKind, EntrySource, PointsEntry, Role, Status, User
from portal.models.recognition import LedgerIsAppendOnly
from portal.services import points
from tests.support import assert_ledger_consistent, give, ledger_rows, participate


def _refused(sql: str, **params) -> str:
    """Run raw SQL on a connection of its own; return the database's refusal."""
    with pytest.raises(DBAPIError) as info:
        with db.engine.begin() as conn:
            conn.execute(text(sql), params)
    return str(info.value.orig)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE points_entries SET amount = 999 WHERE id = :id",
        "UPDATE points_entries SET reason = 'rewritten' WHERE id = :id",
        "UPDATE points_entries SET activity_type_id = NULL WHERE id = :id",
        "DELETE FROM points_entries WHERE id = :id",
        "DELETE FROM points_entries",
    ],
)
def test_the_database_refuses_raw_updates_and_deletes(app, advocate, sql):
    (entry_id,) = participate(advocate.id, "review", amount=40)
    give(advocate.id, 60)
    before = ledger_rows()
    assert "append-only" in _refused(sql, id=entry_id)
    assert ledger_rows() == before
    assert_ledger_consistent(advocate.id)


def test_inserting_still_works_and_a_reversal_is_the_way_to_undo(app, advocate, admin):
    entry_id, _ = give(advocate.id, 100)
    points.reverse(db.session, entry_id, reason="given by mistake", actor_id=admin.id)
    db.session.commit()
    assert points.balance(db.session, advocate.id) == 0
    assert_ledger_consistent(advocate.id)


def test_the_orm_refuses_to_change_an_entry(app, advocate):
    entry_id, _ = give(advocate.id, 100)
    before = ledger_rows()
    entry = db.session.get(PointsEntry, entry_id)
    entry.amount = 5
    with pytest.raises(LedgerIsAppendOnly, match="cannot be changed"):
        db.session.flush()
    db.session.rollback()
    entry = db.session.get(PointsEntry, entry_id)
    entry.reason = entry.reason  # setting the same value changes nothing and is fine
    db.session.flush()
    db.session.rollback()
    assert ledger_rows() == before


def test_the_orm_refuses_to_delete_an_entry(app, advocate):
    entry_id, _ = give(advocate.id, 100)
    before = ledger_rows()
    db.session.delete(db.session.get(PointsEntry, entry_id))
    with pytest.raises(LedgerIsAppendOnly, match="cannot be deleted"):
        db.session.flush()
    db.session.rollback()
    assert ledger_rows() == before


@pytest.mark.parametrize(
    "statement",
    [
        lambda: update(PointsEntry).values(amount=1),
        lambda: delete(PointsEntry).where(PointsEntry.kind == EntryKind.EARNED),
    ],
)
def test_the_orm_refuses_bulk_updates_and_deletes(app, advocate, statement):
    give(advocate.id, 100)
    before = ledger_rows()
    with pytest.raises(LedgerIsAppendOnly):
        db.session.execute(statement())
    db.session.rollback()
    assert ledger_rows() == before


def test_no_foreign_key_lets_the_database_rewrite_a_ledger_row(app, advocate, make_user):
    rules = {
        tuple(fk["constrained_columns"]): (fk.get("options") or {}).get("ondelete", "").upper()
        for fk in inspect(db.engine).get_foreign_keys("points_entries")
    }
    assert rules[("activity_type_id",)] == "RESTRICT" and rules[("actor_id",)] == "RESTRICT"
    assert rules[("user_id",)] == "RESTRICT"
    # An activity type with ledger entries cannot be deleted (SET NULL would have rewritten the entries).
    db.session.rollback()
    t = ActivityType(key="podcast_guest", name="Podcast guest", default_points=10)
    db.session.add(t)
    db.session.commit()
    type_id = t.id
    actor = make_user(Role.ADMIN)
    entry_id, _ = give(advocate.id, 10, source=EntrySource.PARTICIPATION, activity_type_id=type_id, actor_id=actor.id)
    before = ledger_rows()
    _refused("DELETE FROM activity_types WHERE id = :id", id=type_id)
    _refused("DELETE FROM users WHERE id = :id", id=actor.id)
    assert ledger_rows() == before
    db.session.rollback()
    assert db.session.get(PointsEntry, entry_id).activity_type_id == type_id


def test_the_cached_balance_can_still_be_checked_against_the_ledger(app, runner, advocate):
    """The balance cache is updated legitimately on every entry, so it is not frozen; `points verify` watches it."""
    give(advocate.id, 100)
    db.session.execute(text("UPDATE points_balances SET balance = 1 WHERE user_id = :u"), {"u": advocate.id})
    db.session.commit()
    assert runner.invoke(args=["points", "verify"]).exit_code == 1


# --- the migration ---------------------------------------------------------------------------------------------------


def test_migration_0007_adds_the_triggers_and_its_downgrade_removes_them(mig_app):
    upgrade(revision="0006")
    user = User(
        email="ledger.owner@example.com",
        name="Robin Referrer",
        role=Role.ADVOCATE,
        status=Status.ACTIVE,
        password_hash="x",
    )
    db.session.add(user)
    db.session.flush()
    db.session.add_all(
        [
            PointsEntry(
                user_id=user.id,
                amount=250,
                kind=EntryKind.EARNED,
                source=EntrySource.REFERRAL,
                source_id=99,
                counts_toward_lifetime=True,
                reason="Referral: Casey Colleague joined",
                idempotency_key="r:99",
            ),
            PointsEntry(
                user_id=user.id,
                amount=5,
                kind=EntryKind.ADJUSTED,
                source=EntrySource.MANUAL,
                counts_toward_lifetime=True,
                reason="Thanks, Casey",
                idempotency_key="m:1",
            ),
        ]
    )
    db.session.flush()
    # A cancelled order: the refund is a reversal, which refers to the entry it reverses. Batch mode
    # rebuilds points_entries on SQLite; with such a row the drop of the old table used to fail.
    order = PointsEntry(
        user_id=user.id,
        amount=-3,
        kind=EntryKind.REDEEMED,
        source=EntrySource.REDEMPTION,
        source_id=7,
        counts_toward_lifetime=False,
        reason="Mug",
        idempotency_key="o:7",
    )
    db.session.add(order)
    db.session.flush()
    db.session.add(
        PointsEntry(
            user_id=user.id,
            amount=3,
            kind=EntryKind.REVERSED,
            source=EntrySource.REDEMPTION,
            source_id=7,
            counts_toward_lifetime=False,
            reason="Order cancelled",
            idempotency_key="o:7:refund",
            reverses_id=order.id,
        )
    )
    db.session.commit()
    user_id = user.id
    db.session.remove()

    upgrade(revision="0007")
    reasons = db.session.execute(select(PointsEntry.idempotency_key, PointsEntry.reason).order_by(PointsEntry.id)).all()
    # The name left the ledger before the triggers froze it; an admin's own words stay as written.
    assert reasons == [
        ("r:99", "Referral of a colleague who joined"),
        ("m:1", "Thanks, Casey"),
        ("o:7", "Mug"),
        ("o:7:refund", "Order cancelled"),
    ]
    db.session.remove()
    assert "append-only" in _refused("UPDATE points_entries SET amount = 1")
    assert "append-only" in _refused("DELETE FROM points_entries")

    downgrade(revision="0006")
    with db.engine.begin() as conn:
        assert conn.execute(text("UPDATE points_entries SET amount = 6 WHERE idempotency_key = 'm:1'")).rowcount == 1
        assert conn.execute(text("DELETE FROM points_entries")).rowcount == 4
    upgrade()
    db.session.add(
        PointsEntry(
            user_id=user_id,
            amount=7,
            kind=EntryKind.ADJUSTED,
            source=EntrySource.MANUAL,
            counts_toward_lifetime=True,
            reason="again",
            idempotency_key="m:2",
        )
    )
    db.session.commit()
    db.session.remove()
    assert "append-only" in _refused("UPDATE points_entries SET amount = 1")
