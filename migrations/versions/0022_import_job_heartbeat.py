"""import_jobs.heartbeat_at: a running import's last sign of life, so one cut off by a restart can be told
from one still running, and resumed

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 19:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

import portal.models.base

# revision identifiers, used by Alembic.
revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN: no table copy on SQLite (`flask db upgrade --sql` works).
    op.add_column(
        "import_jobs",
        sa.Column("heartbeat_at", portal.models.base.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade():
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
