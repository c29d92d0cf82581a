"""reference_requests.scheduled_tz: the time zone the requester gave the time in (advocates are told the
time in their own)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 19:10:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN: no table copy on SQLite (`flask db upgrade --sql` works).
    op.add_column("reference_requests", sa.Column("scheduled_tz", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("reference_requests", schema=None) as batch_op:
        batch_op.drop_column("scheduled_tz")
