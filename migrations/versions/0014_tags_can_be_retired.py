"""tags can be retired: tags.active (existing tags stay active)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 12:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN (SQLite accepts it with a constant default), so `flask db upgrade --sql` needs no table copy.
    op.add_column("tags", sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade():
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.drop_column("active")
