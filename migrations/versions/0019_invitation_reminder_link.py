"""invitations: the reminder's own link (a hash), so the first email's link keeps working

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 16:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN and a unique index: no table copy on SQLite (`flask db upgrade --sql` works).
    op.add_column("invitations", sa.Column("reminder_token_hash", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_invitations_reminder_token_hash"), "invitations", ["reminder_token_hash"], unique=True)


def downgrade():
    op.drop_index(op.f("ix_invitations_reminder_token_hash"), table_name="invitations")
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_column("reminder_token_hash")
