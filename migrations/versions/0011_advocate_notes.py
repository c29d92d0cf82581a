"""advocate notes: admins' internal notes about an advocate

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 10:10:00.000000

"""

import sqlalchemy as sa
from alembic import op

import portal.models.base

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "advocate_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", portal.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_advocate_notes_author_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_advocate_notes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advocate_notes")),
    )
    op.create_index("ix_advocate_notes_user_created", "advocate_notes", ["user_id", "created_at"], unique=False)


def downgrade():
    op.drop_index("ix_advocate_notes_user_created", table_name="advocate_notes")
    op.drop_table("advocate_notes")
