"""append-only audit log: triggers refuse DELETE and any UPDATE but the erasure's redaction; actor RESTRICT

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 09:45:00.000000

- BEFORE DELETE on audit_events raises; BEFORE UPDATE raises when who (actor_id), what (action), which
  object (target_type, target_id), when (created_at) or the id changes, or when the IP address is set
  to anything but NULL. What stays allowed is the redaction an erasure makes: clearing the IP address
  and rewriting the details without the person's name, email and free text (portal.services.erasure).
- audit_events.actor_id becomes ON DELETE RESTRICT (SET NULL would have the database rewrite who acted).
- An index on (target_type, target_id) for "everything that happened to this object" (the audit page's
  filter, the advocate timeline).
"""

import sqlalchemy as sa
from alembic import op

import portal.models.base

# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

MESSAGE = "audit_events is append-only"
FIXED = ("id", "actor_id", "action", "target_type", "target_id", "created_at")

PG_FUNCTION = f"""
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION USING MESSAGE = '{MESSAGE} (DELETE refused)', ERRCODE = 'restrict_violation';
    END IF;
    IF {" OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in FIXED)}
       OR (NEW.ip_address IS NOT NULL AND NEW.ip_address IS DISTINCT FROM OLD.ip_address) THEN
        RAISE EXCEPTION USING MESSAGE = '{MESSAGE} (only a redaction may change a row)',
            ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$"""
SQLITE_CHANGED = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FIXED)


def _audit_events(ondelete: str) -> sa.Table:
    """audit_events as it stands before (or after) this step, for batch mode on SQLite."""
    return sa.Table(
        "audit_events",
        sa.MetaData(naming_convention=portal.models.base.NAMING_CONVENTION),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("target_type", sa.String(length=40), nullable=True),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.Column("created_at", portal.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_audit_events_actor_id_users"), ondelete=ondelete
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.Index("ix_audit_events_action", "action"),
        sa.Index("ix_audit_events_actor_id", "actor_id"),
        sa.Index("ix_audit_events_created_at", "created_at"),
    )


def _set_ondelete(old: str, new: str) -> None:
    with op.batch_alter_table("audit_events", schema=None, copy_from=_audit_events(old)) as batch_op:
        batch_op.drop_constraint("fk_audit_events_actor_id_users", type_="foreignkey")
        batch_op.create_foreign_key("fk_audit_events_actor_id_users", "users", ["actor_id"], ["id"], ondelete=new)


def _dialect() -> str:
    return op.get_context().dialect.name


def upgrade():
    _set_ondelete("SET NULL", "RESTRICT")
    op.create_index("ix_audit_events_target", "audit_events", ["target_type", "target_id"], unique=False)
    if _dialect() == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE} (DELETE refused)'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_events_redaction_only BEFORE UPDATE ON audit_events "
            f"WHEN {SQLITE_CHANGED} OR (NEW.ip_address IS NOT NULL AND NEW.ip_address IS NOT OLD.ip_address) "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE} (only a redaction may change a row)'); END"
        )


def downgrade():
    if _dialect() == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
        op.execute("DROP TRIGGER IF EXISTS audit_events_redaction_only")
    op.drop_index("ix_audit_events_target", table_name="audit_events")
    _set_ondelete("RESTRICT", "SET NULL")
