"""append-only points ledger: triggers refuse UPDATE and DELETE; RESTRICT foreign keys; names out of referral reasons

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 09:00:00.000000

- BEFORE UPDATE and BEFORE DELETE triggers on points_entries raise (a plpgsql function on PostgreSQL,
  RAISE(ABORT) on SQLite), so nothing, not even a hand-written SQL statement, rewrites the ledger.
- points_entries.activity_type_id and actor_id become ON DELETE RESTRICT (SET NULL would have the
  database itself rewrite ledger rows).
- Referral entries stop carrying the referred person's name (the ledger outlives an erased account):
  existing reasons are rewritten once, before the triggers exist. The downgrade cannot bring the names back.
- The "Advisory board member" badge counts approved as well as completed board participations.
"""

import json

import sqlalchemy as sa
from alembic import op

import portal.models.base

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

REFERRAL_REASON = "Referral of a colleague who joined"
BOARD_RULE_NEW = {
    "metric": "activities",
    "activity_type": "advisory_board",
    "statuses": ["approved", "completed"],
    "count": 1,
}
BOARD_RULE_OLD = {"metric": "activities", "activity_type": "advisory_board", "count": 1}
MESSAGE = "points_entries is append-only: add a reversal entry instead"

PG_FUNCTION = f"""
CREATE FUNCTION points_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = '{MESSAGE} (' || TG_OP || ' refused)', ERRCODE = 'restrict_violation';
END
$$"""
TRIGGERS = (("points_entries_no_update", "UPDATE"), ("points_entries_no_delete", "DELETE"))


def _points_entries(ondelete: str) -> sa.Table:
    """points_entries as it stands before this step (or after it): batch mode on SQLite copies from this
    instead of reflecting, which also lets `flask db upgrade --sql` render the step offline."""
    return sa.Table(
        "points_entries",
        sa.MetaData(naming_convention=portal.models.base.NAMING_CONVENTION),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "earned",
                "redeemed",
                "adjusted",
                "reversed",
                "expired",
                name="points_entry_kind",
                native_enum=False,
                create_constraint=True,
                length=12,
            ),
            nullable=False,
        ),
        sa.Column(
            "source",
            sa.Enum(
                "participation",
                "redemption",
                "referral",
                "profile",
                "manual",
                name="points_entry_source",
                native_enum=False,
                create_constraint=True,
                length=14,
            ),
            nullable=False,
        ),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("activity_type_id", sa.Integer(), nullable=True),
        sa.Column("counts_toward_lifetime", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=160), nullable=False),
        sa.Column("reverses_id", sa.Integer(), nullable=True),
        sa.Column("created_at", portal.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_points_entries_amount_nonzero")),
        sa.ForeignKeyConstraint(
            ["activity_type_id"],
            ["activity_types.id"],
            name=op.f("fk_points_entries_activity_type_id_activity_types"),
            ondelete=ondelete,
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_points_entries_actor_id_users"), ondelete=ondelete
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"], ["points_entries.id"], name=op.f("fk_points_entries_reverses_id_points_entries")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_points_entries_user_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_entries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_points_entries_idempotency_key")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_points_entries_reverses_id")),
        sa.Index("ix_points_entries_created", "created_at"),
        sa.Index("ix_points_entries_user_created", "user_id", "created_at"),
    )


def _set_ondelete(old: str, new: str) -> None:
    with op.batch_alter_table("points_entries", schema=None, copy_from=_points_entries(old)) as batch_op:
        batch_op.drop_constraint("fk_points_entries_activity_type_id_activity_types", type_="foreignkey")
        batch_op.drop_constraint("fk_points_entries_actor_id_users", type_="foreignkey")
        batch_op.create_foreign_key(
            "fk_points_entries_activity_type_id_activity_types",
            "activity_types",
            ["activity_type_id"],
            ["id"],
            ondelete=new,
        )
        batch_op.create_foreign_key("fk_points_entries_actor_id_users", "users", ["actor_id"], ["id"], ondelete=new)


def _dialect() -> str:
    return op.get_context().dialect.name


def _set_board_rule(rule: dict) -> None:
    # Text, not a JSON-typed bind: offline mode (--sql) must be able to render the value.
    value = "CAST(:rule AS json)" if _dialect() == "postgresql" else ":rule"
    op.execute(
        sa.text(f"UPDATE badges SET rule = {value} WHERE key = 'board-member'").bindparams(rule=json.dumps(rule))
    )


def upgrade():
    # Before the triggers exist: the one rewrite the ledger ever gets, to take personal data out of it.
    op.execute(
        sa.text("UPDATE points_entries SET reason = :reason WHERE source = 'referral' AND kind = 'earned'").bindparams(
            reason=REFERRAL_REASON
        )
    )
    _set_ondelete("SET NULL", "RESTRICT")
    _set_board_rule(BOARD_RULE_NEW)
    if _dialect() == "postgresql":
        op.execute(PG_FUNCTION)
        for name, event in TRIGGERS:
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {event} ON points_entries "
                "FOR EACH ROW EXECUTE FUNCTION points_entries_append_only()"
            )
    else:
        for name, event in TRIGGERS:
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {event} ON points_entries BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )


def downgrade():
    if _dialect() == "postgresql":
        for name, _ in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON points_entries")
        op.execute("DROP FUNCTION IF EXISTS points_entries_append_only()")
    else:
        for name, _ in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    _set_board_rule(BOARD_RULE_OLD)
    _set_ondelete("RESTRICT", "SET NULL")
