"""outbox messages carry a stable Message-ID

Each message gets its Message-ID header when it is queued and keeps it for every attempt, so a message
that a crash made the outbox send twice is recognisably the same message. Rows not sent yet get one now.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 09:30:00.000000

"""

import uuid

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.String(length=255), nullable=True))

    # Unsent rows (queued, sending, failed): a Message-ID unique to the row and to this database.
    op.execute(
        sa.text(
            "UPDATE outbox_messages SET message_id = '<outbox.' || id || '.' || :run || '@advocate-portal>' "
            "WHERE status <> 'sent'"
        ).bindparams(run=uuid.uuid4().hex)
    )


def downgrade():
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("message_id")
